//! mcpsim call records as Parquet, read into [`CallBatch`]es: one batch per row group (or slice
//! of a large one), read and converted on worker threads, handed over in file order.
//!
//! Only the columns the batch holds are decoded (`ts`, names, `upstream`, `recorded_decision`),
//! plus those that decide whether a row is a call at all (`args`, `arg_keys`, and `latency_ms`
//! when it is text). Text columns are decoded straight from Parquet's dictionary pages where
//! they have them: each row is then a dictionary index, and each distinct value is interned or
//! checked once per row group. Pages without a dictionary fall back to string views, memoised by
//! view. A row the column checks cannot vouch for (a bad or missing value, unusual argument
//! text) is judged by the table reader itself ([`Batch::record`]) on a read of all columns, so
//! bad rows get exactly its errors; a file whose column types are unusual is read that way
//! throughout. The other columns (`id`, `latency_ms`, the recorded rule…) are read only when a
//! whole record is asked for.

use super::mapped::MappedFile;
use std::collections::BTreeMap;
use std::fs::File;
use std::io::Cursor;
use std::ops::Range;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};

use polars::io::parquet::read::{FileMetadata, ParallelStrategy};
use polars::prelude::*;
use polars_arrow::array::{Array, DictionaryArray, PrimitiveArray, Utf8ViewArray};
use polars_arrow::datatypes::{ArrowDataType, Field, IntegerType, Metadata};
use polars_buffer::Buffer;
use polars_parquet::parquet::compression::Compression;
use polars_parquet::parquet::read::PageMetaData;
use polars_parquet::read::{
    BasicDecompressor, Filter, PageReader, column_iter_to_arrays, infer_schema,
};
use rustc_hash::FxHashMap as HashMap;
use serde_json::Value;

use super::batch::{
    BatchRows, BatchSource, CallBatch, Columns, LocalSymbols, NO_SYM, Prescreen, PrescreenRows,
    Sessions, Symbols,
};
use super::guard;
use super::intern::Interner;
use super::parquet::ParquetBytes;
use super::parquet_inflate::Inflater;
use super::source::UNKNOWN_SERVER;
use super::table::{Batch, COLUMNS, JSON_WS};
use super::{
    Args, CallRecord, Nanos, Origin, RawArgs, RecordedDecision, TraceError, Upstream, parse_ts_str,
    parse_ts_value,
};
use crate::call::object_certainly_parses;

/// Most rows read at a time; a larger row group is read in several slices.
const MAX_SLICE_ROWS: usize = 64 * 1024;

/// Reads an mcpsim Parquet file as [`CallBatch`]es.
pub(crate) struct ParquetBatchSource {
    /// Until the first batch is asked for.
    start: Option<Start>,
    name: String,
    /// Set once the workers run.
    run: Option<Running>,
    /// Rows judged by the table reader so far (the column checks could not vouch for them).
    judged: Arc<AtomicUsize>,
    /// What the workers are to work out ahead, once the replay says.
    prescreen: Arc<OnceLock<Arc<dyn Prescreen>>>,
    /// Whether sessions are wanted (see [`BatchSource::skip_sessions`]); read by the workers
    /// at every slice, since the merge reads ahead before the replay says.
    sessions: Arc<AtomicBool>,
}

/// What the first read needs.
struct Start {
    bytes: ParquetBytes,
    file: u32,
    symbols: Arc<Symbols>,
    /// Most rows per slice.
    slice_rows: usize,
}

/// Workers started: slices come back over `rx`, tagged with their index, in any order.
struct Running {
    shared: Arc<Shared>,
    rx: Receiver<(usize, Result<CallBatch, TraceError>)>,
    /// Slices that came back ahead of their turn.
    early: BTreeMap<usize, Result<CallBatch, TraceError>>,
    /// The index of the next slice to hand out.
    next: usize,
}

/// What the workers share.
struct Shared {
    input: Input,
    plan: Plan,
    /// Claims and hand-overs, so that workers stay at most `window` slices ahead.
    gate: Mutex<Gate>,
    moved: Condvar,
    window: usize,
    judged: Arc<AtomicUsize>,
    prescreen: Arc<OnceLock<Arc<dyn Prescreen>>>,
    sessions: Arc<AtomicBool>,
}

struct Gate {
    /// The next slice no worker has claimed.
    claimed: usize,
    /// Slices handed out so far.
    delivered: usize,
    /// The reader is gone or the read ended: claim nothing more.
    stop: bool,
}

/// The file's bytes, shared by every read: a file is mapped once.
#[derive(Clone)]
struct Input {
    name: String,
    file: u32,
    bytes: Buffer<u8>,
    /// The map behind `bytes`, for a file.
    map: Option<Arc<MappedFile>>,
    /// The columns of the table the file has (polars reads no other: it cannot represent
    /// every type another column may have).
    columns: Arc<[String]>,
    /// Nanoseconds per unit of a `ts` column typed as a timestamp (read as its integers).
    ts_scale: Option<i64>,
}

/// A file's map as the owner of a [`Buffer`].
struct SharedMap(Arc<MappedFile>);

impl AsRef<[u8]> for SharedMap {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

/// What to read, decided from the footer.
struct Plan {
    slices: Vec<Slice>,
    /// How the columns are read, `None` when their types call for the table reader throughout.
    fast: Option<Arc<FastColumns>>,
    /// What the batches' column checks decode when nobody needs sessions: `fast` less the
    /// sessions (records are still read with `fast`).
    sessionless: Option<Arc<FastColumns>>,
    /// See [`Input::columns`].
    columns: Arc<[String]>,
    /// See [`Input::ts_scale`].
    ts_scale: Option<i64>,
}

/// One stretch of rows of one row group: read with `metadata` (the file's footer narrowed to
/// that row group, so polars looks at no other), rows `offset..offset + len` of it.
#[derive(Clone)]
struct Slice {
    metadata: Arc<FileMetadata>,
    offset: usize,
    len: usize,
    /// Rows of the file before this slice.
    first_row: usize,
    /// The bytes of the slice's row group (`None`: it has no columns).
    span: Option<std::ops::Range<usize>>,
}

/// How the columns of a fast read are typed.
#[derive(Clone)]
struct FastColumns {
    ts: Option<TsKind>,
    /// The file's fields of the columns decoded directly (text columns and `ts`), by name.
    fields: HashMap<&'static str, Field>,
    /// `latency_ms` is text, so it is read and checked.
    latency_text: bool,
}

#[derive(Clone, Copy)]
enum TsKind {
    /// Int64 in the file, unit by magnitude: decoded directly.
    Int64,
    /// Text in the file: decoded directly.
    Text,
    /// Another integer type: read through polars, unit by magnitude.
    Epoch,
    /// A timestamp in the file, read as its Int64 integers: times this many nanoseconds.
    Scaled(i64),
}

/// The text columns of the table, and which a fast read needs.
const TEXT_COLUMNS: [(&str, bool); 12] = [
    ("server", true),
    ("grant", true),
    ("session", true),
    ("tool", true),
    ("args", true),
    ("arg_keys", true),
    ("id", false),
    ("recorded_decision", true),
    ("recorded_rule", false),
    ("recorded_message", false),
    ("recorded_policy_version", false),
    ("upstream", true),
];

impl ParquetBatchSource {
    /// A source for `bytes`, named `name` in errors, file index `file`, names interned into
    /// `symbols`. Arguments are always served from the argument column, which is read anyway
    /// (whether a row is a call depends on it), so `needs_args` changes nothing here.
    pub(crate) fn new(
        bytes: ParquetBytes,
        name: &str,
        file: u32,
        symbols: Arc<Symbols>,
        needs_args: bool,
    ) -> ParquetBatchSource {
        let _ = needs_args;
        ParquetBatchSource {
            start: Some(Start {
                bytes,
                file,
                symbols,
                slice_rows: MAX_SLICE_ROWS,
            }),
            name: name.to_string(),
            run: None,
            judged: Arc::new(AtomicUsize::new(0)),
            prescreen: Arc::new(OnceLock::new()),
            sessions: Arc::new(AtomicBool::new(true)),
        }
    }

    /// How many rows the table reader judged so far.
    #[cfg(test)]
    fn judged_rows(&self) -> usize {
        self.judged.load(Ordering::Relaxed)
    }

    /// Read at most `rows` rows at a time (to test slicing on small files).
    #[cfg(test)]
    fn with_slice_rows(mut self, rows: usize) -> ParquetBatchSource {
        if let Some(start) = &mut self.start {
            start.slice_rows = rows.max(1);
        }
        self
    }

    fn table_err(&self, e: impl std::fmt::Display) -> TraceError {
        table_err(&self.name, e)
    }

