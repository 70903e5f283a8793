//! Trace readers, pairing, merging, bad input and convert, against the fixtures in
//! `fixtures/traces/` (see `docs/trace-formats.md` for what each one holds).

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::sync::Arc;

use mcpsim::trace::{
    Args, CallRecord, Format, Origin, ReadOptions, ReadStats, Recorded, RecordedDecision, Trace,
    TraceError, Upstream, parse_ts_str, write_csv, write_jsonl, write_parquet,
};
use serde_json::json;

pub(crate) fn fixture(name: &str) -> String {
    format!("{}/fixtures/traces/{name}", env!("CARGO_MANIFEST_DIR"))
}

pub(crate) fn read_with(inputs: &[String], opts: &ReadOptions) -> (Vec<CallRecord>, ReadStats) {
    let mut t = Trace::open(inputs, opts).unwrap();
    let mut out = Vec::new();
    while let Some(r) = t.next_record().unwrap() {
        out.push(r);
    }
    (out, t.stats().clone())
}

pub(crate) fn read(inputs: &[&str]) -> (Vec<CallRecord>, ReadStats) {
    let inputs: Vec<String> = inputs.iter().map(|s| s.to_string()).collect();
    read_with(&inputs, &ReadOptions::default())
}

pub(crate) fn ts(s: &str) -> i64 {
    parse_ts_str(s).unwrap()
}

pub(crate) fn sym(s: &str) -> Arc<str> {
    Arc::from(s)
}

/// (tool, session, id, upstream, latency) — the pairing-relevant view of a record.
type Paired = (
    String,
    Option<String>,
    Option<String>,
    Option<Upstream>,
    Option<f64>,
);

fn paired(recs: &[CallRecord]) -> Vec<Paired> {
    recs.iter()
        .map(|r| {
            (
                r.tool.to_string(),
                r.session.as_deref().map(str::to_string),
                r.id.clone(),
                r.upstream,
                r.latency_ms.map(|l| (l * 1000.0).round() / 1000.0),
            )
        })
        .collect()
}

fn p(
    tool: &str,
    session: Option<&str>,
    id: &str,
    up: Option<Upstream>,
    lat: Option<f64>,
) -> Paired {
    (
        tool.to_string(),
        session.map(str::to_string),
        Some(id.to_string()),
        up,
        lat,
    )
}

pub(crate) fn counts(pairs: &[(&str, u64)]) -> BTreeMap<String, u64> {
    pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
}

pub(crate) fn without_origin(recs: &[CallRecord]) -> Vec<CallRecord> {
    recs.iter()
        .cloned()
        .map(|mut r| {
            r.origin = Origin::default();
            r
        })
        .collect()
}

#[test]
fn jsonl_fixture_reads_into_expected_records() {
    let (recs, stats) = read(&[&fixture("fleet.jsonl")]);
    assert_eq!(recs.len(), 45);
    assert_eq!(stats.calls, 45);
    assert_eq!(stats.skipped, 0);
    assert_eq!(stats.out_of_order, 0);
    assert_eq!(stats.per_file[0].1, Format::Jsonl);
    assert_eq!(stats.per_file[0].2, 45);
    assert_eq!(
        recs[2],
        CallRecord {
            ts: ts("2026-08-01T09:00:10Z"),
            server: sym("fortios"),
            grant: Some(sym("vpn-bot")),
            session: Some(sym("vs-1")),
            tool: sym("vpn_ipsec_phase2_create"),
            args: Args::Values(
                json!({"name": "branch-12-p2", "phase1name": "branch-12",
                       "src_subnet": "10.12.0.0/24", "dst_subnet": "10.0.0.0/16",
                       "proposal": "aes256-sha256"})
                .as_object()
                .unwrap()
                .clone()
            ),
            id: Some("r-003".into()),
            recorded: Some(Recorded {
                decision: Some(RecordedDecision::Allow),
                ..Recorded::default()
            }),
            upstream: Some(Upstream::Ok),
            latency_ms: Some(340.0),
            origin: Origin { file: 0, line: 3 },
        }
    );
    // The burst: 36 firewall_policy_list calls in 36 seconds, the last 6 recorded as throttled.
    let burst: Vec<&CallRecord> = recs
        .iter()
        .filter(|r| &*r.tool == "firewall_policy_list" && r.session.as_deref() == Some("as-1"))
        .collect();
    assert_eq!(burst.len(), 36);
    let throttled = burst
        .iter()
        .filter(|r| {
            r.recorded.as_ref().and_then(|c| c.decision) == Some(RecordedDecision::Throttle)
        })
        .count();
    assert_eq!(throttled, 6);
    assert_eq!(
        burst[35]
            .recorded
            .as_ref()
            .unwrap()
            .policy_version
            .as_deref(),
        Some("v7")
    );
    assert_eq!(burst[35].upstream, None);
    // Names are interned: every record of the file shares one `fortios`.
    assert!(Arc::ptr_eq(&recs[0].server, &recs[44].server));
    // arg_keys only → Keys; neither → Unrecorded.
    assert_eq!(recs[43].args, Args::Keys(vec!["vdom".into()]));
    assert_eq!(recs[43].upstream, Some(Upstream::Error));
    assert_eq!(recs[42].args, Args::Keys(vec![]));
    assert_eq!(recs[44].args, Args::Unrecorded);
    assert_eq!(recs[3].upstream, Some(Upstream::ToolError));
}

#[test]
fn csv_fixture_reads_with_offsets_epochs_and_multiline_fields() {
    let (recs, stats) = read(&[&fixture("fleet.csv")]);
    assert_eq!(stats.skipped, 0, "{:?}", stats.skipped_examples);
    assert_eq!(stats.per_file[0].1, Format::Csv);
    let ids: Vec<&str> = recs.iter().map(|r| r.id.as_deref().unwrap()).collect();
    assert_eq!(ids, ["c-001", "c-002", "c-003", "c-004", "c-005", "c-006"]);
    // +02:00 offset → UTC; epoch seconds → ns.
    assert_eq!(recs[1].ts, ts("2026-08-01T09:00:03Z"));
    assert_eq!(recs[3].ts, ts("2026-08-01T09:00:05Z"));
    // The quoted newline in c-004 makes it span lines 5–6; later rows keep their real lines.
    let lines: Vec<u64> = recs.iter().map(|r| r.origin.line).collect();
    assert_eq!(lines, [2, 3, 4, 5, 7, 8]);
    assert_eq!(
        recs[3].recorded,
        Some(Recorded {
            decision: Some(RecordedDecision::Deny),
            rule: Some("/tools/firewall_policy_list/hidden".into()),
            message: Some("tool hidden,\nfor now".into()),
            policy_version: Some("v7".into()),
        })
    );
    assert_eq!(recs[0].args, Args::Values(serde_json::Map::new()));
    assert_eq!(recs[0].latency_ms, Some(80.5));
    assert_eq!(recs[2].args, Args::Keys(vec!["filter".into()]));
    assert_eq!(recs[4].grant, None);
    assert_eq!(recs[4].upstream, Some(Upstream::ToolError));
    assert_eq!(
        recs[4].args.values().unwrap()["comments"],
        json!("line one\nline two")
    );
    assert_eq!(recs[5].args, Args::Unrecorded);
    assert_eq!(recs[5].recorded, None);
}

#[test]
fn parquet_fixture_holds_the_jsonl_fleet() {
    let path = fixture("fleet.parquet");
    if std::env::var_os("MCPSIM_REGENERATE_FIXTURES").is_some() {
        let (recs, _) = read(&[&fixture("fleet.jsonl")]);
        let mut f = std::fs::File::create(&path).unwrap();
        write_parquet(&recs, &mut f).unwrap();
    }
    let (from_parquet, stats) = read(&[&path]);
    assert_eq!(stats.per_file[0].1, Format::Parquet);
    let (from_jsonl, _) = read(&[&fixture("fleet.jsonl")]);
    assert_eq!(without_origin(&from_parquet), without_origin(&from_jsonl));
    // Row numbers stand in for lines.
    assert_eq!(from_parquet[44].origin, Origin { file: 0, line: 45 });
}

/// A recording concatenated session by session, with a reply two hours after its request, the
/// same session and id on two servers, and a reply nobody asked for: every reply pairs with its
/// request by (server, session, id), whatever the distance in lines and time.
#[test]
fn jsonrpc_pairs_strictly_by_key_whatever_the_lag_and_the_order() {
    let (recs, stats) = read(&[&fixture("jsonrpc-concatenated.jsonl")]);
    use Upstream::*;
    let got: Vec<(String, String, Option<Upstream>, Option<f64>)> = recs
        .iter()
        .map(|r| {
            (
                r.server.to_string(),
                format!(
                    "{}#{}",
                    r.session.as_deref().unwrap(),
                    r.id.as_deref().unwrap()
                ),
                r.upstream,
                r.latency_ms,
            )
        })
        .collect();
    let row = |server: &str, key: &str, up, lat| (server.to_string(), key.to_string(), up, lat);
    assert_eq!(
        got,
        [
            row("postgres-a", "s1#1", Some(Ok), Some(200.0)),
            row("postgres-b", "s1#1", Some(Error), Some(500.0)),
            row("postgres-a", "s2#1", Some(Error), Some(300.0)),
            row("postgres-a", "s2#2", Some(Ok), Some(100.0)),
            row("postgres-a", "s2#3", None, None),
            row("postgres-a", "s1#2", Some(ToolError), Some(7_200_000.0)),
            row("postgres-a", "s1#3", Some(Ok), Some(50.0)),
            row("postgres-a", "s1#4", Some(Ok), Some(100.0)),
        ]
    );
    let replies = stats.replies.clone().unwrap();
    assert_eq!(
        (
            replies.paired,
            replies.requests_without_reply,
            replies.replies_without_request
        ),
        (7, 1, 1)
    );
    let file = fixture("jsonrpc-concatenated.jsonl");
    assert_eq!(
        replies.warning_lines(),
        [
            "1 request without a reply, 1 reply without a request (7 paired); their calls have \
             no upstream outcome"
                .to_string(),
            format!("  {file}:15: reply without a request: no request waits for its id"),
            format!("  {file}:16: request without a reply in the file"),
        ]
    );

    // The JSON report carries the same counts and examples.
    let (code, out, _) = crate::cli::run(&[
        "simulate",
        "--policy",
        &format!(
            "{}/fixtures/policies/baseline.json",
            env!("CARGO_MANIFEST_DIR")
        ),
        &file,
        "--format",
        "json",
    ]);
    assert_eq!(code, 0);
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    let r = &report["input"]["replies"];
    assert_eq!(
        (
            &r["paired"],
            &r["requests_without_reply"],
            &r["replies_without_request"]
        ),
        (&json!(7), &json!(1), &json!(1))
    );
    assert_eq!(r["examples"][1]["line"], json!(16));
}

