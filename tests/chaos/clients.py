"""The generator: client processes that take numbers from every kind of
endpoint and record every answer in the history.

Each client is a process of its own (the GIL would otherwise cap the whole
load at one core's worth of JSON parsing), runs one kind of traffic, picks
a live instance at random for each request, keeps one keep-alive connection
per instance, and writes its own history file. It checks every 200 before
recording it: no number twice, in sequence order, the count it asked for.

The nemesis steers clients through shared memory: which instances are up
(`ports`), which sequences to leave alone for a moment (`paused`, for the
give-back race), which named sequences are strict right now (`strict`: a
range lease of a strict sequence is a thousand nextval() transactions, so
those stay small), and an `epoch` that it bumps before every fault.
"""

import http.client
import json
import math
import os
import random
import select
import signal
import socket
import subprocess
import time

import history
from history import EP_INDEX, SEQ_INDEX, SEQUENCES
from procs import die_with_parent

CLIENT_TIMEOUT = 15.0
MAX_COUNT = 10000
MAX_LEASE = 1_000_000

KINDS = ["v1", "v2", "v2", "next", "strict", "mixed", "lease", "gb", "ring", "take"]
# The `take` client runs `pez-take` (the Rust client, clients/rust) again
# and again: this binary, set by chaos.py before the clients fork.
PEZ_TAKE = None
# How long one pez-take may wait for a number (its --deadline-ms), and the
# slack on top (its process start, its last HTTP attempt, the pipe) before
# the wait counts as a stall past the deadline: the client's bounded wait.
TAKE_DEADLINE = 10.0
TAKE_SLACK = 3.0
# Sequences the take client uses: leased ones only (a strict sequence's range
# lease is one nextval() per number, and the client sizes its leases toward
# two seconds of what it hands out, up to PEZ_MAX_LEASE).
TAKE_SEQUENCES = ("forward", "reverse", "la", "ld")
# The ring client pauses this long after each request: the rings' lap check
# costs the checker per number received, so their load is kept to some
# tens of thousands of numbers a second (many laps a second all the same).
RING_PAUSE = 0.005


class Shared:
    """State shared between the nemesis and the clients (fork context)."""

    def __init__(self, ctx, n_instances, n_clients):
        self.stop = ctx.Event()
        self.epoch = ctx.Value("i", 0, lock=False)
        self.ports = ctx.Array("i", n_instances, lock=False)
        self.paused = ctx.Array("b", len(SEQUENCES), lock=False)
        self.strict = ctx.Array("b", len(SEQUENCES), lock=False)
        # The sequence (index + 1) each client has a request in flight for; 0: none.
        self.inflight = ctx.Array("b", n_clients, lock=False)
        for i, (_, _, mode) in enumerate(SEQUENCES):
            self.strict[i] = mode == "strict"

    def quiet(self, seq):
        return all(v != seq + 1 for v in self.inflight)


