#!/usr/bin/env python3
"""`make power-cut`: PEZ's embedded store through power cuts of the host.

`kill -9` leaves the kernel's page cache alone, so every write PEZ (or
SQLite) never synced still reaches the disk: the fault suite cannot see a
missing fsync. Here the data directory lives on cutfs (tests/cutfs), a
FUSE file system that keeps, like a disk behind a page cache, only what
was synced: file data once the file is fsynced, a new, renamed or removed
name once its directory is. A *power cut* freezes cutfs (from that instant
nothing more is acknowledged, no write and no fsync), kills every PEZ
process with SIGKILL, and drops whatever was not synced (`cut`), or keeps
a random prefix of it with the last write torn at a random byte (`cut
torn`). Then PEZ starts again on what is left, as after a reboot.

Client processes take numbers all the while (v1, v2 lists, a strict
sequence, range leases) and record every number they receive. Each cycle
ends with a cut, in one of several situations: serving, a graceful stop
giving blocks back, the first start of a new store (directory, database
and migrations being made), `pez sequence restart` or `pez sequence
import` running, `pez store copy` running (the retired marker), and a
full disk or I/O errors first (503s, then recovery by itself). After every
cut the checker reads the store (`pez sequence export`): it must be
there, and past every number served; at the end, every number received,
from every store, is checked for duplicates.

The last line: `N power cuts, M numbers checked, 0 duplicates` (exit 0),
or what broke (exit 1); 2 when the harness itself failed (no /dev/fuse,
say). Bounded: --cuts cuts and at most --seconds (plus the final check);
every process it started is stopped by PID, cutfs unmounted.
"""

import argparse
import json
import multiprocessing
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests", "chaos"))
sys.path.insert(0, HERE)

import takers  # noqa: E402
from procs import HarnessError, Registry, die_with_parent  # noqa: E402

ADMIN_TOKEN = "power-cut-admin-token"
# Small blocks: every second brings many leases, so a cut always lands
# near a commit.
BLOCK_SIZE = 200
MAX_COUNT = 1000
# The sequences the clients take from: the original two (cycling, but far
# from a wrap), a strict one (every take is a commit) and a non-cycling
# one for range leases, restarts and imports.
NAMED = {
    "sa": {"direction": "ascending", "mode": "strict"},
    "la": {"direction": "ascending", "cycle": False, "max_lease": 100000},
}
ASCENDING = {"forward": True, "reverse": False, "sa": True, "la": True}


class Failure(Exception):
    """The promise broke: the run ends and reports it."""


class CutFs:
    """The cutfs process and its control socket."""

    def __init__(self, registry, binary, mount, control, seed, log_path):
        self.control = control
        self.mount = mount
        log = open(log_path, "wb")
        self.proc = registry.spawn(
            "cutfs", [binary, mount, "--control", control, "--seed", str(seed)],
            stdout=subprocess.PIPE, stderr=log, stdin=subprocess.DEVNULL)
        log.close()
        line = self.proc.stdout.readline().decode().strip()
        if line != "ready":
            raise HarnessError(f"cutfs did not start ({line!r}); see {log_path}")
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.settimeout(30)
        self.sock.connect(control)
        self.reader = self.sock.makefile("r")

    def command(self, cmd):
        self.sock.sendall((cmd + "\n").encode())
        reply = self.reader.readline().strip()
        if not reply.startswith("ok"):
            raise HarnessError(f"cutfs {cmd}: {reply}")
        return reply

    def stop(self):
        try:
            self.sock.close()
        except OSError:
            pass
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        subprocess.run(["fusermount3", "-u", "-z", self.mount], capture_output=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http(port, method, path, body=None, timeout=5.0):
    import http.client
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    if body is not None:
        body = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers)
        r = conn.getresponse()
        return r.status, r.read()
    except (OSError, http.client.HTTPException):
        return 0, b""
    finally:
        conn.close()


