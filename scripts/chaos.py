#!/usr/bin/env python3
"""scripts/chaos.py -- spate's fault-injection harness (run it through
scripts/chaos, which installs python3 and builds spate first).

Each trial streams generated activity files into a streaming query (a
`spate driver` and `spate executor` processes on loopback, or the Docker
Compose cluster with --compose) while it injects faults at random moments:

  driver_kill       SIGKILL (docker kill) of the driver, restarted with the
                    same command after a random pause
  driver_term       SIGTERM (docker stop) of the driver, sometimes twice (abandon
                    the running batch): it must exit 0 in time; then restarted
  driver_freeze     SIGSTOP (docker pause) of the driver for 0.3 to 4 s (longer
                    or shorter than the executors' --driver-timeout), then SIGCONT
  executor_kill     SIGKILL (docker kill) of an executor; usually a new one
                    is started after a pause
  freeze_short      SIGSTOP (docker pause) of an executor for less than
  freeze_long       --executor-timeout, or for longer; then SIGCONT (unpause)
  executor_add      an extra executor (compose: scale up)
  executor_drain    SIGTERM (docker stop) of an executor: it must finish its
                    tasks, say goodbye and exit 0 within a deadline
  scale_down        (compose) `up --scale executor=N-1`
  all_gone          every executor killed or drained: the driver must wait
                    with zero executors, and go on when one comes back
  net_cut           (compose) an executor cut off the network (docker network
                    disconnect), reconnected after a pause shorter or longer
                    than the executor timeout

A trial ends when every file is committed (`spate checkpoint ls`: as many
seen files as written, last planned batch == last committed); then every
process is stopped with SIGTERM (each must exit 0 within a deadline) and the
checkpoint's result (`spate result --format json`) is compared exactly with
an independent computation over the input files with Python's json module:
not one row lost or counted twice, every sum, min and max exact.

Each trial draws its settings: 5 to 12 arrivals of 300 to 3000 lines
(in 4 trials of 10, half the arrivals are two --dirty files: damaged lines,
wrong types, a last line without newline), --max-files-per-trigger 1 to 3
or --max-bytes-per-trigger 256K to 1M, --split-size 20K to 200K (many tasks
per file), 1 to 3 executors of 1 to 3 slots; --executor-timeout 1s,
--heartbeat 200ms, executors' --driver-timeout 2s. Faults come at random
moments, 4 in 10 of them within 50 ms of a file's arrival, when its batch
likely runs.

The run is a function of --seed: trial T uses random.Random(seed + T) for
its data, its settings and the schedule of its faults (how spate reacts to
them still depends on timing). A failed trial prints its seed and trial
number (rerun it alone with --seed S --trial T), what differed, and the
path of its kept directory: input files, checkpoint, each process's log and
the harness's timeline (chaos.log).

Every wait is bounded: conditions are polled against a deadline.
"""

import argparse
import ctypes
import heapq
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

SQL = ("SELECT gt, count(*) AS n, sum(Index) AS si, min(Index) AS mn, max(Index) AS mx "
       "FROM activity GROUP BY gt")
SCHEMA = ("Arrival_Time BIGINT, Creation_Time BIGINT, Device STRING, Index BIGINT, "
          "Model STRING, User STRING, gt STRING, x DOUBLE, y DOUBLE, z DOUBLE")
EXECUTOR_TIMEOUT_S = 1.0       # --executor-timeout (local)
HEARTBEAT = "200ms"
DRIVER_TIMEOUT = "2s"          # executors' --driver-timeout
SPLIT_SIZES = ["64K", "64K", "20K", "200K"]  # small splits: many tasks per file
MAX_TASK_FAILURES = 10
MAX_EXECUTORS = 4              # executor_add stops there

DRAIN_DEADLINE_S = 15.0        # SIGTERM to exit, for a draining executor
STOP_DEADLINE_S = 30.0         # SIGTERM to exit at the end of a trial
DRIVER_STOP_DEADLINE_S = 15.0  # SIGTERM to exit, for the driver (--stop-timeout 10s + margin)
READY_DEADLINE_S = 10.0        # start to "ready" (its SIGTERM handler set) for any process

LOCAL_KINDS = {  # fault kind: weight
    "driver_kill": 3, "driver_term": 1, "driver_freeze": 1, "executor_kill": 3, "freeze_short": 2, "freeze_long": 2,
    "executor_add": 1, "executor_drain": 2, "all_gone": 1,
}
COMPOSE_KINDS = dict(LOCAL_KINDS, net_cut=3, scale_down=1)
# --every-kind's order: the driver's faults apart, so that each finds the
# driver running.
EVERY_KIND_ORDER = ["driver_kill", "executor_kill", "freeze_short", "net_cut", "driver_term",
                    "executor_add", "freeze_long", "scale_down", "driver_freeze",
                    "executor_drain", "all_gone"]


class HarnessError(Exception):
    """The harness itself cannot go on (a tool missing, docker failing)."""


def wait_until(cond, timeout, interval=0.1, on_poll=None):
    """Poll cond() until it is true or `timeout` seconds pass; on_poll() runs
    between polls (to notice dead processes). Returns cond's last value."""
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v or time.monotonic() >= deadline:
            return v
        if on_poll:
            on_poll()
        time.sleep(interval)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


_libc = None


def _die_with_harness():
    """preexec_fn: SIGKILL the child when the harness dies (the harness is
    single-threaded, so the thread that forked is the one that lives on)."""
    if _libc is not None:
        _libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


try:
    _libc = ctypes.CDLL(None, use_errno=True)
except OSError:
    _libc = None


# ---- the independent computation --------------------------------------------

def _reject_constant(name):
    raise ValueError("not JSON: " + name)  # Python accepts NaN and Infinity; RFC 8259 does not


_DECODER = json.JSONDecoder(parse_constant=_reject_constant)
I64_MIN, I64_MAX = -(1 << 63), (1 << 63) - 1


def _wrap64(v):
    v &= (1 << 64) - 1
    return v - (1 << 64) if v >> 63 else v


def _string_value(v):
    """A STRING column's value: a string, or the JSON text of any other
    value. (gen-activity's only non-string gt is a small integer.)"""
    if v is None or isinstance(v, str):
        return v
    return json.dumps(v, separators=(",", ":"), ensure_ascii=False)


