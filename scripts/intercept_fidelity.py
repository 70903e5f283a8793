#!/usr/bin/env python3
"""Compare mcpsim's Intercept-dialect decisions with the Intercept gateway's own engine.

Generates random Intercept policies and call traces (seeded, so a run can be repeated),
replays each trace through the gateway harness (scripts/intercept-harness, built against an
Intercept checkout: see docs/fidelity.md) and through `mcpsim simulate --format jsonl --calls
all`, and compares decision by decision: allowed or refused, and the refusal's message.

    scripts/intercept_fidelity.py --harness PATH --mcpsim PATH [--policies 1000] [--calls 100]
        [--seed 1] [--shipped DIR] [--keep DIR]

Exit status 0 when every decision agreed, 1 otherwise.
"""

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
from datetime import datetime, timedelta, timezone

TOOLS = ["alpha", "beta", "gamma"]
# A tool no policy names, and rule names: with characters Go's %q escapes or keeps, so the
# messages that quote them ("Tool %q is not permitted by policy", "Denied by rule %q") are
# compared too.
OTHER = 'oth"er\\ \u2028\u00a0é'
RULE = 'r{} "q"\u2028é'

ARG_KEYS = ["a", "b", "n", "o", "l"]

# Policy values, written as YAML source text: every scalar form yaml.v3 resolves its own way.
SCALARS = [
    "5", "05", "017", "0o17", "1_000", "0b101", "-0b11", "0x_1F", "0x1F", "1000000",
    "1000000.0", "1e3", "1.5", "-2", "+7", "08", "1234567", "1e19", "1e21", "9223372036854775807",
    "18446744073709551615", "99999999999999999999", "1e400", ".5", "-.5",
    ".inf", "-.inf", ".nan", ".NaN", ".Inf", "~", "null", "Null", "true", "True", "FALSE",
    "yes", "on", "y", "abc", "\"5\"", "'5'", "\"1e+06\"", "\"true\"", "\"<nil>\"",
    "2024-01-01", "2024-1-2", "2024-01-01T10:00:00Z", "2024-01-01 10:00:00",
    "2024-01-01T10:00:00.5+02:00", "2024-13-01", "\"2024-01-01\"", "!!binary aGVsbG8=",
    "!!str 5", "!!int \"7\"", "!!float 3", "\"١٢\"", "\"foo bar\"", "map", "'[1 2]'",
    "\"map[x:1]\"", "\"+Inf\"", "\"NaN\"", "0", "-0", "0.0001", "0.00001", "123456", "1e+06",
]
NUMERIC = ["5", "05", "017", "1_000", "0b101", "0x_1F", "1000000.0", "1e3", "1.5", "-2", "2.5",
           "1e19", "-1e19", "1e21", "9223372036854775807", ".inf", "-.inf", ".nan", "3", "1", "0",
           "2", "10", "1e300", "-0.5", "0.9", "4.999"]
REGEXES = [
    r"^\d+$", r"\w+", r"\bfoo\b", r"\Qa.b\E", r"a{,3}", r"a**", r"x{1001}", r"x{1000}",
    r"[[:alpha:]]+", r"(?i)ABC", r"\s", r"é", r"\pL+", r"[^a]", r"a|b", r"\<", r"^$",
    r"[\d]", r"\D", r"\S+", r"\W", r"(?s).", r"\x41", r"\101", r"\1", r"[[]", r"a{2}{3}",
    r"a*?", r"a+?b", r"(?U)a+", r"(?x)a", r"\z", r"\Z", r"(?P<n>a)", r"\e", r"[a-]", r"\B",
    r"\pN", r"[\w-]+", r"\.", r"\-", r"\#", r"a{2,1}", r"(", r"^1e\+06$", r"\v", r"[&&a]",
    r"[a~~b]", r"\u0041", r"[\s]", r"\p{Greek}", r"\x{263a}", r"\C", r"(?m)^a$", r"a{0}",
]
ARG_VALUES = [
    "5", "1000000", "1234567", "1e21", "2.5", "-1", "1e19", "0.00001", "0", "3", "10", "100",
    "true", "false", "null", "\"5\"", "\"1e+06\"", "\"1000000\"", "\"١٢\"", "\"12\"", "\"abc\"",
    "\"foo bar\"", "\"a.b\"", "\"aaa\"", "\"{,3}\"", "\"2024-01-01 00:00:00 +0000 UTC\"",
    "\"2024-01-01\"", "\"map[x:1]\"", "\"[1 2]\"", "\"<nil>\"", "\"true\"", "\"+Inf\"", "\"NaN\"",
    "\"hello\"", "\"ABC\"", "\"é\"", "\"a\\tb\"", "\"x\\u000bx\"", "[1,2]", "[\"a\",5]",
    "[1000000]", "{\"x\":1}", "{\"y\":[1,2],\"x\":\"z\"}", "[]", "{}", "\"<\"", "\"#\"",
    "\"1.5\"", "\"-2\"", "\"15\"", "\"31\"", "\"1e+19\"", "\"9.223372036854776e+18\"",
]


