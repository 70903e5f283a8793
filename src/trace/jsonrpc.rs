//! MCP JSON-RPC recordings: one message per line, in an envelope
//! `{ts, dir, server, session, grant, msg}` or bare with a `ts`/`timestamp` field.
//! `tools/call` requests become calls; replies pair with them by (server, session, id), or,
//! when the reply's envelope leaves out the server or the session, by the parts it names (see
//! [`super::pairing`]). Where the envelope gives the direction (`dir`), the server's own
//! requests and the client's replies to them are ignored: they number their ids apart from the
//! client's requests, so an id of theirs says nothing of a call.

use serde_json::{Map, Value};

use super::intern::Interner;
use super::pairing::{CANCELLED, Message, NO_SERVER, NO_SESSION, PairKey, cancelled, outcome_of};
use super::scan::{Expected, Scanner};
use super::source::{Ctx, Fields, LineError, UNKNOWN_SERVER};
use super::{Args, CallRecord, Nanos, Origin, Sym, Upstream};

/// (server, session, id in its JSON spelling, so `7` and `"7"` stay distinct); the server is
/// `None` for a reply that names none.
pub(super) type Key = (Option<Sym>, Option<Sym>, String);

impl PairKey for Key {
    fn left_out(&self) -> u8 {
        (u8::from(self.0.is_none()) * NO_SERVER) | (u8::from(self.1.is_none()) * NO_SESSION)
    }

    fn leave_out(&self, parts: u8) -> Key {
        let server = (parts & NO_SERVER == 0).then(|| self.0.clone()).flatten();
        let session = (parts & NO_SESSION == 0).then(|| self.1.clone()).flatten();
        (server, session, self.2.clone())
    }
}

/// The general reader of a JSON-RPC line ([`JsonRpc::object`]), for the lines
/// [`scan_line`] does not vouch for.
#[derive(Default)]
pub(crate) struct JsonRpc {
    names: Interner,
}

/// What the line scanner reads of a JSON-RPC line it vouches for ([`scan_line`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct RpcLine<'a> {
    pub(super) ts: Nanos,
    pub(super) server: Option<&'a str>,
    pub(super) session: Option<&'a str>,
    pub(super) grant: Option<&'a str>,
    /// The message's id as a range of the line (a string without escapes, or digits); `(0, 0)`
    /// when absent or `null`. Its text is the id's JSON spelling, as pairing keys it.
    pub(super) id: (usize, usize),
    pub(super) kind: RpcKind<'a>,
}

