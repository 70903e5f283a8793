//! The synthetic trace generator: determinism, counts, shape, and agreement between its outputs.

use std::collections::{BTreeMap, BTreeSet};

use mcpsim::generate::{DEFAULT_START, GenConfig, GenerateError, Generator};
use mcpsim::trace::Upstream;
use serde_json::Value;

fn config(calls: u64, grants: u32, seed: u64) -> GenConfig {
    GenConfig {
        calls,
        grants,
        seed,
        ..GenConfig::default()
    }
}

fn jsonl(cfg: &GenConfig) -> Vec<u8> {
    let mut out = Vec::new();
    let n = Generator::new(cfg)
        .and_then(|g| g.write_jsonl(&mut out))
        .map_err(|e| e.to_string());
    assert_eq!(n, Ok(cfg.calls));
    out
}

#[test]
fn same_seed_gives_same_bytes() {
    let cfg = config(5_000, 12, 7);
    assert_eq!(jsonl(&cfg), jsonl(&cfg));
}

#[test]
fn different_seeds_give_different_traces() {
    assert_ne!(jsonl(&config(500, 12, 7)), jsonl(&config(500, 12, 8)));
}

#[test]
fn writes_exactly_the_requested_number_of_lines() {
    for calls in [0, 1, 2, 999] {
        let out = jsonl(&config(calls, 3, 1));
        assert_eq!(out.iter().filter(|&&b| b == b'\n').count() as u64, calls);
        assert!(out.is_empty() || out.ends_with(b"\n"));
    }
}

#[test]
fn jsonl_lines_are_the_records_the_iterator_yields() {
    let cfg = GenConfig {
        servers: vec!["edge-a".into(), "edge \"b\"".into()],
        ..config(3_000, 9, 3)
    };
    let text = String::from_utf8(jsonl(&cfg)).expect("utf-8");
    let records: Vec<_> = Generator::new(&cfg).expect("valid config").collect();
    assert_eq!(records.len(), 3_000);
    for (i, (line, rec)) in text.lines().zip(&records).enumerate() {
        let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("line {i}: {e}"));
        let ts = v["ts"].as_str().expect("ts is a string");
        let parsed = chrono::DateTime::parse_from_rfc3339(ts).expect("RFC 3339");
        assert_eq!(parsed.timestamp_nanos_opt(), Some(rec.ts), "line {i}");
        assert_eq!(v["server"].as_str(), Some(&*rec.server));
        assert_eq!(v["grant"].as_str(), rec.grant.as_deref());
        assert_eq!(v["session"].as_str(), rec.session.as_deref());
        assert_eq!(v["tool"].as_str(), Some(&*rec.tool));
        assert_eq!(v["id"].as_str(), rec.id.as_deref());
        assert_eq!(v["upstream"].as_str(), rec.upstream.map(Upstream::as_str));
        assert_eq!(v["latency_ms"].as_f64(), rec.latency_ms);
        match rec.args.values() {
            Some(m) => assert_eq!(v["args"].as_object(), Some(m), "line {i}"),
            None => panic!("generated args should be values, got {:?}", rec.args),
        }
        assert_eq!(rec.origin.line, i as u64 + 1);
    }
    let servers: BTreeSet<&str> = records.iter().map(|r| &*r.server).collect();
    assert_eq!(servers, BTreeSet::from(["edge \"b\"", "edge-a"]));
}

