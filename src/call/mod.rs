//! The call model: what the evaluator reads of one `tools/call`. The ground floor of the
//! crate: it imports nothing else of it, so the [`crate::engine`] can depend on it alone.
//!
//! A [`CallView`] borrows one call (timestamp, names, [`Args`], [`Upstream`]); [`CallIds`]
//! carries the names as ids of the caller's symbol table when it has them.

mod args;
mod json_text;
mod upstream;
mod view;

use std::sync::Arc;

pub(crate) use args::lookup_in_map;
pub use args::{ArgLookup, Args, ArgsRef, ArgsView, RawArgs, raw_object_parses};
pub(crate) use json_text::{object_certainly_parses, write_sorted};
pub use upstream::Upstream;
pub use view::{CallIds, CallView, reply_time};

/// Nanoseconds since the Unix epoch, UTC. Every timestamp in mcpsim is one of these.
pub type Nanos = i64;

/// An interned string (server, grant, session, tool names repeat on every call).
pub type Sym = Arc<str>;
