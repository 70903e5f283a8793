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

use std::collections::HashMap;
use std::hash::Hash;

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
pub(crate) trait Exchange {
    type Key: Eq + Hash;
    /// What `text` (the line numbered `origin.line`) says. Under `index` the call's arguments
    /// are not needed.
    fn message(
        &mut self,
        text: &str,
        origin: Origin,
        index: bool,
        cx: &mut Ctx<'_>,
    ) -> Result<Message<Self::Key>, LineError>;
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

/// A reply found by the first read, by the line of its request.
struct Answer {
    line: u64,
    ts: Nanos,
    outcome: Upstream,
}

/// A request waiting for its reply in the first read.
enum Waiting {
    Call(u64),
    Other,
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
    let mut waiting: HashMap<E::Key, Waiting> = HashMap::new();
    let mut answers = Vec::new();
    let mut counts = Replies::default();
    let mut unanswered: Vec<Skipped> = Vec::new();
    let mut other_replies = 0;
    let example = |line: u64, reason: String| Skipped {
        file: name.to_string(),
        line,
        reason,
    };
    while let Some((line, text)) = lines.next_line()? {
        let Ok(text) = text else { continue };
        let origin = Origin { file, line };
        // Bad lines are the second read's to report.
        let Ok(msg) = exchange.message(text, origin, true, &mut cx) else {
            continue;
        };
        let (key, now) = match msg {
            Message::Call { key: Some(key), .. } => (key, Waiting::Call(line)),
            Message::Request(key) => (key, Waiting::Other),
            Message::Reply { key, ts, outcome } => {
                match waiting.remove(&key) {
                    Some(Waiting::Call(request)) => {
                        counts.paired += 1;
                        answers.push(Answer {
                            line: request,
                            ts,
                            outcome,
                        });
                    }
                    Some(Waiting::Other) => other_replies += 1,
                    None => {
                        counts.replies_without_request += 1;
                        if counts.replies_without_request <= EXAMPLES_PER_KIND as u64 {
                            counts.examples.push(example(
                                line,
                                "reply without a request: no request waits for its id".into(),
                            ));
                        }
                    }
                }
                continue;
            }
            Message::Call { key: None, .. } | Message::Other => continue,
        };
        if let Some(Waiting::Call(old)) = waiting.insert(key, now) {
            counts.requests_without_reply += 1;
            unanswered.push(example(
                old,
                format!("request without a reply: its id was used again at line {line}"),
            ));
            unanswered.sort_by_key(|s| s.line);
            unanswered.truncate(EXAMPLES_PER_KIND);
        }
    }
    let mut left: Vec<u64> = waiting
        .into_values()
        .filter_map(|w| match w {
            Waiting::Call(line) => Some(line),
            Waiting::Other => None,
        })
        .collect();
    counts.requests_without_reply += left.len() as u64;
    left.sort_unstable();
    unanswered.extend(
        left.into_iter()
            .take(EXAMPLES_PER_KIND)
            .map(|l| example(l, "request without a reply in the file".into())),
    );
    unanswered.sort_by_key(|s| s.line);
    unanswered.truncate(EXAMPLES_PER_KIND);
    counts.examples.extend(unanswered);
    counts.examples.sort_by_key(|s| s.line);
    answers.sort_unstable_by_key(|a| a.line);
    Ok((answers, counts, other_replies))
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
        })
    }
}

impl<E: Exchange> Source for PairedSource<E> {
    fn next(&mut self, cx: &mut Ctx<'_>) -> Result<Option<CallRecord>, TraceError> {
        while let Some((line, text)) = self.lines.next_line()? {
            let origin = Origin {
                file: self.file,
                line,
            };
            let msg = text.and_then(|t| self.exchange.message(t, origin, false, cx));
            match msg {
                Ok(Message::Call { mut rec, .. }) => {
                    while self.answers.next_if(|a| a.line < line).is_some() {}
                    if let Some(a) = self.answers.next_if(|a| a.line == line) {
                        rec.upstream = Some(a.outcome);
                        // Clocks of client and server may disagree: a reply never comes
                        // before its request.
                        rec.latency_ms = Some((a.ts.saturating_sub(rec.ts)).max(0) as f64 / 1e6);
                    }
                    return Ok(Some(*rec));
                }
                Ok(_) => {}
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
