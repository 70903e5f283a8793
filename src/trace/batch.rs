//! Calls column by column, with names as ids: what the fast readers hand to the replay.
//!
//! A [`CallRecord`] owns its strings and arguments, and building, moving and interning one per
//! call costs more than deciding it. Every reader instead fills a [`CallBatch`] (the column
//! readers of mcpsim JSONL, JSON-RPC recordings, Parquet and CSV directly, the record readers of
//! the other formats through one adapter): one vector per field the evaluator and the summary
//! read, server, grant and tool names as ids of one [`Symbols`] table shared by every reader
//! thread of a run, sessions as text ([`Sessions`]: a trace may name a new session on every
//! call, and a table of every name read would grow with the trace). Anything else a call has
//! (arguments, request id, latency, the recorded rule…) stays where it was read and is built
//! on demand through [`BatchRows`]: arguments when a policy reads them, a whole record for the
//! few calls a report lists.

use std::sync::{Arc, RwLock};

// Probed once per name per call by every reader thread: Fx hashing for short trusted keys.
use rustc_hash::FxHashMap as HashMap;

use super::scan::word;
use super::source::{LineError, UNKNOWN_SERVER};
use super::{Args, CallRecord, Nanos, RecordedDecision, Sym, Upstream};
use crate::call::ArgsRef;

/// The id of an absent grant.
pub const NO_SYM: u32 = crate::call::CallIds::ABSENT;

/// One id per distinct name, shared by the threads of one run. Ids are dense, from 0, in
/// first-seen order (which differs between runs with several reader threads: nothing may
/// depend on the order of ids, only on their equality).
#[derive(Debug, Default)]
pub struct Symbols {
    inner: RwLock<SymbolTable>,
}

#[derive(Default)]
struct SymbolTable {
    /// Each name's id, found by the name's hash and compared against `names`: the table holds
    /// four bytes a name, where a map from name to id held twenty-four.
    ids: hashbrown::HashTable<u32>,
    names: Vec<Sym>,
}

impl std::fmt::Debug for SymbolTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SymbolTable")
            .field("names", &self.names.len())
            .finish()
    }
}

impl SymbolTable {
    fn hash(name: &str) -> u64 {
        use std::hash::BuildHasher;
        rustc_hash::FxBuildHasher.hash_one(name)
    }

    fn get(&self, name: &str) -> Option<u32> {
        let names = &self.names;
        (self.ids)
            .find(Self::hash(name), |&id| &*names[id as usize] == name)
            .copied()
    }

    fn insert(&mut self, name: &str) -> u32 {
        let id = self.names.len() as u32;
        self.names.push(Sym::from(name));
        let names = &self.names;
        (self.ids).insert_unique(Self::hash(name), id, |&id| Self::hash(&names[id as usize]));
        id
    }
}

impl Symbols {
    /// A new, empty table.
    pub fn new() -> Arc<Symbols> {
        Arc::new(Symbols::default())
    }

    /// The id of `name`, made on first sight.
    pub fn intern(&self, name: &str) -> u32 {
        if let Some(id) = self.read().get(name) {
            return id;
        }
        let mut t = self.inner.write().unwrap_or_else(|e| e.into_inner());
        match t.get(name) {
            Some(id) => id,
            None => t.insert(name),
        }
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
/// interning takes no lock. It holds at most [`LOCAL_NAMES`] names (a trace naming a new grant
/// on every call would otherwise keep a copy of each per thread): when full it starts over, and
/// names seen again are found in the shared table.
#[derive(Debug)]
pub struct LocalSymbols {
    shared: Arc<Symbols>,
    cache: HashMap<Box<str>, u32>,
}

/// The most names a [`LocalSymbols`] keeps.
const LOCAL_NAMES: usize = 1 << 16;

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
        if self.cache.len() >= LOCAL_NAMES {
            self.cache.clear();
        }
        self.cache.insert(name.into(), id);
        id
    }

    /// The id of an optional name (`NO_SYM` when absent).
    #[inline]
    pub fn intern_opt(&mut self, name: Option<&str>) -> u32 {
        name.map_or(NO_SYM, |n| self.intern(n))
    }

    /// The server, grant and tool ids of `rec`.
    pub(crate) fn ids(&mut self, rec: &CallRecord) -> [u32; 3] {
        [
            self.intern(&rec.server),
            self.intern_opt(rec.grant.as_deref()),
            self.intern(&rec.tool),
        ]
    }

