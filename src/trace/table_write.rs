//! The one Parquet writer of the project (`convert --to parquet`, per-call Parquet reports and
//! `generate`): [`FrameWriter`] takes data frames (or Arrow arrays) and writes them as Parquet
//! row groups, on the caller's thread or on one of its own, so that encoding and compression
//! overlap with whatever produces the rows. (CSV is written a row at a time, see
//! [`super::CsvRow`].) Parquet is written in the most widely readable Arrow types:
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
use polars_arrow::datatypes::{ArrowDataType, TimeUnit as ArrowTimeUnit};
use polars_buffer::Buffer;
use polars_parquet::parquet::CowBuffer;
use polars_parquet::parquet::compression::Compression;
use polars_parquet::parquet::page::{CompressedDictPage, DataPageHeader};
use polars_parquet::write::{
    CompressedDataPage, CompressedPage, CompressionOptions, DynIter, DynStreamingIterator,
    Encoding, FallibleStreamingIterator, FileWriter, KeyValue, Page, StatisticsOptions, Version,
    WriteOptions, array_to_columns, get_dtype_encoding, schema_to_metadata_key,
};

/// Writes data frames of one schema as Parquet row groups, on the caller's thread.
struct TableWriter<W: Write> {
    writer: FileWriter<W>,
    encodings: Buffer<Vec<Encoding>>,
    options: WriteOptions,
    /// Columns holding nanoseconds since the epoch (Int64 in the frames), written as UTC
    /// timestamps.
    timestamps: Vec<usize>,
    /// The Arrow schema the footer names (`ARROW:schema`).
    footer_schema: KeyValue,
    /// The one zstd context every page is compressed with.
    zstd: Mutex<zstd::bulk::Compressor<'static>>,
}

/// Compresses the pages of one column chunk with the writer's zstd context, at zstd's default
/// level: the bytes polars' own compressor writes, without a new context per page.
struct Compressing<'a> {
    pages: DynIter<'static, PolarsResult<Page>>,
    zstd: &'a Mutex<zstd::bulk::Compressor<'static>>,
    current: Option<CompressedPage>,
}

impl Compressing<'_> {
    fn compress(&self, page: &[u8]) -> PolarsResult<CowBuffer> {
        let mut out = Vec::with_capacity(zstd::zstd_safe::compress_bound(page.len()));
        let mut zstd = self.zstd.lock().unwrap_or_else(PoisonError::into_inner);
        zstd.compress_to_buffer(page, &mut out)
            .map_err(|e| polars_err!(ComputeError: "zstd: {e}"))?;
        Ok(CowBuffer::Owned(out))
    }
}

