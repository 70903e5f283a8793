//! The policy test file: `*_test.yaml` (or `.yml`, `.json`) kept beside the policies it tests.
//!
//! ```yaml
//! policy: github.json                 # [SERVER=]FILE[:DIALECT], or a list; paths are relative
//! options: [--assume-approved]        # to this file; options go to every run
//! cases:
//!   - name: deleting a repository is denied
//!     calls:
//!       - {tool: delete_repo, grant: ci, args: {repo: prod}}
//!     expect: [deny]                  # a list: every call in order
//!   - name: the 31st search in a minute is throttled
//!     calls:
//!       - {tool: search_code, grant: ci, repeat: 31}
//!     expect:
//!       "#31": {decision: throttle, rule: /tools/search_code/limits/per_minute}
//!     counts: {allow: 30, throttle: 1}
//! snapshots:
//!   - name: last-week
//!     trace: ../traces/last-week.jsonl
//!     format: markdown
//! ```
//!
//! Every problem is reported with the file, line and column of the value at fault.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Duration, SecondsFormat, Utc};
use serde_json::{Map, Value};

use crate::engine::DecisionKind;
use crate::policy::json::{Kind, Node, Pos};
use crate::report::OutputFormat;

/// One test file, read and checked.
#[derive(Debug)]
pub struct SuiteFile {
    /// The file, as found.
    pub path: PathBuf,
    /// Decision cases, in file order.
    pub cases: Vec<Case>,
    /// Report snapshots, in file order.
    pub snapshots: Vec<Snapshot>,
}

/// A decision case: calls through a policy, and the decisions they must get.
#[derive(Debug)]
pub struct Case {
    pub name: String,
    pub pos: Pos,
    /// `--policy` values.
    pub policies: Vec<String>,
    pub options: Vec<String>,
    pub input: CaseInput,
    pub expect: Expect,
    /// Totals that must match, per decision named.
    pub counts: Vec<(DecisionKind, u64)>,
}

/// Where a case's calls come from.
#[derive(Debug)]
pub enum CaseInput {
    /// Inline calls as mcpsim JSONL lines (timestamps filled in, `repeat` expanded).
    Calls(Vec<String>),
    /// Trace files.
    Trace(Vec<String>),
}

/// The decisions a case expects.
#[derive(Debug)]
pub enum Expect {
    /// No per-call expectation (only `counts`).
    Nothing,
    /// One per call, in time order; the number of calls must match too.
    Each(Vec<Expected>),
    /// Chosen calls, by `#N` or request id, in file order.
    Chosen(Vec<(Selector, Expected)>),
}

/// What one call must get.
#[derive(Debug, Clone)]
pub struct Expected {
    pub decision: DecisionKind,
    /// The rule that decided, when given (`""` for a call no rule refused).
    pub rule: Option<String>,
    /// The decision's message, when given.
    pub message: Option<String>,
}

/// How a chosen call is named.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selector {
    /// `#N`: the N-th call in time order, as reports number them.
    Index(u64),
    /// A request id.
    Id(String),
}

impl std::fmt::Display for Selector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Selector::Index(n) => write!(f, "#{n}"),
            Selector::Id(id) => write!(f, "id {id}"),
        }
    }
}

/// A report snapshot: the report of one command, kept in a file beside the test.
#[derive(Debug)]
pub struct Snapshot {
    pub name: String,
    pub pos: Pos,
    pub run: SnapshotRun,
    pub traces: Vec<String>,
    pub format: OutputFormat,
    pub options: Vec<String>,
    /// The snapshot file, relative to the test file's directory.
    pub file: PathBuf,
}

/// The command whose report is kept.
#[derive(Debug)]
pub enum SnapshotRun {
    Simulate {
        policies: Vec<String>,
    },
    Diff {
        base: Vec<String>,
        candidate: Vec<String>,
    },
}

