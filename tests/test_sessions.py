"""The session table (kernels.sessions through replay.SessionTable) against a readable per-ENI replay.

The reference keeps a dictionary of sessions keyed by ENI and unordered 5-tuple, exactly as
docs/semantics.md §5 says. The table is made tiny so that clearing expired sessions in place and
moving to a larger table happen within a few records, across chunks of random sizes.
"""
from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from flowsim.batch.replay import SessionTable
from flowsim.kernels.probing import home
from flowsim.kernels.sessions import SESSION, _tag, keep_live

TIMEOUT = 910.0
ENIS = (-1, 0, 1, 2)
ADDRESSES = [(0, 1), (0, 2), (7, 2**63)]  # (hi, lo) pairs; fam is drawn per record; few keys, so that they recur


def reference(records: list[dict]) -> tuple[list[tuple[int, bool, bool]], int]:
    """(verdict, egress by state, ingress by state) per record in the given (time) order, and sessions opened."""
    sessions: dict[tuple, dict] = {}
    out, opened = [], 0
    for r in records:
        src, dst = (r["shi"], r["slo"], r["sport"]), (r["dhi"], r["dlo"], r["dport"])
        sides = [(side, eni, ok) for side, eni, ok in ((0, r["se"], r["egress_ok"]), (1, r["de"], r["ingress_ok"]))
                 if eni >= 0 and r["se"] != r["de"]]  # one ENI on both ends: the traffic never leaves it
        if math.isnan(r["time"]) or r["verdict"] > 1 or not sides:
            out.append((r["verdict"], False, False))
            continue
        now = r["time"]

        def key(eni):
            return eni, r["fam"], r["proto"], frozenset((src, dst))

        by_state = [False, False]
        allowed = True
        for side, eni, ok in sides:
            s = sessions.get(key(eni))
            live = s is not None and now - s["last"] <= TIMEOUT
            by_state[side] = live and (src, dst) != s["opener"]
            allowed &= by_state[side] or ok
        if not allowed:
            out.append((1, False, False))
            continue
        out.append((0, by_state[0], by_state[1]))
        for eni in {eni for _, eni, _ in sides}:
            s = sessions.get(key(eni))
            if s is not None and now - s["last"] <= TIMEOUT:
                s["last"] = max(s["last"], now)
            else:
                sessions[key(eni)] = {"last": now, "opener": (src, dst)}
                opened += 1
    return out, opened


COLUMNS = {"fam": np.uint8, "shi": np.uint64, "slo": np.uint64, "dhi": np.uint64, "dlo": np.uint64,
           "proto": np.int16, "sport": np.int32, "dport": np.int32, "se": np.int32, "de": np.int32,
           "egress_ok": np.bool_, "ingress_ok": np.bool_, "verdict": np.int8, "time": np.float64}


CODE_ALLOWS = np.array([True, False])


def run_table(records: list[dict], merged: bool, cuts: list[int],
              table: SessionTable | None = None) -> tuple[list[tuple[int, bool, bool]], int]:
    table = table or SessionTable(merged, TIMEOUT, min_slots=4)
    out, opened = [], 0
    bounds = sorted({0, len(records), *(c for c in cuts if c < len(records))})
    for lo, hi in zip(bounds, bounds[1:]):
        a = {name: np.array([r[name] for r in records[lo:hi]], dtype) for name, dtype in COLUMNS.items()}
        verdict = a["verdict"].copy()
        # a side's stateless decision as a rule code: 1 denies, 0 allows, and so does NO_RULE (-1)
        codes = [np.where(a[ok], np.arange(lo, hi) % 2 - 1, 1).astype(np.int32) for ok in ("egress_ok", "ingress_ok")]
        given = [c.copy() for c in codes]
        e, i, n = table.apply(np.arange(hi - lo, dtype=np.int64), a["time"], a["fam"], a["shi"], a["slo"], a["dhi"],
                              a["dlo"], a["proto"], a["sport"], a["dport"], a["se"], a["de"], codes[0], codes[1],
                              CODE_ALLOWS, verdict)
        for code, was, by_state in zip(codes, given, (e, i)):
            assert code.tolist() == np.where(by_state, -1, was).tolist()
        out += list(zip(verdict.tolist(), e.tolist(), i.tolist()))
        opened += n
    return out, opened


@st.composite
def traces(draw) -> tuple[list[dict], bool]:
    """Records of a few conversations in time order (those without a time last, as replay orders them),
    and whether ENIs follow from addresses (then the merged table is exact too)."""
    owned = draw(st.booleans())
    owner = [draw(st.sampled_from(ENIS)) for _ in ADDRESSES]
    address = st.integers(0, len(ADDRESSES) - 1)
    port = st.sampled_from([53, 40000])
    flows = draw(st.lists(st.tuples(address, address, st.sampled_from([4, 4, 6]), st.sampled_from([6, 17]), port, port),
                          min_size=1, max_size=4))
    now, records = 0.0, []
    for _ in range(draw(st.integers(0, 80))):
        now += draw(st.sampled_from([0.0, 0.5, 0.5, 300.0, TIMEOUT, TIMEOUT + 0.5]))
        s, d, fam, proto, sport, dport = draw(st.sampled_from(flows))
        if draw(st.booleans()):
            s, d, sport, dport = d, s, dport, sport
        if owned:
            se, de = owner[s], owner[d]
        else:  # endpoint records name one ENI; others any pair
            se, de = draw(st.sampled_from(ENIS)), draw(st.sampled_from(ENIS))
        records.append({
            "time": math.nan if draw(st.integers(0, 19)) == 0 else now,
            "fam": fam, "shi": ADDRESSES[s][0], "slo": ADDRESSES[s][1], "dhi": ADDRESSES[d][0], "dlo": ADDRESSES[d][1],
            "proto": proto, "sport": sport, "dport": dport, "se": se, "de": de,
            "egress_ok": draw(st.booleans()), "ingress_ok": draw(st.booleans()),
            "verdict": draw(st.sampled_from([0, 0, 1, 2, 3]))})
    records.sort(key=lambda r: math.isnan(r["time"]))
    return records, owned


