//! The evaluator alone: decisions per second on the benchmark policy, with no parsing or
//! reporting around it. Run with `cargo bench --bench evaluator`.

use std::sync::Arc;

use mcpsim::engine::{Engine, EvalOptions};
use mcpsim::generate::{GenConfig, Generator};
use mcpsim::trace::CallRecord;

const CALLS: usize = 200_000;

fn main() {
    divan::main();
}

fn calls() -> Vec<CallRecord> {
    let cfg = GenConfig {
        calls: CALLS as u64,
        ..GenConfig::default()
    };
    match Generator::new(&cfg) {
        Ok(g) => g.collect(),
        Err(e) => panic!("generator: {e}"),
    }
}

fn policy() -> Arc<mcpsim::engine::Policy> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/policies/bench.json");
    match mcpsim::policy::load_policy_file(std::path::Path::new(path)) {
        Ok(p) => Arc::new(p),
        Err(e) => panic!("{path}: {e}"),
    }
}

/// One replay of the generated calls through a fresh engine (empty counters), in time order.
#[divan::bench(sample_count = 20)]
fn evaluate_bench_policy_names(bencher: divan::Bencher) {
    let calls = calls();
    // The evaluator's input is the borrowed view; building the views up front keeps record
    // construction (a reader's job) out of the measurement.
    let views: Vec<_> = calls.iter().map(CallRecord::view).collect();
    let policy = policy();
    bencher
        .counter(divan::counter::ItemsCount::new(views.len()))
        .with_inputs(|| Engine::new(policy.clone(), EvalOptions::default()))
        .bench_local_values(|mut engine| {
            let mut throttled = 0usize;
            for view in &views {
                let d = engine.evaluate(view);
                throttled += usize::from(d.kind == mcpsim::engine::DecisionKind::Throttle);
            }
            divan::black_box(throttled)
        });
}

/// The same replay as a fast reader feeds it: names already interned to ids (by the reader, as
/// [`mcpsim::trace::CallBatch`] columns), one decision reused from call to call.
#[divan::bench(sample_count = 20)]
fn evaluate_bench_policy_interned(bencher: divan::Bencher) {
    let calls = calls();
    let symbols = mcpsim::trace::Symbols::new();
    let mut local = mcpsim::trace::LocalSymbols::new(symbols.clone());
    let views: Vec<_> = calls
        .iter()
        .map(|c| {
            let mut view = c.view();
            view.ids = Some(mcpsim::engine::CallIds {
                server: local.intern(&c.server),
                grant: local.intern_opt(c.grant.as_deref()),
                session: local.intern_opt(c.session.as_deref()),
                tool: local.intern(&c.tool),
            });
            view
        })
        .collect();
    let policy = policy();
    bencher
        .counter(divan::counter::ItemsCount::new(views.len()))
        .with_inputs(|| Engine::new(policy.clone(), EvalOptions::default()))
        .bench_local_values(|mut engine| {
            let mut throttled = 0usize;
            let mut d = mcpsim::engine::Decision::allow();
            for view in &views {
                engine.evaluate_into(view, &mut d);
                throttled += usize::from(d.kind == mcpsim::engine::DecisionKind::Throttle);
            }
            divan::black_box(throttled)
        });
}
