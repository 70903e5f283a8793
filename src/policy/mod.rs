//! Policy files: parsing, validation with located errors, compilation for the engine.
//!
//! A policy document is parsed by a small position-keeping JSON parser, validated field by
//! field (every error of the file is collected, each with line, column and JSON path), and
//! compiled into the [`engine::Policy`](crate::engine::Policy) the evaluator runs.

mod diagnostic;
pub mod intercept;
pub(crate) mod json;
mod policylayer;
mod structure;
mod vary;

use std::path::Path;

pub use diagnostic::{Diagnostic, PolicyErrors, Severity, render_diagnostics};
pub(crate) use policylayer::suggest as nearest_name;
pub use structure::{PolicyChange, policy_changes};
pub use vary::{LimitChange, VaryError, vary_limit};

use crate::engine::Policy;

/// How strictly to read a policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LoadOptions {
    /// `--strict-dialect`: reject mcpsim extensions (`require_approval`, `approve_if`,
    /// `increment_from`, numeric windows, `algorithm`), accepting only what the gateway reads.
    pub strict_dialect: bool,
    /// `--dialect`: read the document as this dialect instead of detecting it from the content.
    pub dialect: Option<Dialect>,
}

/// The policy languages mcpsim reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Dialect {
    /// The hosted gateway's `policy.json` (spec §1).
    PolicyLayer,
    /// The open-source Intercept gateway's YAML (spec §2).
    Intercept,
}

impl Dialect {
    /// The command-line name.
    pub fn as_str(self) -> &'static str {
        match self {
            Dialect::PolicyLayer => "policylayer",
            Dialect::Intercept => "intercept",
        }
    }

    /// Which dialect a document is written in. A document that is a mapping in braces (first
    /// non-blank character `{`) is JSON or YAML flow style, so its keys decide (see
    /// [`Dialect::of_braces`]); an empty document, or one starting like a JSON array, is
    /// `policy.json` (and reported as `policy.json` would be); anything else is Intercept YAML.
    pub fn detect(src: &str) -> Dialect {
        let first = src
            .trim_start_matches('\u{feff}')
            .chars()
            .find(|c| !c.is_whitespace());
        match first {
            Some('{') => Dialect::of_braces(src),
            Some('[') | None => Dialect::PolicyLayer,
            Some(_) => Dialect::Intercept,
        }
    }

    /// The dialect of a mapping in braces, from the keys only one dialect has: `all_tools`, or
    /// a tool's `require`, `deny_if`, `limits`, `on_deny`, `require_approval` or `approve_if`
    /// is `policy.json`; `description`, or a tool's `rules`, is Intercept. A document with
    /// keys of neither (or of both) is `policy.json` when it is JSON, Intercept when it is
    /// YAML but not JSON, and `policy.json` when it is neither, so that its syntax error is
    /// reported as JSON.
    fn of_braces(src: &str) -> Dialect {
        const POLICYLAYER: &[&str] = &[
            "require",
            "deny_if",
            "limits",
            "on_deny",
            "require_approval",
            "approve_if",
        ];
        let json = json::parse(src).ok();
        let keys = match &json {
            Some(root) => Some(json_keys(root)),
            None => intercept::policy_keys(src),
        };
        let Some(keys) = keys else {
            return Dialect::PolicyLayer;
        };
        let policylayer = keys.top.iter().any(|k| k == "all_tools")
            || keys.tool.iter().any(|k| POLICYLAYER.contains(&k.as_str()));
        let intercept =
            keys.top.iter().any(|k| k == "description") || keys.tool.iter().any(|k| k == "rules");
        match (policylayer, intercept) {
            (true, false) => Dialect::PolicyLayer,
            (false, true) => Dialect::Intercept,
            _ if json.is_some() => Dialect::PolicyLayer,
            _ => Dialect::Intercept,
        }
    }
}

/// The keys of a policy document that tell the dialects apart: those of the top-level mapping
/// and those of every tool's mapping (under `tools`).
#[derive(Debug, Default)]
pub(crate) struct PolicyKeys {
    pub(crate) top: Vec<String>,
    pub(crate) tool: Vec<String>,
}

fn json_keys(root: &json::Node) -> PolicyKeys {
    let mut keys = PolicyKeys::default();
    let json::Kind::Object(members) = &root.kind else {
        return keys;
    };
    for m in members {
        keys.top.push(m.key.clone());
        if m.key != "tools" {
            continue;
        }
        let json::Kind::Object(tools) = &m.value.kind else {
            continue;
        };
        for tool in tools {
            if let json::Kind::Object(fields) = &tool.value.kind {
                keys.tool.extend(fields.iter().map(|f| f.key.clone()));
            }
        }
    }
    keys
}

