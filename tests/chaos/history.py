"""The history: every answer a client got, as fixed-size binary records.

A record is one run of consecutive numbers a client received (or, with no
numbers, one answer that was not a 200, or no answer at all):

    t_send, t_recv  time.monotonic() when the (first) request was sent and
                    the (last) answer read (CLOCK_MONOTONIC: the same clock
                    in every process of the suite, and in the fault log)
    t_first         when the first of the merged answers was read
    seq             index into SEQUENCES
    endpoint        index into ENDPOINTS
    instance        the PEZ instance's slot
    client          the client's id
    status          the HTTP status, or NO_ANSWER / TIMEOUT, or an anomaly
    lo, hi          the run, lo <= hi whatever the direction (0, 0: no numbers)
    answers         how many answers were merged into this run

Answers are checked (no number twice, in sequence order, the count asked
for) before they are written. Consecutive answers of one client that
continue one another (same sequence, endpoint and instance) are merged into
one record, so a run of v1 answers costs one record, not thousands. A merge
never spans the start of a fault (the nemesis bumps an epoch that flushes
every pending run), so "received before the fault" stays exact for the
checker, nor a pause of more than MERGE_GAP between two answers, so a
stretch without answers stays visible. 50 bytes a record: a default run
writes some tens of MB.
"""

import os
import struct
import threading

RECORD = struct.Struct("<dddBBBBHqqI")
MERGE_GAP = 0.1

# The sequences every phase creates (forward and reverse are built in).
# name, ascending, initial mode
SEQUENCES = [
    ("forward", True, "leased"),
    ("reverse", False, "leased"),
    ("la", True, "leased"),
    ("ld", False, "leased"),
    ("sa", True, "strict"),
    ("sd", False, "strict"),
    # Only range leases (and the nemesis) touch gb: the give-back race.
    ("gb", True, "leased"),
    # Small cycling sequences (RINGS): they wrap every few thousand numbers,
    # so numbers come back; checked lap by lap (checker.py), not by overlap.
    ("ring-a", True, "leased"),
    ("ring-d", False, "strict"),
    # Made by `pez store copy` (the cli-admin fault), not by the suite: 404
    # until then.
    ("copied", True, "leased"),
]
SEQ_INDEX = {name: i for i, (name, _, _) in enumerate(SEQUENCES)}
# The rings' ranges (min, max): ring-a a lap of 3,000 numbers leased three
# blocks of 1,000 at a time, ring-d 2,500 strict. Both are created with a
# largest range lease of a full lap (chaos.py), which clients and the
# nemesis take.
RINGS = {"ring-a": (1, 3000), "ring-d": (1, 2500)}
RING_INDEX = {SEQ_INDEX[name] for name in RINGS}
ASCENDING = [asc for _, asc, _ in SEQUENCES]
# Named sequences the nemesis deletes and re-creates.
RECREATABLE = ["la", "ld", "sa", "sd"]
# Sequences the nemesis restarts (ahead, in their direction). Not the named
# ones: a restart bumps a sequence's generation, and a re-create of a
# sequence whose generation is 0, as a new one's is, is the case a stale
# instance misses.
RESTARTABLE = ["forward", "reverse"]

ENDPOINTS = [
    "v1",  # GET /v1/{forward,reverse}
    "v2",  # GET /v2/{forward,reverse}?count=N
    "next-get",  # GET /v2/sequences/S/next?count=N
    "next-post",  # POST /v2/sequences/S/next?count=N
    "lease",  # POST /v2/sequences/S/lease?count=N (range lease)
    "nemesis-next",  # the nemesis's own takes (give-back race, rings)
    "nemesis-lease",  # the nemesis's own range leases (give-back race, rings)
    # Numbers a `pez-take` process (the Rust client, clients/rust) handed
    # out of its range leases; instance ANY_INSTANCE (the client fails over).
    "pez-take",
]
EP_INDEX = {name: i for i, name in enumerate(ENDPOINTS)}

