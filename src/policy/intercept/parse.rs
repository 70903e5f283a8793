//! YAML → located syntax tree → the gateway's validation → compiled policy.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use saphyr::{MarkedYaml, YamlData};
use serde_json::{Map, Number, Value};

use super::yaml::{self, GoScalar};
use super::{InterceptIssue, InterceptParse, re2};
use crate::engine::gofmt;
use crate::engine::intercept::{
    Condition, Increment, InterceptCounter, InterceptOp, InterceptPolicy, InterceptWindow, Rule,
    RuleMessages, StateBlock, Target,
};
use crate::engine::predicate::{ArgPath, Op};
use crate::policy::json::{Kind as JsonKind, Member, Node, Pos, SyntaxError};
use crate::policy::vary::{LimitChange, VaryError};

const TOP_FIELDS: &[&str] = &["version", "description", "default", "hide", "tools"];
const TOOL_FIELDS: &[&str] = &["rules"];
const RULE_FIELDS: &[&str] = &[
    "name",
    "action",
    "rate_limit",
    "conditions",
    "on_deny",
    "state",
];
const CONDITION_FIELDS: &[&str] = &["path", "op", "value"];
const STATE_FIELDS: &[&str] = &["counter", "window", "increment", "increment_from"];

/// The keys of a YAML document that tell the dialects apart (see
/// [`Dialect::detect`](crate::policy::Dialect::detect)); `None` when it is not YAML.
pub(crate) fn policy_keys(src: &str) -> Option<crate::policy::PolicyKeys> {
    let docs = yaml::load(src).ok()?;
    let mut keys = crate::policy::PolicyKeys::default();
    let YamlData::Mapping(top) = data(docs.first()?) else {
        return Some(keys);
    };
    let text = |k: &MarkedYaml| scalar(k).map(|(t, _, _)| t.to_string());
    for (k, v) in top {
        let Some(key) = text(k) else { continue };
        if key == "tools" {
            if let YamlData::Mapping(tools) = data(v) {
                for tool in tools.values() {
                    if let YamlData::Mapping(fields) = data(tool) {
                        keys.tool.extend(fields.keys().filter_map(text));
                    }
                }
            }
        }
        keys.top.push(key);
    }
    Some(keys)
}

/// A YAML document as a JSON tree, scalars as their text (for the structural diff of policies);
/// `None` when it is not YAML.
pub(crate) fn document_tree(src: &str) -> Option<serde_json::Value> {
    fn tree(node: &MarkedYaml) -> serde_json::Value {
        match data(node) {
            YamlData::Sequence(items) => items.iter().map(tree).collect(),
            YamlData::Mapping(map) => map
                .iter()
                .map(|(k, v)| {
                    (
                        scalar(k).map_or_else(String::new, |s| s.0.to_owned()),
                        tree(v),
                    )
                })
                .collect::<serde_json::Map<_, _>>()
                .into(),
            _ => scalar(node).map_or(serde_json::Value::Null, |s| s.0.into()),
        }
    }
    Some(tree(yaml::load(src).ok()?.first()?))
}

/// A YAML document as a located JSON tree (for files mcpsim reads besides policies, such as
/// policy tests): scalars resolved as the gateway's YAML library does, except that a timestamp
/// or a number Go would print differently keeps its text. An empty document is null.
pub(crate) fn located_tree(src: &str) -> Result<Node, SyntaxError> {
    fn node(n: &MarkedYaml) -> Result<Node, SyntaxError> {
        let at = loc(n);
        let pos = Pos {
            line: at.line,
            column: at.column,
        };
        let kind = match data(n) {
            YamlData::Sequence(items) => {
                JsonKind::Array(items.iter().map(node).collect::<Result<_, _>>()?)
            }
            YamlData::Mapping(map) => {
                let mut members = Vec::with_capacity(map.len());
                for (k, v) in map {
                    let key = scalar(k)
                        .map(|s| s.0.to_owned())
                        .ok_or_else(|| SyntaxError {
                            message: "a mapping key must be a scalar".to_owned(),
                            pos,
                        })?;
                    let at = loc(k);
                    members.push(Member {
                        key,
                        key_pos: Pos {
                            line: at.line,
                            column: at.column,
                        },
                        value: node(v)?,
                    });
                }
                JsonKind::Object(members)
            }
            _ => match (resolved(n), scalar(n)) {
                (Some(Ok(GoScalar::Null)), _) => JsonKind::Null,
                (Some(Ok(GoScalar::Bool(b))), _) => JsonKind::Bool(b),
                (Some(Ok(GoScalar::Int(i))), _) => JsonKind::Number(i.into()),
                (Some(Ok(GoScalar::Uint(u))), _) => JsonKind::Number(u.into()),
                (Some(Ok(GoScalar::Float(f))), Some((text, ..))) => match Number::from_f64(f) {
                    Some(num) => JsonKind::Number(num),
                    None => JsonKind::String(text.to_owned()),
                },
                (Some(Ok(GoScalar::Str(s))), _) => JsonKind::String(s),
                (_, Some((text, ..))) => JsonKind::String(text.to_owned()),
                _ => JsonKind::Null,
            },
        };
        Ok(Node { pos, kind })
    }
    let docs = yaml::load(src).map_err(|e| SyntaxError {
        message: e.info().to_owned(),
        pos: Pos {
            line: e.marker().line(),
            column: e.marker().col() + 1,
        },
    })?;
    match docs.first() {
        Some(doc) => node(doc),
        None => Ok(Node {
            pos: Pos { line: 1, column: 1 },
            kind: JsonKind::Null,
        }),
    }
}

/// Read, validate and compile an Intercept YAML policy. `_file_name` is accepted for symmetry
/// with the JSON dialect's loader; positions are reported as line and column only.
pub fn parse_intercept_str(src: &str, _file_name: &str) -> InterceptParse {
    parse_edited(src, |_| true)
}

