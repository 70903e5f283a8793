//! The call record: what every reader produces and everything downstream consumes.

use std::sync::{Arc, OnceLock};

use serde_json::{Map, Value};

/// Nanoseconds since the Unix epoch, UTC. Every timestamp in mcpsim is one of these.
pub type Nanos = i64;

/// An interned string (server, grant, session, tool names repeat on every call).
pub type Sym = Arc<str>;

/// One recorded `tools/call`, normalised from whatever format it was read from.
#[derive(Debug, Clone, PartialEq)]
pub struct CallRecord {
    /// When the gateway received the call.
    pub ts: Nanos,
    /// The MCP server the call went to.
    pub server: Sym,
    /// Caller identity (grant/token label, agent, user, client), when known.
    pub grant: Option<Sym>,
    /// MCP session id, when known.
    pub session: Option<Sym>,
    /// `params.name` of the `tools/call`.
    pub tool: Sym,
    /// What the trace recorded of the arguments.
    pub args: Args,
    /// Request id / JSON-RPC id, for cross-reference.
    pub id: Option<String>,
    /// What the gateway decided when the call was recorded, if the trace says.
    pub recorded: Option<Recorded>,
    /// How the upstream call ended, when it was forwarded and the trace says.
    pub upstream: Option<Upstream>,
    /// Upstream latency in milliseconds, when known.
    pub latency_ms: Option<f64>,
    /// Where the record came from (file index and line), for error messages and reports.
    pub origin: Origin,
}

/// What a trace recorded of a call's arguments.
///
/// Equality compares what was recorded, not how it is held: `Raw` text equals the `Values`
/// map it parses to.
#[derive(Debug, Clone, Default)]
pub enum Args {
    /// The full argument object.
    Values(Map<String, Value>),
    /// Only the top-level keys (gateway logs that never store values).
    Keys(Vec<String>),
    /// Nothing at all (a hash, or no field).
    #[default]
    Unrecorded,
    /// The full argument object, kept as the JSON text it was read from and parsed into a map
    /// only when first asked for (most policies never read arguments, and building a map per
    /// call dominated replay time).
    Raw(RawArgs),
}

/// The JSON text of an argument object whose map is built on first use.
#[derive(Debug, Clone)]
pub struct RawArgs {
    text: Box<str>,
    // Boxed so that `Args`, and with it every `CallRecord`, stays as small as before.
    parsed: OnceLock<Option<Box<Map<String, Value>>>>,
}

impl RawArgs {
    /// Keep `text`, which the caller has already checked to be a JSON object that
    /// [`serde_json`] parses into a map (see [`raw_object_parses`]). Text that does not parse
    /// anyway reads as unrecorded arguments rather than failing later.
    pub fn new(text: impl Into<Box<str>>) -> RawArgs {
        RawArgs {
            text: text.into(),
            parsed: OnceLock::new(),
        }
    }

    /// The JSON text as read.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The argument map, parsed on the first call.
    pub fn map(&self) -> Option<&Map<String, Value>> {
        self.parsed
            .get_or_init(|| serde_json::from_str(&self.text).ok().map(Box::new))
            .as_deref()
    }
}

/// Whether `text`, already known to be syntactically valid JSON, is an object that
/// [`serde_json`] will also turn into a map. Syntax checks that skip values accept numbers a
/// map parse rejects as out of range, so text with an exponent or a very long digit run is
/// refused here (callers then parse it at once, which reports such numbers as before). A
/// refusal is only ever a missed shortcut, never a wrong answer.
pub fn raw_object_parses(text: &str) -> bool {
    let b = text.as_bytes();
    if b.first() != Some(&b'{') {
        return false;
    }
    let mut run = 0usize;
    let mut prev = 0u8;
    for &c in b {
        if c.is_ascii_digit() {
            run += 1;
            if run > 200 {
                return false;
            }
        } else {
            if matches!(c, b'e' | b'E') && (prev.is_ascii_digit() || prev == b'.') {
                return false;
            }
            run = 0;
        }
        prev = c;
    }
    true
}

/// A borrowed look at recorded arguments, with raw text resolved to its map.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ArgsView<'a> {
    /// The full argument object.
    Values(&'a Map<String, Value>),
    /// Only the top-level keys.
    Keys(&'a [String]),
    /// Nothing recorded.
    Unrecorded,
}

impl Args {
    /// The argument object, when values were recorded.
    pub fn values(&self) -> Option<&Map<String, Value>> {
        match self.view() {
            ArgsView::Values(m) => Some(m),
            _ => None,
        }
    }

    /// What was recorded, raw text parsed (once) into its map.
    pub fn view(&self) -> ArgsView<'_> {
        match self {
            Args::Values(m) => ArgsView::Values(m),
            Args::Keys(k) => ArgsView::Keys(k),
            Args::Unrecorded => ArgsView::Unrecorded,
            Args::Raw(r) => match r.map() {
                Some(m) => ArgsView::Values(m),
                None => ArgsView::Unrecorded,
            },
        }
    }
}

