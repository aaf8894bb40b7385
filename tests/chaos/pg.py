"""Throwaway PostgreSQL clusters, driven through tests/pg-cluster.sh.

A `Pair` is a primary and its synchronous standby. Roles swap on failover:
the standby is promoted, and the old primary is rebuilt (pg_basebackup) as
the new primary's synchronous standby on its old port, so the one URL every
PEZ instance was given (both hosts, target_session_attrs=read-write) stays
right.

Positions are read with psql straight from the current primary, by a
read-only statement (it must work while commits wait for a standby that is
gone), so the checker learns where PostgreSQL's sequences stand, not what
PEZ believes.
"""

import os
import select
import shutil
import subprocess
import time

from procs import HarnessError, die_with_parent, pid_alive, signal_pid, wait_pid_gone

MAX = 2**63 - 1
DATABASE = "chaos"


def bindir():
    try:
        out = subprocess.run(
            ["pg_config", "--bindir"], capture_output=True, text=True, check=True
        ).stdout.strip()
        if os.path.exists(os.path.join(out, "psql")):
            return out
    except (OSError, subprocess.CalledProcessError):
        pass
    return "/usr/bin"


class Cluster:
    """One data directory under `dir`, with its port in dir/port."""

    def __init__(self, script, dir, label):
        self.script = script
        self.dir = dir
        self.label = label
        self.psql = os.path.join(bindir(), "psql")

    def _run(self, *args, timeout=120):
        result = subprocess.run(
            [self.script, *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            start_new_session=True,
        )
        if result.returncode != 0:
            raise HarnessError(
                f"pg-cluster.sh {' '.join(args)} failed: {result.stderr.strip()}"
            )
        return result.stdout.strip()

    @property
    def port(self):
        with open(os.path.join(self.dir, "port")) as f:
            return int(f.read().strip())

    def start(self, watch_pid):
        self._run("start", self.dir, "--watch", str(watch_pid))

    def standby_of(self, primary, watch_pid):
        self._run("standby", self.dir, primary.dir, "--watch", str(watch_pid))

    def rebuild_as_standby_of(self, primary):
        self._run("rebuild", self.dir, primary.dir)

    def make_sync(self):
        self._run("sync", self.dir)

    def make_async(self):
        self._run("async", self.dir)

    def promote(self):
        self._run("promote", self.dir)

    def stop(self, mode):
        pid = self.postmaster_pid()
        segments = _shm_segments(pid)
        self._run("stop", self.dir, mode)
        # pg_ctl -w returned; make sure the postmaster is really gone.
        if pid and not wait_pid_gone(pid, 30):
            raise HarnessError(f"{self.label}: postmaster {pid} did not stop")
        # A crashed postmaster leaves its dynamic shared memory in /dev/shm;
        # a restart in the same directory would remove it, a rebuild would
        # not. Only segments this postmaster had mapped are removed.
        for path in segments:
            try:
                os.unlink(path)
            except OSError:
                pass

    def restart(self, socket_only=False):
        """Starts it again; `socket_only`: reachable only through the socket
        in its directory, not by the port PEZ uses."""
        self._run("restart", self.dir, *(["--socket-only"] if socket_only else []))

    def reopen(self):
        """A cluster started socket-only, on its TCP port again."""
        self._run("reopen", self.dir)

    def wait_replayed(self, timeout=20):
        """On a standby whose primary is gone: polls (bounded) until its WAL
        receiver has stopped and everything it received is replayed."""
        deadline = time.monotonic() + timeout
        query = (
            "SELECT (SELECT count(*) FROM pg_stat_wal_receiver) = 0 "
            "AND pg_last_wal_receive_lsn() IS NOT DISTINCT FROM pg_last_wal_replay_lsn()"
        )
        while True:
            try:
                if self.sql(query, "postgres") == [["t"]]:
                    return
            except (HarnessError, subprocess.TimeoutExpired):
                pass
            if time.monotonic() > deadline:
                raise HarnessError(f"{self.label} did not finish replaying")
            time.sleep(0.02)

    def remove(self):
        pid = self.postmaster_pid()
        try:
            if pid and pid_alive(pid):
                self.stop("fast")  # a clean stop leaves no shared memory behind
        except (HarnessError, subprocess.TimeoutExpired):
            pass
        try:
            self._run("remove", self.dir, timeout=90)
        except (HarnessError, subprocess.TimeoutExpired):
            pass
        if pid and pid_alive(pid):
            signal_pid(pid, 9)
            wait_pid_gone(pid, 10)
        shutil.rmtree(self.dir, ignore_errors=True)

    def running(self):
        pid = self.postmaster_pid()
        return pid is not None and pid_alive(pid)

    def postmaster_pid(self):
        try:
            with open(os.path.join(self.dir, "data", "postmaster.pid")) as f:
                return int(f.readline().strip())
        except (OSError, ValueError):
            return None

    def sql(self, query, database=DATABASE, timeout=10, socket=False):
        """Rows of `query` (tab-separated fields), or raises HarnessError.
        `socket`: through the socket in its directory, not TCP."""
        host = self.dir if socket else "127.0.0.1"
        result = subprocess.run(
            [
                self.psql,
                f"host={host} port={self.port} user=postgres dbname={database} "
                "connect_timeout=3",
                "-XqAt",
                "-F",
                "\t",
                "-v",
                "ON_ERROR_STOP=1",
                "-c",
                query,
            ],
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if result.returncode != 0:
            raise HarnessError(f"psql on {self.label}: {result.stderr.strip()}")
        return [line.split("\t") for line in result.stdout.splitlines() if line]

    def alter_system(self, setting, value=None):
        """ALTER SYSTEM SET (or RESET, with no value) and a reload: what a
        DBA does; written to postgresql.auto.conf in the data directory."""
        if value is None:
            self.sql(f"ALTER SYSTEM RESET {setting}", "postgres")
        else:
            self.sql(f"ALTER SYSTEM SET {setting} = '{value}'", "postgres")
        self.sql("SELECT pg_reload_conf()", "postgres")

    def show(self, setting):
        """The setting as a new session sees it."""
        return self.sql(f"SHOW {setting}", "postgres")[0][0]

    def laps(self, names, socket=False, timeout=3):
        """{sequence: its count of laps begun (pez.sequences.laps)}."""
        listed = ", ".join(f"'{n}'" for n in names)
        rows = self.sql(f"SELECT name, laps FROM pez.sequences WHERE name IN ({listed})",
                        socket=socket, timeout=timeout)
        return {name: int(laps) for name, laps in rows}

    def accepts_writes(self):
        try:
            return self.sql("SELECT NOT pg_is_in_recovery()", "postgres") == [["t"]]
        except (HarnessError, subprocess.TimeoutExpired):
            return False

    def wait_accepts_writes(self, timeout=60):
        deadline = time.monotonic() + timeout
        while not self.accepts_writes():
            if time.monotonic() > deadline:
                raise HarnessError(f"{self.label} does not accept writes")
            time.sleep(0.05)

    def server_log(self):
        return os.path.join(self.dir, "server.log")


def _shm_segments(pid):
    """The /dev/shm/PostgreSQL.* files a postmaster has mapped."""
    out = set()
    try:
        with open(f"/proc/{pid}/maps") as f:
            for line in f:
                path = line.split()[-1] if line.strip() else ""
                if path.startswith("/dev/shm/PostgreSQL."):
                    out.add(path)
    except (OSError, TypeError):
        pass
    return out


# Where each of PEZ's sequences stands: the first number of its next lease
# (PEZ's own definition). last_value and is_called come through
# query_to_xml so one read-only statement covers every sequence, including
# ones created a moment ago.
POSITIONS_SQL = """
SELECT sequencename, increment_by, min_value, max_value, x.l, x.c
FROM pg_sequences,
     LATERAL (SELECT query_to_xml(format('SELECT last_value AS l, is_called AS c FROM %I.%I',
                                         schemaname, sequencename), false, true, '') AS doc) d,
     LATERAL (SELECT (xpath('/row/l/text()', doc))[1]::text AS l,
                     (xpath('/row/c/text()', doc))[1]::text AS c) x
WHERE schemaname = 'pez'
"""


# Returns once the primary has no WAL sender (at most 20 s); writes no WAL.
WAIT_NO_WAL_SENDER_SQL = """
DO $$
DECLARE deadline timestamptz := clock_timestamp() + interval '20 seconds';
BEGIN
  WHILE EXISTS (SELECT 1 FROM pg_stat_get_wal_senders()) AND clock_timestamp() < deadline LOOP
    PERFORM pg_stat_clear_snapshot();
    PERFORM pg_sleep(0.002);
  END LOOP;
END $$
"""


def positions_from_rows(rows, steps=None):
    """{sequence: first number of its next lease}; fills `steps` with
    each sequence's |INCREMENT| when given."""
    out = {}
    for name, increment, lo, hi, last, called in rows:
        increment, lo, hi, last = int(increment), int(lo), int(hi), int(last)
        if steps is not None:
            steps[name] = abs(increment)
        if called != "true":
            out[name] = last
            continue
        nxt = last + increment
        if lo <= nxt <= hi:
            out[name] = nxt
        # Past the end: the sequence wraps there; the suite never gets there.
    return out


class Pair:
    """A primary and its synchronous standby."""

    def __init__(self, script, root, watch_pid):
        self.script = script
        self.watch_pid = watch_pid
        self.a = Cluster(script, os.path.join(root, "a"), "pg-a")
        self.b = Cluster(script, os.path.join(root, "b"), "pg-b")
        self.primary, self.standby = self.a, self.b

    def start(self):
        self.a.start(self.watch_pid)
        self.b.standby_of(self.a, self.watch_pid)
        self.a.sql(f"CREATE DATABASE {DATABASE}", "postgres")

    def url(self, ports=None):
        """Every host in one URL: libpq picks the one that accepts writes."""
        p1, p2 = ports or (self.a.port, self.b.port)
        return (
            f"postgres://postgres@127.0.0.1:{p1},127.0.0.1:{p2}/{DATABASE}"
            "?target_session_attrs=read-write"
        )

    def positions(self, cluster=None, socket=False):
        cluster = cluster or self.primary
        return positions_from_rows(cluster.sql(POSITIONS_SQL, socket=socket))

    def stop_standby(self):
        """Stops the standby as in a crash; returns where the primary's
        sequences stood once no WAL could reach it any more (read by a
        session that waits, bounded, until the primary has no WAL sender
        left) and each sequence's |INCREMENT|."""
        reader = subprocess.Popen(
            [
                self.primary.psql,
                f"host=127.0.0.1 port={self.primary.port} user=postgres dbname={DATABASE} "
                "connect_timeout=3",
                "-XqAt", "-F", "\t", "-v", "ON_ERROR_STOP=1",
                "-c", WAIT_NO_WAL_SENDER_SQL,
                "-c", POSITIONS_SQL,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            self.standby.stop("immediate")
            out, err = reader.communicate(timeout=30)
        except BaseException:
            reader.kill()
            reader.wait()
            raise
        if reader.returncode != 0:
            raise HarnessError(f"reading positions as the standby went: {err.strip()}")
        rows = [line.split("\t") for line in out.splitlines() if line]
        steps = {}
        return positions_from_rows(rows, steps), steps

    def swap(self):
        self.primary, self.standby = self.standby, self.primary

    def remove(self):
        for cluster in (self.a, self.b):
            cluster.remove()



class Session:
    """One psql process kept open on a cluster, for reads many times a
    second (a new psql each time costs tens of ms on a busy machine). Each
    query is followed by a marker row; a query that fails prints only the
    marker (no rows); a lost connection ends psql, and the session with it."""

    MARK = "--pez-chaos-end--"

    def __init__(self, cluster, database=DATABASE):
        self.cluster = cluster
        self.proc = subprocess.Popen(
            [cluster.psql,
             f"host=127.0.0.1 port={cluster.port} user=postgres dbname={database} "
             "connect_timeout=2",
             "-XqAt", "-F", "\t"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            bufsize=0, start_new_session=True, preexec_fn=die_with_parent,
        )

    def alive(self):
        return self.proc.poll() is None

    def rows(self, query, timeout=2.0):
        try:
            self.proc.stdin.write(f"{query};\nSELECT '{self.MARK}';\n".encode())
        except OSError as e:
            self.close()
            raise HarnessError(f"psql session on {self.cluster.label}: {e}")
        buf = b""
        end = (self.MARK + "\n").encode()
        deadline = time.monotonic() + timeout
        while not buf.endswith(end):
            ready, _, _ = select.select([self.proc.stdout], [], [],
                                        max(0.0, deadline - time.monotonic()))
            chunk = os.read(self.proc.stdout.fileno(), 65536) if ready else b""
            if not chunk:
                self.close()
                raise HarnessError(f"psql session on {self.cluster.label}: no answer")
            buf += chunk
        lines = buf.decode().splitlines()[:-1]
        return [line.split("\t") for line in lines if line]

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        for f in (self.proc.stdin, self.proc.stdout):
            try:
                f.close()
            except OSError:
                pass


class Pooler:
    """PgBouncer (tests/pg-cluster.sh pooler) in front of one server."""

    def __init__(self, script, dir):
        self.script = script
        self.dir = dir
        self.base_url = None

    def start(self, upstream_port, mode, size, watch_pid):
        result = subprocess.run(
            [self.script, "pooler", self.dir, str(upstream_port), mode, str(size),
             "--watch", str(watch_pid)],
            capture_output=True, text=True, timeout=60, start_new_session=True,
        )
        if result.returncode != 0:
            raise HarnessError(f"pg-cluster.sh pooler failed: {result.stderr.strip()}")
        self.base_url = result.stdout.strip().splitlines()[-1]

    def configure(self, **settings):
        """Adds settings to its pgbouncer.ini ([pgbouncer] is its last
        section) and reloads it (SIGHUP)."""
        with open(os.path.join(self.dir, "pgbouncer.ini"), "a") as f:
            for key, value in settings.items():
                f.write(f"{key} = {value}\n")
        pid = self.pid()
        if pid is None:
            raise HarnessError("PgBouncer has no pid file")
        signal_pid(pid, 1)

    def url(self, database=DATABASE):
        """Its URL, for `database` (PgBouncer's `*` entry passes the name on)."""
        return self.base_url.rsplit("/", 1)[0] + "/" + database

    def pid(self):
        try:
            with open(os.path.join(self.dir, "pgbouncer.pid")) as f:
                return int(f.read().strip())
        except (OSError, ValueError):
            return None

    def log(self):
        return os.path.join(self.dir, "pgbouncer.log")

    def remove(self):
        pid = self.pid()
        try:
            subprocess.run([self.script, "remove", self.dir], capture_output=True, timeout=60,
                           start_new_session=True)
        except subprocess.TimeoutExpired:
            pass
        if pid and not wait_pid_gone(pid, 10):
            signal_pid(pid, 9)
            wait_pid_gone(pid, 10)
        shutil.rmtree(self.dir, ignore_errors=True)
