"""Cost of the affect path per stream-second: window features plus the ONNX model.

Audio: 2.0 s windows cut from the bundled sample's tracks (and the same tracks delayed by
37 s, as in bench/make_long_session.py), so each window holds real speech. Every case
processes one window per stream -- what the engine does each time a participant has
gathered 2 s of speech (`SpeechWindow`) -- for 1, 8 or 32 streams at once:

  features   engine.affect.features.batch_features over the streams' windows (one FFT call)
  model      AffectModel.predict on the stacked rows (one session call)
  total      both
  unbatched  window_features + predict on one row, stream by stream

    pytest bench/bench_affect.py --benchmark-only
    python bench/bench_affect.py [--reps 20]   # the table, measured in one run

Cost is per stream-second of speech (time / (streams x 2 s)) and as a share of one core;
the issue's budget is 1 % of a core per participant for prosody and model together.
Conservative: a participant speaks only part of the time, and windows hold speech only.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from functools import cache, partial

import numpy as np
import pytest
from benchutil import best_of, pin_one_core
from make_long_session import sources

from engine.affect.features import WINDOW_S, batch_features, window_features
from engine.affect.model import AffectModel
from engine.types import SAMPLE_RATE

STREAMS = (1, 8, 32)
WIN = round(WINDOW_S * SAMPLE_RATE)


@cache
def windows(n: int) -> tuple[np.ndarray, ...]:
    """n windows of 2 s, the loudest 2 s slices of the 8 sources (speech, not silence)."""
    _, srcs = sources(37.0)
    found: list[np.ndarray] = []
    for src in srcs:
        cuts = src[: src.shape[0] // WIN * WIN].reshape(-1, WIN)
        rms = np.sqrt(np.mean(cuts.astype(np.float64) ** 2, axis=1))
        found.extend(cuts[np.argsort(-rms)[:4]])
    return tuple(np.ascontiguousarray(found[i % len(found)]) for i in range(n))


@cache
def model() -> AffectModel:
    m = AffectModel()
    m.predict(batch_features(windows(8)))  # warm up
    return m


def run_features(n: int) -> np.ndarray:
    return batch_features(windows(n))


def run_model(x: np.ndarray) -> object:
    return model().predict(x)


def run_total(n: int) -> object:
    return model().predict(batch_features(windows(n)))


def run_unbatched(n: int) -> None:
    m = model()
    for w in windows(n):
        m.predict(window_features(w)[None, :])


def cases() -> dict[str, tuple[int, Callable[[], object]]]:
    found: dict[str, tuple[int, Callable[[], object]]] = {}
    for n in STREAMS:
        x = batch_features(windows(n))
        found[f"features x{n}"] = (n, partial(run_features, n))
        found[f"model x{n}"] = (n, partial(run_model, x))
        found[f"total x{n}"] = (n, partial(run_total, n))
    found["unbatched x8"] = (8, partial(run_unbatched, 8))
    return found


@pytest.mark.parametrize("name", list(cases()))
def test_affect(benchmark, name: str) -> None:  # type: ignore[no-untyped-def]
    model()
    _, fn = cases()[name]
    benchmark(fn)


def main() -> int:
    ap = argparse.ArgumentParser(description="affect features + model cost per stream-second")
    ap.add_argument("--reps", type=int, default=20)
    args = ap.parse_args()
    core = pin_one_core()
    model()
    print(f"pinned to core {core}; best of {args.reps}; one {WINDOW_S:g} s window per stream")
    print(f"{'case':<16}{'ms/call':>10}{'us/stream-s':>14}{'% of a core':>13}")
    for name, (n, fn) in cases().items():
        fn()
        t = best_of(fn, args.reps)
        per = t / (n * WINDOW_S)
        print(f"{name:<16}{t * 1e3:>10.3f}{per * 1e6:>14.1f}{per * 100:>13.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
