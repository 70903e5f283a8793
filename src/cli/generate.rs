//! `mcpsim generate`: deterministic synthetic traces for demos, load tests and benchmarks.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;

use anyhow::Context;

use crate::generate::{GenConfig, Generator};

/// Output format of `mcpsim generate`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum GenFormat {
    /// One mcpsim call record per line.
    Jsonl,
    /// mcpsim call records as Parquet (zstd), written in row groups.
    Parquet,
    /// An MCP JSON-RPC recording: each call's request and reply, in time order.
    Jsonrpc,
}

/// Arguments of `mcpsim generate`.
#[derive(Debug, Clone, clap::Args)]
pub struct GenerateArgs {
    /// Number of calls to generate.
    #[arg(long)]
    pub calls: u64,
    /// Number of grants (agents); each is bound to one server.
    #[arg(long, default_value_t = 50)]
    pub grants: u32,
    /// Seed: the same seed and settings always give the same bytes.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Server names, comma-separated; grants are spread over them.
    #[arg(long, value_delimiter = ',', default_value = "fortigate-edge")]
    pub servers: Vec<String>,
    /// Calls per session on average (sessions last 1 to 2N−1 calls; 1: a new session on every
    /// call). Default: a few dozen to a few hundred.
    #[arg(long, value_name = "N")]
    pub session_calls: Option<u32>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = GenFormat::Jsonl)]
    pub format: GenFormat,
    /// Write to this file instead of standard output.
    #[arg(long, short)]
    pub output: Option<PathBuf>,
}

/// Rows per Parquet row group: large enough for fast scans, small enough that a reader can
/// convert one row group at a time in bounded memory.
const PARQUET_BATCH: usize = 64 * 1024;

/// Run `mcpsim generate`. Returns the process exit code.
pub fn run(args: &GenerateArgs, out: &mut dyn Write, err: &mut dyn Write) -> anyhow::Result<u8> {
    let cfg = GenConfig {
        calls: args.calls,
        grants: args.grants,
        seed: args.seed,
        servers: args.servers.clone(),
        session_calls: args.session_calls,
        ..GenConfig::default()
    };
    let generator = Generator::new(&cfg)?;
    if args.format == GenFormat::Parquet && args.output.is_none() {
        // Binary output on a terminal is never what anyone wants; a pipe is fine.
        if std::io::IsTerminal::is_terminal(&std::io::stdout()) {
            anyhow::bail!("refusing to write Parquet to a terminal; use --output FILE");
        }
    }
    let n = match &args.output {
        Some(path) => {
            let file =
                File::create(path).with_context(|| format!("creating {}", path.display()))?;
            let mut file = BufWriter::with_capacity(1 << 20, file);
            let n = write(generator, args.format, &mut file)
                .with_context(|| format!("writing {}", path.display()))?;
            file.flush()
                .with_context(|| format!("writing {}", path.display()))?;
            writeln!(err, "generated {n} calls into {}", path.display())?;
            n
        }
        None => write(generator, args.format, out)?,
    };
    debug_assert_eq!(n, args.calls);
    Ok(0)
}

fn write(generator: Generator, format: GenFormat, out: &mut dyn Write) -> anyhow::Result<u64> {
    Ok(match format {
        GenFormat::Jsonl => generator.write_jsonl(out)?,
        GenFormat::Parquet => generator.write_parquet(out, PARQUET_BATCH)?,
        GenFormat::Jsonrpc => generator.write_jsonrpc(out)?,
    })
}
