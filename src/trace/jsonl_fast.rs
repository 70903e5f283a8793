//! The fast path for mcpsim JSONL: line chunks parsed on worker threads, typed parsing.
//!
//! Large audit logs are mostly mcpsim JSONL, and reading them dominates a replay, so this reader
//! differs from [`super::jsonl::JsonlSource`] in two ways, never in what it yields:
//! - the calling thread cuts the stream into chunks of whole lines and worker threads parse them;
//!   results come back in chunk order, so records, line numbers and skipped lines are exactly
//!   those of the sequential reader. At most [`IN_FLIGHT`] chunks exist at once, so memory does
//!   not grow with the input.
//! - each line is first deserialised straight into a typed struct that borrows its strings
//!   (no intermediate `Value` tree); any line this cannot take as is (escaped strings, a
//!   `recorded` object, a wrong type, bad JSON…) goes through the sequential reader's own code,
//!   which also produces the error message, so errors cannot differ.
//!
//! It also serves the order check of [`super::Trace`] through [`Source::next_ts`], where lines
//! are checked without building records, or (outside `--strict`) not parsed at all when their
//! timestamp leads the line unambiguously.

use std::collections::VecDeque;
use std::io::{BufRead, ErrorKind, Read};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex};
use std::thread;

use serde::Deserialize;
use serde::de::{self, IgnoredAny, Visitor};
use serde_json::value::RawValue;
use serde_json::{Number, Value};

use super::format::UTF8_BOM;
use super::intern::Interner;
use super::jsonl::record_from_object;
use super::source::{Ctx, LineError, Source, UNKNOWN_SERVER, parse_object};
use super::time::{parse_ts_str, parse_ts_value};
use super::{Args, CallRecord, Nanos, Origin, RawArgs, TraceError, Upstream, raw_object_parses};
use crate::call::Skip;

/// Bytes per chunk handed to a worker (a chunk is extended to the end of its last line).
const CHUNK: usize = 1 << 20;
/// Chunks read but not yet consumed; bounds memory to a few tens of megabytes.
const IN_FLIGHT: usize = 6;

/// A line's outcome, in file order.
enum Item {
    Call(CallRecord),
    /// The timestamp of a call (or, in a lenient timestamps-only read, of a line that looks
    /// like one), when only timestamps were asked for.
    Ts(Nanos),
    Bad(u64, LineError),
}

/// What a worker sends back for one chunk.
type ChunkResult = (Vec<Item>, Vec<u8>);

struct Job {
    bytes: Vec<u8>,
    first_line: u64,
    ts_only: bool,
    superset: bool,
    reply: SyncSender<ChunkResult>,
}

/// mcpsim JSONL cut into chunks on the calling thread and parsed by a pool of workers.
pub(crate) struct ParallelJsonlSource {
    name: String,
    r: Box<dyn BufRead>,
    chunk: usize,
    carry: Vec<u8>,
    spare: Vec<Vec<u8>>,
    next_line: u64,
    eof: bool,
    jobs: Option<SyncSender<Job>>,
    ts_only: bool,
    superset: bool,
    pending: VecDeque<Receiver<ChunkResult>>,
    current: std::vec::IntoIter<Item>,
}

impl ParallelJsonlSource {
    /// Read `r` (the decoded stream of input number `file`, shown as `name`).
    pub(crate) fn new(r: Box<dyn BufRead>, name: &str, file: u32) -> ParallelJsonlSource {
        let workers = thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
            .clamp(1, 4);
        let (job_tx, job_rx) = sync_channel::<Job>(IN_FLIGHT);
        let job_rx = Arc::new(Mutex::new(job_rx));
        for _ in 0..workers {
            let jobs = Arc::clone(&job_rx);
            // A worker that cannot be started leaves the others (and at least the caller's
            // pending chunks) to fail loudly at the first reply, never silently.
            let _ = thread::Builder::new()
                .name("jsonl-parse".into())
                .spawn(move || {
                    super::priority::defer_to_replay();
                    worker(&jobs, file)
                });
        }
        ParallelJsonlSource {
            name: name.to_string(),
            r,
            chunk: CHUNK,
            carry: Vec::new(),
            spare: Vec::new(),
            next_line: 1,
            eof: false,
            jobs: Some(job_tx),
            ts_only: false,
            superset: false,
            pending: VecDeque::with_capacity(IN_FLIGHT),
            current: Vec::new().into_iter(),
        }
    }