    /// The shared table.
    pub fn shared(&self) -> &Arc<Symbols> {
        &self.shared
    }
}

/// The names seen lately in one column, each in a slot picked by a hash of its length and its
/// first and last eight bytes, with its id. A column of servers, grants, sessions or tools
/// draws on a few dozen names at a time, in any order: finding one here costs two loads, a
/// multiplication and a comparison, where the symbol table hashes the whole name and probes. A
/// name that meets another in its slot is looked up in the table and takes the slot.
pub(super) struct Recent<'a> {
    slots: [Option<(&'a str, u32)>; RECENT],
}

/// Slots of a [`Recent`] (a power of two).
pub(super) const RECENT: usize = 64;

impl Default for Recent<'_> {
    fn default() -> Self {
        Recent {
            slots: [None; RECENT],
        }
    }
}

impl<'a> Recent<'a> {
    #[inline]
    pub(super) fn id(&mut self, name: &'a str, syms: &mut LocalSymbols) -> u32 {
        let slot = &mut self.slots[recent_slot(name.as_bytes())];
        match *slot {
            Some((n, id)) if same(n, name) => id,
            _ => Self::miss(slot, name, syms),
        }
    }

    /// A name not in its slot: looked up in the table, and it takes the slot. Out of line, so
    /// that the path of the usual hit stays short.
    #[cold]
    #[inline(never)]
    fn miss(slot: &mut Option<(&'a str, u32)>, name: &'a str, syms: &mut LocalSymbols) -> u32 {
        let id = syms.intern(name);
        *slot = Some((name, id));
        id
    }

    #[inline]
    pub(super) fn opt_id(&mut self, name: Option<&'a str>, syms: &mut LocalSymbols) -> u32 {
        name.map_or(NO_SYM, |n| self.id(n, syms))
    }
}

/// The slot of a name in a [`Recent`].
#[inline]
pub(super) fn recent_slot(b: &[u8]) -> usize {
    let n = b.len();
    let h = if n >= 8 {
        word(&b[..8]) ^ word(&b[n - 8..]).rotate_left(32)
    } else {
        let mut w = [0u8; 8];
        w[..n].copy_from_slice(b);
        u64::from_le_bytes(w)
    };
    ((h ^ n as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - RECENT.trailing_zeros())) as usize
}

/// String equality, inline for the short names of call records (a call to `memcmp` costs more
/// than comparing them).
#[inline]
pub(super) fn same(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let n = a.len();
    if n != b.len() {
        return false;
    }
    match n {
        // Two or four (possibly overlapping) words cover the whole string.
        8..=16 => word(&a[..8]) == word(&b[..8]) && word(&a[n - 8..]) == word(&b[n - 8..]),
        17..=32 => {
            word(&a[..8]) == word(&b[..8])
                && word(&a[8..16]) == word(&b[8..16])
                && word(&a[n - 16..n - 8]) == word(&b[n - 16..n - 8])
                && word(&a[n - 8..]) == word(&b[n - 8..])
        }
        _ => a == b,
    }
}

/// The names seen lately in the server, grant and tool columns. (Sessions are not interned:
/// batches keep them as text.)
#[derive(Default)]
pub(super) struct Memos<'a> {
    pub(super) server: Recent<'a>,
    pub(super) grant: Recent<'a>,
    pub(super) tool: Recent<'a>,
}

