//! mcpsim JSONL read straight into [`CallBatch`]es: chunks of lines scanned on worker threads.
//!
//! The calling thread cuts the input into chunks of whole lines (about [`CHUNK`] bytes). A plain
//! file is memory-mapped and a chunk is a range of the map; a decoded stream (gzip, zstd) is
//! read into reused buffers. Worker threads turn each chunk into the columns of one batch, and
//! batches come back in chunk order, so rows, line numbers and skipped lines are exactly those
//! of the sequential reader ([`super::jsonl::JsonlSource`]). At most [`IN_FLIGHT`] chunks are
//! dispatched and not yet handed out, so memory does not grow with the input.
//!
//! Each line is read by a hand-written scanner that takes only the usual shape: one flat object
//! whose strings that matter (key names, names, the timestamp) hold no escape, each known key
//! at most once, `args` an object (kept as its JSON text), plain numbers. It validates the whole
//! line as JSON as it goes, and anything it is not sure of (an escaped name, a duplicate key, a
//! `recorded` object, an exponent, bad JSON…) sends the line to the sequential reader's own code,
//! which then yields the record or the error. So the scanner never decides that a line is bad,
//! and never accepts a line that code would reject.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufRead, ErrorKind, Read};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex};
use std::thread;

use super::mapped::MappedFile;

use super::batch::{
    BatchRows, BatchSource, CallBatch, Columns, LocalSymbols, Memos, NO_SYM, NOT_SCREENED,
    Prescreen, PrescreenRows, RECENT, RowRest, ScreenRows, Symbols, recent_slot, same,
};
use super::format::UTF8_BOM;
use super::input::open_decoded;
use super::intern::Interner;
use super::jsonl::record_from_line;
use super::jsonrpc::{self, JsonRpc, RpcKind};
use super::pairing::{Message, NO_SERVER, NO_SESSION, Pair, PairKey, Pairing, Replies};
use super::read_stats::ReadStats;
use super::scan::Scanner;
use super::source::{
    Ctx, LineError, LineTooLong, MAX_LINE_BYTES, UNKNOWN_SERVER, line_too_long, parse_object,
};
use super::{Args, CallRecord, Nanos, Origin, RawArgs, RecordedDecision, TraceError, Upstream};
use crate::call::ArgsRef;

/// Bytes per chunk handed to a worker (a chunk is extended to the end of its last line).
const CHUNK: usize = 1 << 20;
/// Chunks dispatched but not yet handed out as batches.
const IN_FLIGHT: usize = 8;
/// How far before its start a chunk's pages are dropped from the resident set once it is read
/// (see [`ChunkBytes`]'s `drop`): a page fault may map a whole large folio of the page cache
/// around the faulting page, up to 2 MiB on Linux. With 256 KiB, the pages a chunk's first
/// fault mapped further back than that stayed resident: a 4.9 GB JSON-RPC recording held 80 MB
/// of them by the end of its first read.
const RELEASE_BEFORE: usize = 2 << 20;

/// mcpsim JSONL as [`CallBatch`]es, one per chunk of lines, parsed by a pool of workers.
pub(crate) struct JsonlBatchSource {
    name: String,
    file: u32,
    input: Input,
    chunk: usize,
    /// Whether no chunk was cut yet (the next one holds line 1, which may start with a BOM).
    at_start: bool,
    /// Number of the first line of the next batch handed out.
    next_line: u64,
    jobs: Option<SyncSender<Job>>,
    pending: VecDeque<(Arc<ChunkBytes>, Receiver<Parsed>)>,
    /// Whether sessions are wanted.
    sessions: bool,
    /// What the chunks dispatched from now on are read as.
    mode: Mode,
    /// Lines a first read found to be replies: a second read passes over them.
    skip: Option<Skip>,
    /// A line longer than [`MAX_LINE_BYTES`] came after the chunks dispatched: once they are
    /// handed out, its number is known and the read ends with it.
    too_long: bool,
    /// What the workers work out for the calls of chunks dispatched from now on.
    prescreen: Option<Arc<dyn Prescreen>>,
    /// Chunks dispatched, and handed out (shared with the workers: they screen only the
    /// chunks the replay is not waiting for).
    dispatched: usize,
    handed: Arc<AtomicUsize>,
}

/// What the second read of a JSON-RPC recording passes over, and where its chunks start.
struct Skip {
    /// The lines the first read found to be replies.
    replies: Arc<LineSet>,
    /// Where the first read cut its chunks: the bytes and lines up to the end of each, in
    /// order. A chunk of the second read that ends where one of these ends has its lines
    /// numbered without counting them (on a mapped file, every chunk).
    cuts: VecDeque<(u64, u64)>,
    /// Bytes and lines cut so far.
    bytes: u64,
    lines: u64,
}

impl Skip {
    /// For a read that starts `bytes` into the input, after its first `lines` lines.
    fn new(replies: LineSet, cuts: VecDeque<(u64, u64)>, (bytes, lines): (u64, u64)) -> Skip {
        Skip {
            replies: Arc::new(replies),
            cuts,
            bytes,
            lines,
        }
    }

    /// The replies, and the number of the first line of `text`, the next chunk cut.
    fn chunk(&mut self, text: &[u8]) -> (Arc<LineSet>, u64) {
        let first = self.lines + 1;
        self.bytes += text.len() as u64;
        while self.cuts.front().is_some_and(|&(end, _)| end < self.bytes) {
            self.cuts.pop_front();
        }
        self.lines = match self.cuts.front() {
            Some(&(end, lines)) if end == self.bytes => lines,
            // Lines as the chunk's parse counts them: a last line may lack its newline.
            _ => {
                let newlines = memchr::memchr_iter(b'\n', text).count() as u64;
                self.lines + newlines + u64::from(text.last().is_some_and(|&b| b != b'\n'))
            }
        };
        (Arc::clone(&self.replies), first)
    }
}

/// A set of line numbers, one bit each.
#[derive(Default)]
struct LineSet(Vec<u64>);

impl LineSet {
    fn insert(&mut self, line: u64) {
        let (word, bit) = ((line / 64) as usize, line % 64);
        if self.0.len() <= word {
            self.0.resize(word + 1, 0);
        }
        self.0[word] |= 1 << bit;
    }

    fn contains(&self, line: u64) -> bool {
        self.0
            .get((line / 64) as usize)
            .is_some_and(|w| w & (1 << (line % 64)) != 0)
    }
}

/// What a [`JsonlBatchSource`] reads its lines as.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mode {
    /// mcpsim's call records.
    Calls,
    /// An MCP JSON-RPC recording's calls and every line's pairing message, in one read.
    Rpc,
    /// An MCP JSON-RPC recording's calls, for a second read ([`RpcSource`]).
    RpcCalls,
    /// An MCP JSON-RPC recording's pairing messages only.
    RpcPairing,
}

/// A pairing key of a JSON-RPC message: server id, session number and the id's JSON text.
/// The server is [`ANY_SERVER`] for a reply that names none, the session [`NO_SYM`] where there
/// is none. Sessions are not names of the shared table (a recording may name millions): a
/// worker numbers them within its chunk ([`ChunkSessions`]), the pairing renumbers them
/// ([`PairSessions`]) as it takes the chunk.
type RpcKey = (u32, u32, IdText);

/// The sessions the pairing keys of one chunk name, each numbered once within the chunk, with
/// its hash (the pairing, on one thread, then finds it without hashing it again). A name met
/// again soon is found in a small cache of recent names, the others in a table of the chunk's.
#[derive(Default)]
struct ChunkSessions {
    text: String,
    /// Per number, where its name lies in `text`, and its hash.
    names: Vec<(u32, u32, u64)>,
    /// The numbers by hash.
    table: hashbrown::HashTable<u32>,
    /// Per slot of [`recent_slot`], the number of the last name there, plus one (0: none).
    recent: Vec<u32>,
}

fn name_hash(name: &str) -> u64 {
    use std::hash::BuildHasher;
    rustc_hash::FxBuildHasher.hash_one(name)
}

impl ChunkSessions {
    /// The number of `name` in this chunk ([`NO_SYM`] for none).
    #[inline]
    fn number(&mut self, name: Option<&str>) -> u32 {
        let Some(name) = name else { return NO_SYM };
        if self.recent.is_empty() {
            self.recent = vec![0; RECENT];
        }
        let slot = recent_slot(name.as_bytes());
        if let Some(n) = self.recent[slot].checked_sub(1) {
            if same(self.get(n), name) {
                return n;
            }
        }
        let n = self.lookup(name);
        self.recent[slot] = n + 1;
        n
    }

    /// A name not in the cache: found in the table, or numbered.
    #[inline(never)]
    fn lookup(&mut self, name: &str) -> u32 {
        let hash = name_hash(name);
        let (text, names) = (&self.text, &self.names);
        let at = |n: u32| {
            let (start, len, _) = names[n as usize];
            &text[start as usize..(start + len) as usize]
        };
        if let Some(&n) = self.table.find(hash, |&n| at(n) == name) {
            return n;
        }
        let n = self.names.len() as u32;
        (self.names).push((self.text.len() as u32, name.len() as u32, hash));
        self.text.push_str(name);
        let names = &self.names;
        (self.table).insert_unique(hash, n, |&m| names[m as usize].2);
        n
    }

    fn get(&self, n: u32) -> &str {
        let (start, len, _) = self.names[n as usize];
        &self.text[start as usize..(start + len) as usize]
    }
}

/// The numbers a recording's pairing gives sessions, in file order, across chunks. A session
/// is forgotten once no key the pairing holds names it (checked when the table has doubled
/// since the last check), so memory follows the requests waiting, not every session of the
/// recording. Numbers are not given twice while a key may hold them.
struct PairSessions {
    /// Each name, its hash and number.
    numbers: hashbrown::HashTable<(Box<str>, u64, u32)>,
    next: u32,
    /// Scratch of [`PairSessions::renumber`].
    ours: Vec<u32>,
    sweep_at: usize,
}

/// The fewest sessions [`PairSessions`] holds before it looks for ones to forget (in tests,
/// few: every recording they read then forgets sessions on the way).
const PAIR_SESSIONS_FLOOR: usize = if cfg!(test) { 8 } else { 1 << 14 };

impl PairSessions {
    fn new() -> PairSessions {
        PairSessions {
            numbers: hashbrown::HashTable::new(),
            next: 0,
            ours: Vec::new(),
            sweep_at: PAIR_SESSIONS_FLOOR,
        }
    }

    /// Renumber the sessions of a chunk's pairing messages from the chunk's numbers
    /// ([`ChunkSessions`]) to this table's.
    fn renumber(&mut self, chunk: &ChunkSessions, pairs: &mut [(u64, Pair<RpcKey>)]) {
        if chunk.names.is_empty() {
            return;
        }
        // This table's number of each of the chunk's sessions, once looked up.
        let mut ours = std::mem::take(&mut self.ours);
        ours.clear();
        ours.resize(chunk.names.len(), NO_SYM);
        for (_, pair) in pairs {
            let Some(key) = pair.key_mut() else { continue };
            let Some(slot) = ours.get_mut(key.1 as usize) else {
                continue;
            };
            if *slot == NO_SYM {
                *slot = self.number(chunk.get(key.1), chunk.names[key.1 as usize].2);
            }
            key.1 = *slot;
        }
        self.ours = ours;
    }

    /// The number of `name`, whose hash is `hash`.
    fn number(&mut self, name: &str, hash: u64) -> u32 {
        if let Some(&(_, _, n)) = self.numbers.find(hash, |e| &*e.0 == name) {
            return n;
        }
        let n = self.next;
        // Past u32::MAX - 1 numbers (NO_SYM is the last), numbering starts over: the
        // sessions of waiting requests would have to span four billion others to collide.
        self.next = (self.next.checked_add(1))
            .filter(|&m| m != NO_SYM)
            .unwrap_or(0);
        (self.numbers).insert_unique(hash, (name.into(), hash, n), |e| e.1);
        n
    }

    /// Forget the sessions no key of `pairing` names, when there are many.
    fn sweep(&mut self, pairing: &Pairing<RpcKey>) {
        if self.numbers.len() < self.sweep_at {
            return;
        }
        let mut used = rustc_hash::FxHashSet::default();
        pairing.keys(|k| {
            used.insert(k.1);
        });
        self.numbers.retain(|e| used.contains(&e.2));
        self.numbers.shrink_to(2 * self.numbers.len(), |e| e.1);
        self.sweep_at = PAIR_SESSIONS_FLOOR.max(2 * self.numbers.len());
    }
}

/// The server of a reply's key when the reply names none: it pairs by the rest.
const ANY_SERVER: u32 = u32::MAX;

impl PairKey for RpcKey {
    fn left_out(&self) -> u8 {
        (u8::from(self.0 == ANY_SERVER) * NO_SERVER) | (u8::from(self.1 == NO_SYM) * NO_SESSION)
    }

    fn leave_out(&self, parts: u8) -> RpcKey {
        let part = |bit: u8, id: u32, none: u32| if parts & bit != 0 { none } else { id };
        (
            part(NO_SERVER, self.0, ANY_SERVER),
            part(NO_SESSION, self.1, NO_SYM),
            self.2.clone(),
        )
    }
}

/// A request id's JSON text, short ones kept inline: the pairing keys a million messages
/// a second by it, and an allocation each cost more than the pairing.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum IdText {
    Short(u8, [u8; 22]),
    Long(Box<str>),
}

impl From<&str> for IdText {
    fn from(text: &str) -> IdText {
        let mut short = [0u8; 22];
        match short.get_mut(..text.len()) {
            Some(head) => {
                head.copy_from_slice(text.as_bytes());
                IdText::Short(text.len() as u8, short)
            }
            None => IdText::Long(text.into()),
        }
    }
}

/// Bytes of chunks an [`RpcSource`] holds back, waiting for replies, before it reads the rest
/// of the recording twice.
const HOLD: usize = 32 << 20;

/// An MCP JSON-RPC recording as [`CallBatch`]es, its calls paired with their replies (see
/// [`super::pairing`]) in one read where replies come soon.
///
/// Each chunk is scanned once, for its calls and for every line's pairing message; the
/// pairing is fed in file order and the chunk is held until each of its calls is settled
/// (replied to, its id used again, or the file ended), then handed out with its replies.
/// Replies usually follow their requests within a few lines, so a few chunks are held. When
/// more than [`HOLD`] bytes wait (a request never answered, or a recording concatenated session
/// by session), the held chunks are dropped and the read goes on for the pairing only; at the
/// end, a second read from the first chunk dropped hands out the rest, passing over the lines
/// found to be replies. So memory stays bounded and the result is the same either way.
pub(crate) struct RpcSource {
    path: std::path::PathBuf,
    name: String,
    file: u32,
    symbols: Arc<Symbols>,
    chunk: usize,
    hold: usize,
    read: JsonlBatchSource,
    stage: Stage,
    pairing: Pairing<RpcKey>,
    sessions: PairSessions,
    /// Chunks read and not yet handed out, in order.
    held: VecDeque<Held>,
    held_bytes: usize,
    /// Bytes of the chunks read so far.
    offset: u64,
    /// The lines found to be replies, and where each chunk read ended (bytes and lines up to
    /// its end): what a second read needs.
    replies: LineSet,
    cuts: VecDeque<(u64, u64)>,
    /// The pairing's counts, once it is done, until handed to the stats.
    counts: Option<(Replies, u64)>,
}

/// Where an [`RpcSource`] stands.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Stage {
    /// Reading calls and replies at once.
    One,
    /// Too much was held: reading on for the pairing only; then a second read from the given
    /// byte, line.
    Pairing((u64, u64)),
    /// The second read.
    Second,
    /// The file is read.
    Done,
}

/// A chunk read and held until its calls are settled.
struct Held {
    parsed: Parsed,
    bytes: Arc<ChunkBytes>,
    /// The number of the chunk's first line, and its first byte.
    base: u64,
    start: u64,
    /// Calls with an id up to the chunk's end.
    calls: usize,
}

impl RpcSource {
    /// Read the MCP JSON-RPC recording at `path` (input number `file`, shown as `name`).
    pub(crate) fn open(
        path: &Path,
        name: &str,
        file: u32,
        symbols: Arc<Symbols>,
    ) -> Result<RpcSource, TraceError> {
        RpcSource::open_in(path, name, file, symbols, CHUNK, HOLD)
    }

