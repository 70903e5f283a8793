//! The one way calls are read: every input as [`CallBatch`]es, merged in time order as they
//! stream.
//!
//! Calls are handed out in timestamp order; equal timestamps keep input order (the order files
//! were given, then line order). [`Trace::open`] expands the inputs, detects each file's format
//! and opens its batch reader; [`Trace::next_call`] then walks the batches:
//! - several inputs are merged by a heap on (ts, input, line), taking rows in runs: every row of
//!   one input that comes before the other inputs' next row;
//! - each input is read ahead by [`LOOKAHEAD`] calls or [`LOOKAHEAD_BYTES`] of text, whichever
//!   comes first (shared among several inputs, at least [`MIN_LOOKAHEAD`] calls or
//!   [`MIN_LOOKAHEAD_BYTES`] each) before its calls are handed out.
//!   A call whose timestamp is earlier than one read before it in its own file is *out of
//!   order* ([`ReadStats::out_of_order`]): the calls read ahead and not yet handed out are then
//!   sorted again with it, and from then on the input is read ahead by the whole reorder window
//!   ([`ReadOptions::reorder_window`]). A small input is thus read whole and sorted before its
//!   first call is handed out, and a large one is held in bounded memory. A call earlier than
//!   one already handed out cannot be put in its place: that ends the read with
//!   [`TraceError::OutOfOrder`], which names the file and line and the window to give;
//! - every input is opened and read ahead once at [`Trace::open`]; then only the [`MAX_OPEN`]
//!   inputs that start first stay open, the others are closed and read again from their start
//!   when the merge reaches their first call (many files in time order, such as hourly logs,
//!   are then read one or two at a time), and an input read to its end lets its reader go;
//! - bad lines are counted per input ([`ReadStats`], examples in file order) or, under
//!   `strict`, end the read with [`TraceError::BadRecord`] when the merge reaches them (read
//!   ahead as above, so before the first call of a small input is handed out).
//!
//! Standard input is spooled to a temporary file, read like any other file.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::io::Read;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use super::agentgateway::AgentGatewaySource;
use super::ahead::Ahead;
use super::batch::{Columns, RowRest};
use super::claude_code::ClaudeCode;
use super::claude_desktop::Claude;
use super::cline::ClineSource;
use super::cline_sdk::{ClineSdkSource, manifest_cwd};
use super::codex::Codex;
use super::csv::CsvSource;
use super::format::detect;
use super::input::{Spool, distinct, open_decoded, read_head};
use super::intercept_log::InterceptSource;
use super::jsonl_batch::{JsonlBatchSource, RpcSource};
use super::opencode::OpenCodeSource;
use super::otel::OtelSource;
use super::pairing::PairedSource;
use super::parquet::ParquetBytes;
use super::parquet_batch::ParquetBatchSource;
use super::policylayer_log::PolicyLayerSource;
use super::source::{Ctx, Lines, Source};
use super::toolhive::ToolHiveSource;
use super::{
    AgentOptions, Args, BatchRows, BatchSource, CallBatch, CallFields, CallRecord, Format,
    InputSpec, LocalSymbols, NO_SYM, NOT_SCREENED, Nanos, Origin, Prescreen, ReadStats,
    RecordedDecision, Sym, Symbols, TraceError, Upstream, expand_inputs,
};
use crate::call::ArgsRef;
use crate::engine::{CallIds, CallView, Screened};

/// Calls the inputs are read ahead of the merge before any reordering was needed, shared
/// among the inputs (each reads ahead at least [`MIN_LOOKAHEAD`]).
pub const LOOKAHEAD: u64 = 1 << 16;

/// The least an input is read ahead, however many inputs share [`LOOKAHEAD`].
pub const MIN_LOOKAHEAD: u64 = 1 << 12;

/// Bytes of text the inputs are read ahead before any reordering was needed, shared among
/// the inputs (each reads ahead at least [`MIN_LOOKAHEAD_BYTES`]): calls whose arguments hold
/// files or documents can be tens of kilobytes each, and [`LOOKAHEAD`] of them gigabytes.
pub const LOOKAHEAD_BYTES: usize = 64 << 20;

/// The least text an input is read ahead, however many inputs share [`LOOKAHEAD_BYTES`].
pub const MIN_LOOKAHEAD_BYTES: usize = 4 << 20;

/// Inputs kept open once every input has been opened and read ahead: the rest are closed
/// until the merge reaches their first call (see [`Trace::open`]).
pub const MAX_OPEN: usize = 16;

/// Calls an input is read ahead once it was found out of order, unless
/// [`ReadOptions::reorder_window`] says otherwise.
pub const DEFAULT_REORDER_WINDOW: u64 = 1 << 20;

/// How inputs are read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReadOptions {
    /// Read every input as this format instead of detecting it.
    pub from: Option<Format>,
    /// Stop at the first bad record with an error instead of skipping it.
    pub strict: bool,
    /// How many calls an input found out of order is read ahead, so that late calls can be
    /// put in their place ([`DEFAULT_REORDER_WINDOW`] when `None`; `Some(0)` holds the whole
    /// input).
    pub reorder_window: Option<u64>,
    /// How agent logs name servers and callers.
    pub agent: AgentOptions,
}

impl ReadOptions {
    fn window(&self) -> u64 {
        match self.reorder_window {
            None => DEFAULT_REORDER_WINDOW,
            Some(0) => u64::MAX,
            Some(n) => n,
        }
    }
}

/// Names by id, copied from the shared table as new ids appear, so that looking one up takes
/// no lock.
pub struct Names {
    symbols: Arc<Symbols>,
    names: Vec<Sym>,
}

impl Names {
    /// Make sure every id handed out so far (so every id of the batches read) has its name.
    fn sync(&mut self) {
        if self.symbols.len() > self.names.len() {
            self.symbols.extend_names(&mut self.names);
        }
    }

    /// The name of an id of a batch read.
    #[inline]
    pub fn get(&self, id: u32) -> &Sym {
        &self.names[id as usize]
    }