/// What kind of message a scanned line holds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum RpcKind<'a> {
    /// A `tools/call` request; `args` is the `arguments` object as a range of the line, `(0,
    /// 0)` when absent or `null` (no arguments: an empty object).
    Call { tool: &'a str, args: (usize, usize) },
    /// A request (or notification) of another method.
    Other { method: &'a str },
    /// A reply, and how the call ended.
    Reply(Upstream),
    /// A message the server sent with a method (`dir` is `s2c`): never a call; `request` when
    /// it has an id.
    Server { method: &'a str, request: bool },
    /// A reply the client sent (`dir` is `c2s`): it answers a request of the server's.
    ClientReply,
}

impl RpcKind<'_> {
    /// What an ignored line counts under in the read statistics; `None` for calls and replies.
    pub(super) fn ignored(&self) -> Option<String> {
        match *self {
            RpcKind::Call { .. } | RpcKind::Reply(_) => None,
            RpcKind::Other { method }
            | RpcKind::Server {
                method,
                request: false,
            } => Some(format!("method {method}")),
            RpcKind::Server {
                method,
                request: true,
            } => Some(format!("server request {method}")),
            RpcKind::ClientReply => Some(CLIENT_REPLY.to_owned()),
        }
    }
}

/// What a reply the client sent counts under.
const CLIENT_REPLY: &str = "client reply";
/// What an error reply with a null id (to a message the server could not read) counts under.
const NULL_ID_ERROR: &str = "error reply with a null id (to a message the server could not read)";

// Known keys, as bits of the duplicate check: the envelope's, then a message's.
const TS: u16 = 1;
const TIMESTAMP: u16 = 1 << 1;
const SERVER: u16 = 1 << 2;
const SESSION: u16 = 1 << 3;
const GRANT: u16 = 1 << 4;
const MSG: u16 = 1 << 5;
const JSONRPC: u16 = 1 << 6;
const ID: u16 = 1 << 7;
const METHOD: u16 = 1 << 8;
const PARAMS: u16 = 1 << 9;
const RESULT: u16 = 1 << 10;
const ERROR: u16 = 1 << 11;
const DIR: u16 = 1 << 12;
const ENVELOPE: u16 = TS | TIMESTAMP | DIR | SERVER | SESSION | GRANT | MSG;

// The keys in the order recordings usually write them (tried first, see
// [`Scanner::key_in_order`]): a request's envelope has a `grant`, a reply's not; a call's
// message has a `method` and `params`, a reply's a `result` (or an `error`).
const ENVELOPE_ORDER: &[Expected] = &[
    Expected::new(b"ts", TS),
    Expected::new(b"dir", DIR),
    Expected::new(b"server", SERVER),
    Expected::new(b"session", SESSION),
    Expected::new(b"grant", GRANT),
    Expected::new(b"msg", MSG),
];
const MSG_ORDER: &[Expected] = &[
    Expected::new(b"jsonrpc", JSONRPC),
    Expected::new(b"id", ID),
    Expected::new(b"method", METHOD),
    Expected::new(b"result", RESULT),
    Expected::new(b"params", PARAMS),
    Expected::new(b"error", ERROR),
];
/// The keys of `params`: 1 the tool's name, 2 its arguments.
const PARAMS_ORDER: &[Expected] = &[Expected::new(b"name", 1), Expected::new(b"arguments", 2)];
/// The keys of `result`: 1 `isError`.
const RESULT_ORDER: &[Expected] = &[Expected::new(b"content", 0), Expected::new(b"isError", 1)];

/// The fields of one message object read so far (the envelope's `msg`, or a bare message).
#[derive(Default)]
struct MsgFields<'a> {
    /// The keys seen, as bits.
    seen: u16,
    id: (usize, usize),
    method: Option<&'a str>,
    /// `params` when an object: its `name` and `arguments` range.
    params: Option<(Option<&'a str>, (usize, usize))>,
    /// `error` is there and not `null`.
    error: bool,
    /// `result.isError` is `true`.
    tool_error: bool,
}

/// Whether an envelope's `dir` says the client sent the message: `c2s`, or the spellings
/// other recorders use (`client->server`, `client_to_server`, `client-to-server`).
fn to_server(dir: Option<&str>) -> bool {
    matches!(
        dir,
        Some("c2s" | "client->server" | "client_to_server" | "client-to-server")
    )
}

/// Whether an envelope's `dir` says the server sent the message (`s2c`, `server->client`, …).
fn to_client(dir: Option<&str>) -> bool {
    matches!(
        dir,
        Some("s2c" | "server->client" | "server_to_client" | "server-to-client")
    )
}

/// Read a JSON-RPC line in the usual shape; `None` when [`JsonRpc::object`] must decide.
///
/// The whole line is validated as that code's JSON parser would, and `Some` means that code
/// reads the line into exactly these values.
pub(super) fn scan_line(text: &str) -> Option<RpcLine<'_>> {
    let mut sc = Scanner::object(text)?;
    let mut top = MsgFields::default();
    let (mut ts, mut timestamp) = (None, None);
    let (mut server, mut session, mut grant, mut dir) = (None, None, None, None);
    let mut msg: Option<MsgFields<'_>> = None;
    let mut next = 0;
    sc.members(
        |sc| sc.key_in_order(ENVELOPE_ORDER, &mut next, key),
        |sc, bit| {
            match bit {
                TS => ts = sc.ts()?,
                TIMESTAMP => timestamp = sc.ts()?,
                DIR => dir = sc.name()?,
                SERVER => server = sc.name()?,
                SESSION => session = sc.name()?,
                GRANT => grant = sc.name()?,
                MSG if sc.peek()? == b'{' => {
                    sc.pos += 1;
                    let mut m = MsgFields::default();
                    let mut next = 0;
                    sc.members(
                        |sc| Some(sc.key_in_order(MSG_ORDER, &mut next, key)? & !ENVELOPE),
                        |sc, bit| message_field(sc, &mut m, bit),
                    )?;
                    msg = Some(m);
                }
                MSG => sc.lit(b"null")?,
                _ => message_field(sc, &mut top, bit)?,
            }
            Some(())
        },
    )?;
    sc.end()?;
    let m = match msg {
        Some(m) => m,
        None if top.seen & JSONRPC != 0 => top,
        None => return None,
    };
    let kind = if let Some(method) = m.method {
        if to_client(dir) {
            RpcKind::Server {
                method,
                request: m.id != (0, 0),
            }
        } else if method == "tools/call" {
            let (tool, args) = m.params?;
            RpcKind::Call { tool: tool?, args }
        } else if method == CANCELLED {
            // It names the request it cancels: the general reader reads it.
            return None;
        } else {
            RpcKind::Other { method }
        }
    } else if m.seen & (RESULT | ERROR) != 0 && to_server(dir) {
        RpcKind::ClientReply
    } else if m.seen & (RESULT | ERROR) != 0 && m.id != (0, 0) {
        RpcKind::Reply(if m.error {
            Upstream::Error
        } else if m.tool_error {
            Upstream::ToolError
        } else {
            Upstream::Ok
        })
    } else {
        return None;
    };
    Some(RpcLine {
        ts: ts.or(timestamp)?,
        server,
        session,
        grant,
        id: m.id,
        kind,
    })
}