    /// Smaller chunks, so tests cross chunk boundaries with little data.
    #[cfg(test)]
    fn with_chunk(mut self, bytes: usize) -> ParallelJsonlSource {
        self.chunk = bytes;
        self
    }

    fn io_error(&self, source: std::io::Error) -> TraceError {
        TraceError::Io {
            file: self.name.clone(),
            source,
        }
    }

    /// Read the next chunk of whole lines; `None` at the end of the stream.
    fn read_chunk(&mut self) -> Result<Option<Vec<u8>>, std::io::Error> {
        if self.eof {
            return Ok(None);
        }
        // Buffers come back from the workers: reusing them saves the page faults of fresh ones.
        let mut buf = self.spare.pop().unwrap_or_default();
        buf.clear();
        buf.extend_from_slice(&self.carry);
        self.carry.clear();
        // Fill to at least a chunk's size, then on until the chunk holds a newline. Reading
        // straight into the chunk (large reads bypass the reader's buffer) saves a copy.
        while buf.len() < self.chunk || memchr::memrchr(b'\n', &buf).is_none() {
            let len = buf.len();
            let want = self.chunk.saturating_sub(len).max(64 * 1024);
            buf.resize(len + want, 0);
            match self.r.read(&mut buf[len..]) {
                Ok(0) => {
                    buf.truncate(len);
                    self.eof = true;
                    break;
                }
                Ok(n) => buf.truncate(len + n),
                Err(e) if e.kind() == ErrorKind::Interrupted => buf.truncate(len),
                Err(e) => return Err(e),
            }
        }
        if !self.eof {
            if let Some(pos) = memchr::memrchr(b'\n', &buf) {
                self.carry.extend_from_slice(&buf[pos + 1..]);
                buf.truncate(pos + 1);
            }
        }
        Ok(if buf.is_empty() { None } else { Some(buf) })
    }

    /// Keep the workers busy: dispatch chunks until IN_FLIGHT are pending or the input ends.
    fn refill(&mut self) -> Result<(), TraceError> {
        while self.pending.len() < IN_FLIGHT {
            let Some(bytes) = self.read_chunk().map_err(|e| self.io_error(e))? else {
                self.jobs = None;
                return Ok(());
            };
            let lines = memchr::memchr_iter(b'\n', &bytes).count() as u64;
            let (reply, rx) = sync_channel(1);
            let job = Job {
                bytes,
                first_line: self.next_line,
                ts_only: self.ts_only,
                superset: self.superset,
                reply,
            };
            self.next_line += lines;
            let sent = self
                .jobs
                .as_ref()
                .is_some_and(|jobs| jobs.send(job).is_ok());
            if !sent {
                return Err(self.io_error(std::io::Error::other(
                    "the JSONL parsing workers stopped unexpectedly",
                )));
            }
            self.pending.push_back(rx);
        }
        Ok(())
    }
}

impl ParallelJsonlSource {
    /// The next item that is not a bad line (those are reported to `cx`).
    fn next_item(&mut self, cx: &mut Ctx<'_>) -> Result<Option<Item>, TraceError> {
        loop {
            for item in self.current.by_ref() {
                match item {
                    Item::Bad(line, e) => cx.skip(line, e)?,
                    other => return Ok(Some(other)),
                }
            }
            self.refill()?;
            let Some(pending) = self.pending.pop_front() else {
                return Ok(None);
            };
            match pending.recv() {
                Ok((items, bytes)) => {
                    self.current = items.into_iter();
                    self.spare.push(bytes);
                }
                Err(_) => {
                    return Err(self.io_error(std::io::Error::other(
                        "a JSONL parsing worker stopped unexpectedly",
                    )));
                }
            }
        }
    }
}

impl Source for ParallelJsonlSource {
    fn next(&mut self, cx: &mut Ctx<'_>) -> Result<Option<CallRecord>, TraceError> {
        match self.next_item(cx)? {
            None => Ok(None),
            Some(Item::Call(rec)) => Ok(Some(rec)),
            Some(_) => Err(self.io_error(std::io::Error::other(
                "records were asked for after a timestamps-only read",
            ))),
        }
    }

