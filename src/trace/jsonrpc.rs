//! MCP JSON-RPC recordings: one message per line, in an envelope
//! `{ts, dir, server, session, grant, msg}` or bare with a `ts`/`timestamp` field.
//! `tools/call` requests become calls; replies pair with them by (server, session, id)
//! (see [`super::pairing`]).

use std::borrow::Cow;

use serde::de::IgnoredAny;
use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use super::intern::Interner;
use super::pairing::{Exchange, Message, outcome_of};
use super::source::{Ctx, Fields, LineError, UNKNOWN_SERVER, parse_object};
use super::{Args, CallRecord, Origin, Sym, Upstream};

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
        // The pairing read needs only keys, times and outcomes: read them without building the
        // JSON tree; a line that reader cannot vouch for goes the general way.
        if index {
            if let Some(msg) = self.pairing_only(text, origin) {
                return Ok(msg);
            }
        }
        let obj = parse_object(text)?;
        self.object(&obj, origin, index, cx)
    }
}

/// A field that may be absent (`None`), `null` (`Some(None)`) or a value.
type Present<T> = Option<Option<T>>;

fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Present<T>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// What the pairing read needs of a message (bare, or the envelope's `msg`).
#[derive(Deserialize)]
struct Msg<'a> {
    #[serde(borrow)]
    method: Option<Cow<'a, str>>,
    #[serde(borrow)]
    id: Option<&'a RawValue>,
    #[serde(borrow)]
    params: Option<Params<'a>>,
    #[serde(default, deserialize_with = "present")]
    result: Present<ResultFlag>,
    #[serde(default, deserialize_with = "present", borrow)]
    error: Present<&'a RawValue>,
}

#[derive(Deserialize)]
struct Params<'a> {
    #[serde(borrow)]
    name: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct ResultFlag {
    #[serde(rename = "isError")]
    is_error: Option<bool>,
}

/// A line as the pairing read sees it: the envelope's fields and a bare message's.
#[derive(Deserialize)]
struct PairingLine<'a> {
    #[serde(borrow)]
    ts: Option<&'a RawValue>,
    #[serde(borrow)]
    timestamp: Option<&'a RawValue>,
    #[serde(borrow)]
    server: Option<Cow<'a, str>>,
    #[serde(borrow)]
    session: Option<Cow<'a, str>>,
    /// Read only to fail as the general reader does on a grant that is not a string.
    #[serde(borrow, rename = "grant")]
    _grant: Option<Cow<'a, str>>,
    #[serde(borrow)]
    msg: Option<Msg<'a>>,
    #[serde(default, deserialize_with = "present")]
    jsonrpc: Present<IgnoredAny>,
    // A bare message's fields (not `flatten`ed from `Msg`: that buffers every other field).
    #[serde(borrow)]
    method: Option<Cow<'a, str>>,
    #[serde(borrow)]
    id: Option<&'a RawValue>,
    #[serde(borrow)]
    params: Option<Params<'a>>,
    #[serde(default, deserialize_with = "present")]
    result: Present<ResultFlag>,
    #[serde(default, deserialize_with = "present", borrow)]
    error: Present<&'a RawValue>,
}

