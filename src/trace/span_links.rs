//! One call from the spans that trace it.
//!
//! A call traced on both sides has a client span and a server span under it; a gateway or
//! proxy traced with the conventions adds the call it forwards (a client span under its server
//! span) and, when the upstream server is traced into the same file, that server's span under
//! the forwarded one. All are one call. [`Links`] joins such spans into one call as they come,
//! in any order, across the documents of a file: the call is read from the outermost server
//! span (the earliest to start: the gateway's, the side a policy sits on), and what that span
//! left out — arguments, caller, session, request id — is taken from the others (the caller by
//! the same preference a single span's is chosen by). The other spans are counted by what they
//! were.
//!
//! Calls are handed out in the order their first span arrived. A call is held until the spans
//! that may still join it have had their time: spans ending more than [`TWIN_WINDOW_NS`] after
//! it have been read; or it is a server span with no parent (nothing can be its client side);
//! or it has a server span and the client span that span is under, and [`BOTH_SIDES_GRACE`]
//! more spans have been read; or more than [`MAX_HELD`] calls wait behind it. A span that joins
//! a call already handed out is counted, and gives the call nothing. Memory is bounded by the
//! spans of that window and by [`MAX_HELD`] calls.

use std::collections::VecDeque;

use rustc_hash::FxHashMap as HashMap;

use super::source::Ctx;
use super::{Args, CallRecord, Nanos, Sym};

/// How long, in span end time, the spans of one call are waited for after each other.
/// A client span ends after its server span, and exporters write spans as they end, so the
/// spans of one call arrive within the exporters' batching delays of each other, however long
/// the call ran.
pub(crate) const TWIN_WINDOW_NS: Nanos = 10 * 60 * 1_000_000_000;

/// The most calls held back at once; past that, the earliest is handed out as it stands.
pub(crate) const MAX_HELD: usize = 16_384;

/// How many more `tools/call` spans are read, once a call has a server span and the client
/// span it is under, before the call is handed out: the spans of a proxy's call come within
/// moments of each other (its forwarded call and the server span under it end before the
/// client span of the call it received), and memory holds no more than needed.
pub(crate) const BOTH_SIDES_GRACE: u64 = 4_096;

/// A client span whose server span was read: the call is read from the server span.
pub(crate) const CLIENT_TWIN: &str = "span tools/call (client side of a server span)";

/// A client span under a server `tools/call` span of the tool it forwards: a gateway or proxy
/// forwarding the call it received, read from the span of the call it received.
pub(crate) const OUTBOUND_LEG: &str = "span tools/call (a proxy forwarding a call it received)";

/// The server span under a proxy's forwarded call: the upstream server's side of that call.
pub(crate) const UPSTREAM_SIDE: &str =
    "span tools/call (the upstream's side of a call a proxy forwarded)";

/// A server span of a call read from another server span (two server spans under one client
/// span), or from its client span before the server span came.
pub(crate) const OTHER_SERVER: &str =
    "span tools/call (server side of a call read from another span)";

/// A span's identity: its trace id and span id (span ids are unique within a trace), hashed to
/// 128 bits, so that the spans of the window cost little memory.
pub(crate) type SpanKey = u128;

/// The [`SpanKey`] of span `span` of trace `trace`.
pub(crate) fn span_key(trace: &str, span: &str) -> SpanKey {
    use std::hash::{DefaultHasher, Hash, Hasher};
    let half = |salt: u8| {
        let mut h = DefaultHasher::new();
        (salt, trace, span).hash(&mut h);
        h.finish()
    };
    (u128::from(half(0)) << 64) | u128::from(half(1))
}

/// The call a `tools/call` span records, with how good its caller is: the rank of the key
/// its grant came from, lower is better (see the reader's grant keys).
pub(crate) struct SpanCall {
    pub(crate) rec: CallRecord,
    pub(crate) grant_rank: u8,
}

/// A `tools/call` span as the links see it.
pub(crate) struct SpanRole {
    /// `None` for a span without an id (nothing can name it as parent).
    pub(crate) key: Option<SpanKey>,
    pub(crate) parent: Option<SpanKey>,
    /// A server span (else the client side: a client span, or any `tools/call` span that is
    /// not a server span).
    pub(crate) server: bool,
    pub(crate) end: Nanos,
}

