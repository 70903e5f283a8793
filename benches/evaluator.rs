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

/// Time replays of `views` through a fresh engine (empty counters) each, in time order, one
/// decision reused from call to call as the replay loop does.
fn replay(bencher: divan::Bencher, views: &[mcpsim::engine::CallView<'_>]) {
    let policy = policy();
    bencher
        .counter(divan::counter::ItemsCount::new(views.len()))
        .with_inputs(|| Engine::new(policy.clone(), EvalOptions::default()))
        .bench_local_values(|mut engine| {
            let mut throttled = 0usize;
            let mut d = mcpsim::engine::Decision::allow();
            for view in views {
                engine.evaluate_into(view, &mut d);
                throttled += usize::from(d.kind == mcpsim::engine::DecisionKind::Throttle);
            }
            divan::black_box(throttled)
        });
}

/// The replay as the fast readers feed it: names already interned to ids by the reader (the
/// columns of a [`mcpsim::trace::CallBatch`]). Building the views up front keeps reading out of
/// the measurement.
#[divan::bench(sample_count = 20)]
fn evaluate_bench_policy_interned(bencher: divan::Bencher) {
    let calls = calls();
    let mut names = mcpsim::trace::LocalSymbols::new(mcpsim::trace::Symbols::new());
    let views: Vec<_> = calls
        .iter()
        .map(|c| {
            let mut view = c.view();
            view.ids = Some(mcpsim::engine::CallIds {
                server: names.intern(&c.server),
                grant: names.intern_opt(c.grant.as_deref()),
                tool: names.intern(&c.tool),
            });
            view
        })
        .collect();
    replay(bencher, &views);
}

/// The same replay with names only (as records from the other readers come): the engine
/// interns them itself.
#[divan::bench(sample_count = 20)]
fn evaluate_bench_policy_names(bencher: divan::Bencher) {
    let calls = calls();
    let views: Vec<_> = calls.iter().map(CallRecord::view).collect();
    replay(bencher, &views);
}

/// A policy that reads arguments (a `deny_if` on a string, a `require` on another string, a
/// limit charged by a number) over arguments kept as the JSON text they were read from, as the
/// fast readers keep them.
const ARGS_POLICY: &str = r#"{
  "version": "1",
  "default": "allow",
  "all_tools": {
    "limits": [ { "counter": "all_calls", "window": "minute", "max": 150, "scope": "grant" } ]
  },
  "tools": {
    "firewall_policy_create": {
      "deny_if": [ { "path": "args.action", "op": "eq", "value": "deny" } ],
      "require": [ { "path": "args.service", "op": "in", "value": ["HTTPS", "ALL"] } ]
    },
    "vpn_ipsec_phase2_create": {
      "deny_if": [ { "path": "args.proposal", "op": "regex", "value": "des|md5" } ],
      "limits": [ { "counter": "dh", "window": "minute", "max": 200, "scope": "grant",
                    "increment_from": "args.dhgrp" } ]
    },
    "vpn_ipsec_phase1_create": {
      "limits": [ { "counter": "ike", "window": "minute", "max": 20, "scope": "grant",
                    "increment_from": "args.ike_version" } ]
    },
    "firewall_address_create": {
      "deny_if": [ { "path": "args.comment", "op": "contains", "value": "manual" } ]
    },
    "firewall_policy_list": {
      "require": [ { "path": "args.vdom", "op": "exists", "value": true } ]
    }
  }
}"#;

/// The argument-reading policy over raw argument text, names interned.
#[divan::bench(sample_count = 20)]
fn evaluate_args_policy_raw(bencher: divan::Bencher) {
    let mut calls = calls();
    for c in &mut calls {
        let text = match &c.args {
            mcpsim::trace::Args::Values(map) => serde_json::to_string(map).expect("serialises"),
            _ => "{}".to_owned(),
        };
        c.args = mcpsim::trace::Args::Raw(mcpsim::trace::RawArgs::new(text));
    }
    let policy = match mcpsim::policy::parse_policy_str(ARGS_POLICY, "args.json") {
        Ok(p) => Arc::new(p),
        Err(e) => panic!("args policy: {e}"),
    };
    let mut names = mcpsim::trace::LocalSymbols::new(mcpsim::trace::Symbols::new());
    let views: Vec<_> = calls
        .iter()
        .map(|c| {
            let mut view = c.view();
            view.ids = Some(mcpsim::engine::CallIds {
                server: names.intern(&c.server),
                grant: names.intern_opt(c.grant.as_deref()),
                tool: names.intern(&c.tool),
            });
            view
        })
        .collect();
    // Fresh records each sample: raw arguments must not keep a map parsed by an earlier one.
    bencher
        .counter(divan::counter::ItemsCount::new(views.len()))
        .with_inputs(|| {
            let fresh: Vec<mcpsim::trace::Args> = calls.iter().map(|c| c.args.clone()).collect();
            (Engine::new(policy.clone(), EvalOptions::default()), fresh)
        })
        .bench_local_values(|(mut engine, fresh)| {
            let mut denied = 0usize;
            let mut d = mcpsim::engine::Decision::allow();
            for (view, args) in views.iter().zip(&fresh) {
                let view = mcpsim::engine::CallView {
                    args: args.into(),
                    ..*view
                };
                engine.evaluate_into(&view, &mut d);
                denied += usize::from(d.kind == mcpsim::engine::DecisionKind::Deny);
            }
            divan::black_box(denied)
        });
}