/// The bit of a key the scanner reads, 0 for any other.
fn key(k: &[u8]) -> u16 {
    match k {
        b"ts" => TS,
        b"timestamp" => TIMESTAMP,
        b"dir" => DIR,
        b"server" => SERVER,
        b"session" => SESSION,
        b"grant" => GRANT,
        b"msg" => MSG,
        b"jsonrpc" => JSONRPC,
        b"id" => ID,
        b"method" => METHOD,
        b"params" => PARAMS,
        b"result" => RESULT,
        b"error" => ERROR,
        _ => 0,
    }
}

/// The bit of a key of `params`, 0 for any other.
fn params_key(k: &[u8]) -> u16 {
    match k {
        b"name" => 1,
        b"arguments" => 2,
        _ => 0,
    }
}

/// The bit of a key of `result`, 0 for any other.
fn result_key(k: &[u8]) -> u16 {
    u16::from(k == b"isError")
}

/// One value of a message's field `bit` (0: a field the reader does not read).
fn message_field<'a>(sc: &mut Scanner<'a>, m: &mut MsgFields<'a>, bit: u16) -> Option<()> {
    m.seen |= bit;
    match bit {
        ID => m.id = id(sc)?,
        METHOD => m.method = sc.name()?,
        PARAMS if sc.peek()? == b'{' => {
            sc.pos += 1;
            let (mut name, mut args) = (None, (0, 0));
            let mut next = 0;
            sc.members(
                |sc| sc.key_in_order(PARAMS_ORDER, &mut next, params_key),
                |sc, field| {
                    match field {
                        1 => name = sc.name()?,
                        2 if sc.peek()? == b'{' => {
                            let start = sc.pos;
                            sc.skip_value(2)?;
                            args = (start, sc.pos);
                        }
                        // Arguments that are not an object: the general reader keeps them.
                        2 => sc.lit(b"null")?,
                        _ => sc.skip_value(2)?,
                    }
                    Some(())
                },
            )?;
            m.params = Some((name, args));
        }
        PARAMS => sc.lit(b"null")?,
        RESULT if sc.peek()? == b'{' => {
            sc.pos += 1;
            let mut next = 0;
            sc.members(
                |sc| sc.key_in_order(RESULT_ORDER, &mut next, result_key),
                |sc, field| {
                    if field == 1 && sc.peek()? == b't' {
                        m.tool_error = true;
                        sc.lit(b"true")
                    } else {
                        sc.skip_value(2)
                    }
                },
            )?;
        }
        ERROR if sc.peek()? == b'n' => sc.lit(b"null")?,
        ERROR => {
            m.error = true;
            sc.skip_value(1)?;
        }
        _ => sc.skip_value(1)?,
    }
    Some(())
}

/// A request id the scanner vouches for: a string without escapes, digits (at most 19), or
/// `null` (`(0, 0)`); its range in the line. Their JSON spelling is the text itself, as the
/// general reader spells ids it keys replies by.
fn id(sc: &mut Scanner<'_>) -> Option<(usize, usize)> {
    let start = sc.pos;
    match sc.peek()? {
        b'"' => {
            sc.pos += 1;
            sc.plain_str()?;
        }
        b'n' => return sc.lit(b"null").map(|()| (0, 0)),
        b'0'..=b'9' => {
            sc.number(false)?;
            let digits = &sc.b[start..sc.pos];
            if digits.len() > 19 || !digits.iter().all(u8::is_ascii_digit) {
                return None;
            }
        }
        _ => return None,
    }
    Some((start, sc.pos))
}

/// What [`other_envelope`] makes of a line.
enum Other {
    Envelope(Map<String, Value>),
    /// A line of that recorder that holds no message (counted).
    Ignored,
}

