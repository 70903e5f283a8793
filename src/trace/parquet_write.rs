//! The one Parquet writer of the project (`convert --to parquet` and the per-call reports),
//! writing the most widely readable Arrow types.
//!
//! polars' own writer stores text as Arrow string views, which older readers reject (pyarrow
//! before 16: "Unrecognized type: 24"). This writer hands polars' Parquet encoder the oldest
//! compatible Arrow types instead: text as `large_string`, and the timestamp columns as
//! `timestamp[ns, tz=UTC]` (Parquet `TIMESTAMP(NANOS, isAdjustedToUTC=true)`), so that every
//! reader sees the unit and the instant exactly.

use std::io::Write;
use std::sync::Arc;

use polars::prelude::*;
use polars_arrow::array::PrimitiveArray;
use polars_arrow::datatypes::{ArrowDataType, ArrowSchema, TimeUnit as ArrowTimeUnit};
use polars_arrow::record_batch::RecordBatchT;
use polars_buffer::Buffer;
use polars_parquet::write::{
    CompressionOptions, Encoding, FileWriter, RowGroupIterator, StatisticsOptions, Version,
    WriteOptions, get_dtype_encoding,
};

/// Writes data frames of one schema as Parquet row groups.
pub(crate) struct TableWriter<W: Write> {
    writer: FileWriter<W>,
    schema: Arc<ArrowSchema>,
    encodings: Buffer<Vec<Encoding>>,
    options: WriteOptions,
    /// Columns holding nanoseconds since the epoch (Int64 in the frames), written as UTC
    /// timestamps.
    timestamps: Vec<usize>,
}

/// The Arrow type of a timestamp column.
pub(crate) fn utc_nanos() -> ArrowDataType {
    ArrowDataType::Timestamp(ArrowTimeUnit::Nanosecond, Some("UTC".into()))
}

impl<W: Write> TableWriter<W> {
    /// A writer of frames with `schema`; the columns named in `timestamps` (Int64 nanoseconds
    /// in the frames) are written as UTC timestamps.
    pub(crate) fn new(out: W, schema: &Schema, timestamps: &[&str]) -> PolarsResult<Self> {
        let mut arrow = schema.to_arrow(CompatLevel::oldest());
        let mut ts = Vec::new();
        for name in timestamps {
            if let (Some(i), Some(field)) = (arrow.index_of(name), arrow.get_mut(name)) {
                field.dtype = utc_nanos();
                ts.push(i);
            }
        }
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
        })
    }

    /// Write `df` (the writer's schema) as one row group per chunk.
    pub(crate) fn write(&mut self, df: &DataFrame) -> PolarsResult<()> {
        if df.height() == 0 {
            return Ok(());
        }
        let mut df = df.clone();
        df.rechunk_mut();
        for batch in df.iter_chunks(CompatLevel::oldest(), false) {
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
    pub(crate) fn finish(&mut self) -> PolarsResult<u64> {
        self.writer.end(None)
    }
}
