//! Reader threads defer to the replay.
//!
//! A replay is one sequential thread (counters are sequential by nature) fed by reader threads
//! that outnumber the cores left to them: on two cores, two readers and the replay. Left to
//! the scheduler's fairness, each of the three would get two thirds of a core whenever all
//! are busy, and the replay, the one thread nothing can stand in for, would run at two thirds
//! of its speed. Readers therefore run at a lower priority (a higher nice value): the replay
//! keeps a core whenever it has work, and the readers use the rest, including the replay's
//! core whenever the replay waits for a batch. Nothing else changes: the readers are as many,
//! and the output the same.

/// How much lower reader threads run (the nice increment; 0 leaves them as they are).
/// `MCPSIM_READER_NICE` overrides it, to measure the difference.
const READER_NICE: i32 = 5;

/// Lower the calling thread's priority by [`READER_NICE`]. Best effort: where the system has
/// no per-thread priority, or refuses, the thread runs as it is.
pub(crate) fn defer_to_replay() {
    let nice = reader_nice();
    if nice == 0 {
        return;
    }
    #[cfg(target_os = "linux")]
    {
        let now = own_nice();
        // SAFETY: a plain system call on the calling thread; no memory is shared with it. On
        // Linux the nice value is per thread, and a thread id names one thread.
        unsafe {
            libc::setpriority(libc::PRIO_PROCESS, own_tid(), (now + nice).min(19));
        }
    }
}

/// The nice increment in force: [`READER_NICE`] or `MCPSIM_READER_NICE`.
fn reader_nice() -> i32 {
    std::env::var("MCPSIM_READER_NICE")
        .ok()
        .and_then(|v| v.trim().parse::<i32>().ok())
        .unwrap_or(READER_NICE)
        .clamp(0, 19)
}

#[cfg(target_os = "linux")]
fn own_tid() -> libc::id_t {
    // SAFETY: gettid takes no arguments and cannot fail.
    unsafe { libc::syscall(libc::SYS_gettid) as libc::id_t }
}

/// The calling thread's nice value.
#[cfg(target_os = "linux")]
fn own_nice() -> i32 {
    // SAFETY: a plain system call on the calling thread.
    unsafe { libc::getpriority(libc::PRIO_PROCESS, own_tid()) }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[test]
    fn a_reader_thread_defers_and_the_caller_does_not() {
        let caller = own_nice();
        let (before, after) = std::thread::spawn(|| {
            let before = own_nice();
            defer_to_replay();
            (before, own_nice())
        })
        .join()
        .expect("the thread runs");
        assert_eq!(after, (before + reader_nice()).min(19));
        if reader_nice() > 0 && before < 19 {
            assert!(after > before, "{before} → {after}");
        }
        assert_eq!(own_nice(), caller, "only the reader thread changes");
    }
}
