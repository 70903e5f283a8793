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
    let nice = std::env::var("MCPSIM_READER_NICE")
        .ok()
        .and_then(|v| v.trim().parse::<i32>().ok())
        .unwrap_or(READER_NICE)
        .clamp(0, 19);
    if nice == 0 {
        return;
    }
    #[cfg(target_os = "linux")]
    // SAFETY: plain system calls on the calling thread; no memory is shared with them. On
    // Linux the nice value is per thread, and a thread id names one thread.
    unsafe {
        let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
        let now = libc::getpriority(libc::PRIO_PROCESS, tid);
        libc::setpriority(libc::PRIO_PROCESS, tid, (now + nice).min(19));
    }
}
