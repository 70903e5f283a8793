//! The one table writer of the project (`convert --to csv|parquet`, the per-call reports and
//! `generate`): [`FrameWriter`] takes data frames and writes them as CSV or Parquet, on the
//! caller's thread or on one of its own, so that encoding and compression overlap with whatever
//! produces the rows.
//! Parquet is written in the most widely readable Arrow types:
//!
//! polars' own writer stores text as Arrow string views, which older readers reject (pyarrow
//! before 16: "Unrecognized type: 24"). This writer hands polars' Parquet encoder the oldest
//! compatible Arrow types instead: text as `large_string`, and the timestamp columns as
//! `timestamp[ns, tz=UTC]` (Parquet `TIMESTAMP(NANOS, isAdjustedToUTC=true)`), so that every
//! reader sees the unit and the instant exactly.

use std::io::{self, Write};
use std::sync::mpsc::{SyncSender, sync_channel};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;

use polars::prelude::*;
use polars_arrow::array::PrimitiveArray;
use polars_arrow::datatypes::{ArrowDataType, ArrowSchema, TimeUnit as ArrowTimeUnit};
use polars_arrow::record_batch::RecordBatchT;
use polars_buffer::Buffer;
use polars_parquet::write::{
    CompressionOptions, Encoding, FileWriter, KeyValue, RowGroupIterator, StatisticsOptions,
    Version, WriteOptions, get_dtype_encoding, schema_to_metadata_key,
};

/// Writes data frames of one schema as Parquet row groups, on the caller's thread.
struct TableWriter<W: Write> {
    writer: FileWriter<W>,
    schema: Arc<ArrowSchema>,
    encodings: Buffer<Vec<Encoding>>,
    options: WriteOptions,
    /// Columns holding nanoseconds since the epoch (Int64 in the frames), written as UTC
    /// timestamps.
    timestamps: Vec<usize>,
    /// The Arrow schema the footer names (`ARROW:schema`).
    footer_schema: KeyValue,
}

/// The Arrow type of a timestamp column.
pub(crate) fn utc_nanos() -> ArrowDataType {
    ArrowDataType::Timestamp(ArrowTimeUnit::Nanosecond, Some("UTC".into()))
}

impl<W: Write> TableWriter<W> {
    /// A writer of frames with `schema`; the columns named in `timestamps` (Int64 nanoseconds
    /// in the frames) are written as UTC timestamps.
    fn new(out: W, schema: &Schema, timestamps: &[&str]) -> PolarsResult<Self> {
        // Text is encoded from polars' string views as they are (a cast to large strings took
        // 8% of `convert`), and the footer's Arrow schema still names large strings, which
        // every Arrow reader knows: the file's bytes are the same either way.
        let with_timestamps = |compat| {
            let mut arrow = schema.to_arrow(compat);
            let mut ts = Vec::new();
            for name in timestamps {
                if let (Some(i), Some(field)) = (arrow.index_of(name), arrow.get_mut(name)) {
                    field.dtype = utc_nanos();
                    ts.push(i);
                }
            }
            (arrow, ts)
        };
        let (arrow, ts) = with_timestamps(CompatLevel::newest());
        let footer_schema = schema_to_metadata_key(&with_timestamps(CompatLevel::oldest()).0);
        let encodings = arrow
            .iter_values()
            .map(|f| get_dtype_encoding(&f.dtype))
            .collect();
        let options = WriteOptions {
            statistics: StatisticsOptions::default(),
            compression: CompressionOptions::Zstd(None),
            version: Version::V1,
            data_page_size: None,
        };
        Ok(TableWriter {
            writer: FileWriter::try_new(out, arrow.clone(), options)?,
            schema: Arc::new(arrow),
            encodings,
            options,
            timestamps: ts,
            footer_schema,
        })
    }

    /// Write `df` (the writer's schema) as one row group per chunk.
    fn write(&mut self, df: &DataFrame) -> PolarsResult<()> {
        if df.height() == 0 {
            return Ok(());
        }
        let mut df = df.clone();
        df.rechunk_mut();
        for batch in df.iter_chunks(CompatLevel::newest(), false) {
            let rows = batch.len();
            let mut arrays = batch.into_arrays();
            for &i in &self.timestamps {
                let Some(nanos) = arrays[i].as_any().downcast_ref::<PrimitiveArray<i64>>() else {
                    polars_bail!(ComputeError: "a timestamp column is not Int64");
                };
                arrays[i] = nanos.clone().to(utc_nanos()).boxed();
            }
            let batch = RecordBatchT::try_new(rows, Arc::clone(&self.schema), arrays)?;
            let groups = RowGroupIterator::try_new(
                std::iter::once(Ok(batch)),
                &self.schema,
                self.options,
                self.encodings.clone(),
            )?;
            for group in groups {
                self.writer.write(rows as u64, group?)?;
            }
        }
        Ok(())
    }

    /// Write the footer; the file's size.
    fn finish(&mut self) -> PolarsResult<u64> {
        self.writer.end(Some(vec![self.footer_schema.clone()]))
    }
}

/// The table formats [`FrameWriter`] writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TableFormat {
    /// CSV with a header row.
    Csv,
    /// Parquet; the frames' `ts` column (Int64 nanoseconds) is written as a UTC timestamp.
    Parquet,
}

/// Bytes the writing thread wrote and the destination has not taken yet.
#[derive(Clone, Default)]
struct Spill(Arc<Mutex<Vec<u8>>>);