/// [`parse_intercept_str`] with the limit of rule `rule` (`<tool>/<rule name>`) changed, as
/// if the file said so: the `rate_limit` shorthand is rewritten, else the rule's binding
/// `lt`/`lte` condition (the cap) or its state block's window.
pub(crate) fn parse_intercept_varied(
    src: &str,
    rule: &str,
    change: LimitChange,
) -> Result<InterceptParse, VaryError> {
    let mut outcome = Ok(());
    let parsed = parse_edited(src, |tools| {
        outcome = vary(tools, rule, change);
        outcome.is_ok()
    });
    outcome.map(|()| parsed)
}

fn vary(tools: &mut [ToolAst], id: &str, change: LimitChange) -> Result<(), VaryError> {
    let fail = |message: String| VaryError::Value {
        rule: id.to_owned(),
        message,
    };
    let (scope, rule) = tools
        .iter_mut()
        .flat_map(|t| {
            let scope = scope_of(&t.name).to_owned();
            let name = t.name.clone();
            (t.rules.iter_mut()).map(move |r| (scope.clone(), format!("{name}/{}", r.name.s), r))
        })
        .find(|(_, rule_id, _)| rule_id == id)
        .map(|(scope, _, r)| (scope, r))
        .ok_or_else(|| VaryError::NoMax(id.to_owned(), "no such rule"))?;
    let whole = |v: f64| -> Result<i64, VaryError> {
        if v.fract() == 0.0 && (1.0..9.0e15).contains(&v) {
            Ok(v as i64)
        } else {
            Err(fail(format!(
                "Intercept limits count whole calls: max {v} is not a whole number of at least 1"
            )))
        }
    };
    let unit = |secs: u64| {
        InterceptWindow::ALL
            .into_iter()
            .find(|w| w.seconds() == secs)
            .map(InterceptWindow::as_str)
            .ok_or_else(|| {
                fail(format!(
                    "Intercept windows are a minute, an hour or a day (60, 3600 or 86400 seconds), not {secs}s"
                ))
            })
    };
    let shorthand = !rule.rate_limit.s.is_empty()
        && rule.conditions.is_empty()
        && rule.state.is_none()
        && rule.action.s != "deny";
    if shorthand {
        let (count, window) = parse_rate_limit(&rule.rate_limit.s).map_err(fail)?;
        rule.rate_limit.s = match change {
            LimitChange::Max(v) => format!("{}/{window}", whole(v)?),
            LimitChange::Window(secs) => format!("{count}/{}", unit(secs)?),
        };
        return Ok(());
    }
    let Some(state) = rule.state.as_mut() else {
        return Err(VaryError::NoMax(id.to_owned(), "it has no state block"));
    };
    match change {
        LimitChange::Window(secs) => state.window.s = unit(secs)?.to_owned(),
        LimitChange::Max(v) => {
            let own = format!("state.{scope}.{}", state.counter.s);
            let binding = (rule.conditions.iter_mut())
                .find(|c| c.target.s == own && matches!(c.op.s.as_str(), "lt" | "lte"))
                .ok_or_else(|| {
                    VaryError::NoMax(id.to_owned(), "no `lt`/`lte` condition caps its counter")
                })?;
            let cap = whole(v)?;
            let written = if binding.op.s == "lt" { cap + 1 } else { cap };
            binding.value = Some(Value::from(written));
            binding.kind = Kind::Int;
        }
    }
    Ok(())
}

/// Parse, apply `edit` to the tools as written (before the `rate_limit` shorthand is
/// expanded; it returns false to stop), validate and compile.
fn parse_edited(src: &str, edit: impl FnOnce(&mut [ToolAst]) -> bool) -> InterceptParse {
    let mut cx = Cx {
        errors: Vec::new(),
        warnings: Vec::new(),
    };
    let docs = match yaml::load(src) {
        Ok(docs) => docs,
        Err(e) => {
            cx.errors.push(InterceptIssue {
                message: format!("invalid YAML: {}", e.info()),
                path: String::new(),
                line: e.marker().line(),
                column: e.marker().col() + 1,
            });
            return cx.finish(None);
        }
    };
    // Like the gateway, only the first document counts; an empty file is an empty policy.
    let doc = match docs.first() {
        Some(root) => cx.document(root),
        None => Doc::at_start(),
    };
    // The gateway stops at a document it cannot decode into its types; so does mcpsim, so
    // that a wrongly typed field is not also reported as missing.
    if !cx.errors.is_empty() {
        return cx.finish(None);
    }
    let mut tools = doc.tools;
    if !edit(&mut tools) {
        return cx.finish(None);
    }
    let tools = desugar(tools);
    let doc = Doc { tools, ..doc };
    validate(&mut cx, &doc);
    if !cx.errors.is_empty() {
        return cx.finish(None);
    }
    let policy = compile(&mut cx, &doc);
    if cx.errors.is_empty() {
        cx.finish(Some(policy))
    } else {
        cx.finish(None)
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Loc {
    line: usize,
    column: usize,
}

/// A string field with the position of its value (or of the enclosing mapping when absent).
#[derive(Debug, Clone, Default)]
struct Text {
    s: String,
    loc: Loc,
}

#[derive(Debug, Default)]
struct Doc {
    version: Text,
    default: Text,
    hide: Vec<Text>,
    tools: Vec<ToolAst>,
}

impl Doc {
    /// An empty document whose missing fields are reported at the start of the file.
    fn at_start() -> Doc {
        let start = Loc { line: 1, column: 1 };
        let mut doc = Doc::default();
        doc.version.loc = start;
        doc.default.loc = start;
        doc
    }
}

#[derive(Debug, Clone)]
struct ToolAst {
    name: String,
    /// Position of the tool's key.
    loc: Loc,
    rules: Vec<RuleAst>,
}

#[derive(Debug, Clone, Default)]
struct RuleAst {
    /// `tools.<tool>.rules[<i>]`
    path: String,
    loc: Loc,
    name: Text,
    action: Text,
    rate_limit: Text,
    conditions: Vec<CondAst>,
    on_deny: String,
    state: Option<StateAst>,
}

#[derive(Debug, Clone, Default)]
struct CondAst {
    /// `tools.<tool>.rules[<i>].conditions[<j>]`
    path: String,
    loc: Loc,
    target: Text,
    op: Text,
    /// `None` when absent or null (the gateway's `nil`).
    value: Option<Value>,
    /// The Go type of `value`.
    kind: Kind,
    value_loc: Loc,
}

/// The Go type a condition's `value` decodes to. Values Go compares by printed form only (a
/// `uint64`, a `time.Time`, an infinite or NaN float) are held in `Value` as that printed form.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
enum Kind {
    #[default]
    Nil,
    Bool,
    Int,
    Uint,
    Float(f64),
    Str,
    Time,
    List,
    Map,
}

#[derive(Debug, Clone, Default)]
struct StateAst {
    counter: Text,
    window: Text,
    increment: i64,
    increment_from: Text,
}

struct Cx {
    errors: Vec<InterceptIssue>,
    warnings: Vec<InterceptIssue>,
}

fn loc(node: &MarkedYaml) -> Loc {
    Loc {
        line: node.span.start.line(),
        column: node.span.start.col() + 1,
    }
}

/// The node's data with non-core tags peeled off (`!foo {…}` reads as `{…}`).
fn data<'a, 'i>(node: &'a MarkedYaml<'i>) -> &'a YamlData<'i, MarkedYaml<'i>> {
    let mut cur = node;
    while let YamlData::Tagged(_, inner) = &cur.data {
        cur = inner;
    }
    &cur.data
}

/// A scalar's text, style and tag as yaml.v3 sees them.
fn scalar<'a>(node: &'a MarkedYaml) -> Option<(&'a str, saphyr::ScalarStyle, Option<String>)> {
    match data(node) {
        YamlData::Representation(text, style, tag) => {
            Some((text.as_ref(), *style, yaml::short_tag(tag.as_deref())))
        }
        _ => None,
    }
}

