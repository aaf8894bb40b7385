"""The checker: reads a phase's whole history and fault log, prints what it
found, and says whether PEZ kept its promise.

- Duplicates: per sequence, every run every client received, sorted; any
  two that overlap are numbers served twice. (A sequence's incarnations,
  before and after a restart or a re-create, count as one sequence: the
  nemesis always moves it ahead of where it stood, so an overlap is a bug.)
- Duplicates within a lap, for the small cycling sequences (history.RINGS),
  whose numbers come back after every wrap: see ring_check.
- Below a copied position: no number of `copied` under where `pez store
  copy` put it.
- Admin commands: `pez migrate` and `pez handback` while the standby is
  gone end within their bound, refused, with one `pez:` line.
- Not durable: see nemesis.py, `after` and `window` observations.
- Answers other than 200/503, by status and endpoint; 404 while a sequence
  is being deleted and re-created is expected and counted apart.
- The longest stretch without a 200 after each fault, per kind of client.
- Numbers lost to gaps: the range a sequence covered, minus the numbers
  received, minus what restarts and re-creates skipped on purpose.
"""

import bisect
import heapq
from collections import Counter, defaultdict

import history
from history import ENDPOINTS, SEQUENCES, STATUS_NAMES

T_SEND, T_RECV, T_FIRST, SEQ, EP, INST, CLIENT, STATUS, LO, HI, ANSWERS = range(11)
EXAMPLES = 5
# How long after a fault's end its stretch without a 200 is still counted.
AFTER = 5.0


def _n(x):
    return f"{x:,}"


class Report:
    def __init__(self):
        self.lines = []

    def __call__(self, line=""):
        self.lines.append(line)

    def text(self):
        return "\n".join(self.lines) + "\n"