    /// The name of an optional id (`NO_SYM` is absent).
    #[inline]
    pub fn opt(&self, id: u32) -> Option<&Sym> {
        (id != NO_SYM).then(|| self.get(id))
    }
}

/// Where a call stands in the merge: time, then input, then line.
type Key = (Nanos, usize, u64);

/// One input being read: the batches read ahead and the next row to hand out.
struct Feed {
    input: Input,
    /// The reader; `None` once the input is read to its end, or while it waits closed for the
    /// merge to reach it (`closed`).
    source: Option<Box<dyn BatchSource>>,
    /// Not open: not opened yet, or closed after its first read ahead (see [`Trace::open`]);
    /// the next fill opens it and reads it from its start.
    closed: bool,
    /// Batches read and not yet handed out whole; the first one is being handed out.
    queue: VecDeque<CallBatch>,
    /// The next row of the first batch.
    row: usize,
    /// Calls in the queue from `row` on.
    queued: u64,
    /// Bytes of text the queue's batches hold (see [`BatchRows::bytes`]).
    queued_bytes: usize,
    /// Whether the read-ahead also stops at [`HowRead::ahead_bytes`]: until the input is found
    /// out of order, and unless a reorder window was asked for.
    bounded: bool,
    /// How far ahead to read: [`LOOKAHEAD`], then the reorder window once out of order.
    ahead: u64,
    /// Whether the source has no more batches.
    done: bool,
    /// The latest timestamp read, for the order check.
    read_latest: Nanos,
    /// The latest timestamp handed out: no call earlier than it can be put in its place.
    out_latest: Nanos,
    /// Calls handed out.
    calls: u64,
    /// Skipped and ignored lines, out-of-order calls.
    stats: ReadStats,
}

impl Feed {
    /// Read ahead until `ahead` calls are queued from `row` on, or the input ends; the first
    /// batch of the queue then has a row to hand out unless the input is done. A closed input
    /// is opened again first; an input read to its end lets its reader go.
    fn fill(&mut self, index: usize, names: &mut Names, how: &HowRead) -> Result<(), TraceError> {
        while self.queue.front().is_some_and(|b| self.row >= b.len()) {
            if let Some(b) = self.queue.pop_front() {
                self.queued_bytes = self.queued_bytes.saturating_sub(b.rows.bytes());
            }
            self.row = 0;
        }
        if self.closed {
            let mut source = open_batches(&self.input, index as u32, &names.symbols, &how.opts)?;
            if how.skip_sessions {
                source.skip_sessions();
            }
            if let Some(work) = &how.prescreen {
                source.prescreen(work);
            }
            self.source = Some(source);
            self.closed = false;
        }
        while !self.done
            && self.queued < self.ahead
            && !(self.bounded && self.queued > 0 && self.queued_bytes >= how.ahead_bytes)
        {
            let Some(source) = self.source.as_mut() else {
                break;
            };
            let Some(mut batch) = source.next_batch()? else {
                self.done = true;
                if let Some(more) = source.take_stats() {
                    self.stats.absorb(more);
                }
                self.source = None;
                break;
            };
            let mut cx = Ctx {
                stats: &mut self.stats,
                strict: how.opts.strict,
                file: &self.input.name,
            };
            for (line, e) in std::mem::take(&mut batch.skipped) {
                cx.skip(line, e)?;
            }
            for kind in std::mem::take(&mut batch.ignored) {
                cx.ignore(kind);
            }
            if batch.is_empty() {
                continue;
            }
            batch.file = index as u32;
            names.sync();
            self.take(batch, how.window)?;
        }
        Ok(())
    }

    /// Close the input and forget what was read of it, to read it again from its start when
    /// the merge reaches it (see [`Trace::open`]).
    fn close(&mut self, ahead: u64, bounded: bool) {
        *self = Feed::new(Input::clone(&self.input), ahead, bounded);
    }

    /// An input not opened yet, to be read ahead by `ahead` calls (and, when `bounded`, the
    /// bytes [`HowRead::ahead_bytes`] says).
    fn new(input: Input, ahead: u64, bounded: bool) -> Feed {
        Feed {
            input,
            source: None,
            closed: true,
            queue: VecDeque::new(),
            row: 0,
            queued: 0,
            queued_bytes: 0,
            bounded,
            ahead,
            done: false,
            read_latest: Nanos::MIN,
            out_latest: Nanos::MIN,
            calls: 0,
            stats: ReadStats::default(),
        }
    }

    /// Queue a batch just read, sorting what is queued again when it is out of order.
    fn take(&mut self, batch: CallBatch, window: u64) -> Result<(), TraceError> {
        let mut late = 0;
        let mut latest = self.read_latest;
        for &ts in &batch.ts {
            if ts < latest {
                late += 1;
            } else {
                latest = ts;
            }
        }
        self.read_latest = latest;
        self.queued += batch.len() as u64;
        self.queued_bytes += batch.rows.bytes();
        if late == 0 {
            self.queue.push_back(batch);
            return Ok(());
        }
        self.stats.out_of_order += late;
        if let Some(row) = batch.ts.iter().position(|&ts| ts < self.out_latest) {
            return Err(TraceError::OutOfOrder {
                file: self.input.name.clone(),
                line: batch.line[row],
                // What was read ahead: fewer calls than asked when their text filled it.
                window: if self.bounded {
                    self.queued.min(self.ahead)
                } else {
                    self.ahead
                },
            });
        }
        self.ahead = self.ahead.max(window);
        self.bounded = false;
        let mut parts: Vec<CallBatch> = self.queue.drain(..).collect();
        parts.push(batch);
        let sorted = sorted(parts, self.row);
        self.queued_bytes = sorted.rows.bytes();
        self.row = 0;
        self.queue.push_back(sorted);
        Ok(())
    }

    /// The merge key of the next row: time, then input, then line.
    fn key(&self, index: usize) -> Option<Key> {
        let b = self.queue.front()?;
        Some((*b.ts.get(self.row)?, index, *b.line.get(self.row)?))
    }
}

