"""`step`'s batched advance (`_advance_batch`) against the per-stream one (`_advance`).

The batched path writes the hangover's trivial cases (silence with nothing open, a run of
speech) itself and slices levels and speech flags out of arrays shared by all streams;
every result must equal the per-stream path's, bit for bit, whatever the chunking, the
gaps, the keep flags, the backend or an epoch ending between steps.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pytest
from numpy.testing import assert_array_equal

from engine import pipeline
from engine.config import VadConfig
from engine.pipeline import ParticipantPipeline, finish, step
from engine.types import HOP, SpeechSegment
from engine.vad import Hangover, VadBackend, make_backend

# Probabilities on and around the onset (0.5) and offset (0.35) of the default config,
# float32 values that round across them included.
TABLE = np.array(
    [0.0, 1.0, 0.5, np.nextafter(0.5, 0), 0.35, np.nextafter(np.float32(0.35), 0), 0.9, 0.2],
    np.float32,
)


@dataclass(slots=True)
class _ChunkState:
    held: list[float] = field(default_factory=list)

    def reset(self) -> None:
        self.held.clear()


class ChunkedFake:
    """Deterministic probabilities from the hops' content, in chunks of `chunk` hops (as
    silero scores 32 ms windows): fewer probabilities than hops on most calls."""

    name = "fake"

    def __init__(self, chunk: int) -> None:
        self.chunk = chunk

    def open_stream(self) -> _ChunkState:
        return _ChunkState()

    def process(self, states: Sequence[object], hops: Sequence[np.ndarray]) -> list[np.ndarray]:
        out = []
        for st, h in zip(states, hops, strict=True):
            assert isinstance(st, _ChunkState)
            codes = np.abs(h.astype(np.int64)).sum(axis=1) % TABLE.shape[0]
            st.held.extend(TABLE[codes].tolist())
            n = len(st.held) // self.chunk * self.chunk
            out.append(np.array(st.held[:n], np.float32))
            del st.held[:n]
        return out

    def flush(self, state: object) -> np.ndarray:
        assert isinstance(state, _ChunkState)
        probs = np.array(state.held, np.float32)
        state.held.clear()
        return probs


def _reference_step(
    backend: VadBackend, pipelines: Sequence[ParticipantPipeline]
) -> list[SpeechSegment]:
    """The per-stream path, as `step` was before it batched."""
    ready = [p for p in pipelines if p.pending]
    if not ready:
        return []
    hops = [p.pending[0] if len(p.pending) == 1 else np.concatenate(p.pending) for p in ready]
    probs = backend.process([p.vad_state for p in ready], hops)
    pipeline._levels(ready, hops)
    return pipeline._advance(ready, hops, probs)


def _signal(rng: np.random.Generator, n: int) -> np.ndarray:
    """Bursts of noise and tone between silences of random length."""
    x = np.zeros(n, np.float64)
    at = 0
    while at < n:
        run = int(rng.integers(HOP, 60 * HOP))
        if rng.random() < 0.5:
            t = np.arange(min(run, n - at))
            x[at : at + run] = rng.normal(0, 3000, t.shape[0]) + 6000 * np.sin(t * 0.07)
        at += run
    return np.clip(x, -32768, 32767).astype(np.int16)


def _same(a: ParticipantPipeline, b: ParticipantPipeline) -> None:
    assert a.segments == b.segments
    assert (a.hops_in, a.hops_done, a.hops_stepped, a.audio_hops) == (
        b.hops_in,
        b.hops_done,
        b.hops_stepped,
        b.audio_hops,
    )
    assert_array_equal(a.hangover._state, b.hangover._state)
    for name in ("levels", "kept", "unscored"):
        xs, ys = getattr(a, name), getattr(b, name)
        assert len(xs) == len(ys), name
        for x, y in zip(xs, ys, strict=True):
            assert x.dtype == y.dtype
            assert_array_equal(x, y)
    assert len(a.audio) == len(b.audio)
    for (ha, fa), (hb, fb) in zip(a.audio, b.audio, strict=True):
        assert fa.dtype == fb.dtype == np.bool_
        assert_array_equal(ha, hb)
        assert_array_equal(fa, fb)


@pytest.mark.parametrize("backend_name", ["webrtc", "numba", "fake1", "fake3"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_batched_step_equals_per_stream_step(backend_name: str, seed: int) -> None:
    rng = np.random.default_rng(seed)
    config = VadConfig(backend="webrtc" if backend_name.startswith("fake") else backend_name)
    if backend_name.startswith("fake"):
        backend: VadBackend = ChunkedFake(int(backend_name[4:]))
    else:
        backend = make_backend(config)
    n_streams = 7
    pairs = []
    for i in range(n_streams):
        pair = []
        for _ in range(2):
            p = ParticipantPipeline.open(f"p{i}", backend, config)
            p.keep_levels = seed != 1 and i != 3  # all keep them, or all but one
            p.keep_audio = i % 3 != 1
            p.keep_hops = i % 4 == 0
            pair.append(p)
        pairs.append(pair)
    signals = [_signal(rng, 40 * 16_000) for _ in range(n_streams)]
    pos = [0] * n_streams
    closed_a: list[SpeechSegment] = []
    closed_b: list[SpeechSegment] = []
    for _ in range(400):
        for i, (a, b) in enumerate(pairs):
            r = rng.random()
            if r < 0.2:
                continue  # nothing new this step
            if r < 0.23:  # the epoch ends: drain, then a fresh stream
                finish(backend, a)
                finish(backend, b)
                _same(a, b)
                a.reset()
                b.reset()
                continue
            n = int(rng.choice([HOP, 2 * HOP, 320, 480, int(rng.integers(1, 5 * HOP))]))
            chunk = signals[i][pos[i] : pos[i] + n]
            pos[i] = (pos[i] + n) % (signals[i].shape[0] - 5 * HOP)
            a.feed(chunk)
            b.feed(chunk)
        closed_a += step(backend, [a for a, _ in pairs])
        closed_b += _reference_step(backend, [b for _, b in pairs])
        assert closed_a == closed_b
        for a, b in pairs:
            _same(a, b)
            if rng.random() < 0.5:  # consumers take what is held now and then
                a.take_audio(), b.take_audio()
                for p in (a, b):
                    p.levels.clear()
                    p.kept.clear()
                    p.segments.clear()
    assert closed_a  # not vacuous: segments closed along the way


def test_mixed_thresholds_take_the_per_stream_path() -> None:
    """Streams with different thresholds (a shared microphone's) in one step."""
    backend = make_backend(VadConfig(backend="numba"))
    configs = [VadConfig(backend="numba"), VadConfig(backend="numba", threshold=0.6)]
    rng = np.random.default_rng(5)
    a = [ParticipantPipeline.open("a", backend, c) for c in configs]
    b = [ParticipantPipeline.open("b", backend, c) for c in configs]
    for p in a + b:
        p.keep_audio = p.keep_levels = True
    sig = _signal(rng, 20 * 16_000)
    for k in range(0, sig.shape[0] - 320, 320):
        for p in a + b:
            p.feed(sig[k : k + 320])
        assert step(backend, a) == _reference_step(backend, b)
    for x, y in zip(a, b, strict=True):
        _same(x, y)


@pytest.mark.parametrize("name", ["webrtc", "silero", "silero-gated"])
def test_process_flat_equals_process(name: str) -> None:
    """`step` hands a backend with `process_flat` every stream's hops in one array; it
    returns what `process` returns per stream, joined, and how many each stream got
    (silero's hops wait for their 32 ms chunk: fewer than given on most calls)."""
    backend = make_backend(VadConfig(backend=name))
    rng = np.random.default_rng(9)
    a = [backend.open_stream() for _ in range(5)]
    b = [backend.open_stream() for _ in range(5)]
    fewer = 0
    for _ in range(30):
        hops = [_signal(rng, int(n) * HOP).reshape(-1, HOP) for n in rng.integers(0, 6, len(a))]
        want = backend.process(a, hops)
        counts = [h.shape[0] for h in hops]
        got, n_got = backend.process_flat(b, np.concatenate(hops), counts)  # type: ignore[attr-defined]
        assert got.dtype == np.float32
        assert n_got == [w.shape[0] for w in want]
        assert_array_equal(got, np.concatenate(want))
        fewer += n_got != counts
    assert (fewer > 0) == name.startswith("silero")
    with pytest.raises(ValueError, match="hops counted"):
        backend.process_flat(b[:2], np.zeros((3, HOP), np.int16), [1, 1])  # type: ignore[attr-defined]
    with pytest.raises(ValueError, match="int16"):
        backend.process_flat(b[:1], np.zeros((3, HOP), np.int32), [3])  # type: ignore[attr-defined]
    with pytest.raises(ValueError, match=">= 0"):  # the sum is right, a count is not
        backend.process_flat(b[:2], np.zeros((2, HOP), np.int16), [-1, 3])  # type: ignore[attr-defined]
    other = make_backend(VadConfig(backend="numba")).open_stream()
    with pytest.raises(TypeError, match="stream state"):
        backend.process_flat([other], np.zeros((1, HOP), np.int16), [1])  # type: ignore[attr-defined]
    if name.startswith("silero"):  # its counters are gathered and written back per call
        with pytest.raises(ValueError, match="twice"):
            backend.process_flat([b[0], b[0]], np.zeros((2, HOP), np.int16), [1, 1])  # type: ignore[attr-defined]


@pytest.mark.parametrize("hysteresis", [0.0, 0.15])
def test_hangover_push_uniform_equals_push(hysteresis: float) -> None:
    """Where `push_uniform` takes a chunk, `push` would have left the same state and
    closed nothing; where it declines, it changes nothing."""
    config = VadConfig(hysteresis=hysteresis, min_speech_ms=30, min_silence_ms=40)
    rng = np.random.default_rng(11)
    a, b = Hangover(config), Hangover(config)
    taken = declined = 0
    segs_a: list[SpeechSegment] = []
    segs_b: list[SpeechSegment] = []
    for _ in range(3000):
        n = int(rng.integers(1, 5))
        kind = rng.random()
        pool = TABLE if kind < 0.4 else (TABLE[TABLE >= 0.5] if kind < 0.7 else TABLE[TABLE < 0.5])
        probs = rng.choice(pool, n).astype(np.float32)
        segs_a += a.push(probs)
        before = b._state.copy()
        k = int((probs.astype(np.float64) >= config.threshold).sum())
        if b.push_uniform(n, k):
            taken += 1
        else:
            declined += 1
            assert_array_equal(b._state, before)
            segs_b += b.push(probs)
        assert_array_equal(a._state, b._state)
        assert segs_a == segs_b
        if rng.random() < 0.01:
            assert a.flush() == b.flush()
    assert taken > 500 and declined > 500 and segs_a
