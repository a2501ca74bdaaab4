"""The VAD backends (silero gated and not) side by side on the same frames, against
raw webrtcvad.

Frames: the first 60 s of the bundled sample's 4 tracks and of the same 4 tracks
delayed by 37 s (as in bench/make_long_session.py): 8 streams of 6000 hops. Each
backend gets batches of 8 streams per call, BATCH_HOPS hops per stream (what
`groupsense analyze` does). The floor is webrtcvad called raw, the plain
`Vad.is_speech` loop over bytes. The two numba kernels are also timed alone.

    pytest bench/bench_vad.py --benchmark-only
    python bench/bench_vad.py [--reps 5]       # the ratio table, measured in one run

Cost is reported per stream-second (one second of one participant's audio), as a
ratio to raw webrtcvad measured in the same run, and as streams per core.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from functools import cache

import numpy as np
import pytest
import webrtcvad
from benchutil import pin_one_core, warm_backend
from make_long_session import sources

from engine.config import VAD_BACKENDS, VadConfig
from engine.offline import BATCH_HOPS
from engine.types import HOP, HOPS_PER_SECOND, SAMPLE_RATE
from engine.vad import kernels
from engine.vad.base import VadBackend
from engine.vad.energy import COEF, EnergyVadParams

SECONDS = 60
N_STREAMS = 8
BACKENDS = VAD_BACKENDS


@cache
def frames() -> tuple[np.ndarray, ...]:
    """8 streams of int16 hops (SECONDS * 100, HOP), the same for every case."""
    _, srcs = sources(37.0)
    n = SECONDS * SAMPLE_RATE
    return tuple(np.ascontiguousarray(s[:n].reshape(-1, HOP)) for s in srcs[:N_STREAMS])


def stream_seconds() -> float:
    return sum(h.shape[0] for h in frames()) / HOPS_PER_SECOND


# ---------------------------------------------------------------------------
# The cases: each runs once over all 8 streams from fresh state.


def run_backend(backend: VadBackend) -> list[np.ndarray]:
    hops = frames()
    states = [backend.open_stream() for _ in hops]
    out: list[list[np.ndarray]] = [[] for _ in hops]
    for start in range(0, hops[0].shape[0], BATCH_HOPS):
        probs = backend.process(states, [h[start : start + BATCH_HOPS] for h in hops])
        for o, p in zip(out, probs, strict=True):
            o.append(p)
    for o, st in zip(out, states, strict=True):
        o.append(backend.flush(st))
    return [np.concatenate(o) for o in out]


def run_webrtcvad_raw(aggressiveness: int = 3) -> list[np.ndarray]:
    """The floor: one `Vad` per stream, `is_speech` on each 10 ms hop's bytes."""
    out = []
    for h in frames():
        vad = webrtcvad.Vad(aggressiveness)
        buf = h.tobytes()
        step = HOP * 2
        out.append(
            np.array(
                [vad.is_speech(buf[i : i + step], SAMPLE_RATE) for i in range(0, len(buf), step)],
                dtype=np.float32,
            )
        )
    return out


@cache
def _kernel_inputs() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    hops = frames()
    offsets = np.zeros(len(hops) + 1, dtype=np.int64)
    offsets[1:] = np.cumsum([h.shape[0] for h in hops])
    return np.concatenate(hops), offsets, EnergyVadParams().as_array()


def run_energy_kernel() -> np.ndarray:
    """The numba VAD's kernel alone: one call for the 8 streams' hops."""
    batch, offsets, params = _kernel_inputs()
    states = np.zeros((offsets.shape[0] - 1, kernels.STATE_SIZE))
    out = np.empty(batch.shape[0], dtype=np.float32)
    kernels.energy_vad_kernel(batch, offsets, states, COEF, params, out)
    return out


@cache
def _probs() -> list[np.ndarray]:
    offsets = _kernel_inputs()[1]
    p = run_energy_kernel()
    return [p[offsets[i] : offsets[i + 1]] for i in range(offsets.shape[0] - 1)]


