//! Readers of agent-side logs (Claude Code transcripts, opencode event streams, Codex rollouts)
//! against their fixtures in `fixtures/traces/`.

use mcpsim::trace::{
    AgentGrant, AgentOptions, Args, CallRecord, Format, ReadOptions, ReadStats, Trace, Upstream,
};
use serde_json::json;

use crate::trace::{assert_round_trips, counts, fixture, read, read_with, ts};

/// (server, tool, id, upstream, latency) of each call.
type Row = (
    String,
    String,
    Option<String>,
    Option<Upstream>,
    Option<f64>,
);

fn rows(recs: &[CallRecord]) -> Vec<Row> {
    recs.iter()
        .map(|r| {
            (
                r.server.to_string(),
                r.tool.to_string(),
                r.id.clone(),
                r.upstream,
                r.latency_ms.map(|l| (l * 1000.0).round() / 1000.0),
            )
        })
        .collect()
}

fn row(server: &str, tool: &str, id: &str, up: Option<Upstream>, lat: Option<f64>) -> Row {
    (
        server.to_string(),
        tool.to_string(),
        Some(id.to_string()),
        up,
        lat,
    )
}

fn read_agent(name: &str, agent: AgentOptions) -> (Vec<CallRecord>, ReadStats) {
    read_with(
        &[fixture(name)],
        &ReadOptions {
            agent,
            ..ReadOptions::default()
        },
    )
}

/// Read `body` from a file, checking that it is detected as `format`.
fn read_text(body: &str, format: Format) -> (Vec<CallRecord>, ReadStats) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log.jsonl").display().to_string();
    std::fs::write(&path, body).unwrap();
    let (recs, stats) = read_with(std::slice::from_ref(&path), &ReadOptions::default());
    assert_eq!(stats.per_file[0].1, format);
    (recs, stats)
}

/// The error `--strict` gives for `body` read as `format` (and as detected).
fn strict_error(format: Format, body: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.jsonl");
    std::fs::write(&path, body).unwrap();
    let name = path.display().to_string();
    let mut msgs = Vec::new();
    for from in [Some(format), None] {
        let opts = ReadOptions {
            from,
            strict: true,
            ..ReadOptions::default()
        };
        let err = Trace::open(std::slice::from_ref(&name), &opts)
            .err()
            .unwrap_or_else(|| panic!("{format} must fail under --strict: {body}"));
        msgs.push(err.to_string().replace(&name, "t.jsonl"));
    }
    assert_eq!(msgs[0], msgs[1], "detected and named read the same");
    msgs.remove(0)
}

#[test]
fn claude_code_transcript_pairs_results_by_tool_use_id() {
    let (recs, stats) = read(&[&fixture("claude-code-session.jsonl")]);
    assert_eq!(stats.per_file[0].1, Format::ClaudeCode);
    use Upstream::*;
    assert_eq!(
        rows(&recs),
        [
            row(
                "github",
                "get_issue",
                "toolu_01GetIssue412aaaa",
                Some(Ok),
                Some(750.0)
            ),
            // Parallel calls in one message; their results came back in the other order.
            row(
                "github",
                "list_pull_requests",
                "toolu_01ListPrsccccccccc",
                Some(Ok),
                Some(760.0)
            ),
            // A server name with an underscore.
            row(
                "billing_db",
                "run_query",
                "toolu_01RunQueryddddddddd",
                Some(ToolError),
                Some(760.0)
            ),
            // One message written over two lines; "MCP error -32602: …" is a JSON-RPC error.
            row(
                "github",
                "create_issue",
                "toolu_01CreateIssueeeeee",
                Some(Error),
                Some(368.0)
            ),
            row(
                "billing_db",
                "run_query",
                "toolu_01RunQueryffffffffff",
                Some(Ok),
                Some(1082.0)
            ),
            // Made by a subagent, on a sidechain line.
            row(
                "github",
                "search_code",
                "toolu_01SearchCodehhhhhh",
                Some(Ok),
                Some(890.0)
            ),
            // Refused at the permission prompt: never sent, no outcome.
            row(
                "github",
                "delete_branch",
                "toolu_01DeleteBranchjjjjj",
                None,
                None
            ),
            // The session ended before its result.
            row(
                "github",
                "merge_pull_request",
                "toolu_01MergePriiiiiiiii",
                None,
                None
            ),
        ]
    );
    let first = &recs[0];
    assert_eq!(first.ts, ts("2026-08-01T09:00:03.120Z"));
    assert_eq!(
        first.session.as_deref(),
        Some("4f1c2a9e-7b3d-4e8a-9c21-5d6f70a8b3e1")
    );
    assert_eq!(first.grant.as_deref(), Some("/home/dana/src/billing-api"));
    assert_eq!(
        first.args,
        Args::Values(
            json!({"owner":"dana","repo":"billing-api","issue_number":412})
                .as_object()
                .unwrap()
                .clone()
        )
    );
    assert_eq!(first.origin.line, 4);
    assert_eq!(stats.skipped, 0);
    assert_eq!(
        stats.ignored,
        counts(&[
            ("assistant message without a tool call", 2),
            ("built-in tool Bash", 1),
            ("built-in tool Task", 1),
            ("file-history-snapshot line", 1),
            ("reply to another request", 2),
            ("summary line", 1),
            ("system line", 1),
            ("tool result: refused by the user", 1),
            ("user message without a tool result", 2),
        ])
    );
    let replies = stats.replies.as_ref().unwrap();
    assert_eq!(
        (
            replies.paired,
            replies.requests_without_reply,
            replies.replies_without_request
        ),
        (6, 1, 0)
    );
    // The call refused at line 22 was never sent: not a request without a reply.
    let lines: Vec<u64> = replies.examples.iter().map(|e| e.line).collect();
    assert_eq!(lines, [24]);
    assert_round_trips(&recs);
}

