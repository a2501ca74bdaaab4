"""Analysis passes run one at a time, the loop's half included.

Why: a pass hands frames to the executor, then works on the results on the event loop,
reading what the executor wrote (the VAD's open segment, how far speech is final). A
flush (a sender half-closing) once started its executor call while the tick before it
was still in its loop half. That half then read the participant's speech as final up
to the end of the stream before the segment ending there had reached it, and the
speech in that segment was dropped for good: a shared microphone's last voice lost
about a second, once, in CI. Here the engine's ticks are driven by hand and the two
threads are stepped with events, so the ordering is certain.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

import pytest

from engine.config import LiveConfig, VadConfig
from engine.ingest import StreamSpec
from engine.live import LiveEngine, LiveSession, StreamHandle
from tests.live_util import pcm_spec, talk

FRAME = 320  # 20 ms at 16 kHz
AUDIO = talk(("q", 0.5), ("v", 2.0), ("q", 0.2), ("v", 1.5), ("q", 0.6))
TAIL = 40  # the last 0.8 s come with the flush: the last utterance is still open before
SLOW_S = 1.0  # the first executor call's delay: the test acts well inside it, even on a loaded box


def _spec(session: str, shared: bool) -> StreamSpec:
    return pcm_spec(session, shared_microphone=shared)


def _push(engine: LiveEngine, h: StreamHandle, frames: range) -> None:
    for k in frames:
        engine.push_frame(h, k, 20 * k, None, AUDIO[k * FRAME : (k + 1) * FRAME].tobytes())


async def _engine() -> LiveEngine:
    engine = LiveEngine(LiveConfig(jitter_ms=20, tick_ms=20), VadConfig(backend="webrtc"))
    await asyncio.get_running_loop().run_in_executor(engine._executor, engine._warm_up)
    return engine


async def _speaking(engine: LiveEngine, session: str) -> list[tuple[str, float, int]]:
    view = await engine.end_session(session)
    return sorted((p.participant_id, p.speaking_s, p.turns) for p in view.participants)


async def _reference(engine: LiveEngine, shared: bool) -> list[tuple[float, int]]:
    """The figures of the same audio sent in the same two parts, with nothing overlapping."""
    frames = range(AUDIO.shape[0] // FRAME)
    h = engine.open_stream(_spec("ref", shared))
    _push(engine, h, frames[:-TAIL])
    await engine._process()
    _push(engine, h, frames[-TAIL:])
    await engine.flush_stream(h)
    engine.close_stream(h)
    got = [(s, t) for _, s, t in await _speaking(engine, "ref")]
    assert sum(s for s, _ in got) > 3.0
    return got


class _Stepper:
    """Steps the two threads into the ordering that lost speech, if the engine allows it.

    Counts executor calls in flight. A call submitted while another is in flight (a
    flush queued behind a tick's call) starts only once that tick's loop half has
    begun (it reads the session clock first). The loop half's bleed step (which reads
    how far each participant's speech is final) records how many calls are in flight
    and, if one is, lets it run to its end first. An engine that runs passes one at a
    time never submits the second call while the first is in flight: nothing waits."""

    def __init__(self, engine: LiveEngine, monkeypatch: pytest.MonkeyPatch) -> None:
        self.in_flight = 0
        self.ended = 0
        self.seen: list[int] = []
        self.slow_first = True
        self.cond = threading.Condition()
        self.loop_half = threading.Event()
        submit = engine._executor.submit
        analyse = engine._analyse
        advance = engine._advance_bleed
        now_hop = LiveSession.now_hop

        def submit_(fn: Callable[..., Any], *args: Any) -> Future[Any]:
            with self.cond:
                beside = self.in_flight > 0
                self.in_flight += 1
            fut = submit(self._after_loop_half, fn, *args) if beside else submit(fn, *args)
            fut.add_done_callback(self._ended)
            return fut

        def analyse_(work: Any) -> None:
            if self.slow_first:  # the tick's call: the flush queues behind it
                self.slow_first = False
                time.sleep(SLOW_S)
            analyse(work)

        def now_hop_(session: LiveSession) -> int:
            if threading.current_thread() is threading.main_thread():
                self.loop_half.set()
            return now_hop(session)

        def advance_(*args: Any) -> None:
            with self.cond:
                self.seen.append(self.in_flight)
                target = self.ended + self.in_flight
                self.cond.wait_for(lambda: self.ended >= target, timeout=10)
            advance(*args)

        monkeypatch.setattr(engine._executor, "submit", submit_)
        monkeypatch.setattr(engine, "_analyse", analyse_)
        monkeypatch.setattr(engine, "_advance_bleed", advance_)
        monkeypatch.setattr(LiveSession, "now_hop", now_hop_)

    def _after_loop_half(self, fn: Callable[..., Any], *args: Any) -> Any:
        self.loop_half.wait(10)
        return fn(*args)

    def _ended(self, _: Future[Any]) -> None:
        with self.cond:
            self.in_flight -= 1
            self.ended += 1
            self.cond.notify_all()


@pytest.mark.parametrize("shared", [False, True], ids=["headset", "shared-mic"])
async def test_a_flush_during_a_tick_waits_for_the_whole_tick(
    shared: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    frames = range(AUDIO.shape[0] // FRAME)
    head, tail = frames[:-TAIL], frames[-TAIL:]
    engine = await _engine()
    try:
        expected = await _reference(engine, shared)

        h = engine.open_stream(_spec("room", shared))
        _push(engine, h, head)
        steps = _Stepper(engine, monkeypatch)
        tick = asyncio.ensure_future(engine._process())
        await asyncio.sleep(0.05)  # the tick's executor call is running
        _push(engine, h, tail)
        await engine.flush_stream(h)  # the sender half-closes meanwhile
        await tick
        engine.close_stream(h)
        got = await _speaking(engine, "room")
        assert steps.seen and not any(steps.seen), steps.seen  # no call ran beside a loop half
        assert [(s, t) for _, s, t in got] == expected
    finally:
        engine._executor.shutdown(wait=True)


async def test_a_pass_whose_caller_is_cancelled_still_ends(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An RPC that goes away mid-flush must not free the next pass to start beside its
    executor call: the pass goes on, and the next one waits for it."""
    engine = await _engine()
    try:
        expected = await _reference(engine, False)
        h = engine.open_stream(_spec("room", False))
        _push(engine, h, range(AUDIO.shape[0] // FRAME))
        steps = _Stepper(engine, monkeypatch)
        flush = asyncio.ensure_future(engine.flush_stream(h))
        await asyncio.sleep(0.05)
        flush.cancel()
        with pytest.raises(asyncio.CancelledError):
            await flush
        assert engine._running  # the pass itself goes on
        await engine._process()  # waits for it
        assert not engine._running and steps.in_flight == 0
        engine.close_stream(h)
        assert [(s, t) for _, s, t in await _speaking(engine, "room")] == expected
        assert steps.seen and not any(steps.seen), steps.seen
    finally:
        engine._executor.shutdown(wait=True)


async def test_views_asked_for_between_ticks_wait_for_the_pass(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A view reads the VAD's open segment and the timeline the executor writes: one
    asked for by a new subscriber, ListSessions or the dashboard waits for the pass in
    progress, like the tick's own snapshots."""
    engine = await _engine()
    try:
        h = engine.open_stream(_spec("room", False))
        _push(engine, h, range(AUDIO.shape[0] // FRAME))
        steps = _Stepper(engine, monkeypatch)
        beside: list[int] = []
        view = engine._view

        def view_(*args: Any, **kw: Any) -> Any:
            beside.append(steps.in_flight)
            return view(*args, **kw)

        monkeypatch.setattr(engine, "_view", view_)
        tick = asyncio.ensure_future(engine._process())
        await asyncio.sleep(0.05)  # the tick's executor call is running (SLOW_S)
        assert steps.in_flight == 1
        one = await engine.view("room")
        [listed] = await engine.list_sessions()
        first = await anext(engine.subscribe("room"))
        await tick
        assert beside == [0, 0, 0]
        # every frame: in order, they follow the first one out of the jitter buffer
        assert one.session_ms == listed.session_ms == first.session_ms == AUDIO.shape[0] // 16
    finally:
        engine._executor.shutdown(wait=True)