def check(phase, records, log, t0, client_kinds, title, minimum):
    """(report text, verdict dict)."""
    out = Report()
    at = lambda t: f"t+{t - t0:.3f}s"  # noqa: E731
    faults = log["faults"]
    kinds_of = {c: k for c, k in enumerate(client_kinds)}

    def who(r):
        client = "nemesis" if r[CLIENT] == 99 else f"client {r[CLIENT]} ({kinds_of.get(r[CLIENT])})"
        inst = "any instance" if r[INST] == history.ANY_INSTANCE else f"instance {r[INST]}"
        return f"{client}, {ENDPOINTS[r[EP]]}, {inst}, {at(r[T_RECV])}"

    def fault_before(t):
        last = None
        for f in faults:
            if f["t_start"] <= t:
                last = f
        return f"#{last['id']} {last['kind']} at {at(last['t_start'])}" if last else "none"

    runs = [r for r in records if r[STATUS] == 200]
    others = [r for r in records if r[STATUS] != 200]
    by_seq = defaultdict(list)
    for r in runs:
        by_seq[r[SEQ]].append(r)
    rings = {history.SEQ_INDEX[name] for name in log.get("rings", history.RINGS)}

    out(f"== {title}")
    total = sum(r[HI] - r[LO] + 1 for r in runs)
    answers = sum(r[ANSWERS] for r in runs)
    out(f"numbers checked: {_n(total)} in {_n(answers)} answers with numbers "
        f"({_n(len(runs))} history records)")
    per_ep = Counter()
    for r in runs:
        per_ep[ENDPOINTS[r[EP]]] += r[HI] - r[LO] + 1
    out("  per endpoint: " + ", ".join(f"{k} {_n(v)}" for k, v in sorted(per_ep.items())))
    out("  per sequence: " + ", ".join(
        f"{SEQUENCES[s][0]} {_n(sum(r[HI] - r[LO] + 1 for r in rs))}"
        for s, rs in sorted(by_seq.items())))

    # -- faults -------------------------------------------------------------------
    kinds = Counter(f["kind"] for f in faults)
    out(f"faults injected: {len(faults)}: " + ", ".join(f"{k} {v}" for k, v in sorted(kinds.items())))

    # -- duplicates ----------------------------------------------------------------
    dup_total = 0
    dup_lines = []
    dup_per_seq = {}
    for s, rs in sorted(by_seq.items()):
        if s in rings:
            continue
        rs = sorted(rs, key=lambda r: r[LO])
        max_hi, holder = None, None
        dups, overlaps, shown = 0, 0, 0
        for r in rs:
            if max_hi is not None and r[LO] <= max_hi:
                n = min(r[HI], max_hi) - r[LO] + 1
                dups += n
                overlaps += 1
                if shown < EXAMPLES:
                    shown += 1
                    dup_lines.append(
                        f"    {SEQUENCES[s][0]}: {r[LO]}..{min(r[HI], max_hi)} ({_n(n)} numbers) "
                        f"got by [{who(holder)}] and by [{who(r)}]; "
                        f"last fault before: {fault_before(max(r[T_RECV], holder[T_RECV]))}"
                    )
            if max_hi is None or r[HI] > max_hi:
                max_hi, holder = r[HI], r
        dup_per_seq[s] = (dups, overlaps)
        dup_total += dups
    ring_dups, ring_lines, ring_summary = ring_check(
        records, log, rings, who, fault_before, exact=(phase == "sqlite"))
    dup_total += ring_dups
    out(f"duplicates: {_n(dup_total)}" + ("" if dup_total else " (must be 0)"))
    out("  per sequence: " + ", ".join(
        f"{SEQUENCES[s][0]} {_n(d)}" + (f" in {o} overlaps" if o else "")
        for s, (d, o) in sorted(dup_per_seq.items())))
    if dup_lines:
        out("  first overlapping runs:")
        for line in dup_lines:
            out(line)
    for line in ring_summary + ring_lines:
        out(line)

    # -- durability ----------------------------------------------------------------
    by_recv = {}
    for s, rs in by_seq.items():
        ordered = sorted(rs, key=lambda r: r[T_RECV])
        times = [r[T_RECV] for r in ordered]
        extreme, ext = [], None
        asc = history.ASCENDING[s]
        for r in ordered:
            v = r[HI] if asc else r[LO]
            ext = v if ext is None else (max(ext, v) if asc else min(ext, v))
            extreme.append(ext)
        by_recv[s] = (ordered, times, extreme)

    nondurable = 0
    nd_lines = []
    checked_obs = 0
    for obs in log["observations"]:
        checked_obs += 1
        fault = faults[obs["fault"]] if obs["fault"] is not None else None
        for name, stood in obs["positions"].items():
            s = history.SEQ_INDEX.get(name)
            if s is None or s not in by_recv or s in rings:
                continue
            ordered, times, extreme = by_recv[s]
            asc = history.ASCENDING[s]
            end = bisect.bisect_left(times, obs["t_before"])
            start = bisect.bisect_right(times, obs["t_from"]) if obs["kind"] == "window" else 0
            if end <= start:
                continue
            if obs["kind"] == "after":
                ext = extreme[end - 1]
                if (ext < stood) if asc else (ext > stood):
                    continue
            bad, examples = 0, []
            for r in ordered[start:end]:
                n = (r[HI] - max(r[LO], stood) + 1) if asc else (min(r[HI], stood) - r[LO] + 1)
                if n > 0:
                    bad += n
                    if len(examples) < 3:
                        examples.append(r)
            if bad:
                nondurable += bad
                where = "past" if obs["kind"] == "window" else "not behind"
                what = (f"fault #{fault['id']} {fault['kind']} at {at(fault['t_start'])}"
                        if fault else "end of the phase")
                nd_lines.append(
                    f"    {what}, {obs['label']}: {name} "
                    f"{'horizon' if obs['kind'] == 'window' else 'stood at'} {stood}; "
                    f"{_n(bad)} numbers received "
                    + (f"between {at(obs['t_from'])} and {at(obs['t_before'])}"
                       if obs["kind"] == "window" else f"before {at(obs['t_before'])}")
                    + f" are {where} it"
                )
                for r in examples:
                    nd_lines.append(f"      {r[LO]}..{r[HI]} by [{who(r)}]")
    out(f"served while not durable: {_n(nondurable)}" + ("" if nondurable else " (must be 0)")
        + f" ({checked_obs} store positions read after faults)")
    for line in nd_lines[:40]:
        out(line)
    if len(nd_lines) > 40:
        out(f"    ... {len(nd_lines) - 40} more lines in the fault log")

    # -- strict order ------------------------------------------------------------------
    # Strict mode promises one global order: a request that finished before
    # another began got numbers before the other's. Checked from the time a
    # re-create's change must have reached every instance (the sync
    # interval plus a second) until the sequence's next re-create.
    order_bad, order_lines = 0, []
    for s, intervals in _strict_intervals(faults).items():
        if s in rings:  # a ring's order wraps; its laps are checked instead
            continue
        rs = by_seq.get(s, [])
        asc = history.ASCENDING[s]
        for t_from, t_to in intervals:
            inside = [r for r in rs if t_from <= r[T_SEND] < t_to]
            by_send = sorted(inside, key=lambda r: r[T_SEND])
            by_done = sorted(inside, key=lambda r: r[T_RECV])
            k, best, holder = 0, None, None
            for r in by_send:
                while k < len(by_done) and by_done[k][T_RECV] < r[T_SEND]:
                    d = by_done[k]
                    v = d[HI] if asc else d[LO]
                    if best is None or (v > best if asc else v < best):
                        best, holder = v, d
                    k += 1
                if best is not None and ((r[LO] <= best) if asc else (r[HI] >= best)):
                    order_bad += 1
                    if len(order_lines) < EXAMPLES:
                        order_lines.append(
                            f"    {SEQUENCES[s][0]}: {r[LO]}..{r[HI]} by [{who(r)}], sent "
                            f"{at(r[T_SEND])}, after {best} had gone to [{who(holder)}]"
                        )
    out(f"strict sequences out of global order: {_n(order_bad)} answers" + (
        "" if order_bad else " (strict mode's promise; not a duplicate)"))
    for line in order_lines:
        out(line)

    # -- answers other than 200 ----------------------------------------------------
    absent = defaultdict(list)
    for a in log["absent"]:
        absent[a["seq"]].append((a["t_from"], a["t_to"]))
    statuses = Counter()
    unanswered = Counter()
    expected_404 = 0
    anomalies = Counter()
    n503 = 0
    for r in others:
        st = r[STATUS]
        if st == 503:
            n503 += 1
        elif st == 404 and any(a <= r[T_RECV] <= b for a, b in absent[r[SEQ]]):
            expected_404 += 1
        elif st >= 900:
            anomalies[(STATUS_NAMES[st], ENDPOINTS[r[EP]])] += 1
        elif st in (history.NO_ANSWER, history.TIMEOUT, history.TAKE_GAVE_UP):
            unanswered[(STATUS_NAMES[st], ENDPOINTS[r[EP]])] += 1
        else:
            statuses[(STATUS_NAMES.get(st, str(st)), ENDPOINTS[r[EP]])] += 1
    out(f"answers 503: {_n(n503)}; 404 while a sequence was re-created (expected): {_n(expected_404)}")
    out("answers other than 200/503: " + (", ".join(
        f"{st} on {ep}: {_n(v)}" for (st, ep), v in sorted(statuses.items())) or "none"))
    out("requests without an answer: " + (", ".join(
        f"{st} on {ep}: {_n(v)}" for (st, ep), v in sorted(unanswered.items())) or "none"))
    if anomalies:
        out("200 answers that broke a rule: " + ", ".join(
            f"{st} on {ep}: {_n(v)}" for (st, ep), v in sorted(anomalies.items())))
    # The Rust client's promises (clients/rust, docs/clients.md): in order
    # within one client, the count asked for, no wait past its deadline.
    take_broken = sum(v for (_, ep), v in anomalies.items() if ep == "pez-take")
    take_runs = sum(1 for r in others if r[EP] == history.EP_INDEX["pez-take"]
                    and r[STATUS] == history.TAKE_GAVE_UP)
    if "take" in client_kinds:
        out(f"pez-take processes that broke the client's promises: {_n(take_broken)}"
            + ("" if take_broken else " (in order, the count asked for, no wait past the "
               "deadline)") + f"; gave up at their deadline: {_n(take_runs)}")

    # -- stretches without a 200 --------------------------------------------------
    families = sorted({k for k in client_kinds})
    cover = defaultdict(list)
    for r in runs:
        if r[CLIENT] == 99:
            continue
        fam = kinds_of.get(r[CLIENT], "?")
        a = r[T_FIRST]
        cover[fam].append((a, r[T_RECV]))
        cover["any"].append((a, r[T_RECV]))
    for fam in cover:
        cover[fam].sort()
    starts = {fam: [a for a, _ in iv] for fam, iv in cover.items()}

    def stretch(fam, w0, w1):
        iv = cover.get(fam, [])
        i = max(0, bisect.bisect_left(starts.get(fam, []), w0) - 1)
        cursor, longest = w0, 0.0
        while i < len(iv) and iv[i][0] <= w1:
            a, b = iv[i]
            if b >= cursor:
                if a > cursor:
                    longest = max(longest, a - cursor)
                cursor = max(cursor, b)
            i += 1
        return max(longest, w1 - cursor)

    # The last fault's window must not run past the end of the load.
    load_end = max((r[T_RECV] for r in records if r[CLIENT] != 99), default=0.0)
    cols = ["any"] + families
    table = defaultdict(lambda: defaultdict(float))
    lasted = defaultdict(float)
    for k, f in enumerate(faults):
        w0 = f["t_start"]
        w1 = max(f.get("t_end", w0), f.get("t_serving", w0)) + AFTER
        if k + 1 < len(faults):
            w1 = min(w1, faults[k + 1]["t_start"])
        w1 = max(w0, min(w1, load_end))
        lasted[f["kind"]] = max(lasted[f["kind"]], f.get("t_end", w0) - w0)
        for fam in cols:
            table[f["kind"]][fam] = max(table[f["kind"]][fam], stretch(fam, w0, w1))
    out(f"longest stretch without a 200, from each fault until {AFTER:.0f} s after it ended "
        "or the next began (seconds, worst fault of each kind; 'lasted': the longest the "
        "nemesis took to inject and repair it; then any client, and each kind of client):")
    out("    " + f"{'fault':<26}{'lasted':>8}" + "".join(f"{c:>8}" for c in cols))
    for kind in sorted(table):
        out("    " + f"{kind:<26}{lasted[kind]:8.2f}"
            + "".join(f"{table[kind][c]:8.2f}" for c in cols))

    # -- gaps -----------------------------------------------------------------------
    skips = defaultdict(list)
    for sk in log["skips"]:
        skips[sk["seq"]].append((sk["lo"], sk["hi"]))
    out("numbers lost to gaps (range covered, minus numbers received, minus what "
        "restarts and re-creates skipped on purpose):")
    for s, rs in sorted(by_seq.items()):
        if s in rings:
            continue
        received = _union_size([(r[LO], r[HI]) for r in rs])
        lo = min(r[LO] for r in rs)
        hi = max(r[HI] for r in rs)
        both = [(r[LO], r[HI]) for r in rs] + [
            (max(a, lo), min(b, hi)) for a, b in skips[s] if b >= lo and a <= hi
        ]
        covered = _union_size(both)
        lost = (hi - lo + 1) - covered
        span = (hi - lo + 1) - (covered - received)
        out(f"    {SEQUENCES[s][0]:<8} range covered {_n(span)}, received {_n(received)}, "
            f"lost {_n(lost)} ({100.0 * lost / span if span else 0:.2f}%)")

    # -- what else the nemesis saw ---------------------------------------------------
    if log["anomalies"]:
        out(f"noticed during faults ({len(log['anomalies'])}):")
        for a in log["anomalies"][:30]:
            f = f"fault #{a['fault']}" if a["fault"] is not None else "setup"
            out(f"    {at(a['t'])} {f}: {a['what']}")
    fired = [f for f in faults if f["kind"] == "giveback-race"]
    if fired:
        out("give-back races: " + "; ".join(
            f"#{f['id']}: newest block leased {f.get('newest_block_leased')}, "
            f"range lease between read and write {'yes' if f.get('hook_fired') else 'no'}"
            f" ({f.get('hook', {}).get('status', '-')})"
            for f in fired))

    # -- below where pez store copy put `copied` -----------------------------------
    below, below_lines = 0, []
    for fl in log.get("floors", []):
        s, value = fl["seq"], fl["value"]
        asc = history.ASCENDING[s]
        for r in by_seq.get(s, []):
            if fl["t_from"] is not None and r[T_SEND] < fl["t_from"]:
                continue
            n = (min(r[HI], value - 1) - r[LO] + 1) if asc else (r[HI] - max(r[LO], value + 1) + 1)
            if n > 0:
                below += n
                if len(below_lines) < EXAMPLES:
                    below_lines.append(f"    {SEQUENCES[s][0]} {fl['label']} at {value}: "
                                       f"{r[LO]}..{r[HI]} by [{who(r)}]")
    if log.get("floors"):
        out(f"served behind where pez store copy put a sequence: {_n(below)} (must be 0; "
            + "; ".join(f"{SEQUENCES[fl['seq']][0]} at {fl['value']}"
                        + (f" from {at(fl['t_from'])}" if fl["t_from"] is not None else
                           ", ever") for fl in log["floors"]) + ")")
    for line in below_lines:
        out(line)

    # -- pez commands the nemesis ran ------------------------------------------------
    broken = []
    commands = log.get("commands", [])
    if commands:
        by_what = defaultdict(list)
        for c in commands:
            by_what[c["what"]].append(c)
        out("pez commands run by the nemesis (runs, exit codes, longest seconds / bound):")
        for what, cs in sorted(by_what.items()):
            codes = Counter(str(c["code"]) for c in cs)
            bound = max((c["bound"] or 0) for c in cs)
            out(f"    {what:<30} {len(cs):3d}  exit " + ", ".join(
                f"{k} x{v}" for k, v in sorted(codes.items()))
                + f"  {max(c['seconds'] for c in cs):6.2f} s" + (f" / {bound:.0f} s" if bound else ""))
        for c in commands:
            why = []
            if c["code"] is None or (c["bound"] and c["seconds"] > c["bound"]):
                why.append(f"took {c['seconds']:.1f} s (bound {c['bound']} s)")
            if c["expect_failure"] and c["code"] == 0:
                why.append("succeeded where it must refuse")
            if c["expect_failure"] and c["code"] not in (0, None) and c["pez_lines"] != 1:
                why.append(f"said {c['pez_lines']} pez: lines, not one")
            if why:
                broken.append(f"    fault #{c['fault']} {c['what']}: " + "; ".join(why)
                              + f": {c['said']}")
        out(f"pez commands that broke their rule: {len(broken)}"
            + ("" if broken else " (end within the bound; refused with one pez: line "
               "where they must refuse)"))
        for line in broken[:10]:
            out(line)

    rings_fired = [f for f in faults if f["kind"] == "ring"]
    if rings_fired:
        out("ring faults (ring-a): " + "; ".join(
            f"#{f['id']}: newest block a lap from the origin {_yes(f.get('newest_block_from_origin'))}, "
            f"lap {'+'.join(str(c) for c in f.get('lap_through_b', []))} back where it stood "
            f"{_yes(f.get('back_at_origin_after_the_lap'))}, give-back "
            + ("refused" if any("full lap went by" in line or "moved on" in line
                                or "cannot be proven safe" in line
                                for line in f.get("ring_a_at_stop", []))
               else "TAKEN" if any("gave back" in line for line in f.get("ring_a_at_stop", []))
               else "-")
            + f", stood after the stop at {f.get('ring-a_stands_after', '-')}"
            for f in rings_fired))
    syncs = [f for f in faults if f["kind"] == "sync-commit-local"]
    if syncs:
        out("synchronous_commit as a new session saw it: " + "; ".join(
            f"#{f['id']}: {f.get('server_setting', '-')} during, {f.get('setting_after', '-')} after"
            for f in syncs))

    failures = []
    if dup_total:
        failures.append(f"{_n(dup_total)} duplicates")
    if nondurable:
        failures.append(f"{_n(nondurable)} numbers served while not durable")
    if below:
        failures.append(f"{_n(below)} numbers behind where pez store copy put a sequence")
    if broken:
        failures.append(f"{len(broken)} pez commands broke their rule")
    if take_broken:
        failures.append(f"{_n(take_broken)} times pez-take broke the client's promises")
    if total < minimum:
        failures.append(f"only {_n(total)} numbers checked (at least {_n(minimum)} expected)")
    verdict = {
        "order": order_bad,
        "phase": phase,
        "numbers": total,
        "duplicates": dup_total,
        "nondurable": nondurable,
        "faults": dict(kinds),
        "failures": failures,
    }
    out(f"verdict ({phase}): " + ("PASS" if not failures else "FAIL: " + "; ".join(failures)))
    return out.text(), verdict


