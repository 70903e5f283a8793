//! The Intercept YAML dialect (spec §2): parsing with positions, validation that matches the
//! gateway's own checks, and compilation into [`crate::engine::InterceptPolicy`].
//!
//! Validation reports every error of a file at once, each with the path the gateway would
//! name (`tools.create_charge.rules[1].conditions[0]`), refined down to the offending field,
//! and the line and column of the node in the YAML source. The gateway silently ignores
//! fields it does not know; mcpsim accepts such files too but warns, because a misspelt
//! `condtions` quietly turns a rule into something else.

mod parse;
mod re2;
mod yaml;

pub use parse::parse_intercept_str;
pub(crate) use parse::parse_intercept_varied;
pub(crate) use parse::{document_tree, located_tree, policy_keys};

/// One problem found in an Intercept policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterceptIssue {
    /// What is wrong, worded like the gateway's own message where it has one.
    pub message: String,
    /// Where in the document: `tools.<tool>.rules[<i>].conditions[<j>].op`; empty for the whole file.
    pub path: String,
    /// 1-based line in the YAML source.
    pub line: usize,
    /// 1-based column (in characters) in the YAML source.
    pub column: usize,
}

/// The result of reading an Intercept policy: the compiled policy when there are no errors,
/// and every error and warning found.
#[derive(Debug, Clone)]
pub struct InterceptParse {
    /// The compiled policy; `None` when `errors` is not empty.
    pub policy: Option<crate::engine::InterceptPolicy>,
    /// Problems that make the gateway refuse the file (or YAML it cannot read).
    pub errors: Vec<InterceptIssue>,
    /// Problems the gateway accepts silently (unknown fields).
    pub warnings: Vec<InterceptIssue>,
}