/// A scalar resolved as yaml.v3 resolves it; `None` for collections.
fn resolved(node: &MarkedYaml) -> Option<Result<GoScalar, String>> {
    let (text, style, tag) = scalar(node)?;
    Some(yaml::resolve(text, style, tag.as_deref()))
}

fn is_null(node: &MarkedYaml) -> bool {
    matches!(resolved(node), Some(Ok(GoScalar::Null)))
}

fn kind_name(node: &MarkedYaml) -> &'static str {
    match data(node) {
        YamlData::Sequence(_) => "a list",
        YamlData::Mapping(_) => "a mapping",
        _ => match resolved(node) {
            Some(Ok(GoScalar::Null)) => "null",
            Some(Ok(GoScalar::Bool(_))) => "a boolean",
            Some(Ok(GoScalar::Int(_) | GoScalar::Uint(_))) => "an integer",
            Some(Ok(GoScalar::Float(_))) => "a number",
            Some(Ok(GoScalar::Str(_))) => "a string",
            Some(Ok(GoScalar::Time(_))) => "a timestamp",
            _ => "an unreadable value",
        },
    }
}

fn join(prefix: &str, field: &str) -> String {
    if prefix.is_empty() {
        field.to_string()
    } else {
        format!("{prefix}.{field}")
    }
}

/// The known field closest to a misspelt one, when it is close enough to be a typo.
fn suggestion(field: &str, known: &'static [&'static str]) -> Option<&'static str> {
    known
        .iter()
        .map(|k| (strsim::levenshtein(field, k), *k))
        .filter(|(d, k)| *d <= 2.max(k.len() / 3))
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

impl Cx {
    fn finish(self, policy: Option<InterceptPolicy>) -> InterceptParse {
        InterceptParse {
            policy,
            errors: self.errors,
            warnings: self.warnings,
        }
    }

    fn error(&mut self, path: &str, at: Loc, message: String) {
        self.errors.push(InterceptIssue {
            message,
            path: path.to_string(),
            line: at.line,
            column: at.column,
        });
    }

    fn warn(&mut self, path: &str, at: Loc, message: String) {
        self.warnings.push(InterceptIssue {
            message,
            path: path.to_string(),
            line: at.line,
            column: at.column,
        });
    }

    /// Mapping entries as `(key, key node, value node)`, with yaml.v3's merge keys applied
    /// (`<<: *anchor`: the merged mapping's entries, unless the mapping sets the key itself);
    /// anything else is a type error.
    fn entries<'a, 'i>(
        &mut self,
        node: &'a MarkedYaml<'i>,
        path: &str,
        what: &str,
    ) -> Vec<(String, &'a MarkedYaml<'i>, &'a MarkedYaml<'i>)> {
        match data(node) {
            YamlData::Mapping(_) => {
                let mut out = Vec::new();
                self.merged_entries(node, path, &mut out, true);
                out
            }
            _ if is_null(node) => Vec::new(),
            _ => {
                let found = kind_name(node);
                self.error(
                    path,
                    loc(node),
                    format!("{what} must be a mapping, found {found}"),
                );
                Vec::new()
            }
        }
    }

    fn merged_entries<'a, 'i>(
        &mut self,
        node: &'a MarkedYaml<'i>,
        path: &str,
        out: &mut Vec<(String, &'a MarkedYaml<'i>, &'a MarkedYaml<'i>)>,
        check_duplicates: bool,
    ) {
        let YamlData::Mapping(map) = data(node) else {
            return;
        };
        let mut merge: Option<&'a MarkedYaml<'i>> = None;
        let mut seen: Vec<(String, Loc)> = Vec::new();
        for (k, v) in map.iter() {
            if let Some((text, style, tag)) = scalar(k) {
                if yaml::is_merge_key(text, style, tag.as_deref()) {
                    merge = Some(v);
                    continue;
                }
            }
            let key = self.key_text(k);
            if check_duplicates {
                if let Some((_, first)) = seen.iter().find(|(s, _)| *s == key) {
                    self.error(
                        path,
                        loc(k),
                        format!(
                            "mapping key \"{key}\" already defined at line {}",
                            first.line
                        ),
                    );
                    continue;
                }
                seen.push((key.clone(), loc(k)));
            }
            if out.iter().any(|(s, _, _)| *s == key) {
                continue;
            }
            out.push((key, k, v));
        }
        let Some(merge) = merge else { return };
        match data(merge) {
            YamlData::Mapping(_) => self.merged_entries(merge, path, out, false),
            YamlData::Sequence(items)
                if items
                    .iter()
                    .all(|i| matches!(data(i), YamlData::Mapping(_))) =>
            {
                for item in items {
                    self.merged_entries(item, path, out, false);
                }
            }
            _ => self.error(
                path,
                loc(merge),
                "map merge requires map or sequence of maps as the value".to_string(),
            ),
        }
    }

