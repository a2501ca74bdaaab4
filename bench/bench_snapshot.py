"""What one snapshot costs: `LiveEngine._view` (and `_publish_due`) for every session.

Why: the load benchmark publishes a snapshot of every session every 50 ms, and the
snapshot path (signals, views, affect means) showed up at 8-9 % of the engine's CPU.
This times only that path, on a LiveEngine fed like bench_live_tick's Rig (64
consenting PCM streams in sessions of 8), so that a change to it can be measured
without the noise of decoding, VAD and prosody.

    python bench/bench_snapshot.py [--streams 64] [--warm-s 60] [--reps 200] [--runs 5]
    python bench/bench_snapshot.py --digest views.txt   # every view of a fixed feed
    python bench/bench_snapshot.py --pb [--digest snapshots.txt]   # and server.snapshot_pb

It measures whichever engine Python imports: compare two commits by running it
alternately with `PYTHONPATH=<a checkout of each>`. `--digest` writes the repr of every
session's view after every tick of a fixed feed (no wall clock involved), so two
checkouts' outputs can be diffed for identity. Times are thread CPU time: another
process on a shared machine then inflates them less. `--pb` also times `snapshot_pb` on each
view (its protobuf conversion, what a subscriber is sent); with `--digest` it writes the
hex of every view's snapshot_pb, deterministically serialized, after its repr.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import time

from bench_live_tick import Rig
from benchutil import pin_one_core

import engine.live
from engine.live import LiveEngine
from engine.privacy import Pseudonymizer
from engine.server import snapshot_pb


class QuietRig(Rig):
    """The Rig without its wall-clock publishing: the state depends on the feed only."""

    def tick(self, publish: bool = False) -> None:
        super().tick(publish=publish)


def time_views(engine: LiveEngine, reps: int) -> float:
    """Seconds for one `_view` of every session (the min over `reps`)."""
    sessions = list(engine.sessions.values())
    best = float("inf")
    for _ in range(reps):
        t0 = time.thread_time()
        for s in sessions:
            engine._view(s, events=())
        best = min(best, time.thread_time() - t0)
    return best


def time_publish(engine: LiveEngine, reps: int) -> float:
    """Seconds for one `_publish_due` with every session due (the min over `reps`)."""
    sessions = list(engine.sessions.values())
    best = float("inf")
    for _ in range(reps):
        for s in sessions:
            s.next_publish = -1e9  # due
        t0 = time.thread_time()
        engine._publish_due()
        best = min(best, time.thread_time() - t0)
    return best


def time_pb(engine: LiveEngine, reps: int) -> float:
    """Seconds for one `snapshot_pb` of every session's view (the min over `reps`)."""
    views = [engine._view(s, events=()) for s in engine.sessions.values()]
    best = float("inf")
    for _ in range(reps):
        t0 = time.thread_time()
        for v in views:
            snapshot_pb(v)
        best = min(best, time.thread_time() - t0)
    return best


def digest(rig: QuietRig, ticks: int, path: str, pb: bool = False) -> str:
    h = hashlib.sha256()
    with open(path, "w") as out:
        for _ in range(ticks):
            rig.tick()
            for s in rig.engine.sessions.values():
                view = rig.engine._view(s, events=tuple(s.events))
                line = repr(view) + "\n"
                if pb:
                    line += snapshot_pb(view).SerializeToString(deterministic=True).hex() + "\n"
                s.events.clear()
                out.write(line)
                h.update(line.encode())
    return h.hexdigest()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--streams", type=int, default=64)
    ap.add_argument("--warm-s", type=float, default=60.0, help="seconds of audio fed first")
    ap.add_argument("--reps", type=int, default=200, help="timed snapshots per run")
    ap.add_argument("--runs", type=int, default=5, help="runs, each fed 1 s more audio")
    ap.add_argument("--digest", help="write every view of a fixed feed here instead")
    ap.add_argument("--pb", action="store_true", help="also time (or digest) snapshot_pb")
    args = ap.parse_args()
    pin_one_core()
    # pseudonyms from a fixed secret, so that two runs' views compare
    engine.live.Pseudonymizer = functools.partial(Pseudonymizer, b"bench_snapshot")  # type: ignore[misc, assignment]
    rig = QuietRig("webrtc", "pcm", streams=args.streams, tick_frames=5, snapshot_s=0.05)
    try:
        if args.digest:
            print(digest(rig, int(args.warm_s * 10), args.digest, args.pb))
            return
        for _ in range(int(args.warm_s * 10)):
            rig.tick()
        sessions = len(rig.engine.sessions)
        views, pubs, pbs = [], [], []
        for _ in range(args.runs):
            for _ in range(10):
                rig.tick()
            views.append(time_views(rig.engine, args.reps))
            pubs.append(time_publish(rig.engine, args.reps))
            if args.pb:
                pbs.append(time_pb(rig.engine, args.reps))
    finally:
        rig.close()
    timed = [("_view", views), ("_publish_due", pubs)] + ([("snapshot_pb", pbs)] if pbs else [])
    for name, runs in timed:
        best = min(runs)
        print(
            f"{name}: {best / sessions * 1e6:7.1f} us per session snapshot, "
            f"{best / args.streams * 1e6:6.2f} us per participant "
            f"(runs: {', '.join(f'{r / sessions * 1e6:.1f}' for r in runs)})"
        )


if __name__ == "__main__":
    main()
