// Shared by the trace targets (included, not a target of its own): read `data` as one input in
// `format` through the one read path every command uses, and build every call's record.
// Errors are expected and fine; a panic, an abort or a hang is a finding.

use mcpsim::trace::{Format, ReadOptions, Trace};

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
            let _ = record.args.values();
            calls += 1;
            // Enough to reach every reader state; a longer input is not more interesting.
            if calls > 10_000 {
                break;
            }
        }
        let _ = trace.stats();
    }
}
