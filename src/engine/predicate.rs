//! Predicate evaluation over JSON argument values, shared by every policy dialect.
//!
//! The missing-path rule lives here: a path that does not resolve makes every operator except
//! `exists` fail. Operators never coerce types (except `eq`/`neq` under [`EqMode::Printed`]).

use regex::Regex;
use serde_json::{Map, Value};

use super::gofmt::{self, Numbers};
use crate::call::{ArgLookup, ArgsRef, lookup_in_map};

/// Compiled size past which a pattern is refused (the regex crate's default, named here).
const REGEX_SIZE_LIMIT: usize = 10 << 20;

/// Cache of a pattern's lazy DFA. A pattern with a large bounded repetition (`\w{200}x`)
/// needs DFA states far larger than the crate's default cache: the DFA gave up on a long
/// argument and a matcher linear in the pattern's size took over (seconds per call on 1 MB).
/// The cache grows only as states are built.
const REGEX_DFA_LIMIT: usize = 64 << 20;

/// Compile a policy's `regex` value with the limits above; every dialect compiles its
/// patterns here.
pub(crate) fn compile_regex(pattern: &str) -> Result<Regex, regex::Error> {
    regex::RegexBuilder::new(pattern)
        .size_limit(REGEX_SIZE_LIMIT)
        .dfa_size_limit(REGEX_DFA_LIMIT)
        .build()
}

/// Repetition counts above this are worth a warning: matching cost grows with them.
pub(crate) const LARGE_REPETITION: u64 = 100;

/// The largest bounded repetition count (`{n}`, `{n,}`, `{n,m}`) in `pattern`, when above
/// [`LARGE_REPETITION`]. A textual scan, good enough for a warning: escaped braces and
/// braces inside classes are skipped.
pub(crate) fn large_repetition(pattern: &str) -> Option<u64> {
    let b = pattern.as_bytes();
    let (mut i, mut class, mut largest) = (0, false, 0u64);
    while i < b.len() {
        match b[i] {
            b'\\' => i += 1,
            b'[' => class = true,
            b']' => class = false,
            b'{' if !class => {
                let end = b[i..].iter().position(|&c| c == b'}').map(|e| i + e);
                if let Some(end) = end {
                    let inner = &pattern[i + 1..end];
                    let counts: Vec<&str> = inner.split(',').collect();
                    if counts.len() <= 2
                        && counts.iter().all(|c| c.bytes().all(|d| d.is_ascii_digit()))
                    {
                        for c in counts.iter().filter(|c| !c.is_empty()) {
                            largest = largest.max(c.parse().unwrap_or(u64::MAX));
                        }
                    }
                }
            }
            _ => {}
        }
        i += 1;
    }
    (largest > LARGE_REPETITION).then_some(largest)
}

/// How `eq`/`neq` (and `in`, `not_in`, array `contains`) compare two JSON values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum EqMode {
    /// Numbers by value (5 equals 5.0), everything else exactly (`"5"` is not `5`).
    #[default]
    Strict,
    /// Numbers by value, everything else by printed form (`"5"` equals `5`), as the Intercept
    /// gateway compares: the argument's numbers print as Go `float64`s (`1e+06`), the policy
    /// value's integers as Go `int`s.
    Printed,
    /// [`EqMode::Printed`] for a counter value, which is a Go `int64` and prints as one.
    PrintedCounter,
}

/// A path below `args`, split into object keys (no array indexing).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ArgPath {
    /// The path as written, `args.` prefix included (used in rule ids and messages).
    pub(crate) text: Box<str>,
    /// The keys after `args.`; never empty.
    pub(crate) keys: Box<[Box<str>]>,
}

impl ArgPath {
    /// Parse `args.a.b`. `None` unless it starts with `args.` and has no empty key.
    pub(crate) fn parse(text: &str) -> Option<ArgPath> {
        let rest = text.strip_prefix("args.")?;
        let keys: Vec<Box<str>> = rest.split('.').map(Box::from).collect();
        if keys.iter().any(|k| k.is_empty()) {
            return None;
        }
        Some(ArgPath {
            text: Box::from(text),
            keys: keys.into_boxed_slice(),
        })
    }

