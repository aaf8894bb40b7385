#!/usr/bin/env python3
"""PEZ's fault suite: `make chaos` (CHAOS_ARGS="--short" for CI).

A Jepsen-style test of PEZ's one promise, never a number twice: a
*generator* (client processes taking numbers from every kind of endpoint),
a *nemesis* (faults injected at random, bounded in number and time), a
*history* (every run of numbers every client received, with times) and a
*checker* (duplicates, numbers served while not durable, answers other than
200/503, stretches without service, numbers lost to gaps). It talks to PEZ
only through its public interface: the `pez` binary, PEZ_* variables,
signals, HTTP; and to PostgreSQL through tests/pg-cluster.sh and psql.

Three phases, one after the other:
- pg: a primary with a synchronous standby (throwaway clusters), several
  PEZ instances each given both hosts in one URL, and every fault of
  nemesis.PG_FAULTS;
- pgbouncer: the same pair behind PgBouncer in transaction mode with a
  pool of 2 server connections (fewer than the instances' sessions), and
  the faults of nemesis.POOLER_FAULTS;
- sqlite: one instance on the embedded store, with kill -9, SIGTERM,
  another process holding SQLite's write lock, re-creates, restarts and
  full laps of the small cycling sequences.

Why Python (3.11, standard library only): the suite drives processes,
sockets and shell tools, and its checker is a sort and a sweep; Python does
all of it without a dependency, and is on every machine that runs the
tests (.ci/run installs it). A Rust harness would share PEZ's build and
could drift into using PEZ's own code; this one can only use the interface.
The cost is CPU: each client is its own process (the GIL), and the history
is kept as compact runs (history.py), so a 2-core machine still checks
well over 10^8 numbers in a default run.

Bounded: each phase stops injecting faults when its time is up, every wait
is a bounded poll, and every process and cluster it started is stopped by
PID (procs.py) when it ends, fails or is interrupted (Ctrl-C, SIGTERM).
The history and report of a failing run stay in target/chaos/ for study.

Exit status: 0 the promise held; 1 duplicates, numbers served while not
durable, or too few numbers checked; 2 the suite itself failed (could not
set up or repair a cluster, ...); 130 interrupted.
"""

import argparse
import datetime
import json
import multiprocessing
import os
import random
import shutil
import signal
import sys
import tempfile
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import checker  # noqa: E402
import clients  # noqa: E402
import history  # noqa: E402
from nemesis import DESCRIPTIONS, NEMESIS_CLIENT, FaultLog, Nemesis  # noqa: E402
from pez import Instance, request  # noqa: E402
from pg import Pair, Pooler  # noqa: E402
from procs import HarnessError, Registry  # noqa: E402
from proxy import Proxy  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(ROOT, "tests", "pg-cluster.sh")
PHASES = ("pg", "pgbouncer", "sqlite")
# PgBouncer's server connections: fewer than the instances' sessions
# (PEZ_DB_POOL_SIZE, 4 each), so transactions of different instances share
# server connections, as transaction mode does in production.
POOL_SIZE = 2


class Interrupted(BaseException):
    """SIGINT or SIGTERM: a BaseException, so no `except Exception` on the
    way swallows it."""