    /// List items; null items are dropped, as yaml.v3 drops them from a list of strings or
    /// structs.
    fn items<'a, 'i>(&mut self, node: &'a MarkedYaml<'i>, path: &str) -> Vec<&'a MarkedYaml<'i>> {
        match data(node) {
            YamlData::Sequence(items) => items.iter().filter(|i| !is_null(i)).collect(),
            _ if is_null(node) => Vec::new(),
            _ => {
                let found = kind_name(node);
                self.error(path, loc(node), format!("expected a list, found {found}"));
                Vec::new()
            }
        }
    }

    fn key_text(&self, key: &MarkedYaml) -> String {
        match resolved(key) {
            Some(Ok(GoScalar::Null)) => String::new(),
            _ => match scalar(key) {
                Some((text, _, _)) => text.to_string(),
                None => format!("{:?}", key.data),
            },
        }
    }

    /// A string field: yaml.v3 stores any scalar's text verbatim (a `!!binary` one decoded),
    /// null as "".
    fn text(&mut self, node: &MarkedYaml, path: &str) -> Text {
        let at = loc(node);
        let s = match (resolved(node), scalar(node)) {
            (Some(Ok(GoScalar::Null)), _) => String::new(),
            (Some(Ok(GoScalar::Str(s))), Some((_, _, Some(tag)))) if tag == "!!binary" => s,
            (Some(Ok(_)), Some((text, _, _))) => text.to_string(),
            (Some(Err(e)), _) => {
                self.error(path, at, e);
                String::new()
            }
            _ => {
                let found = kind_name(node);
                self.error(path, at, format!("expected a string, found {found}"));
                String::new()
            }
        };
        Text { s, loc: at }
    }

