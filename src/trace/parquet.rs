//! mcpsim call records as Parquet, read by polars one row slice at a time.
//! `ts` may be Int64 (epoch, unit by magnitude), Datetime (unit from the type) or RFC 3339 text.
//! Row numbers (from 1) stand in for line numbers.

use std::collections::VecDeque;
use std::fs::File;
use std::io::Cursor;
use std::path::PathBuf;
use std::sync::Arc;

use polars::prelude::*;

use super::intern::Interner;
use super::source::{Ctx, Source};
use super::table::{BATCH_ROWS, Batch};
use super::{CallRecord, Origin, TraceError};

/// Where the Parquet bytes are: a plain file is sliced in place; a compressed one or stdin was
/// decoded into memory first, since Parquet needs random access.
pub(crate) enum ParquetBytes {
    File(PathBuf),
    Memory(Arc<[u8]>),
}

pub(crate) struct ParquetSource {
    bytes: ParquetBytes,
    name: String,
    file: u32,
    names: Interner,
    rows: Option<usize>,
    offset: usize,
    ready: VecDeque<CallRecord>,
}

impl ParquetSource {
    pub(crate) fn new(bytes: ParquetBytes, name: &str, file: u32) -> ParquetSource {
        ParquetSource {
            bytes,
            name: name.to_string(),
            file,
            names: Interner::default(),
            rows: None,
            offset: 0,
            ready: VecDeque::new(),
        }
    }

    fn table_err(&self, e: impl std::fmt::Display) -> TraceError {
        TraceError::Table {
            file: self.name.clone(),
            reason: e.to_string(),
        }
    }

    fn read(&self, slice: Option<(usize, usize)>) -> Result<(DataFrame, usize), TraceError> {
        let result = match &self.bytes {
            ParquetBytes::File(p) => {
                let f = File::open(p).map_err(|source| TraceError::Io {
                    file: self.name.clone(),
                    source,
                })?;
                read_slice(ParquetReader::new(f), slice)
            }
            ParquetBytes::Memory(b) => {
                read_slice(ParquetReader::new(Cursor::new(b.clone())), slice)
            }
        };
        result.map_err(|e| self.table_err(e))
    }
}

fn read_slice<R: polars::io::mmap::MmapBytesReader>(
    mut r: ParquetReader<R>,
    slice: Option<(usize, usize)>,
) -> PolarsResult<(DataFrame, usize)> {
    let total = r.num_rows()?;
    let df = match slice {
        Some(s) => r.with_slice(Some(s)).finish()?,
        None => DataFrame::empty(),
    };
    Ok((df, total))
}

impl Source for ParquetSource {
    fn next(&mut self, cx: &mut Ctx<'_>) -> Result<Option<CallRecord>, TraceError> {
        loop {
            if let Some(rec) = self.ready.pop_front() {
                return Ok(Some(rec));
            }
            let total = match self.rows {
                Some(t) => t,
                None => {
                    let (_, t) = self.read(None)?;
                    self.rows = Some(t);
                    t
                }
            };
            if self.offset >= total {
                return Ok(None);
            }
            let (df, _) = self.read(Some((self.offset, BATCH_ROWS)))?;
            let batch = Batch::new(&df).map_err(|e| self.table_err(e))?;
            if batch.height() == 0 {
                return Ok(None);
            }
            for i in 0..batch.height() {
                let line = (self.offset + i + 1) as u64;
                let origin = Origin {
                    file: self.file,
                    line,
                };
                match batch.record(i, origin, &mut self.names) {
                    Ok(rec) => self.ready.push_back(rec),
                    Err(e) => cx.skip(line, e)?,
                }
            }
            self.offset += batch.height();
        }
    }
}