impl JsonRpc {
    /// [`JsonRpc::object`] for the pairing read, from typed fields; `None` when the line is
    /// anything but a plain request, reply or other message (the general reader decides).
    fn pairing_only(&mut self, text: &str, origin: Origin) -> Option<Message<Key>> {
        let line: PairingLine<'_> = serde_json::from_str(text).ok()?;
        let msg = match line.msg {
            Some(m) => m,
            None if line.jsonrpc.is_some() => Msg {
                method: line.method,
                id: line.id,
                params: line.params,
                result: line.result,
                error: line.error,
            },
            None => return None,
        };
        let ts_raw = line.ts.or(line.timestamp)?;
        let ts = super::time::parse_ts_value(&serde_json::from_str(ts_raw.get()).ok()?).ok()?;
        let server = self
            .names
            .get(line.server.as_deref().unwrap_or(UNKNOWN_SERVER));
        let session = line.session.as_deref().map(|s| self.names.get(s));
        // The id in its JSON spelling, as the general reader writes it.
        let id = match msg.id {
            Some(raw) => Some(serde_json::from_str::<Value>(raw.get()).ok()?),
            None => None,
        };
        let key = |id: &Value| (server.clone(), session.clone(), id.to_string());
        if let Some(method) = msg.method {
            if method != "tools/call" {
                return Some(match &id {
                    Some(id) => Message::Request(key(id)),
                    None => Message::Other,
                });
            }
            let tool = self.names.get(msg.params?.name.as_deref()?);
            if !matches!(id, None | Some(Value::String(_) | Value::Number(_))) {
                return None;
            }
            let rec = CallRecord {
                ts,
                server: server.clone(),
                grant: None,
                session: session.clone(),
                tool,
                args: Args::Unrecorded,
                id: None,
                recorded: None,
                upstream: None,
                latency_ms: None,
                origin,
            };
            return Some(Message::Call {
                key: id.as_ref().map(key),
                rec: Box::new(rec),
            });
        }
        if msg.result.is_none() && msg.error.is_none() {
            return None;
        }
        let outcome = if matches!(msg.error, Some(Some(_))) {
            Upstream::Error
        } else if matches!(
            msg.result,
            Some(Some(ResultFlag {
                is_error: Some(true)
            }))
        ) {
            Upstream::ToolError
        } else {
            Upstream::Ok
        };
        Some(Message::Reply {
            key: key(id.as_ref()?),
            ts,
            outcome,
        })
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::ReadStats;

    /// What pairing reads of a message: its kind, key, time and outcome.
    fn seen(m: &Message<Key>) -> String {
        let k = |k: &Key| format!("{}/{:?}/{}", k.0, k.1.as_deref(), k.2);
        match m {
            Message::Call { key, rec } => format!("call {:?} {}", key.as_ref().map(k), rec.ts),
            Message::Request(key) => format!("request {}", k(key)),
            Message::Reply { key, ts, outcome } => format!("reply {} {ts} {outcome:?}", k(key)),
            Message::Other => "other".to_owned(),
        }
    }

    /// The typed reading of the pairing pass says what the general reader says, on every line
    /// it vouches for.
    #[test]
    fn the_pairing_read_agrees_with_the_general_reader() {
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
        for edge in [
            r#""msg":{"jsonrpc":"2.0","id":1,"result":null}"#,
            r#""msg":{"jsonrpc":"2.0","id":1,"error":null,"result":{"isError":true}}"#,
            r#""msg":{"jsonrpc":"2.0","id":null,"error":{"code":1}}"#,
            r#""msg":{"jsonrpc":"2.0","id":"a\u0041","result":{}}"#,
            r#""msg":{"jsonrpc":"2.0","id":1.0,"method":"tools/call","params":{"name":"t"}}"#,
            r#""msg":{"jsonrpc":"2.0","id":[1],"method":"tools/call","params":{"name":"t"}}"#,
            r#""msg":{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#,
            r#""msg":{"jsonrpc":"2.0","method":"tools/call","params":{}}"#,
            r#""msg":{"jsonrpc":"2.0","id":3,"result":{"isError":"yes"}}"#,
            r#""msg":null,"jsonrpc":"2.0","id":4,"result":{}"#,
            r#""session":7,"msg":{"jsonrpc":"2.0","id":4,"result":{}}"#,
            r#""grant":7,"msg":{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"t"}}"#,
            r#""jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"t"}"#,
            r#""msg":{"jsonrpc":"2.0","id":6}"#,
        ] {
            lines.push(format!("{{{ts},{edge}}}"));
        }
        let mut vouched = 0;
        for (i, text) in lines.iter().enumerate() {
            let origin = Origin {
                file: 0,
                line: i as u64 + 1,
            };
            let (mut fast, mut general) = (JsonRpc::default(), JsonRpc::default());
            let Some(typed) = fast.pairing_only(text, origin) else {
                continue;
            };
            vouched += 1;
            let mut stats = ReadStats::default();
            let mut cx = Ctx {
                stats: &mut stats,
                strict: false,
                file: "t",
            };
            let want = parse_object(text).and_then(|o| general.object(&o, origin, true, &mut cx));
            assert_eq!(
                Ok(seen(&typed)),
                want.as_ref().map(seen).map_err(|e| e.message()),
                "{text}"
            );
        }
        assert!(vouched >= 30, "{vouched} lines read the typed way");
    }
}
