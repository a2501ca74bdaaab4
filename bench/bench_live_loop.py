"""The loop-side part of the live tick alone: what `_process` spends after the executor.

Why: bench_live_tick.py times the whole engine, where decode, VAD and prosody dwarf the
event loop's share (bleed hand-off, the bleed step, signals settle/advance, alerts) and
its noise hides a change there. This runs bench_live_tick's Rig (64 consenting PCM
streams in sessions of 8, webrtc VAD, 20 ms ticks) with the executor job run inline,
and times `_process` minus the executor job (so it includes the jitter release before
it and asyncio's hand-off, ~50 us per stream-second each), and `_advance_bleed` alone.

    PYTHONPATH=.:bench python bench/bench_live_loop.py [--ticks 1000] [--runs 5] [--bleed]
    PYTHONPATH=.:bench python bench/bench_live_loop.py --trace out.txt [--bleed]

--trace writes a digest of every loop-side result per tick (and the full state every
250 ticks); the same command on two checkouts must give identical files. --bleed makes
every odd stream of a session also hear the stream before it, so bleed is cut out.
Compare two commits side by side with `PYTHONPATH=<a checkout of each>:bench`,
alternately (a clean one: `git archive <commit> | tar -x -C <dir>`).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import hashlib
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from bench_live_tick import PER_SESSION, Rig
from benchutil import pin_one_core

from engine.live import LiveEngine


class _Inline(concurrent.futures.Executor):
    """Runs the job at submit: the executor part is then timed exactly, on this thread."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        f: concurrent.futures.Future[Any] = concurrent.futures.Future()
        f.set_result(fn(*args, **kwargs))
        return f


class Timed:
    """Wraps an engine method, summing its thread CPU time."""

    def __init__(self, fn: Callable[..., Any]) -> None:
        self.fn = fn
        self.total = 0.0

    def __call__(self, *args: Any) -> Any:
        t = time.thread_time()
        try:
            return self.fn(*args)
        finally:
            self.total += time.thread_time() - t


def _state(engine: LiveEngine) -> str:
    """Everything the loop side produces, as text: events, closed and cleaned segments,
    each tracker's segments and settle points, the floor walk and the sweep."""
    lines = []
    names = {}  # pseudonyms are keyed at random per run: name participants by order
    for sid, s in sorted(engine.sessions.items()):
        names.update({pid: f"{sid}.{k}" for k, pid in enumerate(s.participants)})
        lines.append(f"{sid} events={s.events}")
        for pid, p in s.participants.items():
            lines.append(f" {pid} closed={p.closed} speaking={p.speaking}")
        tr = s.signals
        for pid, t in tr._tracks.items():
            lines.append(f" {pid} segs={t.segments} settled={t.settled}")
        lines.append(f" floor={tr.floor!r}")
        sw = tr.sweep
        members = sorted(names.get(p, p) for p in sw.open_members)  # a set: order by name
        lines.append(f" sweep={sw.hop} {sw.first_speech} {sw.silence_start} {sw.overlap_start}")
        counts = sorted((names.get(p, p), v) for p, v in sw.overlap_counts.items())  # from a set
        lines.append(f"  {sw.overlap_hops} {counts} {members}")
        lines.append(f"  {sw.overlaps} {sw.silences}")
        if s.bleed is not None:
            lines.append(f" bleed done={s.bleed.done}")
    text = "\n".join(lines)
    for pid, name in names.items():
        text = text.replace(pid, name)
    return text


BLEED_DELAY_FRAMES = 4  # 80 ms: a loudspeaker copy, well inside max_lag_ms
BLEED_GAIN = 0.3


def _with_bleed(rig: Rig, frames: int) -> None:
    """Every odd stream of a session also hears the stream before it, delayed and
    quieter (PCM only): so the detector finds bleed and the cleaning path runs too."""
    first = next(rig.seq)  # the frame index the next tick uses
    rig.seq = iter(range(first, 10**9))
    played = [
        [clip[(n + off) % len(clip)] for n in range(first + frames)] for _, clip, off in rig.handles
    ]
    for i in range(1, len(rig.handles), 2):
        if i % PER_SESSION == 0:
            continue
        src, own = played[i - 1], played[i]
        for n in range(first + BLEED_DELAY_FRAMES, first + frames):
            a = np.frombuffer(own[n], np.int16).astype(np.float64)
            b = np.frombuffer(src[n - BLEED_DELAY_FRAMES], np.int16) * BLEED_GAIN
            own[n] = np.clip(a + b, -32768, 32767).astype(np.int16).tobytes()
    rig.handles = [(h, played[i], 0) for i, (h, _, _) in enumerate(rig.handles)]


def run(
    streams: int, ticks: int, trace: str | None, bleed: bool = False
) -> tuple[float, float, float]:
    rig = Rig("webrtc", "pcm", streams=streams, tick_frames=1, snapshot_s=60.0)
    engine = rig.engine
    if bleed:
        _with_bleed(rig, 100 + ticks)
    engine._executor.shutdown(wait=True)
    engine._executor = _Inline()  # type: ignore[assignment]
    out = open(trace, "w") if trace else None  # noqa: SIM115
    try:
        for _ in range(100):  # unmeasured: windows and baselines fill up
            rig.tick()
        analyse = Timed(engine._analyse)
        bleed = Timed(engine._advance_bleed)
        engine._analyse = analyse  # type: ignore[method-assign]
        engine._advance_bleed = bleed  # type: ignore[method-assign]
        total = 0.0
        for k in range(ticks):
            for _ in range(rig.tick_frames):
                n = next(rig.seq)
                for h, clip, offset in rig.handles:
                    engine.push_frame(h, n, n * 20, None, clip[(n + offset) % len(clip)])
            t = time.thread_time()
            rig.loop.run_until_complete(engine._process())
            total += time.thread_time() - t
            if out is not None:
                state = _state(engine)
                out.write(f"{k} {hashlib.sha1(state.encode()).hexdigest()}\n")
                if k % 250 == 249 or k == 0:
                    out.write(state + "\n")
            for s in engine.sessions.values():
                s.events.clear()  # as publishing would
        return total - analyse.total, bleed.total, analyse.total
    finally:
        if out is not None:
            out.close()
        rig.loop.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--streams", type=int, default=64)
    ap.add_argument("--ticks", type=int, default=1000, help="measured 20 ms ticks")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--trace", help="write per-tick results here (one run, not timed)")
    ap.add_argument("--bleed", action="store_true", help="mix loudspeaker bleed in")
    args = ap.parse_args()
    pin_one_core()
    if args.trace:
        run(args.streams, args.ticks, args.trace, args.bleed)
        return
    results = [run(args.streams, args.ticks, None, args.bleed) for _ in range(args.runs)]
    audio_s = args.streams * args.ticks * 0.020
    for name, k in (("loop side", 0), ("of which _advance_bleed", 1), ("executor", 2)):
        best = min(r[k] for r in results)
        print(f"{name:24s} min {best / audio_s * 1e6:7.1f} us per stream-second")


if __name__ == "__main__":
    main()