    fn next_ts(&mut self, cx: &mut Ctx<'_>) -> Result<Option<Nanos>, TraceError> {
        // Chunks dispatched from now on skip building records (and argument maps); outside
        // strict mode, lines in the usual shape are not even parsed (see `Source::next_ts`).
        self.ts_only = true;
        self.superset = !cx.strict;
        Ok(match self.next_item(cx)? {
            None => None,
            Some(Item::Call(rec)) => Some(rec.ts),
            Some(Item::Ts(ts)) => Some(ts),
            Some(Item::Bad(..)) => {
                return Err(self.io_error(std::io::Error::other("a bad line was not reported")));
            }
        })
    }
}

fn worker(jobs: &Mutex<Receiver<Job>>, file: u32) {
    let mut names = Interner::default();
    loop {
        let job = match jobs.lock() {
            Ok(rx) => rx.recv(),
            Err(_) => return,
        };
        let Ok(job) = job else { return };
        let want = match (job.ts_only, job.superset) {
            (false, _) => Want::Records,
            (true, false) => Want::Ts,
            (true, true) => Want::TsSuperset,
        };
        let items = parse_chunk(&job.bytes, job.first_line, file, want, &mut names);
        // The consumer may have stopped reading; then nobody needs the result.
        let _ = job.reply.send((items, job.bytes));
    }
}

/// What a worker makes of each line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Want {
    /// The record.
    Records,
    /// The timestamp of every line that is a valid record.
    Ts,
    /// Also the timestamps of lines that merely start like a record (see [`leading_ts`]).
    TsSuperset,
}

/// Whether `text` holds a `\uD…` escape (a UTF-16 surrogate, which must come in a valid pair).
fn maybe_surrogate_escape(text: &str) -> bool {
    memchr::memmem::find_iter(text.as_bytes(), b"\\u")
        .any(|i| matches!(text.as_bytes().get(i + 2), Some(b'd' | b'D')))
}

/// The timestamp of a line that starts `{"ts":"<RFC 3339 …Z>"`, holds no other `"ts"` and no
/// backslash (so no escaped second `ts` key either), without parsing the rest: if the line is a
/// valid record, this is its timestamp; if it is not, it is a timestamp the order check may
/// see anyway (see [`Source::next_ts`]).
fn leading_ts(text: &str) -> Option<Nanos> {
    let rest = text.strip_prefix("{\"ts\":\"")?.as_bytes();
    let end = memchr::memchr(b'"', rest)?;
    let after = &rest[end..];
    if memchr::memchr(b'\\', rest).is_some() || memchr::memmem::find(after, b"\"ts\"").is_some() {
        return None;
    }
    fast_rfc3339(std::str::from_utf8(&rest[..end]).ok()?)
}

/// Parse every non-blank line of a chunk, numbering lines from `first_line` the way the
/// sequential line splitter does.
fn parse_chunk(
    bytes: &[u8],
    first_line: u64,
    file: u32,
    want: Want,
    names: &mut Interner,
) -> Vec<Item> {
    let mut items = Vec::with_capacity(bytes.len() / 200 + 1);
    let mut line = first_line;
    let mut start = 0;
    while start < bytes.len() {
        let end = memchr::memchr(b'\n', &bytes[start..]).map_or(bytes.len(), |i| start + i);
        let mut stop = end;
        while stop > start && matches!(bytes[stop - 1], b'\n' | b'\r') {
            stop -= 1;
        }
        let mut text = &bytes[start..stop];
        if !text.iter().all(u8::is_ascii_whitespace) {
            if line == 1 && text.starts_with(UTF8_BOM) {
                text = &text[UTF8_BOM.len()..];
            }
            let origin = Origin { file, line };
            let item = match std::str::from_utf8(text) {
                Ok(s) if want != Want::Records => {
                    let quick = (want == Want::TsSuperset).then(|| leading_ts(s)).flatten();
                    match quick.or_else(|| fast_ts(s)) {
                        Some(ts) => Ok(Item::Ts(ts)),
                        None => parse_line(s, origin, names).map(|rec| Item::Ts(rec.ts)),
                    }
                }
                Ok(s) => parse_line(s, origin, names).map(Item::Call),
                Err(e) => Err(LineError::new(
                    "invalid UTF-8",
                    format!("invalid UTF-8 at byte {}", e.valid_up_to() + 1),
                )),
            };
            items.push(item.unwrap_or_else(|e| Item::Bad(line, e)));
        }
        line += 1;
        start = end + 1;
    }
    items
}

