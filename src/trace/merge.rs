//! Opening inputs and yielding their calls in timestamp order.
//!
//! Calls are evaluated in timestamp order; equal timestamps keep input order (the order files
//! were given, then line order). [`Trace::open`] first reads every input once, checking whether
//! each file is internally in time order:
//! - if all records fit in memory (below the memory limit) they are kept from that pass and
//!   stable-sorted, so small inputs are read once;
//! - otherwise, if every file is in order, the files are read again as a streaming k-way merge
//!   (a heap on (ts, file index, line)), whose memory does not grow with the input;
//! - otherwise everything is read again into memory and sorted.
//!
//! A record is *out of order* when its timestamp is earlier than the latest timestamp seen
//! before it in its own file; [`ReadStats::out_of_order`] counts them. Interleaving between
//! files is never disorder: that is what the merge is for. Standard input is spooled to a
//! temporary file so that it can be read twice.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;
use std::io::Read;
use std::path::PathBuf;
use std::sync::Arc;

use super::agentgateway::AgentGatewaySource;
use super::claude::ClaudeSource;
use super::csv::CsvSource;
use super::format::detect;
use super::input::{Spool, open_decoded, peek_head};
use super::intercept::InterceptSource;
use super::jsonl_batch::JsonlBatchSource;
use super::jsonl_fast::ParallelJsonlSource;
use super::jsonrpc::JsonRpcSource;
use super::otel::OtelSource;
use super::parquet::{ParquetBytes, ParquetSource};
use super::parquet_batch::ParquetBatchSource;
use super::policylayer::PolicyLayerSource;
use super::source::{Ctx, Lines, Source};
use super::toolhive::ToolHiveSource;
use super::{
    Args, BatchRows, BatchSource, CallBatch, CallRecord, Format, InputSpec, LocalSymbols, Nanos,
    ReadStats, Symbols, TraceError, expand_inputs,
};

/// How inputs are read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReadOptions {
    /// Read every input as this format instead of detecting it.
    pub from: Option<Format>,
    /// Stop at the first bad record with an error instead of skipping it.
    pub strict: bool,
}

/// Above this many calls, inputs are streamed (or, when out of order, re-read) instead of being
/// kept from the first pass. A kept call with its argument map takes about 1 KB, so this bounds
/// the first pass to some 50 MB.
pub const DEFAULT_MEMORY_LIMIT: usize = 50_000;

struct Input {
    name: String,
    path: PathBuf,
    format: Format,
}

/// Opened inputs yielding their calls in time order.
pub struct Trace {
    inputs: Vec<Input>,
    files: Vec<String>,
    strict: bool,
    stats: ReadStats,
    mode: Mode,
    // Keeps the spooled copy of stdin alive (deleted on drop).
    _spool: Option<Spool>,
}

enum Mode {
    Sorted(std::vec::IntoIter<CallRecord>),
    Merge {
        sources: Vec<Box<dyn Source>>,
        heap: BinaryHeap<Reverse<Head>>,
        last: Vec<Nanos>,
    },
}

/// A record ordered by (ts, file, line) for the merge heap.
struct Head(CallRecord);

impl Head {
    fn key(&self) -> (Nanos, u32, u64) {
        (self.0.ts, self.0.origin.file, self.0.origin.line)
    }
}

impl PartialEq for Head {
    fn eq(&self, other: &Self) -> bool {
        self.key() == other.key()
    }
}
impl Eq for Head {}
impl PartialOrd for Head {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Head {
    fn cmp(&self, other: &Self) -> Ordering {
        self.key().cmp(&other.key())
    }
}

impl Trace {
    /// Expand, open and check the inputs (see the module docs for the passes this takes).
    /// Under `strict`, a bad record anywhere is reported here.
    pub fn open(inputs: &[String], opts: &ReadOptions) -> Result<Trace, TraceError> {
        Trace::open_with_memory_limit(inputs, opts, DEFAULT_MEMORY_LIMIT)
    }

    /// [`Trace::open`] with a different limit on the calls kept from the first pass; a small
    /// limit forces the streaming merge (used to test it on small inputs).
    pub fn open_with_memory_limit(
        inputs: &[String],
        opts: &ReadOptions,
        limit: usize,
    ) -> Result<Trace, TraceError> {
        Trace::open_with_stdin(inputs, opts, limit, &mut std::io::stdin().lock())
    }

