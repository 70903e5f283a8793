//! Equivalence of [`ParquetBatchSource`] with the row reader, [`ParquetSource`]: the same
//! records in the same order, the same bad rows with the same errors, columns that match the
//! records, on fixtures, converted traces and frames built to be awkward.

use proptest::prelude::*;

use super::*;
use crate::trace::parquet::ParquetSource;
use crate::trace::source::{Ctx, LineError, Source};
use crate::trace::{ReadOptions, ReadStats, Trace, write_parquet};

/// What a reader made of a file: records in order and bad rows, or the error that ended it.
#[derive(Debug)]
struct Outcome {
    records: Vec<CallRecord>,
    stats: ReadStats,
    error: Option<String>,
}

fn bytes_of(data: &[u8], in_memory: bool, dir: &tempfile::TempDir) -> ParquetBytes {
    if in_memory {
        ParquetBytes::Memory(data.to_vec())
    } else {
        let path = dir.path().join(format!("t{}.parquet", data.len()));
        std::fs::write(&path, data).expect("write");
        ParquetBytes::File(path)
    }
}

/// The row reader, as `Trace` drives it.
fn read_rows(data: &[u8]) -> Outcome {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut src = ParquetSource::new(bytes_of(data, true, &dir), "t.parquet", 3);
    let mut stats = ReadStats::default();
    let mut records = Vec::new();
    let mut cx = Ctx {
        stats: &mut stats,
        strict: false,
        file: "t.parquet",
    };
    let error = loop {
        match src.next(&mut cx) {
            Ok(Some(rec)) => records.push(rec),
            Ok(None) => break None,
            Err(e) => break Some(e.to_string()),
        }
    };
    Outcome {
        records,
        stats,
        error,
    }
}

/// The batch reader: every row materialised, its columns checked against its record; bad rows
/// in full, with their errors.
fn read_batches(
    data: &[u8],
    in_memory: bool,
    needs_args: bool,
    slice_rows: usize,
) -> (Outcome, Vec<(u64, LineError)>, usize) {
    let dir = tempfile::tempdir().expect("temp dir");
    let symbols = Symbols::new();
    let mut src = ParquetBatchSource::new(
        bytes_of(data, in_memory, &dir),
        "t.parquet",
        3,
        Arc::clone(&symbols),
        needs_args,
    )
    .with_slice_rows(slice_rows);
    let mut stats = ReadStats::default();
    let mut records = Vec::new();
    let mut skipped = Vec::new();
    let error = loop {
        let batch = match src.next_batch() {
            Ok(Some(b)) => b,
            Ok(None) => break None,
            Err(e) => break Some(e.to_string()),
        };
        assert_eq!(batch.file, 3);
        assert!(batch.ignored.is_empty());
        let n = batch.len();
        for col in [
            batch.line.len(),
            batch.server.len(),
            batch.grant.len(),
            batch.session.len(),
            batch.tool.len(),
            batch.upstream.len(),
            batch.recorded.len(),
        ] {
            assert_eq!(col, n);
        }
        let mut cx = Ctx {
            stats: &mut stats,
            strict: false,
            file: "t.parquet",
        };
        for (line, e) in &batch.skipped {
            cx.skip(*line, e.clone()).expect("not strict");
            skipped.push((*line, e.clone()));
        }
        for i in 0..n {
            let rec = batch.rows.record(i);
            assert_eq!(batch.ts[i], rec.ts, "ts of row {i}");
            assert_eq!(batch.line[i], rec.origin.line);
            assert_eq!(rec.origin.file, 3);
            assert_eq!(symbols.name(batch.server[i]), rec.server);
            assert_eq!(symbols.opt_name(batch.grant[i]), rec.grant);
            assert_eq!(batch.session.get(i), rec.session.as_deref());
            assert_eq!(symbols.name(batch.tool[i]), rec.tool);
            assert_eq!(batch.upstream[i], rec.upstream);
            assert_eq!(
                batch.recorded[i],
                rec.recorded.as_ref().and_then(|r| r.decision)
            );
            let args = batch.rows.args(i);
            assert_eq!(args, rec.args, "args of line {}", batch.line[i]);
            // Held the same way, not only equal.
            assert_eq!(
                std::mem::discriminant(&args),
                std::mem::discriminant(&rec.args)
            );
            records.push(rec);
        }
        // Lines ascend through the batch, bad ones included.
        let mut lines: Vec<u64> = batch.line.clone();
        lines.extend(batch.skipped.iter().map(|(l, _)| *l));
        lines.sort_unstable();
        assert!(lines.windows(2).all(|w| w[0] < w[1]));
    };
    (
        Outcome {
            records,
            stats,
            error,
        },
        skipped,
        src.judged_rows(),
    )
}

