#!/usr/bin/env python3
"""Instructions per request on the HTTP path, PEZ beside the ceiling.

Requests per second on a shared machine move with the day; the user-space
instructions a server runs per request do not. This runs each server under
valgrind's callgrind twice, once answering N1 and once N2 requests (one
keep-alive connection, one request at a time), and reports the marginal
cost: (instructions of the N2 run - instructions of the N1 run) / (N2 - N1).
Start-up, the first lease and shutdown are in both runs and cancel out.

Servers, each the release build `make bench` makes:
- the ceiling (examples/ceiling.rs: the smallest warp server, answers 71
  to every GET), asked for `/` and for each path PEZ is asked for, so
  that each PEZ figure has a ceiling that parsed the same request;
- PEZ on a fresh embedded store: /v1/forward and /v2/forward?count=100.

PEZ runs with one fixed block (PEZ_BLOCK_SIZE = PEZ_BLOCK_MAX = 10,000,000)
so that no lease falls between N1 and N2 in one run and not the other:
what is measured is a request, not a lease. Both servers are stopped with
SIGTERM; callgrind writes its totals as the process exits.

Prints one line per target and round, then a table: instructions per
request, and PEZ's ratio to the ceiling's on the same request; the last
line is `instructions: pez /v1/forward R1x, pez /v2/forward?count=100 R2x
the ceiling's on the same request`. A script that prints figures, not
a test: it asserts nothing about speed.

Usage: bench/instructions.py [--small N1] [--large N2] [--rounds R]
(`make bench` builds the binaries first and runs this after bench.py.)
"""

import argparse
import http.client
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

from bench import stop

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RELEASE = os.path.join(ROOT, "target", "release")

# Large enough that a run of N2 requests of count=100 stays inside one block
# and below the point where the next lease is taken ahead (half of it).
FIXED_BLOCK = 10_000_000


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(port, path, process, timeout=120):
    """One successful GET of `path` (the same in every run, so it cancels)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.exit(f"instructions: the server exited with {process.returncode} before it was ready")
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            connection.request("GET", path)
            response = connection.getresponse()
            response.read()
            connection.close()
            if response.status == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    sys.exit(f"instructions: the server on port {port} was not ready in {timeout} s")


def drive(port, path, count):
    """`count` GETs of `path` over one keep-alive connection, each checked."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    for _ in range(count):
        connection.request("GET", path)
        response = connection.getresponse()
        body = response.read()
        if response.status != 200:
            sys.exit(f"instructions: GET {path} answered {response.status}: {body[:200]!r}")
    connection.close()


def instructions(argv, env, port, path, count):
    """Total user-space instructions of a server run that answers `count`
    requests after its ready check."""
    with tempfile.TemporaryDirectory(prefix="pez-callgrind-") as scratch:
        out = os.path.join(scratch, "callgrind.out")
        process = subprocess.Popen(
            ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", "--dump-instr=no",
             "--collect-systime=no", *argv],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_ready(port, path, process)
            drive(port, path, count)
        finally:
            # Slow under valgrind: callgrind writes its totals at the exit.
            stop(process, timeout=120)
        with open(out) as f:
            text = f.read()
    match = re.search(r"^(?:summary|totals): (\d+)", text, re.MULTILINE)
    if match is None:
        sys.exit("instructions: callgrind wrote no totals")
    return int(match.group(1))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=4000, help="requests of the first run (N1)")
    parser.add_argument("--large", type=int, default=12000, help="requests of the second run (N2)")
    parser.add_argument("--rounds", type=int, default=3,
                        help="runs of every target, alternating; the median marginal is reported")
    args = parser.parse_args()
    if args.rounds < 1:
        sys.exit("instructions: --rounds must be at least 1")
    if not 0 <= args.small < args.large:
        sys.exit("instructions: --small must be below --large")
    if shutil.which("valgrind") is None:
        sys.exit("instructions: valgrind is not installed (Debian: apt-get install valgrind)")
    for binary in ("pez", "examples/ceiling"):
        if not os.access(os.path.join(RELEASE, binary), os.X_OK):
            sys.exit(f"instructions: {binary} is not built; run `make bench`")

    env = {k: v for k, v in os.environ.items() if not k.startswith("PEZ_")}

    def ceiling(port, _):
        return [os.path.join(RELEASE, "examples", "ceiling"), f"127.0.0.1:{port}"], env

    def pez(port, data_dir):
        return [os.path.join(RELEASE, "pez")], dict(
            env, PEZ_LISTEN=f"127.0.0.1:{port}", PEZ_DATA_DIR=data_dir, PEZ_LOG="warn",
            PEZ_BLOCK_SIZE=str(FIXED_BLOCK), PEZ_BLOCK_MAX=str(FIXED_BLOCK))

    # (name, server, path, the target its ratio is to): each PEZ target
    # beside the ceiling answering the very same request, so that parsing
    # the longer path and query (hyper's) is in both.
    targets = [
        ("ceiling GET /", ceiling, "/", None),
        ("ceiling GET /v1/forward", ceiling, "/v1/forward", None),
        ("pez /v1/forward", pez, "/v1/forward", "ceiling GET /v1/forward"),
        ("ceiling GET /v2/forward?count=100", ceiling, "/v2/forward?count=100", None),
        ("pez /v2/forward?count=100", pez, "/v2/forward?count=100", "ceiling GET /v2/forward?count=100"),
    ]
    print(f"valgrind --tool=callgrind, one keep-alive connection, requests one at a time; "
          f"marginal over {args.small} and {args.large} requests; "
          f"{args.rounds} rounds, medians", flush=True)
    marginals = {name: [] for name, _, _, _ in targets}
    for round_no in range(1, args.rounds + 1):
        for name, command, path, _ in targets:
            totals = []
            for count in (args.small, args.large):
                port = free_port()
                data_dir = tempfile.mkdtemp(prefix="pez-callgrind-data-")
                try:
                    argv, run_env = command(port, data_dir)
                    totals.append(instructions(argv, run_env, port, path, count))
                finally:
                    shutil.rmtree(data_dir, ignore_errors=True)
            marginal = (totals[1] - totals[0]) / (args.large - args.small)
            marginals[name].append(marginal)
            print(f"  round {round_no}: {name:<34} {totals[0]:>13,} and {totals[1]:>13,} instructions: "
                  f"{marginal:>8,.0f} a request", flush=True)
    per_request = {name: statistics.median(runs) for name, runs in marginals.items()}

    print()
    print(f"{'target':<35} {'instructions/request':>20} {'x ceiling, same request':>24}")
    for name, _, _, baseline in targets:
        ratio = f"{per_request[name] / per_request[baseline]:.3f}" if baseline else ""
        print(f"{name:<35} {per_request[name]:>20,.0f} {ratio:>24}")
    ratios = ", ".join(f"{name} {per_request[name] / per_request[baseline]:.3f}x"
                       for name, _, _, baseline in targets if baseline)
    print(f"instructions: {ratios} the ceiling's on the same request")

if __name__ == "__main__":
    main()
