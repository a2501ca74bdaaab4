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


@dataclass(frozen=True, kw_only=True, slots=True)
class ParticipantView:
    """What a facilitator may see of one participant: a pseudonym and figures, no audio."""

    participant_id: str
    role: str
    connected: bool
    speaking: bool
    speaking_s: float
    share: float
    since_last_spoke_s: float  # -1 until the participant first speaks
    unknown_s: float


@dataclass(frozen=True, kw_only=True, slots=True)
class SessionView:
    session_id: str
    seq: int
    session_ms: int
    participants: tuple[ParticipantView, ...]
    events: tuple[str, ...] = ()
    final: bool = False