class Run:
    def __init__(self, args, registry):
        self.args = args
        self.registry = registry
        self.rng = random.Random(args.seed)
        self.work = args.work or os.path.join(ROOT, "target", "power-cut")
        self.pez = args.pez or os.path.join(ROOT, "target", "release", "pez")
        self.cutfs_bin = os.path.join(ROOT, "target", "release", "cutfs")
        self.server = None
        self.store = 0  # which store (data directory) the clients are on
        self.port_base = self.rng.randrange(20000, 40000)
        self.cuts = 0
        self.torn = 0
        self.situations = {}
        self.outcomes = {}
        # (store, sequence) -> [lowest, highest] number any client got.
        self.served = {}
        self.extra_records = []  # numbers the harness took itself
        self.restarts_logged = []
        self.pg_url = None
        self.copies = 0

    # -- processes -------------------------------------------------------
    def env(self, store=None, database_url=None):
        env = {k: v for k, v in os.environ.items() if not k.startswith("PEZ_")}
        env.update({
            "PEZ_ADMIN_TOKEN": ADMIN_TOKEN,
            "PEZ_BLOCK_SIZE": str(BLOCK_SIZE),
            "PEZ_BLOCK_MAX": str(BLOCK_SIZE * 8),
            "PEZ_MAX_COUNT": str(MAX_COUNT),
            "PEZ_LOG": "warn",
            "PEZ_LEASE_WAIT_MS": "500",
            "PEZ_SHUTDOWN_TIMEOUT_MS": "2000",
        })
        if database_url:
            env["PEZ_DATABASE_URL"] = database_url
        else:
            env["PEZ_DATA_DIR"] = self.data_dir(self.store if store is None else store)
        return env

    def data_dir(self, store):
        return os.path.join(self.mount, f"store-{store}", "data")

    def port(self, store):
        return self.port_base + store

    def spawn_server(self, database_url=None, port=None):
        env = self.env(database_url=database_url)
        env["PEZ_LISTEN"] = f"127.0.0.1:{port or self.port(self.store)}"
        self.server_log = os.path.join(self.work, "logs", f"pez-{self.store}-{self.cuts}.log")
        log = open(self.server_log, "ab")
        proc = self.registry.spawn("pez", [self.pez], cwd=self.work, env=env,
                                   stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        log.close()
        return proc

    def wait_ready(self, proc, port, timeout=30.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                return f"exited with {proc.returncode}: {self.tail(self.server_log)}"
            status, _ = http(port, "GET", "/readyz", timeout=2)
            if status == 200:
                return None
            time.sleep(0.02)
        return f"not ready after {timeout:.0f} s: {self.tail(self.server_log)}"

    @staticmethod
    def tail(path):
        try:
            with open(path, "rb") as f:
                lines = f.read().decode(errors="replace").strip().splitlines()
            return lines[-1] if lines else "(no log)"
        except OSError:
            return "(no log)"

    def cli(self, args, env=None, background=False):
        env = env or self.env()
        if background:
            return self.registry.spawn("pez-cli", [self.pez, *args], cwd=self.work, env=env,
                                       stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                       stderr=subprocess.STDOUT)
        r = subprocess.run([self.pez, *args], cwd=self.work, env=env, capture_output=True,
                           text=True, timeout=60, preexec_fn=die_with_parent)
        return r.returncode, r.stdout, r.stderr

    def kill(self, proc):
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
        if proc is not None:
            proc.wait()
            self.registry.forget(proc)

    # -- the power cut ----------------------------------------------------
    def count(self, outcome):
        self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1

    def step(self, what):
        if self.args.verbose:
            print(f"  {time.monotonic() - self.began:8.2f} {what}", flush=True)

    def power_cut(self, situation, *others):
        """Freeze cutfs, SIGKILL PEZ (and any CLI), drop what was unsynced."""
        self.step(f"cut: {situation}")
        self.fs.command("freeze")
        self.kill(self.server)
        self.server = None
        for proc in others:
            self.kill(proc)
        torn = self.rng.random() < 0.5
        self.fs.command("cut torn" if torn else "cut")
        self.cuts += 1
        self.torn += torn
        self.situations[situation] = self.situations.get(situation, 0) + 1
        self.step("cut done")
        self.shared.quiesce()
        self.step("quiet")
        self.collect()
        self.step("collected")

    def collect(self):
        for store, seq, lo, hi in self.reader.new_records():
            self.note_served(store, seq, lo, hi)

    def record(self, store, seq, lo, hi):
        """Numbers the harness took itself: checked like the clients'."""
        self.extra_records.append((store, seq, lo, hi))
        self.note_served(store, seq, lo, hi)

    def note_served(self, store, seq, lo, hi):
        have = self.served.get((store, seq))
        if have is None:
            self.served[(store, seq)] = [lo, hi]
        else:
            have[0] = min(have[0], lo)
            have[1] = max(have[1], hi)

    def store_state(self, store):
        """{sequence: next} as `pez sequence export` reads it, or None."""
        code, out, err = self.cli(["sequence", "export"], env=self.env(store))
        if code != 0:
            return None, err.strip()
        data = json.loads(out)
        return {s["name"]: s["next"] for s in data["sequences"]}, None

    def check_store(self, store, why, done_moves=None):
        """After a cut: the store is there and past every number served."""
        served = {seq: v for (s, seq), v in self.served.items() if s == store}
        state, err = self.store_state(store)
        self.step("store read")
        if state is None:
            if served:
                raise Failure(f"after a power cut ({why}) store {store} is gone, though "
                              f"{sum(1 for _ in served)} sequences served numbers from it: {err}")
            return {}
        for seq, (lo, hi) in served.items():
            nxt = state.get(seq)
            if seq not in state:
                raise Failure(f"after a power cut ({why}) store {store} lost sequence {seq}, "
                              f"which served {lo}..{hi}")
            if nxt is None:
                continue  # ran out: it issues nothing more
            behind = nxt <= hi if ASCENDING[seq] else nxt >= lo
            if behind:
                raise Failure(f"after a power cut ({why}) store {store}: {seq} stands at "
                              f"{nxt}, behind numbers served ({lo}..{hi})")
        for seq, at_least in (done_moves or {}).items():
            nxt = state.get(seq)
            if nxt is not None and nxt < at_least:
                raise Failure(f"after a power cut ({why}) store {store}: {seq} stands at "
                              f"{nxt}, but the command that moved it to {at_least} had "
                              f"said it was done")
        return state

    # -- one cycle ---------------------------------------------------------
    def start_serving(self, early_cut_ok=True):
        """Starts PEZ on the current store; may cut the power during start."""
        port = self.port(self.store)
        first = not os.path.exists(self.data_dir(self.store))
        if first and self.rng.random() < 0.3:
            # Made by someone else, as systemd's StateDirectory= does, and
            # never fsynced into its parent.
            os.makedirs(self.data_dir(self.store), mode=0o700)
            self.count("first start in a directory made beforehand")
        self.server = self.spawn_server()
        if early_cut_ok and (first or self.rng.random() < 0.1):
            # A cut during start: directory, database, migrations, first
            # leases (a start takes some tens of milliseconds here).
            time.sleep(self.rng.uniform(0.0, 0.1 if first else 0.25))
            self.power_cut("first start" if first else "start")
            self.check_store(self.store, "during start")
            return self.start_serving(early_cut_ok=False)
        self.step("started")
        why = self.wait_ready(self.server, port)
        self.step("ready")
        if why:
            raise Failure(f"PEZ did not start again after a power cut (store {self.store}): {why}")
        for name, spec in NAMED.items():
            deadline = time.monotonic() + 15
            while True:
                status, body = http(port, "PUT", f"/v2/sequences/{name}", spec)
                # 503: the store is busy (a lease holds SQLite's write lock
                # past PEZ_STORE_TIMEOUT_MS); it says to retry.
                if status != 503 or time.monotonic() > deadline:
                    break
                time.sleep(0.1)
            if status not in (200, 201):
                raise Failure(f"PUT /v2/sequences/{name}: {status} {body[:200]!r}")
        self.shared.point_at(self.store, port)

    def serve_for(self, seconds):
        time.sleep(seconds)

    def cycle(self):
        r = self.rng.random()
        if self.args.only:
            # One situation only (to chase a finding): its range of r.
            r = {"serving": 0.2, "graceful": 0.5, "restart": 0.65, "import": 0.7,
                 "disk": 0.8, "copy": 0.95}[self.args.only]
        if self.server is None:
            self.start_serving()
        self.serve_for(self.rng.uniform(0.1, 1.2))
        if r < 0.45:
            self.power_cut("serving")
            self.check_store(self.store, "serving")
        elif r < 0.60:
            # A graceful stop: the cut lands while blocks are given back.
            self.server.send_signal(signal.SIGTERM)
            time.sleep(self.rng.uniform(0.0, 0.08))
            self.power_cut("graceful stop")
            self.check_store(self.store, "graceful stop")
        elif r < 0.68:
            self.cli_move("restart")
        elif r < 0.76:
            self.cli_move("import")
        elif r < 0.90:
            self.disk_fault(self.rng.choice(["enospc", "eio", "fsync-eio"]))
        else:
            self.store_copy()

    def stop_for_cli(self):
        self.power_cut("serving")
        self.check_store(self.store, "serving")

    def cli_move(self, how):
        """`pez sequence restart|import` cut at a random moment."""
        self.stop_for_cli()
        state = self.check_store(self.store, "before " + how)
        hi = self.served.get((self.store, "la"), [0, 0])[1]
        target = max(hi, state.get("la") or 1) + self.rng.randrange(1000, 100000)
        if how == "restart":
            args = ["sequence", "restart", "la", str(target)]
            moves = {"la": target}
        else:
            code, out, err = self.cli(["sequence", "export"])
            if code != 0:
                raise Failure(f"export before import failed: {err.strip()}")
            data = json.loads(out)
            moves = {}
            for s in data["sequences"]:
                if s["name"] == "la" or (s["name"] == "forward" and s["next"] is not None):
                    s["next"] = s["next"] + self.rng.randrange(1000, 100000) \
                        if s["name"] == "forward" else target
                    moves[s["name"]] = s["next"]
            path = os.path.join(self.work, "import.json")
            with open(path, "w") as f:
                json.dump(data, f)
            args = ["sequence", "import", path, "--allow-early-wrap"]
        proc = self.cli(args, background=True)
        time.sleep(self.rng.uniform(0.0, 0.15))
        done = proc.poll() is not None and proc.returncode == 0
        if proc.poll() is not None and proc.returncode != 0:
            raise Failure(f"pez {' '.join(args)} failed: {proc.stdout.read().decode().strip()}")
        self.power_cut(f"sequence {how}", proc)
        proc.stdout.close()
        self.check_store(self.store, f"sequence {how}", moves if done else None)

    def disk_fault(self, fault):
        """A full disk or I/O errors for a while: 503s, then recovery alone."""
        port = self.port(self.store)
        self.fs.command(f"{fault} on")
        # A lease of a fresh range must reach the store: does it feel it?
        status, body = http(port, "POST", "/v2/sequences/la/lease?count=5000")
        if status == 200:
            for r in json.loads(body)["ranges"]:
                self.record(self.store, "la", r["first"], r["last"])
        elif status != 503:
            raise Failure(f"a lease under {fault} answered {status}: {body[:300]!r}")
        self.count(f"{fault}: a lease meanwhile answered {status}")
        self.serve_for(self.rng.uniform(0.5, 2.0))
        if self.rng.random() < 0.3:
            # The power goes while the disk fails: before any write-out.
            self.power_cut(f"during {fault}")
            self.fs.command(f"{fault} off")
            self.check_store(self.store, f"during {fault}")
            return
        self.fs.command(f"{fault} off")
        started = time.monotonic()
        # Recovery by itself: fresh leases succeed again (larger than a
        # block, so numbers on hand cannot answer for the store).
        while True:
            status, _ = http(port, "GET", f"/v2/reverse?count={MAX_COUNT}")
            if status == 200:
                status, body = http(port, "POST", "/v2/sequences/la/lease?count=5000")
                if status == 200:
                    rng = json.loads(body)["ranges"]
                    for r in rng:
                        self.record(self.store, "la", r["first"], r["last"])
                    break
            if self.server.poll() is not None:
                # Dead under the fault: SQLite maps its -shm file, and a page
                # of it the disk cannot read is SIGBUS. Restart it, as
                # systemd does (Restart=on-failure); a clean exit is a bug.
                code = self.server.returncode
                self.registry.forget(self.server)
                self.server = None
                if code == 0:
                    raise Failure(f"PEZ exited 0 under {fault}: {self.tail(self.server_log)}")
                how = f"signal {-code}" if code < 0 else f"exit {code}"
                self.count(f"{fault}: PEZ died ({how}), restarted as systemd would")
                self.start_serving(early_cut_ok=False)
            if time.monotonic() - started > 30:
                raise Failure(f"PEZ did not recover within 30 s after {fault} was lifted "
                              f"(last answer {status})")
            time.sleep(0.05)
        self.recoveries.append((fault, time.monotonic() - started))
        self.power_cut(f"after {fault}")
        self.check_store(self.store, f"after {fault}")

    def store_copy(self):
        """`pez store copy` cut at a random moment: the embedded store must
        be retired before any sequence moves in PostgreSQL."""
        self.stop_for_cli()
        self.check_store(self.store, "before store copy")
        self.copies += 1
        db = f"powercut_{os.getpid()}_{self.store}"
        subprocess.run(["psql", "-q", self.pg_admin, "-c", f"CREATE DATABASE {db}"],
                       check=True, capture_output=True)
        url = self.pg_admin.rsplit("/", 1)[0] + "/" + db
        proc = self.cli(["store", "copy", "--to", url], background=True)
        # A copy takes a few hundred milliseconds (PostgreSQL's migrations
        # first): cut before the mark, between it and the end, or after.
        time.sleep(self.rng.uniform(0.0, 0.1) if self.rng.random() < 0.5
                   else self.rng.uniform(0.1, 0.6))
        done = proc.poll() is not None and proc.returncode == 0
        self.power_cut("store copy", proc)
        out = proc.stdout.read().decode()
        proc.stdout.close()
        state = self.check_store(self.store, "store copy")
        # Does the embedded store refuse (retired)?
        server = self.spawn_server()
        why = self.wait_ready(server, self.port(self.store))
        retired = why is not None and "retired" in why
        if why is None:
            self.kill(server)
            self.count("store copy: not retired, PostgreSQL untouched")
            if done:
                raise Failure(f"store {self.store} serves again after `pez store copy` said it "
                              f"was done: {out.strip()}")
            moved = self.pg_moved(url, state)
            if moved:
                raise Failure(f"`pez store copy` moved {moved} in PostgreSQL, yet the embedded "
                              f"store {self.store} is not retired after the power cut")
        elif not retired:
            raise Failure(f"after a cut in `pez store copy` PEZ neither serves nor says the "
                          f"store is retired: {why}")
        else:
            self.registry.forget(server)
            self.count("store copy: retired, finished again" if "not known to have finished"
                       in why else "store copy: retired, had finished")
            # As the operator would: finish the copy, then serve from
            # PostgreSQL; its numbers are checked against the store's.
            code, out, err = self.cli(["store", "copy", "--to", url])
            if code != 0:
                raise Failure(f"`pez store copy` again after the cut failed: {err.strip()}")
            pg_port = free_port()
            pg = self.spawn_server(database_url=url, port=pg_port)
            why = self.wait_ready(pg, pg_port)
            if why:
                raise Failure(f"PEZ on the copy did not start: {why}")
            for seq, path in (("forward", "/v2/forward?count=100"),
                              ("reverse", "/v2/reverse?count=100"),
                              ("sa", "/v2/sequences/sa/next?count=50"),
                              ("la", "/v2/sequences/la/next?count=100")):
                status, body = http(pg_port, "GET", path)
                if status != 200:
                    raise Failure(f"PEZ on the copy: {path} answered {status}")
                nums = json.loads(body)
                for n in nums:
                    self.record(self.store, seq, n, n)
            pg.send_signal(signal.SIGTERM)
            pg.wait(15)
            self.registry.forget(pg)
        # The next cycles run on a new store.
        self.store += 1

    def pg_moved(self, url, state):
        r = subprocess.run(
            ["psql", "-qAt", url, "-c",
             "SELECT name, COALESCE(next_value::text, 'null') FROM pez.sequences"],
            capture_output=True, text=True)
        if r.returncode != 0:
            return None  # no schema yet: nothing moved
        moved = []
        for line in r.stdout.split():
            name, nxt = line.split("|")
            if name in ("forward", "reverse"):
                default = "1" if name == "forward" else str(2**63 - 1)
                if nxt != default:
                    moved.append(f"{name} to {nxt}")
            else:
                moved.append(f"{name} (created)")
        return ", ".join(moved)

    # -- the run -----------------------------------------------------------
    def main(self):
        shutil.rmtree(self.work, ignore_errors=True)
        os.makedirs(os.path.join(self.work, "logs"))
        os.makedirs(os.path.join(self.work, "history"))
        self.mount = os.path.join(self.work, "mnt")
        os.makedirs(self.mount)
        for path in (self.pez, self.cutfs_bin):
            if not os.access(path, os.X_OK):
                raise HarnessError(f"{path} is missing (make power-cut builds it)")
        self.pg_admin = self.start_postgres()
        self.fs = CutFs(self.registry, self.cutfs_bin, self.mount,
                        os.path.join(self.work, "cutfs.sock"), self.args.seed,
                        os.path.join(self.work, "logs", "cutfs.log"))
        self.recoveries = []
        ctx = multiprocessing.get_context("fork")
        self.shared = takers.Shared(ctx, self.args.clients)
        hist = os.path.join(self.work, "history")
        procs = [ctx.Process(target=takers.main,
                             args=(i, self.shared, os.path.join(hist, f"client-{i}.txt"),
                                   self.args.seed * 1000 + i, MAX_COUNT, ADMIN_TOKEN))
                 for i in range(self.args.clients)]
        for p in procs:
            p.start()
        self.reader = takers.Reader(hist, self.args.clients)
        began = self.began = time.monotonic()
        try:
            while time.monotonic() - began < self.args.seconds:
                t = time.monotonic()
                before = dict(self.situations)
                self.cycle()
                if self.args.verbose:
                    new = {k: v - before.get(k, 0) for k, v in self.situations.items()
                           if v != before.get(k, 0)}
                    print(f"{self.cuts} cuts, store {self.store}: {new} "
                          f"in {time.monotonic() - t:.1f} s", flush=True)
            if self.server is not None:
                self.power_cut("serving")
                self.check_store(self.store, "serving")
        finally:
            self.shared.stop.set()
            for p in procs:
                p.join(10)
                if p.is_alive():
                    p.kill()
            self.kill(self.server)
            self.fs.stop()
        return self.verdict(time.monotonic() - began)

    def start_postgres(self):
        if os.environ.get("PEZ_TEST_DATABASE_URL"):
            return os.environ["PEZ_TEST_DATABASE_URL"]
        out = subprocess.run(
            [os.path.join(ROOT, "tests", "pg-cluster.sh"), "start",
             os.path.join(self.work, f"pg-{os.getpid()}"), "--watch", str(os.getpid())],
            capture_output=True, text=True)
        if out.returncode != 0:
            raise HarnessError(f"pg-cluster.sh start failed: {out.stderr.strip()}")
        return out.stdout.strip().splitlines()[-1]

    def verdict(self, seconds):
        records = list(self.reader.all_records()) + self.extra_records
        runs = {}
        for store, seq, lo, hi in records:
            runs.setdefault((store, seq), []).append((lo, hi))
        checked = 0
        duplicates = []
        for key, rs in runs.items():
            rs.sort()
            end = None
            for lo, hi in rs:
                checked += hi - lo + 1
                if end is not None and lo <= end:
                    duplicates.append(f"store {key[0]} {key[1]}: {lo}..{min(hi, end)} twice")
                end = hi if end is None else max(end, hi)
        statuses = self.reader.statuses()
        print(f"cuts by situation: {json.dumps(self.situations, sort_keys=True)}; "
              f"{self.torn} with torn writes; {self.store + 1} stores; "
              f"{self.copies} store copies")
        if self.outcomes:
            print(f"outcomes: {json.dumps(self.outcomes, sort_keys=True)}")
        print(f"client answers: {json.dumps(statuses, sort_keys=True)}")
        if self.recoveries:
            worst = max(t for _, t in self.recoveries)
            print(f"recovered by itself after {len(self.recoveries)} disk faults, "
                  f"slowest {worst:.2f} s")
        bad = {k: v for k, v in statuses.items() if k not in ("200", "503", "none")}
        for d in duplicates[:20]:
            print("DUPLICATE", d)
        if bad:
            print(f"answers other than 200 and 503: {bad}")
        if self.cuts < self.args.min_cuts:
            print(f"too few power cuts: {self.cuts}, fewer than {self.args.min_cuts}")
        print(f"{self.cuts} power cuts, {checked} numbers checked, "
              f"{len(duplicates)} duplicates ({seconds:.0f} s)")
        return 1 if duplicates or bad or self.cuts < self.args.min_cuts else 0


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=None,
                   help="cut for this long (default 300; --short 45)")
    p.add_argument("--min-cuts", type=int, default=None,
                   help="fail with fewer power cuts than this (default 100; --short 10)")
    p.add_argument("--short", action="store_true", help="CI's run")
    p.add_argument("--clients", type=int, default=4, help="client processes (default 4)")
    p.add_argument("--seed", type=int, default=None, help="random seed (printed)")
    p.add_argument("--only", choices=("serving", "graceful", "restart", "import", "disk",
                                      "copy"), help="cut in this situation only")
    p.add_argument("--pez", help="the pez binary (default: target/release/pez)")
    p.add_argument("--work", help="its directory (default: target/power-cut)")
    p.add_argument("--verbose", action="store_true")
    args = p.parse_args()
    if args.min_cuts is None:
        args.min_cuts = 10 if args.short else 100
    if args.seconds is None:
        args.seconds = 45.0 if args.short else 300.0
    if args.seed is None:
        args.seed = random.randrange(1, 1 << 30)
    return args


def fuse_usable():
    if not os.path.exists("/dev/fuse"):
        return "there is no /dev/fuse"
    try:
        os.close(os.open("/dev/fuse", os.O_RDWR))
    except OSError as e:
        return f"/dev/fuse cannot be opened ({e.strerror})"
    if shutil.which("fusermount3") is None:
        return "fusermount3 is missing (Debian's fuse3)"
    return None


def main():
    args = parse_args()
    why = fuse_usable()
    if why:
        print(f"power-cut: skipped: {why}, so no FUSE file system can run here")
        return 0 if os.environ.get("PEZ_POWER_CUT_OPTIONAL") else 2
    print(f"power-cut: seed {args.seed}, cutting for {args.seconds:.0f} s (at least "
          f"{args.min_cuts} cuts), "
          f"{args.clients} clients", flush=True)
    registry = Registry()

    def interrupted(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupted)
    try:
        return Run(args, registry).main()
    except Failure as e:
        print(f"FAILED: {e}")
        print(f"power cut FAILED (seed {args.seed}); logs in target/power-cut/")
        return 1
    except HarnessError as e:
        print(f"power-cut: the harness failed: {e}")
        return 2
    except KeyboardInterrupt:
        return 130
    finally:
        registry.stop_all()


if __name__ == "__main__":
    sys.exit(main())
