"""The live shared-microphone stage (engine/diarize/live.py) without a server: labels and
cleaned speech arriving in any chunks give the segments `segments_by_speaker` gives on
the whole session (what the offline path does), and audio gaps are zeros, not speech."""

from __future__ import annotations

import numpy as np
import pytest

from engine.diarize.embed import SpeakerEmbedder
from engine.diarize.live import SharedMicStream
from engine.diarize.online import Labels, SharedMicDiarizer, segments_by_speaker
from engine.types import HOP, SpeechSegment


class _NoEmbedder(SpeakerEmbedder):
    """The loop side never embeds; this keeps the test free of the ONNX model."""

    def __init__(self) -> None:
        pass


def _runs(rng: np.random.Generator, n: int, values: list[int]) -> np.ndarray:
    out = np.empty(n, np.int8)
    i = 0
    while i < n:
        k = int(rng.integers(5, 80))
        out[i : i + k] = rng.choice(values)
        i += k
    return out


def _segments(mask: np.ndarray, offset: int) -> list[SpeechSegment]:
    edges = np.flatnonzero(np.diff(np.concatenate([[0], mask.astype(np.int8), [0]])))
    return [
        SpeechSegment(offset + int(a), offset + int(b))
        for a, b in zip(edges[::2], edges[1::2], strict=True)
    ]


@pytest.mark.parametrize("bleed", [False, True])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_any_chunking_gives_the_whole_session_segments(bleed: bool, seed: int) -> None:
    rng = np.random.default_rng(seed)
    n, base = 3000, 137  # the stream's first audio at session hop 137
    labels = np.stack([_runs(rng, n, [-1, 0, 1, 2]), _runs(rng, n, [-1, -1, -1, 1])], axis=1)
    labels[labels[:, 0] == -1, 1] = -1
    cleaned = _runs(rng, n, [0, 1, 1, 1]).astype(bool) if bleed else np.ones(n, bool)
    want = segments_by_speaker(np.where(cleaned[:, None], labels, np.int8(-1)))
    want = {k: [SpeechSegment(s.start + base, s.end + base) for s in v] for k, v in want.items()}

    mic = SharedMicStream("p-0123456789", SharedMicDiarizer(_NoEmbedder()), bleed)
    clean_segs = _segments(cleaned, base)
    got: dict[str, list[SpeechSegment]] = {}
    settled: dict[str, int] = {}
    at = clean_at = 0
    while at < n or clean_at < n:
        if at < n:  # labels commit in chunks of any size
            k = int(rng.integers(1, 120))
            mic.outbox.append(Labels(base + at, labels[at : at + k]))
            at = min(at + k, n)
        if bleed and clean_at < n:  # the bleed stage settles on its own schedule
            clean_at = min(clean_at + int(rng.integers(1, 150)), n)
            hop = base + clean_at
            ready = [s for s in clean_segs if s.end <= hop]
            mic.add_cleaned(ready)
            clean_segs = clean_segs[len(ready) :]
            # an open cleaned segment holds the settle point at its start
            mic.settle_cleaned(min([hop, *(s.start for s in clean_segs[:1] if s.start < hop)]))
        else:
            clean_at = n
        up = mic.advance()
        for name, segs in up.segments.items():
            for s in segs:  # in order, never before what was already settled
                assert s.end > s.start and s.start >= settled.get(name, 0)
            got.setdefault(name, []).extend(segs)
        for name, hop in up.settled.items():
            assert hop >= settled.get(name, 0)
            settled[name] = hop
        opened = mic.open_segments()
        for name, seg in opened.items():
            if seg is not None:
                assert seg.end > seg.start and seg.start >= max(
                    (s.end for s in got.get(name, [])), default=0
                )
    mic.add_cleaned(clean_segs)
    for name, segs in mic.advance(final=True).segments.items():
        got.setdefault(name, []).extend(segs)
    assert mic.names[: len(want)] == [f"p-0123456789/{'ABC'[k]}" for k in range(len(want))]
    for k, segs in want.items():
        assert got[mic.names[k]] == segs, k


def test_take_fills_gaps_with_silence() -> None:
    mic = SharedMicStream("p-0123456789", SharedMicDiarizer(_NoEmbedder()), False)
    a = np.full((50, HOP), 7, np.int16)
    b = np.full((30, HOP), 9, np.int16)
    mic.add_audio(100, a)  # hops 100-150
    mic.add_audio(170, b)  # lost audio at 150-170, then 170-200
    mic.add_vad([SpeechSegment(110, 160), SpeechSegment(175, 190)])
    mic.mark(180, None, ending=False)
    hops, speech = mic.take()
    assert hops.shape == (80, HOP)  # from the first audio (diarizer hop 0) to the final hop
    assert (hops[:50] == 7).all() and (hops[50:70] == 0).all() and (hops[70:] == 9).all()
    want = np.zeros(80, bool)
    want[10:60] = True
    want[75:80] = True
    np.testing.assert_array_equal(speech, want)
    # an open segment counts as speech up to its end, which also moves the final hop
    mic.diarizer.state.hops_in = 80  # as if pushed
    mic.mark(185, SpeechSegment(175, 195), ending=False)
    hops, speech = mic.take()
    assert hops.shape == (15, HOP) and speech.all() and (hops == 9).all()


def test_state_stays_bounded_over_a_long_stream() -> None:
    """Half an hour in 100 ms ticks (speech in short bursts so the encoder runs rarely):
    the audio held, the VAD segments held and the loop side's labels stay a few ticks'
    worth, and every hop gets a final label within the latency."""
    from engine.diarize.live import step_mics

    embedder = SpeakerEmbedder()
    mic = SharedMicStream("p-0123456789", SharedMicDiarizer(embedder), False)
    rng = np.random.default_rng(3)
    tick, hop, worst_held = 10, 0, 0
    for i in range(18_000):  # 30 min
        block = rng.integers(-3000, 3000, (tick, HOP)).astype(np.int16)
        mic.add_audio(hop, block)
        if i % 600 == 0:  # a 0.3 s burst of "speech" once a minute
            mic.add_vad([SpeechSegment(hop, hop + 30)])
            block = rng.integers(-3000, 3000, (20, HOP)).astype(np.int16)
            mic.add_audio(hop + tick, block)
            hop += 20
        hop += tick
        mic.mark(hop, None, ending=False)
        step_mics(embedder, [mic])
        mic.advance()
        worst_held = max(worst_held, sum(b.shape[0] for _, b in mic.audio), len(mic.raw))
        assert mic.labels.shape[0] <= 2 * 100 * mic.diarizer.config.latency_s
    assert worst_held <= 30
    assert mic.committed >= hop - 100 * mic.diarizer.config.latency_s
    assert len(mic.diarizer.state.decided) == 0 and len(mic.diarizer.state.history) <= 4
