"""silero-gated: the model runs only where the WebRTC VAD hears speech, and costs less.

Why: Silero's ONNX model is most of a Silero stream's cost, and people in a group
session are silent most of the time. The gate must (1) give exactly 0 to the chunks it
keeps shut, and run the model on no others' behalf, (2) change nothing before the
first shut chunk, (3) actually skip most of a mostly silent stream, and (4) keep the
accuracy on labelled real speech (../shared/data/vad) within a point of ungated Silero.
Chunking and batching invariance are in tests/test_chunking.py, for every backend.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import webrtcvad

from cli.main import main as groupsense
from engine.audio.decode import decode_file
from engine.config import VadConfig
from engine.sample import sample_session
from engine.types import HOP
from engine.vad import make_backend
from engine.vad.silero import CHUNK, GATE_AGGRESSIVENESS, SileroBackend
from tests.test_chunking import synthetic_speechlike


class CountingSession:
    """The real ONNX session, counting the chunks it is given."""

    def __init__(self, session: Any) -> None:
        self.session = session
        self.rows = 0

    def run(self, names: Any, feed: dict[str, np.ndarray]) -> Any:
        self.rows += feed["input"].shape[0]
        return self.session.run(names, feed)


def _with_silence(seconds_quiet: float = 3.0) -> np.ndarray:
    """Speech-like bursts, then a long stretch of faint noise, then bursts again."""
    rng = np.random.default_rng(7)
    quiet = rng.normal(0, 3, int(seconds_quiet * 16000)).round().astype(np.int16)
    lead = int(0.3 * 16000)  # synthetic_speechlike's first burst starts here
    return np.concatenate(
        [synthetic_speechlike(1, 2.3)[lead:], quiet, synthetic_speechlike(2, 2.0)]
    )


def _chunk_of_hop(k: int) -> int:
    """The chunk holding hop k's centre, whose probability the hop takes."""
    return (k * HOP + HOP // 2) // CHUNK


def _probs(backend: SileroBackend, x: np.ndarray) -> np.ndarray:
    hops = x[: x.shape[0] // HOP * HOP].reshape(-1, HOP)
    st = backend.open_stream()
    out = [backend.process([st], [hops[a : a + 7]])[0] for a in range(0, hops.shape[0], 7)]
    out.append(backend.flush(st))
    return np.concatenate(out)


def _chunk_heard(x: np.ndarray) -> np.ndarray:
    """Per chunk: did WebRTC (aggressiveness 0) hear speech in a hop centred in it?"""
    hops = x[: x.shape[0] // HOP * HOP].reshape(-1, HOP)
    vad = webrtcvad.Vad(GATE_AGGRESSIVENESS)
    flags = [vad.is_speech(h.tobytes(), 16000) for h in hops]
    heard = np.zeros(_chunk_of_hop(hops.shape[0] - 1) + 1, bool)
    for k, f in enumerate(flags):
        heard[_chunk_of_hop(k)] |= f
    return heard


def test_shut_chunks_get_zero_and_cost_no_inference() -> None:
    x = _with_silence()
    plain = make_backend(VadConfig(backend="silero"))
    gated = make_backend(VadConfig(backend="silero-gated"))
    assert isinstance(plain, SileroBackend) and isinstance(gated, SileroBackend)
    counted = CountingSession(gated.session)
    gated.session = counted
    p, g = _probs(plain, x), _probs(gated, x)
    assert p.shape == g.shape
    heard = _chunk_heard(x)
    open_ = heard.copy()
    open_[1:] |= heard[:-1]  # the chunk after one with speech is scored too
    chunk = np.array([_chunk_of_hop(k) for k in range(g.shape[0])])
    shut_hops = ~open_[chunk]
    assert shut_hops.sum() > 150  # the quiet stretch: most of 3 s
    assert np.all(g[shut_hops] == 0.0)
    n_chunks = -(-(x.shape[0] // HOP * HOP) // CHUNK)
    assert counted.rows == int(open_[:n_chunks].sum())
    # identical up to the first shut chunk: the gate changes nothing it lets through
    first_shut = int(np.argmax(shut_hops))
    assert first_shut > 20  # the first burst at least
    np.testing.assert_array_equal(g[:first_shut], p[:first_shut])
    # and after the silence the model still finds the speech
    assert g[first_shut:][~shut_hops[first_shut:]].max() > 0.5


def test_a_mostly_silent_stream_skips_most_chunks() -> None:
    """The bundled sample's quietest track (about 2 % speech): few chunks reach the model."""
    _, chunks = decode_file(str(sample_session()))
    parts: dict[int, list[np.ndarray]] = {}
    for index, pcm in chunks:
        parts.setdefault(index, []).append(pcm)
    tracks = [np.concatenate(p)[: 30 * 16000] for p in parts.values()]
    x = min(tracks, key=lambda t: float(np.mean(np.abs(t.astype(np.float64)))))
    gated = make_backend(VadConfig(backend="silero-gated"))
    assert isinstance(gated, SileroBackend)
    counted = CountingSession(gated.session)
    gated.session = counted
    _probs(gated, x)
    n_chunks = -(-(x.shape[0] // HOP * HOP) // CHUNK)
    assert counted.rows < 0.2 * n_chunks, (counted.rows, n_chunks)


def test_accuracy_on_real_speech_matches_ungated(shared_data: Path, tmp_path: Path) -> None:
    if not (shared_data / "vad").is_dir():
        pytest.skip(f"{shared_data / 'vad'} is not present")
    out = tmp_path / "vad.json"
    argv = ["eval", "vad", "--vad", "silero", "silero-gated", "--data", str(shared_data / "vad")]
    assert groupsense([*argv, "--json", str(out)]) == 0
    rows = {row["backend"]: row for row in json.loads(out.read_text())["rows"]}
    for key in ("f1", "recall", "precision"):
        assert rows["silero-gated"][key] >= rows["silero"][key] - 0.01, (key, rows)
    assert rows["silero-gated"]["f1"] > 0.9