/// The rows of `parts` (from row `first` of the first one on), stably sorted by time, as one
/// batch.
fn sorted(parts: Vec<CallBatch>, first: usize) -> CallBatch {
    let mut at: Vec<(u32, u32)> = Vec::new();
    for (p, b) in parts.iter().enumerate() {
        let from = if p == 0 { first } else { 0 };
        at.extend((from..b.len()).map(|r| (p as u32, r as u32)));
    }
    at.sort_by_key(|&(p, r)| parts[p as usize].ts[r as usize]);
    let mut cols = Columns::with_capacity(at.len());
    for &(p, r) in &at {
        let (b, r) = (&parts[p as usize], r as usize);
        let ids = [b.server[r], b.grant[r], b.tool[r]];
        let session = b.session.get(r);
        cols.push(
            b.ts[r],
            b.line[r],
            ids,
            session,
            b.upstream[r],
            b.recorded[r],
        );
    }
    let file = parts.first().map_or(0, |b| b.file);
    // What readers worked out ahead goes with its rows (rows of parts read before they were
    // asked to are not screened).
    let width = parts.iter().map(|b| b.screened_width).max().unwrap_or(0);
    let mut screened = Vec::with_capacity(at.len() * width);
    for &(p, r) in at.iter().filter(|_| width > 0) {
        let (b, r) = (&parts[p as usize], r as usize * width);
        match b.screened.get(r..r + width) {
            Some(codes) if b.screened_width == width => screened.extend_from_slice(codes),
            _ => screened.extend(std::iter::repeat_n(NOT_SCREENED, width)),
        }
    }
    let rows = Gathered {
        parts: parts.into_iter().map(|b| b.rows).collect(),
        at,
    };
    let mut batch = cols.into_batch(file, Vec::new(), Vec::new(), Box::new(rows));
    if !screened.is_empty() {
        batch.screened = screened;
        batch.screened_width = width;
    }
    batch
}

/// The rows of several batches in another order.
struct Gathered {
    parts: Vec<Box<dyn BatchRows>>,
    at: Vec<(u32, u32)>,
}

impl BatchRows for Gathered {
    fn bytes(&self) -> usize {
        self.parts.iter().map(|p| p.bytes()).sum()
    }

    fn args(&self, row: usize) -> Args {
        let (p, r) = self.at[row];
        self.parts[p as usize].args(r as usize)
    }

    fn args_text(&self, row: usize) -> Option<&str> {
        let (p, r) = self.at[row];
        self.parts[p as usize].args_text(r as usize)
    }

    fn record(&self, row: usize) -> CallRecord {
        let (p, r) = self.at[row];
        self.parts[p as usize].record(r as usize)
    }

    fn rest(&self, row: usize) -> Option<RowRest> {
        let (p, r) = self.at[row];
        self.parts[p as usize].rest(r as usize)
    }

    fn latency(&self, row: usize) -> Option<f64> {
        let (p, r) = self.at[row];
        self.parts[p as usize].latency(r as usize)
    }

    fn id(&self, row: usize) -> Option<String> {
        let (p, r) = self.at[row];
        self.parts[p as usize].id(r as usize)
    }
}

/// One call handed out by [`Trace::next_call`]: a row of a batch, with its names.
pub struct Call<'a> {
    /// 1-based position in time order.
    pub index: u64,
    /// The batch the call is a row of.
    pub batch: &'a CallBatch,
    /// The row.
    pub row: usize,
    names: &'a Names,
}

impl<'a> Call<'a> {
    /// When the gateway received the call.
    #[inline]
    pub fn ts(&self) -> Nanos {
        self.batch.ts[self.row]
    }

    /// Server, grant and tool ids (grant [`NO_SYM`] when absent).
    #[inline]
    pub fn ids(&self) -> CallIds {
        let (b, r) = (self.batch, self.row);
        CallIds {
            server: b.server[r],
            grant: b.grant[r],
            tool: b.tool[r],
        }
    }

    /// The server's name.
    #[inline]
    pub fn server(&self) -> &'a Sym {
        self.names.get(self.batch.server[self.row])
    }

    /// The grant's name, when recorded.
    #[inline]
    pub fn grant(&self) -> Option<&'a Sym> {
        self.names.opt(self.batch.grant[self.row])
    }

    /// The session's name, when recorded (and read: see [`Trace::skip_sessions`]).
    #[inline]
    pub fn session(&self) -> Option<&'a str> {
        self.batch.session.get(self.row)
    }

    /// The tool's name.
    #[inline]
    pub fn tool(&self) -> &'a Sym {
        self.names.get(self.batch.tool[self.row])
    }

    /// How the upstream call ended, when recorded.
    #[inline]
    pub fn upstream(&self) -> Option<Upstream> {
        self.batch.upstream[self.row]
    }

    /// The decision the gateway recorded, when the trace has one.
    #[inline]
    pub fn recorded(&self) -> Option<RecordedDecision> {
        self.batch.recorded[self.row]
    }

    /// The recorded arguments.
    pub fn args(&self) -> Args {
        self.batch.rows.args(self.row)
    }

    /// The request id, when recorded.
    pub fn id(&self) -> Option<String> {
        self.batch.rows.id(self.row)
    }

    /// What the reader worked out ahead for policy set `set` (see [`Trace::prescreen`]).
    #[inline]
    pub fn screened(&self, set: usize) -> Option<Screened> {
        let b = self.batch;
        if b.screened_width == 0 {
            return None;
        }
        let code = *b.screened.get(self.row * b.screened_width + set)?;
        (code != NOT_SCREENED).then(|| Screened::from_bits(code))
    }

    /// The recorded arguments as the evaluator reads them: borrowed from the batch when it
    /// holds them as an object's checked text, else built into `slot`.
    #[inline]
    pub fn args_ref<'b>(&'b self, slot: &'b mut Option<Args>) -> ArgsRef<'b> {
        self.batch.args_ref(self.row, slot)
    }

    /// What the evaluator reads of the call, with `args` as its arguments.
    #[inline]
    pub fn view<'b>(&'b self, args: ArgsRef<'b>) -> CallView<'b> {
        CallView {
            ts: self.ts(),
            server: self.server(),
            grant: self.grant().map(|g| &**g),
            session: self.session(),
            tool: self.tool(),
            args,
            upstream: self.upstream(),
            reply_at: None,
            ids: Some(self.ids()),
        }
    }

    /// When the call's upstream reply arrived, from its recorded latency (ask only for calls
    /// whose reply matters: a reader may decode a column for it).
    pub fn reply_at(&self) -> Option<Nanos> {
        let latency = self.batch.rows.latency(self.row)?;
        crate::call::reply_time(self.ts(), latency)
    }

    /// The call's whole record, exactly as its format's reader reads it.
    pub fn record(&self) -> CallRecord {
        let origin = Origin {
            file: self.batch.file,
            line: self.batch.line[self.row],
        };
        if let Some(rest) = self.batch.rows.rest(self.row) {
            // The columns hold the rest: no second read of the row.
            return CallRecord {
                ts: self.ts(),
                server: self.server().clone(),
                grant: self.grant().cloned(),
                session: self.session().map(Sym::from),
                tool: self.tool().clone(),
                args: rest.args,
                id: rest.id,
                recorded: None,
                upstream: self.upstream(),
                latency_ms: rest.latency_ms,
                origin,
            };
        }
        let mut rec = self.batch.rows.record(self.row);
        rec.origin.file = self.batch.file;
        // The run's one copy of each name.
        rec.server = self.server().clone();
        rec.tool = self.tool().clone();
        if let Some(g) = self.grant() {
            rec.grant = Some(g.clone());
        }
        rec
    }

    /// What per-call reports show of the call, borrowed from the batch. What must be built is
    /// built into the slots: the request id, and the arguments when `with_args`.
    pub fn fields<'b>(
        &'b self,
        id: &'b mut Option<String>,
        args: &'b mut Option<Args>,
        with_args: bool,
    ) -> CallFields<'b> {
        *id = self.id();
        *args = with_args.then(|| self.args());
        CallFields {
            ts: self.ts(),
            server: self.server(),
            grant: self.grant().map(|g| &**g),
            session: self.session(),
            tool: self.tool(),
            id: id.as_deref(),
            origin: Origin {
                file: self.batch.file,
                line: self.batch.line[self.row],
            },
            recorded: self.recorded(),
            upstream: self.upstream(),
            args: args.as_ref(),
        }
    }
}