    /// [`Trace::open_with_memory_limit`] reading `-` from `stdin` instead of the process's
    /// standard input.
    pub fn open_with_stdin(
        inputs: &[String],
        opts: &ReadOptions,
        limit: usize,
        stdin: &mut dyn Read,
    ) -> Result<Trace, TraceError> {
        let specs = expand_inputs(inputs)?;
        let mut spool = None;
        let mut opened = Vec::with_capacity(specs.len());
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
            opened.push(Input { name, path, format });
        }
        let files: Vec<String> = opened.iter().map(|i| i.name.clone()).collect();
        let mut trace = Trace {
            files,
            strict: opts.strict,
            stats: ReadStats::default(),
            mode: Mode::Sorted(Vec::new().into_iter()),
            inputs: opened,
            _spool: spool,
        };
        trace.start(limit)?;
        Ok(trace)
    }

    fn fresh_stats(&self) -> ReadStats {
        ReadStats {
            per_file: self
                .inputs
                .iter()
                .map(|i| (i.name.clone(), i.format, 0))
                .collect(),
            ..ReadStats::default()
        }
    }

    fn sources(&self) -> Result<Vec<Box<dyn Source>>, TraceError> {
        self.inputs
            .iter()
            .enumerate()
            .map(|(i, input)| open_source(input, i as u32))
            .collect()
    }

    /// Read everything once; keep it if small, else decide between merge and load-and-sort.
    fn start(&mut self, limit: usize) -> Result<(), TraceError> {
        self.stats = self.fresh_stats();
        let (kept, out_of_order) = self.read_all(Some(limit))?;
        if let Some(records) = kept {
            self.stats.out_of_order = out_of_order;
            self.mode = Mode::Sorted(sorted(records).into_iter());
            return Ok(());
        }
        self.stats = self.fresh_stats();
        if out_of_order == 0 {
            let mut sources = self.sources()?;
            let mut heap = BinaryHeap::new();
            for (i, src) in sources.iter_mut().enumerate() {
                let mut cx = Ctx {
                    stats: &mut self.stats,
                    strict: self.strict,
                    file: &self.files[i],
                };
                if let Some(rec) = src.next(&mut cx)? {
                    self.stats.per_file[i].2 += 1;
                    heap.push(Reverse(Head(rec)));
                }
            }
            let last = vec![Nanos::MIN; sources.len()];
            self.mode = Mode::Merge {
                sources,
                heap,
                last,
            };
        } else {
            let (kept, out_of_order) = self.read_all(None)?;
            self.stats.out_of_order = out_of_order;
            self.mode = Mode::Sorted(sorted(kept.unwrap_or_default()).into_iter());
        }
        Ok(())
    }

    /// Read every input in turn, counting out-of-order records. Records are kept while there are
    /// at most `limit` of them (all of them without a limit); `None` once the limit is passed.
    fn read_all(
        &mut self,
        limit: Option<usize>,
    ) -> Result<(Option<Vec<CallRecord>>, u64), TraceError> {
        let mut kept = Some(Vec::new());
        let mut out_of_order = 0;
        for i in 0..self.inputs.len() {
            // One file open at a time: this pass needs no merge.
            let mut src = open_source(&self.inputs[i], i as u32)?;
            let mut latest = Nanos::MIN;
            let mut cx = Ctx {
                stats: &mut self.stats,
                strict: self.strict,
                file: &self.files[i],
            };
            loop {
                // Once too many calls were seen to keep them, only the order matters: sources
                // can then skip building records.
                let ts = if kept.is_some() {
                    let Some(rec) = src.next(&mut cx)? else { break };
                    let ts = rec.ts;
                    if let Some(v) = &mut kept {
                        if limit.is_some_and(|l| v.len() >= l) {
                            kept = None;
                        } else {
                            v.push(rec);
                        }
                    }
                    ts
                } else {
                    let Some(ts) = src.next_ts(&mut cx)? else {
                        break;
                    };
                    ts
                };
                cx.stats.per_file[i].2 += 1;
                if ts < latest {
                    out_of_order += 1;
                }
                latest = latest.max(ts);
            }
        }
        Ok((kept, out_of_order))
    }

