//! What changed between two policy files, rule by rule: the structural diff `diff` opens with.
//!
//! Both documents are read as trees (YAML scalars as their text) and compared by path. Lists of
//! objects are matched by what names their items, not by position, so inserting a limit does not
//! show every later one as changed: limits by `counter`, Intercept rules by `name`, predicates by
//! `path` and `op`; other lists by position. Paths are written like rule ids:
//! `/tools/x/limits/y/max`.

use std::collections::BTreeSet;

use serde_json::Value;

use super::{Dialect, read_policy_file};

/// One change between a base and a candidate policy.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PolicyChange {
    /// Where: `/tools/x/limits/y/max`.
    pub path: String,
    /// `added`, `removed` or `changed`.
    pub change: &'static str,
    /// The base's value (absent for `added`), as written.
    pub base: Option<String>,
    /// The candidate's value (absent for `removed`), as written.
    pub candidate: Option<String>,
}

/// The changes from the policy file `base` to `candidate`, in path order; `None` when either
/// cannot be read as a tree.
pub fn policy_changes(base: &str, candidate: &str) -> Option<Vec<PolicyChange>> {
    let (b, c) = (tree_of(base)?, tree_of(candidate)?);
    let mut out = Vec::new();
    compare("", &b, &c, &mut out);
    out.sort_by(|x, y| x.path.cmp(&y.path));
    Some(out)
}

fn tree_of(file: &str) -> Option<Value> {
    let src = read_policy_file(std::path::Path::new(file)).ok()?;
    match Dialect::detect(&src) {
        Dialect::PolicyLayer => serde_json::from_str(&src).ok(),
        Dialect::Intercept => super::intercept::document_tree(&src),
    }
}

fn shown(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// What names an item of a list of objects, if the list's items all have it (and it is unique).
fn item_keys(items: &[Value]) -> Option<Vec<String>> {
    let key = |v: &Value| -> Option<String> {
        let o = v.as_object()?;
        let text = |k: &str| o.get(k).map(shown);
        text("counter")
            .or_else(|| text("name"))
            .or_else(|| Some(format!("{}-{}", text("path")?, text("op")?)))
    };
    let keys: Option<Vec<String>> = items.iter().map(key).collect();
    let keys = keys?;
    let unique: BTreeSet<&String> = keys.iter().collect();
    (unique.len() == keys.len()).then_some(keys)
}

fn compare(path: &str, b: &Value, c: &Value, out: &mut Vec<PolicyChange>) {
    let mut change = |path: String, kind, base: Option<&Value>, cand: Option<&Value>| {
        out.push(PolicyChange {
            path,
            change: kind,
            base: base.map(shown),
            candidate: cand.map(shown),
        })
    };
    match (b, c) {
        (Value::Object(bo), Value::Object(co)) => {
            let keys: BTreeSet<&String> = bo.keys().chain(co.keys()).collect();
            for k in keys {
                let p = format!("{path}/{k}");
                match (bo.get(k), co.get(k)) {
                    (Some(x), Some(y)) => compare(&p, x, y, out),
                    (Some(x), None) => out.push(whole(p, "removed", Some(x), None)),
                    (None, Some(y)) => out.push(whole(p, "added", None, Some(y))),
                    (None, None) => {}
                }
            }
        }
        (Value::Array(ba), Value::Array(ca)) => match (item_keys(ba), item_keys(ca)) {
            (Some(bk), Some(ck)) => {
                for (i, k) in bk.iter().enumerate() {
                    let p = format!("{path}/{k}");
                    match ck.iter().position(|x| x == k) {
                        Some(j) => compare(&p, &ba[i], &ca[j], out),
                        None => out.push(whole(p, "removed", Some(&ba[i]), None)),
                    }
                }
                for (j, k) in ck.iter().enumerate() {
                    if !bk.contains(k) {
                        out.push(whole(format!("{path}/{k}"), "added", None, Some(&ca[j])));
                    }
                }
            }
            _ if ba.iter().chain(ca).all(|v| !v.is_object() && !v.is_array()) => {
                if ba != ca {
                    change(path.to_owned(), "changed", Some(b), Some(c));
                }
            }
            _ => {
                for i in 0..ba.len().max(ca.len()) {
                    let p = format!("{path}/{i}");
                    match (ba.get(i), ca.get(i)) {
                        (Some(x), Some(y)) => compare(&p, x, y, out),
                        (Some(x), None) => out.push(whole(p, "removed", Some(x), None)),
                        (None, Some(y)) => out.push(whole(p, "added", None, Some(y))),
                        (None, None) => {}
                    }
                }
            }
        },
        _ if b != c => change(path.to_owned(), "changed", Some(b), Some(c)),
        _ => {}
    }
}

fn whole(path: String, change: &'static str, b: Option<&Value>, c: Option<&Value>) -> PolicyChange {
    PolicyChange {
        path,
        change,
        base: b.map(shown),
        candidate: c.map(shown),
    }
}