SETTLE = 2.0  # PEZ_SYNC_INTERVAL_MS (1 s) plus one store call, generously


def _strict_intervals(faults):
    """{seq: [(t_from, t_to)]}: when each sequence was strict and every
    instance must have known it."""
    mode = {i: m for i, (_, _, m) in enumerate(SEQUENCES)}
    since = {i: float("-inf") for i in mode}
    out = defaultdict(list)
    for f in faults:
        if f["kind"] != "recreate" or "t_end" not in f:
            continue
        s = history.SEQ_INDEX[f["sequence"]]
        if mode[s] == "strict":
            out[s].append((since[s], f["t_start"]))
        mode[s] = f["mode"]
        since[s] = f["t_end"] + SETTLE
    for s, m in mode.items():
        if m == "strict":
            out[s].append((since[s], float("inf")))
    return out


def _union_size(intervals):
    total, cur_lo, cur_hi = 0, None, None
    for lo, hi in sorted(intervals):
        if cur_hi is None or lo > cur_hi + 1:
            if cur_hi is not None:
                total += cur_hi - cur_lo + 1
            cur_lo, cur_hi = lo, hi
        elif hi > cur_hi:
            cur_hi = hi
    if cur_hi is not None:
        total += cur_hi - cur_lo + 1
    return total


