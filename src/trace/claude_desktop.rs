//! Claude Desktop MCP logs (`mcp.log`, `mcp-server-<name>.log`):
//! `<ts> [<server>] [<level>] Message from client: {json} { metadata: undefined }`.
//! Ids restart with each connection, so replies pair by (server, connection number, id), where a
//! connection starts at `Initializing server...` and ends at `Server transport closed` (see
//! [`super::pairing`]).
//!
//! Claude Desktop may run two connections of one server at once (it is known to start every
//! server twice: two clients in one app), both logging to the same file with ids that both
//! start at 0. The log does not say which connection a line is of; [`Connections`] tells them
//! apart as a client numbers its requests, one after the other, and as replies answer what
//! each connection has asked.
//!
//! Some versions log every line twice: a line the same to the byte as one before it with the
//! same timestamp is counted as a `duplicate line` and read once.

use std::collections::{HashMap, HashSet, VecDeque};

use serde_json::{Map, Value};

use super::format::CLAUDE_LINE;
use super::intern::Interner;
use super::pairing::{CANCELLED, Exchange, Message, cancelled, outcome_of};
use super::source::{Ctx, Fields, LineError};
use super::time::parse_ts_str;
use super::{Args, CallRecord, Nanos, Origin, Sym};

type Key = (Sym, u32, String);

const FROM_CLIENT: &str = "Message from client: ";
const FROM_SERVER: &str = "Message from server: ";

#[derive(Default)]
pub(crate) struct Claude {
    names: Interner,
    connections: HashMap<Sym, Connections>,
    /// The timestamp of the last line read and every line read with it.
    same_time: (String, HashSet<String>),
}

impl Exchange for Claude {
    type Key = Key;

    fn message(
        &mut self,
        text: &str,
        origin: Origin,
        index: bool,
        cx: &mut Ctx<'_>,
    ) -> Result<Message<Key>, LineError> {
        self.line(text, origin, index, cx)
    }
}

impl Claude {
    fn line(
        &mut self,
        text: &str,
        origin: Origin,
        index: bool,
        cx: &mut Ctx<'_>,
    ) -> Result<Message<Key>, LineError> {
        let Some(caps) = CLAUDE_LINE.captures(text) else {
            // Claude Desktop's own lines naming no server (`<ts> [info] Connected to MCP server
            // x!`, older releases); server stderr, tracebacks and the like: not calls, not
            // malformed log lines.
            cx.ignore(if is_app_line(text) {
                "other log line"
            } else {
                "unstructured log line"
            });
            return Ok(Message::Other);
        };
        // Per-server logs write `[server] [level]`; some `mcp.log` versions `[level] [server]`.
        let (ts_text, rest) = (&caps[1], &caps[4]);
        if self.same_time.0 != ts_text {
            self.same_time.0.clear();
            self.same_time.0.push_str(ts_text);
            self.same_time.1.clear();
        } else if self.same_time.1.contains(text) {
            cx.ignore("duplicate line");
            return Ok(Message::Other);
        }
        self.same_time.1.insert(text.to_owned());
        let server = if is_level(&caps[2]) && !is_level(&caps[3]) {
            &caps[3]
        } else {
            &caps[2]
        };
        let server = self.names.get(server);
        if let Some(kind) = redacted(rest) {
            cx.ignore(kind);
            return Ok(Message::Other);
        }
        if let Some(json) = rest.strip_prefix(FROM_CLIENT) {
            let ts = ts(ts_text)?;
            let msg = first_object(json)?;
            return self.client_message(&msg, ts, server, origin, index, cx);
        }
        if let Some(json) = rest.strip_prefix(FROM_SERVER) {
            let ts = ts(ts_text)?;
            let msg = first_object(json)?;
            if msg.contains_key("result") || msg.contains_key("error") {
                let id = msg.get("id").map(Value::to_string).unwrap_or_default();
                let conn = self.connections.entry(server.clone()).or_default();
                let conn = conn.answered(&id);
                return Ok(Message::Reply {
                    key: (server, conn, id),
                    ts,
                    outcome: outcome_of(&msg),
                });
            }
            cx.ignore("server message");
            return Ok(Message::Other);
        }
        if rest.starts_with("Initializing server") {
            self.connections.entry(server).or_default().open();
            cx.ignore("connection event");
        } else if let Some(tail) = rest.strip_prefix("Server transport closed") {
            // The line a closing connection writes; the `… closed unexpectedly, …` after it
            // when the server exited is the same closing told again.
            let tail = tail.trim_start();
            if tail.is_empty() || tail.starts_with('{') {
                self.connections.entry(server).or_default().close();
            }
            cx.ignore("connection event");
        } else {
            cx.ignore("other log line");
        }
        Ok(Message::Other)
    }

