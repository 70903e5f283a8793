//! How fast the readers alone drain a trace, with no replay behind them:
//!
//! ```sh
//! cargo bench --bench readers -- calls-1m-s42.jsonl calls-10m-s42.parquet
//! ```
//!
//! (or `MCPSIM_BENCH_FILES=a.jsonl,b.parquet cargo bench --bench readers`). For each file it
//! drains the trace three times through the one read path (`Trace::next_call`: the batch
//! reader and the time-order merge, no records built), then once building every call's whole
//! record (what `convert`, `explain` and `suggest` ask for), and prints calls per second. It
//! measures, asserts nothing, and is not part of `benches/run.sh`.

use std::time::Instant;

use mcpsim::trace::{ReadOptions, Trace};

// As in the binary: the figures should be the ones users see.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    // `cargo bench` adds `--bench`; every other argument is a file.
    let mut files: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    if let Ok(list) = std::env::var("MCPSIM_BENCH_FILES") {
        files.extend(list.split(',').filter(|f| !f.is_empty()).map(String::from));
    }
    if files.is_empty() {
        eprintln!("readers: name the trace files to drain (see benches/readers.rs)");
        return;
    }
    for file in &files {
        if let Err(e) = drain(file) {
            eprintln!("{file}: {e}");
            std::process::exit(2);
        }
    }
}

fn drain(file: &str) -> Result<(), Box<dyn std::error::Error>> {
    let bytes = std::fs::metadata(file)?.len() as f64;
    let inputs = [file.to_string()];
    let rate = |calls: u64, secs: f64| {
        format!(
            "{calls} calls in {secs:.3} s: {:.2} GB/s, {:.1} M calls/s",
            bytes / secs / 1e9,
            calls as f64 / secs / 1e6
        )
    };
    for round in 0..3 {
        let start = Instant::now();
        let mut trace = Trace::open(&inputs, &ReadOptions::default())?;
        let mut calls = 0u64;
        while trace.next_call()?.is_some() {
            calls += 1;
        }
        let secs = start.elapsed().as_secs_f64();
        println!("{file}: calls, round {round}: {}", rate(calls, secs));
    }
    let start = Instant::now();
    let mut trace = Trace::open(&inputs, &ReadOptions::default())?;
    let mut calls = 0u64;
    while trace.next_record()?.is_some() {
        calls += 1;
    }
    let secs = start.elapsed().as_secs_f64();
    println!("{file}: records: {}", rate(calls, secs));
    Ok(())
}