impl std::str::FromStr for Dialect {
    type Err = String;

    fn from_str(s: &str) -> Result<Dialect, String> {
        match s {
            "policylayer" | "json" => Ok(Dialect::PolicyLayer),
            "intercept" | "yaml" => Ok(Dialect::Intercept),
            other => Err(format!(
                "unknown dialect `{other}` (expected `policylayer` or `intercept`)"
            )),
        }
    }
}

impl std::fmt::Display for Dialect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Everything `check` needs to know about one policy document.
#[derive(Debug)]
pub struct CheckReport {
    /// The compiled policy, when there are no errors.
    pub policy: Option<Policy>,
    /// Errors, in file order.
    pub errors: Vec<Diagnostic>,
    /// Warnings, in file order (also for files without errors).
    pub warnings: Vec<Diagnostic>,
}

/// Parse, validate and compile a policy document of either dialect (detected from the content
/// unless `opts.dialect` says), keeping every diagnostic.
pub fn check_policy_str(src: &str, opts: &LoadOptions) -> CheckReport {
    if opts.dialect.unwrap_or_else(|| Dialect::detect(src)) == Dialect::Intercept {
        return check_intercept_str(src);
    }
    let root = match json::parse(src) {
        Ok(root) => root,
        Err(e) => {
            return CheckReport {
                policy: None,
                errors: vec![Diagnostic::error(
                    format!("invalid JSON: {}", e.message),
                    "",
                    e.pos.line,
                    e.pos.column,
                )],
                warnings: Vec::new(),
            };
        }
    };
    let mut compiled = policylayer::compile(&root, opts);
    let order = |d: &Diagnostic| (d.line, d.column);
    compiled.errors.sort_by_key(order);
    compiled.warnings.sort_by_key(order);
    CheckReport {
        policy: compiled.policy,
        errors: compiled.errors,
        warnings: compiled.warnings,
    }
}

/// Parse, validate and compile an Intercept YAML document into a [`CheckReport`].
fn check_intercept_str(src: &str) -> CheckReport {
    let parsed = intercept::parse_intercept_str(src, "");
    let convert = |issues: Vec<intercept::InterceptIssue>, warning: bool| {
        let mut diags: Vec<Diagnostic> = issues
            .into_iter()
            .map(|i| {
                if warning {
                    Diagnostic::warning(i.message, &i.path, i.line, i.column)
                } else {
                    Diagnostic::error(i.message, &i.path, i.line, i.column)
                }
            })
            .collect();
        diags.sort_by_key(|d| (d.line, d.column));
        diags
    };
    CheckReport {
        policy: parsed.policy.map(Policy::from_intercept),
        errors: convert(parsed.errors, false),
        warnings: convert(parsed.warnings, true),
    }
}

/// Parse a policy document with the default options. `file_name` is only used in errors.
pub fn parse_policy_str(src: &str, file_name: &str) -> Result<Policy, PolicyErrors> {
    parse_policy_str_with(src, file_name, &LoadOptions::default())
}

/// Parse a policy document with explicit options.
pub fn parse_policy_str_with(
    src: &str,
    file_name: &str,
    opts: &LoadOptions,
) -> Result<Policy, PolicyErrors> {
    let report = check_policy_str(src, opts);
    match report.policy {
        Some(policy) => Ok(policy),
        None => Err(PolicyErrors {
            file: file_name.to_string(),
            errors: report.errors,
            warnings: report.warnings,
        }),
    }
}

/// Read, parse, validate and compile a policy file with the default options.
pub fn load_policy_file(path: &Path) -> Result<Policy, PolicyErrors> {
    load_policy_file_with(path, &LoadOptions::default())
}

/// Read, parse, validate and compile a policy file with explicit options.
pub fn load_policy_file_with(path: &Path, opts: &LoadOptions) -> Result<Policy, PolicyErrors> {
    let file = path.display().to_string();
    let src = read_policy_file(path).map_err(|d| PolicyErrors {
        file: file.clone(),
        errors: vec![d],
        warnings: Vec::new(),
    })?;
    parse_policy_str_with(&src, &file, opts)
}

/// Read a policy file as UTF-8, turning failures into a diagnostic without position.
pub(crate) fn read_policy_file(path: &Path) -> Result<String, Diagnostic> {
    let bytes = std::fs::read(path)
        .map_err(|e| Diagnostic::error(format!("cannot read policy file: {e}"), "", 0, 0))?;
    String::from_utf8(bytes).map_err(|e| {
        Diagnostic::error(
            format!(
                "policy file is not valid UTF-8 (byte offset {})",
                e.utf8_error().valid_up_to()
            ),
            "",
            0,
            0,
        )
    })
}