#[test]
fn claude_code_grant_is_the_project_the_model_none_or_fixed() {
    let grants = |grant: AgentGrant| -> Vec<Option<String>> {
        let (recs, _) = read_agent(
            "claude-code-session.jsonl",
            AgentOptions {
                grant,
                ..AgentOptions::default()
            },
        );
        let mut g: Vec<Option<String>> = recs
            .iter()
            .map(|r| r.grant.as_deref().map(str::to_string))
            .collect();
        g.dedup();
        g
    };
    let s = |v: &str| Some(v.to_string());
    assert_eq!(
        grants(AgentGrant::Project),
        [s("/home/dana/src/billing-api")]
    );
    // The subagent ran on another model.
    assert_eq!(
        grants(AgentGrant::Model),
        [
            s("claude-sonnet-4-5-20250929"),
            s("claude-haiku-4-5-20251001"),
            s("claude-sonnet-4-5-20250929")
        ]
    );
    assert_eq!(grants(AgentGrant::None), [None]);
    assert_eq!(grants(AgentGrant::Fixed("ci".into())), [s("ci")]);
}

#[test]
fn claude_code_known_servers_split_names_with_double_underscores() {
    let body = concat!(
        r#"{"parentUuid":null,"isSidechain":false,"type":"assistant","sessionId":"s1","timestamp":"2026-08-01T09:00:00Z","message":{"role":"assistant","model":"m","content":[{"type":"tool_use","id":"toolu_1","name":"mcp__corp__files__read_file","input":{}},{"type":"tool_use","id":"toolu_2","name":"mcp__nodelimiter","input":{}}]}}"#,
        "\n"
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.jsonl").display().to_string();
    std::fs::write(&path, body).unwrap();
    let split = |servers: &[&str]| {
        let opts = ReadOptions {
            agent: AgentOptions {
                mcp_servers: servers.iter().map(|s| s.to_string()).collect(),
                ..AgentOptions::default()
            },
            ..ReadOptions::default()
        };
        let (recs, stats) = read_with(std::slice::from_ref(&path), &opts);
        assert_eq!(
            stats.ignored,
            counts(&[("tool mcp__nodelimiter (no server in its name)", 1)])
        );
        (recs[0].server.to_string(), recs[0].tool.to_string())
    };
    assert_eq!(split(&[]), ("corp".into(), "files__read_file".into()));
    // Given as configured; Claude Code writes `corp.files` as `corp_files`, `corp__files` stays.
    assert_eq!(
        split(&["corp__files"]),
        ("corp__files".into(), "read_file".into())
    );
}

#[test]
fn claude_code_interrupted_calls_have_no_outcome() {
    let body = concat!(
        r#"{"parentUuid":null,"isSidechain":false,"type":"assistant","sessionId":"s1","timestamp":"2026-08-01T09:00:00Z","message":{"role":"assistant","model":"m","content":[{"type":"tool_use","id":"toolu_1","name":"mcp__github__search_code","input":{"q":"x"}}]}}"#,
        "\n",
        r#"{"parentUuid":"a","isSidechain":false,"type":"user","sessionId":"s1","timestamp":"2026-08-01T09:00:09Z","message":{"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_1","content":[{"type":"text","text":"[Request interrupted by user for tool use]"}],"is_error":true}]}}"#,
        "\n",
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.jsonl").display().to_string();
    std::fs::write(&path, body).unwrap();
    let (recs, stats) = read_with(std::slice::from_ref(&path), &ReadOptions::default());
    assert_eq!(
        rows(&recs),
        [row("github", "search_code", "toolu_1", None, None)]
    );
    assert_eq!(
        stats.ignored,
        counts(&[("tool result: interrupted by the user", 1)])
    );
    assert_eq!(stats.replies.unwrap().requests_without_reply, 1);
}

/// Results Claude Code writes for calls it did not run (a permission rule or mode, a
/// non-interactive run, a hook, a tool_use_error, a cancel, or a line's `toolDenialKind`):
/// those calls have no outcome and no latency, counted by why, and are not requests waiting
/// for a reply; a server's error stays one.
#[test]
fn claude_code_calls_it_did_not_run_have_no_outcome() {
    let call = |n: usize| {
        format!(
            r#"{{"parentUuid":null,"isSidechain":false,"cwd":"/p","sessionId":"s-1","type":"assistant","message":{{"role":"assistant","model":"m","content":[{{"type":"tool_use","id":"toolu_{n}","name":"mcp__shop__refund","input":{{}}}}]}},"uuid":"a{n}","timestamp":"2026-08-01T09:00:{n:02}.000Z"}}"#
        )
    };
    let result = |n: usize, text: &str, extra: &str| {
        format!(
            r#"{{"parentUuid":"a{n}","isSidechain":false,"cwd":"/p","sessionId":"s-1","type":"user","message":{{"role":"user","content":[{{"tool_use_id":"toolu_{n}","type":"tool_result","content":"{text}","is_error":true}}]}},"uuid":"u{n}","timestamp":"2026-08-01T09:00:{n:02}.010Z"{extra}}}"#
        )
    };
    let texts = [
        "Permission to use mcp__shop__refund has been denied because Claude Code is running in don't ask mode.",
        "Claude requested permissions to use mcp__shop__refund, but you haven't granted it yet.",
        "PreToolUse:mcp__shop__refund hook error: blocked",
        "<tool_use_error>Error: No such tool available: mcp__shop__refund</tool_use_error>",
        "The user doesn't want to take this action right now. STOP what you are doing.",
        "Refunds are paused.",
        "MCP error -32000: Connection closed",
    ];
    let mut lines = Vec::new();
    for (i, text) in texts.iter().enumerate() {
        let extra = if i == 5 {
            r#","toolDenialKind":"permission-rule""#
        } else {
            ""
        };
        lines.push(call(i + 1));
        lines.push(result(i + 1, text, extra));
    }
    let (recs, stats) = read_text(&(lines.join("\n") + "\n"), Format::ClaudeCode);
    let up: Vec<_> = recs.iter().map(|r| (r.upstream, r.latency_ms)).collect();
    let none = (None, None);
    assert_eq!(
        up,
        [
            none,
            none,
            none,
            none,
            none,
            none,
            (Some(Upstream::Error), Some(10.0))
        ]
    );
    assert_eq!(
        stats.ignored,
        counts(&[
            ("tool result: blocked by a PreToolUse hook", 1),
            ("tool result: cancelled by the user", 1),
            ("tool result: denied by a permission rule or mode", 1),
            ("tool result: not run (permission-rule)", 1),
            (
                "tool result: permission not granted (no prompt in a non-interactive run)",
                1
            ),
            (
                "tool result: refused before it was sent (tool_use_error)",
                1
            ),
        ])
    );
    // Settled, not waiting for a reply: the one server error paired, nothing unanswered.
    let replies = stats.replies.unwrap();
    assert_eq!((replies.paired, replies.requests_without_reply), (1, 0));
}

#[test]
fn claude_code_bad_lines_name_line_and_field() {
    let call = |ts: &str, name: &str| {
        format!(
            r#"{{"parentUuid":null,"isSidechain":false,"type":"assistant","sessionId":"s1",{ts}"message":{{"role":"assistant","content":[{{"type":"tool_use","id":"toolu_1","name":"{name}","input":{{}}}}]}}}}"#
        )
    };
    assert_eq!(
        strict_error(Format::ClaudeCode, &call("", "mcp__a__b")),
        "t.jsonl:1: field `timestamp`: missing"
    );
    assert_eq!(
        strict_error(
            Format::ClaudeCode,
            &call(r#""timestamp":"yesterday","#, "mcp__a__b")
        ),
        "t.jsonl:1: field `timestamp`: cannot parse \"yesterday\" as a timestamp"
    );
    let no_name = r#"{"parentUuid":null,"isSidechain":false,"type":"assistant","timestamp":"2026-08-01T09:00:00Z","message":{"content":[{"type":"text","text":"hi"},{"type":"tool_use","id":"toolu_1","input":{}}]}}"#;
    assert_eq!(
        strict_error(Format::ClaudeCode, no_name),
        "t.jsonl:1: field `message.content[1].name`: missing"
    );
    let bad_error = r#"{"parentUuid":"p","isSidechain":false,"type":"user","timestamp":"2026-08-01T09:00:00Z","message":{"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_1","content":"x","is_error":"yes"}]}}"#;
    assert_eq!(
        strict_error(Format::ClaudeCode, bad_error),
        "t.jsonl:1: field `message.content[0].is_error`: expected a boolean, found a string"
    );
}

#[test]
fn opencode_events_hold_whole_calls_timed_by_the_tool_part() {
    let (recs, stats) = read(&[&fixture("opencode-run.jsonl")]);
    assert_eq!(stats.per_file[0].1, Format::OpenCode);
    use Upstream::*;
    assert_eq!(
        rows(&recs),
        [
            row(
                "github",
                "get_issue",
                "toolu_01Fq8Zk2GetIssue",
                Some(Ok),
                Some(953.0)
            ),
            // Parallel calls: written as each ended, handed out in the order they started.
            row(
                "github",
                "list_pull_requests",
                "toolu_01Kr4Vc8ListPrs",
                Some(Ok),
                Some(1490.0)
            ),
            // Without --mcp-server the name splits at the first `_`.
            row(
                "billing",
                "db_run_query",
                "toolu_01Jp3Nb6RunQuery",
                Some(Ok),
                Some(805.0)
            ),
            row(
                "github",
                "create_issue",
                "toolu_01Ls5Xd0CreateIssue",
                Some(Error),
                Some(1560.0)
            ),
            row(
                "billing",
                "db_run_query",
                "toolu_01Mt6Ze2RunQuery",
                Some(ToolError),
                Some(1090.0)
            ),
            // Aborted while running: no result.
            row(
                "github",
                "merge_pull_request",
                "toolu_01Ov8Bg6MergePr",
                None,
                None
            ),
        ]
    );
    assert_eq!(recs[0].ts, ts("2026-08-01T09:00:03.050Z"));
    assert_eq!(
        recs[0].session.as_deref(),
        Some("ses_3f2a91c7effeq8VnL0bT4mXz2R")
    );
    // The events name no project and no model.
    assert!(recs.iter().all(|r| r.grant.is_none()));
    assert_eq!(
        recs[1].args,
        Args::Values(
            json!({"owner":"dana","repo":"billing-api","state":"open"})
                .as_object()
                .unwrap()
                .clone()
        )
    );
    assert_eq!(stats.out_of_order, 1);
    assert_eq!(stats.skipped, 0);
    assert_eq!(
        stats.ignored,
        counts(&[
            ("built-in tool bash", 1),
            ("built-in tool task", 1),
            ("error event", 1),
            ("step_finish event", 3),
            ("step_start event", 4),
            ("text event", 2),
        ])
    );
    assert_round_trips(&recs);
}

#[test]
fn opencode_mcp_servers_split_names_and_leave_other_tools_out() {
    let opts = AgentOptions {
        mcp_servers: vec!["billing_db".into(), "github".into()],
        grant: AgentGrant::Fixed("eval-run-7".into()),
    };
    let (recs, stats) = read_agent("opencode-run.jsonl", opts);
    let names: Vec<(String, String)> = recs
        .iter()
        .map(|r| (r.server.to_string(), r.tool.to_string()))
        .collect();
    assert_eq!(names[2], ("billing_db".into(), "run_query".into()));
    assert_eq!(recs.len(), 6);
    assert!(
        recs.iter()
            .all(|r| r.grant.as_deref() == Some("eval-run-7"))
    );

    let only_db = AgentOptions {
        mcp_servers: vec!["billing_db".into()],
        ..AgentOptions::default()
    };
    let (recs, stats_db) = read_agent("opencode-run.jsonl", only_db);
    assert_eq!(recs.len(), 2);
    assert!(recs.iter().all(|r| &*r.server == "billing_db"));
    assert_eq!(
        stats_db
            .ignored
            .get("tool github_get_issue (of no --mcp-server)"),
        Some(&1)
    );
    assert_eq!(stats.ignored.get("built-in tool bash"), Some(&1));
}

#[test]
fn opencode_bad_lines_name_line_and_field() {
    let event = |state: &str| {
        format!(
            r#"{{"type":"tool_use","timestamp":1785574804010,"sessionID":"ses_1","part":{{"id":"prt_1","sessionID":"ses_1","messageID":"msg_1","type":"tool","callID":"call_1","tool":"github_get_me","state":{state}}}}}"#
        )
    };
    assert_eq!(
        strict_error(Format::OpenCode, &event(r#"{"status":"done","input":{}}"#)),
        "t.jsonl:1: field `part.state.status`: unknown status \"done\" (expected completed, error, pending or running)"
    );
    assert_eq!(
        strict_error(
            Format::OpenCode,
            &event(r#"{"status":"completed","input":{},"time":{"start":"soon","end":1}}"#)
        ),
        "t.jsonl:1: field `part.state.time.start`: expected epoch milliseconds, found a string"
    );
    assert_eq!(
        strict_error(
            Format::OpenCode,
            r#"{"type":"tool_use","timestamp":1785574804010,"sessionID":"ses_1","part":{"type":"tool","state":{}}}"#
        ),
        "t.jsonl:1: field `part.tool`: missing"
    );
}

#[test]
fn codex_rollout_pairs_function_call_outputs_by_call_id() {
    let (recs, stats) = read(&[&fixture("codex-rollout.jsonl")]);
    assert_eq!(stats.per_file[0].1, Format::Codex);
    use Upstream::*;
    assert_eq!(
        rows(&recs),
        [
            row(
                "github",
                "get_issue",
                "call_Q2fXyd0vK7eLr9mN3pT5sU1w",
                Some(Ok),
                Some(770.0)
            ),
            // Parallel calls; their outputs came back in the other order.
            row(
                "github",
                "list_pull_requests",
                "call_A1b2C3d4E5f6G7h8I9j0K1l2",
                Some(Ok),
                Some(1292.0)
            ),
            row(
                "billing_db",
                "run_query",
                "call_M3n4O5p6Q7r8S9t0U1v2W3x4",
                Some(Ok),
                Some(758.0)
            ),
            // `err: …`: the MCP client got no result.
            row(
                "github",
                "create_issue",
                "call_K7l8M9n0O1p2Q3r4S5t6U7v8",
                Some(Error),
                Some(340.0)
            ),
            // The turn was interrupted before its output.
            row(
                "github",
                "merge_pull_request",
                "call_W9x0Y1z2A3b4C5d6E7f8G9h0",
                None,
                None
            ),
        ]
    );
    assert!(recs.iter().all(|r| r.session.as_deref()
        == Some("0199a3c2-7e4b-7d10-9f3a-2b5c8e1d4f60")
        && r.grant.as_deref() == Some("/home/dana/src/billing-api")));
    assert_eq!(recs[0].ts, ts("2026-08-01T09:00:03.410Z"));
    // Arguments arrive as a string holding JSON.
    assert_eq!(
        recs[0].args,
        Args::Values(
            json!({"owner":"dana","repo":"billing-api","issue_number":412})
                .as_object()
                .unwrap()
                .clone()
        )
    );
    assert_eq!(stats.skipped, 0);
    assert_eq!(
        stats.ignored,
        counts(&[
            ("built-in tool apply_patch", 1),
            ("built-in tool shell", 1),
            ("event agent_message", 1),
            ("event token_count", 1),
            ("event turn_aborted", 1),
            ("event user_message", 1),
            ("message item", 3),
            ("reasoning item", 1),
            ("reply to another request", 2),
            ("session_meta line", 1),
            ("turn_context line", 1),
        ])
    );
    let replies = stats.replies.as_ref().unwrap();
    assert_eq!((replies.paired, replies.requests_without_reply), (4, 1));
    assert_round_trips(&recs);

    let (recs, _) = read_agent(
        "codex-rollout.jsonl",
        AgentOptions {
            grant: AgentGrant::Model,
            ..AgentOptions::default()
        },
    );
    assert!(
        recs.iter()
            .all(|r| r.grant.as_deref() == Some("gpt-5-codex"))
    );
}

#[test]
fn codex_older_rollouts_name_tools_without_prefix_and_flag_failures() {
    let body = concat!(
        r#"{"timestamp":"2026-08-01T09:00:00.000Z","type":"session_meta","payload":{"id":"s-old","timestamp":"2026-08-01T09:00:00.000Z","cwd":"/p","originator":"codex_cli_rs","cli_version":"0.30.0","instructions":null}}"#,
        "\n",
        r#"{"timestamp":"2026-08-01T09:00:01.000Z","type":"response_item","payload":{"type":"function_call","name":"billing_db__run_query","arguments":"{\"sql\":\"select 1\"}","call_id":"call_1"}}"#,
        "\n",
        r#"{"timestamp":"2026-08-01T09:00:01.250Z","type":"response_item","payload":{"type":"function_call_output","call_id":"call_1","output":{"content":"permission denied","success":false}}}"#,
        "\n",
        r#"{"timestamp":"2026-08-01T09:00:02.000Z","type":"response_item","payload":{"type":"function_call","name":"billing_db__run_query","arguments":"[1]","call_id":"call_2"}}"#,
        "\n",
        r#"{"timestamp":"2026-08-01T09:00:02.100Z","type":"response_item","payload":{"type":"function_call_output","call_id":"call_2","output":{"content":"ok","success":true}}}"#,
        "\n",
    );
    let (recs, _) = read_text(body, Format::Codex);
    assert_eq!(
        rows(&recs),
        [
            row(
                "billing_db",
                "run_query",
                "call_1",
                Some(Upstream::ToolError),
                Some(250.0)
            ),
            row(
                "billing_db",
                "run_query",
                "call_2",
                Some(Upstream::Ok),
                Some(100.0)
            ),
        ]
    );
    assert_eq!(recs[1].args, Args::NotObject("[1]".into()));
    assert_eq!(recs[0].session.as_deref(), Some("s-old"));
}

/// Newer Codex releases: the tool in `name` and `mcp__<server>__` (or without the trailing
/// `__`, or an app's `mcp__codex_apps__<app>`) in `namespace`; how a call ended is in its
/// `mcp_tool_call_end` event (`Ok` with `isError`, or `Err`), whichever of it and the output
/// comes first, the other counted.
#[test]
fn codex_newer_rollouts_use_namespaces_and_end_events() {
    let body = concat!(
        r#"{"timestamp":"2026-08-01T09:00:00.000Z","type":"session_meta","payload":{"id":"s-new","cwd":"/p"}}"#,
        "\n",
        r#"{"timestamp":"2026-08-01T09:00:01.000Z","type":"response_item","payload":{"type":"function_call","name":"run_query","namespace":"mcp__billing_db__","arguments":"{\"sql\":\"select 1\"}","call_id":"call_1"}}"#,
        "\n",
        r#"{"timestamp":"2026-08-01T09:00:01.390Z","type":"event_msg","payload":{"type":"mcp_tool_call_end","call_id":"call_1","invocation":{"server":"billing_db","tool":"run_query","arguments":{"sql":"select 1"}},"duration":{"secs":0,"nanos":390000000},"result":{"Ok":{"content":[{"type":"text","text":"permission denied"}],"isError":true}}}}"#,
        "\n",
        r#"{"timestamp":"2026-08-01T09:00:01.400Z","type":"response_item","payload":{"type":"function_call_output","call_id":"call_1","output":"[{\"type\":\"text\",\"text\":\"permission denied\"}]"}}"#,
        "\n",
        r#"{"timestamp":"2026-08-01T09:00:02.000Z","type":"response_item","payload":{"type":"function_call","name":"create_issue","namespace":"mcp__github","arguments":"{}","call_id":"call_2"}}"#,
        "\n",
        r#"{"timestamp":"2026-08-01T09:01:02.000Z","type":"response_item","payload":{"type":"function_call_output","call_id":"call_2","output":"[{\"type\":\"text\",\"text\":\"tool call error: request timed out\"}]"}}"#,
        "\n",
        r#"{"timestamp":"2026-08-01T09:01:02.010Z","type":"event_msg","payload":{"type":"mcp_tool_call_end","call_id":"call_2","invocation":{"server":"github","tool":"create_issue"},"result":{"Err":"tool call error: request timed out"}}}"#,
        "\n",
        r#"{"timestamp":"2026-08-01T09:01:03.000Z","type":"response_item","payload":{"type":"function_call","name":"_send_email","namespace":"mcp__codex_apps__gmail","arguments":"{}","call_id":"call_3"}}"#,
        "\n",
        r#"{"timestamp":"2026-08-01T09:01:03.500Z","type":"event_msg","payload":{"type":"mcp_tool_call_end","call_id":"call_3","invocation":{"server":"codex_apps","tool":"gmail_send_email"},"result":{"Err":"tool call error: Mcp error: -32001: request timed out"}}}"#,
        "\n",
    );
    let (recs, stats) = read_text(body, Format::Codex);
    assert_eq!(
        rows(&recs),
        [
            row(
                "billing_db",
                "run_query",
                "call_1",
                Some(Upstream::ToolError),
                Some(390.0)
            ),
            // The output came first (it reads `ok`: newer releases write errors as text).
            row(
                "github",
                "create_issue",
                "call_2",
                Some(Upstream::Ok),
                Some(60000.0)
            ),
            row(
                "codex_apps",
                "gmail_send_email",
                "call_3",
                Some(Upstream::Error),
                Some(500.0)
            ),
        ]
    );
    assert_eq!(
        stats.ignored,
        counts(&[
            ("event mcp_tool_call_end (its output read first)", 1),
            ("function_call_output (its mcp_tool_call_end read first)", 1),
            ("session_meta line", 1),
        ])
    );
}

/// opencode writes the MCP client's `McpError` through `toString()`; a call the user did not
/// permit never reached the server.
#[test]
fn opencode_client_errors_and_refusals() {
    let part = |id: &str, status: &str, error: &str| {
        format!(
            r#"{{"type":"tool_use","timestamp":1785574806900,"sessionID":"ses_1","part":{{"id":"prt_{id}","sessionID":"ses_1","callID":"{id}","tool":"github_create_issue","state":{{"status":"{status}","input":{{}},"error":"{error}","time":{{"start":1785574806100,"end":1785574806890}}}}}}}}"#
        )
    };
    let body = [
        part("a", "error", "McpError: MCP error -32001: Request timed out"),
        part("b", "error", "MCP error -32602: Invalid arguments"),
        part(
            "c",
            "error",
            "Error: The user rejected permission to use this specific tool call.",
        ),
        part(
            "d",
            "error",
            "The user rejected permission to use this specific tool call with the following feedback: no",
        ),
        part("e", "error", "Error: ENOENT"),
    ]
    .join("\n")
        + "\n";
    let (recs, stats) = read_text(&body, Format::OpenCode);
    let up: Vec<_> = recs.iter().map(|r| (r.upstream, r.latency_ms)).collect();
    assert_eq!(
        up,
        [
            (Some(Upstream::Error), Some(790.0)),
            (Some(Upstream::Error), Some(790.0)),
            (None, None),
            (None, None),
            (Some(Upstream::ToolError), Some(790.0)),
        ]
    );
    assert_eq!(
        stats.ignored,
        counts(&[("tool result: refused by the user", 2)])
    );
}

#[test]
fn codex_bad_lines_name_line_and_field() {
    let call = |ts: &str, args: &str| {
        format!(
            r#"{{{ts}"type":"response_item","payload":{{"type":"function_call","name":"mcp__github__get_me","arguments":{args},"call_id":"call_1"}}}}"#
        )
    };
    assert_eq!(
        strict_error(
            Format::Codex,
            &call(r#""timestamp":"2026-08-01T09:00:00Z","#, r#""{\"a\":""#)
        ),
        "t.jsonl:1: field `payload.arguments`: invalid JSON: EOF while parsing a value at line 1 column 5"
    );
    assert_eq!(
        strict_error(
            Format::Codex,
            &call(r#""timestamp":"2026-08-01T09:00:00Z","#, "7")
        ),
        "t.jsonl:1: field `payload.arguments`: expected a string holding JSON, found a number"
    );
    assert_eq!(
        strict_error(
            Format::Codex,
            r#"{"timestamp":"2026-08-01T09:00:00Z","type":"response_item","payload":{"type":"function_call_output","output":"x"}}"#
        ),
        "t.jsonl:1: field `payload.call_id`: missing"
    );
}

#[test]
fn cline_task_messages_answer_one_call_at_a_time() {
    // Cline keeps it as `tasks/<task id>/ui_messages.json`: the task id is the session.
    let dir = tempfile::tempdir().unwrap();
    let task = dir.path().join("tasks").join("1785574800000");
    std::fs::create_dir_all(&task).unwrap();
    let file = task.join("ui_messages.json").display().to_string();
    std::fs::copy(fixture("cline-ui-messages.json"), &file).unwrap();
    let (recs, stats) = read(&[&file]);
    assert_eq!(stats.per_file[0].1, Format::Cline);
    type Got<'a> = (&'a str, &'a str, Option<Upstream>, Option<f64>, u64);
    let got: Vec<Got> = recs
        .iter()
        .map(|r| {
            (
                &*r.server,
                &*r.tool,
                r.upstream,
                r.latency_ms,
                r.origin.line,
            )
        })
        .collect();
    use Upstream::*;
    assert_eq!(
        got,
        [
            // Timed from `mcp_server_request_started` (after approval), not the ask.
            ("github", "get_issue", Some(Ok), Some(750.0), 4),
            // Auto-approved (a `say`); `Error:\n…` is a result with isError.
            ("billing_db", "run_query", Some(ToolError), Some(1090.0), 10),
            // `Error executing MCP tool: MCP error …`: the call failed.
            ("github", "create_issue", Some(Error), Some(340.0), 14),
            // Refused: nothing answered it.
            ("github", "delete_branch", None, None, 20),
            // The task ended while it ran.
            ("github", "merge_pull_request", None, None, 23),
        ]
    );
    assert_eq!(recs[0].ts, ts("2026-08-01T09:00:04.200Z"));
    // Refused, so never sent: the ask's time.
    assert_eq!(recs[3].ts, ts("2026-08-01T09:00:14.500Z"));
    // The session is the task id, the folder's name.
    assert!(
        recs.iter()
            .all(|r| r.session.as_deref() == Some("1785574800000"))
    );
    assert!(recs.iter().all(|r| r.grant.is_none() && r.id.is_none()));
    assert_eq!(
        recs[0].args,
        Args::Values(
            json!({"owner":"dana","repo":"billing-api","issue_number":412})
                .as_object()
                .unwrap()
                .clone()
        )
    );
    assert_eq!(
        stats.ignored,
        counts(&[
            ("MCP resource read", 1),
            ("say api_req_started", 7),
            ("say text", 3),
            ("say tool", 1),
        ])
    );
    let replies = stats.replies.as_ref().unwrap();
    assert_eq!((replies.paired, replies.requests_without_reply), (3, 2));
    let lines: Vec<u64> = replies.examples.iter().map(|e| e.line).collect();
    assert_eq!(lines, [20, 23]);
    assert_round_trips(&recs);

    // Under another name the task id is not known.
    let (recs, _) = read(&[&fixture("cline-ui-messages.json")]);
    assert_eq!(recs.len(), 5);
    assert!(recs.iter().all(|r| r.session.is_none()));
}

/// What Cline writes beyond the plain call: a resource read's own started/response messages
/// (a refused call before it stays unanswered); a failed call that Cline 3.26 and later report
/// only in the next API request; a call cut off while the model wrote it (the request
/// cancelled); the model of each message (`modelInfo`); a file pretty-printed.
#[test]
fn cline_resource_reads_failed_calls_cut_off_calls_and_models() {
    let t0: u64 = 1_785_574_800_000;
    // Keys in Cline's order (`ts` first), pretty-printed as `jq .` would.
    let msg = |dt: u64, kind: &str, what: &str, text: &str| {
        let text = serde_json::to_string(text).unwrap();
        format!(
            "  {{\n    \"ts\": {},\n    \"type\": \"{kind}\",\n    \"{kind}\": \"{what}\",\n    \"text\": {text},\n    \"modelInfo\": {{ \"providerId\": \"anthropic\", \"modelId\": \"claude-sonnet-4-5\", \"mode\": \"act\" }}\n  }}",
            t0 + dt
        )
    };
    let call = |server: &str, tool: &str, args: &str| {
        json!({"type": "use_mcp_tool", "serverName": server, "toolName": tool, "arguments": args})
            .to_string()
    };
    let resource =
        json!({"type": "access_mcp_resource", "serverName": "github", "uri": "repo://readme"})
            .to_string();
    let messages = [
        // Refused: the resource read's messages must not answer it.
        msg(1000, "ask", "use_mcp_server", &call("github", "delete_branch", "{}")),
        msg(5000, "ask", "use_mcp_server", &resource),
        msg(9000, "say", "mcp_server_request_started", ""),
        msg(9100, "say", "mcp_server_response", "# README"),
        // Sent, failed: reported in the next API request only.
        msg(20000, "ask", "use_mcp_server", &call("github", "create_issue", "{}")),
        msg(21000, "say", "mcp_server_request_started", ""),
        msg(21500, "say", "api_req_started", &json!({"request": "[use_mcp_tool for 'github'] Result:\nError executing MCP tool: MCP error -32602: bad"}).to_string()),
        // Cut off by a cancelled request.
        msg(30000, "say", "api_req_started", &json!({"request": "go on", "cancelReason": "user_cancelled"}).to_string()),
        msg(30500, "ask", "use_mcp_server", &call("billing_db", "run_query", "{\n  \"sql\": \"sel")),
    ];
    let body = format!("[\n{}\n]\n", messages.join(",\n"));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ui_messages.json").display().to_string();
    std::fs::write(&path, body).unwrap();
    let agent = AgentOptions {
        grant: mcpsim::trace::AgentGrant::Model,
        ..AgentOptions::default()
    };
    let (recs, stats) = read_with(
        std::slice::from_ref(&path),
        &ReadOptions {
            agent,
            ..ReadOptions::default()
        },
    );
    assert_eq!(stats.per_file[0].1, Format::Cline);
    let got: Vec<_> = (recs.iter())
        .map(|r| (r.tool.to_string(), r.upstream, r.latency_ms))
        .collect();
    assert_eq!(
        got,
        [
            ("delete_branch".to_string(), None, None),
            (
                "create_issue".to_string(),
                Some(Upstream::Error),
                Some(500.0)
            ),
        ]
    );
    assert_eq!(recs[1].grant.as_deref(), Some("claude-sonnet-4-5"));
    assert_eq!(
        stats.ignored,
        counts(&[
            ("MCP resource read", 1),
            ("call cut off while the model wrote it (not sent)", 1),
            ("say api_req_started", 2),
            ("say mcp_server_request_started (of a resource read)", 1),
            ("say mcp_server_response (of a resource read)", 1),
        ])
    );
    assert_eq!(stats.skipped, 0);
}

#[test]
fn cline_bad_messages_are_located_by_position() {
    assert_eq!(
        strict_error(
            Format::Cline,
            r#"[{"ts":1785574800000,"type":"say","say":"text","text":"hi"},{"ts":1785574801000,"type":"ask","ask":"use_mcp_server","text":"{\"type\":\"use_mcp_tool\",\"serverName\":\"github\"}"}]"#
        ),
        "t.jsonl:2: field `text.toolName`: missing"
    );
    assert_eq!(
        strict_error(
            Format::Cline,
            r#"[{"ts":1785574800000,"type":"say","say":"text","text":"hi"},{"ts":"soon","type":"say","say":"use_mcp_server","text":"{}"}]"#
        ),
        "t.jsonl:2: field `ts`: cannot parse \"soon\" as a timestamp"
    );
    // A broken document: what came before stands, the rest is one bad record.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ui_messages.json").display().to_string();
    std::fs::write(
        &path,
        r#"[{"ts":1785574800000,"type":"say","say":"use_mcp_server","text":"{\"type\":\"use_mcp_tool\",\"serverName\":\"github\",\"toolName\":\"get_me\"}"},{"ts":17855"#,
    )
    .unwrap();
    let (recs, stats) = read_with(std::slice::from_ref(&path), &ReadOptions::default());
    assert_eq!(recs.len(), 1);
    assert_eq!(stats.skipped, 1);
    assert_eq!(stats.skipped_examples[0].line, 2);
    assert!(
        stats.skipped_examples[0]
            .reason
            .starts_with("truncated JSON"),
        "{:?}",
        stats.skipped_examples
    );
}

/// A Cline 4 session (`<id>.messages.json`, as Cline's SDK writes it): MCP calls are `tool_use`
/// blocks named `<server>__<tool>`, answered by the `tool_result` of the same id; a result's
/// `isError` is a tool error, an `is_error` result the `{"error"}` of a call that threw (or
/// that the user denied, never sent); the grant is the manifest's `cwd`, or the model.
#[test]
fn cline_sdk_session_pairs_tool_results_by_id() {
    let name = "cline-sdk/1785574800000_ab12c.messages.json";
    let (recs, stats) = read_agent(name, AgentOptions::default());
    assert_eq!(stats.per_file[0].1, Format::Cline);
    use Upstream::*;
    assert_eq!(
        rows(&recs),
        [
            row("github", "list_issues", "toolu_01", Some(Ok), Some(790.0)),
            row(
                "github",
                "add_labels",
                "toolu_03",
                Some(ToolError),
                Some(1500.0)
            ),
            // Refused by the user: never sent.
            row("github", "close_issue", "toolu_04", None, None),
            row(
                "linear",
                "create_issue",
                "toolu_05",
                Some(Error),
                Some(450.0)
            ),
            // The session ends before its result.
            row("github", "get_issue", "toolu_06", None, None),
        ]
    );
    let first = &recs[0];
    assert_eq!(first.ts, ts("2026-08-01T09:00:03.120Z"));
    assert_eq!(first.session.as_deref(), Some("1785574800000_ab12c"));
    assert_eq!(first.grant.as_deref(), Some("/home/dana/src/billing-api"));
    assert_eq!(
        first.args,
        Args::Values(
            json!({"owner": "dana", "repo": "billing-api", "state": "open"})
                .as_object()
                .unwrap()
                .clone()
        )
    );
    assert_eq!(first.origin.line, 2);
    assert_eq!(
        stats.ignored,
        counts(&[
            ("built-in tool read_files", 1),
            ("tool result of a built-in tool", 1),
            ("tool result: refused by the user", 1),
            ("user message without a tool result", 1),
        ])
    );
    let replies = stats.replies.as_ref().unwrap();
    assert_eq!((replies.paired, replies.requests_without_reply), (3, 1));
    assert_eq!(replies.examples[0].line, 10);
    let model = AgentOptions {
        grant: AgentGrant::Model,
        ..AgentOptions::default()
    };
    let (recs, _) = read_agent(name, model);
    assert!(
        recs.iter()
            .all(|r| r.grant.as_deref() == Some("claude-sonnet-4-5-20250929"))
    );
    assert_round_trips(&recs);
}

/// A bad message of a Cline 4 session is skipped alone, located by its position; a document
/// that is not a session is one bad record.
#[test]
fn cline_sdk_bad_messages_are_skipped_alone() {
    let call = |id: &str, ts: &str| {
        format!(
            r#"{{"id":"m","role":"assistant","content":[{{"type":"tool_use","id":"{id}","name":"fs__read","input":{{}}}}]{ts}}}"#
        )
    };
    let body = format!(
        r#"{{"version":1,"updated_at":"2026-08-01T09:00:00Z","sessionId":"s","messages":[{},7,{},{}]}}"#,
        call("a", r#","ts":1785574800000"#),
        call("b", ""),
        call("c", r#","ts":"soon""#),
    );
    let (recs, stats) = read_text(&body, Format::Cline);
    assert_eq!(recs.len(), 1);
    let bad: Vec<_> = (stats.skipped_examples.iter())
        .map(|s| (s.line, s.reason.as_str()))
        .collect();
    assert_eq!(
        bad,
        [
            (
                2,
                "field `messages[1]`: expected a message object, found a number"
            ),
            (3, "field `messages[2].ts`: missing"),
            (
                4,
                "field `messages[3].ts`: cannot parse \"soon\" as a timestamp"
            ),
        ]
    );
    let (recs, stats) = read_text(
        r#"{"version":1,"updated_at":"2026-08-01T09:00:00Z","sessionId":"s","messages":{}}"#,
        Format::Cline,
    );
    assert!(recs.is_empty());
    assert_eq!(stats.skipped, 1);
}
