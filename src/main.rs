use std::io::Write;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Replay recorded MCP tool-call traffic against candidate gateway policies.
#[derive(Debug, Parser)]
#[command(name = "mcpsim", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Generate a deterministic synthetic trace.
    Generate(mcpsim::cli::generate::GenerateArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let mut err = std::io::stderr();
    let result = match &cli.command {
        Command::Generate(args) => mcpsim::cli::generate::run(args, &mut out, &mut err),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            if e.chain().any(|c| {
                c.downcast_ref::<std::io::Error>()
                    .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            }) {
                return ExitCode::SUCCESS;
            }
            let _ = writeln!(err, "error: {e:#}");
            ExitCode::from(2)
        }
    }
}
