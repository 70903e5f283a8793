//! Work done on a thread of its own, ahead of the thread that takes its results: the record
//! readers make batches (`RecordBatches` in [`super::merge`]) and the CSV reader parses records
//! ([`super::csv`]) while the replay works on what they made before.

use std::sync::mpsc::{Receiver, sync_channel};
use std::thread::{self, JoinHandle};

use super::TraceError;

/// The items a thread makes, taken in the order it made them.
pub(crate) struct Ahead<T> {
    made: Receiver<Result<T, TraceError>>,
    thread: Option<JoinHandle<()>>,
    done: bool,
}

impl<T: Send + 'static> Ahead<T> {
    /// Run `make` on a thread named `thread_name` until it gives `None` or an error, holding
    /// at most `ahead` items not yet taken besides the one it waits to hand over (with 0, it
    /// makes the next item while the taker works on the last). `file` names the input in the
    /// error given when the thread cannot be started.
    pub(crate) fn start(
        thread_name: &str,
        file: &str,
        ahead: usize,
        mut make: impl FnMut() -> Result<Option<T>, TraceError> + Send + 'static,
    ) -> Ahead<T> {
        let (tx, made) = sync_channel(ahead);
        let run = move || {
            super::priority::defer_to_replay();
            loop {
                let next = make();
                let last = !matches!(next, Ok(Some(_)));
                // A send fails only when the taker was dropped: nobody wants more.
                let sent = match next {
                    Ok(Some(item)) => tx.send(Ok(item)),
                    Ok(None) => return,
                    Err(e) => tx.send(Err(e)),
                };
                if sent.is_err() || last {
                    return;
                }
            }
        };
        match thread::Builder::new().name(thread_name.into()).spawn(run) {
            Ok(thread) => Ahead {
                made,
                thread: Some(thread),
                done: false,
            },
            Err(source) => {
                let (tx, made) = sync_channel(1);
                let file = format!("{file} (a reader thread could not be started)");
                let _ = tx.send(Err(TraceError::Io { file, source }));
                Ahead {
                    made,
                    thread: None,
                    done: false,
                }
            }
        }
    }

    /// The next item; `None` once the thread is done. An error ends the items. A panic of the
    /// thread goes on here, as it would have had the work run on this thread.
    pub(crate) fn next(&mut self) -> Result<Option<T>, TraceError> {
        if self.done {
            return Ok(None);
        }
        match self.made.recv() {
            Ok(Ok(item)) => Ok(Some(item)),
            Ok(Err(e)) => {
                self.done = true;
                Err(e)
            }
            Err(_) => {
                self.done = true;
                if let Some(Err(panic)) = self.thread.take().map(JoinHandle::join) {
                    std::panic::resume_unwind(panic);
                }
                Ok(None)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[test]
    fn items_come_in_order_then_the_end_or_the_error() {
        let mut n = 0;
        let mut ahead = Ahead::start("t", "f", 1, move || {
            n += 1;
            Ok((n <= 5).then_some(n))
        });
        let got: Vec<u32> = std::iter::from_fn(|| ahead.next().ok().flatten()).collect();
        assert_eq!(got, [1, 2, 3, 4, 5]);
        assert!(matches!(ahead.next(), Ok(None)));

        let mut n = 0;
        let mut ahead = Ahead::start("t", "f", 2, move || {
            n += 1;
            if n == 3 {
                return Err(TraceError::Table {
                    file: "f".into(),
                    reason: "bad".into(),
                });
            }
            Ok(Some(n))
        });
        assert!(matches!(ahead.next(), Ok(Some(1))));
        assert!(matches!(ahead.next(), Ok(Some(2))));
        assert_eq!(
            ahead.next().map_err(|e| e.to_string()).err().as_deref(),
            Some("f: bad")
        );
        assert!(matches!(ahead.next(), Ok(None)), "nothing after the error");
    }

    #[test]
    fn at_most_ahead_items_wait_besides_the_one_being_handed_over() {
        use std::sync::atomic::{AtomicU32, Ordering};
        for ahead in [0, 1, 2] {
            let made = Arc::new(AtomicU32::new(0));
            let counted = Arc::clone(&made);
            let mut items = Ahead::start("t", "f", ahead, move || {
                Ok(Some(counted.fetch_add(1, Ordering::SeqCst) + 1))
            });
            for taken in 1..=3u32 {
                assert!(matches!(items.next(), Ok(Some(n)) if n == taken));
                // The thread runs ahead as far as it may (waited for however slow the
                // machine), then stops there.
                let bound = taken + u32::try_from(ahead).expect("small") + 1;
                let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
                while made.load(Ordering::SeqCst) < bound && std::time::Instant::now() < deadline {
                    std::thread::sleep(std::time::Duration::from_millis(1));
                }
                std::thread::sleep(std::time::Duration::from_millis(20));
                assert_eq!(
                    made.load(Ordering::SeqCst),
                    bound,
                    "ahead {ahead}, after {taken} taken"
                );
            }
        }
    }

    #[test]
    fn a_panic_of_the_thread_goes_on_in_the_taker() {
        let mut ahead: Ahead<u32> = Ahead::start("t", "f", 1, || panic!("reader bug"));
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| ahead.next()));
        let message = caught
            .err()
            .and_then(|p| p.downcast_ref::<&str>().map(|s| s.to_string()));
        assert_eq!(message.as_deref(), Some("reader bug"));
    }
}