def parse_args(argv):
    p = argparse.ArgumentParser(
        prog="chaos.py",
        description="PEZ's fault suite (see docs/reliability.md).",
    )
    p.add_argument("--short", action="store_true",
                   help="the CI run: every fault kind at least once per phase, two to three minutes, "
                        "at least 10^7 numbers")
    p.add_argument("--pg-seconds", type=float, help="length of the PostgreSQL phase "
                   "(default 150, --short 50; the first round of faults, every kind once, "
                   "always finishes)")
    p.add_argument("--pgbouncer-seconds", type=float, help="length of the phase behind "
                   "PgBouncer (default 60, --short 30)")
    p.add_argument("--sqlite-seconds", type=float, help="length of the SQLite phase "
                   "(default 45, --short 20)")
    p.add_argument("--phases", default="pg,pgbouncer,sqlite",
                   help="some of pg, pgbouncer, sqlite, comma-separated (default: all three)")
    p.add_argument("--instances", type=int, default=3, help="PEZ instances on PostgreSQL")
    p.add_argument("--faults", help="only these fault kinds, comma-separated (e.g. "
                   "giveback-race,recreate): to study one bug")
    p.add_argument("--seed", type=int, help="seed of the schedule and the clients "
                   "(default: random, printed)")
    p.add_argument("--binary", default=os.path.join(ROOT, "target", "release", "pez"))
    p.add_argument("--pez-take", default=os.path.join(ROOT, "target", "release", "pez-take"),
                   help="the Rust client's command, run by the take client")
    p.add_argument("--out", default=os.path.join(ROOT, "target", "chaos"),
                   help="where runs are kept (default target/chaos)")
    p.add_argument("--keep", action="store_true", help="keep the history of a passing run too")
    p.add_argument("--recheck", metavar="RUN_DIR",
                   help="run only the checker again on a kept run (target/chaos/run-...)")
    args = p.parse_args(argv)
    if args.pg_seconds is None:
        args.pg_seconds = 50.0 if args.short else 150.0
    if args.pgbouncer_seconds is None:
        args.pgbouncer_seconds = 30.0 if args.short else 60.0
    if args.sqlite_seconds is None:
        args.sqlite_seconds = 20.0 if args.short else 45.0
    if args.seed is None:
        args.seed = random.SystemRandom().randrange(1, 10**6)
    args.minimum = 10**7 if args.short else 10**8
    if args.instances < 2:
        p.error("--instances must be at least 2 (the give-back race needs two)")
    return args


class Run:
    """One run of the suite: its directory, processes and output."""

    def __init__(self, args):
        self.args = args
        self.t0 = time.monotonic()
        stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
        self.dir = os.path.join(args.out, f"run-{stamp}-seed{args.seed}")
        os.makedirs(self.dir, exist_ok=True)
        self.registry = Registry()
        self.cleanups = []
        self.reports = []
        self.verdicts = []
        self.log = open(os.path.join(self.dir, "progress.log"), "w")

    def say(self, line):
        text = f"[chaos {time.monotonic() - self.t0:6.1f}s] {line}"
        print(text, flush=True)
        self.log.write(text + "\n")
        self.log.flush()

    def cleanup(self):
        # PEZ instances first, so none is left talking to a removed cluster.
        self.registry.stop_all()
        for fn in reversed(self.cleanups):
            try:
                fn()
            except Exception as e:  # keep cleaning up whatever failed
                self.say(f"cleanup: {e}")
        self.cleanups.clear()
        self.registry.stop_all()


def start_clients(run, shared, directory, seed):
    ctx = multiprocessing.get_context("fork")
    procs = []
    for i, kind in enumerate(clients.KINDS):
        path = os.path.join(directory, f"client-{i}.bin")
        proc = ctx.Process(
            target=clients.run_client, args=(shared, i, kind, path, seed * 100 + i),
            daemon=True,
        )
        proc.start()
        procs.append(proc)

    def stop(grace=2.0):
        """Stops the clients: they finish the request in flight (at most
        `grace` seconds; the normal end waits out a client timeout)."""
        shared.stop.set()
        deadline = time.monotonic() + grace
        for proc in procs:
            proc.join(max(0.1, deadline - time.monotonic()))
            if proc.is_alive():
                proc.kill()
                proc.join()

    return stop


def create_sequences(instance):
    for name, ascending, mode in history.SEQUENCES:
        if name in ("forward", "reverse", "copied"):
            continue
        body = {"direction": "ascending" if ascending else "descending", "mode": mode}
        if name in history.RINGS:
            body["min"], body["max"] = history.RINGS[name]
            # Range leases of up to a full lap (clients and the nemesis):
            # allowed explicitly, since a sequence's largest lease is by
            # default a thousandth of its range.
            body["max_lease"] = body["max"] - body["min"] + 1
        status, reply = request(instance.port, "PUT", f"/v2/sequences/{name}", body, admin=True)
        if status not in (200, 201):
            raise HarnessError(f"PUT /v2/sequences/{name}: {status} {reply[:200]!r}")