    fn unknown_field(
        &mut self,
        path: &str,
        key: &MarkedYaml,
        field: &str,
        known: &'static [&'static str],
    ) {
        let hint = match suggestion(field, known) {
            Some(s) => format!(", did you mean `{s}`?"),
            None => format!(" (known fields: {})", known.join(", ")),
        };
        self.warn(
            &join(path, field),
            loc(key),
            format!("unknown field `{field}` is ignored by the gateway{hint}"),
        );
    }

    fn document(&mut self, root: &MarkedYaml) -> Doc {
        let mut doc = Doc::at_start();
        if !matches!(data(root), YamlData::Mapping(_)) && !is_null(root) {
            let found = kind_name(root);
            self.error(
                "",
                loc(root),
                format!("the policy must be a mapping, found {found}"),
            );
            return doc;
        }
        for (key, key_node, value) in self.entries(root, "", "the policy") {
            match key.as_str() {
                "version" => doc.version = self.text(value, "version"),
                "description" => {
                    self.text(value, "description");
                }
                "default" => doc.default = self.text(value, "default"),
                "hide" => {
                    for (i, item) in self.items(value, "hide").into_iter().enumerate() {
                        let t = self.text(item, &format!("hide[{i}]"));
                        doc.hide.push(t);
                    }
                }
                "tools" => {
                    for (name, key, tool) in self.entries(value, "tools", "tools") {
                        let t = self.tool(&name, loc(key), tool);
                        doc.tools.push(t);
                    }
                }
                other => self.unknown_field("", key_node, other, TOP_FIELDS),
            }
        }
        doc
    }

    fn tool(&mut self, name: &str, at: Loc, node: &MarkedYaml) -> ToolAst {
        let path = format!("tools.{name}");
        let mut tool = ToolAst {
            name: name.to_string(),
            loc: at,
            rules: Vec::new(),
        };
        for (key, key_node, value) in self.entries(node, &path, &path) {
            match key.as_str() {
                "rules" => {
                    let rules_path = join(&path, "rules");
                    for (i, item) in self.items(value, &rules_path).into_iter().enumerate() {
                        let r = self.rule(&format!("{rules_path}[{i}]"), item);
                        tool.rules.push(r);
                    }
                }
                other => self.unknown_field(&path, key_node, other, TOOL_FIELDS),
            }
        }
        tool
    }

    fn rule(&mut self, path: &str, node: &MarkedYaml) -> RuleAst {
        let at = loc(node);
        let mut rule = RuleAst {
            path: path.to_string(),
            loc: at,
            name: Text {
                s: String::new(),
                loc: at,
            },
            action: Text {
                s: String::new(),
                loc: at,
            },
            rate_limit: Text {
                s: String::new(),
                loc: at,
            },
            ..RuleAst::default()
        };
        for (key, key_node, value) in self.entries(node, path, path) {
            let field_path = join(path, &key);
            match key.as_str() {
                "name" => rule.name = self.text(value, &field_path),
                "action" => rule.action = self.text(value, &field_path),
                "rate_limit" => rule.rate_limit = self.text(value, &field_path),
                "on_deny" => rule.on_deny = self.text(value, &field_path).s,
                "conditions" => {
                    for (j, item) in self.items(value, &field_path).into_iter().enumerate() {
                        let c = self.condition(&format!("{field_path}[{j}]"), item);
                        rule.conditions.push(c);
                    }
                }
                "state" => {
                    if !is_null(value) {
                        rule.state = Some(self.state(&field_path, value));
                    }
                }
                other => self.unknown_field(path, key_node, other, RULE_FIELDS),
            }
        }
        rule
    }

    fn condition(&mut self, path: &str, node: &MarkedYaml) -> CondAst {
        let at = loc(node);
        let mut cond = CondAst {
            path: path.to_string(),
            loc: at,
            target: Text {
                s: String::new(),
                loc: at,
            },
            op: Text {
                s: String::new(),
                loc: at,
            },
            value: None,
            kind: Kind::Nil,
            value_loc: at,
        };
        for (key, key_node, value) in self.entries(node, path, path) {
            let field_path = join(path, &key);
            match key.as_str() {
                "path" => cond.target = self.text(value, &field_path),
                "op" => cond.op = self.text(value, &field_path),
                "value" => {
                    cond.value_loc = loc(value);
                    let (v, kind) = self.value(value, &field_path);
                    cond.value = v;
                    cond.kind = kind;
                }
                other => self.unknown_field(path, key_node, other, CONDITION_FIELDS),
            }
        }
        cond
    }

    fn state(&mut self, path: &str, node: &MarkedYaml) -> StateAst {
        let at = loc(node);
        let mut state = StateAst {
            counter: Text {
                s: String::new(),
                loc: at,
            },
            window: Text {
                s: String::new(),
                loc: at,
            },
            increment: 0,
            increment_from: Text {
                s: String::new(),
                loc: at,
            },
        };
        for (key, key_node, value) in self.entries(node, path, path) {
            let field_path = join(path, &key);
            match key.as_str() {
                "counter" => state.counter = self.text(value, &field_path),
                "window" => state.window = self.text(value, &field_path),
                "increment_from" => state.increment_from = self.text(value, &field_path),
                "increment" => state.increment = self.int(value, &field_path),
                other => self.unknown_field(path, key_node, other, STATE_FIELDS),
            }
        }
        state
    }

    /// An `int` field as yaml.v3 decodes it: an integer, or a float converted with Go's
    /// `int64(f)` when it is at most 2^63 (so `2.0` is 2, `2.5` is 2 and `-1e30` the minimum
    /// int64); null leaves it 0.
    fn int(&mut self, node: &MarkedYaml, path: &str) -> i64 {
        match resolved(node) {
            Some(Ok(GoScalar::Int(n))) => n,
            Some(Ok(GoScalar::Null)) => 0,
            Some(Ok(GoScalar::Float(f))) if f <= 9_223_372_036_854_775_808.0 => {
                gofmt::float_to_int64(f)
            }
            Some(Err(e)) => {
                self.error(path, loc(node), e);
                0
            }
            _ => {
                let found = kind_name(node);
                self.error(
                    path,
                    loc(node),
                    format!("increment must be an integer, found {found}"),
                );
                0
            }
        }
    }

    /// A condition's `value` as JSON (what arguments are compared against) and its Go type;
    /// null is `None`.
    fn value(&mut self, node: &MarkedYaml, path: &str) -> (Option<Value>, Kind) {
        let kind = match data(node) {
            YamlData::Sequence(_) => Kind::List,
            YamlData::Mapping(_) => Kind::Map,
            _ => match resolved(node) {
                Some(Ok(GoScalar::Null)) | None => Kind::Nil,
                Some(Ok(GoScalar::Bool(_))) => Kind::Bool,
                Some(Ok(GoScalar::Int(_))) => Kind::Int,
                Some(Ok(GoScalar::Uint(_))) => Kind::Uint,
                Some(Ok(GoScalar::Float(f))) => Kind::Float(f),
                Some(Ok(GoScalar::Str(_))) => Kind::Str,
                Some(Ok(GoScalar::Time(_))) => Kind::Time,
                Some(Err(_)) => Kind::Nil,
            },
        };
        match self.json(node, path) {
            Value::Null => (None, Kind::Nil),
            v => (Some(v), kind),
        }
    }

    fn json(&mut self, node: &MarkedYaml, path: &str) -> Value {
        match data(node) {
            YamlData::Sequence(items) => Value::Array(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, item)| self.json(item, &format!("{path}[{i}]")))
                    .collect(),
            ),
            YamlData::Mapping(_) => {
                let mut out = Map::new();
                for (key, _, v) in self.entries(node, path, path) {
                    let value = self.json(v, &join(path, &key));
                    out.insert(key, value);
                }
                Value::Object(out)
            }
            _ => match resolved(node) {
                Some(Ok(GoScalar::Null)) => Value::Null,
                Some(Ok(GoScalar::Bool(b))) => Value::Bool(b),
                Some(Ok(GoScalar::Int(n))) => Value::from(n),
                // Go compares these only by printed form: hold them as it.
                Some(Ok(GoScalar::Uint(n))) => Value::String(n.to_string()),
                Some(Ok(GoScalar::Float(f))) => match Number::from_f64(f) {
                    Some(n) => Value::Number(n),
                    None => Value::String(gofmt::format_float(f)),
                },
                Some(Ok(GoScalar::Str(s) | GoScalar::Time(s))) => Value::String(s),
                Some(Err(e)) => {
                    self.error(path, loc(node), e);
                    Value::Null
                }
                None => {
                    self.error(path, loc(node), "value cannot be read".to_string());
                    Value::Null
                }
            },
        }
    }
}

/// The gateway's `rate_limit` desugaring: a valid shorthand on a rule without conditions,
/// state or `action: deny` becomes an `lte` condition on `_rate_<window>` with its state block.
/// Anything else is left as written for validation to report.
fn desugar(tools: Vec<ToolAst>) -> Vec<ToolAst> {
    tools
        .into_iter()
        .map(|mut tool| {
            let scope = scope_of(&tool.name).to_string();
            for rule in &mut tool.rules {
                if rule.rate_limit.s.is_empty()
                    || !rule.conditions.is_empty()
                    || rule.state.is_some()
                    || rule.action.s == "deny"
                {
                    continue;
                }
                let Ok((count, window)) = parse_rate_limit(&rule.rate_limit.s) else {
                    continue;
                };
                let at = rule.rate_limit.loc;
                let counter = format!("_rate_{window}");
                rule.action = Text {
                    s: "evaluate".to_string(),
                    loc: at,
                };
                rule.conditions = vec![CondAst {
                    path: format!("{}.rate_limit", rule.path),
                    loc: at,
                    target: Text {
                        s: format!("state.{scope}.{counter}"),
                        loc: at,
                    },
                    op: Text {
                        s: "lte".to_string(),
                        loc: at,
                    },
                    value: Some(Value::from(count)),
                    kind: Kind::Int,
                    value_loc: at,
                }];
                rule.state = Some(StateAst {
                    counter: Text {
                        s: counter,
                        loc: at,
                    },
                    window: Text {
                        s: window.to_string(),
                        loc: at,
                    },
                    increment: 1,
                    increment_from: Text::default(),
                });
                if rule.on_deny.is_empty() {
                    rule.on_deny =
                        format!("Rate limit of {count} per {window} reached. Try again later.");
                }
                rule.rate_limit.s.clear();
            }
            tool
        })
        .collect()
}