BIG = 1 << 62


def _yes(flag):
    return "yes" if flag else "no" if flag is not None else "-"


def _clock(observations, name):
    """The lap count of ring `name` as read, as [(t_start, t_end, value)].
    Values are made never to go down: a count that falls (a failover lost
    commits the primary had made alone, read before PEZ could count
    again) is raised by what it fell from then on, which only widens the
    intervals. Sorted by t_end."""
    out, offset, prev = [], 0, None
    for t_start, t_end, laps in sorted(observations, key=lambda o: o[1]):
        v = laps.get(name)
        if v is None:
            continue
        if prev is not None and v < prev:
            offset += prev - v
        prev = v
        out.append((t_start, t_end, v + offset, offset))
    return out


class _Bounds:
    """lo(t): the largest value read by a read that ended by t (the count
    then was at least that); hi(t): the smallest value read by a read that
    began at or after t (the count then was at most that)."""

    def __init__(self, clock):
        self.ends = [c[1] for c in clock]
        self.lo_vals = []
        best = 0
        for c in clock:
            best = max(best, c[2])
            self.lo_vals.append(best)
        by_start = sorted(clock, key=lambda c: c[0])
        self.starts = [c[0] for c in by_start]
        self.hi_vals = [0] * len(by_start)
        best = BIG
        for k in range(len(by_start) - 1, -1, -1):
            best = min(best, by_start[k][2])
            self.hi_vals[k] = best

    def lo(self, t):
        k = bisect.bisect_right(self.ends, t) - 1
        return self.lo_vals[k] if k >= 0 else 0

    def hi(self, t):
        k = bisect.bisect_left(self.starts, t)
        return self.hi_vals[k] if k < len(self.starts) else BIG


