"""The per-frame ingest path of StreamNode, in process (no gRPC, no analysis), on one core.

Why: under load a server's event loop spends about a fifth of its CPU taking frames
in: `_Node.batch` turns a FrameBatch into (handle, sequence, timestamp, payload)
items, `LiveEngine.push_batch` checks each frame and puts it in its stream's jitter
buffer (order, duplicates, gaps, clock skew), and every tick `JitterBuffer.release`
takes out what is due. This times exactly that, per frame, for real pb.FrameBatch
messages: `channels` PCM (or Opus) channels in sessions of 8, one 20 ms frame each per
batch, capture stamps that follow the wall clock (so no clock-skew warning is due, as on a
healthy node), and a release of every buffer after every batch (a 20 ms tick).

    python bench/bench_ingest.py [--channels 256] [--batches 2000] [--reorder 0.0]
                                 [--codec pcm|opus]

`--reorder p` swaps each channel's frame with its next one with probability p (the
jitter buffer's reordered path). It prints CPU time (process_time) per frame for
`_Node.batch` and for the release, the median over batches. It measures whichever
engine Python imports, so it compares two commits side by side: run it alternately
with `PYTHONPATH=<a checkout of each>`, a few times each (one run's figures alone are
noise on a shared machine; `taskset -c N` keeps it off a core another job is busy on).
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from typing import Any

import numpy as np
from benchutil import pin_one_core

from engine.config import LiveConfig, VadConfig
from engine.live import LiveEngine
from engine.server import Auth, IngestServicer, _Node
from groupsense.v1 import groupsense_pb2 as pb

PER_SESSION = 8
FRAME_MS = 20
RATE = 16_000


class _Context:
    """The one thing `_Node` asks of a grpc.aio context (auth is off)."""

    def invocation_metadata(self) -> tuple[Any, ...]:
        return ()


def run(
    channels: int, batches: int, reorder: float, codec: str = "pcm", seed: int = 0
) -> tuple[float, float, int]:
    """(us per frame in `_Node.batch`, us per frame in the releases, warnings seen): the
    median over batches, which a shared machine's bursts of other load move least."""
    engine = LiveEngine(
        LiveConfig(jitter_ms=20, tick_ms=FRAME_MS, max_streams=4096, max_sessions=1024),
        VadConfig(backend="webrtc"),
    )
    node = _Node(IngestServicer(engine, Auth(None), max_node_channels=4096), _Context())  # type: ignore[arg-type]
    for ch in range(channels):
        cfg = pb.StreamConfig(
            session_id=f"s{ch // PER_SESSION}",
            participant_ref=f"p{ch}",
            role=pb.ROLE_PARTICIPANT,
            codec=pb.CODEC_OPUS if codec == "opus" else pb.CODEC_PCM16LE,
            sample_rate_hz=48_000 if codec == "opus" else RATE,
            channels=1,
        )
        status = node.open(pb.ChannelOpen(channel=ch, config=cfg))
        if status.error:
            raise RuntimeError(status.error)
    participants = [p for s in engine.sessions.values() for p in s.participants.values()]
    rng = random.Random(seed)
    noise = np.random.default_rng(seed).normal(0, 1000, RATE * FRAME_MS // 1000)
    payload = noise.astype("<i2").tobytes()
    if codec == "opus":  # one 20 ms CELT frame (TOC 0xF8) of a typical size; not decoded
        payload = bytes([0xF8]) + payload[:79]
    t0 = time.monotonic()
    held: dict[int, pb.ChannelFrame] = {}  # a frame swapped with its channel's next one
    batch_us: list[float] = []
    release_us: list[float] = []
    warnings = 0
    for k in range(batches):
        stamp = int((time.monotonic() - t0) * 1000)
        batch = pb.FrameBatch()
        for ch in range(channels):
            f = pb.ChannelFrame(channel=ch, sequence=k, capture_ms=stamp, payload=payload)
            if ch in held:
                batch.frames.append(f)
                batch.frames.append(held.pop(ch))
            elif reorder and k + 1 < batches and rng.random() < reorder:
                held[ch] = f
            else:
                batch.frames.append(f)
        # as the server gets it: freshly parsed, no wrapper objects made yet
        batch = pb.FrameBatch.FromString(batch.SerializeToString())
        frames = len(batch.frames)
        c = time.process_time()
        out, _ = node.batch(batch)
        batch_us.append((time.process_time() - c) / frames * 1e6)
        warnings += sum(len(s.ack.warnings) for s in out)
        if any(s.error for s in out):
            raise RuntimeError(next(s.error for s in out if s.error))
        c = time.process_time()
        for p in participants:
            p.jitter.release()
        release_us.append((time.process_time() - c) / frames * 1e6)
    engine._executor.shutdown(wait=True)
    return statistics.median(batch_us), statistics.median(release_us), warnings


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--channels", type=int, default=256)
    ap.add_argument("--batches", type=int, default=2000, help="measured 20 ms batches")
    ap.add_argument("--reorder", type=float, default=0.0)
    ap.add_argument("--codec", choices=("pcm", "opus"), default="pcm")
    args = ap.parse_args()
    pin_one_core()
    run(args.channels, 100, args.reorder, args.codec)  # unmeasured: caches warm up
    batch_us, release_us, warnings = run(args.channels, args.batches, args.reorder, args.codec)
    print(
        f"{args.channels} {args.codec} channels, {args.batches} batches: _Node.batch "
        f"{batch_us:.2f} us per frame, release {release_us:.2f} us per frame "
        f"({warnings} warnings)"
    )


if __name__ == "__main__":
    main()