def common_env():
    return {
        "PEZ_MAX_COUNT": str(clients.MAX_COUNT),
        "PEZ_MAX_LEASE": str(clients.MAX_LEASE),
        # The nemesis reads the leaser's "NAME: leased ..." lines, which
        # are at debug.
        "PEZ_LOG": "info,pez::dispenser::leaser=debug",
    }


def run_phase(run, phase, seconds):
    """Sets up a phase, runs clients and nemesis for `seconds`, checks."""
    args = run.args
    directory = os.path.join(run.dir, phase)
    os.makedirs(directory, exist_ok=True)
    pg = phase != "sqlite"
    n_instances = args.instances if pg else 1
    shared = clients.Shared(multiprocessing.get_context("fork"), n_instances, len(clients.KINDS))
    # Clients fork before any thread of the suite exists; they wait for ports.
    stop_clients = start_clients(run, shared, directory, args.seed)
    run.cleanups.append(stop_clients)
    log = FaultLog(shared)
    writer = history.Writer(os.path.join(directory, "nemesis.bin"))
    writer.client = NEMESIS_CLIENT
    run.cleanups.append(writer.close)
    rng = random.Random(f"{args.seed}-{phase}")
    env = common_env()
    pair = proxy_pair = pooler = None
    db_url = None
    if pg:
        # In tmpfs: a PostgreSQL crash (pg_ctl stop -m immediate) keeps what
        # the kernel has, as on a disk, and fsync costs nothing, so crash
        # recovery and base backups take a second, not ten, on a busy
        # machine. A power cut is not among the faults.
        shm = "/dev/shm" if os.path.isdir("/dev/shm") else None
        root = tempfile.mkdtemp(prefix="pez-chaos-", dir=shm)
        os.chmod(root, 0o755)  # the clusters run as the postgres user
        pair = Pair(SCRIPT, root, os.getpid())
        run.cleanups.append(lambda: (keep_pg_logs(run, pair, directory), pair.remove(),
                                     shutil.rmtree(root, ignore_errors=True)))
        run.say(f"{phase}: starting a primary and its synchronous standby")
        pair.start()
        if phase == "pgbouncer":
            # The pooler is removed before the clusters (cleanups run last first).
            pooler = Pooler(SCRIPT, os.path.join(root, "pooler"))
            run.cleanups.append(lambda: (keep_pooler_log(pooler, directory), pooler.remove()))
            pooler.start(pair.primary.port, "transaction", POOL_SIZE, os.getpid())
            # PgBouncer waits server_login_retry (15 s by default) after a
            # failed server login before it tries again, answering every
            # client with an error meanwhile: after each PostgreSQL restart
            # the pooler, not PEZ, would set how long nothing is served.
            pooler.configure(server_login_retry=1)
            db_url = pooler.url()
            run.say(f"{phase}: PgBouncer (transaction mode, {POOL_SIZE} server connections) "
                    f"in front of the primary at {db_url}")
        else:
            db_url = pair.url()
            proxy_pair = (Proxy(pair.a.port), Proxy(pair.b.port))
            run.cleanups.append(lambda: [p.close() for p in proxy_pair])
    instances = []
    for slot in range(n_instances):
        inst_env = dict(env)
        if phase == "pg":
            ports = (proxy_pair[0].port, proxy_pair[1].port) if slot == 0 else None
            inst_env["PEZ_DATABASE_URL"] = pair.url(ports)
        elif pooler is not None:
            inst_env["PEZ_DATABASE_URL"] = db_url
        else:
            inst_env["PEZ_DATA_DIR"] = os.path.join(directory, "data")
        instances.append(
            Instance(run.registry, args.binary, slot, os.path.join(directory, f"pez-{slot}"),
                     inst_env)
        )
    nemesis = Nemesis(
        phase, rng, shared, instances, log, writer, pair=pair,
        proxies=proxy_pair or (),
        sqlite_path=os.path.join(directory, "data", "pez.sqlite3"),
        binary=args.binary, db_url=db_url, workdir=directory,
    )
    # `copied` does not exist until pez store copy makes it (cli-admin).
    log.absent.append({"seq": history.SEQ_INDEX["copied"], "t_from": 0.0,
                       "t_to": float("inf")})
    if args.faults:
        wanted = {k.strip() for k in args.faults.split(",")}
        nemesis.weights = {k: w for k, w in nemesis.weights.items() if k in wanted}
        if not nemesis.weights:
            raise HarnessError(f"no fault of the {phase} phase among {args.faults}")
    run.say(f"{phase}: starting {n_instances} PEZ instance(s)")
    nemesis.bring_up(instances[0], None, publish=False)  # migrates the schema
    create_sequences(instances[0])
    nemesis.laps.start()
    run.cleanups.append(nemesis.stop_laps)
    for inst in instances[1:]:
        inst.spawn()
    for inst in instances[1:]:
        nemesis.bring_up(inst, None, publish=False)
    # Every instance started after the sequences were made, so each serves them all.
    nemesis.publish_all()
    run.say(f"{phase}: {len(clients.KINDS)} clients and the nemesis for {seconds:.0f}s "
            f"(seed {args.seed})")
    started = time.monotonic()
    complete = nemesis.run(started + seconds, run.say)
    if not complete:
        log.anomaly(None, "the phase ended before every fault kind had run once")
    stop_clients(clients.CLIENT_TIMEOUT + 5)
    run.cleanups.remove(stop_clients)
    nemesis.ensure_all_up(None)
    nemesis.observe(None, "after", time.monotonic(), "end of the phase, instances running")
    for inst in instances:
        nemesis.down(inst)
        nemesis.stop_gracefully(inst, {"id": None}, 25)
    nemesis.observe(None, "after", time.monotonic(), "end of the phase, after every "
                    "instance's graceful stop (give-backs)")
    nemesis.stop_laps()
    run.cleanups.remove(nemesis.stop_laps)
    writer.close()
    run.cleanups.remove(writer.close)
    title = (f"{phase} phase: " + {
        "pg": f"{n_instances} instances on a primary with a synchronous standby",
        "pgbouncer": f"{n_instances} instances through PgBouncer (transaction mode, "
                     f"{POOL_SIZE} server connections) to a primary with a synchronous standby",
        "sqlite": "one instance on the embedded SQLite store",
    }[phase] + f", {seconds:.0f} s of faults, seed {args.seed}")
    faults_path = os.path.join(directory, "faults.json")
    log.save(faults_path, phase=phase, title=title, t0=run.t0, client_kinds=clients.KINDS,
             laps=nemesis.laps.saved(), laps_unread=nemesis.laps.failures,
             starts={inst.slot: inst.spawned for inst in instances},
             rings=history.RINGS)
    run.say(f"{phase}: checking the history")
    text, verdict = check_directory(directory)
    run.reports.append(text)
    run.verdicts.append(verdict)
    print(text, flush=True)
    # The phase's processes and clusters go now, not at the end of the run.
    run.cleanup()