def _unassigned(intervals):
    """Receipts of one number that cannot all be given distinct laps within
    their intervals: earliest deadline first, lap by lap (it assigns as
    many as any assignment can). [(lo, hi, id)] -> ids left over."""
    intervals.sort()
    heap, left, i, n, t = [], [], 0, len(intervals), None
    while i < n or heap:
        if not heap:
            t = intervals[i][0] if t is None else max(t, intervals[i][0])
        while i < n and intervals[i][0] <= t:
            heapq.heappush(heap, (intervals[i][1], intervals[i][2]))
            i += 1
        hi, rid = heapq.heappop(heap)
        if hi < t:
            left.append(rid)
            continue
        t += 1
    return left


def ring_check(records, log, rings, who, fault_before, exact=True):
    """Duplicates within a lap on the rings. (numbers, example lines,
    summary lines.)

    The store counts, per ring, the laps begun (the reservations that
    handed out its origin: min ascending, max descending); the nemesis
    reads the count every ~150 ms. A run received gets a lap interval
    [lo, hi]: hi the count read first at or after its answer arrived; lo
    the count read last by the time its request was sent (range leases,
    strict takes: the store reserves for the request itself) or by the
    serving instance's start (leased takes are served from blocks the
    instance reserved since it started), plus one for the runs from the
    ring's origin on within that answer. Two receipts of a number are
    fine if they can be in different laps; a number whose receipts cannot
    all be given distinct laps within their intervals was served twice
    within a lap. Sound where the count is exact: it only goes up, and on
    the embedded store every passage through the origin counts (one
    transaction). On PostgreSQL it is not exact (`exact` False): nextval()
    is not undone when its statement fails, the count's update is, so a
    reservation that took the origin and then failed (a lock timeout, a
    cancel, a crash) leaves a lap uncounted, and PEZ gives small rings
    nothing back there for that reason (docs/design.md, Laps). A count that
    is short can only make intervals too low, so what the rule finds there
    is reported as "possible" and not counted as duplicates; every answer
    is still checked for a number twice."""
    starts = {int(k): sorted(v) for k, v in log.get("starts", {}).items()}
    exact_eps = {history.EP_INDEX["lease"], history.EP_INDEX["nemesis-lease"]}
    names = log.get("rings", history.RINGS)
    observations = log.get("laps", [])
    total, lines, summary = 0, [], []
    for name, (rmin, rmax) in sorted(names.items()):
        s = history.SEQ_INDEX[name]
        asc = history.ASCENDING[s]
        strict = history.SEQUENCES[s][2] == "strict"
        origin = rmin if asc else rmax
        clock = _clock(observations, name)
        bounds = _Bounds(clock)
        items = []
        behind = 0
        answer, crossed = None, 0
        for r in records:
            if r[SEQ] != s:
                continue
            if r[STATUS] == history.DUPLICATE_IN_ANSWER:
                total += 1
                lines.append(f"    {name}: an answer with a number twice [{who(r)}]")
                continue
            if r[STATUS] != 200:
                continue
            key = (r[CLIENT], r[T_SEND], r[T_RECV], r[INST])
            if key != answer:
                answer, crossed = key, 0
            if r[LO] <= origin <= r[HI]:
                crossed = 1
            if strict or r[EP] in exact_eps:
                base = bounds.lo(r[T_SEND])
            else:
                spawned = starts.get(r[INST], [])
                k = bisect.bisect_right(spawned, r[T_SEND]) - 1
                base = bounds.lo(spawned[k]) if k >= 0 else 0
            lo, hi = base + crossed, bounds.hi(r[T_RECV])
            if lo > hi:
                behind += 1
                lo = hi
            items.append((r[LO], r[HI], lo, hi, r))
        # Sweep the numbers: between two boundaries the same receipts.
        points = sorted({it[0] for it in items} | {it[1] + 1 for it in items})
        adds = defaultdict(list)
        for k, it in enumerate(items):
            adds[it[0]].append(k)
        active = {}
        ends = defaultdict(list)
        bad_numbers, examples, widths = 0, [], []
        for p_k, p in enumerate(points):
            for k in ends.pop(p, ()):
                active.pop(k, None)
            for k in adds.get(p, ()):
                active[k] = items[k]
                ends[items[k][1] + 1].append(k)
            if len(active) < 2 or p_k + 1 >= len(points):
                continue
            length = points[p_k + 1] - p
            left = _unassigned([(it[2], it[3], k) for k, it in active.items()])
            if left:
                bad_numbers += len(left) * length
                if len(examples) < EXAMPLES:
                    k = left[0]
                    it = items[k]
                    near = sorted((o for o in active.values()
                                   if o is not it and o[2] <= it[3] and o[3] >= it[2]),
                                  key=lambda o: o[3])[:3]
                    examples.append(
                        f"    {name}: {p}..{points[p_k + 1] - 1} ({_n(length)} numbers) in lap "
                        f"{it[2]}..{it[3]} by [{who(it[4])}]; also in laps "
                        + "; ".join(f"{o[2]}..{o[3]} by [{who(o[4])}]" for o in near)
                        + f"; last fault before: {fault_before(it[4][T_RECV])}")
        # Where the ring stood in its lap, read while nobody took from it:
        # numbers received before the read, surely in that lap (lo at or
        # past its count), must lie behind that position; at its origin the
        # next number begins a new lap. Those past it will be handed out
        # again within the lap: counted as served twice.
        set_back = 0
        ends_at = [c[1] for c in clock]
        for obs in log.get("ring_after", []):
            p = obs["position"]
            if obs["seq"] != s or p is None or p == origin:
                continue
            k = bisect.bisect_right(ends_at, obs["t_read"]) - 1
            lap_now = obs["laps"] + (clock[k][3] if k >= 0 else 0)
            bad = 0
            for nlo, nhi, lo, hi, r in items:
                if r[T_RECV] >= obs["t_read"] or lo < lap_now:
                    continue
                n = (nhi - max(nlo, p) + 1) if asc else (min(nhi, p) - nlo + 1)
                if n > 0:
                    bad += n
                    if len(examples) < EXAMPLES:
                        examples.append(
                            f"    {name}: stood at {p} in lap {obs['laps']} "
                            f"({obs['label']}, fault #{obs['fault']}), yet {nlo}..{nhi} "
                            f"had gone in that lap to [{who(r)}]")
            set_back += bad
        bad_numbers += set_back
        if not exact:
            if bad_numbers:
                lines.extend(line + " (possible: the lap count on PostgreSQL can be short)"
                             for line in examples)
                summary.append(f"  {name}: {_n(bad_numbers)} numbers the lap rule cannot place "
                               "(not counted: the lap count on PostgreSQL can be short)")
            bad_numbers, set_back, examples = 0, 0, []
        for it in items:
            widths.append(it[3] - it[2])
        widths.sort()
        total += bad_numbers
        lines.extend(examples)
        reads = len(_clock(observations, name))
        received = sum(it[1] - it[0] + 1 for it in items)
        summary.append(
            f"  {name} (a ring of {_n(rmax - rmin + 1)}): {_n(received)} numbers in "
            f"{_n(len(items))} runs, lap count read {_n(reads)} times, up to "
            f"{_n(bounds.lo(float('inf')))}; lap interval width median "
            f"{widths[len(widths) // 2] if widths else 0}; served twice within a lap: "
            f"{_n(bad_numbers)}"
            + (f" (of which {_n(set_back)} behind where it stood, read after a fault)"
               if set_back else "")
            + (f"; {_n(behind)} runs past the origin the count had not counted by the next "
               "read" if behind else ""))
    return total, lines, summary
