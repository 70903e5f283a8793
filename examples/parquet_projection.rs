//! How fast polars alone reads the columns a call batch needs from a Parquet file, one row
//! group at a time (the baseline for the batch reader):
//!
//! `cargo run --release --example parquet_projection -- FILE.parquet [COLUMNS]`
//!
//! COLUMNS is a comma-separated list (default: the batch reader's columns). Row groups are read
//! in turn, each with polars' own column parallelism; frames are dropped once read.

use std::fs::File;
use std::sync::Arc;
use std::time::Instant;

use polars::io::parquet::read::ParallelStrategy;
use polars::prelude::*;

// As the mcpsim binary does.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> PolarsResult<()> {
    let mut args = std::env::args().skip(1);
    let Some(path) = args.next() else {
        eprintln!("usage: parquet_projection FILE.parquet [COLUMNS]");
        std::process::exit(2);
    };
    let columns: Vec<String> = args
        .next()
        .unwrap_or_else(|| "ts,server,grant,session,tool,upstream,args".into())
        .split(',')
        .map(String::from)
        .collect();
    for _ in 0..3 {
        let t = Instant::now();
        let md = Arc::clone(ParquetReader::new(File::open(&path)?).get_metadata()?);
        let mut rows = 0;
        for rg in &md.row_groups {
            let mut one = (*md).clone();
            one.row_groups = vec![rg.clone()];
            one.num_rows = rg.num_rows();
            let mut r = ParquetReader::new(File::open(&path)?);
            r.set_metadata(Arc::new(one));
            rows += r
                .with_columns(Some(columns.clone()))
                .read_parallel(ParallelStrategy::Columns)
                .finish()?
                .height();
        }
        let s = t.elapsed().as_secs_f64();
        println!(
            "{rows} rows of {columns:?} in {s:.3} s = {:.1} M rows/s",
            rows as f64 / s / 1e6
        );
    }
    Ok(())
}
