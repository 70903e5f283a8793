//! Trace readers: every supported input format turned into [`CallRecord`]s.

mod record;

pub use record::{Args, CallRecord, Nanos, Origin, Recorded, RecordedDecision, Sym, Upstream};
