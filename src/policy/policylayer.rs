//! The PolicyLayer `policy.json` dialect: validation with located diagnostics, and compilation
//! into the engine's [`Policy`].

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::Value;

use super::LoadOptions;
use super::diagnostic::Diagnostic;
use super::json::{Kind, Member, Node, Pos};
use crate::engine::predicate::{ArgPath, Op};
use crate::engine::window::{MAX_WINDOW_SECS, unit_seconds};
use crate::engine::{
    Algorithm, Counter, Limit, LimitMessages, Policy, PolicyLayer, Predicate, Scope, ToolRules,
};

const ROOT_FIELDS: &[&str] = &["version", "default", "hide", "all_tools", "tools"];
const ALL_TOOLS_FIELDS: &[&str] = &["limits"];
const TOOL_FIELDS: &[&str] = &["require", "deny_if", "limits", "on_deny"];
const TOOL_EXTENSIONS: &[&str] = &["require_approval", "approve_if"];
const PREDICATE_FIELDS: &[&str] = &["path", "op", "value", "on_deny"];
const LIMIT_FIELDS: &[&str] = &["counter", "window", "max", "scope"];
const LIMIT_EXTENSIONS: &[&str] = &["increment_from", "algorithm"];
const OPERATORS: &[&str] = &[
    "eq", "neq", "in", "not_in", "lt", "lte", "gt", "gte", "regex", "contains", "exists",
];
const WINDOWS: &[&str] = &["second", "minute", "hour", "day"];
const SCOPES: &[&str] = &["grant", "session", "server", "global"];
const ALGORITHMS: &[&str] = &["fixed", "sliding"];

/// The outcome of compiling one document.
pub(crate) struct Compiled {
    pub(crate) policy: Option<Policy>,
    pub(crate) errors: Vec<Diagnostic>,
    pub(crate) warnings: Vec<Diagnostic>,
}

/// Validate and compile a parsed `policy.json`. Every error of the document is collected; the
/// policy is returned only when there are none.
pub(crate) fn compile(root: &Node, opts: &LoadOptions) -> Compiled {
    let mut c = Compiler {
        opts,
        errors: Vec::new(),
        warnings: Vec::new(),
        policy: PolicyLayer::new(),
        counters: HashMap::new(),
    };
    c.root(root);
    let Compiler {
        errors,
        warnings,
        policy,
        ..
    } = c;
    Compiled {
        policy: errors
            .is_empty()
            .then(|| Policy::PolicyLayer(Arc::new(policy))),
        errors,
        warnings,
    }
}

/// Where a counter was first declared.
struct CounterDecl {
    slot: usize,
    /// `None` for `all_tools`, else the tool.
    owner: Option<String>,
    pos: Pos,
}

/// One limit's fields, checked.
struct LimitDef<'n> {
    /// The counter the limit declares.
    counter: Counter,
    name: &'n str,
    name_pos: Pos,
    increment_from: Option<ArgPath>,
}

struct Compiler<'o> {
    opts: &'o LoadOptions,
    errors: Vec<Diagnostic>,
    warnings: Vec<Diagnostic>,
    policy: PolicyLayer,
    counters: HashMap<String, CounterDecl>,
}

/// Which predicate list a predicate is in.
#[derive(Clone, Copy, PartialEq, Eq)]
enum List {
    Require,
    DenyIf,
    ApproveIf,
}

impl List {
    fn name(self) -> &'static str {
        match self {
            List::Require => "require",
            List::DenyIf => "deny_if",
            List::ApproveIf => "approve_if",
        }
    }
}

fn child(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

fn get<'n>(members: &'n [Member], key: &str) -> Option<&'n Member> {
    // With a repeated key (already an error) the last one is what a JSON reader would keep.
    members.iter().rev().find(|m| m.key == key)
}

/// The closest known name, if it is close enough to be a plausible typo.
pub(crate) fn suggest<'a>(word: &str, known: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    known
        .into_iter()
        .map(|k| (strsim::levenshtein(word, k), k))
        .filter(|&(d, k)| d <= 2.max(k.len() / 3) && d < k.len().max(word.len()))
        .min_by_key(|&(d, _)| d)
        .map(|(_, k)| k)
}

fn show(v: &Value) -> String {
    v.to_string()
}