def yaml_str(s):
    return json.dumps(s)


def gen_condition(r, tool_scope, counters):
    if counters and r.random() < 0.25:
        counter = r.choice(counters)
        path = f"state.{tool_scope}.{counter}"
        op = r.choice(["lt", "lte", "lte", "gt", "gte", "eq", "neq"])
        value = r.choice(NUMERIC)
        if op in ("eq", "neq") and r.random() < 0.4:
            # A counter is a Go int64: it prints without an exponent.
            value = r.choice(["\"0\"", "\"1\"", "\"2\"", "\"1e+06\"", "'[1]'", "true"])
        return {"path": path, "op": op, "value": value}
    key = r.choice(ARG_KEYS)
    path = "args." + key + (".x" if r.random() < 0.1 else "")
    op = r.choice(["eq", "neq", "in", "not_in", "lt", "lte", "gt", "gte", "regex", "contains",
                   "exists", "eq", "regex"])
    if op in ("in", "not_in"):
        items = [r.choice(SCALARS) for _ in range(r.randint(0, 3))]
        value = "[" + ", ".join(i for i in items if not i.startswith("!!")) + "]"
    elif op in ("lt", "lte", "gt", "gte"):
        value = r.choice(NUMERIC) if r.random() < 0.95 else r.choice(SCALARS)
    elif op == "regex":
        value = yaml_str(r.choice(REGEXES)) if r.random() < 0.95 else r.choice(SCALARS)
    elif op == "exists":
        value = r.choice(["true", "false", "True", "FALSE"]) if r.random() < 0.95 else "1"
    else:
        value = r.choice(SCALARS)
        if r.random() < 0.1:
            value = "{x: 1}"
    return {"path": path, "op": op, "value": value}


def gen_rule(r, idx, tool, scope, counters):
    name = RULE.format(idx)
    kind = r.random()
    lines = [f"      - name: {yaml_str(name)}"]
    if r.random() < 0.3:
        lines.append(f"        on_deny: {yaml_str('denied by ' + name)}")
    if kind < 0.06:
        lines.append("        action: deny")
        return lines
    if kind < 0.25:
        lines.append(f"        rate_limit: {r.choice(['1', '2', '3', '5', '0', 'x'])}/{r.choice(['minute', 'hour', 'minute', 'day', 'week'])}")
        return lines
    conds = []
    state = None
    if kind < 0.75:
        counter = f"c{r.randint(1, 2)}"
        if counter in counters:
            counter = counter + "x"
        counters.append(counter)
        inc = r.random()
        state = {"counter": counter, "window": r.choice(["minute", "minute", "hour", "day"])}
        if inc < 0.2:
            state["increment_from"] = "args.n"
        elif inc < 0.45:
            state["increment"] = r.choice(["2", "2.0", "1e3", "0", "-1", "3", "2.5", "1_0", "017"])
        cap_op = r.choice(["lte", "lt", "lte", "lt", "gte"])
        conds.append({"path": f"state.{scope}.{counter}", "op": cap_op,
                      "value": r.choice(["1", "2", "3", "5", "10", "2.5", "1e19", "-1e19", "0",
                                         "1000", "9223372036854775807", "3.9", "1e3", "05"])})
    extra = r.choice([0, 0, 0, 1, 2]) if state else r.randint(1, 2)
    for _ in range(extra):
        conds.append(gen_condition(r, scope, counters))
    r.shuffle(conds)
    if r.random() < 0.5:
        lines.append("        action: evaluate")
    lines.append("        conditions:")
    for c in conds:
        lines.append(f"          - path: {c['path']}")
        lines.append(f"            op: {c['op']}")
        lines.append(f"            value: {c['value']}")
    if state:
        lines.append("        state:")
        for k, v in state.items():
            lines.append(f"          {k}: {v}")
    return lines