    /// Walk the argument object; `None` when any key is absent or a step is not an object.
    pub(crate) fn lookup<'v>(&self, args: &'v Map<String, Value>) -> Option<&'v Value> {
        lookup_in_map(args, &self.keys)
    }

    /// What recorded arguments hold at this path, read without building their map.
    pub(crate) fn find<'a>(&self, args: ArgsRef<'a>) -> ArgLookup<'a> {
        args.lookup(&self.keys)
    }
}

/// A compiled operator with its policy value.
#[derive(Debug, Clone)]
pub(crate) enum Op {
    /// Equal.
    Eq(Value),
    /// Present and not equal.
    Neq(Value),
    /// Equal to one of the list.
    In(Vec<Value>),
    /// Present and equal to none of the list.
    NotIn(Vec<Value>),
    /// Number below.
    Lt(f64),
    /// Number at most.
    Lte(f64),
    /// Number above.
    Gt(f64),
    /// Number at least.
    Gte(f64),
    /// String with an unanchored match.
    Regex(Regex),
    /// Substring of a string, or element of an array.
    Contains(Value),
    /// Element of an array only: an Intercept `contains` whose value is not a Go string (a
    /// timestamp or an unsigned integer, held here in printed form) never matches a string.
    ContainsElement(Value),
    /// Present and non-null (`true`) or not (`false`).
    Exists(bool),
}

impl Op {
    /// The operator's name as written in policies.
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Op::Eq(_) => "eq",
            Op::Neq(_) => "neq",
            Op::In(_) => "in",
            Op::NotIn(_) => "not_in",
            Op::Lt(_) => "lt",
            Op::Lte(_) => "lte",
            Op::Gt(_) => "gt",
            Op::Gte(_) => "gte",
            Op::Regex(_) => "regex",
            Op::Contains(_) | Op::ContainsElement(_) => "contains",
            Op::Exists(_) => "exists",
        }
    }
}

/// Compare two JSON values under `mode`.
pub(crate) fn json_eq(a: &Value, b: &Value, mode: EqMode) -> bool {
    if let (Value::Number(x), Value::Number(y)) = (a, b) {
        return match (x.as_f64(), y.as_f64()) {
            (Some(x), Some(y)) => x == y,
            _ => x == y,
        };
    }
    match mode {
        EqMode::Strict => deep_eq(a, b),
        EqMode::Printed | EqMode::PrintedCounter => match (a, b) {
            (Value::String(x), Value::String(y)) => x == y,
            _ => {
                let arg = match mode {
                    EqMode::PrintedCounter => Numbers::IntOrFloat,
                    _ => Numbers::Float,
                };
                printed(a, arg) == printed(b, Numbers::IntOrFloat)
            }
        },
    }
}

/// JSON values equal under [`EqMode::Strict`]: numbers by value at any depth (`{"cpu": 4.0}`
/// equals `{"cpu": 4}`, as a gateway that reads JSON numbers as doubles finds), everything else
/// exactly (`"5"` is not `5`; object keys in any order).
fn deep_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_f64(), y.as_f64()) {
            (Some(x), Some(y)) => x == y,
            _ => x == y,
        },
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| deep_eq(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| deep_eq(v, w)))
        }
        _ => a == b,
    }
}

/// The printed form of a value as the Intercept gateway (Go's `%v`) prints it: strings without
/// quotes, `<nil>`, `[a b]`, `map[k:v]`.
fn printed(v: &Value, numbers: Numbers) -> std::borrow::Cow<'_, str> {
    match v {
        Value::String(s) => std::borrow::Cow::Borrowed(s),
        other => std::borrow::Cow::Owned(gofmt::printed(other, numbers)),
    }
}