/// A problem in a test file, located.
#[derive(Debug, Clone, PartialEq)]
pub struct SpecError {
    pub pos: Pos,
    pub message: String,
}

type Result<T> = std::result::Result<T, SpecError>;

fn fail<T>(pos: Pos, message: impl Into<String>) -> Result<T> {
    Err(SpecError {
        pos,
        message: message.into(),
    })
}

/// When inline calls without a `ts` start, and how far apart they are.
const FIRST_TS: &str = "2026-01-01T00:00:00Z";

/// Options a test must not set: the runner sets them.
const RESERVED: &[&str] = &["--format", "-f", "--output", "-o", "--base", "--candidate"];

/// Parse a test file's text (YAML, or JSON for `.json`).
pub fn parse(path: &Path, src: &str) -> Result<SuiteFile> {
    let json = path.extension().is_some_and(|e| e == "json");
    let root = if json {
        crate::policy::json::parse(src).map_err(|e| SpecError {
            pos: e.pos,
            message: e.message,
        })?
    } else {
        crate::policy::intercept::located_tree(src).map_err(|e| SpecError {
            pos: e.pos,
            message: format!("invalid YAML: {}", e.message),
        })?
    };
    let top = Fields::of(
        &root,
        "the test file",
        &["policy", "options", "cases", "snapshots"],
    )?;
    let policies = match top.get("policy") {
        Some(n) => strings(n, "policy")?,
        None => Vec::new(),
    };
    let options = match top.get("options") {
        Some(n) => option_list(n)?,
        None => Vec::new(),
    };
    let stem = path
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("test")
        .to_owned();
    let mut file = SuiteFile {
        path: path.to_owned(),
        cases: Vec::new(),
        snapshots: Vec::new(),
    };
    let mut names = std::collections::BTreeSet::new();
    if let Some(list) = top.get("cases") {
        for item in array(list, "cases")? {
            let case = parse_case(item, &policies, &options)?;
            if !names.insert(case.name.clone()) {
                return fail(case.pos, format!("two tests are named `{}`", case.name));
            }
            file.cases.push(case);
        }
    }
    if let Some(list) = top.get("snapshots") {
        for item in array(list, "snapshots")? {
            let snap = parse_snapshot(item, &policies, &options, &stem)?;
            if !names.insert(snap.name.clone()) {
                return fail(snap.pos, format!("two tests are named `{}`", snap.name));
            }
            file.snapshots.push(snap);
        }
    }
    if file.cases.is_empty() && file.snapshots.is_empty() {
        return fail(root.pos, "no tests: give `cases`, `snapshots` or both");
    }
    Ok(file)
}

fn parse_case(item: &Node, policies: &[String], options: &[String]) -> Result<Case> {
    let f = Fields::of(
        item,
        "a case",
        &[
            "name", "policy", "options", "calls", "trace", "expect", "counts",
        ],
    )?;
    let name = f.required_string("name")?;
    let policies = f.policies("policy", policies)?;
    let options = f.options(options)?;
    let input = match (f.get("calls"), f.get("trace")) {
        (Some(calls), None) => CaseInput::Calls(inline_calls(calls)?),
        (None, Some(trace)) => CaseInput::Trace(strings(trace, "trace")?),
        (Some(_), Some(t)) => return fail(t.pos, "give `calls` or `trace`, not both"),
        (None, None) => return fail(item.pos, format!("case `{name}`: give `calls` or `trace`")),
    };
    let expect = match f.get("expect") {
        None => Expect::Nothing,
        Some(n) => match &n.kind {
            Kind::Array(items) => Expect::Each(items.iter().map(expected).collect::<Result<_>>()?),
            Kind::Object(members) => Expect::Chosen(
                members
                    .iter()
                    .map(|m| Ok((selector(&m.key, m.key_pos)?, expected(&m.value)?)))
                    .collect::<Result<_>>()?,
            ),
            _ => {
                return fail(
                    n.pos,
                    "`expect` must be a list (every call in order) or a mapping from `#N` or a request id to a decision",
                );
            }
        },
    };
    let counts = match f.get("counts") {
        None => Vec::new(),
        Some(n) => {
            let Kind::Object(members) = &n.kind else {
                return fail(n.pos, "`counts` must map decisions to numbers of calls");
            };
            members
                .iter()
                .map(|m| Ok((decision(&m.key, m.key_pos)?, count(&m.value)?)))
                .collect::<Result<_>>()?
        }
    };
    if matches!(expect, Expect::Nothing) && counts.is_empty() {
        return fail(
            item.pos,
            format!("case `{name}` expects nothing: give `expect`, `counts` or both"),
        );
    }
    if policies.is_empty() && !binds_dir(&options) {
        return fail(
            item.pos,
            format!(
                "case `{name}` has no policy: give `policy` here or at the top of the file (or `--policy-dir` in `options`)"
            ),
        );
    }
    Ok(Case {
        name,
        pos: item.pos,
        policies,
        options,
        input,
        expect,
        counts,
    })
}

