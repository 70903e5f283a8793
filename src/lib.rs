//! mcpsim replays recorded MCP `tools/call` traffic against candidate gateway policies.
//!
//! A call travels `trace` (readers turn every supported format into a [`trace::CallRecord`])
//! → [`replay`] (calls in time order through the [`engine`], one engine per policy)
//! → [`report`] (summaries and per-call decisions, rendered in several formats).
//!
//! The [`engine`] is pure: no I/O, no clock of its own (each call's timestamp is the clock),
//! so a live gateway could embed it; of the crate it reads only the call model in [`call`]. Policies are parsed and validated by [`policy`] into the
//! compiled form the engine runs.
#![warn(missing_docs)]

pub mod call;
pub mod cli;
pub mod engine;
pub mod generate;
pub mod policy;
pub mod replay;
pub mod report;
pub mod suite;
pub mod trace;
