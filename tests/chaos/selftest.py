#!/usr/bin/env python3
"""The fault suite's own checks of the Rust client, checked: a `pez-take`
that breaks a promise must fail the suite.

A full run cannot show that its stall check works (nothing stalls when all
is well), so this drives the `take` client (`clients._take_once`) with
stand-ins for `pez-take` that misbehave on purpose, and feeds what it
records to the checker:

- one that stops printing for longer than its deadline plus the slack
  (the deadline is cut to 0.3 s here): a stall, and the verdict FAIL;
- one that prints a number lower than the one before: out of order, FAIL;
- one that prints fewer numbers than asked and exits 0: FAIL;
- one that keeps every promise: PASS (the checks do not fail everything),
  and one cut off by the end of the phase after it exited 0 with numbers
  still unread: not judged for its count.

`make chaos` runs it first (a second or two). Standard library only.
"""

import os
import shutil
import stat
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import checker  # noqa: E402
import clients  # noqa: E402
import history  # noqa: E402

SEQ = history.SEQ_INDEX["forward"]
TAKE = history.EP_INDEX["pez-take"]


class Shared:
    """What `_take_once` reads of the clients' shared state."""

    def __init__(self, stop=None):
        self.stop = stop or threading.Event()
        self.epoch = type("Epoch", (), {"value": 0})()


class StopOnceExited:
    """The end of the phase, said once the stand-in has surely exited: a
    `pez-take` that finished with numbers still unread in the pipe."""

    def is_set(self):
        time.sleep(0.5)
        return True


class Recorder:
    """A history writer that keeps records in the checker's layout."""

    def __init__(self):
        self.records = []

    def epoch(self, _epoch):
        pass

    def run(self, t_send, t_recv, seq, endpoint, instance, lo, hi, merge=True):
        self.records.append((t_send, t_recv, t_send, seq, endpoint, instance, 0, 200, lo, hi, 1))

    def status(self, t_send, t_recv, seq, endpoint, instance, status):
        self.records.append((t_send, t_recv, t_send, seq, endpoint, instance, 0, status, 0, 0, 0))


class Said:
    def __init__(self):
        self.lines = []

    def write(self, line):
        self.lines.append(line)


def stand_in(directory, body):
    """An executable Python script that plays `pez-take`."""
    path = os.path.join(directory, "pez-take")
    with open(path, "w") as f:
        f.write("#!" + sys.executable + "\nimport sys, time\n" + body)
    os.chmod(path, os.stat(path).st_mode | stat.S_IXUSR)
    return path


def verdict(records):
    log = {"faults": [], "absent": [], "observations": [], "commands": [], "rings": {},
           "skips": [], "anomalies": []}
    _, result = checker.check("selftest", records, log, 0.0, ["take"], "selftest", 0)
    return result["failures"]


class TakeClientChecks(unittest.TestCase):
    def setUp(self):
        self.saved = clients.TAKE_DEADLINE, clients.TAKE_SLACK
        clients.TAKE_DEADLINE, clients.TAKE_SLACK = 0.3, 0.2
        self.dir = tempfile.mkdtemp(prefix="chaos-selftest-")

    def tearDown(self):
        clients.TAKE_DEADLINE, clients.TAKE_SLACK = self.saved
        shutil.rmtree(self.dir, ignore_errors=True)

    def take(self, body, count, shared=None):
        recorder = Recorder()
        clients._take_once(shared or Shared(), recorder, SEQ, count,
                           [stand_in(self.dir, body)], Said())
        return recorder.records

    def statuses(self, records):
        return {r[checker.STATUS] for r in records}

    def test_a_wait_past_the_deadline_is_a_stall_and_fails_the_suite(self):
        records = self.take(
            "print(1); print(2); sys.stdout.flush(); time.sleep(1.0); print(3); print(4)\n", 4)
        self.assertIn(history.TAKE_STALLED, self.statuses(records))
        self.assertTrue(any("pez-take" in f for f in verdict(records)), verdict(records))

    def test_a_lower_number_after_a_higher_one_fails_the_suite(self):
        records = self.take("print(1); print(3); print(2)\n", 3)
        self.assertIn(history.OUT_OF_ORDER, self.statuses(records))
        self.assertTrue(verdict(records))

    def test_fewer_numbers_than_asked_fails_the_suite(self):
        records = self.take("print(1); print(2)\n", 3)
        self.assertIn(history.WRONG_COUNT, self.statuses(records))
        self.assertTrue(verdict(records))

    def test_a_take_cut_off_at_the_end_of_the_phase_is_not_judged_for_its_count(self):
        # It exited 0 having printed all 3, but the phase ended before they
        # were read (a full run's pgbouncer phase, seed 61206, counted one
        # such as a broken promise).
        records = self.take("print(1); print(2); print(3)\n", 3, Shared(StopOnceExited()))
        self.assertNotIn(history.WRONG_COUNT, self.statuses(records))
        self.assertEqual(verdict(records), [])

    def test_a_take_that_keeps_its_promises_passes(self):
        records = self.take(
            "print(1); sys.stdout.flush(); time.sleep(0.1); print(2); print(3)\n", 3)
        self.assertEqual(self.statuses(records), {200})
        self.assertEqual(verdict(records), [])


if __name__ == "__main__":
    unittest.main(verbosity=1)
