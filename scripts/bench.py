#!/usr/bin/env python3
"""scripts/bench.py -- spate's benchmark: the five measurements of the
performance issue, each beside its target and a peer figure from the same run,
in one table. scripts/bench installs what is missing, builds, and runs this.

  1. throughput  the whole streaming query (--trigger available-now, 2
                 executors: planning, dispatch, partial aggregation, merge
                 and the LMDB commit) on ~1 GB of gen-activity data, for the
                 headline query and for a 5-aggregate GROUP BY gt, Model,
                 beside `wc -l` on the same files (target: at most 2x) and
                 DuckDB with 2 threads on the same query (target: faster)
  2. per core    one task in-process (task-bench) over one 64 MB file: GB/s
                 (target: 1 GB/s), and instructions per byte (callgrind over
                 a 16 MB slice; perf stat where the machine supports it)
  3. latency     files of 1,000 lines renamed into the source 20 times a
                 second under the default trigger: rename -> committed, p50
                 (target < 20 ms) and p99 (< 100 ms), with a histogram
  4. restart     spate run on a checkpoint holding 1,000,000 groups, one new
                 file: process start -> that batch committed (< 200 ms)
  5. flat costs  a batch touching ~1,000 groups committed on a state of 10M
                 groups (--quick: 1M) vs on an empty state (within 2x), and
                 a trigger planned with 100,000 files already processed vs
                 with 100 (within 2x)

Every answer is checked against an independent computation: the row count
of `wc -l` (less blank lines), DuckDB's result when DuckDB is there, a
python3 json reference over a 16 MB sample, and the checkpoint's figures
against what the files hold. Exit status: 0 every answer right, 1 a wrong
answer (or spate failing), 2 bad usage. Timings never fail it: shared
machines cannot hold them steady; the table prints the ratios.

Generated data, DuckDB and prebuilt checkpoints are cached in --dir, keyed
by what made them, so a rerun only measures.
"""

import argparse
import glob
import json
import math
import os
import re
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import time

SCHEMA = ("Arrival_Time BIGINT, Creation_Time BIGINT, Device STRING, Index BIGINT, Model STRING, "
          "User STRING, gt STRING, x DOUBLE, y DOUBLE, z DOUBLE")
Q1 = "SELECT gt, count(*) AS count FROM activity GROUP BY gt"
Q2 = "SELECT gt, Model, count(*), sum(x), min(x), max(x), avg(x) FROM activity GROUP BY gt, Model"
QS = "SELECT Device, Index, count(*) AS n FROM activity GROUP BY Device, Index"
DUCK_COLS = ("{'Arrival_Time':'BIGINT','Creation_Time':'BIGINT','Device':'VARCHAR','Index':'BIGINT',"
             "'Model':'VARCHAR','User':'VARCHAR','gt':'VARCHAR','x':'DOUBLE','y':'DOUBLE','z':'DOUBLE'}")
REL_TOL = 1e-9
CKPT_FORMAT = 2  # storage/ckpt.h's CKPT_FORMAT_VERSION: cached checkpoints are rebuilt when it changes
MEASUREMENTS = ["throughput", "percore", "latency", "restart", "flat"]

DUCK_SCRIPT = r"""
// Written by scripts/bench.py: runs the bench's queries in DuckDB, in-process,
// and times each query alone (instance start-up and node's are not counted).
import { DuckDBInstance } from '@duckdb/node-api';
const cols = "@COLS@"; // the activity schema, as bench.py's --schema gives spate
const [dir, threads, reps, ...sqls] = process.argv.slice(2);
const inst = await DuckDBInstance.create(':memory:');
const con = await inst.connect();
await con.run(`SET threads=${threads}`);
const src = `read_json('${dir}/part-*.json', format='newline_delimited', columns=${cols})`;
const ver = (await con.runAndReadAll('SELECT version() AS v')).getRowObjectsJson()[0].v;
const out = [];
for (const q of sqls) {
  const sql = q.replace('FROM activity', `FROM ${src}`);
  let best = Infinity, rows = null;
  for (let i = 0; i < +reps; i++) {
    const t0 = process.hrtime.bigint();
    const r = await con.runAndReadAll(sql);
    const t = Number(process.hrtime.bigint() - t0) / 1e9;
    if (t < best) best = t;
    rows = r.getRowsJson();
  }
  out.push({ sql, best, rows });
}
console.log(JSON.stringify({ version: ver, results: out }));
"""


def say(msg):
    sys.stderr.write(f"\033[1m==> {msg}\033[0m\n")
    sys.stderr.flush()


class Wrong(Exception):
    """A wrong answer."""


class Row:
    def __init__(self, num, name, figure, target, peer="", ratio="", verdict="", data="", cmd=""):
        self.num, self.name, self.figure, self.target = num, name, figure, target
        self.peer, self.ratio, self.verdict, self.data, self.cmd = peer, ratio, verdict, data, cmd


def fmt_s(s):
    return f"{s:.3f} s" if s < 10 else f"{s:.1f} s"


def fmt_ms(ms):
    if ms is None or (isinstance(ms, float) and math.isnan(ms)):
        return "n/a"
    return f"{ms:.1f} ms" if ms < 100 else f"{ms:.0f} ms"


def verdict(ok):
    return "PASS" if ok else "MISS"


def close(a, b, tol=REL_TOL):
    if a is None or b is None:
        return a is None and b is None
    a, b = float(a), float(b)
    if a == b:
        return True
    return abs(a - b) <= tol * max(abs(a), abs(b))


def median(xs):
    return statistics.median(xs) if xs else float("nan")


