"""The affect path as the live engine feeds it, timed and digested: one command compares
two commits for speed and for identical results.

Streams get the bundled sample's voices (each from a different offset) with the webrtc
VAD's flags, in 500 ms blocks at 25 phases 20 ms apart, as LiveEngine._feed_affect
sends them: each call of `affect_step` holds the few streams whose block ends at that
tick. The digest covers every ProsodyHops `process_batch` returns, every feature matrix
given to the model, the model's outputs, every cue and each stream's final state.

    PYTHONPATH=<tree> python bench/bench_affect_digest.py [--streams 64] [--seconds 60]
        [--reps 3] [--digest] [--feed /tmp/feed.npz]

Prints CPU time (time.process_time) per stream-second, best of --reps, and with
--digest one sha256 over all outputs (a separate, untimed run).
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import os
import sys
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import numpy as np
from benchutil import pin_one_core

import engine.affect.stream as stream_mod
from engine.affect.cues import CueDetector
from engine.affect.stream import AffectStream, affect_step, shared_model
from engine.audio.decode import decode_file
from engine.config import VadConfig
from engine.pipeline import ParticipantPipeline, step
from engine.sample import sample_session
from engine.types import HOP
from engine.vad import make_backend

BLOCK = 50  # hops per affect block (engine/live.py AFFECT_BLOCK_HOPS)
PHASES = 25
FEED = 10  # hops per VAD step while preparing


def prepare(streams: int, seconds: float) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per stream: (int16 audio of whole hops, VAD speech flags), whole duration."""
    tracks, it = decode_file(sample_session())
    chunks = list(it)
    audio = [np.concatenate([pcm for i, pcm in chunks if i == k]) for k in range(len(tracks))]
    n = int(seconds * 16000) // (HOP * FEED) * HOP * FEED
    vad = VadConfig()
    backend = make_backend(vad)
    out = []
    for s in range(streams):
        src = audio[s % len(audio)]
        x = np.resize(np.roll(src, -(s * 7919 * HOP) % src.shape[0]), n).astype(np.int16)
        p = ParticipantPipeline.open("b", backend, vad)
        p.keep_audio = True
        pcm, sp = [], []
        for b in range(n // (HOP * FEED)):
            p.feed(x[b * HOP * FEED : (b + 1) * HOP * FEED])
            step(backend, [p])
            for hops, speech in p.audio:
                pcm.append(hops.reshape(-1))
                sp.append(speech)
            p.audio.clear()
        out.append((np.concatenate(pcm), np.concatenate(sp)))
    return out


def schedule(
    feed: list[tuple[np.ndarray, np.ndarray]],
) -> list[list[tuple[int, np.ndarray, np.ndarray, int]]]:
    """Per 20 ms tick, the calls' items: (stream, pcm, speech, end hop)."""
    total = min(sp.shape[0] for _, sp in feed)
    ticks: list[list[tuple[int, np.ndarray, np.ndarray, int]]] = []
    done = [0] * len(feed)
    for t in range(2, total + 1, 2):
        items = []
        for s, (pcm, sp) in enumerate(feed):
            phase = s % PHASES * (BLOCK // PHASES)
            if (t - phase) % BLOCK == 0 or t == total:
                a, done[s] = done[s], t
                if t > a:
                    items.append((s, pcm[a * HOP : t * HOP], sp[a:t], t))
        if items:
            ticks.append(items)
    return ticks


def run(ticks: list[list[tuple[int, np.ndarray, np.ndarray, int]]], n: int) -> list[Any]:
    streams = [AffectStream(f"p{k}") for k in range(n)]
    cues: list[Any] = []
    for items in ticks:
        cues += affect_step(
            [streams[s] for s, _, _, _ in items],
            [pcm for _, pcm, _, _ in items],
            [sp for _, _, sp, _ in items],
            [end for _, _, _, end in items],
        )
    return [streams, cues]


def digest(ticks: list[list[tuple[int, np.ndarray, np.ndarray, int]]], n: int) -> str:
    h = hashlib.sha256()

    def arr(a: Any) -> None:
        a = np.ascontiguousarray(np.asarray(a))
        h.update(f"{a.dtype}{a.shape}".encode())
        h.update(a.tobytes())

    def wrap(name: str, record: Callable[[Any, Any], None]) -> None:
        orig = getattr(stream_mod, name)

        def f(*args: Any, **kw: Any) -> Any:
            out = orig(*args, **kw)
            record(args, out)
            return out

        setattr(stream_mod, name, f)

    def hops(_: Any, out: Any) -> None:
        for ph in out:
            h.update(str(ph.start_hop).encode())
            for a in (ph.values, ph.speech, ph.voiced, ph.nucleus):
                arr(a)

    def features(_: Any, out: Any) -> None:
        arr(out)

    def obj(o: Any) -> None:
        """Exact state of a (nested) dataclass: arrays by bytes, the rest by repr."""
        if isinstance(o, np.ndarray):
            arr(o)
        elif dataclasses.is_dataclass(o):
            h.update(type(o).__name__.encode())
            for f in dataclasses.fields(o):
                obj(getattr(o, f.name))
        elif isinstance(o, list | tuple | deque):
            h.update(f"{type(o).__name__}{len(o)}".encode())
            for x in o:
                obj(x)
        elif isinstance(o, dict):
            for key in sorted(o):
                h.update(repr(key).encode())
                obj(o[key])
        else:
            h.update(repr(o).encode())

    wrap("process_batch", hops)
    wrap("batch_features", features)
    model = shared_model()

    class Model:
        def predict(self, x: Any) -> Any:
            out = model.predict(x)
            arr(out.arousal)
            if out.valence is not None:
                arr(out.valence)
            return out

    orig_model = stream_mod.shared_model
    stream_mod.shared_model = Model  # type: ignore[assignment]
    orig_update = CueDetector.update

    def update(self: CueDetector, t_s: float, features: Any) -> Any:
        h.update(repr(t_s).encode())
        arr(np.asarray(features, np.float64))
        return orig_update(self, t_s, features)

    CueDetector.update = update  # type: ignore[method-assign]
    try:
        streams, cues = run(ticks, n)
    finally:
        CueDetector.update = orig_update  # type: ignore[method-assign]
        stream_mod.shared_model = orig_model
    obj(cues)
    for s in streams:
        obj(s.prosody.state)
        obj([s.window.buf, s.window.fill])  # its audio and fill, not its settings
        obj(s.acc)
        obj(s.cues)
        obj([list(s.arousal), list(s.valence), s.arousal_sum, s.valence_sum, s.windows])
    return h.hexdigest()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Affect path as the live engine feeds it.")
    ap.add_argument("--streams", type=int, default=64)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--digest", action="store_true")
    ap.add_argument("--feed", help="a .npz to load the prepared feed from (or save it to)")
    args = ap.parse_args(argv)
    core = pin_one_core()
    shared_model()
    if args.feed and os.path.exists(args.feed):
        with np.load(args.feed) as z:
            feed = [(z[f"pcm{i}"], z[f"sp{i}"]) for i in range(args.streams)]
    else:
        feed = prepare(args.streams, args.seconds)
        if args.feed:  # the same input for both sides of a comparison, prepared once
            arrays = {f"pcm{i}": p for i, (p, _) in enumerate(feed)}
            np.savez(args.feed, **arrays, **{f"sp{i}": m for i, (_, m) in enumerate(feed)})
    speech = float(np.mean(np.concatenate([sp for _, sp in feed])))
    ticks = schedule(feed)
    run(ticks[:50], args.streams)  # warm-up: numba, ONNX
    best = float("inf")
    for _ in range(args.reps):
        t0 = time.process_time()
        run(ticks, args.streams)
        best = min(best, time.process_time() - t0)
    per = best / (args.seconds * args.streams) * 1e6
    print(
        f"affect path: {args.streams} streams, {args.seconds:.0f} s, speech {speech:.1%}, "
        f"{len(ticks)} ticks, core {core}: {per:.0f} us CPU per stream-second"
    )
    if args.digest:
        print("digest", digest(ticks, args.streams))
    return 0


if __name__ == "__main__":
    sys.exit(main())
