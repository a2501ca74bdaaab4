"""Chunking, batching and reset invariance of the per-participant pipeline, for every backend.

Feeding the same 16 kHz signal in any split of chunk sizes, stepping at any
moment, alone or batched with other participants, must give the same speech
probabilities and the same segments as one whole call (STYLE.md, shape 3).
Real backends throughout; `Recording` only passes calls through and keeps the
probabilities each stream received.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterator

import av
import numpy as np
import pytest
from numpy.testing import assert_array_equal
from scipy.signal import butter, sosfilt

from engine.audio.framer import Framer
from engine.config import VAD_BACKENDS, VadConfig
from engine.datasets import shared_data_dir
from engine.pipeline import ParticipantPipeline, finish, step
from engine.types import HOP, SAMPLE_RATE, SpeechSegment
from engine.vad import Hangover, VadBackend, make_backend

BACKENDS = VAD_BACKENDS  # every backend the engine accepts
SIGNAL_S = 4.0


class Recording:
    """A real backend, with every returned probability kept per stream state."""

    def __init__(self, backend: VadBackend) -> None:
        self.backend = backend
        self.name = backend.name
        self.probs: dict[int, list[np.ndarray]] = defaultdict(list)
        self.hops_given: dict[int, int] = defaultdict(int)

    def open_stream(self):
        return self.backend.open_stream()

    def process(self, states, hops):
        out = self.backend.process(states, hops)
        assert len(out) == len(states)
        for st, h, p in zip(states, hops, out, strict=True):
            assert p.dtype == np.float32
            self.probs[id(st)].append(p.copy())
            self.hops_given[id(st)] += h.shape[0]
            # a backend may owe probabilities, never return more than it was given hops
            assert sum(a.shape[0] for a in self.probs[id(st)]) <= self.hops_given[id(st)]
        return out

    def flush(self, state):
        p = self.backend.flush(state)
        self.probs[id(state)].append(p.copy())
        return p

    def of(self, pipeline: ParticipantPipeline) -> np.ndarray:
        return np.concatenate(self.probs[id(pipeline.vad_state)] or [np.zeros(0, np.float32)])

    def forget(self, pipeline: ParticipantPipeline) -> None:
        self.probs.pop(id(pipeline.vad_state), None)
        self.hops_given.pop(id(pipeline.vad_state), None)


@pytest.fixture(scope="module", params=BACKENDS)
def backend_name(request) -> str:
    return request.param


def config_for(name: str) -> VadConfig:
    """Short minimum durations make many short segments, so a one-hop drift would show.

    Silero's threshold is low because it (rightly) scores the synthetic signal as
    barely speech; at 0.5 it would find almost no segments there.
    """
    return VadConfig(
        backend=name,
        threshold=0.15 if name.startswith("silero") else 0.5,
        hysteresis=0.1,
        min_speech_ms=30,
        min_silence_ms=100,
    )


_BACKENDS: dict[str, VadBackend] = {}


def real_backend(name: str) -> VadBackend:
    """One shared backend per kind (one ONNX session), as the engine shares them."""
    if name not in _BACKENDS:
        _BACKENDS[name] = make_backend(config_for(name))
    return _BACKENDS[name]


def synthetic_speechlike(seed: int = 0, seconds: float = SIGNAL_S) -> np.ndarray:
    """Syllable-rate bursts of band-limited (300-3000 Hz) noise and a gliding voiced tone."""
    rng = np.random.default_rng(seed)
    n = int(seconds * SAMPLE_RATE)
    t = np.arange(n) / SAMPLE_RATE
    sos = butter(4, [300, 3000], btype="bandpass", fs=SAMPLE_RATE, output="sos")
    band = sosfilt(sos, rng.normal(0, 1, n))
    band /= np.max(np.abs(band))
    f0 = 140 + 40 * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(f0) / SAMPLE_RATE
    voiced = sum(np.sin(k * phase) / k for k in range(1, 12))
    voiced /= np.max(np.abs(voiced))
    envelope = np.zeros(n)
    pos = int(0.3 * SAMPLE_RATE)
    while pos < n:  # bursts of 0.15-0.6 s separated by 0.1-0.7 s pauses
        length = int(rng.uniform(0.15, 0.6) * SAMPLE_RATE)
        envelope[pos : pos + length] = np.hanning(length)[: n - pos] ** 0.3
        pos += length + int(rng.uniform(0.1, 0.7) * SAMPLE_RATE)
    x = envelope * (6000 * voiced + 2500 * band) + rng.normal(0, 30, n)
    return np.clip(np.round(x), -32768, 32767).astype(np.int16)


def real_speech(shared_data, seconds: float = SIGNAL_S) -> np.ndarray:
    path = shared_data / "vad" / "testset-audio-01.wav"
    if not path.exists():
        pytest.skip(f"{path} is not present")
    with av.open(str(path)) as c:
        stream = c.streams.audio[0]
        assert stream.rate == SAMPLE_RATE and stream.channels == 1
        x = np.concatenate([f.to_ndarray().reshape(-1) for f in c.decode(stream)])
    return x[: int(seconds * SAMPLE_RATE)].astype(np.int16)


@pytest.fixture(scope="module", params=["real", "synthetic"])
def signal(request) -> np.ndarray:
    if request.param == "real":
        return real_speech(request.getfixturevalue("shared_data"))
    return synthetic_speechlike()


@pytest.fixture(scope="module")
def shared_data_or_none():
    """The real-speech data where present; the batching test then mixes it with synthetic."""
    root = shared_data_dir()
    return root if root is not None and (root / "vad" / "testset-audio-01.wav").exists() else None


def whole_call(backend: VadBackend, x: np.ndarray) -> tuple[list[SpeechSegment], np.ndarray]:
    """The reference: the whole signal in one feed and one step (a framer big enough for it)."""
    rec = Recording(backend)
    cfg = config_for(backend.name)
    p = ParticipantPipeline(
        name="whole",
        vad_state=backend.open_stream(),
        hangover=Hangover(cfg),
        framer=Framer(capacity_hops=x.shape[0] // HOP + 1),
    )
    p.feed(x)
    step(rec, [p])
    finish(rec, p)
    return list(p.segments), rec.of(p)


def split_sizes(kind: str | int, n: int, rng: np.random.Generator) -> Iterator[int]:
    pos = 0
    while pos < n:
        size = int(rng.integers(1, 5000)) if kind == "random" else int(kind)
        size = min(size, n - pos)
        yield size
        pos += size


def chunked_call(
    backend: VadBackend, x: np.ndarray, split: str | int, seed: int = 0
) -> tuple[list[SpeechSegment], np.ndarray, list[SpeechSegment]]:
    """Feed in chunks, stepping at random moments; returns segments, probs, segments from step."""
    rng = np.random.default_rng(seed)
    rec = Recording(backend)
    p = ParticipantPipeline.open("chunked", rec, config_for(backend.name))
    closed: list[SpeechSegment] = []
    pos = 0
    for size in split_sizes(split, x.shape[0], rng):
        p.feed(x[pos : pos + size])
        pos += size
        if rng.random() < 0.3 or p.pending_hops > 300:
            closed.extend(step(rec, [p]))
    finish(rec, p)
    return list(p.segments), rec.of(p), closed


_WHOLE: dict[tuple[str, str], tuple[list[SpeechSegment], np.ndarray]] = {}


def cached_whole(name: str, x: np.ndarray) -> tuple[list[SpeechSegment], np.ndarray]:
    key = (name, hashlib.sha1(x.tobytes()).hexdigest())
    if key not in _WHOLE:
        _WHOLE[key] = whole_call(real_backend(name), x)
    return _WHOLE[key]


def test_whole_call_is_not_vacuous(backend_name, signal):
    """Every backend finds some speech and some non-speech, so invariance means something."""
    segments, probs = cached_whole(backend_name, signal)
    n_hops = -(-signal.shape[0] // HOP)
    assert probs.shape[0] == n_hops  # one probability per hop, the padded last one included
    assert probs.min() < 0.5 < probs.max()
    assert segments


@pytest.mark.parametrize("split", [1, 7, 160, 333, 4000, "random"])
def test_chunking_invariance(backend_name, signal, split):
    x = signal[: int(1.5 * SAMPLE_RATE)] if split in (1, 7) else signal  # keep 1-sample runs fast
    if split in (1, 7):
        want_segments, want_probs = whole_call(real_backend(backend_name), x)
    else:
        want_segments, want_probs = cached_whole(backend_name, x)
    got_segments, got_probs, _ = chunked_call(real_backend(backend_name), x, split)
    assert_array_equal(got_probs, want_probs)
    assert got_segments == want_segments


@pytest.mark.parametrize("seed", range(3))
def test_random_splits_and_step_times(backend_name, signal, seed):
    want_segments, want_probs = cached_whole(backend_name, signal)
    got_segments, got_probs, closed = chunked_call(
        real_backend(backend_name), signal, "random", seed=seed + 1
    )
    assert_array_equal(got_probs, want_probs)
    assert got_segments == want_segments
    # segments closed during streaming are a prefix of the final list
    assert closed == want_segments[: len(closed)]


def test_batching_invariance(backend_name, shared_data_or_none):
    """Three participants stepped together (different lengths, chunkings) == each alone."""
    synth = synthetic_speechlike(seed=1)
    xs = [
        real_speech(shared_data_or_none) if shared_data_or_none else synthetic_speechlike(seed=3),
        synth[: int(2.7 * SAMPLE_RATE) + 37],
        synthetic_speechlike(seed=2, seconds=3.3)[::-1].copy(),
    ]
    backend = real_backend(backend_name)
    rec = Recording(backend)
    cfg = config_for(backend_name)
    pipes = [ParticipantPipeline.open(f"p{i}", rec, cfg) for i in range(3)]
    rng = np.random.default_rng(7)
    positions = [0, 0, 0]
    chunk = [160, 480, 333]
    while any(pos < x.shape[0] for pos, x in zip(positions, xs, strict=True)):
        for i, (p, x) in enumerate(zip(pipes, xs, strict=True)):
            if positions[i] < x.shape[0] and rng.random() < 0.8:
                p.feed(x[positions[i] : positions[i] + chunk[i]])
                positions[i] += chunk[i]
        if rng.random() < 0.5:
            step(rec, pipes)
    step(rec, pipes)
    for p in pipes:
        finish(rec, p)
    for p, x in zip(pipes, xs, strict=True):
        want_segments, want_probs = whole_call(backend, x)
        assert_array_equal(rec.of(p), want_probs)
        assert p.segments == want_segments
        assert p.hops_in == -(-x.shape[0] // HOP)


def test_reset_makes_a_new_stream(backend_name, signal):
    """Reset mid-stream, with a partial hop in the framer and hops pending, then reuse."""
    backend = real_backend(backend_name)
    other = synthetic_speechlike(seed=5, seconds=2.0)
    rec = Recording(backend)
    p = ParticipantPipeline.open("reused", rec, config_for(backend_name))
    p.feed(other[:12_345])
    step(rec, [p])
    p.feed(other[12_345:20_001])  # pending hops and a partial hop, never stepped
    assert p.pending_hops > 0
    p.reset()
    assert p.hops_in == 0 and p.pending_hops == 0 and p.segments == []
    rec.forget(p)
    pos = 0
    for size in split_sizes(4000, signal.shape[0], np.random.default_rng(0)):
        p.feed(signal[pos : pos + size])
        pos += size
        step(rec, [p])
    finish(rec, p)
    want_segments, want_probs = cached_whole(backend_name, signal)
    assert_array_equal(rec.of(p), want_probs)
    assert p.segments == want_segments


def test_reset_after_finish_replays_identically(backend_name, signal):
    backend = real_backend(backend_name)
    rec = Recording(backend)
    p = ParticipantPipeline.open("again", rec, config_for(backend_name))
    runs = []
    for _ in range(2):
        rec.forget(p)
        pos = 0
        for size in split_sizes(1600, signal.shape[0], np.random.default_rng(1)):
            p.feed(signal[pos : pos + size])
            pos += size
            step(rec, [p])
        finish(rec, p)
        runs.append((list(p.segments), rec.of(p)))
        p.reset()
    assert runs[0][0] == runs[1][0]
    assert_array_equal(runs[0][1], runs[1][1])
    assert runs[0][0] == cached_whole(backend_name, signal)[0]


def test_streams_do_not_share_state(backend_name):
    """Two streams of one backend fed different audio: each equals its own solo run."""
    backend = real_backend(backend_name)
    a = synthetic_speechlike(seed=11, seconds=2.0)
    b = np.zeros_like(a)
    rec = Recording(backend)
    cfg = config_for(backend_name)
    pa, pb = (ParticipantPipeline.open(n, rec, cfg) for n in "ab")
    for pos in range(0, a.shape[0], 800):
        pa.feed(a[pos : pos + 800])
        step(rec, [pa])  # stepped alone, interleaved with b
        pb.feed(b[pos : pos + 800])
        step(rec, [pb])
    finish(rec, pa)
    finish(rec, pb)
    for p, x in ((pa, a), (pb, b)):
        want_segments, want_probs = whole_call(backend, x)
        assert_array_equal(rec.of(p), want_probs)
        assert p.segments == want_segments
    assert pb.segments == []