def reference(input_dir):
    """The expected result of SQL over every file of input_dir, by the rules
    of README's "The source", computed with Python's json module. Returns
    ({gt: (n, si, mn, mx)}, rows, malformed)."""
    groups = {}
    rows = malformed = 0
    for name in sorted(os.listdir(input_dir)):
        if name.startswith((".", "_")):
            continue
        with open(os.path.join(input_dir, name), "rb") as f:
            data = f.read()
        lines = data.split(b"\n")
        if lines and lines[-1] == b"":
            lines.pop()  # after the final newline: no line
        for raw in lines:
            if raw.strip(b" \t\r") == b"":
                continue  # blank (also "\r" alone: a CRLF blank line)
            try:
                obj = _DECODER.decode(raw.decode("utf-8"))  # strict: no invalid UTF-8,
            except (ValueError, UnicodeDecodeError):         # no control characters in strings
                malformed += 1
                continue
            if not isinstance(obj, dict):
                malformed += 1
                continue
            rows += 1
            gt = _string_value(obj.get("gt"))
            idx = obj.get("Index")
            if not (type(idx) is int and I64_MIN <= idx <= I64_MAX):  # bool is not BIGINT
                idx = None  # missing, null, or the wrong type: NULL
            g = groups.setdefault(gt, [0, None, None, None])
            g[0] += 1
            if idx is not None:
                g[1] = idx if g[1] is None else _wrap64(g[1] + idx)
                g[2] = idx if g[2] is None else min(g[2], idx)
                g[3] = idx if g[3] is None else max(g[3], idx)
    return {k: tuple(v) for k, v in groups.items()}, rows, malformed


def compare(want, got_lines):
    """Differences between the reference and `spate result --format json`
    output, as lines (empty: equal)."""
    diff = []
    got = {}
    for line in got_lines:
        if not line.strip():
            continue
        try:
            r = json.loads(line)
            key = r["gt"]
            val = (r["n"], r["si"], r["mn"], r["mx"])
        except (ValueError, KeyError, TypeError) as e:
            diff.append(f"unreadable result line {line!r}: {e}")
            continue
        if key in got:
            diff.append(f"group gt={key!r} appears twice in the result")
        got[key] = val
    names = ("n", "si", "mn", "mx")
    for k in sorted(set(want) | set(got), key=lambda k: (k is not None, k or "")):
        w, g = want.get(k), got.get(k)
        if w == g:
            continue
        if g is None:
            diff.append(f"missing group gt={k!r}: expected n={w[0]} si={w[1]} mn={w[2]} mx={w[3]}")
        elif w is None:
            diff.append(f"extra group gt={k!r}: n={g[0]} si={g[1]} mn={g[2]} mx={g[3]}")
        else:
            parts = [f"{n} {gv} (expected {wv})" for n, gv, wv in zip(names, g, w) if gv != wv]
            diff.append(f"group gt={k!r}: " + ", ".join(parts))
    return diff


# ---- the trial's plan -----------------------------------------------------------

class TrialPlan:
    """Everything random about a trial, drawn from its own Random."""

    def __init__(self, rng, args, kinds, number):
        self.files = rng.randint(args.min_files, args.max_files)
        self.dirty_trial = rng.random() < 0.4
        self.file_rows, self.file_dirty, self.file_gap, self.file_seed = [], [], [], []
        for _ in range(self.files):
            self.file_rows.append(rng.randint(args.min_rows, args.max_rows))
            self.file_dirty.append(self.dirty_trial and rng.random() < 0.5)
            self.file_gap.append(rng.uniform(0.05, 0.6))
            self.file_seed.append(rng.randrange(1, 1 << 31))
        # The batch limit: 1 to 3 files, or (1 in 4) about 256K to 1M bytes.
        if rng.random() < 0.25:
            self.limit = ("--max-bytes-per-trigger", f"{rng.choice([256, 512, 1024])}K")
        else:
            self.limit = ("--max-files-per-trigger", str(rng.randint(1, 3)))
        self.split_size = rng.choice(SPLIT_SIZES)
        self.slots = rng.choice([1, 1, 2, 3])  # tasks an executor runs at once
        self.executors = rng.randint(1, 3)
        write_times = [sum(self.file_gap[:i + 1]) for i in range(self.files)]
        # A fault at any moment, or (4 in 10) within 50 ms of a file's
        # arrival, when the batch that takes it is likely running.
        self.fault_times = sorted(
            rng.choice(write_times) + rng.uniform(0.0, 0.05) if rng.random() < 0.4
            else rng.uniform(0.2, write_times[-1] + 1.5)
            for _ in range(args.faults_per_trial))
        self.kinds = kinds
        # --every-kind: trial T's faults take the kinds in turn (from where
        # trial T-1's would stop), each when it applies at its moment.
        self.turns = []
        if args.every_kind:
            order = [k for k in EVERY_KIND_ORDER if k in kinds]
            start = (number - 1) * args.faults_per_trial
            self.turns = [order[(start + i) % len(order)] for i in range(args.faults_per_trial)]
        self.rng = rng  # what happens at each fault is drawn when it happens

    def describe(self):
        dirty = sum(self.file_dirty)
        lines = sum(r * (2 if d else 1) for r, d in zip(self.file_rows, self.file_dirty))
        return (f"{self.files + dirty} files ({2 * dirty} dirty), {lines} lines; "
                f"{self.limit[0][2:]} {self.limit[1]}, split-size {self.split_size}; "
                f"{self.executors} executor(s) of {self.slots} slot(s) at start")


# ---- clusters ---------------------------------------------------------------------

class Process:
    """A process this harness started (and stops, by its pid)."""

    def __init__(self, name, argv, log_path, ready_marker):
        self.name = name
        self.log_path = log_path
        self.log = open(log_path, "ab")
        self.log.write(f"==== chaos: {' '.join(argv)}\n".encode())
        self.log.flush()
        self.log_offset = self.log.tell()
        self.ready_marker = ready_marker
        self.is_ready = False
        self.popen = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=self.log,
                                      stderr=subprocess.STDOUT,
                                      start_new_session=True, preexec_fn=_die_with_harness)
        self.pid = self.popen.pid
        self.state = "run"  # run | frozen | draining | stopping | gone
        self.deadline = None
        self.rc = None

    def signal(self, sig):
        if self.popen.poll() is None:
            os.kill(self.pid, sig)

    def ready(self):
        """Whether it logged ready_marker: spate logs it after it set up its
        SIGTERM handler (before that, SIGTERM kills it as it would any
        program, which tells nothing about draining)."""
        if not self.is_ready:
            with open(self.log_path, "rb") as f:
                f.seek(self.log_offset)
                self.is_ready = self.ready_marker in f.read()
        return self.is_ready

    def await_ready(self, problem):
        """Wait (bounded) until ready(); tell problem() if it never is."""
        if not wait_until(lambda: self.ready() or self.poll() is not None, READY_DEADLINE_S,
                          interval=0.01):
            problem(f"{self.name} (pid {self.pid}) did not log '{self.ready_marker.decode()}' "
                    f"within {READY_DEADLINE_S:.0f}s of its start; its log: {self.log_path}")

    def poll(self):
        if self.rc is None:
            self.rc = self.popen.poll()
            if self.rc is not None:
                self.log.close()
        return self.rc

    def kill(self):
        self.signal(signal.SIGKILL)
        try:
            self.popen.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        self.poll()