/// Every row of the file judged by the table reader at once: records and bad rows in full.
/// Records and bad rows (line, why).
type Table = (Vec<CallRecord>, Vec<(u64, LineError)>);

fn read_table(data: &[u8]) -> Result<Table, String> {
    let mut r = ParquetReader::new(Cursor::new(data.to_vec()));
    let footer = Footer::check(r.get_metadata().map_err(|e| e.to_string())?, data, &|_| {})
        .map_err(|e| e.to_string())?;
    r.set_metadata(Arc::clone(&footer.metadata));
    let df = r
        .with_columns(Some(footer.columns.to_vec()))
        .finish()
        .map_err(|e| e.to_string())?;
    let batch = Batch::new(&df)
        .map_err(|e| e.to_string())?
        .with_ts_scale(footer.ts_scale);
    let mut names = Interner::default();
    let (mut records, mut bad) = (Vec::new(), Vec::new());
    for i in 0..batch.height() {
        let line = i as u64 + 1;
        match batch.record(i, Origin { file: 3, line }, &mut names) {
            Ok(r) => records.push(r),
            Err(e) => bad.push((line, e)),
        }
    }
    Ok((records, bad))
}

/// Both readers agree on `data`, whatever the bytes' form, slicing or need for arguments.
fn assert_same(data: &[u8]) -> Outcome {
    assert_same_judging(data, None)
}

/// [`assert_same`], and the table reader judged `judged` rows (when given): the column checks
/// vouched for all others.
fn assert_same_judging(data: &[u8], judged: Option<usize>) -> Outcome {
    let rows = read_rows(data);
    for (in_memory, needs_args, slice_rows) in [
        // A mapped file has each row group's pages dropped once it is converted: records
        // asked for afterwards (and the next slices of a row group) map them again.
        (false, false, MAX_SLICE_ROWS),
        (false, true, 7),
        (true, true, MAX_SLICE_ROWS),
        (true, false, 7),
    ] {
        let (batches, skipped, judged_rows) = read_batches(data, in_memory, needs_args, slice_rows);
        if let Some(judged) = judged {
            assert_eq!(judged_rows, judged, "rows judged by the table reader");
        }
        assert_eq!(batches.error, rows.error);
        for (a, b) in batches.records.iter().zip(&rows.records) {
            assert_eq!(a, b);
        }
        if rows.error.is_some() && slice_rows < MAX_SLICE_ROWS {
            // Read in smaller slices than the row reader's, the rows before a damaged part
            // of a row group are read before the error.
            assert!(batches.records.len() >= rows.records.len());
            continue;
        }
        assert_eq!(batches.records.len(), rows.records.len());
        assert_eq!(batches.stats, rows.stats);
        if rows.error.is_none() {
            let (records, bad) = read_table(data).expect("the table reads");
            assert_eq!(batches.records, records);
            assert_eq!(skipped, bad);
        }
    }
    rows
}

fn parquet(df: &mut DataFrame, row_group: Option<usize>) -> Vec<u8> {
    let mut out = Vec::new();
    ParquetWriter::new(&mut out)
        .with_row_group_size(row_group)
        .finish(df)
        .expect("write parquet");
    out
}

fn fixture(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/traces")
        .join(name)
}

#[test]
fn the_fleet_fixture_reads_the_same() {
    let data = std::fs::read(fixture("fleet.parquet")).expect("fixture");
    let out = assert_same_judging(&data, Some(0));
    assert_eq!(out.records.len(), 45);
    assert!(out.error.is_none());
}

