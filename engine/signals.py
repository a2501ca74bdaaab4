"""Per-participant speaking figures as pure functions over speech segments.

The foundation set: speaking time, share, turns, longest turn, longest silence.
A turn here is a run of one person's speech with no pause longer than
`TURN_GAP_HOPS` (1 s); the engagement-signals work refines it (backchannels,
floor-taking) in docs/signals.md.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from engine.types import HOPS_PER_SECOND, SpeechSegment

TURN_GAP_HOPS = HOPS_PER_SECOND  # pauses up to 1 s stay inside a turn


@dataclass(frozen=True, kw_only=True, slots=True)
class SpeakingFigures:
    speaking_s: float
    share: float  # of all participants' speaking time
    turns: int
    longest_turn_s: float
    longest_silence_s: float  # longest stretch of the session without this person's speech


def turns(segments: Sequence[SpeechSegment], max_gap: int = TURN_GAP_HOPS) -> list[SpeechSegment]:
    """Merge segments separated by at most `max_gap` hops into turns."""
    merged: list[SpeechSegment] = []
    for seg in sorted(segments, key=lambda s: s.start):
        if merged and seg.start - merged[-1].end <= max_gap:
            merged[-1] = SpeechSegment(merged[-1].start, max(merged[-1].end, seg.end))
        else:
            merged.append(seg)
    return merged


def speaking_hops(segments: Sequence[SpeechSegment]) -> int:
    return sum(s.end - s.start for s in segments)


def longest_silence(segments: Sequence[SpeechSegment], session_hops: int) -> int:
    """Longest gap between session start, each segment and session end, in hops."""
    longest = 0
    cursor = 0
    for seg in sorted(segments, key=lambda s: s.start):
        longest = max(longest, seg.start - cursor)
        cursor = max(cursor, seg.end)
    return max(longest, session_hops - cursor)


def speaking_figures(
    by_participant: Mapping[str, Sequence[SpeechSegment]], session_hops: int
) -> dict[str, SpeakingFigures]:
    """The foundation figures for every participant of one session."""
    if session_hops < 0:
        raise ValueError(f"session_hops must be >= 0, got {session_hops}")
    spoken = {name: speaking_hops(segs) for name, segs in by_participant.items()}
    total = sum(spoken.values())
    out = {}
    for name, segs in by_participant.items():
        t = turns(segs)
        out[name] = SpeakingFigures(
            speaking_s=spoken[name] / HOPS_PER_SECOND,
            share=spoken[name] / total if total else 0.0,
            turns=len(t),
            longest_turn_s=max((s.end - s.start for s in t), default=0) / HOPS_PER_SECOND,
            longest_silence_s=longest_silence(segs, session_hops) / HOPS_PER_SECOND,
        )
    return out
