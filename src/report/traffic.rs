//! `mcpsim stats`: what the traffic looks like per tool and per grant, counted in the same
//! calendar-aligned UTC windows a gateway counts limits in.
//!
//! Memory is bounded by the number of groups, not calls: each group keeps only the count of its
//! current minute, hour and day window and the peaks seen so far (calls arrive in time order).

use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};

use serde::Serialize;

use super::build::NONE_GRANT;
use super::document::{Block, Document, input_lines, plural, skipped_blocks, table};
use super::model::{InputSummary, format_ts};
use crate::engine::CallIds;
use crate::engine::window;
use crate::trace::{NO_SYM, Names, Nanos, Upstream};

/// The windows peaks are counted in, as (name, seconds).
pub const PEAK_WINDOWS: [(&str, u64); 3] = [("minute", 60), ("hour", 3600), ("day", 86400)];

/// Calls in the current fixed minute, hour and day window, and the busiest window of each so
/// far. Feed timestamps in non-decreasing order.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WindowPeaks {
    /// Per window length: (start of the current window, calls in it).
    current: [(Nanos, u64); 3],
    /// Per window length: (most calls in one window, start of the first window that had them).
    peak: [(u64, Nanos); 3],
}

impl WindowPeaks {
    /// Count one call at `ts`.
    pub fn add(&mut self, ts: Nanos) {
        for (i, (_, secs)) in PEAK_WINDOWS.iter().enumerate() {
            let start = window::fixed_window_start(ts, window::window_nanos(*secs));
            let cur = &mut self.current[i];
            if cur.1 == 0 || cur.0 != start {
                *cur = (start, 0);
            }
            cur.1 += 1;
            if cur.1 > self.peak[i].0 {
                self.peak[i] = (cur.1, start);
            }
        }
    }

    /// The most calls in one minute (`0`), hour (`1`) or day (`2`) window, and the start of the
    /// first window that had that many.
    pub fn peak(&self, window: usize) -> (u64, Nanos) {
        self.peak[window]
    }
}

/// An instant, printed and serialised as RFC 3339 UTC: a report of a million groups holds its
/// times as numbers, not as a million strings each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UtcTime(pub Nanos);

impl std::fmt::Display for UtcTime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&format_ts(self.0))
    }
}

impl Serialize for UtcTime {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// The busiest window of one length.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Peak {
    /// Calls in that window.
    pub calls: u64,
    /// Its start, RFC 3339 UTC (the first such window when several tie).
    pub window_start: UtcTime,
}

/// Traffic of one tool, one grant, or all calls.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TrafficStats {
    /// Tool, grant or server name (`(none)` for calls without a grant, `(all)` for the totals).
    pub name: String,
    /// The tool's server, when the calls came from several servers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
    /// Calls read.
    pub calls: u64,
    /// First call, RFC 3339 UTC.
    pub first_seen: UtcTime,
    /// Last call, RFC 3339 UTC.
    pub last_seen: UtcTime,
    /// Distinct session ids (calls without one are not counted).
    pub sessions: u64,
    /// Busiest calendar minute (UTC).
    pub peak_minute: Peak,
    /// Busiest calendar hour (UTC).
    pub peak_hour: Peak,
    /// Busiest calendar day (UTC).
    pub peak_day: Peak,
    /// Calls whose upstream answered with a JSON-RPC error.
    pub upstream_errors: u64,
    /// Calls whose upstream result had `isError: true`.
    pub tool_errors: u64,
}

/// The result of `mcpsim stats`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StatsReport {
    /// What was read.
    pub input: InputSummary,
    /// Every call.
    pub totals: TrafficStats,
    /// Per server, by name.
    pub per_server: Vec<TrafficStats>,
    /// Per tool, by server and name (a tool of one server is not added up with a same-named
    /// tool of another).
    pub per_tool: Vec<TrafficStats>,
    /// Per grant, by name.
    pub per_grant: Vec<TrafficStats>,
}

#[derive(Debug, Default)]
struct Group {
    calls: u64,
    first: Nanos,
    last: Nanos,
    /// Session numbers (see [`StatsBuilder::push`]).
    sessions: HashSet<u32>,
    peaks: WindowPeaks,
    upstream_errors: u64,
    tool_errors: u64,
}

impl Group {
    #[inline]
    fn add(&mut self, ts: Nanos, session: Option<u32>, upstream: Option<Upstream>) {
        if self.calls == 0 {
            self.first = ts;
        }
        self.calls += 1;
        self.last = ts;
        if let Some(session) = session {
            self.sessions.insert(session);
        }
        self.peaks.add(ts);
        match upstream {
            Some(Upstream::Error) => self.upstream_errors += 1,
            Some(Upstream::ToolError) => self.tool_errors += 1,
            Some(Upstream::Ok) | None => {}
        }
    }