fn parse_snapshot(
    item: &Node,
    policies: &[String],
    options: &[String],
    stem: &str,
) -> Result<Snapshot> {
    let f = Fields::of(
        item,
        "a snapshot",
        &[
            "name",
            "policy",
            "base",
            "candidate",
            "trace",
            "format",
            "options",
            "file",
        ],
    )?;
    let name = f.required_string("name")?;
    let name_pos = f.get("name").map_or(item.pos, |n| n.pos);
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        return fail(
            name_pos,
            format!(
                "snapshot name `{name}`: use letters, digits, `-`, `_` and `.` only (it names the snapshot file)"
            ),
        );
    }
    let run = match (f.get("base"), f.get("candidate")) {
        (None, None) => {
            let policies = f.policies("policy", policies)?;
            if policies.is_empty() && !binds_dir(&f.options(options)?) {
                return fail(
                    item.pos,
                    format!(
                        "snapshot `{name}` has no policy: give `policy` (or `base` and `candidate` for a diff)"
                    ),
                );
            }
            SnapshotRun::Simulate { policies }
        }
        (Some(base), Some(candidate)) => {
            if let Some(p) = f.get("policy") {
                return fail(
                    p.pos,
                    "a diff snapshot takes `base` and `candidate`, not `policy`",
                );
            }
            SnapshotRun::Diff {
                base: strings(base, "base")?,
                candidate: strings(candidate, "candidate")?,
            }
        }
        (Some(n), None) | (None, Some(n)) => {
            return fail(n.pos, "a diff snapshot needs both `base` and `candidate`");
        }
    };
    let traces = match f.get("trace") {
        Some(n) => strings(n, "trace")?,
        None => return fail(item.pos, format!("snapshot `{name}`: give `trace`")),
    };
    let format = match f.get("format") {
        None => OutputFormat::Table,
        Some(n) => {
            let text = string(n, "format")?;
            <OutputFormat as clap::ValueEnum>::from_str(&text, false).map_err(|_| SpecError {
                pos: n.pos,
                message: format!(
                    "unknown format `{text}` (expected table, markdown, json, jsonl, csv, parquet or html)"
                ),
            })?
        }
    };
    let file = match f.get("file") {
        Some(n) => PathBuf::from(string(n, "file")?),
        None => PathBuf::from("snapshots").join(format!("{stem}__{name}.{}", extension(format))),
    };
    Ok(Snapshot {
        name,
        pos: item.pos,
        run,
        traces,
        format,
        options: f.options(options)?,
        file,
    })
}

/// Whether options bind policies by directory (`--policy-dir DIR` or `--policy-dir=DIR`).
fn binds_dir(options: &[String]) -> bool {
    options
        .iter()
        .any(|o| o == "--policy-dir" || o.starts_with("--policy-dir="))
}

