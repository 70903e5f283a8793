//! mcpsim call records as CSV (header row first), parsed by polars in batches.
//!
//! The file is cut into records here (a newline inside double quotes does not end a record), so
//! each row keeps its exact line number and a malformed row costs only itself: when polars
//! rejects a batch, its rows are parsed one by one and the bad ones are skipped. Cutting and
//! parsing run on a thread of their own, a batch ahead of the replay. Each row is then checked
//! as the table reader reads it ([`Batch::row`]) and goes into the batch's columns without a
//! record being built; the tables stay behind the batch for what its columns leave out. Bad
//! records are listed in file order.

use std::io::{BufRead, Cursor, Read};
use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use polars::prelude::*;

use super::ahead::Ahead;
use super::batch::{BatchRows, BatchSource, CallBatch, Columns, LocalSymbols, Memos, RowRest};
use super::format::UTF8_BOM;
use super::intern::Interner;
use super::source::{LineError, MAX_LINE_BYTES, line_too_long};
use super::table::{BATCH_BYTES, BATCH_ROWS, Batch};
use super::{Args, CallRecord, Origin, TraceError};

pub(crate) struct CsvSource {
    made: Ahead<CallBatch>,
    /// Whether sessions are wanted (see [`BatchSource::skip_sessions`]); read by the thread
    /// that makes the batches.
    sessions: Arc<AtomicBool>,
}

/// What the parser makes of up to [`BATCH_ROWS`] records (fewer once they hold
/// [`BATCH_BYTES`]), in file order.
struct Parsed {
    /// Bytes of the records' text.
    bytes: usize,
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
    /// the replay.
    pub(crate) fn new(
        r: Box<dyn BufRead + Send>,
        name: &str,
        file: u32,
        symbols: LocalSymbols,
    ) -> CsvSource {
        let mut parser = Parser {
            r,
            name: name.to_string(),
            header: None,
            line: 0,
            text: Vec::new(),
        };
        // Each stage makes its next batch while the one after works on the last: a queue
        // between them holds more tables in memory and does not make the replay faster.
        let mut parsed = Ahead::start("csv-parse", name, 0, move || parser.next());
        let mut symbols = symbols;
        let sessions = Arc::new(AtomicBool::new(true));
        let wanted = Arc::clone(&sessions);
        let make = move || -> Result<Option<CallBatch>, TraceError> {
            let sessions = wanted.load(Ordering::Relaxed);
            Ok(parsed
                .next()?
                .map(|p| calls(p, file, &mut symbols, sessions)))
        };
        CsvSource {
            made: Ahead::start("csv-check", name, 0, make),
            sessions,
        }
    }
}

impl BatchSource for CsvSource {
    fn next_batch(&mut self) -> Result<Option<CallBatch>, TraceError> {
        self.made.next()
    }

    fn skip_sessions(&mut self) {
        self.sessions.store(false, Ordering::Relaxed);
    }
}

/// A record's line, and its table and row there or why it is malformed.
type Place = (u64, Result<(u32, u32), LineError>);

