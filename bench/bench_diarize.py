"""Cost of shared-microphone diarization per stream-second, on one pinned core.

Audio: the 30 s recordings of ../shared/data/diarization/{dev00,dev01,sample}.wav, one
after the other (90 s), with the silero VAD's speech mask, the same for every stream.
N streams are stepped together with `step_streams` (one batched ONNX call per tick of
100 ms, as a live session would); cost = busy time / (N x audio seconds). The encoder
alone is also timed per window at several batch sizes.

    python bench/bench_diarize.py [--streams 1 4 16] [--seconds 90]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from benchutil import best_of, pin_one_core

from cli.eval_diar import load_items, vad_mask
from engine.datasets import shared_data_dir
from engine.diarize.embed import SpeakerEmbedder
from engine.diarize.online import DiarizeConfig, SharedMicDiarizer, step_streams
from engine.types import HOPS_PER_SECOND

TICK = 10  # hops per step: 100 ms


def run_streams(
    embedder: SpeakerEmbedder, hops: np.ndarray, mask: np.ndarray, n: int, latency: float
) -> float:
    ds = [SharedMicDiarizer(embedder, DiarizeConfig(latency_s=latency)) for _ in range(n)]
    t0 = time.perf_counter()
    for i in range(0, hops.shape[0], TICK):
        h, m = hops[i : i + TICK], mask[i : i + TICK]
        step_streams(embedder, ds, [h] * n, [m] * n)
    for d in ds:
        d.flush()
    return time.perf_counter() - t0


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--streams", type=int, nargs="+", default=[1, 4, 16])
    ap.add_argument("--reps", type=int, default=2)
    args = ap.parse_args()
    base = shared_data_dir()
    if base is None:
        print("../shared/data is not present", file=sys.stderr)
        return 2
    core = pin_one_core()
    items = {it.fid: it for it in load_items(Path(base) / "diarization")}
    hops = np.concatenate([items[f].hops for f in ("dev00", "dev01", "sample")])
    mask = np.concatenate([vad_mask(items[f].hops, "silero") for f in ("dev00", "dev01", "sample")])
    audio_s = hops.shape[0] / HOPS_PER_SECOND
    embedder = SpeakerEmbedder()
    run_streams(embedder, hops[:1000], mask[:1000], 1, 1.0)  # warm up ONNX
    print(
        f"pinned to core {core}; {audio_s:.0f} s of audio, {mask.mean():.0%} speech, "
        "ticks of 100 ms"
    )
    print(f"{'streams':>7} {'latency':>7} {'ms per stream-s':>16} {'streams per core':>17}")
    for n in args.streams:
        for latency in (1.0, 5.0):
            busy = best_of(lambda: run_streams(embedder, hops, mask, n, latency), args.reps)  # noqa: B023
            per = busy / (n * audio_s)
            print(f"{n:7d} {latency:6.0f}s {per * 1e3:16.2f} {1 / per:17.0f}")
    rng = np.random.default_rng(0)
    print(f"{'batch':>7} {'ms per 1.5 s window':>20}")
    for b in (1, 8, 32):
        w = [rng.normal(0, 0.05, 24000).astype(np.float32) for _ in range(b)]
        t = best_of(lambda: embedder.embed(w), 3)  # noqa: B023
        print(f"{b:7d} {t / b * 1e3:20.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
