"""The nemesis: faults injected one at a time, at random but bounded, each
logged with its times, and the observations the checker needs.

Every fault kind runs at least once per phase (in a shuffled order, from
the run's seed), then kinds are drawn by weight until the phase's time is
up. A fault is over when what it broke is repaired (instances up, a
primary with a synchronous standby); the nemesis then waits (bounded) for
PEZ to serve again and pauses a moment before the next one.

Observations:
- `after`: where each sequence stands in the store, read straight from it
  after a crash, restart or failover before PEZ can reach it again (a
  restarted primary listens only on its socket until then, a standby is
  read before its promotion, the SQLite file before the instance starts).
  No instance could lease since the fault, so every number received before
  the read must lie behind that position in the sequence's direction;
  otherwise the store forgot numbers it had handed out. Read again once
  PEZ serves (then only for numbers received before the fault).
- `window`: while the synchronous standby is down nothing new can be on it,
  so a number beyond what the standby can know (where the primary stood
  once the standby was gone, plus the 32 steps nextval() logs ahead),
  received before the standby was back, was served without being durable.
- `skip`: the numbers a restart or a re-create skips on purpose (from where
  the store stood to the new start), so they do not count as lost to gaps.
- `absent`: while a named sequence is deleted and re-created, and until
  `pez store copy` made `copied`, 404 is the right answer.
- `laps`: each ring's count of laps begun, read every ~150 ms (LapPoller)
  and wherever a fault needs it; `ring_after`: where a ring stood in its
  lap, read while nobody could take from it (the checker's lap rule).
- `floors`: where `pez store copy` put `copied`; `commands`: every `pez`
  command run, its exit code, time and bound.
"""

import json
import os
import sqlite3
import subprocess
import threading
import time

import history
from clients import ring_runs, runs_of
from history import EP_INDEX, RING_INDEX, RINGS, SEQ_INDEX, SEQUENCES
from pez import request, run_cli
from pg import Session
from procs import HarnessError

MARGIN = 10**12  # restarts and re-creates land this far ahead
# How far past the primary's position a standby may know a sequence: the
# 32 values nextval() logs ahead (SEQ_LOG_VALS), and a step to spare.
HORIZON_STEPS = 34
MAX = 2**63 - 1
NEMESIS_CLIENT = 99

PG_FAULTS = {
    "kill9": 3.0,
    "sigterm": 3.0,
    "pg-restart-fast": 1.0,
    "pg-restart-immediate": 1.5,
    "failover": 1.5,
    "standby-outage": 1.5,
    "standby-outage-crash": 1.0,
    "standby-outage-failover": 1.0,
    "recreate": 3.0,
    "restart-seq": 2.0,
    "giveback-race": 1.5,
    "sync-commit-local": 1.0,
    "ring": 2.0,
    "cli-admin": 1.5,
    "standby-lost-admin": 1.0,
}
# Behind PgBouncer (transaction mode, 2 server connections): the faults
# that make sense through a pooler in front of one server (no failover: the
# pooler names one host).
POOLER_FAULTS = {
    "kill9": 2.0,
    "sigterm": 2.0,
    "pg-restart-fast": 1.0,
    "standby-outage": 1.0,
    "sync-commit-local": 1.0,
    "ring": 1.5,
    "cli-admin": 1.0,
    "restart-seq": 1.0,
}
SQLITE_FAULTS = {
    "kill9": 3.0,
    "sigterm": 3.0,
    "lock-hold": 2.0,
    "recreate": 2.0,
    "restart-seq": 2.0,
    "ring": 2.0,
}

DESCRIPTIONS = {
    "kill9": "kill -9 of an instance under load, started again after 0.2-2 s",
    "sigterm": "SIGTERM of an instance under load (graceful stop, give-backs), started again",
    "pg-restart-fast": "pg_ctl stop -m fast of the primary, started again after 0.5-3 s; "
    "half the time an instance is killed and started while it is down",
    "pg-restart-immediate": "pg_ctl stop -m immediate of the primary (a crash), started again",
    "failover": "primary crashed (-m immediate), its synchronous standby promoted, "
    "the old primary rebuilt as the new synchronous standby",
    "standby-outage": "synchronous standby crashed (-m immediate) for 2-5 s, then back "
    "(commits must wait); an instance stopped gracefully meanwhile the first time, "
    "then half the time",
    "standby-outage-crash": "synchronous standby crashed, primary crashed 1-2.5 s later, "
    "both started again",
    "standby-outage-failover": "synchronous standby crashed, primary crashed 1-2.5 s later, "
    "the standby started and promoted, the old primary rebuilt",
    "recreate": "a named sequence deleted through one instance and created again through "
    "another, 10^12 ahead of where it stood, its mode often toggled (the first time: "
    "leased to strict)",
    "restart-seq": "forward or reverse restarted 10^12 ahead of where the store stands",
    "giveback-race": "a graceful stop's give-back of gb, with a range lease of gb through "
    "another instance landing between its read and its write",
    "lock-hold": "another process holds SQLite's write lock (BEGIN EXCLUSIVE) for 2-5 s",
    "sync-commit-local": "a DBA's ALTER SYSTEM SET synchronous_commit = 'local' and reload on "
    "the primary, the synchronous standby crashed for 2-4 s under it, back, then RESET "
    "and reload",
    "ring": "small cycling sequences: an instance holds most of a ring-a lap that began at "
    "its origin while a full lap (3,000, or 2,000 + 1,000) is range-leased through another, "
    "which brings the sequence back where it stood; the first is SIGTERMed (its give-back "
    "must be refused), restarted and takes ring-a before anyone else; full laps of ring-d "
    "meanwhile; then kill -9 of an instance amid full-lap leases",
    "cli-admin": "while clients serve: pez sequence restart (forward/reverse 10^12 ahead, "
    "--allow-early-wrap), export then import of the export with one sequence 10^12 "
    "ahead, and pez store copy --to-file of a small embedded store holding `copied`",
    "standby-lost-admin": "synchronous standby crashed; meanwhile an instance is stopped and "
    "started, pez migrate and pez handback run (bounded: non-zero exit, one pez: line); "
    "standby back, every instance serving",
}


WINDOW_LABEL = "while the standby was down (horizon: where the primary stood + 34 steps)"


