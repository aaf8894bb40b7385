#!/usr/bin/env python3
"""PEZ throughput against the HTTP ceiling of this machine, measured in one run.

Starts the release builds of `pez` and of the `ceiling` example (the
smallest warp server: answers 71 to every GET), then drives each target in
turn with the same wrk command, alternating for several rounds so that
noise from a shared machine hits all targets alike:

- the ceiling;
- PEZ on a fresh embedded store: /v1/forward, /v2/forward?count=100 and
  /v2/reverse?count=100;
- PEZ on PostgreSQL: the same three;
- PEZ on PostgreSQL, a strict-mode sequence (every number straight from
  the store);
- pgbench calling `SELECT nextval(...)` once per number over TCP with as
  many connections: the original PEZ's approach, without its Python.

Then three PEZ instances on one database, each driven by its own wrk at
once, and the lease calls per second that reach PostgreSQL (counted from
the instances' "leased" log lines).

PostgreSQL is a throwaway cluster (tests/pg-cluster.sh) unless
PEZ_BENCH_DATABASE_URL names a server to use (its database is created).

Prints per target (medians over rounds): req/s, numbers/s, p50, p99, the
server's CPU time per request (user and system, from /proc/PID/stat
before and after each run) and its context switches per request (every
thread's, from /proc/PID/task/*/status); then PEZ's ratios to the ceiling
(each the median of the rounds' ratios to the ceiling run of the same
round): req/s, CPU per request, p99; and PEZ's peak RSS. A script that
prints figures, not a test: it asserts nothing about speed.

Usage: bench/bench.py [--rounds N] [--duration S] [--connections C] [--threads T] [--warmup S]
(`make bench` builds the binaries first.)
"""

import argparse
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RELEASE = os.path.join(ROOT, "target", "release")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ensure_wrk():
    if shutil.which("wrk"):
        return
    if os.geteuid() == 0 and shutil.which("apt-get"):
        print("wrk is missing; installing it from Debian's packages", flush=True)
        subprocess.run(["apt-get", "update", "-qq"], check=True)
        subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=True)
    if not shutil.which("wrk"):
        sys.exit("bench: wrk is needed (apt-get install wrk)")