/// The line of another recorder, as this format's envelope `{ts, dir, server, session, msg}`;
/// `None` when it is none of them.
///
/// - The MCP gateway of GitHub's agentic workflows (`rpc-messages.jsonl`):
///   `{"timestamp", "event": "rpc_request"|"rpc_response", "direction": "OUT"|"IN",
///   "server_id", "payload": <message>}` (older: `"type": "REQUEST"|"RESPONSE"`); `OUT` is the
///   gateway writing to the server.
/// - MCPSpy (`mcpspy -o file.jsonl`): `{"timestamp", "transport_type", "session": {…},
///   …, "raw": "<the message as JSON text>"}`; the server is the process the client wrote to
///   (`stdio_transport.to_comm` of a request, `from_comm` of a reply) or the HTTP host.
fn other_envelope(obj: &Map<String, Value>, cx: &mut Ctx<'_>) -> Result<Option<Other>, LineError> {
    let f = Fields::new(obj, "");
    let mut out = Map::new();
    if let Some(time) = obj.get("timestamp") {
        out.insert("timestamp".into(), time.clone());
    }
    if let Some(payload) = f.opt_object("payload")? {
        if let Some(event) = f.opt_str("event")? {
            if !matches!(event, "rpc_request" | "rpc_response") {
                cx.ignore(format!("event {event}"));
                return Ok(Some(Other::Ignored));
            }
        }
        let dir = match f.opt_str("direction")? {
            Some("OUT") => Some("c2s"),
            Some("IN") => Some("s2c"),
            _ => None,
        };
        if let Some(dir) = dir {
            out.insert("dir".into(), Value::String(dir.into()));
        }
        if let Some(server) = f.opt_str("server_id")? {
            out.insert("server".into(), Value::String(server.into()));
        }
        out.insert("msg".into(), Value::Object(payload.clone()));
        return Ok(Some(Other::Envelope(out)));
    }
    if let (Some(raw), Some(_)) = (f.opt_str("raw")?, obj.get("transport_type")) {
        let msg = match serde_json::from_str::<Value>(raw) {
            Ok(Value::Object(m)) => m,
            Ok(other) => return Err(LineError::wrong_type("raw", "a JSON object", &other)),
            Err(e) => {
                return Err(LineError::at(
                    "invalid JSON",
                    "raw",
                    format!("invalid JSON: {e}"),
                ));
            }
        };
        let session = (obj.get("session").and_then(Value::as_object))
            .and_then(|s| (s.get("external_id").or(s.get("internal_id"))).and_then(Value::as_str));
        if let Some(session) = session {
            out.insert("session".into(), Value::String(session.into()));
        }
        let request = msg.contains_key("method");
        let stdio = obj.get("stdio_transport").and_then(Value::as_object);
        let process = stdio.and_then(|t| t.get(if request { "to_comm" } else { "from_comm" }));
        let host =
            (obj.get("http_transport").and_then(Value::as_object)).and_then(|t| t.get("host"));
        if let Some(server) = process.or(host).and_then(Value::as_str) {
            out.insert("server".into(), Value::String(server.into()));
        }
        out.insert("msg".into(), Value::Object(msg));
        return Ok(Some(Other::Envelope(out)));
    }
    Ok(None)
}

impl JsonRpc {
    /// What the line `obj` (numbered `origin.line`) says, into `out`: one message, or each
    /// message of a JSON-RPC batch (a `msg` that is an array of messages, as MCP 2025-03-26
    /// allowed), in order. Under `index` the calls' arguments are not needed.
    pub(super) fn messages(
        &mut self,
        obj: &Map<String, Value>,
        origin: Origin,
        index: bool,
        cx: &mut Ctx<'_>,
        out: &mut Vec<Message<Key>>,
    ) -> Result<(), LineError> {
        let Some(Value::Array(batch)) = obj.get("msg") else {
            out.push(self.object(obj, origin, index, cx)?);
            return Ok(());
        };
        if batch.is_empty() {
            return Err(LineError::at("bad value", "msg", "an empty JSON-RPC batch"));
        }
        // Each message in the envelope of the line, one at a time; a bad one spoils the line.
        let mut one = obj.clone();
        let mut msgs = Vec::with_capacity(batch.len());
        for (i, m) in batch.iter().enumerate() {
            if !m.is_object() {
                return Err(LineError::wrong_type(&format!("msg[{i}]"), "an object", m));
            }
            one.insert("msg".into(), m.clone());
            msgs.push(self.object(&one, origin, index, cx)?);
        }
        out.extend(msgs);
        Ok(())
    }

