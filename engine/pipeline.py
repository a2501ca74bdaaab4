"""Composes the per-stream stages for one participant: reframe -> VAD -> hangover.

The backend is shared; each `ParticipantPipeline` owns its private state.
`step()` advances a batch of participants with one backend call.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

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
    audio: list[tuple[np.ndarray, np.ndarray]] = field(default_factory=list)  # consumer clears
    hops_done: int = 0  # hops through the VAD
    keep_hops: bool = False  # hand the hops to a shared-microphone diarizer
    kept: list[np.ndarray] = field(default_factory=list)  # consumer clears

    @classmethod
    def open(cls, name: str, backend: VadBackend, config: VadConfig) -> ParticipantPipeline:
        return cls(name=name, vad_state=backend.open_stream(), hangover=Hangover(config))

    def feed(self, samples: np.ndarray) -> None:
        """Queue 16 kHz mono int16 samples; whole hops wait for the next `step`."""
        hops = self.framer.push(samples)
        if hops.shape[0]:
            self.pending.append(hops.copy())
            self.hops_in += hops.shape[0]

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
        self.audio.clear()
        self.kept.clear()
        self.hops_in = 0
        self.hops_done = 0


def step(backend: VadBackend, pipelines: Sequence[ParticipantPipeline]) -> list[SpeechSegment]:
    """Run the VAD over every pipeline's pending hops in one batched call."""
    ready = [p for p in pipelines if p.pending]
    if not ready:
        return []
    hops = [p.pending[0] if len(p.pending) == 1 else np.concatenate(p.pending) for p in ready]
    probs = backend.process([p.vad_state for p in ready], hops)
    closed: list[SpeechSegment] = []
    for p, h, pr in zip(ready, hops, probs, strict=True):
        if p.keep_levels:
            p.levels.append(hop_levels(h))
        if p.keep_audio:
            p.audio.append((h, pr >= p.hangover.config.threshold))
        if p.keep_hops:
            p.kept.append(h)
        p.hops_done += h.shape[0]
        p.pending.clear()
        new = p.hangover.push(pr)
        p.segments.extend(new)
        closed.extend(new)
    return closed


def finish(backend: VadBackend, pipeline: ParticipantPipeline) -> None:
    """End of stream: pad the last partial hop, drain the backend and the hangover."""
    tail = pipeline.framer.flush()
    if tail.shape[0]:
        pipeline.pending.append(tail.copy())
        pipeline.hops_in += tail.shape[0]
    step(backend, [pipeline])
    pipeline.segments.extend(pipeline.hangover.push(backend.flush(pipeline.vad_state)))
    pipeline.segments.extend(pipeline.hangover.flush())
    pipeline.segments.sort(key=lambda s: s.start)


__all__ = ["ParticipantPipeline", "finish", "step"]
