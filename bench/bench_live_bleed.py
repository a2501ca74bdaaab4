"""Cost of the live bleed stage (engine/bleed/live.py) per tick and session, on one core.

Why: `LiveBleed.advance` runs on the event loop once per tick for every session, so its
cost times the number of sessions must stay well under the tick. Each case feeds S
streams of speech-like levels (5 new hops per stream per tick: the default 50 ms tick),
a closed segment every 0.5 s, and steps the stage: detector kernel, streaming tidy,
release of cleaned segments.

    pytest bench/bench_live_bleed.py --benchmark-only
    python bench/bench_live_bleed.py   # the table, in one run
"""

from __future__ import annotations

import time

import numpy as np
import pytest

from engine.bleed.live import LiveBleed
from engine.config import BleedConfig
from engine.types import SpeechSegment

HOPS_PER_TICK = 5


class Feeder:
    """S streams of random levels; one stream closes a 30-hop segment every 50 hops."""

    def __init__(self, streams: int, ticks: int) -> None:
        rng = np.random.default_rng(0)
        self.keys = [f"s{k}" for k in range(streams)]
        self.levels = rng.normal(-40, 10, (streams, (ticks + 2) * HOPS_PER_TICK)).astype(np.float32)
        self.stage = LiveBleed(BleedConfig(), 12)
        for k in self.keys:
            self.stage.add_stream(k)
        self.pos = 0
        self.tick()  # compile / load the kernel outside the timing

    def tick(self) -> None:
        lb, pos = self.stage, self.pos
        for j, k in enumerate(self.keys):
            lb.add_levels(k, pos, self.levels[j, pos : pos + HOPS_PER_TICK])
        if pos % 50 == 0 and pos >= 50:
            lb.add_segments(
                self.keys[(pos // 50) % len(self.keys)], [SpeechSegment(pos - 40, pos - 10)]
            )
        self.pos = pos + HOPS_PER_TICK
        lb.advance(self.pos)
        lb.take()


@pytest.mark.parametrize("streams", [4, 8, 32])
def test_tick(benchmark, streams: int) -> None:  # type: ignore[no-untyped-def]
    f = Feeder(streams, 20_000)
    benchmark.pedantic(f.tick, rounds=2000, iterations=1)


def main() -> None:
    print("streams  us/tick  share of a 50 ms tick")
    for streams in (4, 8, 16, 32):
        ticks = 2000
        f = Feeder(streams, ticks)
        t = time.perf_counter()
        for _ in range(ticks - 1):
            f.tick()
        us = (time.perf_counter() - t) / (ticks - 1) * 1e6
        print(f"{streams:7d}  {us:7.0f}  {us / 50_000:.2%}")


if __name__ == "__main__":
    main()
