//! `mcpsim test`: policy tests kept beside the policies, run as the user would run mcpsim.
//!
//! A test file ([`spec`]) holds decision cases and report snapshots. Each test runs mcpsim
//! itself as a child process in the test file's directory, so paths in the file and in the
//! kept reports read as they were written, whichever directory the tests are run from, and a
//! test sees exactly what `simulate` and `diff` give.

pub mod render;
mod spec;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde::Serialize;
use serde_json::Value;

use crate::report::OutputFormat;
use spec::{Case, CaseInput, Expect, Expected, Selector, Snapshot, SnapshotRun, SuiteFile};

/// How a run treats snapshot files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Writes {
    /// Compare only.
    None,
    /// Write `<snapshot>.new` beside every snapshot that differs or is missing, remove stale
    /// ones beside snapshots that match.
    Pending,
}

/// One test's result.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    /// The test file, as found.
    pub file: String,
    /// `case`, `snapshot`, or `file` for a file that cannot be read.
    pub kind: &'static str,
    /// The test's name.
    pub name: String,
    /// The line of the test in its file.
    pub line: usize,
    /// Passed, failed, or could not run.
    pub status: Status,
    /// Why it failed or could not run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Expected against actual, as a unified diff.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diff: Option<String>,
    /// The snapshot file (snapshots only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<String>,
    /// The `.new` file written for review (`--update`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pending: Option<String>,
}

/// A test's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Every expectation met.
    Passed,
    /// An expectation not met: see the diff.
    Failed,
    /// The test could not run: a bad test file, policy or trace.
    Error,
}

/// The test files named by `paths`: files as given, directories searched (hidden directories,
/// `target` and `node_modules` skipped) for `*_test.yaml`, `*_test.yml` and `*_test.json`, in
/// path order.
pub fn discover(paths: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    for path in paths {
        if path.is_dir() {
            let before = found.len();
            walk(path, &mut found)?;
            if found.len() == before {
                anyhow::bail!(
                    "{}: no test files (*_test.yaml, *_test.yml or *_test.json) here",
                    path.display()
                );
            }
        } else if path.is_file() {
            found.push(path.clone());
        } else {
            anyhow::bail!("{}: no such file or directory", path.display());
        }
    }
    Ok(found)
}

/// Whether a file name is a test file's.
pub fn is_test_file(name: &str) -> bool {
    ["_test.yaml", "_test.yml", "_test.json"]
        .iter()
        .any(|s| name.len() > s.len() && name.ends_with(s))
}

fn walk(dir: &Path, found: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    for path in entries {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        if path.is_dir() {
            if !(name.starts_with('.') || name == "target" || name == "node_modules") {
                walk(&path, found)?;
            }
        } else if is_test_file(name) {
            found.push(path);
        }
    }
    Ok(())
}

/// Runs tests with one mcpsim executable.
pub struct Runner<'a> {
    /// The mcpsim executable the tests run.
    pub exe: &'a Path,
    /// Whether snapshot files may be written.
    pub writes: Writes,
}