    fn stats(&self, name: String) -> TrafficStats {
        let peak = |i| {
            let (calls, start) = self.peaks.peak(i);
            Peak {
                calls,
                window_start: UtcTime(start),
            }
        };
        TrafficStats {
            name,
            server: None,
            calls: self.calls,
            first_seen: UtcTime(self.first),
            last_seen: UtcTime(self.last),
            sessions: self.sessions.len() as u64,
            peak_minute: peak(0),
            peak_hour: peak(1),
            peak_day: peak(2),
            upstream_errors: self.upstream_errors,
            tool_errors: self.tool_errors,
        }
    }
}

/// Builds a [`StatsReport`] from calls in time order, names as ids.
#[derive(Debug, Default)]
pub struct StatsBuilder {
    totals: Group,
    per_server: Groups,
    /// By server id, then tool id.
    per_tool: Vec<Groups>,
    per_grant: Groups,
    no_grant: Group,
    /// Each session's number: groups count the distinct ones.
    sessions: HashMap<Box<str>, u32>,
    /// The last session numbered and its number: consecutive calls often share one.
    last_session: (String, Option<u32>),
}

impl StatsBuilder {
    /// An empty accumulator.
    pub fn new() -> StatsBuilder {
        StatsBuilder::default()
    }

    /// Count one call of session `session`; calls must come in time order.
    #[inline]
    pub fn push(
        &mut self,
        ts: Nanos,
        ids: CallIds,
        session: Option<&str>,
        upstream: Option<Upstream>,
    ) {
        let session = session.map(|s| self.session_number(s));
        self.totals.add(ts, session, upstream);
        self.per_server.at(ids.server).add(ts, session, upstream);
        let tools = match self.per_tool.get_mut(ids.server as usize) {
            Some(tools) => tools,
            None => {
                self.per_tool
                    .resize_with(ids.server as usize + 1, Groups::default);
                &mut self.per_tool[ids.server as usize]
            }
        };
        tools.at(ids.tool).add(ts, session, upstream);
        let grant = match ids.grant {
            NO_SYM => &mut self.no_grant,
            g => self.per_grant.at(g),
        };
        grant.add(ts, session, upstream);
    }

    /// The number of session `s`, given on first sight.
    fn session_number(&mut self, s: &str) -> u32 {
        let (last, last_n) = &mut self.last_session;
        if let Some(n) = last_n.filter(|_| last == s) {
            return n;
        }
        let n = match self.sessions.get(s) {
            Some(&n) => n,
            None => {
                let n = self.sessions.len() as u32;
                self.sessions.insert(s.into(), n);
                n
            }
        };
        last.clear();
        last.push_str(s);
        *last_n = Some(n);
        n
    }

    /// The report, groups sorted by name.
    pub fn finish(self, names: &Names, input: InputSummary) -> StatsReport {
        let named = |groups: Groups| -> Vec<TrafficStats> {
            let mut v: Vec<TrafficStats> = (groups.groups.into_iter())
                .map(|(id, g)| g.stats(names.get(id).to_string()))
                .collect();
            v.sort_by(|a, b| a.name.cmp(&b.name));
            v
        };
        let per_server = named(self.per_server);
        let several = per_server.len() > 1;
        let mut per_tool: Vec<TrafficStats> = Vec::new();
        for (server, tools) in self.per_tool.into_iter().enumerate() {
            for mut t in named(tools) {
                t.server = several.then(|| names.get(server as u32).to_string());
                per_tool.push(t);
            }
        }
        per_tool.sort_by(|a, b| (&a.server, &a.name).cmp(&(&b.server, &b.name)));
        let mut per_grant = named(self.per_grant);
        if self.no_grant.calls > 0 {
            per_grant.push(self.no_grant.stats(NONE_GRANT.to_owned()));
            per_grant.sort_by(|a, b| a.name.cmp(&b.name));
        }
        StatsReport {
            input,
            totals: self.totals.stats("(all)".to_owned()),
            per_server,
            per_tool,
            per_grant,
        }
    }
}

/// Groups keyed by name id, held densely: ids are shared by every kind of name (tools,
/// grants, sessions…), so a vector indexed by id would hold a group for each of them.
#[derive(Debug, Default)]
struct Groups {
    /// Per name id: its group's place in `groups`, plus one (0: none yet).
    slot: Vec<u32>,
    groups: Vec<(u32, Group)>,
}

