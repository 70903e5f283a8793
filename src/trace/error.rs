//! Errors that end a trace read.

use std::path::PathBuf;

/// Why reading traces failed. Every variant names the file (and, for bad records, the line and
/// field) so the message can be shown to the user as is.
#[derive(Debug, thiserror::Error)]
pub enum TraceError {
    /// The file could not be opened or read.
    #[error("{file}: {source}")]
    Io {
        /// Display name of the input.
        file: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A glob pattern was malformed.
    #[error("bad glob pattern {pattern:?}: {reason}")]
    BadGlob {
        /// The pattern as given.
        pattern: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A path or glob matched no file.
    #[error("{pattern}: no such file (or the glob matched nothing)")]
    NoMatch {
        /// The path or pattern as given.
        pattern: String,
    },
    /// `-` (stdin) was given more than once.
    #[error("stdin (`-`) can be read only once")]
    StdinTwice,
    /// The format could not be recognised from the first lines.
    #[error("{file}: cannot detect the trace format ({reason}); name it with --from")]
    UnknownFormat {
        /// Display name of the input.
        file: String,
        /// What the first lines looked like.
        reason: String,
    },
    /// A bad record under `--strict`.
    #[error("{file}:{line}: {reason}")]
    BadRecord {
        /// Display name of the input.
        file: String,
        /// 1-based line (or row) number.
        line: u64,
        /// The offending field (dotted path), when one is to blame.
        field: Option<String>,
        /// The full reason, starting with ``field `x`: `` when a field is to blame.
        reason: String,
    },
    /// A call earlier than calls already handed out: its input is out of time order by more
    /// than the calls it was read ahead.
    #[error(
        "{file}:{line}: this call is earlier than calls already replayed: the file is out of time order by more than {window} calls; give a larger --reorder-window, or --reorder-window 0 to sort the whole input in memory"
    )]
    OutOfOrder {
        /// Display name of the input.
        file: String,
        /// 1-based line (or row) number of the late call.
        line: u64,
        /// How many calls the input was read ahead.
        window: u64,
    },
    /// A whole CSV or Parquet file could not be decoded.
    #[error("{file}: {reason}")]
    Table {
        /// Display name of the input.
        file: String,
        /// What polars reported.
        reason: String,
    },
    /// Writing converted records failed.
    #[error("writing {what}: {reason}")]
    Write {
        /// What was being written (`csv`, `parquet`, `jsonl`).
        what: &'static str,
        /// What went wrong.
        reason: String,
        /// The destination was a pipe its reader closed (`mcpsim convert … | head`).
        broken_pipe: bool,
    },
    /// A spooled copy of stdin could not be created.
    #[error("cannot spool stdin to {path}: {source}")]
    Spool {
        /// The temporary file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

impl TraceError {
    /// Whether writing stopped because the reader of a pipe closed it: not a failure for a
    /// command whose output is piped into `head`.
    pub fn is_broken_pipe(&self) -> bool {
        matches!(
            self,
            TraceError::Write {
                broken_pipe: true,
                ..
            }
        )
    }
}

/// Whether `e` or an error it wraps says that the reader of a pipe closed it. serde_json's
/// errors are asked apart: theirs hide the I/O error they wrap from `source()`.
pub fn is_broken_pipe(e: &(dyn std::error::Error + 'static)) -> bool {
    std::iter::successors(Some(e), |e| e.source()).any(|e| {
        let kind = (e.downcast_ref::<std::io::Error>().map(std::io::Error::kind))
            .or_else(|| e.downcast_ref::<serde_json::Error>()?.io_error_kind());
        kind == Some(std::io::ErrorKind::BrokenPipe)
            || (e.downcast_ref::<TraceError>()).is_some_and(TraceError::is_broken_pipe)
    })
}

#[cfg(test)]
mod tests {
    use std::io::{self, ErrorKind, Write};

    use super::{TraceError, is_broken_pipe};

    /// A pipe whose reader is gone.
    struct Closed;

    impl Write for Closed {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            Err(io::Error::new(ErrorKind::BrokenPipe, "closed"))
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_broken_pipe_is_found_whatever_wraps_it() {
        let json = serde_json::to_writer(Closed, &[1, 2]).unwrap_err();
        assert!(is_broken_pipe(&json), "{json}");
        let io = Closed.write(b"x").unwrap_err();
        assert!(is_broken_pipe(&io));
        let wrapped = anyhow::Error::new(json).context("writing the report");
        assert!(wrapped.chain().any(is_broken_pipe));
        let write = TraceError::Write {
            what: "csv",
            reason: "closed".into(),
            broken_pipe: true,
        };
        assert!(is_broken_pipe(&write));
        // Other failures are failures.
        let syntax = serde_json::from_str::<u8>("x").unwrap_err();
        assert!(!is_broken_pipe(&syntax));
        let full = io::Error::new(ErrorKind::StorageFull, "full");
        assert!(!is_broken_pipe(&full));
        let write = TraceError::Write {
            what: "csv",
            reason: "full".into(),
            broken_pipe: false,
        };
        assert!(!is_broken_pipe(&write));
    }
}
