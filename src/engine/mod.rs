//! The evaluator: predicates, windowed counters, decisions. No I/O; the clock is passed in.

mod decision;

pub use decision::{Decision, DecisionKind, Scope, Throttle};