    fn open_in(
        path: &Path,
        name: &str,
        file: u32,
        symbols: Arc<Symbols>,
        chunk: usize,
        hold: usize,
    ) -> Result<RpcSource, TraceError> {
        let read =
            JsonlBatchSource::open_as(path, name, file, Arc::clone(&symbols), Mode::Rpc, chunk)?;
        Ok(RpcSource {
            path: path.to_path_buf(),
            name: name.to_string(),
            file,
            symbols,
            chunk,
            hold,
            read,
            stage: Stage::One,
            pairing: Pairing::new(name),
            sessions: PairSessions::new(),
            held: VecDeque::new(),
            held_bytes: 0,
            offset: 0,
            replies: LineSet::default(),
            cuts: VecDeque::new(),
            counts: None,
        })
    }

    /// Feed the pairing messages of a chunk read (its lines counted from `base`).
    fn feed(&mut self, parsed: &mut Parsed, len: usize, base: u64) {
        self.offset += len as u64;
        self.cuts.push_back((self.offset, base - 1 + parsed.lines));
        let reply = |p: &Pair<RpcKey>| matches!(p, Pair::Reply { .. });
        // The chunk's sessions are needed no more once renumbered (the chunk may be held).
        let chunk_sessions = std::mem::take(&mut parsed.pair_sessions);
        (self.sessions).renumber(&chunk_sessions, &mut parsed.pairs);
        let mut pairs = parsed.pairs.drain(..).peekable();
        while let Some((line, pair)) = pairs.next() {
            if pairs.peek().is_none_or(|(l, _)| *l != line) {
                if reply(&pair) {
                    self.replies.insert(base + line);
                }
                self.pairing.line(base + line, [pair]);
                continue;
            }
            // The messages of a batch.
            let mut batch = vec![pair];
            while let Some((_, p)) = pairs.next_if(|(l, _)| *l == line) {
                batch.push(p);
            }
            if batch.iter().all(reply) {
                self.replies.insert(base + line);
            }
            self.pairing.line(base + line, batch);
        }
        self.sessions.sweep(&self.pairing);
    }

    /// The end of the file: every call is settled.
    fn finish(&mut self) {
        if let Some(counts) = self.pairing.finish() {
            self.counts = Some(counts);
        }
    }

    /// The first held chunk as a batch, once its calls are settled.
    fn ready(&mut self) -> Option<CallBatch> {
        if self.held.front()?.calls > self.pairing.settled() {
            return None;
        }
        let mut h = self.held.pop_front()?;
        self.held_bytes -= h.bytes.bytes().len();
        h.parsed.attach(&mut self.pairing, h.base);
        Some(h.parsed.into_batch(h.bytes, self.file, h.base))
    }

    /// One step of reading; `false` once nothing is left to read.
    fn step(&mut self) -> Result<bool, TraceError> {
        match self.stage {
            Stage::One if self.held_bytes > self.hold => {
                // Nothing held is settled (the oldest would have been handed out): read the
                // rest for the pairing only, then again from the first chunk held.
                let first = self
                    .held
                    .front()
                    .map_or((self.offset, self.read.next_line), |h| (h.start, h.base));
                self.held.clear();
                self.held_bytes = 0;
                self.read.mode = Mode::RpcPairing;
                self.stage = Stage::Pairing(first);
            }
            Stage::One => match self.read.next_parsed()? {
                Some((mut parsed, bytes, base)) => {
                    let start = self.offset;
                    self.feed(&mut parsed, bytes.bytes().len(), base);
                    self.held_bytes += bytes.bytes().len();
                    let calls = self.pairing.calls();
                    self.held.push_back(Held {
                        parsed,
                        bytes,
                        base,
                        start,
                        calls,
                    });
                }
                None => {
                    self.finish();
                    self.stage = Stage::Done;
                }
            },
            Stage::Pairing((byte, line)) => {
                while let Some((mut parsed, bytes, base)) = self.read.next_parsed()? {
                    self.feed(&mut parsed, bytes.bytes().len(), base);
                }
                self.finish();
                let mut read = JsonlBatchSource::open_as(
                    &self.path,
                    &self.name,
                    self.file,
                    Arc::clone(&self.symbols),
                    Mode::RpcCalls,
                    self.chunk,
                )?;
                read.sessions = self.read.sessions;
                read.prescreen = self.read.prescreen.clone();
                read.start_at(byte, line).map_err(|e| read.io_error(e))?;
                let cuts = std::mem::take(&mut self.cuts);
                let replies = std::mem::take(&mut self.replies);
                read.skip = Some(Skip::new(replies, cuts, (byte, line - 1)));
                self.read = read;
                self.stage = Stage::Second;
            }
            Stage::Second => match self.read.next_parsed()? {
                Some((parsed, bytes, base)) => {
                    // Settled: the pairing is done.
                    self.held_bytes += bytes.bytes().len();
                    let h = Held {
                        parsed,
                        bytes,
                        base,
                        start: 0,
                        calls: 0,
                    };
                    self.held.push_back(h);
                }
                None => self.stage = Stage::Done,
            },
            Stage::Done => return Ok(false),
        }
        Ok(true)
    }
}

impl BatchSource for RpcSource {
    fn next_batch(&mut self) -> Result<Option<CallBatch>, TraceError> {
        loop {
            while let Some(batch) = self.ready() {
                // A stretch of blank lines makes no batch.
                if !batch.is_empty() || !batch.skipped.is_empty() || !batch.ignored.is_empty() {
                    return Ok(Some(batch));
                }
            }
            if !self.step()? {
                return Ok(None);
            }
        }
    }

    fn skip_sessions(&mut self) {
        self.read.skip_sessions();
    }

    fn prescreen(&mut self, work: &Arc<dyn Prescreen>) {
        self.read.prescreen(work);
    }

    fn take_stats(&mut self) -> Option<ReadStats> {
        let (replies, other) = self.counts.take()?;
        let mut stats = ReadStats::default();
        if other > 0 {
            stats
                .ignored
                .insert("reply to another request".into(), other);
        }
        stats.replies = Some(replies);
        Some(stats)
    }
}

/// Where chunks come from.
enum Input {
    Mapped {
        map: Arc<MappedFile>,
        pos: usize,
    },
    Stream {
        r: Box<dyn BufRead + Send>,
        carry: Vec<u8>,
        eof: bool,
        pool: Arc<Pool>,
    },
}

impl Input {
    fn stream(r: Box<dyn BufRead + Send>) -> Input {
        Input::Stream {
            r,
            carry: Vec::new(),
            eof: false,
            pool: Arc::new(Pool::default()),
        }
    }
}

struct Job {
    mode: Mode,
    bytes: Arc<ChunkBytes>,
    /// Whether the chunk starts the input (its first line is line 1).
    first: bool,
    /// Whether sessions are wanted (see [`BatchSource::skip_sessions`]).
    sessions: bool,
    /// Lines to pass over, and the number of the chunk's first line.
    skip: Option<(Arc<LineSet>, u64)>,
    /// What to work out for the chunk's calls; the chunk's place among those dispatched, and
    /// how many were handed out, to tell whether the replay waits for it.
    screen: Option<(Arc<dyn Prescreen>, usize, Arc<AtomicUsize>)>,
    reply: SyncSender<Parsed>,
}

impl JsonlBatchSource {
    /// Read the file at `path` (input number `file`, shown as `name`): memory-mapped when it is
    /// a plain file, else (compressed, or when it cannot be mapped) read as a stream.
    pub(crate) fn open_file(
        path: &Path,
        name: &str,
        file: u32,
        symbols: Arc<Symbols>,
    ) -> Result<JsonlBatchSource, TraceError> {
        JsonlBatchSource::open_as(path, name, file, symbols, Mode::Calls, CHUNK)
    }

    fn open_as(
        path: &Path,
        name: &str,
        file: u32,
        symbols: Arc<Symbols>,
        mode: Mode,
        chunk: usize,
    ) -> Result<JsonlBatchSource, TraceError> {
        let (r, compressed) = open_decoded(path, name)?;
        if compressed {
            return Ok(JsonlBatchSource::new(
                Input::stream(r),
                name,
                file,
                symbols,
                mode,
                chunk,
            ));
        }
        let mapped = File::open(path).and_then(|f| {
            // Pipes and devices cannot be mapped, and some special files say they are empty.
            let meta = f.metadata()?;
            if !meta.is_file() || meta.len() == 0 {
                return Err(std::io::Error::other("not a plain file"));
            }
            MappedFile::map(&f, name)
        });
        let Ok(map) = mapped else {
            return Ok(JsonlBatchSource::new(
                Input::stream(r),
                name,
                file,
                symbols,
                mode,
                chunk,
            ));
        };
        #[cfg(unix)]
        {
            // A hint only: read-ahead for a front-to-back read.
            let _ = map.advise(memmap2::Advice::Sequential);
        }
        let input = Input::Mapped {
            map: Arc::new(map),
            pos: 0,
        };
        Ok(JsonlBatchSource::new(
            input, name, file, symbols, mode, chunk,
        ))
    }

    /// Read a decoded stream of mcpsim JSONL (input number `file`, shown as `name`) in chunks.
    #[cfg(test)]
    fn open_reader(
        r: Box<dyn BufRead + Send>,
        name: &str,
        file: u32,
        symbols: Arc<Symbols>,
    ) -> JsonlBatchSource {
        JsonlBatchSource::new(Input::stream(r), name, file, symbols, Mode::Calls, CHUNK)
    }