impl Runner<'_> {
    /// Run every test of one file.
    pub fn run_file(&self, path: &Path) -> Vec<Outcome> {
        let file = path.display().to_string();
        let parsed = std::fs::read_to_string(path)
            .map_err(|e| format!("{file}: cannot read: {e}"))
            .and_then(|src| {
                spec::parse(path, &src)
                    .map_err(|e| format!("{file}:{}:{}: {}", e.pos.line, e.pos.column, e.message))
            });
        let suite = match parsed {
            Ok(s) => s,
            Err(message) => {
                return vec![Outcome {
                    file,
                    kind: "file",
                    name: path
                        .file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_default(),
                    line: 0,
                    status: Status::Error,
                    message: Some(message),
                    diff: None,
                    snapshot: None,
                    pending: None,
                }];
            }
        };
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
            _ => PathBuf::from("."),
        };
        let mut out = Vec::new();
        for case in &suite.cases {
            out.push(self.run_case(&suite, &dir, case));
        }
        for snap in &suite.snapshots {
            out.push(self.run_snapshot(&suite, &dir, snap));
        }
        out
    }

    fn outcome(&self, suite: &SuiteFile, kind: &'static str, name: &str, line: usize) -> Outcome {
        Outcome {
            file: suite.path.display().to_string(),
            kind,
            name: name.to_owned(),
            line,
            status: Status::Passed,
            message: None,
            diff: None,
            snapshot: None,
            pending: None,
        }
    }

    fn run_case(&self, suite: &SuiteFile, dir: &Path, case: &Case) -> Outcome {
        let mut o = self.outcome(suite, "case", &case.name, case.pos.line);
        let mut args = vec!["simulate".to_owned(), "--format".into(), "jsonl".into()];
        for p in &case.policies {
            args.extend(["--policy".to_owned(), p.clone()]);
        }
        args.extend(case.options.iter().cloned());
        let stdin = match &case.input {
            CaseInput::Calls(lines) => {
                args.push("-".into());
                let mut text = lines.join("\n");
                text.push('\n');
                Some(text.into_bytes())
            }
            CaseInput::Trace(traces) => {
                args.extend(traces.iter().cloned());
                None
            }
        };
        let rows = match self.exec(dir, &args, stdin) {
            Ok(bytes) => parse_rows(&bytes),
            Err(e) => Err(e),
        };
        let rows = match rows {
            Ok(rows) => rows,
            Err(message) => {
                o.status = Status::Error;
                o.message = Some(message);
                return o;
            }
        };
        match compare_case(case, &rows) {
            Ok(()) => {}
            Err((message, expected, actual)) => {
                o.status = Status::Failed;
                o.message = Some(message);
                o.diff = Some(unified_diff(&expected, &actual, "expected", "actual"));
            }
        }
        o
    }

    fn run_snapshot(&self, suite: &SuiteFile, dir: &Path, snap: &Snapshot) -> Outcome {
        let mut o = self.outcome(suite, "snapshot", &snap.name, snap.pos.line);
        let kept = dir.join(&snap.file);
        o.snapshot = Some(kept.display().to_string());
        let mut args = Vec::new();
        match &snap.run {
            SnapshotRun::Simulate { policies } => {
                args.push("simulate".to_owned());
                for p in policies {
                    args.extend(["--policy".to_owned(), p.clone()]);
                }
            }
            SnapshotRun::Diff { base, candidate } => {
                args.push("diff".to_owned());
                for p in base {
                    args.extend(["--base".to_owned(), p.clone()]);
                }
                for p in candidate {
                    args.extend(["--candidate".to_owned(), p.clone()]);
                }
            }
        }
        args.extend(["--format".to_owned(), format_name(snap.format)]);
        args.extend(snap.options.iter().cloned());
        args.extend(snap.traces.iter().cloned());
        let actual = match self.exec(dir, &args, None) {
            Ok(bytes) => bytes,
            Err(message) => {
                o.status = Status::Error;
                o.message = Some(message);
                return o;
            }
        };
        let expected = std::fs::read(&kept).ok();
        let pending = PathBuf::from(format!("{}.new", kept.display()));
        if expected.as_deref() == Some(&actual[..]) {
            if self.writes == Writes::Pending && pending.exists() {
                let _ = std::fs::remove_file(&pending);
            }
            return o;
        }
        o.status = Status::Failed;
        match expected {
            Some(expected) => {
                o.message = Some("the report differs from the snapshot".to_owned());
                o.diff = Some(snapshot_diff(snap.format, &expected, &actual));
            }
            None => {
                o.message = Some(
                    "no snapshot yet: `mcpsim test --update` writes it as a .new file for review"
                        .to_owned(),
                );
            }
        }
        if self.writes == Writes::Pending {
            let written = pending
                .parent()
                .map_or(Ok(()), std::fs::create_dir_all)
                .and_then(|()| std::fs::write(&pending, &actual));
            match written {
                Ok(()) => o.pending = Some(pending.display().to_string()),
                Err(e) => {
                    o.status = Status::Error;
                    o.message = Some(format!("cannot write {}: {e}", pending.display()));
                }
            }
        }
        o
    }

    /// Run mcpsim with `args` in `dir`; its standard output, or why it failed (exit 2).
    fn exec(&self, dir: &Path, args: &[String], stdin: Option<Vec<u8>>) -> Result<Vec<u8>, String> {
        let shown = format!("mcpsim {}", args.join(" "));
        let mut child = Command::new(self.exe)
            .args(args)
            .current_dir(dir)
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot run {}: {e}", self.exe.display()))?;
        let feeder = match (stdin, child.stdin.take()) {
            (Some(bytes), Some(mut pipe)) => {
                Some(std::thread::spawn(move || pipe.write_all(&bytes)))
            }
            _ => None,
        };
        let output = child
            .wait_with_output()
            .map_err(|e| format!("{shown}: {e}"))?;
        if let Some(f) = feeder {
            let _ = f.join();
        }
        match output.status.code() {
            Some(0 | 1) => Ok(output.stdout),
            code => {
                let stderr = String::from_utf8_lossy(&output.stderr);
                Err(format!(
                    "`{shown}` (in {}) exited with {}:\n{}",
                    dir.display(),
                    code.map_or_else(|| "a signal".to_owned(), |c| c.to_string()),
                    stderr.trim_end()
                ))
            }
        }
    }
}

