"""The live affect path's batching: consenting participants' hops go to prosody per
100 ms (not per tick), and a batched call never takes more than AFFECT_MAX_HOPS hops,
so the batched FFT's memory stays bounded when the engine runs behind."""

from __future__ import annotations

import numpy as np
import pytest

import engine.live as live
from engine.config import LiveConfig, VadConfig
from engine.ingest import Codec, Role, StreamSpec
from engine.live import AFFECT_BLOCK_HOPS, AFFECT_MAX_HOPS, LiveEngine
from engine.types import HOP


def consenting_engine(n: int) -> tuple[LiveEngine, list[live.LiveParticipant]]:
    engine = LiveEngine(LiveConfig(), VadConfig())
    ps = []
    for i in range(n):
        spec = StreamSpec(
            session_id=f"s{i // 8}",
            participant_ref=f"p{i}",
            role=Role.PARTICIPANT,
            codec=Codec.PCM16LE,
            sample_rate=16_000,
            channels=1,
            affect_consent=True,
        )
        h = engine.open_stream(spec)
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


def test_hops_wait_for_100_ms_unless_forced(calls: list[int]) -> None:
    engine, ps = consenting_engine(2)
    give_audio(ps[0], AFFECT_BLOCK_HOPS - 2, 0)
    give_audio(ps[1], AFFECT_BLOCK_HOPS, 1)
    engine._feed_affect(ps, force=False)
    assert calls == [AFFECT_BLOCK_HOPS]  # only the one with 100 ms
    assert len(ps[0].pipeline.audio) == 1
    give_audio(ps[0], 2, 2)  # now 100 ms, in two blocks: one call, blocks merged
    engine._feed_affect(ps, force=False)
    assert calls == [AFFECT_BLOCK_HOPS, AFFECT_BLOCK_HOPS]
    give_audio(ps[0], 3, 3)
    engine._feed_affect([ps[0]])  # an epoch ends: whatever is there
    assert calls[-1] == 3 and ps[0].affect is not None
    assert ps[0].affect.prosody.state.hops == AFFECT_BLOCK_HOPS + 3