#[test]
fn traces_have_the_promised_shape() {
    let records: Vec<_> = Generator::new(&config(40_000, 20, 11))
        .expect("valid config")
        .collect();
    // Time order, starting at the configured start.
    assert!(records.windows(2).all(|w| w[0].ts <= w[1].ts));
    assert!(records[0].ts >= DEFAULT_START);

    // Every grant is used, each with several sessions.
    let mut sessions: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for r in &records {
        let grant = r.grant.as_deref().expect("grant");
        sessions
            .entry(grant)
            .or_default()
            .insert(r.session.as_deref().expect("session"));
    }
    assert_eq!(sessions.len(), 20);
    assert!(sessions.values().all(|s| s.len() >= 3), "{sessions:?}");

    // Skewed tool popularity: the top tool is called far more than the least popular one.
    let mut per_tool: BTreeMap<&str, usize> = BTreeMap::new();
    for r in &records {
        *per_tool.entry(&r.tool).or_default() += 1;
    }
    let mut counts: Vec<usize> = per_tool.values().copied().collect();
    counts.sort_unstable();
    assert!(per_tool.len() >= 10, "{per_tool:?}");
    assert!(counts[counts.len() - 1] > 5 * counts[0], "{per_tool:?}");

    // A few upstream failures: about 1% errors, 0.5% tool errors.
    let errors = records
        .iter()
        .filter(|r| r.upstream == Some(Upstream::Error))
        .count();
    let tool_errors = records
        .iter()
        .filter(|r| r.upstream == Some(Upstream::ToolError))
        .count();
    assert!((200..=600).contains(&errors), "errors: {errors}");
    assert!(
        (80..=350).contains(&tool_errors),
        "tool errors: {tool_errors}"
    );

    // Agents loop: some (grant, tool, minute) buckets are far above a human's pace.
    let mut per_minute: BTreeMap<(&str, &str, i64), u32> = BTreeMap::new();
    for r in &records {
        let key = (
            r.grant.as_deref().unwrap_or(""),
            &*r.tool,
            r.ts / 60_000_000_000,
        );
        *per_minute.entry(key).or_default() += 1;
    }
    assert!(per_minute.values().any(|&n| n >= 60), "no bursts");
}

#[test]
fn request_ids_restart_with_each_session() {
    let records: Vec<_> = Generator::new(&config(5_000, 4, 5))
        .expect("valid config")
        .collect();
    let mut last: BTreeMap<&str, u64> = BTreeMap::new();
    for r in &records {
        let id: u64 =
            r.id.as_deref()
                .and_then(|s| s.parse().ok())
                .expect("numeric id");
        let prev = last.insert(r.session.as_deref().expect("session"), id);
        assert_eq!(id, prev.map_or(1, |p| p + 1), "session {:?}", r.session);
    }
}

#[test]
fn sessions_last_as_many_calls_as_asked() {
    let sessions = |session_calls| {
        let cfg = GenConfig {
            session_calls,
            ..config(20_000, 8, 3)
        };
        let records: Vec<_> = Generator::new(&cfg).expect("valid config").collect();
        let mut calls: BTreeMap<String, u64> = BTreeMap::new();
        for r in &records {
            *calls
                .entry(r.session.as_deref().expect("a session").to_owned())
                .or_default() += 1;
        }
        calls
    };
    // One call each.
    let one = sessions(Some(1));
    assert_eq!(one.len(), 20_000);
    // 1 to 19 calls, 10 on average (the agents' last sessions are cut short by the end).
    let ten = sessions(Some(10));
    assert!(ten.values().all(|&n| (1..=19).contains(&n)), "{ten:?}");
    assert!(
        (1_800..=2_200).contains(&ten.len()),
        "{} sessions",
        ten.len()
    );
    // The default: 20 to 600 calls, but for sessions the end of the trace cuts short.
    let default = sessions(None);
    assert!(default.values().all(|&n| n <= 600));
    assert!(default.values().filter(|&&n| n < 20).count() <= 8);
}

#[test]
fn rejects_configurations_that_cannot_produce_a_trace() {
    let err = Generator::new(&config(10, 0, 1))
        .err()
        .map(|e| e.to_string());
    assert_eq!(
        err.as_deref(),
        Some("invalid generator setting `grants`: must be at least 1")
    );
    let cfg = GenConfig {
        session_calls: Some(0),
        ..config(10, 1, 1)
    };
    let err = Generator::new(&cfg).err().map(|e| e.to_string());
    assert_eq!(
        err.as_deref(),
        Some("invalid generator setting `session_calls`: must be from 1 to 2147483647")
    );
    let cfg = GenConfig {
        servers: vec![],
        ..config(10, 1, 1)
    };
    assert!(matches!(
        Generator::new(&cfg),
        Err(GenerateError::Config {
            field: "servers",
            ..
        })
    ));
}

