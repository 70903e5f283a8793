//! Pairing requests with their replies to fill `upstream` and `latency_ms`.
//!
//! Recordings with replies (MCP JSON-RPC, Claude Desktop logs) are read twice. The first read
//! pairs every `tools/call` request with its reply strictly by key — what the format names a
//! request by, such as (server, session, id) — however many lines apart they are and whatever
//! their timestamps say. It keeps the keys of the requests still waiting and, for each answered
//! call, its line, the reply's time and the outcome. The second read hands out the calls in
//! file order with their reply attached. So memory never holds calls waiting for a reply, and a
//! recording concatenated session by session pairs as well as one written in time order.
//!
//! A request whose key is used again before a reply came, or that has no reply by the end of
//! the file, is a request without a reply; a reply whose key no request waits for is a reply
//! without a request. Both are counted in [`Replies`] with the first few named by line.

use std::hash::Hash;

use rustc_hash::FxHashMap as HashMap;
use serde_json::{Map, Value};

use super::source::{Ctx, LineError, Lines, Source};
use super::{CallRecord, Nanos, Origin, ReadStats, Skipped, TraceError, Upstream};

/// How many requests without a reply and replies without a request are named, each.
const EXAMPLES_PER_KIND: usize = 5;

/// What one line of a recording with replies says.
pub(crate) enum Message<K> {
    /// A `tools/call` request; `key` is `None` when it has no id (a reply cannot name it).
    Call {
        key: Option<K>,
        rec: Box<CallRecord>,
    },
    /// Another request with an id: its reply is not a call's.
    Request(K),
    /// A reply, when it came and how the call ended.
    Reply {
        key: K,
        ts: Nanos,
        outcome: Upstream,
    },
    /// Anything else; the parser has counted it.
    Other,
}

/// A format's line parser. It is run over the file twice, from the start each time, so any
/// state it keeps (connection numbers, …) evolves the same way in both reads.
///
/// A format with one message per line implements [`Exchange::message`]; one whose lines may
/// carry several (an agent transcript line with parallel tool calls, or with several results)
/// implements [`Exchange::messages`] instead.
pub(crate) trait Exchange {
    type Key: Eq + Hash;
    /// What `text` (the line numbered `origin.line`) says. Under `index` the call's arguments
    /// are not needed.
    fn message(
        &mut self,
        _text: &str,
        _origin: Origin,
        _index: bool,
        _cx: &mut Ctx<'_>,
    ) -> Result<Message<Self::Key>, LineError> {
        Ok(Message::Other)
    }

    /// Every message of the line, in line order, appended to `out`. A bad line adds nothing.
    fn messages(
        &mut self,
        text: &str,
        origin: Origin,
        index: bool,
        cx: &mut Ctx<'_>,
        out: &mut Vec<Message<Self::Key>>,
    ) -> Result<(), LineError> {
        out.push(self.message(text, origin, index, cx)?);
        Ok(())
    }
}

/// How the replies of a recording paired with its requests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Replies {
    /// `tools/call` requests paired with their reply.
    pub paired: u64,
    /// `tools/call` requests with an id that no reply answered.
    pub requests_without_reply: u64,
    /// Replies that answer no request read before them.
    pub replies_without_request: u64,
    /// The first few of each, by file and line.
    pub examples: Vec<Skipped>,
}

impl Replies {
    pub(crate) fn absorb(&mut self, other: Replies) {
        self.paired += other.paired;
        self.requests_without_reply += other.requests_without_reply;
        self.replies_without_request += other.replies_without_request;
        self.examples.extend(other.examples);
    }

    /// The warnings every report shows for unpaired messages; empty when all paired.
    pub fn warning_lines(&self) -> Vec<String> {
        let mut lines = Vec::new();
        if self.requests_without_reply == 0 && self.replies_without_request == 0 {
            return lines;
        }
        lines.push(format!(
            "{} without a reply, {} without a request ({} paired); their calls have no upstream outcome",
            plural(self.requests_without_reply, "request", "requests"),
            plural(self.replies_without_request, "reply", "replies"),
            self.paired
        ));
        for s in &self.examples {
            lines.push(format!("  {}:{}: {}", s.file, s.line, s.reason));
        }
        lines
    }
}