impl FallibleStreamingIterator for Compressing<'_> {
    type Item = CompressedPage;
    type Error = PolarsError;

    fn advance(&mut self) -> PolarsResult<()> {
        self.current = match self.pages.next().transpose()? {
            None => None,
            Some(Page::Data(page)) => {
                if !matches!(page.header(), DataPageHeader::V1(_)) {
                    polars_bail!(ComputeError: "only version 1 data pages are written");
                }
                let Some(rows) = page.num_rows else {
                    polars_bail!(ComputeError: "a data page without its number of rows");
                };
                Some(CompressedPage::Data(CompressedDataPage::new(
                    page.header().clone(),
                    self.compress(page.buffer())?,
                    Compression::Zstd,
                    page.buffer().len(),
                    page.descriptor.clone(),
                    rows,
                )))
            }
            Some(Page::Dict(page)) => Some(CompressedPage::Dict(CompressedDictPage::new(
                self.compress(&page.buffer)?,
                Compression::Zstd,
                page.buffer.len(),
                page.num_values,
                page.is_sorted,
            ))),
        };
        Ok(())
    }

    fn get(&self) -> Option<&CompressedPage> {
        self.current.as_ref()
    }
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
            writer: FileWriter::try_new(out, arrow, options)?,
            encodings,
            options,
            timestamps: ts,
            footer_schema,
            zstd: Mutex::new(
                zstd::bulk::Compressor::new(0)
                    .map_err(|e| polars_err!(ComputeError: "zstd: {e}"))?,
            ),
        })
    }

    /// Write rows of the writer's schema.
    fn write(&mut self, rows: Rows) -> PolarsResult<()> {
        match rows {
            Rows::Frame(df) => self.write_frame(&df),
            Rows::Arrays { rows, arrays } => self.write_arrays(rows, arrays),
        }
    }

    /// Write `df` (the writer's schema) as one row group per chunk.
    fn write_frame(&mut self, df: &DataFrame) -> PolarsResult<()> {
        if df.height() == 0 {
            return Ok(());
        }
        let mut df = df.clone();
        df.rechunk_mut();
        for batch in df.iter_chunks(CompatLevel::newest(), false) {
            let rows = batch.len();
            self.write_arrays(rows, batch.into_arrays())?;
        }
        Ok(())
    }

    /// Write `rows` rows, one array per column of the writer's schema, as one row group. A text
    /// column may come as a dictionary of string views: it is written with that dictionary.
    fn write_arrays(&mut self, rows: usize, mut arrays: Vec<ArrayRef>) -> PolarsResult<()> {
        if rows == 0 {
            return Ok(());
        }
        for &i in &self.timestamps {
            let Some(nanos) = arrays[i].as_any().downcast_ref::<PrimitiveArray<i64>>() else {
                polars_bail!(ComputeError: "a timestamp column is not Int64");
            };
            arrays[i] = nanos.clone().to(utc_nanos()).boxed();
        }
        // The columns of one row group, each encoded into pages by polars and compressed here
        // with the writer's one compression context (polars' own compressor makes a context,
        // and clears its tables, for every page).
        let fields = self.writer.parquet_schema().fields().to_vec();
        if arrays.len() != fields.len() || arrays.iter().any(|a| a.len() != rows) {
            polars_bail!(ComputeError: "rows of another shape than the table's");
        }
        let (options, zstd) = (self.options, &self.zstd);
        let mut columns = Vec::with_capacity(arrays.len());
        for ((array, field), encoding) in arrays.into_iter().zip(fields).zip(self.encodings.iter())
        {
            for pages in array_to_columns(array, field, options, encoding)? {
                columns.push(Ok(DynStreamingIterator::new(Compressing {
                    pages,
                    zstd,
                    current: None,
                })));
            }
        }
        self.writer
            .write(rows as u64, DynIter::new(columns.into_iter()))
    }

    /// Write the footer; the file's size.
    fn finish(&mut self) -> PolarsResult<u64> {
        self.writer.end(Some(vec![self.footer_schema.clone()]))
    }
}

/// Rows handed to a [`FrameWriter`]: a data frame, or its columns as Arrow arrays, where a text
/// column may be a dictionary its maker built already (names its records share, say), so that
/// the encoder need not find the distinct values again.
pub(crate) enum Rows {
    Frame(DataFrame),
    Arrays { rows: usize, arrays: Vec<ArrayRef> },
}