def describe_rc(rc):
    return f"killed by {signal.Signals(-rc).name}" if rc is not None and rc < 0 else f"exit status {rc}"


class Cluster:
    """What a trial does to its processes, whatever runs them. States: the
    driver is run | stopping (SIGTERMed by us) | down (killed or stopped by
    us); an executor is run | frozen | cut | draining | gone."""

    poll_every = 0.0  # seconds between checks of the processes

    def __init__(self, trial, args, tdir, log, after):
        self.trial = trial
        self.args = args
        self.tdir = tdir
        self.log = log
        self.after = after  # after(seconds, what, fn): schedule fn on the trial's timeline
        self.problems = []  # failures noticed, one line each
        self.driver_starts = 0
        self.executor_starts = 0
        self.restart_pause = 0.0

    def problem(self, text):
        self.problems.append(text)
        self.log("PROBLEM: " + text)

    def busy(self):
        """Something under way that the trial must wait for (a drain, a
        graceful driver stop)."""
        return False


class LocalCluster(Cluster):
    """A `spate driver` and `spate executor`s as processes on loopback."""

    def __init__(self, trial, args, tdir, input_dir, ckpt, plan, log, after):
        super().__init__(trial, args, tdir, log, after)
        self.port = free_port()
        self.endpoint = f"tcp://127.0.0.1:{self.port}"
        self.executor_timeout_s = EXECUTOR_TIMEOUT_S
        self.driver_argv = [
            args.spate, "driver", "--source", f"activity=json:{input_dir}", "--sql", SQL,
            "--schema", SCHEMA, "--checkpoint", ckpt, "--sink", "memory:chaos",
            "--bind", self.endpoint, "--executor-timeout", f"{int(EXECUTOR_TIMEOUT_S * 1000)}ms",
            "--heartbeat", HEARTBEAT, plan.limit[0], plan.limit[1],
            "--split-size", plan.split_size, "--max-task-failures", str(MAX_TASK_FAILURES),
        ]  # not --quiet: each batch's progress line goes to driver.log
        self.slots = plan.slots
        self.driver = None
        self.executors = []  # every executor started, in order

    # -- the driver --
    def start_driver(self):
        self.driver_starts += 1
        self.driver = Process("driver", self.driver_argv, os.path.join(self.tdir, "driver.log"),
                              b"executors connect to")
        self.log(f"driver started (pid {self.driver.pid}, start #{self.driver_starts})")

    def driver_up(self):
        return self.driver is not None and self.driver.state == "run" and self.driver.poll() is None

    def kill_driver(self):
        self.driver.state = "down"
        self.driver.kill()
        self.log(f"driver SIGKILLed (pid {self.driver.pid})")

    def freeze_driver(self):
        self.driver.signal(signal.SIGSTOP)
        self.driver.state = "frozen"
        self.log(f"driver SIGSTOPped (pid {self.driver.pid})")

    def thaw_driver(self, _=None):
        if self.driver is not None and self.driver.state == "frozen":
            self.driver.signal(signal.SIGCONT)
            self.driver.state = "run"
            self.log(f"driver SIGCONTed (pid {self.driver.pid})")

    def term_driver(self, restart_after, twice):
        """SIGTERM (twice: abandon the running batch at once); the driver
        must exit 0 within --stop-timeout and a margin; then it is started
        again after restart_after seconds."""
        d = self.driver
        d.await_ready(self.problem)
        d.state = "stopping"
        d.deadline = time.monotonic() + DRIVER_STOP_DEADLINE_S
        self.restart_pause = restart_after
        d.signal(signal.SIGTERM)
        self.log(f"driver SIGTERMed (pid {d.pid}){' twice' if twice else ''}")
        if twice:
            d.signal(signal.SIGTERM)

    # -- executors --
    def add_executor(self):
        self.executor_starts += 1
        n = len(self.executors) + 1
        name = f"t{self.trial}-e{n}"
        p = Process(name, [self.args.spate, "executor", "--driver", self.endpoint, "--id", name,
                           "--driver-timeout", DRIVER_TIMEOUT, "--slots", str(self.slots)],
                    os.path.join(self.tdir, f"executor-{n}.log"), b"connecting to")
        self.executors.append(p)
        self.log(f"executor {name} started (pid {p.pid})")

    def live(self, *states):
        return [e for e in self.executors if e.state in states]

    def kill_executor(self, e):
        e.state = "gone"
        e.kill()
        self.log(f"executor {e.name} SIGKILLed")

    def freeze(self, e):
        e.signal(signal.SIGSTOP)
        e.state = "frozen"
        self.log(f"executor {e.name} SIGSTOPped")

    def thaw(self, e):
        if e.state != "frozen":
            return
        e.signal(signal.SIGCONT)
        e.state = "run"
        self.log(f"executor {e.name} SIGCONTed")

    def drain(self, e, deadline_s=DRAIN_DEADLINE_S):
        e.await_ready(self.problem)
        e.signal(signal.SIGTERM)
        e.state = "draining"
        e.deadline = time.monotonic() + deadline_s
        self.log(f"executor {e.name} SIGTERMed (drain: must exit 0 within {deadline_s:.0f}s)")

    def busy(self):
        return bool(self.live("draining")) or (self.driver is not None and
                                                self.driver.state == "stopping")

    # -- watching --
    def poll(self):
        """Notice processes that exited: a draining executor or a stopping
        driver must exit 0 in time; nothing else may exit by itself.
        Returns False when the trial cannot go on (the driver exited by
        itself)."""
        ok = True
        d = self.driver
        now = time.monotonic()
        if d is not None and d.state in ("run", "frozen") and d.poll() is not None:
            self.problem(f"the driver exited by itself ({describe_rc(d.rc)}); its log: {d.log_path}")
            d.state = "down"
            ok = False
        if d is not None and d.state == "stopping":
            if d.poll() is not None or now > d.deadline:
                if d.rc is None:
                    self.problem(f"the driver still runs {DRIVER_STOP_DEADLINE_S:.0f}s after SIGTERM; "
                                 f"SIGKILLed; its log: {d.log_path}")
                    d.kill()
                elif d.rc != 0:
                    self.problem(f"the driver exited with {describe_rc(d.rc)} after SIGTERM "
                                 f"(expected 0); its log: {d.log_path}")
                else:
                    self.log("driver stopped: exit 0")
                d.state = "down"
                self.after(self.restart_pause, "restart the driver", self.start_driver)
        for e in self.executors:
            rc = e.poll()
            if e.state == "draining":
                if rc is not None:
                    e.state = "gone"
                    if rc == 0:
                        self.log(f"executor {e.name} drained: exit 0")
                    else:
                        self.problem(f"executor {e.name} exited with {describe_rc(rc)} after SIGTERM "
                                     f"(expected 0); its log: {e.log_path}")
                elif now > e.deadline:
                    self.problem(f"executor {e.name} still runs {DRAIN_DEADLINE_S:.0f}s after SIGTERM "
                                 f"(drain); SIGKILLed; its log: {e.log_path}")
                    e.state = "gone"
                    e.kill()
            elif e.state in ("run", "frozen") and rc is not None:
                self.problem(f"executor {e.name} exited by itself ({describe_rc(rc)}); "
                             f"its log: {e.log_path}")
                e.state = "gone"
        return ok

    def ensure_running(self):
        """For the end of a trial: a driver and at least one working executor."""
        for e in self.live("frozen"):
            self.thaw(e)
        self.thaw_driver()
        if not self.driver_up():
            self.start_driver()
        if not self.live("run"):
            self.add_executor()

    def stop_all(self):
        """SIGTERM the executors (each must exit 0), then the driver (exit 0)."""
        for e in self.live("frozen"):
            self.thaw(e)
        self.thaw_driver()
        for e in self.live("run"):
            self.drain(e, STOP_DEADLINE_S)
        wait_until(lambda: not self.live("draining"), STOP_DEADLINE_S + 1, on_poll=self.poll)
        self.poll()
        d = self.driver
        if d is not None and d.state == "run" and d.poll() is None:
            d.await_ready(self.problem)
            d.state = "down"
            d.signal(signal.SIGTERM)
            self.log("driver SIGTERMed")
            if wait_until(lambda: d.poll() is not None, STOP_DEADLINE_S):
                if d.rc != 0:
                    self.problem(f"the driver exited with {describe_rc(d.rc)} after SIGTERM "
                                 f"(expected 0); its log: {d.log_path}")
                else:
                    self.log("driver stopped: exit 0")
            else:
                self.problem(f"the driver still runs {STOP_DEADLINE_S:.0f}s after SIGTERM; "
                             f"SIGKILLed; its log: {d.log_path}")
        self.close()

    def close(self):
        """Last resort (also on Ctrl-C): SIGKILL whatever of ours still runs."""
        for p in self.executors + ([self.driver] if self.driver else []):
            if p.poll() is None:
                p.signal(signal.SIGCONT)
                p.kill()
            p.state = "gone" if p in self.executors else "down"