@settings(max_examples=400, deadline=None)
@given(traces(), st.booleans(), st.lists(st.integers(1, 60), max_size=6))
def test_session_table_equals_the_per_eni_reference(trace, merge, cuts):
    records, owned = trace
    merged = merge and owned
    assert run_table(records, merged, cuts) == reference(records)


def test_replies_pass_through_a_tiny_table_that_clears_and_grows():
    # 200 sessions opened 100 s apart, each answered 900 s later: every answer must find its session
    # while the table, four slots to start, clears expired ones and grows
    n = 200
    opens = [{"time": 100.0 * k, "fam": 4, "shi": 0, "slo": k, "dhi": 0, "dlo": 10_000, "proto": 6, "sport": 1,
              "dport": 443, "se": 0, "de": -1, "egress_ok": True, "ingress_ok": False, "verdict": 0} for k in range(n)]
    replies = [dict(r, time=r["time"] + 900.0, slo=10_000, dlo=r["slo"], sport=443, dport=1, se=-1, de=0,
                    egress_ok=False, verdict=1) for r in opens]
    records = sorted(opens + replies, key=lambda r: r["time"])
    out, opened = run_table(records, False, list(range(7, 2 * n, 7)))
    assert (out, opened) == reference(records)
    assert sum(1 for (v, _, i) in out if v == 0 and i) == n and opened == n


@settings(max_examples=300, deadline=None)
@given(st.integers(2, 12).flatmap(lambda n: st.tuples(
    st.just(n), st.lists(st.tuples(st.integers(0, 40), st.sampled_from([0.0, 100.0, 2000.0])), max_size=n // 2,
                         unique_by=lambda e: e[0]))), st.booleans())
def test_clearing_keeps_every_live_session_in_order_and_reachable(table_and_entries, in_place):
    # tiny directories wrap their probe runs past the last slot; after clearing, the live entries
    # must sit at the arena's front in their order, each reachable from its home without crossing
    # a free slot, pointed at by exactly one word that carries its tag
    n, entries = table_and_entries
    arena = np.zeros(max(1, len(entries)), SESSION)
    for i, (key, last) in enumerate(entries):
        u64, i32 = np.uint64, np.int32  # the kernel's column types
        tag = _tag(np.uint8(4), np.int16(6), i32(0), u64(0), u64(key), i32(key), i32(0), u64(0), u64(1000), i32(80))
        arena[i] = (0, key, 0, 1000, last, 0, 0, key, 80, 6, 4, 0, tag)
    directory = np.zeros(n, np.uint64)
    target = arena if in_place else np.zeros(n // 2, SESSION)
    kept = keep_live(arena, len(entries), 1000.0, 910.0, target, directory)
    live = [k for k, last in entries if last >= 100.0]
    assert kept == len(live)
    assert [int(t["slo"]) for t in target[:kept]] == live
    words = [int(w) for w in directory if w]
    assert sorted(w & 0xFFFFFFFF for w in words) == list(range(1, kept + 1))
    for s in range(n):
        if directory[s]:
            x = int(directory[s]) & 0xFFFFFFFF
            assert int(directory[s]) >> 32 == int(target[x - 1]["tag"]), f"slot {s} carries a wrong tag"
            k = home(np.uint64(target[x - 1]["tag"]), n)
            while k != s:
                assert directory[k], f"slot {s} is cut off from its home {k}"
                k = (k + 1) % n


def test_a_record_s_two_sessions_whose_probes_end_at_one_free_slot_both_stay_reachable():
    # a record between two ENIs opens one entry per ENI; when both keys' probes end at the same free
    # directory slot, the second must take the next one, or the first session is lost for the reply
    u64, i32 = np.uint64, np.int32

    def start(eni, sport):
        return home(_tag(np.uint8(4), np.int16(6), i32(eni), u64(0), u64(1), i32(sport), i32(eni), u64(0), u64(2),
                          i32(443)), 16)

    sport = next(p for p in range(1024, 65536) if start(0, p) == start(1, p))
    opener = {"time": 0.0, "fam": 4, "shi": 0, "slo": 1, "dhi": 0, "dlo": 2, "proto": 6, "sport": sport, "dport": 443,
              "se": 0, "de": 1, "egress_ok": True, "ingress_ok": True, "verdict": 0}
    reply = dict(opener, time=1.0, slo=2, dlo=1, sport=443, dport=sport, se=1, de=0, egress_ok=False,
                 ingress_ok=False, verdict=1)
    table = SessionTable(False, TIMEOUT, min_slots=4)  # two records of two entries: a directory of 16 slots
    out, opened = run_table([opener, reply], False, [], table)
    assert len(table.directory) == 16
    assert (out, opened) == reference([opener, reply]) == ([(0, False, False), (0, True, True)], 2)