    /// Map the file, read the footer, plan the slices and start the workers.
    fn begin(&mut self, start: Start) -> Result<(), TraceError> {
        let (bytes, map) = match start.bytes {
            ParquetBytes::File(p) => {
                let io = |source| TraceError::Io {
                    file: self.name.clone(),
                    source,
                };
                let f = File::open(&p).map_err(io)?;
                let map = MappedFile::map(&f, &self.name).map_err(io)?;
                let map = Arc::new(map);
                (Buffer::from_owner(SharedMap(Arc::clone(&map))), Some(map))
            }
            ParquetBytes::Memory(b) => (Buffer::from_owner(b), None),
        };
        let mut input = Input {
            name: self.name.clone(),
            file: start.file,
            bytes,
            map,
            columns: Arc::new([]),
            ts_scale: None,
        };
        let plan = guard::catch(|| input.plan(start.slice_rows))
            .map_err(|m| self.table_err(guard::damaged("Parquet", &m)))?
            .map_err(|e| self.table_err(e))?;
        input.columns = Arc::clone(&plan.columns);
        input.ts_scale = plan.ts_scale;
        let workers = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
            .clamp(1, 4)
            .min(plan.slices.len().max(1));
        let shared = Arc::new(Shared {
            input,
            plan,
            gate: Mutex::new(Gate {
                claimed: 0,
                delivered: 0,
                stop: false,
            }),
            moved: Condvar::new(),
            window: workers + 2,
            judged: Arc::clone(&self.judged),
            prescreen: Arc::clone(&self.prescreen),
            sessions: Arc::clone(&self.sessions),
        });
        let (tx, rx) = channel();
        for k in 0..workers {
            let (shared, tx) = (Arc::clone(&shared), tx.clone());
            let names = LocalSymbols::new(Arc::clone(&start.symbols));
            std::thread::Builder::new()
                .name(format!("mcpsim-parquet-{k}"))
                .spawn(move || {
                    super::priority::defer_to_replay();
                    work(&shared, &tx, names)
                })
                .map_err(|e| self.table_err(format!("cannot start a reader thread: {e}")))?;
        }
        self.run = Some(Running {
            shared,
            rx,
            early: BTreeMap::new(),
            next: 0,
        });
        Ok(())
    }
}

fn table_err(name: &str, e: impl std::fmt::Display) -> TraceError {
    TraceError::Table {
        file: name.to_string(),
        reason: e.to_string(),
    }
}

impl BatchSource for ParquetBatchSource {
    fn prescreen(&mut self, work: &Arc<dyn Prescreen>) {
        let _ = self.prescreen.set(Arc::clone(work));
    }

    fn skip_sessions(&mut self) {
        self.sessions.store(false, Ordering::Relaxed);
    }

