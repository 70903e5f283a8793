//! Trace readers: every supported input format turned into [`CallRecord`]s.
//!
//! [`Trace::open`] expands the inputs ([`expand_inputs`]), detects each file's [`Format`],
//! decompresses gzip/zstd, and yields calls in timestamp order through [`Trace::next_call`].
//! Bad lines are skipped and counted in [`ReadStats`] (or, with `strict`, end the read with a
//! [`TraceError`] naming file, line and field). The writers ([`write_jsonl`], [`write_csv`],
//! [`write_parquet`]) produce mcpsim's own record formats for `mcpsim convert`.

mod agent;
mod agentgateway;
mod ahead;
mod batch;
mod claude_code;
mod claude_desktop;
mod cline;
mod cline_sdk;
mod codex;
mod csv;
mod csv_out;
mod error;
mod format;
mod guard;
mod input;
mod intercept_log;
mod intern;
mod json_out;
mod jsonl;
mod jsonl_batch;
mod jsonrpc;
mod mapped;
mod merge;
mod opencode;
mod otel;
mod pairing;
mod parquet;
mod parquet_batch;
mod parquet_inflate;
mod policylayer_log;
mod priority;
mod read_stats;
mod record;
mod scan;
mod source;
mod span_links;
mod table;
pub(crate) mod table_write;
mod time;
mod toolhive;
mod write;

pub use crate::call::{Args, ArgsView, Nanos, RawArgs, Sym, Upstream, raw_object_parses};
pub use agent::{AgentGrant, AgentOptions};
pub use batch::{
    BatchRows, BatchSource, CallBatch, LocalSymbols, NO_SYM, NOT_SCREENED, Prescreen,
    PrescreenRows, RowRest, ScreenRows, Sessions, Symbols,
};
pub(crate) use csv_out::CsvRow;
pub use error::{TraceError, is_broken_pipe};
pub use format::Format;
pub use input::{InputSpec, expand_inputs};
pub(crate) use json_out::JsonObject;
pub use mapped::mapped_file_at;
pub use merge::{
    Call, DEFAULT_REORDER_WINDOW, LOOKAHEAD, MAX_OPEN, MIN_LOOKAHEAD, Names, ReadOptions, Trace,
};
pub use pairing::Replies;
pub(crate) use pairing::cancelled_note;
pub use priority::set_reader_nice;
pub use read_stats::{MAX_EXAMPLES, ReadStats, Skipped};
pub use record::{CallFields, CallRecord, Origin, Recorded, RecordedDecision};
pub use scan::needs_escape;
pub use time::{
    format_ts, format_ts_into, parse_offset, parse_ts_str, parse_ts_value, set_assume_tz,
};
pub use write::{write_csv, write_jsonl, write_parquet};