# ---- compose -----------------------------------------------------------------------

class ComposeExecutor:
    def __init__(self, cid, n):
        self.cid = cid
        self.name = f"c{n}-{cid[:12]}"
        self.state = "new"
        self.restarts = 0


class ComposeCluster(Cluster):
    """The docker-compose.yml cluster: a driver container and executor
    containers on the compose project's own network, a project per trial.
    Faults are Docker's: docker kill, docker pause/unpause, docker stop,
    docker network disconnect/connect, compose's --scale."""

    poll_every = 1.0

    def __init__(self, trial, args, tdir, input_dir, ckpt, plan, log, after):
        super().__init__(trial, args, tdir, log, after)
        compose_file = os.path.join(ROOT, "docker-compose.yml")
        if not os.path.exists(compose_file):
            raise HarnessError("--compose is not available yet: there is no docker-compose.yml")
        self.project = f"spatechaos{os.getpid()}t{trial}"
        self.compose = args.compose_cmd.split() + ["-p", self.project, "-f", compose_file]
        self.net = f"{self.project}_default"
        self.executor_timeout_s = args.compose_executor_timeout
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("SPATE_")}
        self.env.update({
            "SPATE_INPUT": input_dir, "SPATE_CHECKPOINT": ckpt, "SPATE_SQL": SQL,
            "SPATE_SCHEMA": SCHEMA, "SPATE_SINK": "memory:chaos",
            "SPATE_" + plan.limit[0][2:].upper().replace("-", "_"): plan.limit[1],
            "SPATE_SPLIT_SIZE": plan.split_size, "SPATE_SLOTS": str(plan.slots),
            "SPATE_MAX_TASK_FAILURES": str(MAX_TASK_FAILURES),
            "SPATE_EXECUTOR_TIMEOUT": f"{int(self.executor_timeout_s * 1000)}ms",
            "SPATE_HEARTBEAT": HEARTBEAT, "SPATE_DRIVER_TIMEOUT": DRIVER_TIMEOUT,
            "SPATE_HTTP_PORT": str(free_port()),
            "SPATE_INSECURE": "1" if args.insecure else "",
        })
        self.executors = []  # ComposeExecutor: every container seen
        self.driver_state = "down"
        self.driver_id = None
        self.driver_restarts = 0
        self.started = False

    # -- docker --
    def _run(self, argv, timeout=120, check=True):
        t0 = time.monotonic()
        try:
            r = subprocess.run(argv, env=self.env, stdin=subprocess.DEVNULL, capture_output=True,
                               text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise HarnessError(f"{' '.join(argv)} did not return within {timeout}s")
        with open(os.path.join(self.tdir, "docker.log"), "a") as f:
            f.write(f"[{time.monotonic() - t0:.2f}s] $ {' '.join(argv)}\n{r.stdout}{r.stderr}"
                    f"(exit {r.returncode})\n")
        if check and r.returncode != 0:
            raise HarnessError(f"{' '.join(argv)} failed (exit {r.returncode}): "
                               f"{(r.stderr or r.stdout).strip()[-500:]}")
        return r

    def _compose(self, *a, **kw):
        return self._run(self.compose + list(a), **kw)

    def _inspect(self, cid, fmt):
        r = self._run(["docker", "inspect", "-f", fmt, cid], check=False, timeout=30)
        return r.stdout.strip() if r.returncode == 0 else None

    def _ids(self, service):
        r = self._compose("ps", "-q", service, check=False, timeout=60)
        return [l.strip() for l in r.stdout.splitlines() if l.strip()]

    def _sync_executors(self):
        """Learn new containers; mark running the ones compose (re)started."""
        known = {e.cid: e for e in self.executors}
        for cid in self._ids("executor"):
            e = known.get(cid)
            if e is None:
                e = ComposeExecutor(cid, len(self.executors) + 1)
                self.executors.append(e)
            if e.state in ("new", "gone"):
                st = self._inspect(cid, "{{.State.Running}} {{.RestartCount}}")
                if st and st.split()[0] == "true":
                    e.state = "run"
                    e.restarts = int(st.split()[1])
                    self.log(f"executor {e.name} running")

    # -- the driver --
    def start_driver(self):
        self.driver_starts += 1
        if not self.started:
            self.started = True
            self._compose("up", "-d", "--no-deps", "driver")
            self.driver_id = self._ids("driver")[0]
        else:
            self._compose("start", "driver")
        st = self._inspect(self.driver_id, "{{.RestartCount}}")
        self.driver_restarts = int(st) if st and st.isdigit() else 0
        self.driver_state = "run"
        self.log(f"driver container started (start #{self.driver_starts})")

    def driver_up(self):
        return self.driver_state == "run"

    def kill_driver(self):
        self._run(["docker", "kill", self.driver_id])
        self.driver_state = "down"
        self.log(f"driver container docker-killed ({self.driver_id[:12]})")

    def freeze_driver(self):
        self._run(["docker", "pause", self.driver_id])
        self.driver_state = "frozen"
        self.log("driver container docker-paused")

    def thaw_driver(self, _=None):
        if self.driver_state == "frozen":
            self._run(["docker", "unpause", self.driver_id])
            self.driver_state = "run"
            self.log("driver container unpaused")

    def term_driver(self, restart_after, twice):
        """docker stop (SIGTERM; docker kill -s TERM again when twice): the
        driver must exit 0 in time; restarted after restart_after seconds."""
        t0 = time.monotonic()
        if twice:
            self._run(["docker", "kill", "-s", "TERM", self.driver_id])
        self._run(["docker", "stop", "-t", str(int(DRIVER_STOP_DEADLINE_S)), self.driver_id],
                  timeout=DRIVER_STOP_DEADLINE_S + 60)
        took = time.monotonic() - t0
        code = self._inspect(self.driver_id, "{{.State.ExitCode}}")
        self.driver_state = "down"
        if code != "0" or took > DRIVER_STOP_DEADLINE_S:
            self.problem(f"the driver container exited {code} {took:.1f}s after docker stop "
                         f"(expected 0 within {DRIVER_STOP_DEADLINE_S:.0f}s)")
        else:
            self.log(f"driver stopped (docker stop{', twice' if twice else ''}): exit 0 in {took:.1f}s")
        self.after(restart_after, "restart the driver", self.start_driver)

    # -- executors --
    def add_executor(self):
        """Start a stopped executor container again, or scale up by one."""
        self.executor_starts += 1
        stopped = [e for e in self.executors if e.state == "gone"
                   and self._inspect(e.cid, "{{.State.Status}}") == "exited"]
        if stopped:
            self._run(["docker", "start", stopped[0].cid])
        else:
            n = len(self._ids("executor")) + 1
            self._compose("up", "-d", "--no-deps", "--scale", f"executor={n}", "executor")
        self._sync_executors()

    def live(self, *states):
        return [e for e in self.executors if e.state in states]

    def kill_executor(self, e):
        if e.state == "frozen":
            self._run(["docker", "unpause", e.cid], check=False)
        self._run(["docker", "kill", e.cid])
        e.state = "gone"
        self.log(f"executor {e.name} docker-killed")

    def freeze(self, e):
        self._run(["docker", "pause", e.cid])
        e.state = "frozen"
        self.log(f"executor {e.name} docker-paused")

    def thaw(self, e):
        if e.state != "frozen":
            return
        self._run(["docker", "unpause", e.cid])
        e.state = "run"
        self.log(f"executor {e.name} unpaused")

    def cut(self, e):
        self._run(["docker", "network", "disconnect", self.net, e.cid])
        e.state = "cut"
        self.log(f"executor {e.name} cut off the network ({self.net})")

    def reconnect(self, e):
        if e.state != "cut":
            return
        self._run(["docker", "network", "connect", "--alias", "executor", self.net, e.cid])
        e.state = "run"
        self.log(f"executor {e.name} reconnected")

    def drain(self, e, deadline_s=DRAIN_DEADLINE_S):
        """docker stop: SIGTERM through tini; it must exit 0 in time."""
        t0 = time.monotonic()
        self._run(["docker", "stop", "-t", str(int(deadline_s)), e.cid], timeout=deadline_s + 60)
        took = time.monotonic() - t0
        e.state = "gone"
        code = self._inspect(e.cid, "{{.State.ExitCode}}")
        if code != "0" or took > deadline_s:
            self.problem(f"executor {e.name} exited {code} {took:.1f}s after docker stop "
                         f"(expected 0 within {deadline_s:.0f}s)")
        else:
            self.log(f"executor {e.name} drained (docker stop): exit 0 in {took:.1f}s")

    def scale_down(self):
        """compose up --scale executor=N-1: compose stops (SIGTERM) and
        removes the last container."""
        ids = self._ids("executor")
        self._compose("up", "-d", "--no-deps", "--scale", f"executor={len(ids) - 1}", "executor")
        left = set(self._ids("executor"))
        for e in self.executors:
            if e.cid not in left and e.state != "removed":
                e.state = "removed"
                self.log(f"executor {e.name} removed by scale-down")
        self._sync_executors()

    # -- watching --
    def poll(self):
        ok = True
        if self.driver_state in ("run", "frozen"):
            st = self._inspect(self.driver_id, "{{.State.Running}} {{.State.ExitCode}} {{.RestartCount}}")
            if st:
                running, code, restarts = st.split()
                if running != "true" or int(restarts) > self.driver_restarts:
                    self.problem(f"the driver container exited by itself (exit {code}, "
                                 f"{restarts} restarts by its policy); see compose.log")
                    self.driver_state = "down"
                    ok = False
        for e in self.live("run", "frozen", "cut"):
            st = self._inspect(e.cid, "{{.State.Running}} {{.State.ExitCode}} {{.RestartCount}}")
            if st is None:
                continue
            running, code, restarts = st.split()
            if running != "true" or int(restarts) > e.restarts:
                self.problem(f"executor {e.name} exited by itself (exit {code}, restarts "
                             f"{restarts}); see compose.log")
                e.restarts = int(restarts)
                if running != "true":
                    e.state = "gone"
        return ok

    def ensure_running(self):
        for e in self.live("frozen"):
            self.thaw(e)
        for e in self.live("cut"):
            self.reconnect(e)
        self.thaw_driver()
        if not self.driver_up():
            self.start_driver()
        if not self.live("run"):
            self.add_executor()

    def stop_all(self):
        if not self.started:
            return
        for e in self.live("frozen"):
            self.thaw(e)
        for e in self.live("cut"):
            self.reconnect(e)
        self.thaw_driver()
        for e in self.live("run"):
            self.drain(e, STOP_DEADLINE_S)
        if self.driver_up():
            t0 = time.monotonic()
            self._run(["docker", "stop", "-t", str(int(STOP_DEADLINE_S)), self.driver_id],
                      timeout=STOP_DEADLINE_S + 60)
            code = self._inspect(self.driver_id, "{{.State.ExitCode}}")
            if code != "0" or time.monotonic() - t0 > STOP_DEADLINE_S:
                self.problem(f"the driver container exited {code} after docker stop (expected 0)")
            else:
                self.log("driver stopped: exit 0")
            self.driver_state = "down"
        self.close()

    def close(self):
        if not self.started:
            return
        self.started = False
        for e in self.live("frozen"):
            self._run(["docker", "unpause", e.cid], check=False)
        if self.driver_state == "frozen":
            self._run(["docker", "unpause", self.driver_id], check=False)
        r = self._compose("logs", "--no-color", "-t", check=False, timeout=120)
        with open(os.path.join(self.tdir, "compose.log"), "w") as f:
            f.write(r.stdout)
        self._compose("down", "-v", "--timeout", "5", check=False, timeout=180)


# ---- a trial --------------------------------------------------------------------

class Trial:
    def __init__(self, number, args, root_dir):
        self.number = number
        self.args = args
        self.seed = args.seed + number
        self.rng = random.Random(self.seed)
        self.dir = os.path.join(root_dir, f"trial-{number}")
        self.input = os.path.join(self.dir, "input")
        self.ckpt = os.path.join(self.dir, "checkpoint")
        os.makedirs(self.input)
        os.makedirs(self.ckpt)
        self.t0 = self.origin = self.started = time.monotonic()
        self.timeline = open(os.path.join(self.dir, "chaos.log"), "a")
        kinds = COMPOSE_KINDS if args.compose else LOCAL_KINDS
        self.plan = TrialPlan(self.rng, args, kinds, number)
        self.faults = Counter()
        self.events = []  # heap of (time, seq, what, fn)
        self.seq = 0
        self.files_written = 0
        self.gen_rows = 0
        self.failures = []
        self.diff = []
        self.mid_batch = 0

    def log(self, text):
        self.timeline.write(f"{time.monotonic() - self.t0:8.3f}  {text}\n")
        self.timeline.flush()
        if self.args.verbose:
            print(f"    [{time.monotonic() - self.t0:7.3f}] {text}", flush=True)

    def at(self, t, what, fn):
        """Run fn at t seconds of the schedule (which starts once the
        processes of the trial's start run)."""
        heapq.heappush(self.events, (t, self.seq, what, fn))
        self.seq += 1

    def after(self, dt, what, fn):
        self.at(time.monotonic() - self.origin + dt, what, fn)

    # -- the writer --
    def write_file(self, i):
        p = self.plan
        # A dirty arrival is two files: gen-activity --dirty ends its odd
        # files without a final newline.
        argv = [self.args.gen, "--out", self.input, "--files", "2" if p.file_dirty[i] else "1",
                "--rows-per-file", str(p.file_rows[i]), "--seed", str(p.file_seed[i]),
                "--prefix", f"t{self.number}-f{i:03d}-"]
        if p.file_dirty[i]:
            argv.append("--dirty")
        r = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                           timeout=60)
        if r.returncode != 0:
            raise HarnessError(f"gen-activity failed: {r.stderr.strip()}")
        m = re.search(r"files=(\d+) rows=(\d+)", r.stderr)
        if not m:
            raise HarnessError(f"gen-activity said: {r.stderr.strip()}")
        self.files_written += int(m.group(1))
        self.gen_rows += int(m.group(2))
        self.log(f"wrote {'2 dirty files' if p.file_dirty[i] else 'a file'} of "
                 f"{p.file_rows[i]} lines (arrival {i})")

    # -- faults --
    def inject(self):
        c = self.cluster
        rng = self.plan.rng
        running = c.live("run")
        frozen = c.live("frozen")
        unusual = c.live("frozen", "cut", "draining")
        ok = {
            "driver_kill": c.driver_up(),
            "driver_term": c.driver_up(),
            "driver_freeze": c.driver_up(),
            "executor_kill": bool(running or frozen),
            "freeze_short": bool(running),
            "freeze_long": bool(running),
            "executor_add": len(c.live("run", "frozen", "cut")) < MAX_EXECUTORS,
            "executor_drain": bool(running),
            "all_gone": bool(running or frozen),
            "net_cut": bool(running),
            "scale_down": bool(running) and not unusual,
        }
        kinds = sorted(k for k in self.plan.kinds if ok[k])
        if not kinds:
            self.log("fault: none applies now")
            return
        kind = rng.choices(kinds, weights=[self.plan.kinds[k] for k in kinds])[0]
        if self.plan.turns and self.plan.turns[0] in kinds:
            kind = self.plan.turns.pop(0)  # (a turn that does not apply now waits)
        self.faults[kind] += 1
        st = self.ckpt_state()  # did it land while a batch ran (planned, not committed)?
        if st is not None and st[1] != st[2]:
            self.mid_batch += 1
        self.log(f"fault: {kind}{' (mid-batch)' if st is not None and st[1] != st[2] else ''}")
        to = c.executor_timeout_s
        if kind == "driver_kill":
            c.kill_driver()
            self.after(rng.uniform(0.0, 3.0), "restart the driver", c.start_driver)
        elif kind == "driver_freeze":
            c.freeze_driver()
            self.after(rng.uniform(0.3, 4.0), "thaw the driver", c.thaw_driver)
        elif kind == "driver_term":
            c.term_driver(restart_after=rng.uniform(0.0, 2.0), twice=rng.random() < 0.3)
        elif kind == "executor_kill":
            c.kill_executor(rng.choice(running + frozen))
            if rng.random() < 0.6:
                self.after(rng.uniform(0.0, 1.5), "replace the killed executor", c.add_executor)
        elif kind in ("freeze_short", "freeze_long"):
            e = rng.choice(running)
            c.freeze(e)
            d = rng.uniform(0.1, 0.6 * to) if kind == "freeze_short" else rng.uniform(1.5 * to, 4 * to)
            self.after(d, f"thaw {e.name}", self.once(e, c.thaw))
        elif kind == "executor_add":
            c.add_executor()
        elif kind == "executor_drain":
            c.drain(rng.choice(running))
        elif kind == "all_gone":
            for e in running + frozen:
                if e.state == "run" and rng.random() < 0.5:
                    c.drain(e)
                else:
                    c.kill_executor(e)
            self.after(rng.uniform(0.5, 3.0), "an executor after none", c.add_executor)
        elif kind == "net_cut":
            e = rng.choice(running)
            c.cut(e)
            d = rng.uniform(0.1, 0.6 * to) if rng.random() < 0.4 else rng.uniform(1.5 * to, 4 * to)
            self.after(d, f"reconnect {e.name}", self.once(e, c.reconnect))
        elif kind == "scale_down":
            c.scale_down()

    @staticmethod
    def once(e, undo):
        """undo(e), unless e changed state since (killed, restarted, frozen
        again): a thaw or reconnect belongs to its own freeze or cut."""
        e.gen = getattr(e, "gen", 0) + 1
        gen = e.gen

        def fn():
            if e.gen == gen:
                undo(e)
        return fn

    # -- the checkpoint --
    def ckpt_state(self):
        """(seen files, last planned, last committed) from spate checkpoint ls."""
        try:
            r = subprocess.run([self.args.spate, "checkpoint", "ls", self.ckpt],
                               stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=15)
        except subprocess.TimeoutExpired:
            return None
        if r.returncode != 0:
            return None
        m = re.search(r"^sources\s+(\d+)", r.stdout, re.M)
        p = re.search(r"^last planned batch:\s*(\S+)", r.stdout, re.M)
        c = re.search(r"^last committed batch:\s*(\S+)", r.stdout, re.M)
        if not (m and p and c):
            return None
        return int(m.group(1)), p.group(1), c.group(1)

    def all_committed(self):
        st = self.ckpt_state()
        self.last_ckpt_state = st
        return st is not None and st[0] == self.files_written and st[1] == st[2]

    def describe_ckpt(self):
        st = self.last_ckpt_state
        if st is None:
            return "unreadable"
        return f"{st[0]} files seen, last planned batch {st[1]}, last committed {st[2]}"

    # -- the whole trial --
    def run(self):
        cls = ComposeCluster if self.args.compose else LocalCluster
        self.log(f"trial {self.number}, seed {self.seed}: {self.plan.describe()}")
        self.cluster = c = cls(self.number, self.args, self.dir, self.input, self.ckpt, self.plan,
                               self.log, self.after)
        try:
            self._run(c)
        finally:
            c.close()
            self.failures.extend(c.problems)
            self.timeline.close()

    def _run(self, c):
        p = self.plan
        self.t0 = time.monotonic()
        c.start_driver()
        for _ in range(p.executors):
            c.add_executor()
        t = 0.0
        for i in range(p.files):
            t += p.file_gap[i]
            self.at(t, f"write file {i}", lambda i=i: self.write_file(i))
        for ft in p.fault_times:
            self.at(ft, "fault", self.inject)
        self.origin = time.monotonic()

        # The schedule: writes, faults, and what faults schedule (restarts,
        # thaws), each at its time; the processes checked in between. Then
        # what is under way (drains, a driver's graceful stop) ends.
        next_poll = 0.0
        while self.events or c.busy():
            now = time.monotonic() - self.origin
            if now >= next_poll:
                if not c.poll():
                    self.failures.append("the trial stopped early: the driver exited by itself")
                    return
                next_poll = now + c.poll_every
            if not self.events:
                time.sleep(0.05)
                continue
            t, _, what, fn = self.events[0]
            if t > now:
                time.sleep(min(0.05, t - now))
                continue
            heapq.heappop(self.events)
            fn()

        # Settle: a driver and a working executor, then every file committed.
        c.ensure_running()
        self.log(f"schedule done ({self.files_written} files written); waiting up to "
                 f"{self.args.settle:.0f}s for every file to be committed")
        self.last_ckpt_state = None
        alive = [True]
        polled = [0.0]

        def watch():
            if time.monotonic() - polled[0] >= c.poll_every:
                polled[0] = time.monotonic()
                if not c.poll():
                    alive[0] = False

        done = wait_until(lambda: not alive[0] or self.all_committed(), self.args.settle,
                          interval=0.2, on_poll=watch)
        if not alive[0]:
            self.failures.append("the driver exited by itself while the last files were processed")
            return
        if not done:
            self.failures.append(
                f"not every file committed {self.args.settle:.0f}s after the schedule ended "
                f"(checkpoint: {self.describe_ckpt()}; {self.files_written} files written)")
        else:
            self.log(f"every file committed: {self.describe_ckpt()}")

        c.stop_all()

        # The result against the independent computation.
        want, rows, malformed = reference(self.input)
        if rows != self.gen_rows:
            raise HarnessError(f"the reference counts {rows} rows, gen-activity wrote "
                               f"{self.gen_rows}: the harness's JSON rules are off")
        self.rows, self.malformed = rows, malformed
        r = subprocess.run([self.args.spate, "result", "--checkpoint", self.ckpt, "--format", "json"],
                           stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30)
        if r.returncode != 0:
            self.failures.append(f"spate result failed: {r.stderr.strip()}")
        else:
            self.diff = compare(want, r.stdout.splitlines())
            if self.diff:
                got = 0
                for line in r.stdout.splitlines():
                    try:
                        got += json.loads(line)["n"]
                    except (ValueError, KeyError, TypeError):
                        pass
                self.failures.append(f"the result differs from the reference: {got} rows counted, "
                                     f"{rows} expected")
        st = self.ckpt_state()
        if st is not None and st[0] != self.files_written:
            self.failures.append(f"the checkpoint has seen {st[0]} files, {self.files_written} written")