#[test]
fn jsonrpc_pairs_replies_by_session_and_id() {
    let (recs, stats) = read(&[&fixture("jsonrpc.jsonl")]);
    use Upstream::*;
    assert_eq!(
        paired(&recs),
        [
            p("system_status_get", Some("s1"), "2", Some(Ok), Some(85.0)),
            p(
                "vpn_ipsec_phase1_list",
                Some("s2"),
                "2",
                Some(Ok),
                Some(120.0)
            ),
            p(
                "vpn_ipsec_phase2_create",
                Some("s2"),
                "3",
                Some(Ok),
                Some(340.0)
            ),
            p(
                "vpn_ipsec_phase2_create",
                Some("s2"),
                "req-4",
                Some(ToolError),
                Some(95.0)
            ),
            p(
                "firewall_policy_create",
                Some("s1"),
                "3",
                Some(Error),
                Some(5000.0)
            ),
            p(
                "vpn_ipsec_phase1_list",
                Some("s2"),
                "3",
                Some(Ok),
                Some(30.0)
            ),
            // The reply never came.
            p("firewall_policy_list", Some("s1"), "4", None, None),
            // Bare message with `timestamp`, no envelope.
            p("system_status_get", Some("s3"), "5", None, None),
        ]
    );
    assert_eq!(recs[0].grant.as_deref(), Some("netops-bot"));
    assert_eq!(&*recs[0].server, "fortios");
    assert_eq!(&*recs[7].server, "unknown");
    assert_eq!(recs[7].args, Args::Values(serde_json::Map::new()));
    assert_eq!(
        stats.ignored,
        counts(&[
            ("method initialize", 2),
            ("method notifications/cancelled", 1),
            ("method notifications/initialized", 1),
            ("method tools/list", 1),
            ("reply to another request", 3),
        ])
    );
    assert_eq!(stats.skipped, 0);
    let replies = stats.replies.unwrap();
    assert_eq!(
        (
            replies.paired,
            replies.requests_without_reply,
            replies.replies_without_request
        ),
        (6, 2, 1)
    );
    let examples: Vec<(u64, &str)> = replies
        .examples
        .iter()
        .map(|e| (e.line, e.reason.as_str()))
        .collect();
    assert_eq!(
        examples,
        [
            (20, "request without a reply in the file"),
            (22, "reply without a request: no request waits for its id"),
            (23, "request without a reply in the file"),
        ]
    );
}

/// A JSON-RPC recording's line at 10:00:00 plus `ms`, in direction `dir`, of server `files`
/// and session `s1`, whose message holds `msg`'s members.
fn rpc_line(ms: u32, dir: &str, msg: &str) -> String {
    format!(
        r#"{{"ts":"2026-08-01T10:00:00.{ms:03}Z","dir":"{dir}","server":"files","session":"s1","msg":{{"jsonrpc":"2.0",{msg}}}}}"#
    )
}

/// The members of a `read_file` call's message with id `id` (its JSON spelling).
fn rpc_call(id: &str) -> String {
    format!(
        r#""id":{id},"method":"tools/call","params":{{"name":"read_file","arguments":{{"path":"/a"}}}}"#
    )
}

/// The server numbers its own requests (sampling, roots, elicitation) apart from the client's:
/// where the envelope gives the direction, a server's request and the client's reply to it
/// leave the client's call with the same id waiting for its own reply.
#[test]
fn jsonrpc_server_requests_and_client_replies_keep_apart_from_calls() {
    // `c2s`/`s2c`, and the spellings of other recorders.
    for (c2s, s2c) in [("c2s", "s2c"), ("client->server", "server->client")] {
        server_requests_keep_apart(c2s, s2c);
    }
}

