#!/usr/bin/env python3
"""Replay an mcpsim trace on Apache Spark with the decisions of one `mcpsim simulate` run.

    replay.py --policy P [--policy SERVER=P ...] --input PATH [--input PATH ...] --output DIR
              [--master URL] [--partitions N] [--calls changed|all|none] [--max-calls N]
              [--intercept-counters shared|per-server] [--simulate-arg ARG ...]

The trace (mcpsim call records, JSONL or Parquet; files, directories or globs) is split by the
key `mcpsim partition-key` derives from the policies, each part is sorted into time order and
replayed by the mcpsim binary, and the parts' results are put together:

    DIR/calls/          per-call decisions (Parquet): the columns of `simulate --format parquet`,
                        with `ts` as nanoseconds since the epoch (int64)
    DIR/parts/          each part's summary (`simulate --part-summary`)
    DIR/summary.json    `mcpsim merge` of the parts: the summary `simulate --format json` gives

The binary is `$MCPSIM`, else `target/release/mcpsim` of the repository holding this script.
See docs/scale-out.md for submitting to a cluster and for the limits. Exit codes: 0 ok, 1 the
`--fail-on` gate failed, 2 bad input or usage (the message names the file, line and field).
"""

import argparse
import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

START = time.monotonic()


def phase(what):
    """Say on standard error how long the job has run when a phase ends."""
    print(f"[{time.monotonic() - START:7.1f}s] {what}", file=sys.stderr, flush=True)

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# The name of the binary when spark-submit --files ships it.
SHIPPED = "mcpsim"
# The name of each part's trace on an executor; the binary names calls `PART:line`.
PART_TRACE = "part"


class JobError(Exception):
    """Bad input or usage: reported as `error: …`, exit 2."""


def parse_args(argv):
    p = argparse.ArgumentParser(
        prog="replay.py",
        description="Replay an mcpsim trace on Spark with the decisions of one simulate run.",
    )
    p.add_argument("--policy", action="append", required=True, metavar="[SERVER=]FILE[:DIALECT]")
    p.add_argument("--input", action="append", required=True, metavar="PATH",
                   help="JSONL or Parquet call records: a file, a directory or a glob")
    p.add_argument("--output", required=True, metavar="DIR")
    p.add_argument("--master", metavar="URL", help="Spark master (default: spark-submit's)")
    p.add_argument("--partitions", type=int, metavar="N",
                   help="parts to replay (default: Spark's default parallelism)")
    p.add_argument("--calls", choices=["changed", "all", "none"], default="changed")
    p.add_argument("--max-calls", type=int, default=20, metavar="N")
    p.add_argument("--fail-on", metavar="DECISIONS")
    p.add_argument("--max-failures", type=int, metavar="N")
    p.add_argument("--intercept-counters", choices=["shared", "per-server"])
    p.add_argument("--executor-binary", metavar="PATH",
                   help="the mcpsim binary's path on the executors, e.g. inside an archive given "
                        "to spark-submit --archives (default: the driver's, shipped by the job)")
    p.add_argument("--simulate-arg", action="append", default=[], metavar="ARG",
                   help="another `mcpsim simulate` argument for every part (repeatable), "
                        "e.g. --simulate-arg=--assume-approved")
    return p.parse_args(argv)


def binary():
    path = os.environ.get("MCPSIM") or os.path.join(REPO, "target", "release", "mcpsim")
    if not os.access(path, os.X_OK):
        raise JobError(f"no mcpsim binary at {path}: build it (cargo build --release) or set MCPSIM")
    return os.path.abspath(path)


def policy_file(spec):
    """The file of a `--policy` value, as mcpsim reads `[SERVER=]FILE[:DIALECT]`."""
    if os.path.exists(spec):
        return spec
    rest = spec
    for dialect in (":intercept", ":policylayer", ":json", ":yaml"):
        if spec.endswith(dialect) and len(spec) > len(dialect):
            rest = spec[: -len(dialect)]
    if os.path.exists(rest):
        return rest
    server, eq, file = rest.partition("=")
    return file if eq and server else rest


