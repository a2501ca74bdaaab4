"""The live engine's cost per stream-second, in process (no gRPC), on one core.

Why: `groupsense bench` measures the whole server, where gRPC's per-message cost and
a shared machine blur the picture. This isolates what LiveEngine itself spends per
stream: frames pushed through ingest (validation, jitter buffer), each tick's
`_process` (release, decode, batched VAD, prosody and the affect model for consenting
participants, bleed, segments into signals) and snapshot publishing.

    pytest bench/bench_live_tick.py --benchmark-only      # 48 streams, 100 ms ticks
    python bench/bench_live_tick.py [--streams 64] [--codec pcm] [--vad webrtc] [--ticks 750]
                                    [--stages] [--affect prosody] [--unwatched]

The command line uses `groupsense bench`'s server settings (20 ms ticks, 20 ms jitter
window, a snapshot every 50 ms, every participant consenting, a subscriber per session
unless `--unwatched`) and prints the process's
CPU time per stream-second. It measures whichever engine Python imports, so the same
command compares two commits side by side: run it alternately with
`PYTHONPATH=<a checkout of each>` (a `git worktree`), a few times each. `--stages` also
splits the time by stage (each stage's own thread CPU time, through wrappers made here:
the engine is not changed), so the table says where the time goes.

extra_info (pytest) gives `us_per_stream_s` (CPU per second of one stream's audio) and
the streams one core would hold at that cost.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import itertools
import time
from collections.abc import Callable
from typing import Any

import pytest
from benchutil import pin_one_core, unwatch, watch

from cli.bench import AFFECT_MODES, _clips
from engine.config import LiveConfig, VadConfig
from engine.ingest import Codec, Role, StreamSpec
from engine.live import LiveEngine, StreamHandle

STREAMS = 48
PER_SESSION = 8
TICK_FRAMES = 5  # 100 ms of audio per measured tick: 5 frames of 20 ms
FRAME_MS = 20


class Rig:
    """A LiveEngine with `streams` open streams, fed frame by frame from pre-encoded clips;
    stream i starts its clip at a different frame, so sessions are not in lockstep."""

    def __init__(
        self,
        vad: str,
        codec: str,
        *,
        streams: int = STREAMS,
        tick_frames: int = TICK_FRAMES,
        snapshot_s: float = 1.0,
        affect_model: bool = True,
        watched: bool = True,
    ) -> None:
        self.loop = asyncio.new_event_loop()
        self.tick_frames = tick_frames
        self.engine = LiveEngine(
            LiveConfig(
                jitter_ms=20,
                tick_ms=tick_frames * FRAME_MS,
                snapshot_interval_s=snapshot_s,
                affect_model=affect_model,
            ),
            VadConfig(backend=vad),
        )
        self.engine._warm_up()
        clips = _clips(codec)
        self.handles: list[tuple[StreamHandle, list[bytes], int]] = []
        for i in range(streams):
            spec = StreamSpec(
                session_id=f"s{i // PER_SESSION}",
                participant_ref=f"p{i}",
                role=Role.PARTICIPANT,
                codec=Codec.OPUS if codec == "opus" else Codec.PCM16LE,
                sample_rate=48_000 if codec == "opus" else 16_000,
                channels=1,
                affect_consent=True,
            )
            clip = clips[i % len(clips)]
            self.handles.append((self.engine.open_stream(spec), clip, (i * 37) % len(clip)))
        self.seq = itertools.count()
        # a subscriber per session, as the load generator has (unwatched: none)
        self.watchers = watch(self.engine, self.loop) if watched else []
        for _ in range(20):  # past start-up: buffers, decoders and signals in steady state
            self.tick()

    def tick(self, publish: bool = True) -> None:
        """One tick's frames in, analysed, and (`publish`) the snapshots that are due."""
        for _ in range(self.tick_frames):
            k = next(self.seq)
            for h, clip, offset in self.handles:
                self.engine.push_frame(h, k, k * FRAME_MS, None, clip[(k + offset) % len(clip)])
        self.loop.run_until_complete(self.engine._process())
        if publish:  # on the session clock: the snapshots a real-time server would send
            self.engine._publish_due(k * FRAME_MS / 1000 + 1.0)

    def close(self) -> None:
        unwatch(self.watchers, self.loop)
        self.engine._executor.shutdown(wait=True)
        self.loop.close()


