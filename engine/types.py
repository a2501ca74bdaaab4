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
class Alert:
    """A prompt for the facilitator to look (engine/alerts.py raises and clears them)."""

    id: str  # stable for the alert's life: kind, participant and start
    kind: str  # withdrawal | dominance | group_silence | interrupted
    participant: str  # pseudonym; "" for the whole group
    since_s: float  # session time it was raised
    cleared_s: float  # session time it cleared; -1 while active
    message: str  # plain words

    @property
    def active(self) -> bool:
        return self.cleared_s < 0


@dataclass(frozen=True, kw_only=True, slots=True)
class Cue:
    """A gentle, explained note about how a participant's voice differs from their own
    usual (engine/affect/cues.py). Only for participants who consented."""

    id: str
    kind: str  # raised_pitch | pitch_variability | strained_voice | quiet_speech | ...
    participant: str
    since_s: float
    cleared_s: float  # -1 while active
    deviation: float  # smoothed, in the person's own baseline units
    evidence_s: float  # seconds of their speech it rests on
    confidence: float  # share of that speech beyond the raising threshold, 0-1
    message: str  # plain words

    @property
    def active(self) -> bool:
        return self.cleared_s < 0


@dataclass(kw_only=True, slots=True)
class ParticipantView:
    """What a facilitator may see of one participant: a pseudonym and figures, no audio.

    The figures are defined in docs/signals.md. A value: never changed once built. Not
    `frozen`, because one is built per participant per snapshot (20 a second under
    load) and a frozen dataclass's __init__ costs 4-5x a plain one's (measured 7.0 vs
    1.5 us for these 25 fields)."""

    participant_id: str
    role: str
    connected: bool
    speaking: bool
    speaking_s: float
    share: float
    since_last_spoke_s: float  # -1 until the participant first speaks
    unknown_s: float
    share_5min: float = 0.0
    share_1min: float = 0.0
    share_vs_equal: float = 0.0
    turns: int = 0
    mean_turn_s: float = 0.0
    longest_turn_s: float = 0.0
    backchannels: int = 0
    response_latency_s: float = -1.0  # median; -1 without a response yet
    responses: int = 0
    overlap_s: float = 0.0
    overlaps: int = 0
    interruptions_made: int = 0
    interruptions_received: int = 0
    affect: bool = False  # voice-affect analysis runs (the participant consented)
    arousal: float = -1.0  # mean of the affect model over their recent speech; -1 if none
    # (no window yet, or LiveConfig.affect_model off)
    valence: float = -1.0
    cues: tuple[Cue, ...] = ()  # active ones (all, with clearing times, in summaries)


@dataclass(frozen=True, kw_only=True, slots=True)
class Transition:
    """Floor changes from one participant to another (who follows whom)."""

    from_id: str
    to_id: str
    count: int


@dataclass(kw_only=True, slots=True)
class SessionView:
    """A session's snapshot: built once per snapshot, never changed (not frozen for the
    reason ParticipantView gives)."""

    session_id: str
    seq: int
    session_ms: int
    participants: tuple[ParticipantView, ...]
    events: tuple[str, ...] = ()
    final: bool = False
    balance_entropy: float = 1.0
    balance_gini: float = 0.0
    balance_entropy_5min: float = 1.0
    group_silences: int = 0
    group_silence_s: float = 0.0
    longest_group_silence_s: float = 0.0
    current_group_silence_s: float = 0.0
    overlaps: int = 0
    overlap_s: float = 0.0
    turn_rate_per_min: float = 0.0
    facilitator_share: float = -1.0  # -1 without a facilitator
    follows: tuple[Transition, ...] = ()
    alerts: tuple[Alert, ...] = ()  # active ones (all, with clearing times, in summaries)