    /// What the line `obj` (numbered `origin.line`) says. Under `index` the call's arguments
    /// are not needed.
    pub(super) fn object(
        &mut self,
        obj: &Map<String, Value>,
        origin: Origin,
        index: bool,
        cx: &mut Ctx<'_>,
    ) -> Result<Message<Key>, LineError> {
        if !obj.contains_key("msg") && !obj.contains_key("jsonrpc") {
            match other_envelope(obj, cx)? {
                Some(Other::Envelope(envelope)) => {
                    return self.object(&envelope, origin, index, cx);
                }
                Some(Other::Ignored) => return Ok(Message::Other),
                None => {}
            }
        }
        let outer = Fields::new(obj, "");
        let (msg, path) = match outer.opt_object("msg")? {
            Some(m) => (m, "msg"),
            None if obj.contains_key("jsonrpc") => (obj, ""),
            None => {
                return Err(LineError::missing("msg"));
            }
        };
        let ts = outer.req_ts(&["ts", "timestamp"])?;
        // Not interned: a recording may name millions of sessions, and the table keeps them all.
        let session = outer.opt_str("session")?.map(Sym::from);
        let named = outer.opt_str("server")?;
        let server = self.names.get(named.unwrap_or(UNKNOWN_SERVER));
        let dir = outer.opt_str("dir")?;
        let m = Fields::new(msg, path);
        let key = |id: &Value| (Some(server.clone()), session.clone(), id.to_string());
        if let Some(method) = m.get("method") {
            let Value::String(method) = method else {
                return Err(LineError::wrong_type(&m.name("method"), "a string", method));
            };
            if to_client(dir) {
                let request = m.get("id").is_some();
                cx.ignore(
                    RpcKind::Server { method, request }
                        .ignored()
                        .unwrap_or_default(),
                );
                return Ok(Message::Other);
            }
            if method != "tools/call" {
                cx.ignore(format!("method {method}"));
                return Ok(match m.get("id") {
                    Some(id) => Message::Request(key(id)),
                    None if method == CANCELLED => {
                        cancelled(msg).map_or(Message::Other, |id| Message::Cancel(key(id)))
                    }
                    None => Message::Other,
                });
            }
            let params = m
                .opt_object("params")?
                .ok_or_else(|| LineError::missing(&m.name("params")))?;
            let p = Fields::new(
                params,
                if path.is_empty() {
                    "params"
                } else {
                    "msg.params"
                },
            );
            let tool = self.names.get(p.req_str("name")?);
            // Arguments that are not an object are kept: the gateway forwards such calls.
            let args = match p.get("arguments") {
                _ if index => Args::Unrecorded,
                Some(Value::Object(m)) => Args::Values(m.clone()),
                Some(other) => Args::NotObject(other.to_string().into()),
                None => Args::Values(Map::new()),
            };
            let id = m.opt_id("id")?;
            let grant = outer.opt_str("grant")?.map(|s| self.names.get(s));
            let rec = CallRecord {
                ts,
                server: server.clone(),
                grant,
                session: session.clone(),
                tool,
                args,
                id,
                recorded: None,
                upstream: None,
                latency_ms: None,
                origin,
            };
            return Ok(Message::Call {
                key: m.get("id").map(key),
                rec: Box::new(rec),
            });
        }
        if (msg.contains_key("result") || msg.contains_key("error")) && to_server(dir) {
            cx.ignore(CLIENT_REPLY);
            return Ok(Message::Other);
        }
        if msg.contains_key("error") && msg.get("id") == Some(&Value::Null) {
            // JSON-RPC's answer to a message the server could not read (a parse error): it
            // answers no request one can name.
            cx.ignore(NULL_ID_ERROR);
            return Ok(Message::Other);
        }
        if msg.contains_key("result") || msg.contains_key("error") {
            let id = m
                .get("id")
                .ok_or_else(|| LineError::missing(&m.name("id")))?;
            // A reply that names no server pairs by session and id.
            let (_, session, id) = key(id);
            return Ok(Message::Reply {
                key: (named.map(|_| server.clone()), session, id),
                ts,
                outcome: outcome_of(msg),
            });
        }
        Err(LineError::new(
            "bad value",
            "neither a request (`method`) nor a reply (`result`/`error`)",
        ))
    }
}

/// The general reader alone, line by line: the reference the column reader's tests compare
/// against (recordings are read by [`super::jsonl_batch::JsonlBatchSource`]).
#[cfg(test)]
impl super::pairing::Exchange for JsonRpc {
    type Key = Key;

    fn messages(
        &mut self,
        text: &str,
        origin: Origin,
        index: bool,
        cx: &mut Ctx<'_>,
        out: &mut Vec<Message<Key>>,
    ) -> Result<(), LineError> {
        let obj = super::source::parse_object(text)?;
        JsonRpc::messages(self, &obj, origin, index, cx, out)
    }
}