@pytest.mark.parametrize(
    ("vad", "codec"),
    [("webrtc", "opus"), ("webrtc", "pcm"), ("numba", "opus"), ("silero", "opus")],
)
def test_live_tick(benchmark, vad: str, codec: str) -> None:  # type: ignore[no-untyped-def]
    rig = Rig(vad, codec)
    try:
        benchmark.pedantic(rig.tick, rounds=30, iterations=1, warmup_rounds=2)
        per_tick = benchmark.stats.stats.min
        audio_s = TICK_FRAMES * FRAME_MS / 1000
        us = per_tick / STREAMS / audio_s * 1e6
        benchmark.extra_info.update(
            streams=STREAMS,
            us_per_stream_tick=round(per_tick / STREAMS * 1e6, 1),
            us_per_stream_s=round(us, 1),
            streams_per_core=int(1e6 / us),
        )
        p = rig.engine.participant(rig.handles[0][0])
        assert p.frames_received == next(rig.seq)  # nothing dropped on the way in
        assert rig.engine.processed_ms(rig.handles[0][0]) > 0  # and it was analysed
    finally:
        rig.close()


STAGES = (  # (owner, attribute, label): the executor's stages, then the event loop's
    ("engine.live:LiveEngine", "_analyse", "executor: all"),
    ("engine.live", "step", "executor: VAD step"),
    ("engine.live:LiveEngine", "_feed_affect", "executor: affect path"),
    ("engine.affect.stream", "process_batch", "executor: affect: prosody"),
    ("engine.affect.stream", "batch_features", "executor: affect: model features"),
    ("engine.live:LiveEngine", "_place", "executor: placing audio"),
    ("engine.live:LiveEngine", "push_frame", "loop: ingest (push_frame)"),
    ("engine.live:LiveEngine", "_advance_bleed", "loop: bleed step"),
    ("engine.live:LiveEngine", "_publish_due", "loop: snapshots"),
)


def time_stages(spent: collections.Counter[str]) -> None:
    """Wrap each stage so that its calls add their thread CPU time to `spent`."""
    import importlib

    for owner, attr, label in STAGES:
        module, _, cls = owner.partition(":")
        target: Any = importlib.import_module(module)
        if cls:
            target = getattr(target, cls)
        fn: Callable[..., Any] = getattr(target, attr)

        def timed(*args: Any, _fn: Callable[..., Any] = fn, _label: str = label, **kw: Any) -> Any:
            t = time.thread_time()
            try:
                return _fn(*args, **kw)
            finally:
                spent[_label] += time.thread_time() - t

        setattr(target, attr, timed)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--streams", type=int, default=64)
    ap.add_argument("--codec", choices=("opus", "pcm"), default="pcm")
    ap.add_argument("--vad", default="webrtc")
    ap.add_argument("--ticks", type=int, default=750, help="measured 20 ms ticks")
    ap.add_argument("--stages", action="store_true", help="split the CPU time by stage")
    ap.add_argument(
        "--affect",
        choices=AFFECT_MODES,
        default="model",
        help="prosody: LiveConfig.affect_model off (prosody and its cues only)",
    )
    ap.add_argument(
        "--unwatched", action="store_true", help="no subscribers: sessions build no snapshots"
    )
    args = ap.parse_args()
    pin_one_core()
    spent: collections.Counter[str] = collections.Counter()
    if args.stages:
        time_stages(spent)
    rig = Rig(
        args.vad,
        args.codec,
        streams=args.streams,
        tick_frames=1,
        snapshot_s=0.05,
        affect_model=args.affect == "model",
        watched=not args.unwatched,
    )
    try:
        for _ in range(100):  # unmeasured: the affect windows and baselines fill up
            rig.tick()
        spent.clear()
        cpu = time.process_time()
        for _ in range(args.ticks):
            rig.tick()
        cpu = time.process_time() - cpu
    finally:
        rig.close()
    us = cpu / args.streams / (args.ticks * FRAME_MS / 1000) * 1e6
    print(
        f"{args.vad}/{args.codec}, {args.streams} consenting streams "
        f"({'with' if args.affect == 'model' else 'without'} the affect model), 20 ms ticks: "
        f"{us:,.0f} us CPU per stream-second ({int(1e6 / us)} streams per core)"
    )
    if args.stages:
        stream_s = args.streams * args.ticks * FRAME_MS / 1000
        top = [label for _, _, label in STAGES if label.count(":") == 1 and "executor" not in label]
        rest = cpu - spent["executor: all"] - sum(spent[label] for label in top)
        for label, secs in [(lb, spent[lb]) for _, _, lb in STAGES] + [("loop: the rest", rest)]:
            print(f"  {label:<36}{secs / stream_s * 1e6:>7,.0f} us per stream-second")


if __name__ == "__main__":
    main()
