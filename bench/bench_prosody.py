"""Cost of all prosody features (ProsodyTracker) per stream-second, on one pinned core.

Audio: the first 60 s of the bundled sample's 4 tracks, twice (8 streams of 6000
hops). Two speech masks: all-speech, the worst case, since spectra, F0 candidates,
pulses and summaries are only worked out on (or next to) speech hops; and 15 %
speech in turns of 2 s on average, what one person in a live group session gives.
Cases differ in how audio arrives: one stream at a time in 1 s or 20 ms chunks, or 8
streams per `process_batch` call (one FFT call for all) in 100 ms or 20 ms chunks
(the live engine's shapes). The baseline case adds RobustBaseline.update of all 8
features on the per-hop output.

The table times each case twice in one run: `new` is process_batch, `old` the path
before spectra were skipped off speech (`dense_process_batch`, the forward FFT and
spectral kernel on every hop), with the ratio old / new.

    pytest bench/bench_prosody.py --benchmark-only
    python bench/bench_prosody.py [--reps 3]     # the table: us per stream-second, % core

Target (issue 5): prosody + affect model < 1 % of one core per participant.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from functools import cache
from pathlib import Path

import numpy as np
import pytest
from benchutil import best_of, pin_one_core

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from prosody_ref import dense_batch

from engine.affect.baseline import RobustBaseline
from engine.affect.prosody import (
    FEATURES,
    ProsodyHops,
    ProsodyTracker,
    process_batch,
)
from engine.audio.decode import decode_file
from engine.sample import sample_session
from engine.types import HOP, SAMPLE_RATE

SECONDS = 60
N_STREAMS = 8
SPEECH_SHARE = 0.15
TURN_HOPS = 200
BatchFn = Callable[[list[ProsodyTracker], list[np.ndarray], list[np.ndarray]], list[ProsodyHops]]


@cache
def streams() -> tuple[np.ndarray, ...]:
    _, chunks = decode_file(sample_session())
    parts: dict[int, list[np.ndarray]] = {}
    for index, pcm in chunks:
        parts.setdefault(index, []).append(pcm)
    tracks = [np.concatenate(p)[: SECONDS * SAMPLE_RATE] for _, p in sorted(parts.items())]
    return tuple((tracks * N_STREAMS)[:N_STREAMS])


@cache
def masks(share: float) -> tuple[np.ndarray, ...]:
    """Per stream, a speech mask with `share` of hops in speech: all ones at 1, else a
    two-state Markov chain with turns of TURN_HOPS hops on average (seeded per stream)."""
    n = SECONDS * SAMPLE_RATE // HOP
    if share >= 1.0:
        return tuple(np.ones(n, bool) for _ in range(N_STREAMS))
    out = []
    for seed in range(N_STREAMS):
        rng = np.random.default_rng(seed)
        p_end = 1.0 / TURN_HOPS
        p_start = p_end * share / (1.0 - share)
        mask = np.empty(n, bool)
        state = False
        for i, u in enumerate(rng.random(n)):
            mask[i] = state
            state = (u >= p_end) if state else (u < p_start)
        out.append(mask)
    return tuple(out)


def dense_process_batch(
    trackers: list[ProsodyTracker], pcms: list[np.ndarray], speech: list[np.ndarray]
) -> list[ProsodyHops]:
    """process_batch before spectra were skipped off speech (tests/prosody_ref.py): the
    forward FFT and every kernel on every hop, the inverse FFT on speech hops."""
    return dense_batch(trackers, pcms, speech, acf_everywhere=False)


def run_single(
    chunk_hops: int, n_streams: int = N_STREAMS, share: float = 1.0, fn: BatchFn = process_batch
) -> int:
    """Each stream alone, `chunk_hops` hops per push; returns nuclei found (a checksum)."""
    total = 0
    for pcm, mask in zip(streams()[:n_streams], masks(share), strict=False):
        t = ProsodyTracker()
        n = pcm.shape[0] // HOP
        for h in range(0, n, chunk_hops):
            fn([t], [pcm[h * HOP : (h + chunk_hops) * HOP]], [mask[h : h + chunk_hops]])
        total += t.summary().nuclei
    return total


def run_batched(
    chunk_hops: int, baseline: bool = False, share: float = 1.0, fn: BatchFn = process_batch
) -> int:
    """All streams per process_batch call, `chunk_hops` hops each."""
    pcms = streams()
    ms = masks(share)
    trackers = [ProsodyTracker() for _ in pcms]
    baselines = [RobustBaseline(FEATURES) for _ in pcms] if baseline else []
    n = pcms[0].shape[0] // HOP
    for h in range(0, n, chunk_hops):
        out = fn(
            trackers,
            [p[h * HOP : (h + chunk_hops) * HOP] for p in pcms],
            [m[h : h + chunk_hops] for m in ms],
        )
        for b, hops in zip(baselines, out, strict=False):
            b.update(hops.matrix())
    return sum(t.summary().nuclei for t in trackers)


def stream_seconds(n_streams: int = N_STREAMS) -> float:
    return sum(p.shape[0] for p in streams()[:n_streams]) / SAMPLE_RATE


def cases(fn: BatchFn = process_batch) -> dict[str, tuple[Callable[[], object], float]]:
    """name -> (call, stream-seconds it processes), with `fn` as process_batch."""
    s15 = f"{SPEECH_SHARE:.0%} speech"
    return {
        "1 stream, 1 s chunks": (lambda: run_single(100, fn=fn), stream_seconds()),
        "1 stream, 20 ms chunks": (lambda: run_single(2, 2, fn=fn), stream_seconds(2)),
        "8 streams batched, 100 ms": (lambda: run_batched(10, fn=fn), stream_seconds()),
        "8 streams batched, 20 ms": (lambda: run_batched(2, fn=fn), stream_seconds()),
        "8 batched, 100 ms + baseline": (lambda: run_batched(10, True, fn=fn), stream_seconds()),
        f"1 stream, 1 s, {s15}": (
            lambda: run_single(100, share=SPEECH_SHARE, fn=fn),
            stream_seconds(),
        ),
        f"8 batched, 100 ms, {s15}": (
            lambda: run_batched(10, share=SPEECH_SHARE, fn=fn),
            stream_seconds(),
        ),
        f"8 batched, 20 ms, {s15}": (
            lambda: run_batched(2, share=SPEECH_SHARE, fn=fn),
            stream_seconds(),
        ),
    }


def warm() -> None:
    """Compile the numba kernels (cached on disk after the first run) before timing."""
    t = ProsodyTracker()
    t.push(streams()[0][: 100 * HOP], np.arange(100) % 4 == 0)  # every kernel runs


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
    share = float(np.mean(np.concatenate(masks(SPEECH_SHARE))))
    print(f"pinned to core {core}; {N_STREAMS} streams x {SECONDS} s; masks: all speech,")
    print(f"or {share:.1%} speech in turns of {TURN_HOPS / 100:.0f} s on average")
    print(f"{'case':<34}{'old us/s':>9}{'new us/s':>9}{'old/new':>8}{'new % core':>11}")
    new, old = cases(), cases(dense_process_batch)
    for name, (fn, secs) in new.items():
        old_fn = old[name][0]
        if old_fn() != fn():  # same nuclei: the two paths agree
            raise SystemExit(f"{name}: old and new paths disagree")
        per_old = best_of(old_fn, args.reps) / secs
        per = best_of(fn, args.reps) / secs
        print(
            f"{name:<34}{per_old * 1e6:>9.0f}{per * 1e6:>9.0f}{per_old / per:>8.2f}"
            f"{per * 100:>11.3f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