/// Does the operator hold for the resolved argument (`None` = path missing)?
pub(crate) fn holds(op: &Op, arg: Option<&Value>, mode: EqMode) -> bool {
    let Some(arg) = arg else {
        return matches!(op, Op::Exists(false));
    };
    match op {
        Op::Exists(want) => *want != arg.is_null(),
        Op::Eq(v) => json_eq(arg, v, mode),
        Op::Neq(v) => !json_eq(arg, v, mode),
        Op::In(list) => list.iter().any(|v| json_eq(arg, v, mode)),
        Op::NotIn(list) => !list.iter().any(|v| json_eq(arg, v, mode)),
        Op::Lt(n) => arg.as_f64().is_some_and(|a| a < *n),
        Op::Lte(n) => arg.as_f64().is_some_and(|a| a <= *n),
        Op::Gt(n) => arg.as_f64().is_some_and(|a| a > *n),
        Op::Gte(n) => arg.as_f64().is_some_and(|a| a >= *n),
        Op::Regex(re) => arg.as_str().is_some_and(|s| re.is_match(s)),
        Op::Contains(v) => match arg {
            Value::String(s) => v.as_str().is_some_and(|needle| s.contains(needle)),
            Value::Array(items) => items.iter().any(|item| json_eq(item, v, mode)),
            _ => false,
        },
        Op::ContainsElement(v) => match arg {
            Value::Array(items) => items.iter().any(|item| json_eq(item, v, mode)),
            _ => false,
        },
    }
}

/// A predicate's verdict on a call whose arguments may be only partly recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Truth {
    /// The predicate holds.
    Holds,
    /// The predicate does not hold.
    Fails,
    /// The trace did not record what the predicate needs.
    Unknown,
}

impl From<bool> for Truth {
    fn from(b: bool) -> Truth {
        if b { Truth::Holds } else { Truth::Fails }
    }
}

/// Whether the call's recorded arguments leave `path` out (not a `null` value: no value).
pub(crate) fn is_absent(path: &ArgPath, args: ArgsRef<'_>) -> bool {
    match path.find(args) {
        ArgLookup::Value(value) => value.is_none(),
        ArgLookup::TopKey(present) => !present,
        ArgLookup::Unrecorded => false,
    }
}

/// What `op` gives for an argument that is present, when that does not depend on its value:
/// `in []` never holds and `not_in []` always does.
fn for_every_value(op: &Op) -> Option<bool> {
    match op {
        Op::In(list) if list.is_empty() => Some(false),
        Op::NotIn(list) if list.is_empty() => Some(true),
        _ => None,
    }
}