    fn new(
        input: Input,
        name: &str,
        file: u32,
        symbols: Arc<Symbols>,
        mode: Mode,
        chunk: usize,
    ) -> JsonlBatchSource {
        let workers = thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
            .clamp(1, 4);
        let (job_tx, job_rx) = sync_channel::<Job>(IN_FLIGHT);
        let job_rx = Arc::new(Mutex::new(job_rx));
        for _ in 0..workers {
            let jobs = Arc::clone(&job_rx);
            let symbols = Arc::clone(&symbols);
            // A worker that cannot be started leaves the others (and at least the caller's
            // pending chunks) to fail loudly at the first reply, never silently.
            let _ = thread::Builder::new()
                .name("jsonl-scan".into())
                .spawn(move || {
                    super::priority::defer_to_replay();
                    worker(&jobs, file, symbols)
                });
        }
        JsonlBatchSource {
            name: name.to_string(),
            file,
            input,
            chunk,
            at_start: true,
            next_line: 1,
            jobs: Some(job_tx),
            pending: VecDeque::with_capacity(IN_FLIGHT),
            sessions: true,
            mode,
            skip: None,
            too_long: false,
            prescreen: None,
            dispatched: 0,
            handed: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// Start reading `byte` bytes into the input, at its line number `line`: a chunk boundary
    /// of an earlier read. A stream is read up to there.
    fn start_at(&mut self, byte: u64, line: u64) -> Result<(), std::io::Error> {
        if byte > 0 {
            self.at_start = false;
        }
        self.next_line = line;
        match &mut self.input {
            Input::Mapped { map, pos } => *pos = (byte as usize).min(map.len()),
            Input::Stream { r, .. } => {
                let passed = std::io::copy(&mut r.by_ref().take(byte), &mut std::io::sink())?;
                if passed < byte {
                    return Err(std::io::Error::new(
                        ErrorKind::UnexpectedEof,
                        "the file got shorter between two reads",
                    ));
                }
            }
        }
        Ok(())
    }

    /// Smaller chunks, so tests cross chunk boundaries with little data.
    #[cfg(test)]
    fn with_chunk(mut self, bytes: usize) -> JsonlBatchSource {
        self.chunk = bytes.max(1);
        self
    }

    fn io_error(&self, source: std::io::Error) -> TraceError {
        TraceError::Io {
            file: self.name.clone(),
            source,
        }
    }

    /// Cut the next chunk of whole lines; `None` at the end of the input.
    fn next_chunk(&mut self) -> Result<Option<ChunkBytes>, std::io::Error> {
        let chunk = self.chunk;
        match &mut self.input {
            Input::Mapped { map, pos } => {
                let len = map.len();
                if *pos >= len {
                    return Ok(None);
                }
                let start = *pos;
                let end = match start.checked_add(chunk) {
                    Some(target) if target < len => {
                        memchr::memchr(b'\n', &map[target - 1..]).map_or(len, |i| target + i)
                    }
                    _ => len,
                };
                *pos = end;
                Ok(Some(ChunkBytes::Mapped {
                    map: Arc::clone(map),
                    start,
                    end,
                }))
            }
            Input::Stream {
                r,
                carry,
                eof,
                pool,
            } => {
                if *eof {
                    return Ok(None);
                }
                // Buffers come back when their batches are dropped: reusing them saves the page
                // faults of fresh ones.
                let mut buf = pool.take();
                buf.extend_from_slice(carry);
                carry.clear();
                // Fill to at least a chunk's size, then on until the chunk holds a newline (the
                // carried part of a line holds none). Reading straight into the chunk (large
                // reads bypass the reader's buffer) saves a copy.
                let mut newline = false;
                while buf.len() < chunk || !newline {
                    let len = buf.len();
                    let want = if len < chunk {
                        chunk - len
                    } else {
                        chunk.min(64 * 1024)
                    };
                    buf.resize(len + want, 0);
                    match r.read(&mut buf[len..]) {
                        Ok(0) => {
                            buf.truncate(len);
                            *eof = true;
                            break;
                        }
                        Ok(n) => {
                            buf.truncate(len + n);
                            newline = newline || memchr::memchr(b'\n', &buf[len..]).is_some();
                            // The chunk holds one unfinished line: past the limit, stop
                            // reading (a few MB of gzip can inflate to gigabytes of one line).
                            if !newline && buf.len() > MAX_LINE_BYTES {
                                return Err(std::io::Error::other(LineTooLong));
                            }
                        }
                        Err(e) if e.kind() == ErrorKind::Interrupted => buf.truncate(len),
                        Err(e) => return Err(e),
                    }
                }
                if !*eof {
                    if let Some(pos) = memchr::memrchr(b'\n', &buf) {
                        carry.extend_from_slice(&buf[pos + 1..]);
                        buf.truncate(pos + 1);
                    }
                }
                if buf.is_empty() {
                    pool.put(buf);
                    return Ok(None);
                }
                Ok(Some(ChunkBytes::Owned {
                    buf,
                    pool: Arc::clone(pool),
                }))
            }
        }
    }

    /// Keep the workers busy: dispatch chunks until IN_FLIGHT are pending or the input ends.
    fn refill(&mut self) -> Result<(), TraceError> {
        while self.pending.len() < IN_FLIGHT && self.jobs.is_some() {
            let next = match self.next_chunk() {
                Err(e) if e.get_ref().is_some_and(|e| e.is::<LineTooLong>()) => {
                    self.too_long = true;
                    Ok(None)
                }
                next => next,
            };
            let Some(bytes) = next.map_err(|e| self.io_error(e))? else {
                // Workers end once the queue is closed and drained.
                self.jobs = None;
                return Ok(());
            };
            let bytes = Arc::new(bytes);
            let skip = self.skip.as_mut().map(|s| s.chunk(bytes.bytes()));
            let (reply, rx) = sync_channel(1);
            let job = Job {
                mode: self.mode,
                bytes: Arc::clone(&bytes),
                first: std::mem::replace(&mut self.at_start, false),
                sessions: self.sessions,
                skip,
                screen: (self.prescreen.as_ref())
                    .filter(|_| self.mode != Mode::RpcPairing)
                    .map(|work| (Arc::clone(work), self.dispatched, Arc::clone(&self.handed))),
                reply,
            };
            self.dispatched += 1;
            let sent = self
                .jobs
                .as_ref()
                .is_some_and(|jobs| jobs.send(job).is_ok());
            if !sent {
                return Err(self.io_error(std::io::Error::other(
                    "the JSONL parsing workers stopped unexpectedly",
                )));
            }
            self.pending.push_back((bytes, rx));
        }
        Ok(())
    }
}

impl JsonlBatchSource {
    /// The next chunk's lines as parsed, with the chunk and the number of its first line.
    fn next_parsed(&mut self) -> Result<Option<(Parsed, Arc<ChunkBytes>, u64)>, TraceError> {
        self.refill()?;
        let Some((bytes, rx)) = self.pending.pop_front() else {
            if self.too_long {
                return Err(line_too_long(&self.name, self.next_line));
            }
            return Ok(None);
        };
        let Ok(parsed) = rx.recv() else {
            return Err(self.io_error(std::io::Error::other(
                "a JSONL parsing worker stopped unexpectedly",
            )));
        };
        let base = self.next_line;
        self.next_line += parsed.lines;
        self.handed.fetch_add(1, Ordering::Relaxed);
        Ok(Some((parsed, bytes, base)))
    }
}

impl BatchSource for JsonlBatchSource {
    fn next_batch(&mut self) -> Result<Option<CallBatch>, TraceError> {
        while let Some((parsed, bytes, base)) = self.next_parsed()? {
            let batch = parsed.into_batch(bytes, self.file, base);
            // A stretch of blank lines makes no batch.
            if !batch.is_empty() || !batch.skipped.is_empty() || !batch.ignored.is_empty() {
                return Ok(Some(batch));
            }
        }
        Ok(None)
    }

    fn skip_sessions(&mut self) {
        self.sessions = false;
    }

    fn prescreen(&mut self, work: &Arc<dyn Prescreen>) {
        self.prescreen = Some(Arc::clone(work));
    }
}

/// Spare stream buffers.
#[derive(Default)]
struct Pool(Mutex<Vec<Vec<u8>>>);

impl Pool {
    fn take(&self) -> Vec<u8> {
        let mut buf = self
            .0
            .lock()
            .ok()
            .and_then(|mut spare| spare.pop())
            .unwrap_or_default();
        buf.clear();
        buf
    }

    fn put(&self, buf: Vec<u8>) {
        if let Ok(mut spare) = self.0.lock() {
            if spare.len() < IN_FLIGHT + 2 {
                spare.push(buf);
            }
        }
    }
}

/// The bytes of one chunk, shared by the worker parsing it and the batch made from it.
enum ChunkBytes {
    /// A range of the file's map.
    Mapped {
        map: Arc<MappedFile>,
        start: usize,
        end: usize,
    },
    /// A buffer read from a stream, back to the pool when done.
    Owned { buf: Vec<u8>, pool: Arc<Pool> },
}

impl ChunkBytes {
    fn bytes(&self) -> &[u8] {
        match self {
            ChunkBytes::Mapped { map, start, end } => &map[*start..*end],
            ChunkBytes::Owned { buf, .. } => buf,
        }
    }
}

impl ChunkBytes {
    /// Map the pages of a mapped chunk in one call before it is scanned, instead of one page
    /// fault per few pages as the scan reaches them. Best effort: where the system has no such
    /// call, the scan faults them in as before.
    fn populate(&self) {
        #[cfg(target_os = "linux")]
        if let ChunkBytes::Mapped { map, start, end } = self {
            let _ = map.advise_range(memmap2::Advice::PopulateRead, *start, end - start);
        }
    }
}

impl Drop for ChunkBytes {
    fn drop(&mut self) {
        match self {
            ChunkBytes::Mapped { map, start, end } => {
                // Pages of a map stay in the process's resident set once touched, which would
                // make a read of a multi-gigabyte file look that large. Nobody reads this range
                // any more: drop its pages (they stay in the page cache). A page fault also maps
                // the cached pages around the faulting one (64 KiB by default, or the whole
                // large folio the page is in), so the release starts before the chunk, where
                // the previous chunk's release may have come too early. Pages at either end may
                // still be read for a neighbouring chunk; for a read-only map of a file,
                // dropping them only means the next access maps the same page-cache page again.
                #[cfg(unix)]
                {
                    let from = start.saturating_sub(RELEASE_BEFORE);
                    // SAFETY: the map is shared and read-only; MADV_DONTNEED on it never
                    // changes what a later read sees (see above).
                    let _ = unsafe {
                        map.unchecked_advise_range(
                            memmap2::UncheckedAdvice::DontNeed,
                            from,
                            *end - from,
                        )
                    };
                }
                #[cfg(not(unix))]
                let _ = (map, start, end);
            }
            ChunkBytes::Owned { buf, pool } => pool.put(std::mem::take(buf)),
        }
    }
}

/// What a worker makes of one chunk: the columns of a batch, with line numbers counted from 0
/// at the chunk's first line (the consumer knows where the chunk starts).
#[derive(Default)]
struct Parsed {
    cols: Columns,
    skipped: Vec<(u64, LineError)>,
    /// Per row, the line's text (without line ending or BOM) as a range of the chunk.
    text: Vec<(usize, usize)>,
    /// Per row, the `args` object or else the `arg_keys` list as a range of the chunk; empty
    /// when there is neither.
    args: Vec<(usize, usize)>,
    /// Per row, the request id's JSON text as a range of `id_text`; empty when there is none.
    ids: Vec<(u32, u32)>,
    /// The request ids' JSON texts, copied while the line is in the cache: per-call reports
    /// read every id, long after the line was scanned.
    id_text: String,
    /// Per row, `latency_ms` as a range of the line (empty when there is none), or
    /// [`WHOLE_LINE`] when only the whole line gives the record (a `recorded` object, whose
    /// rule and message the scanner does not keep).
    latency: Vec<(u32, u32)>,
    /// Whether the session column holds the lines' sessions.
    sessions: bool,
    /// Rows the general code read, with their records, by row.
    records: Vec<(usize, CallRecord)>,
    /// Lines in the chunk, blank ones included.
    lines: u64,
    /// Lines that are not calls and not bad (JSON-RPC: other methods), by kind.
    ignored: Vec<String>,
    /// JSON-RPC: per row, how the call ended and its latency, from its reply (set by
    /// [`Parsed::attach`]).
    replies: Vec<Option<(Upstream, f64)>>,
    /// JSON-RPC: the pairing message of each line that has one (unless read for the calls
    /// only).
    pairs: Vec<(u64, Pair<RpcKey>)>,
    /// JSON-RPC: the sessions `pairs` name, numbered within the chunk.
    pair_sessions: ChunkSessions,
    /// What the worker worked out for each row ([`CallBatch::screened`]), and how many numbers
    /// a row has (0: none).
    screened: Vec<u32>,
    screened_width: usize,
    /// Whether the lines are JSON-RPC messages.
    rpc: bool,
}

impl Parsed {
    /// Give the calls of these lines (counted from `base`, all settled) their replies.
    fn attach(&mut self, pairing: &mut Pairing<RpcKey>, base: u64) {
        self.replies = vec![None; self.cols.len()];
        let mut general = self.records.iter_mut().peekable();
        // A call's place among the calls of its line (a batch has several).
        let mut place = 0;
        for row in 0..self.cols.len() {
            let line = self.cols.line[row];
            place = match row.checked_sub(1) {
                Some(before) if self.cols.line[before] == line => place + 1,
                _ => 0,
            };
            let slot = (base + line, place);
            let Some((latency, outcome)) = pairing.take(slot) else {
                continue;
            };
            let ms = latency as f64 / 1e6;
            self.cols.upstream[row] = Some(outcome);
            self.replies[row] = Some((outcome, ms));
            while general.next_if(|(r, _)| *r < row).is_some() {}
            if let Some((_, rec)) = general.next_if(|(r, _)| *r == row) {
                rec.upstream = Some(outcome);
                rec.latency_ms = Some(ms);
            }
        }
    }

    fn with_capacity(rows: usize) -> Parsed {
        Parsed {
            cols: Columns::with_capacity(rows),
            text: Vec::with_capacity(rows),
            args: Vec::with_capacity(rows),
            ids: Vec::with_capacity(rows),
            latency: Vec::with_capacity(rows),
            ..Parsed::default()
        }
    }

    fn into_batch(mut self, bytes: Arc<ChunkBytes>, file: u32, base: u64) -> CallBatch {
        for line in &mut self.cols.line {
            *line += base;
        }
        for (line, _) in &mut self.skipped {
            *line += base;
        }
        for (_, rec) in &mut self.records {
            rec.origin.line += base;
        }
        let rows = JsonlRows {
            bytes,
            file,
            line: self.cols.line.clone(),
            text: self.text,
            args: self.args,
            ids: self.ids,
            id_text: self.id_text,
            latency: self.latency,
            sessions: self.sessions,
            records: self.records,
            replies: self.replies,
            rpc: self.rpc,
        };
        let mut batch = (self.cols).into_batch(file, self.skipped, self.ignored, Box::new(rows));
        if self.screened_width > 0 {
            batch.screened = self.screened;
            batch.screened_width = self.screened_width;
        }
        batch
    }

    /// Work `rows` out for the calls of this chunk (`bytes`), into `screened`.
    fn prescreen(&mut self, bytes: &[u8], width: usize, rows: &mut dyn PrescreenRows) {
        let mut out = vec![NOT_SCREENED; self.cols.len() * width];
        rows.batch(&self.chunk_rows(bytes), &mut out);
        self.screened = out;
        self.screened_width = width;
    }

    /// The rows as screening reads them, the chunk being `bytes`.
    fn chunk_rows<'a>(&'a self, bytes: &'a [u8]) -> ChunkRows<'a> {
        ChunkRows {
            server: &self.cols.server,
            tool: &self.cols.tool,
            args: ArgCols {
                bytes,
                args: &self.args,
                records: &self.records,
                rpc: self.rpc,
            },
        }
    }

    /// Add a row.
    #[allow(clippy::too_many_arguments)]
    #[inline]
    fn row(
        &mut self,
        ts: Nanos,
        line: u64,
        ids: [u32; 3],
        session: Option<&str>,
        upstream: Option<Upstream>,
        recorded: Option<RecordedDecision>,
        text: (usize, usize),
        args: (usize, usize),
        id: &str,
        latency: (u32, u32),
    ) {
        let session = session.filter(|_| self.sessions);
        (self.cols).push(ts, line, ids, session, upstream, recorded);
        self.text.push(text);
        self.args.push(args);
        let start = self.id_text.len();
        self.id_text.push_str(id);
        // A batch's ids stay far below 4 GiB: a chunk is 1 MiB of lines.
        self.ids.push((start as u32, self.id_text.len() as u32));
        self.latency.push(latency);
    }

    /// Add a row the general code read into `rec`.
    fn general_row(
        &mut self,
        line: u64,
        text: (usize, usize),
        rec: CallRecord,
        syms: &mut LocalSymbols,
    ) {
        let ids = syms.ids(&rec);
        let recorded = rec.recorded.as_ref().and_then(|r| r.decision);
        self.row(
            rec.ts,
            line,
            ids,
            rec.session.as_deref(),
            rec.upstream,
            recorded,
            text,
            (0, 0),
            "",
            WHOLE_LINE,
        );
        self.records.push((self.cols.len() - 1, rec));
    }
}

/// Arguments and records of a batch's rows, from the chunk's text.
struct JsonlRows {
    bytes: Arc<ChunkBytes>,
    file: u32,
    line: Vec<u64>,
    text: Vec<(usize, usize)>,
    args: Vec<(usize, usize)>,
    ids: Vec<(u32, u32)>,
    id_text: String,
    latency: Vec<(u32, u32)>,
    /// Whether the session column holds the lines' sessions (not left out).
    sessions: bool,
    records: Vec<(usize, CallRecord)>,
    /// JSON-RPC: per row, the reply's outcome and latency (empty for mcpsim JSONL).
    replies: Vec<Option<(Upstream, f64)>>,
    /// Whether the lines are JSON-RPC messages (else mcpsim call records).
    rpc: bool,
}

/// A row's `latency` entry when only the whole line gives its record.
const WHOLE_LINE: (u32, u32) = (u32::MAX, u32::MAX);

/// Where a chunk's rows keep their arguments: what [`JsonlRows`] serves them from, and what a
/// worker screens them from before the batch is made ([`ChunkRows`]).
#[derive(Clone, Copy)]
struct ArgCols<'a> {
    bytes: &'a [u8],
    /// Per row, the `args` object or else the `arg_keys` list as a range of `bytes`.
    args: &'a [(usize, usize)],
    /// Rows the general code read, with their records, by row.
    records: &'a [(usize, CallRecord)],
    rpc: bool,
}

impl<'a> ArgCols<'a> {
    /// The record of a row the general code read.
    fn general(self, row: usize) -> Option<&'a CallRecord> {
        (self.records)
            .binary_search_by_key(&row, |(r, _)| *r)
            .ok()
            .map(|i| &self.records[i].1)
    }

    /// The text of row `row`'s arguments or argument keys.
    fn raw(self, row: usize) -> Option<&'a str> {
        match self.args.get(row) {
            Some(&(start, end)) if start < end => {
                simdutf8::basic::from_utf8(self.bytes.get(start..end)?).ok()
            }
            _ => None,
        }
    }

    /// Row `row`'s arguments as an object's text the scanner checked (see
    /// [`BatchRows::args_text`]).
    fn text(self, row: usize) -> Option<&'a str> {
        if self.general(row).is_some() {
            return None;
        }
        self.raw(row).filter(|text| text.starts_with('{'))
    }

    fn args(self, row: usize) -> Args {
        if let Some(rec) = self.general(row) {
            return rec.args.clone();
        }
        match self.raw(row) {
            // An object, checked by the scanner: parsed when first read.
            Some(text) if text.starts_with('{') && self.rpc => {
                Args::Raw(RawArgs::normalised(text).checked())
            }
            Some(text) if text.starts_with('{') => Args::Raw(RawArgs::new(text).checked()),
            // A JSON-RPC call without arguments has none.
            None if self.rpc => Args::Values(serde_json::Map::new()),
            // A list of strings, checked by the scanner.
            Some(text) => serde_json::from_str(text).map_or(Args::Unrecorded, Args::Keys),
            None => Args::Unrecorded,
        }
    }
}

/// A chunk's rows on the worker that parsed them, for screening (see [`Trace::prescreen`]).
struct ChunkRows<'a> {
    server: &'a [u32],
    tool: &'a [u32],
    args: ArgCols<'a>,
}

impl ScreenRows for ChunkRows<'_> {
    fn ids(&self) -> (&[u32], &[u32]) {
        (self.server, self.tool)
    }

    fn args_ref<'b>(&'b self, row: usize, slot: &'b mut Option<Args>) -> ArgsRef<'b> {
        match self.args.text(row) {
            Some(text) => ArgsRef::Text(text),
            None => ArgsRef::Args(slot.insert(self.args.args(row))),
        }
    }
}

impl JsonlRows {
    /// The record of a row the general code read.
    fn general(&self, row: usize) -> Option<&CallRecord> {
        self.arg_cols().general(row)
    }

    fn arg_cols(&self) -> ArgCols<'_> {
        ArgCols {
            bytes: self.bytes.bytes(),
            args: &self.args,
            records: &self.records,
            rpc: self.rpc,
        }
    }

    fn str(&self, (start, end): (usize, usize)) -> Option<&str> {
        let bytes = self.bytes.bytes().get(start..end)?;
        simdutf8::basic::from_utf8(bytes).ok()
    }
}

impl BatchRows for JsonlRows {
    fn bytes(&self) -> usize {
        self.bytes.bytes().len()
    }

    fn args_text(&self, row: usize) -> Option<&str> {
        self.arg_cols().text(row)
    }

    fn args(&self, row: usize) -> Args {
        self.arg_cols().args(row)
    }

