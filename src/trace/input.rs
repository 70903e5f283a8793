//! Inputs: paths, globs and stdin; decompression by magic bytes.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use flate2::read::MultiGzDecoder;

use super::TraceError;
use super::source::MAX_LINE_BYTES;

const GZIP_MAGIC: &[u8] = &[0x1f, 0x8b];
const ZSTD_MAGIC: &[u8] = &[0x28, 0xb5, 0x2f, 0xfd];
/// How much of a file format detection looks at.
pub(crate) const HEAD_BYTES: usize = 64 * 1024;

/// One input named on the command line, after glob expansion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InputSpec {
    /// A file.
    File(PathBuf),
    /// Standard input (`-`).
    Stdin,
}

impl InputSpec {
    /// The name used in messages and reports (`-` for stdin shows as `<stdin>`).
    pub fn display_name(&self) -> String {
        match self {
            InputSpec::File(p) => p.display().to_string(),
            InputSpec::Stdin => "<stdin>".to_string(),
        }
    }
}

/// Expand paths and globs in the order given (each glob's matches sorted by path); `-` is stdin.
/// A path that does not exist or a glob that matches nothing is an error.
pub fn expand_inputs(args: &[String]) -> Result<Vec<InputSpec>, TraceError> {
    let mut out = Vec::new();
    for arg in args {
        if arg == "-" {
            out.push(InputSpec::Stdin);
            continue;
        }
        if Path::new(arg).exists() || !arg.contains(['*', '?', '[']) {
            if !Path::new(arg).exists() {
                return Err(TraceError::NoMatch {
                    pattern: arg.clone(),
                });
            }
            out.push(InputSpec::File(PathBuf::from(arg)));
            continue;
        }
        let paths = glob::glob(arg).map_err(|e| TraceError::BadGlob {
            pattern: arg.clone(),
            reason: e.to_string(),
        })?;
        let mut matched: Vec<PathBuf> = Vec::new();
        for p in paths {
            let p = p.map_err(|e| TraceError::Io {
                file: e.path().display().to_string(),
                source: io::Error::new(e.error().kind(), e.error().to_string()),
            })?;
            if p.is_file() {
                matched.push(p);
            }
        }
        if matched.is_empty() {
            return Err(TraceError::NoMatch {
                pattern: arg.clone(),
            });
        }
        matched.sort();
        out.extend(matched.into_iter().map(InputSpec::File));
    }
    Ok(out)
}

/// `specs` with every file named again (the same file, whatever the path: a glob overlapping
/// a path, a link) left out, and the names of those left out. Read twice, its calls would
/// count twice, and with them every counter.
pub(crate) fn distinct(specs: Vec<InputSpec>) -> (Vec<InputSpec>, Vec<String>) {
    let mut seen = std::collections::HashSet::new();
    let (mut kept, mut again) = (Vec::new(), Vec::new());
    for spec in specs {
        if let InputSpec::File(p) = &spec {
            if !seen.insert(p.canonicalize().unwrap_or_else(|_| p.clone())) {
                again.push(spec.display_name());
                continue;
            }
        }
        kept.push(spec);
    }
    (kept, again)
}

/// Standard input copied to a temporary file so that it can be read more than once
/// (order check, then the merge). Removed on drop.
#[derive(Debug)]
pub(crate) struct Spool {
    path: PathBuf,
}

