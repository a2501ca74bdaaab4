"""One digest of everything the live engine's executor side hands on, to show that a
change leaves every result identical (bit for bit) across two checkouts.

Why: bench_live_loop.py --trace covers the loop side (segments, settle points, signals);
this also covers what leaves the executor on the way there: the audio and speech flags
given to the affect path, the per-hop levels, segments and lost spans given to the
bleed stage, the hangover and timeline state of every participant after every tick,
and the final views once every session ends. It runs bench_live_tick's Rig with the
executor job inline and a fixed pseudonym secret (pseudonyms set the affect phases).

    PYTHONPATH=<tree>:<tree>/bench python bench/digest_live.py [--vad webrtc] [--codec pcm]
                                         [--gaps] [--final] [--ticks 400] [--streams 24]

--gaps drops frames at random (a fixed seed): lost packets bridged with zeros, and gaps
long enough to end an epoch. Run the same command on each checkout; the lines must match.

--final digests only what does not depend on which tick analysed a frame: the final
views, and per participant everything given to the affect path and the bleed stage,
joined up in order. For a change that moves work from one tick to another (the jitter
buffer releasing frames earlier) and must leave every result the same.
"""

from __future__ import annotations

import argparse
import hashlib
import random
import re
from collections.abc import Callable, Sequence
from typing import Any

import bench_live_loop
import numpy as np
from bench_live_tick import Rig

import engine.live
import engine.privacy
from engine.bleed.live import LiveBleed


class Digest:
    """SHA-1 over arrays (dtype, shape, bytes) and reprs, with pseudonyms named by order."""

    def __init__(self) -> None:
        self.sha = hashlib.sha1()
        self.names: dict[str, str] = {}

    def name(self, pid: str) -> str:
        return self.names.setdefault(pid, f"P{len(self.names)}")

    def text(self, s: str) -> str:
        for pid, name in self.names.items():
            s = s.replace(pid, name)
        return s

    def add(self, *items: Any) -> None:
        for x in items:
            if isinstance(x, np.ndarray):
                self.sha.update(f"{x.dtype} {x.shape}".encode())
                self.sha.update(np.ascontiguousarray(x).tobytes())
            else:
                self.sha.update(repr(x).encode())


def _hook(d: Digest, joined: dict[str, dict[str, list[Any]]] | None = None) -> None:
    """Wrap the executor's hand-offs so that each adds what it is given to `d`, or, with
    `joined`, appends it to the participant's lists there (by hand-off)."""
    affect_step = engine.live.affect_step

    def affect(streams: Sequence[Any], pcms: Sequence[np.ndarray], *rest: Any) -> Any:
        masks, ends = rest
        if joined is not None:
            for s, pcm, mask in zip(streams, pcms, masks, strict=True):
                lists = joined.setdefault(d.name(s.participant), {})
                lists.setdefault("pcm", []).append(pcm.copy())
                lists.setdefault("mask", []).append(np.array(mask, dtype=bool))
            return affect_step(streams, pcms, *rest)
        d.add("affect", [d.name(s.participant) for s in streams], list(ends))
        for pcm, mask in zip(pcms, masks, strict=True):
            d.add(pcm, np.asarray(mask))
        return affect_step(streams, pcms, *rest)

    engine.live.affect_step = affect  # type: ignore[assignment]
    for method in ("add_level_pieces", "add_segments", "add_lost"):
        fn: Callable[..., Any] = getattr(LiveBleed, method)

        def wrapped(
            self: LiveBleed, pid: str, *args: Any, _fn: Callable[..., Any] = fn, _m: str = method
        ) -> Any:
            if joined is not None:
                lists = joined.setdefault(d.name(pid), {})
                if _m == "add_level_pieces":  # by hop: one array from the first hop on
                    for hop, levels in args[0]:
                        lists.setdefault("level_hops", []).append(hop)
                        lists.setdefault("levels", []).append(levels.copy())
                else:
                    lists.setdefault(_m, []).extend(args[0] if _m == "add_segments" else [args])
                return _fn(self, pid, *args)
            d.add(_m, d.name(pid))
            if _m == "add_level_pieces":
                for hop, levels in args[0]:
                    d.add(hop, levels)
            else:
                d.add(args)
            return _fn(self, pid, *args)

        setattr(LiveBleed, method, wrapped)


