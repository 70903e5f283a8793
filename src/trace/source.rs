//! What every reader shares: the per-file source trait, the line splitter, the skip
//! bookkeeping and typed access to JSON fields with located errors.

use std::io::{BufRead, Read};

use serde_json::{Map, Value};

use super::format::UTF8_BOM;
use super::read_stats::MAX_EXAMPLES;
use super::time::{kind_of, parse_ts_value};
use super::{CallRecord, Nanos, Origin, ReadStats, Skipped, TraceError};

/// One opened input file yielding call records in file order.
pub(crate) trait Source: Send {
    /// The next call of this file, `None` at its end. Bad lines are reported to `cx`.
    fn next(&mut self, cx: &mut Ctx<'_>) -> Result<Option<CallRecord>, TraceError>;
}

/// Where a source reports skipped and ignored lines.
pub(crate) struct Ctx<'a> {
    pub(crate) stats: &'a mut ReadStats,
    pub(crate) strict: bool,
    pub(crate) file: &'a str,
}

impl Ctx<'_> {
    /// Count a bad line, or under `--strict` turn it into the error that ends the read.
    pub(crate) fn skip(&mut self, line: u64, err: LineError) -> Result<(), TraceError> {
        let reason = err.message();
        if self.strict {
            return Err(TraceError::BadRecord {
                file: self.file.to_string(),
                line,
                field: err.field,
                reason,
            });
        }
        self.stats.skipped += 1;
        *self
            .stats
            .skipped_by_reason
            .entry(err.kind.to_string())
            .or_insert(0) += 1;
        if self.stats.skipped_examples.len() < MAX_EXAMPLES {
            self.stats.skipped_examples.push(Skipped {
                file: self.file.to_string(),
                line,
                reason,
            });
        }
        Ok(())
    }

    /// Count a line that is not a call and not bad (a notification, a log line, …).
    pub(crate) fn ignore(&mut self, kind: impl Into<String>) {
        self.stats.ignore(kind);
    }
}

/// Why one line (or row) is bad.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct LineError {
    /// Category for the report (`invalid JSON`, `missing field`, …).
    pub(crate) kind: &'static str,
    /// Dotted path of the field to blame.
    pub(crate) field: Option<String>,
    pub(crate) reason: String,
}

/// The most characters of a reason kept: reasons quote the bad value, which can be any size.
const MAX_REASON_CHARS: usize = 300;

/// `reason`, cut to [`MAX_REASON_CHARS`] characters.
fn bounded(reason: String) -> String {
    match reason.char_indices().nth(MAX_REASON_CHARS) {
        None => reason,
        Some((at, _)) => format!("{}… ({} bytes in all)", &reason[..at], reason.len()),
    }
}

impl LineError {
    pub(crate) fn new(kind: &'static str, reason: impl Into<String>) -> LineError {
        LineError {
            kind,
            field: None,
            reason: bounded(reason.into()),
        }
    }

    pub(crate) fn at(kind: &'static str, field: &str, reason: impl Into<String>) -> LineError {
        LineError {
            kind,
            field: Some(field.to_string()),
            reason: bounded(reason.into()),
        }
    }

    pub(crate) fn missing(field: &str) -> LineError {
        LineError::at("missing field", field, "missing")
    }

    pub(crate) fn wrong_type(field: &str, expected: &str, found: &Value) -> LineError {
        LineError::at(
            "wrong type",
            field,
            format!("expected {expected}, found {}", kind_of(found)),
        )
    }

    pub(crate) fn json(e: &serde_json::Error) -> LineError {
        let what = if e.is_eof() {
            "truncated JSON"
        } else {
            "invalid JSON"
        };
        LineError::new("invalid JSON", format!("{what}: {e}"))
    }

    pub(crate) fn message(&self) -> String {
        match &self.field {
            Some(f) => format!("field `{f}`: {}", self.reason),
            None => self.reason.clone(),
        }
    }
}

/// A numbered line: its text, or why it is not text.
pub(crate) type NumberedLine<'a> = (u64, Result<&'a str, LineError>);

/// The longest line any reader takes: a longer one ends the read with an error for its file
/// (one record that large is damage, or an attempt to exhaust memory, such as a small gzip
/// file inflating to gigabytes without a newline).
pub(crate) const MAX_LINE_BYTES: usize = 64 << 20;