    #[allow(clippy::too_many_arguments)]
    fn client_message(
        &mut self,
        msg: &Map<String, Value>,
        ts: Nanos,
        server: Sym,
        origin: Origin,
        index: bool,
        cx: &mut Ctx<'_>,
    ) -> Result<Message<Key>, LineError> {
        let m = Fields::new(msg, "message");
        let Some(method) = m.opt_str("method")? else {
            cx.ignore("client reply");
            return Ok(Message::Other);
        };
        let conns = self.connections.entry(server.clone()).or_default();
        let key = msg
            .get("id")
            .filter(|v| !v.is_null())
            .map(|v| (server.clone(), conns.asked(v), v.to_string()));
        if method != "tools/call" {
            cx.ignore(format!("method {method}"));
            return Ok(match key {
                Some(key) => Message::Request(key),
                None if method == CANCELLED => cancelled(msg).map_or(Message::Other, |id| {
                    let id = id.to_string();
                    Message::Cancel((server.clone(), conns.asking(&id), id))
                }),
                None => Message::Other,
            });
        }
        let params = m
            .opt_object("params")?
            .ok_or_else(|| LineError::missing("message.params"))?;
        let p = Fields::new(params, "message.params");
        let tool = self.names.get(p.req_str("name")?);
        let arguments = p.opt_object("arguments")?;
        let args = if index {
            Args::Unrecorded
        } else {
            Args::Values(arguments.cloned().unwrap_or_default())
        };
        let id = m.opt_id("id")?;
        Ok(Message::Call {
            key,
            rec: Box::new(CallRecord {
                ts,
                server,
                grant: None,
                session: None,
                tool,
                args,
                id,
                recorded: None,
                upstream: None,
                latency_ms: None,
                origin,
            }),
        })
    }
}

/// The connections of one server that may still be in use, newest last, and how many were
/// opened.
#[derive(Default)]
struct Connections {
    open: VecDeque<Connection>,
    opened: u32,
}

/// A connection: its number, the id its client's next request should have, and the ids of its
/// requests not answered yet.
struct Connection {
    number: u32,
    next: Option<u64>,
    asking: HashSet<String>,
}

/// How many connections of one server are told apart at once; an older one's requests stay
/// unanswered. Two clients of one app are what is known.
const OPEN_CONNECTIONS: usize = 4;

impl Connections {
    /// `Initializing server...`: a new connection (the older ones may still be in use).
    fn open(&mut self) {
        self.opened += 1;
        if self.open.len() == OPEN_CONNECTIONS {
            self.open.pop_front();
        }
        let number = self.opened;
        (self.open).push_back(Connection {
            number,
            next: None,
            asking: HashSet::new(),
        });
    }

    /// `Server transport closed`: the oldest connection still open ends (the only one, unless
    /// the app started the server twice), and its requests without a reply keep none.
    fn close(&mut self) {
        self.open.pop_front();
    }

    /// The newest connection; lines of no connection open (before any `Initializing
    /// server...`, or after the last one closed) are of a connection of their own.
    fn newest(&mut self) -> &mut Connection {
        if self.open.is_empty() {
            self.opened += 1;
            self.open.push_back(Connection {
                number: self.opened,
                next: None,
                asking: HashSet::new(),
            });
        }
        self.open.back_mut().expect("one is open")
    }

    /// The connection a client request with `id` is of: the newest whose client numbered its
    /// last request one less, else the newest.
    fn asked(&mut self, id: &Value) -> u32 {
        let n = id.as_u64();
        let at = (self.open.iter())
            .rposition(|c| n.is_some() && c.next == n)
            .unwrap_or(self.open.len().saturating_sub(1));
        let conn = match self.open.get_mut(at) {
            Some(c) => c,
            None => self.newest(),
        };
        conn.next = n.map(|n| n + 1);
        conn.asking.insert(id.to_string());
        conn.number
    }

    /// The connection that asked the request `id` (its text) a reply or cancel names: the
    /// newest with it unanswered, else the newest.
    fn asking(&mut self, id: &str) -> u32 {
        match (self.open.iter()).rev().find(|c| c.asking.contains(id)) {
            Some(c) => c.number,
            None => self.newest().number,
        }
    }

