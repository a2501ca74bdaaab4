"""The usual PCM frames of a tick are placed for all streams at once (`_place_pcm`).

Why: decoding and placing 16 kHz mono PCM frame by frame cost about 6 us a frame, a
tenth of the engine's time with PCM. The frames that `_place`'s first branch would take
as they are (whole hops, right after the last) now go into one array per tick with one
copy. These tests hold it to the frame-by-frame path: the same figures and cues from the
same frames, including frames that are not whole hops, losses, reordering and a stream
at another rate, which keep the old path.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from engine.config import LiveConfig, VadConfig
from engine.live import LiveEngine, LiveParticipant
from engine.pipeline import ParticipantPipeline, finish, step
from engine.privacy import Pseudonymizer
from engine.types import SessionView
from engine.vad import make_backend
from tests.live_util import RATE, pcm_spec, talk

SECRET = b"test_live_pcm_batch: the same pseudonyms in both engines"


def _frames(audio: np.ndarray, sizes: Iterator[int]) -> list[tuple[int, bytes]]:
    """(capture ms, payload) of `audio` cut into frames of the given sample counts."""
    out, at = [], 0
    while at < audio.shape[0]:
        n = next(sizes)
        out.append((at * 1000 // RATE, audio[at : at + n].tobytes()))
        at += n
    return out


def _streams() -> dict[str, tuple[dict[str, Any], list[tuple[int, int, bytes]]]]:
    """Per participant ref: StreamSpec overrides and its frames (capture ms, seq, bytes)
    in send order."""
    a = talk(("q", 0.3), ("v", 1.5), ("q", 1.2), ("v", 0.8), ("q", 0.6))
    b = talk(("q", 1.6), ("v", 1.2), ("q", 1.3), ("v", 0.3))
    c = talk(("v", 0.9), ("q", 1.4), ("v", 1.1), ("q", 1.0))
    d = talk(("q", 0.7), ("v", 1.8), ("q", 1.9))
    streams: dict[str, tuple[dict[str, Any], list[tuple[int, int, bytes]]]] = {}

    def seq(frames: list[tuple[int, bytes]]) -> list[tuple[int, int, bytes]]:
        return [(ms, k, payload) for k, (ms, payload) in enumerate(frames)]

    streams["ana"] = ({"affect_consent": True}, seq(_frames(a, iter(lambda: 320, 0))))
    streams["ben"] = ({}, seq(_frames(b, iter(lambda: 320, 0))))  # no consent
    # 25 ms frames are not whole hops: the framer holds a partial hop after most
    odd = iter([400, 320, 320, 400, 480] * 1000)
    streams["cai"] = ({"affect_consent": True}, seq(_frames(c, odd)))
    # losses (a bridged one and a long one), a frame late within the window, a duplicate
    lossy = seq(_frames(d, iter(lambda: 320, 0)))
    lossy = [f for f in lossy if f[1] not in (30, *range(80, 100))]
    lossy[50], lossy[51] = lossy[51], lossy[50]
    lossy.insert(60, lossy[59])
    streams["dev"] = ({"affect_consent": True}, lossy)
    # 48 kHz: resampled by its decoder, so never placed with the 16 kHz streams
    e = np.repeat(talk(("v", 1.0), ("q", 1.5), ("v", 1.0)), 3)
    streams["eve"] = (
        {"affect_consent": True, "sample_rate": 48_000},
        seq(_frames(e, iter(lambda: 960, 0))),
    )
    return streams


async def _run(batched: bool, monkeypatch: pytest.MonkeyPatch) -> tuple[SessionView, int]:
    """The session's final view, with `_place_pcm` on (batched) or passing every stream
    to `_place`; and how many frames went through `_place`."""
    placed_one_by_one = 0
    place = LiveEngine._place

    def counting(self: LiveEngine, p: LiveParticipant, *args: object) -> None:
        nonlocal placed_one_by_one
        placed_one_by_one += 1
        place(self, p, *args)  # type: ignore[arg-type]

    with monkeypatch.context() as m:
        m.setattr(LiveEngine, "_place", counting)
        if not batched:
            m.setattr(LiveEngine, "_place_pcm", staticmethod(lambda work: list(work)))
        engine = LiveEngine(
            LiveConfig(tick_ms=20, jitter_ms=60),
            VadConfig(backend="webrtc"),
            pseudonymizer=Pseudonymizer(SECRET),
        )
        try:
            streams = _streams()
            handles = {
                ref: engine.open_stream(dataclasses.replace(pcm_spec("room", ref), **kw))
                for ref, (kw, _) in streams.items()
            }
            longest = max(len(frames) for _, frames in streams.values())
            for k in range(longest):
                for ref, (_, frames) in streams.items():
                    if k < len(frames):
                        ms, sq, payload = frames[k]
                        engine.push_frame(handles[ref], sq, ms, None, payload)
                await engine._process()
            view = await engine.end_session("room")
        finally:
            engine._executor.shutdown(wait=True)
            await asyncio.sleep(0)
    return view, placed_one_by_one


async def test_placing_at_once_gives_what_placing_frame_by_frame_gives(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    batched, one_by_one_left = await _run(True, monkeypatch)
    reference, one_by_one_all = await _run(False, monkeypatch)
    assert batched == reference
    # not vacuous: everyone spoke, the consenting ones have affect figures, and most
    # frames took the new path while the unusual ones (above) kept the old one
    by_ref = {p.participant_id: p for p in batched.participants}
    assert len(by_ref) == 5 and all(p.speaking_s > 0.2 for p in by_ref.values())
    assert sum(p.affect for p in by_ref.values()) == 4
    assert one_by_one_left < one_by_one_all // 2
    assert one_by_one_left > 300  # cai's partial hops, dev's losses, eve's 48 kHz


async def test_consenting_audio_never_shares_an_array_with_the_rest() -> None:
    """A stream's hops live as long as any view of their array: the affect path keeps
    consenting participants' hops for up to a block, and must not keep another's."""
    engine = LiveEngine(LiveConfig(tick_ms=20, jitter_ms=20), VadConfig(backend="webrtc"))
    try:
        yes = [engine.open_stream(pcm_spec("room", f"y{i}", affect_consent=True)) for i in range(2)]
        no = [engine.open_stream(pcm_spec("room", f"n{i}")) for i in range(2)]
        audio = talk(("v", 0.2))
        for k in range(3):  # past each stream's first frame, which `_place` takes
            for h in yes + no:
                engine.push_frame(h, k, 20 * k, None, audio[320 * k : 320 * (k + 1)].tobytes())
            await engine._process()
        ps = [engine.participant(h) for h in yes + no]
        at = [p.next_sample for p in ps]
        assert min(at) > 0
        six_hops = audio[640:1600].tobytes()
        work = [(p, [(a // 16, 9, six_hops)], False) for p, a in zip(ps, at, strict=True)]
        assert LiveEngine._place_pcm(work) == []  # all of them placed at once

        def buffer(hops: np.ndarray) -> object:
            while isinstance(hops.base, np.ndarray):
                hops = hops.base
            return hops.base

        roots = [buffer(p.pipeline.pending[-1]) for p in ps]
        assert all(p.pipeline.pending[-1].shape == (6, 160) for p in ps)
        assert roots[0] is roots[1] and len(roots[0]) == 2 * 1920  # type: ignore[arg-type]
        assert roots[2] is roots[3] and roots[2] is not roots[0]
        assert all(p.next_sample == a + 960 for p, a in zip(ps, at, strict=True))
    finally:
        engine._executor.shutdown(wait=True)
        await asyncio.sleep(0)


def test_whole_hops_given_as_they_are_equal_hops_through_the_framer() -> None:
    """`feed_hops` is `feed` without the framer when it holds nothing: the same queue,
    the same counts, and a partial hop fed after it continues the same stream."""
    cfg = VadConfig(backend="webrtc")
    backend = make_backend(cfg)
    a, b = (ParticipantPipeline.open(n, backend, cfg) for n in "ab")
    audio = talk(("q", 0.3), ("v", 0.8), ("q", 0.9))
    whole = audio[: 160 * 60]
    a.feed(whole.copy(), owned=True)
    b.feed_hops(whole.copy().reshape(-1, 160))
    for x in (a, b):
        x.feed(audio[160 * 60 :])
        step(backend, [x])
        finish(backend, x)
    assert (a.hops_in, a.framer.hops_emitted) == (b.hops_in, b.framer.hops_emitted)
    assert a.hops_in == -(-audio.shape[0] // 160)
    assert a.segments == b.segments and a.segments
