//! Calls column by column, with names as ids: what the fast readers hand to the replay.
//!
//! A [`CallRecord`] owns its strings and arguments, and building, moving and interning one per
//! call costs more than deciding it. Every reader instead fills a [`CallBatch`] (the column
//! readers of mcpsim JSONL, JSON-RPC recordings, Parquet and CSV directly, the record readers of
//! the other formats through one adapter): one vector per field the evaluator and the summary
//! read, server, grant, session and tool names as ids of one [`Symbols`] table shared by every
//! reader thread of a run. Anything else a call has (arguments, request id, latency,
//! the recorded rule…) stays where it was read and is built on demand through [`BatchRows`]:
//! arguments when a policy reads them, a whole record for the few calls a report lists.

use std::sync::{Arc, RwLock};

// Probed once per name per call by every reader thread: Fx hashing for short trusted keys.
use rustc_hash::FxHashMap as HashMap;

use super::source::LineError;
use super::{Args, CallRecord, Nanos, RecordedDecision, Sym, Upstream};

/// The id of an absent grant or session.
pub const NO_SYM: u32 = crate::call::CallIds::ABSENT;

/// One id per distinct name, shared by the threads of one run. Ids are dense, from 0, in
/// first-seen order (which differs between runs with several reader threads: nothing may
/// depend on the order of ids, only on their equality).
#[derive(Debug, Default)]
pub struct Symbols {
    inner: RwLock<SymbolTable>,
}

#[derive(Debug, Default)]
struct SymbolTable {
    ids: HashMap<Sym, u32>,
    names: Vec<Sym>,
}

impl Symbols {
    /// A new, empty table.
    pub fn new() -> Arc<Symbols> {
        Arc::new(Symbols::default())
    }

    /// The id of `name`, made on first sight.
    pub fn intern(&self, name: &str) -> u32 {
        if let Some(&id) = self.read().ids.get(name) {
            return id;
        }
        let mut t = self.inner.write().unwrap_or_else(|e| e.into_inner());
        if let Some(&id) = t.ids.get(name) {
            return id;
        }
        let id = t.names.len() as u32;
        let sym: Sym = Sym::from(name);
        t.names.push(sym.clone());
        t.ids.insert(sym, id);
        id
    }

    /// The name of an id handed out by this table.
    ///
    /// # Panics
    /// If `id` did not come from this table.
    pub fn name(&self, id: u32) -> Sym {
        self.read().names[id as usize].clone()
    }

    /// The name of an optional id (`NO_SYM` is absent).
    pub fn opt_name(&self, id: u32) -> Option<Sym> {
        (id != NO_SYM).then(|| self.name(id))
    }

    /// Append the names of ids `names.len()..` to `names`, so that a caller can keep its own
    /// lock-free copy of the table indexed by id.
    pub fn extend_names(&self, names: &mut Vec<Sym>) {
        let t = self.read();
        if let Some(new) = t.names.get(names.len()..) {
            names.extend_from_slice(new);
        }
    }

    /// How many names there are.
    pub fn len(&self) -> usize {
        self.read().names.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, SymbolTable> {
        self.inner.read().unwrap_or_else(|e| e.into_inner())
    }
}

/// A reader thread's cache in front of the shared [`Symbols`]: after the first sight of a name,
/// interning takes no lock.
#[derive(Debug)]
pub struct LocalSymbols {
    shared: Arc<Symbols>,
    cache: HashMap<Box<str>, u32>,
}

impl LocalSymbols {
    /// A cache in front of `shared`.
    pub fn new(shared: Arc<Symbols>) -> LocalSymbols {
        LocalSymbols {
            shared,
            cache: HashMap::default(),
        }
    }

    /// The id of `name`.
    #[inline]
    pub fn intern(&mut self, name: &str) -> u32 {
        if let Some(&id) = self.cache.get(name) {
            return id;
        }
        let id = self.shared.intern(name);
        self.cache.insert(name.into(), id);
        id
    }

    /// The id of an optional name (`NO_SYM` when absent).
    #[inline]
    pub fn intern_opt(&mut self, name: Option<&str>) -> u32 {
        name.map_or(NO_SYM, |n| self.intern(n))
    }

    /// The server, grant, session and tool ids of `rec`.
    pub(crate) fn ids(&mut self, rec: &CallRecord) -> [u32; 4] {
        [
            self.intern(&rec.server),
            self.intern_opt(rec.grant.as_deref()),
            self.intern_opt(rec.session.as_deref()),
            self.intern(&rec.tool),
        ]
    }

