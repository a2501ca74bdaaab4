"""DER on hand-made RTTM turns whose error is worked out by hand."""

from __future__ import annotations

from itertools import permutations

import numpy as np
import pytest

from engine.metrics import best_mapping, diarization_error

UEM = (0.0, 20.0)


def der(ref, hyp, collar=0.0, uem=UEM):
    return diarization_error(ref, hyp, uem=uem, collar=collar)


def test_perfect_up_to_renaming() -> None:
    ref = [(0.0, 4.0, "A"), (4.0, 9.0, "B"), (12.0, 15.0, "A")]
    hyp = [(0.0, 4.0, "x"), (4.0, 9.0, "y"), (12.0, 15.0, "x")]
    assert der(ref, hyp).der == pytest.approx(0.0)


def test_one_label_for_two_speakers_is_half_confusion() -> None:
    ref = [(0.0, 10.0, "A"), (10.0, 20.0, "B")]
    hyp = [(0.0, 20.0, "x")]
    r = der(ref, hyp)
    assert (r.total, r.confusion, r.miss, r.false_alarm) == pytest.approx((20, 10, 0, 0))
    # collar 0.25 s removes 0.25 s either side of 0, 10 and 20 (0.25+0.5+0.25 s of ref)
    r = der(ref, hyp, collar=0.25)
    assert r.total == pytest.approx(19.0)
    assert r.der == pytest.approx(9.5 / 19.0)


def test_miss_and_false_alarm() -> None:
    r = der([(0.0, 10.0, "A")], [(5.0, 15.0, "x")])
    assert (r.miss, r.false_alarm, r.confusion) == pytest.approx((5, 5, 0))
    assert r.der == pytest.approx(1.0)


def test_overlap_is_scored() -> None:
    # 5 s where two people talk but the system gives one: 5 s missed of 15 s
    r = der([(0.0, 10.0, "A"), (5.0, 10.0, "B")], [(0.0, 10.0, "x")])
    assert r.total == pytest.approx(15.0)
    assert r.der == pytest.approx(5.0 / 15.0)
    # and labelling both gets it right
    r = der([(0.0, 10.0, "A"), (5.0, 10.0, "B")], [(0.0, 10.0, "x"), (5.0, 10.0, "y")])
    assert r.der == pytest.approx(0.0)


def test_optimal_mapping_not_greedy_by_order() -> None:
    ref = [(0.0, 4.0, "A"), (4.0, 10.0, "B")]
    hyp = [(0.0, 6.0, "x"), (6.0, 10.0, "y")]
    r = der(ref, hyp)
    assert r.confusion == pytest.approx(2.0)
    assert r.der == pytest.approx(0.2)


def test_uem_limits_scoring() -> None:
    r = der([(0.0, 10.0, "A")], [(0.0, 10.0, "x")], uem=(5.0, 10.0))
    assert r.total == pytest.approx(5.0)


def test_best_mapping_matches_exhaustive_search_on_random_matrices() -> None:
    rng = np.random.default_rng(3)
    for n_ref, n_hyp in ((3, 5), (5, 3), (4, 4), (1, 6)):
        m = rng.integers(0, 100, (n_ref, n_hyp))
        got = sum(m[r, h] for r, h in best_mapping(m))
        if n_ref <= n_hyp:
            want = max(
                sum(m[r, p[r]] for r in range(n_ref)) for p in permutations(range(n_hyp), n_ref)
            )
        else:
            want = max(
                sum(m[p[h], h] for h in range(n_hyp)) for p in permutations(range(n_ref), n_hyp)
            )
        assert got == want
        pairs = best_mapping(m)
        assert len({r for r, _ in pairs}) == len(pairs) == len({h for _, h in pairs})


def test_bad_input_raises() -> None:
    with pytest.raises(ValueError):
        der([(1.0, 0.0, "A")], [])
    with pytest.raises(ValueError):
        best_mapping(np.zeros((9, 9)))