    /// The next call in time order; `None` at the end. Errors only for I/O failures and, under
    /// `strict`, bad records.
    pub fn next_call(&mut self) -> Result<Option<CallRecord>, TraceError> {
        let rec = match &mut self.mode {
            Mode::Sorted(it) => it.next(),
            Mode::Merge {
                sources,
                heap,
                last,
            } => match heap.pop() {
                None => None,
                Some(Reverse(Head(rec))) => {
                    let i = rec.origin.file as usize;
                    let mut cx = Ctx {
                        stats: &mut self.stats,
                        strict: self.strict,
                        file: &self.files[i],
                    };
                    if let Some(next) = sources[i].next(&mut cx)? {
                        cx.stats.per_file[i].2 += 1;
                        // The first pass found this file in order; it changed since.
                        if next.ts < rec.ts.max(last[i]) {
                            cx.stats.out_of_order += 1;
                        }
                        last[i] = last[i].max(rec.ts);
                        heap.push(Reverse(Head(next)));
                    }
                    Some(rec)
                }
            },
        };
        if rec.is_some() {
            self.stats.calls += 1;
        }
        Ok(rec)
    }

    /// Display names of the inputs; the index is [`super::Origin::file`].
    pub fn files(&self) -> &[String] {
        &self.files
    }

    /// What the read saw; final once [`Trace::next_call`] has returned `None`.
    pub fn stats(&self) -> &ReadStats {
        &self.stats
    }
}

impl Iterator for Trace {
    type Item = Result<CallRecord, TraceError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_call().transpose()
    }
}

fn sorted(mut records: Vec<CallRecord>) -> Vec<CallRecord> {
    // Stable: one line can hold several calls (an OTLP batch), and ties keep their read order.
    records.sort_by_key(|r| (r.ts, r.origin.file, r.origin.line));
    records
}

/// One input file opened as batches of calls (see [`open_batches`]).
pub(crate) struct BatchInput {
    /// Display name of the input.
    pub(crate) name: String,
    /// Its format.
    pub(crate) format: Format,
    /// Its calls; batches carry the input's index in the order given.
    pub(crate) source: Box<dyn BatchSource>,
}

/// Open `inputs` as batches of calls, when every input is a file in a format with a batch
/// reader (or, with `any_format`, in any format, through its record reader), and not under
/// `strict`; `None` when they are not, and the caller then reads them with [`Trace`].
/// Batches come in file order: checking that the calls are in time order, and merging the
/// files, is the caller's job.
pub(crate) fn open_batches(
    inputs: &[String],
    opts: &ReadOptions,
    symbols: &Arc<Symbols>,
    any_format: bool,
) -> Result<Option<Vec<BatchInput>>, TraceError> {
    if opts.strict {
        return Ok(None);
    }
    let mut files = Vec::new();
    for spec in expand_inputs(inputs)? {
        let name = spec.display_name();
        let InputSpec::File(path) = spec else {
            return Ok(None);
        };
        let format = match opts.from {
            Some(f) => f,
            None => detect_file(&path, &name)?,
        };
        if !any_format && !matches!(format, Format::Jsonl | Format::Parquet) {
            return Ok(None);
        }
        files.push(Input { name, path, format });
    }
    let mut opened = Vec::with_capacity(files.len());
    for (i, input) in files.into_iter().enumerate() {
        let file = i as u32;
        let shared = Arc::clone(symbols);
        let source: Box<dyn BatchSource> = match input.format {
            Format::Jsonl => Box::new(JsonlBatchSource::open_file(
                &input.path,
                &input.name,
                file,
                shared,
            )?),
            Format::Parquet => {
                let (r, compressed) = open_decoded(&input.path, &input.name)?;
                let bytes = parquet_bytes(&input, r, compressed)?;
                Box::new(ParquetBatchSource::new(
                    bytes,
                    &input.name,
                    file,
                    shared,
                    true,
                ))
            }
            _ => Box::new(RecordBatches {
                source: open_source(&input, file)?,
                name: input.name.clone(),
                file,
                symbols: LocalSymbols::new(shared),
                stats: ReadStats::default(),
                done: false,
            }),
        };
        opened.push(BatchInput {
            name: input.name,
            format: input.format,
            source,
        });
    }
    Ok(Some(opened))
}

/// A record reader's calls as batches.
struct RecordBatches {
    source: Box<dyn Source>,
    name: String,
    file: u32,
    symbols: LocalSymbols,
    stats: ReadStats,
    done: bool,
}

