//! mcpsim call records as Parquet, read by polars one row group (or slice of one) at a time,
//! rows converted to records on several threads. Reading and converting run on a thread of
//! their own, one slice ahead of the replay that consumes the records.
//! `ts` may be Int64 (epoch, unit by magnitude), Datetime (unit from the type) or RFC 3339 text.
//! Row numbers (from 1) stand in for line numbers.

use std::collections::VecDeque;
use std::fs::File;
use std::io::Cursor;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, sync_channel};

use polars::io::parquet::metadata::FileMetadataRef;
use polars::prelude::*;

use super::intern::Interner;
use super::source::{Ctx, LineError, Source};
use super::table::Batch;
use super::{CallRecord, Nanos, Origin, TraceError};

/// Where the Parquet bytes are: a plain file is sliced in place; a compressed one or stdin was
/// decoded into memory first, since Parquet needs random access.
pub(crate) enum ParquetBytes {
    File(PathBuf),
    Memory(Arc<[u8]>),
}

/// Reads the file: slices read and converted on a producer thread, handed over in file order.
pub(crate) struct ParquetSource {
    /// Until the first read; then owned by the producer.
    producer: Option<Producer>,
    name: String,
    /// Shared with the producer: slices read from now on are only checked.
    ts_only: Arc<AtomicBool>,
    /// Converted slices in file order, then `None` at the end or the error that ended the read.
    rx: Option<Receiver<Result<Option<Converted>, TraceError>>>,
    ready: VecDeque<Row>,
}

/// One slice's rows, or why a row is bad, in row order.
type Converted = Vec<Result<Row, (u64, LineError)>>;

/// Reads and converts slices, one after the other.
struct Producer {
    bytes: ParquetBytes,
    name: String,
    file: u32,
    /// One interner per conversion thread.
    names: Vec<Interner>,
    /// Footer metadata, read once and handed to every slice read.
    metadata: Option<FileMetadataRef>,
    /// Row slices to read, aligned to row groups so no row group is decoded twice.
    slices: VecDeque<(usize, usize)>,
    ts_only: Arc<AtomicBool>,
}

/// Most rows converted per slice; a larger row group is read in several slices.
const MAX_SLICE_ROWS: usize = 64 * 1024;

/// Below this many rows a batch is converted on the calling thread alone.
const PARALLEL_ROWS: usize = 4 * 1024;

impl ParquetSource {
    pub(crate) fn new(bytes: ParquetBytes, name: &str, file: u32) -> ParquetSource {
        let ts_only = Arc::new(AtomicBool::new(false));
        ParquetSource {
            producer: Some(Producer::new(bytes, name, file, Arc::clone(&ts_only))),
            name: name.to_string(),
            ts_only,
            rx: None,
            ready: VecDeque::new(),
        }
    }
}

impl Producer {
    fn new(bytes: ParquetBytes, name: &str, file: u32, ts_only: Arc<AtomicBool>) -> Producer {
        let threads = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
            .clamp(1, 4);
        Producer {
            bytes,
            name: name.to_string(),
            file,
            names: (0..threads).map(|_| Interner::default()).collect(),
            metadata: None,
            slices: VecDeque::new(),
            ts_only,
        }
    }

    fn table_err(&self, e: impl std::fmt::Display) -> TraceError {
        TraceError::Table {
            file: self.name.clone(),
            reason: e.to_string(),
        }
    }

    fn run(&self, op: Op) -> Result<Out, TraceError> {
        let md = self.metadata.clone();
        let result = match &self.bytes {
            ParquetBytes::File(p) => {
                let file = File::open(p).map_err(|source| TraceError::Io {
                    file: self.name.clone(),
                    source,
                })?;
                run(ParquetReader::new(file), md, op)
            }
            ParquetBytes::Memory(b) => run(ParquetReader::new(Cursor::new(b.clone())), md, op),
        };
        result.map_err(|e| self.table_err(e))
    }

    /// Read the footer once and plan the slices: every row group, split when large.
    fn plan(&mut self) -> Result<(), TraceError> {
        let Out::Metadata(md) = self.run(Op::Metadata)? else {
            return Err(self.table_err("cannot read the Parquet footer"));
        };
        let mut offset = 0;
        for rg in &md.row_groups {
            let rows = rg.num_rows();
            let mut done = 0;
            while done < rows {
                let len = (rows - done).min(MAX_SLICE_ROWS);
                self.slices.push_back((offset + done, len));
                done += len;
            }
            offset += rows;
        }
        if offset < md.num_rows {
            // Row groups that do not add up: let polars slice the rest.
            self.slices.push_back((offset, md.num_rows - offset));
        }
        self.metadata = Some(md);
        Ok(())
    }
}

enum Op {
    Metadata,
    Slice(usize, usize),
}

enum Out {
    Metadata(FileMetadataRef),
    Rows(DataFrame),
}

fn run<R: polars::io::mmap::MmapBytesReader>(
    mut r: ParquetReader<R>,
    metadata: Option<FileMetadataRef>,
    op: Op,
) -> PolarsResult<Out> {
    if let Some(md) = metadata {
        r.set_metadata(md);
    }
    Ok(match op {
        Op::Metadata => Out::Metadata(r.get_metadata()?.clone()),
        Op::Slice(offset, len) => Out::Rows(r.with_slice(Some((offset, len))).finish()?),
    })
}

/// A converted row: the record, or only its timestamp in a timestamps-only read.
// Rows are moved into the queue once; boxing records would cost an allocation per call.
#[allow(clippy::large_enum_variant)]
enum Row {
    Call(CallRecord),
    Ts(Nanos),
}

