//! Memory-mapped input files, and where each one lies in memory.
//!
//! Plain JSONL and Parquet files are read through a map. When another program makes such a
//! file shorter while it is read (log rotation's `copytruncate` empties a live log), reading a
//! page past its new end makes the kernel stop the process with `SIGBUS`. A library must not
//! take over a process's signals, so this module only keeps a table of the maps in use, which a
//! signal handler may read: [`mapped_file_at`] names the input an address belongs to. The
//! `mcpsim` binary installs the handler and reports the file by name (exit code 2).

use std::fs::File;
use std::ops::Deref;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicUsize, Ordering};

use memmap2::Mmap;

/// How many maps the table holds at once; past that a map is still made but not named.
const SLOTS: usize = 256;

/// One map in use: its address range and its input's name (leaked: names live as long as the
/// process, so that a handler never reads a freed one).
struct Slot {
    taken: AtomicBool,
    start: AtomicUsize,
    len: AtomicUsize,
    name: AtomicPtr<u8>,
    name_len: AtomicUsize,
}

#[allow(clippy::declare_interior_mutable_const)]
const EMPTY: Slot = Slot {
    taken: AtomicBool::new(false),
    start: AtomicUsize::new(0),
    len: AtomicUsize::new(0),
    name: AtomicPtr::new(std::ptr::null_mut()),
    name_len: AtomicUsize::new(0),
};

static TABLE: [Slot; SLOTS] = [EMPTY; SLOTS];

/// A read-only map of a whole input file, listed in the table while it lives.
pub(crate) struct MappedFile {
    map: Mmap,
    slot: Option<usize>,
}

impl MappedFile {
    /// Map `f`, the input shown as `name`. Filesystems without shared maps get a private one.
    pub(crate) fn map(f: &File, name: &str) -> std::io::Result<MappedFile> {
        // SAFETY: the map is only read. When another program truncates the file meanwhile,
        // reading past its new end raises SIGBUS (see the module's documentation); the bytes
        // read before stay what they were.
        let map = unsafe { Mmap::map(f) }
            .or_else(|_| unsafe { memmap2::MmapOptions::new().map_copy_read_only(f) })?;
        let slot = register(map.as_ptr() as usize, map.len(), name);
        Ok(MappedFile { map, slot })
    }
}

impl Deref for MappedFile {
    type Target = Mmap;

    fn deref(&self) -> &Mmap {
        &self.map
    }
}

impl Drop for MappedFile {
    fn drop(&mut self) {
        if let Some(i) = self.slot {
            let s = &TABLE[i];
            s.len.store(0, Ordering::SeqCst);
            s.start.store(0, Ordering::SeqCst);
            s.taken.store(false, Ordering::SeqCst);
        }
    }
}

fn register(start: usize, len: usize, name: &str) -> Option<usize> {
    let i = TABLE.iter().position(|s| {
        s.taken
            .compare_exchange(false, true, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
    })?;
    let s = &TABLE[i];
    let name: &'static mut str = Box::leak(name.to_owned().into_boxed_str());
    s.name_len.store(name.len(), Ordering::SeqCst);
    s.name.store(name.as_mut_ptr(), Ordering::SeqCst);
    s.start.store(start, Ordering::SeqCst);
    s.len.store(len, Ordering::SeqCst);
    Some(i)
}

/// The name of the mapped input whose map holds `addr`, if any. Reads only atomics: a signal
/// handler may call it.
pub fn mapped_file_at(addr: usize) -> Option<&'static str> {
    TABLE.iter().find_map(|s| {
        let start = s.start.load(Ordering::SeqCst);
        let len = s.len.load(Ordering::SeqCst);
        if start == 0 || addr < start || addr - start >= len {
            return None;
        }
        let ptr = s.name.load(Ordering::SeqCst);
        let n = s.name_len.load(Ordering::SeqCst);
        if ptr.is_null() {
            return None;
        }
        // SAFETY: `ptr` and `n` are those of a leaked `str`, never freed.
        Some(unsafe { std::str::from_utf8_unchecked(std::slice::from_raw_parts(ptr, n)) })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_map_is_named_while_it_lives_and_only_inside_its_range() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("live.jsonl");
        std::fs::write(&path, vec![b'x'; 10_000]).expect("write");
        let map =
            MappedFile::map(&File::open(&path).expect("open"), "logs/live.jsonl").expect("map");
        let start = map.as_ptr() as usize;
        assert_eq!(mapped_file_at(start), Some("logs/live.jsonl"));
        assert_eq!(mapped_file_at(start + 9_999), Some("logs/live.jsonl"));
        assert_eq!(mapped_file_at(start + 10_000), None);
        assert_eq!(mapped_file_at(start - 1), None);
        drop(map);
        assert_eq!(mapped_file_at(start), None);
    }
}