/// How inputs are read, for the merge and for an input opened again.
struct HowRead {
    opts: ReadOptions,
    window: u64,
    /// How many bytes of text an input is read ahead while its read-ahead is bounded.
    ahead_bytes: usize,
    /// Whether readers opened from now on are to leave sessions out.
    skip_sessions: bool,
    /// What readers opened from now on are to work out ahead.
    prescreen: Option<Arc<dyn Prescreen>>,
}

/// Opened inputs handing out their calls in time order (see the module docs).
pub struct Trace {
    files: Vec<String>,
    feeds: Vec<Feed>,
    names: Names,
    how: HowRead,
    /// The next key of every input but the one being taken.
    heap: BinaryHeap<Reverse<Key>>,
    /// The input whose rows are being taken, and the key its run ends before.
    run: Option<(usize, Option<Key>)>,
    index: u64,
    stats: ReadStats,
    /// With two Claude Desktop logs or more: the calls handed out at the latest time, to pass
    /// over the same call logged in another file.
    logged_twice: Option<LoggedTwice>,
    /// Files named again on the command line, read once: counted in the stats.
    named_again: Vec<String>,
    // Keeps the spooled copy of stdin alive (deleted on drop).
    _spool: Option<Spool>,
}

/// Claude Desktop writes every message to `mcp.log` and to the server's `mcp-server-<name>.log`:
/// read together, each call would count twice. A call of one such log with the time, server,
/// tool, id and arguments of one another such log handed out is the same call, passed over and
/// counted (`call also in <file>`).
#[derive(Default)]
struct LoggedTwice {
    ts: Nanos,
    /// The calls handed out at `ts`, and their input.
    seen: Vec<(SameCall, usize)>,
}

/// What makes two logged calls at one time the same: server, tool, id, arguments as JSON.
type SameCall = (String, String, Option<String>, String);

impl LoggedTwice {
    /// The input that already handed out `rec` (read from input `f`), or `None` after noting
    /// it.
    fn other(&mut self, rec: &CallRecord, f: usize) -> Option<usize> {
        if rec.ts != self.ts {
            self.ts = rec.ts;
            self.seen.clear();
        }
        let args = serde_json::to_string(&rec.args.values()).unwrap_or_default();
        let call = (
            rec.server.to_string(),
            rec.tool.to_string(),
            rec.id.clone(),
            args,
        );
        if let Some(&(_, g)) = self.seen.iter().find(|(c, g)| *c == call && *g != f) {
            return Some(g);
        }
        self.seen.push((call, f));
        None
    }
}

impl Trace {
    /// Expand, detect and open the inputs. Errors (no such file, unknown format…) come before
    /// any call is read.
    pub fn open(inputs: &[String], opts: &ReadOptions) -> Result<Trace, TraceError> {
        Trace::open_with_stdin(inputs, opts, &mut std::io::stdin().lock())
    }

