//! The evaluator: predicates, windowed counters, decisions. No I/O; the clock is passed in.
//! Of the crate it imports only [`crate::call`], so a gateway could embed it as it is.
//!
//! A [`Policy`] is compiled once (see [`crate::policy`]) and shared; an [`Engine`] holds one
//! policy and the counter state of one replay, and turns each [`CallView`] into a [`Decision`].
//!
//! Counters are keyed by scope key and counter name: `grant` → (server, grant), `session` →
//! (server, grant, session), `server` → (server), `global` → one for the whole input. A call
//! without a grant (or session) uses the "absent" value for that part of the key, so all such
//! calls of one server share a counter.

mod counters;
mod decision;
mod eval;
mod explain;
pub(crate) mod gofmt;
pub mod intercept;
mod layer;
mod limits;
mod policy;
pub(crate) mod predicate;
mod quick;
mod screen;
pub(crate) mod window;

pub use crate::call::{CallIds, CallView};
pub use decision::{Decision, DecisionKind, Scope, Throttle};
pub use eval::{Engine, EvalOptions, StaticOutcome, static_outcome};
pub use explain::{ExplainStep, StepOutcome};
pub use intercept::{InterceptEngine, InterceptPolicy, InterceptStore};
pub use policy::{Algorithm, LimitSpec, Policy, PolicyLayer, RuleLimit, ScreenedTool};
pub(crate) use policy::{Counter, Limit, LimitMessages, Predicate, ToolRules};
pub use screen::Screened;
