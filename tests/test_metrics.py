"""Scoring: ROC-AUC against a brute-force pairwise count, detection counts, frame grids."""

from __future__ import annotations

import numpy as np
import pytest

from engine.metrics import (
    Detection,
    detection,
    frames_from_intervals,
    frames_from_segments,
    roc_auc,
)
from engine.types import SpeechSegment


def pairwise_auc(scores: np.ndarray, truth: np.ndarray) -> float:
    """P(score of a positive > score of a negative), ties counting one half."""
    pos = scores[truth.astype(bool)]
    neg = scores[~truth.astype(bool)]
    wins = 0.0
    for p in pos.tolist():
        for n in neg.tolist():
            wins += 1.0 if p > n else 0.5 if p == n else 0.0
    return wins / (pos.size * neg.size)


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("levels", [3, 10, None])  # few distinct scores = many ties
def test_roc_auc_matches_pairwise_reference(seed, levels):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(5, 300))
    truth = rng.random(n) < rng.uniform(0.1, 0.9)
    truth[0], truth[1] = True, False  # both classes
    scores = rng.random(n) + 0.3 * truth
    if levels is not None:
        scores = np.round(scores * levels) / levels
    assert roc_auc(scores, truth) == pytest.approx(pairwise_auc(scores, truth), abs=1e-12)


def test_roc_auc_hand_cases():
    assert roc_auc(np.array([0.1, 0.2, 0.8, 0.9]), np.array([0, 0, 1, 1])) == 1.0
    assert roc_auc(np.array([0.9, 0.8, 0.2, 0.1]), np.array([0, 0, 1, 1])) == 0.0
    assert roc_auc(np.array([0.5, 0.5, 0.5, 0.5]), np.array([0, 1, 0, 1])) == 0.5
    # pos {0.4, 0.7} vs neg {0.4, 0.6}: 0.4-0.4 tie (.5), 0.4<0.6 (0), 0.7>both (2) -> 2.5/4
    assert roc_auc(np.array([0.4, 0.7, 0.4, 0.6]), np.array([1, 1, 0, 0])) == 0.625


def test_roc_auc_is_invariant_to_monotone_transforms_and_order():
    rng = np.random.default_rng(3)
    scores = rng.random(200)
    truth = rng.random(200) < 0.4
    base = roc_auc(scores, truth)
    assert roc_auc(np.exp(5 * scores), truth) == pytest.approx(base)
    perm = rng.permutation(200)
    assert roc_auc(scores[perm], truth[perm]) == pytest.approx(base)
    assert roc_auc(-scores, truth) == pytest.approx(1 - base)


def test_roc_auc_with_float32_scores_and_int_truth():
    scores = np.array([0.2, 0.9, 0.9, 0.1, 0.5], dtype=np.float32)
    truth = np.array([0, 1, 0, 0, 1])
    assert roc_auc(scores, truth) == pytest.approx(pairwise_auc(scores, truth))


@pytest.mark.parametrize("truth", [np.ones(5), np.zeros(5)])
def test_roc_auc_needs_both_classes(truth):
    with pytest.raises(ValueError, match="both classes"):
        roc_auc(np.linspace(0, 1, 5), truth)


def test_detection_counts():
    pred = np.array([1, 1, 0, 0, 1, 0, 1], dtype=bool)
    truth = np.array([1, 0, 1, 0, 1, 0, 0], dtype=bool)
    d = detection(pred, truth)
    assert (d.tp, d.fp, d.fn) == (2, 2, 1)
    assert d.precision == pytest.approx(0.5)
    assert d.recall == pytest.approx(2 / 3)
    assert d.f1 == pytest.approx(2 * 0.5 * (2 / 3) / (0.5 + 2 / 3))


def test_detection_accepts_int_arrays_and_checks_shape():
    assert detection(np.array([0, 2, 1]), np.array([0, 1, 0])) == Detection(1, 1, 0)
    with pytest.raises(ValueError, match="shape"):
        detection(np.zeros(3), np.zeros(4))


def test_detection_degenerate_scores_are_zero_not_nan():
    d = detection(np.zeros(4, bool), np.zeros(4, bool))
    assert (d.precision, d.recall, d.f1) == (0.0, 0.0, 0.0)
    d = detection(np.zeros(4, bool), np.ones(4, bool))
    assert (d.tp, d.fp, d.fn) == (0, 0, 4)
    assert d.f1 == 0.0


def test_detection_sums_over_files():
    total = Detection(1, 2, 3) + Detection(10, 20, 30)
    assert total == Detection(11, 22, 33)
    # summing counts then scoring is the micro-average, not a mean of per-file F1
    assert total.precision == pytest.approx(11 / 33)


def test_frames_from_intervals_uses_frame_centres():
    # 10 ms frames: frame k has its centre at (k + 0.5) / 100 s
    got = frames_from_intervals([(0.02, 0.05)], 8)
    assert got.tolist() == [False, False, True, True, True, False, False, False]
    # an interval covering less than a frame centre selects nothing
    assert not frames_from_intervals([(0.051, 0.054)], 8).any()
    # start inclusive, end exclusive at a centre
    got = frames_from_intervals([(0.015, 0.035)], 8)
    assert got.tolist() == [False, True, True, False, False, False, False, False]


def test_frames_from_intervals_union_clip_and_rate():
    got = frames_from_intervals([(0.0, 0.02), (0.01, 0.03), (0.076, 5.0)], 9)
    assert got.tolist() == [True, True, True, False, False, False, False, False, True]
    assert frames_from_intervals([], 4).tolist() == [False] * 4
    # another frame rate: 50 Hz = 20 ms frames, centres at 0.01, 0.03, 0.05, ...
    got = frames_from_intervals([(0.05, 0.09)], 5, rate=50)
    assert got.tolist() == [False, False, True, True, False]


def test_frames_from_intervals_matches_per_frame_reference():
    rng = np.random.default_rng(5)
    intervals = [tuple(sorted(rng.uniform(0, 3, 2))) for _ in range(12)]
    n = 320
    got = frames_from_intervals(intervals, n)
    want = [any(s <= (k + 0.5) / 100 < e for s, e in intervals) for k in range(n)]
    assert got.tolist() == want


def test_frames_from_segments_clips_to_the_grid():
    segs = [SpeechSegment(2, 4), SpeechSegment(6, 20), SpeechSegment(-3, 1)]
    assert np.flatnonzero(frames_from_segments(segs, 8)).tolist() == [0, 2, 3, 6, 7]
