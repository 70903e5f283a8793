#!/usr/bin/env python3
"""What a user would do without mcpsim, on the same trace and policy.

    baseline.py duckdb  POLICY TRACE.jsonl   # fixed-window row_number() query in DuckDB
    baseline.py python  POLICY TRACE.jsonl   # a plain Python replay loop
    baseline.py read    TRACE.parquet        # DuckDB reading the columns of the calls, no replay

Both print one line of decision counts (`allow=… deny=… throttle=…`) so the benchmark can
check them against mcpsim. Only what the benchmark policies (`bench.json`, `realistic.json`)
use is supported, and anything else is refused: `default`, `hide`, `require` and `deny_if`
with the operators `eq`, `neq`, `in`, `not_in`, `regex` and `exists`, per-tool and `all_tools`
limits with fixed windows (named or in seconds) in any scope, and rollback on upstream
`error`.
"""

import json
import re
import sys
from datetime import datetime

WINDOW_SECONDS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}
SCOPE_COLUMNS = {
    "grant": ["server", "grant"],
    "session": ["server", "grant", "session"],
    "server": ["server"],
    "global": [],
}
OPS = {"eq", "neq", "in", "not_in", "regex", "exists"}


class Limit:
    def __init__(self, raw):
        unsupported = set(raw) - {"counter", "window", "max", "scope", "algorithm"}
        if unsupported or raw.get("algorithm", "fixed") != "fixed":
            sys.exit(f"baseline.py: unsupported limit {raw}")
        self.counter = raw["counter"]
        self.window = WINDOW_SECONDS.get(raw["window"], raw["window"])
        self.max = raw["max"]
        self.scope = raw.get("scope", "grant")


class Policy:
    def __init__(self, path):
        with open(path) as f:
            doc = json.load(f)
        self.default = doc["default"]
        self.hide = set(doc.get("hide", []))
        self.tools = {}
        for name, rules in doc.get("tools", {}).items():
            unsupported = set(rules) - {"require", "deny_if", "limits", "on_deny"}
            if unsupported:
                sys.exit(f"baseline.py: tool {name}: unsupported {sorted(unsupported)}")
            for p in rules.get("require", []) + rules.get("deny_if", []):
                if p["op"] not in OPS:
                    sys.exit(f"baseline.py: tool {name}: unsupported operator {p['op']}")
            self.tools[name] = {
                "require": rules.get("require", []),
                "deny_if": rules.get("deny_if", []),
                "limits": [Limit(l) for l in rules.get("limits", [])],
            }
        self.all_tools = [Limit(l) for l in doc.get("all_tools", {}).get("limits", [])]

    def limits(self):
        """(limit, tools it applies to, or None for every tool), one per counter."""
        seen = {}
        for l in self.all_tools:
            seen[l.counter] = (l, None)
        for name, rules in self.tools.items():
            for l in rules["limits"]:
                seen.setdefault(l.counter, (l, set()))[1].add(name)
        return list(seen.values())


# --- the exact replay ------------------------------------------------------------------------

MISSING = object()


def lookup(args, path):
    value = args
    for key in path.split(".")[1:]:
        if not isinstance(value, dict) or key not in value:
            return MISSING
        value = value[key]
    return value


def same(a, b):
    # Numbers by value, everything else exactly (a boolean is not a number).
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    return a == b


def holds(pred, args):
    value = lookup(args, pred["path"])
    op, want = pred["op"], pred["value"]
    if op == "exists":
        return (value is not MISSING and value is not None) == want
    if value is MISSING:
        return False
    if op == "eq":
        return same(value, want)
    if op == "neq":
        return not same(value, want)
    if op == "in":
        return any(same(value, w) for w in want)
    if op == "not_in":
        return not any(same(value, w) for w in want)
    return isinstance(value, str) and re.search(want, value) is not None  # regex


def parse_ts(s):
    # fromisoformat accepts the trailing Z from Python 3.11 on.
    return datetime.fromisoformat(s).timestamp()