/// A chunked reader met a line longer than [`MAX_LINE_BYTES`] (its line number is not known
/// yet).
#[derive(Debug)]
pub(crate) struct LineTooLong;

impl std::fmt::Display for LineTooLong {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "a line is longer than {} MiB, the most one record may take",
            MAX_LINE_BYTES >> 20
        )
    }
}

impl std::error::Error for LineTooLong {}

/// The error for a line longer than [`MAX_LINE_BYTES`].
pub(crate) fn line_too_long(file: &str, line: u64) -> TraceError {
    TraceError::BadRecord {
        file: file.to_string(),
        line,
        field: None,
        reason: format!(
            "the line is longer than {} MiB, the most one record may take",
            MAX_LINE_BYTES >> 20
        ),
    }
}

/// Splits a stream into lines, numbering them from 1 and skipping blank ones.
pub(crate) struct Lines {
    r: Box<dyn BufRead + Send>,
    buf: Vec<u8>,
    line: u64,
    name: String,
    /// Lines that are not UTF-8 come back with their invalid bytes replaced (see
    /// [`Lines::lossy`]), here.
    lossy: Option<String>,
}

impl Lines {
    pub(crate) fn new(r: Box<dyn BufRead + Send>, name: &str) -> Lines {
        Lines {
            r,
            buf: Vec::new(),
            line: 0,
            name: name.to_string(),
            lossy: None,
        }
    }

    /// Lines that are not UTF-8 are read with their invalid bytes replaced (U+FFFD), not as
    /// bad lines: for logs that carry other programs' output as it came (a server's stderr in
    /// a Claude Desktop log), which is not a record and may be in any encoding.
    pub(crate) fn lossy(mut self) -> Lines {
        self.lossy = Some(String::new());
        self
    }

    /// The number of the last line read (0 before the first).
    pub(crate) fn line(&self) -> u64 {
        self.line
    }

    /// The next non-blank line with its number; invalid UTF-8 comes back as a [`LineError`].
    pub(crate) fn next_line(&mut self) -> Result<Option<NumberedLine<'_>>, TraceError> {
        let end = loop {
            self.buf.clear();
            let n = (&mut self.r)
                .take(MAX_LINE_BYTES as u64 + 1)
                .read_until(b'\n', &mut self.buf)
                .map_err(|source| TraceError::Io {
                    file: self.name.clone(),
                    source,
                })?;
            if n == 0 {
                return Ok(None);
            }
            self.line += 1;
            if n > MAX_LINE_BYTES && self.buf.last() != Some(&b'\n') {
                return Err(line_too_long(&self.name, self.line));
            }
            let mut end = self.buf.len();
            while end > 0 && matches!(self.buf[end - 1], b'\n' | b'\r') {
                end -= 1;
            }
            if !self.buf[..end].iter().all(u8::is_ascii_whitespace) {
                break end;
            }
        };
        let start = if self.line == 1 && self.buf.starts_with(UTF8_BOM) {
            UTF8_BOM.len()
        } else {
            0
        };
        let bytes = &self.buf[start..end];
        let text = match (std::str::from_utf8(bytes), &mut self.lossy) {
            (Ok(text), _) => Ok(text),
            (Err(_), Some(lossy)) => {
                *lossy = String::from_utf8_lossy(bytes).into_owned();
                Ok(lossy.as_str())
            }
            (Err(e), None) => Err(LineError::new(
                "invalid UTF-8",
                format!("invalid UTF-8 at byte {}", e.valid_up_to() + 1),
            )),
        };
        Ok(Some((self.line, text)))
    }
}

/// The next call of a JSON-lines source whose lines are objects turned into calls (or into
/// nothing, for lines that are not calls) by `record`; bad lines are reported to `cx`.
pub(crate) fn next_object_record(
    lines: &mut Lines,
    file: u32,
    cx: &mut Ctx<'_>,
    record: impl FnMut(
        &Map<String, Value>,
        Origin,
        &mut Ctx<'_>,
    ) -> Result<Option<CallRecord>, LineError>,
) -> Result<Option<CallRecord>, TraceError> {
    next_parsed_record(lines, file, cx, parse_object, record)
}