/// The calls of parsed records as a batch: each row checked, its names interned (its session
/// kept as text, only when `sessions`); the bad ones listed with the records that are not
/// UTF-8, in file order.
fn calls(parsed: Parsed, file: u32, symbols: &mut LocalSymbols, sessions: bool) -> CallBatch {
    let mut tables = Vec::new();
    let places: Vec<Place> = match parsed.rows {
        Rows::Whole(batch, lines) => {
            tables.push(*batch);
            (lines.into_iter().zip(0..))
                .map(|(line, row)| (line, Ok((0, row))))
                .collect()
        }
        Rows::OneByOne(rows) => (rows.into_iter())
            .map(|(line, one)| {
                let place = one.map(|table| {
                    tables.push(table);
                    (tables.len() as u32 - 1, 0)
                });
                (line, place)
            })
            .collect(),
    };
    let n = places.len();
    let mut cols = Columns::with_capacity(n);
    let mut skipped = Vec::new();
    let mut at = Vec::with_capacity(n);
    let mut not_utf8 = parsed.not_utf8.into_iter().peekable();
    let mut memo = Memos::default();
    for (line, place) in places {
        while let Some(bad) = not_utf8.next_if(|(at, _)| *at < line) {
            skipped.push(bad);
        }
        let row = place.and_then(|(t, r)| Ok((t, r, tables[t as usize].row(r as usize)?)));
        match row {
            Ok((t, r, row)) => {
                let ids = memo.ids([Some(row.server), row.grant], row.tool, symbols);
                let session = row.session.filter(|_| sessions);
                cols.push(row.ts, line, ids, session, row.upstream, row.decision);
                at.push((t, r));
            }
            Err(e) => skipped.push((line, e)),
        }
    }
    skipped.extend(not_utf8);
    let rows = Tables {
        bytes: parsed.bytes,
        file,
        sessions,
        lines: cols.line.clone(),
        at,
        tables,
    };
    cols.into_batch(file, skipped, Vec::new(), Box::new(rows))
}

/// What a batch of CSV rows leaves out of its columns, read from its tables on demand.
struct Tables {
    /// Bytes of the records' text.
    bytes: usize,
    file: u32,
    /// Whether the session column holds the rows' sessions (not left out).
    sessions: bool,
    /// Each call's line.
    lines: Vec<u64>,
    /// Each call's table and row there.
    at: Vec<(u32, u32)>,
    tables: Vec<Batch>,
}

impl Tables {
    fn cell(&self, row: usize) -> (&Batch, usize) {
        let (t, r) = self.at[row];
        (&self.tables[t as usize], r as usize)
    }
}

impl BatchRows for Tables {
    fn bytes(&self) -> usize {
        self.bytes
    }

    fn args(&self, row: usize) -> Args {
        let (t, r) = self.cell(row);
        t.args(r).unwrap_or_default()
    }

    fn record(&self, row: usize) -> CallRecord {
        let (t, r) = self.cell(row);
        let origin = Origin {
            file: self.file,
            line: self.lines[row],
        };
        // The row was checked good when the batch was made: this is the record it holds.
        t.record(r, origin, &mut Interner::default())
            .unwrap_or_else(|_| CallRecord::bare(origin))
    }

    fn id(&self, row: usize) -> Option<String> {
        let (t, r) = self.cell(row);
        t.id(r)
    }

    fn latency(&self, row: usize) -> Option<f64> {
        let (t, r) = self.cell(row);
        t.latency(r).ok().flatten()
    }

    fn rest(&self, row: usize) -> Option<RowRest> {
        let (t, r) = self.cell(row);
        // The record's `recorded` is not in the columns but for its decision.
        (self.sessions && !t.has_recorded(r)).then(|| RowRest {
            args: self.args(row),
            id: self.id(row),
            latency_ms: self.latency(row),
        })
    }
}

/// The records of a CSV input, cut and parsed by polars [`BATCH_ROWS`] at a time.
struct Parser {
    r: Box<dyn BufRead + Send>,
    name: String,
    header: Option<Vec<u8>>,
    line: u64,
    /// The text of the batch being parsed, kept to be filled again.
    text: Vec<u8>,
}