    /// A reply to the request `id`: the connection it answers, which has it answered now.
    fn answered(&mut self, id: &str) -> u32 {
        match (self.open.iter_mut()).rev().find(|c| c.asking.contains(id)) {
            Some(c) => {
                c.asking.remove(id);
                c.number
            }
            None => self.newest().number,
        }
    }
}

fn ts(text: &str) -> Result<Nanos, LineError> {
    parse_ts_str(text).map_err(|r| LineError::at("bad timestamp", "timestamp", r))
}

/// The JSON object at the start of `text`; whatever follows it (`{ metadata: undefined }`) is
/// not JSON and is ignored.
fn first_object(text: &str) -> Result<Map<String, Value>, LineError> {
    let mut it = serde_json::Deserializer::from_str(text).into_iter::<Value>();
    match it.next() {
        Some(Ok(Value::Object(m))) => Ok(m),
        Some(Ok(other)) => Err(LineError::wrong_type("message", "an object", &other)),
        Some(Err(e)) => Err(LineError::json(&e)),
        None => Err(LineError::new(
            "invalid JSON",
            "truncated JSON: empty message",
        )),
    }
}

/// What a message line of a redacted log is counted as. Releases from mid-2026 log a
/// message's method and id only (`Message from client: method="tools/call" id=3 params`,
/// `Message from server: id=3 result(1 blocks)` or `error(code=-32603)`): no tool name and no
/// arguments, so their calls cannot be replayed.
fn redacted(rest: &str) -> Option<String> {
    if let Some(m) = rest.strip_prefix(FROM_CLIENT) {
        let method = m.strip_prefix("method=\"")?;
        let method = &method[..method.find('"')?];
        return Some(match method {
            "tools/call" => "tools/call in a redacted log (no tool name or arguments)".into(),
            other => format!("method {other} (redacted log)"),
        });
    }
    let m = rest.strip_prefix(FROM_SERVER)?;
    (m.starts_with("id=") || m.starts_with("method=\""))
        .then(|| "server message in a redacted log".into())
}

/// A line of Claude Desktop itself that names no server: `<timestamp> [<level>] <text>`.
fn is_app_line(text: &str) -> bool {
    let mut parts = text.splitn(3, ' ');
    let (Some(ts), Some(level)) = (parts.next(), parts.next()) else {
        return false;
    };
    ts.len() >= 20
        && ts.as_bytes()[..4].iter().all(u8::is_ascii_digit)
        && level
            .strip_prefix('[')
            .and_then(|l| l.strip_suffix(']'))
            .is_some_and(is_level)
}

