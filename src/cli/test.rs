//! `mcpsim test [PATH…]`: run the policy tests kept beside the policies.

use std::io::Write;
use std::path::PathBuf;

use crate::suite::{self, Runner, Totals, Writes, render};

/// Arguments of `mcpsim test`.
#[derive(clap::Args, Debug)]
#[command(after_help = "\
Test files are named *_test.yaml, *_test.yml or *_test.json; see docs/ci.md for their format.

Examples:
  mcpsim test                              # every test file under the current directory
  mcpsim test policies/ --format junit -o junit.xml
  mcpsim test --update && mcpsim test --accept")]
pub struct TestArgs {
    /// Test files, or directories to search for them (default: the current directory).
    #[arg(value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// Write `<snapshot>.new` beside every snapshot that differs or is missing, for review.
    #[arg(long, conflicts_with = "accept")]
    pub update: bool,
    /// Accept the pending `.new` snapshots (they replace the snapshots) instead of running.
    #[arg(long)]
    pub accept: bool,
    /// Never write a file, whatever else is asked (also set by a `CI` environment variable
    /// other than `false` or `0`).
    #[arg(long, env = "CI", value_parser = clap::builder::FalseyValueParser::new(), hide_env_values = true)]
    pub ci: bool,
    /// How to print the outcome: `human`, `junit` (JUnit XML) or `json`.
    #[arg(
        long,
        short = 'f',
        value_enum,
        default_value = "human",
        value_name = "FORMAT"
    )]
    pub format: TestFormat,
    /// Write the outcome to FILE instead of standard output.
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,
}

/// The outcome formats of `mcpsim test`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TestFormat {
    /// A line per test, then every failure with its diff.
    Human,
    /// JUnit XML, for CI test reporters.
    Junit,
    /// One JSON document.
    Json,
}

/// Run `test`; returns the exit code: 0 every test passed, 1 a test failed, 2 a test could not
/// run (a bad test file, policy or trace).
pub fn run(args: &TestArgs, out: &mut dyn Write, err: &mut dyn Write) -> anyhow::Result<u8> {
    let paths = if args.paths.is_empty() {
        vec![PathBuf::from(".")]
    } else {
        args.paths.clone()
    };
    let files = suite::discover(&paths)?;
    if args.accept {
        if args.ci {
            anyhow::bail!("--accept writes snapshots, and nothing is written under CI");
        }
        let accepted = suite::accept(&files)?;
        for path in &accepted {
            writeln!(out, "accepted {}", path.display())?;
        }
        writeln!(
            out,
            "{} snapshot{} accepted",
            accepted.len(),
            if accepted.len() == 1 { "" } else { "s" }
        )?;
        return Ok(0);
    }
    let writes = match (args.update, args.ci) {
        (true, true) => {
            writeln!(
                err,
                "note: --update writes nothing under CI; comparing only"
            )?;
            Writes::None
        }
        (true, false) => Writes::Pending,
        (false, _) => Writes::None,
    };
    let exe = std::env::current_exe()?;
    let runner = Runner { exe: &exe, writes };
    let mut outcomes = Vec::new();
    for file in &files {
        outcomes.extend(runner.run_file(file));
    }
    let reads = super::common::Reads::default().files(&files);
    let mut dest = super::common::open_output(args.output.as_deref(), &reads, out)?;
    match args.format {
        TestFormat::Human => render::human(&outcomes, &mut dest)?,
        TestFormat::Junit => render::junit(&outcomes, &mut dest)?,
        TestFormat::Json => render::json(&outcomes, &mut dest)?,
    }
    dest.flush()?;
    Ok(Totals::of(&outcomes).exit_code())
}
