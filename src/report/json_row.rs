//! Per-call rows as JSON lines, written field by field ([`JsonObject`](crate::trace::JsonObject)):
//! exactly the bytes serde_json writes for the rows' derived `Serialize` (a test holds the two
//! together).

use super::model::{CallInfo, CallRow, Cause, DiffRow, Outcome};
use crate::trace::JsonObject as Object;

/// `row` as one JSON object, appended to `out`.
pub(super) fn call_row(row: &CallRow, out: &mut Vec<u8>) {
    let mut o = Object::new(out);
    call_info(&mut o, &row.call);
    outcome(&mut o, &row.outcome);
    o.end();
}

/// `row` as one JSON object, appended to `out`.
pub(super) fn diff_row(row: &DiffRow, out: &mut Vec<u8>) {
    let mut o = Object::new(out);
    call_info(&mut o, &row.call);
    for (key, side) in [
        (&b"\"base\":"[..], &row.base),
        (&b"\"candidate\":"[..], &row.candidate),
    ] {
        let mut inner = Object::new(o.key(key));
        outcome(&mut inner, side);
        inner.end();
    }
    let cause = row.cause.map(|c| match c {
        Cause::Direct => "direct",
        Cause::KnockOn => "knock-on",
    });
    o.opt_str(b"\"cause\":", cause);
    o.end();
}

fn call_info(o: &mut Object<'_>, c: &CallInfo) {
    o.value(b"\"index\":", &c.index);
    o.str(b"\"ts\":", &c.ts);
    o.str(b"\"server\":", &c.server);
    o.opt_str(b"\"grant\":", c.grant.as_deref());
    o.opt_str(b"\"session\":", c.session.as_deref());
    o.str(b"\"tool\":", &c.tool);
    o.opt_str(b"\"id\":", c.id.as_deref());
    o.str(b"\"origin\":", &c.origin);
    o.opt_str(b"\"recorded\":", c.recorded.as_deref());
    o.opt_str(b"\"upstream\":", c.upstream.as_deref());
    if let Some(args) = &c.args {
        o.key(b"\"args\":")
            .extend_from_slice(args.as_str().as_bytes());
    }
}

fn outcome(o: &mut Object<'_>, x: &Outcome) {
    o.str(b"\"decision\":", x.decision.as_str());
    o.str(b"\"rule\":", &x.rule);
    o.str(b"\"message\":", &x.message);
    o.bool(b"\"approval_required\":", x.approval_required);
    match &x.throttle {
        None => o.null(b"\"throttle\":"),
        Some(t) => {
            let mut inner = Object::new(o.key(b"\"throttle\":"));
            inner.str(b"\"counter\":", &t.counter);
            inner.str(b"\"key\":", &t.key);
            inner.str(b"\"window_start\":", &t.window_start);
            inner.value(b"\"used\":", &t.used);
            inner.value(b"\"max\":", &t.max);
            inner.value(b"\"increment\":", &t.increment);
            inner.str(b"\"retry_after\":", &t.retry_after);
            inner.end();
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::engine::DecisionKind;
    use crate::report::model::ThrottleInfo;

    fn info(texts: &[String], index: u64, args: bool) -> CallInfo {
        let t = |i: usize| texts[i % texts.len()].clone();
        let o = |i: usize| (i % 3 != 0).then(|| t(i));
        CallInfo {
            index,
            ts: t(0),
            server: t(1),
            grant: o(2),
            session: o(4),
            tool: t(5),
            id: o(7),
            origin: t(8),
            recorded: o(10),
            upstream: o(11),
            args: args.then(|| serde_json::json!({"path": t(3), "n": [1, 2.5, null]}).into()),
        }
    }

    fn outcome(texts: &[String], kind: DecisionKind, numbers: Option<[f64; 3]>) -> Outcome {
        let t = |i: usize| texts[i % texts.len()].clone();
        Outcome {
            decision: kind,
            rule: t(2),
            message: t(6),
            approval_required: numbers.is_none(),
            throttle: numbers.map(|[used, max, increment]| ThrottleInfo {
                counter: t(1),
                key: t(3),
                window_start: t(4),
                used,
                max,
                increment,
                retry_after: t(5),
            }),
        }
    }

    fn kinds() -> impl Strategy<Value = DecisionKind> {
        prop::sample::select(vec![
            DecisionKind::Allow,
            DecisionKind::Deny,
            DecisionKind::Throttle,
            DecisionKind::Approval,
            DecisionKind::Unknown,
        ])
    }

    proptest! {
        /// Every row reads, byte for byte, as serde_json writes it.
        #[test]
        fn rows_are_written_as_serde_json_writes_them(
            texts in prop::collection::vec("(\\PC|[\"\\\\\u{0}-\u{1f}\u{7f}])*", 1..12),
            index in any::<u64>(),
            args in any::<bool>(),
            kinds in (kinds(), kinds()),
            numbers in prop::option::of(prop::array::uniform3(
                prop_oneof![any::<f64>(), (0u32..1000).prop_map(f64::from)],
            )),
            cause in prop::option::of(prop::bool::ANY),
        ) {
            let call = info(&texts, index, args);
            let row = CallRow {
                call: call.clone(),
                outcome: outcome(&texts, kinds.0, numbers),
            };
            let mut out = Vec::new();
            call_row(&row, &mut out);
            prop_assert_eq!(
                String::from_utf8(out).expect("UTF-8"),
                serde_json::to_string(&row).expect("serialises")
            );
            let row = DiffRow {
                call,
                base: outcome(&texts, kinds.0, None),
                candidate: outcome(&texts, kinds.1, numbers),
                cause: cause.map(|direct| if direct { Cause::Direct } else { Cause::KnockOn }),
            };
            let mut out = Vec::new();
            diff_row(&row, &mut out);
            prop_assert_eq!(
                String::from_utf8(out).expect("UTF-8"),
                serde_json::to_string(&row).expect("serialises")
            );
        }
    }
}
