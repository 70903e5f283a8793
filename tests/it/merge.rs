//! The one read path: several inputs merged in time order, calls out of order put in their
//! place within the read-ahead, bad lines of several inputs counted in input order, `--strict`
//! before any output, and per-call rows that say what the summary says of the same calls.

use std::io::Write;

use mcpsim::trace::{CallRecord, ReadOptions, Trace, TraceError};

use crate::cli::run;
use crate::trace::{fixture, read, read_with, write_file};

fn call_line(sec: u64, id: u64) -> String {
    format!(
        r#"{{"ts":"2026-08-01T{:02}:{:02}:{:02}Z","server":"s","grant":"g{}","tool":"t{}","id":"{id}","args":{{"n":{id}}}}}"#,
        sec / 3600 % 24,
        sec / 60 % 60,
        sec % 60,
        id % 7,
        id % 3
    )
}

/// 30,000 calls (several JSONL chunks), one a second, with every 1,000th call moved 2,500 lines
/// later: out of order across chunk boundaries, within the default read-ahead.
/// Returns the file, how many calls were moved, and the line the first one moved to.
fn late_calls(dir: &std::path::Path) -> (String, usize, u64) {
    let mut lines: Vec<String> = (0..30_000).map(|i| call_line(i, i)).collect();
    let mut moved = 0;
    for i in (1_000..27_000).step_by(1_000) {
        let l = lines.remove(i);
        lines.insert(i + 2_500, l);
        moved += 1;
    }
    let first = lines
        .iter()
        .position(|l| l.contains(r#""id":"1000""#))
        .unwrap() as u64
        + 1;
    (
        write_file(dir, "late.jsonl", &lines.join("\n")),
        moved,
        first,
    )
}

fn ids(recs: &[CallRecord]) -> Vec<u64> {
    recs.iter()
        .map(|r| r.id.as_deref().unwrap().parse().unwrap())
        .collect()
}

#[test]
fn calls_late_across_chunks_are_put_in_their_place_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let (path, moved, first) = late_calls(dir.path());
    let (recs, stats) = read_with(std::slice::from_ref(&path), &ReadOptions::default());
    assert_eq!(ids(&recs), (0..30_000).collect::<Vec<u64>>());
    // Each moved call is earlier than the calls read before it: counted once.
    assert_eq!(stats.out_of_order, moved as u64);
    assert_eq!(stats.calls, 30_000);
    // Records keep what the line held.
    assert_eq!(recs[1_000].origin.line, first);
    assert!(recs[1_000].args.values().is_some());
}

#[test]
fn a_call_later_than_the_window_ends_the_read_naming_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _, first) = late_calls(dir.path());
    let opts = ReadOptions {
        reorder_window: Some(100),
        ..ReadOptions::default()
    };
    let mut t = Trace::open(std::slice::from_ref(&path), &opts).unwrap();
    let err = loop {
        match t.next_record() {
            Ok(Some(_)) => {}
            Ok(None) => panic!("a call 2,500 lines late was put in place"),
            Err(e) => break e,
        }
    };
    // Calls are read ahead a whole chunk at a time, so the first late call past what was
    // handed out is one of the moved ones, not necessarily the first.
    let TraceError::OutOfOrder { line, window, .. } = err else {
        panic!("{err:?}")
    };
    assert_eq!(window, 100);
    let text = std::fs::read_to_string(&path).unwrap();
    let id_at = |line: u64| -> u64 {
        let l = text.lines().nth(line as usize - 1).unwrap();
        let id = l.split(r#""id":""#).nth(1).unwrap().split('"').next();
        id.unwrap().parse().unwrap()
    };
    assert!(
        line >= first && id_at(line) < id_at(line - 1),
        "line {line}"
    );
    // The whole file in memory sorts it, as the message says.
    let (code, out, stderr) = run(&["stats", "--reorder-window", "100", &path]);
    assert_eq!(code, 2, "{stderr}");
    assert!(out.is_empty());
    assert!(
        stderr.contains(&format!(
            "late.jsonl:{line}: this call is earlier than calls already replayed"
        )),
        "{stderr}"
    );
    let (code, _, stderr) = run(&["stats", "--reorder-window", "0", &path]);
    assert_eq!(code, 0, "{stderr}");
}

