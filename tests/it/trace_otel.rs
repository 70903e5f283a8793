//! Readers for OpenTelemetry spans, agentgateway access logs and ToolHive audit events, against
//! `fixtures/traces/{otel-spans,agentgateway,toolhive-audit}.jsonl` and small inline inputs.

use mcpsim::trace::{
    Args, CallRecord, Format, Origin, ReadOptions, Recorded, RecordedDecision, Trace, Upstream,
};
use serde_json::{Value, json};

use super::trace::{
    assert_round_trips, counts, fixture, read, read_with, sym, ts, without_origin, write_file,
};

/// A call with what every test sets; the rest is filled in by the caller.
fn call(at: &str, tool: &str, grant: Option<&str>, session: Option<&str>, line: u64) -> CallRecord {
    CallRecord {
        ts: ts(at),
        server: sym("fortios"),
        grant: grant.map(sym),
        session: session.map(sym),
        tool: sym(tool),
        args: Args::Unrecorded,
        id: None,
        recorded: None,
        upstream: None,
        latency_ms: None,
        origin: Origin { file: 0, line },
    }
}

fn values(v: Value) -> Args {
    Args::Values(v.as_object().unwrap().clone())
}

fn decided(d: RecordedDecision) -> Option<Recorded> {
    Some(Recorded {
        decision: Some(d),
        ..Recorded::default()
    })
}

fn strict_error(path: &str) -> String {
    let opts = ReadOptions {
        from: None,
        strict: true,
        ..ReadOptions::default()
    };
    match Trace::open(&[path.to_string()], &opts) {
        Ok(_) => panic!("{path}: --strict must fail"),
        Err(e) => e.to_string(),
    }
}

/// Read one inline input given as `format`, returning the calls and the skipped reasons.
fn read_as(format: Format, body: &str) -> (Vec<CallRecord>, Vec<(u64, String)>) {
    let dir = tempfile::tempdir().unwrap();
    let path = write_file(dir.path(), "input", body);
    let (recs, stats) = read_with(
        &[path],
        &ReadOptions {
            from: Some(format),
            strict: false,
            ..ReadOptions::default()
        },
    );
    let skipped = stats
        .skipped_examples
        .iter()
        .map(|s| (s.line, s.reason.clone()))
        .collect();
    (recs, skipped)
}

#[test]
fn otel_fixture_reads_tools_call_spans_into_calls() {
    let (recs, stats) = read(&[&fixture("otel-spans.jsonl")]);
    assert_eq!(stats.per_file[0].1, Format::OtelSpans);
    let mut status = call(
        "2026-08-01T09:00:02Z",
        "system_status_get",
        Some("netops-bot"),
        Some("os-1"),
        1,
    );
    status.args = values(json!({}));
    status.id = Some("2".into());
    status.upstream = Some(Upstream::Ok);
    status.latency_ms = Some(80.5);
    // No enduser.id: the agent name wins over the client name.
    let mut create = call(
        "2026-08-01T09:00:03Z",
        "firewall_policy_create",
        Some("change-bot"),
        Some("cs-1"),
        1,
    );
    create.args = values(json!({"name": "allow-branch-12", "srcintf": "port1",
                                "dstintf": "port2", "action": "accept"}));
    create.id = Some("req-7".into());
    create.upstream = Some(Upstream::ToolError);
    create.latency_ms = Some(250.5);
    // A JSON-RPC error code as error.type, start time as a JSON number, no arguments.
    let mut list = call(
        "2026-08-01T09:00:10Z",
        "vpn_ipsec_phase1_list",
        Some("vpn-agent"),
        Some("vs-1"),
        3,
    );
    list.id = Some("5".into());
    list.upstream = Some(Upstream::Error);
    list.latency_ms = Some(120.0);
    // The server span of a call whose client span is in the same batch.
    let mut phase2 = call(
        "2026-08-01T09:00:11.010Z",
        "vpn_ipsec_phase2_create",
        Some("vpn-agent"),
        Some("vs-1"),
        3,
    );
    phase2.args = values(json!({"name": "branch-12-p2", "phase1name": "branch-12",
                                "proposal": "aes256-sha256"}));
    phase2.id = Some("6".into());
    phase2.upstream = Some(Upstream::Ok);
    phase2.latency_ms = Some(380.0);
    assert_eq!(recs, vec![status, create, list, phase2]);
    assert_eq!(
        stats.ignored,
        counts(&[
            ("span initialize", 1),
            ("span tools/list", 1),
            ("span tools/call (client side of a server span)", 1),
            ("span without mcp.method.name", 1),
        ])
    );
    assert_eq!(stats.skipped, 2);
    let f = fixture("otel-spans.jsonl");
    let examples: Vec<String> = stats
        .skipped_examples
        .iter()
        .map(|s| format!("{}:{}: {}", s.file, s.line, s.reason))
        .collect();
    assert_eq!(
        examples,
        [
            format!("{f}:2: truncated JSON: EOF while parsing an object at line 2 column 166"),
            format!(
                "{f}:3: field `resourceSpans[0].scopeSpans[0].spans[3].startTimeUnixNano`: \
                 expected nanoseconds since the epoch, found \"yesterday\""
            ),
        ]
    );
    assert_eq!(
        strict_error(&f),
        format!("{f}:2: truncated JSON: EOF while parsing an object at line 2 column 166")
    );
}

/// An OTLP span with the given attributes (`(key, AnyValue)`) and times in ms after 09:00:00.
fn span(attrs: &[(&str, Value)], start_ms: u64, end_ms: u64) -> Value {
    let t0: u64 = 1_785_574_800_000_000_000;
    json!({
        "traceId": "5b8efff798038103d269b633813fc60c",
        "spanId": "eee19b7ec3c1b174",
        "name": "tools/call",
        "kind": 2,
        "startTimeUnixNano": (t0 + start_ms * 1_000_000).to_string(),
        "endTimeUnixNano": (t0 + end_ms * 1_000_000).to_string(),
        "attributes": attrs.iter().map(|(k, v)| json!({"key": k, "value": v})).collect::<Vec<_>>(),
    })
}

fn document(resource: &[(&str, Value)], spans: Vec<Value>) -> Value {
    json!({"resourceSpans": [{
        "resource": {"attributes": resource.iter()
            .map(|(k, v)| json!({"key": k, "value": v})).collect::<Vec<_>>()},
        "scopeSpans": [{"scope": {"name": "mcp"}, "spans": spans}],
    }]})
}

fn s(v: &str) -> Value {
    json!({ "stringValue": v })
}

fn tools_call(tool: &str) -> Vec<(&'static str, Value)> {
    vec![
        ("mcp.method.name", s("tools/call")),
        ("gen_ai.tool.name", s(tool)),
    ]
}

#[test]
fn otel_whole_documents_are_read_pretty_printed_and_concatenated() {
    let first = document(
        &[("service.name", s("fortios"))],
        vec![span(&tools_call("system_status_get"), 1000, 1010)],
    );
    let mut bad = tools_call("firewall_policy_list");
    bad.push(("jsonrpc.request.id", json!({"intValue": "seven"})));
    let second = document(
        &[("service.name", s("fortios"))],
        vec![
            span(&tools_call("firewall_policy_list"), 2000, 2005),
            span(&bad, 2100, 2105),
        ],
    );
    let first_text = serde_json::to_string_pretty(&first).unwrap();
    let second_line = first_text.lines().count() as u64 + 2;
    let body = format!(
        "{first_text}\n\n{}\n",
        serde_json::to_string_pretty(&second).unwrap()
    );
    let dir = tempfile::tempdir().unwrap();
    let path = write_file(dir.path(), "spans.json", &body);
    let (recs, stats) = read(&[&path]);
    assert_eq!(
        stats.per_file[0].1,
        Format::OtelSpans,
        "detected when pretty"
    );
    let got: Vec<(&str, u64, Option<Upstream>)> = recs
        .iter()
        .map(|r| (&*r.tool, r.origin.line, r.upstream))
        .collect();
    assert_eq!(
        got,
        [
            ("system_status_get", 1, Some(Upstream::Ok)),
            ("firewall_policy_list", second_line, Some(Upstream::Ok)),
        ]
    );
    assert_eq!(
        stats.skipped_examples[0].reason,
        "field `resourceSpans[0].scopeSpans[0].spans[1].attributes[2].value.intValue`: \
         expected an integer, found \"seven\""
    );
    assert_eq!(stats.skipped_examples[0].line, second_line);
    // A document broken halfway is skipped up to the next document, which is read; blank
    // lines before the first document count too.
    let broken = format!(
        "\n\n{first_text}\n{{\n  \"resourceSpans\": [\n    {{ oops\n    ]\n}}\n{}\n",
        serde_json::to_string_pretty(&second).unwrap()
    );
    let (recs, skipped) = read_as(Format::OtelSpans, &broken);
    let bad_at = first_text.lines().count() as u64 + 3;
    let got: Vec<(&str, u64)> = recs.iter().map(|r| (&*r.tool, r.origin.line)).collect();
    assert_eq!(
        got,
        [
            ("system_status_get", 3),
            ("firewall_policy_list", bad_at + 5)
        ]
    );
    assert_eq!(
        skipped,
        [
            (
                bad_at,
                format!(
                    "invalid JSON: key must be a string at line {} column 7; lines {bad_at} to {} skipped",
                    bad_at + 2,
                    bad_at + 4
                )
            ),
            (
                bad_at + 5,
                "field `resourceSpans[0].scopeSpans[0].spans[1].attributes[2].value.intValue`: \
                 expected an integer, found \"seven\""
                    .to_string()
            ),
        ]
    );
    // A document cut short at the end of the file is counted like any other.
    let (recs, skipped) = read_as(
        Format::OtelSpans,
        &format!("{first_text}\n{{\n  \"resourceSpans\": [\n"),
    );
    assert_eq!(recs.len(), 1);
    let at = first_text.lines().count() as u64 + 1;
    assert_eq!(
        skipped,
        [(
            at,
            format!(
                "truncated JSON: EOF while parsing a list at line {} column 20; lines {at} to {} skipped",
                at + 1,
                at + 1
            )
        )]
    );
}