def _list_count(rng):
    r = rng.random()
    if r < 0.75:
        return rng.randint(MAX_COUNT // 2, MAX_COUNT)
    if r < 0.90:
        return rng.randint(1, 100)
    return rng.randint(100, MAX_COUNT // 2)


def _strict_count(rng):
    # Under 32 nextval() calls a take may write no WAL of its own: the
    # path where today's strict takes commit without waiting for anyone.
    r = rng.random()
    if r < 0.45:
        return rng.randint(1, 31)
    if r < 0.80:
        return rng.randint(32, 1000)
    return rng.randint(1000, MAX_COUNT)


def _lease_count(rng, strict):
    count = int(10 ** rng.uniform(0, 6))
    if strict:
        count = min(count, 20000)
    return max(1, min(MAX_LEASE, count))


def _format(rng):
    r = rng.random()
    if r < 0.8:
        return "json", ""
    if r < 0.9:
        return "string", "format=string"
    return "text", "format=text"


def plan(kind, rng, shared):
    """(seq, endpoint, method, path, count, fmt) of the next request."""
    fmt, query = _format(rng)
    if kind == "v1":
        seq = rng.randrange(2)
        path = "/v1/" + SEQUENCES[seq][0]
        return seq, EP_INDEX["v1"], "GET", path + ("?" + query if query else ""), 1, fmt
    if kind == "v2":
        seq = rng.randrange(2)
        count = _list_count(rng)
        path = f"/v2/{SEQUENCES[seq][0]}?count={count}" + ("&" + query if query else "")
        return seq, EP_INDEX["v2"], "GET", path, count, fmt
    if kind in ("next", "strict", "mixed"):
        names = {
            "next": ("forward", "reverse", "la", "ld"),
            "strict": ("sa", "sd"),
            "mixed": ("la", "ld", "sa", "sd"),
        }[kind]
        seq = SEQ_INDEX[rng.choice(names)]
        count = _strict_count(rng) if shared.strict[seq] else _list_count(rng)
        method = rng.choice(("GET", "POST"))
        endpoint = EP_INDEX["next-get" if method == "GET" else "next-post"]
        path = f"/v2/sequences/{SEQUENCES[seq][0]}/next?count={count}"
        return seq, endpoint, method, path + ("&" + query if query else ""), count, fmt
    if kind == "ring":
        return _plan_ring(rng, shared, fmt, query)
    if kind == "lease":
        seq = SEQ_INDEX[rng.choice(("forward", "reverse", "la", "ld", "sa", "sd"))]
        count = _lease_count(rng, shared.strict[seq])
    else:  # gb: the sequence of the give-back race, and some forward
        seq = SEQ_INDEX["gb"] if rng.random() < 0.8 else SEQ_INDEX["forward"]
        if shared.paused[seq]:
            seq = SEQ_INDEX["forward"]
        if rng.random() < 0.6:
            count = int(10 ** rng.uniform(0, 4.5))
        else:
            count = rng.randint(100_000, MAX_LEASE)
    path = f"/v2/sequences/{SEQUENCES[seq][0]}/lease?count={count}"
    if fmt == "string":
        path += "&format=string"
    elif fmt == "text":
        path += "&format=text"
    return seq, EP_INDEX["lease"], "POST", path, count, fmt


def _ring_count(rng, lap):
    """Up to a full lap: log-uniform, a full lap a tenth of the time, and
    lap-sized pairs' halves (3/5, 2/5 of a lap) another tenth."""
    r = rng.random()
    if r < 0.1:
        return lap
    if r < 0.2:
        return rng.choice((lap * 3 // 5, lap * 2 // 5))
    return max(1, min(lap, int(10 ** rng.uniform(0, math.log10(lap)))))


def _plan_ring(rng, shared, fmt, query):
    """The small cycling sequences (v2 next and range leases, up to a full
    lap) and `copied` (404 until `pez store copy` made it)."""
    r = rng.random()
    name = "ring-a" if r < 0.4 else "ring-d" if r < 0.75 else "copied"
    seq = SEQ_INDEX[name]
    if name == "copied":
        count = _list_count(rng)
        lease = rng.random() < 0.2
    else:
        lo, hi = history.RINGS[name]
        count = _ring_count(rng, hi - lo + 1)
        lease = rng.random() < 0.5
    if lease:
        path = f"/v2/sequences/{name}/lease?count={count}"
        if fmt in ("string", "text"):
            path += "&format=" + fmt
        return seq, EP_INDEX["lease"], "POST", path, count, fmt
    method = rng.choice(("GET", "POST"))
    endpoint = EP_INDEX["next-get" if method == "GET" else "next-post"]
    path = f"/v2/sequences/{name}/next?count={count}"
    return seq, endpoint, method, path + ("&" + query if query else ""), count, fmt


def numbers_of(body, fmt, single):
    if fmt == "text":
        return [int(x) for x in body.split()]
    value = json.loads(body)
    if single:
        value = [value]
    if fmt == "string":
        return [int(x) for x in value]
    if value and type(value[0]) is not int:
        raise ValueError("not integers")
    return value


def ranges_of(body, fmt):
    if fmt == "text":
        pairs = [line.split() for line in body.splitlines() if line.strip()]
        return [(int(a), int(b)) for a, b in pairs]
    return [(int(r["first"]), int(r["last"])) for r in json.loads(body)["ranges"]]


def _split(s, i, j, out):
    # s[i..j] sorted and distinct: consecutive iff the span equals the length.
    if s[j] - s[i] == j - i:
        if out and out[-1][1] + 1 == s[i]:
            out[-1] = (out[-1][0], s[j])
        else:
            out.append((s[i], s[j]))
        return
    m = (i + j) // 2
    _split(s, i, m, out)
    _split(s, m + 1, j, out)


def runs_of(numbers):
    """(runs of consecutive numbers, lo <= hi, in ascending order; whether
    all are distinct; the numbers sorted). A number twice starts a new run,
    so the checker sees the overlap."""
    s = sorted(numbers)
    if not s:
        return [], True, s
    out = []
    if len(set(s)) == len(s):
        _split(s, 0, len(s) - 1, out)
        return out, True, s
    lo = prev = s[0]
    for x in s[1:]:
        if x != prev + 1:
            out.append((lo, prev))
            lo = x
        prev = x
    out.append((lo, prev))
    return out, False, s


def ring_runs(numbers, ascending):
    """Runs of consecutive numbers (lo <= hi) in the order the answer gave
    them: a ring's answer may wrap, and the lap check needs to know which
    numbers came after its origin."""
    out = []
    step = 1 if ascending else -1
    for x in numbers:
        if out and x == out[-1][1] + step:
            out[-1][1] = x
        else:
            out.append([x, x])
    return [(min(a, b), max(a, b)) for a, b in out]


def run_client(shared, client_id, kind, path, seed):
    """The body of one client process."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    die_with_parent()
    if kind == "take":
        return run_take_client(shared, client_id, path, seed)
    parent = os.getppid()
    rng = random.Random(seed)
    writer = history.Writer(path)
    writer.client = client_id
    conns = {}
    n = 0
    try:
        while not shared.stop.is_set():
            n += 1
            if n % 512 == 0 and os.getppid() != parent:
                return
            live = [(slot, port) for slot, port in enumerate(shared.ports) if port]
            if not live:
                time.sleep(0.01)
                continue
            slot, port = rng.choice(live)
            seq, endpoint, method, path_, count, fmt = plan(kind, rng, shared)
            if shared.paused[seq]:
                time.sleep(0.002)
                continue
            headers = {}
            if fmt == "text" and rng.random() < 0.5 and "format=text" in path_:
                # The other way to ask for text.
                path_ = path_.replace("&format=text", "").replace("?format=text", "")
                headers["Accept"] = "text/plain"
            shared.inflight[client_id] = seq + 1
            t_send = time.monotonic()
            status, body = _exchange(conns, port, method, path_, headers)
            t_recv = time.monotonic()
            shared.inflight[client_id] = 0
            writer.epoch(shared.epoch.value)
            if status != 200:
                writer.status(t_send, t_recv, seq, endpoint, slot, status)
                time.sleep(0.02 if status in (503, 0) else 0.05)
                continue
            _record(writer, t_send, t_recv, seq, endpoint, slot, count, fmt, body)
            if kind == "ring":
                time.sleep(RING_PAUSE)
    finally:
        writer.close()
        for conn in conns.values():
            conn.close()


def _exchange(conns, port, method, path, headers):
    for attempt in (0, 1):
        conn = conns.get(port)
        reused = conn is not None
        if conn is None:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=CLIENT_TIMEOUT)
            conns[port] = conn
        try:
            conn.request(method, path, headers=headers)
            response = conn.getresponse()
            body = response.read()
            if response.will_close:
                conn.close()
                conns.pop(port, None)
            return response.status, body
        except socket.timeout:
            conn.close()
            conns.pop(port, None)
            return history.TIMEOUT, b""
        except (OSError, http.client.HTTPException):
            conn.close()
            conns.pop(port, None)
            # A keep-alive connection the server closed since (a restart):
            # try once on a fresh one.
            if reused and attempt == 0:
                continue
            return history.NO_ANSWER, b""
    return history.NO_ANSWER, b""


def _record(writer, t_send, t_recv, seq, endpoint, slot, count, fmt, body):
    is_lease = endpoint == EP_INDEX["lease"]
    ring = seq in history.RING_INDEX
    try:
        if is_lease:
            given = [(min(a, b), max(a, b)) for a, b in ranges_of(body, fmt)]
            runs = sorted(given)
            got = sum(hi - lo + 1 for lo, hi in runs)
            distinct = all(runs[k][1] < runs[k + 1][0] for k in range(len(runs) - 1))
            in_order = True
            if ring:
                runs = given
        else:
            numbers = numbers_of(body, fmt, endpoint == EP_INDEX["v1"])
            runs, distinct, ordered = runs_of(numbers)
            got = len(numbers)
            if ring:
                # No order to check on a ring: an answer that needs several
                # reservations while others wrap the ring leaves out what it
                # holds already, so its runs follow the reservations, not
                # the numbers (the lap check uses that order).
                in_order = True
                runs = ring_runs(numbers, history.ASCENDING[seq])
            elif history.ASCENDING[seq]:
                in_order = numbers == ordered
            else:
                in_order = numbers == ordered[::-1]
    except (ValueError, KeyError, TypeError):
        writer.status(t_send, t_recv, seq, endpoint, slot, history.BAD_BODY)
        return
    # In the order they were served, so that answers that continue one
    # another merge. A ring's runs: each answer's in the order it gave them,
    # never merged (the checker finds its origin in it).
    if ring:
        for lo, hi in runs:
            writer.run(t_send, t_recv, seq, endpoint, slot, lo, hi, merge=False)
    else:
        for lo, hi in runs if history.ASCENDING[seq] else reversed(runs):
            writer.run(t_send, t_recv, seq, endpoint, slot, lo, hi, merge=not is_lease)
    if not distinct:
        writer.status(t_send, t_recv, seq, endpoint, slot, history.DUPLICATE_IN_ANSWER)
    if not in_order:
        writer.status(t_send, t_recv, seq, endpoint, slot, history.OUT_OF_ORDER)
    if got != count:
        writer.status(t_send, t_recv, seq, endpoint, slot, history.WRONG_COUNT)


def run_take_client(shared, client_id, path, seed):
    """The body of the `take` client: one `pez-take` process after another,
    each given every live instance's URL (in a random order) and a count,
    its numbers read as they come and recorded as runs.

    Checked per process: numbers in the sequence's order from the first to
    the last (the client's promise, across refetches), the count it was
    asked for when it exits 0, and no wait for a number longer than its
    deadline (plus TAKE_SLACK) when it gives up. A process killed or given
    up on loses the rest of its ranges: a gap, never a duplicate.
    """
    rng = random.Random(seed)
    writer = history.Writer(path)
    writer.client = client_id
    said = open(path[: -len(".bin")] + "-pez-take.log", "a")
    try:
        while not shared.stop.is_set():
            live = [port for port in shared.ports if port]
            if not live:
                time.sleep(0.05)
                continue
            rng.shuffle(live)
            name = rng.choice(TAKE_SEQUENCES)
            seq = SEQ_INDEX[name]
            count = int(10 ** rng.uniform(2, 6.3))
            args = [PEZ_TAKE, "--url", ",".join(f"http://127.0.0.1:{p}" for p in live),
                    "--sequence", name, "--count", str(count),
                    "--deadline-ms", str(int(TAKE_DEADLINE * 1000))]
            status = _take_once(shared, writer, seq, count, args, said)
            if status in (404, history.TAKE_GAVE_UP):
                time.sleep(0.1)
    finally:
        writer.close()
        said.close()


def _take_once(shared, writer, seq, count, args, said):
    asc = history.ASCENDING[seq]
    endpoint = EP_INDEX["pez-take"]
    t_start = time.monotonic()
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            preexec_fn=die_with_parent)
    fd = proc.stdout.fileno()
    tail = b""
    last = None  # the last number handed out, for the order check
    got = 0
    t_last = t_start  # when the last number (or the start) was read
    out_of_order = False
    # Cut off at the end of the phase: what it printed is recorded, but its
    # count is not judged (it may have exited 0 with numbers still unread).
    cut_off = False
    try:
        while True:
            ready, _, _ = select.select([fd], [], [], 0.25)
            if shared.stop.is_set():
                proc.kill()
                cut_off = True
                break
            writer.epoch(shared.epoch.value)
            if not ready:
                continue
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                break
            t_read = time.monotonic()
            if t_read - t_last > TAKE_DEADLINE + TAKE_SLACK:
                # pez-take writes what it has before it waits for a lease,
                # so this is one wait for a number past the deadline.
                writer.status(t_last, t_read, seq, endpoint, history.ANY_INSTANCE,
                              history.TAKE_STALLED)
            lines = (tail + chunk).split(b"\n")
            tail = lines.pop()
            if not lines:
                continue
            numbers = [int(x) for x in lines]
            if last is not None:
                if (numbers[0] <= last) if asc else (numbers[0] >= last):
                    out_of_order = True
            if any((b <= a) if asc else (b >= a) for a, b in zip(numbers, numbers[1:])):
                out_of_order = True
            last = numbers[-1]
            got += len(numbers)
            t_last = t_read
            for lo, hi in ring_runs(numbers, asc):
                writer.run(t_start, t_read, seq, endpoint, history.ANY_INSTANCE, lo, hi)
        code = proc.wait()
        stderr = proc.stderr.read().decode(errors="replace").strip()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()
    t_end = time.monotonic()
    if out_of_order:
        writer.status(t_start, t_end, seq, endpoint, history.ANY_INSTANCE, history.OUT_OF_ORDER)
    if cut_off or (shared.stop.is_set() and code != 0):
        return 0  # stopped at the end of the phase
    said.write(f"{t_end:.3f} exit {code}: {stderr}\n")
    if code == 0:
        if got != count:
            writer.status(t_start, t_end, seq, endpoint, history.ANY_INSTANCE,
                          history.WRONG_COUNT)
        return 200
    if "(404)" in stderr:
        status = 404
    elif "within the deadline" in stderr:
        status = history.TAKE_GAVE_UP
    else:
        status = history.TAKE_BROKE
    writer.status(t_last, t_end, seq, endpoint, history.ANY_INSTANCE, status)
    if status != history.TAKE_BROKE and t_end - t_last > TAKE_DEADLINE + TAKE_SLACK:
        writer.status(t_last, t_end, seq, endpoint, history.ANY_INSTANCE,
                      history.TAKE_STALLED)
    return status
