//! MCP JSON-RPC recordings: one message per line, in an envelope
//! `{ts, dir, server, session, grant, msg}` or bare with a `ts`/`timestamp` field.
//! `tools/call` requests become calls; replies are paired by (session, id).

use serde_json::{Map, Value};

use super::intern::Interner;
use super::pairing::{Pairing, outcome_of};
use super::source::{Ctx, Fields, LineError, Lines, Source, UNKNOWN_SERVER, parse_object};
use super::{Args, CallRecord, Nanos, Origin, Sym, TraceError};

/// (session, id in its JSON spelling, so `7` and `"7"` stay distinct).
type Key = (Option<Sym>, String);

pub(crate) struct JsonRpcSource {
    lines: Lines,
    file: u32,
    names: Interner,
    pairing: Pairing<Key>,
    now: Nanos,
}

impl JsonRpcSource {
    pub(crate) fn new(lines: Lines, file: u32) -> JsonRpcSource {
        JsonRpcSource {
            lines,
            file,
            names: Interner::default(),
            pairing: Pairing::new(),
            now: Nanos::MIN,
        }
    }
}

impl Source for JsonRpcSource {
    fn next(&mut self, cx: &mut Ctx<'_>) -> Result<Option<CallRecord>, TraceError> {
        loop {
            if let Some(rec) = self.pairing.pop_ready(self.now) {
                return Ok(Some(rec));
            }
            let Some((line, text)) = self.lines.next_line()? else {
                return Ok(self.pairing.pop_front());
            };
            let origin = Origin {
                file: self.file,
                line,
            };
            let result = text
                .and_then(parse_object)
                .and_then(|obj| self.message(&obj, origin, cx));
            if let Err(e) = result {
                cx.skip(line, e)?;
            }
        }
    }
}

impl JsonRpcSource {
    fn message(
        &mut self,
        obj: &Map<String, Value>,
        origin: Origin,
        cx: &mut Ctx<'_>,
    ) -> Result<(), LineError> {
        let outer = Fields::new(obj, "");
        let (msg, path) = match outer.opt_object("msg")? {
            Some(m) => (m, "msg"),
            None if obj.contains_key("jsonrpc") => (obj, ""),
            None => {
                return Err(LineError::missing("msg"));
            }
        };
        let ts = outer.req_ts(&["ts", "timestamp"])?;
        self.now = self.now.max(ts);
        let session = outer.opt_str("session")?.map(|s| self.names.get(s));
        let m = Fields::new(msg, path);
        if let Some(method) = m.get("method") {
            let Value::String(method) = method else {
                return Err(LineError::wrong_type(&m.name("method"), "a string", method));
            };
            if method != "tools/call" {
                cx.ignore(format!("method {method}"));
                return Ok(());
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
                Some(Value::Object(m)) => Args::Values(m.clone()),
                Some(other) => Args::NotObject(other.to_string().into()),
                None => Args::Values(Map::new()),
            };
            let id = m.opt_id("id")?;
            let key = msg
                .get("id")
                .filter(|v| !v.is_null())
                .map(|v| (session.clone(), v.to_string()));
            let server = self
                .names
                .get(outer.opt_str("server")?.unwrap_or(UNKNOWN_SERVER));
            let grant = outer.opt_str("grant")?.map(|s| self.names.get(s));
            let rec = CallRecord {
                ts,
                server,
                grant,
                session,
                tool,
                args,
                id,
                recorded: None,
                upstream: None,
                latency_ms: None,
                origin,
            };
            self.pairing.push(key, rec);
            return Ok(());
        }
        if msg.contains_key("result") || msg.contains_key("error") {
            let id = m
                .get("id")
                .ok_or_else(|| LineError::missing(&m.name("id")))?;
            if !self
                .pairing
                .reply(&(session, id.to_string()), ts, outcome_of(msg))
            {
                cx.ignore("reply not paired with a tools/call");
            }
            return Ok(());
        }
        Err(LineError::new(
            "bad value",
            "neither a request (`method`) nor a reply (`result`/`error`)",
        ))
    }
}
