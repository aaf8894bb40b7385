#!/usr/bin/env python3
"""PEZ throughput against the HTTP ceiling of this machine, measured in one run.

Starts the release builds of `pez` (fresh embedded store) and of the
`ceiling` example (the smallest warp server: answers 71 to every GET), then
drives each in turn with the same wrk command, alternating for several
rounds so that noise from a shared machine hits all targets alike. Prints
req/s, p50 and p99 per target (median over rounds), the ratio PEZ / ceiling
and PEZ's peak RSS. A script that prints figures, not a test: it asserts
nothing about speed.

Usage: bench/bench.py [--rounds N] [--duration S] [--connections C] [--threads T]
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


def stop(process):
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def to_ms(text):
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()
    return float(number) * UNITS[unit]


def run_wrk(url, args):
    out = subprocess.run(
        ["wrk", f"-t{args.threads}", f"-c{args.connections}", f"-d{args.duration}s", "--latency", url],
        check=True, capture_output=True, text=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p50 = to_ms(re.search(r"^\s+50%\s+(\S+)", out, re.M).group(1))
    p99 = to_ms(re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(r"Socket errors: (.*)", out)
    if errors or socket_errors:
        print(f"  warning: {url}: {errors.group(0) if errors else ''} {socket_errors.group(0) if socket_errors else ''}")
    return rps, p50, p99


def peak_rss_mib(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    for binary in ("pez", "examples/ceiling"):
        if not os.access(os.path.join(RELEASE, binary), os.X_OK):
            sys.exit(f"bench: {binary} is not built; run `make bench`")
    ensure_wrk()

    data_dir = tempfile.mkdtemp(prefix="pez-bench-")
    ceiling_port, pez_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PEZ_")}
    pez_env = dict(env, PEZ_LISTEN=f"127.0.0.1:{pez_port}", PEZ_DATA_DIR=data_dir, PEZ_LOG="warn")
    ceiling = start([os.path.join(RELEASE, "examples", "ceiling"), f"127.0.0.1:{ceiling_port}"],
                    env, f"http://127.0.0.1:{ceiling_port}/")
    pez = start([os.path.join(RELEASE, "pez")], pez_env, f"http://127.0.0.1:{pez_port}/v1/forward")
    targets = [
        ("ceiling (warp, answers 71)", f"http://127.0.0.1:{ceiling_port}/", 1),
        ("pez /v1/forward", f"http://127.0.0.1:{pez_port}/v1/forward", 1),
        ("pez /v2/forward?count=100", f"http://127.0.0.1:{pez_port}/v2/forward?count=100", 100),
    ]
    results = {name: [] for name, _, _ in targets}
    try:
        print(f"wrk -t{args.threads} -c{args.connections} -d{args.duration}s --latency, "
              f"{args.rounds} rounds, targets alternating; {os.cpu_count()} CPUs", flush=True)
        for round_no in range(1, args.rounds + 1):
            for name, url, _ in targets:
                rps, p50, p99 = run_wrk(url, args)
                results[name].append((rps, p50, p99))
                print(f"  round {round_no}: {name:<28} {rps:>10.0f} req/s  p50 {p50:.3f} ms  p99 {p99:.3f} ms",
                      flush=True)
        rss = peak_rss_mib(pez.pid)
    finally:
        stop(pez)
        stop(ceiling)
        shutil.rmtree(data_dir, ignore_errors=True)

    ceiling_runs = [r[0] for r in results[targets[0][0]]]
    print()
    print("medians over rounds; 'x ceiling' is the median of each round's ratio to the ceiling run just before it")
    print(f"{'target':<30} {'req/s':>10} {'numbers/s':>12} {'p50 ms':>8} {'p99 ms':>8} {'x ceiling':>10}")
    for name, _, per_request in targets:
        rps = statistics.median(r[0] for r in results[name])
        p50 = statistics.median(r[1] for r in results[name])
        p99 = statistics.median(r[2] for r in results[name])
        ratio = statistics.median(r[0] / c for r, c in zip(results[name], ceiling_runs))
        print(f"{name:<30} {rps:>10.0f} {rps * per_request:>12.0f} {p50:>8.3f} {p99:>8.3f} {ratio:>10.2f}")
    print(f"pez peak RSS (VmHWM) under load: {rss:.1f} MiB")


if __name__ == "__main__":
    main()