    /// [`Trace::open`] reading `-` from `stdin` instead of the process's standard input.
    pub fn open_with_stdin(
        inputs: &[String],
        opts: &ReadOptions,
        stdin: &mut dyn Read,
    ) -> Result<Trace, TraceError> {
        let symbols = Symbols::new();
        let mut spool = None;
        let mut feeds = Vec::new();
        let (specs, named_again) = distinct(expand_inputs(inputs)?);
        // Many files read ahead at once would hold as many read-aheads: they share one.
        let lookahead = (LOOKAHEAD / specs.len().max(1) as u64).max(MIN_LOOKAHEAD);
        let ahead_bytes = (LOOKAHEAD_BYTES / specs.len().max(1)).max(MIN_LOOKAHEAD_BYTES);
        let ahead = match opts.reorder_window {
            None => lookahead,
            Some(_) => opts.window(),
        };
        let bounded = opts.reorder_window.is_none();
        for spec in specs {
            let name = spec.display_name();
            let path = match spec {
                InputSpec::File(p) => p,
                InputSpec::Stdin => {
                    if spool.is_some() {
                        return Err(TraceError::StdinTwice);
                    }
                    let s = Spool::from_reader(stdin)?;
                    let p = s.path().to_path_buf();
                    spool = Some(s);
                    p
                }
            };
            let format = match opts.from {
                Some(f) => f,
                None => detect_file(&path, &name)?,
            };
            feeds.push(Feed::new(Input { name, path, format }, ahead, bounded));
        }
        let mut trace = Trace {
            files: feeds.iter().map(|f| f.input.name.clone()).collect(),
            feeds,
            names: Names {
                symbols,
                names: Vec::new(),
            },
            how: HowRead {
                opts: opts.clone(),
                window: opts.window(),
                ahead_bytes,
                skip_sessions: false,
                prescreen: None,
            },
            heap: BinaryHeap::new(),
            run: None,
            index: 0,
            stats: ReadStats::default(),
            logged_twice: None,
            named_again,
            _spool: spool,
        };
        let claude = |f: &&Feed| f.input.format == Format::ClaudeLog;
        if trace.feeds.iter().filter(claude).count() > 1 {
            trace.logged_twice = Some(LoggedTwice::default());
        }
        // Read every input ahead now, one after another: under `strict`, a bad line of a small
        // input ends the read before any output, and the merge learns where each input starts.
        // Of inputs that started, only the [`MAX_OPEN`] that start first stay open: a month of
        // hourly logs read ahead at once would hold hundreds of readers and read-aheads. The
        // others are closed and read again when the merge reaches their first call.
        let mut open: BinaryHeap<(Key, usize)> = BinaryHeap::new();
        for f in 0..trace.feeds.len() {
            let feed = &mut trace.feeds[f];
            feed.fill(f, &mut trace.names, &trace.how)?;
            let Some(key) = feed.key(f) else {
                continue;
            };
            trace.heap.push(Reverse(key));
            if feed.source.is_some() || feed.queued > 0 {
                open.push((key, f));
            }
            if open.len() > MAX_OPEN {
                if let Some((_, last)) = open.pop() {
                    trace.feeds[last].close(ahead, bounded);
                }
            }
        }
        Ok(trace)
    }

    /// Have the readers work `work` out for the calls they read from now on, on their own
    /// threads, where they can ([`CallBatch::screened`]).
    pub fn prescreen(&mut self, work: Arc<dyn Prescreen>) {
        for f in &mut self.feeds {
            if let Some(source) = f.source.as_mut() {
                source.prescreen(&work);
            }
        }
        self.how.prescreen = Some(work);
    }

    /// The names every reader interns into.
    pub fn symbols(&self) -> &Arc<Symbols> {
        &self.names.symbols
    }

    /// Nobody needs sessions: batches read from now on may leave every session absent
    /// (records built from them keep theirs).
    pub fn skip_sessions(&mut self) {
        self.how.skip_sessions = true;
        for f in &mut self.feeds {
            if let Some(source) = f.source.as_mut() {
                source.skip_sessions();
            }
        }
    }

    /// Display names of the inputs; the index is [`Origin::file`].
    pub fn files(&self) -> &[String] {
        &self.files
    }

    /// The names of the ids of the calls handed out so far.
    pub fn names(&self) -> &Names {
        &self.names
    }

    /// What the read saw; final once [`Trace::next_call`] has returned `None`.
    pub fn stats(&self) -> &ReadStats {
        &self.stats
    }

    /// The next call in time order; `None` at the end. Errors are I/O failures, calls too far
    /// out of order, and under `strict` bad records.
    #[inline]
    pub fn next_call(&mut self) -> Result<Option<Call<'_>>, TraceError> {
        loop {
            if let Some((f, bound)) = self.run {
                let feed = &mut self.feeds[f];
                match feed.key(f) {
                    Some(key) if bound.is_none_or(|n| key < n) => {
                        feed.row += 1;
                        feed.queued -= 1;
                        feed.out_latest = key.0;
                        if let (Some(twice), Format::ClaudeLog) =
                            (self.logged_twice.as_mut(), feed.input.format)
                        {
                            let rec = Call {
                                index: 0,
                                batch: &feed.queue[0],
                                row: feed.row - 1,
                                names: &self.names,
                            }
                            .record();
                            if let Some(g) = twice.other(&rec, f) {
                                let kind = format!("call also in {}", self.files[g]);
                                *self.feeds[f].stats.ignored.entry(kind).or_default() += 1;
                                continue;
                            }
                        }
                        let feed = &mut self.feeds[f];
                        feed.calls += 1;
                        self.index += 1;
                        let feed = &self.feeds[f];
                        return Ok(Some(Call {
                            index: self.index,
                            batch: &feed.queue[0],
                            row: feed.row - 1,
                            names: &self.names,
                        }));
                    }
                    Some(key) => self.heap.push(Reverse(key)),
                    None => {
                        feed.fill(f, &mut self.names, &self.how)?;
                        if let Some(key) = feed.key(f) {
                            self.heap.push(Reverse(key));
                        }
                    }
                }
                self.run = None;
                continue;
            }
            let Some(Reverse((_, f, _))) = self.heap.pop() else {
                self.finish();
                return Ok(None);
            };
            // The run of input `f` ends before the next row of any other input.
            self.run = Some((f, self.heap.peek().map(|k| k.0)));
        }
    }

    /// The next call's whole record; `None` at the end.
    pub fn next_record(&mut self) -> Result<Option<CallRecord>, TraceError> {
        Ok(self.next_call()?.map(|c| c.record()))
    }

    /// Gather what the inputs saw, in input order.
    fn finish(&mut self) {
        if !self.stats.per_file.is_empty() || self.feeds.is_empty() {
            return;
        }
        let mut stats = ReadStats {
            calls: self.index,
            ..ReadStats::default()
        };
        for feed in &mut self.feeds {
            stats
                .per_file
                .push((feed.input.name.clone(), feed.input.format, feed.calls));
            if let Some(more) = feed.source.as_mut().and_then(|s| s.take_stats()) {
                feed.stats.absorb(more);
            }
            stats.out_of_order += feed.stats.out_of_order;
            stats.absorb(std::mem::take(&mut feed.stats));
        }
        for name in &self.named_again {
            *stats
                .ignored
                .entry(format!("{name} named again (read once)"))
                .or_default() += 1;
        }
        self.stats = stats;
    }
}

