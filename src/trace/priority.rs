//! Reader threads may defer to the replay, when the program asks.
//!
//! A replay is one sequential thread (counters are sequential by nature) fed by reader threads
//! that outnumber the cores left to them: on two cores, two readers and the replay. Left to
//! the scheduler's fairness, each of the three would get two thirds of a core whenever all
//! are busy, and the replay, the one thread nothing can stand in for, would run at two thirds
//! of its speed. Readers can therefore run at a lower priority (a higher nice value): the
//! replay keeps a core whenever it has work, and the readers use the rest, including the
//! replay's core whenever the replay waits for a batch. Nothing else changes: the readers are
//! as many, and the output the same.
//!
//! A library should not change the priority of threads in a program that embeds it, so the
//! readers leave theirs alone unless the program calls [`set_reader_nice`] (the `mcpsim`
//! binary does).

use std::sync::atomic::{AtomicI32, Ordering};

/// The nice increment of reader threads started from now on; 0, the default, leaves them as
/// they are.
static READER_NICE: AtomicI32 = AtomicI32::new(0);

/// Make reader threads started after this call lower their own priority by `increment` (a
/// nice increment, clamped to 0..=19; 0 leaves them as they are, the default). Best effort:
/// where the system has no per-thread priority, or refuses, the threads run as they are.
pub fn set_reader_nice(increment: i32) {
    READER_NICE.store(increment.clamp(0, 19), Ordering::Relaxed);
}

/// Lower the calling reader thread's priority by the increment set with [`set_reader_nice`].
pub(crate) fn defer_to_replay() {
    lower_own_priority(READER_NICE.load(Ordering::Relaxed));
}

/// Lower the calling thread's priority by `nice` (nothing when 0).
fn lower_own_priority(nice: i32) {
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
    fn readers_keep_their_priority_unless_asked() {
        let (before, after) = std::thread::spawn(|| {
            let before = own_nice();
            defer_to_replay();
            (before, own_nice())
        })
        .join()
        .expect("the thread runs");
        assert_eq!(after, before, "no program asked the readers to defer");
    }

    #[test]
    fn a_deferring_thread_lowers_its_priority_and_the_caller_does_not() {
        let caller = own_nice();
        let (before, after) = std::thread::spawn(|| {
            let before = own_nice();
            lower_own_priority(5);
            (before, own_nice())
        })
        .join()
        .expect("the thread runs");
        assert_eq!(after, (before + 5).min(19));
        assert_eq!(own_nice(), caller, "only the deferring thread changes");
    }
}