impl<'a> Memos<'a> {
    /// The server, grant and tool ids of a row.
    #[inline]
    pub(super) fn ids(
        &mut self,
        [server, grant]: [Option<&'a str>; 2],
        tool: &'a str,
        syms: &mut LocalSymbols,
    ) -> [u32; 3] {
        [
            self.server.id(server.unwrap_or(UNKNOWN_SERVER), syms),
            self.grant.opt_id(grant, syms),
            self.tool.id(tool, syms),
        ]
    }
}

/// Builds what a batch does not keep in columns, for one row, on demand.
pub trait BatchRows: Send {
    /// The recorded arguments of row `row`.
    fn args(&self, row: usize) -> Args;
    /// Row `row`'s arguments when the batch holds them as the text of an object its reader
    /// checked to be one that [`serde_json`] parses into a map (what [`BatchRows::args`] gives
    /// as [`Args::Raw`]), borrowed; `None` otherwise.
    fn args_text(&self, _row: usize) -> Option<&str> {
        None
    }
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
    /// About how many bytes of text the rows keep (a chunk of lines, say), which bounds how far
    /// the merge reads an input ahead; 0 when not known (then calls alone bound it).
    fn bytes(&self) -> usize {
        0
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
    /// Session names (none at all once sessions are skipped, see
    /// [`BatchSource::skip_sessions`]).
    pub session: Sessions,
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
    /// What a [`Prescreen`] worked out for each row on the reader's thread: `screened_width`
    /// numbers a row, row after row; empty when nothing was.
    pub screened: Vec<u32>,
    /// Numbers per row in `screened` ([`Prescreen::width`]; 0 when there are none).
    pub screened_width: usize,
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

    /// Fill [`CallBatch::screened`] with what `rows` works out for each row.
    pub(crate) fn prescreen(&mut self, width: usize, rows: &mut dyn PrescreenRows) {
        let mut out = vec![NOT_SCREENED; self.len() * width];
        rows.batch(self, &mut out);
        self.screened = out;
        self.screened_width = width;
    }

    /// Row `row`'s recorded arguments as the evaluator reads them: borrowed from the batch when
    /// it holds them as an object's checked text, else built into `slot`.
    #[inline]
    pub fn args_ref<'b>(&'b self, row: usize, slot: &'b mut Option<Args>) -> ArgsRef<'b> {
        match self.rows.args_text(row) {
            Some(text) => ArgsRef::Text(text),
            None => ArgsRef::Args(slot.insert(self.rows.args(row))),
        }
    }
}

/// Work a replay hands to the reader threads: numbers per call that depend on nothing but the
/// call (what steps 1–5 of its policies decide, see [`crate::engine::Policy::screen`]), worked
/// out as each batch is read, so that the replay's one thread need not.
pub trait Prescreen: Send + Sync {
    /// How many numbers each call gets.
    fn width(&self) -> usize;
    /// The worker of one reader thread.
    fn start(&self) -> Box<dyn PrescreenRows>;
}

/// A number of [`CallBatch::screened`] not worked out.
pub const NOT_SCREENED: u32 = u32::MAX;

/// [`Prescreen`] on one thread.
pub trait PrescreenRows: Send {
    /// The numbers of the calls of `rows` into `out`, row after row ([`Prescreen::width`] a
    /// row; every one [`NOT_SCREENED`] until worked out).
    fn batch(&mut self, rows: &dyn ScreenRows, out: &mut [u32]);
}

/// What screening reads of a reader's rows: a [`CallBatch`], or what a reader's worker holds
/// before it makes one.
pub trait ScreenRows {
    /// The server and tool id of every row.
    fn ids(&self) -> (&[u32], &[u32]);
    /// Row `row`'s arguments as the evaluator reads them (see [`CallBatch::args_ref`]).
    fn args_ref<'b>(&'b self, row: usize, slot: &'b mut Option<Args>) -> ArgsRef<'b>;
}

impl ScreenRows for CallBatch {
    fn ids(&self) -> (&[u32], &[u32]) {
        (&self.server, &self.tool)
    }

    fn args_ref<'b>(&'b self, row: usize, slot: &'b mut Option<Args>) -> ArgsRef<'b> {
        CallBatch::args_ref(self, row, slot)
    }
}

/// The session names of a batch's rows, as text. Sessions are not interned: the counters that
/// read them keep the names of the sessions live in a window and forget the others, so memory
/// follows the sessions in a window, not every session a trace names.
#[derive(Debug, Default, Clone)]
pub struct Sessions {
    text: String,
    /// Per row, where its name starts in `text` and how long it is ([`Sessions::NONE`]: the
    /// row has none). Rows may share a name's text.
    spans: Vec<(usize, usize)>,
}

impl Sessions {
    /// The length that marks a row without a session.
    const NONE: usize = usize::MAX;

    /// How many rows.
    pub(crate) fn len(&self) -> usize {
        self.spans.len()
    }

    /// Add a row's session.
    #[inline]
    pub(crate) fn push(&mut self, session: Option<&str>) {
        let span = match session {
            Some(s) => self.add_text(s),
            None => (0, Self::NONE),
        };
        self.spans.push(span);
    }

    /// Add `s` to the text, for rows to share through [`Sessions::push_span`].
    #[inline]
    pub(crate) fn add_text(&mut self, s: &str) -> (usize, usize) {
        let start = self.text.len();
        self.text.push_str(s);
        (start, s.len())
    }