#[derive(Clone)]
struct Input {
    name: String,
    path: PathBuf,
    format: Format,
}

/// Open one input file as batches of calls (batches carry the input's index): mcpsim JSONL,
/// JSON-RPC recordings, Parquet and CSV by their column readers, the other formats by their
/// record readers.
fn open_batches(
    input: &Input,
    file: u32,
    symbols: &Arc<Symbols>,
    opts: &ReadOptions,
) -> Result<Box<dyn BatchSource>, TraceError> {
    let strict = opts.strict;
    let shared = Arc::clone(symbols);
    let name = &input.name;
    let path = &input.path;
    match input.format {
        Format::Jsonl => {
            return Ok(Box::new(JsonlBatchSource::open_file(
                path, name, file, shared,
            )?));
        }
        Format::JsonRpc => {
            return Ok(Box::new(RpcSource::open(path, name, file, shared)?));
        }
        _ => {}
    }
    let (mut r, compressed) = open_decoded(path, name)?;
    let lines = |r| Lines::new(r, name);
    let source: Box<dyn Source> = match input.format {
        Format::Parquet => {
            let bytes = parquet_bytes(input, r, compressed)?;
            return Ok(Box::new(ParquetBatchSource::new(
                bytes, name, file, shared, true,
            )));
        }
        // Read above by their column readers.
        Format::Jsonl | Format::JsonRpc => {
            return Err(TraceError::UnknownFormat {
                file: name.clone(),
                reason: "no record reader".into(),
            });
        }
        Format::Csv => {
            let symbols = LocalSymbols::new(shared);
            return Ok(Box::new(CsvSource::new(r, name, file, symbols)));
        }
        Format::PolicyLayerLog => Box::new(PolicyLayerSource::new(lines(r), file)),
        Format::InterceptLog => Box::new(InterceptSource::new(lines(r), file)),
        // Its servers' stderr, in whatever encoding they write, is logged as it came.
        Format::ClaudeLog => Box::new(PairedSource::new(
            Claude::default,
            lines(r).lossy(),
            lines(open_decoded(&input.path, name)?.0).lossy(),
            file,
            name,
        )),
        Format::OtelSpans => Box::new(OtelSource::new(lines(r), file)),
        Format::AgentGatewayLog => Box::new(AgentGatewaySource::new(lines(r), file)),
        Format::ToolHiveAudit => Box::new(ToolHiveSource::new(lines(r), file)),
        Format::ClaudeCode => Box::new(PairedSource::new(
            || ClaudeCode::new(&opts.agent),
            lines(r),
            lines(open_decoded(&input.path, name)?.0),
            file,
            name,
        )),
        Format::Cline if opens_object(&mut r, name)? => {
            // Cline 4 keeps a session in `<id>.messages.json`, its manifest beside it.
            let cwd = manifest_cwd(&input.path);
            Box::new(ClineSdkSource::new(Box::new(r), file, cwd, &opts.agent))
        }
        Format::Cline => {
            // Cline keeps a task's messages in `tasks/<task id>/ui_messages.json`.
            let task = (input.path.file_name() == Some(std::ffi::OsStr::new("ui_messages.json")))
                .then(|| {
                    input
                        .path
                        .parent()?
                        .file_name()?
                        .to_str()
                        .map(str::to_string)
                })
                .flatten();
            Box::new(ClineSource::new(Box::new(r), file, task, &opts.agent))
        }
        Format::OpenCode => Box::new(OpenCodeSource::new(lines(r), file, &opts.agent)),
        Format::Codex => Box::new(PairedSource::new(
            || Codex::new(&opts.agent),
            lines(r),
            lines(open_decoded(&input.path, name)?.0),
            file,
            name,
        )),
    };
    Ok(Box::new(RecordBatches::start(
        source,
        name,
        file,
        LocalSymbols::new(shared),
        strict,
    )))
}

/// A record reader's calls as batches, made on a thread of their own while the replay works
/// on the batches before: reading and replaying a format without a column reader take a core
/// each instead of taking turns on one.
struct RecordBatches {
    made: Ahead<Made>,
    stats: Option<ReadStats>,
    /// Whether sessions are wanted (see [`BatchSource::skip_sessions`]); read by the thread
    /// at every batch.
    sessions: Arc<AtomicBool>,
}

/// What the thread of a [`RecordBatches`] makes, in order: batches, then the counts at the end
/// of the input.
enum Made {
    Batch(CallBatch),
    End(ReadStats),
}

/// Where the thread of a [`RecordBatches`] is, with the counts so far.
enum Reading {
    Calls(ReadStats),
    /// The source ended; its counts are still to be sent.
    Ended(ReadStats),
    Done,
}

/// Calls per batch of [`RecordBatches`].
const RECORDS_PER_BATCH: usize = 4096;

/// Bytes of arguments after which a batch of records ends, if fewer than [`RECORDS_PER_BATCH`]
/// hold them.
const BATCH_BYTES: usize = super::table::BATCH_BYTES;

/// Batches of [`RecordBatches`] made and not yet handed out, at most.
const BATCHES_AHEAD: usize = 2;