/// Convert rows `range` of a batch; row numbers continue from `first_row`.
fn convert(
    batch: &Batch,
    range: std::ops::Range<usize>,
    first_row: usize,
    file: u32,
    ts_only: bool,
    names: &mut Interner,
) -> Vec<Result<Row, (u64, LineError)>> {
    range
        .map(|i| {
            let line = (first_row + i + 1) as u64;
            if ts_only {
                if let Some(ts) = batch.checked_ts(i) {
                    return Ok(Row::Ts(ts));
                }
            }
            batch
                .record(i, Origin { file, line }, names)
                .map(Row::Call)
                .map_err(|e| (line, e))
        })
        .collect()
}

impl Producer {
    /// Read and convert every slice, sending each down `tx`; stops at the end of the file, at
    /// the first error, or when the reader is gone.
    fn produce(mut self, tx: std::sync::mpsc::SyncSender<Result<Option<Converted>, TraceError>>) {
        loop {
            let item = self.slice();
            let last = !matches!(item, Ok(Some(_)));
            // A failed send means the reader is gone: nothing left to do.
            if tx.send(item).is_err() || last {
                return;
            }
        }
    }

    /// Read and convert the next slice; `None` at the end of the file.
    fn slice(&mut self) -> Result<Option<Converted>, TraceError> {
        if self.metadata.is_none() {
            self.plan()?;
        }
        let Some((offset, len)) = self.slices.pop_front() else {
            return Ok(None);
        };
        let Out::Rows(df) = self.run(Op::Slice(offset, len))? else {
            return Err(self.table_err("cannot read Parquet rows"));
        };
        let batch = Batch::new(&df).map_err(|e| self.table_err(e))?;
        let height = batch.height();
        if height == 0 {
            return Ok(None);
        }
        // Rows convert independently (argument JSON dominates), so split them over threads
        // and keep the results in row order.
        let (file, ts_only) = (self.file, self.ts_only.load(Ordering::Relaxed));
        let parts = if height < PARALLEL_ROWS {
            1
        } else {
            self.names.len()
        };
        let per = height.div_ceil(parts);
        let batch = &batch;
        let results: Vec<_> = std::thread::scope(|scope| {
            let handles: Vec<_> = self
                .names
                .iter_mut()
                .take(parts)
                .enumerate()
                .map(|(k, names)| {
                    let range = (k * per).min(height)..((k + 1) * per).min(height);
                    // Started by the producer thread, whose lower priority they inherit.
                    scope.spawn(move || convert(batch, range, offset, file, ts_only, names))
                })
                .collect();
            handles.into_iter().map(|h| h.join()).collect()
        });
        let mut rows = Vec::with_capacity(height);
        for part in results {
            let Ok(part) = part else {
                return Err(self.table_err("a conversion thread stopped unexpectedly"));
            };
            rows.extend(part);
        }
        Ok(Some(rows))
    }
}

impl ParquetSource {
    fn table_err(&self, e: impl std::fmt::Display) -> TraceError {
        TraceError::Table {
            file: self.name.clone(),
            reason: e.to_string(),
        }
    }

    /// Take the next converted slice into `ready` (bad rows go to `cx`); `false` at the end of
    /// the file. The first call starts the producer.
    fn fill(&mut self, cx: &mut Ctx<'_>) -> Result<bool, TraceError> {
        if let Some(producer) = self.producer.take() {
            // A rendezvous: the producer converts the next slice while this one is replayed,
            // then waits to hand it over, so at most two slices of records exist at once.
            let (tx, rx) = sync_channel(0);
            std::thread::Builder::new()
                .name("mcpsim-parquet".into())
                .spawn(move || {
                    super::priority::defer_to_replay();
                    producer.produce(tx)
                })
                .map_err(|e| self.table_err(format!("cannot start a reader thread: {e}")))?;
            self.rx = Some(rx);
        }
        let Some(rx) = &self.rx else {
            return Ok(false);
        };
        match rx.recv() {
            Ok(Ok(None)) => {
                self.rx = None;
                Ok(false)
            }
            // Gone without saying the file ended: it panicked.
            Err(_) => {
                self.rx = None;
                Err(self.table_err("the reader thread stopped unexpectedly"))
            }
            Ok(Err(e)) => {
                self.rx = None;
                Err(e)
            }
            Ok(Ok(Some(rows))) => {
                for item in rows {
                    match item {
                        Ok(row) => self.ready.push_back(row),
                        Err((line, e)) => cx.skip(line, e)?,
                    }
                }
                Ok(true)
            }
        }
    }
}

impl Source for ParquetSource {
    fn next(&mut self, cx: &mut Ctx<'_>) -> Result<Option<CallRecord>, TraceError> {
        loop {
            match self.ready.pop_front() {
                Some(Row::Call(rec)) => return Ok(Some(rec)),
                Some(Row::Ts(_)) => {
                    return Err(
                        self.table_err("records were asked for after a timestamps-only read")
                    );
                }
                None => {
                    if !self.fill(cx)? {
                        return Ok(None);
                    }
                }
            }
        }
    }

    fn next_ts(&mut self, cx: &mut Ctx<'_>) -> Result<Option<Nanos>, TraceError> {
        // Slices read from now on are only checked, not turned into records.
        self.ts_only.store(true, Ordering::Relaxed);
        loop {
            match self.ready.pop_front() {
                Some(Row::Call(rec)) => return Ok(Some(rec.ts)),
                Some(Row::Ts(ts)) => return Ok(Some(ts)),
                None => {
                    if !self.fill(cx)? {
                        return Ok(None);
                    }
                }
            }
        }
    }
}
