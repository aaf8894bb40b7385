"""The clients of `make power-cut`: processes that take numbers and write
down every one they receive.

Each writes its own file, one line per answer (`STORE SEQUENCE LO HI`, a
run of consecutive numbers; a list that is not one run is several lines),
flushed before its next request, so that when PEZ has been killed the
harness can read all that was served. The harness points the clients at a
store (its number and port) through shared memory, under a sequence
counter, so every number is filed under the store that issued it.
"""

import http.client
import json
import os
import random
import time

from procs import die_with_parent

REQUEST_TIMEOUT = 10.0


class Shared:
    """What the harness and the clients share (fork context)."""

    def __init__(self, ctx, n_clients):
        self.stop = ctx.Event()
        # [change counter, store, port]: the counter is odd while it changes.
        self.target = ctx.Array("q", 3, lock=False)
        self.busy = ctx.Array("b", n_clients, lock=False)
        # Requests each client has finished (answer written down, or none).
        self.finished = ctx.Array("q", n_clients, lock=False)

    def point_at(self, store, port):
        t = self.target
        t[0] += 1
        t[1], t[2] = store, port
        t[0] += 1

    def read_target(self):
        t = self.target
        while True:
            before = t[0]
            store, port = t[1], t[2]
            if before % 2 == 0 and t[0] == before:
                return store, port

    def quiesce(self, timeout=15.0):
        """Waits (bounded) until every request that was in flight when PEZ
        died has been finished: then every answer it gave is on file."""
        deadline = time.monotonic() + timeout
        pending = {i: n for i, n in enumerate(self.finished) if self.busy[i]}
        while pending and time.monotonic() < deadline:
            pending = {i: n for i, n in pending.items()
                       if self.busy[i] and self.finished[i] == n}
            time.sleep(0.002)


def _plan(rng, max_count):
    """(sequence, method, path, kind) of the next request."""
    r = rng.random()
    if r < 0.15:
        return "forward", "GET", "/v1/forward", "one"
    if r < 0.40:
        return "forward", "GET", f"/v2/forward?count={rng.randint(1, max_count)}", "list"
    if r < 0.60:
        return "reverse", "GET", f"/v2/reverse?count={rng.randint(1, max_count)}", "list"
    if r < 0.80:
        count = rng.randint(1, 50)
        return "sa", "POST", f"/v2/sequences/sa/next?count={count}", "list"
    count = int(10 ** rng.uniform(0, 4))
    return "la", "POST", f"/v2/sequences/la/lease?count={count}", "lease"


def _runs(numbers):
    """Consecutive runs (ascending or descending) as (lo, hi) pairs."""
    out = []
    start = prev = None
    step = 0
    for n in numbers:
        if start is None:
            start = prev = n
            step = 0
            continue
        d = n - prev
        if d in (1, -1) and (step == 0 or d == step):
            step = d
            prev = n
            continue
        out.append((min(start, prev), max(start, prev)))
        start = prev = n
        step = 0
    if start is not None:
        out.append((min(start, prev), max(start, prev)))
    return out


def main(index, shared, path, seed, max_count, token):
    die_with_parent()
    rng = random.Random(seed)
    statuses = {}
    conn = None
    conn_port = None
    headers = {"Authorization": f"Bearer {token}"}
    with open(path, "w") as out:
        while not shared.stop.is_set():
            store, port = shared.read_target()
            if conn is None or conn_port != port:
                if conn is not None:
                    conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=REQUEST_TIMEOUT)
                conn_port = port
            seq, method, req_path, kind = _plan(rng, max_count)
            shared.busy[index] = 1
            try:
                try:
                    conn.request(method, req_path, headers=headers)
                    response = conn.getresponse()
                    status, body = response.status, response.read()
                except (OSError, http.client.HTTPException):
                    conn.close()
                    conn = None
                    statuses["none"] = statuses.get("none", 0) + 1
                    time.sleep(0.01)
                    continue
                statuses[str(status)] = statuses.get(str(status), 0) + 1
                if status != 200:
                    if status != 503:
                        out.write(f"# {status} {req_path} {body[:300]!r}\n")
                    time.sleep(0.01)
                    continue
                data = json.loads(body)
                if kind == "one":
                    runs = [(data, data)]
                elif kind == "list":
                    runs = _runs(data)
                else:
                    runs = [(r["first"], r["last"]) for r in data["ranges"]]
                for lo, hi in runs:
                    out.write(f"{store} {seq} {lo} {hi}\n")
                out.flush()
            finally:
                shared.finished[index] += 1
                shared.busy[index] = 0
        out.write(f"S {json.dumps(statuses)}\n")


class Reader:
    """Reads the clients' files as they grow."""

    def __init__(self, directory, n_clients):
        self.paths = [os.path.join(directory, f"client-{i}.txt") for i in range(n_clients)]
        self.offsets = [0] * n_clients

    def new_records(self):
        for i, path in enumerate(self.paths):
            try:
                with open(path) as f:
                    f.seek(self.offsets[i])
                    chunk = f.read()
            except FileNotFoundError:
                continue
            # Only whole lines: a client may be writing the last one.
            end = chunk.rfind("\n") + 1
            self.offsets[i] += len(chunk[:end].encode())
            yield from _parse(chunk[:end])

    def all_records(self):
        for path in self.paths:
            with open(path) as f:
                yield from _parse(f.read())

    def statuses(self):
        total = {}
        for path in self.paths:
            with open(path) as f:
                for line in f:
                    if line.startswith("S "):
                        for k, v in json.loads(line[2:]).items():
                            total[k] = total.get(k, 0) + v
        return total


def _parse(text):
    for line in text.splitlines():
        if not line or line[0] in "#S":
            continue
        store, seq, lo, hi = line.split()
        yield int(store), seq, int(lo), int(hi)