impl Parser {
    /// The next CSV record (possibly several physical lines), appended to `buf` without its
    /// line end; the line it starts on and where it lies in `buf`.
    fn read_record(
        &mut self,
        buf: &mut Vec<u8>,
    ) -> Result<Option<(u64, Range<usize>)>, TraceError> {
        let base = buf.len();
        let mut start = 0;
        let mut quotes = 0usize;
        loop {
            let before = buf.len();
            // A quoted field may span lines: the record as a whole is held to the limit.
            if before - base > MAX_LINE_BYTES {
                return Err(line_too_long(&self.name, start));
            }
            let n = (&mut self.r)
                .take(MAX_LINE_BYTES as u64 + 1)
                .read_until(b'\n', buf)
                .map_err(|source| TraceError::Io {
                    file: self.name.clone(),
                    source,
                })?;
            if n == 0 {
                if buf[base..].iter().all(u8::is_ascii_whitespace) {
                    buf.truncate(base);
                    return Ok(None);
                }
                return Ok(Some((start, base..trim_eol(buf, base))));
            }
            self.line += 1;
            if before == base {
                start = self.line;
            }
            if n > MAX_LINE_BYTES && buf.last() != Some(&b'\n') {
                return Err(line_too_long(&self.name, start));
            }
            quotes += memchr::memchr_iter(b'"', &buf[before..]).count();
            if quotes % 2 == 0 {
                if buf[base..].iter().all(u8::is_ascii_whitespace) {
                    buf.truncate(base);
                    continue;
                }
                return Ok(Some((start, base..trim_eol(buf, base))));
            }
        }
    }

    /// The next batch of records, parsed; `None` at the end of the input.
    fn next(&mut self) -> Result<Option<Parsed>, TraceError> {
        if self.header.is_none() {
            let mut h = Vec::new();
            match self.read_record(&mut h)? {
                None => return Ok(None),
                Some(_) => {
                    let h = h.strip_prefix(UTF8_BOM).map(<[u8]>::to_vec).unwrap_or(h);
                    self.header = Some(h);
                }
            }
        }
        // The header and the records, each on a line of its own, as polars reads them.
        let mut text = std::mem::take(&mut self.text);
        text.clear();
        text.extend_from_slice(self.header.as_deref().unwrap_or_default());
        text.push(b'\n');
        let mut rows: Vec<(u64, Range<usize>)> = Vec::new();
        let mut not_utf8 = Vec::new();
        while rows.len() < BATCH_ROWS && text.len() < BATCH_BYTES {
            let Some((line, at)) = self.read_record(&mut text)? else {
                break;
            };
            if let Err(e) = std::str::from_utf8(&text[at.clone()]) {
                let err = LineError::new(
                    "invalid UTF-8",
                    format!("invalid UTF-8 at byte {}", e.valid_up_to() + 1),
                );
                not_utf8.push((line, err));
                text.truncate(at.start);
                continue;
            }
            text.push(b'\n');
            rows.push((line, at));
        }
        if rows.is_empty() {
            self.text = text;
            // The end of the input, perhaps after records that are not UTF-8.
            return Ok((!not_utf8.is_empty()).then(|| Parsed {
                bytes: 0,
                not_utf8,
                rows: Rows::OneByOne(Vec::new()),
            }));
        }
        let rows = match parse(&text) {
            Ok(batch) if batch.height() == rows.len() => Rows::Whole(
                Box::new(batch),
                rows.iter().map(|(line, _)| *line).collect(),
            ),
            // Find the rows polars rejects by parsing them one at a time.
            _ => Rows::OneByOne(
                (rows.iter())
                    .map(|(line, at)| (*line, self.parse_one(&text[at.clone()])))
                    .collect(),
            ),
        };
        let bytes = text.len();
        self.text = text;
        Ok(Some(Parsed {
            bytes,
            not_utf8,
            rows,
        }))
    }

    /// One record as a table of one row, or why polars rejects it.
    fn parse_one(&self, record: &[u8]) -> Result<Batch, LineError> {
        let mut text = self.header.clone().unwrap_or_default();
        text.push(b'\n');
        text.extend_from_slice(record);
        text.push(b'\n');
        match parse(&text) {
            Ok(batch) if batch.height() == 1 => Ok(batch),
            Ok(_) => Err(LineError::new("malformed CSV row", "malformed CSV row")),
            Err(e) => Err(LineError::new(
                "malformed CSV row",
                // polars appends advice about its own options; keep the finding.
                format!(
                    "malformed CSV row: {}",
                    without_cell(e.to_string().lines().next().unwrap_or_default())
                ),
            )),
        }
    }
}

