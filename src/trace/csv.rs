//! mcpsim call records as CSV (header row first), parsed by polars in batches.
//!
//! The file is cut into records here (a newline inside double quotes does not end a record), so
//! each row keeps its exact line number and a malformed row costs only itself: when polars
//! rejects a batch, its rows are parsed one by one and the bad ones are skipped. Cutting and
//! parsing run on a thread of their own ([`Parser`]), a batch ahead of the records made from
//! them; bad records are reported in file order.

use std::collections::VecDeque;
use std::io::{BufRead, Cursor, Read};

use polars::prelude::*;

use super::ahead::Ahead;
use super::format::UTF8_BOM;
use super::intern::Interner;
use super::source::{Ctx, LineError, MAX_LINE_BYTES, Source, line_too_long};
use super::table::{BATCH_ROWS, Batch};
use super::{CallRecord, Origin, TraceError};

pub(crate) struct CsvSource {
    parsed: Ahead<Parsed>,
    file: u32,
    names: Interner,
    ready: VecDeque<CallRecord>,
    done: bool,
}

/// What the parser thread makes of up to [`BATCH_ROWS`] records, in file order.
struct Parsed {
    /// Records that are not UTF-8, by line.
    not_utf8: Vec<(u64, LineError)>,
    rows: Rows,
}

enum Rows {
    /// Every record, parsed as one table: the lines of its rows.
    Whole(Box<Batch>, Vec<u64>),
    /// Records parsed one at a time (polars rejected the batch): each line's table of one row,
    /// or why it is malformed.
    OneByOne(Vec<(u64, Result<Batch, LineError>)>),
}

impl CsvSource {
    /// Read CSV from `r`: a thread of its own cuts and parses the records, one batch ahead of
    /// the records made from them.
    pub(crate) fn new(r: Box<dyn BufRead + Send>, name: &str, file: u32) -> CsvSource {
        let mut parser = Parser {
            r,
            name: name.to_string(),
            header: None,
            line: 0,
        };
        CsvSource {
            parsed: Ahead::start("csv-parse", name, 1, move || parser.next()),
            file,
            names: Interner::default(),
            ready: VecDeque::new(),
            done: false,
        }
    }

    /// The records of `batch` (on `lines`) into `ready`, and the bad ones to `cx`, with those
    /// of `not_utf8` before them in file order.
    fn take(
        &mut self,
        batch: &Batch,
        lines: &[u64],
        not_utf8: &mut std::iter::Peekable<std::vec::IntoIter<(u64, LineError)>>,
        cx: &mut Ctx<'_>,
    ) -> Result<(), TraceError> {
        for (i, line) in lines.iter().enumerate() {
            while let Some((at, e)) = not_utf8.next_if(|(at, _)| at < line) {
                cx.skip(at, e)?;
            }
            let origin = Origin {
                file: self.file,
                line: *line,
            };
            match batch.record(i, origin, &mut self.names) {
                Ok(rec) => self.ready.push_back(rec),
                Err(e) => cx.skip(*line, e)?,
            }
        }
        Ok(())
    }

    fn fill(&mut self, cx: &mut Ctx<'_>) -> Result<(), TraceError> {
        let Some(parsed) = self.parsed.next()? else {
            self.done = true;
            return Ok(());
        };
        let mut not_utf8 = parsed.not_utf8.into_iter().peekable();
        match parsed.rows {
            Rows::Whole(batch, lines) => self.take(&batch, &lines, &mut not_utf8, cx)?,
            Rows::OneByOne(rows) => {
                for (line, row) in rows {
                    match row {
                        Ok(batch) => self.take(&batch, &[line], &mut not_utf8, cx)?,
                        Err(e) => {
                            while let Some((at, e)) = not_utf8.next_if(|(at, _)| *at < line) {
                                cx.skip(at, e)?;
                            }
                            cx.skip(line, e)?
                        }
                    }
                }
            }
        }
        for (at, e) in not_utf8 {
            cx.skip(at, e)?;
        }
        Ok(())
    }
}

/// The records of a CSV input, cut and parsed by polars [`BATCH_ROWS`] at a time.
struct Parser {
    r: Box<dyn BufRead + Send>,
    name: String,
    header: Option<Vec<u8>>,
    line: u64,
}