/// The file extension of a snapshot in `format`.
pub fn extension(format: OutputFormat) -> &'static str {
    match format {
        OutputFormat::Table => "txt",
        OutputFormat::Markdown => "md",
        OutputFormat::Json => "json",
        OutputFormat::Jsonl => "jsonl",
        OutputFormat::Csv => "csv",
        OutputFormat::Parquet => "parquet",
        OutputFormat::Html => "html",
    }
}

/// Inline calls as JSONL lines: every call an object with a `tool`; a call without `ts` comes
/// one second after the one before (the first at [`FIRST_TS`]); `repeat: N` makes N calls one
/// second apart.
fn inline_calls(node: &Node) -> Result<Vec<String>> {
    let mut lines = Vec::new();
    let mut next: DateTime<Utc> = DateTime::parse_from_rfc3339(FIRST_TS)
        .expect("a valid constant")
        .with_timezone(&Utc);
    for call in array(node, "calls")? {
        let Kind::Object(members) = &call.kind else {
            return fail(
                call.pos,
                format!("a call must be a mapping, found {}", call.type_name()),
            );
        };
        let mut record = Map::new();
        let mut repeat = 1;
        for m in members {
            match m.key.as_str() {
                "repeat" => {
                    repeat = count(&m.value)?;
                    if repeat == 0 || repeat > 1_000_000 {
                        return fail(m.value.pos, "`repeat` must be 1 to 1,000,000");
                    }
                }
                "ts" => {
                    let Kind::String(text) = &m.value.kind else {
                        return fail(
                            m.value.pos,
                            "`ts` must be an RFC 3339 time, e.g. 2026-01-01T09:00:00Z",
                        );
                    };
                    next = DateTime::parse_from_rfc3339(text)
                        .map_err(|e| SpecError {
                            pos: m.value.pos,
                            message: format!("`ts` {text:?} is not an RFC 3339 time: {e}"),
                        })?
                        .with_timezone(&Utc);
                }
                key => {
                    record.insert(key.to_owned(), m.value.to_value());
                }
            }
        }
        if !matches!(record.get("tool"), Some(Value::String(_))) {
            return fail(call.pos, "a call needs a `tool` name");
        }
        for _ in 0..repeat {
            let mut r = record.clone();
            r.insert(
                "ts".to_owned(),
                Value::String(next.to_rfc3339_opts(SecondsFormat::AutoSi, true)),
            );
            lines.push(Value::Object(r).to_string());
            next += Duration::seconds(1);
        }
    }
    if lines.is_empty() {
        return fail(node.pos, "`calls` is empty");
    }
    Ok(lines)
}

fn expected(node: &Node) -> Result<Expected> {
    match &node.kind {
        Kind::String(s) => Ok(Expected {
            decision: decision(s, node.pos)?,
            rule: None,
            message: None,
        }),
        Kind::Object(_) => {
            let f = Fields::of(
                node,
                "an expected decision",
                &["decision", "rule", "message"],
            )?;
            let d = f.get("decision").ok_or_else(|| SpecError {
                pos: node.pos,
                message: "an expectation needs a `decision`".to_owned(),
            })?;
            Ok(Expected {
                decision: decision(&string(d, "decision")?, d.pos)?,
                rule: f.get("rule").map(|n| string(n, "rule")).transpose()?,
                message: f.get("message").map(|n| string(n, "message")).transpose()?,
            })
        }
        _ => fail(
            node.pos,
            "an expectation is a decision (`deny`) or a mapping with `decision`, `rule`, `message`",
        ),
    }
}

fn selector(key: &str, pos: Pos) -> Result<Selector> {
    match key.strip_prefix('#') {
        Some(n) => match n.parse::<u64>() {
            Ok(n) if n > 0 => Ok(Selector::Index(n)),
            _ => fail(pos, format!("`{key}`: `#N` takes a call number from 1")),
        },
        None if key.is_empty() => fail(pos, "an empty request id"),
        None => Ok(Selector::Id(key.to_owned())),
    }
}