/// polars' finding in the words of a trace, without the text of the cell it quotes
/// (``could not parse `…` as dtype``): a cell may hold argument values, which reports print
/// only under `--show-args`. The column and the line locate it.
fn without_cell(finding: &str) -> String {
    if finding.starts_with("found more fields than defined in") {
        return "more cells than the header has columns".to_owned();
    }
    const OPEN: &str = "could not parse `";
    let (Some(a), Some(b)) = (finding.find(OPEN), finding.rfind("` as dtype")) else {
        return finding.to_owned();
    };
    if a + OPEN.len() > b {
        return finding.to_owned();
    }
    // From the closing backquote on: ` as dtype `str` at column 'args' (column number 5)`.
    let rest = &finding[b + 1..];
    let column = (rest.split_once(" at column '"))
        .and_then(|(_, c)| c.rsplit_once("' (column number "))
        .and_then(|(name, n)| Some((name, n.strip_suffix(')')?)));
    match column {
        Some((name, n)) => format!("cannot read the cell of column `{name}` (column {n})"),
        None => format!("{}could not parse the field{rest}", &finding[..a]),
    }
}

/// A header line and records, each on a line of its own, as a table of text columns.
fn parse(text: &[u8]) -> PolarsResult<Batch> {
    let df = CsvReadOptions::default()
        .with_has_header(true)
        .with_infer_schema_length(Some(0))
        .into_reader_with_file_handle(Cursor::new(text))
        .finish()?;
    Batch::new(&df)
}