# ---- main ---------------------------------------------------------------------------

def parse_args(argv):
    ap = argparse.ArgumentParser(
        prog="scripts/chaos",
        description="Stream activity files into a spate query while killing, freezing, "
                    "adding and draining processes at random moments; check each trial's "
                    "result exactly against an independent computation.",
        epilog="scripts/chaos also takes --build-dir DIR (build there; default build/) and, "
               "with --compose, --no-image (use the spate:latest there is instead of "
               "building it with scripts/docker-image).")
    ap.add_argument("--trials", type=int, default=5, metavar="N", help="trials to run (default 5)")
    ap.add_argument("--seed", type=int, default=None, metavar="S",
                    help="the run's seed (default: from the time; printed)")
    ap.add_argument("--trial", type=int, default=None, metavar="T",
                    help="run only trial T of --seed (to reproduce a failure)")
    ap.add_argument("--faults-per-trial", type=int, default=6, metavar="M",
                    help="faults injected per trial (default 6)")
    ap.add_argument("--keep", action="store_true", help="keep every trial's directory")
    ap.add_argument("--compose", action="store_true",
                    help="run the docker-compose.yml cluster instead of local processes")
    ap.add_argument("--every-kind", action="store_true",
                    help="faults take the kinds in turn (each when it applies), so that a "
                         "short run injects every kind")
    ap.add_argument("--ci", action="store_true",
                    help="the CI run: --trials 6 --seed 42 --faults-per-trial 5 "
                         "--every-kind, 4 to 8 arrivals per trial (about 30 s)")
    ap.add_argument("--spate", default=None, metavar="PATH", help="the spate binary (default: BUILD/cli/spate)")
    ap.add_argument("--gen", default=None, metavar="PATH",
                    help="the gen-activity binary (default: beside --spate, or in its build)")
    ap.add_argument("--settle", type=float, default=60.0, metavar="SECONDS",
                    help="seconds a trial may take, after its last fault, to commit "
                         "every file (default 60)")
    ap.add_argument("--min-files", type=int, default=5, metavar="N",
                    help="file arrivals per trial, at least (default 5)")
    ap.add_argument("--max-files", type=int, default=12, metavar="N",
                    help="file arrivals per trial, at most (default 12)")
    ap.add_argument("--min-rows", type=int, default=300, metavar="R",
                    help="lines per file, at least (default 300)")
    ap.add_argument("--max-rows", type=int, default=3000, metavar="R",
                    help="lines per file, at most (default 3000)")
    ap.add_argument("--tmp", default=None, metavar="DIR", help="where trial directories go (default: $TMPDIR)")
    ap.add_argument("--compose-cmd", default=os.environ.get("SPATE_COMPOSE", "docker-compose"),
                    metavar="CMD",
                    help="the compose command (default docker-compose; SPATE_COMPOSE)")
    ap.add_argument("--compose-executor-timeout", type=float, default=2.0, metavar="SECONDS",
                    help="--compose: the executors' timeout in seconds (default 2)")
    ap.add_argument("--insecure", action="store_true",
                    help="--compose: SPATE_INSECURE=1 (no CURVE keys)")
    ap.add_argument("-v", "--verbose", action="store_true", help="print each trial's timeline")
    a = ap.parse_args(argv)
    if a.ci:
        a.trials, a.faults_per_trial = 6, 5
        a.seed = 42 if a.seed is None else a.seed
        a.min_files, a.max_files = 4, 8
        a.every_kind = True
    if a.seed is None:
        a.seed = int(time.time()) % 1000000
    if a.trials < 1 or a.faults_per_trial < 0 or a.min_files < 1 or a.max_files < a.min_files \
            or a.min_rows < 0 or a.max_rows < a.min_rows:
        ap.error("bad numbers")
    if a.spate is None:
        a.spate = os.path.join(ROOT, "build", "cli", "spate")
    a.spate = os.path.abspath(a.spate)
    if a.gen is not None:
        a.gen = os.path.abspath(a.gen)
    if a.gen is None:  # beside spate, or in spate's build tree, or on the PATH
        here = os.path.dirname(a.spate)
        cands = [os.path.join(here, "gen-activity"),
                 os.path.join(os.path.dirname(here), "scripts", "src", "gen-activity")]
        a.gen = next((c for c in cands if os.access(c, os.X_OK)),
                     shutil.which("gen-activity") or cands[-1])
    for tool in (a.spate, a.gen):
        if not os.access(tool, os.X_OK):
            ap.error(f"{tool} is not an executable (build first, or use scripts/chaos)")
    return a