fn is_level(s: &str) -> bool {
    matches!(
        s.to_ascii_lowercase().as_str(),
        "info" | "error" | "warn" | "warning" | "debug" | "trace" | "log"
    )
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use super::*;
    use crate::trace::pairing::PairedSource;
    use crate::trace::source::{Lines, Source};
    use crate::trace::{ReadStats, Upstream};

    fn read(log: &str) -> (Vec<CallRecord>, ReadStats) {
        let lines = || Lines::new(Box::new(Cursor::new(log.as_bytes().to_vec())), "mcp.log");
        let mut src = PairedSource::new(Claude::default, lines(), lines(), 0, "mcp.log");
        let mut stats = ReadStats::default();
        let mut cx = Ctx {
            stats: &mut stats,
            strict: true,
            file: "mcp.log",
        };
        let mut out = Vec::new();
        while let Some(r) = src.next(&mut cx).unwrap() {
            out.push(r);
        }
        (out, stats)
    }

    #[test]
    fn level_first_lines_of_mcp_log_name_the_server_second() {
        let log = "\
2026-08-01T09:00:00.000Z [info] [fortios] Initializing server...
2026-08-01T09:00:01.000Z [info] [fortios] Message from client: {\"method\":\"tools/call\",\"params\":{\"name\":\"system_status_get\"},\"jsonrpc\":\"2.0\",\"id\":1}
2026-08-01T09:00:01.000Z [info] [files] Message from client: {\"method\":\"tools/call\",\"params\":{\"name\":\"read_file\"},\"jsonrpc\":\"2.0\",\"id\":1}
2026-08-01T09:00:01.250Z [info] [fortios] Message from server: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"content\":[]}}
";
        let (recs, _) = read(log);
        let got: Vec<(&str, &str, Option<Upstream>)> = recs
            .iter()
            .map(|r| (&*r.server, &*r.tool, r.upstream))
            .collect();
        // Same id on two servers: the reply pairs with its own server's request only.
        assert_eq!(
            got,
            [
                ("fortios", "system_status_get", Some(Upstream::Ok)),
                ("files", "read_file", None)
            ]
        );
        assert_eq!(recs[0].latency_ms, Some(250.0));
    }

    /// A call the client cancels is counted as cancelled when no reply comes; the cancel of a
    /// call of the connection before (ids restart) cancels nothing of this one.
    /// Releases from mid-2026 log only method and id; such lines are counted, not bad JSON,
    /// and a log that switches part way keeps the calls written before. Claude Desktop's own
    /// lines without a server (older releases) are log lines, not server output.
    #[test]
    fn redacted_message_lines_and_app_lines_are_counted() {
        let log = "\
2024-11-28T09:27:43.731Z [info] Connected to MCP server files!
2026-08-01T09:00:01.000Z [files] [info] Message from client: {\"method\":\"tools/call\",\"params\":{\"name\":\"read_file\"},\"jsonrpc\":\"2.0\",\"id\":1} { metadata: undefined }
2026-08-01T09:00:01.250Z [files] [info] Message from server: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"content\":[]}} { metadata: undefined }
2026-08-21T08:11:52.934Z [files] [info] Message from client: method=\"initialize\" id=0 params { metadata: undefined }
2026-08-21T08:12:25.186Z [files] [info] Message from server: id=0 result { metadata: undefined }
2026-09-27T10:00:05.000Z [files] [info] Message from client: method=\"tools/call\" id=2 params { metadata: undefined }
[files] bridge: connected
2026-09-27T10:00:08.000Z [files] [info] Message from server: id=2 error(code=-32603) { metadata: undefined }
2026-09-27T10:00:09.000Z [info] [files] Message from client: method=\"tools/call\" id=3
";
        let (recs, stats) = read(log);
        let got: Vec<_> = recs.iter().map(|r| (&*r.tool, r.upstream)).collect();
        assert_eq!(got, [("read_file", Some(Upstream::Ok))]);
        assert_eq!(stats.skipped, 0);
        let ignored: Vec<_> = (stats.ignored.iter())
            .map(|(k, n)| (k.as_str(), *n))
            .collect();
        assert_eq!(
            ignored,
            [
                ("method initialize (redacted log)", 1),
                ("other log line", 1),
                ("server message in a redacted log", 2),
                (
                    "tools/call in a redacted log (no tool name or arguments)",
                    2
                ),
                ("unstructured log line", 1),
            ]
        );
    }

    #[test]
    fn cancelled_calls_without_a_reply_are_counted() {
        let log = "\
2026-08-01T09:00:00.000Z [files] [info] Initializing server...
2026-08-01T09:00:01.000Z [files] [info] Message from client: {\"method\":\"tools/call\",\"params\":{\"name\":\"read_file\"},\"jsonrpc\":\"2.0\",\"id\":4} { metadata: undefined }
2026-08-01T09:01:01.000Z [files] [info] Message from client: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/cancelled\",\"params\":{\"requestId\":4,\"reason\":\"McpError: MCP error -32001: Request timed out\"}} { metadata: undefined }
2026-08-01T09:02:00.000Z [files] [info] Initializing server...
2026-08-01T09:02:01.000Z [files] [info] Message from client: {\"method\":\"tools/call\",\"params\":{\"name\":\"list_dir\"},\"jsonrpc\":\"2.0\",\"id\":4} { metadata: undefined }
";
        let (recs, stats) = read(log);
        let got: Vec<_> = recs.iter().map(|r| (&*r.tool, r.upstream)).collect();
        assert_eq!(got, [("read_file", None), ("list_dir", None)]);
        let replies = stats.replies.expect("paired");
        assert_eq!(
            (
                replies.paired,
                replies.requests_without_reply,
                replies.cancelled
            ),
            (0, 2, 1)
        );
        let reasons: Vec<_> = (replies.examples.iter())
            .map(|e| (e.line, e.reason.as_str()))
            .collect();
        assert_eq!(
            reasons,
            [
                (
                    2,
                    "request without a reply in the file (cancelled by the client at line 3)"
                ),
                (5, "request without a reply in the file"),
            ]
        );
    }

    /// A closed connection's request never takes a reply of the next one, even one with its
    /// id that the next connection did not ask (a reply it did ask pairs with its own request).
    /// The `… closed unexpectedly` line that follows a closing closes nothing more.
    #[test]
    fn a_closed_connections_requests_take_no_reply_of_the_next() {
        let log = "\
2026-08-01T10:00:00.000Z [files] [info] Initializing server... { metadata: undefined }
2026-08-01T10:00:03.000Z [files] [info] Message from client: {\"method\":\"tools/call\",\"params\":{\"name\":\"search\"},\"jsonrpc\":\"2.0\",\"id\":2} { metadata: undefined }
2026-08-01T10:00:03.500Z [files] [info] Server transport closed { metadata: undefined }
2026-08-01T10:00:03.501Z [files] [info] Client transport closed { metadata: undefined }
2026-08-01T10:00:03.502Z [files] [info] Server transport closed unexpectedly, this is likely due to the process exiting early. { metadata: undefined }
2026-08-01T10:00:05.000Z [files] [info] Initializing server... { metadata: undefined }
2026-08-01T10:00:06.000Z [files] [info] Message from client: {\"method\":\"tools/call\",\"params\":{\"name\":\"list_dir\"},\"jsonrpc\":\"2.0\",\"id\":1} { metadata: undefined }
2026-08-01T10:00:06.100Z [files] [info] Message from server: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"content\":[]}} { metadata: undefined }
2026-08-01T10:00:09.000Z [files] [info] Message from server: {\"jsonrpc\":\"2.0\",\"id\":2,\"error\":{\"code\":-32603,\"message\":\"x\"}} { metadata: undefined }
2026-08-01T10:00:10.000Z [files] [info] Message from client: {\"method\":\"tools/call\",\"params\":{\"name\":\"read_file\"},\"jsonrpc\":\"2.0\",\"id\":2} { metadata: undefined }
2026-08-01T10:00:10.300Z [files] [info] Message from server: {\"jsonrpc\":\"2.0\",\"id\":2,\"result\":{\"content\":[]}} { metadata: undefined }
";
        let (recs, stats) = read(log);
        let got: Vec<_> = (recs.iter())
            .map(|r| (&*r.tool, r.upstream, r.latency_ms))
            .collect();
        assert_eq!(
            got,
            [
                ("search", None, None),
                ("list_dir", Some(Upstream::Ok), Some(100.0)),
                ("read_file", Some(Upstream::Ok), Some(300.0)),
            ]
        );
        let replies = stats.replies.expect("paired");
        assert_eq!(
            (
                replies.paired,
                replies.requests_without_reply,
                replies.replies_without_request
            ),
            (2, 1, 1)
        );
        let reasons: Vec<_> = (replies.examples.iter())
            .map(|e| (e.line, e.reason.as_str()))
            .collect();
        assert_eq!(
            reasons,
            [
                (2, "request without a reply in the file"),
                (9, "reply without a request: no request waits for its id"),
            ]
        );
    }

    /// The server's own requests number their ids apart from the client's: one with the id of
    /// a call in flight, and the client's reply to it, leave the call waiting for its reply.
    #[test]
    fn server_requests_and_client_replies_keep_apart_from_calls() {
        let log = "\
2026-08-01T09:00:00.000Z [files] [info] Initializing server...
2026-08-01T09:00:01.000Z [files] [info] Message from client: {\"method\":\"tools/call\",\"params\":{\"name\":\"read_file\"},\"jsonrpc\":\"2.0\",\"id\":3} { metadata: undefined }
2026-08-01T09:00:01.100Z [files] [info] Message from server: {\"method\":\"roots/list\",\"jsonrpc\":\"2.0\",\"id\":3} { metadata: undefined }
2026-08-01T09:00:01.200Z [files] [info] Message from client: {\"jsonrpc\":\"2.0\",\"id\":3,\"result\":{\"roots\":[]}} { metadata: undefined }
2026-08-01T09:00:01.300Z [files] [info] Message from server: {\"method\":\"notifications/message\",\"jsonrpc\":\"2.0\",\"params\":{}} { metadata: undefined }
2026-08-01T09:00:01.700Z [files] [info] Message from server: {\"jsonrpc\":\"2.0\",\"id\":3,\"result\":{\"content\":[],\"isError\":true}} { metadata: undefined }
";
        let (recs, stats) = read(log);
        let got: Vec<_> = recs.iter().map(|r| (&*r.tool, r.upstream)).collect();
        assert_eq!(got, [("read_file", Some(Upstream::ToolError))]);
        assert_eq!(recs[0].latency_ms, Some(700.0));
        let ignored: Vec<_> = stats
            .ignored
            .iter()
            .map(|(k, n)| (k.as_str(), *n))
            .collect();
        assert_eq!(
            ignored,
            [
                ("client reply", 1),
                ("connection event", 1),
                ("server message", 2)
            ]
        );
        let replies = stats.replies.expect("paired");
        assert_eq!(
            (
                replies.paired,
                replies.requests_without_reply,
                replies.replies_without_request
            ),
            (1, 0, 0)
        );
    }
}
