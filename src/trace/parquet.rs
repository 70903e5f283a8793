//! Where a Parquet input's bytes are, and (for tests) the simplest Parquet reader: the whole
//! file read by polars at once, rows converted to records one after the other by the code the
//! CSV reader shares. [`super::parquet_batch::ParquetBatchSource`] reads Parquet for the
//! replay; its tests hold it to this reader.

use std::path::PathBuf;

/// Where the Parquet bytes are: a plain file is read in place; a compressed one or stdin was
/// decoded into memory first, since Parquet needs random access.
pub(crate) enum ParquetBytes {
    File(PathBuf),
    Memory(Vec<u8>),
}

#[cfg(test)]
pub(crate) use reference::ParquetSource;

#[cfg(test)]
mod reference {
    use std::collections::VecDeque;
    use std::io::Cursor;

    use polars::prelude::*;

    use std::sync::Arc;

    use super::ParquetBytes;
    use crate::trace::guard;
    use crate::trace::intern::Interner;
    use crate::trace::parquet_batch::Footer;
    use crate::trace::source::{Ctx, Source};
    use crate::trace::table::Batch;
    use crate::trace::{CallRecord, Origin, TraceError};

    /// Reads the whole file on the first call, then hands out its rows as records.
    pub(crate) struct ParquetSource {
        bytes: Option<ParquetBytes>,
        name: String,
        file: u32,
        rows: VecDeque<Result<CallRecord, (u64, crate::trace::source::LineError)>>,
        /// The error that ended the read, handed out after the rows before it.
        failed: Option<TraceError>,
    }

    impl ParquetSource {
        pub(crate) fn new(bytes: ParquetBytes, name: &str, file: u32) -> ParquetSource {
            ParquetSource {
                bytes: Some(bytes),
                name: name.to_string(),
                file,
                rows: VecDeque::new(),
                failed: None,
            }
        }

        /// Read the file row group by row group: rows of the groups before a damaged one are
        /// handed out before the error.
        fn read(&mut self, bytes: ParquetBytes) -> Result<(), TraceError> {
            let data: Vec<u8> = match bytes {
                ParquetBytes::File(path) => {
                    std::fs::read(&path).map_err(|source| TraceError::Io {
                        file: self.name.clone(),
                        source,
                    })?
                }
                ParquetBytes::Memory(m) => m,
            };
            let footer = match crate::trace::guard::catch(|| Footer::read(&data, &|_| {})) {
                Ok(Ok(f)) => f,
                Ok(Err(e)) => return Err(self.error(e)),
                Err(m) => return Err(self.error(guard::damaged("Parquet", &m))),
            };
            let reader = || {
                let mut r = ParquetReader::new(Cursor::new(data.as_slice()));
                r.set_metadata(Arc::clone(&footer.metadata));
                r.with_columns(Some(footer.columns.to_vec()))
            };
            let groups: Vec<usize> = footer
                .metadata
                .row_groups
                .iter()
                .map(|g| g.num_rows())
                .collect();
            let mut names = Interner::default();
            let mut offset = 0;
            for rows in groups {
                let df = guard::catch(|| {
                    reader()
                        .with_slice(Some((offset, rows)))
                        .finish()
                        .and_then(|df| Batch::new(&df))
                });
                let batch = match df {
                    Ok(Ok(b)) => b.with_ts_scale(footer.ts_scale),
                    Ok(Err(e)) => {
                        self.failed = Some(self.error(e));
                        return Ok(());
                    }
                    Err(m) => {
                        self.failed = Some(self.error(guard::damaged("Parquet", &m)));
                        return Ok(());
                    }
                };
                for i in 0..batch.height() {
                    let line = (offset + i + 1) as u64;
                    let origin = Origin {
                        file: self.file,
                        line,
                    };
                    self.rows
                        .push_back(batch.record(i, origin, &mut names).map_err(|e| (line, e)));
                }
                offset += rows;
            }
            Ok(())
        }

        fn error(&self, e: impl std::fmt::Display) -> TraceError {
            TraceError::Table {
                file: self.name.clone(),
                reason: e.to_string(),
            }
        }
    }

    impl Source for ParquetSource {
        fn next(&mut self, cx: &mut Ctx<'_>) -> Result<Option<CallRecord>, TraceError> {
            if let Some(bytes) = self.bytes.take() {
                self.read(bytes)?;
            }
            while let Some(row) = self.rows.pop_front() {
                match row {
                    Ok(rec) => return Ok(Some(rec)),
                    Err((line, e)) => cx.skip(line, e)?,
                }
            }
            match self.failed.take() {
                Some(e) => Err(e),
                None => Ok(None),
            }
        }
    }
}