/// One line to a record: the typed fast path, else the sequential reader's code.
pub(crate) fn parse_line(
    text: &str,
    origin: Origin,
    names: &mut Interner,
) -> Result<CallRecord, LineError> {
    if let Some(rec) = fast_record(text, origin, names) {
        return Ok(rec);
    }
    parse_object(text).and_then(|obj| record_from_object(&obj, origin, names))
}

/// A call record line as the fast path reads it. Strings are borrowed, so a string holding an
/// escape sequence fails here and the line takes the general path.
///
/// `A` is how `args` is read: as the argument map, or only checked to be an object when just
/// the timestamp is wanted (the line is valid under exactly the same conditions).
#[derive(Deserialize)]
struct FastLine<'a, A> {
    #[serde(borrow)]
    ts: Option<Ts<'a>>,
    #[serde(borrow)]
    server: Option<&'a str>,
    #[serde(borrow)]
    grant: Option<&'a str>,
    #[serde(borrow)]
    session: Option<&'a str>,
    #[serde(borrow)]
    tool: Option<&'a str>,
    args: Option<A>,
    arg_keys: Option<Vec<String>>,
    id: Option<Id>,
    recorded: Option<IgnoredAny>,
    #[serde(borrow)]
    upstream: Option<&'a str>,
    latency_ms: Option<f64>,
}

/// The timestamp and upstream outcome of a line the fast path accepts; `None` sends the line
/// to the general path.
fn check<A>(line: &FastLine<'_, A>) -> Option<(Nanos, Option<Upstream>)> {
    // Recorded decisions need normalising and validating: the general path does that.
    if line.recorded.is_some() || line.tool.is_none() {
        return None;
    }
    let ts = match line.ts.as_ref()? {
        Ts::Str(s) => fast_rfc3339(s).or_else(|| parse_ts_str(s).ok())?,
        Ts::Num(n) => parse_ts_value(&Value::Number(n.clone())).ok()?,
    };
    let upstream = match line.upstream {
        None => None,
        Some(s) => Some(Upstream::parse(s)?),
    };
    Some((ts, upstream))
}

fn fast_record(text: &str, origin: Origin, names: &mut Interner) -> Option<CallRecord> {
    // Skipping unknown values accepts a few things building a map rejects: numbers out of
    // range and lone surrogate escapes. Lines that might hold either take the general path.
    if !raw_object_parses(text) || maybe_surrogate_escape(text) {
        return None;
    }
    let line: FastLine<'_, &RawValue> = serde_json::from_str(text).ok()?;
    let (ts, upstream) = check(&line)?;
    let tool = names.get(line.tool?);
    let args = match (line.args, line.arg_keys) {
        (Some(raw), _) if raw_object_parses(raw.get()) => Args::Raw(RawArgs::new(raw.get())),
        // Not an object, or numbers the shortcut cannot vouch for: the map decides (and a
        // failure sends the line to the general path, which words the error).
        (Some(raw), _) => Args::Values(serde_json::from_str(raw.get()).ok()?),
        (None, Some(keys)) => Args::Keys(keys),
        (None, None) => Args::Unrecorded,
    };
    Some(CallRecord {
        ts,
        server: names.get(line.server.unwrap_or(UNKNOWN_SERVER)),
        grant: line.grant.map(|s| names.get(s)),
        session: line.session.map(|s| names.get(s)),
        tool,
        args,
        id: line.id.map(|Id(s)| s),
        recorded: None,
        upstream,
        latency_ms: line.latency_ms,
        origin,
    })
}

/// The timestamp of a line the fast path accepts, without building the record.
fn fast_ts(text: &str) -> Option<Nanos> {
    let line: FastLine<'_, AnyObject> = serde_json::from_str(text).ok()?;
    check(&line).map(|(ts, _)| ts)
}