/// Evaluate a predicate against what the trace recorded.
///
/// With only top-level keys recorded: a key absent from the list is a missing argument (so the
/// missing-path rule decides), `exists` on a recorded top-level key holds (logs that keep keys
/// list the arguments that were sent; a key sent as `null` cannot be told apart), and anything
/// else needs the value and is unknown. With nothing recorded a predicate is unknown. In both,
/// a predicate whose verdict is the same whatever was sent (`in []` fails on any value and on
/// a missing path) is decided.
pub(crate) fn eval(path: &ArgPath, op: &Op, args: ArgsRef<'_>, mode: EqMode) -> Truth {
    // Present (with some value), or maybe missing too.
    let unseen = |maybe_missing: bool| match for_every_value(op) {
        Some(v) if !maybe_missing || v == holds(op, None, mode) => v.into(),
        _ => Truth::Unknown,
    };
    match path.find(args) {
        ArgLookup::Value(value) => holds(op, value.as_deref(), mode).into(),
        ArgLookup::TopKey(false) => holds(op, None, mode).into(),
        ArgLookup::TopKey(true) => match (op, path.keys.len()) {
            (Op::Exists(want), 1) => (*want).into(),
            (_, keys) => unseen(keys > 1),
        },
        ArgLookup::Unrecorded => unseen(true),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::call::Args;
    use serde_json::json;

    #[test]
    fn printed_mode_equates_string_and_number() {
        assert!(!json_eq(&json!("5"), &json!(5), EqMode::Strict));
        assert!(json_eq(&json!("5"), &json!(5), EqMode::Printed));
        assert!(json_eq(&json!(5), &json!(5.0), EqMode::Strict));
        assert!(json_eq(&json!(true), &json!("true"), EqMode::Printed));
    }

    /// Numbers inside arrays and objects compare by value too; the rest stays exact.
    #[test]
    fn strict_mode_compares_nested_numbers_by_value() {
        let eq = |a: serde_json::Value, b: serde_json::Value| json_eq(&a, &b, EqMode::Strict);
        assert!(eq(json!({"cpu": 4.0}), json!({"cpu": 4})));
        assert!(eq(json!([1.0, 2]), json!([1, 2.0])));
        assert!(eq(
            json!({"a": [{"b": 3}], "c": "x"}),
            json!({"c": "x", "a": [{"b": 3.0}]})
        ));
        assert!(!eq(json!({"cpu": "4"}), json!({"cpu": 4})));
        assert!(!eq(json!([1, 2]), json!([2, 1])));
        assert!(!eq(json!([1, 2]), json!([1, 2, 3])));
        assert!(!eq(json!({"a": 1}), json!({"a": 1, "b": 1})));
        assert!(!eq(json!({"a": 1, "b": 2}), json!({"a": 1, "c": 2})));
    }

    /// Unrecorded values decide only the predicates that no value could change.
    #[test]
    fn empty_lists_are_decided_without_the_value() {
        let keys = Args::Keys(vec!["x".into()]);
        let verdict = |path: &str, op: Op, args: &Args| {
            let path = ArgPath::parse(path).expect("path");
            eval(&path, &op, args.into(), EqMode::Strict)
        };
        let in_none = || Op::In(vec![]);
        let not_in_none = || Op::NotIn(vec![]);
        // `in []`: fails on every value and on a missing path.
        assert_eq!(verdict("args.x", in_none(), &keys), Truth::Fails);
        assert_eq!(verdict("args.x.y", in_none(), &keys), Truth::Fails);
        assert_eq!(
            verdict("args.x", in_none(), &Args::Unrecorded),
            Truth::Fails
        );
        // `not_in []`: holds on a value, fails on a missing path.
        assert_eq!(verdict("args.x", not_in_none(), &keys), Truth::Holds);
        assert_eq!(verdict("args.z", not_in_none(), &keys), Truth::Fails);
        assert_eq!(verdict("args.x.y", not_in_none(), &keys), Truth::Unknown);
        assert_eq!(
            verdict("args.x", not_in_none(), &Args::Unrecorded),
            Truth::Unknown
        );
        // A list with members needs the value.
        assert_eq!(
            verdict("args.x", Op::In(vec![json!(1)]), &keys),
            Truth::Unknown
        );
    }

    #[test]
    fn arg_path_rejects_empty_keys_and_other_roots() {
        assert!(ArgPath::parse("args.a..b").is_none());
        assert!(ArgPath::parse("state.a").is_none());
        assert!(ArgPath::parse("args.").is_none());
        assert_eq!(ArgPath::parse("args.a.b").map(|p| p.keys.len()), Some(2));
    }
}

#[cfg(test)]
mod regex_limit_tests {
    use super::*;

    #[test]
    fn large_bounded_repetitions_are_found() {
        assert_eq!(large_repetition(r"\w{200}x"), Some(200));
        assert_eq!(large_repetition(r"a{2,5000}"), Some(5000));
        assert_eq!(large_repetition(r"a{101,}"), Some(101));
        assert_eq!(large_repetition(r"a{100}"), None);
        assert_eq!(large_repetition(r"\{500}"), None);
        assert_eq!(large_repetition(r"[{]500}"), None);
        assert_eq!(large_repetition(r"^tmp/.*$"), None);
        assert!(compile_regex(r"\w{200}x").is_ok());
        // Past the size limit: refused with the crate's message.
        let err = compile_regex(r"\w{1000}{1000}").unwrap_err().to_string();
        assert!(err.contains("exceeds size limit"), "{err}");
    }
}
