use std::io::{self, Write};
use std::process::ExitCode;

use clap::Parser;

// Replays allocate argument maps on reader threads and free them on the replay thread; the
// system allocator serialises those cross-thread frees, mimalloc does not.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// How much lower the reader threads run than the replay thread (a nice increment; see
/// `mcpsim::trace::set_reader_nice`). `MCPSIM_READER_NICE` overrides it, to measure the
/// difference; 0 turns it off.
const READER_NICE: i32 = 5;

fn main() -> ExitCode {
    no_huge_pages();
    let cli = mcpsim::cli::Cli::parse();
    mcpsim::trace::set_reader_nice(reader_nice());
    let mut stdout = io::stdout().lock();
    let mut stderr = io::stderr();
    match mcpsim::cli::run(cli, &mut stdout, &mut stderr) {
        Ok(code) => ExitCode::from(code),
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            let _ = writeln!(stderr, "error: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// Ask the kernel for no transparent huge pages in this process. With them, the allocator's
/// heap grows in 2 MiB pages that stay resident when only part of them is used: on 10M calls,
/// per-call CSV peaks at 198 MiB with them and 150 MiB without, at the same speed (see
/// docs/performance.md). This is what mimalloc's own `MIMALLOC_ALLOW_THP=0` does.
fn no_huge_pages() {
    #[cfg(target_os = "linux")]
    // SAFETY: a plain system call setting a flag of the calling process; no memory is passed.
    unsafe {
        libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
    }
}

/// [`READER_NICE`], or `MCPSIM_READER_NICE` when set to a number.
fn reader_nice() -> i32 {
    std::env::var("MCPSIM_READER_NICE")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(READER_NICE)
}

/// `mcpsim … | head` must end quietly.
fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<io::Error>()
            .is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe)
    })
}
