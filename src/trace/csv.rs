//! mcpsim call records as CSV (header row first), parsed by polars in batches.
//!
//! The file is cut into records here (a newline inside double quotes does not end a record), so
//! each row keeps its exact line number and a malformed row costs only itself: when polars
//! rejects a batch, its rows are parsed one by one and the bad ones are skipped.

use std::collections::VecDeque;
use std::io::{BufRead, Cursor, Read};

use polars::prelude::*;

use super::format::UTF8_BOM;
use super::intern::Interner;
use super::source::{Ctx, LineError, MAX_LINE_BYTES, Source, line_too_long};
use super::table::{BATCH_ROWS, Batch};
use super::{CallRecord, Origin, TraceError};

pub(crate) struct CsvSource {
    r: Box<dyn BufRead + Send>,
    name: String,
    file: u32,
    names: Interner,
    header: Option<Vec<u8>>,
    line: u64,
    ready: VecDeque<CallRecord>,
    done: bool,
}

impl CsvSource {
    pub(crate) fn new(r: Box<dyn BufRead + Send>, name: &str, file: u32) -> CsvSource {
        CsvSource {
            r,
            name: name.to_string(),
            file,
            names: Interner::default(),
            header: None,
            line: 0,
            ready: VecDeque::new(),
            done: false,
        }
    }

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

    fn fill(&mut self, cx: &mut Ctx<'_>) -> Result<(), TraceError> {
        if self.header.is_none() {
            match self.read_record()? {
                None => {
                    self.done = true;
                    return Ok(());
                }
                Some((_, h)) => {
                    let h = h.strip_prefix(UTF8_BOM).map(<[u8]>::to_vec).unwrap_or(h);
                    self.header = Some(h);
                }
            }
        }
        let mut rows: Vec<(u64, Vec<u8>)> = Vec::new();
        while rows.len() < BATCH_ROWS {
            let Some((line, bytes)) = self.read_record()? else {
                self.done = true;
                break;
            };
            if let Err(e) = std::str::from_utf8(&bytes) {
                let err = LineError::new(
                    "invalid UTF-8",
                    format!("invalid UTF-8 at byte {}", e.valid_up_to() + 1),
                );
                cx.skip(line, err)?;
                continue;
            }
            rows.push((line, bytes));
        }
        if rows.is_empty() {
            return Ok(());
        }
        match self.parse(rows.iter().map(|(_, b)| b.as_slice())) {
            Ok(batch) if batch.height() == rows.len() => self.take(&batch, &rows, cx),
            _ => {
                // Find the rows polars rejects by parsing them one at a time.
                for (line, bytes) in &rows {
                    match self.parse(std::iter::once(bytes.as_slice())) {
                        Ok(batch) if batch.height() == 1 => {
                            self.take(&batch, &[(*line, Vec::new())], cx)?
                        }
                        Ok(_) => cx.skip(
                            *line,
                            LineError::new("malformed CSV row", "malformed CSV row"),
                        )?,
                        Err(e) => cx.skip(
                            *line,
                            LineError::new(
                                "malformed CSV row",
                                // polars appends advice about its own options; keep the finding.
                                format!(
                                    "malformed CSV row: {}",
                                    e.to_string().lines().next().unwrap_or_default()
                                ),
                            ),
                        )?,
                    }
                }
                Ok(())
            }
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

    fn take(
        &mut self,
        batch: &Batch,
        rows: &[(u64, Vec<u8>)],
        cx: &mut Ctx<'_>,
    ) -> Result<(), TraceError> {
        for (i, (line, _)) in rows.iter().enumerate() {
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