#[test]
fn parquet_holds_the_same_calls_as_jsonl() {
    use polars::prelude::*;

    let cfg = config(1_500, 6, 9);
    let mut bytes = Vec::new();
    let n = Generator::new(&cfg)
        .and_then(|g| g.write_parquet(&mut bytes, 400))
        .map_err(|e| e.to_string());
    assert_eq!(n, Ok(1_500));
    let mut r = ParquetReader::new(std::io::Cursor::new(bytes.clone()));
    let schema = r.schema().expect("readable Parquet");
    let names: Vec<&str> = schema.iter_names().map(|s| s.as_str()).collect();
    assert_eq!(
        names,
        [
            "ts",
            "server",
            "grant",
            "session",
            "tool",
            "args",
            "id",
            "upstream",
            "latency_ms"
        ]
    );
    // `ts` is a UTC timestamp, which this polars build has no type for: read by mcpsim.
    let df = r
        .with_columns(Some(names[1..].iter().map(|s| s.to_string()).collect()))
        .finish()
        .expect("readable Parquet");
    assert_eq!(df.height(), 1_500);
    let opts = mcpsim::trace::ReadOptions {
        from: Some(mcpsim::trace::Format::Parquet),
        ..Default::default()
    };
    let mut trace = mcpsim::trace::Trace::open_with_stdin(&["-".into()], &opts, &mut &bytes[..])
        .expect("opens");
    let mut ts = Vec::new();
    while let Some(r) = trace.next_record().expect("reads") {
        ts.push(r.ts);
    }
    let records: Vec<_> = Generator::new(&cfg).expect("valid config").collect();
    let tool = df
        .column("tool")
        .and_then(|c| c.str().cloned())
        .expect("str tool");
    let args = df
        .column("args")
        .and_then(|c| c.str().cloned())
        .expect("str args");
    for (i, rec) in records.iter().enumerate() {
        assert_eq!(ts.get(i), Some(&rec.ts));
        assert_eq!(tool.get(i), Some(&*rec.tool));
        let parsed: Value = serde_json::from_str(args.get(i).unwrap_or("")).expect("args JSON");
        assert_eq!(Some(parsed.as_object()), Some(rec.args.values()));
    }
}