def run_python(policy_path, trace):
    """A straightforward replay loop with the exact fixed-window semantics: the policy's steps
    in order, throttled calls consume nothing, upstream errors give their charge back."""
    policy = Policy(policy_path)
    used = {}
    counts = {"allow": 0, "deny": 0, "throttle": 0}
    with open(trace) as f:
        for line in f:
            call = json.loads(line)
            tool = call["tool"]
            rules = policy.tools.get(tool)
            if tool in policy.hide or "*" in policy.hide:
                counts["deny"] += 1
                continue
            if rules is None and policy.default == "deny":
                counts["deny"] += 1
                continue
            if rules is not None:
                args = call.get("args") or {}
                if not all(holds(p, args) for p in rules["require"]) or any(
                    holds(p, args) for p in rules["deny_if"]
                ):
                    counts["deny"] += 1
                    continue
            limits = (rules["limits"] if rules else []) + policy.all_tools
            keys, throttled = [], False
            t = parse_ts(call["ts"]) if limits else 0
            for l in limits:
                scope = tuple(call.get(c) for c in SCOPE_COLUMNS[l.scope])
                k = (l.counter, scope, int(t // l.window))
                if used.get(k, 0) + 1 > l.max:
                    throttled = True  # all or nothing: the call consumes nothing
                    break
                keys.append(k)
            if throttled:
                counts["throttle"] += 1
                continue
            counts["allow"] += 1
            if call.get("upstream") == "error":
                continue  # rolled back: a failed upstream call gives its charge back
            for k in keys:
                used[k] = used.get(k, 0) + 1
    return counts


# --- the DuckDB query ------------------------------------------------------------------------


def quote(s):
    return "'" + str(s).replace("'", "''") + "'"


def ident(s):
    return '"' + s.replace('"', '""') + '"'


def predicate_sql(pred):
    """The predicate as SQL on the `args` JSON column; a missing argument does not hold."""
    path = "$" + "".join("." + ident(k) for k in pred["path"].split(".")[1:])
    text = f"json_extract_string(args, {quote(path)})"
    op, want = pred["op"], pred["value"]
    if op == "exists":
        present = f"(json_type(args, {quote(path)}) is not null and json_type(args, {quote(path)}) <> 'NULL')"
        return present if want else f"(not {present})"
    if isinstance(want, list):
        listed = ", ".join(quote(w) for w in want)
    if op == "eq":
        sql = f"{text} = {quote(want)}"
    elif op == "neq":
        sql = f"{text} <> {quote(want)}"
    elif op == "in":
        sql = f"{text} in ({listed})"
    elif op == "not_in":
        sql = f"{text} not in ({listed})"
    else:
        sql = f"regexp_matches({text}, {quote(want)})"
    return f"coalesce({sql}, false)"


def bucket_sql(window):
    named = {v: k for k, v in WINDOW_SECONDS.items()}
    if window in named:
        return f"date_trunc('{named[window]}', ts)"
    return f"floor(epoch(ts) / {window})"


def duckdb_query(policy):
    """The stateless approximation a user would write: a call is denied by the policy's
    stateless steps (hidden, unlisted, `require`, `deny_if`); otherwise it is throttled when
    its number among the calls not denied of its (scope, window) bucket exceeds a limit. Limits
    of one window and scope that each belong to one tool share one `row_number()` partitioned
    by tool. It counts throttled calls against the budget and ignores rollback of failed calls,
    which is why it is only an approximation."""
    deny = []
    if policy.hide:
        if "*" in policy.hide:
            deny.append("true")
        else:
            deny.append(f"tool in ({', '.join(quote(t) for t in policy.hide)})")
    if policy.default == "deny":
        listed = ", ".join(quote(t) for t in policy.tools) or "null"
        deny.append(f"tool not in ({listed})")
    for name, rules in policy.tools.items():
        preds = [f"not {predicate_sql(p)}" for p in rules["require"]]
        preds += [predicate_sql(p) for p in rules["deny_if"]]
        if preds:
            deny.append(f"(tool = {quote(name)} and ({' or '.join(preds)}))")
    denied = " or ".join(deny) or "false"

    numbered, throttled = [], []
    own = {}  # (window, scope) -> {tool: max}, for counters of one tool
    for l, tools in policy.limits():
        if tools is not None and len(tools) == 1:
            (tool,) = tools
            group = own.setdefault((l.window, l.scope), {})
            if tool in group:
                sys.exit(f"baseline.py: {tool} has two limits of one window and scope")
            group[tool] = l.max
            continue
        n = f"n{len(numbered)}"
        keys = ["denied"] + [ident(c) for c in SCOPE_COLUMNS[l.scope]] + [bucket_sql(l.window)]
        over = f"{n} > {l.max}"
        if tools is not None:
            applies = f"tool in ({', '.join(quote(t) for t in sorted(tools))})"
            keys.append(applies)
            over = f"({applies} and {over})"
        numbered.append(f"row_number() over (partition by {', '.join(keys)} order by ts) as {n}")
        throttled.append(over)
    for (window, scope), group in own.items():
        n = f"n{len(numbered)}"
        keys = ["denied"] + [ident(c) for c in SCOPE_COLUMNS[scope]] + ["tool", bucket_sql(window)]
        numbered.append(f"row_number() over (partition by {', '.join(keys)} order by ts) as {n}")
        cases = " ".join(f"when {quote(t)} then {m}" for t, m in group.items())
        throttled.append(f"coalesce({n} > case tool {cases} end, false)")

    columns = {"ts": "TIMESTAMP", "server": "VARCHAR", "grant": "VARCHAR", "tool": "VARCHAR"}
    if any(l.scope == "session" for l, _ in policy.limits()):
        columns["session"] = "VARCHAR"
    if any(r["require"] or r["deny_if"] for r in policy.tools.values()):
        columns["args"] = "JSON"
    spec = ", ".join(f"{ident(c)}: '{t}'" for c, t in columns.items())
    select = ", ".join(ident(c) for c in columns)
    return f"""
        with calls as (
            select {select}, ({denied}) as denied
            from read_json(?, format = 'newline_delimited', columns = {{{spec}}})
        ),
        numbered as (
            select denied, tool{''.join(', ' + n for n in numbered)}
            from calls
        )
        select
            case
                when denied then 'deny'
                when {' or '.join(throttled) or 'false'} then 'throttle'
                else 'allow'
            end as decision,
            count(*)
        from numbered
        group by decision
        order by decision
    """


def run_duckdb(policy_path, trace):
    import duckdb

    query = duckdb_query(Policy(policy_path))
    return dict(duckdb.connect().execute(query, [trace]).fetchall())


def run_read(trace):
    """The least any replay of a Parquet trace reads: every row's time, server, grant and tool,
    and its arguments (a row whose arguments are not an object is no call; here only their
    first character is looked at). No decision is made: a floor for reading the file, not a
    baseline to beat."""
    import time

    import duckdb

    start = time.perf_counter()
    rows, not_objects = (
        duckdb.connect()
        .execute(
            """
            select count(*), count(*) filter (where left(args, 1) <> '{'),
                max(ts), max(server), max(grant), max(tool)
            from read_parquet(?)
            """,
            [trace],
        )
        .fetchone()[:2]
    )
    seconds = time.perf_counter() - start
    return {"rows": rows, "not_objects": not_objects, "query_seconds": f"{seconds:.3f}"}


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "sql":  # print the query
        print(duckdb_query(Policy(sys.argv[2])))
        return
    if len(sys.argv) == 3 and sys.argv[1] == "read":
        counts = run_read(sys.argv[2])
        print(" ".join(f"{k}={v}" for k, v in counts.items()))
        return
    if len(sys.argv) != 4 or sys.argv[1] not in ("duckdb", "python"):
        sys.exit(__doc__)
    mode, policy, trace = sys.argv[1:]
    counts = (run_duckdb if mode == "duckdb" else run_python)(policy, trace)
    print(" ".join(f"{k}={v}" for k, v in sorted(counts.items())))


if __name__ == "__main__":
    main()