def simulate_args(args):
    """The arguments every part's `simulate` gets besides the policies and the trace."""
    out = ["--strict", "--calls", args.calls, "--max-calls", str(args.max_calls)]
    if args.fail_on:
        out += ["--fail-on", args.fail_on]
    if args.max_failures is not None:
        out += ["--max-failures", str(args.max_failures)]
    if args.intercept_counters:
        out += ["--intercept-counters", args.intercept_counters]
    return out + args.simulate_arg


def partition_key(mcpsim, args):
    cmd = [mcpsim, "partition-key"]
    for p in args.policy:
        cmd += ["--policy", p]
    if args.intercept_counters:
        cmd += ["--intercept-counters", args.intercept_counters]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode == 1:
        raise JobError(r.stderr.strip() + "; replay this trace on one machine (mcpsim simulate)")
    if r.returncode != 0:
        raise JobError(r.stderr.strip() or f"mcpsim partition-key exited {r.returncode}")
    return r.stdout.strip().split(",")


def expand_inputs(paths):
    """Input files in the order one `mcpsim simulate` run is given them: each argument in
    turn, a directory's or glob's files in path order. Remote URLs are passed to Spark as they are."""
    files = []
    for path in paths:
        if "://" in path:
            files.append(path)
        elif os.path.isdir(path):
            found = sorted(f for f in glob.glob(os.path.join(path, "**", "*"), recursive=True)
                           if os.path.isfile(f) and not os.path.basename(f).startswith(("_", ".")))
            if not found:
                raise JobError(f"{path}: no files in this directory")
            files += found
        elif os.path.exists(path):
            files.append(path)
        else:
            found = sorted(glob.glob(path))
            if not found:
                raise JobError(f"{path}: no such file, and no file matches it as a glob")
            files += found
    kinds = {input_kind(f) for f in files}
    if len(kinds) > 1:
        raise JobError("inputs mix JSONL and Parquet: give one kind per run")
    return files, kinds.pop()


def input_kind(path):
    if "://" in path:
        return "parquet" if path.rstrip("/").endswith(".parquet") else "jsonl"
    with open(path, "rb") as f:
        return "parquet" if f.read(4) == b"PAR1" else "jsonl"


# --- reading: every call with its file, line, timestamp and key ---------------------------------

def ts_nanos(F, ts):
    """Spark expression: mcpsim's reading of a `ts` text as nanoseconds since the epoch (RFC 3339
    with an offset and up to 9 fraction digits, or an epoch number whose magnitude gives the unit);
    null when it is neither."""
    rfc = r"^(\d{4}-\d{2}-\d{2})[Tt ](\d{2}:\d{2}:\d{2})(\.(\d{1,9}))?([Zz]|[+-]\d{2}:\d{2})$"
    date, time_, frac, off = (F.regexp_extract(ts, rfc, i) for i in (1, 2, 4, 5))
    is_rfc = ts.rlike(rfc)
    secs = F.unix_timestamp(F.concat(date, F.lit(" "), time_), "yyyy-MM-dd HH:mm:ss")
    sign = F.when(F.substring(off, 1, 1) == "-", -1).otherwise(1)
    off_secs = F.when(off.isin("Z", "z"), 0).otherwise(
        sign * (F.substring(off, 2, 2).cast("long") * 3600 + F.substring(off, 5, 2).cast("long") * 60))
    nanos = F.coalesce(F.rpad(frac, 9, "0").cast("long"), F.lit(0))
    from_rfc = (secs - off_secs) * 1_000_000_000 + F.when(frac == "", 0).otherwise(nanos)
    num = ts.cast("decimal(38,9)")
    mag = F.abs(num)
    from_num = F.when(mag < 1e11, num * 1_000_000_000).when(mag < 1e14, num * 1_000_000) \
        .when(mag < 1e17, num * 1000).otherwise(num)
    from_num = F.round(from_num, 0).cast("long")
    return F.when(is_rfc, from_rfc).when(ts.rlike(r"^-?\d+(\.\d+)?([eE][+-]?\d+)?$"), from_num)