/// Calls per batch of [`RecordBatches`].
const RECORDS_PER_BATCH: usize = 4096;

impl BatchSource for RecordBatches {
    fn next_batch(&mut self) -> Result<Option<CallBatch>, TraceError> {
        let mut records = Vec::new();
        let mut cx = Ctx {
            stats: &mut self.stats,
            strict: false,
            file: &self.name,
        };
        while !self.done && records.len() < RECORDS_PER_BATCH {
            match self.source.next(&mut cx)? {
                Some(rec) => records.push(rec),
                None => self.done = true,
            }
        }
        if records.is_empty() {
            return Ok(None);
        }
        let s = &mut self.symbols;
        Ok(Some(CallBatch {
            file: self.file,
            ts: records.iter().map(|r| r.ts).collect(),
            line: records.iter().map(|r| r.origin.line).collect(),
            server: records.iter().map(|r| s.intern(&r.server)).collect(),
            grant: records
                .iter()
                .map(|r| s.intern_opt(r.grant.as_deref()))
                .collect(),
            session: records
                .iter()
                .map(|r| s.intern_opt(r.session.as_deref()))
                .collect(),
            tool: records.iter().map(|r| s.intern(&r.tool)).collect(),
            upstream: records.iter().map(|r| r.upstream).collect(),
            recorded: records
                .iter()
                .map(|r| r.recorded.as_ref().and_then(|x| x.decision))
                .collect(),
            skipped: Vec::new(),
            ignored: Vec::new(),
            rows: Box::new(Records(records)),
        }))
    }

    fn take_stats(&mut self) -> Option<ReadStats> {
        Some(std::mem::take(&mut self.stats))
    }
}

struct Records(Vec<CallRecord>);

impl BatchRows for Records {
    fn args(&self, row: usize) -> Args {
        self.0[row].args.clone()
    }

    fn record(&self, row: usize) -> CallRecord {
        self.0[row].clone()
    }
}

fn detect_file(path: &std::path::Path, name: &str) -> Result<Format, TraceError> {
    let (r, _) = open_decoded(path, name)?;
    let (head, _) = peek_head(r, name)?;
    if head.iter().all(u8::is_ascii_whitespace) {
        // An empty file holds no calls in any format.
        return Ok(Format::Jsonl);
    }
    detect(&head).map_err(|reason| TraceError::UnknownFormat {
        file: name.to_string(),
        reason,
    })
}

/// Where a Parquet input's bytes are: Parquet needs random access, so a compressed file is
/// decoded into memory first; a plain one is read in place.
fn parquet_bytes(
    input: &Input,
    mut r: impl Read,
    compressed: bool,
) -> Result<ParquetBytes, TraceError> {
    if !compressed {
        return Ok(ParquetBytes::File(input.path.clone()));
    }
    let mut v = Vec::new();
    r.read_to_end(&mut v).map_err(|source| TraceError::Io {
        file: input.name.clone(),
        source,
    })?;
    Ok(ParquetBytes::Memory(Arc::from(v)))
}

fn open_source(input: &Input, file: u32) -> Result<Box<dyn Source>, TraceError> {
    let name = &input.name;
    let (r, compressed) = open_decoded(&input.path, name)?;
    Ok(match input.format {
        Format::Parquet => Box::new(ParquetSource::new(
            parquet_bytes(input, r, compressed)?,
            name,
            file,
        )),
        Format::Csv => Box::new(CsvSource::new(r, name, file)),
        Format::Jsonl => Box::new(ParallelJsonlSource::new(r, name, file)),
        Format::JsonRpc => Box::new(JsonRpcSource::new(Lines::new(r, name), file)),
        Format::PolicyLayerLog => Box::new(PolicyLayerSource::new(Lines::new(r, name), file)),
        Format::InterceptLog => Box::new(InterceptSource::new(Lines::new(r, name), file)),
        Format::ClaudeLog => Box::new(ClaudeSource::new(Lines::new(r, name), file)),
        Format::OtelSpans => Box::new(OtelSource::new(Lines::new(r, name), file)),
        Format::AgentGatewayLog => Box::new(AgentGatewaySource::new(Lines::new(r, name), file)),
        Format::ToolHiveAudit => Box::new(ToolHiveSource::new(Lines::new(r, name), file)),
    })
}
