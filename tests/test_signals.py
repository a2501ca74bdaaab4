"""Speaking figures, turns and silences on hand-made segments, expectations worked by hand."""

from __future__ import annotations

import random

import pytest

from engine.signals import (
    TURN_GAP_HOPS,
    _balance_hops,
    balance,
    longest_silence,
    speaking_figures,
    speaking_hops,
    turns,
)
from engine.types import SpeechSegment as S

# A 6 s session (600 hops of 10 ms):
#   ana:  0-100, 150-250, 400-450   -> 250 hops; gaps 50 (same turn) and 150 (new turn)
#   ben:  260-390                   -> 130 hops; one turn
#   cleo: nothing                   ->   0 hops
SESSION = {
    "ana": [S(0, 100), S(150, 250), S(400, 450)],
    "ben": [S(260, 390)],
    "cleo": [],
}


def test_speaking_figures_hand_computed():
    f = speaking_figures(SESSION, 600)
    assert set(f) == {"ana", "ben", "cleo"}
    ana, ben, cleo = f["ana"], f["ben"], f["cleo"]

    assert ana.speaking_s == pytest.approx(2.5)
    assert ana.share == pytest.approx(250 / 380)
    assert ana.turns == 2  # 0-250 (the 50-hop pause stays inside), then 400-450
    assert ana.longest_turn_s == pytest.approx(2.5)  # 0-250, pause included
    assert ana.longest_silence_s == pytest.approx(1.5)  # 250-400 and 450-600 are both 150

    assert ben.speaking_s == pytest.approx(1.3)
    assert ben.share == pytest.approx(130 / 380)
    assert ben.turns == 1
    assert ben.longest_turn_s == pytest.approx(1.3)
    assert ben.longest_silence_s == pytest.approx(2.6)  # from the session start to 260

    assert cleo.speaking_s == 0.0
    assert cleo.share == 0.0
    assert cleo.turns == 0
    assert cleo.longest_turn_s == 0.0
    assert cleo.longest_silence_s == pytest.approx(6.0)  # the whole session

    assert sum(x.share for x in f.values()) == pytest.approx(1.0)


def test_nobody_speaks():
    f = speaking_figures({"a": [], "b": []}, 300)
    assert all(x.share == 0.0 and x.turns == 0 for x in f.values())
    assert all(x.longest_silence_s == pytest.approx(3.0) for x in f.values())


def test_empty_session():
    assert speaking_figures({}, 0) == {}
    f = speaking_figures({"a": []}, 0)
    assert f["a"].longest_silence_s == 0.0


def test_negative_session_length_is_rejected():
    with pytest.raises(ValueError, match="session_hops"):
        speaking_figures({"a": []}, -1)


def test_turn_gap_boundary_is_one_second_inclusive():
    assert TURN_GAP_HOPS == 100
    assert turns([S(0, 50), S(150, 200)]) == [S(0, 200)]  # 100-hop pause: same turn
    assert turns([S(0, 50), S(151, 200)]) == [S(0, 50), S(151, 200)]  # 101: new turn
    assert turns([S(0, 50), S(60, 70)], max_gap=9) == [S(0, 50), S(60, 70)]
    assert turns([S(0, 50), S(60, 70)], max_gap=10) == [S(0, 70)]


def test_turns_sorts_and_merges_overlaps_and_containment():
    segs = [S(500, 520), S(10, 40), S(30, 35), S(20, 60), S(700, 710)]
    # 10-40, 20-60, 30-35 overlap -> 10-60; 500-520 is 440 hops later; 700-710 180 hops later
    assert turns(segs) == [S(10, 60), S(500, 520), S(700, 710)]
    assert turns([]) == []
    # a chain of short pauses keeps one long turn
    chain = [S(k * 150, k * 150 + 60) for k in range(5)]  # pauses of 90 hops
    assert turns(chain) == [S(0, 660)]


def test_speaking_hops_counts_segments():
    assert speaking_hops([S(0, 10), S(20, 25)]) == 15
    assert speaking_hops([]) == 0


def test_longest_silence_hand_cases():
    assert longest_silence([], 250) == 250
    assert longest_silence([S(0, 250)], 250) == 0
    assert longest_silence([S(40, 60)], 100) == 40  # before 40, after 60 (40 each)
    assert longest_silence([S(10, 20), S(90, 95)], 100) == 70  # the gap 20-90
    # unsorted and overlapping: the gap is measured from the furthest end so far
    assert longest_silence([S(50, 60), S(0, 80), S(85, 90)], 100) == 10  # 90-100
    assert longest_silence([S(0, 30), S(10, 20), S(45, 100)], 100) == 15  # 30-45


def test_figures_use_hops_of_ten_ms():
    f = speaking_figures({"a": [S(0, 1)], "b": [S(1, 4)]}, 4)
    assert f["a"].speaking_s == pytest.approx(0.01)
    assert f["b"].speaking_s == pytest.approx(0.03)
    assert f["a"].share == pytest.approx(0.25)
    assert f["a"].longest_silence_s == pytest.approx(0.03)
    assert f["b"].longest_silence_s == pytest.approx(0.01)


def test_snapshot_balance_equals_balance_exactly():
    """Snapshots take balance through _balance_hops (integer Gini, O(n log n)): the
    same floats as `balance`, not merely close ones."""
    rng = random.Random(5)
    cases = [[], [0], [7], [0, 0], [0, 5], [3, 3, 3], [1, 0, 0, 0]]
    for _ in range(500):
        n = rng.randint(2, 12)
        top = rng.choice([3, 100, 10**4, 6 * 10**5])
        cases.append([rng.randint(0, top) * rng.randint(0, 1) for _ in range(n)])
    for amounts in cases:
        assert _balance_hops(amounts) == balance(amounts), amounts
        assert _balance_hops(amounts, gini=False)[0] == balance(amounts)[0], amounts
    with pytest.raises(ValueError):
        _balance_hops([-1, 2])