def with_lines(spark, F, df, files):
    """Add `file_idx` (the file's place among the inputs) and `line` (1-based, in the file)
    to rows read from `files`: within a file, Spark's splits keep file order, so a row's line is
    the rows of the file in earlier Spark partitions plus its place in its own."""
    df = df.withColumn("_uri", F.input_file_name()).withColumn("_pid", F.spark_partition_id()) \
        .withColumn("_mono", F.monotonically_increasing_id())
    spans = df.groupBy("_uri", "_pid").agg(
        F.count(F.lit(1)), F.min("_mono"), F.max("_mono")).collect()
    index = {to_uri(f): i for i, f in enumerate(files)}
    rows, before = [], {}
    for uri, pid, n, first, last in sorted(spans, key=lambda r: (r[0], r[1])):
        if uri not in index:
            raise JobError(f"Spark read a file the inputs do not name: {uri}")
        if last - first + 1 != n:
            raise JobError(f"{uri}: a Spark partition holds the file's rows out of file order")
        done = before.get(uri, 0)
        rows.append((uri, pid, index[uri], done + 1 - first))
        before[uri] = done + n
    offsets = spark.createDataFrame(rows, "_uri string, _pid int, file_idx int, _offset bigint")
    df = df.join(F.broadcast(offsets), ["_uri", "_pid"])
    return df.withColumn("line", F.col("_offset") + F.col("_mono")) \
        .drop("_uri", "_pid", "_mono", "_offset")


def to_uri(path):
    if "://" in path:
        return path
    from pathlib import Path
    return Path(path).resolve().as_uri()


def read_calls(spark, F, files, kind):
    """Rows `file_idx, line, ts_ns, server, grant, session` plus the record: `value` (a JSONL
    line) or the Parquet columns."""
    if kind == "jsonl":
        df = with_lines(spark, F, spark.read.text(files), files)
        df = df.filter(F.trim(F.col("value")) != "")
        # One JSON parse a line for the four fields.
        names = ("ts", "server", "grant", "session")
        df = df.select("*", F.json_tuple("value", *names).alias(*[f"_f_{n}" for n in names]))
        cols = {name: F.col(f"_f_{name}") for name in names}
    else:
        df = with_lines(spark, F, spark.read.parquet(*files), files)
        types = dict(df.dtypes)
        if "ts" not in types:
            raise JobError(f"{files[0]}: no `ts` column")
        ts = F.col("ts")
        if types["ts"].startswith("timestamp"):
            ts = (F.unix_micros(ts) * 1000).cast("string")
        cols = {"ts": ts.cast("string")}
        for name in ("server", "grant", "session"):
            cols[name] = F.col(name).cast("string") if name in types else F.lit(None).cast("string")
    df = df.withColumn("ts_ns", ts_nanos(F, cols["ts"]))
    for name in ("server", "grant", "session"):
        df = df.withColumn(f"_key_{name}", F.coalesce(cols[name], F.lit("")))
    return df.drop(*[c for c in df.columns if c.startswith("_f_")])


# --- replaying one part ---------------------------------------------------------------------