impl Write for Spill {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        (self.0.lock().unwrap_or_else(PoisonError::into_inner)).extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Spill {
    fn drain_to(&self, out: &mut dyn Write) -> io::Result<()> {
        let bytes = std::mem::take(&mut *self.0.lock().unwrap_or_else(PoisonError::into_inner));
        out.write_all(&bytes)
    }
}

/// Encodes frames of one schema as CSV or Parquet into a [`Spill`].
enum Encoder {
    Parquet(Box<TableWriter<Spill>>),
    Csv {
        sink: Spill,
        schema: Schema,
        header: bool,
    },
}

impl Encoder {
    fn new(format: TableFormat, schema: &Schema, sink: Spill) -> PolarsResult<Encoder> {
        Ok(match format {
            TableFormat::Parquet => {
                Encoder::Parquet(Box::new(TableWriter::new(sink, schema, &["ts"])?))
            }
            TableFormat::Csv => Encoder::Csv {
                sink,
                schema: schema.clone(),
                header: true,
            },
        })
    }

    fn write(&mut self, mut df: DataFrame) -> PolarsResult<()> {
        match self {
            Encoder::Parquet(w) => w.write(&df),
            Encoder::Csv { sink, header, .. } => {
                if df.height() > 0 || *header {
                    CsvWriter::new(sink)
                        .include_header(*header)
                        .finish(&mut df)?;
                    *header = false;
                }
                Ok(())
            }
        }
    }

    fn finish(self) -> PolarsResult<()> {
        match self {
            Encoder::Parquet(mut w) => w.finish().map(drop),
            Encoder::Csv {
                mut sink,
                schema,
                header: true,
            } => CsvWriter::new(&mut sink)
                .include_header(true)
                .finish(&mut DataFrame::empty_with_schema(&schema)),
            Encoder::Csv { .. } => Ok(()),
        }
    }
}

/// Where frames are encoded.
enum Where {
    /// On the caller's thread.
    Inline(Option<Encoder>),
    /// On a thread of its own, fed one frame at a time.
    Thread {
        frames: Option<SyncSender<DataFrame>>,
        worker: Option<JoinHandle<PolarsResult<()>>>,
    },
}

/// Writes data frames of one schema as CSV or Parquet (one row group per frame), on the
/// caller's thread or on a thread of its own. The bytes written are handed to the destination by
/// the caller's thread at each [`FrameWriter::write`] and at [`FrameWriter::finish`], so the
/// destination need not be `Send`. On a thread, a frame is handed over only when the thread is
/// ready to take it, so at most two frames are in memory: one being encoded, one being filled.
/// `convert` and `generate` encode on a thread (their frames come faster than one thread
/// encodes them); per-call reports encode inline, as the replay fills their frames more slowly
/// and a second frame of their wider rows would cost more memory than the thread saves time.
pub(crate) struct FrameWriter {
    encoding: Where,
    spill: Spill,
}

impl FrameWriter {
    /// A writer of frames with `schema`, in `format`, encoding on a thread of its own when
    /// `threaded`. An empty table still gets its header (CSV) or schema (Parquet).
    pub(crate) fn new(
        format: TableFormat,
        schema: &Schema,
        threaded: bool,
    ) -> PolarsResult<FrameWriter> {
        let spill = Spill::default();
        let encoder = Encoder::new(format, schema, spill.clone())?;
        let encoding = if threaded {
            let (frames, rx) = sync_channel::<DataFrame>(0);
            let mut encoder = encoder;
            let worker = std::thread::Builder::new()
                .name("table-write".into())
                .spawn(move || -> PolarsResult<()> {
                    for df in rx {
                        encoder.write(df)?;
                    }
                    encoder.finish()
                })
                .map_err(|e| polars_err!(ComputeError: "cannot start the table writer: {e}"))?;
            Where::Thread {
                frames: Some(frames),
                worker: Some(worker),
            }
        } else {
            Where::Inline(Some(encoder))
        };
        Ok(FrameWriter { encoding, spill })
    }

    /// Write `df` (or queue it), and hand what is written so far to `out`.
    pub(crate) fn write(&mut self, df: DataFrame, out: &mut dyn Write) -> PolarsResult<()> {
        match &mut self.encoding {
            Where::Inline(Some(encoder)) => encoder.write(df)?,
            Where::Inline(None) => {
                polars_bail!(ComputeError: "the table was already finished")
            }
            Where::Thread { frames, .. } => {
                let sent = frames.as_ref().is_some_and(|f| f.send(df).is_ok());
                if !sent {
                    // The writing thread stopped: its error says why.
                    return self.finish(out);
                }
            }
        }
        self.spill.drain_to(out)?;
        Ok(())
    }

    /// Write what is queued and end the table; everything written goes to `out`.
    pub(crate) fn finish(&mut self, out: &mut dyn Write) -> PolarsResult<()> {
        let result = match &mut self.encoding {
            Where::Inline(encoder) => match encoder.take() {
                Some(encoder) => encoder.finish(),
                None => Err(polars_err!(ComputeError: "the table was already finished")),
            },
            Where::Thread { frames, worker } => {
                drop(frames.take());
                match worker.take() {
                    Some(worker) => worker.join().unwrap_or_else(|_| {
                        Err(polars_err!(ComputeError: "the table writer stopped"))
                    }),
                    None => Err(polars_err!(ComputeError: "the table was already finished")),
                }
            }
        };
        self.spill.drain_to(out)?;
        result
    }
}

impl Drop for FrameWriter {
    fn drop(&mut self) {
        if let Where::Thread { frames, worker } = &mut self.encoding {
            drop(frames.take());
            if let Some(worker) = worker.take() {
                let _ = worker.join();
            }
        }
    }
}