/// Counters of `"*"` rules live in scope `_global`; a tool's in its own name.
fn scope_of(tool: &str) -> &str {
    if tool == "*" { "_global" } else { tool }
}

fn parse_rate_limit(s: &str) -> Result<(i64, &str), String> {
    let Some((count, window)) = s.split_once('/') else {
        return Err(format!(
            "rate_limit must be in the format \"N/window\" (e.g. \"5/hour\"), got \"{s}\""
        ));
    };
    let count = match count.parse::<i64>() {
        Ok(n) if n > 0 => n,
        _ => {
            return Err(format!(
                "rate_limit count must be a positive integer, got \"{count}\""
            ));
        }
    };
    if InterceptWindow::parse(window).is_none() {
        return Err(format!(
            "rate_limit window must be \"minute\", \"hour\", or \"day\", got \"{window}\""
        ));
    }
    Ok((count, window))
}

fn validate(cx: &mut Cx, doc: &Doc) {
    if doc.version.s != "1" {
        cx.error(
            "version",
            doc.version.loc,
            format!("version must be \"1\", got \"{}\"", doc.version.s),
        );
    }
    // An omitted default is "allow".
    if !matches!(doc.default.s.as_str(), "" | "allow" | "deny") {
        cx.error(
            "default",
            doc.default.loc,
            format!(
                "default must be \"allow\" or \"deny\", got \"{}\"",
                doc.default.s
            ),
        );
    }
    let mut seen = HashSet::new();
    for (i, entry) in doc.hide.iter().enumerate() {
        if entry.s.trim().is_empty() {
            cx.error(
                &format!("hide[{i}]"),
                entry.loc,
                "entry must not be empty".to_string(),
            );
        } else if !seen.insert(entry.s.as_str()) {
            cx.error(
                &format!("hide[{i}]"),
                entry.loc,
                format!("duplicate entry \"{}\"", entry.s),
            );
        }
    }

    let hide_all = doc.hide.iter().any(|h| h.s == "*");
    for tool in &doc.tools {
        if tool.name != "*" && (hide_all || doc.hide.iter().any(|h| h.s == tool.name)) {
            cx.warn(
                &format!("tools.{}", tool.name),
                tool.loc,
                format!("tool \"{}\" is hidden: its rules never run", tool.name),
            );
        }
    }

    // Which counters each tool key defines, for conditions that read `state.<scope>.<counter>`.
    let mut defined: HashMap<&str, HashSet<&str>> = HashMap::new();
    for tool in &doc.tools {
        let set = defined.entry(tool.name.as_str()).or_default();
        for rule in &tool.rules {
            if let Some(state) = &rule.state {
                set.insert(state.counter.s.as_str());
            }
        }
    }

    for tool in &doc.tools {
        let mut counters_seen: HashMap<&str, usize> = HashMap::new();
        for (i, rule) in tool.rules.iter().enumerate() {
            let Some(state) = &rule.state else { continue };
            if let Some(prev) = counters_seen.get(state.counter.s.as_str()) {
                cx.error(
                    &counter_path(rule),
                    state.counter.loc,
                    format!(
                        "duplicate state counter \"{}\" (also used by rules[{prev}])",
                        state.counter.s
                    ),
                );
            } else {
                counters_seen.insert(state.counter.s.as_str(), i);
            }
        }
        for rule in &tool.rules {
            validate_rule(cx, rule, &defined);
        }
    }
}

/// Where a state block's counter is written: its own field, or the `rate_limit` it came from.
fn counter_path(rule: &RuleAst) -> String {
    match rule.conditions.first() {
        Some(c) if c.path.ends_with(".rate_limit") => c.path.clone(),
        _ => format!("{}.state.counter", rule.path),
    }
}

fn validate_rule(cx: &mut Cx, rule: &RuleAst, defined: &HashMap<&str, HashSet<&str>>) {
    let p = &rule.path;
    // A shorthand still present was not desugared: it is malformed or badly combined.
    if !rule.rate_limit.s.is_empty() {
        let rl_path = join(p, "rate_limit");
        if let Err(message) = parse_rate_limit(&rule.rate_limit.s) {
            cx.error(&rl_path, rule.rate_limit.loc, message);
        }
        if !rule.conditions.is_empty() || rule.state.is_some() {
            cx.error(
                &rl_path,
                rule.rate_limit.loc,
                "rate_limit cannot be combined with conditions or state; use separate rules or the full syntax instead".to_string(),
            );
        }
        if rule.action.s == "deny" {
            cx.error(
                &rl_path,
                rule.rate_limit.loc,
                "rate_limit cannot be used with action \"deny\"".to_string(),
            );
        }
        return;
    }

    if rule.name.s.is_empty() {
        cx.error(
            &join(p, "name"),
            rule.name.loc,
            "rule must have a name".to_string(),
        );
    }
    // An omitted action is "evaluate".
    let action = if rule.action.s.is_empty() {
        "evaluate"
    } else {
        rule.action.s.as_str()
    };
    match action {
        "evaluate" if rule.conditions.is_empty() => cx.error(
            &join(p, "conditions"),
            rule.loc,
            "evaluate rules must have at least one condition".to_string(),
        ),
        "deny" if !rule.conditions.is_empty() => cx.error(
            &join(p, "conditions"),
            rule.conditions[0].loc,
            "deny rules must not have conditions".to_string(),
        ),
        "evaluate" | "deny" => {}
        other => cx.error(
            &join(p, "action"),
            rule.action.loc,
            format!("action must be \"evaluate\" or \"deny\", got \"{other}\""),
        ),
    }

    for cond in &rule.conditions {
        validate_condition(cx, cond);
    }

    if let Some(state) = &rule.state {
        let sp = join(p, "state");
        if state.counter.s.is_empty() {
            cx.error(
                &join(&sp, "counter"),
                state.counter.loc,
                "counter must not be empty".to_string(),
            );
        }
        if InterceptWindow::parse(&state.window.s).is_none() {
            cx.error(
                &join(&sp, "window"),
                state.window.loc,
                format!(
                    "window must be \"minute\", \"hour\", or \"day\", got \"{}\"",
                    state.window.s
                ),
            );
        }
        let from = &state.increment_from.s;
        if !from.is_empty() && !from.starts_with("args.") {
            cx.error(
                &join(&sp, "increment_from"),
                state.increment_from.loc,
                format!("increment_from must start with \"args.\", got \"{from}\""),
            );
        }
    }

    for cond in &rule.conditions {
        let Some(rest) = cond.target.s.strip_prefix("state.") else {
            continue;
        };
        let Some((scope, counter)) = rest.split_once('.') else {
            continue;
        };
        let has_block = match defined.get(scope) {
            Some(set) => set.contains(counter),
            None if scope == "_global" => defined.get("*").is_some_and(|s| s.contains(counter)),
            None => false,
        };
        if !has_block {
            cx.error(
                &join(&cond.path, "path"),
                cond.target.loc,
                format!(
                    "condition references state.{scope}.{counter} but no matching state block found"
                ),
            );
        }
    }
}