impl PartialEq for Args {
    fn eq(&self, other: &Args) -> bool {
        match (self, other) {
            (Args::Raw(a), Args::Raw(b)) if a.text == b.text => true,
            _ => self.view() == other.view(),
        }
    }
}

/// How the upstream call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Upstream {
    /// A result without `isError`.
    Ok,
    /// A JSON-RPC `error` response (or a transport failure).
    Error,
    /// A result with `isError: true`.
    ToolError,
}

impl Upstream {
    /// The name used in call records (`ok`, `error`, `tool_error`).
    pub fn as_str(self) -> &'static str {
        match self {
            Upstream::Ok => "ok",
            Upstream::Error => "error",
            Upstream::ToolError => "tool_error",
        }
    }

    /// Parse a call-record name.
    pub fn parse(s: &str) -> Option<Upstream> {
        match s {
            "ok" => Some(Upstream::Ok),
            "error" => Some(Upstream::Error),
            "tool_error" => Some(Upstream::ToolError),
            _ => None,
        }
    }
}

/// What the gateway did with a call when it was recorded.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Recorded {
    /// The recorded decision, normalised to mcpsim's names when possible.
    pub decision: Option<RecordedDecision>,
    /// The rule the gateway named.
    pub rule: Option<String>,
    /// The message the gateway returned.
    pub message: Option<String>,
    /// The policy version in force.
    pub policy_version: Option<String>,
}

/// A decision as a gateway recorded it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RecordedDecision {
    /// Forwarded upstream.
    Allow,
    /// Refused by a rule.
    Deny,
    /// Refused by a limit.
    Throttle,
    /// Held for human approval.
    Approval,
}

impl RecordedDecision {
    /// The call-record name.
    pub fn as_str(self) -> &'static str {
        match self {
            RecordedDecision::Allow => "allow",
            RecordedDecision::Deny => "deny",
            RecordedDecision::Throttle => "throttle",
            RecordedDecision::Approval => "approval",
        }
    }

    /// Parse the names gateways use (`allow`/`allowed`, `deny`/`denied`, …).
    pub fn parse(s: &str) -> Option<RecordedDecision> {
        match s.to_ascii_lowercase().as_str() {
            "allow" | "allowed" | "permit" | "permitted" | "forwarded" => {
                Some(RecordedDecision::Allow)
            }
            "deny" | "denied" | "block" | "blocked" | "hidden" => Some(RecordedDecision::Deny),
            "throttle" | "throttled" | "rate_limited" | "rate-limited" | "limited" => {
                Some(RecordedDecision::Throttle)
            }
            "approval" | "pending_approval" | "require_approval" | "held" => {
                Some(RecordedDecision::Approval)
            }
            _ => None,
        }
    }
}

/// Where a record came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Origin {
    /// Index of the input file in the order the inputs were given.
    pub file: u32,
    /// 1-based line (or row) number in that file.
    pub line: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_text_equals_the_map_it_parses_to() {
        let raw = Args::Raw(RawArgs::new(r#"{"b": [1, {"c": null}], "a": "x"}"#));
        let values = serde_json::json!({"a": "x", "b": [1, {"c": null}]});
        let Value::Object(map) = values else {
            panic!("an object");
        };
        assert_eq!(raw, Args::Values(map.clone()));
        assert_eq!(Args::Values(map.clone()), raw);
        assert_eq!(raw.values(), Some(&map));
        assert_ne!(raw, Args::Values(Map::new()));
        assert_ne!(raw, Args::Unrecorded);
        assert_eq!(
            raw,
            Args::Raw(RawArgs::new(r#"{"a":"x","b":[1,{"c":null}]}"#))
        );
        assert_ne!(
            raw,
            Args::Raw(RawArgs::new(r#"{"a":"y","b":[1,{"c":null}]}"#))
        );
    }

    #[test]
    fn only_plain_objects_are_vouched_for() {
        assert!(raw_object_parses(r#"{"a":"e1","b":[1.5,-2],"c":{}}"#));
        assert!(raw_object_parses(r#"{"name":"tree"}"#));
        assert!(!raw_object_parses("[1]"));
        assert!(!raw_object_parses(r#""{}""#));
        assert!(!raw_object_parses(r#"{"n":1e400}"#));
        assert!(!raw_object_parses(r#"{"n":1.E3}"#));
        let long = format!(r#"{{"n":{}}}"#, "9".repeat(400));
        assert!(!raw_object_parses(&long));
    }
}