/// A span joined to a call.
#[derive(Clone, Copy)]
struct Member {
    key: Option<SpanKey>,
    parent: Option<SpanKey>,
    server: bool,
    /// A span that links calls without being a call (see [`Links::bridge`]).
    bridge: bool,
}

/// A call being gathered from its spans.
struct Group {
    /// `None` while it holds bridges only.
    call: Option<SpanCall>,
    /// Whether `call` was read from a server span.
    from_server: bool,
    /// The spans joined, the one `call` was read from at `primary`.
    members: Vec<Member>,
    primary: usize,
    /// The latest end of its spans.
    end: Nanos,
    /// The arrival number of the span that gave it a server span and the client span it is
    /// under.
    both_sides: Option<u64>,
}

/// A `tools/call` span read within the window, and the slot of the call it belongs to.
struct Seen {
    server: bool,
    bridge: bool,
    parent: Option<SpanKey>,
    tool: Sym,
    slot: u64,
}

/// Joins the spans of each call; see the module documentation.
#[derive(Default)]
pub(crate) struct Links {
    /// Calls held, in the order their first span came, by slot number (from `base`); `None`
    /// where a call joined an earlier one. Slots below `base` were handed out.
    queue: VecDeque<Option<Group>>,
    base: u64,
    /// Spans read within the window, their children by parent, and the order they came in.
    seen: HashMap<SpanKey, Seen>,
    children: HashMap<SpanKey, VecDeque<SpanKey>>,
    arrived: VecDeque<(Nanos, SpanKey, Option<SpanKey>)>,
    /// The latest span end time read.
    latest: Option<Nanos>,
    /// `tools/call` spans read.
    arrivals: u64,
}

impl Links {
    /// A span of any kind ended at `end`: time moves on.
    pub(crate) fn saw(&mut self, end: Nanos) {
        self.latest = Some(self.latest.map_or(end, |l| l.max(end)));
    }

    pub(crate) fn latest(&self) -> Option<Nanos> {
        self.latest
    }

    /// A call that no other span can join (it is not of a `tools/call` span).
    pub(crate) fn alone(&mut self, call: SpanCall, end: Nanos) {
        let member = Member {
            key: None,
            parent: None,
            server: false,
            bridge: false,
        };
        self.open(Some(call), false, member, end);
    }

    /// A span that is no call but stands between two spans of one: FastMCP's `delegate <tool>`
    /// span, between a server's `tools/call` span and the span of the mounted server it
    /// delegates the call to. It links as a proxy's forwarded call does, whatever its tool
    /// (the mounted server's name for it).
    pub(crate) fn bridge(&mut self, role: SpanRole, tool: Sym, cx: &mut Ctx<'_>) {
        self.join(role, None, tool, cx);
    }

    /// The call of a `tools/call` span: joined to the calls of the spans it links to, or
    /// the start of a call of its own.
    pub(crate) fn add(&mut self, role: SpanRole, call: SpanCall, cx: &mut Ctx<'_>) {
        let tool = call.rec.tool.clone();
        self.join(role, Some(call), tool, cx);
    }

    fn join(&mut self, role: SpanRole, call: Option<SpanCall>, tool: Sym, cx: &mut Ctx<'_>) {
        self.arrivals += 1;
        let call_less = call.is_none();
        let joined = self.linked(&role, &tool, call_less);
        let SpanRole {
            key,
            parent,
            server,
            end,
        } = role;
        let member = Member {
            key,
            parent,
            server,
            bridge: call_less,
        };
        let slot = match joined.iter().find(|&&j| j < self.base) {
            None if joined.is_empty() => self.open(call, server, member, end),
            Some(&out) => {
                // Part of a call handed out already: the span and the calls it joins to it
                // are counted, and give it nothing.
                let mut members = vec![member];
                for &j in &joined {
                    members.extend(self.take(j).map_or(Vec::new(), |g| g.members));
                }
                for m in members.iter().filter(|m| !m.bridge) {
                    cx.ignore(self.reason(m, &members));
                }
                self.repoint(&members, out);
                out
            }
            None => {
                // Every slot a span names holds its call (the calls joined are re-pointed),
                // so a slot found empty is only a span id written twice: a call of its own.
                let mut held = joined.iter().filter_map(|&j| Some((j, self.take(j)?)));
                match held.next() {
                    None => self.open(call, server, member, end),
                    Some((first, mut group)) => {
                        let others: Vec<Group> = held.map(|(_, g)| g).collect();
                        for other in others {
                            self.repoint(&other.members, first);
                            group.absorb(other);
                        }
                        group.absorb(Group::new(call, server, member, end));
                        if group.both_sides.is_none() && group.has_both_sides() {
                            group.both_sides = Some(self.arrivals);
                        }
                        self.queue[(first - self.base) as usize] = Some(group);
                        first
                    }
                }
            }
        };
        if let Some(key) = key {
            if let Some(p) = parent {
                self.children.entry(p).or_default().push_back(key);
            }
            self.arrived.push_back((end, key, parent));
            let seen = Seen {
                server,
                bridge: call_less,
                parent,
                tool,
                slot,
            };
            // A span id written twice: the later span stands for it.
            self.seen.insert(key, seen);
        }
    }

