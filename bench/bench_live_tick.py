"""The live engine's cost per stream per tick, in process (no gRPC), on one core.

Why: `groupsense bench` measures the whole server, where gRPC's per-message cost and
a shared machine blur the picture. This isolates what LiveEngine itself spends per
stream: frames pushed through ingest (validation, jitter buffer), one tick's
`_process` (release, decode, batched VAD, segments into signals) and snapshot
publishing, for 48 streams in sessions of 8, 50 ms ticks of 20 ms frames.

    pytest bench/bench_live_tick.py --benchmark-only

extra_info gives `us_per_stream_s` (CPU per second of one stream's audio) and the
streams one core would hold at that cost.
"""

from __future__ import annotations

import asyncio
import itertools

import pytest

from cli.bench import _clips
from engine.config import LiveConfig, VadConfig
from engine.ingest import Codec, Role, StreamSpec
from engine.live import LiveEngine, StreamHandle

STREAMS = 48
PER_SESSION = 8
TICK_FRAMES = 5  # 100 ms of audio per measured tick: 5 frames of 20 ms
FRAME_MS = 20


class Rig:
    """A LiveEngine with STREAMS open streams, fed frame by frame from pre-encoded clips."""

    def __init__(self, vad: str, codec: str) -> None:
        self.loop = asyncio.new_event_loop()
        self.engine = LiveEngine(
            LiveConfig(jitter_ms=20, tick_ms=100, snapshot_interval_s=1.0), VadConfig(backend=vad)
        )
        self.engine._warm_up()
        clips = _clips(codec)
        self.handles: list[tuple[StreamHandle, list[bytes]]] = []
        for i in range(STREAMS):
            spec = StreamSpec(
                session_id=f"s{i // PER_SESSION}",
                participant_ref=f"p{i}",
                role=Role.PARTICIPANT,
                codec=Codec.OPUS if codec == "opus" else Codec.PCM16LE,
                sample_rate=48_000 if codec == "opus" else 16_000,
                channels=1,
                affect_consent=True,
            )
            self.handles.append((self.engine.open_stream(spec), clips[i % len(clips)]))
        self.seq = itertools.count()
        for _ in range(20):  # past start-up: buffers, decoders and signals in steady state
            self.tick()

    def tick(self) -> None:
        for _ in range(TICK_FRAMES):
            k = next(self.seq)
            for h, clip in self.handles:
                self.engine.push_frame(h, k, k * FRAME_MS, None, clip[k % len(clip)])
        self.loop.run_until_complete(self.engine._process())
        self.engine._publish_due()

    def close(self) -> None:
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