/// Accept the pending `.new` snapshots of the test files: each replaces its snapshot. Returns
/// the snapshots accepted.
pub fn accept(files: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let mut accepted = Vec::new();
    for path in files {
        let src = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("{}: cannot read: {e}", path.display()))?;
        let suite = spec::parse(path, &src).map_err(|e| {
            anyhow::anyhow!(
                "{}:{}:{}: {}",
                path.display(),
                e.pos.line,
                e.pos.column,
                e.message
            )
        })?;
        let dir = path.parent().unwrap_or(Path::new(""));
        for snap in &suite.snapshots {
            let kept = dir.join(&snap.file);
            let pending = PathBuf::from(format!("{}.new", kept.display()));
            if pending.exists() {
                std::fs::rename(&pending, &kept).map_err(|e| {
                    anyhow::anyhow!(
                        "cannot move {} to {}: {e}",
                        pending.display(),
                        kept.display()
                    )
                })?;
                accepted.push(kept);
            }
        }
    }
    Ok(accepted)
}

/// The per-call rows of `simulate --format jsonl`.
fn parse_rows(bytes: &[u8]) -> Result<Vec<Value>, String> {
    bytes
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).map_err(|e| format!("unreadable decision row: {e}")))
        .collect()
}

/// `Err((message, expected lines, actual lines))` when the rows do not meet the case.
fn compare_case(case: &Case, rows: &[Value]) -> Result<(), (String, String, String)> {
    let mut expected = String::new();
    let mut actual = String::new();
    let mut wrong = 0usize;
    let mut line = |e: String, a: String| {
        if e != a {
            wrong += 1;
        }
        expected.push_str(&e);
        expected.push('\n');
        actual.push_str(&a);
        actual.push('\n');
    };
    match &case.expect {
        Expect::Nothing => {}
        Expect::Each(list) => {
            for (i, want) in list.iter().enumerate() {
                let label = format!("#{}", i + 1);
                let got = rows.get(i).map(|r| shown(r, want));
                line(
                    format!("{label}: {}", wanted(want)),
                    format!("{label}: {}", got.unwrap_or_else(|| "no such call".into())),
                );
            }
            for (i, row) in rows.iter().enumerate().skip(list.len()) {
                line(
                    format!("#{}: (no expectation)", i + 1),
                    format!("#{}: {}", i + 1, str_field(row, "decision")),
                );
            }
        }
        Expect::Chosen(list) => {
            for (sel, want) in list {
                let got = match find(rows, sel) {
                    Ok(row) => shown(row, want),
                    Err(why) => why,
                };
                line(format!("{sel}: {}", wanted(want)), format!("{sel}: {got}"));
            }
        }
    }
    for (kind, n) in &case.counts {
        let got = rows
            .iter()
            .filter(|r| str_field(r, "decision") == kind.as_str())
            .count();
        line(
            format!("{} calls: {n}", kind.as_str()),
            format!("{} calls: {got}", kind.as_str()),
        );
    }
    if wrong == 0 {
        Ok(())
    } else {
        let of = rows.len();
        Err((
            format!(
                "{wrong} expectation{} not met ({of} call{} evaluated)",
                if wrong == 1 { "" } else { "s" },
                if of == 1 { "" } else { "s" }
            ),
            expected,
            actual,
        ))
    }
}

fn find<'a>(rows: &'a [Value], sel: &Selector) -> Result<&'a Value, String> {
    match sel {
        Selector::Index(n) => rows
            .iter()
            .find(|r| r.get("index").and_then(Value::as_u64) == Some(*n))
            .ok_or_else(|| format!("no such call ({} evaluated)", rows.len())),
        Selector::Id(id) => {
            let mut hits = rows.iter().filter(|r| str_field(r, "id") == id);
            match (hits.next(), hits.next()) {
                (Some(row), None) => Ok(row),
                (None, _) => Err("no call has this id".to_owned()),
                (Some(_), Some(_)) => Err("several calls have this id: use #N".to_owned()),
            }
        }
    }
}