impl RecordBatches {
    fn start(
        mut source: Box<dyn Source>,
        name: &str,
        file: u32,
        mut symbols: LocalSymbols,
        strict: bool,
    ) -> RecordBatches {
        let shown = name.to_string();
        let sessions = Arc::new(AtomicBool::new(true));
        let wanted = Arc::clone(&sessions);
        let mut state = Reading::Calls(ReadStats::default());
        let make = move || -> Result<Option<Made>, TraceError> {
            let mut stats = match std::mem::replace(&mut state, Reading::Done) {
                Reading::Calls(stats) => stats,
                Reading::Ended(stats) => return Ok(Some(Made::End(stats))),
                Reading::Done => return Ok(None),
            };
            let mut cx = Ctx {
                stats: &mut stats,
                strict,
                file: &shown,
            };
            let sessions = wanted.load(Ordering::Relaxed);
            let (batch, ended) = record_batch(&mut *source, &mut cx, file, &mut symbols, sessions)?;
            let Some(batch) = batch else {
                return Ok(Some(Made::End(stats)));
            };
            // A source that ended is not asked again: its counts follow this batch.
            state = if ended {
                Reading::Ended(stats)
            } else {
                Reading::Calls(stats)
            };
            Ok(Some(Made::Batch(batch)))
        };
        RecordBatches {
            made: Ahead::start("record-read", name, BATCHES_AHEAD, make),
            stats: None,
            sessions,
        }
    }
}

/// The next batch of `source`'s calls (`None` when none was left), and whether the source
/// ended: it is not asked again after that. Sessions are left out unless `sessions` (the
/// records keep theirs).
fn record_batch(
    source: &mut dyn Source,
    cx: &mut Ctx<'_>,
    file: u32,
    s: &mut LocalSymbols,
    sessions: bool,
) -> Result<(Option<CallBatch>, bool), TraceError> {
    let mut records = Vec::new();
    let mut ended = false;
    let mut bytes = 0;
    while records.len() < RECORDS_PER_BATCH && bytes < BATCH_BYTES {
        match source.next(cx)? {
            Some(rec) => {
                bytes += rec.args.text_len();
                records.push(rec);
            }
            None => {
                ended = true;
                break;
            }
        }
    }
    if records.is_empty() {
        return Ok((None, ended));
    }
    let mut cols = Columns::with_capacity(records.len());
    for r in &records {
        cols.push_record(r, r.origin.line, s, sessions);
    }
    let batch = cols.into_batch(file, Vec::new(), Vec::new(), Box::new(Records(records)));
    Ok((Some(batch), ended))
}

impl BatchSource for RecordBatches {
    fn next_batch(&mut self) -> Result<Option<CallBatch>, TraceError> {
        match self.made.next()? {
            Some(Made::Batch(batch)) => Ok(Some(batch)),
            Some(Made::End(stats)) => {
                self.stats = Some(stats);
                Ok(None)
            }
            None => Ok(None),
        }
    }

    fn take_stats(&mut self) -> Option<ReadStats> {
        self.stats.take()
    }

    fn skip_sessions(&mut self) {
        self.sessions.store(false, Ordering::Relaxed);
    }
}

struct Records(Vec<CallRecord>);

impl BatchRows for Records {
    fn bytes(&self) -> usize {
        self.0.iter().map(|r| r.args.text_len()).sum()
    }

    fn args(&self, row: usize) -> Args {
        self.0[row].args.clone()
    }

    fn record(&self, row: usize) -> CallRecord {
        self.0[row].clone()
    }

    fn id(&self, row: usize) -> Option<String> {
        self.0[row].id.clone()
    }
}

fn detect_file(path: &std::path::Path, name: &str) -> Result<Format, TraceError> {
    let (r, _) = open_decoded(path, name)?;
    let head = read_head(r, name)?;
    if head.iter().all(u8::is_ascii_whitespace) {
        // An empty file holds no calls in any format.
        return Ok(Format::Jsonl);
    }
    detect(&head).map_err(|reason| TraceError::UnknownFormat {
        file: name.to_string(),
        reason,
    })
}

/// Whether the input's first byte that is not whitespace (or a byte order mark) opens a JSON
/// object; what is passed over is consumed.
fn opens_object(r: &mut Box<dyn std::io::BufRead + Send>, name: &str) -> Result<bool, TraceError> {
    loop {
        let buf = r.fill_buf().map_err(|source| TraceError::Io {
            file: name.to_string(),
            source,
        })?;
        let Some(&b) = buf.first() else {
            return Ok(false);
        };
        if b.is_ascii_whitespace() || matches!(b, 0xef | 0xbb | 0xbf) {
            r.consume(1);
            continue;
        }
        return Ok(b == b'{');
    }
}

/// The most a compressed Parquet file may inflate to: it is read into memory whole.
const MAX_INFLATED_BYTES: u64 = 1 << 30;