/// A span between two times (ms after 09:00:00) with the given kind, ids and parent.
fn linked(tool: &str, kind: i64, trace: &str, id: &str, parent: &str, ms: (u64, u64)) -> Value {
    let mut sp = span(&tools_call(tool), ms.0, ms.1);
    sp["kind"] = json!(kind);
    sp["traceId"] = json!(trace);
    sp["spanId"] = json!(id);
    if !parent.is_empty() {
        sp["parentSpanId"] = json!(parent);
    }
    sp
}

/// Client and server spans of one call in different documents (either first, lines apart)
/// are one call, read from the server span; a client span whose server span comes more
/// than the window later, or never, is a call of its own.
#[test]
fn client_and_server_spans_of_one_call_in_different_documents_are_read_once() {
    const MIN: u64 = 60_000;
    let doc = |service: &str, spans: Vec<Value>| {
        serde_json::to_string(&document(&[("service.name", s(service))], spans)).unwrap()
    };
    let lines = [
        // Client first, its server span two documents later.
        doc(
            "agent",
            vec![linked("a_client_first", 3, "t1", "c1", "", (1000, 1300))],
        ),
        doc(
            "fortios",
            vec![linked("b_unrelated", 2, "t9", "s9", "", (1100, 1200))],
        ),
        doc(
            "fortios",
            vec![linked("a_client_first", 2, "t1", "s1", "c1", (1010, 1290))],
        ),
        // Server first, its client span in the next document.
        doc(
            "fortios",
            vec![linked("c_server_first", 2, "t2", "s2", "c2", (2010, 2290))],
        ),
        doc(
            "agent",
            vec![linked("c_server_first", 3, "t2", "c2", "", (2000, 2300))],
        ),
        // Same span id in another trace: not the parent.
        doc(
            "agent",
            vec![linked("d_other_trace", 3, "t3", "c1", "", (3000, 3300))],
        ),
        // A client span whose server span comes after 11 minutes of later spans.
        doc(
            "agent",
            vec![linked("e_late", 3, "t4", "c4", "", (4000, 4300))],
        ),
        doc(
            "fortios",
            vec![linked(
                "f_later",
                2,
                "t5",
                "s5",
                "",
                (11 * MIN, 11 * MIN + 10),
            )],
        ),
        doc(
            "fortios",
            vec![linked("e_late", 2, "t4", "s4", "c4", (4010, 4290))],
        ),
    ];
    let (recs, skipped) = read_as(Format::OtelSpans, &(lines.join("\n") + "\n"));
    assert_eq!(skipped, []);
    let mut got: Vec<(&str, &str, u64)> = recs
        .iter()
        .map(|r| (&*r.tool, &*r.server, r.origin.line))
        .collect();
    got.sort();
    assert_eq!(
        got,
        [
            ("a_client_first", "fortios", 3),
            ("b_unrelated", "fortios", 2),
            ("c_server_first", "fortios", 4),
            // Client spans read alone name no server (their service is the agent).
            ("d_other_trace", "unknown", 6),
            ("e_late", "fortios", 9),
            ("e_late", "unknown", 7),
            ("f_later", "fortios", 8),
        ]
    );
    let dir = tempfile::tempdir().unwrap();
    let path = write_file(dir.path(), "spans.jsonl", &(lines.join("\n") + "\n"));
    let (_, stats) = read(&[&path]);
    assert_eq!(
        stats.ignored,
        counts(&[("span tools/call (client side of a server span)", 2)])
    );
}

/// A gateway or proxy traced with the conventions writes the call it received (a server span)
/// and the call it forwards (a client span under it, the same tool or the tool its prefixed
/// name stands for): one call, in either order. A client span under a server span of another
/// tool (a server calling a tool of its own) is a call of its own.
#[test]
fn a_proxy_forwarding_a_call_it_received_is_one_call() {
    let doc = |service: &str, spans: Vec<Value>| {
        serde_json::to_string(&document(&[("service.name", s(service))], spans)).unwrap()
    };
    let lines = [
        // The outbound leg ends first, so it is often written first.
        doc(
            "agentgateway",
            vec![linked("get_issue", 3, "t1", "o1", "i1", (1010, 1090))],
        ),
        doc(
            "agentgateway",
            vec![linked("github_get_issue", 2, "t1", "i1", "", (1000, 1100))],
        ),
        // The other order.
        doc(
            "proxy",
            vec![
                linked("search", 2, "t2", "i2", "", (2000, 2100)),
                linked("search", 3, "t2", "o2", "i2", (2010, 2090)),
            ],
        ),
        // An agent's own tool execution span (INTERNAL) carrying the client side's
        // attributes, as the conventions allow, and the server span under it: one call.
        doc(
            "agent",
            vec![linked("lookup", 1, "t4", "e4", "", (4000, 4100))],
        ),
        doc(
            "weather",
            vec![linked("lookup", 2, "t4", "s4", "e4", (4010, 4090))],
        ),
        // A server calling another tool while it serves a call: two calls.
        doc(
            "weather",
            vec![
                linked("forecast", 2, "t3", "i3", "", (3000, 3100)),
                linked("geocode", 3, "t3", "o3", "i3", (3010, 3090)),
            ],
        ),
    ];
    let dir = tempfile::tempdir().unwrap();
    let path = write_file(dir.path(), "spans.jsonl", &(lines.join("\n") + "\n"));
    let (recs, stats) = read(&[&path]);
    let got: Vec<(&str, &str)> = recs.iter().map(|r| (&*r.tool, &*r.server)).collect();
    assert_eq!(
        got,
        [
            ("github_get_issue", "agentgateway"),
            ("search", "proxy"),
            ("forecast", "weather"),
            // Read from its client span, whose service is the caller's: no server named.
            ("geocode", "unknown"),
            ("lookup", "weather"),
        ]
    );
    assert_eq!(
        stats.ignored,
        counts(&[
            ("span tools/call (a proxy forwarding a call it received)", 2),
            ("span tools/call (client side of a server span)", 1),
        ])
    );
}