fn plural(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// Where a call stands in its file: its line, and its place among the calls of that line.
pub(crate) type Slot = (u64, u32);

/// A reply found by the first read, by the slot of its request.
pub(crate) struct Answer {
    pub(crate) slot: Slot,
    pub(crate) ts: Nanos,
    pub(crate) outcome: Upstream,
}

/// What the first read needs of a message: [`Message`] without the call's record.
pub(crate) enum Pair<K> {
    /// A `tools/call` request, with its key when it has an id.
    Call(Option<K>),
    /// Another request with an id.
    Request(K),
    /// A reply.
    Reply {
        key: K,
        ts: Nanos,
        outcome: Upstream,
    },
    /// Anything else.
    Other,
}

impl<K> From<Message<K>> for Pair<K> {
    fn from(m: Message<K>) -> Pair<K> {
        match m {
            Message::Call { key, .. } => Pair::Call(key),
            Message::Request(key) => Pair::Request(key),
            Message::Reply { key, ts, outcome } => Pair::Reply { key, ts, outcome },
            Message::Other => Pair::Other,
        }
    }
}

/// A request waiting for its reply in the first read: a call by its place in
/// [`Pairer::asked`].
enum Waiting {
    Call(usize),
    Other,
}

/// A call with an id, and its reply once found.
struct Asked {
    slot: Slot,
    reply: Option<(Nanos, Upstream)>,
}

/// The first read's pairing, fed the messages of a file line by line in file order.
pub(crate) struct Pairer<'n, K> {
    name: &'n str,
    waiting: HashMap<K, Waiting>,
    /// Every call with an id, in request order: replies are filled in where they belong, so
    /// the answers come out in request order without a sort (replies arrive in their own
    /// order, and sorting a million of them took a tenth of a second between the two reads).
    asked: Vec<Asked>,
    counts: Replies,
    unanswered: Vec<Skipped>,
    other_replies: u64,
}

