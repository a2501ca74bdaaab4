"""Silero VAD with a consenting participant, over a real server on loopback.

Silero scores 32 ms chunks, so a hop's speech probability often arrives a tick after
its audio. The affect path pairs each hop with its own probability; it once paired a
tick's audio with that tick's (shorter) probabilities, and every tick crashed. A tick
that fails for any reason is logged and the engine ticks on.
"""

from __future__ import annotations

import asyncio
import logging

import numpy as np
import pytest
from live_util import Stream, by_id, config, end_session, frames, talk

from engine.audio.decode import decode_file
from engine.config import LiveConfig, VadConfig
from engine.sample import sample_session
from groupsense.v1 import groupsense_pb2 as pb

pytestmark = pytest.mark.timeout(120)

SPEECH = talk(("q", 0.3), ("v", 2.5), ("q", 0.4), ("v", 2.5), ("q", 0.4), ("v", 2.5), ("q", 0.5))


def real_speech(seconds: int) -> np.ndarray:
    """The sample session's first speaker (silero takes synthetic tones for noise)."""
    _, chunks = decode_file(sample_session())
    pcm = np.concatenate([c for i, c in chunks if i == 0])
    return pcm[: seconds * 16000]


def consenting(session: str, ref: str) -> pb.IngestRequest:
    req = config(session, ref)
    req.config.affect_consent = True
    return req


async def test_silero_with_affect_consent_analyses(start_server, channel_to, caplog) -> None:
    server = await start_server(vad=VadConfig(backend="silero"))
    ch = channel_to(server)
    s = Stream(ch)
    with caplog.at_level(logging.ERROR, logger="groupsense.live"):
        assert await s.send(consenting("silero-affect", "ana"), *frames(real_speech(40)))
        await s.finish()
        code, details = await s.status()
    assert code.name == "OK", details
    pid = await s.pid()
    p = server.engine.sessions["silero-affect"].participants[pid]
    summary = await end_session(ch, "silero-affect")
    got = by_id(summary)[pid]
    assert got.speaking_s > 5.0
    assert p.affect is not None and p.affect.windows >= 2  # 2 s windows of speech
    assert got.affect and 0.0 <= got.arousal <= 1.0
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_a_failed_tick_is_logged_and_the_engine_goes_on(
    start_server, channel_to, caplog, monkeypatch
) -> None:
    """An impossible fault (a bug in a stage) is simulated: the first analysis raises."""
    server = await start_server(live=LiveConfig(tick_ms=20))
    engine = server.engine
    real = engine._analyse
    calls = [0]

    def flaky(work):  # type: ignore[no-untyped-def]
        calls[0] += 1
        if calls[0] == 1:
            raise RuntimeError("boom in a stage")
        return real(work)

    monkeypatch.setattr(engine, "_analyse", flaky)
    ch = channel_to(server)
    with caplog.at_level(logging.ERROR, logger="groupsense.live"):
        s = Stream(ch)
        assert await s.send(config("flaky", "ben"), *frames(SPEECH[:16000]))
        await asyncio.sleep(0.3)
        assert await s.send(*frames(SPEECH[16000:], start_ms=1000, start_seq=50))
        code = await s.finish()
    assert code.name == "OK", await s.status()
    assert calls[0] > 2  # it kept ticking after the failure
    assert engine._tick_task is not None and not engine._tick_task.done()
    assert any("tick failed" in r.getMessage() for r in caplog.records)
    assert s.acks[-1].processed_ms >= 7000
