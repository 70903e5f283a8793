//! Damaged and hostile input: every reproducer of a crash, a silent loss or an unbounded cost
//! (the files in `fixtures/damaged/`), with the exact outcome a user gets.

use std::io::Write;
use std::process::Stdio;

use polars::prelude::*;

use super::cli::{mcpsim, run};

/// `mcpsim ARGS… -` with `input` on standard input: (exit code, stdout, stderr).
fn run_stdin(args: &[&str], input: &[u8]) -> (i32, String, String) {
    let mut child = mcpsim(args)
        .arg("-")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("mcpsim runs");
    // A reader may stop before taking everything: a broken pipe is fine.
    let _ = child.stdin.take().expect("stdin").write_all(input);
    let out = child.wait_with_output().expect("mcpsim ends");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Every command that reads a trace fails on `file` with exit 2 and exactly `reason` after the
/// file's name, from the file and from standard input, without a panic's message.
fn assert_fails_everywhere(file: &str, reason: &str) {
    let policy = "fixtures/policies/candidate.json";
    let commands: [&[&str]; 4] = [
        &["stats"],
        &["convert", "--to", "jsonl"],
        &["simulate", "--policy", policy],
        &["diff", "--base", policy, "--candidate", policy],
    ];
    let bytes = std::fs::read(format!("{}/{file}", env!("CARGO_MANIFEST_DIR"))).expect("fixture");
    for args in commands {
        let mut with_file = args.to_vec();
        with_file.push(file);
        let (code, _, stderr) = run(&with_file);
        assert_eq!(code, 2, "{args:?} {file}: {stderr}");
        assert_eq!(stderr, format!("error: {file}: {reason}\n"), "{args:?}");
        let (code, _, stderr) = run_stdin(args, &bytes);
        assert_eq!(code, 2, "{args:?} - < {file}: {stderr}");
        assert_eq!(stderr, format!("error: <stdin>: {reason}\n"), "{args:?}");
    }
}

/// One byte of `fleet.parquet` changed in a page header: the page claims -1 values, for which
/// the decoder asked for 2.3 EB and the process aborted.
#[test]
fn a_negative_value_count_in_a_page_header_is_an_error_not_an_abort() {
    assert_fails_everywhere(
        "fixtures/damaged/negative_num_values.parquet",
        "damaged Parquet file: row group 1, column `ts`: -1 values in the page at offset 250 in a row group of 45 rows",
    );
}

/// Footers polars' Thrift reader would have trusted, found by the fuzzer, are refused at once,
/// before polars reads them: a list of booleans declaring billions of elements where the
/// format has row groups (polars counted through them for minutes), and a field declared as
/// text where the format has a list (polars read it as a list and asked for 136 GB).
#[test]
fn footers_polars_would_trust_are_refused_at_once() {
    assert_fails_everywhere(
        "fixtures/fuzz/trace_parquet/bool-list-footer.parquet",
        "damaged Parquet file: the footer at byte 67: a list at byte 1 declares elements of type 9, the format's are of type 12 (RowGroup)",
    );
    assert_fails_everywhere(
        "fixtures/fuzz/trace_parquet/field-declared-as-another-type.parquet",
        "damaged Parquet file: the footer at byte 225: field 4 of FileMetaData at byte 0 declares type 8, the format's is type 9",
    );
    assert_fails_everywhere(
        "fixtures/damaged/thrift_bool.parquet",
        "damaged Parquet file: the footer at byte 4331: field 12 of ColumnMetaData at byte 458 declares type 9, the format's is type 12",
    );
    // A row group declaring 33 billion rows in a file of 10, and no column of a trace to
    // hold them: every row was read as a call with no fields, for hours.
    assert_fails_everywhere(
        "fixtures/fuzz/trace_parquet/row-group-of-billions.parquet",
        "damaged Parquet file: the footer gives 10 rows, its row groups 33151778815",
    );
    // A list of the right type declaring more elements than bytes are left.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("long-list.parquet");
    // FileMetaData { 2: schema = list<struct> of 1,000,000,000 elements }, then nothing.
    let footer: &[u8] = &[0x29, 0xfc, 0x80, 0x94, 0xeb, 0xdc, 0x03, 0x00];
    let mut bytes = b"PAR1".to_vec();
    bytes.extend_from_slice(footer);
    bytes.extend_from_slice(&(footer.len() as u32).to_le_bytes());
    bytes.extend_from_slice(b"PAR1");
    std::fs::write(&file, bytes).unwrap();
    let name = file.to_str().unwrap();
    let (code, _, stderr) = run(&["stats", name]);
    assert_eq!(code, 2);
    assert_eq!(
        stderr,
        format!(
            "error: {name}: damaged Parquet file: the footer at byte 4: a list of 1000000000 elements in 1 bytes\n"
        )
    );
}

/// A valid Parquet file with none of a trace's columns is refused as a whole, not read as
/// rows of calls with no fields.
#[test]
fn a_parquet_file_with_no_trace_column_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("other.parquet");
    let mut df = df!("when" => [1i64, 2, 3], "what" => ["a", "b", "c"]).unwrap();
    ParquetWriter::new(std::fs::File::create(&path).expect("create"))
        .finish(&mut df)
        .expect("write");
    let name = path.to_str().unwrap();
    let (code, _, stderr) = run(&["stats", name]);
    assert_eq!(code, 2);
    assert_eq!(
        stderr,
        format!(
            "error: {name}: row group 1 has 3 rows but none of the columns of a trace (ts, server, grant, session, tool, args, arg_keys, id, recorded_decision, recorded_rule, recorded_message, recorded_policy_version, upstream, latency_ms)\n"
        )
    );
}

