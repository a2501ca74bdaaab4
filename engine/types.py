"""Frozen domain types shared by every stage. No logic, no engine imports."""

from __future__ import annotations

from dataclasses import dataclass

SAMPLE_RATE = 16_000
"""The one internal sample rate: every input is resampled to it once, at ingress."""
HOP = 160
"""Samples in one 10 ms hop, the engine's unit of time."""
HOPS_PER_SECOND = SAMPLE_RATE // HOP


@dataclass(frozen=True, slots=True)
class SpeechSegment:
    """A span of speech in hops, half-open: [start, end)."""

    start: int
    end: int

    @property
    def start_s(self) -> float:
        return self.start / HOPS_PER_SECOND

    @property
    def end_s(self) -> float:
        return self.end / HOPS_PER_SECOND

    @property
    def duration_s(self) -> float:
        return (self.end - self.start) / HOPS_PER_SECOND


@dataclass(frozen=True, slots=True)
class TrackInfo:
    """One participant's audio track inside an input file."""

    path: str
    index: int  # position among the file's audio tracks
    name: str  # participant label: track title, else file stem (+ index if several)
    codec: str
    sample_rate: int
    channels: int
    duration_s: float | None
