"""Scoring against ground truth: frame-level detection metrics and ROC-AUC."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TypeVar

import numpy as np

from engine.types import HOPS_PER_SECOND, SpeechSegment

T = TypeVar("T")
U = TypeVar("U")


def frames_from_intervals(
    intervals: Iterable[tuple[float, float]], n_frames: int, rate: int = HOPS_PER_SECOND
) -> np.ndarray:
    """Boolean per frame: is the frame's centre inside any [start, end) interval (seconds)."""
    centres = (np.arange(n_frames) + 0.5) / rate
    out = np.zeros(n_frames, dtype=bool)
    for start, end in intervals:
        out |= (centres >= start) & (centres < end)
    return out


def frames_from_segments(segments: Iterable[SpeechSegment], n_frames: int) -> np.ndarray:
    out = np.zeros(n_frames, dtype=bool)
    for s in segments:
        out[max(s.start, 0) : min(s.end, n_frames)] = True
    return out


@dataclass(frozen=True, slots=True)
class Detection:
    tp: int
    fp: int
    fn: int

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 0.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 0.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    def __add__(self, other: Detection) -> Detection:
        return Detection(self.tp + other.tp, self.fp + other.fp, self.fn + other.fn)


def detection(predicted: np.ndarray, truth: np.ndarray) -> Detection:
    if predicted.shape != truth.shape:
        raise ValueError(f"shape mismatch: {predicted.shape} vs {truth.shape}")
    p = predicted.astype(bool)
    t = truth.astype(bool)
    return Detection(int(np.sum(p & t)), int(np.sum(p & ~t)), int(np.sum(~p & t)))


def roc_auc(scores: np.ndarray, truth: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney U with mid-ranks for ties)."""
    truth = truth.astype(bool)
    n_pos = int(truth.sum())
    n_neg = truth.size - n_pos
    if n_pos == 0 or n_neg == 0:
        raise ValueError("ROC-AUC needs both classes in the truth")
    order = np.argsort(scores, kind="mergesort")
    sorted_scores = scores[order]
    ranks = np.empty(scores.size, dtype=np.float64)
    # Mid-ranks over runs of equal scores.
    boundaries = np.flatnonzero(np.diff(sorted_scores)) + 1
    starts = np.concatenate([[0], boundaries])
    ends = np.concatenate([boundaries, [scores.size]])
    mid = (starts + ends + 1) / 2.0  # ranks are 1-based
    ranks[order] = np.repeat(mid, ends - starts)
    u = ranks[truth].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * n_neg))


# --- diarization error rate ---------------------------------------------------------

Turn = tuple[float, float, str]  # start s, end s, speaker
MAX_MAPPED_SPEAKERS = 8


@dataclass(frozen=True, slots=True)
class Der:
    """Scored seconds (speaker-weighted, as md-eval counts them); add across files."""

    total: float
    miss: float
    false_alarm: float
    confusion: float

    @property
    def der(self) -> float:
        return (self.miss + self.false_alarm + self.confusion) / self.total if self.total else 0.0

    def __add__(self, other: Der) -> Der:
        return Der(
            self.total + other.total,
            self.miss + other.miss,
            self.false_alarm + other.false_alarm,
            self.confusion + other.confusion,
        )


def best_mapping(overlap: np.ndarray) -> list[tuple[int, int]]:
    """One-to-one (ref, hyp) pairs maximising summed overlap, by exhaustive search.

    Exact for up to MAX_MAPPED_SPEAKERS per side (8P8 = 40320 candidates); meetings
    and shared microphones stay well under that.
    """
    from itertools import permutations

    n_ref, n_hyp = overlap.shape
    if n_ref == 0 or n_hyp == 0:
        return []
    if max(n_ref, n_hyp) > MAX_MAPPED_SPEAKERS:
        raise ValueError(f"optimal mapping supports up to {MAX_MAPPED_SPEAKERS} speakers a side")
    if n_ref > n_hyp:
        return [(r, h) for h, r in best_mapping(overlap.T)]
    perms = np.array(list(permutations(range(n_hyp), n_ref)), dtype=np.int64)
    gains = overlap[np.arange(n_ref)[None, :], perms].sum(axis=1)
    best = perms[int(np.argmax(gains))]
    return [(r, int(best[r])) for r in range(n_ref)]


def _speaker_frames(turns: Iterable[Turn], n: int, rate: int) -> tuple[list[str], np.ndarray]:
    turns = list(turns)
    names = sorted({t[2] for t in turns})
    out = np.zeros((n, len(names)), dtype=bool)
    col = {s: i for i, s in enumerate(names)}
    for start, end, spk in turns:
        a, b = max(0, round(start * rate)), min(n, round(end * rate))
        out[a:b, col[spk]] = True
    return names, out


def diarization_error(
    reference: Iterable[Turn],
    hypothesis: Iterable[Turn],
    *,
    uem: tuple[float, float],
    collar: float = 0.25,
    rate: int = 1000,
) -> Der:
    """DER with overlap scored (every reference speaker in a frame counts), frame-based.

    A `collar` (seconds) either side of every reference boundary is not scored, as in
    md-eval / pyannote's `collar` (there given as the full width, 2 x ours). Frames at
    1 ms by default, so results match time-based scoring to about a millisecond.
    """
    if collar < 0:
        raise ValueError(f"collar must be >= 0, got {collar}")
    if uem[1] <= uem[0]:
        raise ValueError(f"empty scoring region {uem}")
    reference, hypothesis = list(reference), list(hypothesis)
    for t in (*reference, *hypothesis):
        if t[1] < t[0]:
            raise ValueError(f"turn ends before it starts: {t}")
    n = round(uem[1] * rate)
    _, ref = _speaker_frames(reference, n, rate)
    _, hyp = _speaker_frames(hypothesis, n, rate)
    scored = np.zeros(n, dtype=bool)
    scored[round(uem[0] * rate) :] = True
    c = round(collar * rate)
    if c:
        for start, end, _ in reference:
            for edge in (round(start * rate), round(end * rate)):
                scored[max(0, edge - c) : max(0, edge + c)] = False
    ref, hyp = ref[scored], hyp[scored]
    n_ref = ref.sum(axis=1)
    n_hyp = hyp.sum(axis=1)
    overlap = ref.T.astype(np.int64) @ hyp.astype(np.int64)
    matched = sum(int(overlap[r, h]) for r, h in best_mapping(overlap))
    return Der(
        total=float(n_ref.sum()) / rate,
        miss=float(np.maximum(n_ref - n_hyp, 0).sum()) / rate,
        false_alarm=float(np.maximum(n_hyp - n_ref, 0).sum()) / rate,
        confusion=float(np.minimum(n_ref, n_hyp).sum() - matched) / rate,
    )


def matched(found: Sequence[T], truth: Sequence[U], same: Callable[[T, U], bool]) -> int:
    """Events found that match a distinct truth event (greedy, in order): the hits for
    precision (hits / found) and recall (hits / truth)."""
    used: set[int] = set()
    hits = 0
    for f in found:
        for k, t in enumerate(truth):
            if k not in used and same(f, t):
                used.add(k)
                hits += 1
                break
    return hits
