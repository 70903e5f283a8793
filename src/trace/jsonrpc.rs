//! MCP JSON-RPC recordings: one message per line, in an envelope
//! `{ts, dir, server, session, grant, msg}` or bare with a `ts`/`timestamp` field.
//! `tools/call` requests become calls; replies pair with them by (server, session, id)
//! (see [`super::pairing`]).

use serde_json::{Map, Value};

use super::intern::Interner;
use super::pairing::{Exchange, Message, outcome_of};
use super::source::{Ctx, Fields, LineError, UNKNOWN_SERVER, parse_object};
use super::{Args, CallRecord, Origin, Sym};

/// (server, session, id in its JSON spelling, so `7` and `"7"` stay distinct).
type Key = (Sym, Option<Sym>, String);

#[derive(Default)]
pub(crate) struct JsonRpc {
    names: Interner,
}

impl Exchange for JsonRpc {
    type Key = Key;

    fn message(
        &mut self,
        text: &str,
        origin: Origin,
        index: bool,
        cx: &mut Ctx<'_>,
    ) -> Result<Message<Key>, LineError> {
        let obj = parse_object(text)?;
        self.object(&obj, origin, index, cx)
    }
}

impl JsonRpc {
    fn object(
        &mut self,
        obj: &Map<String, Value>,
        origin: Origin,
        index: bool,
        cx: &mut Ctx<'_>,
    ) -> Result<Message<Key>, LineError> {
        let outer = Fields::new(obj, "");
        let (msg, path) = match outer.opt_object("msg")? {
            Some(m) => (m, "msg"),
            None if obj.contains_key("jsonrpc") => (obj, ""),
            None => {
                return Err(LineError::missing("msg"));
            }
        };
        let ts = outer.req_ts(&["ts", "timestamp"])?;
        let session = outer.opt_str("session")?.map(|s| self.names.get(s));
        let server = self
            .names
            .get(outer.opt_str("server")?.unwrap_or(UNKNOWN_SERVER));
        let m = Fields::new(msg, path);
        let key = |id: &Value| (server.clone(), session.clone(), id.to_string());
        if let Some(method) = m.get("method") {
            let Value::String(method) = method else {
                return Err(LineError::wrong_type(&m.name("method"), "a string", method));
            };
            if method != "tools/call" {
                cx.ignore(format!("method {method}"));
                return Ok(match m.get("id") {
                    Some(id) => Message::Request(key(id)),
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
        if msg.contains_key("result") || msg.contains_key("error") {
            let id = m
                .get("id")
                .ok_or_else(|| LineError::missing(&m.name("id")))?;
            return Ok(Message::Reply {
                key: key(id),
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
