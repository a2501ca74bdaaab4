"""A reconnect that comes before the tick which ends the old connection's epoch.

Why: a stream's close marks its epoch to end at the next tick. A reconnect landing
before that tick, with new frames already buffered, once had those frames drained into
the old epoch's closing pass, and the epoch ended in the middle of the new connection's
first utterance (speech was lost at the cut). The gRPC test of reconnects
(test_server_lifecycle.py) hit it only when the machine was loaded; this drives the
engine's ticks by hand so the ordering is certain.
"""

from __future__ import annotations

import pytest

from cli.replay import _Encoder
from engine.config import LiveConfig, VadConfig
from engine.ingest import Codec, Role, StreamSpec
from engine.live import LiveEngine, StreamHandle
from tests.live_util import pcm_spec, talk

PART = talk(("q", 0.3), ("v", 1.2), ("q", 0.5))  # 2 s, speech in the middle
FRAME = 320  # 20 ms at 16 kHz


def _push(engine: LiveEngine, h: StreamHandle, start_ms: int, frames: range) -> None:
    for k in frames:
        pcm = PART[k * FRAME : (k + 1) * FRAME]
        engine.push_frame(h, k, start_ms + 20 * k, None, pcm.tobytes())


async def _speaking_s(engine: LiveEngine, session: str, pid: str) -> float:
    view = await engine.end_session(session)
    [p] = [v for v in view.participants if v.participant_id == pid]
    return p.speaking_s


@pytest.mark.parametrize("cut_frames", [18, 22, 30])  # 0.06-0.3 s into the utterance
async def test_a_reconnect_before_the_old_epoch_ends_keeps_the_new_audio_whole(
    cut_frames: int,
) -> None:
    engine = LiveEngine(LiveConfig(jitter_ms=20, tick_ms=20), VadConfig(backend="webrtc"))
    try:
        frames = range(PART.shape[0] // FRAME)
        ref = engine.open_stream(pcm_spec("ref"))  # the same audio, alone: the expected figure
        _push(engine, ref, 0, frames)
        once = await _speaking_s(engine, "ref", ref.pid)
        assert once > 1.0

        first = engine.open_stream(pcm_spec("room"))
        _push(engine, first, 0, frames)
        await engine.flush_stream(first)  # the sender half-closed: all of it analysed
        engine.close_stream(first)  # its epoch ends at the next tick...
        second = engine.open_stream(pcm_spec("room"))  # ...but the participant is back first
        assert second.pid == first.pid
        cut = frames[:cut_frames]  # the first utterance (from 0.3 s) has begun
        _push(engine, second, 3000, cut)
        await engine._process()  # the tick that ends the old epoch
        _push(engine, second, 3000, frames[len(cut) :])
        await engine._process()
        twice = await _speaking_s(engine, "room", second.pid)
        assert twice == 2 * once  # both connections count, the second one whole
    finally:
        engine._executor.shutdown(wait=True)


def _spec_in(session: str, codec: str) -> StreamSpec:
    if codec == "pcm":
        return pcm_spec(session)
    return StreamSpec(
        session_id=session,
        participant_ref="ana",
        role=Role.PARTICIPANT,
        codec=Codec.OPUS,
        sample_rate=48_000,
        channels=1,
    )


def _send(engine: LiveEngine, h: StreamHandle, start_ms: int, payloads: list[bytes]) -> None:
    for k, payload in enumerate(payloads):
        engine.push_frame(h, k, start_ms + 20 * k, None, payload)


@pytest.mark.parametrize("formats", [("pcm", "opus"), ("opus", "pcm")], ids="->".join)
async def test_a_reconnect_in_another_format_analyses_both_connections(
    formats: tuple[str, str],
) -> None:
    """A reconnect may change codec. The old connection's frames still buffered when it
    comes are decoded in their own format (real Opus, through PyAV's libopus encoder and
    the engine's decoder), the new ones in theirs: each counts what it counts alone, and
    the new connection is not refused. Once the new decoder decoded the old frames: an
    Opus packet read as PCM, or PCM as Opus, failed and ended the *new* connection."""
    engine = LiveEngine(LiveConfig(jitter_ms=20, tick_ms=20), VadConfig(backend="webrtc"))
    try:
        payloads = {c: _Encoder(c).frames(PART, final=True) for c in formats}
        alone = {}
        for c in formats:
            h = engine.open_stream(_spec_in(f"alone-{c}", c))
            _send(engine, h, 0, payloads[c])
            alone[c] = await _speaking_s(engine, f"alone-{c}", h.pid)
            assert alone[c] > 1.0

        old, new = formats
        first = engine.open_stream(_spec_in("room", old))
        _send(engine, first, 0, payloads[old])  # all still buffered: no tick yet
        second = engine.open_stream(_spec_in("room", new))  # the participant is back
        assert second.pid == first.pid
        _send(engine, second, 3000, payloads[new])
        await engine._process()  # the old connection's frames, in their own format
        await engine._process()  # the new connection's
        assert engine.participant(second).error is None
        both = await _speaking_s(engine, "room", second.pid)
        assert both == round(alone[old] + alone[new], 2)
    finally:
        engine._executor.shutdown(wait=True)


@pytest.mark.parametrize("many", [False, True])
async def test_a_flush_right_after_a_reconnect_covers_the_new_connection(many: bool) -> None:
    """A sender closes, comes back before any tick has ended its old epoch, sends and
    half-closes: the flush (`flush_stream`, or `flush_streams` for a StreamNode call)
    must analyse the new connection's frames too, so that its final acknowledgement
    counts them. The old epoch ends in a pass of its own first; a flush of one pass
    once stopped there, and a loaded CI machine (no tick between close and reopen)
    reported 2000 ms processed of 3600 to a StreamNode client."""
    engine = LiveEngine(LiveConfig(jitter_ms=20, tick_ms=20), VadConfig(backend="webrtc"))
    try:
        frames = range(PART.shape[0] // FRAME)  # 100 frames, 2 s
        first = engine.open_stream(pcm_spec("room"))
        _push(engine, first, 0, frames)
        await engine.flush_stream(first)
        assert engine.processed_ms(first) == 2000
        engine.close_stream(first)  # its epoch ends at the next pass...
        second = engine.open_stream(pcm_spec("room"))  # ...and the participant is back first
        _push(engine, second, 2000, frames[:80])
        if many:
            await engine.flush_streams([second])
        else:
            await engine.flush_stream(second)
        assert engine.processed_ms(second) == 3600
        p = engine.participant(second)
        assert not p.needs_finish and not p.finish_carried and not len(p.jitter)
        view = await engine.end_session("room")
        [v] = view.participants
        assert v.speaking_s > 1.5  # both connections' speech
    finally:
        engine._executor.shutdown(wait=True)