/// Any JSON object, checked and skipped. It walks nested values through `deserialize_any`
/// like `Value` does, so the parser's nesting limit applies exactly as when building the map.
pub(crate) struct AnyObject;

impl<'de> Deserialize<'de> for AnyObject {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = AnyObject;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<M: de::MapAccess<'de>>(self, map: M) -> Result<AnyObject, M::Error> {
                Skip.visit_map(map).map(|_| AnyObject)
            }
        }
        d.deserialize_any(V)
    }
}

/// A `ts` value: a borrowed string or a number.
enum Ts<'a> {
    Str(&'a str),
    Num(Number),
}

impl<'de: 'a, 'a> Deserialize<'de> for Ts<'a> {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Ts<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a timestamp")
            }
            fn visit_borrowed_str<E: de::Error>(self, s: &'de str) -> Result<Ts<'a>, E> {
                Ok(Ts::Str(s))
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<Ts<'a>, E> {
                Ok(Ts::Num(Number::from(n)))
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<Ts<'a>, E> {
                Ok(Ts::Num(Number::from(n)))
            }
            fn visit_f64<E: de::Error>(self, n: f64) -> Result<Ts<'a>, E> {
                Number::from_f64(n)
                    .map(Ts::Num)
                    .ok_or_else(|| E::custom("not a finite number"))
            }
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }
}

/// A request id: a string, or a number kept in its JSON spelling (as `serde_json` prints it).
struct Id(String);

impl<'de> Deserialize<'de> for Id {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Id;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string or a number")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Id, E> {
                Ok(Id(s.to_string()))
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<Id, E> {
                Ok(Id(Number::from(n).to_string()))
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<Id, E> {
                Ok(Id(Number::from(n).to_string()))
            }
            fn visit_f64<E: de::Error>(self, n: f64) -> Result<Id, E> {
                Number::from_f64(n)
                    .map(|n| Id(n.to_string()))
                    .ok_or_else(|| E::custom("not a finite number"))
            }
        }
        d.deserialize_any(V)
    }
}

/// `YYYY-MM-DDTHH:MM:SS[.fraction]Z`, the shape mcpsim and most gateways write, parsed without
/// chrono. Anything else (offsets, lower-case separators, leap seconds…) returns `None` and is
/// left to the general parser, so results never differ from it.
pub(crate) fn fast_rfc3339(s: &str) -> Option<Nanos> {
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' {
        return None;
    }
    if b[16] != b':' || *b.last()? != b'Z' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        let mut v = 0u32;
        for &c in &b[r] {
            if !c.is_ascii_digit() {
                return None;
            }
            v = v * 10 + u32::from(c - b'0');
        }
        Some(v)
    };
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month) || hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let days_in_month = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    if day == 0 || day > days_in_month[month as usize - 1] {
        return None;
    }
    let frac = &b[19..b.len() - 1];
    let nanos = match frac {
        [] => 0,
        [b'.', digits @ ..] if (1..=9).contains(&digits.len()) => {
            let mut v = 0u32;
            for &c in digits {
                if !c.is_ascii_digit() {
                    return None;
                }
                v = v * 10 + u32::from(c - b'0');
            }
            v * 10u32.pow(9 - digits.len() as u32)
        }
        _ => return None,
    };
    let days = days_from_civil(i64::from(year), month, day);
    let secs = days * 86_400 + i64::from(hour * 3600 + minute * 60 + second);
    secs.checked_mul(1_000_000_000)?
        .checked_add(i64::from(nanos))
}

