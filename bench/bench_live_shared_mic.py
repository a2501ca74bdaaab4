"""Cost and label latency of a live shared-microphone stream, in process, on one core.

Why: a shared mic costs what an ordinary stream costs (decode, VAD, bleed stage,
signals) plus its diarizer (windows cut from the VAD's speech, the speaker encoder,
clustering). This runs the real `LiveEngine` twice over the same audio, N streams with
`shared_microphone` set and N without, and reports the difference per stream-second:
what the diarization adds. The encoder runs batched over all N streams, in the
engine's executor, as in the server.

Audio: ../shared/data/diarization/{dev00,dev01,sample}.wav one after the other (90 s of
real meetings), PCM, 20 ms frames, 100 ms ticks; each stream in its own session (the
same audio in one session would be taken for bleed). Also printed: how far the
committed labels trail the audio each stream has delivered (the latency a facilitator
sees, on top of the jitter buffer), p50/p95/max over all ticks.

    python bench/bench_live_shared_mic.py [--streams 1 4 16] [--reps 2]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

import numpy as np
from benchutil import pin_one_core, unwatch, watch

from engine.audio.decode import decode_file
from engine.config import LiveConfig, VadConfig
from engine.datasets import shared_data_dir
from engine.ingest import Codec, Role, StreamSpec
from engine.live import LiveEngine
from engine.types import HOPS_PER_SECOND

FRAME_MS = 20
FRAME = 16 * FRAME_MS
TICK_FRAMES = 5  # 100 ms of audio per tick


def run(
    pcm: np.ndarray, n: int, shared: bool, lags: list[float] | None = None
) -> tuple[float, float]:
    """Seconds busy (wall, and CPU of the whole process) for n streams over all of `pcm`,
    ingest to published snapshots."""
    loop = asyncio.new_event_loop()
    engine = LiveEngine(LiveConfig(jitter_ms=20, tick_ms=100), VadConfig(backend="silero"))
    engine._warm_up()
    handles = [
        engine.open_stream(
            StreamSpec(
                session_id=f"s{i}",
                participant_ref=f"room-{i}",
                role=Role.PARTICIPANT,
                codec=Codec.PCM16LE,
                sample_rate=16_000,
                channels=1,
                shared_microphone=shared,
            )
        )
        for i in range(n)
    ]
    frames = [pcm[i : i + FRAME].tobytes() for i in range(0, pcm.shape[0] - FRAME + 1, FRAME)]
    watchers = watch(engine, loop)
    t0, c0 = time.perf_counter(), time.process_time()
    for k0 in range(0, len(frames), TICK_FRAMES):
        for k in range(k0, min(k0 + TICK_FRAMES, len(frames))):
            for h in handles:
                engine.push_frame(h, k, k * FRAME_MS, None, frames[k])
        loop.run_until_complete(engine._process())
        engine._publish_due()
        if lags is not None and shared:
            p = engine.participant(handles[0])
            mic = p.mic
            if mic is not None and mic.done >= 0:
                delivered = (k0 + TICK_FRAMES) * FRAME_MS / 10
                lags.append((delivered - mic.committed) / HOPS_PER_SECOND)
    for h in handles:
        engine.close_stream(h)
    loop.run_until_complete(engine._process())
    busy, cpu = time.perf_counter() - t0, time.process_time() - c0
    unwatch(watchers, loop)
    engine._executor.shutdown(wait=True)
    loop.close()
    return busy, cpu


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
    root = Path(base) / "diarization"
    pcm = np.concatenate(
        [c for f in ("dev00", "dev01", "sample") for _, c in decode_file(root / f"{f}.wav")[1]]
    )
    audio_s = pcm.shape[0] / 16000
    lags: list[float] = []
    run(pcm, 1, True, lags)
    print(f"pinned to core {core}; {audio_s:.0f} s of real meeting audio, ticks of 100 ms")
    q = np.percentile(lags, [50, 95, 100])
    print(
        f"labels committed behind the audio delivered: p50 {q[0]:.2f} s, p95 {q[1]:.2f} s, "
        f"max {q[2]:.2f} s (diarizer latency_s 2.0, plus the VAD's decision)"
    )
    # wall time on the pinned core, and the process's CPU time: on a machine that other
    # jobs load, the wall figure grows with their share of the core, the CPU figure not
    head = ("streams", "ordinary ms/stream-s", "shared mic", "diarization adds", "CPU adds")
    print(f"{head[0]:>7} {head[1]:>21} {head[2]:>11} {head[3]:>17} {head[4]:>9}")
    for n in args.streams:
        # the least disturbed of reps runs (engine set-up and warm-up not timed)
        p_runs = [run(pcm, n, False) for _ in range(args.reps)]
        m_runs = [run(pcm, n, True) for _ in range(args.reps)]
        plain, mic = (min(r[0] for r in rs) / (n * audio_s) for rs in (p_runs, m_runs))
        p_cpu, m_cpu = (min(r[1] for r in rs) / (n * audio_s) for rs in (p_runs, m_runs))
        print(
            f"{n:7d} {plain * 1e3:21.2f} {mic * 1e3:11.2f} {(mic - plain) * 1e3:17.2f} "
            f"{(m_cpu - p_cpu) * 1e3:9.2f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