fn decision(s: &str, pos: Pos) -> Result<DecisionKind> {
    DecisionKind::parse(s).ok_or_else(|| SpecError {
        pos,
        message: format!(
            "unknown decision `{s}` (expected allow, deny, throttle, approval or unknown)"
        ),
    })
}

fn count(node: &Node) -> Result<u64> {
    match &node.kind {
        Kind::Number(n) if n.as_u64().is_some() => Ok(n.as_u64().unwrap_or_default()),
        _ => fail(
            node.pos,
            format!("expected a whole number, found {}", node.type_name()),
        ),
    }
}

fn array<'a>(node: &'a Node, what: &str) -> Result<&'a [Node]> {
    match &node.kind {
        Kind::Array(items) => Ok(items),
        _ => fail(
            node.pos,
            format!("`{what}` must be a list, found {}", node.type_name()),
        ),
    }
}

fn string(node: &Node, what: &str) -> Result<String> {
    match &node.kind {
        Kind::String(s) => Ok(s.clone()),
        _ => fail(
            node.pos,
            format!("`{what}` must be text, found {}", node.type_name()),
        ),
    }
}

/// Text, or a list of texts.
fn strings(node: &Node, what: &str) -> Result<Vec<String>> {
    match &node.kind {
        Kind::Array(items) => items.iter().map(|n| string(n, what)).collect(),
        _ => Ok(vec![string(node, what)?]),
    }
}

fn option_list(node: &Node) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for n in array(node, "options")? {
        let text = match &n.kind {
            Kind::String(s) => s.clone(),
            Kind::Number(num) => num.to_string(),
            _ => {
                return fail(
                    n.pos,
                    format!("an option must be text, found {}", n.type_name()),
                );
            }
        };
        let flag = text.split('=').next().unwrap_or_default();
        if RESERVED.contains(&flag) {
            return fail(
                n.pos,
                format!("`{flag}` is set by the test itself (`format`, `base`, `candidate`)"),
            );
        }
        out.push(text);
    }
    Ok(out)
}

/// The members of a mapping, checked against the names it may have.
struct Fields<'a> {
    pos: Pos,
    members: &'a [crate::policy::json::Member],
}

impl<'a> Fields<'a> {
    fn of(node: &'a Node, what: &str, allowed: &[&str]) -> Result<Fields<'a>> {
        let Kind::Object(members) = &node.kind else {
            return fail(
                node.pos,
                format!("{what} must be a mapping, found {}", node.type_name()),
            );
        };
        for m in members {
            if !allowed.contains(&m.key.as_str()) {
                let near = crate::policy::nearest_name(&m.key, allowed.iter().copied())
                    .map(|n| format!("; did you mean `{n}`?"))
                    .unwrap_or_default();
                return fail(
                    m.key_pos,
                    format!("unknown field `{}` in {what}{near}", m.key),
                );
            }
        }
        Ok(Fields {
            pos: node.pos,
            members,
        })
    }

    fn get(&self, key: &str) -> Option<&'a Node> {
        self.members
            .iter()
            .rev()
            .find(|m| m.key == key)
            .map(|m| &m.value)
    }

    fn required_string(&self, key: &str) -> Result<String> {
        match self.get(key) {
            Some(n) => string(n, key),
            None => fail(self.pos, format!("a test needs a `{key}`")),
        }
    }

    /// Its own `policy`, else the file's.
    fn policies(&self, key: &str, inherited: &[String]) -> Result<Vec<String>> {
        match self.get(key) {
            Some(n) => strings(n, key),
            None => Ok(inherited.to_vec()),
        }
    }

    /// The file's options, then its own.
    fn options(&self, inherited: &[String]) -> Result<Vec<String>> {
        let mut all = inherited.to_vec();
        if let Some(n) = self.get("options") {
            all.extend(option_list(n)?);
        }
        Ok(all)
    }
}