/// (year, month, day) → days since 1970-01-01 (H. Hinnant's `days_from_civil`).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = i64::from((m + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::io::Cursor;

    use crate::generate::{GenConfig, Generator};
    use crate::trace::ReadStats;
    use crate::trace::jsonl::JsonlSource;
    use crate::trace::source::Lines;

    type Drained = (Vec<CallRecord>, ReadStats);

    fn drain(src: &mut dyn Source) -> Drained {
        let mut stats = ReadStats::default();
        let mut out = Vec::new();
        let mut cx = Ctx {
            stats: &mut stats,
            strict: false,
            file: "t.jsonl",
        };
        while let Some(rec) = src.next(&mut cx).expect("no I/O error") {
            out.push(rec);
        }
        (out, stats)
    }

    fn both(text: &[u8], chunk: usize) -> (Drained, Drained) {
        let seq = drain(&mut JsonlSource::new(
            Lines::new(Box::new(Cursor::new(text.to_vec())), "t.jsonl"),
            3,
        ));
        let par = drain(
            &mut ParallelJsonlSource::new(Box::new(Cursor::new(text.to_vec())), "t.jsonl", 3)
                .with_chunk(chunk),
        );
        (seq, par)
    }

    /// Lines the fast path must hand to the general one, and lines that are bad.
    const ODD_LINES: [&str; 22] = [
        r#"{"ts":"2026-08-01T10:00:00+02:00","tool":"t\u0041","server":"s"}"#,
        r#"{"ts":1785578400,"tool":"t","grant":"g","id":7,"latency_ms":3}"#,
        r#"{"ts":1785578400.5,"tool":"t","id":7.5,"args":null,"arg_keys":["a","b"]}"#,
        r#"{"ts":"2026-08-01T10:00:00Z","tool":"t","recorded":{"decision":"denied","rule":"r"}}"#,
        r#"{"ts":"2026-08-01T10:00:00Z","tool":"t","upstream":"nope"}"#,
        r#"{"ts":"2026-08-01T10:00:00Z"}"#,
        r#"{"tool":"t"}"#,
        r#"{"ts":"yesterday","tool":"t"}"#,
        r#"{"ts":"2026-08-01T10:00:00Z","tool":5}"#,
        r#"{"ts":"2026-08-01T10:00:00Z","tool":"t","tool":"u"}"#,
        r#"{"ts":"2026-08-01T10:00:00Z","tool":"t","args":[1]}"#,
        r#"{"ts":"2026-08-01T10:00:00Z","tool":"t","id":true}"#,
        r#"[1,2]"#,
        r#"{"ts":"2026-08-01T10:00:00Z","tool":"t""#,
        "   ",
        r#"{"ts":"2026-08-01T10:00:00.123456789Z","tool":"t","session":null,"extra":{"x":[1,{"y":2}]}}"#,
        // Arguments kept as raw text must read as the map the sequential reader builds.
        r#"{"ts":"2026-08-01T10:00:00Z","tool":"t","args":{ "a" : "x\"}" , "b":[1,{"c":null}] }}"#,
        r#"{"ts":"2026-08-01T10:00:00Z","tool":"t","args":{"n":1.5e3,"m":-0.25}}"#,
        r#"{"ts":"2026-08-01T10:00:00Z","tool":"t","args":{"n":1e400}}"#,
        r#"{"ts":"2026-08-01T10:00:00Z","tool":"t","args":"{}"}"#,
        r#"{"ts":"2026-08-01T10:00:00Z","tool":"t","args":{"a":1,"a":2}}"#,
        r#"{"ts":"2026-08-01T10:00:00Z","tool":"t","args":{},"arg_keys":["z"]}"#,
    ];

    #[test]
    fn usual_arguments_are_kept_as_raw_text() {
        let line = r#"{"ts":"2026-08-01T10:00:00Z","tool":"t","args":{"b":{"c":[1,2]},"a":"x"}}"#;
        let rec = parse_line(line, Origin::default(), &mut Interner::default());
        let args = rec.map(|r| r.args);
        let Ok(Args::Raw(raw)) = &args else {
            panic!("expected raw arguments, got {args:?}");
        };
        assert_eq!(raw.text(), r#"{"b":{"c":[1,2]},"a":"x"}"#);
        let want: Value = serde_json::json!({"a": "x", "b": {"c": [1, 2]}});
        assert_eq!(raw.map(), want.as_object());
        // Exponents are left to the map parse, which rejects out-of-range numbers.
        let line = r#"{"ts":"2026-08-01T10:00:00Z","tool":"t","args":{"n":2E2}}"#;
        let rec = parse_line(line, Origin::default(), &mut Interner::default());
        assert!(matches!(rec.map(|r| r.args), Ok(Args::Values(_))));
    }

    #[test]
    fn values_a_map_rejects_are_rejected_in_skipped_fields_too() {
        let lines = [
            r#"{"ts":"2026-08-01T10:00:00Z","tool":"t","extra":1e400}"#,
            r#"{"ts":"2026-08-01T10:00:00Z","tool":"t","x":"\ud83d"}"#,
            r#"{"ts":"2026-08-01T10:00:00Z","tool":"t","args":{"e":"\ud83d"}}"#,
            r#"{"ts":"2026-08-01T10:00:00Z","tool":"t","x":"\ud83d\ude00"}"#,
            r#"{"ts":"2026-08-01T10:00:00Z","tool":"t","extra":1.5e3}"#,
        ];
        let text = lines.join("\n");
        let (seq, par) = both(text.as_bytes(), 4096);
        assert_eq!(seq.1.skipped, 3);
        assert_eq!(seq.0, par.0);
        assert_same_skips(&seq.1, &par.1);
    }

    #[test]
    fn parallel_reader_yields_what_the_sequential_reader_yields() {
        let mixed = mixed_text();
        for chunk in [1, 64, 4096, CHUNK] {
            let (seq, par) = both(&mixed, chunk);
            assert_eq!(seq.1.skipped, 6, "chunk {chunk}");
            assert_eq!(seq.0.len(), par.0.len(), "chunk {chunk}");
            for (a, b) in seq.0.iter().zip(&par.0) {
                assert_eq!(a, b, "chunk {chunk}");
            }
            assert_same_skips(&seq.1, &par.1);
        }
    }

    fn assert_same_skips(a: &ReadStats, b: &ReadStats) {
        assert_eq!(a.skipped, b.skipped);
        assert_eq!(a.skipped_by_reason, b.skipped_by_reason);
        let lines = |s: &ReadStats| -> Vec<(u64, String)> {
            s.skipped_examples
                .iter()
                .map(|e| (e.line, e.reason.clone()))
                .collect()
        };
        assert_eq!(lines(a), lines(b));
    }

    /// Timestamps of `text` read with `next` for `switch_after` calls, then with `next_ts`.
    fn ts_read(text: &[u8], switch_after: usize, strict: bool) -> (Vec<Nanos>, ReadStats) {
        let mut src = ParallelJsonlSource::new(Box::new(Cursor::new(text.to_vec())), "t.jsonl", 3)
            .with_chunk(4096);
        let mut stats = ReadStats::default();
        let mut cx = Ctx {
            stats: &mut stats,
            strict,
            file: "t.jsonl",
        };
        let mut ts = Vec::new();
        while ts.len() < switch_after {
            match src.next(&mut cx).expect("no I/O error") {
                Some(rec) => ts.push(rec.ts),
                None => break,
            }
        }
        while let Some(t) = src.next_ts(&mut cx).expect("no I/O error") {
            ts.push(t);
        }
        (ts, stats)
    }

    #[test]
    fn strict_timestamps_only_reads_see_exactly_the_calls() {
        let mut text = Vec::new();
        let cfg = GenConfig {
            calls: 3_000,
            ..GenConfig::default()
        };
        let written = Generator::new(&cfg)
            .and_then(|g| g.write_jsonl(&mut text))
            .map_err(|e| e.to_string());
        assert_eq!(written, Ok(3_000));
        let (seq, _) = both(&text, 64);
        let expected: Vec<Nanos> = seq.0.iter().map(|r| r.ts).collect();
        for switch_after in [0, 1, 500, 2_999] {
            let (ts, stats) = ts_read(&text, switch_after, true);
            assert_eq!(ts, expected, "switch after {switch_after}");
            assert_eq!(stats.skipped, 0);
        }
    }

    #[test]
    fn lenient_timestamps_only_reads_see_every_call_and_maybe_more() {
        let mixed = mixed_text();
        let (seq, _) = both(&mixed, 64);
        let lines = mixed.split(|&b| b == b'\n').count();
        for switch_after in [0, 1, 500, 2_999] {
            let (ts, _) = ts_read(&mixed, switch_after, false);
            // Every call's timestamp, in order, possibly with others in between.
            let mut rest = ts.iter();
            for rec in &seq.0 {
                assert!(rest.any(|&t| t == rec.ts), "switch after {switch_after}");
            }
            assert!(ts.len() <= lines);
        }
    }

    #[test]
    fn leading_timestamps_are_taken_only_when_unambiguous() {
        let ts = fast_rfc3339("2026-08-01T10:00:00Z");
        assert!(ts.is_some());
        assert_eq!(
            leading_ts(r#"{"ts":"2026-08-01T10:00:00Z","tool":"t"}"#),
            ts
        );
        // A second `ts` key (plain or escaped) would win in a JSON parser: not taken.
        assert_eq!(
            leading_ts(r#"{"ts":"2026-08-01T10:00:00Z","ts":"2020-01-01T00:00:00Z"}"#),
            None
        );
        assert_eq!(
            leading_ts(r#"{"ts":"2026-08-01T10:00:00Z","t\u0073":"2020-01-01T00:00:00Z"}"#),
            None
        );
        assert_eq!(leading_ts(r#"{ "ts":"2026-08-01T10:00:00Z"}"#), None);
        assert_eq!(leading_ts(r#"{"ts":"2026-08-01T12:00:00+02:00"}"#), None);
    }

    fn mixed_text() -> Vec<u8> {
        let cfg = GenConfig {
            calls: 3_000,
            grants: 7,
            ..GenConfig::default()
        };
        let mut text = Vec::new();
        text.extend_from_slice(UTF8_BOM);
        let generated = Generator::new(&cfg)
            .and_then(|g| g.write_jsonl(&mut text))
            .map_err(|e| e.to_string());
        assert_eq!(generated, Ok(3_000));
        // Sprinkle odd lines, CRLF endings and invalid UTF-8 between generated ones.
        let mut mixed = Vec::new();
        for (i, line) in text.split(|&b| b == b'\n').enumerate() {
            mixed.extend_from_slice(line);
            mixed.extend_from_slice(if i % 7 == 0 { b"\r\n" } else { b"\n" });
            if i % 300 == 5 {
                mixed.extend_from_slice(ODD_LINES[(i / 300) % ODD_LINES.len()].as_bytes());
                mixed.push(b'\n');
            }
            if i == 1_000 {
                mixed.extend_from_slice(b"{\"ts\":\"\xff\"}\n\n");
            }
        }
        mixed.extend_from_slice(ODD_LINES[1].as_bytes()); // no final newline
        mixed
    }

    #[test]
    fn every_odd_line_reads_the_same_both_ways() {
        for line in ODD_LINES {
            let (seq, par) = both(line.as_bytes(), 8);
            assert_eq!(seq.0, par.0, "{line}");
            assert_eq!(
                seq.1.skipped_examples.len(),
                par.1.skipped_examples.len(),
                "{line}"
            );
            for (a, b) in seq.1.skipped_examples.iter().zip(&par.1.skipped_examples) {
                assert_eq!((a.line, &a.reason), (b.line, &b.reason), "{line}");
            }
        }
    }

    #[test]
    fn empty_input_has_no_calls() {
        let (seq, par) = both(b"", 16);
        assert!(seq.0.is_empty() && par.0.is_empty());
        assert_eq!(par.1.skipped, 0);
    }

    #[test]
    fn fast_timestamps_agree_with_the_general_parser() {
        for s in [
            "2026-08-01T10:00:00.120Z",
            "2026-08-01T10:00:00Z",
            "2026-08-01T10:00:00.000000001Z",
            "2024-02-29T23:59:59.999999999Z",
            "1970-01-01T00:00:00Z",
            "1969-12-31T23:59:59.5Z",
            "2000-03-01T00:00:00.1Z",
        ] {
            assert_eq!(fast_rfc3339(s), parse_ts_str(s).ok(), "{s}");
        }
    }

    #[test]
    fn unusual_timestamps_are_left_to_the_general_parser() {
        for s in [
            "2026-08-01T10:00:00+02:00",
            "2026-08-01t10:00:00z",
            "2025-02-29T00:00:00Z",
            "2026-08-01T10:00:60Z",
            "2026-08-01T10:00:00.Z",
            "2026-08-01T10:00:00.1234567890Z",
            " 2026-08-01T10:00:00Z",
        ] {
            assert_eq!(fast_rfc3339(s), None, "{s}");
        }
    }
}
