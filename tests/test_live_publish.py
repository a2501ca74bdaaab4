"""Periodic snapshots keep their configured rate, and sessions take turns.

Why: the engine checks for due snapshots once per tick. Restarting the interval from
the tick that sent a snapshot made a 50 ms interval at 20 ms ticks into 60 ms, adding
about 10 ms to every reader's latency, and sessions opened together built all their
snapshots in the same tick, a CPU spike every third tick. Here `_publish_due` is
called at tick times by hand, so the count is exact and the test cannot be flaky.
"""

from __future__ import annotations

import itertools
import zlib

from engine.config import LiveConfig, VadConfig
from engine.live import PUBLISH_PHASES, LiveEngine
from tests.live_util import pcm_spec

TICK_S = 0.02
INTERVAL_S = 0.05


def _engine_with(sessions: list[str]) -> LiveEngine:
    engine = LiveEngine(
        LiveConfig(jitter_ms=20, tick_ms=20, snapshot_interval_s=INTERVAL_S),
        VadConfig(backend="webrtc"),
    )
    for sid in sessions:
        engine.open_stream(pcm_spec(sid))
    for s in engine.sessions.values():
        s.events.clear()  # "joined": published at once; here only the periodic ones count
    return engine


def _ticks(engine: LiveEngine, seconds: float, start: float = 1000.0) -> dict[str, list[int]]:
    """Each session's publishing ticks over `seconds` of ticks at TICK_S."""
    out: dict[str, list[int]] = {sid: [] for sid in engine.sessions}
    for k in range(round(seconds / TICK_S)):
        before = {sid: s.seq for sid, s in engine.sessions.items()}
        engine._publish_due(start + k * TICK_S)
        for sid, s in engine.sessions.items():
            assert s.seq - before[sid] in (0, 1)
            if s.seq != before[sid]:
                out[sid].append(k)
    return out


def _phase(sid: str) -> int:
    return zlib.crc32(sid.encode()) % PUBLISH_PHASES


def test_periodic_snapshots_keep_the_configured_rate() -> None:
    engine = _engine_with(["rate"])
    ticks = _ticks(engine, 10.0)["rate"]
    # 10 s at one per 50 ms: 200, give or take the first one's phase (60 ms apart: 167)
    assert 199 <= len(ticks) <= 201
    gaps = {b - a for a, b in itertools.pairwise(ticks)}
    assert gaps == {2, 3}  # 40 or 60 ms: each due time rounded up to the next tick


def test_events_publish_at_once_without_moving_the_schedule() -> None:
    engine = _engine_with(["events"])
    s = engine.sessions["events"]
    plain = _ticks(_engine_with(["events"]), 2.0)["events"]
    published = []
    for k in range(round(2.0 / TICK_S)):
        if k % 7 == 0:
            s.events.append("someone started speaking")
        before = s.seq
        engine._publish_due(1000.0 + k * TICK_S)
        if s.seq != before:
            published.append(k)
    assert {k for k in range(100) if k % 7 == 0} <= set(published)
    assert set(plain) <= set(published)  # the periodic ones all still came


def test_sessions_opened_together_take_turns() -> None:
    ids = [f"group-{i}" for i in range(24)]
    engine = _engine_with(ids)
    assert len({_phase(sid) for sid in ids}) >= 8  # the ids spread over the phases
    ticks = _ticks(engine, 1.0)
    per_tick = [sum(k in t for t in ticks.values()) for k in range(round(1.0 / TICK_S))]
    # 24 sessions, each every 2.5 ticks on average: about 9.6 per tick. All in one tick
    # (as when every session's interval started at the same moment) would be 24.
    assert max(per_tick) <= 16
    assert sum(per_tick) == sum(len(t) for t in ticks.values())


def test_a_long_stall_does_not_bring_a_burst() -> None:
    engine = _engine_with(["stall"])
    s = engine.sessions["stall"]
    engine._publish_due(1000.0)
    engine._publish_due(1000.0 + INTERVAL_S)  # surely due by now
    seq = s.seq
    engine._publish_due(1005.0)  # a 5 s stall: one snapshot, then the normal rate
    engine._publish_due(1005.0 + TICK_S)
    engine._publish_due(1005.0 + 2 * TICK_S)
    assert s.seq == seq + 1
    engine._publish_due(1005.0 + 3 * TICK_S)
    assert s.seq == seq + 2


async def test_a_session_nobody_watches_builds_no_snapshots(monkeypatch) -> None:
    """Its schedule runs (sequence numbers count on), but no view is built until someone
    subscribes; the subscriber's first view is current, and the periodic ones follow."""
    engine = _engine_with(["quiet"])
    built = []
    view = engine._view
    monkeypatch.setattr(engine, "_view", lambda *a, **k: built.append(1) or view(*a, **k))
    try:
        ticks = iter(1000.0 + k * TICK_S for k in itertools.count())
        for _ in range(50):
            engine._publish_due(next(ticks))
        assert not built and engine.sessions["quiet"].seq >= 19
        views = engine.subscribe("quiet")
        first = await anext(views)
        assert len(built) == 1 and first.seq == engine.sessions["quiet"].seq
        for _ in range(10):
            engine._publish_due(next(ticks))
        assert len(built) >= 4
        later = await anext(views)
        assert later.seq > first.seq
        await views.aclose()
        count = len(built)
        for _ in range(50):
            engine._publish_due(next(ticks))
        assert len(built) == count  # unsubscribed: none built again
    finally:
        engine._executor.shutdown(wait=True)