#[test]
fn bad_lines_of_several_inputs_are_counted_in_input_order() {
    let bad = fixture("bad.jsonl");
    let fleet = fixture("fleet.jsonl");
    // The same bad lines in a second file (a file named twice is read once).
    let dir = tempfile::tempdir().unwrap();
    let again = dir.path().join("bad-again.jsonl").display().to_string();
    std::fs::copy(&bad, &again).unwrap();
    let (alone, alone_stats) = read(&[&bad]);
    let (recs, stats) = read(&[&fleet, &bad, &again]);
    assert_eq!(stats.skipped, 2 * alone_stats.skipped);
    assert_eq!(recs.len(), 45 + 2 * alone.len());
    // Examples: the second input's first, in line order, then the third's.
    let want: Vec<(String, u64)> = [&bad, &again]
        .iter()
        .flat_map(|f| {
            alone_stats
                .skipped_examples
                .iter()
                .map(move |s| ((*f).clone(), s.line))
        })
        .take(10)
        .collect();
    let got: Vec<(String, u64)> = stats
        .skipped_examples
        .iter()
        .map(|s| (s.file.clone(), s.line))
        .collect();
    assert_eq!(got, want);
    assert_eq!(stats.per_file[1].2, alone.len() as u64);
}

#[test]
fn strict_fails_at_open_on_a_bad_line_of_a_later_input() {
    let opts = ReadOptions {
        strict: true,
        ..ReadOptions::default()
    };
    let inputs = [fixture("fleet.jsonl"), fixture("bad.jsonl")];
    let err = Trace::open(&inputs, &opts).err().expect("strict must fail");
    assert!(
        matches!(&err, TraceError::BadRecord { file, .. } if file.ends_with("bad.jsonl")),
        "{err:?}"
    );
}

/// Per-call rows are built from the columns; the summary's listed calls from whole records.
/// Both must describe every call alike, on every fixture.
#[test]
fn per_call_rows_describe_calls_as_the_summary_lists_them() {
    let traces = [
        "agentgateway.jsonl",
        "bad.jsonl",
        "fleet.csv",
        "fleet.jsonl",
        "fleet.parquet",
        "intercept-github.jsonl",
        "intercept.jsonl",
        "jsonrpc.jsonl",
        "mcp-server-fortios.log",
        "otel-spans.jsonl",
        "policylayer.jsonl",
        "toolhive-audit.jsonl",
    ];
    for policy in [
        "fixtures/policies/everything.json",
        "fixtures/policies/intercept/github.yaml",
    ] {
        for trace in traces {
            let path = fixture(trace);
            let (code, rows, err) = run(&[
                "simulate",
                "--policy",
                policy,
                &path,
                "--format",
                "jsonl",
                "--show-args",
            ]);
            assert!(code == 0 || code == 1, "{trace}: {err}");
            let (_, summary, err) = run(&[
                "simulate",
                "--policy",
                policy,
                &path,
                "--format",
                "json",
                "--calls",
                "all",
                "--show-args",
            ]);
            let summary: serde_json::Value = serde_json::from_str(&summary).expect(&err);
            let listed = summary["calls"].as_array().expect("calls").clone();
            let rows: Vec<serde_json::Value> = rows
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect();
            assert!(!rows.is_empty(), "{trace}");
            let mut compared = 0;
            for row in &rows {
                if let Some(l) = listed.iter().find(|l| l["index"] == row["index"]) {
                    assert_eq!(l, row, "{trace} {policy}");
                    compared += 1;
                }
            }
            assert_eq!(compared, listed.len(), "{trace} {policy}");
        }
    }
}

