//! `mcpsim check POLICY...`: validate and lint policy files.

use std::io::Write;
use std::path::PathBuf;

use crate::policy::{
    Diagnostic, Dialect, LoadOptions, check_policy_str, read_policy_file, render_diagnostics,
};

/// Arguments of `mcpsim check`.
#[derive(clap::Args, Debug)]
pub struct CheckArgs {
    /// Policy files to validate
    #[arg(required = true)]
    pub policies: Vec<PathBuf>,
    /// Reject mcpsim extensions (accept only what the gateway itself reads)
    #[arg(long)]
    pub strict_dialect: bool,
    /// Read every file as this dialect (`policylayer` or `intercept`) instead of detecting it
    #[arg(long)]
    pub dialect: Option<Dialect>,
}

/// Validate every file. Diagnostics go to `err` like a compiler's; `ok:` lines go to `out`.
/// Returns the exit code: 0 when no file has errors (warnings allowed), 2 otherwise.
pub fn run(args: &CheckArgs, out: &mut dyn Write, err: &mut dyn Write) -> anyhow::Result<u8> {
    let opts = LoadOptions {
        strict_dialect: args.strict_dialect,
        dialect: args.dialect,
    };
    let mut failed = false;
    for path in &args.policies {
        let file = path.display().to_string();
        let src = match read_policy_file(path) {
            Ok(src) => src,
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
    Ok(if failed { 2 } else { 0 })
}

fn counted(n: usize, noun: &str) -> String {
    format!("{n} {noun}{}", if n == 1 { "" } else { "s" })
}