    fn record(&self, row: usize) -> CallRecord {
        if let Some(rec) = self.general(row) {
            return rec.clone();
        }
        let origin = Origin {
            file: self.file,
            line: self.line.get(row).copied().unwrap_or_default(),
        };
        let text = self.text.get(row).and_then(|&t| self.str(t)).unwrap_or("");
        if self.rpc {
            // The scanner took this line: read again, it gives every field.
            let line = jsonrpc::scan_line(text);
            let tool = match line.map(|l| l.kind) {
                Some(RpcKind::Call { tool, .. }) => tool,
                _ => "",
            };
            let reply = self.replies.get(row).copied().flatten();
            return CallRecord {
                ts: line.map_or(0, |l| l.ts),
                server: line.and_then(|l| l.server).unwrap_or(UNKNOWN_SERVER).into(),
                grant: line.and_then(|l| l.grant).map(Into::into),
                session: line.and_then(|l| l.session).map(Into::into),
                tool: tool.into(),
                args: self.args(row),
                id: self.id(row),
                recorded: None,
                upstream: reply.map(|r| r.0),
                latency_ms: reply.map(|r| r.1),
                origin,
            };
        }
        // The scanner took this line: read again, it gives every field but a `recorded`
        // object's rule, message and policy version, which the general code reads.
        if let Some(line) = scan_line(text).filter(|l| !l.has_recorded) {
            return CallRecord {
                ts: line.ts,
                server: line.server.unwrap_or(UNKNOWN_SERVER).into(),
                grant: line.grant.map(Into::into),
                session: line.session.map(Into::into),
                tool: line.tool.into(),
                args: self.args(row),
                id: id_of(text, line.id, true),
                recorded: None,
                upstream: line.upstream,
                latency_ms: number_at(text, line.latency).and_then(|n| n.as_f64()),
                origin,
            };
        }
        // The scanner never takes a line the general code rejects; were it to, the record
        // would be the bare call.
        general(text, origin, &mut Interner::default()).unwrap_or_else(|_| CallRecord::bare(origin))
    }

    fn id(&self, row: usize) -> Option<String> {
        if let Some(rec) = self.general(row) {
            return rec.id.clone();
        }
        let &(start, end) = self.ids.get(row)?;
        let token = self.id_text.get(start as usize..end as usize)?;
        id_of(token, (0, token.len()), !self.rpc)
    }

    fn latency(&self, row: usize) -> Option<f64> {
        if self.rpc {
            return self.replies.get(row).copied().flatten().map(|r| r.1);
        }
        match self.latency.get(row) {
            Some(&WHOLE_LINE) | None => self.record(row).latency_ms,
            Some((0, 0)) => None,
            Some(&(a, b)) => {
                // Only the number's own bytes are taken (and checked), not the whole line.
                let &(from, _) = self.text.get(row)?;
                let number = self.str((from + a as usize, from + b as usize))?;
                number_at(number, (0, number.len())).and_then(|n| n.as_f64())
            }
        }
    }

    fn rest(&self, row: usize) -> Option<RowRest> {
        if !self.sessions || *self.latency.get(row)? == WHOLE_LINE || self.general(row).is_some() {
            return None;
        }
        Some(RowRest {
            args: self.args(row),
            id: self.id(row),
            latency_ms: self.latency(row),
        })
    }
}

/// The JSON number at `range` of `text`, as the general code's parser reads it.
fn number_at(text: &str, (start, end): (usize, usize)) -> Option<serde_json::Number> {
    (start < end)
        .then(|| serde_json::from_str(text.get(start..end)?).ok())
        .flatten()
}

/// The request id at `range` of `text`, as the general code reads it: a string, or a number
/// as the line spells it (mcpsim JSONL, `spelled`) or as a JSON-RPC recording's reader writes
/// numbers.
fn id_of(text: &str, (start, end): (usize, usize), spelled: bool) -> Option<String> {
    let token = text.get(start..end).filter(|t| !t.is_empty())?;
    match token.strip_prefix('"').and_then(|t| t.strip_suffix('"')) {
        Some(plain) if !plain.contains('\\') => Some(plain.to_owned()),
        Some(_) => serde_json::from_str(token).ok(),
        None if spelled => Some(token.to_owned()),
        None => number_at(text, (start, end)).map(|n| n.to_string()),
    }
}

/// The sequential reader's code for one line.
fn general(text: &str, origin: Origin, names: &mut Interner) -> Result<CallRecord, LineError> {
    record_from_line(text, origin, names)
}

fn worker(jobs: &Mutex<Receiver<Job>>, file: u32, symbols: Arc<Symbols>) {
    let mut st = Worker::new(file, symbols);
    loop {
        let job = match jobs.lock() {
            Ok(rx) => rx.recv(),
            Err(_) => return,
        };
        let Ok(job) = job else { return };
        job.bytes.populate();
        let skip = job.skip.as_ref().map(|(set, first)| (&**set, *first));
        let mut parsed = parse_chunk(
            job.bytes.bytes(),
            job.mode,
            job.first,
            job.sessions,
            skip,
            &mut st,
        );
        // Screen a chunk the replay is not waiting for: while the replay keeps up with the
        // workers, screening would only make it wait longer (it screens the rest itself).
        if let Some((work, at, handed)) = &job.screen {
            if *at > handed.load(Ordering::Relaxed) + 1 && parsed.cols.len() > 0 {
                let rows = st.screen.get_or_insert_with(|| work.start());
                parsed.prescreen(job.bytes.bytes(), work.width(), &mut **rows);
            }
        }
        drop(job.bytes);
        // The consumer may have stopped reading; then nobody needs the result.
        let _ = job.reply.send(parsed);
    }
}

/// What a worker keeps from chunk to chunk.
struct Worker {
    file: u32,
    syms: LocalSymbols,
    /// The general code's names.
    names: Interner,
    /// The general code for JSON-RPC lines.
    rpc: JsonRpc,
    /// What that code counts (ignored methods), handed on with each line.
    scratch: ReadStats,
    /// The screening of the replay's policies on this thread, once asked for.
    screen: Option<Box<dyn PrescreenRows>>,
}

impl Worker {
    fn new(file: u32, symbols: Arc<Symbols>) -> Worker {
        Worker {
            file,
            syms: LocalSymbols::new(symbols),
            names: Interner::default(),
            rpc: JsonRpc::default(),
            scratch: ReadStats::default(),
            screen: None,
        }
    }
}

/// Parse every non-blank line of a chunk, numbering lines from 0 the way the sequential line
/// splitter numbers them from its first line; `first` when the chunk starts the input.
/// Lines numbered (from 1) in `skip` are passed over.
fn parse_chunk(
    bytes: &[u8],
    mode: Mode,
    first: bool,
    sessions: bool,
    skip: Option<(&LineSet, u64)>,
    st: &mut Worker,
) -> Parsed {
    let mut out = Parsed::with_capacity((bytes.len() / 160 + 1).min(1 << 14));
    out.sessions = sessions;
    out.rpc = mode != Mode::Calls;
    // One validation for the whole chunk; lines split at newlines stay valid. Only when the
    // chunk holds invalid UTF-8 is every line checked on its own, for the error.
    let whole = simdutf8::basic::from_utf8(bytes).ok();
    let mut memo = Memos::default();
    let mut line = 0u64;
    let mut start = 0;
    while start < bytes.len() {
        let end = memchr::memchr(b'\n', &bytes[start..]).map_or(bytes.len(), |i| start + i);
        let mut stop = end;
        while stop > start && matches!(bytes[stop - 1], b'\n' | b'\r') {
            stop -= 1;
        }
        let raw = &bytes[start..stop];
        let passed = skip.is_some_and(|(set, first)| set.contains(first + line));
        if !passed && !raw.iter().all(u8::is_ascii_whitespace) {
            let from = if first && line == 0 && raw.starts_with(UTF8_BOM) {
                start + UTF8_BOM.len()
            } else {
                start
            };
            let text = match whole {
                Some(s) => Ok(&s[from..stop]),
                None => std::str::from_utf8(&bytes[from..stop]).map_err(|e| {
                    LineError::new(
                        "invalid UTF-8",
                        format!("invalid UTF-8 at byte {}", e.valid_up_to() + 1),
                    )
                }),
            };
            let at = Located { line, from, stop };
            match mode {
                Mode::Calls => call_line(&mut out, &mut memo, st, at, text),
                rpc => rpc_line(&mut out, &mut memo, st, rpc, at, text),
            }
        }
        line += 1;
        start = end + 1;
    }
    out.lines = line;
    out
}

/// A line's number (from 0 in its chunk) and its text's range in the chunk.
#[derive(Clone, Copy)]
struct Located {
    line: u64,
    from: usize,
    stop: usize,
}

impl Located {
    /// A range of the line as a range of the chunk (`(0, 0)` stays).
    fn in_chunk(self, range: (usize, usize)) -> (usize, usize) {
        match range {
            (0, 0) => (0, 0),
            (a, b) => (self.from + a, self.from + b),
        }
    }
}

/// One line of mcpsim JSONL.
fn call_line<'a>(
    out: &mut Parsed,
    memo: &mut Memos<'a>,
    st: &mut Worker,
    at: Located,
    text: Result<&'a str, LineError>,
) {
    let syms = &mut st.syms;
    match text.map(|t| (t, scan_line(t))) {
        Ok((t, Some(l))) => {
            let ids = memo.ids([l.server, l.grant], l.tool, syms);
            let in_line =
                |(a, b): (usize, usize)| Some((u32::try_from(a).ok()?, u32::try_from(b).ok()?));
            let latency = match in_line(l.latency) {
                Some(range) if !l.has_recorded && range != WHOLE_LINE => range,
                _ => WHOLE_LINE,
            };
            out.row(
                l.ts,
                at.line,
                ids,
                l.session,
                l.upstream,
                l.recorded,
                (at.from, at.stop),
                at.in_chunk(l.args),
                &t[l.id.0..l.id.1],
                latency,
            );
        }
        Ok((t, None)) => match general(
            t,
            Origin {
                file: st.file,
                line: at.line,
            },
            &mut st.names,
        ) {
            Ok(rec) => out.general_row(at.line, (at.from, at.stop), rec, syms),
            Err(e) => out.skipped.push((at.line, e)),
        },
        Err(e) => out.skipped.push((at.line, e)),
    }
}

/// One line of a JSON-RPC recording: its call and what makes it bad or ignored (unless
/// `mode` is [`Mode::RpcPairing`]), and its pairing message (unless [`Mode::RpcCalls`]). A
/// read for the pairing only leaves bad lines to the read that hands out the calls.
fn rpc_line<'a>(
    out: &mut Parsed,
    memo: &mut Memos<'a>,
    st: &mut Worker,
    mode: Mode,
    at: Located,
    text: Result<&'a str, LineError>,
) {
    let (calls, pairs) = (mode != Mode::RpcPairing, mode != Mode::RpcCalls);
    let text = match text {
        Ok(text) => text,
        Err(e) if calls => return out.skipped.push((at.line, e)),
        Err(_) => return,
    };
    let syms = &mut st.syms;
    if let Some(l) = jsonrpc::scan_line(text) {
        let mut ids = None;
        if calls {
            match l.kind {
                RpcKind::Call { tool, args } => {
                    let row = memo.ids([l.server, l.grant], tool, syms);
                    ids = Some(row);
                    out.row(
                        l.ts,
                        at.line,
                        row,
                        l.session,
                        None,
                        None,
                        (at.from, at.stop),
                        at.in_chunk(args),
                        &text[l.id.0..l.id.1],
                        (0, 0),
                    );
                }
                kind => out.ignored.extend(kind.ignored()),
            }
        }
        if !pairs {
            return;
        }
        let server = match (ids, l.server, l.kind) {
            (Some(row), ..) => row[0],
            // A reply that names no server pairs by session and id.
            (None, None, RpcKind::Reply(_)) => ANY_SERVER,
            (None, server, _) => memo.server.id(server.unwrap_or(UNKNOWN_SERVER), syms),
        };
        // Replies pair by session: numbered within the chunk, for the pairing only.
        let session = out.pair_sessions.number(l.session);
        let key = || -> RpcKey { (server, session, text[l.id.0..l.id.1].into()) };
        let has_id = l.id != (0, 0);
        let pair = match l.kind {
            RpcKind::Call { .. } => Pair::Call(has_id.then(key), l.ts),
            RpcKind::Other { .. } if has_id => Pair::Request(key()),
            RpcKind::Other { .. } | RpcKind::Server { .. } | RpcKind::ClientReply => return,
            RpcKind::Reply(outcome) => Pair::Reply {
                key: key(),
                ts: l.ts,
                outcome,
            },
        };
        out.pairs.push((at.line, pair));
        return;
    }
    let origin = Origin {
        file: st.file,
        line: at.line,
    };
    let mut cx = Ctx {
        stats: &mut st.scratch,
        strict: false,
        file: "",
    };
    let mut msgs = Vec::new();
    let read =
        parse_object(text).and_then(|o| (st.rpc).messages(&o, origin, !calls, &mut cx, &mut msgs));
    for (kind, n) in std::mem::take(&mut st.scratch.ignored) {
        if calls {
            out.ignored.extend((0..n).map(|_| kind.clone()));
        }
    }
    st.scratch = ReadStats::default();
    match read {
        Ok(()) => {}
        Err(e) if calls => return out.skipped.push((at.line, e)),
        Err(_) => return,
    }
    for msg in msgs {
        rpc_message(out, syms, (calls, pairs), at, msg);
    }
}

/// One message of a line the general reader read: its pairing message and its call.
fn rpc_message(
    out: &mut Parsed,
    syms: &mut LocalSymbols,
    (calls, pairs): (bool, bool),
    at: Located,
    msg: Message<jsonrpc::Key>,
) {
    if pairs {
        let sessions = &mut out.pair_sessions;
        let mut key = |(server, session, id): &jsonrpc::Key| -> RpcKey {
            (
                server.as_ref().map_or(ANY_SERVER, |s| syms.intern(s)),
                sessions.number(session.as_deref()),
                id.as_str().into(),
            )
        };
        let pair = match &msg {
            Message::Call { key: k, rec } => Some(Pair::Call(k.as_ref().map(&mut key), rec.ts)),
            Message::Request(k) => Some(Pair::Request(key(k))),
            Message::Cancel(k) => Some(Pair::Cancel(key(k))),
            Message::Unsent(k) => Some(Pair::Unsent(key(k))),
            &Message::Reply {
                key: ref k,
                ts,
                outcome,
            } => Some(Pair::Reply {
                key: key(k),
                ts,
                outcome,
            }),
            Message::Other => None,
        };
        out.pairs.extend(pair.map(|p| (at.line, p)));
    }
    if let (true, Message::Call { rec, .. }) = (calls, msg) {
        out.general_row(at.line, (at.from, at.stop), *rec, syms);
    }
}

/// What the scanner read from a line it takes.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Line<'a> {
    ts: Nanos,
    server: Option<&'a str>,
    grant: Option<&'a str>,
    session: Option<&'a str>,
    tool: &'a str,
    /// What was recorded of the arguments, as a range of the line: the `args` object, else the
    /// `arg_keys` list; `(0, 0)` when neither is there.
    args: (usize, usize),
    upstream: Option<Upstream>,
    /// The decision of the `recorded` object.
    recorded: Option<RecordedDecision>,
    /// Whether the line has a `recorded` object (not `null`).
    has_recorded: bool,
    /// The request id's JSON text as a range of the line; `(0, 0)` when absent or `null`.
    id: (usize, usize),
    /// The latency's JSON text as a range of the line; `(0, 0)` when absent or `null`.
    latency: (usize, usize),
}

// Known keys, as bits of the duplicate check.
const TS: u16 = 1;
const SERVER: u16 = 1 << 1;
const GRANT: u16 = 1 << 2;
const SESSION: u16 = 1 << 3;
const TOOL: u16 = 1 << 4;
const ARGS: u16 = 1 << 5;
const ID: u16 = 1 << 6;
const UPSTREAM: u16 = 1 << 7;
const LATENCY: u16 = 1 << 8;
const RECORDED: u16 = 1 << 9;
const ARG_KEYS: u16 = 1 << 10;

/// Read a call-record line in the usual shape; `None` when the general code must decide.
///
/// Everything the line holds is validated as the general code's JSON parser would, so `Some`
/// means that code reads the line into a record with exactly these values.
fn scan_line(text: &str) -> Option<Line<'_>> {
    let mut sc = Scanner::object(text)?;
    let open = sc.pos;
    if let Some(line) = Fields::default().compact(&mut sc) {
        return Some(line);
    }
    sc.pos = open;
    Fields::default().any_order(&mut sc)
}

/// The fields of a line read so far.
#[derive(Default)]
struct Fields<'a> {
    ts: Option<Nanos>,
    server: Option<&'a str>,
    grant: Option<&'a str>,
    session: Option<&'a str>,
    tool: Option<&'a str>,
    args: (usize, usize),
    arg_keys: (usize, usize),
    upstream: Option<Upstream>,
    recorded: Option<RecordedDecision>,
    has_recorded: bool,
    id: (usize, usize),
    latency: (usize, usize),
}