/// Damage the decoder meets with a panic (exit 101, or a backtrace on a reader thread): an
/// error naming the file, exit 2, nothing printed of the panic.
#[test]
fn decoder_panics_on_damaged_parquet_are_errors_for_the_file() {
    for (file, failure) in [
        (
            "bitmap_assert.parquet",
            "assertion failed: offset + length <= self.length",
        ),
        (
            "short_levels.parquet",
            "assertion failed: values.len() >= 4",
        ),
        (
            "chunk_range_overflow.parquet",
            "called `Option::unwrap()` on a `None` value",
        ),
    ] {
        assert_fails_everywhere(
            &format!("fixtures/damaged/{file}"),
            &format!("damaged Parquet file: the decoder failed ({failure})"),
        );
    }
}

/// Valid files whose columns have types mcpsim does not read (polars panicked on some).
#[test]
fn columns_of_unexpected_types_are_errors_naming_the_column() {
    let ts = "expected a timestamp, an integer epoch or RFC 3339 text";
    for (file, reason) in [
        (
            "args_struct.parquet",
            "column `args` has type struct, expected text".to_string(),
        ),
        (
            "ts_struct.parquet",
            format!("column `ts` has type struct, {ts}"),
        ),
        (
            "ts_decimal.parquet",
            format!("column `ts` has type decimal(12, 1), {ts}"),
        ),
        (
            "tool_int.parquet",
            "column `tool` has type int64, expected text".to_string(),
        ),
    ] {
        assert_fails_everywhere(&format!("fixtures/damaged/{file}"), &reason);
    }
}

/// An unsigned `ts` is read like a signed one.
#[test]
fn an_unsigned_ts_column_is_read() {
    let (code, stdout, stderr) = run(&[
        "convert",
        "--to",
        "jsonl",
        "fixtures/damaged/ts_uint64.parquet",
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        stdout,
        "{\"ts\":\"2026-08-01T10:00:00Z\",\"server\":\"files\",\"tool\":\"read_file\"}\n\
         {\"ts\":\"2026-08-01T10:00:01Z\",\"server\":\"files\",\"tool\":\"read_file\"}\n"
    );
}

/// Timestamp columns with and without a time zone (written by DuckDB) are read in their
/// unit; neither was read at all before.
#[test]
fn parquet_timestamp_columns_are_read_in_their_unit() {
    for (file, second) in [
        ("ts_timestamp.parquet", "2026-08-01T10:00:00.001Z"),
        ("ts_tz.parquet", "2026-08-01T10:00:00.000001Z"),
    ] {
        let (code, stdout, stderr) = run(&[
            "convert",
            "--to",
            "jsonl",
            &format!("fixtures/parquet/{file}"),
        ]);
        assert_eq!(code, 0, "{file}: {stderr}");
        let ts: Vec<String> = stdout
            .lines()
            .take(2)
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["ts"].to_string())
            .collect();
        assert_eq!(
            ts,
            [
                "\"2026-08-01T10:00:00Z\"".to_string(),
                format!("\"{second}\"")
            ],
            "{file}"
        );
    }
}

/// The Arrow schema a Parquet file stores for other readers (`ARROW:schema`), as written:
/// polars' own readers turn every text type into string views on the way in.
fn arrow_schema(path: &std::path::Path) -> polars_arrow::datatypes::ArrowSchema {
    let file = std::fs::File::open(path).expect("written");
    let mut r = ParquetReader::new(file);
    let md = r.get_metadata().expect("footer");
    let encoded = (md.key_value_metadata.iter().flatten())
        .find(|kv| kv.key == "ARROW:schema")
        .and_then(|kv| kv.value.clone())
        .expect("an Arrow schema");
    let bytes = base64(&encoded);
    // An IPC message: continuation marker and length, then the schema.
    let message = if bytes[..4] == [0xff; 4] {
        &bytes[8..]
    } else {
        &bytes[..]
    };
    polars_arrow::io::ipc::read::deserialize_schema(message)
        .expect("an IPC schema")
        .0
}

