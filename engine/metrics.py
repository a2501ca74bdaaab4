"""Scoring against ground truth: frame-level detection metrics and ROC-AUC."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from engine.types import HOPS_PER_SECOND, SpeechSegment


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
