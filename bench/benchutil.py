"""What every benchmark here shares: one pinned core, warmed-up backends, timing helpers.

Why pin: the issue's figure is "on one core"; and on a shared 2-core machine a
process that migrates between cores is noisier still. Absolute times remain noise
there: compare figures measured side by side in one run (ratios), not across runs.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncGenerator, Callable

from engine.audio.decode import decode_file
from engine.config import VadConfig
from engine.live import LiveEngine
from engine.offline import Analysis, analyze
from engine.sample import sample_session
from engine.types import SessionView
from engine.vad import VadBackend, make_backend


def pin_one_core() -> int | None:
    """Run this process (and threads it starts later) on one core: the lowest allowed."""
    if not hasattr(os, "sched_setaffinity"):
        return None  # not Linux: use `taskset -c 0` or equivalent
    core = min(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {core})
    return core


def warm_backend(name: str) -> VadBackend:
    """A backend whose first call does no compiling or session set-up (numba, ONNX)."""
    config = VadConfig(backend=name)
    backend = make_backend(config)
    analyze([sample_session()], config, backend=backend)
    return backend


def run_analysis(path: str | os.PathLike[str], backend: VadBackend) -> Analysis:
    result = analyze([path], VadConfig(backend=backend.name), backend=backend)
    if result.errors:
        raise RuntimeError(f"{path}: {result.errors[0]}")
    return result


def decode_only(path: str | os.PathLike[str]) -> int:
    """Demux + decode + resample every track of a file, no VAD; returns samples decoded."""
    _, chunks = decode_file(path)
    n = 0
    for _, pcm in chunks:
        n += pcm.shape[0]
    return n


def best_of(fn: Callable[[], object], reps: int) -> float:
    """Smallest wall time of `reps` calls: the least disturbed by other load."""
    best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def watch(
    engine: LiveEngine, loop: asyncio.AbstractEventLoop
) -> list[AsyncGenerator[SessionView, None]]:
    """One subscriber per session, as the load generator has (a session nobody
    subscribes to builds no snapshots). They never read: each holds its queue full,
    the newest snapshots in it. `unwatch` them before the loop closes."""
    views = [engine.subscribe(sid) for sid in engine.sessions]
    for v in views:
        loop.run_until_complete(anext(v))  # its first view: subscribed from here on
    return views


def unwatch(
    views: list[AsyncGenerator[SessionView, None]], loop: asyncio.AbstractEventLoop
) -> None:
    for v in views:
        loop.run_until_complete(v.aclose())