def check_directory(directory):
    """Runs the checker on a phase's directory (its history and fault log)."""
    with open(os.path.join(directory, "faults.json")) as f:
        saved = json.load(f)
    records = history.read(directory)
    phase = saved.get("phase", os.path.basename(os.path.normpath(directory)))
    t0 = saved.get("t0", min((r[0] for r in records), default=0.0))
    return checker.check(phase, records, saved, t0, saved.get("client_kinds", clients.KINDS),
                         saved.get("title", f"{phase} phase"), 0)


def keep_pg_logs(run, pair, directory):
    for cluster in (pair.a, pair.b):
        src = cluster.server_log()
        if os.path.exists(src):
            shutil.copy(src, os.path.join(directory, f"{cluster.label}-server.log"))


def keep_pooler_log(pooler, directory):
    if os.path.exists(pooler.log()):
        shutil.copy(pooler.log(), os.path.join(directory, "pgbouncer.log"))


def main(argv):
    args = parse_args(argv)
    if args.recheck:
        failed = False
        for phase in PHASES:
            directory = os.path.join(args.recheck, phase)
            if os.path.exists(os.path.join(directory, "faults.json")):
                text, verdict = check_directory(directory)
                print(text, flush=True)
                failed = failed or bool(verdict["failures"])
        return 1 if failed else 0
    for binary, how in ((args.binary, "--bin pez"), (args.pez_take, "-p pez-client --bin pez-take")):
        if not os.access(binary, os.X_OK):
            print(f"chaos: no {binary}; build it with `cargo build --release {how}` "
                  "(make chaos does)", file=sys.stderr)
            return 2
    clients.PEZ_TAKE = args.pez_take
    run = Run(args)

    def on_signal(signum, frame):
        raise Interrupted()

    # Installed explicitly: a shell that starts the suite in the background
    # leaves SIGINT ignored, and Python would keep it so.
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    code = 0
    try:
        phases = [p.strip() for p in args.phases.split(",") if p.strip()]
        for phase in phases:
            if phase not in PHASES:
                raise HarnessError(f"unknown phase {phase}")
            run_phase(run, phase, {"pg": args.pg_seconds, "pgbouncer": args.pgbouncer_seconds,
                                   "sqlite": args.sqlite_seconds}[phase])
    except (KeyboardInterrupt, Interrupted):
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        run.say("interrupted: stopping everything this run started")
        code = 130
    except HarnessError as e:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        run.say(f"the suite failed: {e}")
        code = 2
    except Exception:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        run.say("the suite failed:\n" + traceback.format_exc())
        code = 2
    finally:
        # A second Ctrl-C must not cut the clean-up short.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        run.cleanup()
    total = sum(v["numbers"] for v in run.verdicts)
    too_few = code == 0 and total < args.minimum
    failed = too_few or any(v["failures"] for v in run.verdicts)
    if failed and code == 0:
        code = 1
    summary = summarize(run, code)
    if too_few:
        summary = summary.replace("result: FAIL", f"too few numbers: {total:,} checked, at "
                                  f"least {args.minimum:,} expected\nresult: FAIL")
    print(summary, flush=True)
    report = "".join(run.reports) + summary
    with open(os.path.join(run.dir, "report.txt"), "w") as f:
        f.write(report)
    with open(os.path.join(args.out, "last-report.txt"), "w") as f:
        f.write(report)
    run.log.close()
    if code == 0 and not args.keep:
        shutil.rmtree(run.dir, ignore_errors=True)
    else:
        print(f"history, fault log, PEZ and PostgreSQL logs kept in {run.dir}", flush=True)
    return code


def summarize(run, code):
    lines = ["== summary"]
    total = sum(v["numbers"] for v in run.verdicts)
    lines.append(f"numbers checked: {total:,} in {time.monotonic() - run.t0:.0f} s")
    for v in run.verdicts:
        lines.append(
            f"  {v['phase']}: {v['numbers']:,} numbers, {sum(v['faults'].values())} faults, "
            f"{v['duplicates']:,} duplicates, {v['nondurable']:,} not durable, "
            f"{v['order']:,} strict answers out of order"
            + (": " + "; ".join(v["failures"]) if v["failures"] else "")
        )
    kinds = sorted({k for v in run.verdicts for k in v["faults"]})
    for k in kinds:
        lines.append(f"  fault {k}: {DESCRIPTIONS.get(k, '')}")
    word = {0: "PASS", 1: "FAIL", 2: "SUITE ERROR", 130: "INTERRUPTED"}[code]
    lines.append(f"result: {word}")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