/// Files from another writer: timestamp types, older and newer page kinds, Snappy.
#[test]
fn files_written_by_duckdb_read_the_same() {
    // Timestamp columns (with and without a time zone) are read in their unit, exactly.
    for (name, calls, second) in [
        ("ts_timestamp.parquet", 50, 1_785_578_400_001_000_000),
        ("ts_tz.parquet", 10, 1_785_578_400_000_001_000),
    ] {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fixtures/parquet")
            .join(name);
        let out = assert_same(&std::fs::read(path).expect("fixture"));
        assert_eq!(out.error, None, "{name}");
        assert_eq!(out.records.len(), calls, "{name}");
        assert_eq!(out.records[0].ts, 1_785_578_400_000_000_000, "{name}");
        assert_eq!(out.records[1].ts, second, "{name}");
    }
    for (name, calls, bad) in [
        ("duck_plain.parquet", 2_571, 429),
        ("duck_v2.parquet", 3_000, 0),
    ] {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fixtures/parquet")
            .join(name);
        let data = std::fs::read(path).expect("fixture");
        let out = assert_same_judging(&data, Some(bad as usize));
        assert_eq!(out.error, None, "{name}");
        assert_eq!(out.records.len(), calls, "{name}");
        assert_eq!(out.stats.skipped, bad, "{name}");
    }
}

#[test]
fn every_fixture_converted_to_parquet_reads_the_same() {
    let dir = std::fs::read_dir(fixture("")).expect("fixtures");
    let mut files: Vec<_> = dir.map(|e| e.expect("entry").path()).collect();
    files.sort();
    let mut converted = 0;
    for path in files {
        let name = path.to_string_lossy().into_owned();
        let Ok(mut trace) = Trace::open(std::slice::from_ref(&name), &ReadOptions::default())
        else {
            continue;
        };
        let mut records = Vec::new();
        while let Ok(Some(rec)) = trace.next_record() {
            records.push(rec);
        }
        if records.is_empty() {
            continue;
        }
        let mut data = Vec::new();
        write_parquet(&records, &mut data).expect("write parquet");
        let out = assert_same_judging(&data, Some(0));
        assert_eq!(out.records.len(), records.len(), "{name}");
        assert_eq!(out.stats.skipped, 0, "{name}");
        converted += 1;
    }
    assert!(converted >= 8, "only {converted} fixtures converted");
}

const NS: i64 = 1_785_578_400_000_000_000;

fn text(name: &str, cells: &[Option<&str>]) -> Column {
    Column::new(name.into(), cells.to_vec())
}

/// Argument texts on both sides of every shortcut: whitespace, escapes, surrogates, numbers
/// with exponents or long digit runs, nesting near serde_json's limit, text that is not an
/// object or not JSON.
fn awkward_args() -> Vec<Option<String>> {
    let nest = |n: usize| format!("{{\"a\":{}1{}}}", "[".repeat(n), "]".repeat(n));
    let mut v: Vec<Option<String>> = [
        r#"{"vdom":"root"}"#,
        "{}",
        r#" { "a" : [1, -2.5, 0, true, false, null, {"b": "c"}] } "#,
        "{\"a\":\"tab\\there \\u00e9 \\\" \\\\ \\/ \\b\\f\\n\\r\"}",
        r#"{"emoji":"\ud83d\ude00"}"#,
        r#"{"lone":"\ud800"}"#,
        r#"{"bad":"\x"}"#,
        "{\"ctl\":\"a\u{1}b\"}",
        "{\"nl\":\"a\nb\"}",
        r#"{"n":1e3}"#,
        r#"{"n":1E-2}"#,
        r#"{"n":1e400}"#,
        r#"{"n":-0.0}"#,
        r#"{"n":01}"#,
        r#"{"n":1.}"#,
        r#"{"n":.5}"#,
        r#"{"n":-}"#,
        r#"{"a":1,}"#,
        r#"{"a":1 "b":2}"#,
        r#"{"a":[1,]}"#,
        r#"{"a":1}}"#,
        r#"{"a":1} x"#,
        r#"{"a":tru}"#,
        r#"{"a" 1}"#,
        r#"{1:2}"#,
        r#"{"a":"é ü ∑"}"#,
        r#"{"dup":1,"dup":2}"#,
        "[1]",
        "\"text\"",
        "{nope",
        "{\"a\":\"unterminated}",
        "   ",
        "",
    ]
    .iter()
    .map(|s| Some(s.to_string()))
    .collect();
    v.push(Some(format!("{{\"n\":{}}}", "9".repeat(250))));
    v.push(Some(format!("{{\"n\":{}}}", "9".repeat(400))));
    v.push(Some(format!("{{\"n\":0.{}}}", "1".repeat(300))));
    for n in [50, 99, 100, 126, 127, 128, 200] {
        v.push(Some(nest(n)));
    }
    v.push(None);
    v
}

