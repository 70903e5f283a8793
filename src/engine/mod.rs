//! The evaluator: predicates, windowed counters, decisions. No I/O; the clock is passed in.

mod decision;
pub mod intercept;

pub use decision::{Decision, DecisionKind, Scope, Throttle};
pub use intercept::{
    InterceptCall, InterceptCounter, InterceptEngine, InterceptOp, InterceptOptions,
    InterceptPolicy, InterceptRulesOutcome, InterceptWindow,
};
