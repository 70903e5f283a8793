#!/usr/bin/env python3
"""What a user would do without mcpsim, on the same trace and policy.

    baseline.py duckdb  POLICY TRACE.jsonl   # fixed-window row_number() query in DuckDB
    baseline.py python  POLICY TRACE.jsonl   # a plain Python replay loop

Both print one line of decision counts (`allow=… deny=… throttle=…`) so the benchmark can
check them against mcpsim. Only what the benchmark policy uses is supported: per-tool and
`all_tools` limits with calendar windows, `default`, and rollback on upstream `error`.
"""

import json
import sys
from datetime import datetime

WINDOW_SECONDS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}


def load_policy(path):
    with open(path) as f:
        policy = json.load(f)
    tools = {}
    for name, rules in policy.get("tools", {}).items():
        tools[name] = [
            (l["counter"], WINDOW_SECONDS.get(l["window"], l["window"]), l["max"])
            for l in rules.get("limits", [])
        ]
    all_tools = [
        (l["counter"], WINDOW_SECONDS.get(l["window"], l["window"]), l["max"])
        for l in policy.get("all_tools", {}).get("limits", [])
    ]
    return policy["default"], tools, all_tools


def run_duckdb(policy_path, trace):
    """The stateless approximation: the n-th call of a (server, grant, tool, minute) bucket is
    throttled when n exceeds the tool's limit, or the n-th call of a (server, grant, minute)
    bucket when n exceeds the all_tools limit. It ignores that throttled calls consume
    nothing and that failed calls are rolled back, which is why it is only an approximation."""
    import duckdb

    default, tools, all_tools = load_policy(policy_path)
    (all_max,) = [m for (_, w, m) in all_tools if w == 60] or [None]
    limits = [(t, m) for t, ls in tools.items() for (_, w, m) in ls if w == 60]
    con = duckdb.connect()
    con.execute("create table limits(tool varchar, max_calls bigint)")
    con.executemany("insert into limits values (?, ?)", limits)
    con.execute("create table listed(tool varchar)")
    con.executemany("insert into listed values (?)", [(t,) for t in tools])
    query = f"""
        with calls as (
            select ts, server, "grant", tool, date_trunc('minute', ts) as minute
            from read_json(?, format = 'newline_delimited',
                           columns = {{ts: 'TIMESTAMP', server: 'VARCHAR', "grant": 'VARCHAR',
                                       tool: 'VARCHAR', upstream: 'VARCHAR'}})
        ),
        numbered as (
            select tool,
                   row_number() over (partition by server, "grant", tool, minute order by ts)
                       as n_tool,
                   row_number() over (partition by server, "grant", minute order by ts) as n_all
            from calls
        )
        select
            case
                when {'listed.tool is null' if default == 'deny' else 'false'} then 'deny'
                when n_tool > coalesce(limits.max_calls, n_tool) then 'throttle'
                when n_all > {all_max if all_max is not None else 'n_all'} then 'throttle'
                else 'allow'
            end as decision,
            count(*)
        from numbered
        left join limits using (tool)
        left join listed using (tool)
        group by decision
        order by decision
    """
    counts = dict(con.execute(query, [trace]).fetchall())
    return counts


def parse_ts(s):
    # fromisoformat accepts the trailing Z from Python 3.11 on.
    return datetime.fromisoformat(s).timestamp()


def run_python(policy_path, trace):
    """A straightforward replay loop with exact fixed-window semantics for this policy."""
    default, tools, all_tools = load_policy(policy_path)
    used = {}
    counts = {"allow": 0, "deny": 0, "throttle": 0}
    with open(trace) as f:
        for line in f:
            call = json.loads(line)
            tool = call["tool"]
            if tool not in tools and default == "deny":
                counts["deny"] += 1
                continue
            t = parse_ts(call["ts"])
            key = (call["server"], call.get("grant"))
            keys = []
            ok = True
            for counter, window, max_calls in tools.get(tool, []) + all_tools:
                k = (key, counter, int(t // window))
                if used.get(k, 0) + 1 > max_calls:
                    ok = False
                    break
                keys.append(k)
            if not ok:
                counts["throttle"] += 1
                continue
            counts["allow"] += 1
            if call.get("upstream") == "error":
                continue  # rolled back: a failed upstream call gives its reservation back
            for k in keys:
                used[k] = used.get(k, 0) + 1
    return counts


def main():
    if len(sys.argv) != 4 or sys.argv[1] not in ("duckdb", "python"):
        sys.exit(__doc__)
    mode, policy, trace = sys.argv[1:]
    counts = (run_duckdb if mode == "duckdb" else run_python)(policy, trace)
    print(" ".join(f"{k}={v}" for k, v in sorted(counts.items())))


if __name__ == "__main__":
    main()
