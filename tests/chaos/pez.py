"""PEZ instances, driven only through the `pez` binary, PEZ_* variables,
signals and HTTP.

Each instance has a slot with a fixed port (clients and the URL lists stay
right across restarts), its own working directory (so no .env of the
source tree is read) and a log file per start.
"""

import http.client
import json
import os
import signal
import socket
import subprocess
import time

from procs import HarnessError, die_with_parent

ADMIN_TOKEN = "chaos-admin-token"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def request(port, method, path, body=None, admin=False, timeout=5.0):
    """(status, body bytes); status 0 when there was no answer."""
    headers = {}
    if admin:
        headers["Authorization"] = f"Bearer {ADMIN_TOKEN}"
    if body is not None:
        body = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        return response.status, response.read()
    except (OSError, http.client.HTTPException):
        return 0, b""
    finally:
        conn.close()


class Instance:
    """One PEZ process slot."""

    def __init__(self, registry, binary, slot, workdir, env):
        self.registry = registry
        self.binary = binary
        self.slot = slot
        self.port = free_port()
        self.workdir = workdir
        self.env = dict(env)
        self.env["PEZ_LISTEN"] = f"127.0.0.1:{self.port}"
        self.env["PEZ_ADMIN_TOKEN"] = ADMIN_TOKEN
        self.proc = None
        self.starts = 0
        # time.monotonic() of every start: an instance reserves nothing
        # before it (the rings' lap check uses it).
        self.spawned = []
        self.log_path = None
        os.makedirs(workdir, exist_ok=True)

    @property
    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def spawn(self):
        """Starts the process; does not wait for it to be ready."""
        if self.running:
            raise HarnessError(f"instance {self.slot} is already running")
        self.starts += 1
        self.spawned.append(time.monotonic())
        self.log_path = os.path.join(self.workdir, f"pez-{self.starts}.log")
        log = open(self.log_path, "wb")
        env = {k: v for k, v in os.environ.items() if not k.startswith("PEZ_")}
        env.update(self.env)
        self.proc = self.registry.spawn(
            f"pez-{self.slot}",
            [self.binary],
            cwd=self.workdir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()

    def wait_ready(self, timeout):
        """Polls /readyz (bounded). Returns None when ready, or why not."""
        deadline = time.monotonic() + timeout
        while True:
            if not self.running:
                return f"exited with {self.proc.returncode}: {self.last_log_line()}"
            status, _ = request(self.port, "GET", "/readyz", timeout=2)
            if status == 200:
                return None
            if time.monotonic() > deadline:
                return f"not ready after {timeout:.0f}s (last /readyz: {status})"
            time.sleep(0.05)

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        self.registry.forget(self.proc)

    def terminate(self, timeout):
        """SIGTERM; waits (bounded). (exit code or None if it had to be
        killed, seconds taken)."""
        started = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()
            code = None
        self.registry.forget(self.proc)
        return code, time.monotonic() - started

    def last_log_line(self):
        try:
            with open(self.log_path, "rb") as f:
                lines = f.read().decode(errors="replace").strip().splitlines()
            return lines[-1] if lines else ""
        except OSError:
            return ""

    def log_lines(self, needle):
        """Lines of every log of this slot that contain `needle`."""
        out = []
        for n in range(1, self.starts + 1):
            try:
                with open(os.path.join(self.workdir, f"pez-{n}.log"), "rb") as f:
                    for line in f.read().decode(errors="replace").splitlines():
                        if needle in line:
                            out.append(line)
            except OSError:
                pass
        return out


def run_cli(binary, args, env, cwd, timeout):
    """`pez ARGS` as an operator runs it, bounded: (exit code or None when
    it had to be killed after `timeout` s, seconds taken, output lines).
    The environment is the suite's minus every PEZ_ variable, plus `env`;
    `cwd` is a directory of its own (no .env of the source tree)."""
    full = {k: v for k, v in os.environ.items() if not k.startswith("PEZ_")}
    full.update(env)
    started = time.monotonic()
    try:
        result = subprocess.run(
            [binary, *args], cwd=cwd, env=full, stdin=subprocess.DEVNULL,
            capture_output=True, text=True, timeout=timeout,
            preexec_fn=die_with_parent,
        )
        code, out = result.returncode, (result.stdout + result.stderr)
    except subprocess.TimeoutExpired as e:
        code = None
        out = ((e.stdout or b"").decode(errors="replace") if isinstance(e.stdout, bytes)
               else (e.stdout or "")) + ((e.stderr or b"").decode(errors="replace")
                                         if isinstance(e.stderr, bytes) else (e.stderr or ""))
    return code, time.monotonic() - started, [line for line in out.splitlines() if line.strip()]
