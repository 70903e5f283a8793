//! `mcpsim check POLICY...`: validate and lint policy files.

use std::io::Write;
use std::path::PathBuf;

use crate::policy::{
    Diagnostic, Dialect, LoadOptions, check_policy_str, read_policy_file, render_diagnostics,
};

/// Arguments of `mcpsim check`.
#[derive(clap::Args, Debug)]
pub struct CheckArgs {
    /// Policy files to validate; a directory stands for its policy files (`.json`, `.yaml`,
    /// `.yml`; policy tests `*_test.yaml` left out)
    #[arg(required = true)]
    pub policies: Vec<PathBuf>,
    /// Reject mcpsim extensions (accept only what the gateway itself reads)
    #[arg(long)]
    pub strict_dialect: bool,
    /// Read every file as this dialect (`policylayer` or `intercept`) instead of detecting it
    #[arg(long)]
    pub dialect: Option<Dialect>,
    /// How to print diagnostics: `human` (with the line and a caret), `github` (workflow
    /// annotations) or `sarif` (SARIF 2.1.0 for code-scanning views), all on standard output
    /// but `human`'s.
    #[arg(long, value_enum, default_value = "human", value_name = "FORMAT")]
    pub format: CheckFormat,
}

/// The output formats of `check`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CheckFormat {
    /// Like a compiler: the line, a caret and the JSON path, on standard error.
    Human,
    /// GitHub Actions workflow commands: `::error file=…,line=…,col=…::message`.
    Github,
    /// One SARIF 2.1.0 log with a result per diagnostic.
    Sarif,
}

/// Validate every file. Diagnostics go to `err` like a compiler's; `ok:` lines go to `out`.
/// Returns the exit code: 0 when no file has errors (warnings allowed), 2 otherwise.
pub fn run(args: &CheckArgs, out: &mut dyn Write, err: &mut dyn Write) -> anyhow::Result<u8> {
    let opts = LoadOptions {
        strict_dialect: args.strict_dialect,
        dialect: args.dialect,
    };
    let mut failed = false;
    let mut found: Vec<(String, Diagnostic)> = Vec::new();
    let human = args.format == CheckFormat::Human;
    let mut paths = Vec::new();
    for path in &args.policies {
        if path.is_dir() {
            paths.extend(super::common::policy_files(path)?);
        } else {
            paths.push(path.clone());
        }
    }
    for path in &paths {
        let file = path.display().to_string();
        let src = match read_policy_file(path) {
            Ok(src) => src,
            Err(d) if !human => {
                found.push((file, d));
                failed = true;
                continue;
            }
            Err(d) => {
                render_diagnostics("", &file, &[d], err)?;
                writeln!(err, "error: {file}: 1 error")?;
                failed = true;
                continue;
            }
        };
        let report = check_policy_str(&src, &opts);
        let mut diags: Vec<Diagnostic> = report
            .errors
            .iter()
            .chain(&report.warnings)
            .cloned()
            .collect();
        diags.sort_by_key(|d| (d.line, d.column));
        if !human {
            failed |= report.policy.is_none();
            found.extend(diags.into_iter().map(|d| (file.clone(), d)));
            continue;
        }
        render_diagnostics(&src, &file, &diags, err)?;
        let warnings = counted(report.warnings.len(), "warning");
        match &report.policy {
            Some(policy) => {
                writeln!(
                    out,
                    "ok: {file} ({}, {}){}",
                    counted(policy.tool_count(), "tool"),
                    counted(policy.limit_count(), "limit"),
                    if report.warnings.is_empty() {
                        String::new()
                    } else {
                        format!(", {warnings}")
                    }
                )?;
            }
            None => {
                failed = true;
                writeln!(
                    err,
                    "error: {file}: {}, {warnings}",
                    counted(report.errors.len(), "error")
                )?;
            }
        }
    }
    match args.format {
        CheckFormat::Human => {}
        CheckFormat::Github => {
            for (file, d) in &found {
                writeln!(out, "{}", github_annotation(file, d))?;
            }
        }
        CheckFormat::Sarif => {
            serde_json::to_writer_pretty(&mut *out, &sarif(&found))?;
            writeln!(out)?;
        }
    }
    Ok(if failed { 2 } else { 0 })
}

/// A GitHub Actions workflow command for one diagnostic (`::error file=…,line=…,col=…::…`),
/// escaped as the runner expects.
fn github_annotation(file: &str, d: &Diagnostic) -> String {
    let data = |s: &str| {
        s.replace('%', "%25")
            .replace('\r', "%0D")
            .replace('\n', "%0A")
    };
    let property = |s: &str| data(s).replace(':', "%3A").replace(',', "%2C");
    // In the order the Actions toolkit (`@actions/core`) writes them.
    let mut props = vec![
        "title=mcpsim check".to_owned(),
        format!("file={}", property(file)),
    ];
    if d.line > 0 {
        props.push(format!("line={}", d.line));
        props.push(format!("col={}", d.column.max(1)));
    }
    let message = if d.json_path.is_empty() {
        d.message.clone()
    } else {
        format!("{} (at {})", d.message, d.json_path)
    };
    format!(
        "::{} {}::{}",
        d.severity.as_str(),
        props.join(","),
        data(&message)
    )
}

/// A SARIF 2.1.0 log: one run of mcpsim, a result per diagnostic, located by file, line and
/// column (a diagnostic without a position names the file only).
fn sarif(found: &[(String, Diagnostic)]) -> serde_json::Value {
    use serde_json::json;
    let results: Vec<serde_json::Value> = found
        .iter()
        .map(|(file, d)| {
            let mut location = json!({ "artifactLocation": { "uri": sarif_uri(file) } });
            if d.line > 0 {
                location["region"] = json!({ "startLine": d.line, "startColumn": d.column.max(1) });
            }
            let mut result = json!({
                "ruleId": format!("policy-{}", d.severity.as_str()),
                "level": d.severity.as_str(),
                "message": { "text": d.message },
                "locations": [ { "physicalLocation": location } ],
            });
            if !d.json_path.is_empty() {
                result["locations"][0]["logicalLocations"] =
                    json!([ { "fullyQualifiedName": d.json_path, "kind": "member" } ]);
            }
            result
        })
        .collect();
    json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [ {
            "tool": { "driver": {
                "name": "mcpsim",
                "version": env!("CARGO_PKG_VERSION"),
                "rules": [
                    { "id": "policy-error", "shortDescription": { "text": "The policy cannot be used as written" } },
                    { "id": "policy-warning", "shortDescription": { "text": "The policy works, probably not as intended" } }
                ]
            } },
            "results": results,
        } ]
    })
}

/// A file path as a SARIF artifact URI (RFC 3986): a relative path stays a relative reference,
/// an absolute one becomes a `file:` URI; every byte outside the unreserved and sub-delimiter
/// characters is percent-encoded (`:` too, which would read as a scheme).
fn sarif_uri(path: &str) -> String {
    let mut out = String::new();
    if path.starts_with('/') {
        out.push_str("file://");
    }
    for b in path.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'/' => {
                out.push(b as char)
            }
            b'!' | b'$' | b'&' | b'\'' | b'(' | b')' | b'*' | b'+' | b',' | b';' | b'=' | b'@' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

fn counted(n: usize, noun: &str) -> String {
    format!("{n} {noun}{}", if n == 1 { "" } else { "s" })
}
