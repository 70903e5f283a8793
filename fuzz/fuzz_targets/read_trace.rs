// Shared by the trace targets (included, not a target of its own): read `data` as one input in
// `format` through the one read path every command uses, and build every call's record.
// Errors are expected and fine; a panic, an abort or a hang is a finding. So is a path that
// reads otherwise from the arguments than from the map they parse into.

use mcpsim::call::{ArgLookup, Args};
use mcpsim::trace::{Format, ReadOptions, Trace};
use serde_json::Value;

/// Paths that hit the keys short fuzzed objects have.
const PATHS: &[&[&str]] = &[&["a"], &["a", "b"], &["b"], &["name"], &["\"", "a"]];

/// `args` read a path at a time agree with the map they parse into.
fn check_paths(args: &Args, fresh: impl Fn() -> Args) {
    let map = args.values();
    for path in PATHS {
        // A fresh copy: reading a path must not rely on a map parsed before.
        let found = fresh();
        match (found.lookup(path), map) {
            (ArgLookup::Value(v), Some(map)) => {
                let mut want = map.get(path[0]);
                for k in &path[1..] {
                    want = want.and_then(Value::as_object).and_then(|m| m.get(*k));
                }
                assert_eq!(v.as_deref(), want, "{path:?} in {args:?}");
            }
            (ArgLookup::Value(v), None) => panic!("{path:?} read {v:?} from {args:?}, no map"),
            (_, Some(_)) if matches!(args, Args::Raw(_) | Args::Values(_)) => {
                panic!("{path:?} unread in {args:?}, which has a map")
            }
            _ => {}
        }
    }
}

pub fn read_trace(format: Format, data: &[u8]) {
    for strict in [false, true] {
        let opts = ReadOptions {
            from: Some(format),
            strict,
            ..ReadOptions::default()
        };
        let mut input = data;
        let Ok(mut trace) = Trace::open_with_stdin(&["-".to_string()], &opts, &mut input) else {
            continue;
        };
        let mut calls = 0u32;
        while let Ok(Some(call)) = trace.next_call() {
            let record = call.record();
            check_paths(&record.args, || call.args());
            calls += 1;
            // Enough to reach every reader state; a longer input is not more interesting.
            if calls > 10_000 {
                break;
            }
        }
        let _ = trace.stats();
    }
}
