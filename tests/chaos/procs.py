"""Every process the suite starts, by PID, so that it stops exactly those.

PEZ instances run in a session of their own (a Ctrl-C in the terminal
reaches the suite, which then stops them in order, not all of them at once)
and with PR_SET_PDEATHSIG: if the suite itself is killed with -9, the kernel
kills them too. PostgreSQL servers are daemons of pg_ctl; tests/pg-cluster.sh
--watch removes them when the suite's process ends, and the suite stops them
itself, by the postmaster's PID, when pg_ctl cannot.
"""

import ctypes
import os
import signal
import subprocess
import time

_PR_SET_PDEATHSIG = 1
_libc = ctypes.CDLL(None, use_errno=True)


def die_with_parent():
    """In a child: be killed when the process that started it ends."""
    _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


class HarnessError(Exception):
    """The suite could not set up or drive what it tests (not a PEZ bug)."""


class Registry:
    """The processes started by this run, by PID."""

    def __init__(self):
        self._procs = {}  # pid -> (label, Popen)

    def spawn(self, label, args, **kwargs):
        proc = subprocess.Popen(
            args, start_new_session=True, preexec_fn=die_with_parent, **kwargs
        )
        self._procs[proc.pid] = (label, proc)
        return proc

    def forget(self, proc):
        self._procs.pop(proc.pid, None)

    def stop_all(self, grace=10.0):
        """SIGTERM every process still running, then SIGKILL what is left."""
        live = [(label, p) for label, p in self._procs.values() if p.poll() is None]
        for _, proc in live:
            signal_pid(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        for _, proc in live:
            try:
                proc.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                signal_pid(proc.pid, signal.SIGKILL)
                proc.wait()
        self._procs.clear()


def signal_pid(pid, sig):
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def wait_pid_gone(pid, timeout):
    """Polls (bounded) until `pid` no longer exists; True if it is gone."""
    deadline = time.monotonic() + timeout
    while pid_alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True