class FaultLog:
    """Faults with their times, and the checker's observations."""

    def __init__(self, shared):
        self.shared = shared
        self.faults = []
        self.observations = []
        self.skips = []
        self.absent = []
        self.anomalies = []
        # Numbers of `copied` below a floor must not be received (from
        # t_from on): what `pez store copy` put there.
        self.floors = []
        # `pez` commands the nemesis ran: what, exit code, seconds, bound.
        self.commands = []
        # Where a ring stood in its lap, read while nobody could take from
        # it: numbers handed out in that lap must lie behind it.
        self.ring_after = []

    def begin(self, kind, **detail):
        self.bump()
        fault = {"id": len(self.faults), "kind": kind, "t_start": time.monotonic()}
        fault.update(detail)
        self.faults.append(fault)
        return fault

    def bump(self):
        """Answers before this moment are never merged with later ones."""
        self.shared.epoch.value += 1

    def end(self, fault):
        fault["t_end"] = time.monotonic()

    def anomaly(self, fault, what):
        self.anomalies.append(
            {"t": time.monotonic(), "fault": fault["id"] if fault else None, "what": what}
        )

    def save(self, path, **extra):
        with open(path, "w") as f:
            json.dump(
                {
                    **extra,
                    "faults": self.faults,
                    "observations": self.observations,
                    "skips": self.skips,
                    "absent": self.absent,
                    "anomalies": self.anomalies,
                    "floors": self.floors,
                    "commands": self.commands,
                    "ring_after": self.ring_after,
                },
                f,
                indent=1,
            )


class LapPoller:
    """Reads each ring's count of laps begun from the store every
    `interval` s, in a thread of its own: (t_start, t_end, {name: laps}),
    the read's snapshot taken between the two. The nemesis adds reads of
    its own where the store is out of PEZ's reach (a crashed primary
    started again, a standby before its promotion), so that a count a
    failover lost is seen to go down before PEZ can count it up again."""

    def __init__(self, read, interval=0.15):
        self.read = read
        self.interval = interval
        self.observations = []
        self.failures = 0
        self._lock = threading.Lock()
        self._reading = threading.Lock()
        self._stop = threading.Event()
        self._thread = None

    def record(self, t_start, t_end, laps):
        if laps:
            with self._lock:
                self.observations.append([t_start, t_end, laps])

    def poll(self):
        """One read now (the nemesis calls it too, where it needs one)."""
        with self._reading:
            t_start = time.monotonic()
            try:
                laps = self.read()
            except (HarnessError, subprocess.TimeoutExpired, sqlite3.Error, OSError):
                self.failures += 1
                return None
            self.record(t_start, time.monotonic(), laps)
            return laps

    def start(self):
        def loop():
            while not self._stop.wait(self.interval):
                self.poll()

        self.poll()
        self._thread = threading.Thread(target=loop, daemon=True)
        self._thread.start()

    def stop(self, close=None):
        self._stop.set()
        if self._thread is not None:
            self._thread.join(15)
        self.poll()
        if close is not None:
            close()

    def saved(self):
        with self._lock:
            return sorted(self.observations, key=lambda o: o[1])


