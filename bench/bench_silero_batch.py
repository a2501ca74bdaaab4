"""Silero VAD v5's cost by batch size, and where a call's time goes.

Why: the issue's anchors for this kind of machine are about 110 us per 32 ms chunk at
batch 1 and 56-60 us per stream at batch >= 8; the 250-streams-per-core target for
Silero rests on them. This measures the same thing here, on the engine's own session
(`engine.vad.silero.make_session`: one intra-op thread), so a reader can tell how far
this machine is from the anchors, and, with `--ops`, which of the model's operators the
time goes to (onnxruntime's profiler; its own overhead inflates every operator, so read
the shares, not the times).

    python bench/bench_silero_batch.py [--batches 1 8 32] [--ops 32]
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import tempfile
import time

import numpy as np
from benchutil import pin_one_core

from engine.ort import onnxruntime as ort
from engine.vad.silero import CHUNK, CONTEXT, make_session, model_path

STATE = (2, 128)  # the model's recurrent state: (2, batch, 128)
SR = np.array(16000, dtype=np.int64)


def _inputs(batch: int) -> tuple[np.ndarray, np.ndarray]:
    """Speech-like noise (not zeros: the same arithmetic as real audio)."""
    x = np.random.default_rng(batch).normal(0.0, 0.1, (batch, CONTEXT + CHUNK))
    return x.astype(np.float32), np.zeros((STATE[0], batch, STATE[1]), np.float32)


def per_chunk_us(session: ort.InferenceSession, batch: int, seconds: float = 1.0) -> float:
    """Wall time of one call over `batch` streams' chunks, per stream-chunk, in us."""
    x, state = _inputs(batch)
    for _ in range(20):  # warm: allocations and caches
        _, state = session.run(None, {"input": x, "state": state, "sr": SR})
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        _, state = session.run(None, {"input": x, "state": state, "sr": SR})
        n += 1
    return (time.perf_counter() - t0) / n / batch * 1e6


def op_shares(batch: int, calls: int = 200) -> list[tuple[str, float]]:
    """Each operator type's share of the profiled kernel time (the `If` wrappers, which
    contain the others, left out)."""
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.log_severity_level = 3
    opts.enable_profiling = True
    with tempfile.TemporaryDirectory() as tmp:
        opts.profile_file_prefix = os.path.join(tmp, "silero")
        session = ort.InferenceSession(
            model_path(), sess_options=opts, providers=["CPUExecutionProvider"]
        )
        x, state = _inputs(batch)
        for _ in range(calls):
            _, state = session.run(None, {"input": x, "state": state, "sr": SR})
        with open(session.end_profiling()) as f:
            events = json.load(f)
    spent: collections.Counter[str] = collections.Counter()
    for e in events:
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time"):
            op = e["args"].get("op_name", "?")
            if op != "If":
                name = e["name"].removesuffix("_kernel_time").split("/")
                where = "/".join(p for p in name[1:3] if p) or op
                spent[f"{op} ({where})"] += e["dur"]
    total = sum(spent.values())
    return [(k, v / total) for k, v in spent.most_common(10)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 2, 4, 8, 16, 32, 64])
    ap.add_argument("--ops", type=int, default=0, help="profile the operators at this batch")
    args = ap.parse_args()
    pin_one_core()
    session = make_session()
    print("batch | us per call | us per stream-chunk | us per stream-second")
    for b in args.batches:
        us = per_chunk_us(session, b)
        print(f"{b:5d} | {us * b:11.1f} | {us:19.1f} | {us * 16000 / CHUNK:20,.0f}")
    if args.ops:
        print(f"\noperators at batch {args.ops} (share of the profiled kernel time):")
        for name, share in op_shares(args.ops):
            print(f"  {share:6.1%}  {name}")


if __name__ == "__main__":
    main()
