//! Intercept event logs (JSON lines). `tool_call` events are calls; `startup` events name the
//! server an instance fronts (field `server`, else `upstream`, else `name`); `heartbeat`,
//! `config_reload` and `shutdown` are ignored. `instance` becomes the grant. Argument values
//! are never logged (only a hash), so arguments are unrecorded.

use std::collections::HashMap;

use serde_json::{Map, Value};

use super::intern::Interner;
use super::jsonl::recorded_from;
use super::source::{Ctx, Fields, LineError, Lines, Source, UNKNOWN_SERVER, next_object_record};
use super::{Args, CallRecord, Origin, Sym, TraceError};

pub(crate) struct InterceptSource {
    lines: Lines,
    file: u32,
    instances: Instances,
}

/// What earlier events said about the instances of the log.
#[derive(Default)]
struct Instances {
    names: Interner,
    /// Server named by each instance's `startup` event.
    servers: HashMap<Sym, Sym>,
    /// The most recent `startup` server, for events that carry no instance (and for every
    /// event when no startup named its instance).
    last_server: Option<Sym>,
}

impl InterceptSource {
    pub(crate) fn new(lines: Lines, file: u32) -> InterceptSource {
        InterceptSource {
            lines,
            file,
            instances: Instances::default(),
        }
    }
}

impl Source for InterceptSource {
    fn next(&mut self, cx: &mut Ctx<'_>) -> Result<Option<CallRecord>, TraceError> {
        let instances = &mut self.instances;
        next_object_record(&mut self.lines, self.file, cx, |obj, origin, cx| {
            instances.event(obj, origin, cx)
        })
    }
}

impl Instances {
    fn event(
        &mut self,
        obj: &Map<String, Value>,
        origin: Origin,
        cx: &mut Ctx<'_>,
    ) -> Result<Option<CallRecord>, LineError> {
        let f = Fields::new(obj, "");
        let kind = f.req_str("type")?;
        let instance = f.opt_str("instance")?.map(|s| self.names.get(s));
        match kind {
            "tool_call" => {}
            "startup" => {
                let named = match f.opt_str("server")? {
                    Some(s) => Some(s),
                    None => match f.opt_str("upstream")? {
                        Some(s) => Some(s),
                        None => f.opt_str("name")?,
                    },
                };
                if let Some(s) = named {
                    let s = self.names.get(s);
                    if let Some(i) = &instance {
                        self.servers.insert(i.clone(), s.clone());
                    }
                    self.last_server = Some(s);
                }
                cx.ignore("event startup");
                return Ok(None);
            }
            other => {
                cx.ignore(format!("event {other}"));
                return Ok(None);
            }
        }
        let ts = f.req_ts(&["ts"])?;
        let tool = self.names.get(f.req_str("tool")?);
        let server = match f.opt_str("server")? {
            Some(s) => self.names.get(s),
            // An instance whose startup is not in the log (it started before the log was
            // rotated) is no other instance's: its server is unknown. The latest startup's
            // server is for events that name no instance, and for logs whose startups name none.
            None => match &instance {
                Some(i) if !self.servers.is_empty() => self.servers.get(i).cloned(),
                _ => self.last_server.clone(),
            }
            .unwrap_or_else(|| self.names.get(UNKNOWN_SERVER)),
        };
        let recorded = recorded_from(&f, "result", "rule", "message", "policy_version")?;
        Ok(Some(CallRecord {
            ts,
            server,
            grant: instance,
            session: f.opt_str("session")?.map(|s| self.names.get(s)),
            tool,
            args: Args::Unrecorded,
            id: f.opt_id("id")?,
            recorded,
            upstream: None,
            latency_ms: f.opt_f64("latency_ms")?,
            origin,
        }))
    }
}