fn validate_condition(cx: &mut Cx, cond: &CondAst) {
    let p = &cond.path;
    let target = &cond.target.s;
    if !target.starts_with("args.") && !target.starts_with("state.") {
        cx.error(
            &join(p, "path"),
            cond.target.loc,
            format!("path must start with \"args.\" or \"state.\", got \"{target}\""),
        );
    }
    let op_name = &cond.op.s;
    let Some(op) = InterceptOp::parse(op_name) else {
        cx.error(
            &join(p, "op"),
            cond.op.loc,
            format!("unknown operator \"{op_name}\""),
        );
        return;
    };
    let vp = join(p, "value");
    let kind = cond.kind;
    match op {
        InterceptOp::In | InterceptOp::NotIn if kind != Kind::List => {
            cx.error(
                &vp,
                cond.value_loc,
                format!("operator \"{op_name}\" requires a list value"),
            );
        }
        InterceptOp::Lt | InterceptOp::Lte | InterceptOp::Gt | InterceptOp::Gte
            if !matches!(kind, Kind::Int | Kind::Float(_)) =>
        {
            cx.error(
                &vp,
                cond.value_loc,
                format!("operator \"{op_name}\" requires a numeric value"),
            );
        }
        InterceptOp::Exists if kind != Kind::Bool => {
            cx.error(
                &vp,
                cond.value_loc,
                "operator \"exists\" requires a boolean value".to_string(),
            );
        }
        InterceptOp::Regex => match (&cond.value, kind) {
            (Some(Value::String(pattern)), Kind::Str) => {
                if let Err(e) = re2::compile(pattern) {
                    cx.error(
                        &vp,
                        cond.value_loc,
                        format!("invalid regex {}: {e}", gofmt::quote(pattern)),
                    );
                }
            }
            _ => cx.error(
                &vp,
                cond.value_loc,
                "regex value must be a string".to_string(),
            ),
        },
        _ => {}
    }
}

/// Build the evaluator's form. Runs only on a document that validated cleanly.
fn compile(cx: &mut Cx, doc: &Doc) -> InterceptPolicy {
    let mut slots: HashMap<String, usize> = HashMap::new();
    let mut counters: Vec<InterceptCounter> = Vec::new();
    // Counters written by state blocks first, in file order, so they keep their windows.
    for tool in &doc.tools {
        for rule in &tool.rules {
            if let Some(state) = &rule.state {
                let key = format!("{}.{}", scope_of(&tool.name), state.counter.s);
                if !slots.contains_key(&key) {
                    slots.insert(key.clone(), counters.len());
                    counters.push(InterceptCounter {
                        key: Arc::from(key),
                        window: InterceptWindow::parse(&state.window.s),
                    });
                }
            }
        }
    }
    let mut slot_of = |key: &str| -> usize {
        if let Some(&s) = slots.get(key) {
            return s;
        }
        // Read but never written: the gateway's store answers 0 for it.
        slots.insert(key.to_string(), counters.len());
        counters.push(InterceptCounter {
            key: Arc::from(key),
            window: None,
        });
        counters.len() - 1
    };

    let mut tools: HashMap<String, Vec<Rule>> = HashMap::new();
    let mut wildcard = None;
    for tool in &doc.tools {
        let scope = scope_of(&tool.name);
        let mut rules = Vec::with_capacity(tool.rules.len());
        for rule in &tool.rules {
            let name = &rule.name.s;
            let mut conditions = Vec::with_capacity(rule.conditions.len());
            for cond in &rule.conditions {
                let Some(op) = InterceptOp::parse(&cond.op.s) else {
                    continue;
                };
                let target = match cond.target.s.strip_prefix("state.") {
                    Some(key) => Target::State(slot_of(key)),
                    None => Target::Args(arg_path(&cond.target.s)),
                };
                let Some(op) = compile_op(op, cond.value.as_ref(), cond.kind) else {
                    cx.error(
                        &cond.path,
                        cond.value_loc,
                        "value cannot be compiled".to_string(),
                    );
                    continue;
                };
                conditions.push(Condition::new(target, op));
            }
            let state = rule.state.as_ref().map(|state| {
                let own = format!("state.{scope}.{}", state.counter.s);
                let increment = if state.increment_from.s.is_empty() {
                    // An omitted (or zero) increment is 1, as in the gateway.
                    Increment::Fixed(if state.increment == 0 {
                        1
                    } else {
                        state.increment
                    })
                } else {
                    Increment::From(arg_path(&state.increment_from.s))
                };
                StateBlock::new(
                    slot_of(&format!("{scope}.{}", state.counter.s)),
                    increment,
                    binding_cap(rule, &own),
                )
            });
            if let (Some(block), Some(ast)) = (&state, &rule.state) {
                if block.cap().is_none() {
                    cx.warn(
                        &format!("{}.state.counter", rule.path),
                        ast.counter.loc,
                        format!(
                            "counter \"{}\" never increments: the rule has no `lt`/`lte` condition on state.{scope}.{}",
                            ast.counter.s, ast.counter.s
                        ),
                    );
                }
            }
            let on_deny =
                (!rule.on_deny.is_empty()).then(|| Arc::<str>::from(rule.on_deny.as_str()));
            let messages = RuleMessages {
                deny: on_deny
                    .clone()
                    .unwrap_or_else(|| Arc::from(format!("Denied by rule {}", gofmt::quote(name)))),
                limit: on_deny
                    .unwrap_or_else(|| Arc::from(format!("Rate limit exceeded for {name}"))),
                unknown: Arc::from(format!(
                    "rule \"{name}\" needs argument values the trace did not record"
                )),
            };
            rules.push(Rule::new(
                Arc::from(format!("{}/{name}", tool.name)),
                rule.action.s == "deny",
                conditions,
                messages,
                state,
            ));
        }
        if tool.name == "*" {
            wildcard = Some(rules);
        } else {
            tools.insert(tool.name.clone(), rules);
        }
    }
    InterceptPolicy::new(
        doc.default.s == "deny",
        doc.hide.iter().map(|h| h.s.clone()).collect(),
        tools,
        wildcard,
        counters,
    )
}

