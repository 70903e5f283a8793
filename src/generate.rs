//! Deterministic synthetic traces: call records that look like a fleet of agents driving
//! firewall MCP servers, for demos, load tests and benchmarks.
//!
//! The same [`GenConfig`] always yields the same calls, byte for byte, on every platform:
//! randomness comes from a seeded xoshiro256** generator, floats are never formatted through
//! platform code, and timestamps advance from a fixed start.
//!
//! The model: every grant is an agent bound to one server. An agent works in *bursts*: it picks
//! a tool (tool popularity is Zipf-like, so a few read tools dominate), calls it in a loop with
//! short gaps (sometimes mixing in another tool), then goes idle for a while. Agents keep an MCP
//! session for a few dozen to a few hundred calls (or as many as asked on average), then open a
//! new one. About 1% of calls end in
//! a JSON-RPC error upstream and 0.5% in a tool error (`isError: true`).

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io::{self, Write};
use std::sync::Arc;

use serde_json::{Map, Number, Value};

use crate::trace::{Args, CallRecord, Nanos, Origin, Sym, Upstream};

/// What to generate.
#[derive(Debug, Clone, PartialEq)]
pub struct GenConfig {
    /// How many calls to produce.
    pub calls: u64,
    /// How many grants (agents); each is bound to one server.
    pub grants: u32,
    /// Seed of the pseudo-random generator: same seed, same calls.
    pub seed: u64,
    /// Server names; grants are spread over them round-robin.
    pub servers: Vec<String>,
    /// Timestamp of the earliest possible call.
    pub start: Nanos,
    /// Calls per session on average: sessions then last 1 to `2n − 1` calls. `None`: a few
    /// dozen to a few hundred (20 to 600).
    pub session_calls: Option<u32>,
}

/// 2026-08-01T00:00:00Z, the default start of generated traces.
pub const DEFAULT_START: Nanos = 1_785_542_400 * 1_000_000_000;

impl Default for GenConfig {
    fn default() -> GenConfig {
        GenConfig {
            calls: 1000,
            grants: 50,
            seed: 42,
            servers: vec!["fortigate-edge".to_string()],
            start: DEFAULT_START,
            session_calls: None,
        }
    }
}