impl Parser {
    /// The next CSV record (possibly several physical lines) and the line it starts on.
    fn read_record(&mut self) -> Result<Option<(u64, Vec<u8>)>, TraceError> {
        let mut rec = Vec::new();
        let mut start = 0;
        let mut quotes = 0usize;
        loop {
            let before = rec.len();
            // A quoted field may span lines: the record as a whole is held to the limit.
            if before > MAX_LINE_BYTES {
                return Err(line_too_long(&self.name, start));
            }
            let n = (&mut self.r)
                .take(MAX_LINE_BYTES as u64 + 1)
                .read_until(b'\n', &mut rec)
                .map_err(|source| TraceError::Io {
                    file: self.name.clone(),
                    source,
                })?;
            if n == 0 {
                return Ok(if rec.iter().all(u8::is_ascii_whitespace) {
                    None
                } else {
                    Some((start, trim_eol(rec)))
                });
            }
            self.line += 1;
            if before == 0 {
                start = self.line;
            }
            if n > MAX_LINE_BYTES && rec.last() != Some(&b'\n') {
                return Err(line_too_long(&self.name, start));
            }
            quotes += memchr::memchr_iter(b'"', &rec[before..]).count();
            if quotes % 2 == 0 {
                if rec.iter().all(u8::is_ascii_whitespace) {
                    rec.clear();
                    continue;
                }
                return Ok(Some((start, trim_eol(rec))));
            }
        }
    }

    /// The next batch of records, parsed; `None` at the end of the input.
    fn next(&mut self) -> Result<Option<Parsed>, TraceError> {
        if self.header.is_none() {
            match self.read_record()? {
                None => return Ok(None),
                Some((_, h)) => {
                    let h = h.strip_prefix(UTF8_BOM).map(<[u8]>::to_vec).unwrap_or(h);
                    self.header = Some(h);
                }
            }
        }
        let mut rows: Vec<(u64, Vec<u8>)> = Vec::new();
        let mut not_utf8 = Vec::new();
        while rows.len() < BATCH_ROWS {
            let Some((line, bytes)) = self.read_record()? else {
                break;
            };
            if let Err(e) = std::str::from_utf8(&bytes) {
                let err = LineError::new(
                    "invalid UTF-8",
                    format!("invalid UTF-8 at byte {}", e.valid_up_to() + 1),
                );
                not_utf8.push((line, err));
                continue;
            }
            rows.push((line, bytes));
        }
        if rows.is_empty() {
            // The end of the input, perhaps after records that are not UTF-8.
            return Ok((!not_utf8.is_empty()).then(|| Parsed {
                not_utf8,
                rows: Rows::OneByOne(Vec::new()),
            }));
        }
        let rows = match self.parse(rows.iter().map(|(_, b)| b.as_slice())) {
            Ok(batch) if batch.height() == rows.len() => Rows::Whole(
                Box::new(batch),
                rows.iter().map(|(line, _)| *line).collect(),
            ),
            // Find the rows polars rejects by parsing them one at a time.
            _ => Rows::OneByOne(
                (rows.iter())
                    .map(|(line, bytes)| (*line, self.parse_one(bytes)))
                    .collect(),
            ),
        };
        Ok(Some(Parsed { not_utf8, rows }))
    }

    /// One record as a table of one row, or why polars rejects it.
    fn parse_one(&self, bytes: &[u8]) -> Result<Batch, LineError> {
        match self.parse(std::iter::once(bytes)) {
            Ok(batch) if batch.height() == 1 => Ok(batch),
            Ok(_) => Err(LineError::new("malformed CSV row", "malformed CSV row")),
            Err(e) => Err(LineError::new(
                "malformed CSV row",
                // polars appends advice about its own options; keep the finding.
                format!(
                    "malformed CSV row: {}",
                    e.to_string().lines().next().unwrap_or_default()
                ),
            )),
        }
    }

    fn parse<'a>(&self, rows: impl Iterator<Item = &'a [u8]>) -> PolarsResult<Batch> {
        let mut buf = self.header.clone().unwrap_or_default();
        buf.push(b'\n');
        for r in rows {
            buf.extend_from_slice(r);
            buf.push(b'\n');
        }
        let df = CsvReadOptions::default()
            .with_has_header(true)
            .with_infer_schema_length(Some(0))
            .into_reader_with_file_handle(Cursor::new(buf))
            .finish()?;
        Batch::new(&df)
    }
}

fn trim_eol(mut v: Vec<u8>) -> Vec<u8> {
    while matches!(v.last(), Some(b'\n' | b'\r')) {
        v.pop();
    }
    v
}

impl Source for CsvSource {
    fn next(&mut self, cx: &mut Ctx<'_>) -> Result<Option<CallRecord>, TraceError> {
        loop {
            if let Some(rec) = self.ready.pop_front() {
                return Ok(Some(rec));
            }
            if self.done {
                return Ok(None);
            }
            self.fill(cx)?;
        }
    }
}