/// [`next_object_record`] for lines that `parse` makes objects of.
pub(crate) fn next_parsed_record(
    lines: &mut Lines,
    file: u32,
    cx: &mut Ctx<'_>,
    parse: impl Fn(&str) -> Result<Map<String, Value>, LineError>,
    mut record: impl FnMut(
        &Map<String, Value>,
        Origin,
        &mut Ctx<'_>,
    ) -> Result<Option<CallRecord>, LineError>,
) -> Result<Option<CallRecord>, TraceError> {
    while let Some((line, text)) = lines.next_line()? {
        let origin = Origin { file, line };
        let parsed = text
            .and_then(&parse)
            .and_then(|obj| record(&obj, origin, cx));
        match parsed {
            Ok(Some(rec)) => return Ok(Some(rec)),
            Ok(None) => {}
            Err(e) => cx.skip(line, e)?,
        }
    }
    Ok(None)
}

/// Parse one line as a JSON object.
pub(crate) fn parse_object(text: &str) -> Result<Map<String, Value>, LineError> {
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(other) => Err(LineError::new(
            "wrong type",
            format!("expected a JSON object, found {}", kind_of(&other)),
        )),
        Err(e) => Err(LineError::json(&e)),
    }
}

/// Typed access to an object's fields; `path` is the dotted prefix used in messages.
pub(crate) struct Fields<'a> {
    pub(crate) obj: &'a Map<String, Value>,
    pub(crate) path: &'a str,
}

impl<'a> Fields<'a> {
    pub(crate) fn new(obj: &'a Map<String, Value>, path: &'a str) -> Fields<'a> {
        Fields { obj, path }
    }

    pub(crate) fn name(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_string()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    /// The value, treating JSON `null` as absent.
    pub(crate) fn get(&self, key: &str) -> Option<&'a Value> {
        self.obj.get(key).filter(|v| !v.is_null())
    }

    pub(crate) fn opt_str(&self, key: &str) -> Result<Option<&'a str>, LineError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(v) => Err(LineError::wrong_type(&self.name(key), "a string", v)),
        }
    }

    pub(crate) fn opt_bool(&self, key: &str) -> Result<Option<bool>, LineError> {
        match self.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(v) => Err(LineError::wrong_type(&self.name(key), "a boolean", v)),
        }
    }

    pub(crate) fn req_str(&self, key: &str) -> Result<&'a str, LineError> {
        self.opt_str(key)?
            .ok_or_else(|| LineError::missing(&self.name(key)))
    }

    /// An id: a string, or a number kept in its JSON spelling.
    pub(crate) fn opt_id(&self, key: &str) -> Result<Option<String>, LineError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(Value::Number(n)) => Ok(Some(n.to_string())),
            Some(v) => Err(LineError::wrong_type(
                &self.name(key),
                "a string or a number",
                v,
            )),
        }
    }

    pub(crate) fn opt_f64(&self, key: &str) -> Result<Option<f64>, LineError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Number(n)) => Ok(n.as_f64()),
            Some(v) => Err(LineError::wrong_type(&self.name(key), "a number", v)),
        }
    }

    pub(crate) fn opt_object(
        &self,
        key: &str,
    ) -> Result<Option<&'a Map<String, Value>>, LineError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Object(m)) => Ok(Some(m)),
            Some(v) => Err(LineError::wrong_type(&self.name(key), "an object", v)),
        }
    }

    pub(crate) fn opt_string_list(&self, key: &str) -> Result<Option<Vec<String>>, LineError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| match v {
                    Value::String(s) => Ok(s.clone()),
                    other => Err(LineError::wrong_type(
                        &self.name(key),
                        "a list of strings",
                        other,
                    )),
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            Some(v) => Err(LineError::wrong_type(
                &self.name(key),
                "a list of strings",
                v,
            )),
        }
    }

    /// The first present key of `keys` parsed as a timestamp; missing is an error naming the first.
    pub(crate) fn req_ts(&self, keys: &[&str]) -> Result<Nanos, LineError> {
        for key in keys {
            if let Some(v) = self.get(key) {
                return parse_ts_value(v)
                    .map_err(|reason| LineError::at("bad timestamp", &self.name(key), reason));
            }
        }
        Err(LineError::missing(
            &self.name(keys.first().copied().unwrap_or("ts")),
        ))
    }
}

/// The server name used when a format does not say which server a call went to.
pub(crate) const UNKNOWN_SERVER: &str = "unknown";