/// Why a trace could not be generated or written.
#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    /// The configuration cannot produce a trace.
    #[error("invalid generator setting `{field}`: {reason}")]
    Config {
        /// The offending setting (`grants`, `servers`, `start`).
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// Writing the output failed.
    #[error("writing the generated trace: {0}")]
    Io(#[from] io::Error),
    /// The Parquet encoder failed.
    #[error("writing the generated trace as Parquet: {0}")]
    Parquet(#[from] polars::error::PolarsError),
}

// --- pseudo-random numbers -------------------------------------------------------------------

/// xoshiro256** seeded through splitmix64: tiny, fast, and identical on every platform, which is
/// what reproducible traces need (no dependency whose stream could change between versions).
#[derive(Debug, Clone)]
struct Rng {
    s: [u64; 4],
}

impl Rng {
    fn new(seed: u64) -> Rng {
        let mut x = seed;
        let mut next = || {
            x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = x;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        };
        Rng {
            s: [next(), next(), next(), next()],
        }
    }

    fn next_u64(&mut self) -> u64 {
        let result = self.s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = self.s[1] << 17;
        self.s[2] ^= self.s[0];
        self.s[3] ^= self.s[1];
        self.s[1] ^= self.s[2];
        self.s[0] ^= self.s[3];
        self.s[2] ^= t;
        self.s[3] = self.s[3].rotate_left(45);
        result
    }

    /// Uniform in [0, 1), from the top 53 bits.
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform in [lo, hi] (inclusive); multiply-shift keeps it unbiased enough for traffic shapes.
    fn range(&mut self, lo: u32, hi: u32) -> u32 {
        let span = u64::from(hi - lo) + 1;
        lo + ((u128::from(self.next_u64()) * u128::from(span)) >> 64) as u32
    }

    fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    /// Exponentially distributed with the given mean.
    fn exp(&mut self, mean: f64) -> f64 {
        -mean * (1.0 - self.unit()).ln()
    }
}

// --- the tool catalogue ----------------------------------------------------------------------

/// The shape of one generated argument value.
#[derive(Debug, Clone, Copy)]
enum ArgVal {
    Str(&'static str),
    Int(i64),
    Bool(bool),
    /// `"<prefix>-<n>"`, e.g. `"branch-17"`.
    Name(&'static str, u32),
    /// `"10.a.b.0/24"`.
    Subnet(u8, u8, u8),
    /// `"203.0.113.n"`.
    Ip(u8),
}

impl ArgVal {
    fn write_json(self, out: &mut Vec<u8>) {
        match self {
            ArgVal::Str(s) => {
                out.push(b'"');
                out.extend_from_slice(s.as_bytes());
                out.push(b'"');
            }
            ArgVal::Int(n) => push_int(out, n),
            ArgVal::Bool(b) => out.extend_from_slice(if b { b"true" } else { b"false" }),
            ArgVal::Name(prefix, n) => {
                out.push(b'"');
                out.extend_from_slice(prefix.as_bytes());
                out.push(b'-');
                push_int(out, i64::from(n));
                out.push(b'"');
            }
            ArgVal::Subnet(a, b, bits) => {
                out.extend_from_slice(b"\"10.");
                push_int(out, i64::from(a));
                out.push(b'.');
                push_int(out, i64::from(b));
                out.extend_from_slice(b".0/");
                push_int(out, i64::from(bits));
                out.push(b'"');
            }
            ArgVal::Ip(n) => {
                out.extend_from_slice(b"\"203.0.113.");
                push_int(out, i64::from(n));
                out.push(b'"');
            }
        }
    }

    fn to_value(self) -> Value {
        match self {
            ArgVal::Int(n) => Value::Number(Number::from(n)),
            ArgVal::Bool(b) => Value::Bool(b),
            ArgVal::Str(s) => Value::String(s.to_string()),
            other => {
                let mut buf = Vec::with_capacity(24);
                other.write_json(&mut buf);
                // The formatted value is a quoted ASCII string without escapes.
                Value::String(String::from_utf8_lossy(&buf[1..buf.len() - 1]).into_owned())
            }
        }
    }
}

/// A tool: its name, typical upstream latency and how its arguments look.
struct Tool {
    name: &'static str,
    latency_ms: f64,
    args: fn(&mut Rng, &mut Vec<(&'static str, ArgVal)>),
}

const VDOMS: [&str; 4] = ["root", "root", "dmz", "branch"];
const PROPOSALS: [&str; 5] = [
    "aes256-sha256",
    "aes256gcm-prfsha384",
    "aes128-sha256",
    "aes128-sha1",
    "des-md5",
];

fn proposal(rng: &mut Rng) -> ArgVal {
    // Weak proposals are rare but present, so `deny_if` regexes have something to catch.
    let i = match rng.unit() {
        u if u < 0.45 => 0,
        u if u < 0.75 => 1,
        u if u < 0.92 => 2,
        u if u < 0.98 => 3,
        _ => 4,
    };
    ArgVal::Str(PROPOSALS[i])
}

fn vdom(rng: &mut Rng) -> ArgVal {
    ArgVal::Str(VDOMS[rng.range(0, 3) as usize])
}

/// Tools in popularity order (rank 0 is the most called).
const TOOLS: [Tool; 12] = [
    Tool {
        name: "firewall_policy_list",
        latency_ms: 45.0,
        args: |r, a| {
            a.push(("vdom", vdom(r)));
            if r.chance(0.3) {
                a.push(("filter", ArgVal::Str("action==accept")));
            }
        },
    },
    Tool {
        name: "system_status_get",
        latency_ms: 12.0,
        args: |_, _| {},
    },
    Tool {
        name: "vpn_ipsec_phase1_list",
        latency_ms: 38.0,
        args: |r, a| a.push(("vdom", vdom(r))),
    },
    Tool {
        name: "firewall_address_list",
        latency_ms: 40.0,
        args: |r, a| a.push(("vdom", vdom(r))),
    },
    Tool {
        name: "vpn_ipsec_phase2_list",
        latency_ms: 41.0,
        args: |r, a| {
            a.push(("vdom", vdom(r)));
            a.push(("phase1name", ArgVal::Name("branch", r.range(1, 64))));
        },
    },
    Tool {
        name: "router_static_list",
        latency_ms: 30.0,
        args: |r, a| a.push(("vdom", vdom(r))),
    },
    Tool {
        name: "firewall_policy_create",
        latency_ms: 260.0,
        args: |r, a| {
            a.push(("name", ArgVal::Name("allow-branch", r.range(1, 500))));
            a.push(("srcintf", ArgVal::Str("port2")));
            a.push(("dstintf", ArgVal::Str("port1")));
            a.push(("srcaddr", ArgVal::Subnet(r.range(0, 255) as u8, 0, 24)));
            a.push(("dstaddr", ArgVal::Str("all")));
            a.push((
                "service",
                ArgVal::Str(if r.chance(0.7) { "HTTPS" } else { "ALL" }),
            ));
            a.push((
                "action",
                ArgVal::Str(if r.chance(0.9) { "accept" } else { "deny" }),
            ));
            a.push(("logtraffic", ArgVal::Str("all")));
        },
    },
    Tool {
        name: "firewall_address_create",
        latency_ms: 180.0,
        args: |r, a| {
            let n = r.range(0, 255) as u8;
            a.push(("name", ArgVal::Name("net", u32::from(n))));
            a.push(("subnet", ArgVal::Subnet(n, r.range(0, 255) as u8, 24)));
            a.push(("comment", ArgVal::Str("created by automation")));
        },
    },
    Tool {
        name: "vpn_ipsec_phase2_create",
        latency_ms: 320.0,
        args: |r, a| {
            let site = r.range(1, 64);
            a.push(("name", ArgVal::Name("branch-p2", site)));
            a.push(("phase1name", ArgVal::Name("branch", site)));
            a.push(("proposal", proposal(r)));
            a.push((
                "pfs",
                ArgVal::Str(if r.chance(0.85) { "enable" } else { "disable" }),
            ));
            a.push(("dhgrp", ArgVal::Int(if r.chance(0.8) { 14 } else { 5 })));
            a.push(("src_subnet", ArgVal::Subnet(0, r.range(0, 255) as u8, 24)));
            a.push(("dst_subnet", ArgVal::Subnet(site as u8, 0, 24)));
        },
    },
    Tool {
        name: "vpn_ipsec_phase1_create",
        latency_ms: 350.0,
        args: |r, a| {
            a.push(("name", ArgVal::Name("branch", r.range(1, 64))));
            a.push(("interface", ArgVal::Str("port1")));
            a.push(("remote_gw", ArgVal::Ip(r.range(1, 254) as u8)));
            a.push(("proposal", proposal(r)));
            a.push((
                "ike_version",
                ArgVal::Int(if r.chance(0.75) { 2 } else { 1 }),
            ));
            a.push(("nattraversal", ArgVal::Bool(r.chance(0.5))));
        },
    },
    Tool {
        name: "firewall_policy_delete",
        latency_ms: 150.0,
        args: |r, a| {
            a.push(("vdom", vdom(r)));
            a.push(("policyid", ArgVal::Int(i64::from(r.range(1, 900)))));
        },
    },
    Tool {
        name: "system_config_backup",
        latency_ms: 1400.0,
        args: |r, a| {
            a.push((
                "scope",
                ArgVal::Str(if r.chance(0.8) { "global" } else { "vdom" }),
            ));
        },
    },
];

/// Names of the tools generated traces use, most popular first.
pub fn tool_names() -> impl Iterator<Item = &'static str> {
    TOOLS.iter().map(|t| t.name)
}

const ROLES: [&str; 5] = [
    "netops-agent",
    "secops-bot",
    "ci-deployer",
    "chatops-assistant",
    "audit-scanner",
];

// --- agents ----------------------------------------------------------------------------------

const MS: i64 = 1_000_000;

#[derive(Debug, Clone)]
struct Agent {
    server: usize,
    /// Rotates the popularity ranking, so agents do not all favour the same tools.
    shift: usize,
    session: u64,
    session_left: u32,
    next_id: u32,
    burst_tool: usize,
    burst_left: u32,
    burst_gap_ms: f64,
}

/// The calls a [`GenConfig`] describes, in timestamp order.
///
/// Iterate it for [`CallRecord`]s, or hand it to [`Generator::write_jsonl`] /
/// [`Generator::write_parquet`], which format the same calls without building records.
pub struct Generator {
    rng: Rng,
    remaining: u64,
    agents: Vec<Agent>,
    /// Min-heap of (next call time, agent index); the index breaks ties deterministically.
    queue: BinaryHeap<Reverse<(Nanos, usize)>>,
    zipf_cdf: [f64; TOOLS.len()],
    servers: Vec<Sym>,
    grants: Vec<Sym>,
    /// JSON-escaped `"server":"…"` fragments, so the writer never escapes per call.
    servers_json: Vec<Vec<u8>>,
    grants_json: Vec<Vec<u8>>,
    tool_syms: Vec<Sym>,
    args: Vec<(&'static str, ArgVal)>,
    line: u64,
    /// The fewest and most calls of a session.
    session_len: (u32, u32),
}

/// One generated call before it is turned into a record or a line.
#[derive(Debug, Clone, Copy)]
struct RawCall {
    ts: Nanos,
    agent: usize,
    tool: usize,
    id: u32,
    session: u64,
    upstream: Upstream,
    /// Latency in tenths of a millisecond, so it formats exactly.
    latency_tenths: u32,
}

impl Generator {
    /// Validate the configuration and set up the agents.
    pub fn new(cfg: &GenConfig) -> Result<Generator, GenerateError> {
        if cfg.grants == 0 {
            return Err(GenerateError::Config {
                field: "grants",
                reason: "must be at least 1".into(),
            });
        }
        if cfg.servers.is_empty() || cfg.servers.iter().any(|s| s.is_empty()) {
            return Err(GenerateError::Config {
                field: "servers",
                reason: "needs at least one non-empty server name".into(),
            });
        }
        let session_len = match cfg.session_calls {
            None => (20, 600),
            Some(n @ 1..=0x7FFF_FFFF) => (1, 2 * n - 1),
            Some(_) => {
                return Err(GenerateError::Config {
                    field: "session_calls",
                    reason: "must be from 1 to 2147483647".into(),
                });
            }
        };
        if cfg.start < 0 {
            return Err(GenerateError::Config {
                field: "start",
                reason: "must not be before 1970-01-01".into(),
            });
        }
        let mut rng = Rng::new(cfg.seed);
        let mut zipf_cdf = [0.0; TOOLS.len()];
        let mut acc = 0.0;
        for (rank, slot) in zipf_cdf.iter_mut().enumerate() {
            acc += 1.0 / ((rank + 1) as f64).powf(1.1);
            *slot = acc;
        }
        for slot in &mut zipf_cdf {
            *slot /= acc;
        }
        let grants: Vec<Sym> = (0..cfg.grants as usize)
            .map(|i| {
                Arc::from(format!(
                    "{}-{:02}",
                    ROLES[i % ROLES.len()],
                    i / ROLES.len() + 1
                ))
            })
            .collect();
        let servers: Vec<Sym> = cfg.servers.iter().map(|s| Arc::from(s.as_str())).collect();
        let mut generator = Generator {
            rng: Rng::new(0),
            remaining: cfg.calls,
            agents: Vec::with_capacity(grants.len()),
            queue: BinaryHeap::with_capacity(grants.len()),
            zipf_cdf,
            servers_json: servers.iter().map(|s| json_string(s)).collect(),
            grants_json: grants.iter().map(|s| json_string(s)).collect(),
            servers,
            grants,
            tool_syms: TOOLS.iter().map(|t| Arc::from(t.name)).collect(),
            args: Vec::with_capacity(8),
            line: 0,
            session_len,
        };
        for i in 0..cfg.grants as usize {
            let mut agent = Agent {
                server: i % cfg.servers.len(),
                shift: if rng.chance(0.7) {
                    0
                } else {
                    rng.range(1, 3) as usize
                },
                session: rng.next_u64(),
                session_left: rng.range(session_len.0, session_len.1),
                next_id: 1,
                burst_tool: 0,
                burst_left: 0,
                burst_gap_ms: 0.0,
            };
            generator.new_burst(&mut agent, &mut rng);
            let first = cfg.start + i64::from(rng.range(0, 600_000)) * MS;
            generator.agents.push(agent);
            generator.queue.push(Reverse((first, i)));
        }
        generator.rng = rng;
        Ok(generator)
    }

    fn pick_tool(&self, rng: &mut Rng, shift: usize) -> usize {
        let u = rng.unit();
        let rank = self
            .zipf_cdf
            .iter()
            .position(|&c| u < c)
            .unwrap_or(TOOLS.len() - 1);
        (rank + shift) % TOOLS.len()
    }

    fn new_burst(&self, agent: &mut Agent, rng: &mut Rng) {
        agent.burst_tool = self.pick_tool(rng, agent.shift);
        let (len, gap) = match rng.unit() {
            // A one-off look or a short exchange with a human in the loop.
            u if u < 0.65 => (rng.range(1, 5), 800.0 + rng.exp(1500.0)),
            // A task: a handful of related calls.
            u if u < 0.96 => (rng.range(5, 30), 400.0 + rng.exp(1200.0)),
            // A loop: an agent hammering one tool.
            _ => (rng.range(30, 200), 80.0 + rng.exp(400.0)),
        };
        agent.burst_left = len;
        agent.burst_gap_ms = gap;
    }

    /// The next call, or `None` when `calls` have been produced. Fills `self.args`.
    fn next_raw(&mut self) -> Option<RawCall> {
        if self.remaining == 0 {
            return None;
        }
        let Reverse((ts, index)) = self.queue.pop()?;
        self.remaining -= 1;
        self.line += 1;
        let mut rng = std::mem::replace(&mut self.rng, Rng { s: [0; 4] });
        let mut agent = self.agents[index].clone();

        // Inside a burst an agent mostly repeats its tool, sometimes interleaving another.
        let tool = if rng.chance(0.15) {
            self.pick_tool(&mut rng, agent.shift)
        } else {
            agent.burst_tool
        };
        self.args.clear();
        (TOOLS[tool].args)(&mut rng, &mut self.args);
        let u = rng.unit();
        let upstream = if u < 0.01 {
            Upstream::Error
        } else if u < 0.015 {
            Upstream::ToolError
        } else {
            Upstream::Ok
        };
        let base = TOOLS[tool].latency_ms;
        let latency = match upstream {
            Upstream::Error if rng.chance(0.3) => 30_000.0,
            Upstream::Error => base * (0.2 + 0.3 * rng.unit()),
            _ => {
                // A long tail: most calls near the tool's typical latency, a few far slower.
                let tail = rng.unit().powi(8);
                base * (0.6 + 0.8 * rng.unit()) * (1.0 + 6.0 * tail)
            }
        };
        let call = RawCall {
            ts,
            agent: index,
            tool,
            id: agent.next_id,
            session: agent.session,
            upstream,
            latency_tenths: (latency * 10.0).round().clamp(1.0, 1e9) as u32,
        };

        agent.next_id += 1;
        agent.session_left = agent.session_left.saturating_sub(1);
        agent.burst_left = agent.burst_left.saturating_sub(1);
        let next = if agent.burst_left > 0 {
            let gap = agent.burst_gap_ms * (0.5 + rng.unit());
            ts + (gap.max(1.0) as i64) * MS
        } else {
            self.new_burst(&mut agent, &mut rng);
            let idle = if rng.chance(0.05) {
                // Off shift: the agent is quiet for a long while.
                600_000.0 + rng.exp(2_400_000.0)
            } else {
                2_000.0 + rng.exp(90_000.0)
            };
            ts + (idle as i64) * MS
        };
        if agent.session_left == 0 {
            agent.session = rng.next_u64();
            agent.session_left = rng.range(self.session_len.0, self.session_len.1);
            agent.next_id = 1;
        }
        self.agents[index] = agent;
        self.queue.push(Reverse((next, index)));
        self.rng = rng;
        Some(call)
    }

    fn record(&self, raw: &RawCall) -> CallRecord {
        let agent = &self.agents[raw.agent];
        let args: Map<String, Value> = self
            .args
            .iter()
            .map(|&(k, v)| (k.to_string(), v.to_value()))
            .collect();
        let mut session = Vec::with_capacity(21);
        push_session(&mut session, raw.session);
        CallRecord {
            ts: raw.ts,
            server: self.servers[agent.server].clone(),
            grant: Some(self.grants[raw.agent].clone()),
            session: Some(Arc::from(String::from_utf8_lossy(&session).as_ref())),
            tool: self.tool_syms[raw.tool].clone(),
            args: Args::Values(args),
            id: Some(raw.id.to_string()),
            recorded: None,
            upstream: Some(raw.upstream),
            latency_ms: Some(f64::from(raw.latency_tenths) / 10.0),
            origin: Origin {
                file: 0,
                line: self.line,
            },
        }
    }

    /// Append the current call's `args` object as JSON.
    fn push_args(&self, out: &mut Vec<u8>) {
        out.push(b'{');
        for (i, (k, v)) in self.args.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.push(b'"');
            out.extend_from_slice(k.as_bytes());
            out.extend_from_slice(b"\":");
            v.write_json(out);
        }
        out.push(b'}');
    }

    /// Write every remaining call as one mcpsim JSONL record per line. Returns the number of calls.
    ///
    /// Lines are formatted by hand into a reused buffer: the generator must outrun the readers
    /// it is used to benchmark.
    pub fn write_jsonl(mut self, out: &mut dyn Write) -> Result<u64, GenerateError> {
        let mut buf: Vec<u8> = Vec::with_capacity(1 << 20);
        let mut day_cache = DayCache::default();
        let mut n = 0u64;
        while let Some(raw) = self.next_raw() {
            let agent = &self.agents[raw.agent];
            buf.extend_from_slice(b"{\"ts\":\"");
            day_cache.push_rfc3339(&mut buf, raw.ts);
            buf.extend_from_slice(b"\",\"server\":");
            buf.extend_from_slice(&self.servers_json[agent.server]);
            buf.extend_from_slice(b",\"grant\":");
            buf.extend_from_slice(&self.grants_json[raw.agent]);
            buf.extend_from_slice(b",\"session\":\"");
            push_session(&mut buf, raw.session);
            buf.extend_from_slice(b"\",\"tool\":\"");
            buf.extend_from_slice(TOOLS[raw.tool].name.as_bytes());
            buf.extend_from_slice(b"\",\"args\":");
            self.push_args(&mut buf);
            buf.extend_from_slice(b",\"id\":\"");
            push_int(&mut buf, i64::from(raw.id));
            buf.extend_from_slice(b"\",\"upstream\":\"");
            buf.extend_from_slice(raw.upstream.as_str().as_bytes());
            buf.extend_from_slice(b"\",\"latency_ms\":");
            push_tenths(&mut buf, raw.latency_tenths);
            buf.extend_from_slice(b"}\n");
            n += 1;
            if buf.len() >= (1 << 20) - 1024 {
                out.write_all(&buf)?;
                buf.clear();
            }
        }
        out.write_all(&buf)?;
        out.flush()?;
        Ok(n)
    }

    /// Write every remaining call as an MCP JSON-RPC recording (see `docs/trace-formats.md`):
    /// for each call the client's `tools/call` request and, `latency_ms` later, the server's
    /// reply, one message per line in an envelope, all lines in time order. Reading it back
    /// gives the calls [`Generator::write_jsonl`] writes. Returns the number of calls.
    pub fn write_jsonrpc(mut self, out: &mut dyn Write) -> Result<u64, GenerateError> {
        let mut buf: Vec<u8> = Vec::with_capacity(1 << 20);
        let mut day_cache = DayCache::default();
        // Replies not yet due, earliest first; the call number breaks ties in call order.
        let mut replies: BinaryHeap<Reverse<(Nanos, u64, Vec<u8>)>> = BinaryHeap::new();
        let mut n = 0u64;
        while let Some(raw) = self.next_raw() {
            while replies
                .peek()
                .is_some_and(|Reverse((at, ..))| *at <= raw.ts)
            {
                if let Some(Reverse((_, _, line))) = replies.pop() {
                    buf.extend_from_slice(&line);
                }
            }
            let agent = &self.agents[raw.agent];
            let envelope = |buf: &mut Vec<u8>, day_cache: &mut DayCache, ts: Nanos, dir: &[u8]| {
                buf.extend_from_slice(b"{\"ts\":\"");
                day_cache.push_rfc3339_digits(buf, ts, 4);
                buf.extend_from_slice(b"\",\"dir\":\"");
                buf.extend_from_slice(dir);
                buf.extend_from_slice(b"\",\"server\":");
                buf.extend_from_slice(&self.servers_json[agent.server]);
                buf.extend_from_slice(b",\"session\":\"");
                push_session(buf, raw.session);
                buf.push(b'"');
            };
            envelope(&mut buf, &mut day_cache, raw.ts, b"c2s");
            buf.extend_from_slice(b",\"grant\":");
            buf.extend_from_slice(&self.grants_json[raw.agent]);
            buf.extend_from_slice(b",\"msg\":{\"jsonrpc\":\"2.0\",\"id\":\"");
            push_int(&mut buf, i64::from(raw.id));
            buf.extend_from_slice(b"\",\"method\":\"tools/call\",\"params\":{\"name\":\"");
            buf.extend_from_slice(TOOLS[raw.tool].name.as_bytes());
            buf.extend_from_slice(b"\",\"arguments\":");
            self.push_args(&mut buf);
            buf.extend_from_slice(b"}}}\n");

            let at = raw.ts + i64::from(raw.latency_tenths) * (MS / 10);
            let mut reply = Vec::with_capacity(256);
            envelope(&mut reply, &mut day_cache, at, b"s2c");
            reply.extend_from_slice(b",\"msg\":{\"jsonrpc\":\"2.0\",\"id\":\"");
            push_int(&mut reply, i64::from(raw.id));
            reply.extend_from_slice(match raw.upstream {
                Upstream::Error => {
                    b"\",\"error\":{\"code\":-32603,\"message\":\"upstream error\"}}}\n"
                        .as_slice()
                }
                Upstream::ToolError => b"\",\"result\":{\"content\":[{\"type\":\"text\",\"text\":\"failed\"}],\"isError\":true}}}\n",
                Upstream::Ok => b"\",\"result\":{\"content\":[{\"type\":\"text\",\"text\":\"ok\"}],\"isError\":false}}}\n",
            });
            replies.push(Reverse((at, n, reply)));
            n += 1;
            if buf.len() >= (1 << 20) - 1024 {
                out.write_all(&buf)?;
                buf.clear();
            }
        }
        while let Some(Reverse((_, _, line))) = replies.pop() {
            buf.extend_from_slice(&line);
        }
        out.write_all(&buf)?;
        out.flush()?;
        Ok(n)
    }

    /// Write every remaining call as Parquet (zstd), in row groups of `batch` calls, so memory
    /// stays bounded whatever the number of calls. Returns the number of calls.
    ///
    /// Columns: `ts` (i64, nanoseconds since the Unix epoch, UTC), `server`, `grant`, `session`, `tool`, `args` (the
    /// argument object as a JSON string), `id`, `upstream`, `latency_ms` (f64).
    pub fn write_parquet(
        mut self,
        out: &mut dyn Write,
        batch: usize,
    ) -> Result<u64, GenerateError> {
        use crate::trace::table_write::FrameWriter;
        use polars::prelude::*;

        let batch = batch.max(1);
        let mut writer: Option<FrameWriter> = None;
        let mut n = 0u64;
        let mut scratch = Vec::with_capacity(256);
        loop {
            let mut ts = Vec::with_capacity(batch);
            let mut server = Vec::with_capacity(batch);
            let mut grant = Vec::with_capacity(batch);
            let mut session = Vec::with_capacity(batch);
            let mut tool = Vec::with_capacity(batch);
            let mut args = Vec::with_capacity(batch);
            let mut id = Vec::with_capacity(batch);
            let mut upstream = Vec::with_capacity(batch);
            let mut latency = Vec::with_capacity(batch);
            while ts.len() < batch {
                let Some(raw) = self.next_raw() else { break };
                ts.push(raw.ts);
                server.push(self.servers[self.agents[raw.agent].server].clone());
                grant.push(self.grants[raw.agent].clone());
                scratch.clear();
                push_session(&mut scratch, raw.session);
                session.push(String::from_utf8_lossy(&scratch).into_owned());
                tool.push(TOOLS[raw.tool].name);
                scratch.clear();
                self.push_args(&mut scratch);
                args.push(String::from_utf8_lossy(&scratch).into_owned());
                id.push(raw.id.to_string());
                upstream.push(raw.upstream.as_str());
                latency.push(f64::from(raw.latency_tenths) / 10.0);
            }
            let rows = ts.len();
            if rows == 0 && writer.is_some() {
                break;
            }
            n += rows as u64;
            let ts = Column::new("ts".into(), ts);
            let df = DataFrame::new(
                rows,
                vec![
                    ts,
                    Column::new(
                        "server".into(),
                        server.iter().map(|s| &**s).collect::<Vec<_>>(),
                    ),
                    Column::new(
                        "grant".into(),
                        grant.iter().map(|s| &**s).collect::<Vec<_>>(),
                    ),
                    Column::new("session".into(), session),
                    Column::new("tool".into(), tool),
                    Column::new("args".into(), args),
                    Column::new("id".into(), id),
                    Column::new("upstream".into(), upstream),
                    Column::new("latency_ms".into(), latency),
                ],
            )?;
            let w = match &mut writer {
                Some(w) => w,
                None => writer.insert(FrameWriter::new(df.schema(), true)?),
            };
            w.write(df, &mut *out)?;
            if rows < batch {
                break;
            }
        }
        if let Some(mut w) = writer {
            w.finish(out)?;
        }
        Ok(n)
    }
}

impl Iterator for Generator {
    type Item = CallRecord;

    fn next(&mut self) -> Option<CallRecord> {
        let raw = self.next_raw()?;
        Some(self.record(&raw))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = usize::try_from(self.remaining).unwrap_or(usize::MAX);
        (n, usize::try_from(self.remaining).ok())
    }
}

// --- formatting helpers ----------------------------------------------------------------------

fn json_string(s: &str) -> Vec<u8> {
    // Serialising a &str cannot fail; fall back to an empty string literal rather than panic.
    serde_json::to_vec(s).unwrap_or_else(|_| b"\"\"".to_vec())
}

fn push_int(out: &mut Vec<u8>, n: i64) {
    let mut tmp = [0u8; 20];
    let mut i = tmp.len();
    let mut v = n.unsigned_abs();
    loop {
        i -= 1;
        tmp[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    if n < 0 {
        out.push(b'-');
    }
    out.extend_from_slice(&tmp[i..]);
}

fn push_tenths(out: &mut Vec<u8>, tenths: u32) {
    push_int(out, i64::from(tenths / 10));
    out.push(b'.');
    out.push(b'0' + (tenths % 10) as u8);
}

fn push_2(out: &mut Vec<u8>, n: u32) {
    out.push(b'0' + (n / 10) as u8);
    out.push(b'0' + (n % 10) as u8);
}

/// `sess-` and 16 lower-case hex digits.
fn push_session(out: &mut Vec<u8>, id: u64) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.extend_from_slice(b"sess-");
    for shift in (0..16).rev() {
        out.push(HEX[((id >> (shift * 4)) & 0xf) as usize]);
    }
}

/// Remembers the formatted date of the last day seen: traces stay on one day for many calls.
#[derive(Default)]
struct DayCache {
    day: Option<i64>,
    text: [u8; 10],
}

impl DayCache {
    /// `YYYY-MM-DDTHH:MM:SS.mmmZ` (generated timestamps are whole milliseconds).
    fn push_rfc3339(&mut self, out: &mut Vec<u8>, ts: Nanos) {
        self.push_rfc3339_digits(out, ts, 3);
    }

    /// `YYYY-MM-DDTHH:MM:SS.fffZ` with `digits` (1 to 9) digits of the second's fraction.
    fn push_rfc3339_digits(&mut self, out: &mut Vec<u8>, ts: Nanos, digits: u32) {
        let secs = ts.div_euclid(1_000_000_000);
        let nanos = ts.rem_euclid(1_000_000_000) as u32;
        let day = secs.div_euclid(86_400);
        let sod = secs.rem_euclid(86_400) as u32;
        if self.day != Some(day) {
            let (y, m, d) = civil_from_days(day);
            let mut text = Vec::with_capacity(10);
            push_int(&mut text, y);
            text.push(b'-');
            push_2(&mut text, m);
            text.push(b'-');
            push_2(&mut text, d);
            // Years 0..=9999 give exactly 10 bytes; anything else is not a real trace date.
            if text.len() == 10 {
                self.text.copy_from_slice(&text);
            }
            self.day = Some(day);
        }
        out.extend_from_slice(&self.text);
        out.push(b'T');
        push_2(out, sod / 3600);
        out.push(b':');
        push_2(out, sod / 60 % 60);
        out.push(b':');
        push_2(out, sod % 60);
        out.push(b'.');
        let digits = digits.clamp(1, 9);
        let fraction = nanos / 10u32.pow(9 - digits);
        for place in (0..digits).rev() {
            out.push(b'0' + (fraction / 10u32.pow(place) % 10) as u8);
        }
        out.push(b'Z');
    }
}

/// Days since 1970-01-01 → (year, month, day) in the proleptic Gregorian calendar
/// (H. Hinnant's `civil_from_days`).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates_match_chrono() {
        for day in [-1, 0, 59, 365, 10_957, 20_666, 20_681, 2_932_896] {
            let (y, m, d) = civil_from_days(day);
            let expected = chrono::DateTime::from_timestamp(day * 86_400, 0)
                .map(|t| t.date_naive())
                .map(|t| t.to_string());
            assert_eq!(Some(format!("{y:04}-{m:02}-{d:02}")), expected, "day {day}");
        }
    }

    #[test]
    fn default_start_is_august_first() {
        let mut out = Vec::new();
        DayCache::default().push_rfc3339(&mut out, DEFAULT_START + 1_234 * MS);
        assert_eq!(out, b"2026-08-01T00:00:01.234Z");
    }

    #[test]
    fn integers_and_tenths_format_like_std() {
        for n in [0i64, 7, -7, 10, 1234567, i64::MIN + 1, i64::MAX] {
            let mut out = Vec::new();
            push_int(&mut out, n);
            assert_eq!(String::from_utf8_lossy(&out), n.to_string());
        }
        let mut out = Vec::new();
        push_tenths(&mut out, 12_345);
        assert_eq!(out, b"1234.5");
    }
}