impl<'n, K: Eq + Hash> Pairer<'n, K> {
    /// Pairing for the file shown as `name`.
    pub(crate) fn new(name: &'n str) -> Pairer<'n, K> {
        Pairer {
            name,
            waiting: HashMap::default(),
            asked: Vec::new(),
            counts: Replies::default(),
            unanswered: Vec::new(),
            other_replies: 0,
        }
    }

    fn example(&self, line: u64, reason: String) -> Skipped {
        Skipped {
            file: self.name.to_string(),
            line,
            reason,
        }
    }

    /// The messages of line `line`, in line order.
    pub(crate) fn line(&mut self, line: u64, msgs: impl IntoIterator<Item = Pair<K>>) {
        let mut calls = 0;
        for msg in msgs {
            let (key, now) = match msg {
                Pair::Call(Some(key)) => {
                    calls += 1;
                    self.asked.push(Asked {
                        slot: (line, calls - 1),
                        reply: None,
                    });
                    (key, Waiting::Call(self.asked.len() - 1))
                }
                Pair::Call(None) => {
                    calls += 1;
                    continue;
                }
                Pair::Request(key) => (key, Waiting::Other),
                Pair::Reply { key, ts, outcome } => {
                    match self.waiting.remove(&key) {
                        Some(Waiting::Call(i)) => {
                            self.counts.paired += 1;
                            self.asked[i].reply = Some((ts, outcome));
                        }
                        Some(Waiting::Other) => self.other_replies += 1,
                        None => {
                            self.counts.replies_without_request += 1;
                            if self.counts.replies_without_request <= EXAMPLES_PER_KIND as u64 {
                                let e = self.example(
                                    line,
                                    "reply without a request: no request waits for its id".into(),
                                );
                                self.counts.examples.push(e);
                            }
                        }
                    }
                    continue;
                }
                Pair::Other => continue,
            };
            if let Some(Waiting::Call(i)) = self.waiting.insert(key, now) {
                let old = self.asked[i].slot.0;
                self.counts.requests_without_reply += 1;
                let e = self.example(
                    old,
                    format!("request without a reply: its id was used again at line {line}"),
                );
                self.unanswered.push(e);
                self.unanswered.sort_by_key(|s| s.line);
                self.unanswered.truncate(EXAMPLES_PER_KIND);
            }
        }
    }

    /// Every answered call's reply in request order, the counts, and how many replies answered
    /// requests that are not calls.
    pub(crate) fn finish(self) -> (Vec<Answer>, Replies, u64) {
        let Pairer {
            name,
            waiting,
            asked,
            mut counts,
            mut unanswered,
            other_replies,
        } = self;
        let mut left: Vec<u64> = waiting
            .into_values()
            .filter_map(|w| match w {
                Waiting::Call(i) => Some(asked[i].slot.0),
                Waiting::Other => None,
            })
            .collect();
        counts.requests_without_reply += left.len() as u64;
        left.sort_unstable();
        unanswered.extend(
            left.into_iter()
                .take(EXAMPLES_PER_KIND)
                .map(|line| Skipped {
                    file: name.to_string(),
                    line,
                    reason: "request without a reply in the file".into(),
                }),
        );
        unanswered.sort_by_key(|s| s.line);
        unanswered.truncate(EXAMPLES_PER_KIND);
        counts.examples.extend(unanswered);
        counts.examples.sort_by_key(|s| s.line);
        let answers = (asked.into_iter())
            .filter_map(|a| {
                let (ts, outcome) = a.reply?;
                Some(Answer {
                    slot: a.slot,
                    ts,
                    outcome,
                })
            })
            .collect();
        (answers, counts, other_replies)
    }
}

/// The first read: every answered call's reply, in request-line order, and the counts.
fn pair_all<E: Exchange>(
    mut exchange: E,
    mut lines: Lines,
    file: u32,
    name: &str,
) -> Result<(Vec<Answer>, Replies, u64), TraceError> {
    let mut scratch = ReadStats::default();
    let mut cx = Ctx {
        stats: &mut scratch,
        strict: false,
        file: name,
    };
    let mut pairer = Pairer::new(name);
    let mut msgs = Vec::new();
    while let Some((line, text)) = lines.next_line()? {
        let Ok(text) = text else { continue };
        let origin = Origin { file, line };
        msgs.clear();
        // Bad lines are the second read's to report.
        if exchange
            .messages(text, origin, true, &mut cx, &mut msgs)
            .is_err()
        {
            continue;
        }
        pairer.line(line, msgs.drain(..).map(Pair::from));
    }
    Ok(pairer.finish())
}

/// A recording with replies: its calls in file order, each with the reply the first read
/// found for it.
pub(crate) struct PairedSource<E: Exchange> {
    lines: Lines,
    file: u32,
    exchange: E,
    answers: std::iter::Peekable<std::vec::IntoIter<Answer>>,
    /// Counts of the first read, handed to the stats at the end of the second.
    counts: Option<(Replies, u64)>,
    /// The messages of the line being handed out, and the calls of it handed out so far.
    line_msgs: std::collections::VecDeque<Message<E::Key>>,
    line: u64,
    calls_in_line: u32,
    scratch: Vec<Message<E::Key>>,
}

impl<E: Exchange> PairedSource<E> {
    /// Pair the replies of `index_lines` (a first read of the file) now; `lines` is read as
    /// calls are asked for.
    pub(crate) fn new(
        fresh: impl Fn() -> E,
        lines: Lines,
        index_lines: Lines,
        file: u32,
        name: &str,
    ) -> Result<PairedSource<E>, TraceError> {
        let (answers, counts, other) = pair_all(fresh(), index_lines, file, name)?;
        Ok(PairedSource {
            lines,
            file,
            exchange: fresh(),
            answers: answers.into_iter().peekable(),
            counts: Some((counts, other)),
            line_msgs: std::collections::VecDeque::new(),
            line: 0,
            calls_in_line: 0,
            scratch: Vec::new(),
        })
    }
}

impl<E: Exchange> Source for PairedSource<E> {
    fn next(&mut self, cx: &mut Ctx<'_>) -> Result<Option<CallRecord>, TraceError> {
        loop {
            while let Some(msg) = self.line_msgs.pop_front() {
                let Message::Call { mut rec, .. } = msg else {
                    continue;
                };
                let slot = (self.line, self.calls_in_line);
                self.calls_in_line += 1;
                while self.answers.next_if(|a| a.slot < slot).is_some() {}
                if let Some(a) = self.answers.next_if(|a| a.slot == slot) {
                    rec.upstream = Some(a.outcome);
                    // Clocks of client and server may disagree: a reply never comes
                    // before its request.
                    rec.latency_ms = Some((a.ts.saturating_sub(rec.ts)).max(0) as f64 / 1e6);
                }
                return Ok(Some(*rec));
            }
            let Some((line, text)) = self.lines.next_line()? else {
                break;
            };
            let origin = Origin {
                file: self.file,
                line,
            };
            self.scratch.clear();
            let parsed = text.and_then(|t| {
                self.exchange
                    .messages(t, origin, false, cx, &mut self.scratch)
            });
            match parsed {
                Ok(()) => {
                    self.line = line;
                    self.calls_in_line = 0;
                    self.line_msgs.extend(self.scratch.drain(..));
                }
                Err(e) => cx.skip(line, e)?,
            }
        }
        if let Some((counts, other)) = self.counts.take() {
            if other > 0 {
                *cx.stats
                    .ignored
                    .entry("reply to another request".into())
                    .or_insert(0) += other;
            }
            match &mut cx.stats.replies {
                Some(r) => r.absorb(counts),
                None => cx.stats.replies = Some(counts),
            }
        }
        Ok(None)
    }
}

/// How a JSON-RPC reply ended: `error` → error, `result.isError: true` → tool error, else ok.
pub(crate) fn outcome_of(msg: &Map<String, Value>) -> Upstream {
    if msg.get("error").is_some_and(|e| !e.is_null()) {
        return Upstream::Error;
    }
    let is_error = msg
        .get("result")
        .and_then(|r| r.get("isError"))
        .and_then(Value::as_bool)
        .unwrap_or(false);
    if is_error {
        Upstream::ToolError
    } else {
        Upstream::Ok
    }
}
