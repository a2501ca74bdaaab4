"""AffectStream's recent means are cached between windows: they must equal np.mean of
the recent windows at every point, past the deque's length and across reset()."""

from __future__ import annotations

import numpy as np

from engine.affect.stream import RECENT_WINDOWS, AffectStream, affect_step
from engine.types import HOP


def _expected(stream: AffectStream) -> tuple[float, float]:
    return (
        float(np.mean(stream.arousal)) if stream.arousal else -1.0,
        float(np.mean(stream.valence)) if stream.valence else -1.0,
    )


def _feed(
    stream: AffectStream, seconds: int, rng: np.random.Generator, *, check: bool = True
) -> None:
    for k in range(seconds):  # 1 s blocks of "speech": a window every 2 blocks
        pcm = rng.normal(0, 1000 + 300 * (k % 7), 100 * HOP).astype(np.int16)
        affect_step([stream], [pcm], [np.ones(100, bool)], [100 * (k + 1)])
        if check:
            assert (stream.mean_arousal, stream.mean_valence) == _expected(stream)


def test_recent_means_equal_np_mean_after_every_window_and_reset() -> None:
    rng = np.random.default_rng(7)
    stream = AffectStream("p-x")
    assert (stream.mean_arousal, stream.mean_valence) == (-1.0, -1.0)
    _feed(stream, 2 * RECENT_WINDOWS + 8, rng)
    assert stream.windows > RECENT_WINDOWS  # the deques have dropped old windows
    assert len(stream.arousal) == RECENT_WINDOWS
    windows = stream.windows
    stream.reset()
    # back to the same `windows` count, unread: a cache that outlived reset() shows
    _feed(stream, 2 * windows, rng, check=False)
    assert stream.windows == windows
    assert (stream.mean_arousal, stream.mean_valence) == _expected(stream)
    stream.reset()
    assert (stream.mean_arousal, stream.mean_valence) == (-1.0, -1.0)