def reproduce_flags(args):
    """The flags that rerun the run's plans (add --trial T for one)."""
    if args.ci:
        flags = ["--ci", "--seed", str(args.seed)]
    else:
        flags = ["--seed", str(args.seed)] + (["--every-kind"] if args.every_kind else [])
        for name, default in (("faults_per_trial", 6), ("min_files", 5), ("max_files", 12),
                              ("min_rows", 300), ("max_rows", 3000)):
            v = getattr(args, name)
            if v != default:
                flags += ["--" + name.replace("_", "-"), str(v)]
    if args.compose:
        flags.append("--compose")
    return " ".join(flags)


def main(argv):
    args = parse_args(argv)
    root = tempfile.mkdtemp(prefix="spate-chaos.", dir=args.tmp)
    mode = "compose" if args.compose else "local"
    trials = [args.trial] if args.trial is not None else list(range(1, args.trials + 1))
    print(f"chaos: seed {args.seed}, {len(trials)} trial(s), {args.faults_per_trial} faults per "
          f"trial, {mode} ({args.spate}); trial directories under {root}", flush=True)
    t_start = time.monotonic()
    totals = Counter()
    mid_batch = 0
    passed = failed = 0
    failed_trials = []
    interrupted = False
    for n in trials:
        tr = None
        try:
            tr = Trial(n, args, root)
            tr.run()
        except KeyboardInterrupt:
            interrupted = True
            print(f"chaos: interrupted in trial {n}; its directory: {tr.dir if tr else root}")
            break
        except HarnessError as e:
            print(f"chaos: harness error in trial {n}: {e}", file=sys.stderr)
            print(f"chaos: its directory: {tr.dir if tr else root}", file=sys.stderr)
            return 2
        totals += tr.faults
        mid_batch += tr.mid_batch
        took = time.monotonic() - tr.started
        faults = ", ".join(f"{k} {v}" for k, v in sorted(tr.faults.items())) or "none"
        if tr.failures:
            failed += 1
            failed_trials.append(n)
            print(f"trial {n}: FAIL after {took:.1f}s ({tr.plan.describe()}; faults: {faults})")
            print(f"  reproduce: scripts/chaos {reproduce_flags(args)} --trial {n}")
            for f in tr.failures:
                print(f"  - {f}")
            for d in tr.diff:
                print(f"    {d}")
            print(f"  kept: {tr.dir} (chaos.log: the timeline below; process logs beside it)")
            with open(os.path.join(tr.dir, "chaos.log")) as f:
                timeline = f.read().splitlines()
            for line in timeline[:80]:
                print(f"    | {line}")
            if len(timeline) > 80:
                print(f"    | ... ({len(timeline) - 80} more lines in chaos.log)")
            sys.stdout.flush()
        else:
            passed += 1
            print(f"trial {n}: pass in {took:.1f}s: {tr.plan.describe()}, "
                  f"{tr.rows} rows ({tr.malformed} malformed lines), "
                  f"{tr.cluster.driver_starts} driver and {tr.cluster.executor_starts} executor "
                  f"start(s); faults: {faults} "
                  f"({tr.mid_batch} mid-batch)", flush=True)
            if not args.keep:
                shutil.rmtree(tr.dir, ignore_errors=True)
    wall = time.monotonic() - t_start
    run = passed + failed
    print(f"chaos: {run} trial(s) run, {passed} passed, {failed} failed"
          f"{' (interrupted)' if interrupted else ''}; seed {args.seed}; {mode}; "
          f"wall time {wall:.1f}s")
    print("faults injected: " + (", ".join(f"{k} {v}" for k, v in sorted(totals.items())) or "none")
          + f" ({sum(totals.values())} in all; {mid_batch} while a batch was planned "
            f"and not yet committed)")
    if failed:
        print(f"failed trials: {' '.join(map(str, failed_trials))} (directories kept under {root})")
    elif not args.keep and not interrupted:
        shutil.rmtree(root, ignore_errors=True)
    return 1 if failed or interrupted else 0


def _on_sigterm(signum, frame):
    raise KeyboardInterrupt  # stop like Ctrl-C: every process of ours is killed


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, _on_sigterm)
    sys.exit(main(sys.argv[1:]))