impl From<DataFrame> for Rows {
    fn from(df: DataFrame) -> Rows {
        Rows::Frame(df)
    }
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

/// Where frames are encoded.
enum Where {
    /// On the caller's thread.
    Inline(Option<Box<TableWriter<Spill>>>),
    /// On a thread of its own, fed one frame at a time.
    Thread {
        frames: Option<SyncSender<Rows>>,
        worker: Option<JoinHandle<PolarsResult<()>>>,
    },
}

/// Writes data frames of one schema as Parquet (one row group per frame), on the
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
    /// A writer of frames with `schema`, encoding on a thread of its own when `threaded`; the
    /// frames' `ts` column (Int64 nanoseconds) is written as a UTC timestamp. An empty table
    /// still gets its schema.
    pub(crate) fn new(schema: &Schema, threaded: bool) -> PolarsResult<FrameWriter> {
        let spill = Spill::default();
        let encoder = Box::new(TableWriter::new(spill.clone(), schema, &["ts"])?);
        let encoding = if threaded {
            let (frames, rx) = sync_channel::<Rows>(0);
            let mut encoder = encoder;
            let worker = std::thread::Builder::new()
                .name("table-write".into())
                .spawn(move || -> PolarsResult<()> {
                    for rows in rx {
                        encoder.write(rows)?;
                    }
                    encoder.finish().map(drop)
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

    /// Write `rows` (or queue them), and hand what is written so far to `out`.
    pub(crate) fn write(&mut self, rows: impl Into<Rows>, out: &mut dyn Write) -> PolarsResult<()> {
        let rows = rows.into();
        match &mut self.encoding {
            Where::Inline(Some(encoder)) => encoder.write(rows)?,
            Where::Inline(None) => {
                polars_bail!(ComputeError: "the table was already finished")
            }
            Where::Thread { frames, .. } => {
                let sent = frames.as_ref().is_some_and(|f| f.send(rows).is_ok());
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
                Some(mut encoder) => encoder.finish().map(drop),
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

#[cfg(test)]
mod tests {
    use super::*;
    use polars_arrow::record_batch::RecordBatchT;
    use polars_parquet::write::RowGroupIterator;

    /// Frames of text (some repeated, some null, one column long enough for several pages per
    /// row group), numbers and timestamps.
    fn frames() -> Vec<DataFrame> {
        (0..3)
            .map(|f| {
                let rows = 20_000 + f * 7;
                let text: Vec<Option<String>> = (0..rows)
                    .map(|i| (i % 11 != 0).then(|| format!("{:0>90}-{}", i * 7919 % 100_003, f)))
                    .collect();
                df! {
                    "ts" => (0..rows).map(|i| 1_785_542_400_000_000_000 + i as i64 * 1_000).collect::<Vec<_>>(),
                    "tool" => (0..rows).map(|i| format!("tool-{}", i % 13)).collect::<Vec<_>>(),
                    "text" => text,
                    "latency" => (0..rows).map(|i| (i % 5 != 0).then_some(i as f64 / 8.0)).collect::<Vec<_>>(),
                }
                .unwrap()
            })
            .collect()
    }

    /// The frames as this writer writes them, or through polars' own page compressor.
    fn written(with_polars_compressor: bool) -> Vec<u8> {
        let frames = frames();
        let mut out = Vec::new();
        let mut w = TableWriter::new(&mut out, frames[0].schema(), &["ts"]).unwrap();
        for df in &frames {
            if !with_polars_compressor {
                w.write_frame(df).unwrap();
                continue;
            }
            let mut df = df.clone();
            df.rechunk_mut();
            let batch = df.iter_chunks(CompatLevel::newest(), false).next().unwrap();
            let mut arrays = batch.into_arrays();
            for &i in &w.timestamps {
                let nanos = arrays[i]
                    .as_any()
                    .downcast_ref::<PrimitiveArray<i64>>()
                    .unwrap();
                arrays[i] = nanos.clone().to(utc_nanos()).boxed();
            }
            let schema = Arc::new(w.writer.schema().clone());
            let batch = RecordBatchT::try_new(df.height(), Arc::clone(&schema), arrays).unwrap();
            let groups = RowGroupIterator::try_new(
                std::iter::once(Ok(batch)),
                &schema,
                w.options,
                w.encodings.clone(),
            )
            .unwrap();
            for group in groups {
                w.writer.write(df.height() as u64, group.unwrap()).unwrap();
            }
        }
        w.finish().unwrap();
        drop(w);
        out
    }

    /// One zstd context for every page writes the bytes that a context per page (polars' own
    /// compressor) writes.
    #[test]
    fn pages_compressed_with_one_context_are_the_bytes_polars_writes() {
        let (ours, polars) = (written(false), written(true));
        assert!(ours.len() > 100_000);
        assert!(ours == polars, "the files differ");
    }
}