def replay_part(ctx):
    """The function each Spark partition runs (`mapInArrow`): write the part's records in
    time order, replay them with `mcpsim simulate --part-summary`, and hand back the per-call
    rows with their place in the whole trace, then the part's summary."""

    def run(batches):
        import pyarrow as pa
        from pyspark import SparkFiles

        mcpsim = ctx["executor_binary"]
        if mcpsim is None:
            mcpsim = SparkFiles.get(ctx["shipped_as"])
            if not os.access(mcpsim, os.X_OK):
                os.chmod(mcpsim, 0o755)
        mcpsim = os.path.abspath(mcpsim)
        # The part's files are removed before anything is handed back: a generator Spark
        # stops consuming (a task killed, a worker ended) never reaches a `finally` of its own.
        scratch = ctx["scratch"] if os.path.isdir(ctx["scratch"]) else None
        work = tempfile.mkdtemp(prefix="mcpsim-part-", dir=scratch)
        try:
            done = replay_in(work, mcpsim, batches)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        if done is None:
            return
        rows, summary = done
        for b in rows.to_batches(max_chunksize=65536):
            yield b
        last = {f.name: [None] for f in ctx["row_schema"]}
        last["summary"] = [json.dumps(summary)]
        yield pa.RecordBatch.from_pydict(last, schema=ctx["out_schema"])

    def replay_in(work, mcpsim, batches):
        """Replays one part in `work`; gives its per-call rows (in memory) and its summary,
        or None for a part without calls."""
        import pyarrow as pa
        import pyarrow.compute as pc
        import pyarrow.parquet as pq

        for name, text in ctx["policies"]:
            if os.path.isabs(name):
                continue  # checked on the driver to be readable here too
            path = os.path.join(work, name)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "wb") as f:
                f.write(text)
        trace = os.path.join(work, PART_TRACE)
        seqs, file_idx, lines, stamps = [], [], [], []
        per_file = [0] * len(ctx["files"])
        writer = None
        with open(trace, "wb") as out:
            for batch in batches:
                if batch.num_rows == 0:
                    continue
                seqs.append(batch.column("seq"))
                file_idx.append(batch.column("file_idx"))
                lines.append(batch.column("line"))
                stamps.append(batch.column("ts_ns"))
                if ctx["kind"] == "jsonl":
                    for v in batch.column("value").to_pylist():
                        out.write(v.encode())
                        out.write(b"\n")
                else:
                    records = batch.drop_columns(
                        ["seq", "file_idx", "line", "ts_ns", "_key_server", "_key_grant",
                         "_key_session"])
                    if writer is None:
                        writer = pq.ParquetWriter(out, records.schema)
                    writer.write_batch(records)
            if writer is not None:
                writer.close()
        if not seqs:
            return None
        seq, fidx, line, ts_ns = (pa.concat_arrays(c) for c in (seqs, file_idx, lines, stamps))
        for i in fidx.to_pylist():
            per_file[i] += 1
        rows_path = os.path.join(work, "rows.parquet")
        summary_path = os.path.join(work, "summary.json")
        cmd = [mcpsim, "simulate", *ctx["policy_args"], trace, "--format", "parquet",
               "--output", rows_path, "--part-summary", summary_path, *ctx["simulate_args"]]
        r = subprocess.run(cmd, cwd=work, capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError("MCPSIM_PART_FAILED " + json.dumps(
                {"stderr": origins_in(r.stderr, trace, fidx, line, ctx["files"]),
                 "code": r.returncode}))
        origin_of = lambda k: f"{ctx['files'][fidx[k - 1].as_py()]}:{line[k - 1].as_py()}"  # noqa: E731
        rows = pq.read_table(rows_path)
        local = pc.cast(pc.utf8_slice_codeunits(rows.column("origin"), len(trace) + 1), pa.int64())
        at = pc.subtract(local, 1)
        names = pa.array(ctx["files"], pa.string())
        origin = pc.binary_join_element_wise(
            pc.take(names, pc.take(fidx, at)), pc.cast(pc.take(line, at), pa.string()), ":")
        rows = rows.set_column(rows.schema.get_field_index("index"), "index", pc.take(seq, at))
        rows = rows.set_column(rows.schema.get_field_index("origin"), "origin", origin)
        ts = rows.column("ts").cast(pa.int64())
        differ = pc.indices_nonzero(pc.not_equal(ts, pc.take(ts_ns, at)))
        if len(differ):
            k = pc.take(local, differ)[0].as_py()
            raise RuntimeError("MCPSIM_PART_FAILED " + json.dumps(
                {"stderr": f"{origin_of(k)}: field `ts`: the job and mcpsim read this "
                           "timestamp differently (replay this trace on one machine)",
                 "code": 2}))
        rows = rows.set_column(rows.schema.get_field_index("ts"), "ts", ts)
        rows = rows.cast(ctx["row_schema"])
        rows = rows.append_column("summary", pa.nulls(rows.num_rows, pa.string()))
        with open(summary_path) as f:
            summary = json.load(f)
        for call in summary["calls"] + (summary.get("fidelity") or {}).get("examples", []):
            k = int(call["origin"].rsplit(":", 1)[1])
            call["index"] = seq[k - 1].as_py()
            call["origin"] = origin_of(k)
        # Files are listed in the order of the inputs, with this part's calls of each.
        summary["input"]["files"] = [
            {"name": name, "format": ctx["kind"], "calls": n}
            for name, n in zip(ctx["files"], per_file)]
        return rows, summary

    return run


def origins_in(text, trace, fidx, line, files):
    """mcpsim's message with the part's `PART:line` references turned into the input's."""
    import re

    def sub(m):
        k = int(m.group(1))
        if 1 <= k <= len(fidx):
            return f"{files[fidx[k - 1].as_py()]}:{line[k - 1].as_py()}"
        return m.group(0)
    return re.sub(re.escape(trace) + r":(\d+)", sub, text)


ROW_FIELDS = [
    ("index", "int64"), ("ts", "int64"), ("server", "string"), ("grant", "string"),
    ("session", "string"), ("tool", "string"), ("id", "string"), ("origin", "string"),
    ("recorded", "string"), ("upstream", "string"), ("args", "string"), ("decision", "string"),
    ("rule", "string"), ("message", "string"), ("counter", "string"), ("counter_key", "string"),
    ("window_start", "string"), ("retry_after", "string"), ("used", "double"), ("max", "double"),
    ("increment", "double"), ("approval_required", "bool"),
]
SPARK_TYPES = {"int64": "bigint", "string": "string", "double": "double", "bool": "boolean"}


def main(argv):
    args = parse_args(argv)
    mcpsim = binary()
    key = partition_key(mcpsim, args)
    files, kind = expand_inputs(args.input)
    policies = []
    for spec in args.policy:
        name = policy_file(spec)
        if ".." in name.split(os.sep):
            raise JobError(f"{name}: give policies by a path below the working directory "
                           "(or an absolute path every executor can read)")
        try:
            with open(name, "rb") as f:
                policies.append((name, f.read()))
        except OSError as e:
            raise JobError(f"{name}: {e.strerror}") from None

    import pyarrow as pa
    from pyspark.sql import SparkSession, functions as F

    # Python workers need pyarrow: by default they run the driver's interpreter.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)

    builder = SparkSession.builder.appName("mcpsim-replay") \
        .config("spark.sql.session.timeZone", "UTC") \
        .config("spark.driver.memory", os.environ.get("MCPSIM_SPARK_DRIVER_MEMORY", "2g")) \
        .config("spark.sql.execution.arrow.maxRecordsPerBatch", "65536") \
        .config("spark.ui.showConsoleProgress", "false") \
        .config("spark.sql.legacy.parquet.nanosAsLong", "true")
    if args.master:
        builder = builder.master(args.master)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    shipped = {os.path.basename(f) for f in spark.sparkContext.getConf().get("spark.files", "").split(",")}
    shipped_as = SHIPPED
    if args.executor_binary is None and SHIPPED not in shipped:
        spark.sparkContext.addFile(mcpsim)
        shipped_as = os.path.basename(mcpsim)
    spark.conf.set("spark.sql.shuffle.partitions",
                   str(args.partitions or spark.sparkContext.defaultParallelism))
    # Parts work in folders under this one where it exists (the driver's machine), so that
    # the folders of tasks Spark kills (another part failed) go when the job ends.
    scratch = tempfile.mkdtemp(prefix="mcpsim-job-")
    try:
        return run_job(spark, F, pa, args, mcpsim, key, files, kind, policies, shipped_as,
                       scratch)
    finally:
        spark.stop()
        shutil.rmtree(scratch, ignore_errors=True)


def run_job(spark, F, pa, args, mcpsim, key, files, kind, policies, shipped_as, scratch):
    phase("Spark started")
    df = read_calls(spark, F, files, kind)
    phase("lines numbered")
    # The place of every call in the whole trace, as one run numbers them: time order, then
    # input order, then line order. A range-partitioned sort, then each Spark partition's
    # first number from the sizes of the ones before it.
    # Read and parsed once: the sort samples its input, then reads it again.
    parsed = df.persist()
    df = parsed.orderBy("ts_ns", "file_idx", "line") \
        .withColumn("_pid", F.spark_partition_id()) \
        .withColumn("_mono", F.monotonically_increasing_id()).persist()
    sizes = sorted(df.groupBy("_pid").agg(
        F.count(F.lit(1)), F.min("_mono"), F.count_if(F.col("ts_ns").isNull())).collect())
    parsed.unpersist()
    if any(bad for *_, bad in sizes):
        bad = df.filter(F.col("ts_ns").isNull()).select("file_idx", "line") \
            .orderBy("file_idx", "line").first()
        raise JobError(f"{files[bad[0]]}:{bad[1]}: field `ts`: missing, or neither RFC 3339 "
                       "nor an epoch number")
    phase("sorted into time order")
    starts, seen = [], 0
    for pid, n, first, _ in sizes:
        starts.append((pid, seen - first + 1))
        seen += n
    if "session" in key:
        # Session counters are kept per (server, grant, session) (policy.md §1): a session id
        # under several grants is several sessions, and the split stays exact. Say so.
        spanning = df.groupBy("_key_server", "_key_session") \
            .agg(F.countDistinct("_key_grant").alias("grants")).filter("grants > 1").count()
        if spanning:
            print(f"note: {spanning} session ids span grants; mcpsim keeps a session's counters "
                  "per (server, grant, session), so they replay as separate sessions, as on one "
                  "machine", file=sys.stderr)
    starts = spark.createDataFrame(starts, "_pid int, _start bigint")
    df = df.join(F.broadcast(starts), "_pid").withColumn("seq", F.col("_start") + F.col("_mono")) \
        .drop("_pid", "_mono", "_start")
    parts = args.partitions or spark.sparkContext.defaultParallelism
    df = df.repartition(parts, *[F.col(f"_key_{k}") for k in key]).sortWithinPartitions("seq")
    if kind == "jsonl":
        df = df.select("seq", "file_idx", "line", "ts_ns", "value")

    arrow = {"int64": pa.int64(), "string": pa.string(), "double": pa.float64(), "bool": pa.bool_()}
    row_schema = pa.schema([(n, arrow[t]) for n, t in ROW_FIELDS])
    out_schema = row_schema.append(pa.field("summary", pa.string()))
    spark_schema = ", ".join(f"`{n}` {SPARK_TYPES[t]}" for n, t in ROW_FIELDS) + ", summary string"
    policy_args = [a for p in args.policy for a in ("--policy", p)]
    ctx = {
        "files": files, "kind": kind, "policies": policies, "policy_args": policy_args,
        "simulate_args": simulate_args(args), "row_schema": row_schema, "out_schema": out_schema,
        "executor_binary": args.executor_binary, "shipped_as": shipped_as, "scratch": scratch,
    }
    out = df.mapInArrow(replay_part(ctx), spark_schema).persist()
    os.makedirs(args.output, exist_ok=True)
    try:
        out.filter(F.col("summary").isNull()).drop("summary") \
            .write.mode("overwrite").parquet(os.path.join(args.output, "calls"))
        phase("parts replayed, per-call decisions written")
        summaries = [r[0] for r in out.filter(F.col("summary").isNotNull()).select("summary").collect()]
    except Exception as e:  # a part's replay failed: say what mcpsim said
        text = str(e)
        # The worker's traceback quotes the `raise` line too; the detail is the JSON object.
        marker = text.find("MCPSIM_PART_FAILED {")
        if marker < 0:
            raise
        detail = json.JSONDecoder().raw_decode(text[marker + len("MCPSIM_PART_FAILED "):])[0]
        raise JobError(detail["stderr"].strip().removeprefix("error: ")) from None
    parts_dir = os.path.join(args.output, "parts")
    shutil.rmtree(parts_dir, ignore_errors=True)
    os.makedirs(parts_dir)
    names = []
    for i, text in enumerate(sorted(summaries)):
        name = os.path.join(parts_dir, f"part-{i:05}.json")
        with open(name, "w") as f:
            f.write(text)
        names.append(name)
    r = subprocess.run([mcpsim, "merge", *names, "--format", "json",
                        "--output", os.path.join(args.output, "summary.json")],
                       capture_output=True, text=True)
    sys.stderr.write(r.stderr)
    if r.returncode == 2:
        raise JobError("mcpsim merge failed")
    print(f"{len(names)} parts replayed, split by {','.join(key)}: "
          f"{os.path.join(args.output, 'summary.json')}, per-call decisions in "
          f"{os.path.join(args.output, 'calls')}", file=sys.stderr)
    return r.returncode


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except JobError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
