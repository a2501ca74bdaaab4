"""Signal updates on a realistic 90-minute, 8-participant segment list, on one core.

Why: the live engine recomputes a session's figures for every snapshot (each second,
or on every speaking change), over everything said so far, so the cost at minute 90
is what bounds sessions per core. Segments are the bundled sample's labelled speech
(4 voices, 179 s) plus the same 4 delayed by 37 s (circularly), looped to 90 min,
as in bench/make_long_session.py: 8 participants, realistic turn-taking.

    pytest bench/bench_signals.py --benchmark-only
"""

from __future__ import annotations

from functools import cache

import pytest

from engine.config import SignalConfig
from engine.sample import sample_truth
from engine.signals import SignalTracker, session_signals, speaking_figures
from engine.types import HOPS_PER_SECOND, SpeechSegment

MINUTES = 90
SHIFT_S = 37.0


@cache
def segments() -> dict[str, list[SpeechSegment]]:
    """8 participants' speech over MINUTES, in hops, sorted and non-overlapping per person."""
    truth = sample_truth()
    period = truth["duration_s"]
    total = MINUTES * 60.0
    out: dict[str, list[SpeechSegment]] = {}
    for shift, suffix in ((0.0, ""), (SHIFT_S, "-b")):
        for p in truth["participants"]:
            segs = []
            base = 0.0
            while base < total:
                for a, b in p["segments"]:
                    a, b = (a + shift) % period, (b + shift) % period
                    if b <= a:  # wrapped: keep the part before the period's end
                        b = period
                    start, end = (
                        round((base + a) * HOPS_PER_SECOND),
                        round((base + b) * HOPS_PER_SECOND),
                    )
                    if end > start and end <= total * HOPS_PER_SECOND:
                        segs.append(SpeechSegment(start, end))
                base += period
            segs.sort(key=lambda s: s.start)
            merged: list[SpeechSegment] = []
            for s in segs:
                if merged and s.start <= merged[-1].end:
                    merged[-1] = SpeechSegment(merged[-1].start, max(merged[-1].end, s.end))
                else:
                    merged.append(s)
            out[p["name"] + suffix] = merged
    return out


def roles() -> dict[str, str]:
    return {pid: "facilitator" if pid == "facilitator" else "participant" for pid in segments()}


NOW = MINUTES * 60 * HOPS_PER_SECOND


def _info(benchmark: pytest.FixtureRequest, **extra: object) -> None:
    segs = segments()
    benchmark.extra_info.update(  # type: ignore[attr-defined]
        participants=len(segs),
        segments=sum(len(s) for s in segs.values()),
        minutes=MINUTES,
        **extra,
    )


def test_speaking_figures_90min(benchmark) -> None:  # type: ignore[no-untyped-def]
    _info(benchmark)
    figs = benchmark(speaking_figures, segments(), NOW)
    assert abs(sum(f.share for f in figs.values()) - 1) < 1e-9


def test_session_signals_90min(benchmark) -> None:  # type: ignore[no-untyped-def]
    _info(benchmark)
    sig = benchmark(session_signals, segments(), NOW, SignalConfig(), roles())
    assert sig.participants.keys() == segments().keys()


def _tracker_until(now: int) -> SignalTracker:
    t = SignalTracker(SignalConfig())
    for pid, role in roles().items():
        t.add_participant(pid, role)
    for pid, segs in segments().items():
        t.add_segments(pid, [s for s in segs if s.end <= now])
        t.settle(pid, now)
    t.advance()
    return t


def test_tracker_snapshot_at_90min(benchmark) -> None:  # type: ignore[no-untyped-def]
    """One live snapshot's figures at minute 90 (what each published snapshot costs)."""
    tracker = _tracker_until(NOW)
    _info(benchmark)
    sig = benchmark(tracker.snapshot, NOW, {})
    assert len(sig.participants) == 8


def test_tracker_live_90min_at_1hz(benchmark) -> None:  # type: ignore[no-untyped-def]
    """The whole live life of a session: segments arrive as they close, settle/advance
    every second and one snapshot a second, for 90 minutes (5400 updates)."""
    segs = segments()

    def run() -> int:
        t = SignalTracker(SignalConfig())
        for pid, role in roles().items():
            t.add_participant(pid, role)
        cursor = dict.fromkeys(segs, 0)
        snaps = 0
        for sec in range(1, MINUTES * 60 + 1):
            now = sec * HOPS_PER_SECOND
            for pid, ss in segs.items():
                i = cursor[pid]
                j = i
                while j < len(ss) and ss[j].end <= now:
                    j += 1
                if j > i:
                    t.add_segments(pid, ss[i:j])
                    cursor[pid] = j
                t.settle(pid, now)
            t.advance()
            t.snapshot(now, {})
            snaps += 1
        return snaps

    _info(benchmark, updates=MINUTES * 60)
    assert benchmark.pedantic(run, rounds=1, iterations=1) == MINUTES * 60