    /// The held call at `slot`, taken out of its slot.
    fn take(&mut self, slot: u64) -> Option<Group> {
        let i = usize::try_from(slot.checked_sub(self.base)?).ok()?;
        self.queue.get_mut(i)?.take()
    }

    /// The spans `members` now belong to the call at `slot`.
    fn repoint(&mut self, members: &[Member], slot: u64) {
        for key in members.iter().filter_map(|m| m.key) {
            if let Some(s) = self.seen.get_mut(&key) {
                s.slot = slot;
            }
        }
    }

    /// The slots of the calls `role`'s span links to, earliest first: its client side or
    /// the server span under it (a client span and its server span), and a proxy's call
    /// received and forwarded (a server span and a client span under it of the tool it
    /// forwards).
    fn linked(&self, role: &SpanRole, tool: &str, bridge: bool) -> Vec<u64> {
        let mut out = Vec::new();
        if let Some(p) = role.parent.as_ref().and_then(|p| self.seen.get(p)) {
            let forwarded = p.server && !role.server && (bridge || forwards(&p.tool, tool));
            if (!p.server && role.server) || forwarded {
                out.push(p.slot);
            }
        }
        if let Some(kids) = role.key.as_ref().and_then(|k| self.children.get(k)) {
            for kid in kids.iter().filter_map(|k| self.seen.get(k)) {
                let twin = !role.server && kid.server;
                let forwarded =
                    role.server && !kid.server && (kid.bridge || forwards(tool, &kid.tool));
                if twin || forwarded {
                    out.push(kid.slot);
                }
            }
        }
        out.sort_unstable();
        out.dedup();
        out
    }

    fn open(&mut self, call: Option<SpanCall>, server: bool, member: Member, end: Nanos) -> u64 {
        let slot = self.base + self.queue.len() as u64;
        (self.queue).push_back(Some(Group::new(call, server, member, end)));
        slot
    }