class Bench:
    def __init__(self, a):
        self.a = a
        self.quick = a.quick
        self.root = os.getcwd()
        self.dir = os.path.abspath(a.dir)
        self.spate = os.path.abspath(a.spate)
        bdir = os.path.dirname(os.path.dirname(self.spate))
        self.gen = os.path.abspath(a.gen or os.path.join(bdir, "scripts/src/gen-activity"))
        self.task_bench = os.path.abspath(a.task_bench or os.path.join(bdir, "scripts/src/task-bench"))
        self.lat_bench = os.path.abspath(a.latency_bench or os.path.join(bdir, "scripts/src/latency-bench"))
        self.runs = a.runs or (2 if self.quick else 3)
        self.trials = a.trials or (5 if self.quick else 9)
        self.size = a.size or ("200M" if self.quick else "1G")
        self.rows = []
        self.wrong = []
        self.notes = []
        self.extra = []          # lines printed after the table (histogram, details)
        self.t_setup = 0.0       # seconds spent generating data and building caches
        os.makedirs(self.dir, exist_ok=True)

    # ---- helpers ------------------------------------------------------------------

    def rel(self, p):
        p = os.path.abspath(p)
        if p == self.root or p.startswith(self.root + os.sep):
            return os.path.relpath(p, self.root)
        return p

    def cmdline(self, cmd):
        """The command as one shell line, paths under the repository relative to it."""
        return shlex.join(str(c).replace(self.root + os.sep, "") for c in cmd)

    def run(self, cmd, timeout=600, check=True, **kw):
        cmd = [str(c) for c in cmd]
        kw.setdefault("stdout", subprocess.PIPE)
        kw.setdefault("stderr", subprocess.PIPE)
        p = subprocess.run(cmd, timeout=timeout, text=True, **kw)
        if check and p.returncode != 0:
            err = (p.stderr or "").strip().splitlines()[-5:] if isinstance(p.stderr, str) else []
            raise Wrong(f"`{self.cmdline(cmd)}` exited {p.returncode}: " + " / ".join(err))
        return p

    def timed(self, cmd, timeout=600):
        t0 = time.perf_counter()
        p = self.run(cmd, timeout=timeout)
        return time.perf_counter() - t0, p

    def spate_cmd(self, src, sql, ckpt, *extra, name="bench"):
        return [self.spate, "run", "--source", f"activity=json:{src}", "--sql", sql, "--schema", SCHEMA,
                "--checkpoint", ckpt, "--sink", f"memory:{name}", "--http", "off", *extra]

    def result(self, ckpt):
        p = self.run([self.spate, "result", "--checkpoint", ckpt, "--format", "json"], timeout=600)
        return [list(json.loads(l).values()) for l in p.stdout.splitlines() if l.strip()]

    def commits(self, ckpt):
        p = self.run([self.lat_bench, "--commits", ckpt])
        return [json.loads(l) for l in p.stdout.splitlines() if l.strip()]

    def progress(self, ckpt, last):
        p = self.run([self.spate, "progress", "--checkpoint", ckpt, "--json", "--last", last])
        return {r["batchId"]: r for r in (json.loads(l) for l in p.stdout.splitlines() if l.strip())}

    def check(self, ok, what):
        if not ok:
            say(f"WRONG ANSWER: {what}")
            self.wrong.append(what)
        return ok

    def gen_cached(self, name, args, what):
        """Generate data into DIR/name once; the marker .complete holds the
        arguments (the key) and gen-activity's summary line."""
        d = os.path.join(self.dir, name)
        marker = os.path.join(d, ".complete")
        key = " ".join(str(x) for x in args)
        if os.path.exists(marker):
            lines = open(marker).read().splitlines()
            if lines and lines[0] == key and len(lines) > 1:
                return d, self.gen_info(lines[1])
        say(f"generating {what} in {self.rel(d)}")
        t0 = time.perf_counter()
        shutil.rmtree(d, ignore_errors=True)
        p = self.run([self.gen, "--out", d, *args])
        summary = [l for l in p.stderr.splitlines() if l.startswith("gen-activity:")][-1]
        with open(marker, "w") as f:
            f.write(key + "\n" + summary + "\n")
        self.t_setup += time.perf_counter() - t0
        return d, self.gen_info(summary)

    @staticmethod
    def gen_info(summary):
        return {k: (int(v) if v.isdigit() else v) for k, v in re.findall(r"(\w+)=(\S+)", summary)}

    @staticmethod
    def parts(d):
        return sorted(f for f in glob.glob(os.path.join(d, "*.json")) if not os.path.basename(f).startswith("."))

    def clean_src(self, d, keep_prefix):
        for f in os.listdir(d):
            if not f.startswith(keep_prefix) and not f.startswith("."):
                os.unlink(os.path.join(d, f))
            elif f.endswith(".tmp"):
                os.unlink(os.path.join(d, f))

    @staticmethod
    def arrive(src_file, dst_dir, name):
        """Write a file under a hidden name, then rename it into place."""
        tmp = os.path.join(dst_dir, f".{name}.tmp")
        shutil.copyfile(src_file, tmp)
        os.rename(tmp, os.path.join(dst_dir, name))

    @staticmethod
    def nonblank_lines(path):
        with open(path, "rb") as f:
            return sum(1 for l in f if l.strip())

    @staticmethod
    def pairs(path):
        """Distinct (Device, Index) of a file: the groups a batch of it touches."""
        s = set()
        with open(path) as f:
            for l in f:
                if l.strip():
                    o = json.loads(l)
                    s.add((o.get("Device"), o.get("Index")))
        return s

    def copy_ckpt(self, base, work):
        shutil.rmtree(work, ignore_errors=True)
        shutil.copytree(base, work)

    def add(self, *a, **kw):
        self.rows.append(Row(*a, **kw))

    # ---- datasets -----------------------------------------------------------------

    def main_data(self):
        d, info = self.gen_cached(f"activity-{self.size}", ["--bytes", self.size, "--seed", "2026"],
                                  f"{self.size} of activity data")
        return d, info

    def trial_files(self):
        """Small files for one-batch trials: 1,000 lines each, one gen run, so
        each file carries the next Index of every device (~1,000 groups)."""
        d, _ = self.gen_cached("trial-files", ["--files", "20", "--rows-per-file", "1000", "--seed", "2031",
                                              "--prefix", "new-"], "trial files")
        return self.parts(d)

    def ckpt_cached(self, name, what, cmd_args, check):
        """A checkpoint of DIR/name (today's format) built once by `spate run`
        with cmd_args (source, SQL, checkpoint filled in by the caller's
        lambda) and checked by check(base)."""
        base = os.path.join(self.dir, f"{name}.ckpt-v{CKPT_FORMAT}")
        if not os.path.exists(os.path.join(base, ".complete")):
            say(f"{what} ({self.rel(base)})")
            t0 = time.perf_counter()
            shutil.rmtree(base, ignore_errors=True)
            self.run(cmd_args(base), timeout=3600)
            check(base)
            open(os.path.join(base, ".complete"), "w").write("ok\n")
            self.t_setup += time.perf_counter() - t0
        return base

    def state_base(self, groups):
        """A checkpoint of QS over `groups` rows, one group per row (Index is
        a per-device counter), built once: (source dir, checkpoint, rows)."""
        files = max(1, groups // 250000)
        d, info = self.gen_cached(f"state-{groups}", ["--files", str(files), "--rows-per-file",
                                                      str(groups // files), "--seed", "2030"],
                                  f"{groups:,} rows for a state of {groups:,} groups")
        self.clean_src(d, "part-")

        def check(base):
            last = self.commits(base)[-1]
            self.check(last["state_rows"] == info["rows"],
                       f"state base: {last['state_rows']} groups in state, {info['rows']} expected")
        base = self.ckpt_cached(f"state-{groups}", f"building a checkpoint with {groups:,} groups in state",
                                lambda b: self.spate_cmd(d, QS, b, "--trigger", "available-now", "--output-mode",
                                                         "update", "--max-files-per-trigger", "4", "--quiet",
                                                         "--log-level", "warn", name="state"), check)
        return d, base, info["rows"]

    def planning_base(self, n):
        d, info = self.gen_cached(f"files-{n}", ["--files", str(n), "--rows-per-file", "1", "--seed", "2033"],
                                  f"{n:,} one-line files")
        self.clean_src(d, "part-")

        def check(base):
            total = sum(r[1] for r in self.result(base))
            self.check(total == n, f"planning base: counted {total} rows in {n} one-line files")
        base = self.ckpt_cached(f"files-{n}", f"processing the {n:,} files once",
                                lambda b: self.spate_cmd(d, Q1, b, "--trigger", "available-now", "--slots", "8",
                                                         "--quiet", "--log-level", "warn", name="planning"), check)
        return d, base

    # ---- 1. throughput ------------------------------------------------------------

    def throughput(self):
        d, info = self.main_data()
        files = self.parts(d)
        nbytes = sum(os.path.getsize(f) for f in files)
        self.run(["cat", *files], stdout=subprocess.DEVNULL)  # into the page cache
        data = f"{nbytes / 1e9:.2f} GB, {len(files)} files, {info['rows'] / 1e6:.2f}M rows"
        say(f"throughput: {data}, best of {self.runs}")

        wc_cmd = ["wc", "-l", *files]
        best_wc, lines = None, None
        for _ in range(self.runs):
            t, p = self.timed(wc_cmd)
            best_wc = t if best_wc is None or t < best_wc else best_wc
            lines = int(p.stdout.strip().splitlines()[-1].split()[0])
        rows = lines - info["blank"]
        self.check(rows == info["rows"], f"wc -l minus blank lines {rows} != gen-activity's {info['rows']} rows")

        ckpt = os.path.join(self.dir, "ckpt-throughput")
        spate_t = {}
        results = {}
        for key, sql, execs in (("q1", Q1, 2), ("q1x1", Q1, 1), ("q2", Q2, 2)):
            cmd = self.spate_cmd(d, sql, ckpt, "--trigger", "available-now", "--executors", str(execs),
                                 "--quiet", "--log-level", "warn")
            best = None
            for _ in range(self.runs):
                shutil.rmtree(ckpt, ignore_errors=True)
                t, _ = self.timed(cmd)
                best = t if best is None or t < best else best
                res = self.result(ckpt)
                total = sum(r[2] if key == "q2" else r[1] for r in res)
                self.check(total == rows, f"{key} ({execs} executors) counted {total} rows, the files hold {rows}")
            spate_t[key] = (best, cmd)
            results[key] = res
        shutil.rmtree(ckpt, ignore_errors=True)
        # the second query's counts per gt agree with the headline query's
        q1 = {r[0]: r[1] for r in results["q1"]}
        by_gt = {}
        for r in results["q2"]:
            by_gt[r[0]] = by_gt.get(r[0], 0) + r[2]
        self.check(by_gt == q1, "the 5-aggregate query's counts by gt differ from the headline query's")

        duck = self.duckdb(d, [Q1, Q2])
        if duck is not None:
            dq1 = {r[0]: int(r[1]) for r in duck["results"][0]["rows"]}
            self.check(dq1 == q1, f"headline query: spate {q1} != DuckDB {dq1}")
            dq2 = {(r[0], r[1]): [int(r[2])] + [None if v is None else float(v) for v in r[3:]]
                   for r in duck["results"][1]["rows"]}
            sq2 = {(r[0], r[1]): r[2:] for r in results["q2"]}
            self.check(set(dq2) == set(sq2), "5-aggregate query: spate's groups differ from DuckDB's")
            for k in sorted(set(dq2) & set(sq2), key=str):
                a, b = sq2[k], dq2[k]
                if a[0] != b[0] or not all(close(x, y) for x, y in zip(a[1:], b[1:])):
                    self.check(False, f"5-aggregate query, group {k}: spate {a} != DuckDB {b}")
        self.sample_check()

        wc_peer = f"wc -l {fmt_s(best_wc)}"
        gbs = lambda t: f"{nbytes / t / 1e9:.2f} GB/s"
        for key, label in (("q1", "Q1"), ("q2", "Q2")):
            t, cmd = spate_t[key]
            self.add("1", f"throughput {label}, 2 executors / wc -l", f"{fmt_s(t)} ({gbs(t)})",
                     "<= 2.00x wc -l", wc_peer, f"{t / best_wc:.2f}x", verdict(t <= 2 * best_wc), data,
                     self.cmdline(cmd))
            if duck is not None:
                i = 0 if key == "q1" else 1
                dt = duck["results"][i]["best"]
                self.add("1", f"throughput {label}, 2 executors / DuckDB", f"{fmt_s(t)} ({gbs(t)})",
                         "< 1.00x DuckDB 2 threads", f"DuckDB {fmt_s(dt)}", f"{t / dt:.2f}x", verdict(t < dt),
                         data, duck["cmds"][i])
        t, cmd = spate_t["q1x1"]
        self.add("1", "throughput Q1, 1 executor", f"{fmt_s(t)} ({gbs(t)})", "(info)", wc_peer,
                 f"{t / best_wc:.2f}x", "", data, self.cmdline(cmd))
        self.notes.append(f"throughput: best of {self.runs} runs each, files in the page cache, a fresh checkpoint "
                          f"per run; spate's time is the whole `spate run` process (start-up, executors, planning, "
                          f"tasks, merge, LMDB commit, exit)" +
                          ("; DuckDB's is the query alone, in-process (instance start-up not counted), "
                           f"DuckDB {duck['version']} via @duckdb/node-api, SET threads=2" if duck else ""))
        if duck is None:
            self.notes.append(f"DuckDB: skipped ({self.duck_reason})")

    def duckdb(self, data_dir, sqls):
        self.duck_reason = ""
        if self.a.no_duckdb:
            self.duck_reason = "--no-duckdb"
            return None
        node, npm = shutil.which("node"), shutil.which("npm")
        if not node or not npm:
            self.duck_reason = "node/npm not found"
            return None
        cache = os.path.join(self.dir, ".cache", "duckdb")
        mod = os.path.join(cache, "node_modules", "@duckdb", "node-api")
        if not os.path.exists(os.path.join(cache, ".complete")):
            say(f"installing @duckdb/node-api with npm into {self.rel(cache)}")
            t0 = time.perf_counter()
            shutil.rmtree(cache, ignore_errors=True)
            os.makedirs(cache)
            with open(os.path.join(cache, "package.json"), "w") as f:
                f.write('{"name": "spate-bench-duckdb", "private": true, "type": "module"}\n')
            try:
                p = subprocess.run([npm, "install", "--no-audit", "--no-fund", "--loglevel=error",
                                    "@duckdb/node-api"], cwd=cache, capture_output=True, text=True, timeout=300)
            except subprocess.TimeoutExpired:
                self.duck_reason = "npm install @duckdb/node-api timed out"
                return None
            self.t_setup += time.perf_counter() - t0
            if p.returncode != 0 or not os.path.isdir(mod):
                last = (p.stderr.strip().splitlines() or ["?"])[-1]
                self.duck_reason = f"npm install @duckdb/node-api failed: {last}"
                return None
            open(os.path.join(cache, ".complete"), "w").write("ok\n")
        script = os.path.join(cache, "bench-query.mjs")
        with open(script, "w") as f:
            f.write(DUCK_SCRIPT.replace("@COLS@", DUCK_COLS))
        cmd = [node, script, data_dir, "2", str(self.runs), *sqls]
        say("DuckDB (2 threads) on the same files")
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
        if p.returncode != 0:
            self.duck_reason = "DuckDB failed: " + " / ".join(p.stderr.strip().splitlines()[-3:])
            return None
        out = json.loads(p.stdout.strip().splitlines()[-1])
        out["cmds"] = [self.cmdline([cmd[0], script, data_dir, "2", str(self.runs), sql]) for sql in sqls]
        return out

    def sample_slice(self):
        """The first ~16 MB of the main data set's first file, cut at a line end."""
        d, _ = self.main_data()
        src = self.parts(d)[0]
        sd = os.path.join(self.dir, "sample-16M")
        out = os.path.join(sd, "part-00000.json")
        marker = os.path.join(sd, ".complete")
        key = f"{src} {os.path.getsize(src)} {os.path.getmtime(src)}"
        if not (os.path.exists(marker) and open(marker).read() == key):
            shutil.rmtree(sd, ignore_errors=True)
            os.makedirs(sd)
            with open(src, "rb") as f:
                buf = f.read(16 << 20)
            with open(out, "wb") as f:
                f.write(buf[: buf.rfind(b"\n") + 1])
            open(marker, "w").write(key)
        return sd, out

    def sample_check(self):
        """spate against a python3 json reference on the 16 MB sample, both queries."""
        sd, path = self.sample_slice()
        q1, q2 = {}, {}
        with open(path) as f:
            for l in f:
                if not l.strip():
                    continue
                o = json.loads(l)
                gt, model, x = o.get("gt"), o.get("Model"), o.get("x")
                q1[gt] = q1.get(gt, 0) + 1
                a = q2.setdefault((gt, model), [0, None, None, None, 0])
                a[0] += 1
                if x is not None:
                    x = float(x)
                    a[1] = x if a[1] is None else a[1] + x
                    a[2] = x if a[2] is None else min(a[2], x)
                    a[3] = x if a[3] is None else max(a[3], x)
                    a[4] += 1
        ref2 = {k: [v[0], v[1], v[2], v[3], None if v[4] == 0 else v[1] / v[4]] for k, v in q2.items()}
        ckpt = os.path.join(self.dir, "ckpt-sample")
        for sql, ref in ((Q1, q1), (Q2, ref2)):
            shutil.rmtree(ckpt, ignore_errors=True)
            self.run(self.spate_cmd(sd, sql, ckpt, "--trigger", "available-now", "--quiet", "--log-level", "warn"))
            res = self.result(ckpt)
            if sql == Q1:
                got = {r[0]: r[1] for r in res}
                self.check(got == ref, f"sample, headline query: spate {got} != python {ref}")
            else:
                got = {(r[0], r[1]): r[2:] for r in res}
                self.check(set(got) == set(ref), "sample, 5-aggregate query: groups differ from python's")
                for k in set(got) & set(ref):
                    a, b = got[k], ref[k]
                    if a[0] != b[0] or not all(close(x, y) for x, y in zip(a[1:], b[1:])):
                        self.check(False, f"sample, 5-aggregate query, group {k}: spate {a} != python {b}")
        shutil.rmtree(ckpt, ignore_errors=True)

    # ---- 2. per core --------------------------------------------------------------

    def percore(self):
        d, _ = self.main_data()
        f = self.parts(d)[0]
        size = os.path.getsize(f)
        lines = self.nonblank_lines(f)
        reps = 3 if self.quick else 5
        say(f"per core: task-bench over {self.rel(f)} ({size / 1e6:.0f} MB), best of {reps}")
        res = {}
        for key, sql in (("q1", Q1), ("q2", Q2)):
            cmd = [self.task_bench, f, "--sql", sql, "--repeat", str(reps)]
            p = self.run(cmd)
            m = dict(re.findall(r"([A-Za-z/]+) ([\d.]+)", p.stdout))
            self.check(int(m["rows"]) == lines and int(m["malformed"]) == 0,
                       f"task-bench {key}: {m.get('rows')} rows, {m.get('malformed')} malformed; the file holds "
                       f"{lines} lines")
            res[key] = (float(m["GB/s"]), cmd)
        ipb = self.instructions_per_byte()
        data = f"{self.rel(f)}, {size / 1e6:.0f} MB"
        for key, label in (("q1", "Q1"), ("q2", "Q2")):
            gbs, cmd = res[key]
            self.add("2", f"per core {label}: one task", f"{gbs:.2f} GB/s", ">= 1.00 GB/s" if key == "q1" else "(info)",
                     "", "", verdict(gbs >= 1.0) if key == "q1" else "", data, self.cmdline(cmd))
            if ipb.get(key):
                n, how, icmd, sbytes = ipb[key]
                self.add("2", f"per core {label}: instructions/byte", f"{n:.2f} instr/B", "(stable; no target)",
                         "", "", "", f"{how}, {sbytes / 1e6:.1f} MB slice", icmd)
        if not ipb:
            self.notes.append(f"instructions per byte: skipped ({self.ipb_reason})")

    def instructions_per_byte(self):
        self.ipb_reason = ""
        _, path = self.sample_slice()
        nbytes = os.path.getsize(path)
        out = {}
        perf = shutil.which("perf")
        if perf:
            p = subprocess.run([perf, "stat", "-x,", "-e", "instructions:u", "true"], capture_output=True, text=True)
            if p.returncode == 0 and "<not" not in p.stderr and re.search(r"^\d+,", p.stderr, re.M):
                for key, sql in (("q1", Q1), ("q2", Q2)):
                    cmd = [perf, "stat", "-x,", "-e", "instructions:u", self.task_bench, path, "--sql", sql,
                           "--repeat", "1"]
                    p = self.run(cmd)
                    n = int(re.search(r"^(\d+),", p.stderr, re.M).group(1))
                    out[key] = (n / nbytes, "perf stat, whole process", self.cmdline(cmd), nbytes)
                return out
        vg = shutil.which("valgrind")
        if not vg:
            self.ipb_reason = "perf stat has no instruction counter here and valgrind is not installed"
            return out
        say("per core: instructions per byte (callgrind, task_scan only)")
        cg = os.path.join(self.dir, "callgrind.out")
        for key, sql in (("q1", Q1), ("q2", Q2)):
            how = "callgrind, task_scan inclusive"
            cmd = [vg, "--tool=callgrind", f"--callgrind-out-file={cg}", "--toggle-collect=task_scan",
                   self.task_bench, path, "--sql", sql, "--repeat", "1"]
            self.run(cmd, timeout=600)
            n = self.callgrind_total(cg)
            if not n:  # task_scan renamed or inlined: count the whole process
                how = "callgrind, whole process"
                cmd = [c for c in cmd if not c.startswith("--toggle-collect")]
                self.run(cmd, timeout=600)
                n = self.callgrind_total(cg)
            out[key] = (n / nbytes, how, self.cmdline(cmd), nbytes)
        os.unlink(cg)
        return out

    @staticmethod
    def callgrind_total(path):
        for l in open(path):
            if l.startswith("totals:") or l.startswith("summary:"):
                return int(l.split()[1])
        return 0

    # ---- 3. latency ---------------------------------------------------------------

    def latency(self):
        secs = 10 if self.quick else 30
        n = 20 * secs
        staged, info = self.gen_cached(f"latency-{n}x1000", ["--files", str(n), "--rows-per-file", "1000",
                                                             "--seed", "2028"], f"{n} files of 1,000 lines")
        work = os.path.join(self.dir, "latency-run")
        shutil.rmtree(work, ignore_errors=True)
        os.makedirs(work)
        src, ckpt = os.path.join(work, "src"), os.path.join(work, "ckpt")
        cmd = [self.lat_bench, "--spate", self.spate, "--staged", staged, "--src", src, "--ckpt", ckpt,
               "--rate", "20", "--seconds", str(secs), "--executors", "2", "--log", os.path.join(work, "spate.log")]
        say(f"latency: {n} files of 1,000 lines, 20 a second for {secs} s, default trigger")
        p = self.run(cmd, timeout=secs + 180, check=False)
        m = [l for l in p.stdout.splitlines() if l.startswith("RESULT ")]
        if p.returncode != 0 or not m:
            self.check(False, f"latency-bench exited {p.returncode}: {p.stderr.strip()[-300:]}")
            if not m:
                return
        r = json.loads(m[-1][len("RESULT "):])
        self.check(r["committed_files"] == n and r["duplicates"] == 0,
                   f"latency: {r['committed_files']} of {n} files committed, {r['duplicates']} twice")
        total = sum(row[1] for row in self.result(ckpt))
        self.check(total == info["rows"] == r["rows_written"],
                   f"latency: spate result counts {total} rows; {info['rows']} were written")
        data = f"{n} files x 1,000 lines, 20/s for {secs} s"
        c = self.cmdline(cmd)
        for k, target in (("p50", 20), ("p99", 100)):
            seen = r[f"seen_{k}"]
            got = [v for v in (r[k], seen) if v is not None]
            worst = max(got) if got else float("inf")
            self.add("3", f"latency {k}, rename -> committed", f"{fmt_ms(r[k])} (reader sees it: {fmt_ms(seen)})",
                     f"< {target} ms", "", "", verdict(worst < target), data, c)
        self.extra.append(f"Latency (3): rename -> committed_ms, {r['files']} files in {r['batches']} batches; "
                          f"p50 {fmt_ms(r['p50'])}, p90 {fmt_ms(r['p90'])}, p99 {fmt_ms(r['p99'])}, max "
                          f"{fmt_ms(r['max'])}; a reader polling every 1 ms saw the commits at p50 "
                          f"{fmt_ms(r['seen_p50'])}, p99 {fmt_ms(r['seen_p99'])}")
        most = max([b[2] for b in r["buckets"]] + [1])
        for lo, hi, cnt in r["buckets"]:
            label = f"{lo:g}-{hi:g} ms" if hi is not None else f"{lo:g}+ ms"
            bar = "#" * (max(1, round(cnt * 50 / most)) if cnt else 0)
            self.extra.append(f"  {label:>11} {cnt:5d} {100 * cnt / max(1, r['files']):5.1f}% |{bar}")
        self.notes.append("latency: committed_ms is the driver's wall clock stamped just before the LMDB commit; "
                          "'reader sees it' is when latency-bench, polling the checkpoint read-only every 1 ms, "
                          "first saw the batch; the verdict takes the worse of the two")

    # ---- 4. restart ---------------------------------------------------------------

    def restart(self):
        groups = 1000000
        src, base, base_rows = self.state_base(groups)
        trial = self.trial_files()[: self.trials]
        work = os.path.join(self.dir, "restart-run.ckpt")
        self.copy_ckpt(base, work)
        say(f"restart: {len(trial)} restarts on a checkpoint with {groups:,} groups, one new file each")
        starts, exits, commit_ms = [], [], []
        cmd = None
        rows_added = 0
        for k, f in enumerate(trial):
            name = f"zz-restart-{k}.json"
            self.arrive(f, src, name)
            cmd = self.spate_cmd(src, QS, work, "--trigger", "available-now", "--output-mode", "update",
                                 "--log-level", "warn", name="state")
            t_wall = time.time()
            t0 = time.perf_counter()
            p = self.run(cmd, timeout=120)
            t_exit = time.perf_counter() - t0
            last = self.commits(work)[-1]
            lines = self.nonblank_lines(f)
            rows_added += lines
            self.check(last["files"] == 1 and last["input_rows"] == lines,
                       f"restart {k}: the new batch took {last['files']} files, {last['input_rows']} rows; "
                       f"1 file of {lines} lines was added")
            self.check(last["state_rows"] == base_rows,
                       f"restart {k}: {last['state_rows']} groups in state, {base_rows} expected")
            self.check(last["updated_rows"] == len(self.pairs(f)),
                       f"restart {k}: {last['updated_rows']} groups updated, the file holds "
                       f"{len(self.pairs(f))} (Device, Index) pairs")
            starts.append(last["committed_ms"] - t_wall * 1000)
            exits.append(t_exit * 1000)
            pl = self.progress_lines(p.stderr)
            if pl:
                commit_ms.append(pl[-1]["commit"])
        total = sum(r[2] for r in self.result(work))
        self.check(total == base_rows + rows_added,
                   f"restart: spate result counts {total} rows, the files hold {base_rows + rows_added}")
        self.clean_src(src, "part-")
        shutil.rmtree(work, ignore_errors=True)
        s, e = median(starts), median(exits)
        self.add("4", "restart: start -> new batch committed", f"{fmt_ms(s)} (exit {fmt_ms(e)})",
                 "< 200 ms", "", "", verdict(s < 200), f"{groups:,} groups in state (QS); 1 file of 1,000 lines",
                 self.cmdline(cmd))
        self.extra.append(f"Restart (4): {len(starts)} restarts, start -> commit "
                          + ", ".join(f"{x:.0f}" for x in starts) + " ms; start -> exit "
                          + ", ".join(f"{x:.0f}" for x in exits) + " ms (medians in the table)"
                          + (f"; that batch's merge + commit: median {median(commit_ms):.1f} ms" if commit_ms else ""))
        self.restart_commits = commit_ms

    # ---- 5. flat costs ------------------------------------------------------------

    BATCH_RE = re.compile(r"^batch (\d+)(?: \(re-run\))?: (\d+) file.*?; plan ([\d.]+) ms, run ([\d.]+) ms, "
                          r"commit ([\d.]+) ms\); (\d+) groups updated, (\d+) in state", re.M)

    def progress_lines(self, text):
        return [{"batch": int(m[0]), "files": int(m[1]), "plan": float(m[2]), "run": float(m[3]),
                 "commit": float(m[4]), "updated": int(m[5]), "state": int(m[6])}
                for m in self.BATCH_RE.findall(text)]

    def running_trials(self, src, ckpt, files, sql, label, output_mode="update"):
        """Run the query under the default trigger and bring in the files one
        at a time, each once the last is committed: one batch per file.
        Returns each trial batch's progress line and kept progress report."""
        log_path = os.path.join(self.dir, f"{label}.log")
        cmd = self.spate_cmd(src, sql, ckpt, "--output-mode", output_mode, "--executors", "2")
        log = open(log_path, "w")
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
        read = lambda: open(log_path).read()
        t0 = time.time()
        while "waiting for data" not in read() and time.time() - t0 < 30 and proc.poll() is None:
            time.sleep(0.02)
        time.sleep(0.3)
        seen = len(self.progress_lines(read()))
        try:
            for k, f in enumerate(files):
                self.arrive(f, src, f"zz-{label}-{k}.json")
                t1 = time.time()
                while len(self.progress_lines(read())) <= seen:
                    if proc.poll() is not None:
                        raise Wrong(f"{label}: spate exited {proc.returncode} (see {self.rel(log_path)})")
                    if time.time() - t1 > 60:
                        raise Wrong(f"{label}: a new file was not committed within 60 s (see {self.rel(log_path)})")
                    time.sleep(0.005)
                seen = len(self.progress_lines(read()))
                time.sleep(0.35)
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            log.close()
        lines = self.progress_lines(read())[-len(files):]
        reports = self.progress(ckpt, len(files))
        for l in lines:
            l["json"] = reports.get(l["batch"], {})
        return lines, cmd

    def flat(self):
        self.flat_commit()
        self.flat_planning()

    def flat_commit(self):
        groups = 1000000 if self.quick else 10000000
        trial = self.trial_files()[: self.trials]
        src, base, base_rows = self.state_base(groups)
        work = os.path.join(self.dir, "flat-commit.ckpt")
        say(f"flat costs: {len(trial)} batches of ~1,000 groups on a state of {groups:,} groups, then on an "
            f"empty state")
        self.copy_ckpt(base, work)
        big, cmd = self.running_trials(src, work, trial, QS, "flat-commit-big")
        self.clean_src(src, "part-")
        shutil.rmtree(work, ignore_errors=True)
        esrc = os.path.join(self.dir, "flat-empty-src")
        shutil.rmtree(esrc, ignore_errors=True)
        os.makedirs(esrc)
        small, _ = self.running_trials(esrc, work, trial, QS, "flat-commit-empty")
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(esrc, ignore_errors=True)
        touched = 0
        for k, f in enumerate(trial):
            n = len(self.pairs(f))
            touched = max(touched, n)
            for which, recs, state in (("big", big, base_rows), ("empty", small, None)):
                r = recs[k]
                self.check(r["updated"] == n, f"flat commit ({which}) batch {r['batch']}: {r['updated']} groups "
                                              f"updated, the file holds {n} (Device, Index) pairs")
                if state is not None:
                    self.check(r["state"] == state, f"flat commit: {r['state']} groups in state, {state} expected")
        cb, ce = median([r["commit"] for r in big]), median([r["commit"] for r in small])
        ob = median([r["json"].get("durationMs", {}).get("commitOffsets", float("nan")) for r in big])
        oe = median([r["json"].get("durationMs", {}).get("commitOffsets", float("nan")) for r in small])
        ratio = cb / max(ce, 0.1)
        self.add("5", f"commit ~{touched:,} groups: {groups / 1e6:.0f}M state / empty",
                 f"{fmt_ms(cb)}", "<= 2.00x empty state", f"empty state {fmt_ms(ce)}", f"{ratio:.2f}x",
                 verdict(ratio <= 2), f"{groups:,} groups (QS); {len(trial)} batches, medians", self.cmdline(cmd))
        self.extra.append(f"Flat commit (5): merge + LMDB commit per batch ('commit' of the progress line), "
                          f"{groups:,} groups: " + ", ".join(f"{r['commit']:.1f}" for r in big) +
                          " ms; empty state: " + ", ".join(f"{r['commit']:.1f}" for r in small) +
                          f" ms. durationMs.commitOffsets (the LMDB commit alone, whole ms): median {ob:g} vs {oe:g}")
        if self.quick:
            self.notes.append("flat commit: --quick uses a state of 1M groups, not 10M (the full run builds 10M)")

    def flat_planning(self):
        trial = self.trial_files()[: self.trials]
        out = {}
        for n in (100, 100000):
            src, base = self.planning_base(n)
            work = os.path.join(self.dir, f"flat-planning-{n}.ckpt")
            self.copy_ckpt(base, work)
            say(f"flat costs: planning {len(trial)} triggers with {n:,} files processed")
            recs, cmd = self.running_trials(src, work, trial, Q1, f"flat-planning-{n}", output_mode="complete")
            total = sum(r[1] for r in self.result(work))
            want = n + sum(self.nonblank_lines(f) for f in trial)
            self.check(total == want, f"planning with {n} files: counted {total} rows, the files hold {want}")
            self.clean_src(src, "part-")
            shutil.rmtree(work, ignore_errors=True)
            out[n] = (recs, cmd)
        pb = median([r["plan"] for r in out[100000][0]])
        ps = median([r["plan"] for r in out[100][0]])
        jb = median([sum(r["json"].get("durationMs", {}).get(k, 0) for k in ("latestOffset", "walCommit"))
                     for r in out[100000][0]])
        js = median([sum(r["json"].get("durationMs", {}).get(k, 0) for k in ("latestOffset", "walCommit"))
                     for r in out[100][0]])
        ratio = pb / max(ps, 0.1)
        self.add("5", "plan a trigger: 100,000 files / 100", f"{fmt_ms(pb)}",
                 "<= 2.00x 100 files", f"100 files {fmt_ms(ps)}", f"{ratio:.2f}x", verdict(ratio <= 2),
                 f"one-line files; {len(trial)} triggers of 1 new file, medians", self.cmdline(out[100000][1]))
        self.extra.append("Flat planning (5): 'plan' of the progress line (listing + WAL write, 0.1 ms) with 100,000 "
                          "files: " + ", ".join(f"{r['plan']:.1f}" for r in out[100000][0]) + " ms; with 100: "
                          + ", ".join(f"{r['plan']:.1f}" for r in out[100][0]) +
                          f" ms. durationMs.latestOffset + walCommit (whole ms): median {jb:g} vs {js:g}; "
                          "the whole batch (triggerExecution): median "
                          f"{median([r['json'].get('durationMs', {}).get('triggerExecution', 0) for r in out[100000][0]]):g} vs "
                          f"{median([r['json'].get('durationMs', {}).get('triggerExecution', 0) for r in out[100][0]]):g} ms")

    # ---- the table ----------------------------------------------------------------

    def table(self, wall):
        mode = "--quick" if self.quick else "full"
        print()
        print(f"spate benchmark ({mode} run), {time.strftime('%Y-%m-%d %H:%M:%S')}, {os.cpu_count()} cores, "
              f"spate {self.rel(self.spate)}")
        cols = ["#", "measurement", "figure", "target", "peer", "ratio", "verdict", "data"]
        rows = [[r.num, r.name, r.figure, r.target, r.peer, r.ratio, r.verdict, r.data] for r in self.rows]
        w = [max(len(c), *(len(r[i]) for r in rows)) if rows else len(c) for i, c in enumerate(cols)]
        line = lambda cells: "  ".join(c.ljust(w[i]) for i, c in enumerate(cells)).rstrip()
        print(line(cols))
        print(line(["-" * x for x in w]))
        for r in rows:
            print(line(r))
        print()
        print(f"Q1 = {Q1}\nQ2 = {Q2}\nQS = {QS}")
        print()
        print("commands (from the repository's top folder):")
        seen = {}
        for r in self.rows:
            if r.cmd and r.cmd not in seen:
                seen[r.cmd] = True
                print(f"  [{r.num}] {r.name}:\n      {r.cmd}")
        if self.extra:
            print()
            for e in self.extra:
                print(e)
        print()
        for n in self.notes:
            print(f"note: {n}")
        print("note: PASS/MISS compare with the targets and are information only; the exit status depends on "
              "wrong answers alone")
        print()
        t0 = os.environ.get("SPATE_BENCH_T0")
        total = f"{time.time() - float(t0):.0f} s in all (installing and building included), " if t0 else ""
        print(f"bench wall time: {total}{wall:.0f} s measuring, of which {self.t_setup:.0f} s generating data, "
              f"installing DuckDB and building cached checkpoints (kept in {self.rel(self.dir)}; a rerun skips it)")
        if self.wrong:
            print(f"WRONG ANSWERS ({len(self.wrong)}):")
            for w_ in self.wrong:
                print(f"  {w_}")
        else:
            print("answers: all checked and right")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="~200 MB, 10 s of latency, a 1M-group state, fewer repeats")
    ap.add_argument("--size", help="throughput data size (default 1G; --quick 200M)")
    ap.add_argument("--runs", type=int, help="best of N for throughput (default 3; --quick 2)")
    ap.add_argument("--trials", type=int, help="batches per restart/flat measurement (default 9; --quick 5)")
    ap.add_argument("--only", help="comma-separated subset of: " + ",".join(MEASUREMENTS))
    ap.add_argument("--dir", default=os.environ.get("SPATE_BENCH_DIR", "bench-data"), help="data and caches")
    ap.add_argument("--spate", required=True)
    ap.add_argument("--gen")
    ap.add_argument("--task-bench")
    ap.add_argument("--latency-bench")
    ap.add_argument("--no-duckdb", action="store_true", help="skip DuckDB")
    a = ap.parse_args()
    only = MEASUREMENTS if not a.only else a.only.split(",")
    for m in only:
        if m not in MEASUREMENTS:
            ap.error(f"--only: unknown measurement {m!r} (one of {', '.join(MEASUREMENTS)})")
    if a.trials is not None and not 1 <= a.trials <= 20:
        ap.error("--trials: 1 to 20")
    b = Bench(a)
    t0 = time.perf_counter()
    for m in MEASUREMENTS:
        if m not in only:
            continue
        try:
            getattr(b, m)()
        except Wrong as e:
            b.check(False, f"{m}: {e}")
        except subprocess.TimeoutExpired as e:
            b.check(False, f"{m}: timed out: {e}")
    b.table(time.perf_counter() - t0)
    return 1 if b.wrong else 0


if __name__ == "__main__":
    sys.exit(main())
