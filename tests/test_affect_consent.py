"""Voice-affect analysis runs only with consent: over a real gRPC server on loopback, a
participant who consents gets arousal, valence and cues (cues only with
`LiveConfig.affect_model` off); one who does not yields speaking signals only, and
nothing about their voice leaves the engine."""

from __future__ import annotations

import asyncio
import re

import numpy as np
import pytest
from live_util import Stream, by_id, end_session, frames

from engine.audio.decode import decode_file
from engine.sample import sample_session
from groupsense.v1 import groupsense_pb2 as pb

pytestmark = pytest.mark.timeout(180)

S = "consent-1"


def track(name: str) -> np.ndarray:
    tracks, chunks = decode_file(sample_session())
    k = [t.name for t in tracks].index(name)
    return np.concatenate([pcm for i, pcm in chunks if i == k])


async def send(ch, ref: str, pcm: np.ndarray, consent: bool) -> Stream:
    s = Stream(ch)
    cfg = pb.IngestRequest(
        config=pb.StreamConfig(
            session_id=S,
            participant_ref=ref,
            role=pb.ROLE_PARTICIPANT,
            codec=pb.CODEC_PCM16LE,
            sample_rate_hz=16000,
            channels=1,
            affect_consent=consent,
        )
    )
    assert await s.send(cfg, *frames(pcm))
    return s


async def test_affect_only_for_the_consenting(start_server, channel_to) -> None:
    server = await start_server()
    ch = channel_to(server)
    ana, ben = track("ana"), track("ben")
    yes, no = await asyncio.gather(send(ch, "ana", ana, True), send(ch, "ben", ben, False))
    for s in (yes, no):
        await s.finish()
    pid_yes, pid_no = await yes.pid(), await no.pid()
    engine = server.engine
    held = engine.sessions[S].participants
    assert held[pid_yes].affect is not None and held[pid_yes].affect.windows > 10
    assert held[pid_no].affect is None and not held[pid_no].pipeline.keep_audio
    summary = await end_session(ch, S)
    got = by_id(summary)
    assert got[pid_yes].affect and 0.0 <= got[pid_yes].arousal <= 1.0
    assert 0.0 <= got[pid_yes].valence <= 1.0
    # the one who did not consent: speaking signals, and no trace of their voice
    assert got[pid_no].speaking_s > 10
    assert not got[pid_no].affect
    assert got[pid_no].arousal == -1.0 and got[pid_no].valence == -1.0
    assert list(got[pid_no].cues) == []
    wire = summary.SerializeToString()
    for a in summary.alerts:
        if a.kind == "voice_cue":
            assert a.participant_id == pid_yes
    assert not re.search(rb"(cue|voice_cue|arousal)[^\n]*" + pid_no.encode(), wire)


async def test_withdrawn_consent_drops_what_was_held(start_server, channel_to) -> None:
    server = await start_server()
    ch = channel_to(server)
    ana = track("ana")
    first = await send(ch, "ana", ana[: 16000 * 60], True)
    await first.finish()
    pid = await first.pid()
    assert server.engine.sessions[S].participants[pid].affect is not None
    second = Stream(ch)
    cfg = pb.IngestRequest(
        config=pb.StreamConfig(
            session_id=S,
            participant_ref="ana",
            role=pb.ROLE_PARTICIPANT,
            codec=pb.CODEC_PCM16LE,
            sample_rate_hz=16000,
            channels=1,
            affect_consent=False,
        )
    )
    assert await second.send(cfg, *frames(ana[16000 * 60 : 16000 * 70], start_ms=61_000))
    await second.finish()
    assert server.engine.sessions[S].participants[pid].affect is None
    summary = await end_session(ch, S)
    p = by_id(summary)[pid]
    assert not p.affect and list(p.cues) == [] and p.arousal == -1.0


async def test_prosody_only_gives_cues_without_the_affect_model(
    start_server, channel_to, monkeypatch
) -> None:
    """`LiveConfig.affect_model` off: a consenting participant's prosody still runs and
    their windows are counted, but the model is never asked for, no window audio is held
    and no arousal or valence exists (-1 on the wire, as for no windows)."""
    import engine.affect.stream as affect_stream
    from engine.config import LiveConfig

    def no_model() -> None:
        raise AssertionError("the affect model was used with affect_model off")

    monkeypatch.setattr(affect_stream, "shared_model", no_model)
    server = await start_server(live=LiveConfig(affect_model=False))
    ch = channel_to(server)
    s = await send(ch, "ana", track("ana"), True)
    await s.finish()
    pid = await s.pid()
    held = server.engine.sessions[S].participants[pid].affect
    assert held is not None and not held.use_model
    assert held.windows > 10 and held.prosody.state.voiced_hops > 500
    assert held.window.buf.size == 0 and list(held.arousal) == []
    got = by_id(await end_session(ch, S))[pid]
    assert got.affect and got.speaking_s > 10
    assert got.arousal == -1.0 and got.valence == -1.0
    assert all(c.kind != "high_arousal" for c in got.cues)