fn base64(text: &str) -> Vec<u8> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        _ => 63,
    };
    let digits: Vec<u8> = text.bytes().filter(|&c| c != b'=').map(value).collect();
    let mut out = Vec::new();
    for chunk in digits.chunks(4) {
        let n = chunk.iter().fold(0u32, |n, &d| (n << 6) | u32::from(d)) << (6 * (4 - chunk.len()));
        out.extend_from_slice(&n.to_be_bytes()[1..chunk.len()]);
    }
    out
}

/// Every Parquet file mcpsim writes has `ts` as a UTC timestamp and text as plain (large)
/// strings, not string views, which older readers (pyarrow 14: "Unrecognized type: 24")
/// reject.
#[test]
fn parquet_mcpsim_writes_has_widely_readable_types() {
    use polars_arrow::datatypes::{ArrowDataType, TimeUnit};
    let dir = tempfile::tempdir().expect("tempdir");
    let converted = dir.path().join("c.parquet");
    let report = dir.path().join("r.parquet");
    let diff = dir.path().join("d.parquet");
    let policy = "fixtures/policies/candidate.json";
    let fleet = "fixtures/traces/fleet.jsonl";
    for args in [
        vec![
            "convert",
            "--to",
            "parquet",
            fleet,
            "-o",
            converted.to_str().unwrap(),
        ],
        vec![
            "simulate",
            "--policy",
            policy,
            fleet,
            "--format",
            "parquet",
            "-o",
            report.to_str().unwrap(),
        ],
        vec![
            "diff",
            "--base",
            policy,
            "--candidate",
            policy,
            fleet,
            "-f",
            "parquet",
            "-o",
            diff.to_str().unwrap(),
        ],
    ] {
        let (code, _, stderr) = run(&args);
        assert_eq!(code, 0, "{args:?}: {stderr}");
    }
    for path in [&converted, &report, &diff] {
        let schema = arrow_schema(path);
        assert_eq!(
            schema.get("ts").map(|f| f.dtype.clone()),
            Some(ArrowDataType::Timestamp(
                TimeUnit::Nanosecond,
                Some("UTC".into())
            )),
            "{path:?}"
        );
        for (name, field) in schema.iter() {
            assert!(
                !matches!(
                    field.dtype,
                    ArrowDataType::Utf8View | ArrowDataType::BinaryView
                ),
                "{path:?}: {name} is {:?}",
                field.dtype
            );
        }
        assert_eq!(
            schema.get("tool").map(|f| f.dtype.clone()),
            Some(ArrowDataType::LargeUtf8)
        );
    }
}