def _add_joined(d: Digest, joined: dict[str, dict[str, list[Any]]]) -> None:
    """Each participant's hand-offs joined up, so that how they were split between
    ticks does not show; level pieces must still follow on from each other."""
    for name in sorted(joined, key=lambda n: int(n[1:])):
        lists = joined[name]
        d.add(name)
        for key in ("pcm", "mask", "levels"):
            if lists.get(key):
                d.add(key, np.concatenate(lists[key]))
        hops = lists.get("level_hops", [])
        if hops:
            sizes = [lv.shape[0] for lv in lists["levels"]]
            follow = all(a + n == b for a, n, b in zip(hops, sizes, hops[1:], strict=False))
            d.add("level_hops", hops[0], follow)
        d.add(lists.get("add_segments", []), lists.get("add_lost", []))


def run(vad: str, codec: str, streams: int, ticks: int, gaps: bool, final: bool = False) -> str:
    secret = b"digest_live: the same pseudonyms in every run"
    init = engine.privacy.Pseudonymizer.__init__
    engine.privacy.Pseudonymizer.__init__ = (  # type: ignore[method-assign]
        lambda self, secret_=None: init(self, secret)
    )
    d = Digest()
    joined: dict[str, dict[str, list[Any]]] | None = {} if final else None
    _hook(d, joined)
    rig = Rig(vad, codec, streams=streams, tick_frames=1, snapshot_s=0.05)
    engine_ = rig.engine
    engine_._executor.shutdown(wait=True)
    engine_._executor = bench_live_loop._Inline()  # type: ignore[assignment]
    if final:  # named in the order they joined, not by which reaches a hand-off first
        for s in engine_.sessions.values():
            for pid in s.participants:
                d.name(pid)
    rng = random.Random(7)
    dropping = [0] * len(rig.handles)
    for k in range(ticks):
        n = next(rig.seq)
        for i, (handle, clip, offset) in enumerate(rig.handles):
            if gaps:
                if dropping[i]:
                    dropping[i] -= 1
                    continue
                if rng.random() < 0.01:  # 20 or 40 ms bridged; 600 ms, 1.6 s end the epoch
                    dropping[i] = rng.choice([1, 2, 4, 30, 80])
            engine_.push_frame(handle, n, n * 20, None, clip[(n + offset) % len(clip)])
        rig.loop.run_until_complete(engine_._process())
        if not final:
            d.add(k, d.text(bench_live_loop._state(engine_)))
        for s in engine_.sessions.values():
            if not final:
                for p in s.participants.values():
                    pl = p.pipeline
                    d.add(pl.hangover._state, p.next_sample, p.epoch_hop, p.unknown_hops)
                    d.add(p.level_hops, pl.hops_in, pl.hops_done, pl.audio_hops)
            s.events.clear()  # as publishing would
    views = [
        rig.loop.run_until_complete(engine_.end_session(sid)) for sid in list(engine_.sessions)
    ]
    if joined is not None:
        _add_joined(d, joined)
    d.add(re.sub(r"seq=\d+", "seq=?", d.text(repr(views))))  # seq counts wall-clock snapshots
    rig.loop.close()
    return d.sha.hexdigest()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--vad", default="webrtc")
    ap.add_argument("--codec", choices=("opus", "pcm"), default="pcm")
    ap.add_argument("--streams", type=int, default=24)
    ap.add_argument("--ticks", type=int, default=400)
    ap.add_argument("--gaps", action="store_true", help="drop frames at random (fixed seed)")
    ap.add_argument(
        "--final", action="store_true", help="only what does not depend on the tick (above)"
    )
    a = ap.parse_args()
    digest = run(a.vad, a.codec, a.streams, a.ticks, a.gaps, a.final)
    what = " final" if a.final else ""
    print(f"{a.vad}/{a.codec} streams={a.streams} ticks={a.ticks} gaps={a.gaps}{what}: {digest}")


if __name__ == "__main__":
    main()