    fn next_batch(&mut self) -> Result<Option<CallBatch>, TraceError> {
        if let Some(start) = self.start.take() {
            self.begin(start)?;
        }
        let Some(run) = &mut self.run else {
            return Ok(None);
        };
        if run.next >= run.shared.plan.slices.len() {
            self.run = None;
            return Ok(None);
        }
        let item = loop {
            if let Some(item) = run.early.remove(&run.next) {
                break item;
            }
            match run.rx.recv() {
                Ok((i, item)) => {
                    run.early.insert(i, item);
                }
                Err(_) => {
                    self.run = None;
                    return Err(table_err(
                        &self.name,
                        "the reader thread stopped unexpectedly",
                    ));
                }
            }
        };
        run.next += 1;
        run.shared.deliver(run.next);
        match item {
            // A slice that reads no rows ends the file, as in the row reader.
            Ok(batch) if batch.is_empty() && batch.skipped.is_empty() => {
                self.run = None;
                Ok(None)
            }
            Ok(batch) => Ok(Some(batch)),
            Err(e) => {
                self.run = None;
                Err(e)
            }
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.shared.lock().stop = true;
        self.shared.moved.notify_all();
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Gate> {
        self.gate.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn deliver(&self, delivered: usize) {
        self.lock().delivered = delivered;
        self.moved.notify_all();
    }

    /// The next slice to read, waiting while the workers are far enough ahead; `None` when
    /// there is nothing left to do.
    fn claim(&self) -> Option<usize> {
        let mut g = self.lock();
        loop {
            if g.stop || g.claimed >= self.plan.slices.len() {
                return None;
            }
            if g.claimed < g.delivered + self.window {
                g.claimed += 1;
                return Some(g.claimed - 1);
            }
            g = self.moved.wait(g).unwrap_or_else(|e| e.into_inner());
        }
    }
}

/// A worker: read and convert slices until none is left or the reader is gone.
fn work(
    shared: &Shared,
    tx: &Sender<(usize, Result<CallBatch, TraceError>)>,
    mut names: LocalSymbols,
) {
    let mut memo = ViewMemo::default();
    let mut screen: Option<Box<dyn PrescreenRows>> = None;
    while let Some(i) = shared.claim() {
        let slice = &shared.plan.slices[i];
        // A panic in the decoder (a damaged file) must not leave the reader waiting for this
        // slice: it ends the read with an error for the file.
        let item = guard::catch(|| {
            convert_slice(
                &shared.input,
                slice,
                shared.plan.fast.as_ref(),
                if shared.sessions.load(Ordering::Relaxed) {
                    shared.plan.fast.as_ref()
                } else {
                    shared.plan.sessionless.as_ref()
                },
                &mut names,
                &mut memo,
                &shared.judged,
            )
        })
        .unwrap_or_else(|m| {
            memo = ViewMemo::default();
            Err(table_err(&shared.input.name, guard::damaged("Parquet", &m)))
        });
        // Screen a slice the replay is not waiting for: while the replay keeps up with the
        // readers, screening would only make it wait longer (it screens the rest itself).
        let ahead = i > shared.lock().delivered + 1;
        let item = match (item, shared.prescreen.get()) {
            (Ok(mut batch), Some(work)) if ahead => {
                let rows = screen.get_or_insert_with(|| work.start());
                guard::catch(|| batch.prescreen(work.width(), &mut **rows))
                    .map(|()| batch)
                    .map_err(|m| table_err(&shared.input.name, guard::damaged("Parquet", &m)))
            }
            (item, _) => item,
        };
        let failed = item.is_err();
        shared.input.release(slice);
        if tx.send((i, item)).is_err() || failed {
            return;
        }
    }
}

impl Input {
    /// Drop the mapped pages of `slice`'s row group once it is converted. Pages of a map stay
    /// in the resident set once touched, which would make the read of a large file look that
    /// large; the pages stay in the page cache, and a later read of the range (a record the
    /// report lists, or the next slice of a large row group) maps them again.
    fn release(&self, slice: &Slice) {
        if let Some(span) = &slice.span {
            self.release_range(span.clone());
        }
    }

    /// Drop the mapped pages of `span` (clamped to the file) from the resident set. Planning
    /// reads every page header through the file: those pages (and the neighbours the kernel
    /// maps with each) would otherwise stay until their row group is read, a resident set
    /// growing with the file.
    fn release_range(&self, span: Range<usize>) {
        #[cfg(unix)]
        if let Some(map) = &self.map {
            let end = span.end.min(map.len());
            if span.start < end {
                // SAFETY: the map is read-only and shared with nothing that writes; for such
                // a map of a file MADV_DONTNEED never changes what a later read sees.
                let _ = unsafe {
                    map.unchecked_advise_range(
                        memmap2::UncheckedAdvice::DontNeed,
                        span.start,
                        end - span.start,
                    )
                };
            }
        }
        #[cfg(not(unix))]
        let _ = span;
    }

    fn reader(&self) -> ParquetReader<Cursor<Buffer<u8>>> {
        ParquetReader::new(Cursor::new(self.bytes.clone()))
    }

    /// Rows of `slice` through polars: the columns `names`, or all of the table's.
    fn read(&self, slice: &Slice, names: Option<&[&str]>) -> PolarsResult<DataFrame> {
        let mut r = self.reader();
        r.set_metadata(Arc::clone(&slice.metadata));
        let names = match names {
            Some(n) => n.iter().map(|s| s.to_string()).collect(),
            None => self.columns.to_vec(),
        };
        r.with_columns(Some(names))
            .with_slice(Some((slice.offset, slice.len)))
            .read_parallel(ParallelStrategy::None)
            .finish()
    }

    /// Decode column `name` of a one-row-group slice as `field` (`None`: the column is not in
    /// the row group).
    fn decode(
        &self,
        slice: &Slice,
        name: &str,
        field: Field,
        inflater: &mut Inflater,
    ) -> PolarsResult<Option<Vec<Box<dyn Array>>>> {
        let Some(rg) = slice.metadata.row_groups.first() else {
            return Ok(None);
        };
        let Some(metas) = rg.columns_under_root_iter(name) else {
            return Ok(None);
        };
        let mut columns = Vec::new();
        let mut types = Vec::new();
        for meta in metas {
            let range = meta.byte_range();
            let (start, end) = (range.start as usize, range.end as usize);
            if start > end || end > self.bytes.len() {
                polars_bail!(ComputeError: "column {name} lies outside the file");
            }
            let chunk = self.bytes.clone().sliced(start..end);
            let size = usize::try_from(meta.uncompressed_size()).unwrap_or(0);
            let pages = match inflater.inflate(&chunk, meta.compression(), size) {
                Some(inflated) => {
                    let mut page_meta = PageMetaData::from(meta);
                    page_meta.compression = Compression::Uncompressed;
                    PageReader::new_with_page_meta(
                        Cursor::new(Buffer::from(inflated)),
                        page_meta,
                        Vec::new(),
                        usize::MAX,
                    )
                }
                None => PageReader::new(Cursor::new(chunk), meta, Vec::new(), usize::MAX),
            };
            columns.push(BasicDecompressor::new(pages, Vec::new()));
            types.push(&meta.descriptor().descriptor.primitive_type);
        }
        let rows = rg.num_rows();
        let filter = (slice.offset > 0 || slice.len < rows)
            .then(|| Filter::new_ranged(slice.offset, slice.offset + slice.len));
        let (arrays, _) = column_iter_to_arrays(columns, types, field, filter)?;
        Ok(Some(arrays))
    }

    /// Text column `name` of a one-row-group slice: dictionary indices when every page is
    /// dictionary-encoded, else string views.
    fn decode_text(
        &self,
        slice: &Slice,
        name: &str,
        field: &Field,
        inflater: &mut Inflater,
    ) -> PolarsResult<Text> {
        let dictionary = slice.metadata.row_groups.first().is_some_and(|rg| {
            rg.columns_under_root_iter(name)
                .is_some_and(|mut m| m.all(|c| c.dictionary_page_offset().is_some()))
        });
        if dictionary {
            let mut md = Metadata::new();
            md.insert(CATEGORICAL.into(), "".into());
            let as_keys = Field::new(
                field.name.clone(),
                ArrowDataType::Dictionary(
                    IntegerType::UInt32,
                    Box::new(ArrowDataType::Utf8View),
                    false,
                ),
                field.is_nullable,
            )
            .with_metadata(md);
            // Pages that fall back to plain encoding are refused: decode them as views.
            if let Ok(arrays) = self.decode(slice, name, as_keys, inflater) {
                return Ok(Text(arrays.unwrap_or_default()));
            }
        }
        Ok(Text(
            self.decode(slice, name, field.clone(), inflater)?
                .unwrap_or_default(),
        ))
    }

    /// The rows of `slice` as the table reader's batch.
    fn batch(&self, slice: &Slice) -> PolarsResult<Batch> {
        Ok(Batch::new(&self.read(slice, None)?)?.with_ts_scale(self.ts_scale))
    }

    /// Read the footer: slices by row group, and how the columns are typed. The column types
    /// and the sizes the footer and page headers give are checked before anything is decoded.
    fn plan(&self, slice_rows: usize) -> PolarsResult<Plan> {
        let Footer {
            metadata: md,
            columns,
            ts_scale,
        } = {
            // Row groups lie one after the other: drop everything up to the end of each once
            // walked (the kernel maps the pages around each one read, in large pieces).
            let released = std::cell::Cell::new(0);
            Footer::read(&self.bytes, &|span: Range<usize>| {
                if span.end > released.get() {
                    self.release_range(released.get()..span.end);
                    released.set(span.end);
                }
            })?
        };
        // Every slice's footer holds its one row group: cloned without the others, so that
        // planning stays linear in the number of row groups.
        let mut bare = (*md).clone();
        bare.row_groups = Vec::new();
        let mut slices = Vec::new();
        let mut first_row = 0;
        for rg in &md.row_groups {
            let rows = rg.num_rows();
            if rows == 0 {
                continue;
            }
            let mut one = bare.clone();
            one.row_groups = vec![rg.clone()];
            one.num_rows = rows;
            one.max_row_group_height = rows;
            let one = Arc::new(one);
            let span = rg
                .parquet_columns()
                .iter()
                .map(|c| c.byte_range())
                .map(|r| (r.start as usize, r.end as usize))
                .reduce(|(a, b), (c, d)| (a.min(c), b.max(d)))
                .map(|(a, b)| a..b);
            let mut done = 0;
            while done < rows {
                let len = (rows - done).min(slice_rows);
                slices.push(Slice {
                    metadata: Arc::clone(&one),
                    offset: done,
                    len,
                    first_row: first_row + done,
                    span: span.clone(),
                });
                done += len;
            }
            first_row += rows;
        }
        let arrow = infer_schema(&md)?;
        let mut r = self.reader();
        r.set_metadata(md);
        let empty = r
            .with_columns(Some(columns.to_vec()))
            .with_slice(Some((0, 0)))
            .finish()?;
        let fast = fast_columns(empty.schema(), &arrow, ts_scale).map(Arc::new);
        let sessionless = fast.as_deref().map(|f| {
            let mut f = f.clone();
            f.fields.remove("session");
            Arc::new(f)
        });
        Ok(Plan {
            slices,
            sessionless,
            fast,
            columns,
            ts_scale,
        })
    }
}

/// A file's footer, checked, as polars is to read it.
pub(crate) struct Footer {
    /// The footer, normalised (see [`normalise`]).
    pub(crate) metadata: Arc<FileMetadata>,
    /// The columns of the table the file has: polars is to read no other (it cannot represent
    /// every type another column may have).
    pub(crate) columns: Arc<[String]>,
    /// Nanoseconds per unit of a `ts` column typed as a timestamp, which polars reads as its
    /// integers ([`Batch::with_ts_scale`]).
    pub(crate) ts_scale: Option<i64>,
}

impl Footer {
    /// Read the footer of `bytes` (the whole file) and check it: its Thrift encoding first
    /// ([`check_thrift`]), then as [`Footer::check`] does, which hands `walked` the bytes of
    /// each row group whose page headers it has read.
    pub(crate) fn read(bytes: &[u8], walked: &dyn Fn(Range<usize>)) -> PolarsResult<Footer> {
        check_thrift(bytes)?;
        let md = ParquetReader::new(Cursor::new(bytes))
            .get_metadata()?
            .clone();
        Footer::check(&md, bytes, walked)
    }

    /// Check the column types of footer `md` and the sizes it and the page headers give (in
    /// `bytes`, the whole file) before anything is decoded; `walked` is handed the bytes of
    /// each row group whose page headers are read (a mapped file's reader drops their pages).
    pub(crate) fn check(
        md: &FileMetadata,
        bytes: &[u8],
        walked: &dyn Fn(Range<usize>),
    ) -> PolarsResult<Footer> {
        let md = normalise(md, false);
        let arrow = infer_schema(&md)?;
        let ts_scale = check_types(&md, &arrow)?;
        let columns: Arc<[String]> = arrow
            .iter_names()
            .filter(|n| COLUMNS.contains(&n.as_str()))
            .map(|n| n.to_string())
            .collect();
        check_sizes(&md, &columns, bytes, walked)?;
        Ok(Footer {
            metadata: Arc::new(normalise(&md, ts_scale.is_some())),
            columns,
            ts_scale,
        })
    }
}

/// Check that every column of the table has a type mcpsim reads (others are ignored); the
/// nanoseconds per unit of a `ts` typed as a timestamp. A column of another type is an error
/// naming it.
fn check_types(md: &FileMetadata, arrow: &ArrowSchema) -> PolarsResult<Option<i64>> {
    let mut ts_scale = None;
    for (name, field) in arrow.iter() {
        let name = name.as_str();
        if !COLUMNS.contains(&name) {
            continue;
        }
        let mut dtype = &field.dtype;
        if let ArrowDataType::Dictionary(_, values, _) = dtype {
            dtype = values.as_ref();
        }
        let text = matches!(
            dtype,
            ArrowDataType::Utf8
                | ArrowDataType::LargeUtf8
                | ArrowDataType::Utf8View
                | ArrowDataType::Null
        );
        let integer = matches!(
            dtype,
            ArrowDataType::Int8
                | ArrowDataType::Int16
                | ArrowDataType::Int32
                | ArrowDataType::Int64
                | ArrowDataType::UInt8
                | ArrowDataType::UInt16
                | ArrowDataType::UInt32
                | ArrowDataType::UInt64
        );
        let float = matches!(dtype, ArrowDataType::Float32 | ArrowDataType::Float64);
        let (ok, expected) = match name {
            "ts" => match dtype {
                ArrowDataType::Timestamp(unit, _) => {
                    let int96 = md.schema().columns().iter().any(|c| {
                        c.path_in_schema.first().is_some_and(|p| p.as_str() == "ts")
                            && c.descriptor.primitive_type.physical_type
                                == polars_parquet::parquet::schema::types::PhysicalType::Int96
                    });
                    if int96 {
                        polars_bail!(ComputeError: "column `ts`: INT96 timestamps are not read; write `ts` as an INT64 timestamp");
                    }
                    ts_scale = Some(match unit {
                        polars_arrow::datatypes::TimeUnit::Second => 1_000_000_000,
                        polars_arrow::datatypes::TimeUnit::Millisecond => 1_000_000,
                        polars_arrow::datatypes::TimeUnit::Microsecond => 1_000,
                        polars_arrow::datatypes::TimeUnit::Nanosecond => 1,
                    });
                    (true, "")
                }
                _ => (
                    text || integer || float,
                    "a timestamp, an integer epoch or RFC 3339 text",
                ),
            },
            "latency_ms" => (text || integer || float, "a number"),
            "id" => (text || integer, "text or an integer"),
            _ => (text, "text"),
        };
        if !ok {
            polars_bail!(ComputeError: "column `{name}` has type {}, expected {expected}", type_name(dtype));
        }
    }
    Ok(ts_scale)
}

/// A column type as a user would name it.
fn type_name(dtype: &ArrowDataType) -> String {
    match dtype {
        ArrowDataType::Struct(_) => "struct".to_string(),
        ArrowDataType::List(_) | ArrowDataType::LargeList(_) | ArrowDataType::FixedSizeList(..) => {
            "list".to_string()
        }
        ArrowDataType::Map(..) => "map".to_string(),
        ArrowDataType::Decimal(p, s)
        | ArrowDataType::Decimal32(p, s)
        | ArrowDataType::Decimal64(p, s) => {
            format!("decimal({p}, {s})")
        }
        ArrowDataType::Decimal256(p, s) => format!("decimal({p}, {s})"),
        ArrowDataType::Int8
        | ArrowDataType::Int16
        | ArrowDataType::Int32
        | ArrowDataType::Int64 => format!("{dtype:?}").to_lowercase(),
        ArrowDataType::UInt8
        | ArrowDataType::UInt16
        | ArrowDataType::UInt32
        | ArrowDataType::UInt64
        | ArrowDataType::Float16
        | ArrowDataType::Float32
        | ArrowDataType::Float64
        | ArrowDataType::Boolean
        | ArrowDataType::Binary
        | ArrowDataType::LargeBinary
        | ArrowDataType::BinaryView
        | ArrowDataType::Date32
        | ArrowDataType::Date64 => format!("{dtype:?}").to_lowercase(),
        other => format!("{other:?}"),
    }
}

/// Check the Thrift encoding of a file's footer before polars reads it, as polars reads it:
/// polars' Thrift reader takes a known field as the type the Parquet format gives it, whatever
/// type the field's header declares, and sizes each list it reads by the count the list
/// declares. So every known field (of the structs of `FileMetaData`, as typed in
/// [`field_type`]) must declare its own type, every list and map must declare no more elements
/// than bytes are left (each element takes at least one), and nesting stays under 64 levels.
/// Found by fuzzing: a footer declaring billions of boolean list elements had polars count
/// through them for minutes, and a field declared as another type than the one polars reads
/// had it ask for 136 GB. A file too short to have a footer is left to polars to refuse.
fn check_thrift(bytes: &[u8]) -> PolarsResult<()> {
    let n = bytes.len();
    if n < 12 || &bytes[n - 4..] != b"PAR1" {
        return Ok(());
    }
    let len = u32::from_le_bytes([bytes[n - 8], bytes[n - 7], bytes[n - 6], bytes[n - 5]]) as usize;
    let Some(start) = (n - 8).checked_sub(len) else {
        return Ok(());
    };
    let mut r = Thrift {
        b: &bytes[start..n - 8],
        i: 0,
    };
    r.fields(Some(St::FileMetaData), 0).map_err(|what| {
        polars_err!(ComputeError: "damaged Parquet file: the footer at byte {start}: {what}")
    })
}

/// The structs of a Parquet footer whose fields polars reads by their number.
#[derive(Debug, Clone, Copy, PartialEq)]
enum St {
    FileMetaData,
    SchemaElement,
    RowGroup,
    ColumnChunk,
    ColumnMetaData,
    KeyValue,
    SortingColumn,
    Statistics,
    PageEncodingStats,
    SizeStatistics,
    GeospatialStatistics,
    BoundingBox,
    ColumnOrder,
    LogicalType,
    Decimal,
    TimeOrTimestamp,
    TimeUnit,
    IntType,
    Geography,
    Geometry,
    /// A struct with no fields (`TypeDefinedOrder`, `StringType`, a time unit…).
    Empty,
}

/// The type a known field has in the Parquet format: a compact-protocol type code (1 for a
/// boolean, 3 byte, 4 i16, 5 i32, 6 i64, 7 double, 8 binary, 9 list, 12 struct), the struct it
/// is (for 12), and for a list the type code and struct of its elements.
type FieldType = (u8, Option<St>, Option<(u8, Option<St>)>);

fn field_type(st: St, id: i16) -> Option<FieldType> {
    use St::*;
    let plain = |t: u8| Some((t, None, None));
    let strukt = |s: St| Some((12, Some(s), None));
    let list = |t: u8, s: Option<St>| Some((9, None, Some((t, s))));
    match (st, id) {
        (FileMetaData, 1) => plain(5),
        (FileMetaData, 2) => list(12, Some(SchemaElement)),
        (FileMetaData, 3) => plain(6),
        (FileMetaData, 4) => list(12, Some(RowGroup)),
        (FileMetaData, 5) => list(12, Some(KeyValue)),
        (FileMetaData, 6) => plain(8),
        (FileMetaData, 7) => list(12, Some(ColumnOrder)),
        (SchemaElement, 1..=3 | 5..=9) => plain(5),
        (SchemaElement, 4) => plain(8),
        (SchemaElement, 10) => strukt(LogicalType),
        (RowGroup, 1) => list(12, Some(ColumnChunk)),
        (RowGroup, 2 | 3 | 5 | 6) => plain(6),
        (RowGroup, 4) => list(12, Some(SortingColumn)),
        (RowGroup, 7) => plain(4),
        (ColumnChunk, 1 | 9) => plain(8),
        (ColumnChunk, 2 | 4 | 6) => plain(6),
        (ColumnChunk, 3) => strukt(ColumnMetaData),
        (ColumnChunk, 5 | 7) => plain(5),
        (ColumnMetaData, 1 | 4 | 15) => plain(5),
        (ColumnMetaData, 2) => list(5, None),
        (ColumnMetaData, 3) => list(8, None),
        (ColumnMetaData, 5..=7 | 9..=11 | 14) => plain(6),
        (ColumnMetaData, 8) => list(12, Some(KeyValue)),
        (ColumnMetaData, 12) => strukt(Statistics),
        (ColumnMetaData, 13) => list(12, Some(PageEncodingStats)),
        (ColumnMetaData, 16) => strukt(SizeStatistics),
        (ColumnMetaData, 17) => strukt(GeospatialStatistics),
        (KeyValue, 1 | 2) => plain(8),
        (SortingColumn, 1) => plain(5),
        (SortingColumn, 2 | 3) => plain(1),
        (Statistics, 1 | 2 | 5 | 6) => plain(8),
        (Statistics, 3 | 4) => plain(6),
        (Statistics, 7 | 8) => plain(1),
        (PageEncodingStats, 1..=3) => plain(5),
        (SizeStatistics, 1) => plain(6),
        (SizeStatistics, 2 | 3) => list(6, None),
        (GeospatialStatistics, 1) => strukt(BoundingBox),
        (GeospatialStatistics, 2) => list(5, None),
        (BoundingBox, 1..=8) => plain(7),
        (ColumnOrder, 1) => strukt(Empty),
        (LogicalType, 5) => strukt(Decimal),
        (LogicalType, 7 | 8) => strukt(TimeOrTimestamp),
        (LogicalType, 10) => strukt(IntType),
        (LogicalType, 17) => strukt(Geometry),
        (LogicalType, 18) => strukt(Geography),
        (LogicalType, 1..=4 | 6 | 9 | 11..=16) => strukt(Empty),
        (TimeUnit, 1..=3) => strukt(Empty),
        (Decimal, 1 | 2) => plain(5),
        (TimeOrTimestamp, 1) => plain(1),
        (TimeOrTimestamp, 2) => strukt(TimeUnit),
        (IntType, 1) => plain(3),
        (IntType, 2) => plain(1),
        (Geometry, 1) => plain(8),
        (Geography, 1) => plain(8),
        (Geography, 2) => plain(5),
        // Unknown fields (of empty structs too): skipped by the type their header declares, as
        // polars skips them.
        _ => None,
    }
}

/// A reader of Thrift's compact protocol that only checks as it skips.
struct Thrift<'a> {
    b: &'a [u8],
    i: usize,
}

impl Thrift<'_> {
    fn byte(&mut self) -> Result<u8, String> {
        let b = *self.b.get(self.i).ok_or("it ends early")?;
        self.i += 1;
        Ok(b)
    }

    fn varint(&mut self) -> Result<u64, String> {
        let mut v = 0u64;
        for shift in (0..70).step_by(7) {
            let b = self.byte()?;
            v |= u64::from(b & 0x7f).checked_shl(shift).unwrap_or(0);
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err("a number longer than 10 bytes".into())
    }

    fn skip(&mut self, n: u64) -> Result<(), String> {
        let left = (self.b.len() - self.i) as u64;
        if n > left {
            return Err(format!("{n} bytes declared, {left} left"));
        }
        self.i += n as usize;
        Ok(())
    }

    /// Declared `count` elements of at least `each` bytes must fit in what is left.
    fn fits(&self, count: u64, each: u64, what: &str) -> Result<(), String> {
        let left = (self.b.len() - self.i) as u64;
        if count.saturating_mul(each) > left {
            return Err(format!("a {what} of {count} elements in {left} bytes"));
        }
        Ok(())
    }

    /// Skip a value of compact type `ty`, a struct of kind `st` when known (a boolean in a list
    /// or map takes a byte; a boolean field's value is in its header, see `fields`).
    fn value(
        &mut self,
        ty: u8,
        st: Option<St>,
        elem: Option<(u8, Option<St>)>,
        depth: usize,
    ) -> Result<(), String> {
        if depth > 64 {
            return Err("nested deeper than 64 levels".into());
        }
        match ty {
            1..=3 => self.skip(1),
            4..=6 => self.varint().map(drop),
            7 => self.skip(8),
            8 => {
                let len = self.varint()?;
                self.skip(len)
            }
            9 | 10 => {
                let at = self.i;
                let head = self.byte()?;
                let count = match head >> 4 {
                    15 => self.varint()?,
                    c => u64::from(c),
                };
                let declared = head & 0x0f;
                let (ty, st) = match elem {
                    // An empty list may leave its type out (fastparquet writes a bare 0).
                    Some((want, st)) if count > 0 && !same_type(declared, want) => {
                        return Err(format!(
                            "a list at byte {at} declares elements of type {declared}, the format's are of type {want}{}",
                            st.map(|s| format!(" ({s:?})")).unwrap_or_default()
                        ));
                    }
                    Some((want, st)) => (want, st),
                    None => (declared, None),
                };
                self.fits(count, 1, "list")?;
                for _ in 0..count {
                    self.value(ty, st, None, depth + 1)?;
                }
                Ok(())
            }
            11 => {
                let count = self.varint()?;
                if count == 0 {
                    return Ok(());
                }
                let kinds = self.byte()?;
                self.fits(count, 2, "map")?;
                for _ in 0..count {
                    self.value(kinds >> 4, None, None, depth + 1)?;
                    self.value(kinds & 0x0f, None, None, depth + 1)?;
                }
                Ok(())
            }
            12 => self.fields(st, depth),
            t => Err(format!("unknown value type {t}")),
        }
    }

    /// Skip a struct's fields up to its stop byte, each known field checked against its type.
    fn fields(&mut self, st: Option<St>, depth: usize) -> Result<(), String> {
        let mut id: i16 = 0;
        loop {
            let at = self.i;
            let head = self.byte()?;
            if head == 0 {
                return Ok(());
            }
            id = match head >> 4 {
                0 => {
                    let z = self.varint()?;
                    ((z >> 1) as i64 ^ -((z & 1) as i64)) as i16
                }
                delta => id.wrapping_add(i16::from(delta)),
            };
            let declared = head & 0x0f;
            let known = st.and_then(|s| field_type(s, id).map(|t| (s, t)));
            match known {
                Some((s, (want, _, _))) if !same_type(declared, want) => {
                    return Err(format!(
                        "field {id} of {s:?} at byte {at} declares type {declared}, the format's is type {want}"
                    ));
                }
                Some((_, (_, st, elem))) => match declared {
                    1 | 2 => {}
                    ty => self.value(ty, st, elem, depth + 1)?,
                },
                None => match declared {
                    1 | 2 => {}
                    ty => self.value(ty, None, None, depth + 1)?,
                },
            }
        }
    }
}

/// Whether a declared compact type is `want` (a boolean is declared as 1 or 2).
fn same_type(declared: u8, want: u8) -> bool {
    declared == want || (want == 1 && declared == 2)
}

/// Check the sizes the footer and the page headers of the table's columns give, before any
/// is trusted for an allocation: a damaged size (a negative count, a page past its chunk)
/// would otherwise have the decoder ask for exabytes and abort the process.
fn check_sizes(
    md: &FileMetadata,
    columns: &[String],
    bytes: &[u8],
    walked: &dyn Fn(Range<usize>),
) -> PolarsResult<()> {
    use polars_parquet_format::PageHeader;
    use polars_parquet_format::thrift::protocol::TCompactInputProtocol;
    let file_len = bytes.len() as u64;
    let in_groups = (md.row_groups.iter()).try_fold(0usize, |n, rg| n.checked_add(rg.num_rows()));
    if in_groups != Some(md.num_rows) {
        let in_groups = in_groups.map_or("more".to_owned(), |n| n.to_string());
        polars_bail!(ComputeError: "damaged Parquet file: the footer gives {} rows, its row groups {in_groups}", md.num_rows);
    }
    for (g, rg) in md.row_groups.iter().enumerate() {
        let rows = rg.num_rows() as u64;
        let group = g + 1;
        // Rows are only as many as the pages of a column read hold: a count no column backs
        // would have every row read as a call with no fields, billions of them from a few bytes.
        let mut backed = false;
        // The bytes of the group's column chunks walked.
        let mut span = None;
        for name in columns {
            let Some(metas) = rg.columns_under_root_iter(name) else {
                continue;
            };
            for meta in metas {
                backed = true;
                let bad = |what: String| -> PolarsError {
                    polars_err!(ComputeError: "damaged Parquet file: row group {group}, column `{name}`: {what}")
                };
                // Only flat columns are read: each row is one value.
                let flat = meta.descriptor().descriptor.max_rep_level == 0;
                if !flat {
                    return Err(bad("a nested column where a plain one was expected".into()));
                }
                let start = meta
                    .dictionary_page_offset()
                    .unwrap_or(meta.data_page_offset());
                let size = meta.compressed_size();
                let (Ok(start), Ok(size)) = (u64::try_from(start), u64::try_from(size)) else {
                    return Err(bad(format!("negative offset {start} or size {size}")));
                };
                let Some(end) = start.checked_add(size).filter(|&e| e <= file_len) else {
                    return Err(bad(format!(
                        "{size} bytes at offset {start} lie outside the file ({file_len} bytes)"
                    )));
                };
                let count = |n: i64, what: &str| -> PolarsResult<u64> {
                    u64::try_from(n)
                        .ok()
                        .filter(|&n| n <= rows)
                        .ok_or_else(|| bad(format!("{n} {what} in a row group of {rows} rows")))
                };
                count(meta.num_values(), "values")?;
                // The page headers, one after the other through the chunk: the sizes and
                // counts the decoder allocates by.
                let (mut pos, end) = (start as usize, end as usize);
                let mut values = 0u64;
                while pos < end && values < rows {
                    let mut cursor = Cursor::new(&bytes[pos..end]);
                    let header = PageHeader::read_from_in_protocol(
                        &mut TCompactInputProtocol::new(&mut cursor, end - pos),
                    )
                    .map_err(|e| bad(format!("unreadable page header at offset {pos}: {e}")))?;
                    let at = format!("the page at offset {pos}");
                    let header_len = cursor.position() as usize;
                    let (Ok(compressed), Ok(_)) = (
                        usize::try_from(header.compressed_page_size),
                        usize::try_from(header.uncompressed_page_size),
                    ) else {
                        return Err(bad(format!("{at} has a negative size")));
                    };
                    let next = (pos + header_len)
                        .checked_add(compressed)
                        .filter(|&n| n <= end)
                        .ok_or_else(|| bad(format!("{at} runs past its column chunk")))?;
                    if let Some(h) = &header.data_page_header {
                        values += count(h.num_values.into(), &format!("values in {at}"))?;
                    }
                    if let Some(h) = &header.data_page_header_v2 {
                        values += count(h.num_values.into(), &format!("values in {at}"))?;
                        count(h.num_rows.into(), &format!("rows in {at}"))?;
                        count(h.num_nulls.into(), &format!("nulls in {at}"))?;
                        let levels = i64::from(h.definition_levels_byte_length)
                            + i64::from(h.repetition_levels_byte_length);
                        if h.definition_levels_byte_length < 0
                            || h.repetition_levels_byte_length < 0
                            || levels > i64::from(header.compressed_page_size)
                        {
                            return Err(bad(format!("{at} has bad level sizes")));
                        }
                    }
                    if let Some(h) = &header.dictionary_page_header {
                        // A dictionary value takes at least one byte (a bit for booleans).
                        let most = 8 * i64::from(header.uncompressed_page_size) + 8;
                        if h.num_values < 0 || i64::from(h.num_values) > most {
                            return Err(bad(format!(
                                "{at}: {} dictionary values in {} bytes",
                                h.num_values, header.uncompressed_page_size
                            )));
                        }
                    }
                    if values > rows {
                        return Err(bad(format!(
                            "its pages hold more than the row group's {rows} rows"
                        )));
                    }
                    pos = next;
                }
                span = Some(span.map_or(start as usize..end, |s: Range<usize>| {
                    s.start.min(start as usize)..s.end.max(end)
                }));
                if values < rows {
                    return Err(bad(format!(
                        "its pages hold {values} values, the row group {rows} rows"
                    )));
                }
            }
        }
        if let Some(span) = span {
            walked(span);
        }
        if rows > 0 && !backed {
            polars_bail!(ComputeError: "row group {group} has {rows} rows but none of the columns of a trace ({})", COLUMNS.join(", "));
        }
    }
    Ok(())
}

/// `md` as polars is to read it: without the stored Arrow schema (each column's name and type
/// follow from the Parquet schema, which is what the data pages were written by; polars reads
/// text as string views whatever the writer used), and with a timestamp `ts` (`ts_as_int`)
/// typed as its Int64 integers, which every polars build can read (the scale was taken from
/// the type before).
fn normalise(md: &FileMetadata, ts_as_int: bool) -> FileMetadata {
    let mut md = md.clone();
    md.key_value_metadata = None;
    if ts_as_int {
        use polars_parquet::parquet::metadata::SchemaDescriptor;
        use polars_parquet::parquet::schema::types::ParquetType;
        let fields = md
            .schema_descr
            .fields()
            .iter()
            .map(|f| match f {
                ParquetType::PrimitiveType(p) if f.name() == "ts" => {
                    let mut p = p.clone();
                    p.logical_type = None;
                    p.converted_type = None;
                    ParquetType::PrimitiveType(p)
                }
                other => other.clone(),
            })
            .collect();
        md.schema_descr = SchemaDescriptor::new(md.schema_descr.name().into(), fields);
    }
    md
}

/// The field metadata that has polars decode a dictionary-encoded column as indices.
const CATEGORICAL: &str = "_PL_CATEGORICAL2";

/// The columns a fast read takes, when every column of the table has a type whose rows the
/// column checks can judge (others are read by the table reader throughout).
fn fast_columns(
    schema: &Schema,
    arrow: &ArrowSchema,
    ts_scale: Option<i64>,
) -> Option<FastColumns> {
    let direct =
        |name: &str, dtype: ArrowDataType| arrow.get(name).is_some_and(|f| f.dtype == dtype);
    let ts = match schema.get("ts") {
        None => None,
        Some(DataType::Int64) if direct("ts", ArrowDataType::Int64) => Some(match ts_scale {
            Some(scale) => TsKind::Scaled(scale),
            None => TsKind::Int64,
        }),
        Some(dt) if dt.is_integer() && ts_scale.is_some() => return None,
        Some(dt) if dt.is_integer() => Some(TsKind::Epoch),
        Some(DataType::String) if direct("ts", ArrowDataType::Utf8View) => Some(TsKind::Text),
        Some(_) => return None,
    };
    let mut fields = HashMap::default();
    if let (Some(TsKind::Int64 | TsKind::Scaled(_) | TsKind::Text), Some(field)) =
        (ts, arrow.get("ts"))
    {
        fields.insert("ts", field.clone());
    }
    for (name, needed) in TEXT_COLUMNS {
        match schema.get(name) {
            None => {}
            Some(DataType::String) if direct(name, ArrowDataType::Utf8View) && needed => {
                fields.insert(name, arrow.get(name)?.clone());
            }
            Some(DataType::String) if direct(name, ArrowDataType::Utf8View) => {}
            Some(_) => return None,
        }
    }
    let latency_text = match schema.get("latency_ms") {
        None => false,
        Some(dt) if dt.is_primitive_numeric() => false,
        Some(DataType::String) if direct("latency_ms", ArrowDataType::Utf8View) => {
            fields.insert("latency_ms", arrow.get("latency_ms")?.clone());
            true
        }
        Some(_) => return None,
    };
    Some(FastColumns {
        ts,
        fields,
        latency_text,
    })
}

/// Marks a row the column checks cannot vouch for.
const UNSURE: u32 = u32::MAX - 1;

/// Marks a row without a server name, until the stand-in name is interned.
const NO_SERVER: u32 = u32::MAX - 3;

/// Per-row results of the column checks of one slice.
struct Checked {
    ts: Vec<Nanos>,
    server: Vec<u32>,
    grant: Vec<u32>,
    session: Sessions,
    tool: Vec<u32>,
    upstream: Vec<Option<Upstream>>,
    recorded: Vec<Option<RecordedDecision>>,
    /// Rows to judge with the table reader.
    unsure: Vec<bool>,
    /// The argument columns, for [`BatchRows::args`].
    args: Text,
    arg_keys: Text,
}

/// Read and convert one slice.
fn convert_slice(
    input: &Input,
    slice: &Slice,
    fast: Option<&Arc<FastColumns>>,
    checks: Option<&Arc<FastColumns>>,
    names: &mut LocalSymbols,
    memo: &mut ViewMemo,
    judged_rows: &AtomicUsize,
) -> Result<CallBatch, TraceError> {
    let err = |e: PolarsError| table_err(&input.name, e);
    // Columns that fail to decode here are left to polars' reader of all columns, which then
    // fails (or not) exactly as the row reader does.
    let checked = match checks {
        Some(cols) => check_columns(input, slice, cols, names, memo)
            .ok()
            .flatten(),
        _ => None,
    };
    // Rows the checks could not vouch for are judged by the table reader, on all columns.
    let full = match &checked {
        Some(c) if !c.unsure.iter().any(|&u| u) => None,
        _ => Some(input.batch(slice).map_err(err)?),
    };
    let line = |i: usize| (slice.first_row + i + 1) as u64;
    let mut cols = Columns::default();
    let mut skipped = Vec::new();
    let mut judged = HashMap::default();
    let mut srow = None;
    let (mut args, mut arg_keys) = (Text::default(), Text::default());
    match (checked, full) {
        (Some(c), None) => {
            // Every row vouched for: the checked columns are the batch.
            cols = Columns {
                line: (0..c.ts.len()).map(line).collect(),
                ts: c.ts,
                server: c.server,
                grant: c.grant,
                session: c.session,
                tool: c.tool,
                upstream: c.upstream,
                recorded: c.recorded,
            };
            (args, arg_keys) = (c.args, c.arg_keys);
        }
        (checked, Some(full)) => {
            // Checks of another number of rows than polars reads are no use.
            let checked = checked.filter(|c| c.unsure.len() == full.height());
            let mut rows = Vec::with_capacity(full.height());
            let mut interner = Interner::default();
            for i in 0..full.height() {
                match checked.as_ref().filter(|c| !c.unsure[i]) {
                    Some(c) => {
                        let ids = [c.server[i], c.grant[i], c.tool[i]];
                        let session = c.session.get(i);
                        cols.push(c.ts[i], line(i), ids, session, c.upstream[i], c.recorded[i]);
                    }
                    None => {
                        judged_rows.fetch_add(1, Ordering::Relaxed);
                        let origin = Origin {
                            file: input.file,
                            line: line(i),
                        };
                        match full.record(i, origin, &mut interner) {
                            Err(e) => {
                                skipped.push((line(i), e));
                                continue;
                            }
                            Ok(rec) => {
                                cols.push_record(&rec, line(i), names, true);
                                judged.insert(rows.len(), rec);
                            }
                        }
                    }
                }
                rows.push(i as u32);
            }
            if let Some(c) = checked {
                (args, arg_keys) = (c.args, c.arg_keys);
            }
            srow = Some((rows, full));
        }
        (None, None) => {}
    }
    let (srow, full) = match srow {
        Some((rows, full)) => (Some(rows), std::cell::OnceCell::from(Some(full))),
        None => (None, std::cell::OnceCell::new()),
    };
    let rows = Rows {
        input: input.clone(),
        slice: slice.clone(),
        fast: fast.cloned(),
        symbols: Arc::clone(names.shared()),
        srow,
        args,
        arg_keys,
        judged,
        full,
        latency: std::cell::OnceCell::new(),
    };
    // A failed call's reply time is asked for by the replay: its latency column is decoded
    // here, on the reader's thread.
    if cols
        .upstream
        .iter()
        .any(|u| matches!(u, Some(Upstream::Error | Upstream::ToolError)))
    {
        rows.latency_column();
    }
    Ok(cols.into_batch(input.file, skipped, Vec::new(), Box::new(rows)))
}

/// Decode the slice's columns and run the column checks; `None` when the decoded columns do
/// not line up (the table reader then judges every row).
fn check_columns(
    input: &Input,
    slice: &Slice,
    cols: &FastColumns,
    names: &mut LocalSymbols,
    memo: &mut ViewMemo,
) -> PolarsResult<Option<Checked>> {
    let height = slice.len;
    let text = |name: &str, inflater: &mut Inflater| -> PolarsResult<Text> {
        match cols.fields.get(name) {
            Some(field) => input.decode_text(slice, name, field, inflater),
            None => Ok(Text::default()),
        }
    };
    let mut unsure = vec![false; height];
    let mut ts = Vec::with_capacity(height);
    match cols.ts {
        None => {
            ts.resize(height, 0);
            unsure.fill(true);
        }
        Some(kind @ (TsKind::Int64 | TsKind::Scaled(_))) => {
            let Some(field) = cols.fields.get("ts") else {
                return Ok(None);
            };
            for arr in input
                .decode(slice, "ts", field.clone(), &mut memo.inflater)?
                .unwrap_or_default()
            {
                let Some(arr) = arr.as_any().downcast_ref::<PrimitiveArray<i64>>() else {
                    return Ok(None);
                };
                check_int_ts(arr, kind, &mut ts, &mut unsure);
            }
        }
        Some(TsKind::Text) => {
            let Some(field) = cols.fields.get("ts") else {
                return Ok(None);
            };
            let col = input.decode_text(slice, "ts", field, &mut memo.inflater)?;
            let Some(ok) = col.for_each(height, |s| {
                let t = s.and_then(|s| parse_ts_str(s).ok());
                ts.push(t.unwrap_or(0));
                t.map_or(UNSURE, |_| 0)
            }) else {
                return Ok(None);
            };
            mark(&ok, &mut unsure);
        }
        Some(TsKind::Epoch) => {
            let df = input.read(slice, Some(&["ts"]))?;
            let c = df.column("ts")?.cast(&DataType::Int64)?;
            for arr in c.i64()?.downcast_iter() {
                check_int_ts(arr, TsKind::Epoch, &mut ts, &mut unsure);
            }
        }
    }
    if ts.len() != height {
        return Ok(None);
    }
    let Some(mut server) = text("server", &mut memo.inflater)?.ids(height, NO_SERVER, names, memo)
    else {
        return Ok(None);
    };
    // Interned only when a row has no server, as the table reader does.
    if server.contains(&NO_SERVER) {
        let unknown = names.intern(UNKNOWN_SERVER);
        for s in server.iter_mut().filter(|s| **s == NO_SERVER) {
            *s = unknown;
        }
    }
    let Some(grant) = text("grant", &mut memo.inflater)?.ids(height, NO_SYM, names, memo) else {
        return Ok(None);
    };
    let Some(session) = text("session", &mut memo.inflater)?.sessions(height) else {
        return Ok(None);
    };
    let Some(tool) = text("tool", &mut memo.inflater)?.nonempty_ids(height, UNSURE, names, memo)
    else {
        return Ok(None);
    };
    mark(&tool, &mut unsure);
    let Some(upstream) = text("upstream", &mut memo.inflater)?
        .codes(height, memo, |s| encode(Upstream::parse(s), &UPSTREAMS))
    else {
        return Ok(None);
    };
    mark(&upstream, &mut unsure);
    let Some(recorded) = text("recorded_decision", &mut memo.inflater)?.codes(height, memo, |s| {
        encode(RecordedDecision::parse(s), &DECISIONS)
    }) else {
        return Ok(None);
    };
    mark(&recorded, &mut unsure);
    let args = text("args", &mut memo.inflater)?;
    let arg_keys = text("arg_keys", &mut memo.inflater)?;
    // Usually every argument text of the slice is a plain object: the dictionary says so
    // without a pass over the rows. Row by row only when it does not, or when argument keys
    // count for rows without argument text.
    let all_objects = arg_keys.0.is_empty()
        && args.all_pass(height, |s| object_certainly_parses(s.as_bytes())) == Some(true);
    let args_ok = if all_objects {
        Vec::new()
    } else {
        let Some(codes) = args.codes(height, memo, |s| {
            if object_certainly_parses(s.as_bytes()) {
                1
            } else {
                UNSURE
            }
        }) else {
            return Ok(None);
        };
        codes
    };
    mark(&args_ok, &mut unsure);
    if !arg_keys.0.is_empty() {
        let Some(keys_ok) = arg_keys.codes(height, memo, |s| {
            if serde_json::from_str::<Vec<String>>(s).is_ok() {
                1
            } else {
                UNSURE
            }
        }) else {
            return Ok(None);
        };
        // Keys count only where there is no argument text.
        for ((u, a), k) in unsure.iter_mut().zip(&args_ok).zip(&keys_ok) {
            *u |= *a == 0 && *k == UNSURE;
        }
    }
    if cols.latency_text {
        let Some(latency_ok) = text("latency_ms", &mut memo.inflater)?.codes(height, memo, |s| {
            if s.trim().parse::<f64>().is_ok() {
                0
            } else {
                UNSURE
            }
        }) else {
            return Ok(None);
        };
        mark(&latency_ok, &mut unsure);
    }
    Ok(Some(Checked {
        ts,
        server,
        grant,
        session,
        tool,
        upstream: decode(&upstream, &UPSTREAMS),
        recorded: decode(&recorded, &DECISIONS),
        unsure,
        args,
        arg_keys,
    }))
}

const UPSTREAMS: [Upstream; 3] = [Upstream::Ok, Upstream::Error, Upstream::ToolError];
const DECISIONS: [RecordedDecision; 4] = [
    RecordedDecision::Allow,
    RecordedDecision::Deny,
    RecordedDecision::Throttle,
    RecordedDecision::Approval,
];

/// The code of a parsed value: its place in `all` from 1 (0 is an empty cell), or [`UNSURE`].
fn encode<T: PartialEq>(v: Option<T>, all: &[T]) -> u32 {
    v.and_then(|v| all.iter().position(|a| *a == v))
        .map_or(UNSURE, |i| i as u32 + 1)
}

fn decode<T: Copy>(codes: &[u32], all: &[T]) -> Vec<Option<T>> {
    codes
        .iter()
        .map(|&c| {
            (c as usize)
                .checked_sub(1)
                .and_then(|i| all.get(i))
                .copied()
        })
        .collect()
}

fn mark(codes: &[u32], unsure: &mut [bool]) {
    for (u, &c) in unsure.iter_mut().zip(codes) {
        *u |= c == UNSURE;
    }
}

fn check_int_ts(
    arr: &PrimitiveArray<i64>,
    kind: TsKind,
    out: &mut Vec<Nanos>,
    unsure: &mut [bool],
) {
    let validity = arr.validity().filter(|b| b.unset_bits() > 0);
    let values = arr.values().as_slice();
    // Nanoseconds (a timestamp column's usual unit, and the magnitude of every present-day
    // instant) need no conversion: the usual column is copied as it is.
    let nanos = match kind {
        TsKind::Scaled(s) => s == 1,
        _ => values.iter().all(|&v| (v as f64).abs() >= 1e17),
    };
    if validity.is_none() && nanos {
        out.extend_from_slice(values);
        return;
    }
    for (k, &v) in values.iter().enumerate() {
        let i = out.len();
        let ts = match kind {
            _ if validity.is_some_and(|b| !b.get_bit(k)) => None,
            TsKind::Scaled(s) => v.checked_mul(s),
            _ if (v as f64).abs() >= 1e17 => Some(v),
            _ => parse_ts_value(&Value::from(v)).ok(),
        };
        out.push(ts.unwrap_or(0));
        if let Some(u) = unsure.get_mut(i) {
            *u |= ts.is_none();
        }
    }
}

/// A decoded text column of one slice: chunks of dictionary indices
/// (`DictionaryArray<u32>`) or of string views (`Utf8ViewArray`); no chunks when the column is
/// absent.
#[derive(Default)]
struct Text(Vec<Box<dyn Array>>);

/// A code still to be computed.
const PENDING: u32 = u32::MAX - 2;

/// Per-worker scratch space of the column passes.
#[derive(Default)]
struct ViewMemo {
    /// Code by string view, for chunks of views.
    map: HashMap<u128, u32>,
    /// Code by dictionary index, for chunks of indices.
    table: Vec<u32>,
    /// The worker's zstd context.
    inflater: Inflater,
}

impl Text {
    /// Bytes of the column's text (a dictionary's values once).
    fn bytes(&self) -> usize {
        (self.0.iter())
            .map(|chunk| {
                let any = chunk.as_any();
                let text = match any.downcast_ref::<DictionaryArray<u32>>() {
                    Some(arr) => arr.values().as_any().downcast_ref::<Utf8ViewArray>(),
                    None => any.downcast_ref::<Utf8ViewArray>(),
                };
                text.map_or(0, Utf8ViewArray::total_bytes_len)
            })
            .sum()
    }

    /// Ids of a name column; `absent` for a null cell, and for every row when the column is
    /// absent (an empty name is a name, as in JSONL). `None` when the column does not have
    /// `height` rows.
    fn ids(
        &self,
        height: usize,
        absent: u32,
        names: &mut LocalSymbols,
        memo: &mut ViewMemo,
    ) -> Option<Vec<u32>> {
        self.map(height, absent, true, memo, |s| names.intern(s))
    }

    /// The cells of a session column: none for a null cell, and for every row when the column
    /// is absent (an empty name is a name, as in JSONL). `None` when the column does not have
    /// `height` rows or a dictionary index is out of range.
    fn sessions(&self, height: usize) -> Option<Sessions> {
        let mut out = Sessions::default();
        if self.0.is_empty() {
            (0..height).for_each(|_| out.push(None));
            return Some(out);
        }
        for chunk in &self.0 {
            let any = chunk.as_any();
            if let Some(arr) = any.downcast_ref::<DictionaryArray<u32>>() {
                // Each value's text once, shared by its rows.
                let values = arr.values().as_any().downcast_ref::<Utf8ViewArray>()?;
                let mut spans = vec![None; values.len()];
                for k in arr.keys().iter() {
                    let Some(&k) = k else {
                        out.push(None);
                        continue;
                    };
                    let span = spans.get_mut(k as usize)?;
                    let span = match *span {
                        Some(span) => span,
                        None => *span.insert(out.add_text(values.get(k as usize)?)),
                    };
                    out.push_span(span);
                }
            } else {
                any.downcast_ref::<Utf8ViewArray>()?
                    .iter()
                    .for_each(|s| out.push(s));
            }
        }
        (out.len() == height).then_some(out)
    }

    /// [`Text::ids`] with an empty cell `absent` too (a tool must have a name).
    fn nonempty_ids(
        &self,
        height: usize,
        absent: u32,
        names: &mut LocalSymbols,
        memo: &mut ViewMemo,
    ) -> Option<Vec<u32>> {
        self.map(height, absent, false, memo, |s| names.intern(s))
    }

    /// Codes of a text column: 0 for a null or empty cell, else what `code` makes of the text.
    fn codes(
        &self,
        height: usize,
        memo: &mut ViewMemo,
        code: impl FnMut(&str) -> u32,
    ) -> Option<Vec<u32>> {
        self.map(height, 0, false, memo, code)
    }

    /// Every cell through `f` (`absent` for a null one, and for an empty one unless
    /// `keep_empty`), each distinct value once.
    fn map(
        &self,
        height: usize,
        absent: u32,
        keep_empty: bool,
        memo: &mut ViewMemo,
        mut f: impl FnMut(&str) -> u32,
    ) -> Option<Vec<u32>> {
        if self.0.is_empty() {
            return Some(vec![absent; height]);
        }
        let mut out = Vec::with_capacity(height);
        for chunk in &self.0 {
            let any = chunk.as_any();
            if let Some(arr) = any.downcast_ref::<DictionaryArray<u32>>() {
                let values = arr.values().as_any().downcast_ref::<Utf8ViewArray>()?;
                let table = &mut memo.table;
                table.clear();
                table.resize(values.len(), PENDING);
                let keys = arr.keys();
                let validity = keys.validity().filter(|b| b.unset_bits() > 0);
                // Each index's code, computed on its first row.
                let mut code = |k: u32| -> Option<u32> {
                    let slot = table.get_mut(k as usize)?;
                    if *slot == PENDING {
                        let s = values.value(k as usize);
                        *slot = if s.is_empty() && !keep_empty {
                            absent
                        } else {
                            f(s)
                        };
                    }
                    Some(*slot)
                };
                let mut bad = false;
                match validity {
                    None => out.extend(keys.values().iter().map(|&k| {
                        code(k).unwrap_or_else(|| {
                            bad = true;
                            absent
                        })
                    })),
                    Some(valid) => {
                        out.extend(keys.values().iter().zip(valid.iter()).map(|(&k, v)| {
                            if !v {
                                return absent;
                            }
                            code(k).unwrap_or_else(|| {
                                bad = true;
                                absent
                            })
                        }))
                    }
                }
                if bad {
                    return None;
                }
            } else {
                let arr = any.downcast_ref::<Utf8ViewArray>()?;
                view_pass(arr, &mut out, absent, keep_empty, &mut memo.map, &mut f);
            }
        }
        (out.len() == height).then_some(out)
    }

    /// Whether every cell that is neither null nor empty passes `f`, found from the chunks'
    /// dictionaries alone: `Some(true)` when every value of every dictionary passes and every
    /// row's index is in its dictionary; `Some(false)` when a value fails or a chunk has no
    /// dictionary (the rows must then be looked at one by one); `None` when the column does not
    /// have `height` rows.
    fn all_pass(&self, height: usize, mut f: impl FnMut(&str) -> bool) -> Option<bool> {
        if self.0.iter().map(|c| c.len()).sum::<usize>() != height {
            return None;
        }
        for chunk in &self.0 {
            let Some(arr) = chunk.as_any().downcast_ref::<DictionaryArray<u32>>() else {
                return Some(false);
            };
            let Some(values) = arr.values().as_any().downcast_ref::<Utf8ViewArray>() else {
                return Some(false);
            };
            if !values.values_iter().all(|s| s.is_empty() || f(s)) {
                return Some(false);
            }
            let n = values.len();
            let keys = arr.keys();
            let in_range = match keys.validity().filter(|b| b.unset_bits() > 0) {
                None => keys.values().iter().all(|&k| (k as usize) < n),
                Some(valid) => {
                    (keys.values().iter().zip(valid.iter())).all(|(&k, v)| !v || (k as usize) < n)
                }
            };
            if !in_range {
                return Some(false);
            }
        }
        Some(true)
    }

    /// Every cell in order, null or empty as `None`, through `f` (not memoised); the codes.
    fn for_each(&self, height: usize, mut f: impl FnMut(Option<&str>) -> u32) -> Option<Vec<u32>> {
        let mut out = Vec::with_capacity(height);
        if self.0.is_empty() {
            out.resize_with(height, || f(None));
            return Some(out);
        }
        for chunk in &self.0 {
            let any = chunk.as_any();
            if let Some(arr) = any.downcast_ref::<DictionaryArray<u32>>() {
                let values = arr.values().as_any().downcast_ref::<Utf8ViewArray>()?;
                for k in arr.keys().iter() {
                    let s = match k {
                        Some(&k) => Some(values.get(k as usize)?),
                        None => None,
                    };
                    out.push(f(s.filter(|s| !s.is_empty())));
                }
            } else {
                let arr = any.downcast_ref::<Utf8ViewArray>()?;
                for s in arr.iter() {
                    out.push(f(s.filter(|s| !s.is_empty())));
                }
            }
        }
        (out.len() == height).then_some(out)
    }

    /// The text of row `row`, `None` when null or empty.
    fn get(&self, mut row: usize) -> Option<&str> {
        for chunk in &self.0 {
            if row >= chunk.len() {
                row -= chunk.len();
                continue;
            }
            let any = chunk.as_any();
            let s = if let Some(arr) = any.downcast_ref::<DictionaryArray<u32>>() {
                let values = arr.values().as_any().downcast_ref::<Utf8ViewArray>()?;
                let k = arr.keys().get(row)?;
                values.get(k as usize)?
            } else {
                any.downcast_ref::<Utf8ViewArray>()?.get(row)?
            };
            return Some(s).filter(|s| !s.is_empty());
        }
        None
    }
}

/// One chunk of string views through `f`, each distinct view computed once.
fn view_pass(
    arr: &Utf8ViewArray,
    out: &mut Vec<u32>,
    absent: u32,
    keep_empty: bool,
    memo: &mut HashMap<u128, u32>,
    mut f: impl FnMut(&str) -> u32,
) {
    memo.clear();
    let validity = arr.validity().filter(|b| b.unset_bits() > 0);
    // Runs of one value are common (one server, bursts of one session): compare first.
    let mut last_key = u128::MAX;
    let mut last = 0;
    for (i, v) in arr.views().iter().enumerate() {
        if validity.is_some_and(|b| !b.get_bit(i)) {
            out.push(absent);
            continue;
        }
        let key = v.as_u128();
        if key != last_key {
            last_key = key;
            last = *memo.entry(key).or_insert_with(|| {
                let s = arr.value(i);
                if s.is_empty() && !keep_empty {
                    absent
                } else {
                    f(s)
                }
            });
        }
        out.push(last);
    }
}

/// The arguments of a row the column checks vouched for (argument text is an object
/// serde_json parses, keys a list of strings), built as the table reader builds them. Text
/// the column check vouched for ([`object_certainly_parses`]) is an object serde_json parses
/// into a map, all that [`crate::call::raw_object_parses`] is there to ensure: when it opens
/// with its brace it is kept as it is, without that second pass over its bytes; whitespace
/// around it is left out, as the table reader leaves it out.
fn vouched_args(text: Option<&str>, keys: Option<&str>) -> Option<Args> {
    Some(match (text, keys) {
        (Some(a), _) if a.starts_with('{') => Args::Raw(RawArgs::new(a).checked()),
        (Some(a), _) => Args::Raw(RawArgs::new(a.trim_matches(JSON_WS)).checked()),
        (None, Some(k)) => Args::Keys(serde_json::from_str::<Vec<String>>(k).ok()?),
        (None, None) => Args::Unrecorded,
    })
}

/// Arguments and records of one batch's rows, on demand.
struct Rows {
    input: Input,
    slice: Slice,
    /// How the slice's columns were read, and the ids they hold: for a record whose other
    /// columns cannot be read.
    fast: Option<Arc<FastColumns>>,
    symbols: Arc<Symbols>,
    /// Row in the slice of each batch row, when rows were left out (else the same).
    srow: Option<Vec<u32>>,
    args: Text,
    arg_keys: Text,
    /// Records the table reader built while judging rows, by batch row.
    judged: HashMap<usize, CallRecord>,
    /// All columns of the slice, read on the first whole record asked for (`None` when that
    /// read failed).
    full: std::cell::OnceCell<Option<Batch>>,
    /// The slice's `latency_ms` column alone, read on the first latency asked for (a failed
    /// call's reply time) unless the whole slice was read.
    latency: std::cell::OnceCell<Option<Batch>>,
}

impl Rows {
    fn srow(&self, row: usize) -> usize {
        self.srow
            .as_ref()
            .map_or(row, |s| s.get(row).map_or(row, |&r| r as usize))
    }
}

impl BatchRows for Rows {
    fn bytes(&self) -> usize {
        self.args.bytes() + self.arg_keys.bytes()
    }

    fn args_text(&self, row: usize) -> Option<&str> {
        if self.judged.contains_key(&row) {
            return None;
        }
        // As `vouched_args` takes it.
        let text = self.args.get(self.srow(row))?;
        Some(match text.starts_with('{') {
            true => text,
            false => text.trim_matches(JSON_WS),
        })
    }

    fn args(&self, row: usize) -> Args {
        if let Some(rec) = self.judged.get(&row) {
            return rec.args.clone();
        }
        let srow = self.srow(row);
        vouched_args(self.args.get(srow), self.arg_keys.get(srow)).unwrap_or_default()
    }

    fn latency(&self, row: usize) -> Option<f64> {
        if self.judged.contains_key(&row) {
            return self.record(row).latency_ms;
        }
        if !self.has_latency() {
            return None;
        }
        let srow = self.srow(row);
        match self.latency_column().map(|b| b.latency(srow)) {
            Some(Ok(latency)) => latency,
            _ => self.record(row).latency_ms,
        }
    }

    fn record(&self, row: usize) -> CallRecord {
        if let Some(rec) = self.judged.get(&row) {
            return rec.clone();
        }
        let srow = self.srow(row);
        let origin = Origin {
            file: self.input.file,
            line: (self.slice.first_row + srow + 1) as u64,
        };
        let full = self.full.get_or_init(|| {
            guard::catch(|| self.input.batch(&self.slice).ok())
                .ok()
                .flatten()
        });
        if let Some(rec) = full
            .as_ref()
            .and_then(|b| b.record(srow, origin, &mut Interner::default()).ok())
        {
            return rec;
        }
        self.columns_only(srow, origin)
            .unwrap_or_else(|| CallRecord {
                args: self.args(row),
                ..CallRecord::bare(origin)
            })
    }
}

impl Rows {
    /// The record of slice row `srow` from the columns the batch holds, when the other columns
    /// of its row group cannot be read (damaged, which the batch did not notice since it reads
    /// only what it holds): request id, latency and the recorded rule, message and policy
    /// version are left out.
    /// Whether the file has a `latency_ms` column.
    fn has_latency(&self) -> bool {
        self.input.columns.iter().any(|c| c == "latency_ms")
    }

    /// The slice's `latency_ms` column: of all its columns when they were read, else read
    /// alone, once (`None`: the file has none, or it could not be read).
    fn latency_column(&self) -> Option<&Batch> {
        if !self.has_latency() {
            return None;
        }
        match self.full.get() {
            Some(full) => full.as_ref(),
            None => self
                .latency
                .get_or_init(|| {
                    guard::catch(|| {
                        let df = self.input.read(&self.slice, Some(&["latency_ms"])).ok()?;
                        Batch::new(&df).ok()
                    })
                    .ok()
                    .flatten()
                })
                .as_ref(),
        }
    }

    fn columns_only(&self, srow: usize, origin: Origin) -> Option<CallRecord> {
        let fast = self.fast.as_deref()?;
        let mut names = LocalSymbols::new(Arc::clone(&self.symbols));
        let c = guard::catch(|| {
            check_columns(
                &self.input,
                &self.slice,
                fast,
                &mut names,
                &mut ViewMemo::default(),
            )
        })
        .ok()?
        .ok()??;
        let decision = *c.recorded.get(srow)?;
        let args = vouched_args(c.args.get(srow), c.arg_keys.get(srow))?;
        Some(CallRecord {
            ts: *c.ts.get(srow)?,
            server: self.symbols.name(*c.server.get(srow)?),
            grant: self.symbols.opt_name(*c.grant.get(srow)?),
            session: c.session.get(srow).map(super::Sym::from),
            tool: self.symbols.name(*c.tool.get(srow)?),
            args,
            id: None,
            recorded: decision.map(|d| super::Recorded {
                decision: Some(d),
                ..super::Recorded::default()
            }),
            upstream: *c.upstream.get(srow)?,
            latency_ms: None,
            origin,
        })
    }
}

#[cfg(test)]
#[path = "parquet_batch_tests.rs"]
mod tests;