    /// Add a row whose session is text added before (by [`Sessions::add_text`]).
    #[inline]
    pub(crate) fn push_span(&mut self, span: (usize, usize)) {
        self.spans.push(span);
    }

    /// Every row's session.
    pub fn iter(&self) -> impl Iterator<Item = Option<&str>> {
        (0..self.len()).map(|row| self.get(row))
    }

    /// Row `row`'s session; `None` when it has none, or when the batch has no sessions.
    #[inline]
    pub fn get(&self, row: usize) -> Option<&str> {
        let &(start, len) = self.spans.get(row)?;
        if len == Self::NONE {
            return None;
        }
        self.text.get(start..start + len)
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
    pub(crate) session: Sessions,
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
            session: Sessions {
                text: String::new(),
                spans: Vec::with_capacity(calls),
            },
            tool: Vec::with_capacity(calls),
            upstream: Vec::with_capacity(calls),
            recorded: Vec::with_capacity(calls),
        }
    }

    /// How many calls.
    pub(crate) fn len(&self) -> usize {
        self.ts.len()
    }

    /// Add a call: its time, line, server, grant and tool ids, session, upstream outcome and
    /// recorded decision.
    #[inline]
    pub(crate) fn push(
        &mut self,
        ts: Nanos,
        line: u64,
        [server, grant, tool]: [u32; 3],
        session: Option<&str>,
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
    pub(crate) fn push_record(
        &mut self,
        rec: &CallRecord,
        line: u64,
        syms: &mut LocalSymbols,
        sessions: bool,
    ) {
        let decision = rec.recorded.as_ref().and_then(|r| r.decision);
        let session = rec.session.as_deref().filter(|_| sessions);
        self.push(rec.ts, line, syms.ids(rec), session, rec.upstream, decision);
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
            screened: Vec::new(),
            screened_width: 0,
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

    /// Nobody needs sessions: batches read from now on may leave every `session` out (the
    /// sessions of records built from them stay as they are). Sessions are the most varied
    /// names of a trace, so not copying them saves work. A source may keep reading them.
    fn skip_sessions(&mut self) {}

    /// Work `work` out for the calls of batches read from now on, on the source's own threads
    /// ([`CallBatch::screened`]). A source without threads of its own leaves it to the replay.
    fn prescreen(&mut self, _work: &Arc<dyn Prescreen>) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Names that share a slot of the recent names (thousands of them, in any order, of every
    /// length around the eight-byte words the slot is picked by) still get their own ids.
    #[test]
    fn recent_names_that_meet_in_a_slot_keep_their_own_ids() {
        let names: Vec<String> = (0..3000u32)
            .map(|i| {
                let len = (i % 23) as usize;
                format!("{}{i}", "n".repeat(len))
            })
            .collect();
        let symbols = Symbols::new();
        let mut syms = LocalSymbols::new(symbols.clone());
        let mut recent = Recent::default();
        let mut collisions = 0;
        for round in 0..3 {
            for k in 0..names.len() {
                // A different order each round.
                let name = &names[(k * (2 * round + 1) + round) % names.len()];
                let slot = recent_slot(name.as_bytes());
                collisions += usize::from(recent.slots[slot].is_some_and(|(n, _)| n != name));
                let id = recent.id(name, &mut syms);
                assert_eq!(&*symbols.name(id), name.as_str());
            }
        }
        assert!(
            collisions > 1000,
            "{collisions} collisions: the test does not collide"
        );
        assert_eq!(symbols.len(), names.len());
    }

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

    proptest::proptest! {
        #[test]
        fn short_names_compare_as_strings_do(
            a in "[ab]{0,40}",
            at in proptest::prelude::any::<proptest::sample::Index>(),
        ) {
            // The same length, at most one byte apart.
            let mut b = a.clone().into_bytes();
            if !b.is_empty() {
                let i = at.index(b.len());
                b[i] = if b[i] == b'a' { b'b' } else { b'a' };
            }
            let b = String::from_utf8(b).expect("ASCII");
            proptest::prop_assert_eq!(same(&a, &b), a == b);
            proptest::prop_assert!(same(&a, &a.clone()));
            let longer = format!("{a}a");
            proptest::prop_assert!(!same(&a, &longer));
        }
    }
}
