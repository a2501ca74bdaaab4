"""Composes the per-stream stages for one participant: reframe -> VAD -> hangover.

The backend is shared; each `ParticipantPipeline` owns its private state.
`step()` advances a batch of participants with one backend call.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import accumulate

import numpy as np

from engine.audio.framer import Framer
from engine.bleed import hop_levels
from engine.config import VadConfig
from engine.types import SpeechSegment
from engine.vad import Hangover, VadBackend, VadStreamState


@dataclass(slots=True)
class ParticipantPipeline:
    """One participant's stream state. Holds no more audio than one pending hop."""

    name: str
    vad_state: VadStreamState
    hangover: Hangover
    framer: Framer = field(default_factory=Framer)
    pending: list[np.ndarray] = field(default_factory=list)
    segments: list[SpeechSegment] = field(default_factory=list)
    hops_in: int = 0
    keep_levels: bool = False  # collect per-hop levels (dBFS) for bleed detection
    levels: list[np.ndarray] = field(default_factory=list)  # consumer clears them
    keep_audio: bool = False  # hand hops + VAD flags to the affect path (consent only)
    audio: list[tuple[np.ndarray, np.ndarray]] = field(default_factory=list)  # see take_audio
    audio_hops: int = 0  # hops held in `audio`: counted, not summed, on every tick
    unscored: list[np.ndarray] = field(default_factory=list)  # kept hops awaiting their prob
    hops_done: int = 0  # hops the VAD has scored (a chunked model scores some a call later)
    hops_stepped: int = 0  # hops handed to the VAD (scored or not yet)
    keep_hops: bool = False  # hand the hops to a shared-microphone diarizer
    kept: list[np.ndarray] = field(default_factory=list)  # consumer clears; end at hops_stepped

    @classmethod
    def open(cls, name: str, backend: VadBackend, config: VadConfig) -> ParticipantPipeline:
        return cls(name=name, vad_state=backend.open_stream(), hangover=Hangover(config))

    def feed(self, samples: np.ndarray, *, owned: bool = False) -> None:
        """Queue 16 kHz mono int16 samples; whole hops wait for the next `step`.

        `owned`: the caller hands `samples` over (a decoder's fresh output, not kept or
        changed by anyone after): hops that are `samples` itself are then held without
        a copy. Hops from the framer's buffer are always copied."""
        hops = self.framer.push(samples)
        if hops.shape[0]:
            self.pending.append(hops if owned and hops.base is samples else hops.copy())
            self.hops_in += hops.shape[0]

    def feed_hops(self, hops: np.ndarray) -> None:
        """`feed(hops.reshape(-1), owned=True)` without the framer, for the live engine's
        PCM path, which lays every stream's frames of a tick out in one array and hands
        each stream its rows. The caller's promise, not checked (checks cost a fifth of
        that whole path): `hops` is int16 (n, HOP) and the framer holds no partial hop
        (`framer.pending_samples == 0`), so `feed` would pass them on as they are."""
        n = hops.shape[0]
        self.pending.append(hops)
        self.hops_in += n
        self.framer.hops_emitted += n

    def take_audio(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """Hand over the kept hops and their speech flags; the pipeline forgets them."""
        out, self.audio = self.audio, []
        self.audio_hops = 0
        return out

    @property
    def pending_hops(self) -> int:
        return sum(h.shape[0] for h in self.pending)

    def reset(self) -> None:
        self.vad_state.reset()
        self.hangover.reset()
        self.framer.reset()
        self.pending.clear()
        self.segments.clear()
        self.levels.clear()
        self.take_audio()
        self.kept.clear()
        self.unscored.clear()
        self.hops_in = 0
        self.hops_done = 0
        self.hops_stepped = 0


def step(backend: VadBackend, pipelines: Sequence[ParticipantPipeline]) -> list[SpeechSegment]:
    """Run the VAD over every pipeline's pending hops in one batched call."""
    ready = [p for p in pipelines if p.pending]
    if not ready:
        return []
    hops = [p.pending[0] if len(p.pending) == 1 else np.concatenate(p.pending) for p in ready]
    states = [p.vad_state for p in ready]
    threshold = ready[0].hangover.config.threshold
    if any(p.hangover.config.threshold != threshold for p in ready):
        probs = backend.process(states, hops)
        _levels(ready, hops)
        return _advance(ready, hops, probs)
    # every stream's hops in one array: for the levels, and for a backend that scores
    # them as they are (no validation, concatenation or split per stream)
    n_hops = [h.shape[0] for h in hops]
    flat_hops = hops[0] if len(hops) == 1 else np.concatenate(hops)
    process_flat = getattr(backend, "process_flat", None)
    if process_flat is not None:
        flat, n_probs = process_flat(states, flat_hops, n_hops)
    else:
        probs = backend.process(states, hops)
        flat = probs[0] if len(probs) == 1 else np.concatenate(probs)
        n_probs = [pr.shape[0] for pr in probs]
    return _advance_batch(ready, hops, n_hops, flat_hops, flat, n_probs, threshold)


def _advance(
    ready: Sequence[ParticipantPipeline],
    hops: Sequence[np.ndarray],
    probs: Sequence[np.ndarray],
) -> list[SpeechSegment]:
    """Per stream: its scored hops counted (and kept) and its probabilities through
    the hangover. `_advance_batch` gives the same results for many streams at once."""
    closed: list[SpeechSegment] = []
    for p, h, pr in zip(ready, hops, probs, strict=True):
        if p.keep_hops:
            p.kept.append(h)
        p.hops_stepped += h.shape[0]
        p.pending.clear()
        _scored(p, h, pr)
        new = p.hangover.push(pr)
        p.segments.extend(new)
        closed.extend(new)
    return closed


def _advance_batch(
    ready: Sequence[ParticipantPipeline],
    hops: Sequence[np.ndarray],
    n_hops: Sequence[int],
    flat_hops: np.ndarray,
    flat: np.ndarray,
    n_probs: Sequence[int],
    threshold: float,
) -> list[SpeechSegment]:
    """`_advance` and `_levels` for streams sharing one VAD threshold, with the array work
    done once over all of them: levels, speech flags and each stream's count of hops at
    or above the onset. `flat_hops` and `flat` are every stream's hops and probabilities,
    stream after stream (`n_hops`, `n_probs` each). A stream whose hops are all below the
    onset with no segment open, or all above it, needs no hangover kernel call
    (`Hangover.push_uniform`): only a stream at a change of state makes one."""
    hb = list(accumulate(n_hops, initial=0))
    pb = list(accumulate(n_probs, initial=0))
    flags = flat >= threshold  # as `_scored` compares, per stream
    # as the hangover kernel compares: a float32 probability against a float64 onset
    active = flat.astype(np.float32, copy=False).astype(np.float64) >= threshold
    if 0 not in n_probs:  # reduceat sums [pb[i], pb[i + 1]); an empty one it gets wrong
        n_on = np.add.reduceat(active, pb[:-1], dtype=np.int64).tolist()
    else:
        on = np.concatenate(([0], np.cumsum(active)))
        n_on = (on[pb[1:]] - on[pb[:-1]]).tolist()
    levels = None  # every stream's, when every stream keeps them (bleed on)
    if all(p.keep_levels for p in ready):
        levels = hop_levels(flat_hops)
    elif any(p.keep_levels for p in ready):
        _levels(ready, hops)
    closed: list[SpeechSegment] = []
    for i, p in enumerate(ready):
        h = hops[i]
        nh = n_hops[i]
        n = n_probs[i]
        if p.keep_hops:
            p.kept.append(h)
        if levels is not None:
            p.levels.append(levels[hb[i] : hb[i + 1]])
        p.hops_stepped += nh
        p.pending.clear()
        if not p.keep_audio:
            p.hops_done += n
            if p.unscored:
                p.unscored.clear()
        elif n == nh and n and not p.unscored:  # `_scored`'s usual case
            p.hops_done += n
            p.audio.append((h, flags[pb[i] : pb[i + 1]]))
            p.audio_hops += n
        else:
            _scored(p, h, flat[pb[i] : pb[i + 1]])
        if n and not p.hangover.push_uniform(n, n_on[i]):
            new = p.hangover.push(flat[pb[i] : pb[i + 1]])
            p.segments.extend(new)
            closed.extend(new)
    return closed


def _levels(ready: Sequence[ParticipantPipeline], hops: Sequence[np.ndarray]) -> None:
    """Per-hop levels for the bleed stage, of every stream that keeps them, in one
    kernel call (a call per stream cost more than the kernel's work)."""
    want = [i for i, p in enumerate(ready) if p.keep_levels]
    if not want:
        return
    both = hops[want[0]] if len(want) == 1 else np.concatenate([hops[i] for i in want])
    levels = hop_levels(both)
    at = 0
    for i in want:
        n = hops[i].shape[0]
        ready[i].levels.append(levels[at : at + n])
        at += n


def _scored(p: ParticipantPipeline, hops: np.ndarray | None, probs: np.ndarray) -> None:
    """Count the hops just scored and, with `keep_audio`, pair each with its own speech
    flag. A backend scoring longer chunks (silero: 32 ms) returns fewer probabilities
    than hops; the hops still owed one wait in `unscored`, so audio and flags never
    slip apart (they once did, and the affect path failed on every tick)."""
    p.hops_done += probs.shape[0]
    if not p.keep_audio:
        p.unscored.clear()
        return
    if hops is not None and hops.shape[0]:
        if not p.unscored and hops.shape[0] == probs.shape[0]:  # the usual case: no wait
            p.audio.append((hops, probs >= p.hangover.config.threshold))
            p.audio_hops += hops.shape[0]
            return
        p.unscored.append(hops)
    n = probs.shape[0]
    if not n:
        return
    waiting = p.unscored[0] if len(p.unscored) == 1 else np.concatenate(p.unscored)
    if waiting.shape[0] < n:
        raise ValueError(f"{n} probabilities for {waiting.shape[0]} hops awaiting one")
    p.audio.append((waiting[:n], probs >= p.hangover.config.threshold))
    p.audio_hops += n
    p.unscored.clear()
    if waiting.shape[0] > n:
        p.unscored.append(waiting[n:])


def finish(backend: VadBackend, pipeline: ParticipantPipeline) -> None:
    """End of stream: pad the last partial hop, drain the backend and the hangover."""
    tail = pipeline.framer.flush()
    if tail.shape[0]:
        pipeline.pending.append(tail.copy())
        pipeline.hops_in += tail.shape[0]
    step(backend, [pipeline])
    probs = backend.flush(pipeline.vad_state)
    _scored(pipeline, None, probs)
    pipeline.segments.extend(pipeline.hangover.push(probs))
    pipeline.segments.extend(pipeline.hangover.flush())
    pipeline.segments.sort(key=lambda s: s.start)


__all__ = ["ParticipantPipeline", "finish", "step"]