fn server_requests_keep_apart(c2s: &str, s2c: &str) {
    let dir = tempfile::tempdir().unwrap();
    let (line, call) = (rpc_line, rpc_call);
    let body = [
        line(0, c2s, &call("7")),
        line(100, s2c, r#""id":7,"method":"sampling/createMessage","params":{}"#),
        line(150, s2c, r#""method":"notifications/progress","params":{"progress":1}"#),
        line(200, c2s, r#""id":7,"error":{"code":-1,"message":"user rejected"}"#),
        line(300, c2s, &call(r#""r1""#)),
        line(400, s2c, r#""id":"r1","method":"roots/list""#),
        line(500, c2s, r#""id":"r1","result":{"roots":[]}"#),
        line(900, s2c, r#""id":7,"result":{"content":[],"isError":false}"#),
        line(950, s2c, r#""id":"r1","result":{"content":[],"isError":true}"#),
        // Without a direction, a reply is the client's call's, as before.
        r#"{"ts":"2026-08-01T10:00:01Z","server":"files","session":"s1","msg":{"jsonrpc":"2.0","id":8,"method":"tools/call","params":{"name":"read_file"}}}"#.to_owned(),
        r#"{"ts":"2026-08-01T10:00:01.250Z","server":"files","session":"s1","msg":{"jsonrpc":"2.0","id":8,"error":{"code":-32000}}}"#.to_owned(),
    ]
    .join("\n");
    let f = write_file(dir.path(), "directions.jsonl", &body);
    let (recs, stats) = read(&[&f]);
    use Upstream::*;
    assert_eq!(
        paired(&recs),
        [
            p("read_file", Some("s1"), "7", Some(Ok), Some(900.0)),
            p("read_file", Some("s1"), "r1", Some(ToolError), Some(650.0)),
            p("read_file", Some("s1"), "8", Some(Error), Some(250.0)),
        ]
    );
    assert_eq!(
        stats.ignored,
        counts(&[
            ("client reply", 2),
            ("method notifications/progress", 1),
            ("server request roots/list", 1),
            ("server request sampling/createMessage", 1),
        ])
    );
    assert_eq!(reply_counts(&stats), (3, 0, 0));
}

/// An error reply with a null id is JSON-RPC's answer to a message the server could not read:
/// it answers no request one can name, so it is counted, not a bad record (`--strict` reads
/// on), and the call it may answer stays without a reply. A result with a null id is no
/// valid reply: a bad record.
#[test]
fn jsonrpc_error_replies_with_a_null_id_are_counted_not_bad() {
    let dir = tempfile::tempdir().unwrap();
    let body = [
        rpc_line(0, "c2s", &rpc_call("7")),
        rpc_line(
            100,
            "s2c",
            r#""id":null,"error":{"code":-32700,"message":"Parse error"}"#,
        ),
        rpc_line(200, "s2c", r#""id":null,"result":{}"#),
    ]
    .join("\n");
    let f = write_file(dir.path(), "null-id.jsonl", &body);
    let (recs, stats) = read(&[&f]);
    assert_eq!(paired(&recs), [p("read_file", Some("s1"), "7", None, None)]);
    assert_eq!(
        stats.ignored,
        counts(&[(
            "error reply with a null id (to a message the server could not read)",
            1
        )])
    );
    assert_eq!(reply_counts(&stats), (0, 1, 0));
    let skipped: Vec<_> = (stats.skipped_examples.iter())
        .map(|s| (s.line, s.reason.as_str()))
        .collect();
    assert_eq!(skipped, [(3, "field `msg.id`: missing")]);
}

/// Other recorders' lines read as this format's envelope: the MCP gateway of GitHub's agentic
/// workflows (`payload`, `server_id`, `direction` `OUT`/`IN`; lines of other events counted)
/// and MCPSpy (the message as JSON text in `raw`, the session an object, the server the
/// process written to).
#[test]
fn jsonrpc_lines_of_other_recorders_read_as_recordings() {
    let dir = tempfile::tempdir().unwrap();
    let gateway = [
        r#"{"timestamp":"2026-08-15T23:48:42.233Z","event":"rpc_request","_schema":"rpc-message/v2","direction":"OUT","server_id":"github","payload":{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"issue_read","arguments":{"number":1}}}}"#,
        r#"{"timestamp":"2026-08-15T23:48:42.240Z","event":"difc_filtered","_schema":"rpc-message/v2","server_id":"github","payload":{"reason":"secret"}}"#,
        r#"{"timestamp":"2026-08-15T23:48:42.259Z","event":"rpc_response","_schema":"rpc-message/v2","direction":"IN","server_id":"github","payload":{"jsonrpc":"2.0","id":1,"result":{"isError":true,"content":[{"type":"text","text":"denied"}]}}}"#,
    ]
    .join("\n");
    let spy = [
        r#"{"timestamp":"2025-09-01T12:34:56.789123456+03:00","transport_type":"stdio","stdio_transport":{"from_pid":12345,"from_comm":"claude","to_pid":12346,"to_comm":"python"},"session":{"internal_id":"3f1c2a9e-1d2b-4c3d-8e4f-5a6b7c8d9e0f"},"type":"request","id":7,"method":"tools/call","params":{"arguments":{"city":"New York"},"name":"get_weather"},"error":{},"raw":"{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"tools/call\",\"params\":{\"name\":\"get_weather\",\"arguments\":{\"city\":\"New York\"}}}"}"#,
        r#"{"timestamp":"2025-09-01T12:34:56.890123456+03:00","transport_type":"stdio","stdio_transport":{"from_pid":12346,"from_comm":"python","to_pid":12345,"to_comm":"claude"},"session":{"internal_id":"3f1c2a9e-1d2b-4c3d-8e4f-5a6b7c8d9e0f"},"type":"response","id":7,"result":{"content":[{"text":"sunny","type":"text"}],"isError":false},"error":{},"request":{"type":"request","id":7,"method":"tools/call","params":{"arguments":{"city":"New York"},"name":"get_weather"},"error":{}},"raw":"{\"jsonrpc\":\"2.0\",\"id\":7,\"result\":{\"content\":[{\"type\":\"text\",\"text\":\"sunny\"}],\"isError\":false}}"}"#,
    ]
    .join("\n");
    let g = write_file(dir.path(), "rpc-messages.jsonl", &gateway);
    let m = write_file(dir.path(), "mcpspy.jsonl", &spy);
    let (recs, stats) = read(&[&g, &m]);
    assert_eq!(
        stats.per_file.iter().map(|p| p.1).collect::<Vec<_>>(),
        [Format::JsonRpc, Format::JsonRpc]
    );
    use Upstream::*;
    let got: Vec<_> = (recs.iter())
        .map(|r| {
            (
                r.server.to_string(),
                r.session.as_ref().map(|s| s.to_string()),
                r.tool.to_string(),
                r.upstream,
                r.latency_ms.map(|l| l.round()),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (
                "python".to_string(),
                Some("3f1c2a9e-1d2b-4c3d-8e4f-5a6b7c8d9e0f".to_string()),
                "get_weather".to_string(),
                Some(Ok),
                Some(101.0)
            ),
            (
                "github".to_string(),
                None,
                "issue_read".to_string(),
                Some(ToolError),
                Some(26.0)
            ),
        ]
    );
    assert_eq!(recs[0].ts, ts("2025-09-01T09:34:56.789123456Z"));
    assert_eq!(stats.ignored, counts(&[("event difc_filtered", 1)]));
    assert_eq!(stats.skipped, 0);
}

/// A request the client cancels (`notifications/cancelled`) and no reply answers is counted
/// as cancelled among the requests without a reply; one answered after its cancel pairs as any
/// other. A cancel names a request by the id's JSON spelling, and the server's own cancels
/// (`dir` `s2c`) cancel nothing of the client's.
#[test]
fn jsonrpc_cancelled_requests_are_counted_and_late_replies_still_pair() {
    let dir = tempfile::tempdir().unwrap();
    let (line, call) = (rpc_line, rpc_call);
    let cancel = |id: &str| {
        format!(
            r#""method":"notifications/cancelled","params":{{"requestId":{id},"reason":"user stopped"}}"#
        )
    };
    let body = [
        line(0, "c2s", &call("1")),
        line(100, "c2s", &call("2")),
        line(200, "c2s", &cancel("1")),
        line(300, "c2s", &cancel("2")),
        line(400, "s2c", r#""id":2,"result":{"content":[]}"#),
        line(500, "c2s", &cancel("99")),
        line(550, "s2c", &cancel("1")),
        line(600, "c2s", &call(r#""a""#)),
        line(700, "c2s", &cancel(r#""a""#)),
        // Cancels 1, not this "1".
        line(800, "c2s", &call(r#""1""#)),
    ]
    .join("\n");
    let f = write_file(dir.path(), "cancelled.jsonl", &body);
    let (recs, stats) = read(&[&f]);
    assert_eq!(
        paired(&recs),
        [
            p("read_file", Some("s1"), "1", None, None),
            p(
                "read_file",
                Some("s1"),
                "2",
                Some(Upstream::Ok),
                Some(300.0)
            ),
            p("read_file", Some("s1"), "a", None, None),
            p("read_file", Some("s1"), "1", None, None),
        ]
    );
    assert_eq!(
        stats.ignored,
        counts(&[("method notifications/cancelled", 5)])
    );
    let replies = stats.replies.clone().unwrap();
    assert_eq!(
        (
            replies.paired,
            replies.requests_without_reply,
            replies.cancelled,
            replies.replies_without_request
        ),
        (1, 3, 2, 0)
    );
    let reasons: Vec<_> = (replies.examples.iter())
        .map(|e| (e.line, e.reason.as_str()))
        .collect();
    assert_eq!(
        reasons,
        [
            (
                1,
                "request without a reply in the file (cancelled by the client at line 3)"
            ),
            (
                8,
                "request without a reply in the file (cancelled by the client at line 9)"
            ),
            (10, "request without a reply in the file"),
        ]
    );
    assert_eq!(
        replies.warning_lines()[0],
        "3 requests without a reply (2 cancelled by the client), 0 replies without a request \
         (1 paired); their calls have no upstream outcome"
    );

    // The reports say so, in text and in JSON.
    let policy = format!(
        "{}/fixtures/policies/postgres.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let run = |format: &str| {
        let out = std::process::Command::new(insta_cmd::get_cargo_bin("mcpsim"))
            .args(["simulate", "--policy", &policy, "--format", format, &f])
            .output()
            .unwrap();
        String::from_utf8(out.stdout).unwrap()
    };
    let text = run("markdown");
    assert!(
        text.contains(
            "Replies: 1 paired, 3 requests without a reply (2 cancelled by the client), \
             0 replies without a request"
        ),
        "{text}"
    );
    let json: serde_json::Value = serde_json::from_str(&run("json")).unwrap();
    assert_eq!(json["input"]["replies"]["cancelled"], 2);
    assert_eq!(json["input"]["replies"]["requests_without_reply"], 3);
}

/// The spec's own example: the reply's envelope names no server. Such a reply pairs by
/// (session, id), with the earliest request waiting under them whatever its server; a reply
/// that names a server pairs with that server's request only. A reply that leaves out the
/// session pairs by what it names too.
#[test]
fn jsonrpc_replies_that_leave_out_server_or_session_pair_by_what_they_name() {
    let dir = tempfile::tempdir().unwrap();
    let call = |ms: u32, server: &str, session: &str, id: u32| {
        format!(
            r#"{{"ts":"2026-08-01T10:00:00.{ms:03}Z","dir":"c2s","server":"{server}","session":"{session}","msg":{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"name":"delete_file","arguments":{{"path":"/tmp/a"}}}}}}}}"#
        )
    };
    let reply = |ms: u32, server: Option<&str>, session: &str, id: u32, result: &str| {
        let server = server.map_or(String::new(), |s| format!(r#""server":"{s}","#));
        let session = match session {
            "" => String::new(),
            s => format!(r#""session":"{s}","#),
        };
        format!(
            r#"{{"ts":"2026-08-01T10:00:00.{ms:03}Z","dir":"s2c",{server}{session}"msg":{{"jsonrpc":"2.0","id":{id},"result":{result}}}}}"#
        )
    };
    let body = [
        // As in the spec: the reply has no `server`.
        call(120, "files", "s1", 7),
        reply(300, None, "s1", 7, r#"{"content":[],"isError":true}"#),
        // Two servers, one session, one id: replies without a server answer the earlier first.
        call(400, "a", "s2", 1),
        call(410, "b", "s2", 1),
        reply(500, None, "s2", 1, "{}"),
        reply(600, None, "s2", 1, r#"{"isError":true}"#),
        // A reply naming another server answers nothing; one naming none, then, the call.
        call(700, "files", "s3", 2),
        reply(750, Some("other"), "s3", 2, "{}"),
        reply(800, None, "s3", 2, "{}"),
        // Nothing waits under this session and id.
        reply(900, None, "s1", 7, "{}"),
        // Replies without a session: by server and id, then by id alone.
        call(910, "files", "s4", 5),
        call(920, "files", "s5", 6),
        reply(930, Some("files"), "", 5, r#"{"isError":true}"#),
        reply(980, None, "", 6, "{}"),
    ]
    .join("\n");
    let f = write_file(dir.path(), "spec.jsonl", &body);
    let (recs, stats) = read(&[&f]);
    use Upstream::*;
    let got: Vec<_> = recs
        .iter()
        .map(|r| (&*r.server, r.upstream, r.latency_ms))
        .collect();
    assert_eq!(
        got,
        [
            ("files", Some(ToolError), Some(180.0)),
            ("a", Some(Ok), Some(100.0)),
            ("b", Some(ToolError), Some(190.0)),
            ("files", Some(Ok), Some(100.0)),
            ("files", Some(ToolError), Some(20.0)),
            ("files", Some(Ok), Some(60.0)),
        ]
    );
    let replies = stats.replies.unwrap();
    let lines: Vec<u64> = replies.examples.iter().map(|e| e.line).collect();
    assert_eq!(
        (
            replies.paired,
            replies.requests_without_reply,
            replies.replies_without_request,
            lines
        ),
        (6, 0, 2, vec![8, 10])
    );
}

#[test]
fn policylayer_log_reads_calls_decisions_and_upstream_status() {
    let (recs, stats) = read(&[&fixture("policylayer.jsonl")]);
    assert_eq!(stats.per_file[0].1, Format::PolicyLayerLog);
    assert_eq!(recs.len(), 36);
    assert_eq!(
        stats.ignored,
        counts(&[("method resources/read", 1), ("method tools/list", 1)])
    );
    let denied: Vec<&CallRecord> = recs
        .iter()
        .filter(|r| r.recorded.as_ref().and_then(|c| c.decision) == Some(RecordedDecision::Deny))
        .collect();
    assert_eq!(denied.len(), 3);
    let d = denied[0];
    assert_eq!(d.grant.as_deref(), Some("audit-bot"));
    assert_eq!(d.id.as_deref(), Some("pl-0032"));
    assert_eq!(d.args, Args::Keys(vec!["vdom".into()]));
    assert_eq!(d.upstream, None);
    assert_eq!(
        d.recorded.as_ref().unwrap().message.as_deref(),
        Some("rate limit: 30 per minute")
    );
    assert_eq!(
        d.recorded.as_ref().unwrap().policy_version.as_deref(),
        Some("v7")
    );
    let p502 = recs
        .iter()
        .find(|r| r.id.as_deref() == Some("pl-0035"))
        .unwrap();
    assert_eq!(p502.upstream, Some(Upstream::Error));
    assert_eq!(p502.latency_ms, Some(15000.0));
    assert_eq!(recs[0].upstream, Some(Upstream::Ok));
    // No grant_label: the grant id stands in.
    assert_eq!(recs[35].grant.as_deref(), Some("g_legacy"));
}

/// A grant's label is optional: a `null` or empty one gives way to the grant's id.
#[test]
fn policylayer_grants_without_a_label_are_named_by_their_id() {
    let dir = tempfile::tempdir().unwrap();
    let line = |n: u32, label: &str| {
        format!(
            r#"{{"timestamp":"2026-08-01T10:00:0{n}Z","request_id":"pl-{n}","grant_id":"g_{n}",{label}"server":"files","method":"tools/call","tool":"search","decision":"allow"}}"#
        )
    };
    let body = [
        line(1, r#""grant_label":"ci-bot","#),
        line(2, r#""grant_label":null,"#),
        line(3, r#""grant_label":"","#),
        line(4, ""),
    ]
    .join("\n");
    let f = write_file(dir.path(), "policylayer.jsonl", &body);
    let (recs, stats) = read(&[&f]);
    assert_eq!(stats.per_file[0].1, Format::PolicyLayerLog);
    let grants: Vec<_> = recs.iter().map(|r| r.grant.as_deref()).collect();
    assert_eq!(
        grants,
        [Some("ci-bot"), Some("g_2"), Some("g_3"), Some("g_4")]
    );
}

#[test]
fn intercept_log_takes_server_from_startup_and_grant_from_instance() {
    let (recs, stats) = read(&[&fixture("intercept.jsonl")]);
    assert_eq!(stats.per_file[0].1, Format::InterceptLog);
    assert_eq!(recs.len(), 35);
    assert!(recs.iter().all(|r| &*r.server == "fortios"));
    assert!(recs.iter().all(|r| r.grant.as_deref() == Some("a1b2c3d4")));
    assert!(recs.iter().all(|r| r.args == Args::Unrecorded));
    assert_eq!(
        recs[2].recorded,
        Some(Recorded {
            decision: Some(RecordedDecision::Deny),
            rule: Some("vpn_ipsec_phase2_create/no weak proposals".into()),
            message: Some("proposal must be aes256".into()),
            policy_version: None,
        })
    );
    assert_eq!(
        stats.ignored,
        counts(&[
            ("event config_reload", 1),
            ("event heartbeat", 1),
            ("event shutdown", 1),
            ("event startup", 1),
        ])
    );
}

/// An instance whose `startup` is not in the log (it started before the log was rotated) has
/// an unknown server, not the server of another instance's startup; events naming no instance
/// take the latest startup's.
#[test]
fn intercept_instance_without_startup_keeps_an_unknown_server() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.jsonl");
    let event = |s: u32, rest: &str| format!(r#"{{"ts":"2026-08-01T09:00:0{s}Z",{rest}}}"#);
    let lines = [
        event(
            0,
            r#""type":"startup","instance":"b7e1f2a0","server":"github""#,
        ),
        event(
            1,
            r#""type":"tool_call","instance":"a1b2c3d4","tool":"create_charge","result":"allowed""#,
        ),
        event(
            2,
            r#""type":"tool_call","instance":"b7e1f2a0","tool":"create_issue","result":"allowed""#,
        ),
        event(
            3,
            r#""type":"startup","instance":"c0ffee00","server":"stripe""#,
        ),
        event(
            4,
            r#""type":"tool_call","instance":"a1b2c3d4","tool":"create_charge","result":"allowed""#,
        ),
        event(
            5,
            r#""type":"tool_call","tool":"list_charges","result":"allowed""#,
        ),
    ];
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    let (recs, _) = read(&[path.to_str().unwrap()]);
    let servers: Vec<(&str, Option<&str>)> = recs
        .iter()
        .map(|r| (&*r.server, r.grant.as_deref()))
        .collect();
    assert_eq!(
        servers,
        [
            ("unknown", Some("a1b2c3d4")),
            ("github", Some("b7e1f2a0")),
            ("unknown", Some("a1b2c3d4")),
            ("stripe", None),
        ]
    );
}

/// Claude Desktop writes each message to `mcp.log` (`[level] [server]`) and to the server's own
/// log (`[server] [level]`, with metadata): read together, a call logged in both is one call,
/// counted as `call also in <file>`; calls in one file only, or differing in id or arguments,
/// stay. Lines a version logs twice are read once.
#[test]
fn claude_logs_read_together_count_each_call_once() {
    let dir = tempfile::tempdir().unwrap();
    let msg = |ms: u32, from: &str, json: &str, per_server: bool| {
        let (head, tail) = if per_server {
            ("[files] [info]", " { metadata: undefined }")
        } else {
            ("[info] [files]", "")
        };
        format!("2026-08-01T10:00:00.{ms:03}Z {head} Message from {from}: {json}{tail}")
    };
    let call = |id: u32, path: &str| {
        format!(
            r#"{{"method":"tools/call","params":{{"name":"read_file","arguments":{{"path":"{path}"}}}},"jsonrpc":"2.0","id":{id}}}"#
        )
    };
    let ok = |id: u32| format!(r#"{{"jsonrpc":"2.0","id":{id},"result":{{"content":[]}}}}"#);
    let both = |per_server: bool| {
        let mut lines = vec![
            msg(0, "client", &call(1, "/a"), per_server),
            msg(0, "client", &call(2, "/a"), per_server),
            msg(100, "server", &ok(1), per_server),
            msg(150, "server", &ok(2), per_server),
        ];
        if per_server {
            // Only in this file; and a line logged twice.
            lines.push(msg(200, "client", &call(3, "/b"), true));
            lines.push(msg(200, "client", &call(3, "/b"), true));
            lines.push(msg(260, "server", &ok(3), true));
        } else {
            lines.push(msg(200, "client", &call(4, "/c"), false));
        }
        lines.join("\n")
    };
    let mcp = write_file(dir.path(), "mcp.log", &both(false));
    let own = write_file(dir.path(), "mcp-server-files.log", &both(true));
    let (recs, stats) = read(&[&mcp, &own]);
    let got: Vec<_> = recs
        .iter()
        .map(|r| (r.id.as_deref().unwrap_or(""), r.upstream, r.origin.file))
        .collect();
    assert_eq!(
        got,
        [
            ("1", Some(Upstream::Ok), 0),
            ("2", Some(Upstream::Ok), 0),
            ("4", None, 0),
            ("3", Some(Upstream::Ok), 1),
        ]
    );
    assert_eq!(
        (
            stats.ignored.get(&format!("call also in {mcp}")),
            stats.ignored.get("duplicate line")
        ),
        (Some(&2), Some(&1))
    );
    assert_eq!(
        stats.per_file.iter().map(|f| f.2).collect::<Vec<_>>(),
        [3, 1]
    );
    // Each file alone keeps its calls.
    assert_eq!(read(&[&own]).0.len(), 3);
}

#[test]
fn claude_log_pairs_by_connection_across_a_reconnect() {
    let (recs, stats) = read(&[&fixture("mcp-server-fortios.log")]);
    assert_eq!(stats.per_file[0].1, Format::ClaudeLog);
    use Upstream::*;
    assert_eq!(
        paired(&recs),
        [
            p("system_status_get", None, "2", Some(Ok), Some(90.0)),
            // Its connection closed before a reply.
            p("firewall_policy_list", None, "3", None, None),
            // After the reconnect ids restart; id 2 here is not the id 2 above.
            p(
                "vpn_ipsec_phase2_create",
                None,
                "1",
                Some(ToolError),
                Some(700.0)
            ),
            p("firewall_policy_list", None, "2", Some(Ok), Some(50.0)),
            p(
                "firewall_policy_create",
                None,
                "3",
                Some(Error),
                Some(400.0)
            ),
            // The log ends before its reply.
            p("system_status_get", None, "4", None, None),
        ]
    );
    assert!(recs.iter().all(|r| &*r.server == "fortios"));
    assert_eq!(recs[2].origin.line, 21);
    assert_eq!(
        stats.ignored,
        counts(&[
            ("connection event", 4),
            ("method initialize", 2),
            ("method notifications/initialized", 1),
            ("method tools/list", 1),
            ("other log line", 2),
            ("reply to another request", 3),
            ("unstructured log line", 4),
        ])
    );
    assert_eq!(stats.skipped, 0);
}

/// Claude Desktop starts a server twice (two clients in one app), both connections logging to
/// one file with ids from 0: each request goes with the connection whose client numbered its
/// last request one less, each reply with the connection that asked it, so a call asked before
/// the second connection started and answered after it pairs, and equal ids of the two do not
/// take each other's replies.
#[test]
fn claude_log_tells_two_connections_of_one_server_apart() {
    let dir = tempfile::tempdir().unwrap();
    let at = |ms: u32| {
        format!(
            "2026-08-01T10:00:{:02}.{:03}Z [git] [info]",
            ms / 1000,
            ms % 1000
        )
    };
    let client = |ms: u32, id: u32, method: &str, params: &str| {
        format!(
            r#"{} Message from client: {{"method":"{method}","params":{params},"jsonrpc":"2.0","id":{id}}} {{ metadata: undefined }}"#,
            at(ms)
        )
    };
    let call = |ms: u32, id: u32, tool: &str| {
        client(
            ms,
            id,
            "tools/call",
            &format!(r#"{{"name":"{tool}","arguments":{{}}}}"#),
        )
    };
    let server = |ms: u32, id: u32, body: &str| {
        format!(
            r#"{} Message from server: {{"jsonrpc":"2.0","id":{id},{body}}} {{ metadata: undefined }}"#,
            at(ms)
        )
    };
    let ok = r#""result":{"content":[]}"#;
    let lines = [
        format!("{} Initializing server...", at(0)),
        client(10, 0, "initialize", "{}"),
        server(20, 0, r#""result":{}"#),
        client(30, 1, "tools/list", "{}"),
        call(40, 2, "git_diff"),
        // The second connection starts while the first's calls are in flight.
        format!("{} Initializing server...", at(1000)),
        client(1010, 0, "initialize", "{}"),
        server(1020, 0, r#""result":{}"#),
        server(1030, 1, r#""result":{"tools":[]}"#),
        server(1040, 2, r#""error":{"code":-32603,"message":"bad ref"}"#),
        client(1050, 1, "tools/list", "{}"),
        server(1060, 1, r#""result":{"tools":[]}"#),
        call(2000, 3, "git_status"),
        call(2010, 2, "git_log"),
        server(2100, 2, ok),
        server(2500, 3, ok),
    ];
    let path = write_file(dir.path(), "mcp-server-git.log", &(lines.join("\n") + "\n"));
    let (recs, stats) = read(&[&path]);
    let got: Vec<_> = (recs.iter())
        .map(|r| (&*r.tool, r.id.as_deref(), r.upstream, r.latency_ms))
        .collect();
    assert_eq!(
        got,
        [
            ("git_diff", Some("2"), Some(Upstream::Error), Some(1000.0)),
            ("git_status", Some("3"), Some(Upstream::Ok), Some(500.0)),
            ("git_log", Some("2"), Some(Upstream::Ok), Some(90.0)),
        ]
    );
    assert_eq!(reply_counts(&stats), (3, 0, 0));
}

/// A server's stderr in another encoding than UTF-8, logged as it came, is server output like
/// any other: not a bad line (which `--strict` would stop at), and the calls around it pair.
#[test]
fn claude_log_lines_not_in_utf8_are_server_output() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mcp-server-files.log");
    let mut body = b"2026-08-01T10:00:00.120Z [files] [info] Initializing server...\n".to_vec();
    body.extend_from_slice(b"C:\\Users\\Ren\xe9\\server.py started\n");
    body.extend_from_slice(
        br#"2026-08-01T10:00:01.000Z [files] [info] Message from client: {"method":"tools/call","params":{"name":"read","arguments":{}},"jsonrpc":"2.0","id":1}"#,
    );
    body.extend_from_slice(b"\n\xff\xfe warning\n");
    body.extend_from_slice(
        br#"2026-08-01T10:00:01.100Z [files] [info] Message from server: {"jsonrpc":"2.0","id":1,"result":{"content":[]}}"#,
    );
    body.push(b'\n');
    std::fs::write(&path, body).unwrap();
    let path = path.display().to_string();
    let opts = ReadOptions {
        strict: true,
        ..ReadOptions::default()
    };
    let (recs, stats) = read_with(&[path], &opts);
    assert_eq!(stats.per_file[0].1, Format::ClaudeLog);
    assert_eq!(stats.skipped, 0);
    assert_eq!(recs.len(), 1);
    assert_eq!(recs[0].upstream, Some(Upstream::Ok));
    assert_eq!(recs[0].latency_ms, Some(100.0));
    assert_eq!(
        stats.ignored,
        counts(&[("connection event", 1), ("unstructured log line", 2)])
    );
}

#[test]
fn bad_lines_are_skipped_and_counted_with_file_and_line() {
    let file = fixture("bad.jsonl");
    let (recs, stats) = read(&[&file]);
    assert_eq!(
        recs.iter().map(|r| r.origin.line).collect::<Vec<_>>(),
        [1, 8]
    );
    assert_eq!(stats.skipped, 6);
    assert_eq!(
        stats.skipped_by_reason,
        counts(&[
            ("bad timestamp", 1),
            ("invalid JSON", 1),
            ("invalid UTF-8", 1),
            ("missing field", 2),
            ("wrong type", 1),
        ])
    );
    let ex: Vec<(u64, &str)> = stats
        .skipped_examples
        .iter()
        .map(|s| (s.line, s.reason.as_str()))
        .collect();
    assert!(stats.skipped_examples.iter().all(|s| s.file == file));
    assert_eq!(ex[0].0, 2);
    assert!(
        ex[0].1.starts_with("truncated JSON: EOF while parsing"),
        "{}",
        ex[0].1
    );
    assert_eq!(
        ex[1],
        (3, "field `tool`: expected a string, found a number")
    );
    assert_eq!(ex[2], (4, "invalid UTF-8 at byte 65"));
    assert_eq!(ex[3], (5, "field `ts`: missing"));
    assert_eq!(ex[4], (6, "field `tool`: missing"));
    assert_eq!(
        ex[5],
        (7, "field `ts`: cannot parse \"yesterday\" as a timestamp")
    );
    let warnings = stats.warning_lines();
    assert_eq!(
        warnings[0],
        "skipped 6 bad records (bad timestamp: 1, invalid JSON: 1, invalid UTF-8: 1, missing field: 2, wrong type: 1)"
    );
    assert_eq!(warnings.len(), 7);
}

/// One row per bad-input case: the line, and the `--strict` error it must produce.
#[test]
fn strict_stops_at_the_first_bad_line_naming_file_line_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let good = br#"{"ts":"2026-08-01T09:00:00Z","server":"fortios","tool":"system_status_get"}"#;
    let cases: [(&[u8], &str); 8] = [
        (
            br#"{"ts":"2026-08-01T09:00:01Z","tool":"sys"#,
            "truncated JSON: EOF while parsing a string at line 1 column 40",
        ),
        (
            br#"{"ts":"2026-08-01T09:00:01Z","tool":42}"#,
            "field `tool`: expected a string, found a number",
        ),
        (
            b"{\"ts\":\"2026-08-01T09:00:01Z\",\"tool\":\"\xff\"}",
            "invalid UTF-8 at byte 38",
        ),
        (br#"{"tool":"system_status_get"}"#, "field `ts`: missing"),
        (br#"{"ts":"2026-08-01T09:00:01Z"}"#, "field `tool`: missing"),
        (
            br#"{"ts":"yesterday","tool":"x"}"#,
            "field `ts`: cannot parse \"yesterday\" as a timestamp",
        ),
        (
            br#"{"ts":true,"tool":"x"}"#,
            "field `ts`: expected an RFC 3339 string or an epoch number, found a boolean",
        ),
        (
            br#"{"ts":"2026-08-01T09:00:01Z","tool":"x","upstream":"maybe"}"#,
            "field `upstream`: expected ok, error or tool_error, found \"maybe\"",
        ),
    ];
    for (i, (bad, reason)) in cases.iter().enumerate() {
        let path = dir.path().join(format!("case{i}.jsonl"));
        let mut f = std::fs::File::create(&path).unwrap();
        f.write_all(good).unwrap();
        f.write_all(b"\n\n").unwrap();
        f.write_all(bad).unwrap();
        f.write_all(b"\n").unwrap();
        drop(f);
        let name = path.display().to_string();
        let opts = ReadOptions {
            from: Some(Format::Jsonl),
            strict: true,
            ..ReadOptions::default()
        };
        let err = Trace::open(std::slice::from_ref(&name), &opts)
            .err()
            .expect("strict must fail");
        assert!(
            matches!(err, TraceError::BadRecord { line: 3, .. }),
            "{err:?}"
        );
        assert_eq!(err.to_string(), format!("{name}:3: {reason}"));
        // Without --strict the same line is skipped and counted.
        let (recs, stats) = read_with(
            std::slice::from_ref(&name),
            &ReadOptions {
                strict: false,
                ..opts
            },
        );
        assert_eq!((recs.len(), stats.skipped), (1, 1), "case {i}");
        assert_eq!(stats.skipped_examples[0].reason, *reason);
    }
}

#[test]
fn files_merge_in_time_order_ties_keep_file_order() {
    let a = fixture("fleet.jsonl");
    let b = fixture("jsonrpc.jsonl");
    let c = fixture("mcp-server-fortios.log");
    let (recs, stats) = read(&[&a, &b, &c]);
    assert_eq!(recs.len(), 45 + 8 + 6);
    assert_eq!(stats.out_of_order, 0);
    for w in recs.windows(2) {
        let k0 = (w[0].ts, w[0].origin.file, w[0].origin.line);
        let k1 = (w[1].ts, w[1].origin.file, w[1].origin.line);
        assert!(k0 < k1, "{k0:?} then {k1:?}");
    }
    // 09:00:02.000 is in the JSON-RPC recording (file 1) and the Claude log (file 2).
    let at = ts("2026-08-01T09:00:02Z");
    let tied: Vec<u32> = recs
        .iter()
        .filter(|r| r.ts == at)
        .map(|r| r.origin.file)
        .collect();
    assert_eq!(tied, [1, 2]);
    // The streaming merge (forced by a tiny memory limit) yields the same sequence.
    let inputs = [a, b, c];
    let mut t = Trace::open(
        &inputs,
        &ReadOptions {
            reorder_window: Some(1),
            ..ReadOptions::default()
        },
    )
    .unwrap();
    let mut streamed = Vec::new();
    while let Some(r) = t.next_record().unwrap() {
        streamed.push(r);
    }
    assert_eq!(streamed, recs);
    assert_eq!(t.stats(), &stats);
    assert_eq!(t.files().len(), 3);
}

/// How a read's replies paired: (paired, requests without a reply, replies without a request).
pub(crate) fn reply_counts(stats: &ReadStats) -> (u64, u64, u64) {
    let r = stats.replies.as_ref().expect("a format with replies");
    (
        r.paired,
        r.requests_without_reply,
        r.replies_without_request,
    )
}

pub(crate) fn write_file(dir: &std::path::Path, name: &str, body: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, body).unwrap();
    path.display().to_string()
}

#[test]
fn out_of_order_input_is_sorted_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let line = |sec: u32, id: &str| {
        format!(
            r#"{{"ts":"2026-08-01T09:00:{sec:02}Z","server":"fortios","tool":"t","id":"{id}"}}"#
        )
    };
    let body = [
        line(3, "a"),
        line(1, "b"),
        line(2, "c"),
        line(5, "d"),
        line(4, "e"),
        line(4, "f"),
    ]
    .join("\n");
    let f = write_file(dir.path(), "ooo.jsonl", &body);
    let sorted_ids = ["b", "c", "a", "e", "f", "d"];
    for limit in [1_000, 2] {
        let mut t = Trace::open(
            std::slice::from_ref(&f),
            &ReadOptions {
                reorder_window: Some(limit as u64),
                ..ReadOptions::default()
            },
        )
        .unwrap();
        let mut ids = Vec::new();
        while let Some(r) = t.next_record().unwrap() {
            ids.push(r.id.unwrap());
        }
        assert_eq!(ids, sorted_ids, "limit {limit}");
        // b and c (before a's 09:00:03), e and f (before d's 09:00:05).
        assert_eq!(t.stats().out_of_order, 4, "limit {limit}");
        assert_eq!(t.stats().calls, 6);
    }
}

#[test]
fn gzip_and_zstd_are_recognised_by_magic_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let plain = std::fs::read(fixture("mcp-server-fortios.log")).unwrap();
    let gz_path = dir.path().join("claude.data");
    let mut gz = flate2::write::GzEncoder::new(
        std::fs::File::create(&gz_path).unwrap(),
        flate2::Compression::default(),
    );
    gz.write_all(&plain).unwrap();
    gz.finish().unwrap();
    let zst_path = dir.path().join("claude.bin");
    std::fs::write(&zst_path, zstd::encode_all(&plain[..], 3).unwrap()).unwrap();
    let (want, _) = read(&[&fixture("mcp-server-fortios.log")]);
    for p in [gz_path, zst_path] {
        let (got, stats) = read(&[p.to_str().unwrap()]);
        assert_eq!(stats.per_file[0].1, Format::ClaudeLog);
        assert_eq!(got, want);
    }
}

/// A compressed file cut short (copied while the compressor still wrote it) reads as a plain
/// file cut short does: every whole line, then the line cut in two as one bad record at its
/// line; under `--strict` that record is the error. (The decoders' "incomplete deflate stream"
/// and "incomplete frame" used to end the read with nothing.)
#[test]
fn a_compressed_file_cut_short_keeps_its_whole_lines() {
    let dir = tempfile::tempdir().unwrap();
    let text: String = (0..5000)
        .map(|i| {
            format!(
                r#"{{"ts":"2026-08-01T09:{:02}:{:02}.{:03}Z","server":"files","tool":"read_file","args":{{"path":"/srv/{}/{i}.txt"}}}}"#,
                i / 60_000 % 60,
                i / 1000 % 60,
                i % 1000,
                i * 7919 % 104_729
            ) + "\n"
        })
        .collect();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(text.as_bytes()).unwrap();
    let gz = gz.finish().unwrap();
    let zst = zstd::encode_all(text.as_bytes(), 3).unwrap();
    for (name, whole) in [("calls.jsonl.gz", gz), ("calls.jsonl.zst", zst)] {
        let cut = &whole[..whole.len() * 2 / 3];
        // What a decoder gives of the cut file before its error.
        let mut got = Vec::new();
        let mut d: Box<dyn Read> = if name.ends_with(".gz") {
            Box::new(flate2::read::GzDecoder::new(cut))
        } else {
            Box::new(zstd::stream::read::Decoder::new(cut).unwrap())
        };
        let mut buf = [0u8; 4096];
        loop {
            match d.read(&mut buf) {
                Ok(0) => panic!("{name}: the cut file decodes to its end"),
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(_) => break,
            }
        }
        let lines = got.iter().filter(|&&b| b == b'\n').count() as u64;
        assert!(lines > 1000 && lines < 5000, "{name}: {lines}");
        assert_ne!(
            got.last(),
            Some(&b'\n'),
            "{name}: the cut falls inside a line"
        );
        let path = dir.path().join(name);
        std::fs::write(&path, cut).unwrap();
        let (recs, stats) = read(&[path.to_str().unwrap()]);
        assert_eq!(recs.len() as u64, lines, "{name}");
        assert_eq!(stats.skipped, 1, "{name}");
        assert_eq!(stats.skipped_examples[0].line, lines + 1, "{name}");
        let strict = ReadOptions {
            strict: true,
            ..ReadOptions::default()
        };
        let e = match Trace::open(&[path.to_str().unwrap().to_string()], &strict) {
            Ok(mut t) => loop {
                match t.next_record() {
                    Ok(Some(_)) => continue,
                    Ok(None) => panic!("{name}: --strict read the cut line"),
                    Err(e) => break e.to_string(),
                }
            },
            Err(e) => e.to_string(),
        };
        assert!(e.contains(&format!("{name}:{}", lines + 1)), "{e}");
    }
}

/// A file named twice (a glob overlapping a path, a link to it) is read once, and counted:
/// read twice, its calls and every counter would count double.
#[cfg(unix)]
#[test]
fn a_file_named_twice_is_read_once() {
    let dir = tempfile::tempdir().unwrap();
    let l = |sec: u32| format!(r#"{{"ts":"2026-08-01T09:00:{sec:02}Z","server":"s","tool":"t"}}"#);
    let a = write_file(dir.path(), "a.jsonl", &(l(1) + "\n" + &l(2) + "\n"));
    write_file(dir.path(), "b.jsonl", &(l(3) + "\n"));
    let link = dir.path().join("c.jsonl");
    std::os::unix::fs::symlink(&a, &link).unwrap();
    let glob = format!("{}/*.jsonl", dir.path().display());
    let (recs, stats) = read(&[&a, &glob]);
    assert_eq!(recs.len(), 3);
    assert_eq!(
        stats.ignored,
        counts(&[
            (&format!("{a} named again (read once)"), 1),
            (&format!("{} named again (read once)", link.display()), 1),
        ])
    );
    assert_eq!(stats.per_file.len(), 2);
}

/// A first line longer than the detection window is judged whole: a bare JSON-RPC request in
/// the TypeScript SDK's key order with a large argument and `ts` written last.
#[test]
fn a_first_line_past_the_detection_window_is_judged_whole() {
    let dir = tempfile::tempdir().unwrap();
    let big = "x".repeat(100_000);
    let text = format!(
        r#"{{"method":"tools/call","params":{{"name":"write_file","arguments":{{"content":"{big}"}}}},"jsonrpc":"2.0","id":1,"ts":"2026-08-01T09:00:00Z"}}"#
    ) + "\n"
        + r#"{"method":"tools/call","params":{"name":"read_file","arguments":{}},"jsonrpc":"2.0","id":2,"ts":"2026-08-01T09:00:01Z"}"#
        + "\n";
    let path = write_file(dir.path(), "bare.jsonl", &text);
    let (recs, stats) = read(&[&path]);
    assert_eq!(stats.per_file[0].1, Format::JsonRpc);
    let tools: Vec<&str> = recs.iter().map(|r| &*r.tool).collect();
    assert_eq!(tools, ["write_file", "read_file"]);
}

/// A reply written before its request (a recorder writing from two threads, a file sorted
/// under clock skew) pairs with it when its time is not before the request's; a reply earlier
/// in time than every later request under its id stays a reply without a request.
#[test]
fn a_reply_written_before_its_request_pairs_with_it() {
    let dir = tempfile::tempdir().unwrap();
    let msg = |ms: u32, dir: &str, body: &str| {
        format!(
            r#"{{"ts":"2026-08-01T10:00:00.{ms:03}Z","dir":"{dir}","server":"files","session":"s1","msg":{{"jsonrpc":"2.0",{body}}}}}"#
        )
    };
    let call = |id: u32, tool: &str| {
        format!(r#""id":{id},"method":"tools/call","params":{{"name":"{tool}","arguments":{{}}}}"#)
    };
    let lines = [
        msg(100, "c2s", &call(1, "read_file")),
        msg(
            180,
            "s2c",
            r#""id":2,"result":{"content":[],"isError":true}"#,
        ),
        msg(150, "c2s", &call(2, "delete_file")),
        msg(200, "s2c", r#""id":1,"result":{"content":[]}"#),
        // Answers nothing: the only later request under id 3 was asked after it.
        msg(210, "s2c", r#""id":3,"result":{"content":[]}"#),
        msg(300, "c2s", &call(3, "list_files")),
    ];
    let path = write_file(dir.path(), "rec.jsonl", &(lines.join("\n") + "\n"));
    let (recs, stats) = read(&[&path]);
    let got: Vec<(&str, Option<Upstream>, Option<f64>)> = recs
        .iter()
        .map(|r| (&*r.tool, r.upstream, r.latency_ms))
        .collect();
    assert_eq!(
        got,
        [
            ("read_file", Some(Upstream::Ok), Some(100.0)),
            ("delete_file", Some(Upstream::ToolError), Some(30.0)),
            ("list_files", None, None),
        ]
    );
    let replies = stats.replies.unwrap();
    assert_eq!(
        (
            replies.paired,
            replies.requests_without_reply,
            replies.replies_without_request
        ),
        (2, 1, 1)
    );
    let lines: Vec<(u64, &str)> = (replies.examples.iter())
        .map(|s| (s.line, s.reason.as_str()))
        .collect();
    assert_eq!(
        lines,
        [
            (5, "reply without a request: no request waits for its id"),
            (6, "request without a reply in the file"),
        ]
    );
}

/// A recording that opens with a JSON-RPC batch is a recording, and each call of a batch pairs
/// with its reply in the batch that answers it.
#[test]
fn a_recording_opening_with_a_batch_is_read_call_by_call() {
    let dir = tempfile::tempdir().unwrap();
    let text = [
        r#"{"ts":"2026-08-01T10:00:00.100Z","dir":"c2s","server":"f","session":"s","msg":[{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"a","arguments":{}}},{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"b","arguments":{}}}]}"#,
        r#"{"ts":"2026-08-01T10:00:00.200Z","dir":"s2c","server":"f","session":"s","msg":[{"jsonrpc":"2.0","id":3,"result":{"isError":true}},{"jsonrpc":"2.0","id":2,"result":{}}]}"#,
    ]
    .join("\n");
    let path = write_file(dir.path(), "batch.jsonl", &(text + "\n"));
    let (recs, stats) = read(&[&path]);
    assert_eq!(stats.per_file[0].1, Format::JsonRpc);
    let got: Vec<(&str, Option<Upstream>)> = recs.iter().map(|r| (&*r.tool, r.upstream)).collect();
    assert_eq!(
        got,
        [("a", Some(Upstream::Ok)), ("b", Some(Upstream::ToolError))]
    );
}

#[test]
fn globs_expand_sorted_and_must_match() {
    let dir = tempfile::tempdir().unwrap();
    let l = |sec: u32| format!(r#"{{"ts":"2026-08-01T09:00:{sec:02}Z","server":"s","tool":"t"}}"#);
    write_file(dir.path(), "b.jsonl", &l(1));
    write_file(dir.path(), "a.jsonl", &l(1));
    let pattern = format!("{}/*.jsonl", dir.path().display());
    let t = Trace::open(std::slice::from_ref(&pattern), &ReadOptions::default()).unwrap();
    let names: Vec<&str> = t
        .files()
        .iter()
        .map(|f| f.rsplit('/').next().unwrap())
        .collect();
    assert_eq!(names, ["a.jsonl", "b.jsonl"]);
    let none = format!("{}/*.csv", dir.path().display());
    let err = Trace::open(std::slice::from_ref(&none), &ReadOptions::default())
        .err()
        .unwrap();
    assert_eq!(
        err.to_string(),
        format!("{none}: no such file (or the glob matched nothing)")
    );
    let missing = format!("{}/missing.jsonl", dir.path().display());
    assert!(matches!(
        Trace::open(&[missing], &ReadOptions::default()),
        Err(TraceError::NoMatch { .. })
    ));
}

#[test]
fn undetectable_input_asks_for_from() {
    let dir = tempfile::tempdir().unwrap();
    let f = write_file(dir.path(), "notes.txt", "hello\nworld\n");
    let err = Trace::open(std::slice::from_ref(&f), &ReadOptions::default())
        .err()
        .unwrap();
    assert_eq!(
        err.to_string(),
        format!(
            "{f}: cannot detect the trace format (the first line is neither JSON, nor a CSV header with ts and tool, nor a Claude Desktop log line); name it with --from"
        )
    );
}

fn all_fixture_records() -> Vec<CallRecord> {
    let names = [
        "fleet.jsonl",
        "fleet.csv",
        "jsonrpc.jsonl",
        "policylayer.jsonl",
        "intercept.jsonl",
        "mcp-server-fortios.log",
    ];
    let paths: Vec<String> = names.iter().map(|n| fixture(n)).collect();
    let (recs, stats) = read_with(&paths, &ReadOptions::default());
    assert_eq!(stats.skipped, 0);
    recs
}

#[test]
fn convert_round_trips_through_every_output_format() {
    let recs = all_fixture_records();
    assert!(recs.len() > 100);
    assert_round_trips(&recs);
}

/// Writing `recs` in each of mcpsim's own formats and reading them back yields them again.
pub(crate) fn assert_round_trips(recs: &[CallRecord]) {
    let dir = tempfile::tempdir().unwrap();
    type Writer = fn(&[CallRecord], &mut dyn Write) -> Result<u64, TraceError>;
    let writers: [(&str, Format, Writer); 3] = [
        ("jsonl", Format::Jsonl, |r, w| write_jsonl(r, w)),
        ("csv", Format::Csv, |r, w| write_csv(r, w)),
        ("parquet", Format::Parquet, |r, w| write_parquet(r, w)),
    ];
    for (ext, format, write) in writers {
        let path = dir.path().join(format!("all.{ext}"));
        let mut f = std::fs::File::create(&path).unwrap();
        assert_eq!(write(recs, &mut f).unwrap(), recs.len() as u64);
        drop(f);
        let (back, stats) = read(&[path.to_str().unwrap()]);
        assert_eq!(stats.per_file[0].1, format);
        assert_eq!(stats.skipped, 0, "{ext}: {:?}", stats.skipped_examples);
        assert_eq!(without_origin(&back), without_origin(recs), "{ext}");
    }
}

/// Argument text is written as it was read whatever format carried it, text whose strings
/// hold digits before an `e` (ids, hashes) and numbers with an exponent included.
#[test]
fn argument_text_reads_the_same_through_every_format() {
    use clap::Parser;
    use mcpsim::cli::convert::{ConvertArgs, run};

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: ConvertArgs,
    }
    let convert = |argv: &[&str]| -> String {
        let args = Cli::try_parse_from([&["convert"], argv].concat())
            .unwrap()
            .args;
        let (mut out, mut err) = (Vec::new(), Vec::new());
        assert_eq!(run(&args, &mut out, &mut err).unwrap(), 0, "{argv:?}");
        String::from_utf8(out).unwrap()
    };
    let dir = tempfile::tempdir().unwrap();
    let lines = [
        r#"{"ts":"2026-08-01T09:00:00Z","server":"s","tool":"t","args":{"id": "3f2e9a", "n": 1}}"#,
        r#"{"ts":"2026-08-01T09:00:01Z","server":"s","tool":"t","args":{"q":"say \"1e\"", "x":"7E"}}"#,
        r#"{"ts":"2026-08-01T09:00:02Z","server":"s","tool":"t","args":{"n": 1e3, "id": "2e"}}"#,
    ];
    let jsonl = dir.path().join("in.jsonl");
    std::fs::write(&jsonl, lines.join("\n") + "\n").unwrap();
    let jsonl = jsonl.to_str().unwrap();
    let want = convert(&[jsonl, "--to", "jsonl"]);
    // As written.
    assert_eq!(
        want.lines()
            .map(|l| &l[l.find("\"args\"").unwrap()..])
            .collect::<Vec<_>>(),
        [
            r#""args":{"id": "3f2e9a", "n": 1}}"#,
            r#""args":{"q":"say \"1e\"", "x":"7E"}}"#,
            r#""args":{"n": 1e3, "id": "2e"}}"#,
        ]
    );
    for ext in ["csv", "parquet"] {
        let path = dir.path().join(format!("calls.{ext}"));
        let path = path.to_str().unwrap();
        convert(&[jsonl, "--to", ext, "--output", path]);
        assert_eq!(convert(&[path, "--to", "jsonl"]), want, "{ext}");
    }
}

#[test]
fn convert_command_writes_records_and_warns_about_skipped_lines() {
    use clap::Parser;
    use mcpsim::cli::convert::{ConvertArgs, run};

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: ConvertArgs,
    }
    let parse = |argv: &[&str]| {
        Cli::try_parse_from([&["convert"], argv].concat())
            .unwrap()
            .args
    };

    let bad = fixture("bad.jsonl");
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = run(&parse(&[&bad, "--to", "jsonl"]), &mut out, &mut err).unwrap();
    assert_eq!(code, 0);
    let out = String::from_utf8(out).unwrap();
    assert_eq!(
        out,
        concat!(
            r#"{"ts":"2026-08-01T09:03:20Z","server":"fortios","grant":"netops-bot","session":"ns-9","tool":"system_status_get","args":{}}"#,
            "\n",
            r#"{"ts":"2026-08-01T09:03:28Z","server":"fortios","grant":"audit-bot","session":"ns-9","tool":"firewall_policy_list","args":{}}"#,
            "\n"
        )
    );
    let err = String::from_utf8(err).unwrap();
    assert!(err.starts_with("warning: skipped 6 bad records ("), "{err}");
    assert!(
        err.contains(&format!(
            "  {bad}:7: field `ts`: cannot parse \"yesterday\" as a timestamp\n"
        )),
        "{err}"
    );

    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = run(
        &parse(&[&bad, "--to", "csv", "--strict"]),
        &mut out,
        &mut err,
    )
    .unwrap();
    assert_eq!(code, 2);
    assert!(out.is_empty());
    let err = String::from_utf8(err).unwrap();
    assert!(
        err.starts_with(&format!("error: {bad}:2: truncated JSON")),
        "{err}"
    );

    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("out.parquet");
    let target_s = target.display().to_string();
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = run(
        &parse(&[
            &fixture("jsonrpc.jsonl"),
            "--to",
            "parquet",
            "-o",
            &target_s,
            "--from",
            "jsonrpc",
        ]),
        &mut out,
        &mut err,
    )
    .unwrap();
    assert_eq!((code, out.len()), (0, 0));
    assert_eq!(
        String::from_utf8(err).unwrap().lines().next(),
        Some(
            "warning: 2 requests without a reply, 1 reply without a request (6 paired); \
             their calls have no upstream outcome"
        )
    );
    let (back, _) = read(&[&target_s]);
    let (want, _) = read(&[&fixture("jsonrpc.jsonl")]);
    assert_eq!(without_origin(&back), without_origin(&want));
}

/// Bad lines in the other formats: (format, file body, line, reason).
#[test]
fn bad_lines_in_every_format_are_located() {
    let cases: &[(Format, &str, u64, &str)] = &[
        (
            Format::Csv,
            "ts,server,tool\nyesterday,fortios,system_status_get\n",
            2,
            "field `ts`: cannot parse \"yesterday\" as a timestamp",
        ),
        (
            Format::Csv,
            "ts,server,tool\n2026-08-01T09:00:00Z,fortios,\n",
            2,
            "field `tool`: missing",
        ),
        (
            Format::Csv,
            "ts,tool,args\n2026-08-01T09:00:00Z,x,\"{\"\"a\"\":\"\n",
            2,
            "field `args`: invalid JSON: EOF while parsing a value at line 1 column 5",
        ),
        (
            Format::Csv,
            "ts,tool,latency_ms\n2026-08-01T09:00:00Z,x,fast\n",
            2,
            "field `latency_ms`: expected a number, found \"fast\"",
        ),
        (
            Format::Csv,
            "ts,tool\n2026-08-01T09:00:00Z,x\n2026-08-01T09:00:01Z,\u{ff}\n",
            3,
            "invalid UTF-8 at byte 22",
        ),
        (
            Format::Csv,
            "ts,tool\n2026-08-01T09:00:00Z,x\n2026-08-01T09:00:01Z,y,surplus\n",
            3,
            "malformed CSV row: more cells than the header has columns",
        ),
        (
            Format::JsonRpc,
            r#"{"ts":"2026-08-01T09:00:00Z","session":"s","msg":{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{}}}"#,
            1,
            "field `msg.params.name`: missing",
        ),
        (
            Format::JsonRpc,
            r#"{"session":"s","msg":{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"x"}}}"#,
            1,
            "field `ts`: missing",
        ),
        (
            Format::PolicyLayerLog,
            r#"{"timestamp":"2026-08-01T09:00:00Z","method":"tools/call","tool":"x","decision":"allow","upstream_status":"502"}"#,
            1,
            "field `upstream_status`: expected a number, found a string",
        ),
        (
            Format::PolicyLayerLog,
            r#"{"timestamp":"2026-08-01T09:00:00Z","method":"tools/call","tool":"x","decision":"maybe"}"#,
            1,
            "field `decision`: unknown decision \"maybe\" (expected allow, deny, throttle or approval)",
        ),
        (
            Format::InterceptLog,
            r#"{"ts":"2026-08-01T09:00:00Z","type":"tool_call","instance":"a1","result":"allowed"}"#,
            1,
            "field `tool`: missing",
        ),
        (
            Format::ClaudeLog,
            "2026-08-01T09:00:00Z [f] [info] Message from client: {\"method\":\"tools/call\",\"params\":{\"name\":\"x\"",
            1,
            "truncated JSON: EOF while parsing an object at line 1 column 43",
        ),
        (
            Format::ClaudeLog,
            "2026-13-45T09:00:00Z [f] [info] Message from client: {\"method\":\"tools/call\",\"params\":{\"name\":\"x\"}}",
            1,
            "field `timestamp`: cannot parse \"2026-13-45T09:00:00Z\" as a timestamp",
        ),
    ];
    let dir = tempfile::tempdir().unwrap();
    for (i, (format, body, line, reason)) in cases.iter().enumerate() {
        let path = dir.path().join(format!("case{i}"));
        let bytes: Vec<u8> = body
            .chars()
            .map(|c| if c == '\u{ff}' { 0xff } else { c as u8 })
            .collect();
        std::fs::write(&path, bytes).unwrap();
        let name = path.display().to_string();
        for from in [Some(*format), None] {
            let strict = ReadOptions {
                from,
                strict: true,
                ..ReadOptions::default()
            };
            let err = Trace::open(std::slice::from_ref(&name), &strict)
                .err()
                .unwrap_or_else(|| panic!("case {i} ({format}) must fail under --strict"));
            assert_eq!(
                err.to_string(),
                format!("{name}:{line}: {reason}"),
                "case {i}"
            );
        }
        let (_, stats) = read_with(std::slice::from_ref(&name), &ReadOptions::default());
        assert_eq!(stats.per_file[0].1, *format, "case {i} detection");
        assert_eq!(stats.skipped, 1, "case {i}");
    }
}

#[test]
fn stdin_is_read_like_a_file_even_compressed() {
    let plain = std::fs::read(fixture("policylayer.jsonl")).unwrap();
    let (want, _) = read(&[&fixture("policylayer.jsonl")]);
    let gz = {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(&plain).unwrap();
        e.finish().unwrap()
    };
    for (bytes, limit) in [(plain.clone(), 1_000), (gz, 1)] {
        let inputs = ["-".to_string()];
        let mut t = Trace::open_with_stdin(
            &inputs,
            &ReadOptions {
                reorder_window: Some(limit as u64),
                ..ReadOptions::default()
            },
            &mut &bytes[..],
        )
        .unwrap();
        let mut got = Vec::new();
        while let Some(r) = t.next_record().unwrap() {
            got.push(r);
        }
        assert_eq!(got, want);
        assert_eq!(t.files(), ["<stdin>"]);
    }
    let twice = ["-".to_string(), "-".to_string()];
    let err = Trace::open_with_stdin(
        &twice,
        &ReadOptions {
            reorder_window: Some(10),
            ..ReadOptions::default()
        },
        &mut &plain[..],
    );
    assert!(matches!(err, Err(TraceError::StdinTwice)));
}

/// JSON-RPC ids keep their type in pairing: a reply with id `"7"` does not answer the request
/// with id `7` (they are different requests to the protocol), while the call record's `id` is
/// the text `7` either way.
#[test]
fn jsonrpc_pairing_tells_a_numeric_id_from_a_string_id() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("ids.jsonl");
    std::fs::write(
        &file,
        concat!(
            r#"{"ts":"2026-08-01T10:00:00Z","dir":"c2s","server":"s","session":"a","msg":{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"t","arguments":{}}}}"#,
            "\n",
            r#"{"ts":"2026-08-01T10:00:01Z","dir":"s2c","server":"s","session":"a","msg":{"jsonrpc":"2.0","id":"7","error":{"code":-1,"message":"x"}}}"#,
            "\n",
            r#"{"ts":"2026-08-01T10:00:02Z","dir":"c2s","server":"s","session":"a","msg":{"jsonrpc":"2.0","id":"8","method":"tools/call","params":{"name":"t","arguments":{}}}}"#,
            "\n",
            r#"{"ts":"2026-08-01T10:00:03Z","dir":"s2c","server":"s","session":"a","msg":{"jsonrpc":"2.0","id":"8","result":{}}}"#,
            "\n",
        ),
    )
    .unwrap();
    let (recs, stats) = read(&[file.to_str().unwrap()]);
    let ids: Vec<Option<&str>> = recs.iter().map(|r| r.id.as_deref()).collect();
    assert_eq!(ids, [Some("7"), Some("8")]);
    let outcomes: Vec<Option<Upstream>> = recs.iter().map(|r| r.upstream).collect();
    assert_eq!(outcomes, [None, Some(Upstream::Ok)]);
    let replies = stats.replies.expect("a recording counts its replies");
    assert_eq!(
        (
            replies.paired,
            replies.requests_without_reply,
            replies.replies_without_request
        ),
        (1, 1, 1)
    );
}

/// A call's record built from its batch's columns and what the row keeps beside them
/// (`BatchRows::rest`), and its latency read alone (`BatchRows::latency`), are what the row's
/// whole record gives, for every JSONL and Parquet fixture (recorded
/// decisions, latencies, numeric and escaped ids, lines the scanner declines) and a generated
/// trace, with sessions read and left out.
#[test]
fn records_from_columns_equal_records_from_whole_lines() {
    let dir = tempfile::tempdir().unwrap();
    let generated = dir.path().join("generated.jsonl");
    let mut out = std::fs::File::create(&generated).unwrap();
    let lines = [
        r#"{"ts":"2026-08-01T10:00:00Z","server":"s","tool":"a","id":7,"latency_ms":12.5,"args":{"x":1}}"#,
        r#"{"ts":"2026-08-01T10:00:01Z","server":"s","grant":"g","session":"x","tool":"a","id":"q\"1","latency_ms":1e2}"#,
        r#"{"ts":"2026-08-01T10:00:02Z","server":"s","tool":"b","recorded":{"decision":"deny","rule":"r","message":"m"},"latency_ms":3}"#,
        r#"{"ts":"2026-08-01T10:00:03Z","server":"s","tool":"b","arg_keys":["k"],"upstream":"error","latency_ms":null}"#,
        r#"{"ts":"2026-08-01T10:00:04Z","server":"s","tool":"b","args":{"deep":[[[[{"a":"\u00e9"}]]]]},"extra":{"x":[1,2]}}"#,
    ];
    for line in lines {
        writeln!(out, "{line}").unwrap();
    }
    drop(out);
    let mut inputs: Vec<String> =
        std::fs::read_dir(format!("{}/fixtures/traces", env!("CARGO_MANIFEST_DIR")))
            .unwrap()
            .map(|e| e.unwrap().path().display().to_string())
            .filter(|p| p.ends_with(".jsonl") || p.ends_with(".parquet"))
            .collect();
    inputs.sort();
    inputs.push(generated.display().to_string());
    // The same lines as Parquet, latencies read from their column alone.
    let parquet = dir.path().join("generated.parquet");
    let (records, _) = read(&[generated.to_str().unwrap()]);
    write_parquet(&records, &mut std::fs::File::create(&parquet).unwrap()).unwrap();
    inputs.push(parquet.display().to_string());
    let mut latencies = 0;
    let mut from_columns = 0;
    for input in &inputs {
        for skip_sessions in [false, true] {
            let Ok(mut trace) = Trace::open(std::slice::from_ref(input), &ReadOptions::default())
            else {
                continue;
            };
            if skip_sessions {
                trace.skip_sessions();
            }
            while let Ok(Some(call)) = trace.next_call() {
                let mut whole = call.batch.rows.record(call.row);
                whole.origin.file = call.batch.file;
                from_columns += usize::from(call.batch.rows.rest(call.row).is_some());
                let latency = call.batch.rows.latency(call.row);
                latencies += usize::from(latency.is_some());
                assert_eq!(latency, whole.latency_ms, "{input} #{}", call.index);
                assert_eq!(call.record(), whole, "{input} #{}", call.index);
            }
        }
    }
    assert!(
        from_columns > 100,
        "records built from columns: {from_columns}"
    );
    assert!(latencies > 100, "latencies: {latencies}");
}

/// A CSV file of several parser batches (16,384 records each) with bad records in different
/// batches (malformed rows make polars reject the first two, which are then parsed a record at
/// a time; the third parses whole): every good record is read once, in order, and every bad one
/// is counted with its line, the examples in file order; `--strict` names the first.
#[test]
fn csv_bad_records_across_parser_batches_are_counted_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("many.csv");
    let mut body = b"ts,tool,args\n".to_vec();
    let rows = 40_000u64;
    // Lines of the bad records (the header is line 1, record r is line r + 1).
    let not_utf8 = [20_001u64];
    let malformed = [6u64, 16_390, 30_001];
    let bad_json = [35_000u64];
    for line in 2..rows + 2 {
        let ts = format!(
            "2026-08-01T09:{:02}:{:02}Z",
            line / 3600 % 60,
            line / 60 % 60
        );
        if not_utf8.contains(&line) {
            body.extend_from_slice(ts.as_bytes());
            body.extend_from_slice(b",t\xff,\n");
        } else if malformed.contains(&line) {
            body.extend_from_slice(format!("{ts},t,{{}},surplus\n").as_bytes());
        } else if bad_json.contains(&line) {
            body.extend_from_slice(format!("{ts},t,\"{{\"\"a\"\":\"\n").as_bytes());
        } else {
            body.extend_from_slice(
                format!("{ts},t{},\"{{\"\"n\"\":{line}}}\"\n", line % 7).as_bytes(),
            );
        }
    }
    std::fs::write(&path, &body).unwrap();
    let name = path.display().to_string();
    let opts = ReadOptions {
        from: Some(Format::Csv),
        ..ReadOptions::default()
    };
    let (recs, stats) = read_with(std::slice::from_ref(&name), &opts);
    let bad: Vec<u64> = [&not_utf8[..], &malformed, &bad_json].concat();
    let want: Vec<u64> = (2..rows + 2).filter(|l| !bad.contains(l)).collect();
    let lines: Vec<u64> = recs.iter().map(|r| r.origin.line).collect();
    assert_eq!(lines.len(), want.len());
    assert!(lines == want, "records out of place");
    assert!(
        recs.iter()
            .all(|r| r.tool.starts_with('t') && r.args.values().is_some())
    );
    assert_eq!(stats.skipped, 5);
    assert_eq!(
        stats.skipped_by_reason,
        counts(&[
            ("invalid JSON", 1),
            ("invalid UTF-8", 1),
            ("malformed CSV row", 3)
        ])
    );
    let examples: Vec<u64> = stats.skipped_examples.iter().map(|s| s.line).collect();
    assert_eq!(examples, [6, 16_390, 20_001, 30_001, 35_000]);
    let err = Trace::open(
        std::slice::from_ref(&name),
        &ReadOptions {
            strict: true,
            ..opts
        },
    )
    .and_then(|mut t| {
        while t.next_record()?.is_some() {}
        Ok(())
    })
    .expect_err("strict must fail");
    assert!(
        matches!(err, TraceError::BadRecord { line: 6, .. }),
        "{err:?}"
    );
}

/// Sessions are read as text, not interned into the table of names every reader shares: a
/// trace with a new session on every call leaves that table as small as its servers, grants and
/// tools, in each of mcpsim's own formats, and every call still has its session.
#[test]
fn sessions_stay_out_of_the_shared_names() {
    let recs: Vec<CallRecord> = (0..20_000)
        .map(|i| CallRecord {
            ts: ts("2026-08-01T00:00:00Z") + i * 1_000_000,
            server: sym("srv"),
            grant: Some(sym(if i % 2 == 0 { "g0" } else { "g1" })),
            session: match i % 5 {
                0 => None,
                1 => Some(sym("")),
                _ => Some(sym(&format!("session-{i}"))),
            },
            tool: sym("t"),
            args: Args::Unrecorded,
            id: None,
            recorded: None,
            upstream: None,
            latency_ms: None,
            origin: Origin::default(),
        })
        .collect();
    let dir = tempfile::tempdir().unwrap();
    type Writer = fn(&[CallRecord], &mut dyn Write) -> Result<u64, TraceError>;
    let writers: [(&str, Writer); 3] = [
        ("jsonl", |r, w| write_jsonl(r, w)),
        ("csv", |r, w| write_csv(r, w)),
        ("parquet", |r, w| write_parquet(r, w)),
    ];
    for (ext, write) in writers {
        let path = dir.path().join(format!("sessions.{ext}"));
        write(&recs, &mut std::fs::File::create(&path).unwrap()).unwrap();
        let mut t = Trace::open(
            &[path.to_str().unwrap().to_string()],
            &ReadOptions::default(),
        )
        .unwrap();
        let mut n = 0;
        while let Some(call) = t.next_call().unwrap() {
            let want = recs[n].session.as_deref();
            assert_eq!(call.session(), want, "{ext}: call {n}");
            assert_eq!(call.view((&Args::Unrecorded).into()).session, want, "{ext}");
            n += 1;
        }
        assert_eq!(n, recs.len(), "{ext}");
        // srv, g0, g1 and t.
        assert_eq!(t.symbols().len(), 4, "{ext}");
    }
}