/// Drop the line end (`\n`, `\r`) of the record from `base` in `buf`; where it ends.
fn trim_eol(buf: &mut Vec<u8>, base: usize) -> usize {
    while buf.len() > base && matches!(buf.last(), Some(b'\n' | b'\r')) {
        buf.pop();
    }
    buf.len()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::trace::batch::Symbols;
    use crate::trace::source::UNKNOWN_SERVER;

    const HEADER: &str = "ts,server,grant,session,tool,args,arg_keys,id,recorded_decision,\
        recorded_rule,recorded_message,recorded_policy_version,upstream,latency_ms";

    /// Records of every kind the table reader tells apart, one per line but for a quoted
    /// message that spans two; the bad ones are named in [`BAD`].
    const ROWS: &[&str] = &[
        r#"2026-08-01T09:00:00Z,s1,g1,x1,t1,"{""a"":1}",,c1,,,,,ok,12.5"#,
        r#"2026-08-01T09:00:01.5+02:00,,"",,t2," {""a"":1}",,,allow,r1,,,error,7"#,
        r#"2026-08-01T09:00:02Z,s1,g1,x1,t1,[1],,,,,,,,"#,
        r#"2026-08-01T09:00:03Z,s1,g1,x1,t1,,"[""k""]",7,deny,,,,tool_error, 3 "#,
        "yesterday,s1,g1,x1,t1,,,,,,,,,",
        "2026-08-01T09:00:04Z,s1,g1,x1,,,,,,,,,,",
        "2026-08-01T09:00:05Z,s1,g2,x1,t1,{},,,allow,,\"two\nlines\",,ok,",
        "2026-08-01T09:00:06Z,s1,g1,x1,t1,,,,maybe,,,,,",
        "2026-08-01T09:00:07Z,s1,g1,x1,t1,,,,,,,,nope,",
        "2026-08-01T09:00:08Z,s1,g1,x1,t1,,,,,,,,,abc",
        r#"2026-08-01T09:00:09Z,s1,g1,x1,t1,"{""n"":1e3}",,,,,,,,"#,
        "2026-08-01T09:00:10Z,s1,g1,x1,t1,null,,,,,,,,",
        "2026-08-01T09:00:11Z,s1,g1,x1,t1,{nope,,,,,,,,",
    ];

    /// The bad records' lines (the header is line 1; the record of two lines moves the
    /// later ones down by one) and why they are bad.
    const BAD: &[(u64, &str)] = &[
        (6, "bad timestamp"),
        (7, "missing field"),
        (10, "bad value"),
        (11, "bad value"),
        (12, "wrong type"),
        (15, "invalid JSON"),
    ];

    fn read(text: &str) -> (Vec<CallBatch>, Arc<Symbols>) {
        let symbols = Symbols::new();
        let r = Box::new(Cursor::new(text.as_bytes().to_vec()));
        let mut src = CsvSource::new(r, "t.csv", 5, LocalSymbols::new(Arc::clone(&symbols)));
        let mut batches = Vec::new();
        while let Some(b) = src.next_batch().expect("no I/O error") {
            batches.push(b);
        }
        (batches, symbols)
    }

    /// Each call's columns are its record's fields, and what the batch leaves out comes back
    /// as the record holds it; the calls' lines and the bad ones.
    fn check(batches: &[CallBatch], symbols: &Symbols) -> (Vec<u64>, Vec<(u64, &'static str)>) {
        let (mut lines, mut bad) = (Vec::new(), Vec::new());
        for b in batches {
            bad.extend(b.skipped.iter().map(|(line, e)| (*line, e.kind)));
            for i in 0..b.len() {
                let rec = b.rows.record(i);
                assert_eq!((rec.origin.file, rec.origin.line), (5, b.line[i]));
                assert_eq!(rec.ts, b.ts[i]);
                assert_eq!(rec.server, symbols.name(b.server[i]));
                assert_eq!(rec.grant, symbols.opt_name(b.grant[i]));
                assert_eq!(rec.session.as_deref(), b.session.get(i));
                assert_eq!(rec.tool, symbols.name(b.tool[i]));
                assert_eq!(rec.upstream, b.upstream[i]);
                assert_eq!(
                    rec.recorded.as_ref().and_then(|r| r.decision),
                    b.recorded[i]
                );
                let args = b.rows.args(i);
                assert_eq!(args, rec.args, "line {}", b.line[i]);
                assert_eq!(
                    std::mem::discriminant(&args),
                    std::mem::discriminant(&rec.args)
                );
                assert_eq!(b.rows.id(i), rec.id);
                assert_eq!(b.rows.latency(i), rec.latency_ms);
                if let Some(rest) = b.rows.rest(i) {
                    assert_eq!(rec.recorded, None, "line {}", b.line[i]);
                    assert_eq!((rest.args, rest.id), (rec.args, rec.id));
                    assert_eq!(rest.latency_ms, rec.latency_ms);
                }
                lines.push(b.line[i]);
            }
        }
        (lines, bad)
    }

    #[test]
    fn rows_go_into_columns_as_the_table_reader_reads_them() {
        let text = format!("{HEADER}\n{}\n", ROWS.join("\n"));
        let (batches, symbols) = read(&text);
        let (lines, bad) = check(&batches, &symbols);
        assert_eq!(lines, [2, 3, 4, 5, 8, 13, 14]);
        assert_eq!(bad, BAD);
        let b = &batches[0];
        // A null server is the stand-in name, an empty grant the empty name.
        assert_eq!(&*symbols.name(b.server[1]), UNKNOWN_SERVER);
        assert_eq!(symbols.opt_name(b.grant[1]).as_deref(), Some(""));
        assert_eq!(b.session.get(1), None);
        assert_eq!(b.ts[1], b.ts[0] - 7_200_000_000_000 + 1_500_000_000);
        assert!(b.rows.rest(0).is_some() && b.rows.rest(1).is_none());
        assert!(matches!(b.rows.args(0), Args::Raw(_)));
        // Whitespace around an object: parsed to be sure, kept as its text.
        assert!(matches!(b.rows.args(1), Args::Raw(ref r) if r.text() == r#"{"a":1}"#));
        assert!(matches!(b.rows.args(2), Args::NotObject(_)));
        assert!(matches!(b.rows.args(3), Args::Keys(_)));
        assert_eq!(b.rows.latency(3), Some(3.0));
        assert!(matches!(b.rows.args(6), Args::Unrecorded));
    }

    /// The reason given for a malformed record names the column, never the cell's text: a cell
    /// may hold argument values.
    #[test]
    fn a_malformed_record_is_reported_without_its_text() {
        let text = "ts,server,grant,tool,args\n\
            2026-08-01T09:00:01Z,s,g,a,\"{\"\"password\"\":\"\"sup3rs3cret\"\"}\"x\n\
            2026-08-01T09:00:02Z,s,g,a,{}\n";
        let (batches, symbols) = read(text);
        let (lines, bad) = check(&batches, &symbols);
        assert_eq!(lines, [3]);
        assert_eq!(bad, [(2, "malformed CSV row")]);
        let reasons: Vec<_> = batches
            .iter()
            .flat_map(|b| &b.skipped)
            .map(|(_, e)| e.reason.clone())
            .collect();
        assert_eq!(
            reasons,
            ["malformed CSV row: cannot read the cell of column `args` (column 5)"]
        );
        assert_eq!(
            without_cell("found more fields than defined in 'Schema'"),
            "more cells than the header has columns"
        );
    }

    /// A malformed record makes polars reject its batch: the records are then parsed one by
    /// one, and every other record reads as before.
    #[test]
    fn a_malformed_record_costs_only_itself() {
        let malformed = "2026-08-01T09:00:12Z,s1,g1,x1,t1,{},,,,,,,,,surplus";
        let not_utf8 = b"2026-08-01T09:00:13Z,s1,g1,x1,t\xff,,,,,,,,,";
        let mut text = format!("{HEADER}\n{}\n{malformed}\n", ROWS.join("\n")).into_bytes();
        text.extend_from_slice(not_utf8);
        text.extend_from_slice(b"\n2026-08-01T09:00:14Z,s1,g1,x1,t9,,,,,,,,,\n");
        let symbols = Symbols::new();
        let mut src = CsvSource::new(
            Box::new(Cursor::new(text)),
            "t.csv",
            5,
            LocalSymbols::new(Arc::clone(&symbols)),
        );
        let mut batches = Vec::new();
        while let Some(b) = src.next_batch().expect("no I/O error") {
            batches.push(b);
        }
        let (lines, bad) = check(&batches, &symbols);
        assert_eq!(lines, [2, 3, 4, 5, 8, 13, 14, 18]);
        let mut want = BAD.to_vec();
        want.extend([(16, "malformed CSV row"), (17, "invalid UTF-8")]);
        assert_eq!(bad, want);
    }

    /// With sessions skipped, the column leaves them out, a record built from the batch still
    /// has its session, and no row is built from the columns (`rest`).
    #[test]
    fn sessions_are_left_out_when_nobody_counts_them() {
        let text = format!("{HEADER}\n{}\n", ROWS.join("\n"));
        let make = |sessions: bool| {
            let mut parser = Parser {
                r: Box::new(Cursor::new(text.clone().into_bytes())),
                name: "t.csv".into(),
                header: None,
                line: 0,
                text: Vec::new(),
            };
            let parsed = parser.next().expect("no I/O error").expect("records");
            let symbols = Symbols::new();
            let mut local = LocalSymbols::new(Arc::clone(&symbols));
            (calls(parsed, 5, &mut local, sessions), symbols)
        };
        let (kept, _) = make(true);
        assert_eq!(kept.session.get(0), Some("x1"));
        let (left, _) = make(false);
        assert_eq!(left.line, kept.line);
        assert!(left.session.iter().all(|s| s.is_none()));
        for i in 0..left.len() {
            assert!(left.rows.rest(i).is_none());
            assert_eq!(left.rows.record(i).session, kept.rows.record(i).session);
        }
        assert_eq!(left.rows.record(0).session.as_deref(), Some("x1"));
    }
}
