"""The live affect path's batching: consenting participants' hops go to prosody per
block of AFFECT_BLOCK_HOPS (not per tick), and a batched call never takes more than
AFFECT_MAX_HOPS hops, so the batched FFT's memory stays bounded when the engine runs
behind."""

from __future__ import annotations

import zlib

import numpy as np
import pytest
import webrtcvad
from numpy.testing import assert_array_equal

import engine.live as live
from engine.affect.prosody import ProsodyTracker
from engine.audio.decode import decode_file
from engine.config import LiveConfig, VadConfig
from engine.live import AFFECT_BLOCK_HOPS, AFFECT_MAX_HOPS, AFFECT_PHASES, LiveEngine
from engine.sample import sample_session
from engine.types import HOP
from tests.live_util import pcm_spec


def consenting_engine(n: int) -> tuple[LiveEngine, list[live.LiveParticipant]]:
    engine = LiveEngine(LiveConfig(), VadConfig())
    ps = []
    for i in range(n):
        h = engine.open_stream(pcm_spec(f"s{i // 8}", f"p{i}", affect_consent=True))
        ps.append(engine.sessions[h.session_id].participants[h.pid])
    return engine, ps


def give_audio(p: live.LiveParticipant, hops: int, seed: int) -> None:
    pcm = np.random.default_rng(seed).normal(0, 2000, (hops, HOP)).astype(np.int16)
    p.pipeline.audio.append((pcm, np.ones(hops, bool)))
    p.pipeline.audio_hops += hops
    p.pipeline.hops_done += hops


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Hops per affect_step call (the real function runs; this only records)."""
    sizes: list[int] = []
    real = live.affect_step

    def recording(streams, pcms, speech, end_hops):  # type: ignore[no-untyped-def]
        sizes.append(sum(m.shape[0] for m in speech))
        return real(streams, pcms, speech, end_hops)

    monkeypatch.setattr(live, "affect_step", recording)
    return sizes


def test_a_lagging_engine_feeds_prosody_in_bounded_batches(calls: list[int]) -> None:
    engine, ps = consenting_engine(24)
    for i, p in enumerate(ps):
        give_audio(p, 300, i)  # 3 s behind each: 7,200 hops in all
    engine._feed_affect(ps, force=False)
    assert sum(calls) == 24 * 300 and max(calls) <= AFFECT_MAX_HOPS and len(calls) >= 8
    for p in ps:
        assert p.affect is not None and p.affect.prosody.state.hops == 300
        assert not p.pipeline.audio and p.pipeline.audio_hops == 0


def test_hops_wait_for_their_block_and_participants_take_turns(calls: list[int]) -> None:
    """Live ticks bring two hops per participant; prosody gets each participant's hops
    once per block of AFFECT_BLOCK_HOPS, at a phase of its own, so no tick takes
    everyone's blocks at once; an ending epoch (forced) takes whatever is there."""
    engine, ps = consenting_engine(10)
    per_tick = []
    for tick in range(100):  # 2 s of 20 ms ticks
        for i, p in enumerate(ps):
            give_audio(p, 2, tick * 10 + i)
        before = sum(calls)
        engine._feed_affect(ps, force=False)
        per_tick.append(sum(calls) - before)
    assert per_tick[0] == 10 * 2  # the first tick starts everyone's blocks
    for p in ps:
        assert p.affect is not None
        fed = p.affect.prosody.state.hops
        phase = zlib.crc32(p.pid.encode()) % AFFECT_PHASES * (AFFECT_BLOCK_HOPS // AFFECT_PHASES)
        assert 200 - AFFECT_BLOCK_HOPS < fed <= 200 and (fed - phase) % AFFECT_BLOCK_HOPS <= 1
        assert p.pipeline.audio_hops == 200 - fed  # the rest waits, counted
    busy = {t % (AFFECT_BLOCK_HOPS // 2) for t, n in enumerate(per_tick) if n and t}
    assert len(busy) >= 3 and max(per_tick[1:]) < 10 * AFFECT_BLOCK_HOPS  # turns, not all
    engine._feed_affect(ps)  # an epoch ends: whatever is there
    assert all(p.affect is not None and p.affect.prosody.state.hops == 200 for p in ps)
    assert all(p.pipeline.audio_hops == 0 and not p.pipeline.audio for p in ps)


def test_a_block_reaches_prosody_in_order_as_one_run() -> None:
    """The pieces a block gathers tick by tick (two hops each) reach prosody as one run
    in the order they came: each participant's prosody ends as one call on all its audio
    leaves it (prosody does not depend on chunking). Real speech: the bundled sample's
    tracks, with webrtcvad's decisions as the speech flags."""
    infos, chunks = decode_file(str(sample_session()))
    tracks: list[list[np.ndarray]] = [[] for _ in infos]
    for i, chunk in chunks:
        tracks[i].append(chunk)
    engine, ps = consenting_engine(3)
    given = []
    for k, start_s in enumerate((8, 16, 26)):  # stretches where the track's owner speaks
        at = start_s * 16_000
        audio = np.concatenate(tracks[k])[at : at + 400 * HOP].reshape(-1, HOP)
        vad = webrtcvad.Vad(3)
        flags = np.array([vad.is_speech(h.tobytes(), 16_000) for h in audio])
        given.append((audio, flags))
    assert all(0.1 < f.mean() < 0.9 for _, f in given)  # speech and pauses
    for tick in range(200):
        for p, (audio, flags) in zip(ps, given, strict=True):
            piece = slice(2 * tick, 2 * tick + 2)
            p.pipeline.audio.append((audio[piece], flags[piece]))
            p.pipeline.audio_hops += 2
            p.pipeline.hops_done += 2
        engine._feed_affect(ps, force=False)
    engine._feed_affect(ps)  # an epoch's end: the rest
    for p, (audio, flags) in zip(ps, given, strict=True):
        ref = ProsodyTracker()
        ref.push(audio.reshape(-1), flags)
        assert p.affect is not None
        got = p.affect.prosody.state
        assert got.hops == ref.state.hops == 400
        assert got.voiced_hops == ref.state.voiced_hops > 0
        assert got.nuclei_count == ref.state.nuclei_count
        assert_array_equal(got.sums, ref.state.sums)