impl<'a> Fields<'a> {
    /// The rest of the object, the brace eaten, as mcpsim writes it: no whitespace, known keys
    /// in its order (any of them may be missing). Nothing here depends on which key comes
    /// next, so the branches are the same on every line of a file. `None` for anything else.
    #[inline]
    fn compact(mut self, sc: &mut Scanner<'a>) -> Option<Line<'a>> {
        macro_rules! field {
            ($key:literal, $value:expr) => {
                if sc.b[sc.pos..].starts_with($key) {
                    sc.pos += $key.len();
                    $value;
                    match sc.next()? {
                        b',' => {}
                        b'}' => return self.finish(sc),
                        _ => return None,
                    }
                }
            };
        }
        field!(b"\"ts\":", self.ts = sc.ts()?);
        field!(b"\"server\":", self.server = sc.name()?);
        field!(b"\"grant\":", self.grant = sc.name()?);
        field!(b"\"session\":", self.session = sc.name()?);
        field!(b"\"tool\":", self.tool = sc.name()?);
        field!(b"\"args\":", self.args = sc.args()?);
        field!(b"\"arg_keys\":", self.arg_keys = sc.arg_keys()?);
        field!(b"\"id\":", self.id = sc.id()?);
        field!(
            b"\"recorded\":",
            (self.recorded, self.has_recorded) = sc.recorded()?
        );
        field!(b"\"upstream\":", self.upstream = sc.upstream()?);
        field!(b"\"latency_ms\":", self.latency = sc.latency()?);
        None
    }

    /// The rest of the object, the brace eaten, in any shape the scanner takes.
    fn any_order(mut self, sc: &mut Scanner<'a>) -> Option<Line<'a>> {
        sc.members(
            |sc| sc.key(),
            |sc, bit| {
                match bit {
                    TS => self.ts = sc.ts()?,
                    SERVER => self.server = sc.name()?,
                    GRANT => self.grant = sc.name()?,
                    SESSION => self.session = sc.name()?,
                    TOOL => self.tool = sc.name()?,
                    ARGS => self.args = sc.args()?,
                    ID => self.id = sc.id()?,
                    UPSTREAM => self.upstream = sc.upstream()?,
                    LATENCY => self.latency = sc.latency()?,
                    RECORDED => (self.recorded, self.has_recorded) = sc.recorded()?,
                    ARG_KEYS => self.arg_keys = sc.arg_keys()?,
                    _ => sc.skip_value(1)?,
                }
                Some(())
            },
        )?;
        self.finish(sc)
    }

    /// The line, once its closing brace is eaten: only whitespace may follow, and the
    /// timestamp and tool are required.
    #[inline]
    fn finish(self, sc: &mut Scanner<'a>) -> Option<Line<'a>> {
        sc.end()?;
        Some(Line {
            ts: self.ts?,
            server: self.server,
            grant: self.grant,
            session: self.session,
            // An empty name: the general code says it is missing.
            tool: self.tool.filter(|t| !t.is_empty())?,
            // Argument values win over a key list.
            args: if self.args == (0, 0) {
                self.arg_keys
            } else {
                self.args
            },
            upstream: self.upstream,
            recorded: self.recorded,
            has_recorded: self.has_recorded,
            id: self.id,
            latency: self.latency,
        })
    }
}

/// A recorded decision's name read as [`RecordedDecision::parse`] reads it, without its
/// allocation for mcpsim's own names.
#[inline]
fn decision_named(s: &str) -> Option<RecordedDecision> {
    match s {
        "allow" => Some(RecordedDecision::Allow),
        "deny" => Some(RecordedDecision::Deny),
        "throttle" => Some(RecordedDecision::Throttle),
        "approval" => Some(RecordedDecision::Approval),
        _ => RecordedDecision::parse(s),
    }
}

impl<'a> Scanner<'a> {
    /// The rest of a key, the opening quote eaten: the bit of a known key, 0 for any other key
    /// without escapes.
    #[inline]
    fn key(&mut self) -> Option<u16> {
        let rest = &self.b[self.pos..];
        // A known key followed by its closing quote is exactly that key.
        let (bit, len): (u16, usize) = match rest.first()? {
            b't' if rest.starts_with(b"ts\"") => (TS, 2),
            b't' if rest.starts_with(b"tool\"") => (TOOL, 4),
            b's' if rest.starts_with(b"server\"") => (SERVER, 6),
            b's' if rest.starts_with(b"session\"") => (SESSION, 7),
            b'g' if rest.starts_with(b"grant\"") => (GRANT, 5),
            b'a' if rest.starts_with(b"args\"") => (ARGS, 4),
            b'a' if rest.starts_with(b"arg_keys\"") => (ARG_KEYS, 8),
            b'i' if rest.starts_with(b"id\"") => (ID, 2),
            b'u' if rest.starts_with(b"upstream\"") => (UPSTREAM, 8),
            b'l' if rest.starts_with(b"latency_ms\"") => (LATENCY, 10),
            b'r' if rest.starts_with(b"recorded\"") => (RECORDED, 8),
            _ => {
                self.plain_str()?;
                return Some(0);
            }
        };
        self.pos += len + 1;
        Some(bit)
    }

    /// How the upstream call ended: a known name, or `null` (absent).
    #[inline]
    fn upstream(&mut self) -> Option<Option<Upstream>> {
        match self.name()? {
            None => Some(None),
            Some(s) => Upstream::parse(s).map(Some),
        }
    }

    /// `args`: an object (its range in the line) or `null` (`(0, 0)`).
    fn args(&mut self) -> Option<(usize, usize)> {
        match self.peek()? {
            b'{' => {
                let start = self.pos;
                self.skip_value(1)?;
                Some((start, self.pos))
            }
            _ => self.lit(b"null").map(|()| (0, 0)),
        }
    }

    /// `arg_keys`: a list of strings (its range in the line) or `null` (`(0, 0)`).
    fn arg_keys(&mut self) -> Option<(usize, usize)> {
        if self.peek()? != b'[' {
            return self.lit(b"null").map(|()| (0, 0));
        }
        let start = self.pos;
        self.pos += 1;
        self.ws();
        if self.peek()? != b']' {
            loop {
                self.eat(b'"')?;
                self.skip_str()?;
                self.ws();
                match self.next()? {
                    b',' => self.ws(),
                    b']' => break,
                    _ => return None,
                }
            }
        } else {
            self.pos += 1;
        }
        Some((start, self.pos))
    }

    /// `recorded`: the decision of an object holding at most `decision`, `rule`, `message` and
    /// `policy_version` of the right types (and any other keys), or `null`.
    fn recorded(&mut self) -> Option<(Option<RecordedDecision>, bool)> {
        if self.peek()? != b'{' {
            return self.lit(b"null").map(|()| (None, false));
        }
        self.pos += 1;
        self.ws();
        if self.peek()? == b'}' {
            self.pos += 1;
            return Some((None, true));
        }
        let mut decision = None;
        let mut seen = 0u8;
        loop {
            self.eat(b'"')?;
            let rest = &self.b[self.pos..];
            let (bit, len) = if rest.starts_with(b"decision\"") {
                (1, 8)
            } else if rest.starts_with(b"rule\"") {
                (2, 4)
            } else if rest.starts_with(b"message\"") {
                (4, 7)
            } else if rest.starts_with(b"policy_version\"") {
                (8, 14)
            } else {
                (0, self.plain_str()?.len())
            };
            if bit != 0 {
                if seen & bit != 0 {
                    return None;
                }
                seen |= bit;
                self.pos += len + 1;
            }
            self.ws();
            self.eat(b':')?;
            self.ws();
            match bit {
                1 => {
                    decision = match self.name()? {
                        None => None,
                        Some(s) => Some(decision_named(s)?),
                    }
                }
                2 | 4 => match self.peek()? {
                    b'"' => {
                        self.pos += 1;
                        self.skip_str()?;
                    }
                    _ => self.lit(b"null")?,
                },
                8 => {
                    self.id()?;
                }
                _ => self.skip_value(2)?,
            }
            self.ws();
            match self.next()? {
                b',' => self.ws(),
                b'}' => return Some((decision, true)),
                _ => return None,
            }
        }
    }

    /// The latency: a plain number or `null` (`(0, 0)`); its range in the line.
    fn latency(&mut self) -> Option<(usize, usize)> {
        let start = self.pos;
        match self.peek()? {
            b'n' => self.lit(b"null").map(|()| (0, 0)),
            _ => {
                self.number(false)?;
                Some((start, self.pos))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::io::{Cursor, Write};

    use proptest::prelude::*;

    use crate::generate::{GenConfig, Generator};
    use crate::trace::NO_SYM;
    use crate::trace::format::{Format, detect};
    use crate::trace::jsonl::JsonlSource;
    use crate::trace::scan::find_special;
    use crate::trace::source::{Ctx, Lines, Source};
    use crate::trace::time::fast_rfc3339;

    const TS: &str = r#""ts":"2026-08-01T10:00:00Z""#;

    /// What the sequential reader yields: records, and the bad lines it reports (with the
    /// statistics it keeps of them).
    fn reference(text: &[u8]) -> (Vec<CallRecord>, Vec<(u64, LineError)>, ReadStats) {
        let mut src = JsonlSource::new(Lines::new(Box::new(Cursor::new(text.to_vec())), "t"), 3);
        let mut stats = ReadStats::default();
        let mut cx = Ctx {
            stats: &mut stats,
            strict: false,
            file: "t",
        };
        let mut records = Vec::new();
        while let Some(rec) = src.next(&mut cx).expect("no I/O error") {
            records.push(rec);
        }
        // Every bad line with its error: the same loop over the same line splitter.
        let mut lines = Lines::new(Box::new(Cursor::new(text.to_vec())), "t");
        let mut bad = Vec::new();
        while let Some((line, text)) = lines.next_line().expect("no I/O error") {
            let origin = Origin { file: 3, line };
            if let Err(e) = text.and_then(|t| general(t, origin, &mut Interner::default())) {
                bad.push((line, e));
            }
        }
        (records, bad, stats)
    }

    fn drain(src: &mut dyn BatchSource) -> Vec<CallBatch> {
        let mut out = Vec::new();
        while let Some(batch) = src.next_batch().expect("no I/O error") {
            out.push(batch);
        }
        out
    }

    /// Batches of `text` read as a stream in chunks of `chunk` bytes.
    fn streamed(text: &[u8], chunk: usize) -> (Vec<CallBatch>, Arc<Symbols>) {
        let symbols = Symbols::new();
        let r = Box::new(Cursor::new(text.to_vec()));
        let mut src =
            JsonlBatchSource::open_reader(r, "t", 3, Arc::clone(&symbols)).with_chunk(chunk);
        (drain(&mut src), symbols)
    }

    /// Batches of `text` written to a file and opened (mapped, unless `gzip`).
    fn from_file(text: &[u8], chunk: usize, gzip: bool) -> (Vec<CallBatch>, Arc<Symbols>) {
        let mut f = tempfile::NamedTempFile::new().expect("temp file");
        if gzip {
            let mut enc = flate2::write::GzEncoder::new(&mut f, flate2::Compression::fast());
            enc.write_all(text).expect("write");
            enc.finish().expect("write");
        } else {
            f.write_all(text).expect("write");
        }
        f.flush().expect("write");
        let symbols = Symbols::new();
        let mut src = JsonlBatchSource::open_file(f.path(), "t", 3, Arc::clone(&symbols))
            .expect("opens")
            .with_chunk(chunk);
        if !gzip && !text.is_empty() {
            assert!(matches!(src.input, Input::Mapped { .. }));
        }
        (drain(&mut src), symbols)
    }

    /// The batches hold exactly what the sequential reader yields, columns agreeing with the
    /// records.
    fn assert_same(text: &[u8], batches: &[CallBatch], symbols: &Symbols, what: &str) {
        let (want, want_bad, want_stats) = reference(text);
        let mut records = Vec::new();
        let mut bad = Vec::new();
        let mut stats = ReadStats::default();
        let mut cx = Ctx {
            stats: &mut stats,
            strict: false,
            file: "t",
        };
        for b in batches {
            let n = b.len();
            assert!(
                !b.is_empty() || !b.skipped.is_empty(),
                "{what}: empty batch"
            );
            assert_eq!(b.file, 3, "{what}");
            for len in [b.line.len(), b.server.len(), b.grant.len(), b.session.len()] {
                assert_eq!(len, n, "{what}");
            }
            for len in [b.tool.len(), b.upstream.len(), b.recorded.len()] {
                assert_eq!(len, n, "{what}");
            }
            assert!(b.ignored.is_empty(), "{what}");
            for i in 0..n {
                let rec = b.rows.record(i);
                let at = format!("{what}, line {}", rec.origin.line);
                assert_eq!(b.ts[i], rec.ts, "{at}");
                assert_eq!(b.line[i], rec.origin.line, "{at}");
                assert_eq!(rec.origin.file, 3, "{at}");
                assert_eq!(symbols.name(b.server[i]), rec.server, "{at}");
                assert_eq!(symbols.opt_name(b.grant[i]), rec.grant, "{at}");
                assert_eq!(b.session.get(i), rec.session.as_deref(), "{at}");
                assert_eq!(symbols.name(b.tool[i]), rec.tool, "{at}");
                assert_eq!(b.upstream[i], rec.upstream, "{at}");
                let decision = rec.recorded.as_ref().and_then(|r| r.decision);
                assert_eq!(b.recorded[i], decision, "{at}");
                assert_eq!(b.rows.args(i), rec.args, "{at}");
                assert_eq!(b.rows.id(i), rec.id, "{at}");
                records.push(rec);
            }
            for (line, e) in &b.skipped {
                bad.push((*line, e.clone()));
                cx.skip(*line, e.clone()).expect("not strict");
            }
        }
        assert_eq!(records.len(), want.len(), "{what}");
        for (got, want) in records.iter().zip(&want) {
            assert_eq!(got, want, "{what}");
        }
        assert_eq!(bad, want_bad, "{what}");
        assert_eq!(stats.skipped, want_stats.skipped, "{what}");
        assert_eq!(
            stats.skipped_by_reason, want_stats.skipped_by_reason,
            "{what}"
        );
        let examples = |s: &ReadStats| -> Vec<(u64, String)> {
            s.skipped_examples
                .iter()
                .map(|e| (e.line, e.reason.clone()))
                .collect()
        };
        assert_eq!(examples(&stats), examples(&want_stats), "{what}");
    }

    fn check_streamed(text: &[u8], chunk: usize, what: &str) {
        let (batches, symbols) = streamed(text, chunk);
        assert_same(text, &batches, &symbols, &format!("{what}, chunk {chunk}"));
    }

    fn generated(calls: u64, seed: u64) -> Vec<u8> {
        let cfg = GenConfig {
            calls,
            grants: 7,
            seed,
            servers: vec!["fortigate-edge".into(), "github".into()],
            ..GenConfig::default()
        };
        let mut text = Vec::new();
        let written = Generator::new(&cfg)
            .and_then(|g| g.write_jsonl(&mut text))
            .map_err(|e| e.to_string());
        assert_eq!(written, Ok(calls));
        text
    }

    /// Lines in odd shapes: some the scanner takes, most it leaves to the general code, many
    /// bad.
    fn tricky_lines() -> Vec<String> {
        let deep = |n: usize| format!("{}1{}", "[".repeat(n), "]".repeat(n));
        let mut lines: Vec<String> = [
            // The usual shape, and with whitespace everywhere.
            r#"{"ts":"2026-08-01T10:00:00Z","server":"s","grant":"g","session":"x","tool":"t","args":{"a":1},"id":"1","upstream":"ok","latency_ms":1.5}"#,
            " {\r\"ts\" : \"2026-08-01T10:00:00.5Z\" ,\t\"tool\":\"t\" , \"args\" : { \"a\" : [ 1 , 2 ] , \"b\" : { } } }\t ",
            r#"{"tool":"t","ts":"2026-08-01T10:00:00.123456789Z","session":null,"grant":null,"server":null,"upstream":null,"latency_ms":null,"id":null,"recorded":null,"arg_keys":null}"#,
            r#"{"ts":"2026-08-01T10:00:00Z","tool":"tö","server":"日本","grant":"","session":"\u0000"}"#,
            r#"{"ts":"2026-08-01T10:00:00Z","tool":"","server":"s"}"#,
            r#"{"ts":"2026-08-01T10:00:00Z","tool":"\u0041","server":""}"#,
            // Escapes: in names, in keys, in values the scanner skips.
            r#"{"ts":"2026-08-01T10:00:00Z","tool":"t\u0041","server":"s\"q"}"#,
            r#"{"ts":"2026-08-01T10:00:00Z","tool":"t","t\u006fol":"u"}"#,
            r#"{"t\u0073":"2026-08-01T10:00:00Z","tool":"t"}"#,
            r#"{"ts":"2026-08-01T10:00:00Z","tool":"t","args":{"p":"C:\\dir\n\"q\" \u00e9 \u20AC \/ \b\f\r\t"}}"#,
            r#"{"ts":"2026-08-01T10:00:00Z","tool":"t","args":{"e":"\ud83d\ude00"}}"#,
            r#"{"ts":"2026-08-01T10:00:00Z","tool":"t","args":{"e":"\ud83d"}}"#,
            r#"{"ts":"2026-08-01T10:00:00Z","tool":"t","args":{"e":"\ude00"}}"#,
            r#"{"ts":"2026-08-01T10:00:00Z","tool":"t","args":{"e":"\ud83dx"}}"#,
            r#"{"ts":"2026-08-01T10:00:00Z","tool":"t","x":"\ud83d\u0041"}"#,
            r#"{"ts":"2026-08-01T10:00:00Z","tool":"t","x":"\ud83d\ude00"}"#,
            r#"{"ts":"2026-08-01T10:00:00Z","tool":"t","args":{"e":"\x"}}"#,
            r#"{"ts":"2026-08-01T10:00:00Z","tool":"t","args":{"e":"\u12"}}"#,
            r#"{"ts":"2026-08-01T10:00:00Z","tool":"t","args":{"e":"\u12g4"}}"#,
            r#"{"ts":"2026-08-01T10:00:00Z","tool":"t","id":"a\"b"}"#,
            "{\"ts\":\"2026-08-01T10:00:00Z\",\"tool\":\"t\tx\"}",
            "{\"ts\":\"2026-08-01T10:00:00Z\",\"tool\":\"t\",\"args\":{\"a\":\"\x01\"}}",
            "{\"ts\":\"2026-08-01T10:00:00Z\",\"tool\":\"t\",\"args\":{\"a\":\"\x7f\"}}",
            // Repeated keys.
            r#"{"ts":"2026-08-01T10:00:00Z","tool":"t","tool":"u"}"#,
            r#"{"ts":"2026-08-01T10:00:00Z","tool":"t","ts":"2026-08-01T11:00:00Z"}"#,
            r#"{"ts":"2026-08-01T10:00:00Z","tool":"t","grant":"a","grant":null}"#,
            r#"{"ts":"2026-08-01T10:00:00Z","tool":"t","x":1,"x":2}"#,
            r#"{"ts":"2026-08-01T10:00:00Z","tool":"t","args":{"a":1,"a":2}}"#,
            // Recorded decisions.
            r#"{"ts":"2026-08-01T10:00:00Z","tool":"t","recorded":{"decision":"denied","rule":"r"}}"#,
            r#"{"ts":"2026-08-01T10:00:00Z","tool":"t","recorded":{"rule":"r"}}"#,
            r#"{"ts":"2026-08-01T10:00:00Z","tool":"t","recorded":{}}"#,
            r#"{"ts":"2026-08-01T10:00:00Z","tool":"t","recorded":{"decision":"maybe"}}"#,
            r#"{"ts":"2026-08-01T10:00:00Z","tool":"t","recorded":"deny"}"#,
            r#"{"ts":"2026-08-01T10:00:00Z","tool":"t","recorded":{"decision":"deny","rule":"r","message":"no \"way\"","policy_version":"v1"}}"#,
            r#"{"ts":"2026-08-01T10:00:00Z","tool":"t","recorded":{"decision":"Rate_Limited","policy_version":7}}"#,
            r#"{"ts":"2026-08-01T10:00:00Z","tool":"t","recorded":{"decision":"allow","policy_version":7.5,"x":[1]}}"#,
            r#"{"ts":"2026-08-01T10:00:00Z","tool":"t","recorded":{"decision":null,"rule":null,"message":null,"policy_version":null}}"#,
            r#"{"ts":"2026-08-01T10:00:00Z","tool":"t","recorded":{"rule":""}}"#,
            r#"{"ts":"2026-08-01T10:00:00Z","tool":"t","recorded":{"decision":"approval","decision":"deny"}}"#,
            r#"{"ts":"2026-08-01T10:00:00Z","tool":"t","recorded":{"d\u0065cision":"deny"}}"#,
            r#"{"ts":"2026-08-01T10:00:00Z","tool":"t","recorded":{"decision":"d\u0065ny"}}"#,
            r#"{"ts":"2026-08-01T10:00:00Z","tool":"t","recorded":{"decision":5}}"#,
            r#"{"ts":"2026-08-01T10:00:00Z","tool":"t","recorded":{"rule":5}}"#,
            r#"{"ts":"2026-08-01T10:00:00Z","tool":"t","recorded":{"message":[]}}"#,
            r#"{"ts":"2026-08-01T10:00:00Z","tool":"t","recorded":{"policy_version":true}}"#,
            r#"{"ts":"2026-08-01T10:00:00Z","tool":"t","recorded":{"policy_version":1e2}}"#,
            r#"{"ts":"2026-08-01T10:00:00Z","tool":"t","recorded":{ "decision" : "throttle" , "rule" : "r" }}"#,
            r#"{"ts":"2026-08-01T10:00:00Z","tool":"t","recorded":{"decision":"throttle",}}"#,
            r#"{"ts":"2026-08-01T10:00:00Z","tool":"t","recorded":[]}"#,
            // Timestamps.
            r#"{"ts":1785578400,"tool":"t"}"#,
            r#"{"ts":1785578400.5,"tool":"t"}"#,
            r#"{"ts":1.7855784e9,"tool":"t"}"#,
            r#"{"ts":1785578400123,"tool":"t"}"#,
            r#"{"ts":-0,"tool":"t"}"#,
            r#"{"ts":-1.5,"tool":"t"}"#,
            r#"{"ts":1e400,"tool":"t"}"#,
            r#"{"ts":99999999999999999999999,"tool":"t"}"#,
            r#"{"ts":true,"tool":"t"}"#,
            r#"{"ts":null,"tool":"t"}"#,
            r#"{"ts":"yesterday","tool":"t"}"#,
            r#"{"ts":"2026-08-01T12:00:00+02:00","tool":"t"}"#,
            r#"{"ts":" 2026-08-01T10:00:00Z ","tool":"t"}"#,
            r#"{"ts":"1785578400","tool":"t"}"#,
            r#"{"ts":"2026-02-30T10:00:00Z","tool":"t"}"#,
            r#"{"ts":"2026-08-01T10:00:00.1234567891Z","tool":"t"}"#,
            // Numbers at the edges.
            r#"{"ts":"2026-08-01T10:00:00Z","tool":"t","latency_ms":0}"#,
            r#"{"ts":"2026-08-01T10:00:00Z","tool":"t","latency_ms":-0}"#,
            r#"{"ts":"2026-08-01T10:00:00Z","tool":"t","latency_ms":-0.0}"#,
            r#"{"ts":"2026-08-01T10:00:00Z","tool":"t","latency_ms":123456789012345678901234567890}"#,
            r#"{"ts":"2026-08-01T10:00:00Z","tool":"t","latency_ms":0.1000000000000000055511151231257827}"#,
            r#"{"ts":"2026-08-01T10:00:00Z","tool":"t","latency_ms":1e3}"#,
            r#"{"ts":"2026-08-01T10:00:00Z","tool":"t","latency_ms":1E-3}"#,
            r#"{"ts":"2026-08-01T10:00:00Z","tool":"t","latency_ms":1e400}"#,
            r#"{"ts":"2026-08-01T10:00:00Z","tool":"t","latency_ms":01}"#,
            r#"{"ts":"2026-08-01T10:00:00Z","tool":"t","latency_ms":1.}"#,
            r#"{"ts":"2026-08-01T10:00:00Z","tool":"t","latency_ms":.5}"#,
            r#"{"ts":"2026-08-01T10:00:00Z","tool":"t","latency_ms":-}"#,
            r#"{"ts":"2026-08-01T10:00:00Z","tool":"t","latency_ms":+1}"#,
            r#"{"ts":"2026-08-01T10:00:00Z","tool":"t","latency_ms":1.5e}"#,
            r#"{"ts":"2026-08-01T10:00:00Z","tool":"t","latency_ms":"5"}"#,
            r#"{"ts":"2026-08-01T10:00:00Z","tool":"t","id":7}"#,
            r#"{"ts":"2026-08-01T10:00:00Z","tool":"t","id":-7.50}"#,
            r#"{"ts":"2026-08-01T10:00:00Z","tool":"t","id":1e2}"#,
            r#"{"ts":"2026-08-01T10:00:00Z","tool":"t","id":18446744073709551616}"#,
            r#"{"ts":"2026-08-01T10:00:00Z","tool":"t","id":true}"#,
            r#"{"ts":"2026-08-01T10:00:00Z","tool":"t","id":[1]}"#,
            r#"{"ts":"2026-08-01T10:00:00Z","tool":"t","args":{"n":1.5e3}}"#,
            r#"{"ts":"2026-08-01T10:00:00Z","tool":"t","args":{"n":1e400}}"#,
            r#"{"ts":"2026-08-01T10:00:00Z","tool":"t","args":{"n":-0.0,"m":0.1234567890123456789012,"k":18446744073709551616}}"#,
            r#"{"ts":"2026-08-01T10:00:00Z","tool":"t","args":{"n":[true,false,null,"e1",1.5E3]}}"#,
            r#"{"ts":"2026-08-01T10:00:00Z","tool":"t","extra":1e400}"#,
            r#"{"ts":"2026-08-01T10:00:00Z","tool":"t","extra":1e4}"#,
            r#"{"ts":"2026-08-01T10:00:00Z","tool":"t","extra":nul}"#,
            r#"{"ts":"2026-08-01T10:00:00Z","tool":"t","extra":tru}"#,
            r#"{"ts":"2026-08-01T10:00:00Z","tool":"t","extra":[1,]}"#,
            r#"{"ts":"2026-08-01T10:00:00Z","tool":"t","extra":{"a":1,}}"#,
            r#"{"ts":"2026-08-01T10:00:00Z","tool":"t","extra":{"a"}}"#,
            r#"{"ts":"2026-08-01T10:00:00Z","tool":"t","extra":{1:2}}"#,
            // Missing fields and wrong types.
            r#"{"ts":"2026-08-01T10:00:00Z"}"#,
            r#"{"tool":"t"}"#,
            r#"{"ts":"2026-08-01T10:00:00Z","tool":null}"#,
            "{}",
            r#"{"ts":"2026-08-01T10:00:00Z","tool":5}"#,
            r#"{"ts":"2026-08-01T10:00:00Z","tool":"t","server":5}"#,
            r#"{"ts":"2026-08-01T10:00:00Z","tool":"t","grant":true}"#,
            r#"{"ts":"2026-08-01T10:00:00Z","tool":"t","session":["x"]}"#,
            r#"{"ts":"2026-08-01T10:00:00Z","tool":"t","upstream":"nope"}"#,
            r#"{"ts":"2026-08-01T10:00:00Z","tool":"t","upstream":"tool_error"}"#,
            r#"{"ts":"2026-08-01T10:00:00Z","tool":"t","upstream":"error"}"#,
            r#"{"ts":"2026-08-01T10:00:00Z","tool":"t","upstream":1}"#,
            // Arguments in every form.
            r#"{"ts":"2026-08-01T10:00:00Z","tool":"t","args":[1]}"#,
            r#"{"ts":"2026-08-01T10:00:00Z","tool":"t","args":null}"#,
            r#"{"ts":"2026-08-01T10:00:00Z","tool":"t","args":"{}"}"#,
            r#"{"ts":"2026-08-01T10:00:00Z","tool":"t","args":{}}"#,
            r#"{"ts":"2026-08-01T10:00:00Z","tool":"t","args":{},"arg_keys":["z"]}"#,
            r#"{"ts":"2026-08-01T10:00:00Z","tool":"t","arg_keys":["z","y"]}"#,
            r#"{"ts":"2026-08-01T10:00:00Z","tool":"t","arg_keys":[1]}"#,
            r#"{"ts":"2026-08-01T10:00:00Z","tool":"t","args":null,"arg_keys":["z"]}"#,
            r#"{"ts":"2026-08-01T10:00:00Z","tool":"t","arg_keys":[]}"#,
            r#"{"ts":"2026-08-01T10:00:00Z","tool":"t","arg_keys":[ "a\n" , "\u00e9" ]}"#,
            r#"{"ts":"2026-08-01T10:00:00Z","tool":"t","arg_keys":["a",]}"#,
            r#"{"ts":"2026-08-01T10:00:00Z","tool":"t","arg_keys":["a" "b"]}"#,
            r#"{"ts":"2026-08-01T10:00:00Z","tool":"t","arg_keys":["\ud800"]}"#,
            r#"{"ts":"2026-08-01T10:00:00Z","tool":"t","arg_keys":"a"}"#,
            r#"{"ts":"2026-08-01T10:00:00Z","tool":"t","arg_keys":["a"],"args":{"b":1}}"#,
            r#"{"ts":"2026-08-01T10:00:00Z","tool":"t","arg_keys":["a"],"args":null}"#,
            r#"{"ts":"2026-08-01T10:00:00Z","tool":"t","arg_keys":["a","a"],"arg_keys":["b"]}"#,
            // Not objects, not JSON.
            "[1,2]",
            r#""str""#,
            "42",
            "null",
            r#"{"ts":"2026-08-01T10:00:00Z","tool":"t""#,
            r#"{"ts":"2026-08-01T10:00:00Z","tool":"t",}"#,
            r#"{"ts":"2026-08-01T10:00:00Z","tool":"t"} x"#,
            r#"{"ts":"2026-08-01T10:00:00Z","tool":"t"}}"#,
            r#"{"ts" "2026-08-01T10:00:00Z","tool":"t"}"#,
            r#"{"ts":"2026-08-01T10:00:00Z" "tool":"t"}"#,
            r#"{'ts':1}"#,
            "\x0c{\"ts\":\"2026-08-01T10:00:00Z\",\"tool\":\"t\"}",
            "{\"ts\":\"2026-08-01T10:00:00Z\",\"tool\":\"t\"}\x0c",
            "{\"ts\":\"2026-08-01T10:00:00Z\",\"tool\":\"t\"}\r \r",
            "{\"ts\":\"2026-08-01T10:00:00Z\",\r\"tool\":\"t\"}",
            // Unknown keys.
            r#"{"ts":"2026-08-01T10:00:00Z","tool":"t","extra":{"x":[1,{"y":2}]},"origin":"x","zz":null,"":true}"#,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        // Nesting: within the scanner's depth, beyond it, beyond the parser's limit.
        for n in [10, 62, 63, 64, 100, 126, 127, 128, 200] {
            lines.push(format!(r#"{{{TS},"tool":"t","args":{{"d":{}}}}}"#, deep(n)));
            lines.push(format!(r#"{{{TS},"tool":"t","x":{}}}"#, deep(n)));
        }
        // Long digit runs.
        for n in [199, 200, 201, 400] {
            let digits = "9".repeat(n);
            lines.push(format!(r#"{{{TS},"tool":"t","args":{{"n":{digits}}}}}"#));
            lines.push(format!(r#"{{{TS},"tool":"t","args":{{"n":0.{digits}}}}}"#));
            lines.push(format!(r#"{{{TS},"tool":"t","latency_ms":{digits}}}"#));
            lines.push(format!(r#"{{{TS},"tool":"t","id":{digits}}}"#));
            lines.push(format!(r#"{{"ts":{digits},"tool":"t"}}"#));
        }
        lines
    }

    /// The second read of a recording numbers each chunk's first line right, whether its
    /// chunks end where the first read's ended (numbers taken from the first read) or not
    /// (lines counted): every pair of ways to cut a text at its newlines.
    #[test]
    fn second_read_chunks_number_their_lines_with_or_without_the_first_reads_cuts() {
        let text = b"a\nbb\n\nccc\nd\ne";
        let newlines: Vec<usize> = memchr::memchr_iter(b'\n', text).map(|i| i + 1).collect();
        let cut = |mask: u32| -> Vec<usize> {
            let mut ends: Vec<usize> = newlines
                .iter()
                .enumerate()
                .filter(|(i, _)| mask & (1 << i) != 0)
                .map(|(_, &end)| end)
                .collect();
            ends.push(text.len());
            ends
        };
        let lines_before = |at: usize| 1 + text[..at].iter().filter(|&&b| b == b'\n').count();
        for first_read in 0..1u32 << newlines.len() {
            let cuts = cut(first_read)
                .into_iter()
                .map(|end| {
                    // Lines up to `end`: the text's last line has no newline.
                    let lines = lines_before(end) - 1 + usize::from(end == text.len());
                    (end as u64, lines as u64)
                })
                .collect();
            for second_read in 0..1u32 << newlines.len() {
                let mut skip = Skip::new(LineSet::default(), VecDeque::clone(&cuts), (0, 0));
                let mut start = 0;
                for end in cut(second_read) {
                    let (_, first) = skip.chunk(&text[start..end]);
                    assert_eq!(
                        first,
                        lines_before(start) as u64,
                        "cuts {first_read:b} and {second_read:b}, chunk at byte {start}"
                    );
                    start = end;
                }
                assert_eq!(skip.lines, 6, "cuts {first_read:b} and {second_read:b}");
            }
        }
    }

    /// What a worker screens a chunk's rows from (`ChunkRows`, before the batch is made) is
    /// what the replay would screen them from (the batch): the same ids and arguments for
    /// every row, on the tricky lines of mcpsim JSONL and on a JSON-RPC recording with edge
    /// lines (rows of the general reader included).
    #[test]
    fn workers_screen_the_arguments_the_batch_holds() {
        let cfg = GenConfig {
            calls: 300,
            seed: 5,
            ..GenConfig::default()
        };
        let mut rpc = Vec::new();
        Generator::new(&cfg)
            .and_then(|g| g.write_jsonrpc(&mut rpc))
            .expect("generated");
        for edge in crate::trace::jsonrpc::EDGES {
            rpc.extend_from_slice(
                format!("{{\"ts\":\"2026-08-01T00:01:00Z\",{edge}}}\n").as_bytes(),
            );
        }
        for (text, mode) in [(tricky_text(), Mode::Calls), (rpc, Mode::Rpc)] {
            let mut st = Worker::new(3, Symbols::new());
            let parsed = parse_chunk(&text, mode, true, true, None, &mut st);
            let bytes = ChunkBytes::Owned {
                buf: text.clone(),
                pool: Arc::new(Pool::default()),
            };
            let chunk = parsed.chunk_rows(&text);
            let (server, tool) = (chunk.server.to_vec(), chunk.tool.to_vec());
            let from_chunk: Vec<String> = (0..server.len())
                .map(|row| format!("{:?}", chunk.args_ref(row, &mut None)))
                .collect();
            let general = parsed.records.len();
            let batch = parsed.into_batch(Arc::new(bytes), 3, 1);
            assert_eq!(
                ScreenRows::ids(&batch),
                (&server[..], &tool[..]),
                "{mode:?}"
            );
            let from_batch: Vec<String> = (0..batch.len())
                .map(|row| format!("{:?}", ScreenRows::args_ref(&batch, row, &mut None)))
                .collect();
            assert_eq!(from_chunk, from_batch, "{mode:?}");
            assert!(
                batch.len() > 100 && general > 0,
                "{mode:?}: {general} general rows"
            );
            let texts = from_batch.iter().filter(|a| a.starts_with("Text")).count();
            assert!(texts > 100, "{mode:?}: {texts} arguments as text");
        }
    }

    /// Chunks the replay does not wait for are screened on the workers, with what the replay
    /// asked for, row by row; the others are left to the replay.
    #[test]
    fn workers_screen_the_chunks_the_replay_does_not_wait_for() {
        /// Screening that numbers each call by its tool id, plus one.
        struct ByTool;
        impl Prescreen for ByTool {
            fn width(&self) -> usize {
                1
            }
            fn start(&self) -> Box<dyn PrescreenRows> {
                Box::new(ByTool)
            }
        }
        impl PrescreenRows for ByTool {
            fn batch(&mut self, rows: &dyn ScreenRows, out: &mut [u32]) {
                for (code, tool) in out.iter_mut().zip(rows.ids().1) {
                    *code = tool + 1;
                }
            }
        }
        let text = tricky_text();
        let symbols = Symbols::new();
        let r = Box::new(Cursor::new(text));
        let mut src = JsonlBatchSource::open_reader(r, "t", 3, symbols).with_chunk(4096);
        src.prescreen(&(Arc::new(ByTool) as Arc<dyn Prescreen>));
        let (mut screened, mut left) = (0, 0);
        while let Some(b) = src.next_batch().expect("no I/O error") {
            match b.screened_width {
                0 => left += b.len(),
                _ => {
                    let want: Vec<u32> = b.tool.iter().map(|t| t + 1).collect();
                    assert_eq!(b.screened, want);
                    screened += b.len();
                }
            }
            // A slow replay: the workers get ahead.
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert!(screened > left, "{screened} calls screened, {left} not");
    }

    /// With sessions skipped, every session is absent and every other column, and every
    /// record, is as it was.
    #[test]
    fn skipped_sessions_leave_everything_else_alone() {
        let text = tricky_text();
        let open = |skip: bool| {
            let symbols = Symbols::new();
            let r = Box::new(Cursor::new(text.clone()));
            let mut src =
                JsonlBatchSource::open_reader(r, "t", 3, Arc::clone(&symbols)).with_chunk(4096);
            if skip {
                src.skip_sessions();
            }
            (drain(&mut src), symbols)
        };
        let (with, with_symbols) = open(false);
        let (without, without_symbols) = open(true);
        assert_eq!(with.len(), without.len());
        let mut named = 0;
        for (a, b) in with.iter().zip(&without) {
            assert!(b.session.iter().all(|s| s.is_none()));
            named += a.session.iter().filter(|s| s.is_some()).count();
            assert_eq!(
                (&a.ts, &a.line, &a.upstream, &a.recorded),
                (&b.ts, &b.line, &b.upstream, &b.recorded)
            );
            for i in 0..a.len() {
                assert_eq!(
                    with_symbols.name(a.tool[i]),
                    without_symbols.name(b.tool[i])
                );
                assert_eq!(
                    with_symbols.opt_name(a.grant[i]),
                    without_symbols.opt_name(b.grant[i])
                );
                assert_eq!(a.rows.record(i), b.rows.record(i), "record {i}");
            }
            assert_eq!(a.skipped.len(), b.skipped.len());
        }
        assert!(named > 100, "the text names sessions: {named}");
    }

    /// The tricky lines between generated ones, with blank lines, CRLF, a BOM, invalid UTF-8.
    fn tricky_text() -> Vec<u8> {
        let mut text = Vec::new();
        text.extend_from_slice(UTF8_BOM);
        let generated = generated(400, 7);
        let odd = tricky_lines();
        let mut odd = odd.iter();
        for (i, line) in generated.split(|&b| b == b'\n').enumerate() {
            text.extend_from_slice(line);
            text.extend_from_slice(match i % 5 {
                0 => b"\r\n",
                1 => b"\r\r\n",
                _ => b"\n",
            });
            match i % 9 {
                3 => text.extend_from_slice(b"\n  \t\n"),
                5 => text.extend_from_slice(b"{\"ts\":\"\xff\",\"tool\":\"t\"}\n"),
                6 => text
                    .extend_from_slice(b"{\"ts\":\"2026-08-01T10:00:00Z\",\"tool\":\"t\xc3\"}\n"),
                7 => text.extend_from_slice(
                    b"\xef\xbb\xbf{\"ts\":\"2026-08-01T10:00:00Z\",\"tool\":\"t\"}\n",
                ),
                _ => {}
            }
            for line in odd.by_ref().take(1) {
                text.extend_from_slice(line.as_bytes());
                text.push(b'\n');
            }
        }
        for line in odd {
            text.extend_from_slice(line.as_bytes());
            text.push(b'\n');
        }
        // No final newline.
        text.extend_from_slice(tricky_lines()[0].as_bytes());
        text
    }

    /// What the reference reader of JSON-RPC recordings yields (the general reader, line by
    /// line, in two reads): each call's record, and the statistics (bad lines, ignored
    /// messages, pairing counts).
    fn rpc_reference(text: &[u8]) -> (Vec<String>, ReadStats) {
        let lines = || Lines::new(Box::new(Cursor::new(text.to_vec())), "t");
        // Read twice, as the line-by-line reader does when calls wait too long.
        let mut src = crate::trace::pairing::PairedSource::holding(
            JsonRpc::default,
            lines(),
            lines(),
            3,
            "t",
            0,
        );
        let mut stats = ReadStats::default();
        let mut cx = Ctx {
            stats: &mut stats,
            strict: false,
            file: "t",
        };
        let mut records = Vec::new();
        while let Some(rec) = src.next(&mut cx).expect("no I/O error") {
            records.push(shown(&rec));
        }
        (records, stats)
    }

    /// A record with its arguments as their map, for comparing.
    fn shown(rec: &CallRecord) -> String {
        let mut rec = rec.clone();
        rec.args = match rec.args.view() {
            crate::call::ArgsView::Values(m) => Args::Values(m.clone()),
            _ => rec.args.clone(),
        };
        format!("{rec:?}")
    }

    /// The records and statistics of the column reader on `text` (from a file, mapped or
    /// gzip-compressed, holding at most `hold` bytes for replies), as [`rpc_reference`] gives
    /// them.
    fn rpc_read(
        text: &[u8],
        chunk: usize,
        hold: usize,
        gzip: bool,
        sessions: bool,
    ) -> (Vec<String>, ReadStats, bool) {
        let mut f = tempfile::NamedTempFile::new().expect("temp file");
        if gzip {
            let mut enc = flate2::write::GzEncoder::new(&mut f, flate2::Compression::fast());
            enc.write_all(text).expect("write");
            enc.finish().expect("write");
        } else {
            f.write_all(text).expect("write");
        }
        f.flush().expect("write");
        let symbols = Symbols::new();
        let mut src =
            RpcSource::open_in(f.path(), "t", 3, Arc::clone(&symbols), chunk, hold).expect("opens");
        if !sessions {
            src.skip_sessions();
        }
        let mut stats = ReadStats::default();
        let mut records = Vec::new();
        for mut b in drain(&mut src) {
            let mut cx = Ctx {
                stats: &mut stats,
                strict: false,
                file: "t",
            };
            for (line, e) in std::mem::take(&mut b.skipped) {
                cx.skip(line, e).expect("not strict");
            }
            for kind in std::mem::take(&mut b.ignored) {
                cx.ignore(kind);
            }
            for row in 0..b.len() {
                let name = |id| symbols.name(id);
                let rec = match b.rows.rest(row) {
                    Some(rest) => CallRecord {
                        ts: b.ts[row],
                        server: name(b.server[row]),
                        grant: symbols.opt_name(b.grant[row]),
                        session: b.session.get(row).map(Into::into),
                        tool: name(b.tool[row]),
                        args: rest.args,
                        id: rest.id,
                        recorded: None,
                        upstream: b.upstream[row],
                        latency_ms: rest.latency_ms,
                        origin: Origin {
                            file: 3,
                            line: b.line[row],
                        },
                    },
                    None => b.rows.record(row),
                };
                assert_eq!(rec.upstream, b.upstream[row]);
                assert_eq!(rec.latency_ms, b.rows.latency(row));
                assert_eq!(rec.id, b.rows.id(row));
                records.push(shown(&rec));
            }
        }
        if let Some(more) = src.take_stats() {
            stats.absorb(more);
        }
        let twice = src.read.mode == Mode::RpcCalls;
        (records, stats, twice)
    }

    fn check_rpc(text: &[u8], what: &str) {
        let want = rpc_reference(text);
        // Read once (nothing held for long, or a large file in one chunk), read twice from the
        // start (nothing may be held), and read twice from some way in.
        for (chunk, hold, gzip) in [
            (CHUNK, HOLD, false),
            (1, HOLD, false),
            (97, HOLD, false),
            (500, HOLD, true),
            (CHUNK, 0, false),
            (97, 0, false),
            (97, 3_000, false),
            (500, 0, true),
            (500, 3_000, true),
        ] {
            let got = rpc_read(text, chunk, hold, gzip, true);
            let how = format!("chunks of {chunk}, holding {hold}, gzip {gzip}");
            match hold {
                HOLD => assert!(!got.2, "{what}: read twice, {how}"),
                0 => assert!(got.2, "{what}: read once, {how}"),
                _ => {}
            }
            assert_eq!(got.0, want.0, "{what}: records, {how}");
            assert_eq!(
                format!("{:?}", got.1),
                format!("{:?}", want.1),
                "{what}: stats, {how}"
            );
        }
        // Without sessions, records still have theirs.
        for hold in [HOLD, 0] {
            assert_eq!(
                rpc_read(text, 200, hold, false, false).0,
                want.0,
                "{what}: no sessions, holding {hold}"
            );
        }
    }

    #[test]
    fn json_rpc_recordings_read_as_the_reference_reader_reads_them() {
        for f in ["jsonrpc.jsonl", "jsonrpc-concatenated.jsonl"] {
            let path = format!("{}/fixtures/traces/{f}", env!("CARGO_MANIFEST_DIR"));
            check_rpc(&std::fs::read(path).expect("fixture"), f);
        }
        // Every edge line between the calls and replies of a generated recording, and bad
        // lines.
        let cfg = GenConfig {
            calls: 400,
            grants: 3,
            seed: 9,
            servers: vec!["fortigate-edge".into(), "github".into()],
            ..GenConfig::default()
        };
        let mut generated = Vec::new();
        Generator::new(&cfg)
            .and_then(|g| g.write_jsonrpc(&mut generated))
            .expect("generated");
        let mut text = Vec::new();
        let edges = crate::trace::jsonrpc::EDGES;
        for (i, line) in generated.split(|&b| b == b'\n').enumerate() {
            text.extend_from_slice(line);
            text.push(b'\n');
            if i % 7 == 3 {
                let edge = edges[(i / 7) % edges.len()];
                text.extend_from_slice(
                    format!("{{\"ts\":\"2026-08-01T00:01:00Z\",{edge}}}\n").as_bytes(),
                );
            }
            if i % 50 == 10 {
                text.extend_from_slice(b"{not json\n\n  \r\n\xff\n");
            }
        }
        check_rpc(&text, "generated with edge lines");
        let (records, stats) = rpc_reference(&text);
        assert!(records.len() > 400, "{}", records.len());
        let replies = stats.replies.clone().expect("paired");
        assert!(
            replies.paired >= 400 && replies.requests_without_reply > replies.cancelled,
            "{replies:?}"
        );
        assert!(replies.cancelled > 0, "{replies:?}");
        assert!(stats.skipped > 0 && !stats.ignored.is_empty(), "{stats:?}");
    }

    /// A recording with a session per call pairs as the reference reader pairs it, and the
    /// sessions are forgotten once no request waits under them: neither the shared table nor
    /// the pairing's keeps them all. Some replies come long after their request, some before
    /// it, some name no session (paired by server and id), some answer no request.
    #[test]
    fn sessions_of_json_rpc_recordings_are_forgotten_once_answered() {
        let n = 3_000u64;
        let line = |ms: u64, dir: &str, session: Option<u64>, msg: String| {
            let session = session.map_or(String::new(), |s| format!("\"session\":\"s-{s}\","));
            format!(
                "{{\"ts\":\"2026-08-01T10:{:02}:{:02}.{:03}Z\",\"dir\":\"{dir}\",\"server\":\"files\",{session}\"msg\":{msg}}}\n",
                ms / 60_000,
                ms / 1000 % 60,
                ms % 1000
            )
        };
        let call = |i: u64| {
            format!(
                r#"{{"jsonrpc":"2.0","id":{i},"method":"tools/call","params":{{"name":"t","arguments":{{}}}}}}"#
            )
        };
        let reply = |i: u64| {
            format!(
                r#"{{"jsonrpc":"2.0","id":{i},"result":{{"content":[],"isError":{}}}}}"#,
                i % 3 == 0
            )
        };
        let (mut text, mut late) = (String::new(), Vec::new());
        for i in 0..n {
            let ms = i * 10;
            match i % 50 {
                // Answered at the end of the file.
                7 => {
                    text += &line(ms, "c2s", Some(i), call(i));
                    late.push(i);
                }
                // The reply is written first (a recorder writing from two threads).
                11 => {
                    text += &line(ms + 1, "s2c", Some(i), reply(i));
                    text += &line(ms, "c2s", Some(i), call(i));
                }
                // The reply names no session.
                13 => {
                    text += &line(ms, "c2s", Some(i), call(i));
                    text += &line(ms + 1, "s2c", None, reply(i));
                }
                // A reply to no request.
                17 => text += &line(ms, "s2c", Some(n + i), reply(i)),
                _ => {
                    text += &line(ms, "c2s", Some(i), call(i));
                    text += &line(ms + 3, "s2c", Some(i), reply(i));
                }
            }
        }
        for i in late {
            text += &line(n * 10 + i, "s2c", Some(i), reply(i));
        }
        let want = rpc_reference(text.as_bytes());
        for (chunk, hold) in [(CHUNK, HOLD), (97, HOLD), (4096, 0), (4096, 20_000)] {
            let got = rpc_read(text.as_bytes(), chunk, hold, false, true);
            let how = format!("chunks of {chunk}, holding {hold}");
            assert_eq!(got.0, want.0, "records, {how}");
            assert_eq!(format!("{:?}", got.1), format!("{:?}", want.1), "{how}");
        }
        let mut f = tempfile::NamedTempFile::new().expect("temp file");
        f.write_all(text.as_bytes()).expect("write");
        for chunk in [300, 4096] {
            let symbols = Symbols::new();
            let mut src = RpcSource::open_in(f.path(), "t", 3, Arc::clone(&symbols), chunk, HOLD)
                .expect("opens");
            let (mut calls, mut paired, mut most) = (0, 0, 0);
            while let Some(b) = src.next_batch().expect("no I/O error") {
                calls += b.len();
                paired += b.upstream.iter().filter(|u| u.is_some()).count();
                most = most.max(src.sessions.numbers.len());
            }
            assert_eq!(calls, want.0.len(), "chunks of {chunk}");
            assert_eq!(calls as u64, n - n / 50, "chunks of {chunk}");
            assert_eq!(paired, calls, "chunks of {chunk}: every call has its reply");
            // The late calls' sessions wait to the end: 60 of them, and a few chunks' worth.
            assert!(most < 600, "chunks of {chunk}: {most} sessions held");
            // files and t.
            assert_eq!(symbols.len(), 2, "chunks of {chunk}");
        }
    }

    /// JSON-RPC batches (a `msg` that is an array of messages) read as the reference reader
    /// reads them, chunked, held and read twice; each call of a batch pairs with its reply.
    #[test]
    fn json_rpc_batches_read_as_the_reference_reader_reads_them() {
        let mut text = String::new();
        let line = |ms: u64, dir: &str, msg: String| {
            format!(
                "{{\"ts\":\"2026-08-01T10:{:02}:{:02}.{:03}Z\",\"dir\":\"{dir}\",\"server\":\"files\",\"session\":\"s\",\"msg\":{msg}}}\n",
                ms / 60_000,
                ms / 1000 % 60,
                ms % 1000
            )
        };
        let call = |id: u64| {
            format!(
                r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"name":"t{}","arguments":{{"n":{id}}}}}}}"#,
                id % 3
            )
        };
        let reply = |id: u64| {
            format!(
                r#"{{"jsonrpc":"2.0","id":{id},"result":{{"content":[],"isError":{}}}}}"#,
                id % 2 == 0
            )
        };
        // Never answered: the calls after it wait for the end of the file.
        text += &line(0, "c2s", call(99_999));
        for i in 0..300u64 {
            let (a, b, c) = (3 * i, 3 * i + 1, 3 * i + 2);
            let ms = 1000 * i;
            // A batch of two calls and a notification, a single call, then the replies: one
            // batch answering both (in the other order), one single.
            let note = r#"{"jsonrpc":"2.0","method":"notifications/progress","params":{}}"#;
            text += &line(ms, "c2s", format!("[{},{note},{}]", call(a), call(b)));
            text += &line(ms + 10, "c2s", call(c));
            text += &line(ms + 50, "s2c", format!("[{},{}]", reply(b), reply(a)));
            text += &line(ms + 60, "s2c", reply(c));
            if i % 40 == 7 {
                // A batch with a bad message spoils its line only.
                text += &line(ms + 70, "c2s", format!("[{},5]", call(10_000 + i)));
            }
        }
        check_rpc(text.as_bytes(), "batches");
        let (records, stats) = rpc_reference(text.as_bytes());
        assert_eq!(records.len(), 901);
        let replies = stats.replies.clone().expect("paired");
        assert_eq!(
            (replies.paired, replies.requests_without_reply),
            (900, 1),
            "{replies:?}"
        );
        assert_eq!(stats.skipped, 8, "{stats:?}");
    }

    #[test]
    fn usual_lines_are_scanned_not_left_to_the_general_code() {
        let text = generated(2_000, 1);
        let parsed = parse_chunk(
            &text,
            Mode::Calls,
            true,
            true,
            None,
            &mut Worker::new(0, Symbols::new()),
        );
        assert_eq!(parsed.cols.len(), 2_000);
        assert!(parsed.records.is_empty() && parsed.skipped.is_empty());
        let line = r#"{"ts":"2026-08-01T10:00:00Z","server":"s","grant":"g","session":"x","tool":"t","args":{"a":[1,{"b":null}]},"id":"1","upstream":"ok","latency_ms":1.5}"#;
        let scanned = scan_line(line).expect("scanned");
        assert_eq!(
            scanned.ts,
            fast_rfc3339("2026-08-01T10:00:00Z").expect("a time")
        );
        assert_eq!(
            (scanned.server, scanned.grant, scanned.session, scanned.tool),
            (Some("s"), Some("g"), Some("x"), "t")
        );
        assert_eq!(
            &line[scanned.args.0..scanned.args.1],
            r#"{"a":[1,{"b":null}]}"#
        );
        assert_eq!(scanned.upstream, Some(Upstream::Ok));
        // Lines the scanner leaves alone.
        for line in [
            r#"{"ts":"2026-08-01T10:00:00Z","tool":"t","tool":"t"}"#,
            r#"{"ts":"2026-08-01T10:00:00Z","tool":"t\u0041"}"#,
            r#"{"ts":"2026-08-01T10:00:00Z","tool":"t","recorded":{"decision":"maybe"}}"#,
            r#"{"ts":"2026-08-01T10:00:00Z","tool":"t","args":{"n":1e2}}"#,
            r#"{"ts":"2026-08-01T10:00:00Z","tool":"t","args":{"e":"\ud83d\ude00"}}"#,
            r#"{"ts":"2026-08-01T10:00:00Z","tool":"t","args":[]}"#,
            r#"{"ts":"2026-08-01T10:00:00Z"}"#,
        ] {
            assert_eq!(scan_line(line), None, "{line}");
        }
    }

    #[test]
    fn converted_traces_are_scanned_too() {
        // Records as `mcpsim convert` writes them from gateway logs: recorded decisions, and
        // argument keys without values.
        let (mut records, _, _) = reference(&generated(300, 5));
        for (i, rec) in records.iter_mut().enumerate() {
            rec.recorded = Some(crate::trace::Recorded {
                decision: [None, Some(RecordedDecision::Deny)][i % 2],
                rule: Some(format!("rule \"{i}\"")),
                message: None,
                policy_version: (i % 3 == 0).then(|| "v2".to_string()),
            });
            if i % 4 == 0 {
                rec.args = Args::Keys(vec!["path".into(), "mode\n".into()]);
            }
        }
        let mut text = Vec::new();
        crate::trace::write_jsonl(&records, &mut text).expect("written");
        let parsed = parse_chunk(
            &text,
            Mode::Calls,
            true,
            true,
            None,
            &mut Worker::new(0, Symbols::new()),
        );
        assert_eq!(parsed.cols.len(), 300);
        assert!(parsed.records.is_empty() && parsed.skipped.is_empty());
        assert!(parsed.cols.recorded.contains(&Some(RecordedDecision::Deny)));
        for chunk in [1, 1000, CHUNK] {
            check_streamed(&text, chunk, "converted");
        }
    }

    #[test]
    fn every_tricky_line_reads_as_the_sequential_reader_reads_it() {
        for line in tricky_lines() {
            for text in [line.clone(), format!("\n{line}\r\n\n")] {
                check_streamed(text.as_bytes(), 3, &line);
                check_streamed(text.as_bytes(), CHUNK, &line);
            }
        }
    }

    #[test]
    fn a_tricky_file_reads_the_same_at_every_chunk_size() {
        let text = tricky_text();
        let (_, bad, _) = reference(&text);
        assert!(bad.len() > 50, "the file has bad lines");
        for chunk in [1, 7, 64, 1000, 4096, CHUNK] {
            check_streamed(&text, chunk, "tricky");
        }
        for chunk in [1, 333, CHUNK] {
            for gzip in [false, true] {
                let (batches, symbols) = from_file(&text, chunk, gzip);
                let what = format!("tricky file, chunk {chunk}, gzip {gzip}");
                assert_same(&text, &batches, &symbols, &what);
            }
        }
    }

    #[test]
    fn a_bom_counts_only_at_the_start_of_the_input() {
        let line = format!(r#"{{{TS},"tool":"t"}}"#);
        let text = format!("\u{feff}{line}\n\u{feff}{line}\n");
        for chunk in [1, CHUNK] {
            let (batches, _) = streamed(text.as_bytes(), chunk);
            let rows: usize = batches.iter().map(CallBatch::len).sum();
            let bad: Vec<u64> = batches
                .iter()
                .flat_map(|b| b.skipped.iter().map(|(l, _)| *l))
                .collect();
            assert_eq!((rows, bad), (1, vec![2]));
            check_streamed(text.as_bytes(), chunk, "bom");
        }
    }

    #[test]
    fn mcpsim_fixtures_read_the_same() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/traces");
        let mut seen = 0;
        for entry in std::fs::read_dir(dir).expect("fixtures") {
            let path = entry.expect("fixture").path();
            if path.is_dir() {
                continue;
            }
            let text = std::fs::read(&path).expect("fixture");
            if path.extension().is_none_or(|e| e != "jsonl") || detect(&text) != Ok(Format::Jsonl) {
                continue;
            }
            seen += 1;
            for chunk in [1, 100, CHUNK] {
                let what = path.display().to_string();
                check_streamed(&text, chunk, &what);
                let (batches, symbols) = from_file(&text, chunk, false);
                assert_same(&text, &batches, &symbols, &what);
            }
        }
        assert!(seen >= 2, "mcpsim fixtures found: {seen}");
    }

    #[test]
    fn empty_and_blank_inputs_have_no_batches() {
        for text in ["", "\n", " \r\n\t\n", "\u{feff}"] {
            assert!(streamed(text.as_bytes(), 1).0.len() <= 1);
            check_streamed(text.as_bytes(), 1, "blank");
            let (batches, symbols) = from_file(text.as_bytes(), 4, false);
            assert_same(text.as_bytes(), &batches, &symbols, "blank");
        }
        assert!(streamed(b"\n\n  \n", 1).0.is_empty());
    }

    #[test]
    fn names_share_ids_across_batches_and_workers() {
        let text = generated(5_000, 3);
        let (batches, symbols) = streamed(&text, 4096);
        assert!(batches.len() > 10);
        assert_same(&text, &batches, &symbols, "generated");
        let servers: std::collections::BTreeSet<u32> =
            batches.iter().flat_map(|b| b.server.clone()).collect();
        assert_eq!(servers.len(), 2);
        assert!(batches.iter().all(|b| b.grant.iter().all(|&g| g != NO_SYM)));
    }

    /// Pieces of lines: values for each key, good and bad.
    fn value_for(key: &str) -> Vec<&'static str> {
        match key {
            "ts" => vec![
                r#""2026-08-01T10:00:00.250Z""#,
                r#""2026-08-01T10:00:00+01:00""#,
                "1785578400",
                "null",
                r#""x""#,
            ],
            "args" => vec![
                r#"{"a":"x","b":[1,2.5,{"c":null}],"d":true}"#,
                "{}",
                "null",
                "[1]",
                r#"{"s":"q\"\\\u00e9"}"#,
                r#"{"n":-0.5e1}"#,
            ],
            "latency_ms" => vec!["12.5", "0", "-1", "null", r#""1""#, "1e2"],
            "id" => vec![r#""42""#, "42", "null", "4.5", "[]"],
            "upstream" => vec![
                r#""ok""#,
                r#""error""#,
                r#""tool_error""#,
                r#""bad""#,
                "null",
            ],
            "recorded" => vec![
                "null",
                r#"{"decision":"deny","rule":"r"}"#,
                r#"{"decision":"Blocked","policy_version":3}"#,
                "{}",
            ],
            "arg_keys" => vec![r#"["a","b"]"#, "[]", "null", r#"["a",1]"#],
            "extra" => vec![r#"{"k":[null,false]}"#, r#""v""#, "-3.25", "[]"],
            _ => vec![r#""name-1""#, r#""name-2""#, "null", "7", r#""n\u0041""#],
        }
    }

    const KEYS: [&str; 12] = [
        "ts",
        "server",
        "grant",
        "session",
        "tool",
        "args",
        "arg_keys",
        "id",
        "recorded",
        "upstream",
        "latency_ms",
        "extra",
    ];

    fn line_strategy() -> impl Strategy<Value = Vec<u8>> {
        let fields = prop::sample::subsequence(KEYS.to_vec(), 0..=KEYS.len())
            .prop_shuffle()
            .prop_flat_map(|keys| {
                let values: Vec<_> = keys
                    .iter()
                    .map(|k| prop::sample::select(value_for(k)))
                    .collect();
                (Just(keys), values)
            });
        let edits = prop::collection::vec(
            (
                any::<prop::sample::Index>(),
                0u8..3,
                prop::sample::select(b"\"{}[],:\\ 0e.-nutx\r\n\t\xff\xc3".to_vec()),
            ),
            0..3,
        );
        (fields, edits).prop_map(|((keys, values), edits)| {
            let body: Vec<String> = keys
                .iter()
                .zip(&values)
                .map(|(k, v)| format!(r#""{k}":{v}"#))
                .collect();
            let mut line = format!("{{{}}}", body.join(",")).into_bytes();
            crate::trace::scan::edit(&mut line, edits);
            line
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

        #[test]
        fn perturbed_lines_read_as_the_sequential_reader_reads_them(
            lines in prop::collection::vec(line_strategy(), 1..8),
            crlf in any::<bool>(),
            chunk in 1usize..400,
        ) {
            let mut text = Vec::new();
            for line in &lines {
                text.extend_from_slice(line);
                text.extend_from_slice(if crlf { b"\r\n" } else { b"\n" });
            }
            check_streamed(&text, chunk, "perturbed");
        }
    }

    proptest! {
        #[test]
        fn special_bytes_are_found_where_a_byte_loop_finds_them(
            bytes in prop::collection::vec(
                prop_oneof![3 => 0x20u8..0x7f, 1 => any::<u8>()],
                0..80,
            ),
            from in 0usize..80,
        ) {
            let naive = bytes
                .iter()
                .enumerate()
                .skip(from)
                .find(|&(_, &c)| c == b'"' || c == b'\\' || c < 0x20)
                .map(|(i, _)| i);
            prop_assert_eq!(find_special(&bytes, from), naive);
            let any = bytes.iter().any(|&c| c == b'"' || c == b'\\' || c < 0x20);
            prop_assert_eq!(crate::trace::needs_escape(&bytes), any);
        }
    }
}