fn window_text(secs: u64, algorithm: Algorithm) -> String {
    let unit = match secs {
        1 => "second".to_string(),
        60 => "minute".to_string(),
        3_600 => "hour".to_string(),
        86_400 => "day".to_string(),
        n => format!("{n} s"),
    };
    match algorithm {
        Algorithm::Fixed => unit,
        Algorithm::Sliding => format!("sliding {unit}"),
    }
}

impl Compiler<'_> {
    fn error(&mut self, pos: Pos, path: &str, message: impl Into<String>) {
        self.errors
            .push(Diagnostic::error(message, path, pos.line, pos.column));
    }

    fn warn(&mut self, pos: Pos, path: &str, message: impl Into<String>) {
        self.warnings
            .push(Diagnostic::warning(message, path, pos.line, pos.column));
    }

    fn type_error(&mut self, node: &Node, path: &str, what: &str, expected: &str) {
        self.error(
            node.pos,
            path,
            format!("`{what}` must be {expected}, found {}", node.type_name()),
        );
    }

    /// Check an object's keys: unknown ones (with a suggestion), repeated ones, and mcpsim
    /// extensions under `--strict-dialect`. Returns the members, or `None` when not an object.
    fn fields<'n>(
        &mut self,
        node: &'n Node,
        path: &str,
        what: &str,
        known: &[&str],
        extensions: &[&str],
    ) -> Option<&'n [Member]> {
        let Kind::Object(members) = &node.kind else {
            self.type_error(node, path, what, "an object");
            return None;
        };
        let repeated = repeats(members);
        for (i, m) in members.iter().enumerate() {
            let mpath = child(path, &m.key);
            if repeated[i] {
                self.error(m.key_pos, &mpath, format!("duplicate field `{}`", m.key));
            }
            if known.contains(&m.key.as_str()) {
                continue;
            }
            if extensions.contains(&m.key.as_str()) {
                if self.opts.strict_dialect {
                    self.error(
                        m.key_pos,
                        &mpath,
                        format!(
                            "`{}` is an mcpsim extension, rejected under --strict-dialect",
                            m.key
                        ),
                    );
                }
                continue;
            }
            let all = known.iter().chain(extensions).copied();
            let message = match suggest(&m.key, all.clone()) {
                Some(s) => format!("unknown field `{}`, did you mean `{s}`?", m.key),
                None => {
                    let list: Vec<String> = all.map(|k| format!("`{k}`")).collect();
                    format!(
                        "unknown field `{}`, expected one of {}",
                        m.key,
                        list.join(", ")
                    )
                }
            };
            self.error(m.key_pos, &mpath, message);
        }
        Some(members)
    }

    /// A required string field.
    fn string<'n>(&mut self, member: &'n Member, path: &str) -> Option<&'n str> {
        match &member.value.kind {
            Kind::String(s) => Some(s),
            _ => {
                self.type_error(&member.value, path, &member.key, "a string");
                None
            }
        }
    }

    /// A string field restricted to `choices`.
    fn choice<'n>(&mut self, member: &'n Member, path: &str, choices: &[&str]) -> Option<&'n str> {
        let s = self.string(member, path)?;
        if choices.contains(&s) {
            return Some(s);
        }
        let list: Vec<String> = choices.iter().map(|c| format!("`{c}`")).collect();
        let message = match suggest(s, choices.iter().copied()) {
            Some(near) => format!(
                "unknown {} `{s}`, did you mean `{near}`? (expected one of {})",
                member.key,
                list.join(", ")
            ),
            None => format!(
                "unknown {} `{s}`, expected one of {}",
                member.key,
                list.join(", ")
            ),
        };
        self.error(member.value.pos, path, message);
        None
    }

    fn missing(&mut self, node: &Node, path: &str, field: &str) {
        let at = if path.is_empty() { "the policy" } else { path };
        self.error(node.pos, path, format!("missing field `{field}` in {at}"));
    }

    fn root(&mut self, root: &Node) {
        let Some(members) = self.fields(root, "", "policy", ROOT_FIELDS, &[]) else {
            return;
        };
        match get(members, "version") {
            None => self.missing(root, "", "version"),
            Some(m) => {
                if !matches!(&m.value.kind, Kind::String(s) if s == "1") {
                    let found = match &m.value.kind {
                        Kind::String(s) => format!("\"{s}\""),
                        _ => m.value.type_name().to_string(),
                    };
                    self.error(
                        m.value.pos,
                        "version",
                        format!("unsupported `version`: expected \"1\", found {found}"),
                    );
                }
            }
        }
        match get(members, "default") {
            None => self.missing(root, "", "default"),
            Some(m) => {
                if let Some(d) = self.choice(m, "default", &["allow", "deny"]) {
                    self.policy.set_default_deny(d == "deny");
                }
            }
        }
        // Hidden names first, so that tools can be checked against them.
        let mut hidden: Vec<(String, Pos)> = Vec::new();
        let mut star: Option<Pos> = None;
        if let Some(m) = get(members, "hide") {
            match &m.value.kind {
                Kind::Array(items) => {
                    for (i, item) in items.iter().enumerate() {
                        let path = format!("hide[{i}]");
                        match &item.kind {
                            Kind::String(s) if s == "*" => star = Some(item.pos),
                            Kind::String(s) if s.is_empty() => {
                                self.error(item.pos, &path, "empty tool name in `hide`")
                            }
                            Kind::String(s) => hidden.push((s.clone(), item.pos)),
                            _ => self.type_error(item, &path, "hide[]", "a tool name (string)"),
                        }
                    }
                }
                _ => self.type_error(&m.value, "hide", "hide", "an array of tool names"),
            }
        }
        self.policy.set_hide_all(star.is_some());
        for (name, _) in &hidden {
            self.policy.hide(name);
        }
        // Members in file order, so that a counter's first declaration is the earlier one.
        // A repeated key is already an error; only its last occurrence is compiled.
        for m in members {
            if !get(members, &m.key).is_some_and(|last| std::ptr::eq(last, m)) {
                continue;
            }
            match m.key.as_str() {
                "all_tools" => self.all_tools(&m.value),
                "tools" => self.tools(&m.value, &hidden),
                _ => {}
            }
        }
        let all_tools_unreachable = self.policy.default_deny()
            && self
                .policy
                .tool_names()
                .iter()
                .all(|t| hidden.iter().any(|(h, _)| h == t));
        if star.is_none()
            && all_tools_unreachable
            && self.policy.has_all_tools_limits()
            && let Some(m) = get(members, "all_tools")
        {
            self.warn(
                m.key_pos,
                "all_tools",
                "`all_tools` limits never apply: the default is deny and no visible tool is listed under `tools`",
            );
        }
        if let Some(pos) = star {
            let n = self.policy.tool_count();
            if n > 0 || self.policy.has_all_tools_limits() {
                self.warn(
                    pos,
                    "hide",
                    format!(
                        "`\"*\"` hides every tool, so no rule of this policy can ever fire ({n} tool{} configured)",
                        if n == 1 { "" } else { "s" }
                    ),
                );
            }
        }
    }

    fn all_tools(&mut self, node: &Node) {
        let Some(members) = self.fields(node, "all_tools", "all_tools", ALL_TOOLS_FIELDS, &[])
        else {
            return;
        };
        if let Some(m) = get(members, "limits") {
            let limits = self.limits(&m.value, "all_tools.limits", None, None);
            self.policy.set_all_tools_limits(limits);
        }
    }

    fn tools(&mut self, node: &Node, hidden: &[(String, Pos)]) {
        // Sets, not scans: a policy may name 100,000 tools.
        let Kind::Object(members) = &node.kind else {
            self.type_error(node, "tools", "tools", "an object keyed by tool name");
            return;
        };
        let repeated = repeats(members);
        let hidden: std::collections::HashSet<&str> =
            hidden.iter().map(|(h, _)| h.as_str()).collect();
        for (i, m) in members.iter().enumerate() {
            let path = child("tools", &m.key);
            if repeated[i] {
                self.error(
                    m.key_pos,
                    &path,
                    format!("tool `{}` is configured twice", m.key),
                );
                continue;
            }
            if m.key.is_empty() {
                self.error(m.key_pos, &path, "empty tool name");
                continue;
            }
            if hidden.contains(m.key.as_str()) {
                self.warn(
                    m.key_pos,
                    &path,
                    format!(
                        "tool `{}` is both hidden and configured; it is always denied as hidden, so its rules never fire",
                        m.key
                    ),
                );
            }
            self.tool(&m.key, &m.value, &path);
        }
    }

    fn tool(&mut self, name: &str, node: &Node, path: &str) {
        let Some(members) = self.fields(node, path, name, TOOL_FIELDS, TOOL_EXTENSIONS) else {
            return;
        };
        let on_deny = match get(members, "on_deny") {
            Some(m) => self
                .string(m, &child(path, "on_deny"))
                .map(Arc::<str>::from),
            None => None,
        };
        let require_approval = match get(members, "require_approval") {
            Some(m) => match m.value.kind {
                Kind::Bool(b) => b,
                _ => {
                    self.type_error(
                        &m.value,
                        &child(path, "require_approval"),
                        "require_approval",
                        "true or false",
                    );
                    false
                }
            },
            None => false,
        };
        let [require, deny_if, approve_if] =
            [List::Require, List::DenyIf, List::ApproveIf].map(|list| {
                match get(members, list.name()) {
                    Some(m) => self.predicates(
                        name,
                        list,
                        &m.value,
                        &child(path, list.name()),
                        on_deny.as_ref(),
                    ),
                    None => Vec::new(),
                }
            });
        let limits = match get(members, "limits") {
            Some(m) => self.limits(
                &m.value,
                &child(path, "limits"),
                Some(name),
                on_deny.as_ref(),
            ),
            None => Vec::new(),
        };
        if require_approval
            && let Some(m) = get(members, "approve_if")
            && !approve_if.is_empty()
        {
            self.warn(
                m.key_pos,
                &child(path, "approve_if"),
                "`approve_if` never fires: `require_approval` is true, so every call is held anyway",
            );
        }
        if let Some(m) = get(members, "limits") {
            self.warn_negative_increments(members, &m.value, &child(path, "limits"));
        }
        if let Some(m) = get(members, "on_deny") {
            let uses_increment = limits.iter().any(|&i| self.policy.limit(i).reads_args());
            if require.is_empty() && deny_if.is_empty() && !uses_increment {
                self.warn(
                    m.key_pos,
                    &child(path, "on_deny"),
                    "`on_deny` is never used: this tool has no rule that denies",
                );
            }
        }
        self.policy.add_tool(ToolRules::new(
            Arc::from(name),
            require,
            deny_if,
            approve_if,
            require_approval,
            limits,
        ));
    }

    /// Warn on each `increment_from` of `limits` that no `require` of the tool (`members`)
    /// holds at or above zero: a negative amount gives quota back.
    fn warn_negative_increments(&mut self, members: &[Member], limits: &Node, path: &str) {
        let Kind::Array(items) = &limits.kind else {
            return;
        };
        // Paths a `require` holds at or above 0 (`gte`/`gt` a number that is not negative).
        let mut guarded: Vec<&str> = Vec::new();
        if let Some(Kind::Array(preds)) = get(members, "require").map(|m| &m.value.kind) {
            for p in preds {
                let Kind::Object(fields) = &p.kind else {
                    continue;
                };
                let text = |k: &str| match get(fields, k).map(|m| &m.value.kind) {
                    Some(Kind::String(s)) => Some(s.as_str()),
                    _ => None,
                };
                let at_least_zero = match get(fields, "value").map(|m| &m.value.kind) {
                    Some(Kind::Number(n)) => n.as_f64().is_some_and(|v| v >= 0.0),
                    _ => false,
                };
                if let (Some(path), Some("gte" | "gt"), true) =
                    (text("path"), text("op"), at_least_zero)
                {
                    guarded.push(path);
                }
            }
        }
        for (i, item) in items.iter().enumerate() {
            let Kind::Object(fields) = &item.kind else {
                continue;
            };
            let Some(m) = get(fields, "increment_from") else {
                continue;
            };
            let Kind::String(from) = &m.value.kind else {
                continue;
            };
            if !guarded.contains(&from.as_str()) {
                self.warn(
                    m.value.pos,
                    &format!("{path}[{i}].increment_from"),
                    format!(
                        "a negative `{from}` gives quota back (the counter goes down by it): add `require: [{{\"path\": \"{from}\", \"op\": \"gte\", \"value\": 0}}]` unless that is meant"
                    ),
                );
            }
        }
    }

    fn predicates(
        &mut self,
        tool: &str,
        list: List,
        node: &Node,
        path: &str,
        tool_on_deny: Option<&Arc<str>>,
    ) -> Vec<Predicate> {
        let Kind::Array(items) = &node.kind else {
            self.type_error(node, path, list.name(), "an array of predicates");
            return Vec::new();
        };
        let mut out: Vec<Predicate> = Vec::new();
        let mut seen: Vec<(String, &'static str, Value)> = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let ipath = format!("{path}[{i}]");
            let Some(p) = self.predicate(tool, list, item, &ipath, tool_on_deny) else {
                continue;
            };
            let key = (p.path().text.to_string(), p.op().name(), op_value(p.op()));
            let repeats = |s: &(String, &str, Value)| {
                s.0 == key.0 && s.1 == key.1 && same_value(&s.2, &key.2)
            };
            if let Some(j) = seen.iter().position(repeats) {
                self.warn(
                    item.pos,
                    &ipath,
                    format!("this predicate repeats {path}[{j}], so it can never fire"),
                );
            }
            seen.push(key);
            match (p.op(), list) {
                (Op::In(v), List::DenyIf | List::ApproveIf) if v.is_empty() => self.warn(
                    item.pos,
                    &ipath,
                    "`in` with an empty list never holds, so this predicate can never fire",
                ),
                (Op::In(v), List::Require) if v.is_empty() => self.warn(
                    item.pos,
                    &ipath,
                    "`in` with an empty list never holds, so this `require` denies every call",
                ),
                (Op::Neq(_) | Op::NotIn(_), List::Require) => self.warn(
                    item.pos,
                    &ipath,
                    format!(
                        "a missing argument fails `{}`, so this `require` denies every call that \
                         leaves `{}` out; to allow those, use `deny_if` with `{}`",
                        p.op().name(),
                        p.path().text,
                        if matches!(p.op(), Op::Neq(_)) {
                            "eq"
                        } else {
                            "in"
                        }
                    ),
                ),
                _ => {}
            }
            out.push(p);
        }
        out
    }

    fn predicate(
        &mut self,
        tool: &str,
        list: List,
        node: &Node,
        path: &str,
        tool_on_deny: Option<&Arc<str>>,
    ) -> Option<Predicate> {
        let members = self.fields(node, path, "predicate", PREDICATE_FIELDS, &[])?;
        let arg_path = match get(members, "path") {
            None => {
                self.missing(node, path, "path");
                None
            }
            Some(m) => {
                let mpath = child(path, "path");
                let text = self.string(m, &mpath)?;
                let parsed = ArgPath::parse(text);
                if parsed.is_none() {
                    self.error(
                        m.value.pos,
                        &mpath,
                        format!("invalid path `{text}`: it must be `args.` followed by dot-separated argument names"),
                    );
                }
                parsed
            }
        };
        let op_name = match get(members, "op") {
            None => {
                self.missing(node, path, "op");
                None
            }
            Some(m) => self.choice(m, &child(path, "op"), OPERATORS),
        };
        let value = get(members, "value");
        if value.is_none() {
            self.missing(node, path, "value");
        }
        let on_deny = match get(members, "on_deny") {
            Some(m) => self
                .string(m, &child(path, "on_deny"))
                .map(Arc::<str>::from),
            None => None,
        };
        let op = match (op_name, value) {
            (Some(op), Some(v)) => self.operator(op, v, &child(path, "value")),
            _ => None,
        }?;
        let arg_path = arg_path?;
        // The value as written (`100`, not the compiled `100.0`).
        let shown = value.map_or_else(String::new, |m| show(&m.value.to_value()));
        let condition = format!("{} {} {shown}", arg_path.text, op.name());
        let rule: Arc<str> = Arc::from(format!(
            "/tools/{tool}/{}/{}-{}",
            list.name(),
            arg_path.text,
            op.name()
        ));
        let message: Arc<str> = match (on_deny, list) {
            (Some(m), _) => m,
            (None, List::ApproveIf) => Arc::from(format!("held for approval: {condition}")),
            (None, _) if tool_on_deny.is_some() => tool_on_deny.cloned()?,
            (None, List::Require) => Arc::from(format!("require failed: {condition}")),
            (None, List::DenyIf) => Arc::from(format!("denied: {condition}")),
        };
        let unknown_message = Arc::from(format!(
            "argument `{}` was not recorded, so `{condition}` cannot be decided",
            arg_path.text
        ));
        Some(Predicate::new(arg_path, op, rule, message, unknown_message))
    }

    fn operator(&mut self, op: &str, member: &Member, path: &str) -> Option<Op> {
        let node = &member.value;
        let number = |c: &mut Self| match &node.kind {
            Kind::Number(n) => n.as_f64(),
            _ => {
                c.type_error(node, path, "value", &format!("a number for `{op}`"));
                None
            }
        };
        let list = |c: &mut Self| match &node.kind {
            Kind::Array(items) => Some(items.iter().map(Node::to_value).collect::<Vec<_>>()),
            _ => {
                c.type_error(node, path, "value", &format!("a list for `{op}`"));
                None
            }
        };
        Some(match op {
            "eq" => Op::Eq(node.to_value()),
            "neq" => Op::Neq(node.to_value()),
            "in" => Op::In(list(self)?),
            "not_in" => Op::NotIn(list(self)?),
            "lt" => Op::Lt(number(self)?),
            "lte" => Op::Lte(number(self)?),
            "gt" => Op::Gt(number(self)?),
            "gte" => Op::Gte(number(self)?),
            "contains" => Op::Contains(node.to_value()),
            "exists" => match node.kind {
                Kind::Bool(b) => Op::Exists(b),
                _ => {
                    self.type_error(node, path, "value", "true or false for `exists`");
                    return None;
                }
            },
            "regex" => {
                let Kind::String(s) = &node.kind else {
                    self.type_error(node, path, "value", "a string for `regex`");
                    return None;
                };
                if let Some(n) = crate::engine::predicate::large_repetition(s) {
                    self.warn(
                        node.pos,
                        path,
                        format!(
                            "regex `{s}` repeats {n} times: matching a long argument costs time in proportion (keep counts to {} or below)",
                            crate::engine::predicate::LARGE_REPETITION
                        ),
                    );
                }
                match crate::engine::predicate::compile_regex(s) {
                    Ok(re) => Op::Regex(re),
                    Err(e) => {
                        let detail = e.to_string();
                        // The regex crate's message ends with `error: <what>` under a caret drawing.
                        let last = detail.lines().last().unwrap_or("").trim();
                        let last = last.strip_prefix("error: ").unwrap_or(last);
                        self.error(node.pos, path, format!("invalid regex `{s}`: {last}"));
                        return None;
                    }
                }
            }
            _ => return None,
        })
    }

    /// Compile a `limits` array; returns indices into the policy's limits.
    fn limits(
        &mut self,
        node: &Node,
        path: &str,
        tool: Option<&str>,
        tool_on_deny: Option<&Arc<str>>,
    ) -> Vec<usize> {
        let Kind::Array(items) = &node.kind else {
            self.type_error(node, path, "limits", "an array of limits");
            return Vec::new();
        };
        let mut out = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let ipath = format!("{path}[{i}]");
            if let Some(li) = self.limit(item, &ipath, tool, tool_on_deny, &out) {
                out.push(li);
            }
        }
        out
    }

    /// One limit: its fields, then its counter, then the compiled limit; its index.
    fn limit(
        &mut self,
        node: &Node,
        path: &str,
        tool: Option<&str>,
        tool_on_deny: Option<&Arc<str>>,
        earlier: &[usize],
    ) -> Option<usize> {
        let members = self.fields(node, path, "limit", LIMIT_FIELDS, LIMIT_EXTENSIONS)?;
        let def = self.limit_def(node, members, path)?;
        let slot = self.counter_slot(&def, path, tool, earlier)?;
        Some(self.add_limit(def, slot, tool, tool_on_deny))
    }

    /// The fields of one limit, each checked on its own; `None` after reporting what is wrong.
    fn limit_def<'n>(
        &mut self,
        node: &'n Node,
        members: &'n [Member],
        path: &str,
    ) -> Option<LimitDef<'n>> {
        let counter = match get(members, "counter") {
            None => {
                self.missing(node, path, "counter");
                None
            }
            Some(m) => {
                let s = self.string(m, &child(path, "counter"));
                if s == Some("") {
                    self.error(m.value.pos, &child(path, "counter"), "empty counter name");
                    None
                } else {
                    s.map(|s| (s, m.value.pos))
                }
            }
        };
        let window = match get(members, "window") {
            None => {
                self.missing(node, path, "window");
                None
            }
            Some(m) => self.window(m, &child(path, "window")),
        };
        let max = match get(members, "max") {
            None => {
                self.missing(node, path, "max");
                None
            }
            Some(m) => match &m.value.kind {
                Kind::Number(n) => match n.as_f64() {
                    Some(x) if x >= 0.0 => Some((x, m)),
                    _ => {
                        self.error(
                            m.value.pos,
                            &child(path, "max"),
                            "`max` must not be negative",
                        );
                        None
                    }
                },
                _ => {
                    self.type_error(&m.value, &child(path, "max"), "max", "a number");
                    None
                }
            },
        };
        let scope = match get(members, "scope") {
            None => Some(Scope::Grant),
            Some(m) => self
                .choice(m, &child(path, "scope"), SCOPES)
                .map(|s| match s {
                    "session" => Scope::Session,
                    "server" => Scope::Server,
                    "global" => Scope::Global,
                    _ => Scope::Grant,
                }),
        };
        let algorithm = match get(members, "algorithm") {
            None => Some(Algorithm::Fixed),
            Some(m) => self
                .choice(m, &child(path, "algorithm"), ALGORITHMS)
                .map(|s| {
                    if s == "sliding" {
                        Algorithm::Sliding
                    } else {
                        Algorithm::Fixed
                    }
                }),
        };
        let increment_from = match get(members, "increment_from") {
            None => Some(None),
            Some(m) => {
                let ipath = child(path, "increment_from");
                match self.string(m, &ipath) {
                    None => None,
                    Some(text) => match ArgPath::parse(text) {
                        Some(p) => Some(Some(p)),
                        None => {
                            self.error(
                                m.value.pos,
                                &ipath,
                                format!("invalid path `{text}`: it must be `args.` followed by dot-separated argument names"),
                            );
                            None
                        }
                    },
                }
            }
        };
        let (
            Some((name, name_pos)),
            Some(window_secs),
            Some((max, max_member)),
            Some(scope),
            Some(algorithm),
            Some(increment_from),
        ) = (counter, window, max, scope, algorithm, increment_from)
        else {
            return None;
        };
        if max < 1.0 && increment_from.is_none() {
            self.warn(
                max_member.value.pos,
                &child(path, "max"),
                format!("`max` {max} is below 1, so this limit throttles every call"),
            );
        }
        Some(LimitDef {
            counter: Counter::new(Arc::from(name), window_secs, max, scope, algorithm),
            name,
            name_pos,
            increment_from,
        })
    }

    /// The slot of the limit's counter: a new one, or that of an earlier declaration the limit
    /// agrees with. `None` after reporting a conflict.
    fn counter_slot(
        &mut self,
        def: &LimitDef<'_>,
        path: &str,
        tool: Option<&str>,
        earlier: &[usize],
    ) -> Option<usize> {
        let name = def.name;
        let mut ok = true;
        let cpath = child(path, "counter");
        let slot = match self.counters.get(name) {
            None => {
                let slot = self.policy.add_counter(def.counter.clone());
                self.counters.insert(
                    name.to_string(),
                    CounterDecl {
                        slot,
                        owner: tool.map(str::to_string),
                        pos: def.name_pos,
                    },
                );
                slot
            }
            Some(decl) => {
                let first = self.policy.counter(decl.slot);
                let (slot, first_pos) = (decl.slot, decl.pos);
                let describe = |c: &Counter| {
                    format!(
                        "{} / max {} / scope {} / {}",
                        window_text(c.window_secs, Algorithm::Fixed),
                        c.max,
                        c.scope.as_str(),
                        c.algorithm.as_str()
                    )
                };
                let same = first.window_secs == def.counter.window_secs
                    && first.max == def.counter.max
                    && first.scope == def.counter.scope
                    && first.algorithm == def.counter.algorithm;
                let message = match (&decl.owner, tool) {
                    (None, Some(t)) => Some(format!(
                        "counter `{name}` is used both under `all_tools` (line {}) and under tool `{t}`",
                        first_pos.line
                    )),
                    (Some(o), None) => Some(format!(
                        "counter `{name}` is used both under tool `{o}` (line {}) and under `all_tools`",
                        first_pos.line
                    )),
                    _ if earlier
                        .iter()
                        .any(|&l| self.policy.limit(l).counter() == slot) =>
                    {
                        Some(format!(
                            "counter `{name}` is already a limit here; it would count each call twice"
                        ))
                    }
                    _ if !same => Some(format!(
                        "counter `{name}` is declared differently at line {}: {} there, {} here",
                        first_pos.line,
                        describe(first),
                        describe(&def.counter)
                    )),
                    _ => None,
                };
                if let Some(message) = message {
                    self.error(def.name_pos, &cpath, message);
                    ok = false;
                }
                slot
            }
        };
        ok.then_some(slot)
    }

    /// Add the limit to the policy with its rule id and messages; its index.
    fn add_limit(
        &mut self,
        def: LimitDef<'_>,
        slot: usize,
        tool: Option<&str>,
        tool_on_deny: Option<&Arc<str>>,
    ) -> usize {
        let LimitDef {
            counter,
            name,
            increment_from,
            ..
        } = def;
        let (window_secs, max, scope, algorithm) = (
            counter.window_secs,
            counter.max,
            counter.scope,
            counter.algorithm,
        );
        let rule: Arc<str> = Arc::from(match tool {
            Some(t) => format!("/tools/{t}/limits/{name}"),
            None => format!("/all_tools/limits/{name}"),
        });
        let per = window_text(window_secs, algorithm);
        let throttle_message = Arc::from(format!(
            "rate limit exceeded: counter `{name}` allows {max} per {per} (scope {})",
            scope.as_str()
        ));
        let (missing_message, not_number_message, unknown_message) = match &increment_from {
            Some(p) => (
                tool_on_deny.cloned().unwrap_or_else(|| {
                    Arc::from(format!("`increment_from` argument `{}` is missing", p.text))
                }),
                tool_on_deny.cloned().unwrap_or_else(|| {
                    Arc::from(format!(
                        "`increment_from` argument `{}` is not a number",
                        p.text
                    ))
                }),
                Arc::from(format!(
                    "argument `{}` was not recorded, so the increment of counter `{name}` is unknown",
                    p.text
                )),
            ),
            None => {
                let empty = self.policy.empty_text().clone();
                (empty.clone(), empty.clone(), empty)
            }
        };
        self.policy.add_limit(Limit::new(
            slot,
            increment_from,
            rule,
            LimitMessages {
                throttle: throttle_message,
                missing: missing_message,
                not_number: not_number_message,
                unknown: unknown_message,
            },
        ))
    }

    fn window(&mut self, m: &Member, path: &str) -> Option<u64> {
        match &m.value.kind {
            Kind::String(_) => self.choice(m, path, WINDOWS).and_then(unit_seconds),
            Kind::Number(n) => {
                if self.opts.strict_dialect {
                    self.error(
                        m.value.pos,
                        path,
                        "a numeric `window` is an mcpsim extension, rejected under --strict-dialect",
                    );
                    return None;
                }
                match n.as_u64() {
                    Some(s) if (1..=MAX_WINDOW_SECS).contains(&s) => Some(s),
                    _ => {
                        self.error(
                            m.value.pos,
                            path,
                            format!("a numeric `window` must be a whole number of seconds from 1 to {MAX_WINDOW_SECS}, found {n}"),
                        );
                        None
                    }
                }
            }
            _ => {
                self.type_error(
                    &m.value,
                    path,
                    "window",
                    "\"second\", \"minute\", \"hour\", \"day\" or a number of seconds",
                );
                None
            }
        }
    }
}

/// Equal policy values, numbers compared by value (`1` and `1.0` are the same predicate).
fn same_value(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same_value(x, y))
        }
        _ => a == b,
    }
}

/// The policy value of an operator, for duplicate detection and messages.
fn op_value(op: &Op) -> Value {
    match op {
        Op::Eq(v) | Op::Neq(v) | Op::Contains(v) | Op::ContainsElement(v) => v.clone(),
        Op::In(l) | Op::NotIn(l) => Value::Array(l.clone()),
        Op::Lt(n) | Op::Lte(n) | Op::Gt(n) | Op::Gte(n) => {
            serde_json::Number::from_f64(*n).map_or(Value::Null, Value::Number)
        }
        Op::Regex(re) => Value::String(re.as_str().to_string()),
        Op::Exists(b) => Value::Bool(*b),
    }
}

/// For each member, whether an earlier member has its key (found in one pass).
fn repeats(members: &[Member]) -> Vec<bool> {
    let mut seen = std::collections::HashSet::with_capacity(members.len());
    members
        .iter()
        .map(|m| !seen.insert(m.key.as_str()))
        .collect()
}