NO_ANSWER = 0  # connection refused, reset, closed before an answer
TIMEOUT = 1  # no answer within the client's timeout
# Anomalies in a 200 answer (the runs are written too, so the checker sees
# the duplicates themselves).
DUPLICATE_IN_ANSWER = 901
OUT_OF_ORDER = 902
WRONG_COUNT = 903
BAD_BODY = 904
# A pez-take process: it waited longer than its deadline (plus slack) for a
# number, or it stopped with an error other than a deadline or a 404.
TAKE_STALLED = 905
TAKE_BROKE = 906
# A pez-take process gave up after its deadline: every server failed or
# none answered in time (a bounded stall, as promised; not an anomaly).
TAKE_GAVE_UP = 2
# The instance slot of pez-take's records: the client picks the server.
ANY_INSTANCE = 255
STATUS_NAMES = {
    NO_ANSWER: "no answer (refused/reset)",
    TIMEOUT: "no answer (client timeout)",
    DUPLICATE_IN_ANSWER: "200 with a number twice",
    OUT_OF_ORDER: "200 not in sequence order",
    WRONG_COUNT: "200 with another count than asked",
    BAD_BODY: "200 with a body that does not parse",
    TAKE_STALLED: "pez-take waited past its deadline",
    TAKE_BROKE: "pez-take stopped with an unexpected error",
    TAKE_GAVE_UP: "pez-take gave up at its deadline",
}


class Writer:
    """Appends records to one file; merges continuing runs; thread-safe."""

    FLUSH_BYTES = 1 << 20

    def __init__(self, path):
        self._file = open(path, "ab")
        self._buffer = bytearray()
        # (seq, endpoint, instance) -> [t_send, t_recv, lo, hi, answers, t_first]
        self._pending = {}
        self._epoch = None
        self._lock = threading.Lock()
        self.client = 0

    def epoch(self, epoch):
        """A new fault began: runs before it are never merged with later ones."""
        if epoch != self._epoch:
            with self._lock:
                self._flush_pending()
            self._epoch = epoch

    def run(self, t_send, t_recv, seq, endpoint, instance, lo, hi, merge=True):
        with self._lock:
            key = (seq, endpoint, instance)
            pending = self._pending.get(key)
            if merge and pending is not None and t_recv - pending[1] < MERGE_GAP:
                continues = (
                    lo == pending[3] + 1 if ASCENDING[seq] else hi == pending[2] - 1
                )
                if continues:
                    pending[1] = t_recv
                    if ASCENDING[seq]:
                        pending[3] = hi
                    else:
                        pending[2] = lo
                    pending[4] += 1
                    return
            if pending is not None:
                self._emit(key, pending)
            if merge:
                self._pending[key] = [t_send, t_recv, lo, hi, 1, t_recv]
            else:
                self._pack(t_send, t_recv, t_recv, seq, endpoint, instance, 200, lo, hi, 1)

    def status(self, t_send, t_recv, seq, endpoint, instance, status):
        with self._lock:
            self._pack(t_send, t_recv, t_recv, seq, endpoint, instance, status, 0, 0, 1)

    def close(self):
        with self._lock:
            self._flush_pending()
            self._write()
            self._file.close()

    def _flush_pending(self):
        for key, pending in self._pending.items():
            self._emit(key, pending)
        self._pending.clear()

    def _emit(self, key, pending):
        seq, endpoint, instance = key
        t_send, t_recv, lo, hi, answers, t_first = pending
        self._pack(t_send, t_recv, t_first, seq, endpoint, instance, 200, lo, hi, answers)

    def _pack(self, t_send, t_recv, t_first, seq, endpoint, instance, status, lo, hi, answers):
        self._buffer += RECORD.pack(
            t_send, t_recv, t_first, seq, endpoint, instance, self.client, status, lo, hi,
            answers,
        )
        if len(self._buffer) >= self.FLUSH_BYTES:
            self._write()

    def _write(self):
        if self._buffer:
            self._file.write(self._buffer)
            self._file.flush()
            self._buffer.clear()


def read(directory):
    """Every record of every history file in `directory`, as tuples."""
    records = []
    for name in sorted(os.listdir(directory)):
        if not name.endswith(".bin"):
            continue
        with open(os.path.join(directory, name), "rb") as f:
            data = f.read()
        usable = len(data) - len(data) % RECORD.size
        records.extend(RECORD.iter_unpack(data[:usable]))
    return records