def gen_policy(r):
    lines = ['version: "1"']
    if r.random() < 0.3:
        lines.append("default: deny")
    if r.random() < 0.1:
        lines.append(f"hide: [{r.choice(TOOLS + ['*'])}]")
    lines.append("tools:")
    names = r.sample(TOOLS + ["*"], r.randint(1, 4))
    for tool in names:
        scope = "_global" if tool == "*" else tool
        lines.append(f"  {yaml_str(tool)}:")
        lines.append("    rules:")
        counters = []
        for i in range(r.randint(1, 3)):
            lines.extend(gen_rule(r, i, tool, scope, counters))
    if r.random() < 0.1:
        # A merge key: the rule list of one tool reused under another.
        lines.insert(1, "anchors: &base {rules: [{name: m, action: deny}]}")
        lines.append("  merged:")
        lines.append("    <<: *base")
    return "\n".join(lines) + "\n"


def gen_calls(r, n):
    t = datetime(2026, 3, 1, 11, 59, 0, tzinfo=timezone.utc)
    out = []
    for _ in range(n):
        t += timedelta(seconds=r.choice([0, 0, 1, 1, 2, 5, 10, 20, 40, 61, 300, 3600]) + r.random())
        rec = {"ts": t.strftime("%Y-%m-%dT%H:%M:%S.%fZ"), "server": r.choice(["s1", "s1", "s2"]),
               "tool": r.choice(TOOLS + [OTHER, "merged"])}
        x = r.random()
        if x < 0.05:
            rec["args"] = json.loads(r.choice(["[1,2]", "\"s\"", "5", "true"]))
        elif x < 0.08:
            # mcpsim reads a record without `args` as arguments not recorded; the gateway
            # always sees them, so the comparison sends an empty object.
            rec["args"] = {}
        else:
            args = {}
            for k in ARG_KEYS:
                if r.random() < 0.6:
                    v = json.loads(r.choice(ARG_VALUES))
                    if k == "o" and r.random() < 0.5:
                        v = {"x": json.loads(r.choice(ARG_VALUES))}
                    args[k] = v
            rec["args"] = args
        u = r.random()
        if u < 0.3:
            rec["upstream"] = "error"
        elif u < 0.4:
            rec["upstream"] = "tool_error"
        elif u < 0.9:
            rec["upstream"] = "ok"
        if r.random() < 0.5:
            rec["latency_ms"] = r.choice([0, 10, 500, 20000, 70000, 4000000])
        out.append(rec)
    return out


