//! How the upstream call ended.

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