#[test]
fn standard_input_streams_like_a_file() {
    let mut child = crate::cli::mcpsim(&["stats", "--format", "json", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let body = std::fs::read(fixture("fleet.jsonl")).unwrap();
    child.stdin.take().unwrap().write_all(&body).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let (_, file, _) = run(&["stats", "--format", "json", &fixture("fleet.jsonl")]);
    let stdin: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let file: serde_json::Value = serde_json::from_str(&file).unwrap();
    assert_eq!(stdin["totals"], file["totals"]);
    assert_eq!(stdin["per_tool"], file["per_tool"]);
}

/// CSV and Parquet rows are written as they come, in several writes of 16,384 rows: the
/// output is one header (CSV) or one file (Parquet) holding every row, as JSON lines say.
#[test]
fn per_call_csv_and_parquet_stream_every_row_in_order() {
    use polars::prelude::*;
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("calls.jsonl");
    let trace = trace.to_str().unwrap();
    let (code, _, err) = run(&[
        "generate", "--calls", "40000", "--seed", "7", "--output", trace,
    ]);
    assert_eq!(code, 0, "{err}");
    let policy = "fixtures/policies/bench.json";
    let (_, jsonl, _) = run(&["simulate", "--policy", policy, trace, "--format", "jsonl"]);
    let decisions: Vec<String> = jsonl
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["decision"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(decisions.len(), 40_000);
    let csv_out = dir.path().join("d.csv");
    let pq_out = dir.path().join("d.parquet");
    for (format, out) in [("csv", &csv_out), ("parquet", &pq_out)] {
        let (code, _, err) = run(&[
            "simulate",
            "--policy",
            policy,
            trace,
            "--format",
            format,
            "--output",
            out.to_str().unwrap(),
        ]);
        assert!(code == 0 || code == 1, "{err}");
    }
    let csv = std::fs::read_to_string(&csv_out).unwrap();
    assert_eq!(csv.lines().filter(|l| l.starts_with("index,")).count(), 1);
    let df = CsvReader::new(std::fs::File::open(&csv_out).unwrap())
        .finish()
        .unwrap();
    let pq = super::cli::read_parquet(&pq_out);
    for df in [df, pq] {
        assert_eq!(df.height(), 40_000);
        let col = df.column("decision").unwrap().str().unwrap().clone();
        let got: Vec<&str> = (0..col.len()).map(|i| col.get(i).unwrap()).collect();
        assert_eq!(got, decisions);
        let index = df.column("index").unwrap().cast(&DataType::Int64).unwrap();
        let index = index.i64().unwrap();
        assert_eq!(index.get(39_999), Some(40_000));
    }
}

/// A replay builds a call's arguments only for tools whose decision can read them.
#[test]
fn arguments_are_read_only_for_tools_whose_rules_read_them() {
    let load = |p: &str| {
        mcpsim::policy::load_policy_file(std::path::Path::new(&format!(
            "{}/{p}",
            env!("CARGO_MANIFEST_DIR")
        )))
        .expect("loads")
    };
    let candidate = load("fixtures/policies/candidate.json");
    assert!(candidate.reads_args());
    for (tool, reads) in [
        ("vpn_ipsec_phase2_create", true),
        ("firewall_policy_create", true),
        ("firewall_policy_list", false),
        ("system_status_get", false),
        ("not_in_the_policy", false),
    ] {
        assert_eq!(candidate.reads_args_of(tool), reads, "{tool}");
    }
    // An Intercept policy's conditions are not analysed: every tool may read them.
    let intercept = load("fixtures/policies/intercept/github.yaml");
    assert!(intercept.reads_args_of("list_issues"));
}

/// More inputs than stay open (`MAX_OPEN`): a day of hourly logs, agents' logs spanning the
/// day, files of other formats and a gzip copy. Inputs past the first few are closed after
/// their first read and read again when the merge reaches them; the merged calls must be every
/// input's calls as it reads alone, in (time, input, line) order, with the same counts.
#[test]
fn many_inputs_merge_as_each_reads_alone() {
    use mcpsim::trace::MAX_OPEN;
    let dir = tempfile::tempdir().unwrap();
    let mut inputs = Vec::new();
    for hour in 0..20u64 {
        let mut lines: Vec<String> = (0..30)
            .map(|i| call_line(hour * 3600 + i * 100, hour * 100 + i))
            .collect();
        if hour % 2 == 0 {
            lines.insert(4, "not json".into());
        }
        if hour % 3 == 0 {
            lines.swap(10, 11);
        }
        inputs.push(write_file(
            dir.path(),
            &format!("hour-{hour:02}.jsonl"),
            &lines.join("\n"),
        ));
    }
    for agent in 0..6u64 {
        // Agents 0 and 1 call at the same instants: ties go by input, then line.
        let lines: Vec<String> = (0..150)
            .map(|i| {
                call_line(
                    i * 480 + agent.saturating_sub(1) * 7,
                    5_000 + agent * 1_000 + i,
                )
            })
            .collect();
        inputs.push(write_file(
            dir.path(),
            &format!("agent-{agent}.jsonl"),
            &lines.join("\n"),
        ));
    }
    for f in [
        "fleet.csv",
        "fleet.parquet",
        "jsonrpc.jsonl",
        "otel-spans.jsonl",
    ] {
        inputs.push(fixture(f));
    }
    let gz = dir.path().join("hour-07-again.jsonl.gz");
    let mut enc = flate2::write::GzEncoder::new(
        std::fs::File::create(&gz).unwrap(),
        flate2::Compression::default(),
    );
    enc.write_all(&std::fs::read(&inputs[7]).unwrap()).unwrap();
    enc.finish().unwrap();
    inputs.push(gz.display().to_string());
    assert!(inputs.len() > MAX_OPEN + 10);

    let mut want = Vec::new();
    let (mut skipped, mut out_of_order, mut ignored) = (0, 0, 0);
    for (i, input) in inputs.iter().enumerate() {
        let (recs, stats) = read(&[input]);
        assert!(!recs.is_empty(), "{input}");
        want.extend(
            recs.iter()
                .map(|r| (r.ts, i as u32, r.origin.line, r.tool.to_string())),
        );
        skipped += stats.skipped;
        out_of_order += stats.out_of_order;
        ignored += stats.ignored.values().sum::<u64>();
    }
    want.sort_by_key(|w| (w.0, w.1, w.2));
    let (recs, stats) = read_with(&inputs, &ReadOptions::default());
    let got: Vec<_> = recs
        .iter()
        .map(|r| (r.ts, r.origin.file, r.origin.line, r.tool.to_string()))
        .collect();
    assert_eq!(got.len(), want.len());
    assert_eq!(got, want);
    assert_eq!(stats.calls, want.len() as u64);
    assert_eq!(stats.skipped, skipped);
    assert!(skipped >= 10);
    assert_eq!(stats.out_of_order, out_of_order);
    assert!(out_of_order >= 7);
    assert_eq!(stats.ignored.values().sum::<u64>(), ignored);
    for (i, (name, _, calls)) in stats.per_file.iter().enumerate() {
        assert_eq!(name, &inputs[i]);
        assert_eq!(
            *calls,
            want.iter().filter(|w| w.1 == i as u32).count() as u64
        );
    }
    // Under `--strict`, a bad line of a late input still ends the read before any call.
    let strict = ReadOptions {
        strict: true,
        ..ReadOptions::default()
    };
    // The odd hours and the agents: no bad line.
    let clean: Vec<String> = (1..20)
        .step_by(2)
        .chain(20..26)
        .map(|i| inputs[i].clone())
        .collect();
    let mut late = clean.clone();
    late.push(inputs[18].clone());
    assert!(Trace::open(&clean, &strict).is_ok());
    let err = Trace::open(&late, &strict).err().expect("strict must fail");
    assert!(
        matches!(&err, TraceError::BadRecord { file, line: 5, .. } if file.ends_with("hour-18.jsonl")),
        "{err:?}"
    );
}

/// Calls whose arguments hold whole files: written and read a few at a time, not in batches of
/// thousands (a Parquet row group, a CSV batch, a per-call frame each hold at most about
/// 16 MiB of text), and every call reads back the same.
#[test]
fn calls_carrying_large_arguments_are_written_in_small_row_groups_and_read_back() {
    let dir = tempfile::tempdir().unwrap();
    let blob = "x".repeat(300_000);
    let lines: Vec<String> = (0..120)
        .map(|i| {
            format!(
                r#"{{"ts":"2026-08-01T00:{:02}:{:02}Z","server":"s","grant":"g","tool":"write_file","args":{{"path":"f{i}","content":"{blob}"}},"id":"{i}"}}"#,
                i / 60,
                i % 60
            )
        })
        .collect();
    let jsonl = write_file(dir.path(), "big.jsonl", &lines.join("\n"));
    let at = |name: &str| dir.path().join(name).display().to_string();
    let row_groups = |path: &str| -> usize {
        let file = std::fs::File::open(path).unwrap();
        let mut reader =
            <polars::prelude::ParquetReader<_> as polars::prelude::SerReader<_>>::new(file);
        reader.get_metadata().unwrap().row_groups.len()
    };
    let (parquet, csv) = (at("big.parquet"), at("big.csv"));
    for (to, out) in [("parquet", &parquet), ("csv", &csv)] {
        let (code, _, stderr) = run(&["convert", "--to", to, "--output", out, &jsonl]);
        assert_eq!(code, 0, "{stderr}");
    }
    // 36 MB of arguments: three row groups, not one.
    assert_eq!(row_groups(&parquet), 3);
    let (want, _) = read(&[&jsonl]);
    for input in [&parquet, &csv] {
        let (got, stats) = read(&[input]);
        assert_eq!(stats.skipped, 0, "{input}");
        assert_eq!(got.len(), want.len(), "{input}");
        for (g, w) in got.iter().zip(&want) {
            assert_eq!((g.ts, &g.tool, &g.id), (w.ts, &w.tool, &w.id), "{input}");
            assert_eq!(g.args.values(), w.args.values(), "{input}");
        }
    }
    // Per-call rows with their arguments, as Parquet: row groups of about 16 MiB too.
    let rows = at("rows.parquet");
    let (code, _, stderr) = run(&[
        "simulate",
        "--policy",
        &fixture("../policies/baseline.json"),
        "--format",
        "parquet",
        "--calls",
        "all",
        "--show-args",
        "--output",
        &rows,
        &jsonl,
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(row_groups(&rows), 3);
}
