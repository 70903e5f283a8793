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
    purge_sooner();
    report_shrunk_inputs();
    let cli = mcpsim::cli::Cli::parse();
    mcpsim::trace::set_reader_nice(reader_nice());
    let mut stdout = io::stdout().lock();
    let mut stderr = io::stderr();
    match mcpsim::cli::run(cli, &mut stdout, &mut stderr) {
        Ok(code) => ExitCode::from(code),
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            let _ = writeln!(stderr, "error: {}", message(&e));
            ExitCode::from(2)
        }
    }
}

/// An error and its causes, each said once: an error whose text already quotes its cause (a
/// file's name before the system's reason) is not followed by the cause again.
fn message(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if out.contains(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    out
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

/// Plain JSONL and Parquet inputs are read through memory maps. When another program makes
/// such a file shorter while it is read (log rotation's `copytruncate` empties a live log), the
/// kernel raises `SIGBUS` on the first page read past the new end, which would kill the process
/// without a word. This handler names the file and exits with code 2, as for any input that
/// cannot be read; a `SIGBUS` elsewhere keeps its default action.
fn report_shrunk_inputs() {
    #[cfg(unix)]
    // SAFETY: installs a handler that only reads atomics, writes to stderr and exits, all
    // async-signal-safe; the `sigaction` is zeroed and then filled as the call expects.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = on_bus_error as *const () as usize;
        action.sa_flags = libc::SA_SIGINFO;
        libc::sigemptyset(&mut action.sa_mask);
        libc::sigaction(libc::SIGBUS, &action, std::ptr::null_mut());
    }
}

#[cfg(unix)]
extern "C" fn on_bus_error(_: libc::c_int, info: *mut libc::siginfo_t, _: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid `siginfo_t` to an `SA_SIGINFO` handler.
    let addr = unsafe { (*info).si_addr() } as usize;
    let Some(name) = mcpsim::trace::mapped_file_at(addr) else {
        // Not an input's map: the default action, when the faulting instruction runs again.
        // SAFETY: resets this signal's disposition; no memory is passed.
        unsafe { libc::signal(libc::SIGBUS, libc::SIG_DFL) };
        return;
    };
    let say = |text: &[u8]| {
        // SAFETY: writes bytes of a live slice to stderr.
        unsafe { libc::write(2, text.as_ptr().cast(), text.len()) };
    };
    say(b"error: ");
    say(name.as_bytes());
    say(
        b": the file got shorter while it was read (another program truncated or rewrote it, \
as log rotation with copytruncate does); read a copy of it\n",
    );
    // SAFETY: ends the process at once, as a signal handler may.
    unsafe { libc::_exit(2) }
}

// The allocator's own setting of an option (linked with it above).
unsafe extern "C" {
    fn mi_option_set(option: i32, value: std::ffi::c_long);
}

/// mimalloc's `mi_option_purge_delay`: how long freed memory stays committed before it goes
/// back to the system, in milliseconds (1,000 by default). Its place in `mi_option_e` is 15 in
/// both the v2 and v3 headers of the crate's bundled sources.
const MI_OPTION_PURGE_DELAY: i32 = 15;

/// Hand freed memory back to the system after 250 ms instead of a second. Readers allocate
/// batches on their threads and the replay frees them on its own; with the default, a second's
/// worth of them stayed resident: on 10M calls, per-call Parquet peaked at 187 MiB with it and
/// 167 MiB with 250 ms, at the same speed (100 ms: 163 MiB, but `convert` took 2% longer; see
/// docs/performance.md). `MIMALLOC_PURGE_DELAY` still decides when set.
fn purge_sooner() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: sets one of the allocator's options, an integer it reads when it purges;
        // no memory is passed.
        unsafe { mi_option_set(MI_OPTION_PURGE_DELAY, 250) }
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
    e.chain().any(mcpsim::trace::is_broken_pipe)
}