/// `args.a.b` as the engine's path. Unlike the JSON dialect, the gateway only checks the
/// prefix, so empty keys (`args.`, `args.a..b`) are kept: they simply never resolve.
fn arg_path(path: &str) -> ArgPath {
    let keys: Vec<Box<str>> = path
        .strip_prefix("args.")
        .unwrap_or(path)
        .split('.')
        .map(Box::from)
        .collect();
    ArgPath {
        text: Box::from(path),
        keys: keys.into_boxed_slice(),
    }
}

/// The engine's operator for a validated condition; `None` only if validation let through a
/// value of the wrong kind.
fn compile_op(op: InterceptOp, value: Option<&Value>, kind: Kind) -> Option<Op> {
    // The gateway compares an absent value as `nil`.
    let v = || value.cloned().unwrap_or(Value::Null);
    let list = || match value {
        Some(Value::Array(items)) => Some(items.clone()),
        _ => None,
    };
    let num = || number(value, kind);
    Some(match op {
        InterceptOp::Eq => Op::Eq(v()),
        InterceptOp::Neq => Op::Neq(v()),
        InterceptOp::In => Op::In(list()?),
        InterceptOp::NotIn => Op::NotIn(list()?),
        InterceptOp::Lt => Op::Lt(num()?),
        InterceptOp::Lte => Op::Lte(num()?),
        InterceptOp::Gt => Op::Gt(num()?),
        InterceptOp::Gte => Op::Gte(num()?),
        InterceptOp::Regex => Op::Regex(re2::compile(value?.as_str()?).ok()?),
        // Only a Go string is a substring; any other value is looked for among list items.
        InterceptOp::Contains if kind == Kind::Str => Op::Contains(v()),
        InterceptOp::Contains => Op::ContainsElement(v()),
        InterceptOp::Exists => Op::Exists(value?.as_bool()?),
    })
}

/// A numeric value as a `float64` (infinities and NaN included).
fn number(value: Option<&Value>, kind: Kind) -> Option<f64> {
    match kind {
        Kind::Float(f) => Some(f),
        Kind::Int => value?.as_f64(),
        _ => None,
    }
}

/// The rule's own `lt N` (cap N−1) or `lte N` (cap N) condition on its counter, first one
/// wins; the value is converted with Go's `int64(f)` as the gateway converts it (so a value
/// out of range is the minimum int64, and `lt` of it wraps to the maximum).
fn binding_cap(rule: &RuleAst, own_path: &str) -> Option<i64> {
    rule.conditions.iter().find_map(|c| {
        if c.target.s != own_path {
            return None;
        }
        let n = gofmt::float_to_int64(number(c.value.as_ref(), c.kind)?);
        match c.op.s.as_str() {
            "lt" => Some(n.wrapping_sub(1)),
            "lte" => Some(n),
            _ => None,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors(src: &str) -> Vec<(String, String, usize, usize)> {
        parse_intercept_str(src, "p.yaml")
            .errors
            .into_iter()
            .map(|e| (e.message, e.path, e.line, e.column))
            .collect()
    }

    #[test]
    fn minimal_policy_compiles() {
        let p = parse_intercept_str("version: \"1\"\ntools:\n  a:\n    rules: []\n", "p.yaml");
        assert!(p.errors.is_empty(), "{:?}", p.errors);
        let policy = p.policy.expect("compiled");
        assert_eq!(policy.tool_count(), 1);
    }

    #[test]
    fn yaml_syntax_error_is_located() {
        let e = errors("version: \"1\"\ntools: [a\n");
        assert_eq!(e.len(), 1);
        assert!(e[0].0.starts_with("invalid YAML"), "{e:?}");
        assert!(e[0].2 >= 2, "{e:?}");
    }

    #[test]
    fn numeric_version_reads_verbatim() {
        assert!(errors("version: 1\n").is_empty());
        assert_eq!(
            errors("version: 1.0\n")[0].0,
            "version must be \"1\", got \"1.0\""
        );
    }

    #[test]
    fn lt_cap_is_one_less() {
        let p = parse_intercept_str(
            "version: \"1\"\ntools:\n  t:\n    rules:\n      - name: r\n        conditions:\n          - {path: state.t.c, op: lt, value: 5}\n        state: {counter: c, window: hour}\n",
            "p.yaml",
        );
        let policy = p.policy.expect("compiled");
        let rules = policy.tool_rules("t").expect("tool t");
        assert_eq!(rules[0].state().and_then(StateBlock::cap), Some(4));
    }
}