/// Lines past the usual shape, each the rest of an object after a `ts` (for tests).
#[cfg(test)]
pub(super) const EDGES: &[&str] = &[
    r#""msg":{"jsonrpc":"2.0","id":1,"result":null}"#,
    r#""msg":{"jsonrpc":"2.0","id":1,"error":null,"result":{"isError":true}}"#,
    r#""msg":{"jsonrpc":"2.0","id":1,"error":{"code":-1},"result":{"isError":true}}"#,
    r#""msg":{"jsonrpc":"2.0","id":1,"result":{"isError":"true"}}"#,
    r#""msg":{"jsonrpc":"2.0","id":1,"result":{"isError":false,"content":[{"text":"a\"b"}]}}"#,
    r#""msg":{"jsonrpc":"2.0","id":1,"result":[1,2]}"#,
    r#""msg":{"jsonrpc":"2.0","id":1,"result":{"isError":true,"isError":false}}"#,
    r#""msg":{"jsonrpc":"2.0","id":null,"error":{"code":1}}"#,
    r#""msg":{"jsonrpc":"2.0","id":"aA","result":{}}"#,
    r#""msg":{"jsonrpc":"2.0","id":"a/b é","result":{}}"#,
    r#""msg":{"jsonrpc":"2.0","id":-3,"result":{}}"#,
    r#""msg":{"jsonrpc":"2.0","id":12345678901234567890123,"result":{}}"#,
    r#""msg":{"jsonrpc":"2.0","id":1.0,"method":"tools/call","params":{"name":"t"}}"#,
    r#""msg":{"jsonrpc":"2.0","id":[1],"method":"tools/call","params":{"name":"t"}}"#,
    r#""msg":{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#,
    r#""msg":{"jsonrpc":"2.0","method":"notifications/progress","params":{"p":1}}"#,
    r#""msg":{"jsonrpc":"2.0","id":2,"method":7}"#,
    r#""msg":{"jsonrpc":"2.0","method":"tools/call","params":{}}"#,
    r#""msg":{"jsonrpc":"2.0","method":"tools/call","params":null}"#,
    r#""msg":{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"name":"t","arguments":null}}"#,
    r#""msg":{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"name":"t","arguments":[1]}}"#,
    r#""msg":{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"name":"t","arguments":{"b":1,"a":{"c":[true,null]}}}}"#,
    r#""msg":{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"name":"t","arguments":{"n":1e3}}}"#,
    r#""msg":{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"name":"t","name":"u"}}"#,
    r#""msg":{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"name":"t
"}}"#,
    r#""msg":{"jsonrpc":"2.0","id":3,"result":{"isError":"yes"}}"#,
    r#""msg":null,"jsonrpc":"2.0","id":4,"result":{}"#,
    r#""msg":{"id":4,"result":{}},"id":5,"error":{}"#,
    r#""session":7,"msg":{"jsonrpc":"2.0","id":4,"result":{}}"#,
    r#""session":null,"server":null,"msg":{"jsonrpc":"2.0","id":4,"result":{}}"#,
    r#""grant":7,"msg":{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"t"}}"#,
    r#""grant":"g","server":"s","session":"x","msg":{"jsonrpc":"2.0","id":"4","method":"tools/call","params":{"name":"t","arguments":{}}}"#,
    r#""jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"t"}"#,
    r#""jsonrpc":null,"id":5,"method":"tools/call","params":{"name":"t"}"#,
    r#""id":5,"method":"tools/call","params":{"name":"t"}"#,
    r#""msg":{"jsonrpc":"2.0","id":6}"#,
    r#""msg":{"jsonrpc":"2.0","id":6},"msg":{"jsonrpc":"2.0","id":6}"#,
    r#""msg":[1]"#,
    r#""ts":null,"msg":{"jsonrpc":"2.0","id":6,"result":{}}"#,
    r#""timestamp":"2026-08-01T10:00:00Z","msg":{"jsonrpc":"2.0","id":6,"result":{}}"#,
    r#""msg":{"jsonrpc":"2.0","id":6,"result":{}}  "#,
    r#""msg":{"jsonrpc":"2.0","id":6,"result":{}},"extra":{"deep":[[[{}]]]}"#,
    r#""msg":{"jsonrpc":"2.0","ts":"not a time","id":6,"result":{}}"#,
    r#""servers":"s","sessio":"x","grant":"g","grants":"h","msg":{"jsonrpc":"2.0","ids":1,"id":2,"result":{"isErrors":true,"content":[]}}"#,
    r#""dir":"c2s","msg":{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"names":"u","name":"t","arguments":{"name":"v"},"argument":{}}}"#,
    r#""msg":{"params":{"arguments":{},"name":"t"},"method":"tools/call","id":9,"jsonrpc":"2.0"},"server":"s""#,
    // The server's requests and notifications, the client's replies to them.
    r#""dir":"s2c","msg":{"jsonrpc":"2.0","id":9,"method":"sampling/createMessage","params":{}}"#,
    r#""dir":"s2c","msg":{"jsonrpc":"2.0","id":"r1","method":"tools/call","params":{"name":"t"}}"#,
    r#""dir":"s2c","msg":{"jsonrpc":"2.0","method":"notifications/progress","params":{"progress":1}}"#,
    r#""dir":"s2c","msg":{"jsonrpc":"2.0","id":null,"method":"roots/list"}"#,
    r#""dir":"c2s","msg":{"jsonrpc":"2.0","id":9,"result":{"roots":[]}}"#,
    r#""dir":"c2s","msg":{"jsonrpc":"2.0","id":9,"error":{"code":-1,"message":"rejected"}}"#,
    r#""dir":"c2s","msg":{"jsonrpc":"2.0","result":{}}"#,
    r#""dir":"s2c","msg":{"jsonrpc":"2.0","id":9,"result":{"isError":true}}"#,
    r#""dir":"c2s","msg":{"jsonrpc":"2.0","id":9,"method":"ping"}"#,
    r#""dir":"sideways","msg":{"jsonrpc":"2.0","id":9,"result":{}}"#,
    // Other recorders' spellings of the direction.
    r#""dir":"server->client","msg":{"jsonrpc":"2.0","id":9,"method":"roots/list"}"#,
    r#""dir":"client->server","msg":{"jsonrpc":"2.0","id":9,"result":{"roots":[]}}"#,
    r#""dir":"server_to_client","msg":{"jsonrpc":"2.0","id":9,"method":"ping"}"#,
    r#""dir":"client-to-server","msg":{"jsonrpc":"2.0","id":9,"error":{"code":-1}}"#,
    r#""dir":null,"msg":{"jsonrpc":"2.0","id":9,"result":{}}"#,
    r#""dir":7,"msg":{"jsonrpc":"2.0","id":9,"result":{}}"#,
    r#""jsonrpc":"2.0","dir":"s2c","id":3,"method":"elicitation/create""#,
    // The client's cancels: a call, then cancels of it and of nothing in several shapes.
    r#""msg":{"jsonrpc":"2.0","id":41,"method":"tools/call","params":{"name":"t"}}"#,
    r#""msg":{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":41,"reason":"stop"}}"#,
    r#""msg":{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":"41"}}"#,
    r#""msg":{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":null}}"#,
    r#""msg":{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":[41]}}"#,
    r#""msg":{"jsonrpc":"2.0","method":"notifications/cancelled","params":7}"#,
    r#""msg":{"jsonrpc":"2.0","method":"notifications/cancelled"}"#,
    r#""msg":{"jsonrpc":"2.0","id":42,"method":"notifications/cancelled","params":{"requestId":41}}"#,
    r#""dir":"s2c","msg":{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":41}}"#,
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::ReadStats;

    /// What the general reader reads of a message, every field a call has.
    fn general(m: &Message<Key>) -> String {
        let k = |k: &Key| {
            format!(
                "{}/{:?}/{}",
                k.0.as_deref().unwrap_or("*"),
                k.1.as_deref(),
                k.2
            )
        };
        match m {
            Message::Call { key, rec } => format!(
                "call {:?} {} {} {:?} {:?} {} {} {:?}",
                key.as_ref().map(k),
                rec.ts,
                rec.server,
                rec.grant.as_deref(),
                rec.session.as_deref(),
                rec.tool,
                serde_json::to_string(&rec.args.values()).expect("serialises"),
                rec.id
            ),
            Message::Request(key) => format!("request {}", k(key)),
            Message::Cancel(key) => format!("cancel {}", k(key)),
            Message::Unsent(key) => format!("unsent {}", k(key)),
            Message::Reply { key, ts, outcome } => format!("reply {} {ts} {outcome:?}", k(key)),
            Message::Other => "other".to_owned(),
        }
    }

    /// The same of a line the scanner read.
    fn scanned(l: &RpcLine<'_>, text: &str) -> String {
        let server = l.server.unwrap_or(UNKNOWN_SERVER);
        let id = (l.id != (0, 0)).then(|| &text[l.id.0..l.id.1]);
        let key = |id: &str| format!("{server}/{:?}/{id}", l.session);
        match l.kind {
            RpcKind::Call { tool, args } => {
                let args = match args {
                    (0, 0) => Map::new(),
                    (a, b) => serde_json::from_str(&text[a..b]).expect("an object"),
                };
                format!(
                    "call {:?} {} {server} {:?} {:?} {tool} {} {:?}",
                    id.map(key),
                    l.ts,
                    l.grant,
                    l.session,
                    serde_json::to_string(&Some(&args)).expect("serialises"),
                    id.map(|i| serde_json::from_str::<Value>(i).map_or(
                        String::new(),
                        |v| match v {
                            Value::String(s) => s,
                            other => other.to_string(),
                        }
                    ))
                )
            }
            RpcKind::Other { .. } => match id {
                Some(id) => format!("request {}", key(id)),
                None => "other".to_owned(),
            },
            RpcKind::Server { .. } | RpcKind::ClientReply => "other".to_owned(),
            RpcKind::Reply(outcome) => {
                let server = l.server.unwrap_or("*");
                let id = id.unwrap_or("");
                format!("reply {server}/{:?}/{id} {} {outcome:?}", l.session, l.ts)
            }
        }
    }

    /// Whether the scanner, when it vouches for `text`, reads what the general reader reads.
    fn agrees(text: &str) -> Result<(), String> {
        let Some(line) = scan_line(text) else {
            return Ok(());
        };
        let mut stats = ReadStats::default();
        let mut cx = Ctx {
            stats: &mut stats,
            strict: false,
            file: "t",
        };
        let origin = Origin { file: 0, line: 1 };
        let want = crate::trace::source::parse_object(text)
            .and_then(|obj| JsonRpc::default().object(&obj, origin, false, &mut cx));
        // What the line is read as, and what it is counted under if ignored.
        let ignored: Vec<_> = stats.ignored.keys().cloned().collect();
        let want = want
            .as_ref()
            .map(|m| (general(m), ignored))
            .map_err(|e| e.message());
        let got = (
            scanned(&line, text),
            line.kind.ignored().into_iter().collect(),
        );
        if Ok(&got) == want.as_ref() {
            Ok(())
        } else {
            Err(format!("{text}: scanned {got:?}, general {want:?}"))
        }
    }

    /// Lines of the fixtures and [`EDGES`].
    fn sample_lines() -> Vec<String> {
        let mut lines: Vec<String> = ["jsonrpc.jsonl", "jsonrpc-concatenated.jsonl"]
            .iter()
            .flat_map(|f| {
                let path = format!("{}/fixtures/traces/{f}", env!("CARGO_MANIFEST_DIR"));
                std::fs::read_to_string(path)
                    .unwrap()
                    .lines()
                    .map(str::to_owned)
                    .collect::<Vec<_>>()
            })
            .collect();
        let ts = r#""ts":"2026-08-01T09:00:00Z""#;
        lines.extend(EDGES.iter().map(|edge| format!("{{{ts},{edge}}}")));
        lines
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig {
            cases: 2000,
            ..proptest::prelude::ProptestConfig::default()
        })]

        /// Lines a few bytes away from the usual ones (an edit can make a valid line of
        /// another shape, or an invalid one): whatever the scanner vouches for, the general
        /// reader reads the same way.
        #[test]
        fn perturbed_lines_scan_as_the_general_reader_reads_them(
            pick in proptest::prelude::any::<proptest::sample::Index>(),
            edits in proptest::collection::vec(
                (
                    proptest::prelude::any::<proptest::sample::Index>(),
                    0u8..3,
                    proptest::sample::select(b"\"{}[],:\\ 0e.-1nutfx\r\n\t".to_vec()),
                ),
                1..4,
            ),
        ) {
            let lines = sample_lines();
            let mut line = lines[pick.index(lines.len())].clone().into_bytes();
            crate::trace::scan::edit(&mut line, edits);
            if let Ok(text) = String::from_utf8(line) {
                proptest::prop_assert_eq!(agrees(&text), Ok(()));
            }
        }
    }

    /// The keys tried first carry the bits their lookups give them.
    #[test]
    fn keys_in_order_carry_the_bits_of_their_lookups() {
        type Lookup = fn(&[u8]) -> u16;
        let orders: [(&[Expected], Lookup); 4] = [
            (ENVELOPE_ORDER, key),
            (MSG_ORDER, |k| key(k) & !ENVELOPE),
            (PARAMS_ORDER, params_key),
            (RESULT_ORDER, result_key),
        ];
        for (order, lookup) in orders {
            for e in order {
                let (k, bit) = e.pair();
                assert_eq!(bit, lookup(k), "{}", String::from_utf8_lossy(k));
            }
        }
    }

    /// Every line the scanner vouches for reads as the general reader reads it, and the
    /// usual lines are vouched for (cancels, which name a request, are the general reader's).
    #[test]
    fn the_scanner_agrees_with_the_general_reader() {
        let lines = sample_lines();
        let fixture_lines = lines.len() - EDGES.len();
        let mut vouched = 0;
        for (i, text) in lines.iter().enumerate() {
            assert_eq!(agrees(text), Ok(()));
            match scan_line(text) {
                Some(_) => vouched += 1,
                None => assert!(
                    i >= fixture_lines || text.contains(CANCELLED),
                    "a fixture line is left to the general reader: {text}"
                ),
            }
        }
        assert!(vouched >= fixture_lines + 20, "{vouched} lines scanned");
    }
}