/// `linked` with extra attributes.
fn linked_with(
    base: (&str, i64, &str, &str, &str, (u64, u64)),
    extra: &[(&'static str, Value)],
) -> Value {
    let (tool, kind, trace, id, parent, ms) = base;
    let mut sp = linked(tool, kind, trace, id, parent, ms);
    let attrs = sp["attributes"].as_array_mut().unwrap();
    for (k, v) in extra {
        attrs.push(json!({"key": k, "value": v}));
    }
    sp
}

/// A call traced on both sides is read from its server span, with what only the client
/// span recorded: the arguments (the conventions make them opt-in on either side), the agent
/// (preferred to the client software the server span may name), the session and request id.
/// In either order, documents apart; the server span's own values stand where it has them.
#[test]
fn a_call_traced_on_both_sides_takes_what_only_its_client_span_recorded() {
    let doc = |service: &str, spans: Vec<Value>| {
        serde_json::to_string(&document(&[("service.name", s(service))], spans)).unwrap()
    };
    let client = |tool, trace, id, ms| {
        linked_with(
            (tool, 3, trace, id, "", ms),
            &[
                ("gen_ai.agent.name", s("change-bot")),
                ("gen_ai.tool.call.arguments", s(r#"{"vdom":"root"}"#)),
                ("mcp.session.id", s("cs-1")),
                ("jsonrpc.request.id", json!({"intValue": "7"})),
            ],
        )
    };
    let lines = [
        // Server first (it ends first), naming only the client software.
        doc(
            "fortios",
            vec![linked_with(
                ("a_server_first", 2, "t1", "s1", "c1", (1010, 1290)),
                &[("mcp.client.name", s("claude-code"))],
            )],
        ),
        doc(
            "agent",
            vec![client("a_server_first", "t1", "c1", (1000, 1300))],
        ),
        // Client first; the server span has arguments and a session of its own.
        doc(
            "agent",
            vec![client("b_client_first", "t2", "c2", (2000, 2300))],
        ),
        doc(
            "fortios",
            vec![linked_with(
                ("b_client_first", 2, "t2", "s2", "c2", (2010, 2290)),
                &[
                    ("gen_ai.tool.call.arguments", s(r#"{"vdom":"branch"}"#)),
                    ("mcp.session.id", s("ss-2")),
                ],
            )],
        ),
    ];
    let dir = tempfile::tempdir().unwrap();
    let path = write_file(dir.path(), "spans.jsonl", &(lines.join("\n") + "\n"));
    let (recs, stats) = read(&[&path]);
    let got: Vec<_> = recs
        .iter()
        .map(|r| {
            let args = match &r.args {
                Args::Values(m) => Value::Object(m.clone()),
                other => panic!("{other:?}"),
            };
            let grant = r.grant.as_deref().unwrap_or("-");
            let session = r.session.as_deref().unwrap_or("-");
            (
                &*r.tool,
                &*r.server,
                grant,
                session,
                r.id.clone(),
                args,
                r.origin.line,
            )
        })
        .collect();
    let id = Some("7".to_string());
    assert_eq!(
        got,
        [
            (
                "a_server_first",
                "fortios",
                "change-bot",
                "cs-1",
                id.clone(),
                json!({"vdom": "root"}),
                1
            ),
            (
                "b_client_first",
                "fortios",
                "change-bot",
                "ss-2",
                id,
                json!({"vdom": "branch"}),
                4
            ),
        ]
    );
    assert_eq!(recs[0].ts, ts("2026-08-01T09:00:01.010Z"));
    assert_eq!(recs[0].latency_ms, Some(280.0));
    assert_eq!(
        stats.ignored,
        counts(&[("span tools/call (client side of a server span)", 2)])
    );
}

/// A gateway traced with the conventions between a traced agent and a traced upstream server
/// writes four spans of one call: the agent's client span, the gateway's server span (the call
/// it received) and client span (the call it forwards), and the upstream's server span. In any
/// order they are one call, read from the gateway's server span (the side a policy sits on),
/// with the agent and arguments the others recorded.
#[test]
fn a_call_through_a_traced_gateway_to_a_traced_server_is_one_call_in_any_order() {
    let spans = [
        // The agent's client span.
        (
            "agent",
            linked_with(
                ("github_get_issue", 3, "t1", "c0", "", (1000, 1400)),
                &[("gen_ai.agent.name", s("triage-bot"))],
            ),
        ),
        // The gateway's server span: the call it received.
        (
            "agentgateway",
            linked_with(
                ("github_get_issue", 2, "t1", "s1", "c0", (1010, 1390)),
                &[("mcp.target", s("github"))],
            ),
        ),
        // The gateway's client span: the call it forwards, the prefix taken off.
        (
            "agentgateway",
            linked("get_issue", 3, "t1", "l1", "s1", (1020, 1380)),
        ),
        // The upstream server's span, with the arguments.
        (
            "github-mcp",
            linked_with(
                ("get_issue", 2, "t1", "s2", "l1", (1030, 1370)),
                &[("gen_ai.tool.call.arguments", s(r#"{"issue":42}"#))],
            ),
        ),
    ];
    assert_one_call_in_every_order(
        &spans,
        (
            "github_get_issue",
            "github",
            "triage-bot",
            json!({"issue": 42}),
        ),
        &[
            ("span tools/call (a proxy forwarding a call it received)", 1),
            ("span tools/call (client side of a server span)", 1),
            (
                "span tools/call (the upstream's side of a call a proxy forwarded)",
                1,
            ),
        ],
    );
}

/// Read `spans` (service name, span), one document a line, in every order: each time one call
/// (tool, server, grant, arguments) starting at 09:00:01.010, the other spans ignored as
/// `ignored` says.
fn assert_one_call_in_every_order(
    spans: &[(&str, Value)],
    want: (&str, &str, &str, Value),
    ignored: &[(&str, u64)],
) {
    let mut orders = vec![vec![]];
    for _ in 0..spans.len() {
        orders = orders
            .into_iter()
            .flat_map(|o: Vec<usize>| {
                let next: Vec<usize> = (0..spans.len()).filter(|i| !o.contains(i)).collect();
                next.into_iter().map(move |i| [&o[..], &[i]].concat())
            })
            .collect();
    }
    let dir = tempfile::tempdir().unwrap();
    let (tool, server, grant, args) = want;
    for order in orders {
        let lines: Vec<String> = (order.iter())
            .map(|&i| {
                let (service, sp) = &spans[i];
                let doc = document(&[("service.name", s(service))], vec![sp.clone()]);
                serde_json::to_string(&doc).unwrap()
            })
            .collect();
        let path = write_file(dir.path(), "spans.jsonl", &(lines.join("\n") + "\n"));
        let (recs, stats) = read(&[&path]);
        let got: Vec<_> = (recs.iter())
            .map(|r| {
                (
                    &*r.tool,
                    &*r.server,
                    r.grant.as_deref(),
                    r.ts,
                    r.args.clone(),
                )
            })
            .collect();
        let at = ts("2026-08-01T09:00:01.010Z");
        let want = [(tool, server, Some(grant), at, values(args.clone()))];
        assert_eq!(got, want, "order {order:?}");
        assert_eq!(stats.ignored, counts(ignored), "order {order:?}");
    }
}

/// FastMCP traces a call to a mounted server as its server span, a `delegate <tool>` span
/// (INTERNAL, no MCP attributes) under it, and the mounted server's own server span under
/// that: one call, read from the outer server span, in any order.
#[test]
fn a_call_to_a_fastmcp_mounted_server_is_one_call_in_any_order() {
    let fastmcp = |extra: &[(&'static str, Value)]| {
        let mut attrs = vec![("fastmcp.server.name", s("hub"))];
        attrs.extend_from_slice(extra);
        attrs
    };
    let mut delegate = span(
        &[
            ("fastmcp.provider.type", s("FastMCPProvider")),
            ("fastmcp.component.key", s("tool:get_weather@")),
        ],
        1020,
        1380,
    );
    delegate["kind"] = json!(1);
    delegate["name"] = json!("delegate get_weather");
    delegate["traceId"] = json!("t1");
    delegate["spanId"] = json!("d1");
    delegate["parentSpanId"] = json!("s1");
    let spans = [
        (
            "agent",
            linked_with(
                ("weather_forecast", 3, "t1", "c0", "", (1000, 1400)),
                &[("gen_ai.agent.name", s("planner"))],
            ),
        ),
        (
            "hub",
            linked_with(
                ("weather_forecast", 2, "t1", "s1", "c0", (1010, 1390)),
                &fastmcp(&[]),
            ),
        ),
        ("hub", delegate),
        (
            "hub",
            linked_with(
                ("get_weather", 2, "t1", "s2", "d1", (1030, 1370)),
                &fastmcp(&[("gen_ai.tool.call.arguments", s(r#"{"city":"Oslo"}"#))]),
            ),
        ),
    ];
    assert_one_call_in_every_order(
        &spans,
        (
            "weather_forecast",
            "hub",
            "planner",
            json!({"city": "Oslo"}),
        ),
        &[
            ("span tools/call (client side of a server span)", 1),
            (
                "span tools/call (the upstream's side of a call a proxy forwarded)",
                1,
            ),
            ("span without mcp.method.name", 1),
        ],
    );
}

/// Server spans whose client side is not in the file (its trace context came with the request)
/// are held back only so long: past the calls a file may hold back at once, the earliest is
/// read as it stands, and a client span that comes for it later is counted, not read as a
/// second call.
#[test]
fn calls_held_for_their_client_span_are_bounded_and_read_once() {
    const N: u64 = 40_000;
    let servers: Vec<Value> = (0..N)
        .map(|i| linked("lookup", 2, &format!("t{i}"), "s", "c", (i, i + 1)))
        .collect();
    let lines = [
        serde_json::to_string(&document(&[("service.name", s("weather"))], servers)).unwrap(),
        serde_json::to_string(&document(
            &[("service.name", s("agent"))],
            vec![linked_with(
                ("lookup", 3, "t0", "c", "", (0, 2)),
                &[("gen_ai.agent.name", s("late-bot"))],
            )],
        ))
        .unwrap(),
    ];
    let dir = tempfile::tempdir().unwrap();
    let path = write_file(dir.path(), "spans.jsonl", &(lines.join("\n") + "\n"));
    let (recs, stats) = read(&[&path]);
    assert_eq!(recs.len(), N as usize);
    assert!(recs.iter().all(|r| r.server.as_ref() == "weather"));
    assert!(
        recs.iter().all(|r| r.grant.is_none()),
        "the first was read before its client span"
    );
    assert_eq!(
        stats.ignored,
        counts(&[("span tools/call (client side of a server span)", 1)])
    );
}

/// agentgateway's span of a call it received carries its access log's fields: its `http.status`
/// says what it did, as in its log (its error is the span status's message), and the call's
/// other spans do not change that.
#[test]
fn agentgateway_spans_record_what_the_gateway_did() {
    use RecordedDecision::{Allow, Deny, Throttle};
    let error = |message: &str| json!({"code": 2, "message": message});
    let cases = [
        (json!(200), None, None, Some(Allow), Some(Upstream::Ok)),
        (json!(403), Some(error("forbidden")), None, Some(Deny), None),
        (
            json!(429),
            Some(error("rate limited")),
            None,
            Some(Throttle),
            None,
        ),
        (
            json!(400),
            Some(error("mcp: Unknown tool: t")),
            None,
            Some(Deny),
            None,
        ),
        (
            json!(200),
            None,
            Some(json!({"intValue": "-32603"})),
            Some(Allow),
            Some(Upstream::Error),
        ),
        (
            json!(502),
            Some(error("upstream call failed")),
            None,
            None,
            Some(Upstream::Error),
        ),
    ];
    for (status, span_status, rpc_error, decision, upstream) in cases {
        let mut attrs = tools_call("t");
        attrs.push(("mcp.target", s("github")));
        attrs.push(("http.status", json!({"intValue": status.to_string()})));
        if let Some(code) = &rpc_error {
            attrs.push(("mcp.error.code", code.clone()));
        }
        let mut sp = span(&attrs, 1000, 1040);
        if let Some(st) = &span_status {
            sp["status"] = st.clone();
        }
        let doc = document(&[("service.name", s("agentgateway"))], vec![sp]);
        let line = serde_json::to_string(&doc).unwrap();
        let (recs, skipped) = read_as(Format::OtelSpans, &format!("{line}\n"));
        assert_eq!(skipped, [], "{status}");
        let r = &recs[0];
        assert_eq!(
            (r.recorded.as_ref().and_then(|r| r.decision), r.upstream),
            (decision, upstream),
            "{status} {span_status:?}"
        );
        let message = r.recorded.as_ref().and_then(|r| r.message.as_deref());
        let refused = decision.is_some_and(|d| d != Allow);
        let want = span_status
            .as_ref()
            .filter(|_| refused)
            .map(|s| s["message"].as_str().unwrap());
        assert_eq!(message, want, "{status}");
        assert_eq!(r.server, sym("github"));
    }
}

/// agentgateway's access log exported with OTLP (its `agentgateway.access` logger) is read as
/// its log lines are: the records' attributes are the lines' fields, the time observed when the
/// line was written stands for its `time`. A file of such documents is detected.
#[test]
fn agentgateway_access_log_exported_with_otlp_reads_as_its_log_lines() {
    let t0: u64 = 1_785_574_800_000_000_000;
    let record = |ms: u64, fields: &[(&str, Value)]| {
        json!({
            "observedTimeUnixNano": (t0 + ms * 1_000_000).to_string(),
            "severityText": "INFO",
            "attributes": fields.iter().map(|(k, v)| json!({"key": k, "value": v})).collect::<Vec<_>>(),
        })
    };
    let call = |tool: &str, status: u64| {
        vec![
            ("http.method", s("POST")),
            ("http.status", json!({"intValue": status.to_string()})),
            ("jwt.sub", s("netops-bot")),
            ("mcp.method.name", s("tools/call")),
            ("mcp.target", s("fortios")),
            ("gen_ai.tool.name", s(tool)),
            ("mcp.session.id", s("ag-1")),
            ("duration", s("41ms")),
        ]
    };
    let doc = json!({"resourceLogs": [{
        "resource": {"attributes": [{"key": "service.name", "value": s("agentgateway")}]},
        "scopeLogs": [{"scope": {"name": "agentgateway.access"}, "logRecords": [
            record(2_041, &call("system_status_get", 200)),
            record(3_041, &call("firewall_policy_delete", 403)),
            record(4_000, &[("http.method", s("GET")), ("http.status", json!({"intValue": "200"}))]),
        ]}],
    }]});
    let dir = tempfile::tempdir().unwrap();
    let path = write_file(dir.path(), "logs.jsonl", &format!("{doc}\n"));
    let (recs, stats) = read(&[&path]);
    assert_eq!(stats.per_file[0].1, Format::OtelSpans);
    let got: Vec<_> = recs
        .iter()
        .map(|r| {
            let decision = r.recorded.as_ref().and_then(|r| r.decision);
            (
                r.ts,
                &*r.server,
                r.grant.as_deref(),
                &*r.tool,
                decision,
                r.upstream,
                r.latency_ms,
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (
                ts("2026-08-01T09:00:02Z"),
                "fortios",
                Some("netops-bot"),
                "system_status_get",
                Some(RecordedDecision::Allow),
                Some(Upstream::Ok),
                Some(41.0)
            ),
            (
                ts("2026-08-01T09:00:03Z"),
                "fortios",
                Some("netops-bot"),
                "firewall_policy_delete",
                Some(RecordedDecision::Deny),
                None,
                Some(41.0)
            ),
        ]
    );
    assert_eq!(recs[0].session.as_deref(), Some("ag-1"));
    assert_eq!(
        stats.ignored,
        counts(&[("request without mcp.method.name", 1)])
    );
}

/// Where emitters name the server, the caller and the tool besides the conventions' keys.
#[test]
fn otel_servers_grants_and_tools_as_emitters_write_them() {
    let one = |resource: &[(&str, Value)], attrs: Vec<(&str, Value)>, name: &str| {
        let mut sp = span(&attrs, 0, 100);
        sp["name"] = json!(name);
        let line = serde_json::to_string(&document(resource, vec![sp])).unwrap();
        let (recs, skipped) = read_as(Format::OtelSpans, &format!("{line}\n"));
        assert_eq!(skipped, [], "{name}");
        let r = &recs[0];
        (
            r.server.to_string(),
            r.grant.as_ref().map(|g| g.to_string()),
            r.tool.to_string(),
            r.upstream,
        )
    };
    let mut with = tools_call("get_issue");
    // A gateway's span: the target it routed to and its authenticated subject; the upstream's
    // JSON-RPC error.
    with.extend([
        ("mcp.target", s("github")),
        ("jwt.sub", s("alice")),
        ("mcp.error.code", json!({"intValue": "-32602"})),
    ]);
    assert_eq!(
        one(&[("service.name", s("agentgateway"))], with, "tools/call"),
        (
            "github".into(),
            Some("alice".into()),
            "get_issue".into(),
            Some(Upstream::Error)
        )
    );
    // ToolHive names the server apart from its service (`thv-fetch`).
    let mut with = tools_call("fetch");
    with.push(("mcp.server.name", s("fetch")));
    assert_eq!(
        one(
            &[("service.name", s("thv-fetch"))],
            with,
            "tools/call fetch"
        )
        .0,
        "fetch"
    );
    // An unnamed service (the SDKs' default) gives way to FastMCP's server name; a named one
    // does not.
    let fastmcp = || {
        vec![
            ("mcp.method.name", s("tools/call")),
            ("fastmcp.server.name", s("weather")),
        ]
    };
    let unnamed = [("service.name", s("unknown_service:python"))];
    assert_eq!(
        one(&unnamed, fastmcp(), "tools/call get_weather"),
        (
            "weather".into(),
            None,
            "get_weather".into(),
            Some(Upstream::Ok)
        )
    );
    assert_eq!(
        one(
            &[("service.name", s("wx"))],
            fastmcp(),
            "tools/call get_weather"
        )
        .0,
        "wx"
    );
    // A FastMCP tool that raised: an error status, answered as a result with `isError`.
    let mut raised = span(&fastmcp(), 0, 100);
    raised["name"] = json!("tools/call get_weather");
    raised["status"] = json!({"code": 2, "message": "city unknown"});
    let line = serde_json::to_string(&document(&unnamed, vec![raised])).unwrap();
    let (recs, _) = read_as(Format::OtelSpans, &format!("{line}\n"));
    assert_eq!(recs[0].upstream, Some(Upstream::ToolError));
    // A JSON-RPC error code (`rpc.response.status_code`, as the conventions record it) is the
    // server's error, with or without an error status, FastMCP's too; a code 0 is none.
    for (code, status, want) in [
        ("-32603", None, Upstream::Error),
        ("-32602", Some(2), Upstream::Error),
        ("0", None, Upstream::Ok),
    ] {
        let mut attrs = fastmcp();
        attrs.push(("rpc.response.status_code", json!({"intValue": code})));
        let mut sp = span(&attrs, 0, 100);
        sp["name"] = json!("tools/call get_weather");
        if let Some(c) = status {
            sp["status"] = json!({"code": c});
        }
        let line = serde_json::to_string(&document(&unnamed, vec![sp])).unwrap();
        let (recs, _) = read_as(Format::OtelSpans, &format!("{line}\n"));
        assert_eq!(recs[0].upstream, Some(want), "{code} {status:?}");
    }
    // A client span (or an agent's INTERNAL tool span) read alone: its service is the
    // agent's, so the server is what the span names, else unknown. A span of no kind keeps
    // its service.
    let agent = [("service.name", s("triage-agent"))];
    for (kind, extra, want) in [
        (
            3,
            vec![("server.address", s("mcp.example.com"))],
            "mcp.example.com",
        ),
        (3, vec![("rpc.service", s("github"))], "github"),
        (3, vec![("mcp.server.name", s("files"))], "files"),
        (3, vec![], "unknown"),
        (1, vec![], "unknown"),
        (0, vec![], "triage-agent"),
    ] {
        let mut attrs = tools_call("t");
        attrs.extend(extra);
        let mut sp = span(&attrs, 0, 100);
        sp["kind"] = json!(kind);
        let line = serde_json::to_string(&document(&agent, vec![sp])).unwrap();
        let (recs, _) = read_as(Format::OtelSpans, &format!("{line}\n"));
        assert_eq!(&*recs[0].server, want, "kind {kind}");
    }
    // The Python SDK's client span names the tool only in its span name, after a prefix.
    let sdk = vec![("mcp.method.name", s("tools/call"))];
    assert_eq!(
        one(&unnamed, sdk, "MCP send tools/call get_weather").2,
        "get_weather"
    );
}

/// A bare `ResourceSpans` a line (Java's `logging-otlp`) is read; logs and metrics in the same
/// collector file are counted; OpenLLMetry's tool spans (before the conventions) are calls.
#[test]
fn otel_bare_resource_spans_other_signals_and_openllmetry_tool_spans() {
    let mut sp = span(&tools_call("greet"), 0, 40);
    sp["kind"] = json!(2);
    let bare = json!({
        "resource": {"attributes": [{"key": "service.name", "value": s("weather")}]},
        "scopeSpans": [{"scope": {"name": "io.opentelemetry"}, "spans": [sp]}],
    });
    let mut tool = span(
        &[
            ("traceloop.span.kind", s("tool")),
            ("traceloop.entity.name", s("get_weather")),
            (
                "traceloop.entity.input",
                s(r#"{"tool_name": "get_weather", "arguments": {"city": "Paris"}}"#),
            ),
            ("error.type", s("tool_error")),
        ],
        100,
        150,
    );
    tool["kind"] = json!(1);
    tool["name"] = json!("get_weather.tool");
    let openllmetry = json!({"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name", "value": s("agent")}]},
        "scopeSpans": [{"scope": {"name": "opentelemetry.instrumentation.mcp.instrumentation"}, "spans": [tool.clone()]}],
    }]});
    // The same span under another instrumentation's scope is not an MCP call.
    let other = json!({"resourceSpans": [{
        "resource": {"attributes": []},
        "scopeSpans": [{"scope": {"name": "opentelemetry.instrumentation.langchain"}, "spans": [tool]}],
    }]});
    let lines = [
        bare.to_string(),
        r#"{"resourceLogs":[{"scopeLogs":[{"scope":{"name":"app"},"logRecords":[{"body":{"stringValue":"hi"}}]}]}]}"#.to_string(),
        r#"{"resourceMetrics":[]}"#.to_string(),
        openllmetry.to_string(),
        other.to_string(),
    ];
    let dir = tempfile::tempdir().unwrap();
    let path = write_file(dir.path(), "spans.jsonl", &(lines.join("\n") + "\n"));
    let (recs, stats) = read(&[&path]);
    assert_eq!(stats.per_file[0].1, Format::OtelSpans);
    let got: Vec<(&str, &str, Option<Upstream>)> = recs
        .iter()
        .map(|r| (&*r.server, &*r.tool, r.upstream))
        .collect();
    assert_eq!(
        got,
        [
            ("weather", "greet", Some(Upstream::Ok)),
            ("unknown", "get_weather", Some(Upstream::ToolError)),
        ]
    );
    assert_eq!(recs[1].args, values(json!({"city": "Paris"})));
    assert_eq!(
        stats.ignored,
        counts(&[
            ("document of resourceMetrics, not spans", 1),
            ("log record (not agentgateway's access log)", 1),
            ("span without mcp.method.name", 1),
        ])
    );
}

#[test]
fn otel_attribute_values_of_every_kind_decode() {
    let mut attrs = vec![
        ("mcp.method.name", s("tools/call")),
        ("jsonrpc.request.id", json!({"intValue": 7})),
        ("mcp.session.id", s("os-9")),
        (
            "gen_ai.tool.call.arguments",
            json!({"kvlistValue": {"values": [
                {"key": "vdom", "value": {"stringValue": "root"}},
                {"key": "count", "value": {"intValue": "3"}},
                {"key": "tags", "value": {"arrayValue": {"values": [
                    {"stringValue": "a"}, {"boolValue": true}, {"doubleValue": 1.5}]}}},
                {"key": "raw", "value": {"bytesValue": "AAE="}},
                {"key": "none", "value": {}},
            ]}}),
        ),
    ];
    let mut sp = span(&attrs, 1000, 1000);
    // The tool from the span name when gen_ai.tool.name is absent; status in enum-name form.
    sp["name"] = json!("tools/call firewall_address_list");
    sp["status"] = json!({"code": "STATUS_CODE_ERROR"});
    // The grant from the resource when the span names nobody; no service.name → unknown.
    let doc = document(&[("gen_ai.agent.name", s("audit-bot"))], vec![sp]);
    let (recs, skipped) = read_as(Format::OtelSpans, &format!("{doc}\n"));
    assert_eq!(skipped, []);
    let mut want = call(
        "2026-08-01T09:00:01Z",
        "firewall_address_list",
        Some("audit-bot"),
        Some("os-9"),
        1,
    );
    want.server = sym("unknown");
    want.args = values(json!({"vdom": "root", "count": 3, "tags": ["a", true, 1.5],
                              "raw": "AAE=", "none": null}));
    want.id = Some("7".into());
    want.upstream = Some(Upstream::Error);
    want.latency_ms = Some(0.0);
    assert_eq!(recs, [want]);
    // enduser.id on the span beats the resource's agent name.
    attrs.push(("enduser.id", s("alice@example.net")));
    attrs.push(("gen_ai.tool.name", s("firewall_address_list")));
    let doc = document(
        &[("gen_ai.agent.name", s("audit-bot"))],
        vec![span(&attrs, 1000, 1000)],
    );
    let (recs, _) = read_as(Format::OtelSpans, &format!("{doc}\n"));
    assert_eq!(recs[0].grant, Some(sym("alice@example.net")));
}

/// Spans of one batch that start at the same instant keep their order in the batch.
#[test]
fn spans_of_one_line_with_equal_start_times_keep_document_order() {
    let tools = ["t3", "t1", "t2", "t0", "t5", "t4"];
    let spans = tools
        .iter()
        .map(|t| span(&tools_call(t), 500, 600))
        .collect();
    let doc = document(&[("service.name", s("fortios"))], spans);
    let (recs, _) = read_as(Format::OtelSpans, &format!("{doc}\n"));
    let got: Vec<&str> = recs.iter().map(|r| &*r.tool).collect();
    assert_eq!(got, tools);
}

/// Arguments cut at an SDK's attribute length limit are not whole JSON: the call is kept with
/// its arguments unrecorded, and counted; arguments that are JSON but not an object are kept as
/// they are (as in JSON-RPC recordings).
#[test]
fn spans_with_arguments_cut_short_or_not_an_object_keep_their_call() {
    let with_args = |v: Value| {
        let mut attrs = tools_call("write_file");
        attrs.push(("gen_ai.tool.call.arguments", v));
        span(&attrs, 1000, 1010)
    };
    let doc = document(
        &[("service.name", s("files"))],
        vec![
            with_args(s("{\"path\":\"/srv/a\",\"content\":\"lorem ips")),
            with_args(s("[1]")),
            with_args(json!({"intValue": 5})),
            // ToolHive's form: key=value pairs, cut and redacted.
            with_args(s("path=/srv/a, token=[REDACTED]")),
        ],
    );
    let dir = tempfile::tempdir().unwrap();
    let path = write_file(dir.path(), "spans.jsonl", &format!("{doc}\n"));
    let (recs, stats) = read(&[&path]);
    let args: Vec<&Args> = recs.iter().map(|r| &r.args).collect();
    assert_eq!(
        args,
        [
            &Args::Unrecorded,
            &Args::NotObject("[1]".into()),
            &Args::NotObject("5".into()),
            &Args::Unrecorded,
        ]
    );
    assert_eq!(stats.skipped, 0);
    assert_eq!(
        stats.ignored,
        counts(&[
            (
                "span arguments not whole JSON (cut at a length limit?): call kept without them",
                1
            ),
            (
                "span arguments as key=value text, not JSON: call kept without them",
                1
            )
        ])
    );
}

/// One row per malformed span: what is changed, and the located reason.
#[test]
fn bad_spans_are_located_by_json_path() {
    let p = "resourceSpans[0].scopeSpans[0].spans[0]";
    let base = || span(&tools_call("system_status_get"), 1000, 1010);
    let with_attr = |k: &str, v: Value| {
        let mut sp = base();
        sp["attributes"]
            .as_array_mut()
            .unwrap()
            .push(json!({"key": k, "value": v}));
        sp
    };
    let cases: Vec<(Value, String)> = vec![
        (
            {
                let mut sp = base();
                sp.as_object_mut().unwrap().remove("startTimeUnixNano");
                sp
            },
            format!("field `{p}.startTimeUnixNano`: missing"),
        ),
        (
            {
                let mut sp = base();
                sp["startTimeUnixNano"] = json!(true);
                sp
            },
            format!(
                "field `{p}.startTimeUnixNano`: expected nanoseconds since the epoch, found a boolean"
            ),
        ),
        (
            with_attr("mcp.session.id", json!({"stringValue": 5})),
            format!(
                "field `{p}.attributes[2].value.stringValue`: expected a string, found a number"
            ),
        ),
        (
            with_attr("mcp.session.id", json!({"decimalValue": "5"})),
            format!("field `{p}.attributes[2].value`: unknown AnyValue kind \"decimalValue\""),
        ),
        (
            {
                let mut sp = span(&[("mcp.method.name", s("tools/call"))], 1000, 1010);
                sp["name"] = json!("tools/call");
                sp
            },
            format!("field `{p}.attributes.gen_ai.tool.name`: missing"),
        ),
        (
            {
                let mut sp = base();
                sp["attributes"] = json!({"mcp.method.name": "tools/call"});
                sp
            },
            format!("field `{p}.attributes`: expected an array, found an object"),
        ),
    ];
    for (sp, reason) in cases {
        let doc = document(&[], vec![sp, base()]);
        let (recs, skipped) = read_as(Format::OtelSpans, &format!("{doc}\n"));
        assert_eq!(skipped, [(1, reason.clone())]);
        // The good span beside the bad one is still read.
        assert_eq!(recs.len(), 1, "{reason}");
    }
    let (recs, skipped) = read_as(Format::OtelSpans, "{\"resourceSpans\":{}}\n");
    assert_eq!(recs, []);
    assert_eq!(
        skipped,
        [(
            1,
            "field `resourceSpans`: expected an array, found an object".to_string()
        )]
    );
}

/// The fixture holds what agentgateway writes: its `time` with microseconds unpadded, refusals
/// of its MCP authorization (400, the tool "unknown") and guardrails (200 with `error`), an
/// upstream JSON-RPC error (`mcp.error.*`), a request a rate limit refused before its MCP fields
/// were read, a call logged without its tool, and the field names of older releases.
#[test]
fn agentgateway_fixture_reads_flat_and_nested_lines() {
    let (recs, stats) = read(&[&fixture("agentgateway.jsonl")]);
    assert_eq!(stats.per_file[0].1, Format::AgentGatewayLog);
    let mut status = call(
        "2026-08-01T09:00:02Z",
        "system_status_get",
        Some("netops-bot"),
        Some("ag-1"),
        2,
    );
    status.recorded = decided(RecordedDecision::Allow);
    status.upstream = Some(Upstream::Ok);
    status.latency_ms = Some(41.0);
    let refused = |ts: &str, tool: &str, grant: &str, session: &str, line: u64, why: &str| {
        let mut c = call(ts, tool, Some(grant), Some(session), line);
        c.recorded = Some(Recorded {
            decision: Some(RecordedDecision::Deny),
            message: Some(why.into()),
            ..Recorded::default()
        });
        c
    };
    let mut denied = refused(
        "2026-08-01T09:00:03.500Z",
        "firewall_policy_create",
        "audit-bot",
        "ag-2",
        3,
        "mcp: Unknown tool: firewall_policy_create",
    );
    denied.latency_ms = Some(1.0);
    // Nested keys; the upstream answered with a JSON-RPC error.
    let mut rpc_error = call(
        "2026-08-01T09:00:04Z",
        "firewall_policy_list",
        Some("audit-bot"),
        Some("ag-2"),
        4,
    );
    rpc_error.recorded = decided(RecordedDecision::Allow);
    rpc_error.upstream = Some(Upstream::Error);
    rpc_error.latency_ms = Some(9.0);
    let mut guarded = refused(
        "2026-08-01T09:00:04.750Z",
        "vpn_ipsec_phase1_create",
        "vpn-bot",
        "ag-3",
        7,
        "mcp: mcpGuardrails rejected: pre-shared key in arguments",
    );
    guarded.latency_ms = Some(2.0);
    // An older release: `mcp.method` and `mcp.resource.name`; a 502 is an upstream error.
    let mut failed = call(
        "2026-08-01T09:00:06Z",
        "vpn_ipsec_phase1_list",
        Some("vpn-bot"),
        None,
        9,
    );
    failed.upstream = Some(Upstream::Error);
    failed.latency_ms = Some(1502.0);
    // Releases 0.7 to 0.9: `mcp.tool` and no method; `.50Z` is 50 µs past the second.
    let mut oldest = call(
        "2026-08-01T09:00:07.000050Z",
        "vpn_ipsec_phase2_list",
        Some("vpn-bot"),
        None,
        10,
    );
    oldest.recorded = decided(RecordedDecision::Allow);
    oldest.upstream = Some(Upstream::Ok);
    oldest.latency_ms = Some(30.0);
    assert_eq!(
        recs,
        vec![status, denied, rpc_error, guarded, failed, oldest]
    );
    assert_eq!(
        stats.ignored,
        counts(&[
            ("method initialize", 1),
            (
                "request refused by a rate limit before its MCP fields were read (429)",
                1
            ),
            ("request without mcp.method.name", 1),
        ])
    );
    // A call logged without its tool is a record without a tool: skipped, and located.
    assert_eq!(stats.skipped, 1);
    let skipped: Vec<_> = (stats.skipped_examples.iter())
        .map(|s| (s.line, s.reason.as_str()))
        .collect();
    assert_eq!(skipped, [(8, "field `gen_ai.tool.name`: missing")]);
}

/// agentgateway's default text format reads as its JSON lines do; its `time` fraction is
/// microseconds without leading zeros in both.
#[test]
fn agentgateway_text_lines_read_as_its_json_lines() {
    let text = concat!(
        "2026-08-01T09:00:01.5Z\tinfo\tagentgateway::app\tstarting version=1.4\n",
        "2026-08-01T09:00:02.42000Z\tinfo\trequest gateway=default/agw src.addr=10.0.0.1:5123 ",
        "http.method=POST http.path=/mcp http.status=400 jwt.sub=audit bot mcp.method.name=tools/call ",
        "mcp.target=github mcp.resource.type=tool gen_ai.tool.name=create_issue mcp.session.id=s-1 ",
        "error=\"mcp: Unknown tool: create_issue\" reason=MCP duration=1ms\n",
        "2026-08-01T09:00:03.127000Z\tinfo\trequest http.method=POST http.status=200 ",
        "mcp.method.name=tools/call mcp.target=github gen_ai.tool.name=get_issue ",
        "mcp.error.code=-32602 mcp.error.message=\"bad \\\"x\\\"\" duration=7ms\n",
        "2026-08-01T09:00:04.0Z\tinfo\trequest http.method=GET http.path=/healthz http.status=200 duration=0ms\n",
        "not a log line\n",
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("agw.log");
    std::fs::write(&path, text).unwrap();
    let p = path.to_str().unwrap();
    let (recs, stats) = read(&[p]);
    assert_eq!(stats.per_file[0].1, Format::AgentGatewayLog);
    let mut denied = call(
        "2026-08-01T09:00:02.041Z",
        "create_issue",
        Some("audit bot"),
        Some("s-1"),
        2,
    );
    denied.server = sym("github");
    denied.recorded = Some(Recorded {
        decision: Some(RecordedDecision::Deny),
        message: Some("mcp: Unknown tool: create_issue".into()),
        ..Recorded::default()
    });
    denied.latency_ms = Some(1.0);
    let mut failed = call("2026-08-01T09:00:03.120Z", "get_issue", None, None, 3);
    failed.server = sym("github");
    failed.recorded = decided(RecordedDecision::Allow);
    failed.upstream = Some(Upstream::Error);
    failed.latency_ms = Some(7.0);
    assert_eq!(recs, vec![denied, failed]);
    assert_eq!(
        stats.ignored,
        counts(&[
            ("other log line", 1),
            ("request without mcp.method.name", 1)
        ])
    );
    assert_eq!(stats.skipped, 1);
    assert_eq!(
        strict_error(p),
        format!(
            "{p}:5: expected a JSON object or an agentgateway text log line (<time>, a tab, <level>, a tab, <scope>)"
        )
    );
}

#[test]
fn agentgateway_flat_nested_and_mixed_keys_read_the_same() {
    let lines = [
        r#"{"time":"2026-08-01T09:00:02Z","http.status":200,"jwt.sub":"netops-bot","mcp.method.name":"tools/call","mcp.target":"fortios","mcp.session.id":"ag-1","gen_ai.tool.name":"system_status_get","duration":"41ms"}"#,
        r#"{"time":"2026-08-01T09:00:02Z","http":{"status":200},"jwt":{"sub":"netops-bot"},"mcp":{"method":{"name":"tools/call"},"target":"fortios","session":{"id":"ag-1"}},"gen_ai":{"tool":{"name":"system_status_get"}},"duration":41}"#,
        r#"{"time":"2026-08-01T09:00:02Z","http.status":"200","jwt":{"sub":"netops-bot"},"mcp.method":{"name":"tools/call"},"mcp":{"target":"fortios"},"mcp.session.id":"ag-1","gen_ai.tool":{"name":"system_status_get"},"duration":"0.041s"}"#,
    ];
    let (recs, skipped) = read_as(Format::AgentGatewayLog, &(lines.join("\n") + "\n"));
    assert_eq!(skipped, []);
    assert_eq!(recs.len(), 3);
    let want = without_origin(&recs[..1])[0].clone();
    assert_eq!(want.grant, Some(sym("netops-bot")));
    assert_eq!(want.session, Some(sym("ag-1")));
    assert_eq!(want.latency_ms, Some(41.0));
    for r in without_origin(&recs) {
        assert_eq!(r, want);
    }
}

/// What each HTTP status (with or without an `error` field) records, one row per case.
#[test]
fn agentgateway_status_maps_to_decision_and_upstream() {
    use RecordedDecision::{Allow, Deny, Throttle};
    let cases: [(&str, Option<RecordedDecision>, Option<Upstream>); 12] = [
        (r#""http.status":204"#, Some(Allow), Some(Upstream::Ok)),
        // A forwarded call has no `error`: with one, the gateway refused it in-band.
        (
            r#""http.status":200,"error":"mcp: mcpGuardrails rejected: x""#,
            Some(Deny),
            None,
        ),
        (
            r#""http.status":200,"mcp.error.code":-32603"#,
            Some(Allow),
            Some(Upstream::Error),
        ),
        (r#""mcp.error.code":-32603"#, None, Some(Upstream::Error)),
        (r#""http.status":401"#, Some(Deny), None),
        (r#""http.status":429"#, Some(Throttle), None),
        (
            r#""http.status":400,"error":"mcp: Unknown tool: t""#,
            Some(Deny),
            None,
        ),
        (
            r#""http.status":500,"error":"mcp: Unknown tool: t""#,
            Some(Deny),
            None,
        ),
        (
            r#""http.status":400,"error":"mcp: invalid request parameters: x""#,
            None,
            Some(Upstream::Error),
        ),
        (r#""http.status":404"#, None, Some(Upstream::Error)),
        (r#""http.status":503"#, None, Some(Upstream::Error)),
        (r#""duration":"5ms""#, None, None),
    ];
    for (fields, decision, upstream) in cases {
        let line = format!(
            r#"{{"time":"2026-08-01T09:00:02Z","mcp.method.name":"tools/call","gen_ai.tool.name":"t",{fields}}}"#
        );
        let (recs, skipped) = read_as(Format::AgentGatewayLog, &format!("{line}\n"));
        assert_eq!(skipped, [], "{fields}");
        assert_eq!(
            (
                recs[0].recorded.as_ref().and_then(|r| r.decision),
                recs[0].upstream
            ),
            (decision, upstream),
            "{fields}"
        );
        assert_eq!(recs[0].server, sym("unknown"));
    }
    let bad: [(&str, &str); 3] = [
        (
            r#""http.status":"ok""#,
            "field `http.status`: expected an HTTP status, found \"ok\"",
        ),
        (
            r#""duration":"fast""#,
            "field `duration`: expected a duration such as \"41ms\", found \"fast\"",
        ),
        (
            r#""jwt":{"sub":7}"#,
            "field `jwt.sub`: expected a string, found a number",
        ),
    ];
    for (fields, reason) in bad {
        let line = format!(
            r#"{{"time":"2026-08-01T09:00:02Z","mcp.method.name":"tools/call","gen_ai.tool.name":"t",{fields}}}"#
        );
        let (_, skipped) = read_as(Format::AgentGatewayLog, &format!("{line}\n"));
        assert_eq!(skipped, [(1, reason.to_string())]);
    }
    let (_, skipped) = read_as(
        Format::AgentGatewayLog,
        "{\"mcp.method.name\":\"tools/call\",\"gen_ai.tool.name\":\"t\"}\n",
    );
    assert_eq!(skipped, [(1, "field `time`: missing".to_string())]);
}

/// Ordinary application log lines that share the stream are counted, not taken for bad records.
#[test]
fn other_log_lines_in_gateway_logs_are_ignored_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let startup = r#"{"level":"info","time":"2026-08-01T08:59:59Z","scope":"agent_core::readiness","message":"Task 'state manager' complete"}"#;
    let call =
        r#"{"time":"2026-08-01T09:00:02Z","mcp.method.name":"tools/call","gen_ai.tool.name":"t"}"#;
    let ag = write_file(dir.path(), "ag.jsonl", &format!("{startup}\n{call}\n"));
    let th_line =
        r#"{"time":"2026-08-01T08:59:59Z","level":"INFO","msg":"MCP server started","port":8080}"#;
    let th_call = r#"{"time":"2026-08-01T09:00:02Z","level":"INFO+2","msg":"audit_event","type":"mcp_tool_call","logged_at":"2026-08-01T09:00:02Z","outcome":"success","target":{"name":"t"}}"#;
    let th = write_file(dir.path(), "th.jsonl", &format!("{th_line}\n{th_call}\n"));
    let (recs, stats) = read(&[&ag, &th]);
    assert_eq!(recs.len(), 2);
    assert_eq!(stats.skipped, 0, "{:?}", stats.skipped_examples);
    let formats: Vec<Format> = stats.per_file.iter().map(|p| p.1).collect();
    assert_eq!(formats, [Format::AgentGatewayLog, Format::ToolHiveAudit]);
    assert_eq!(
        stats.ignored,
        counts(&[("log line (not an audit event)", 1), ("other log line", 1)])
    );
    // An audit event that lost its type is still bad.
    let (_, skipped) = read_as(
        Format::ToolHiveAudit,
        "{\"msg\":\"audit_event\",\"logged_at\":\"2026-08-01T09:00:02Z\"}\n",
    );
    assert_eq!(skipped, [(1, "field `type`: missing".to_string())]);
}

#[test]
fn toolhive_fixture_reads_tool_call_events() {
    let (recs, stats) = read(&[&fixture("toolhive-audit.jsonl")]);
    assert_eq!(stats.per_file[0].1, Format::ToolHiveAudit);
    let mut status = call(
        "2026-08-01T09:00:02Z",
        "system_status_get",
        Some("netops-bot"),
        None,
        2,
    );
    status.args = values(json!({}));
    status.id = Some("3".into());
    status.recorded = decided(RecordedDecision::Allow);
    status.upstream = Some(Upstream::Ok);
    status.latency_ms = Some(95.0);
    let mut denied = call(
        "2026-08-01T09:00:03Z",
        "firewall_policy_create",
        Some("audit-bot"),
        None,
        3,
    );
    denied.recorded = decided(RecordedDecision::Deny);
    denied.latency_ms = Some(1.0);
    let mut app_error = call(
        "2026-08-01T09:00:05Z",
        "vpn_ipsec_phase2_create",
        Some("vpn-bot"),
        None,
        5,
    );
    app_error.args = values(json!({"name": "branch-13-p2", "phase1name": "branch-13",
                                   "proposal": "aes256-sha256"}));
    app_error.id = Some("req-9".into());
    app_error.recorded = decided(RecordedDecision::Allow);
    app_error.upstream = Some(Upstream::Error);
    app_error.latency_ms = Some(210.0);
    // The marshalled form (`loggedAt`, +02:00), outcome `failure`: refused before the server
    // by a reason the event does not give, so neither a decision nor an upstream outcome.
    let failure = call(
        "2026-08-01T09:00:06Z",
        "vpn_ipsec_phase1_list",
        Some("vpn-bot"),
        None,
        7,
    );
    assert_eq!(recs, vec![status, denied, app_error, failure]);
    assert_eq!(
        stats.ignored,
        counts(&[("event mcp_initialize", 1), ("event mcp_tools_list", 1)])
    );
    let f = fixture("toolhive-audit.jsonl");
    assert_eq!(stats.skipped, 1);
    assert_eq!(
        strict_error(&f),
        format!("{f}:6: field `logged_at`: cannot parse \"yesterday\" as a timestamp")
    );
}

/// Each outcome ToolHive writes, and what it records; then the malformed events.
#[test]
fn toolhive_outcomes_and_bad_events() {
    use RecordedDecision::{Allow, Deny};
    let event = |extra: &str| {
        format!(
            r#"{{"type":"mcp_tool_call","logged_at":"2026-08-01T09:00:02Z","component":"fortios","target":{{"name":"t"}}{extra}}}"#
        )
    };
    let cases: [(&str, Option<RecordedDecision>, Option<Upstream>); 5] = [
        ("success", Some(Allow), Some(Upstream::Ok)),
        ("application_error", Some(Allow), Some(Upstream::Error)),
        ("error", Some(Allow), Some(Upstream::Error)),
        ("failure", None, None),
        ("denied", Some(Deny), None),
    ];
    for (outcome, decision, upstream) in cases {
        let line = event(&format!(
            r#","outcome":"{outcome}","subjects":{{"user_id":"u-17"}}"#
        ));
        let (recs, skipped) = read_as(Format::ToolHiveAudit, &format!("{line}\n"));
        assert_eq!(skipped, [], "{outcome}");
        let r = &recs[0];
        assert_eq!(
            (r.recorded.as_ref().and_then(|c| c.decision), r.upstream),
            (decision, upstream),
            "{outcome}"
        );
        // Without `subjects.user`, the user id is the grant.
        assert_eq!(r.grant, Some(sym("u-17")));
        assert_eq!(r.args, Args::Unrecorded);
    }
    let bad: [(String, &str); 3] = [
        (
            event(r#","outcome":"maybe""#),
            "field `outcome`: unknown outcome \"maybe\" (expected success, application_error, error, failure or denied)",
        ),
        (event(""), "field `outcome`: missing"),
        (
            event(r#","outcome":"success","data":{"request":{"params":{"arguments":[1]}}}"#),
            "field `data.request.params.arguments`: expected an object, found an array",
        ),
    ];
    for (line, reason) in bad {
        let (_, skipped) = read_as(Format::ToolHiveAudit, &format!("{line}\n"));
        assert_eq!(skipped, [(1, reason.to_string())]);
    }
    // A request body that was not a JSON object is kept as text (or a batch as an array):
    // the call is read, its arguments unrecorded.
    for data in [r#""not json""#, r#"[{"jsonrpc":"2.0","id":1}]"#] {
        let line = event(&format!(
            r#","outcome":"success","data":{{"request":{data}}}"#
        ));
        let (recs, skipped) = read_as(Format::ToolHiveAudit, &format!("{line}\n"));
        assert_eq!(skipped, []);
        assert_eq!(
            (recs[0].args.clone(), recs[0].id.clone()),
            (Args::Unrecorded, None)
        );
    }
}

/// What ToolHive's auditor writes beyond the plain case: the event is logged when the reply
/// is written (the call's time is `duration_ms` earlier); a service account's token has a
/// subject but no name (`user` "anonymous"); over SSE the POST is answered 202 before the reply;
/// a virtual MCP server names the backend it routed to; a call without a string tool name.
#[test]
fn toolhive_events_as_its_auditor_writes_them() {
    let event = |extra: &str| {
        format!(
            r#"{{"type":"mcp_tool_call","logged_at":"2026-08-01T09:00:02.5Z","outcome":"success","component":"fetch","target":{{"name":"fetch"}}{extra}}}"#
        )
    };
    let lines = [
        event(r#","subjects":{"user":"anonymous","user_id":"svc-ci"},"metadata":{"extra":{"duration_ms":500,"transport":"streamable-http"}}"#),
        event(r#","subjects":{"user":"anonymous"},"metadata":{"extra":{"duration_ms":0,"transport":"sse"}}"#),
        event(r#","subjects":{"user":"Alice","user_id":"a-1"},"metadata":{"extra":{"backend_name":"github","duration_ms":12}}"#),
        r#"{"type":"mcp_tool_call","logged_at":"2026-08-01T09:00:03Z","outcome":"failure","target":{"type":"tool","method":"tools/call"}}"#.to_string(),
    ];
    let dir = tempfile::tempdir().unwrap();
    let path = write_file(dir.path(), "audit.jsonl", &(lines.join("\n") + "\n"));
    let (recs, stats) = read(&[&path]);
    let got: Vec<_> = (recs.iter())
        .map(|r| {
            (
                r.ts,
                r.server.to_string(),
                r.grant.as_ref().map(|g| g.to_string()),
                r.recorded.as_ref().and_then(|d| d.decision),
                r.upstream,
                r.latency_ms,
            )
        })
        .collect();
    let allow = Some(RecordedDecision::Allow);
    assert_eq!(
        got,
        [
            (
                ts("2026-08-01T09:00:02Z"),
                "fetch".into(),
                Some("svc-ci".into()),
                allow,
                Some(Upstream::Ok),
                Some(500.0)
            ),
            (
                ts("2026-08-01T09:00:02.488Z"),
                "github".into(),
                Some("Alice".into()),
                allow,
                Some(Upstream::Ok),
                Some(12.0)
            ),
            (
                ts("2026-08-01T09:00:02.5Z"),
                "fetch".into(),
                Some("anonymous".into()),
                allow,
                None,
                None
            ),
        ]
    );
    // An event without `target.name` is a record without a tool: skipped, and located.
    assert!(stats.ignored.is_empty(), "{:?}", stats.ignored);
    assert_eq!(stats.skipped, 1);
    let skipped: Vec<_> = (stats.skipped_examples.iter())
        .map(|s| (s.line, s.reason.as_str()))
        .collect();
    assert_eq!(skipped, [(4, "field `target.name`: missing")]);
}

#[test]
fn gateway_and_telemetry_calls_convert_round_trip() {
    let names = [
        "otel-spans.jsonl",
        "agentgateway.jsonl",
        "agentgateway-text.log",
        "toolhive-audit.jsonl",
    ];
    let paths: Vec<String> = names.iter().map(|n| fixture(n)).collect();
    let (recs, stats) = read_with(&paths, &ReadOptions::default());
    assert_eq!(recs.len(), 17);
    // Two bad OTel lines, a ToolHive event with a bad time, an agentgateway call without a tool.
    assert_eq!(stats.skipped, 4);
    let formats: Vec<Format> = stats.per_file.iter().map(|p| p.1).collect();
    assert_eq!(
        formats,
        [
            Format::OtelSpans,
            Format::AgentGatewayLog,
            Format::AgentGatewayLog,
            Format::ToolHiveAudit
        ]
    );
    // The text fixture: an allowed call, a refusal of MCP authorization, an upstream error.
    let text: Vec<_> = (recs.iter())
        .filter(|r| r.origin.file == 2)
        .map(|r| {
            let decision = r.recorded.as_ref().and_then(|d| d.decision);
            (r.tool.to_string(), decision, r.upstream)
        })
        .collect();
    assert_eq!(
        text,
        [
            (
                "get_issue".into(),
                Some(RecordedDecision::Allow),
                Some(Upstream::Ok)
            ),
            (
                "delete_repository".into(),
                Some(RecordedDecision::Deny),
                None
            ),
            (
                "create_issue".into(),
                Some(RecordedDecision::Allow),
                Some(Upstream::Error)
            ),
        ]
    );
    assert_round_trips(&recs);
}
