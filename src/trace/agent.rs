//! What the readers of agent-side logs (Claude Code transcripts, opencode event streams, Codex
//! rollouts) share: the options that say which server a tool name belongs to and who the
//! caller is, and the splitting of an agent's tool name into server and tool.
//!
//! An agent names an MCP tool by joining server and tool with a delimiter (`mcp__github__get_me`
//! in Claude Code and Codex, `github_get_me` in opencode). Server names may contain the
//! delimiter's characters, so the split is ambiguous; the servers named with `--mcp-server`
//! are matched first (the longest that fits wins), and only then is the name split at the first
//! delimiter.

use std::fmt;
use std::str::FromStr;

/// How the readers of agent logs read tool names and callers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AgentOptions {
    /// MCP servers the agent was connected to (`--mcp-server`), to split tool names that
    /// could split several ways. For opencode, when given, only their tools are calls.
    pub mcp_servers: Vec<String>,
    /// What becomes a call's grant (`--agent-grant`).
    pub grant: AgentGrant,
}

/// What an agent log's call gets as its grant: the caller identity policies key on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum AgentGrant {
    /// The project (working) directory the agent ran in, where the log says (Claude Code
    /// `cwd`, Codex `cwd`).
    #[default]
    Project,
    /// The model that made the call, where the log says (Claude Code `message.model`, Codex
    /// `turn_context.model`).
    Model,
    /// No grant.
    None,
    /// The same grant for every call (`fixed:NAME`).
    Fixed(String),
}

impl FromStr for AgentGrant {
    type Err = String;

    fn from_str(s: &str) -> Result<AgentGrant, String> {
        match s {
            "project" => Ok(AgentGrant::Project),
            "model" => Ok(AgentGrant::Model),
            "none" => Ok(AgentGrant::None),
            _ => match s.strip_prefix("fixed:") {
                Some(name) if !name.is_empty() => Ok(AgentGrant::Fixed(name.to_string())),
                _ => Err(format!(
                    "expected project, model, none or fixed:NAME, found {s:?}"
                )),
            },
        }
    }
}

impl fmt::Display for AgentGrant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AgentGrant::Project => f.write_str("project"),
            AgentGrant::Model => f.write_str("model"),
            AgentGrant::None => f.write_str("none"),
            AgentGrant::Fixed(name) => write!(f, "fixed:{name}"),
        }
    }
}

impl AgentGrant {
    /// The grant of a call whose log names `project` and `model` (either may be unknown).
    pub(crate) fn pick<'a>(
        &'a self,
        project: Option<&'a str>,
        model: Option<&'a str>,
    ) -> Option<&'a str> {
        match self {
            AgentGrant::Project => project,
            AgentGrant::Model => model,
            AgentGrant::None => None,
            AgentGrant::Fixed(name) => Some(name),
        }
    }
}

impl AgentOptions {
    /// These options with the servers given as agents write them into tool names
    /// ([`normalize_server`]).
    pub(crate) fn normalized(&self) -> AgentOptions {
        AgentOptions {
            mcp_servers: self
                .mcp_servers
                .iter()
                .map(|s| normalize_server(s))
                .collect(),
            grant: self.grant.clone(),
        }
    }
}

/// Claude Code and Codex write a server's name into tool names with every character outside
/// `[A-Za-z0-9_-]` replaced by `_`; the names given with `--mcp-server` are compared the
/// same way.
pub(crate) fn normalize_server(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Split `name` (without the agent's `mcp__` prefix, if any) into (server, tool) at
/// `delimiter`: a known server that fits wins (the longest), otherwise the first delimiter.
/// `None` when no delimiter separates a non-empty server from a non-empty tool.
pub(crate) fn split_tool<'a>(
    name: &'a str,
    delimiter: &str,
    known: &[String],
) -> Option<(&'a str, &'a str)> {
    let best = known
        .iter()
        .filter(|s| {
            name.len() > s.len() + delimiter.len()
                && name.starts_with(s.as_str())
                && name[s.len()..].starts_with(delimiter)
        })
        .max_by_key(|s| s.len());
    if let Some(server) = best {
        return Some((
            &name[..server.len()],
            &name[server.len() + delimiter.len()..],
        ));
    }
    let at = name.find(delimiter)?;
    let (server, tool) = (&name[..at], &name[at + delimiter.len()..]);
    (!server.is_empty() && !tool.is_empty()).then_some((server, tool))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_servers_split_names_the_first_delimiter_would_split_wrongly() {
        let known = vec!["my_files".to_string(), "my".to_string()];
        assert_eq!(
            split_tool("my_files_read_file", "_", &known),
            Some(("my_files", "read_file"))
        );
        assert_eq!(
            split_tool("other_read", "_", &known),
            Some(("other", "read"))
        );
        assert_eq!(
            split_tool("github__get_me", "__", &[]),
            Some(("github", "get_me"))
        );
        assert_eq!(
            split_tool("fly_io__apps_list", "__", &[]),
            Some(("fly_io", "apps_list"))
        );
        assert_eq!(split_tool("nodelimiter", "__", &[]), None);
        assert_eq!(split_tool("__tool", "__", &[]), None);
    }

    #[test]
    fn grant_choices_parse_and_print_back() {
        for s in ["project", "model", "none", "fixed:ci-agent"] {
            assert_eq!(s.parse::<AgentGrant>().unwrap().to_string(), s);
        }
        assert!("fixed:".parse::<AgentGrant>().is_err());
        assert!("cwd".parse::<AgentGrant>().is_err());
    }
}
