"""Cost of all prosody features (ProsodyTracker) per stream-second, on one pinned core.

Audio: the first 60 s of the bundled sample's 4 tracks, twice (8 streams of 6000
hops). The speech mask is all-speech: the worst case, since F0 candidates, pulses
and summaries are only worked out on speech hops. Cases differ in how audio arrives:
one stream at a time in 1 s or 20 ms chunks, or 8 streams per `process_batch` call
(one FFT call for all) in 100 ms or 20 ms chunks (the live engine's shapes). The
baseline case adds RobustBaseline.update of all 8 features on the per-hop output.

    pytest bench/bench_prosody.py --benchmark-only
    python bench/bench_prosody.py [--reps 3]     # the table: us per stream-second, % core

Target (issue 5): prosody + affect model < 1 % of one core per participant.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from functools import cache

import numpy as np
import pytest
from benchutil import best_of, pin_one_core

from engine.affect.baseline import RobustBaseline
from engine.affect.prosody import FEATURES, ProsodyTracker, process_batch
from engine.audio.decode import decode_file
from engine.sample import sample_session
from engine.types import HOP, SAMPLE_RATE

SECONDS = 60
N_STREAMS = 8


@cache
def streams() -> tuple[np.ndarray, ...]:
    _, chunks = decode_file(sample_session())
    parts: dict[int, list[np.ndarray]] = {}
    for index, pcm in chunks:
        parts.setdefault(index, []).append(pcm)
    tracks = [np.concatenate(p)[: SECONDS * SAMPLE_RATE] for _, p in sorted(parts.items())]
    return tuple((tracks * N_STREAMS)[:N_STREAMS])


def run_single(chunk_hops: int, n_streams: int = N_STREAMS) -> int:
    """Each stream alone, `chunk_hops` hops per push; returns nuclei found (a checksum)."""
    total = 0
    for pcm in streams()[:n_streams]:
        t = ProsodyTracker()
        n = pcm.shape[0] // HOP
        mask = np.ones(chunk_hops, bool)
        for h in range(0, n, chunk_hops):
            t.push(pcm[h * HOP : (h + chunk_hops) * HOP], mask[: min(chunk_hops, n - h)])
        total += t.summary().nuclei
    return total


def run_batched(chunk_hops: int, baseline: bool = False) -> int:
    """All streams per process_batch call, `chunk_hops` hops each."""
    pcms = streams()
    trackers = [ProsodyTracker() for _ in pcms]
    baselines = [RobustBaseline(FEATURES) for _ in pcms] if baseline else []
    n = pcms[0].shape[0] // HOP
    mask = np.ones(chunk_hops, bool)
    for h in range(0, n, chunk_hops):
        m = mask[: min(chunk_hops, n - h)]
        out = process_batch(
            trackers, [p[h * HOP : (h + chunk_hops) * HOP] for p in pcms], [m] * len(pcms)
        )
        for b, hops in zip(baselines, out, strict=False):
            b.update(hops.matrix())
    return sum(t.summary().nuclei for t in trackers)


def stream_seconds(n_streams: int = N_STREAMS) -> float:
    return sum(p.shape[0] for p in streams()[:n_streams]) / SAMPLE_RATE


def cases() -> dict[str, tuple[Callable[[], object], float]]:
    """name -> (call, stream-seconds it processes)."""
    return {
        "1 stream, 1 s chunks": (lambda: run_single(100), stream_seconds()),
        "1 stream, 20 ms chunks": (lambda: run_single(2, 2), stream_seconds(2)),
        "8 streams batched, 100 ms": (lambda: run_batched(10), stream_seconds()),
        "8 streams batched, 20 ms": (lambda: run_batched(2), stream_seconds()),
        "8 batched, 100 ms + baseline": (lambda: run_batched(10, True), stream_seconds()),
    }


def warm() -> None:
    """Compile the numba kernels (cached on disk after the first run) before timing."""
    t = ProsodyTracker()
    t.push(streams()[0][: 100 * HOP], np.ones(100, bool))


# ---------------------------------------------------------------------------
# pytest-benchmark


@pytest.fixture(scope="module")
def warmed() -> None:
    warm()


@pytest.mark.parametrize("name", list(cases()))
def test_prosody_cost(benchmark, warmed, name: str) -> None:  # type: ignore[no-untyped-def]
    fn, secs = cases()[name]
    result = benchmark.pedantic(fn, rounds=2, iterations=1)
    assert isinstance(result, int) and result > 0  # syllable nuclei were found
    per = benchmark.stats.stats.min / secs
    benchmark.extra_info["stream_seconds"] = secs
    benchmark.extra_info["us_per_stream_second"] = round(per * 1e6, 1)
    benchmark.extra_info["percent_of_core"] = round(per * 100, 3)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()
    core = pin_one_core()
    warm()
    print(f"pinned to core {core}; {N_STREAMS} streams x {SECONDS} s, all-speech mask")
    print(f"{'case':<32}{'us / stream-s':>14}{'% of a core':>13}{'streams/core':>14}")
    for name, (fn, secs) in cases().items():
        per = best_of(fn, args.reps) / secs
        print(f"{name:<32}{per * 1e6:>14.0f}{per * 100:>13.3f}{1 / per:>14.0f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