    /// Why span `m` of a call, among its `members` (spans of it read earlier are looked up
    /// among the spans seen), is not the span the call is read from.
    fn reason(&self, m: &Member, members: &[Member]) -> &'static str {
        let role = |key: Option<SpanKey>| -> Option<(bool, Option<SpanKey>)> {
            let key = key?;
            match members.iter().find(|o| o.key == Some(key)) {
                Some(o) => Some((o.server, o.parent)),
                None => self.seen.get(&key).map(|s| (s.server, s.parent)),
            }
        };
        match role(m.parent) {
            Some((true, _)) if !m.server => OUTBOUND_LEG,
            Some((false, grand)) if m.server && role(grand).is_some_and(|(s, _)| s) => {
                UPSTREAM_SIDE
            }
            _ if m.server => OTHER_SERVER,
            _ => CLIENT_TWIN,
        }
    }

    /// Hand out the calls that no span can join any more (all of them when `all`), in the
    /// order their first span came, counting the spans joined to them; forget the spans
    /// that ended more than the window before the latest.
    pub(crate) fn release(&mut self, all: bool, out: &mut VecDeque<CallRecord>, cx: &mut Ctx<'_>) {
        let horizon = match (all, self.latest) {
            (true, _) => Nanos::MAX,
            (false, Some(l)) => l.saturating_sub(TWIN_WINDOW_NS),
            (false, None) => 0,
        };
        while let Some(front) = self.queue.front() {
            if let Some(g) = front {
                let settled = g.from_server && g.members[g.primary].parent.is_none()
                    || g.both_sides
                        .is_some_and(|at| self.arrivals - at > BOTH_SIDES_GRACE);
                if !(g.end < horizon || settled || self.queue.len() > MAX_HELD) {
                    break;
                }
                for (i, m) in g.members.iter().enumerate() {
                    if i != g.primary && !m.bridge {
                        cx.ignore(self.reason(m, &g.members));
                    }
                }
            }
            if let Some(call) = self.queue.pop_front().flatten().and_then(|g| g.call) {
                out.push_back(call.rec);
            }
            self.base += 1;
        }
        // Spans are forgotten in the order they came (which is close to the order they
        // ended, exporters writing spans as they end).
        while let Some(&(end, key, parent)) = self.arrived.front() {
            if end >= horizon {
                break;
            }
            self.arrived.pop_front();
            // A span id written twice was pushed twice, and goes twice.
            if self.seen.get(&key).is_some_and(|s| s.parent == parent) {
                self.seen.remove(&key);
            }
            let Some(p) = parent else { continue };
            if let Some(kids) = self.children.get_mut(&p) {
                // Siblings are forgotten in the order they came.
                if kids.front() == Some(&key) {
                    kids.pop_front();
                } else if let Some(i) = kids.iter().position(|k| *k == key) {
                    kids.remove(i);
                }
                if kids.is_empty() {
                    self.children.remove(&p);
                }
            }
        }
    }
}

impl Group {
    /// The call of one span.
    fn new(call: Option<SpanCall>, from_server: bool, member: Member, end: Nanos) -> Group {
        Group {
            call,
            from_server,
            members: vec![member],
            primary: 0,
            end,
            both_sides: None,
        }
    }

    /// Whether the call has a server span and the client span it is under: the spans of a
    /// proxy's forwarded call end, and so come, before that client span does.
    fn has_both_sides(&self) -> bool {
        self.members.iter().any(|m| {
            m.server
                && m.parent
                    .is_some_and(|p| (self.members.iter()).any(|o| !o.server && o.key == Some(p)))
        })
    }

    /// Join `other` to this call: the call is read from the better span of the two (a
    /// server span before a client span, then the earlier to start), and what it left out
    /// is taken from the other.
    fn absorb(&mut self, other: Group) {
        let rank =
            |g: &Group| (g.call.as_ref()).map(|c| (g.from_server, std::cmp::Reverse(c.rec.ts)));
        let better = rank(&other) > rank(self);
        let offset = self.members.len();
        self.members.extend(other.members);
        self.end = self.end.max(other.end);
        self.both_sides = match (self.both_sides, other.both_sides) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let (keep, give) = if better {
            self.primary = offset + other.primary;
            self.from_server = other.from_server;
            (other.call, self.call.take())
        } else {
            (self.call.take(), other.call)
        };
        self.call = match (keep, give) {
            (Some(mut keep), Some(give)) => {
                fill(&mut keep, give);
                Some(keep)
            }
            (keep, give) => keep.or(give),
        };
    }
}

/// What `keep` left out, taken from `give`.
fn fill(keep: &mut SpanCall, give: SpanCall) {
    let (k, g) = (&mut keep.rec, give.rec);
    if matches!(k.args, Args::Unrecorded) {
        k.args = g.args;
    }
    if give.grant_rank < keep.grant_rank {
        k.grant = g.grant;
        keep.grant_rank = give.grant_rank;
    }
    if k.session.is_none() {
        k.session = g.session;
    }
    if k.id.is_none() {
        k.id = g.id;
    }
}

/// Whether a proxy that received a call of `received` forwards it as a call of `sent`: the
/// same tool, or a tool its name was prefixed from (a gateway multiplexing several servers
/// names `get_issue` of `github` `github_get_issue`).
pub(crate) fn forwards(received: &str, sent: &str) -> bool {
    received == sent
        || received
            .strip_suffix(sent)
            .is_some_and(|prefix| prefix.ends_with(['_', '-', '.', '/']))
}