/// Instants near the epoch were read back from mcpsim's own Parquet by magnitude: 1970-01-01
/// 00:00:01 came back as 2001-09-09, 1972-06-01 was skipped as out of range.
#[test]
fn timestamps_near_the_epoch_round_trip_through_parquet() {
    let dir = tempfile::tempdir().expect("tempdir");
    let jsonl = dir.path().join("t.jsonl");
    let parquet = dir.path().join("t.parquet");
    let lines = [
        r#"{"ts":"1970-01-01T00:00:01Z","server":"s","tool":"t"}"#,
        r#"{"ts":"1972-06-01T00:00:00Z","server":"s","tool":"t"}"#,
        r#"{"ts":"2026-08-01T10:00:00.123456789Z","server":"s","tool":"t"}"#,
    ];
    std::fs::write(&jsonl, lines.join("\n") + "\n").expect("write");
    let (code, _, stderr) = run(&[
        "convert",
        "--to",
        "parquet",
        jsonl.to_str().unwrap(),
        "-o",
        parquet.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{stderr}");
    let (code, stdout, stderr) = run(&["convert", "--to", "jsonl", parquet.to_str().unwrap()]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(stdout, lines.join("\n") + "\n");
}

/// Arguments nested deeper than the JSON parser's limit (128 levels, the record counting one):
/// every reader skips the record and counts it the same way, from a file and from standard
/// input, in `convert` too (before, detection failed, and some readers dropped the arguments
/// without a word, so that the call became `unknown` instead of `deny`).
#[test]
fn deeply_nested_arguments_are_skipped_and_counted_the_same_everywhere() {
    let file = "fixtures/damaged/nested_200.jsonl";
    let bytes = std::fs::read(format!("{}/{file}", env!("CARGO_MANIFEST_DIR"))).expect("fixture");
    let reason = "invalid JSON: recursion limit exceeded at line 1 column 705";
    for (args, name) in [
        (vec!["stats", file], file),
        (vec!["stats", "--from", "jsonl", file], file),
        (vec!["stats"], "<stdin>"),
    ] {
        let (code, stdout, stderr) = if name == file {
            run(&args)
        } else {
            run_stdin(&args, &bytes)
        };
        assert_eq!(code, 0, "{args:?}: {stderr}");
        assert!(
            stdout.contains("Calls: 0 calls read, 2 skipped, 0 out of order"),
            "{args:?}: {stdout}"
        );
        assert!(stdout.contains(&format!("{name}:1")), "{stdout}");
    }
    let (code, stdout, stderr) = run(&["convert", "--to", "jsonl", file]);
    assert_eq!((code, stdout.as_str()), (0, ""));
    assert_eq!(
        stderr,
        format!(
            "warning: skipped 2 bad records (invalid JSON: 2)\n  {file}:1: {reason}\n  {file}:2: {reason}\n"
        )
    );
}

/// A first line longer than the detection window (64 KiB) is detected from the keys before
/// the cut; an undetectable line is described by its keys, never its values.
#[test]
fn detection_reads_keys_past_a_long_first_line_and_never_quotes_values() {
    let dir = tempfile::tempdir().expect("tempdir");
    let long = dir.path().join("long.jsonl");
    let line = format!(
        r#"{{"ts":"2026-08-01T10:00:00Z","server":"s","tool":"t","args":{{"blob":"{}"}}}}"#,
        "x".repeat(100_000)
    );
    std::fs::write(&long, format!("{line}\n{line}\n")).expect("write");
    let (code, stdout, stderr) = run(&["stats", long.to_str().unwrap()]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains("Calls: 2 calls read, 0 skipped"),
        "{stdout}"
    );
    let secret = dir.path().join("secret.jsonl");
    std::fs::write(
        &secret,
        "{\"when\":1,\"args\":{\"password\":\"hunter2\"}}\n",
    )
    .expect("write");
    let (code, _, stderr) = run(&["stats", secret.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(!stderr.contains("hunter2"), "{stderr}");
    assert!(
        stderr.contains(
            "(the first line is a JSON object with keys when, args, which no format has)"
        ),
        "{stderr}"
    );
}

/// An empty grant, server, session or id is a value, not an absent field (an empty grant
/// has a counter of its own): it stays empty through CSV (written `""`) and Parquet.
#[test]
fn empty_names_stay_empty_through_csv_and_parquet() {
    let file = "fixtures/damaged/empty_names.jsonl";
    let original =
        std::fs::read_to_string(format!("{}/{file}", env!("CARGO_MANIFEST_DIR"))).expect("fixture");
    assert!(original.contains(r#""grant":"","session":"""#));
    let dir = tempfile::tempdir().expect("tempdir");
    for to in ["csv", "parquet"] {
        let table = dir.path().join(format!("t.{to}"));
        let (code, _, stderr) = run(&["convert", "--to", to, file, "-o", table.to_str().unwrap()]);
        assert_eq!(code, 0, "{stderr}");
        let (code, stdout, stderr) = run(&["convert", "--to", "jsonl", table.to_str().unwrap()]);
        assert_eq!(code, 0, "{stderr}");
        assert_eq!(stdout, original, "through {to}");
    }
}

/// A small compressed file whose second line is 70 MB of NUL bytes without a newline (a few
/// MB of gzip can inflate to gigabytes): every reader stops at the 64 MiB line limit with an
/// error naming the file and the line, instead of allocating on and on. (The JSONL reader,
/// which reads chunks ahead, named no line.)
#[test]
fn a_line_past_the_size_limit_ends_the_read_with_an_error() {
    let limit = "the line is longer than 64 MiB, the most one record may take";
    for (file, line) in [
        ("nul_line.jsonl.zst", 2),
        ("nul_line.csv.zst", 3),
        ("nul_line.log.zst", 2),
    ] {
        let path = format!("fixtures/damaged/{file}");
        let (code, stdout, stderr) = run(&["stats", &path]);
        assert_eq!((code, stdout.as_str()), (2, ""), "{file}");
        assert_eq!(stderr, format!("error: {path}:{line}: {limit}\n"));
    }
}

/// Policy loading is linear: 100,000 tools (over 20 s before, duplicate checks scanned every
/// earlier tool) and a minified policy of 10,000 tools with a rule each (columns were counted
/// from the start of the one line for every position) load; the duplicate is still found.
#[test]
fn policies_with_very_many_tools_load() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("many.json");
    let mut tools: Vec<String> = (0..100_000)
        .map(|i| format!(r#""tool_{i}":{{}}"#))
        .collect();
    tools.push(r#""tool_7":{}"#.to_string());
    let doc = format!(
        r#"{{"version":"1","default":"allow","tools":{{{}}}}}"#,
        tools.join(",")
    );
    std::fs::write(&path, &doc).expect("write");
    let (code, stdout, stderr) = run(&["check", path.to_str().unwrap()]);
    assert_eq!(code, 2, "{stderr}");
    let column = doc.rfind(r#""tool_7""#).unwrap() + 1;
    let shown = format!("{stdout}{stderr}");
    assert!(
        shown.contains("error: tool `tool_7` is configured twice"),
        "{shown}"
    );
    assert!(shown.contains(&format!("many.json:1:{column}")), "{shown}");
    // The one line of the document is shown around the column, not whole.
    assert!(shown.len() < 2_000, "{} bytes", shown.len());
    let rules: Vec<String> = (0..10_000)
        .map(|i| format!(r#""tool_{i}":{{"deny_if":[{{"path":"args.x","op":"eq","value":{i}}}]}}"#))
        .collect();
    let doc = format!(
        r#"{{"version":"1","default":"allow","tools":{{{}}}}}"#,
        rules.join(",")
    );
    std::fs::write(&path, doc).expect("write");
    let (code, _, stderr) = run(&["check", path.to_str().unwrap()]);
    assert_eq!(code, 0, "{stderr}");
}

/// Many one-row row groups (what naive streaming writers produce) read in linear time: each
/// slice's footer was cloned with every other row group (20,000 groups took 37-47 s).
#[test]
fn parquet_with_thousands_of_row_groups_is_read() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("groups.parquet");
    let n = 5_000;
    let mut df = DataFrame::new(
        n,
        vec![
            Column::new(
                "ts".into(),
                (0..n as i64)
                    .map(|i| 1_785_578_400_000 + i)
                    .collect::<Vec<_>>(),
            ),
            Column::new("server".into(), vec!["s"; n]),
            Column::new("tool".into(), vec!["t"; n]),
        ],
    )
    .expect("frame");
    ParquetWriter::new(std::fs::File::create(&path).expect("create"))
        .with_row_group_size(Some(1))
        .finish(&mut df)
        .expect("write");
    let (code, stdout, stderr) = run(&["stats", path.to_str().unwrap()]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains("Calls: 5000 calls read, 0 skipped, 0 out of order"),
        "{stdout}"
    );
}

/// Numbers inside arguments keep their exact text through every conversion (they went through
/// a float: 123456789012345678901234567890 became 1.2345678901234568e+29 even JSONL to JSONL).
#[test]
fn argument_numbers_keep_their_text_through_conversion() {
    let file = "fixtures/damaged/big_numbers.jsonl";
    let original =
        std::fs::read_to_string(format!("{}/{file}", env!("CARGO_MANIFEST_DIR"))).expect("fixture");
    assert!(original.contains("123456789012345678901234567890,\"f\":1.10"));
    let (code, stdout, stderr) = run(&["convert", "--to", "jsonl", file]);
    assert_eq!((code, stdout.as_str()), (0, original.as_str()), "{stderr}");
    let dir = tempfile::tempdir().expect("tempdir");
    for to in ["csv", "parquet"] {
        let table = dir.path().join(format!("t.{to}"));
        let (code, _, stderr) = run(&["convert", "--to", to, file, "-o", table.to_str().unwrap()]);
        assert_eq!(code, 0, "{stderr}");
        let (code, stdout, stderr) = run(&["convert", "--to", "jsonl", table.to_str().unwrap()]);
        assert_eq!(
            (code, stdout.as_str()),
            (0, original.as_str()),
            "through {to}: {stderr}"
        );
    }
}

/// A numeric request id of mcpsim JSONL keeps its spelling, whichever code reads its line (the
/// scanner, or the general code for an exponent, a number beyond 64 bits or an escape in the
/// line): `1e2` became `100.0`, and `explain --call 1e2` found no call.
#[test]
fn numeric_ids_keep_their_spelling() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("ids.jsonl");
    let ids = ["1e2", "-7.50", "12345678901234567890123", "-0", "7", "8"];
    let text: String = ids
        .iter()
        .enumerate()
        .map(|(i, id)| {
            // The last line has an escape: the general code reads it.
            let extra = if i == ids.len() - 1 {
                r#","x":"\u0041""#
            } else {
                ""
            };
            format!("{{\"ts\":\"2026-08-01T10:00:0{i}Z\",\"tool\":\"t\",\"id\":{id}{extra}}}\n")
        })
        .collect();
    std::fs::write(&path, text).expect("write");
    let file = path.to_str().unwrap();
    let (code, stdout, stderr) = run(&["convert", "--to", "jsonl", file]);
    assert_eq!(code, 0, "{stderr}");
    let got: Vec<String> = stdout
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["id"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(got, ids);
    let (code, stdout, stderr) = run(&[
        "explain",
        "--policy",
        "fixtures/policies/baseline.json",
        file,
        "--call",
        "1e2",
        "-f",
        "json",
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains(r#""id": "1e2""#), "{stdout}");
}

/// A record whose tool is the empty string is a record without a tool in every format of
/// mcpsim's own (JSONL read it as a call, while CSV and Parquet skip it as missing the tool),
/// so that `convert` keeps what it reads.
#[test]
fn an_empty_tool_name_is_missing_in_every_format() {
    let dir = tempfile::tempdir().expect("tempdir");
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).expect("write");
        path.to_str().unwrap().to_owned()
    };
    let jsonl = write(
        "t.jsonl",
        "{\"ts\":\"2026-08-01T10:00:00Z\",\"server\":\"s\",\"tool\":\"t\"}\n\
         {\"ts\":\"2026-08-01T10:00:01Z\",\"server\":\"\",\"tool\":\"\"}\n\
         {\"ts\":\"2026-08-01T10:00:02Z\",\"server\":\"\\u0041\",\"tool\":\"\"}\n",
    );
    let csv = write(
        "t.csv",
        "ts,server,tool\n2026-08-01T10:00:00Z,s,t\n2026-08-01T10:00:01Z,\"\",\"\"\n\
         2026-08-01T10:00:02Z,s,\n",
    );
    for input in [&jsonl, &csv] {
        let (code, stdout, stderr) = run(&["stats", input, "-f", "json"]);
        assert_eq!(code, 0, "{input}: {stderr}");
        let v: serde_json::Value = serde_json::from_str(&stdout).expect("json");
        assert_eq!(v["input"]["calls_read"], 1, "{input}: {stdout}");
        assert_eq!(v["input"]["skipped"], 2, "{input}: {stdout}");
        assert_eq!(
            v["input"]["skipped_by_reason"],
            serde_json::json!([{"name": "missing field", "count": 2}]),
            "{input}"
        );
    }
    let (code, _, stderr) = run(&["stats", &jsonl, "--strict"]);
    assert_eq!(code, 2);
    assert!(
        stderr.contains("t.jsonl:2: field `tool`: missing"),
        "{stderr}"
    );
}

/// `-o` naming a file the command reads (a trace, a policy, a part summary) is refused before
/// anything is written, by every command: `convert` truncated the file being read (a bus error
/// on a mapped input), `simulate` and `diff` emptied the trace and then blamed log rotation,
/// `stats`, `suggest` and `explain` replaced the trace with their report.
#[test]
fn no_command_overwrites_what_it_reads() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path().display().to_string();
    let trace = std::fs::read_to_string("fixtures/traces/fleet.jsonl").expect("fixture");
    let policy = std::fs::read_to_string("fixtures/policies/baseline.json").expect("fixture");
    std::fs::write(dir.path().join("t.jsonl"), &trace).expect("write");
    std::fs::write(dir.path().join("p.json"), &policy).expect("write");
    let (t, p) = (format!("{d}/t.jsonl"), format!("{d}/p.json"));
    // Another spelling of each: the same file.
    let (t2, p2) = (format!("{d}/./t.jsonl"), format!("{d}/./p.json"));
    let part = format!("{d}/part.json");
    let (code, _, stderr) = run(&["simulate", "--policy", &p, &t, "--part-summary", &part]);
    assert_eq!(code, 0, "{stderr}");
    let part_text = std::fs::read_to_string(&part).expect("part");
    let bound = format!("fortigate-edge={p}");
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["simulate", "--policy", &p, &t, "-o", &t2], &t2),
        (vec!["simulate", "--policy", &p, &t, "-o", &p2], &p2),
        (vec!["simulate", "--policy", &bound, &t, "-o", &p2], &p2),
        (
            vec!["simulate", "--policy", &p, &t, "--part-summary", &t2],
            &t2,
        ),
        (
            vec!["simulate", "--policy", &p, &t, "-f", "jsonl", "-o", &t2],
            &t2,
        ),
        (
            vec![
                "diff",
                "--base",
                &p,
                "--candidate",
                "fixtures/policies/candidate.json",
                &t,
                "-o",
                &p2,
            ],
            &p2,
        ),
        (vec!["stats", &t, "-o", &t2], &t2),
        (vec!["suggest", &t, "-o", &t2], &t2),
        (
            vec!["explain", "--policy", &p, &t, "--call", "#1", "-o", &t2],
            &t2,
        ),
        (vec!["convert", "--to", "parquet", &t, "-o", &t2], &t2),
        (vec!["merge", &part, "-o", &part], &part),
    ];
    for (args, target) in cases {
        let (code, stdout, stderr) = run(&args);
        assert_eq!((code, stdout.as_str()), (2, ""), "{args:?}: {stderr}");
        assert_eq!(
            stderr,
            format!(
                "error: {target} is also an input: writing it would destroy what is being read\n"
            ),
            "{args:?}"
        );
        assert_eq!(
            std::fs::read_to_string(&t).expect("kept"),
            trace,
            "{args:?}"
        );
        assert_eq!(
            std::fs::read_to_string(&p).expect("kept"),
            policy,
            "{args:?}"
        );
        assert_eq!(
            std::fs::read_to_string(&part).expect("kept"),
            part_text,
            "{args:?}"
        );
    }
    // A file that is not read is written.
    let out = format!("{d}/report.json");
    let (code, _, stderr) = run(&["stats", &t, "-f", "json", "-o", &out]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        std::fs::read_to_string(&out)
            .expect("written")
            .starts_with('{')
    );
}

/// An increment of i64::MAX against a cap of i64::MAX: the first call fits, every later one
/// is throttled (the sum must not wrap round and let calls through).
#[test]
fn an_increment_as_large_as_the_cap_throttles_the_next_calls() {
    let (code, stdout, stderr) = run(&[
        "simulate",
        "--policy",
        "fixtures/damaged/increment_max.json",
        "fixtures/damaged/increment_max.jsonl",
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.starts_with(
            "mcpsim simulate: 3 calls evaluated — 1 allow, 0 deny, 2 throttle, 0 approval, 0 unknown"
        ),
        "{stdout}"
    );
}

/// `check` warns on an `increment_from` that no `require` holds at or above zero: a negative
/// amount gives quota back.
#[test]
fn check_warns_on_increments_that_can_be_negative() {
    let (code, stdout, stderr) = run(&["check", "fixtures/damaged/increment_max.json"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.starts_with("warning: a negative `args.n` gives quota back (the counter goes down by it): add `require: [{\"path\": \"args.n\", \"op\": \"gte\", \"value\": 0}]` unless that is meant\n --> fixtures/damaged/increment_max.json:1:131\n"),
        "{stderr}"
    );
    assert_eq!(
        stdout,
        "ok: fixtures/damaged/increment_max.json (1 tool, 1 limit), 1 warning\n"
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let guarded = dir.path().join("guarded.json");
    std::fs::write(
        &guarded,
        r#"{"version":"1","default":"allow","tools":{"t":{"require":[{"path":"args.n","op":"gte","value":0}],"limits":[{"counter":"c","window":"day","max":10,"increment_from":"args.n"}]}}}"#,
    )
    .expect("write");
    let (code, _, stderr) = run(&["check", guarded.to_str().unwrap()]);
    assert_eq!((code, stderr.as_str()), (0, ""));
}

/// Instants past 2262-04-11 (beyond nanoseconds in 64 bits) are rejected as out of range in
/// every format, never clamped.
#[test]
fn timestamps_out_of_range_are_rejected_everywhere() {
    let file = "fixtures/damaged/far_timestamps.jsonl";
    let (code, stdout, stderr) = run(&["convert", "--to", "jsonl", file]);
    assert_eq!((code, stdout.as_str()), (0, ""));
    assert_eq!(
        stderr,
        format!(
            "warning: skipped 3 bad records (bad timestamp: 3)\n  {file}:1: field `ts`: timestamp \"2300-01-01T00:00:00Z\" is out of range\n  {file}:2: field `ts`: timestamp 99999999999 is out of range\n  {file}:3: field `ts`: timestamp \"5000-01-01T00:00:00Z\" is out of range\n"
        )
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let csv = dir.path().join("far.csv");
    std::fs::write(
        &csv,
        "ts,server,tool\n2300-01-01T00:00:00Z,s,t\n99999999999,s,t\n",
    )
    .expect("write");
    let (code, stdout, stderr) = run(&["convert", "--to", "jsonl", csv.to_str().unwrap()]);
    assert_eq!((code, stdout.as_str()), (0, ""));
    assert!(
        stderr.starts_with("warning: skipped 2 bad records (bad timestamp: 2)\n"),
        "{stderr}"
    );
}

/// `\w{200}x` against a 1 MB argument took 3-16 s per call: the lazy DFA's cache was too small
/// for the pattern's states, it gave up and a slow matcher took over. With a larger cache the
/// call is quick (this test only has it complete); `check` warns on the large repetition.
#[test]
fn a_large_bounded_repetition_is_matched_by_the_dfa_and_warned_about() {
    let policy = "fixtures/damaged/regex_repeat.json";
    let (code, _, stderr) = run(&["check", policy]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.starts_with("warning: regex `\\w{200}x` repeats 200 times: matching a long argument costs time in proportion (keep counts to 100 or below)\n"),
        "{stderr}"
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let trace = dir.path().join("long.jsonl");
    let arg = "a".repeat(1_000_000);
    std::fs::write(
        &trace,
        format!("{{\"ts\":\"2026-08-01T10:00:00Z\",\"server\":\"s\",\"tool\":\"t\",\"args\":{{\"s\":\"{arg}\"}}}}\n{{\"ts\":\"2026-08-01T10:00:01Z\",\"server\":\"s\",\"tool\":\"t\",\"args\":{{\"s\":\"{arg}x\"}}}}\n"),
    )
    .expect("write");
    let (code, stdout, stderr) = run(&["simulate", "--policy", policy, trace.to_str().unwrap()]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.starts_with("mcpsim simulate: 2 calls evaluated — 1 allow, 1 deny,"),
        "{stdout}"
    );
}

/// Every input the fuzzers found (`fixtures/fuzz/<target>/`) and every damaged Parquet file
/// in `fixtures/damaged/`, through the reader of its target, lenient and strict: the read ends,
/// with calls or an error, and never panics.
#[test]
fn fuzz_findings_and_damaged_files_read_to_an_end() {
    use mcpsim::trace::{Format, ReadOptions, Trace};
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    let mut inputs: Vec<(String, std::path::PathBuf)> = Vec::new();
    if let Ok(dirs) = std::fs::read_dir(root.join("fuzz")) {
        for dir in dirs.flatten().filter(|d| d.path().is_dir()) {
            let target = dir.file_name().to_string_lossy().into_owned();
            for f in std::fs::read_dir(dir.path()).expect("folder").flatten() {
                inputs.push((target.clone(), f.path()));
            }
        }
    }
    for f in std::fs::read_dir(root.join("damaged"))
        .expect("folder")
        .flatten()
    {
        if f.path().extension().is_some_and(|e| e == "parquet") {
            inputs.push(("trace_parquet".into(), f.path()));
        }
    }
    assert!(inputs.len() >= 10, "{inputs:?}");
    for (target, path) in inputs {
        let data = std::fs::read(&path).expect("input");
        if let Some(dialect) = target.strip_prefix("policy_") {
            let opts = mcpsim::policy::LoadOptions {
                dialect: Some(dialect.parse().expect("a dialect")),
                ..Default::default()
            };
            let _ = mcpsim::policy::check_policy_str(&String::from_utf8_lossy(&data), &opts);
            continue;
        }
        let format = Format::parse(target.strip_prefix("trace_").expect("a trace target"))
            .expect("a format");
        for strict in [false, true] {
            let opts = ReadOptions {
                from: Some(format),
                strict,
                ..ReadOptions::default()
            };
            let Ok(mut trace) = Trace::open_with_stdin(&["-".into()], &opts, &mut &data[..]) else {
                continue;
            };
            while let Ok(Some(call)) = trace.next_call() {
                let _ = call.record().args.values();
            }
        }
    }
}

/// A plain file emptied while it is read, as log rotation's `copytruncate` empties a live log:
/// the mapped reader's next page is gone. The run ends with exit 2 and the file's name, never
/// killed by `SIGBUS` without a word. (A run may also finish before the truncation, or start
/// after it; those attempts are tried again.)
#[test]
fn a_file_emptied_while_read_ends_with_an_error_naming_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("live.jsonl");
    let line = r#"{"ts":"2026-08-01T09:00:00.000Z","server":"files","grant":"bot","tool":"read_file","args":{"path":"/srv/data/file.txt","pad":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}}"#;
    let body = format!("{line}\n").repeat(300_000);
    let mut outcomes = Vec::new();
    for attempt in 0..6u64 {
        std::fs::write(&path, &body).expect("write");
        let child = mcpsim(&["stats", path.to_str().expect("utf-8 path")])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("mcpsim runs");
        std::thread::sleep(std::time::Duration::from_millis(20 + 30 * attempt));
        std::fs::File::create(&path).expect("truncate");
        let out = child.wait_with_output().expect("mcpsim ends");
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        let code = out.status.code();
        assert!(
            code.is_some(),
            "killed by a signal: {:?} {stderr}",
            out.status
        );
        if code == Some(2) && stderr.contains("live.jsonl: the file got shorter while it was read")
        {
            return;
        }
        outcomes.push((code, stderr));
    }
    panic!("the truncation never met a read: {outcomes:?}");
}