    /// The shared table.
    pub fn shared(&self) -> &Arc<Symbols> {
        &self.shared
    }
}

/// Builds what a batch does not keep in columns, for one row, on demand.
pub trait BatchRows: Send {
    /// The recorded arguments of row `row`.
    fn args(&self, row: usize) -> Args;
    /// The whole record of row `row`, exactly as the sequential reader of the format would
    /// have yielded it (with `origin` set to the row's file and line).
    fn record(&self, row: usize) -> CallRecord;
    /// The request id of row `row`, when recorded.
    fn id(&self, row: usize) -> Option<String> {
        self.record(row).id
    }
    /// Row `row`'s upstream latency in milliseconds, when recorded.
    fn latency(&self, row: usize) -> Option<f64> {
        self.record(row).latency_ms
    }
    /// What row `row`'s record holds beyond the batch's columns, when that is all it holds
    /// (`None`: only [`BatchRows::record`] gives the record, e.g. for a recorded decision's rule
    /// and message, or a session the columns left out).
    fn rest(&self, _row: usize) -> Option<RowRest> {
        None
    }
}

/// The fields of a record a batch does not keep in columns (see [`BatchRows::rest`]).
pub struct RowRest {
    /// The recorded arguments.
    pub args: Args,
    /// The request id.
    pub id: Option<String>,
    /// Upstream latency in milliseconds.
    pub latency_ms: Option<f64>,
}

/// Calls of one stretch of one input, in file order.
///
/// Every column has one entry per call. Lines that are not calls are not in the columns: bad
/// ones are in `skipped`, lines of other kinds in `ignored`.
pub struct CallBatch {
    /// Index of the input file.
    pub file: u32,
    /// When the gateway received the call.
    pub ts: Vec<Nanos>,
    /// 1-based line (or row) number in the file.
    pub line: Vec<u64>,
    /// Server name id.
    pub server: Vec<u32>,
    /// Grant id, `NO_SYM` when absent.
    pub grant: Vec<u32>,
    /// Session id, `NO_SYM` when absent.
    pub session: Vec<u32>,
    /// Tool name id.
    pub tool: Vec<u32>,
    /// How the upstream call ended, when recorded.
    pub upstream: Vec<Option<Upstream>>,
    /// The decision the gateway recorded, when the trace has one.
    pub recorded: Vec<Option<RecordedDecision>>,
    /// Bad lines, in file order: line number and why.
    pub(crate) skipped: Vec<(u64, LineError)>,
    /// Lines that are not calls and not bad, by kind, in file order.
    pub ignored: Vec<String>,
    /// Everything else, per row.
    pub rows: Box<dyn BatchRows>,
}

impl CallBatch {
    /// How many calls.
    pub fn len(&self) -> usize {
        self.ts.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.ts.is_empty()
    }
}

/// The columns of a [`CallBatch`] being made, one entry per call: every reader fills these
/// and hands them over with what its batch leaves out ([`Columns::into_batch`]).
#[derive(Default)]
pub(crate) struct Columns {
    pub(crate) ts: Vec<Nanos>,
    pub(crate) line: Vec<u64>,
    pub(crate) server: Vec<u32>,
    pub(crate) grant: Vec<u32>,
    pub(crate) session: Vec<u32>,
    pub(crate) tool: Vec<u32>,
    pub(crate) upstream: Vec<Option<Upstream>>,
    pub(crate) recorded: Vec<Option<RecordedDecision>>,
}

impl Columns {
    pub(crate) fn with_capacity(calls: usize) -> Columns {
        Columns {
            ts: Vec::with_capacity(calls),
            line: Vec::with_capacity(calls),
            server: Vec::with_capacity(calls),
            grant: Vec::with_capacity(calls),
            session: Vec::with_capacity(calls),
            tool: Vec::with_capacity(calls),
            upstream: Vec::with_capacity(calls),
            recorded: Vec::with_capacity(calls),
        }
    }

    /// How many calls.
    pub(crate) fn len(&self) -> usize {
        self.ts.len()
    }

    /// Add a call: its time, line, server, grant, session and tool ids, upstream outcome and
    /// recorded decision.
    #[inline]
    pub(crate) fn push(
        &mut self,
        ts: Nanos,
        line: u64,
        [server, grant, session, tool]: [u32; 4],
        upstream: Option<Upstream>,
        recorded: Option<RecordedDecision>,
    ) {
        self.ts.push(ts);
        self.line.push(line);
        self.server.push(server);
        self.grant.push(grant);
        self.session.push(session);
        self.tool.push(tool);
        self.upstream.push(upstream);
        self.recorded.push(recorded);
    }

    /// Add the call `rec`, read at `line`, its names interned into `syms`.
    pub(crate) fn push_record(&mut self, rec: &CallRecord, line: u64, syms: &mut LocalSymbols) {
        let decision = rec.recorded.as_ref().and_then(|r| r.decision);
        self.push(rec.ts, line, syms.ids(rec), rec.upstream, decision);
    }

    /// The batch of these calls of input `file`, with its bad and ignored lines and its rows.
    pub(crate) fn into_batch(
        self,
        file: u32,
        skipped: Vec<(u64, LineError)>,
        ignored: Vec<String>,
        rows: Box<dyn BatchRows>,
    ) -> CallBatch {
        CallBatch {
            file,
            ts: self.ts,
            line: self.line,
            server: self.server,
            grant: self.grant,
            session: self.session,
            tool: self.tool,
            upstream: self.upstream,
            recorded: self.recorded,
            skipped,
            ignored,
            rows,
        }
    }
}

/// A reader that yields an input's calls as [`CallBatch`]es, in file order.
pub trait BatchSource {
    /// The next batch; `None` at the end of the input. Errors are I/O failures only: bad lines
    /// are in the batches.
    fn next_batch(&mut self) -> Result<Option<CallBatch>, super::TraceError>;

    /// Skipped and ignored lines the source counted itself instead of listing them in its
    /// batches; asked once, after the last batch.
    fn take_stats(&mut self) -> Option<super::ReadStats> {
        None
    }

    /// Nobody needs session ids: batches read from now on may leave every `session` at
    /// [`NO_SYM`] (the sessions of records built from them stay as they are). Sessions are
    /// the most varied names of a trace, so not interning them saves work. A source may keep
    /// reading them.
    fn skip_sessions(&mut self) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_shared_between_caches_and_names_come_back() {
        let shared = Symbols::new();
        let mut a = LocalSymbols::new(shared.clone());
        let mut b = LocalSymbols::new(shared.clone());
        let x = a.intern("github");
        let y = b.intern("stripe");
        assert_eq!(b.intern("github"), x);
        assert_eq!(a.intern("stripe"), y);
        assert_ne!(x, y);
        assert_eq!(a.intern_opt(None), NO_SYM);
        assert_eq!(&*shared.name(x), "github");
        assert_eq!(shared.opt_name(NO_SYM), None);
        assert_eq!(shared.len(), 2);
    }
}