def run_hangover_kernel() -> int:
    """Hysteresis + gap bridging alone, on the numba VAD's probabilities."""
    c = VadConfig()
    closed = 0
    for p in _probs():
        state = np.zeros(kernels.HANGOVER_STATE_SIZE, dtype=np.int64)
        out = np.zeros((p.shape[0] + 1, 2), dtype=np.int64)
        closed += kernels.hangover_kernel(
            p, state, c.threshold, c.threshold - c.hysteresis,
            c.min_speech_hops, c.min_silence_hops, out,
        )  # fmt: skip
    return closed


def cases(backends: dict[str, VadBackend]) -> dict[str, Callable[[], object]]:
    found: dict[str, Callable[[], object]] = {"webrtcvad raw (floor)": run_webrtcvad_raw}
    for name, b in backends.items():
        found[f"{name} backend"] = lambda b=b: run_backend(b)
    found["energy kernel alone"] = run_energy_kernel
    found["hangover kernel alone"] = run_hangover_kernel
    return found


# ---------------------------------------------------------------------------
# pytest-benchmark


@pytest.fixture(scope="module")
def warmed() -> dict[str, VadBackend]:
    frames()
    run_energy_kernel()
    run_hangover_kernel()
    return {name: warm_backend(name) for name in BACKENDS}


def _info(benchmark) -> None:
    per = benchmark.stats.stats.min / stream_seconds()
    benchmark.extra_info["stream_seconds"] = stream_seconds()
    benchmark.extra_info["us_per_stream_second"] = round(per * 1e6, 2)
    benchmark.extra_info["streams_per_core"] = round(1 / per)


def test_webrtcvad_raw(benchmark, warmed):
    benchmark.pedantic(run_webrtcvad_raw, rounds=5, iterations=1)
    _info(benchmark)


@pytest.mark.parametrize("name", BACKENDS)
def test_backend(benchmark, warmed, name):
    probs = benchmark.pedantic(run_backend, args=(warmed[name],), rounds=3, iterations=1)
    assert all(p.shape[0] == SECONDS * HOPS_PER_SECOND for p in probs)
    _info(benchmark)


def test_webrtc_backend_agrees_with_raw(warmed):
    for ours, raw in zip(run_backend(warmed["webrtc"]), run_webrtcvad_raw(), strict=True):
        np.testing.assert_array_equal(ours, raw)


def test_energy_kernel(benchmark, warmed):
    benchmark.pedantic(run_energy_kernel, rounds=10, iterations=1)
    _info(benchmark)


def test_hangover_kernel(benchmark, warmed):
    benchmark.pedantic(run_hangover_kernel, rounds=10, iterations=1)
    _info(benchmark)


# ---------------------------------------------------------------------------
# python bench/bench_vad.py: the ratio table


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="VAD cost per stream-second, relative to webrtcvad.")
    ap.add_argument("--reps", type=int, default=5, help="best of this many runs per case")
    ap.add_argument("--vad", nargs="+", choices=BACKENDS, default=list(BACKENDS))
    args = ap.parse_args(argv)
    core = pin_one_core()
    frames()
    run_hangover_kernel()  # compiles both kernels
    todo = cases({name: warm_backend(name) for name in args.vad})
    best = dict.fromkeys(todo, float("inf"))
    for _ in range(args.reps):  # interleaved, so drift in machine load hits every case alike
        for name, fn in todo.items():
            t0 = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - t0)
    secs = stream_seconds()
    floor = best["webrtcvad raw (floor)"]
    print(
        f"{N_STREAMS} streams x {SECONDS} s of the sample, batches of {N_STREAMS} streams x "
        f"{BATCH_HOPS} hops, best of {args.reps}, core {core}\n"
    )
    print("| case | us per stream-second | vs raw webrtcvad | streams per core |")
    print("| --- | ---: | ---: | ---: |")
    for name, t in best.items():
        per = t / secs
        print(f"| {name} | {per * 1e6:.1f} | {t / floor:.3g}x | {1 / per:,.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