/// An expectation as one line.
fn wanted(e: &Expected) -> String {
    let mut s = e.decision.as_str().to_owned();
    if let Some(rule) = &e.rule {
        s.push_str(&format!(
            " by {}",
            if rule.is_empty() { "(no rule)" } else { rule }
        ));
    }
    if let Some(m) = &e.message {
        s.push_str(&format!(" — {m:?}"));
    }
    s
}

/// A row as one line, naming what the expectation names.
fn shown(row: &Value, e: &Expected) -> String {
    let mut s = str_field(row, "decision").to_owned();
    if e.rule.is_some() {
        let rule = str_field(row, "rule");
        s.push_str(&format!(
            " by {}",
            if rule.is_empty() { "(no rule)" } else { rule }
        ));
    }
    if e.message.is_some() {
        s.push_str(&format!(" — {:?}", str_field(row, "message")));
    }
    s
}

fn str_field<'a>(row: &'a Value, key: &str) -> &'a str {
    row.get(key).and_then(Value::as_str).unwrap_or_default()
}

/// A unified diff, expected (`-`) against actual (`+`).
pub fn unified_diff(expected: &str, actual: &str, old: &str, new: &str) -> String {
    similar::TextDiff::from_lines(expected, actual)
        .unified_diff()
        .context_radius(3)
        .header(old, new)
        .to_string()
}

/// A snapshot's diff: text as it is, Parquet as CSV rows.
fn snapshot_diff(format: OutputFormat, expected: &[u8], actual: &[u8]) -> String {
    let text = |bytes: &[u8]| match format {
        OutputFormat::Parquet => parquet_as_csv(bytes),
        _ => String::from_utf8_lossy(bytes).into_owned(),
    };
    let old = text(expected);
    let new = text(actual);
    let diff = unified_diff(&old, &new, "snapshot", "report");
    if diff.is_empty() {
        // Bytes differ but rows do not (Parquet metadata).
        "the files differ in bytes but not in rows\n".to_owned()
    } else {
        diff
    }
}

/// A Parquet report's rows as CSV, to show how it changed. `ts` is left out: this build of
/// polars has no type for a UTC timestamp, and a policy change never moves it.
fn parquet_as_csv(bytes: &[u8]) -> String {
    use crate::trace::CsvRow;
    use polars::prelude::{AnyValue, ParquetReader, SerReader};
    let rows = (|| {
        let mut reader = ParquetReader::new(std::io::Cursor::new(bytes.to_vec()));
        let names: Vec<String> = reader
            .schema()?
            .iter_names()
            .filter(|n| n.as_str() != "ts")
            .map(|n| n.to_string())
            .collect();
        let df = reader.with_columns(Some(names.clone())).finish()?;
        let mut out = Vec::new();
        CsvRow::header(&names, &mut out);
        for i in 0..df.height() {
            let mut row = CsvRow::new(&mut out);
            for column in df.columns() {
                match column.get(i)? {
                    AnyValue::Null => row.text(None),
                    AnyValue::String(s) => row.text(Some(s)),
                    AnyValue::StringOwned(s) => row.text(Some(&s)),
                    AnyValue::UInt64(n) => row.int(n),
                    AnyValue::Float64(x) => row.float(Some(x)),
                    AnyValue::Boolean(b) => row.bool(b),
                    other => row.text(Some(&other.to_string())),
                }
            }
            row.end();
        }
        Ok::<_, polars::prelude::PolarsError>(String::from_utf8_lossy(&out).into_owned())
    })();
    rows.unwrap_or_else(|e| format!("(cannot show the rows: {e})\n"))
}

/// The `--format` value of a report format.
fn format_name(f: OutputFormat) -> String {
    clap::ValueEnum::to_possible_value(&f).map_or_else(String::new, |v| v.get_name().to_owned())
}

/// The summary of a run.
#[derive(Debug, Default, Clone, Copy, Serialize)]
pub struct Totals {
    /// Tests that passed.
    pub passed: usize,
    /// Tests that failed.
    pub failed: usize,
    /// Tests that could not run.
    pub errors: usize,
}

impl Totals {
    /// Count the outcomes.
    pub fn of<'a>(outcomes: impl IntoIterator<Item = &'a Outcome>) -> Totals {
        let mut t = Totals::default();
        for o in outcomes {
            match o.status {
                Status::Passed => t.passed += 1,
                Status::Failed => t.failed += 1,
                Status::Error => t.errors += 1,
            }
        }
        t
    }

    /// 0 all passed, 1 a test failed, 2 a test could not run.
    pub fn exit_code(self) -> u8 {
        if self.errors > 0 {
            2
        } else if self.failed > 0 {
            1
        } else {
            0
        }
    }
}
