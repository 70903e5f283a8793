//! Steps 1–5 of the policies worked out by the reader threads: they read a call's tool and
//! arguments and no counter, so a reader can work them out as it reads a batch, while the
//! replay's one thread evaluates earlier calls (`Engine::evaluate_screened_into` then skips
//! them). Only calls of tools whose rules read the arguments are screened ahead: for the
//! others steps 1–5 cost the evaluation next to nothing.

use std::sync::Arc;

use super::PolicySet;
use crate::engine::{Policy, ScreenedTool};
use crate::trace::{Prescreen, PrescreenRows, ScreenRows, Symbols, Trace};

/// Have `trace`'s readers screen ahead for `sets` when a policy of theirs has rules that read
/// arguments (else there is nothing to gain).
pub(super) fn prescreen(trace: &mut Trace, sets: &[&PolicySet]) {
    let policies = |set: &PolicySet| {
        let per_server = set
            .per_server
            .iter()
            .map(|(s, (_, p))| (s.clone(), p.clone()));
        Bound {
            per_server: per_server.collect(),
            default: set.default.as_ref().map(|(_, p)| p.clone()),
        }
    };
    let sets: Vec<Bound> = sets.iter().map(|set| policies(set)).collect();
    let any = (sets.iter())
        .flat_map(|b| b.per_server.iter().map(|(_, p)| p).chain(&b.default))
        .any(|p| matches!(&**p, Policy::PolicyLayer(l) if l.reads_args()));
    if any {
        let symbols = Arc::clone(trace.symbols());
        trace.prescreen(Arc::new(Sets { sets, symbols }));
    }
}

/// The policies of one set with the servers they are bound to.
#[derive(Clone)]
struct Bound {
    per_server: Vec<(String, Arc<Policy>)>,
    default: Option<Arc<Policy>>,
}

impl Bound {
    /// The policy that decides server `server`'s calls, as the replay's engines route them.
    fn policy_for(&self, server: &str) -> Option<&Arc<Policy>> {
        match self.per_server.iter().find(|(s, _)| s == server) {
            Some((_, p)) => Some(p),
            None => self.default.as_ref(),
        }
    }
}

/// Every policy set of a replay, a number per set for each call.
struct Sets {
    sets: Vec<Bound>,
    symbols: Arc<Symbols>,
}

impl Prescreen for Sets {
    fn width(&self) -> usize {
        self.sets.len()
    }

    fn start(&self) -> Box<dyn PrescreenRows> {
        Box::new(Rows {
            sets: self.sets.clone(),
            symbols: Arc::clone(&self.symbols),
            plans: Vec::new(),
            by_ids: Vec::new(),
        })
    }
}

/// A policy and a tool of it whose calls it screens.
type Screening = (Arc<Policy>, ScreenedTool);

/// One reader thread's screening: what each (server, tool) pair of ids needs, worked out by
/// name once.
struct Rows {
    sets: Vec<Bound>,
    symbols: Arc<Symbols>,
    /// Per pair screened: for each set, its policy and the tool.
    plans: Vec<Vec<Option<Screening>>>,
    /// By server id, by tool id: 0 not asked yet, 1 not screened, `k + 2` screened by
    /// `plans[k]`.
    by_ids: Vec<Vec<u32>>,
}

impl Rows {
    fn slot(&mut self, server: u32, tool: u32) -> u32 {
        let (s, t) = (server as usize, tool as usize);
        if let Some(&slot) = self.by_ids.get(s).and_then(|tools| tools.get(t)) {
            if slot != 0 {
                return slot;
            }
        }
        let (server_name, tool_name) = (self.symbols.name(server), self.symbols.name(tool));
        let plan: Vec<_> = (self.sets.iter())
            .map(|set| {
                let policy = set.policy_for(&server_name)?;
                Some((Arc::clone(policy), policy.screened_tool(&tool_name)?))
            })
            .collect();
        let slot = if plan.iter().any(Option::is_some) {
            self.plans.push(plan);
            self.plans.len() as u32 + 1
        } else {
            1
        };
        if self.by_ids.len() <= s {
            self.by_ids.resize(s + 1, Vec::new());
        }
        let tools = &mut self.by_ids[s];
        if tools.len() <= t {
            tools.resize(t + 1, 0);
        }
        tools[t] = slot;
        slot
    }
}

impl PrescreenRows for Rows {
    fn batch(&mut self, rows: &dyn ScreenRows, out: &mut [u32]) {
        let width = self.sets.len().max(1);
        let mut args = None;
        let (servers, tools) = rows.ids();
        // Calls of one tool come in runs: the last pair's slot.
        let mut last = (u32::MAX, u32::MAX, 1);
        for ((row, codes), (&server, &tool)) in
            (out.chunks_exact_mut(width).enumerate()).zip(servers.iter().zip(tools))
        {
            if (server, tool) != (last.0, last.1) {
                last = (server, tool, self.slot(server, tool));
            }
            let Some(plan) = (last.2 as usize)
                .checked_sub(2)
                .and_then(|k| self.plans.get(k))
            else {
                continue;
            };
            let call_args = rows.args_ref(row, &mut args);
            for (code, step) in codes.iter_mut().zip(plan) {
                if let Some((policy, tool)) = step {
                    *code = policy.screen(*tool, call_args).bits();
                }
            }
        }
    }
}