#[test]
fn cli_writes_the_file_and_reports_the_count() {
    use clap::Parser;
    use mcpsim::cli::generate::{GenerateArgs, run};

    #[derive(Parser)]
    struct Cmd {
        #[command(flatten)]
        args: GenerateArgs,
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("t.jsonl");
    let cmd = Cmd::parse_from([
        "generate",
        "--calls",
        "250",
        "--grants",
        "4",
        "--seed",
        "3",
        "--servers",
        "a,b",
        "--output",
        path.to_str().expect("utf-8 path"),
    ]);
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = run(&cmd.args, &mut out, &mut err).map_err(|e| e.to_string());
    assert_eq!(code, Ok(0));
    assert!(out.is_empty());
    let expected = format!("generated 250 calls into {}\n", path.display());
    assert_eq!(String::from_utf8_lossy(&err), expected);
    let written = std::fs::read(&path).expect("output file");
    let cfg = GenConfig {
        servers: vec!["a".into(), "b".into()],
        ..config(250, 4, 3)
    };
    assert_eq!(written, jsonl(&cfg));

    // Without --output the trace goes to the given writer.
    let cmd = Cmd::parse_from([
        "generate",
        "--calls",
        "250",
        "--grants",
        "4",
        "--seed",
        "3",
        "--servers",
        "a,b",
    ]);
    let (mut out, mut err) = (Vec::new(), Vec::new());
    assert_eq!(
        run(&cmd.args, &mut out, &mut err).map_err(|e| e.to_string()),
        Ok(0)
    );
    assert_eq!(out, written);
}

/// The fast readers (parallel JSONL, multi-threaded Parquet) must give back exactly the calls
/// the generator made, in both the in-memory and the streaming (two-pass) modes of `Trace`.
#[test]
fn generated_files_read_back_as_the_same_calls() {
    use mcpsim::trace::{ReadOptions, Trace};

    let cfg = config(12_000, 9, 21);
    let expected: Vec<_> = Generator::new(&cfg).expect("valid config").collect();
    let dir = tempfile::tempdir().expect("temp dir");
    let jsonl = dir.path().join("t.jsonl");
    let parquet = dir.path().join("t.parquet");
    let mut f = std::fs::File::create(&jsonl).expect("create");
    Generator::new(&cfg)
        .and_then(|g| g.write_jsonl(&mut f))
        .expect("write jsonl");
    let mut f = std::fs::File::create(&parquet).expect("create");
    Generator::new(&cfg)
        .and_then(|g| g.write_parquet(&mut f, 5_000))
        .expect("write parquet");
    for path in [&jsonl, &parquet] {
        for limit in [usize::MAX, 100] {
            let inputs = [path.to_string_lossy().into_owned()];
            let mut trace = Trace::open(
                &inputs,
                &ReadOptions {
                    reorder_window: Some(limit as u64),
                    ..ReadOptions::default()
                },
            )
            .expect("open");
            let mut got = Vec::new();
            while let Some(rec) = trace.next_record().expect("read") {
                got.push(rec);
            }
            assert_eq!(got.len(), expected.len(), "{path:?} limit {limit}");
            for (a, b) in got.iter().zip(&expected) {
                assert_eq!(a, b, "{path:?} limit {limit}");
            }
            assert_eq!(trace.stats().skipped, 0);
            assert_eq!(trace.stats().out_of_order, 0);
        }
    }
}

/// A JSON-RPC recording is in time order and reads back as the calls of the JSONL trace: only
/// the line a call comes from differs (two lines per call, replies interleaved).
#[test]
fn jsonrpc_recording_reads_back_as_the_same_calls() {
    use mcpsim::trace::{ReadOptions, Trace};

    // Read as detected: an mcpsim JSONL reader would find no `tool` on any line.
    let cfg = config(6_000, 9, 5);
    let expected: Vec<_> = Generator::new(&cfg).expect("valid config").collect();
    let mut text = Vec::new();
    let n = Generator::new(&cfg)
        .and_then(|g| g.write_jsonrpc(&mut text))
        .expect("write jsonrpc");
    assert_eq!(n, cfg.calls);
    let text = String::from_utf8(text).expect("utf-8");
    assert_eq!(text.lines().count(), 2 * expected.len());
    let stamps: Vec<i64> = text
        .lines()
        .map(|line| {
            let v: Value = serde_json::from_str(line).expect("a JSON line");
            let ts = v["ts"].as_str().expect("ts is a string");
            let parsed = chrono::DateTime::parse_from_rfc3339(ts).expect("RFC 3339");
            parsed.timestamp_nanos_opt().expect("in range")
        })
        .collect();
    assert!(stamps.is_sorted(), "lines in time order");

    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("t.jsonl");
    std::fs::write(&path, &text).expect("write");
    let inputs = [path.to_string_lossy().into_owned()];
    let mut trace = Trace::open(&inputs, &ReadOptions::default()).expect("open");
    let mut got = Vec::new();
    while let Some(mut rec) = trace.next_record().expect("read") {
        rec.origin.line = 0;
        got.push(rec);
    }
    assert_eq!(trace.stats().skipped, 0);
    assert_eq!(got.len(), expected.len());
    for (mut want, got) in expected.into_iter().zip(got) {
        want.origin.line = 0;
        assert_eq!(got, want);
    }
}

/// Bad rows in a multi-threaded Parquet batch are reported in row order, with their row numbers.
#[test]
fn parquet_bad_rows_are_reported_in_order() {
    use mcpsim::trace::{ReadOptions, Trace};
    use polars::prelude::*;

    let n = 10_000usize;
    let ts: Vec<i64> = (0..n as i64)
        .map(|i| DEFAULT_START + i * 1_000_000)
        .collect();
    let tool: Vec<Option<&str>> = (0..n)
        .map(|i| {
            if i % 997 == 3 {
                None
            } else {
                Some("firewall_policy_list")
            }
        })
        .collect();
    let args: Vec<&str> = (0..n)
        .map(|i| {
            if i % 1_511 == 7 {
                "[1]"
            } else {
                r#"{"vdom":"root"}"#
            }
        })
        .collect();
    let mut df = DataFrame::new(
        n,
        vec![
            Column::new("ts".into(), ts),
            Column::new("tool".into(), tool),
            Column::new("args".into(), args),
        ],
    )
    .expect("frame");
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("bad.parquet");
    let f = std::fs::File::create(&path).expect("create");
    ParquetWriter::new(f).finish(&mut df).expect("write");
    let inputs = [path.to_string_lossy().into_owned()];
    // Kept in memory after one pass, and streamed after an order-checking pass: same result.
    let mut streamed = Trace::open(
        &inputs,
        &ReadOptions {
            reorder_window: Some(100),
            ..ReadOptions::default()
        },
    )
    .expect("open");
    let mut streamed_ts = Vec::new();
    while let Some(rec) = streamed.next_record().expect("read") {
        streamed_ts.push(rec.ts);
    }
    let mut trace = Trace::open(&inputs, &ReadOptions::default()).expect("open");
    let mut calls = 0;
    let mut kept_ts = Vec::new();
    while let Some(rec) = trace.next_record().expect("read") {
        calls += 1;
        kept_ts.push(rec.ts);
    }
    assert_eq!(streamed_ts, kept_ts);
    assert_eq!(streamed.stats().skipped, trace.stats().skipped);
    assert_eq!(
        streamed.stats().skipped_examples,
        trace.stats().skipped_examples
    );
    let bad_tool: Vec<u64> = (0..n as u64)
        .filter(|i| i % 997 == 3)
        .map(|i| i + 1)
        .collect();
    // Arguments that are not an object (`[1]`) are read, not skipped: the Intercept gateway
    // forwards such calls.
    let stats = trace.stats();
    assert_eq!(calls as usize, n - bad_tool.len());
    assert_eq!(stats.skipped as usize, bad_tool.len());
    let lines: Vec<u64> = bad_tool.clone();
    let reported: Vec<u64> = stats.skipped_examples.iter().map(|s| s.line).collect();
    assert_eq!(reported, lines[..reported.len()]);
    assert!(
        stats.skipped_examples[0].reason.contains("tool"),
        "{:?}",
        stats.skipped_examples[0]
    );
}

/// The quick order check may see a bad line's timestamp; that must never change the result.
#[test]
fn order_check_is_exact_around_bad_and_unsorted_lines() {
    use mcpsim::trace::{ReadOptions, Trace};

    // Past the first few megabytes, so the odd line falls in a chunk read timestamps-only.
    let cfg = config(40_000, 5, 2);
    let mut text = Vec::new();
    Generator::new(&cfg)
        .and_then(|g| g.write_jsonl(&mut text))
        .expect("write jsonl");
    let lines: Vec<&[u8]> = text
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .collect();
    let early = r#"{"ts":"2020-01-01T00:00:00Z","tool":"t","upstream":"nope"}"#;
    let cases = [
        // A bad line with an early timestamp: the calls are still in order.
        (early, 0u64, 1u64),
        // A valid line with an early timestamp: one call out of order, sorted first.
        (r#"{"ts":"2020-01-01T00:00:00Z","tool":"t"}"#, 1, 0),
    ];
    let dir = tempfile::tempdir().expect("temp dir");
    for (i, (odd, out_of_order, skipped)) in cases.into_iter().enumerate() {
        let mut file = Vec::new();
        for (n, line) in lines.iter().enumerate() {
            if n == 35_000 {
                file.extend_from_slice(odd.as_bytes());
                file.push(b'\n');
            }
            file.extend_from_slice(line);
            file.push(b'\n');
        }
        let path = dir.path().join(format!("case{i}.jsonl"));
        std::fs::write(&path, &file).expect("write");
        let inputs = [path.to_string_lossy().into_owned()];
        // Read ahead by the default window, by the whole file, and by 10 calls: a call out of
        // order by more than that cannot be put in its place, and the read says where.
        for limit in [None, Some(0), Some(10)] {
            let opts = ReadOptions {
                reorder_window: limit,
                ..ReadOptions::default()
            };
            let mut trace = Trace::open(&inputs, &opts).expect("open");
            if out_of_order > 0 && limit == Some(10) {
                let err = loop {
                    match trace.next_record() {
                        Ok(Some(_)) => {}
                        Ok(None) => panic!("case {i}: a call 35,000 lines late was put in place"),
                        Err(e) => break e,
                    }
                };
                let msg = err.to_string();
                assert!(msg.contains("case1.jsonl:35001: "), "{msg}");
                assert!(msg.contains("--reorder-window 0"), "{msg}");
                continue;
            }
            let mut ts = Vec::new();
            while let Some(rec) = trace.next_record().expect("read") {
                ts.push(rec.ts);
            }
            let stats = trace.stats();
            assert_eq!(stats.out_of_order, out_of_order, "case {i} limit {limit:?}");
            assert_eq!(stats.skipped, skipped, "case {i} limit {limit:?}");
            assert_eq!(
                ts.len() as u64,
                40_000 + 1 - skipped,
                "case {i} limit {limit:?}"
            );
            assert!(
                ts.windows(2).all(|w| w[0] <= w[1]),
                "case {i} limit {limit:?}"
            );
            if skipped == 1 {
                assert_eq!(stats.skipped_examples[0].line, 35_001);
            }
        }
    }
}