impl Groups {
    /// The group of an id, made on demand.
    #[inline]
    fn at(&mut self, id: u32) -> &mut Group {
        let i = id as usize;
        if self.slot.len() <= i {
            self.slot.resize(i + 1, 0);
        }
        if self.slot[i] == 0 {
            self.groups.push((id, Group::default()));
            self.slot[i] = self.groups.len() as u32;
        }
        &mut self.groups[self.slot[i] as usize - 1].1
    }
}

fn peak_cell(p: &Peak) -> String {
    format!("{} ({})", p.calls, p.window_start)
}

fn stats_rows(groups: &[TrafficStats]) -> Vec<Vec<String>> {
    let by_server = groups.iter().any(|g| g.server.is_some());
    groups
        .iter()
        .map(|g| {
            let server = by_server.then(|| g.server.clone().unwrap_or_default());
            server
                .into_iter()
                .chain([
                    g.name.clone(),
                    g.calls.to_string(),
                    g.first_seen.to_string(),
                    g.last_seen.to_string(),
                    g.sessions.to_string(),
                    peak_cell(&g.peak_minute),
                    peak_cell(&g.peak_hour),
                    peak_cell(&g.peak_day),
                    g.upstream_errors.to_string(),
                    g.tool_errors.to_string(),
                ])
                .collect()
        })
        .collect()
}

/// Lay out a stats report.
pub fn document(r: &StatsReport) -> Document {
    let mut b = Vec::new();
    input_lines(&r.input, false, &mut b);
    let header = [
        "tool",
        "calls",
        "first seen",
        "last seen",
        "sessions",
        "peak/minute",
        "peak/hour",
        "peak/day",
        "upstream errors",
        "tool errors",
    ];
    if r.totals.calls > 0 {
        b.push(Block::Heading("All calls".to_owned()));
        let mut total_header = header;
        total_header[0] = "calls of";
        b.push(table(
            &total_header,
            stats_rows(std::slice::from_ref(&r.totals)),
        ));
        if r.per_server.len() > 1 {
            b.push(Block::Heading("Per server".to_owned()));
            let mut server_header = header;
            server_header[0] = "server";
            b.push(table(&server_header, stats_rows(&r.per_server)));
        }
        b.push(Block::Heading("Per tool".to_owned()));
        let mut tool_header = header.to_vec();
        if r.per_tool.iter().any(|t| t.server.is_some()) {
            tool_header.insert(0, "server");
        }
        b.push(table(&tool_header, stats_rows(&r.per_tool)));
        b.push(Block::Heading("Per grant".to_owned()));
        let mut grant_header = header;
        grant_header[0] = "grant";
        b.push(table(&grant_header, stats_rows(&r.per_grant)));
        b.push(Block::Line(
            "Peaks count calls in calendar-aligned UTC windows, as the gateway counts limits; the time is the window's start.".to_owned(),
        ));
    }
    skipped_blocks(&r.input, &mut b);
    Document {
        title: format!(
            "mcpsim stats: {}, {}, {}",
            plural(r.totals.calls, "call", "calls"),
            plural(r.per_tool.len() as u64, "tool", "tools"),
            plural(r.per_grant.len() as u64, "grant", "grants"),
        ),
        blocks: b,
    }
}

#[cfg(test)]
mod tests {
    use super::WindowPeaks;

    const MIN: i64 = 60_000_000_000;

    #[test]
    fn peaks_use_half_open_calendar_windows() {
        let mut p = WindowPeaks::default();
        // 2026-08-01T00:00:00Z, then calls straddling the 00:01 boundary and the day boundary.
        let day = 1_785_542_400 * 1_000_000_000;
        for ts in [
            day + MIN - 1,
            day + MIN - 1,
            day + MIN,
            day + MIN + 1,
            day + 2 * MIN - 1,
        ] {
            p.add(ts);
        }
        assert_eq!(p.peak(0), (3, day + MIN));
        assert_eq!(p.peak(1), (5, day));
        p.add(day + 1440 * MIN);
        assert_eq!(p.peak(2), (5, day));
    }

    #[test]
    fn ties_keep_the_first_window() {
        let mut p = WindowPeaks::default();
        for ts in [0, 1, MIN, MIN + 1] {
            p.add(ts);
        }
        assert_eq!(p.peak(0), (2, 0));
    }

    #[test]
    fn times_before_the_epoch_align_downwards() {
        let mut p = WindowPeaks::default();
        p.add(-MIN);
        p.add(-1);
        assert_eq!(p.peak(0), (2, -MIN));
    }
}
