//! Policy variants for `sweep`: the same document with one limit's max or window changed,
//! compiled as a file with that value written in it would be.
//!
//! The change is made to the parsed document, before validation and compilation, so every
//! message, derived counter name and check is the one a hand-edited file would get.

use super::json::{self, Kind, Member, Node};
use super::{Dialect, LoadOptions, intercept, policylayer};
use crate::engine::Policy;

/// What a sweep changes in one limit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum LimitChange {
    /// What a window admits: `max` of a `policy.json` limit; of an Intercept rule, the cap of
    /// its `rate_limit` or of its binding `lte` condition (an `lt` condition is written as the
    /// cap plus one).
    Max(f64),
    /// The window's length in seconds (Intercept: 60, 3600 or 86400).
    Window(u64),
}

/// A variant could not be made.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum VaryError {
    /// The rule has no max to change.
    #[error("rule `{0}` has no max: {1}")]
    NoMax(String, &'static str),
    /// The value cannot be written into this rule.
    #[error("rule `{rule}`: {message}")]
    Value {
        /// The rule id.
        rule: String,
        /// Why.
        message: String,
    },
}

/// Compile `src` (a policy of either dialect, already known to be valid) with the limit `rule`
/// (as reports name it) changed by `change`.
pub fn vary_limit(
    src: &str,
    opts: &LoadOptions,
    rule: &str,
    change: LimitChange,
) -> Result<Policy, VaryError> {
    let invalid = |message: String| VaryError::Value {
        rule: rule.to_owned(),
        message,
    };
    let (policy, errors) = match opts.dialect.unwrap_or_else(|| Dialect::detect(src)) {
        Dialect::Intercept => {
            let parsed = intercept::parse_intercept_varied(src, rule, change)?;
            let errors: Vec<String> = parsed.errors.into_iter().map(|e| e.message).collect();
            (parsed.policy.map(Policy::from_intercept), errors)
        }
        Dialect::PolicyLayer => {
            let mut root = json::parse(src).map_err(|e| invalid(e.message))?;
            let counter = rule
                .rsplit_once("/limits/")
                .map(|(_, c)| c)
                .ok_or_else(|| VaryError::NoMax(rule.to_owned(), "it is not a limit"))?;
            set_limit(&mut root, counter, change);
            let compiled = policylayer::compile(&root, opts);
            let errors = compiled.errors.into_iter().map(|d| d.message).collect();
            (compiled.policy, errors)
        }
    };
    policy.ok_or_else(|| {
        invalid(match change {
            LimitChange::Max(v) => format!("max {v}: {}", errors.join("; ")),
            LimitChange::Window(s) => format!("window {s}s: {}", errors.join("; ")),
        })
    })
}

/// Set the max or window of every `policy.json` limit that declares `counter`: a counter is
/// shared by name, and its declarations must agree.
fn set_limit(root: &mut Node, counter: &str, change: LimitChange) {
    let Kind::Object(top) = &mut root.kind else {
        return;
    };
    let limit_lists = top
        .iter_mut()
        .flat_map(|m| match (&*m.key, &mut m.value.kind) {
            ("all_tools", Kind::Object(fields)) => fields.iter_mut().collect::<Vec<_>>(),
            ("tools", Kind::Object(tools)) => (tools.iter_mut())
                .flat_map(|t| match &mut t.value.kind {
                    Kind::Object(fields) => fields.iter_mut().collect(),
                    _ => Vec::new(),
                })
                .collect(),
            _ => Vec::new(),
        });
    for list in limit_lists.filter(|m| m.key == "limits") {
        let Kind::Array(limits) = &mut list.value.kind else {
            continue;
        };
        for limit in limits {
            let Kind::Object(fields) = &mut limit.kind else {
                continue;
            };
            let named = fields.iter().any(|f| {
                f.key == "counter" && matches!(&f.value.kind, Kind::String(s) if s == counter)
            });
            if named {
                set_field(fields, change);
            }
        }
    }
}

fn set_field(fields: &mut [Member], change: LimitChange) {
    let (key, kind) = match change {
        LimitChange::Max(v) => (
            "max",
            // A whole number is written as one, as a user would.
            match serde_json::Number::from_f64(v) {
                Some(_) if v.fract() == 0.0 && v.abs() < 1e15 => Kind::Number((v as i64).into()),
                Some(n) => Kind::Number(n),
                None => Kind::Null,
            },
        ),
        LimitChange::Window(secs) => (
            "window",
            // A named window is written by name, which `--strict-dialect` also reads.
            match unit_name(secs) {
                Some(unit) => Kind::String(unit.to_owned()),
                None => Kind::Number(secs.into()),
            },
        ),
    };
    for f in fields.iter_mut().filter(|f| f.key == key) {
        f.value.kind = kind.clone();
    }
}

/// The window's name when it has one (`minute` for 60).
pub(crate) fn unit_name(secs: u64) -> Option<&'static str> {
    match secs {
        1 => Some("second"),
        60 => Some("minute"),
        3_600 => Some("hour"),
        86_400 => Some("day"),
        _ => None,
    }
}