impl Spool {
    pub(crate) fn from_reader(stdin: &mut dyn Read) -> Result<Spool, TraceError> {
        static N: AtomicU64 = AtomicU64::new(0);
        // A name left behind by a process of the same id that was killed is passed over.
        let mut tries = 0;
        let (path, mut f) = loop {
            let n = N.fetch_add(1, Ordering::Relaxed);
            let path =
                std::env::temp_dir().join(format!("mcpsim-stdin-{}-{n}", std::process::id()));
            match File::options().write(true).create_new(true).open(&path) {
                Ok(f) => break (path, f),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists && tries < 100 => tries += 1,
                Err(source) => return Err(TraceError::Spool { path, source }),
            }
        };
        let err = |source| TraceError::Spool {
            path: path.clone(),
            source,
        };
        let spool = Spool { path: path.clone() };
        io::copy(stdin, &mut f).map_err(err)?;
        Ok(spool)
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for Spool {
    fn drop(&mut self) {
        // Best effort: a leftover temp file is harmless and there is nobody to tell.
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Open a file and undo gzip/zstd compression, recognised by magic bytes.
/// Returns the decoded stream and whether it was compressed.
pub(crate) fn open_decoded(
    path: &Path,
    name: &str,
) -> Result<(Box<dyn BufRead + Send>, bool), TraceError> {
    let io_err = |source| TraceError::Io {
        file: name.to_string(),
        source,
    };
    let file = File::open(path).map_err(io_err)?;
    let mut r = BufReader::with_capacity(256 * 1024, file);
    let magic = r.fill_buf().map_err(io_err)?;
    if magic.starts_with(GZIP_MAGIC) {
        let gz = EndsWhereCut(MultiGzDecoder::new(r));
        Ok((Box::new(BufReader::new(gz)), true))
    } else if magic.starts_with(ZSTD_MAGIC) {
        let d = EndsWhereCut(zstd::stream::read::Decoder::with_buffer(r).map_err(io_err)?);
        Ok((Box::new(BufReader::new(d)), true))
    } else {
        Ok((Box::new(r), false))
    }
}

/// A gzip or zstd stream that ends where its file was cut (copied while the compressor still
/// wrote it): the decoders report the missing end as an error, which would lose every line
/// read. It ends there instead, as a plain file cut short does, so the lines before are read
/// and a line cut in two is a bad record of its own, counted and located.
struct EndsWhereCut<R>(R);

impl<R: Read> Read for EndsWhereCut<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.0.read(buf) {
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(0),
            other => other,
        }
    }
}

/// The head of a stream for format detection: up to [`HEAD_BYTES`], and when the first line is
/// longer than that, on to its end and [`HEAD_BYTES`] past it (up to [`MAX_LINE_BYTES`]), so
/// that it is judged whole: the keys that decide a format may come after the window (a
/// recorder that writes `ts` after a large `params`).
pub(crate) fn read_head(mut r: impl BufRead, name: &str) -> Result<Vec<u8>, TraceError> {
    let io_err = |source| TraceError::Io {
        file: name.to_string(),
        source,
    };
    let mut head = Vec::with_capacity(HEAD_BYTES);
    (&mut r)
        .take(HEAD_BYTES as u64)
        .read_to_end(&mut head)
        .map_err(io_err)?;
    let text = !head.starts_with(b"PAR1");
    if text && head.len() == HEAD_BYTES && memchr::memchr(b'\n', &head).is_none() {
        (&mut r)
            .take(MAX_LINE_BYTES as u64)
            .read_until(b'\n', &mut head)
            .map_err(io_err)?;
        (&mut r)
            .take(HEAD_BYTES as u64)
            .read_to_end(&mut head)
            .map_err(io_err)?;
    }
    Ok(head)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A spool name left by a killed process with the same id is passed over, not an error.
    #[test]
    fn a_leftover_spool_file_is_passed_over() {
        let first = Spool::from_reader(&mut &b"a"[..]).expect("spooled");
        let name = first.path().file_name().unwrap().to_str().unwrap();
        let n: u64 = name.rsplit('-').next().unwrap().parse().unwrap();
        let pid = std::process::id();
        let taken: Vec<PathBuf> = (n + 1..n + 6)
            .map(|k| {
                first
                    .path()
                    .with_file_name(format!("mcpsim-stdin-{pid}-{k}"))
            })
            .collect();
        for p in &taken {
            std::fs::write(p, "left behind").unwrap();
        }
        let second = Spool::from_reader(&mut &b"b"[..]).expect("another name");
        assert!(!taken.contains(&second.path().to_path_buf()));
        assert_eq!(std::fs::read(second.path()).unwrap(), b"b");
        for p in &taken {
            assert_eq!(std::fs::read(p).unwrap(), b"left behind");
            std::fs::remove_file(p).unwrap();
        }
    }
}
