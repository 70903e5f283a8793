//! The boundary around third-party decoders: a panic inside one becomes an error for its file.
//!
//! polars' Parquet and CSV decoders assume well-formed input and panic on some damaged files
//! (a failed assertion, a slice out of range, a capacity overflow). Every call into them that
//! can meet damaged bytes runs under [`catch`], which turns such a panic into the decoder's
//! message, and keeps the panic from being printed: a damaged file is bad input (exit 2 with
//! an error naming the file), not a crash with a backtrace.

use std::cell::Cell;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Once;

thread_local! {
    /// How many [`catch`] calls are running on this thread.
    static CATCHING: Cell<u32> = const { Cell::new(0) };
}

static HOOK: Once = Once::new();

/// Run `f`; a panic inside it comes back as `Err` with the panic's message, unprinted.
///
/// Panics elsewhere (outside any `catch`, or on other threads) still reach the hook that was
/// installed before, printed as usual.
pub(crate) fn catch<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    HOOK.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if CATCHING.with(Cell::get) == 0 {
                previous(info);
            }
        }));
    });
    CATCHING.with(|c| c.set(c.get() + 1));
    let result = panic::catch_unwind(AssertUnwindSafe(f));
    CATCHING.with(|c| c.set(c.get() - 1));
    result.map_err(|payload| {
        payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown failure".to_string())
    })
}

/// The reason given for a file whose decoder panicked.
pub(crate) fn damaged(format: &str, message: &str) -> String {
    format!("damaged {format} file: the decoder failed ({message})")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_becomes_its_message() {
        assert_eq!(catch(|| 7), Ok(7));
        let r: Result<(), String> = catch(|| panic!("thrift bool field"));
        assert_eq!(r, Err("thrift bool field".to_string()));
        let r: Result<(), String> = catch(|| panic!("{} out of range", 5));
        assert_eq!(r, Err("5 out of range".to_string()));
        // Nested catches unwind to the innermost.
        let r = catch(|| catch(|| -> u8 { panic!("inner") }).is_err());
        assert_eq!(r, Ok(true));
    }
}