/// Where a Parquet input's bytes are: Parquet needs random access, so a compressed file is
/// decoded into memory first; a plain one is read in place.
fn parquet_bytes(
    input: &Input,
    r: impl Read,
    compressed: bool,
) -> Result<ParquetBytes, TraceError> {
    if !compressed {
        return Ok(ParquetBytes::File(input.path.clone()));
    }
    // Reserved at once (address space only: pages are taken as they are written), so that
    // the buffer does not double past the limit as it grows.
    let mut v = Vec::with_capacity(MAX_INFLATED_BYTES as usize + 1);
    r.take(MAX_INFLATED_BYTES + 1)
        .read_to_end(&mut v)
        .map_err(|source| TraceError::Io {
            file: input.name.clone(),
            source,
        })?;
    if v.len() as u64 > MAX_INFLATED_BYTES {
        return Err(TraceError::Table {
            file: input.name.clone(),
            reason: format!(
                "the compressed Parquet file inflates to more than {} GiB, the most read into memory; decompress it first (a plain Parquet file is read in place)",
                MAX_INFLATED_BYTES >> 30
            ),
        });
    }
    v.shrink_to_fit();
    Ok(ParquetBytes::Memory(v))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Calls of one input, a batch of one call each, each batch said to hold `bytes`.
    struct Big {
        next: Nanos,
        ts: Vec<Nanos>,
        bytes: usize,
        pulled: std::rc::Rc<std::cell::Cell<usize>>,
    }

    struct BigRows(usize);

    impl BatchRows for BigRows {
        fn args(&self, _: usize) -> Args {
            Args::Unrecorded
        }
        fn record(&self, _: usize) -> CallRecord {
            unreachable!("not asked")
        }
        fn bytes(&self) -> usize {
            self.0
        }
    }

    impl BatchSource for Big {
        fn next_batch(&mut self) -> Result<Option<CallBatch>, TraceError> {
            let Some(&ts) = self.ts.get(self.next as usize) else {
                return Ok(None);
            };
            self.next += 1;
            self.pulled.set(self.pulled.get() + 1);
            let mut cols = Columns::default();
            cols.push(ts, self.next as u64, [0, NO_SYM, 0], None, None, None);
            let rows = Box::new(BigRows(self.bytes));
            Ok(Some(cols.into_batch(0, Vec::new(), Vec::new(), rows)))
        }
    }

    /// A feed over `ts`, each call said to hold `bytes`, read ahead as `Trace::open` sets it
    /// for a reorder window of `window` calls (`None`: not given).
    fn feed(
        ts: Vec<Nanos>,
        bytes: usize,
        window: Option<u64>,
    ) -> (Feed, std::rc::Rc<std::cell::Cell<usize>>) {
        let pulled = std::rc::Rc::default();
        let input = Input {
            name: "big.jsonl".into(),
            path: PathBuf::from("big.jsonl"),
            format: Format::Jsonl,
        };
        let mut feed = Feed::new(input, window.unwrap_or(LOOKAHEAD), window.is_none());
        feed.closed = false;
        feed.source = Some(Box::new(Big {
            next: 0,
            ts,
            bytes,
            pulled: std::rc::Rc::clone(&pulled),
        }));
        (feed, pulled)
    }

    fn how(reorder_window: Option<u64>) -> HowRead {
        let opts = ReadOptions {
            reorder_window,
            ..ReadOptions::default()
        };
        HowRead {
            window: opts.window(),
            opts,
            ahead_bytes: LOOKAHEAD_BYTES,
            skip_sessions: false,
            prescreen: None,
        }
    }

    fn names() -> Names {
        Names {
            symbols: Symbols::new(),
            names: Vec::new(),
        }
    }

    #[test]
    fn read_ahead_stops_at_its_bytes_until_the_input_is_out_of_order() {
        // Calls of 1 MiB each: 64 of them fill the read-ahead, not 65,536.
        let (mut f, pulled) = feed((0..1_000).collect(), 1 << 20, None);
        f.fill(0, &mut names(), &how(None)).unwrap();
        assert_eq!(pulled.get(), 64);
        assert_eq!(f.queued_bytes, 64 << 20);
        // Handing out calls (here a batch each) makes room for as many more.
        for _ in 0..10 {
            f.row = 1;
            f.queued -= 1;
            f.fill(0, &mut names(), &how(None)).unwrap();
        }
        assert_eq!(pulled.get(), 74);
        assert_eq!(f.queued_bytes, 64 << 20);
        // Small calls: the count of calls bounds it.
        let (mut f, pulled) = feed((0..100_000).collect(), 100, None);
        f.fill(0, &mut names(), &how(None)).unwrap();
        assert_eq!(pulled.get(), LOOKAHEAD as usize);
        // A reorder window asked for is read ahead whatever the bytes; so is the default one
        // once a call is out of order.
        let (mut f, pulled) = feed((0..3_000).collect(), 1 << 20, Some(2_000));
        f.fill(0, &mut names(), &how(Some(2_000))).unwrap();
        assert_eq!(pulled.get(), 2_000);
        let (mut f, pulled) = feed((0..3_000).rev().collect(), 1 << 20, None);
        f.fill(0, &mut names(), &how(None)).unwrap();
        assert!(!f.bounded);
        assert_eq!(
            pulled.get(),
            3_000,
            "the whole input, within the default window"
        );
        assert_eq!(f.stats.out_of_order, 2_999);
        // A call later than the bytes read ahead: the error says how many calls that was.
        let mut ts: Vec<Nanos> = (0..1_000).collect();
        ts[150] = 5;
        let (mut f, _) = feed(ts, 1 << 20, None);
        let err = loop {
            if let Err(e) = f.fill(0, &mut names(), &how(None)) {
                break e;
            }
            // Hand out the next call.
            let Some(key) = f.key(0) else {
                panic!("the late call was put in its place")
            };
            f.out_latest = key.0;
            f.row += 1;
            f.queued -= 1;
        };
        assert!(
            matches!(
                err,
                TraceError::OutOfOrder {
                    line: 151,
                    window: 64,
                    ..
                }
            ),
            "{err:?}"
        );
    }

    /// Records of a new session each, from a reader without a column reader of its own.
    struct Sessions(u64);

    impl Source for Sessions {
        fn next(&mut self, _: &mut Ctx<'_>) -> Result<Option<CallRecord>, TraceError> {
            if self.0 >= 5 * RECORDS_PER_BATCH as u64 {
                return Ok(None);
            }
            self.0 += 1;
            let mut rec = CallRecord::bare(Origin {
                file: 0,
                line: self.0,
            });
            rec.ts = self.0 as Nanos;
            rec.tool = "t".into();
            rec.session = Some(format!("s{}", self.0).into());
            Ok(Some(rec))
        }
    }

    #[test]
    fn a_record_reader_leaves_sessions_out_of_the_batches_made_once_they_are_skipped() {
        let symbols = Symbols::new();
        let local = LocalSymbols::new(Arc::clone(&symbols));
        let mut src = RecordBatches::start(Box::new(Sessions(0)), "s.log", 0, local, false);
        let first = src.next_batch().unwrap().unwrap();
        assert!(first.session.iter().all(|s| s.is_some()));
        src.skip_sessions();
        let mut batches = vec![first];
        while let Some(b) = src.next_batch().unwrap() {
            batches.push(b);
        }
        assert_eq!(batches.len(), 5);
        // Batches made ahead before the skip keep theirs; the last one was made after it.
        let last = batches.last().unwrap();
        assert!(last.session.iter().all(|s| s.is_none()));
        assert!(symbols.len() <= 4 * RECORDS_PER_BATCH + 2);
        // Records keep their sessions.
        assert_eq!(
            last.rows.record(0).session.as_deref(),
            Some(format!("s{}", 4 * RECORDS_PER_BATCH + 1).as_str())
        );
        let calls: usize = batches.iter().map(|b| b.len()).sum();
        assert_eq!(calls, 5 * RECORDS_PER_BATCH);
    }
}