class Nemesis:
    def __init__(self, phase, rng, shared, instances, log, writer, pair=None,
                 proxies=(), sqlite_path=None, sync_interval=1.0, binary=None, db_url=None,
                 workdir=None):
        self.phase = phase
        self.pg = phase != "sqlite"
        self.binary = binary
        # The URL the instances are given (through PgBouncer in that phase):
        # the CLI uses it too.
        self.db_url = db_url
        self.workdir = workdir
        self.copied_start = None
        self.cli_runs = 0
        self.rng = rng
        self.shared = shared
        self.instances = instances
        self.log = log
        self.writer = writer
        self.pair = pair
        # Instance 0's store links, one per PostgreSQL host.
        self.proxies = list(proxies)
        self.sqlite_path = sqlite_path
        self.sync_interval = sync_interval
        self.weights = dict({"pg": PG_FAULTS, "pgbouncer": POOLER_FAULTS,
                             "sqlite": SQLITE_FAULTS}[phase])
        self.mode = {name: mode for name, _, mode in SEQUENCES}
        self.flipped_to_strict = False
        self.stopped_in_outage = False
        self.laps = LapPoller(self.read_laps)
        self.session = None  # psql session on the primary, for the lap reads

    # -- the schedule -----------------------------------------------------

    def publish_all(self):
        for inst in self.instances:
            self.shared.ports[inst.slot] = inst.port

    def run(self, deadline, say, warm_up=2.0, overrun=60.0):
        """Faults until `deadline`; the first round (every kind once) runs
        to its end even past it, by at most `overrun` seconds."""
        # Load first, so the first fault meets instances that hold blocks
        # and clients with requests in flight.
        time.sleep(warm_up)
        kinds = list(self.weights)
        self.rng.shuffle(kinds)
        first_round = list(kinds)
        while True:
            now = time.monotonic()
            if now > deadline + overrun or (now > deadline - 6 and not first_round):
                break
            if first_round:
                kind = first_round.pop(0)
            else:
                kind = self.rng.choices(kinds, weights=[self.weights[k] for k in kinds])[0]
            say(f"fault {len(self.log.faults):3d}: {kind}")
            try:
                getattr(self, "f_" + kind.replace("-", "_"))()
            except HarnessError as e:
                # The fault could not be driven to its end: noted, repaired
                # (or the phase fails), and the run goes on.
                say(f"fault {kind} could not complete: {e}")
                self.log.anomaly(None, f"{kind} could not complete: {e}")
                self.repair()
            self.wait_serving(self.log.faults[-1])
            pause = self.rng.uniform(0.5, 2.0)
            time.sleep(max(0.0, min(pause, deadline + overrun - time.monotonic())))
        return len(first_round) == 0

    # -- instances ----------------------------------------------------------

    def live(self):
        return [i for i in self.instances if i.running and self.shared.ports[i.slot]]

    def pick(self):
        live = self.live()
        if not live:
            raise HarnessError("no instance is up")
        return self.rng.choice(live)

    def down(self, inst):
        self.shared.ports[inst.slot] = 0

    def bring_up(self, inst, fault, timeout=60, publish=True):
        """Starts the instance and waits until it is ready (bounded);
        an instance that gives up by itself is noted and started again.
        `publish`: clients may use it from now on."""
        deadline = time.monotonic() + timeout
        while True:
            if not inst.running:
                inst.spawn()
            why = inst.wait_ready(max(1.0, deadline - time.monotonic()))
            if why is None:
                if publish:
                    self.shared.ports[inst.slot] = inst.port
                return
            self.log.anomaly(fault, f"instance {inst.slot} did not start: {why}")
            if inst.running:
                inst.kill9()
            if time.monotonic() > deadline:
                raise HarnessError(f"instance {inst.slot} does not start: {why}")
            time.sleep(0.5)

    def wait_serving(self, fault, timeout=60):
        """Polls /readyz of the live instances until one answers 200."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for inst in self.live():
                if request(inst.port, "GET", "/readyz", timeout=2)[0] == 200:
                    fault["t_serving"] = time.monotonic()
                    return True
            time.sleep(0.05)
        self.log.anomaly(fault, f"no instance ready within {timeout}s after the fault")
        return False

    def repair(self):
        """Back to a primary with a synchronous standby and every instance up."""
        if self.pg:
            primary, standby = self.pair.primary, self.pair.standby
            if not primary.accepts_writes():
                raise HarnessError(f"{primary.label} is not a primary any more; cannot repair")
            # A DBA's setting left by a fault cut short goes first, before a
            # base backup could copy it (postgresql.auto.conf).
            primary.alter_system("synchronous_commit")
            if not standby.running():
                try:
                    standby.restart()
                except HarnessError:
                    standby.rebuild_as_standby_of(primary)
            primary.make_sync()
        self.ensure_all_up(None)

    def ensure_all_up(self, fault):
        for inst in self.instances:
            if not inst.running or not self.shared.ports[inst.slot]:
                self.bring_up(inst, fault)

    # -- where the store stands ----------------------------------------------

    def positions(self):
        if self.pg:
            return self.pair.positions()
        conn = sqlite3.connect(self.sqlite_path, timeout=10)
        try:
            rows = conn.execute("SELECT name, next_value FROM sequences").fetchall()
        finally:
            conn.close()
        return {name: value for name, value in rows if value is not None}

    def stands(self, name):
        stood = self.positions().get(name)
        if stood is None:
            raise HarnessError(f"{name} is not in the store")
        return stood

    def observe(self, fault, kind, t_before, label, positions=None, t_from=None):
        t_read = time.monotonic()
        if positions is None:
            positions = self.positions()
        obs = {
            "fault": fault["id"] if fault else None,
            "kind": kind,
            "label": label,
            "t_before": t_before,
            "t_read": t_read,
            "positions": positions,
        }
        if t_from is not None:
            obs["t_from"] = t_from
        self.log.observations.append(obs)

    # -- instance faults -------------------------------------------------------

    def f_kill9(self):
        inst = self.pick()
        fault = self.log.begin("kill9", instance=inst.slot)
        inst.kill9()
        self.down(inst)
        if not self.pg:
            # Nothing can lease until it is started again: every number
            # received so far must be behind where the file stands.
            self.observe(fault, "after", time.monotonic(), "store file after kill -9")
        time.sleep(self.rng.uniform(0.2, 2.0))
        self.bring_up(inst, fault)
        self.log.end(fault)

    def f_sigterm(self):
        inst = self.pick()
        fault = self.log.begin("sigterm", instance=inst.slot)
        self.down(inst)
        self.stop_gracefully(inst, fault, 25)
        if not self.pg:
            self.observe(fault, "after", time.monotonic(), "store file after a graceful stop")
        time.sleep(self.rng.uniform(0.1, 1.0))
        self.bring_up(inst, fault)
        self.log.end(fault)

    def stop_gracefully(self, inst, fault, timeout):
        code, seconds = inst.terminate(timeout)
        fault["stop_seconds"] = round(seconds, 3)
        fault["stop_report"] = [
            line.split("] ", 1)[-1] for line in inst.log_lines("stopped:")[-1:]
        ]
        if code is None:
            self.log.anomaly(
                fault,
                f"graceful stop of instance {inst.slot} did not finish within "
                f"{timeout}s: killed",
            )
        elif code != 0:
            self.log.anomaly(fault, f"instance {inst.slot} exited {code} on SIGTERM")
        return code

    # -- PostgreSQL faults -------------------------------------------------------

    def f_pg_restart_fast(self):
        self.pg_restart("fast")

    def f_pg_restart_immediate(self):
        self.pg_restart("immediate")

    def pg_restart(self, mode):
        # Half the time an instance is also started while PostgreSQL is down
        # or recovering: it must wait for it, not give up.
        inst = self.pick() if self.rng.random() < 0.5 else None
        fault = self.log.begin(
            f"pg-restart-{mode}", instance_started_meanwhile=inst.slot if inst else None
        )
        primary = self.pair.primary
        primary.stop(mode)
        if inst is not None:
            self.down(inst)
            inst.kill9()
            inst.spawn()
        time.sleep(self.rng.uniform(0.5, 3.0))
        self.restart_and_read(primary, fault, "primary after its restart")
        self.pair.primary.make_sync()
        if inst is not None:
            self.bring_up(inst, fault)
        if self.wait_serving(fault):
            self.observe(fault, "after", fault["t_start"], "once PEZ serves again")
        self.log.end(fault)

    def restart_and_read(self, cluster, fault, label, promote=False):
        """Starts a crashed cluster where PEZ cannot reach it (no TCP),
        promotes it if asked, reads where the sequences stand, and opens it
        to PEZ: the read sees what the store kept, before PEZ moves on.
        No instance could lease since the crash, so every number received
        before the read must be behind it."""
        cluster.restart(socket_only=True)
        if promote:
            cluster.promote()
        positions = self.pair.positions(cluster, socket=True)
        self.observe(fault, "after", time.monotonic(), label, positions)
        self.read_laps_from(cluster, socket=True)
        cluster.reopen()
        cluster.wait_accepts_writes()

    def f_failover(self):
        fault = self.log.begin("failover", old_primary=self.pair.primary.label)
        old, new = self.pair.primary, self.pair.standby
        old.stop("immediate")
        # What the standby has is what the new primary will have: read it
        # on the hot standby, before the promotion lets PEZ in.
        new.wait_replayed()
        positions = self.pair.positions(new)
        self.observe(fault, "after", time.monotonic(), "standby, before its promotion",
                     positions)
        self.read_laps_from(new)
        new.promote()
        self.promoted(fault, fault["t_start"])
        self.log.end(fault)

    def promoted(self, fault, t_crash):
        """The standby is the primary now: the old primary is rebuilt as its
        synchronous standby. Until then the new one runs alone (commits stop
        waiting), as Patroni's synchronous_mode does."""
        old, new = self.pair.primary, self.pair.standby
        self.pair.swap()
        new.make_async()
        new.wait_accepts_writes()
        # Whatever a base backup once copied into its postgresql.auto.conf.
        new.alter_system("synchronous_commit")
        old.rebuild_as_standby_of(new)
        fault["new_primary"] = new.label
        if self.wait_serving(fault):
            self.observe(fault, "after", t_crash, "once PEZ serves again")

    def standby_down(self, fault):
        """Stops the standby; (where the primary stood once no WAL could
        reach the standby, when that was read). Half the time the clients
        are held back around the stop, so that what leaks through right
        after it is past that position, where the checker sees it."""
        quiet = self.rng.random() < 0.5
        fault["clients_held_at_stop"] = quiet
        if quiet:
            for i in range(len(SEQUENCES)):
                self.shared.paused[i] = 1
            deadline = time.monotonic() + 5
            while any(self.shared.inflight) and time.monotonic() < deadline:
                time.sleep(0.005)
        try:
            stood, steps = self.pair.stop_standby()
            t_ps = time.monotonic()
        finally:
            for i in range(len(SEQUENCES)):
                self.shared.paused[i] = 0
        # nextval() WAL-logs up to 32 steps ahead, so the standby may know
        # a sequence up to that far past where the primary stood: only
        # numbers beyond that horizon are surely not on it.
        horizon = {}
        for name, value in stood.items():
            seq = SEQ_INDEX.get(name)
            if seq is None or seq in RING_INDEX:
                continue
            ahead = HORIZON_STEPS * steps[name]
            horizon[name] = value + ahead if history.ASCENDING[seq] else value - ahead
        fault["stood_when_standby_went"] = stood
        return horizon, t_ps

    def f_standby_outage(self):
        fault = self.log.begin("standby-outage")
        standby = self.pair.standby
        horizon, t_ps = self.standby_down(fault)
        hold_until = t_ps + self.rng.uniform(2.0, 5.0)
        # An instance is stopped gracefully meanwhile (the first time, then
        # half the time): its stop must end within a bound even though
        # commits cannot finish.
        stop_one = not self.stopped_in_outage or self.rng.random() < 0.5
        self.stopped_in_outage = True
        inst = self.pick() if stop_one else None
        stopper = None
        if inst is not None:
            # A moment into the outage, when leases and takes are waiting
            # for the standby: what a stop must not wait for without bound.
            time.sleep(self.rng.uniform(0.8, 1.5))
            fault["instance_stopped_meanwhile"] = inst.slot
            self.down(inst)
            stopper = threading.Thread(target=self.stop_gracefully, args=(inst, fault, 12))
            stopper.start()
        while time.monotonic() < hold_until or (stopper and stopper.is_alive()):
            time.sleep(0.05)
        t_up = time.monotonic()
        self.observe(fault, "window", t_up, WINDOW_LABEL, horizon, t_from=t_ps)
        standby.restart()
        self.pair.primary.make_sync()
        if inst is not None:
            self.bring_up(inst, fault)
        self.log.end(fault)

    def f_standby_outage_crash(self):
        self.standby_outage_then_crash(failover=False)

    def f_standby_outage_failover(self):
        self.standby_outage_then_crash(failover=True)

    def standby_outage_then_crash(self, failover):
        kind = "standby-outage-failover" if failover else "standby-outage-crash"
        fault = self.log.begin(kind)
        primary, standby = self.pair.primary, self.pair.standby
        horizon, t_ps = self.standby_down(fault)
        time.sleep(self.rng.uniform(1.0, 2.5))
        self.log.bump()
        fault["t_crash"] = time.monotonic()
        primary.stop("immediate")
        self.observe(fault, "window", fault["t_crash"], WINDOW_LABEL, horizon, t_from=t_ps)
        if failover:
            # The standby starts on its own, and is promoted where PEZ
            # cannot reach it yet.
            self.restart_and_read(standby, fault, "standby promoted after the primary's crash",
                                  promote=True)
            self.promoted(fault, fault["t_crash"])
        else:
            self.restart_and_read(primary, fault, "primary after its restart")
            standby.restart()
            primary.make_sync()
            if self.wait_serving(fault):
                self.observe(fault, "after", fault["t_crash"], "once PEZ serves again")
        self.log.end(fault)

    # -- SQLite faults -----------------------------------------------------------

    def f_lock_hold(self):
        hold = self.rng.uniform(2.0, 5.0)
        fault = self.log.begin("lock-hold", seconds=round(hold, 2))
        conn = sqlite3.connect(self.sqlite_path, timeout=2, isolation_level=None)
        try:
            # PEZ itself keeps the write lock busy under this load: retried,
            # bounded.
            deadline = time.monotonic() + 30
            while True:
                try:
                    conn.execute("BEGIN EXCLUSIVE")
                    break
                except sqlite3.OperationalError as e:
                    if time.monotonic() > deadline:
                        self.log.anomaly(fault, f"could not take SQLite's write lock in 30 s: {e}")
                        self.log.end(fault)
                        return
            fault["t_locked"] = time.monotonic()
            time.sleep(hold)
            conn.execute("ROLLBACK")
        finally:
            conn.close()
        fault["t_unlocked"] = time.monotonic()
        self.log.end(fault)

    # -- sequence faults (admin API) ------------------------------------------

    def admin(self, method, path, body, fault, expect, attempts=60, through=None):
        """An admin call through `through` (or a random live instance),
        retried (bounded) while the answer is 503 or none."""
        for _ in range(attempts):
            inst = through if through is not None and through.running else self.pick()
            status, reply = request(inst.port, method, path, body, admin=True)
            if status in expect:
                return inst, status, reply
            if status not in (0, 503):
                raise HarnessError(f"{method} {path}: {status} {reply[:200]!r}")
            time.sleep(0.25)
        raise HarnessError(f"{method} {path}: no answer")

    def f_recreate(self):
        name = self.rng.choice(history.RECREATABLE)
        mode = self.mode[name]
        # leased -> strict is the change a stale instance gets wrong (its
        # lease step no longer is the sequence's): made more often, and the
        # first re-create of a phase is always one.
        if not self.flipped_to_strict:
            leased = [n for n in history.RECREATABLE if self.mode[n] == "leased"]
            if leased:
                name, mode = self.rng.choice(leased), "strict"
                self.flipped_to_strict = True
        elif self.rng.random() < (0.7 if mode == "leased" else 0.4):
            mode = "strict" if mode == "leased" else "leased"
        seq = SEQ_INDEX[name]
        ascending = history.ASCENDING[seq]
        stood = self.stands(name)
        if ascending:
            start = stood + MARGIN
            body = {"direction": "ascending", "min": start, "max": MAX, "start": start}
            skip = (stood, start - 1)
        else:
            start = stood - MARGIN
            body = {"direction": "descending", "min": 1, "max": start, "start": start}
            skip = (start + 1, stood)
        body["mode"] = mode
        fault = self.log.begin("recreate", sequence=name, mode=mode, stood=stood, start=start)
        self.log.skips.append({"seq": seq, "lo": skip[0], "hi": skip[1]})
        # Every instance takes from it just before and just after, so each
        # has fresh knowledge of the old incarnation to get wrong.
        self.range_lease_everywhere(name, 10)
        # Deleted through one instance and created through another, so a
        # third (with three) learns of it only through its sync task.
        live = self.live()
        self.rng.shuffle(live)
        t_delete = time.monotonic()
        by, _, _ = self.admin("DELETE", f"/v2/sequences/{name}", None, fault, (204,),
                              through=live[0])
        fault["deleted_through"] = by.slot
        by, _, _ = self.admin("PUT", f"/v2/sequences/{name}", body, fault, (201,),
                              through=live[-1])
        fault["created_through"] = by.slot
        self.shared.strict[seq] = mode == "strict"
        self.mode[name] = mode
        for _ in range(2):
            self.range_lease_everywhere(name, 1500)
        self.log.absent.append(
            {"seq": seq, "t_from": t_delete,
             "t_to": time.monotonic() + 2 * self.sync_interval + 2.0}
        )
        self.log.end(fault)

    def range_lease_everywhere(self, name, count):
        live = self.live()
        self.rng.shuffle(live)
        for inst in live:
            self.range_lease(inst, name, count)

    def f_restart_seq(self):
        name = self.rng.choice(history.RESTARTABLE)
        seq = SEQ_INDEX[name]
        stood = self.stands(name)
        if history.ASCENDING[seq]:
            value, skip = stood + MARGIN, (stood, stood + MARGIN - 1)
        else:
            value, skip = stood - MARGIN, (stood - MARGIN + 1, stood)
        fault = self.log.begin("restart-seq", sequence=name, stood=stood, value=value)
        self.log.skips.append({"seq": seq, "lo": skip[0], "hi": skip[1]})
        # Every sequence cycles: moving one that has issued numbers ahead
        # needs consent (409 without it).
        by, _, _ = self.admin(
            "POST", f"/v2/sequences/{name}/restart",
            {"value": value, "allow_early_wrap": True}, fault, (200,)
        )
        fault["through"] = by.slot
        self.log.end(fault)

    # -- the give-back race ----------------------------------------------------------

    def f_giveback_race(self):
        """Instance 0 (whose store link runs through the proxy) leases the
        newest block of gb, then stops gracefully; its give-back reads
        where gb stands, and before it writes, a range lease of gb goes
        through another instance."""
        a = self.instances[0]
        others = [i for i in self.live() if i is not a]
        if not a.running or not others or not self.proxies:
            return
        b = self.rng.choice(others)
        gb = SEQ_INDEX["gb"]
        fault = self.log.begin("giveback-race", stopped=a.slot, range_lease_through=b.slot)
        self.shared.paused[gb] = 1
        try:
            deadline = time.monotonic() + 20
            while not self.shared.quiet(gb) and time.monotonic() < deadline:
                time.sleep(0.01)
            before = self.positions().get("gb")
            leased = False
            for _ in range(40):
                self.take(a, "gb", 10000)
                status, body = request(a.port, "GET", "/v2/sequences/gb", admin=True)
                on_hand = json.loads(body).get("on_hand", 0) if status == 200 else 0
                if self.positions().get("gb") != before and on_hand > 10000:
                    leased = True
                    break
            fault["newest_block_leased"] = leased
            result = {}

            def hook():
                status, ranges = self.range_lease(b, "gb", 100_000, timeout=3)
                result["status"] = status
                result["ranges"] = ranges

            fired = sum(p.fired for p in self.proxies)
            for p in self.proxies:
                p.arm("gb", hook)
            self.down(a)
            self.stop_gracefully(a, fault, 25)
            for p in self.proxies:
                p.disarm()
            fault["hook_fired"] = sum(p.fired for p in self.proxies) > fired
            fault["hook"] = result
            fault["gave_back"] = [
                line.split("] ", 1)[-1] for line in a.log_lines("gb: gave back")[-2:]
            ]
        finally:
            self.shared.paused[gb] = 0
        self.bring_up(a, fault)
        self.log.end(fault)

    def take(self, inst, name, count):
        """Numbers the nemesis itself takes: recorded like a client's."""
        seq = SEQ_INDEX[name]
        t_send = time.monotonic()
        status, body = request(inst.port, "GET", f"/v2/sequences/{name}/next?count={count}")
        t_recv = time.monotonic()
        ep = EP_INDEX["nemesis-next"]
        if status != 200:
            self.writer.status(t_send, t_recv, seq, ep, inst.slot, status)
            return status, []
        numbers = json.loads(body)
        runs, distinct, _ = runs_of(numbers)
        if seq in RING_INDEX:
            runs = ring_runs(numbers, history.ASCENDING[seq])
        for lo, hi in runs:
            self.writer.run(t_send, t_recv, seq, ep, inst.slot, lo, hi, merge=False)
        if not distinct:
            self.writer.status(t_send, t_recv, seq, ep, inst.slot, history.DUPLICATE_IN_ANSWER)
        return status, numbers

    def range_lease(self, inst, name, count, timeout=5):
        """A range lease the nemesis takes itself: recorded like a client's."""
        seq = SEQ_INDEX[name]
        ep = EP_INDEX["nemesis-lease"]
        t_send = time.monotonic()
        status, body = request(
            inst.port, "POST", f"/v2/sequences/{name}/lease?count={count}", timeout=timeout
        )
        t_recv = time.monotonic()
        if status != 200:
            self.writer.status(t_send, t_recv, seq, ep, inst.slot, status)
            return status, []
        ranges = [(r["first"], r["last"]) for r in json.loads(body)["ranges"]]
        given = [(min(a, b), max(a, b)) for a, b in ranges]
        runs = sorted(given)
        # A ring's ranges in the order the answer gave them (see ring_runs).
        for lo, hi in given if seq in RING_INDEX else runs:
            self.writer.run(t_send, t_recv, seq, ep, inst.slot, lo, hi, merge=False)
        if any(runs[k][1] >= runs[k + 1][0] for k in range(len(runs) - 1)):
            self.writer.status(t_send, t_recv, seq, ep, inst.slot, history.DUPLICATE_IN_ANSWER)
        return status, ranges

    # -- the rings' lap counters ----------------------------------------------------

    def read_laps(self):
        """{ring: laps} as the store has it now (the current primary)."""
        if self.pg:
            primary = self.pair.primary
            if self.session is None or self.session.cluster is not primary \
                    or not self.session.alive():
                self.close_session()
                self.session = Session(primary)
            listed = ", ".join(f"'{n}'" for n in RINGS)
            rows = self.session.rows(
                f"SELECT name, laps FROM pez.sequences WHERE name IN ({listed})")
            return {name: int(laps) for name, laps in rows}
        conn = sqlite3.connect(f"file:{self.sqlite_path}?mode=ro", uri=True, timeout=0.3)
        try:
            names = list(RINGS)
            rows = conn.execute(
                f"SELECT name, laps FROM sequences WHERE name IN ({','.join('?' * len(names))})",
                names,
            ).fetchall()
        finally:
            conn.close()
        return {name: int(laps) for name, laps in rows}

    def stop_laps(self):
        self.laps.stop(close=self.close_session)

    def close_session(self):
        if self.session is not None:
            self.session.close()
            self.session = None

    def ring_stands(self, name):
        """Where a ring's next reservation starts (None from PostgreSQL's
        positions means past the end: the origin)."""
        lo, hi = RINGS[name]
        stood = self.positions().get(name)
        if stood is None:
            return lo if history.ASCENDING[SEQ_INDEX[name]] else hi
        return stood

    def read_laps_from(self, cluster, socket=False):
        """A read of the laps where PEZ cannot reach the store (bounded; a
        failure only leaves a wider interval)."""
        t_start = time.monotonic()
        try:
            laps = cluster.laps(RINGS, socket=socket, timeout=5)
        except (HarnessError, subprocess.TimeoutExpired):
            return
        self.laps.record(t_start, time.monotonic(), laps)

    def on_hand(self, inst, name):
        status, body = request(inst.port, "GET", f"/v2/sequences/{name}", admin=True)
        try:
            return json.loads(body).get("on_hand", 0) if status == 200 else 0
        except ValueError:
            return 0

    # -- `pez` from the command line -------------------------------------------------

    def cli(self, fault, what, args, env, timeout=60, bound=None, expect_failure=False):
        """Runs `pez ARGS` (bounded by `timeout`) and logs it; its exit code."""
        code, seconds, lines = run_cli(self.binary, args, env, self.cli_dir(), timeout)
        pez_lines = [line for line in lines if line.startswith("pez:")]
        entry = {
            "fault": fault["id"],
            "what": what,
            "code": code,
            "seconds": round(seconds, 3),
            "bound": bound,
            "expect_failure": expect_failure,
            "pez_lines": len(pez_lines),
            "said": (pez_lines or lines or [""])[-1][:300],
        }
        self.log.commands.append(entry)
        fault.setdefault("commands", []).append(
            f"{what}: exit {code} in {seconds:.2f}s: {entry['said']}")
        if code != 0 and not expect_failure:
            self.log.anomaly(fault, f"pez {what} exited {code}: {entry['said']}")
        return code

    def cli_dir(self):
        path = os.path.join(self.workdir, "cli")
        os.makedirs(path, exist_ok=True)
        return path

    def cli_env(self, startup_ms):
        return {
            "PEZ_DATABASE_URL": self.db_url,
            "PEZ_LOG": "warn",
            "PEZ_DB_STARTUP_TIMEOUT_MS": str(startup_ms),
        }

    def skip_ahead(self, seq, stood, value):
        """Records what moving `seq` from `stood` to `value` skips."""
        lo, hi = (stood, value - 1) if history.ASCENDING[seq] else (value + 1, stood)
        self.log.skips.append({"seq": seq, "lo": lo, "hi": hi})

    # -- issue 16's faults -------------------------------------------------------------

    def f_sync_commit_local(self):
        """A DBA lowers synchronous_commit for the whole server; PEZ's own
        transactions must still wait for the synchronous standby."""
        fault = self.log.begin("sync-commit-local")
        primary, standby = self.pair.primary, self.pair.standby
        primary.alter_system("synchronous_commit", "local")
        fault["server_setting"] = primary.show("synchronous_commit")
        try:
            time.sleep(self.rng.uniform(0.5, 1.5))  # under load with it first
            horizon, t_ps = self.standby_down(fault)
            hold_until = t_ps + self.rng.uniform(2.0, 4.0)
            while time.monotonic() < hold_until:
                time.sleep(0.05)
            self.observe(fault, "window", time.monotonic(),
                         WINDOW_LABEL + ", synchronous_commit = local", horizon, t_from=t_ps)
            standby.restart()
            primary.make_sync()
        finally:
            # Reset before anything else: a base backup taken later would
            # copy it (postgresql.auto.conf) into a rebuilt standby.
            primary.alter_system("synchronous_commit")
        fault["setting_after"] = primary.show("synchronous_commit")
        self.log.end(fault)

    def f_ring(self):
        """Full laps of the small cycling sequences around a graceful stop
        and a kill -9: a give-back after a full lap must be refused.

        ring-a (3,000 numbers, 1,000 a nextval()): instance a reserves a
        block that begins at the ring's origin, so the numbers it holds lie
        in one lap, and the store stands right after it; a full lap of
        exact takes through b (3,000, or a lap-sized pair 2,000 + 1,000)
        brings the native sequence back exactly there, one lap later; then
        a stops gracefully. Its give-back must be refused (the lap count
        moved). Were it taken, the restarted a would hand out again, in the
        lap b's full lap began, numbers b had in it: a's range leases right
        after its restart, before anyone else takes ring-a, and b's lap are
        both pinned to that lap by lap reads around them, and the lap check
        sees it. ring-d (2,500, strict) gets full laps and 1,500 + 1,000
        pairs through b meanwhile. Then kill -9 of an instance amid full
        laps. (With one instance, SQLite, a and b are the same.)"""
        live = self.live()
        if not live:
            raise HarnessError("no instance is up")
        a = self.rng.choice(live)
        others = [i for i in live if i is not a]
        b = self.rng.choice(others) if others else a
        fault = self.log.begin("ring", stopped=a.slot, leases_through=b.slot)
        ra = SEQ_INDEX["ring-a"]
        origin, last = RINGS["ring-a"]
        lap_a = last - origin + 1
        lap_d = RINGS["ring-d"][1] - RINGS["ring-d"][0] + 1
        # Clients leave ring-a alone until the restarted a has taken from it.
        self.shared.paused[ra] = 1
        try:
            deadline = time.monotonic() + 20
            while not self.shared.quiet(ra) and time.monotonic() < deadline:
                time.sleep(0.01)
            fault["newest_block_from_origin"] = self.hold_lap_from_origin(a, b, lap_a, origin)
            fault["held_by_stopped"] = self.on_hand(a, "ring-a")
            self.laps.poll()
            lap = self.rng.choice(([lap_a], [2000, lap_a - 2000], [1000, lap_a - 1000]))
            fault["lap_through_b"] = lap
            for count in lap:
                self.range_lease(b, "ring-a", count)
                self.laps.poll()
            fault["back_at_origin_after_the_lap"] = self.ring_stands("ring-a") == origin
            self.down(a)
            stopper = threading.Thread(target=self.stop_gracefully, args=(a, fault, 25))
            stopper.start()
            n = 0
            while stopper.is_alive():
                if b is not a:
                    if n % 2 == 0:
                        self.range_lease(b, "ring-d", lap_d)
                    else:
                        self.range_lease(b, "ring-d", lap_d * 3 // 5)
                        self.range_lease(b, "ring-d", lap_d - lap_d * 3 // 5)
                    n += 1
                else:
                    time.sleep(0.02)
            stopper.join()
            fault["ring_a_at_stop"] = [
                line.split("] ", 1)[-1] for line in a.log_lines("ring-a: ")[-2:]
            ]
            # A refused give-back leaves ring-a where b's lap left it (at
            # its origin); one taken sets it back into the lap b's full lap
            # began, behind numbers b has: the lap check's `ring_after`.
            self.ring_read_after(fault, "ring-a", "after the graceful stop of an instance "
                                 "that held a block when a full lap went by")
            if not self.pg:
                self.observe(fault, "after", time.monotonic(),
                             "store file after a graceful stop")
            self.laps.poll()
            time.sleep(self.rng.uniform(0.1, 0.5))
            self.bring_up(a, fault)
            self.laps.poll()
            # Exact takes of less than a nextval() first (no origin in them),
            # then leased ones, all before anyone else takes ring-a.
            for _ in range(2):
                self.range_lease(a, "ring-a", self.rng.randint(1, 999))
            self.laps.poll()
            for _ in range(2):
                self.take(a, "ring-a", self.rng.randint(1, 300))
            self.laps.poll()
        finally:
            self.shared.paused[ra] = 0
        self.take(a, "ring-a", lap_a)
        # kill -9 amid full laps.
        victim = self.pick()
        through = [i for i in self.live() if i is not victim]
        self.take(victim, "ring-a", self.rng.randint(1, 100))
        fault["killed"] = victim.slot
        victim.kill9()
        self.down(victim)
        if not self.pg:
            self.observe(fault, "after", time.monotonic(), "store file after kill -9")
        for inst in through[:1]:
            self.range_lease(inst, "ring-a", lap_a)
            self.range_lease(inst, "ring-d", lap_d)
        time.sleep(self.rng.uniform(0.2, 1.0))
        self.bring_up(victim, fault)
        self.take(victim, "ring-a", lap_a)
        self.range_lease(victim, "ring-d", lap_d)
        self.log.end(fault)

    def ring_read_after(self, fault, name, label):
        """Where ring `name` stands and its lap count, read while nobody
        takes from it (the count read before and after the position, the
        same both times)."""
        t_read = time.monotonic()
        before = self.laps.poll()
        stood = self.ring_stands(name)
        after = self.laps.poll()
        fault[f"{name}_stands_after"] = stood
        if before and after and before.get(name) == after.get(name) is not None:
            self.log.ring_after.append({"seq": SEQ_INDEX[name], "fault": fault["id"],
                                        "t_read": t_read, "laps": before[name],
                                        "position": stood, "label": label})

    def hold_lap_from_origin(self, a, b, lap, origin):
        """Makes instance a's newest block of ring-a a whole lap from the
        origin, with the store standing right after it (at the origin
        again) and a holding some of it. True once it does (a few tries)."""
        for _ in range(8):
            stood = self.ring_stands("ring-a")
            if stood != origin:
                # Whole nextval() steps up to the end of the lap.
                self.range_lease(b, "ring-a", lap - (stood - origin))
            held = self.on_hand(a, "ring-a")
            # Served all it holds, a leases again, from the origin.
            self.take(a, "ring-a", max(1, min(held, lap)))
            time.sleep(0.05)
            leased = (a.log_lines("ring-a: leased") or [""])[-1]
            if (f" numbers {origin}..={origin + lap - 1} " in leased
                    and self.on_hand(a, "ring-a") > lap // 2
                    and self.ring_stands("ring-a") == origin):
                # Some of it served, so that a give-back would set the
                # sequence back into the lap (a whole lap given back would
                # leave it where it stands), and more than half of it kept,
                # so that a does not lease ahead.
                self.take(a, "ring-a", self.rng.randint(1, self.on_hand(a, "ring-a") - lap // 2))
                return self.ring_stands("ring-a") == origin
        return False

    def f_cli_admin(self):
        """restart, export + import and store copy from the command line,
        against the database the instances serve from, under load."""
        fault = self.log.begin("cli-admin")
        self.cli_runs += 1
        work = os.path.join(self.cli_dir(), f"run-{self.cli_runs}")
        os.makedirs(work, exist_ok=True)
        env = self.cli_env(10000)
        bound = 30
        # 1. pez sequence restart, 10^12 ahead of where the store stands.
        name = self.rng.choice(history.RESTARTABLE)
        seq = SEQ_INDEX[name]
        stood = self.stands(name)
        value = stood + MARGIN if history.ASCENDING[seq] else stood - MARGIN
        fault["restart"] = {"sequence": name, "stood": stood, "value": value}
        self.skip_ahead(seq, stood, value)
        self.cli(fault, "sequence restart", ["sequence", "restart", name, str(value),
                                             "--allow-early-wrap"], env, bound=bound)
        # 2. export, and import the export with one sequence 10^12 further.
        exported = os.path.join(work, "export.json")
        if self.cli(fault, "sequence export", ["sequence", "export", "-o", exported], env,
                    bound=bound) == 0:
            with open(exported) as f:
                listing = json.load(f)
            name = self.rng.choice(history.RESTARTABLE)
            seq = SEQ_INDEX[name]
            entry = next(e for e in listing["sequences"] if e["name"] == name)
            was = entry["next"]
            entry["next"] = was + MARGIN if history.ASCENDING[seq] else was - MARGIN
            fault["import"] = {"sequence": name, "exported": was, "next": entry["next"]}
            self.skip_ahead(seq, was, entry["next"])
            imported = os.path.join(work, "import.json")
            with open(imported, "w") as f:
                json.dump(listing, f)
            self.cli(fault, "sequence import", ["sequence", "import", imported,
                                                "--allow-early-wrap"], env, bound=bound)
        # 3. pez store copy of a small embedded store holding `copied`: the
        # first time it creates it in PostgreSQL at a position of its own,
        # later it moves it 10^12 ahead of where it stands there.
        copied = SEQ_INDEX["copied"]
        embedded = {"PEZ_DATA_DIR": os.path.join(work, "embedded"), "PEZ_LOG": "warn"}
        first = self.copied_start is None
        if first:
            start = target = 10**15 + self.rng.randrange(10**12)
            stood = None
        else:
            start = self.copied_start
            stood = self.positions().get("copied", start)
            target = stood + MARGIN
        self.cli(fault, "sequence create (embedded)",
                 ["sequence", "create", "copied", "--min", "1", "--max", str(MAX),
                  "--start", str(start)], embedded, bound=bound)
        if target != start:
            self.cli(fault, "sequence restart (embedded)",
                     ["sequence", "restart", "copied", str(target)], embedded, bound=bound)
        url_file = os.path.join(work, "database-url")
        with open(url_file, "w") as f:
            f.write(self.db_url + "\n")
        os.chmod(url_file, 0o600)
        code = self.cli(fault, "store copy", ["store", "copy", "--to-file", url_file,
                                             "--allow-early-wrap"], embedded, bound=bound)
        t_copied = time.monotonic()
        fault["copy"] = {"position": target, "created": first, "stood": stood}
        if first:
            for a in self.log.absent:
                if a["seq"] == copied and a["t_to"] == float("inf"):
                    a["t_to"] = t_copied + 2 * self.sync_interval + 2.0
            if code == 0:
                self.copied_start = start
                self.log.floors.append({"seq": copied, "value": target, "t_from": None,
                                        "fault": fault["id"],
                                        "label": "created by pez store copy"})
        else:
            self.skip_ahead(copied, stood, target)
            if code == 0:
                self.log.floors.append({
                    "seq": copied, "value": target, "fault": fault["id"],
                    "t_from": t_copied + 2 * self.sync_interval + 1.0,
                    "label": "moved ahead by pez store copy (requests sent from twice "
                             "the sync interval and a second after it)"})
        self.log.end(fault)

    def f_standby_lost_admin(self):
        """The synchronous standby gone while an instance starts and
        `pez migrate` and `pez handback` run: bounded, nothing served that
        the standby does not have."""
        fault = self.log.begin("standby-lost-admin")
        standby = self.pair.standby
        horizon, t_ps = self.standby_down(fault)
        inst = self.pick()
        fault["instance_restarted"] = inst.slot
        self.down(inst)
        self.stop_gracefully(inst, fault, 12)
        inst.spawn()  # its start waits for the store, or gives up (started again later)
        startup_ms = 3000
        # The start-up bound, one call's deadline past it (twice
        # PEZ_DB_TIMEOUT_MS) and the process's own start and stop.
        bound = startup_ms / 1000 + 2.0 + 5.0
        env = self.cli_env(startup_ms)
        self.cli(fault, "migrate (standby down)", ["migrate"], env, timeout=60, bound=bound,
                 expect_failure=True)
        # Refused anyway while instances are alive.
        self.cli(fault, "handback (standby down)", ["handback"], env, timeout=60, bound=bound,
                 expect_failure=True)
        # Asked directly while it starts: anything it answers is checked
        # against the standby's horizon like every other answer.
        for name in ("forward", "la", "sa"):
            self.take(inst, name, 10)
        hold_until = t_ps + self.rng.uniform(1.0, 2.0)
        while time.monotonic() < hold_until:
            time.sleep(0.05)
        self.observe(fault, "window", time.monotonic(), WINDOW_LABEL, horizon, t_from=t_ps)
        standby.restart()
        self.pair.primary.make_sync()
        fault["instance_running_when_standby_back"] = inst.running
        self.bring_up(inst, fault)
        self.ensure_all_up(fault)
        self.log.end(fault)