#[test]
fn awkward_arguments_read_the_same() {
    let args = awkward_args();
    let n = args.len();
    let mut df = DataFrame::new(
        n,
        vec![
            Column::new(
                "ts".into(),
                (0..n as i64).map(|i| NS + i).collect::<Vec<_>>(),
            ),
            Column::new("tool".into(), vec!["t"; n]),
            Column::new("args".into(), args),
        ],
    )
    .expect("frame");
    let out = assert_same(&parquet(&mut df, None));
    assert!(out.stats.skipped > 10, "{:?}", out.stats);
    assert!(out.records.len() > 10);
}

#[test]
fn keys_without_values_read_the_same() {
    let args = [
        None,
        Some(""),
        Some(r#"{"a":1}"#),
        None,
        None,
        None,
        Some("["),
    ];
    let keys = [
        Some(r#"["a","b"]"#),
        Some("[]"),
        Some("[1]"),
        Some("nope"),
        Some(r#"["a", 2]"#),
        None,
        Some(r#"["x"]"#),
    ];
    let n = args.len();
    let mut df = DataFrame::new(
        n,
        vec![
            Column::new("ts".into(), vec![NS; n]),
            Column::new("tool".into(), vec!["t"; n]),
            text("args", &args),
            text("arg_keys", &keys),
        ],
    )
    .expect("frame");
    let out = assert_same(&parquet(&mut df, None));
    assert_eq!(out.stats.skipped, 3, "{:?}", out.stats);
}

#[test]
fn names_decisions_and_outcomes_read_the_same() {
    let n = 12;
    let cells = |v: &[Option<&'static str>]| -> Vec<Option<&'static str>> {
        (0..n).map(|i| v[i % v.len()]).collect()
    };
    let mut df = DataFrame::new(
        n,
        vec![
            Column::new("ts".into(), vec![NS; n]),
            text(
                "server",
                &cells(&[Some("github"), None, Some(""), Some("stripe")]),
            ),
            text("grant", &cells(&[Some("ci"), Some(""), None])),
            text("session", &cells(&[None, Some("s1"), Some("s2"), Some("")])),
            text(
                "tool",
                &cells(&[Some("a"), Some("b"), None, Some(""), Some("c")]),
            ),
            text(
                "recorded_decision",
                &cells(&[Some("ALLOW"), Some("denied"), None, Some("bogus"), Some("")]),
            ),
            text("recorded_rule", &cells(&[Some("r1"), None, Some("")])),
            text("recorded_message", &cells(&[None, Some("m")])),
            text("recorded_policy_version", &cells(&[Some("v1"), None])),
            text(
                "upstream",
                &cells(&[
                    Some("ok"),
                    Some("error"),
                    Some("tool_error"),
                    Some("OK"),
                    None,
                ]),
            ),
            text("id", &cells(&[Some("1"), None, Some("")])),
            Column::new(
                "latency_ms".into(),
                (0..n)
                    .map(|i| (i % 3 != 0).then_some(i as f64 / 4.0))
                    .collect::<Vec<_>>(),
            ),
            text("extra", &cells(&[Some("ignored")])),
        ],
    )
    .expect("frame");
    let out = assert_same(&parquet(&mut df, Some(5)));
    assert!(out.stats.skipped > 0 && !out.records.is_empty());
}

#[test]
fn timestamps_of_every_kind_read_the_same() {
    let ints = [
        Some(NS),
        Some(1_785_578_400),
        Some(1_785_578_400_123),
        Some(1_785_578_400_123_456),
        None,
        Some(i64::MAX),
        Some(i64::MIN),
        Some(-5),
        Some(0),
        Some(99_999_999_999_999_999),
        Some(100_000_000_000_000_000),
    ];
    let texts = [
        Some("2026-08-01T10:00:00Z"),
        Some("2026-08-01T12:00:00.5+02:00"),
        Some("1785578400"),
        Some("1785578400.25"),
        Some(" 1785578400123 "),
        Some("yesterday"),
        Some(""),
        None,
        Some("99999999999999999999999"),
        Some("-1"),
        Some("1e9"),
    ];
    let n = ints.len();
    let frames: Vec<Column> = vec![
        Column::new("ts".into(), ints.to_vec()),
        text("ts", &texts),
        Column::new(
            "ts".into(),
            ints.iter().map(|v| v.map(|v| v as i32)).collect::<Vec<_>>(),
        ),
        Column::new(
            "ts".into(),
            ints.iter().map(|v| v.map(|v| v as u64)).collect::<Vec<_>>(),
        ),
        Column::new(
            "ts".into(),
            ints.iter()
                .map(|v| v.map(|v| v as f64 / 7.0))
                .collect::<Vec<_>>(),
        ),
    ];
    for ts in frames {
        let mut df =
            DataFrame::new(n, vec![ts, Column::new("tool".into(), vec!["t"; n])]).expect("frame");
        let out = assert_same(&parquet(&mut df, Some(4)));
        assert!(out.error.is_none(), "{:?}", out.error);
    }
    // No timestamp column at all: every row is bad.
    let mut df = DataFrame::new(3, vec![Column::new("tool".into(), vec!["t"; 3])]).expect("frame");
    let out = assert_same(&parquet(&mut df, None));
    assert_eq!(out.stats.skipped, 3);
}

#[test]
fn unusual_column_types_read_the_same() {
    let n = 6;
    let ts = || Column::new("ts".into(), vec![NS; n]);
    let tool = || Column::new("tool".into(), vec!["t"; n]);
    let cases: Vec<Vec<Column>> = vec![
        // Numbers where text is expected: read as text.
        vec![
            ts(),
            tool(),
            Column::new("id".into(), (0..n as i64).collect::<Vec<_>>()),
        ],
        vec![
            ts(),
            tool(),
            Column::new(
                "upstream".into(),
                vec![true, false, true, true, false, true],
            ),
        ],
        vec![
            ts(),
            Column::new("tool".into(), (0..n as i32).collect::<Vec<_>>()),
        ],
        // Text latency, good and bad.
        vec![
            ts(),
            tool(),
            text(
                "latency_ms",
                &[
                    Some("12.5"),
                    Some(" 3 "),
                    Some("abc"),
                    Some(""),
                    None,
                    Some("1e3"),
                ],
            ),
        ],
        vec![
            ts(),
            tool(),
            Column::new("latency_ms".into(), vec![Some(3i32); n]),
        ],
        vec![
            ts(),
            tool(),
            Column::new("latency_ms".into(), vec![true; n]),
        ],
        // Binary text: polars decides what it reads as.
        vec![
            ts(),
            tool(),
            Column::new("args".into(), vec![b"{}".as_slice(); n]),
        ],
        // A list where a name is expected.
        vec![
            ts(),
            tool(),
            Column::new(
                "session".into(),
                (0..n)
                    .map(|i| Series::new("".into(), vec![i as i64]))
                    .collect::<Vec<_>>(),
            ),
        ],
        // Every cell null.
        vec![
            ts(),
            tool(),
            Column::full_null("grant".into(), n, &DataType::String),
            Column::full_null("server".into(), n, &DataType::Null),
        ],
    ];
    for columns in cases {
        let mut df = DataFrame::new(n, columns).expect("frame");
        assert_same(&parquet(&mut df, Some(4)));
    }
}

/// Damaged files: bytes changed all over a generated file. Whatever the row reader makes of
/// each (records, bad rows or an error), so does the batch reader, except that damage in a
/// column the batch does not hold (request id, latency…) goes unnoticed: where the row reader
/// fails, the batch reader may go on, with the same calls up to that point.
#[test]
fn damaged_files_read_the_same() {
    let cfg = crate::generate::GenConfig {
        calls: 300,
        ..crate::generate::GenConfig::default()
    };
    let mut data = Vec::new();
    crate::generate::Generator::new(&cfg)
        .and_then(|g| g.write_parquet(&mut data, 100))
        .expect("generate");
    let (mut same, mut failed, mut went_on) = (0, 0, 0);
    for k in 0..60 {
        let mut bad = data.clone();
        let at = 4 + (k * 7919) % (data.len() - 8);
        bad[at] ^= 0x5a;
        bad[at + 1] = bad[at + 1].wrapping_add(k as u8);
        let rows = read_rows(&bad);
        let (batches, _, _) = read_batches(&bad, true, false, MAX_SLICE_ROWS);
        if batches.error == rows.error {
            assert_same(&bad);
            same += 1;
            failed += usize::from(rows.error.is_some());
            continue;
        }
        assert!(rows.error.is_some() && batches.error.is_none(), "{k}");
        went_on += 1;
        let seen = |r: &CallRecord| {
            (
                r.ts,
                r.server.clone(),
                r.grant.clone(),
                r.session.clone(),
                r.tool.clone(),
                r.upstream,
                r.recorded.as_ref().and_then(|c| c.decision),
                r.args.clone(),
                r.origin,
            )
        };
        assert!(batches.records.len() >= rows.records.len());
        for (a, b) in batches.records.iter().zip(&rows.records) {
            assert_eq!(seen(a), seen(b));
        }
        let n = rows.stats.skipped_examples.len();
        assert_eq!(
            batches.stats.skipped_examples[..n],
            rows.stats.skipped_examples[..]
        );
    }
    assert!(
        same > 0 && failed > 0 && went_on > 0,
        "{same} {failed} {went_on}"
    );
}

#[test]
fn an_empty_file_reads_the_same() {
    let mut df = DataFrame::new(
        0,
        vec![
            Column::new("ts".into(), Vec::<i64>::new()),
            Column::new("tool".into(), Vec::<String>::new()),
        ],
    )
    .expect("frame");
    let out = assert_same(&parquet(&mut df, None));
    assert!(out.records.is_empty() && out.error.is_none());
}

#[test]
fn bytes_that_are_not_parquet_fail_the_same() {
    for data in [&b"PAR1 not really"[..], b"", b"PAR1PAR1"] {
        let out = assert_same(data);
        assert!(out.error.is_some());
    }
}

/// Many distinct long texts make the writer give up on dictionaries: string views then.
#[test]
fn columns_without_dictionaries_read_the_same() {
    let n = 3_000;
    let args: Vec<Option<String>> = (0..n)
        .map(|i| match i % 50 {
            0 => None,
            1 => Some("[bad".to_string()),
            _ => Some(format!(
                r#"{{"n":{i},"pad":"{}"}}"#,
                "x".repeat(40 + i % 17)
            )),
        })
        .collect();
    let session: Vec<Option<String>> = (0..n)
        .map(|i| (i % 7 != 0).then(|| format!("session-with-a-long-name-{i}")))
        .collect();
    let mut df = DataFrame::new(
        n,
        vec![
            Column::new(
                "ts".into(),
                (0..n as i64).map(|i| NS + i).collect::<Vec<_>>(),
            ),
            Column::new("tool".into(), vec!["t"; n]),
            Column::new("session".into(), session),
            Column::new("args".into(), args),
        ],
    )
    .expect("frame");
    let data = parquet(&mut df, Some(1_000));
    let md = ParquetReader::new(Cursor::new(data.clone()))
        .get_metadata()
        .expect("footer")
        .clone();
    let plain = md.row_groups.iter().any(|rg| {
        rg.columns_under_root_iter("args")
            .is_some_and(|mut c| c.any(|c| c.dictionary_page_offset().is_none()))
    });
    assert!(
        plain,
        "the writer kept a dictionary: the test misses its point"
    );
    let out = assert_same_judging(&data, Some(60));
    assert_eq!(out.stats.skipped, 60);
}

/// A generated trace, compressed, in several row groups read in slices.
#[test]
fn generated_traces_read_the_same() {
    let cfg = crate::generate::GenConfig {
        calls: 5_000,
        ..crate::generate::GenConfig::default()
    };
    let mut data = Vec::new();
    crate::generate::Generator::new(&cfg)
        .and_then(|g| g.write_parquet(&mut data, 1_500))
        .expect("generate");
    let out = assert_same_judging(&data, Some(0));
    assert_eq!(out.records.len(), 5_000);
}

/// With sessions skipped, every session of the batches is absent; every other column and
/// every record is as it was. Skipped after the read began (the merge reads ahead before the
/// replay says), the slices decoded from then on leave them out.
#[test]
fn skipped_sessions_leave_everything_else_alone() {
    let cfg = crate::generate::GenConfig {
        calls: 3_000,
        ..crate::generate::GenConfig::default()
    };
    let mut data = Vec::new();
    crate::generate::Generator::new(&cfg)
        .and_then(|g| g.write_parquet(&mut data, 1_000))
        .expect("generate");
    let dir = tempfile::tempdir().expect("temp dir");
    // Batches read before sessions are skipped (`None`: never skipped).
    let read = |skip_after: Option<usize>| {
        let symbols = Symbols::new();
        let mut src = ParquetBatchSource::new(
            bytes_of(&data, false, &dir),
            "t.parquet",
            0,
            Arc::clone(&symbols),
            false,
        )
        .with_slice_rows(100);
        let mut out = Vec::new();
        loop {
            if skip_after == Some(out.len()) {
                src.skip_sessions();
            }
            match src.next_batch().expect("reads") {
                Some(b) => out.push(b),
                None => break,
            }
        }
        (out, symbols)
    };
    let (with, ws) = read(None);
    assert_eq!(with.len(), 30);
    for skip_after in [0, 1] {
        let (without, wos) = read(Some(skip_after));
        assert_eq!(with.len(), without.len());
        let mut calls = 0;
        for (k, (a, b)) in with.iter().zip(&without).enumerate() {
            assert!(a.session.iter().any(|s| s.is_some()));
            // Workers decode at most a few slices ahead of the one handed out.
            if k >= skip_after + 8 || skip_after == 0 {
                assert!(b.session.iter().all(|s| s.is_none()), "batch {k}");
            }
            if k < skip_after {
                assert_eq!(a.session.len(), b.session.len());
                for i in 0..a.len() {
                    assert_eq!(a.session.get(i), b.session.get(i));
                }
            }
            assert_eq!((&a.ts, &a.line, &a.upstream), (&b.ts, &b.line, &b.upstream));
            for i in 0..a.len() {
                assert_eq!(ws.name(a.tool[i]), wos.name(b.tool[i]));
                assert_eq!(ws.opt_name(a.grant[i]), wos.opt_name(b.grant[i]));
                assert_eq!(a.rows.record(i), b.rows.record(i), "record {i}");
                calls += 1;
            }
        }
        assert_eq!(calls, 3_000);
    }
}

fn cell_strategy(pool: &'static [Option<&'static str>]) -> impl Strategy<Value = Option<String>> {
    proptest::sample::select(pool).prop_map(|c| c.map(str::to_string))
}

const TOOLS: &[Option<&str>] = &[Some("read"), Some("write"), None, Some("")];
const SERVERS: &[Option<&str>] = &[Some("github"), Some("stripe"), None, Some("")];
const ARGS: &[Option<&str>] = &[
    Some(r#"{"path":"/tmp/x"}"#),
    Some("{}"),
    Some(r#"{"n":1e2}"#),
    Some("[1]"),
    Some("{oops"),
    Some(r#" {"a":"\u00e9"} "#),
    None,
    Some(""),
];
const DECISIONS: &[Option<&str>] = &[Some("allow"), Some("Deny"), Some("maybe"), None];
const UPSTREAMS: &[Option<&str>] = &[Some("ok"), Some("error"), Some("nope"), None];

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// Random rows from pools of good and bad cells, in random row groups.
    #[test]
    fn random_rows_read_the_same(
        rows in proptest::collection::vec(
            (
                proptest::option::weighted(0.9, 0i64..3_000_000_000_000_000_000),
                cell_strategy(SERVERS),
                cell_strategy(TOOLS),
                cell_strategy(ARGS),
                cell_strategy(DECISIONS),
                cell_strategy(UPSTREAMS),
            ),
            0..60,
        ),
        row_group in 1usize..20,
    ) {
        let n = rows.len();
        let col = |k: usize| -> Vec<Option<String>> {
            rows.iter().map(|r| [&r.1, &r.2, &r.3, &r.4, &r.5][k].clone()).collect()
        };
        let mut df = DataFrame::new(
            n,
            vec![
                Column::new("ts".into(), rows.iter().map(|r| r.0).collect::<Vec<_>>()),
                Column::new("server".into(), col(0)),
                Column::new("tool".into(), col(1)),
                Column::new("args".into(), col(2)),
                Column::new("recorded_decision".into(), col(3)),
                Column::new("upstream".into(), col(4)),
            ],
        )
        .expect("frame");
        assert_same(&parquet(&mut df, Some(row_group)));
    }

}