def run_harness(harness, policy, trace):
    p = subprocess.run([harness, policy, trace], capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError(f"harness failed on {policy}: {p.stderr}")
    lines = [json.loads(l) for l in p.stdout.split("\n") if l.strip()]
    if lines and "load_error" in lines[0]:
        return None, lines[0]["load_error"]
    return lines, None


def run_mcpsim(mcpsim, policy, trace):
    p = subprocess.run([mcpsim, "simulate", "--policy", policy, "--format", "jsonl", "--calls",
                        "all", "--dialect", "intercept", trace], capture_output=True, text=True)
    if p.returncode == 2:
        return None, p.stderr
    rows = [json.loads(l) for l in p.stdout.split("\n") if l.strip()]
    return rows, None


def gateway_view(row):
    """mcpsim's decision as the gateway would answer it."""
    if row["decision"] in ("deny", "throttle"):
        return ("deny", "[INTERCEPT POLICY DENIED] " + row["message"])
    return ("allow", None)


def compare(harness, mcpsim, policy, trace, n_calls, label, report):
    want, gerr = run_harness(harness, policy, trace)
    got, merr = run_mcpsim(mcpsim, policy, trace)
    if want is None and got is None:
        report["both_rejected"] += 1
        return 0
    if want is None:
        report["policy_disagreements"].append((label, "gateway rejects, mcpsim accepts", gerr))
        return 1
    if got is None:
        report["policy_disagreements"].append((label, "mcpsim rejects, gateway accepts", merr))
        return 1
    report["policies"] += 1
    bad = 0
    if len(got) != len(want):
        report["call_disagreements"].append((label, "row count", len(want), len(got)))
        return 1
    for i, (w, g) in enumerate(zip(want, got)):
        report["calls"] += 1
        report["gateway_" + w["decision"]] = report.get("gateway_" + w["decision"], 0) + 1
        report["mcpsim_" + g["decision"]] = report.get("mcpsim_" + g["decision"], 0) + 1
        gw = (w["decision"], w.get("message"))
        if w["decision"] == "forward":
            gw = ("allow", None)
            report["forwarded"] += 1
        if gw != gateway_view(g):
            bad += 1
            report["call_disagreements"].append((label, i + 1, gw, gateway_view(g), g["rule"]))
    return bad


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--harness", required=True)
    ap.add_argument("--mcpsim", required=True)
    ap.add_argument("--policies", type=int, default=1000)
    ap.add_argument("--calls", type=int, default=100)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--shipped", help="directory of the gateway's shipped policies")
    ap.add_argument("--keep", help="write failing cases here")
    ap.add_argument("--show", type=int, default=20)
    a = ap.parse_args()
    report = {"policies": 0, "calls": 0, "both_rejected": 0, "forwarded": 0,
              "policy_disagreements": [], "call_disagreements": []}
    work = tempfile.mkdtemp(prefix="intercept-fidelity-")
    r = random.Random(a.seed)
    cases = []
    if a.shipped:
        for name in sorted(os.listdir(a.shipped)):
            if name.endswith((".yaml", ".yml")):
                cases.append(("shipped:" + name, os.path.join(a.shipped, name)))
    def random_cases():
        i = 0
        while report["random_compared"] < a.policies:
            path = os.path.join(work, f"p{i}.yaml")
            with open(path, "w") as f:
                f.write(gen_policy(r))
            yield (f"random:{i}", path)
            i += 1

    report["random_compared"] = 0
    report["random_generated"] = 0
    import itertools
    for label, policy in itertools.chain(cases, random_cases()):
        calls = gen_calls(r, a.calls)
        if label.startswith("shipped:"):
            tools = read_tools(policy)
            for c in calls:
                c["tool"] = r.choice(tools + [OTHER])
        trace = policy + ".jsonl"
        with open(trace, "w") as f:
            for c in calls:
                f.write(json.dumps(c) + "\n")
        before = len(report["policy_disagreements"]) + len(report["call_disagreements"])
        compared_before = report["policies"]
        compare(a.harness, a.mcpsim, policy, trace, a.calls, label, report)
        if label.startswith("random:"):
            report["random_generated"] += 1
            # A policy both refuse, or one only one side refuses (a disagreement), ends here.
            if report["policies"] > compared_before:
                report["random_compared"] += 1
            elif report["policy_disagreements"] and report["policy_disagreements"][-1][0] == label:
                report["random_compared"] += 1
        after = len(report["policy_disagreements"]) + len(report["call_disagreements"])
        if after > before and a.keep:
            os.makedirs(a.keep, exist_ok=True)
            base = os.path.join(a.keep, label.replace(":", "_"))
            with open(policy) as src, open(base + ".yaml", "w") as dst:
                dst.write(src.read())
            with open(trace) as src, open(base + ".jsonl", "w") as dst:
                dst.write(src.read())
    pd, cd = report["policy_disagreements"], report["call_disagreements"]
    print(f"policies compared: {report['policies']} ({len(cases)} shipped, "
          f"{report['random_compared']} random of {report['random_generated']} generated; "
          f"{report['both_rejected']} rejected by both)")
    print(f"calls compared: {report['calls']} (forwarded unevaluated: {report['forwarded']})")
    kinds = sorted(k for k in report if k.startswith(("gateway_", "mcpsim_")) and k != "gateway_")
    print("decisions: " + ", ".join(f"{k} {report[k]}" for k in kinds))
    print(f"policy disagreements: {len(pd)}")
    print(f"call disagreements: {len(cd)}")
    for d in (pd + cd)[: a.show]:
        print("  ", d)
    sys.exit(0 if not pd and not cd else 1)


def read_tools(policy):
    tools = []
    with open(policy) as f:
        inside = False
        for line in f:
            if line.startswith("tools:"):
                inside = True
                continue
            if inside and line.startswith("  ") and not line.startswith("   ") and ":" in line:
                name = line.strip().rstrip(":").strip("\"'")
                if name and name != "*":
                    tools.append(name)
            elif inside and line.strip() and not line.startswith(" "):
                inside = False
    return tools or ["tool"]


if __name__ == "__main__":
    main()