def wait_ready(url, process, timeout=20):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if process.poll() is not None:
            sys.exit(f"bench: {process.args[0]} exited early with {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.05)
    sys.exit(f"bench: {url} did not answer within {timeout}s")


def start(argv, env, ready_url):
    process = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_ready(ready_url, process)
    return process


def stop(process, timeout=10):
    """SIGTERM, then SIGKILL after `timeout` seconds."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    """User and system CPU seconds of process `pid` so far (all threads)."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    # Fields 14 and 15 of stat(5); the split starts at field 3.
    return int(fields[11]) / TICKS, int(fields[12]) / TICKS


def context_switches(pid):
    """Voluntary and involuntary context switches of every thread of `pid`."""
    total = 0
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{task}/status") as status:
                for line in status:
                    if line.startswith(("voluntary_ctxt_switches:", "nonvoluntary_ctxt_switches:")):
                        total += int(line.split()[1])
        except FileNotFoundError:
            pass  # a thread that ended meanwhile
    return total


UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def to_ms(text):
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()
    return float(number) * UNITS[unit]


def run_wrk(url, args, pid):
    """One wrk run against `url` served by process `pid`: req/s, p50, p99,
    and the server's user and system CPU microseconds and context switches
    per request."""
    user0, system0 = cpu_seconds(pid)
    switches0 = context_switches(pid)
    out = subprocess.run(
        ["wrk", f"-t{args.threads}", f"-c{args.connections}", f"-d{args.duration}s", "--latency", url],
        check=True, capture_output=True, text=True,
    ).stdout
    user1, system1 = cpu_seconds(pid)
    switches1 = context_switches(pid)
    requests = int(re.search(r"(\d+) requests in", out).group(1))
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p50 = to_ms(re.search(r"^\s+50%\s+(\S+)", out, re.M).group(1))
    p99 = to_ms(re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(r"Socket errors: (.*)", out)
    if errors or socket_errors:
        print(f"  warning: {url}: {errors.group(0) if errors else ''} {socket_errors.group(0) if socket_errors else ''}")
    per = max(requests, 1)
    return Run(rps, p50, p99, (user1 - user0) * 1e6 / per, (system1 - system0) * 1e6 / per,
               (switches1 - switches0) / per)


class Run:
    """One wrk run's figures; CPU in microseconds per request."""

    def __init__(self, rps, p50, p99, user_us=float("nan"), system_us=float("nan"), switches=float("nan")):
        self.rps, self.p50, self.p99 = rps, p50, p99
        self.user_us, self.system_us, self.switches = user_us, system_us, switches

    @property
    def cpu_us(self):
        return self.user_us + self.system_us


def pg_bindir():
    try:
        return subprocess.run(["pg_config", "--bindir"], check=True, capture_output=True, text=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        sys.exit("bench: PostgreSQL's binaries are needed (pg_config --bindir)")


def psql(url, sql):
    subprocess.run([os.path.join(pg_bindir(), "psql"), url, "-qXc", sql], check=True, stdout=subprocess.DEVNULL,
                   env=dict(os.environ, PGOPTIONS="-c client_min_messages=warning"))


def with_database(url, name):
    head, _, tail = url.partition("://")
    authority, slash, rest = tail.partition("/")
    query = rest.partition("?")[2]
    return f"{head}://{authority}/{name}" + (f"?{query}" if query else "")


class Postgres:
    """A database for the benchmark, on a throwaway cluster or a given server."""

    def __init__(self):
        self.cluster_dir = None
        admin = os.environ.get("PEZ_BENCH_DATABASE_URL")
        if not admin:
            self.cluster_dir = tempfile.mkdtemp(prefix="pez-bench-pg-")
            admin = subprocess.run(
                [os.path.join(ROOT, "tests", "pg-cluster.sh"), "start", self.cluster_dir, "--watch", str(os.getpid())],
                check=True, capture_output=True, text=True,
            ).stdout.strip()
        self.admin = admin
        self.name = f"pez_bench_{os.getpid()}"
        psql(admin, f"DROP DATABASE IF EXISTS {self.name}")
        psql(admin, f"CREATE DATABASE {self.name}")
        self.url = with_database(admin, self.name)
        psql(self.url, "CREATE SEQUENCE bench_nextval")

    def close(self):
        psql(self.admin, f"DROP DATABASE IF EXISTS {self.name} WITH (FORCE)")
        if self.cluster_dir:
            subprocess.run([os.path.join(ROOT, "tests", "pg-cluster.sh"), "remove", self.cluster_dir], check=False)


def run_pgbench(url, args):
    with tempfile.NamedTemporaryFile("w", suffix=".sql", delete=False) as f:
        f.write("SELECT nextval('bench_nextval');\n")
        script = f.name
    try:
        out = subprocess.run(
            [os.path.join(pg_bindir(), "pgbench"), "-n", "-c", str(args.connections), "-j", str(args.threads),
             "-T", str(args.duration), "-f", script, "-r", url],
            check=True, capture_output=True, text=True,
        ).stdout
    finally:
        os.unlink(script)
    tps = float(re.search(r"tps = ([\d.]+)", out).group(1))
    latency = float(re.search(r"latency average = ([\d.]+) ms", out).group(1))
    return tps, latency


def peak_rss_mib(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def lease_latency(port):
    """Leases so far of `port`'s PEZ (from its /metrics), their mean, and the
    smallest histogram bound all of them stayed under."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    count = sum(float(v) for v in re.findall(r"^pez_lease_duration_seconds_count\{[^}]*\} (\S+)$", text, re.M))
    total = sum(float(v) for v in re.findall(r"^pez_lease_duration_seconds_sum\{[^}]*\} (\S+)$", text, re.M))
    bounds = {}
    for le, value in re.findall(r'^pez_lease_duration_seconds_bucket\{[^}]*le="([^"]+)"\} (\S+)$', text, re.M):
        bounds[le] = bounds.get(le, 0) + float(value)
    under = min((float(le) for le, n in bounds.items() if n >= count), default=float("inf"))
    return count, (total / count if count else float("nan")), under


def three_instances(url, env, args):
    """Three PEZ instances on one database, each under its own wrk at once.
    Returns (requests, leases during the run, seconds)."""
    instances = []
    try:
        for i in range(3):
            port = free_port()
            log = tempfile.TemporaryFile(mode="w+")
            process = subprocess.Popen(
                [os.path.join(RELEASE, "pez")],
                # The leaser's lines, counted below, are at debug.
                env=dict(env, PEZ_LISTEN=f"127.0.0.1:{port}", PEZ_DATABASE_URL=url,
                         PEZ_LOG="info,pez::dispenser::leaser=debug"),
                stdout=subprocess.DEVNULL, stderr=log,
            )
            wait_ready(f"http://127.0.0.1:{port}/v1/forward", process)
            instances.append((process, port, log))

        def leases():
            total = 0
            for _, _, log in instances:
                log.seek(0)
                total += sum(1 for line in log if ": leased " in line)
            return total

        before = leases()
        connections = max(3, args.connections // 3)
        loads = [
            subprocess.Popen(["wrk", "-t1", f"-c{connections}", f"-d{args.duration}s",
                              f"http://127.0.0.1:{port}/v1/forward"], stdout=subprocess.PIPE, text=True)
            for _, port, _ in instances
        ]
        requests = 0
        for load in loads:
            out, _ = load.communicate()
            requests += int(re.search(r"(\d+) requests in", out).group(1))
        during = leases() - before
        print(f"  three instances: {requests} requests, {during} leases in {args.duration} s", flush=True)
        return requests, during, float(args.duration)
    finally:
        for process, _, _ in instances:
            stop(process)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--warmup", type=int, default=3, help="seconds of unrecorded wrk per PEZ target first")
    parser.add_argument("--only", help="only the targets whose name holds one of these words, comma-separated "
                        "(e.g. 'strict,pgbench'); the ceiling always runs; skips the three-instance run")
    args = parser.parse_args()

    for binary in ("pez", "examples/ceiling"):
        if not os.access(os.path.join(RELEASE, binary), os.X_OK):
            sys.exit(f"bench: {binary} is not built; run `make bench`")
    ensure_wrk()

    data_dir = tempfile.mkdtemp(prefix="pez-bench-")
    ceiling_port, pez_port, pg_port = free_port(), free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PEZ_")}
    pez_env = dict(env, PEZ_LISTEN=f"127.0.0.1:{pez_port}", PEZ_DATA_DIR=data_dir, PEZ_LOG="warn")
    postgres = Postgres()
    processes = []
    try:
        ceiling = start([os.path.join(RELEASE, "examples", "ceiling"), f"127.0.0.1:{ceiling_port}"],
                        env, f"http://127.0.0.1:{ceiling_port}/")
        processes.append(ceiling)
        pez = start([os.path.join(RELEASE, "pez")], pez_env, f"http://127.0.0.1:{pez_port}/v1/forward")
        processes.append(pez)
        pez_pg_env = dict(env, PEZ_LISTEN=f"127.0.0.1:{pg_port}", PEZ_DATABASE_URL=postgres.url, PEZ_LOG="warn")
        subprocess.run([os.path.join(RELEASE, "pez"), "sequence", "create", "bench-strict", "--mode", "strict"],
                       env=pez_pg_env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        pez_pg = start([os.path.join(RELEASE, "pez")], pez_pg_env, f"http://127.0.0.1:{pg_port}/v1/forward")
        processes.append(pez_pg)
        ceiling_url = f"http://127.0.0.1:{ceiling_port}"
        pez_url, pg_url = f"http://127.0.0.1:{pez_port}", f"http://127.0.0.1:{pg_port}"
        # (name, url, process, numbers per request); url None: pgbench.
        targets = [
            ("ceiling (warp, answers 71)", f"{ceiling_url}/", ceiling, 1),
            ("pez /v1/forward", f"{pez_url}/v1/forward", pez, 1),
            ("pez /v2/forward?count=100", f"{pez_url}/v2/forward?count=100", pez, 100),
            ("pez /v2/reverse?count=100", f"{pez_url}/v2/reverse?count=100", pez, 100),
            ("pg /v1/forward", f"{pg_url}/v1/forward", pez_pg, 1),
            ("pg /v2/forward?count=100", f"{pg_url}/v2/forward?count=100", pez_pg, 100),
            ("pg /v2/reverse?count=100", f"{pg_url}/v2/reverse?count=100", pez_pg, 100),
            ("pg strict mode /next", f"{pg_url}/v2/sequences/bench-strict/next", pez_pg, 1),
            ("pgbench nextval per number", None, None, 1),
        ]
        if args.only:
            words = [w.strip() for w in args.only.split(",") if w.strip()]
            targets = [t for t in targets if t[2] is ceiling or any(w in t[0] for w in words)]
        results = {name: [] for name, _, _, _ in targets}
        print(f"wrk -t{args.threads} -c{args.connections} -d{args.duration}s --latency; "
              f"pgbench -c{args.connections} -j{args.threads} -T{args.duration} over TCP; "
              f"{args.rounds} rounds, targets alternating; {os.cpu_count()} CPUs; "
              f"CPU and context switches are the server's, per request", flush=True)
        # Blocks start small and double while they last under a minute, so a
        # fresh sequence leases often at first: warm each target up, unrecorded,
        # so the rounds measure the steady state.
        for name, url, process, _ in targets:
            if url is not None and process is not ceiling:
                subprocess.run(["wrk", f"-t{args.threads}", f"-c{args.connections}", f"-d{args.warmup}s", url],
                               check=True, capture_output=True)
        print(f"  warm-up: {args.warmup} s of wrk on each PEZ target, unrecorded", flush=True)
        for round_no in range(1, args.rounds + 1):
            for name, url, process, _ in targets:
                if url is None:
                    tps, latency = run_pgbench(postgres.url, args)
                    results[name].append(Run(tps, latency, float("nan")))
                    print(f"  round {round_no}: {name:<27} {tps:>8.0f} nextval/s  mean latency {latency:.3f} ms",
                          flush=True)
                    continue
                run = run_wrk(url, args, process.pid)
                results[name].append(run)
                print(f"  round {round_no}: {name:<27} {run.rps:>8.0f} req/s  p50 {run.p50:.3f} ms  "
                      f"p99 {run.p99:.3f} ms  cpu {run.user_us:.2f} user + {run.system_us:.2f} sys us  "
                      f"{run.switches:.3f} cs", flush=True)
        rss = peak_rss_mib(pez.pid)
        rss_pg = peak_rss_mib(pez_pg.pid)
        leases = {"embedded": lease_latency(pez_port), "postgres": lease_latency(pg_port)}
        stop(pez_pg)
        three = None if args.only else three_instances(postgres.url, env, args)
    finally:
        for process in processes:
            stop(process)
        shutil.rmtree(data_dir, ignore_errors=True)
        postgres.close()

    median = statistics.median
    ceiling_runs = results[targets[0][0]]
    print()
    print("medians over rounds; CPU in microseconds per request (user + system), cs = context switches per request;")
    print("'x' columns: the median of each round's ratio to the ceiling run of the same round")
    print(f"{'target':<28} {'req/s':>8} {'numbers/s':>10} {'p50 ms':>7} {'p99 ms':>7} {'user us':>7} {'sys us':>7}"
          f" {'cs':>6} {'x req/s':>7} {'x cpu':>6} {'x p99':>6}")
    for name, url, _, per_request in targets:
        runs = results[name]
        rps = median(r.rps for r in runs)
        ratio = median(r.rps / c.rps for r, c in zip(runs, ceiling_runs))
        cpu_ratio = median(r.cpu_us / c.cpu_us for r, c in zip(runs, ceiling_runs))
        p99_ratio = median(r.p99 / c.p99 for r, c in zip(runs, ceiling_runs))
        print(f"{name:<28} {rps:>8.0f} {rps * per_request:>10.0f} {median(r.p50 for r in runs):>7.3f}"
              f" {median(r.p99 for r in runs):>7.3f} {median(r.user_us for r in runs):>7.2f}"
              f" {median(r.system_us for r in runs):>7.2f} {median(r.switches for r in runs):>6.3f}"
              f" {ratio:>7.2f} {cpu_ratio:>6.2f} {p99_ratio:>6.2f}")
    def rate(name):
        return median(r.rps for r in results[name]) if results.get(name) else float("nan")

    pgbench = rate("pgbench nextval per number")
    print(f"pez on postgres / pgbench nextval: {rate('pg /v1/forward') / pgbench:.1f}x; "
          f"strict mode / pgbench nextval: {rate('pg strict mode /next') / pgbench:.2f}x")
    print(f"pez peak RSS (VmHWM) under load: embedded store {rss:.1f} MiB, postgres store {rss_pg:.1f} MiB")
    for store, (count, mean, under) in leases.items():
        print(f"leases on the {store} store: {count:.0f}, mean {mean * 1e3:.1f} ms, all under {under} s "
              f"(a v2 count=100 run empties half a 1,000,000-number block in 5,000 requests)")
    if three is None:
        return
    requests, leases, seconds = three
    print(f"three instances on one database: {requests / seconds:.0f} req/s in all, "
          f"{leases} leases in {seconds:.0f} s = {leases / seconds:.2f} lease calls/s reaching PostgreSQL")


if __name__ == "__main__":
    main()
