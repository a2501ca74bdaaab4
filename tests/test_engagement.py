"""Engagement signals (docs/signals.md): each definition on hand-made segments, worked by
hand, and the live tracker against the batch functions on random sessions."""

from __future__ import annotations

import itertools
import math
import random

import numpy as np
import pytest

from engine.config import SignalConfig
from engine.signals import (
    SignalTracker,
    SweepState,
    balance,
    session_signals,
    sweep,
    window_hops,
)
from engine.types import SpeechSegment as S

CFG = SignalConfig()


def sig(by, now, roles=None):
    return session_signals(by, now, CFG, roles)


# --- the floor ---------------------------------------------------------------------------


def test_interruption_takes_the_floor():
    # ana speaks 0-500; ben starts at 400 while she holds the floor, she stops at 500,
    # he goes on to 900: ben interrupted ana, and the floor went ana -> ben.
    s = sig({"ana": [S(0, 500)], "ben": [S(400, 900)]}, 1000)
    assert s.interruptions == ((4.0, "ben", "ana"),)
    assert s.participants["ben"].interruptions_made == 1
    assert s.participants["ana"].interruptions_received == 1
    assert s.follows == {("ana", "ben"): 1}
    assert s.participants["ben"].response_latency_s == pytest.approx(-1.0)  # overlapping
    assert s.participants["ana"].overlap_s == pytest.approx(1.0)
    assert s.overlaps == 1 and s.overlap_s == pytest.approx(1.0)


def test_overlap_that_does_not_take_the_floor_is_no_interruption():
    # ben talks over ana for 2 s but she outlasts him: an overlap and a turn of his, no
    # interruption, no floor change.
    s = sig({"ana": [S(0, 800)], "ben": [S(300, 500)]}, 1000)
    assert s.interruptions == ()
    assert s.follows == {}
    assert s.participants["ben"].turns == 1
    assert s.participants["ben"].backchannels == 0


def test_backchannel_is_short_and_inside_another_turn():
    # "mm-hm" (0.5 s) from ben inside ana's turn: a backchannel, not a turn.
    s = sig({"ana": [S(0, 600)], "ben": [S(200, 250)]}, 1000)
    assert s.participants["ben"].backchannels == 1
    assert s.participants["ben"].turns == 0
    assert s.interruptions == ()
    # the same 0.5 s after ana has finished answers into a free floor: a (short) turn
    s = sig({"ana": [S(0, 600)], "ben": [S(700, 750)]}, 1000)
    assert s.participants["ben"].backchannels == 0
    assert s.participants["ben"].turns == 1
    assert s.participants["ben"].response_latency_s == pytest.approx(1.0)


def test_backchannel_threshold_is_exclusive():
    # exactly 1.0 s is not shorter than backchannel_max_s: a turn
    s = sig({"ana": [S(0, 600)], "ben": [S(200, 300)]}, 1000)
    assert s.participants["ben"].turns == 1 and s.participants["ben"].backchannels == 0


def test_turns_merge_pauses_up_to_one_second():
    s = sig({"ana": [S(0, 100), S(200, 300), S(401, 500)]}, 600)
    # 0-100 and 200-300 merge (gap 1.0 s); 401 starts 1.01 s after: a new turn
    p = s.participants["ana"]
    assert p.turns == 2
    assert p.longest_turn_s == pytest.approx(3.0)
    assert p.mean_turn_s == pytest.approx((3.0 + 0.99) / 2)


def test_response_latency_and_who_follows_whom():
    by = {
        "fac": [S(0, 300), S(1000, 1200)],
        "ana": [S(350, 700)],  # answers fac after 0.5 s
        "ben": [S(900, 950)],  # 2 s after ana: a short turn into a free floor
    }
    s = sig(by, 1300, roles={"fac": "facilitator"})
    assert s.follows == {("fac", "ana"): 1, ("ana", "ben"): 1, ("ben", "fac"): 1}
    assert s.participants["ana"].response_latency_s == pytest.approx(0.5)
    assert s.participants["ben"].response_latency_s == pytest.approx(2.0)
    assert s.participants["fac"].response_latency_s == pytest.approx(0.5)
    assert s.turn_rate_per_min == pytest.approx(3 / (13 / 60))
    assert s.facilitator_share == pytest.approx(500 / (500 + 350 + 50))


def test_a_late_restart_is_not_a_response():
    s = sig({"ana": [S(0, 100)], "ben": [S(1200, 1300)]}, 1400)  # 11 s later
    assert s.follows == {("ana", "ben"): 1}
    assert s.participants["ben"].responses == 0
    assert math.isnan(s.participants["ben"].response_latency_s)


# --- silences, shares, balance ------------------------------------------------------------


def test_group_silences_are_bounded_by_speech():
    by = {"ana": [S(100, 200), S(700, 800)], "ben": [S(250, 300), S(820, 900)]}
    s = sig(by, 1500)
    # leading 0-100 does not count (nobody had spoken); 300-700 (4 s) counts; 200-250 and
    # 800-820 are too short; 900-1500 is still going on (6 s), not completed.
    assert s.silences == ((3.0, 7.0),)
    assert s.group_silences == 1 and s.group_silence_s == pytest.approx(4.0)
    assert s.longest_group_silence_s == pytest.approx(4.0)
    assert s.current_group_silence_s == pytest.approx(6.0)


def test_group_silence_of_exactly_three_seconds_counts():
    s = sig({"ana": [S(0, 100), S(400, 500)]}, 600)
    assert s.group_silences == 1


def test_shares_over_windows():
    # 10 minutes; ana spoke only in the first 5, ben only in the last minute
    by = {"ana": [S(0, 30_000)], "ben": [S(54_000, 60_000)]}
    s = sig(by, 60_000)
    assert s.participants["ana"].share == pytest.approx(30_000 / 36_000)
    assert s.participants["ana"].share_5min == 0.0
    assert s.participants["ben"].share_5min == 1.0 and s.participants["ben"].share_1min == 1.0
    assert s.participants["ben"].share_vs_equal == pytest.approx(2 * 6_000 / 36_000)
    assert s.participants["ana"].since_last_spoke_s == pytest.approx(300.0)


def test_balance_entropy_and_gini():
    assert balance([1, 1, 1, 1]) == pytest.approx((1.0, 0.0))
    e, g = balance([1, 0, 0, 0])
    assert e == pytest.approx(0.0) and g == pytest.approx(0.75)
    e, g = balance([3, 1])
    assert e == pytest.approx(-(0.75 * math.log(0.75) + 0.25 * math.log(0.25)) / math.log(2))
    assert g == pytest.approx(0.25)
    assert balance([]) == (1.0, 0.0)
    with pytest.raises(ValueError):
        balance([-1, 2])


def test_window_hops_clips():
    assert window_hops([S(0, 100), S(150, 300)], 50, 200) == 50 + 50


def test_nobody_spoke():
    s = sig({"ana": [], "ben": []}, 500)
    assert s.participants["ana"].since_last_spoke_s == -1.0
    assert s.current_group_silence_s == 0.0 and s.group_silences == 0
    assert math.isnan(s.facilitator_share)


def test_negative_now_is_rejected():
    with pytest.raises(ValueError):
        sig({}, -1)


# --- chunking and the live tracker --------------------------------------------------------


def random_session(rng: random.Random, people: int, hops: int) -> dict[str, list[S]]:
    by: dict[str, list[S]] = {}
    for k in range(people):
        segs, t = [], rng.randrange(0, 300)
        while t < hops:
            length = rng.choice([rng.randrange(15, 90), rng.randrange(100, 1500)])
            end = min(t + length, hops)
            if end - t >= 12:
                segs.append(S(t, end))
            t = end + rng.choice([rng.randrange(20, 120), rng.randrange(150, 2500)])
        by[f"p{k}"] = segs
    return by


@pytest.mark.parametrize("seed", range(6))
def test_sweep_is_chunking_invariant(seed):
    rng = random.Random(seed)
    by = random_session(rng, 4, 6000)
    pids = list(by)
    m = np.zeros((4, 6000), bool)
    for row, p in enumerate(pids):
        for s in by[p]:
            m[row, s.start : s.end] = True
    whole = SweepState()
    sweep(whole, pids, m, min_silence=300, min_overlap=25)
    parts = SweepState()
    cuts = sorted({0, 6000, *(rng.randrange(1, 6000) for _ in range(40))})
    for a, b in itertools.pairwise(cuts):
        sweep(parts, pids, m[:, a:b], min_silence=300, min_overlap=25)
    assert parts.silences == whole.silences
    assert parts.overlaps == whole.overlaps
    assert parts.overlap_hops == whole.overlap_hops
    assert parts.overlap_counts == whole.overlap_counts
    assert (parts.silence_start, parts.overlap_start) == (whole.silence_start, whole.overlap_start)


def feed_live(by: dict[str, list[S]], hops: int, rng: random.Random, checkpoints):
    """Deliver segments as a live VAD would: each participant's segment arrives some
    hops after it ends (their own processing lag), settled marks move in ticks."""
    tracker = SignalTracker(CFG)
    for p in by:
        tracker.add_participant(p, "facilitator" if p == "p0" else "participant")
    lag = {p: rng.randrange(5, 60) for p in by}
    nxt = dict.fromkeys(by, 0)
    out = {}
    for now in range(0, hops + 1, 5):  # 50 ms ticks
        open_now = {}
        for p, segs in by.items():
            visible = now - lag[p]
            new = []
            while nxt[p] < len(segs) and segs[nxt[p]].end + 30 <= visible:  # hangover
                new.append(segs[nxt[p]])
                nxt[p] += 1
            tracker.add_segments(p, new)
            pending = segs[nxt[p]] if nxt[p] < len(segs) else None
            if pending is not None and pending.start < visible:
                tracker.settle(p, pending.start)
                open_now[p] = S(pending.start, min(pending.end, visible))
            else:
                tracker.settle(p, max(visible, 0))
        tracker.advance()
        if now in checkpoints:
            out[now] = tracker.snapshot(now, open_now)
    for p, segs in by.items():  # end of stream: the VAD flushes what it still holds
        tracker.add_segments(p, segs[nxt[p] :])
    tracker.finish(hops)
    out[hops] = tracker.snapshot(hops)
    return out, lag


@pytest.mark.parametrize("seed", range(8))
def test_live_tracker_equals_batch(seed):
    rng = random.Random(100 + seed)
    hops = 12_000 + rng.randrange(0, 6000)
    by = random_session(rng, rng.randrange(3, 7), hops)
    roles = {p: ("facilitator" if p == "p0" else "participant") for p in by}
    checkpoints = {rng.randrange(1000, hops) // 5 * 5 for _ in range(5)}
    live, lag = feed_live(by, hops, rng, checkpoints)
    assert live[hops] == session_signals(by, hops, CFG, roles)
    # mid-session: speaking time and time since last spoke count what has been heard
    # by then, the segment in progress included
    for now in checkpoints:
        snap = live[now]
        for p, v in snap.participants.items():
            heard = now - lag[p]
            segs = [S(s.start, min(s.end, heard)) for s in by[p] if s.start < heard]
            expect = -1.0 if not segs else (now - segs[-1].end) / 100
            assert v.since_last_spoke_s == pytest.approx(expect)
            assert v.speaking_s == pytest.approx(sum(s.end - s.start for s in segs) / 100)
        assert snap.now_s == now / 100


@pytest.mark.parametrize("seed", range(4))
def test_tracker_skips_advances_with_nothing_new(seed):
    """`advance` returns at once when no segment came and the settled hop has not moved
    (most ticks); a tracker forced to walk and sweep every time ends in the same state,
    tick by tick, with participants joining mid-session and ticks with no news."""
    rng = random.Random(300 + seed)
    hops = 6000
    by = random_session(rng, rng.randrange(3, 6), hops)
    fast, full = SignalTracker(CFG), SignalTracker(CFG)
    joins = {p: (0 if k < 2 else rng.randrange(0, hops // 2)) for k, p in enumerate(by)}
    nxt = dict.fromkeys(by, 0)
    skipped = 0
    for now in range(0, hops + 1, 2):
        for p, segs in by.items():
            if now < joins[p]:
                continue
            for t in (fast, full):
                t.add_participant(p)
            if rng.random() < 0.3:
                continue  # no news from p this tick
            new = []
            while nxt[p] < len(segs) and segs[nxt[p]].end + 30 <= now:
                new.append(segs[nxt[p]])
                nxt[p] += 1
            pending = segs[nxt[p]] if nxt[p] < len(segs) else None
            settle = pending.start if pending is not None and pending.start < now else now
            for t in (fast, full):
                t.add_segments(p, new)
                t.settle(p, max(settle - 30, 0))
        before = (fast.sweep.hop, fast.floor.walked_until)
        fast.advance()
        full._fresh = True  # defeat the skip
        full.advance()
        skipped += (fast.sweep.hop, fast.floor.walked_until) == before
        assert fast.floor == full.floor and fast.sweep == full.sweep, now
    assert skipped > 100
    fast.finish(hops)
    full.finish(hops)
    assert fast.floor == full.floor and fast.sweep == full.sweep


@pytest.mark.parametrize("seed", range(4))
def test_tracker_caches_equal_the_plain_snapshot(seed):
    """A snapshot keeps the figures that only the floor walk and the sweep change until
    either moves, and balance figures by their amounts: every tick's snapshot (some
    twice, with participants joining mid-session) equals one computed with the caches
    emptied (test_live_tracker_equals_batch compares the cached figures to the batch)."""
    rng = random.Random(500 + seed)
    hops = 6000
    by = random_session(rng, rng.randrange(3, 6), hops)
    roles = {p: ("facilitator" if p == "p0" else "participant") for p in by}
    tracker = SignalTracker(CFG)
    joins = {p: (0 if k < 2 else rng.randrange(0, hops // 2)) for k, p in enumerate(by)}
    nxt = dict.fromkeys(by, 0)
    for now in range(0, hops + 1, 5):
        open_now = {}
        for p, segs in by.items():
            if now < joins[p]:
                continue
            tracker.add_participant(p, roles[p])
            new = []
            while nxt[p] < len(segs) and segs[nxt[p]].end + 30 <= now:
                new.append(segs[nxt[p]])
                nxt[p] += 1
            tracker.add_segments(p, new)
            pending = segs[nxt[p]] if nxt[p] < len(segs) else None
            if pending is not None and pending.start < now:
                tracker.settle(p, pending.start)
                open_now[p] = S(pending.start, min(pending.end, now))
            else:
                tracker.settle(p, now)
        if rng.random() < 0.5:
            tracker.snapshot(now, open_now)  # fills the caches before the advance
        tracker.advance()
        cached = repr(tracker.snapshot(now, open_now))
        assert repr(tracker.snapshot(now, open_now)) == cached
        tracker._fixed.clear()
        tracker._balances.clear()
        assert repr(tracker.snapshot(now, open_now)) == cached, now
    for p, segs in by.items():
        tracker.add_participant(p, roles[p])
        tracker.add_segments(p, segs[nxt[p] :])
    tracker.snapshot(hops)
    tracker.finish(hops)
    cached = repr(tracker.snapshot(hops))
    tracker._fixed.clear()
    tracker._balances.clear()
    assert repr(tracker.snapshot(hops)) == cached


def test_tracker_rejects_out_of_order_segments():
    t = SignalTracker(CFG)
    t.add_participant("a")
    t.add_segments("a", [S(100, 200)])
    with pytest.raises(ValueError):
        t.add_segments("a", [S(150, 300)])


# --- alerts -------------------------------------------------------------------------------

from engine.alerts import AlertTracker, replay  # noqa: E402
from engine.config import AlertConfig  # noqa: E402

MIN = 6000  # hops in a minute


def alternating(pids, start, end, turn=1000, gap=50):
    """pids take turns of `turn` hops in order between start and end."""
    by = {p: [] for p in pids}
    t, k = start, 0
    while t + turn <= end:
        by[pids[k % len(pids)]].append(S(t, t + turn))
        t += turn + gap
        k += 1
    return by


def merge(*parts):
    out = {}
    for part in parts:
        for p, segs in part.items():
            out.setdefault(p, []).extend(segs)
    return {p: sorted(s, key=lambda x: x.start) for p, s in out.items()}


def kinds(alerts, kind):
    return [a for a in alerts if a.kind == kind]


def test_withdrawal_fires_after_n_minutes_and_clears_when_they_speak():
    # ana, ben, fac talk in turn for 20 minutes; cleo speaks at 1 min, then only at 15 min
    talk = alternating(["fac", "ana", "ben"], 0, 20 * MIN)
    cleo = {"cleo": [S(MIN, MIN + 300), S(15 * MIN, 15 * MIN + 500)]}
    by = merge(talk, cleo)
    roles = {"fac": "facilitator"}
    _, alerts = replay(
        by, 20 * MIN, roles=roles, signals=SignalConfig(), alerts=AlertConfig(withdrawal_min=8)
    )
    w = kinds(alerts, "withdrawal")
    assert [a.participant for a in w] == ["cleo"]
    # silent from 1:03; the alert is raised 8 minutes later, cleared when she speaks at 15:00
    assert w[0].since_s == pytest.approx(63 + 480, abs=1.0)
    assert w[0].cleared_s == pytest.approx(15 * 60, abs=1.0)
    assert "8 minutes" in w[0].message


def test_dominance_with_hysteresis():
    # 0-5 min balanced; 5-12 min ana talks most (about 70 %); then balanced again
    balanced = alternating(["ana", "ben", "cleo"], 0, 5 * MIN)
    dom = {"ana": [], "ben": [], "cleo": []}
    t = 5 * MIN
    while t + 1020 <= 12 * MIN:
        dom["ana"].append(S(t, t + 700))
        dom["ben" if (t // 1000) % 2 else "cleo"].append(S(t + 720, t + 1000))
        t += 1020
    by = merge(balanced, dom, alternating(["ana", "ben", "cleo"], 12 * MIN, 25 * MIN))
    _, alerts = replay(by, 25 * MIN, roles={}, signals=SignalConfig(), alerts=AlertConfig())
    d = kinds(alerts, "dominance")
    assert [a.participant for a in d] == ["ana"]  # raised once: no flicker
    assert 5 * 60 < d[0].since_s < 12 * 60
    assert 12 * 60 < d[0].cleared_s < 25 * 60


def test_long_group_silence_alert_clears_when_someone_speaks():
    by = {"ana": [S(0, 1000), S(4000, 4500)], "ben": [S(1100, 1500)]}
    _, alerts = replay(by, 5000, roles={}, signals=SignalConfig(), alerts=AlertConfig())
    g = kinds(alerts, "group_silence")
    assert len(g) == 1
    assert g[0].since_s == pytest.approx(15.0 + 20.0, abs=1.0)
    assert g[0].cleared_s == pytest.approx(40.0, abs=1.0)
    assert g[0].participant == ""


def test_repeated_interruptions_of_one_person():
    # ben cuts ana off three times within 3 minutes
    ana, ben = [], []
    for k in range(3):
        t = k * 6000
        ana.append(S(t, t + 800))
        ben.append(S(t + 700, t + 1500))
    by = {"ana": ana, "ben": ben}
    final, alerts = replay(by, 12 * MIN, roles={}, signals=SignalConfig(), alerts=AlertConfig())
    assert final.participants["ana"].interruptions_received == 3
    i = kinds(alerts, "interrupted")
    assert [a.participant for a in i] == ["ana"]
    # the third starts at 2:07; it is counted once ben's turn has ended (2:15) and can no
    # longer merge with more of his speech (1 s later)
    assert i[0].since_s == pytest.approx(136.0, abs=1.0)
    # the count in the last 5 minutes falls to 1 once the second is 5 minutes old
    assert i[0].cleared_s == pytest.approx(67 + 300, abs=1.0)


def test_alert_tracker_config_is_validated():
    with pytest.raises(ValueError):
        AlertConfig(dominance_share=0.3, dominance_clear_share=0.4)
    with pytest.raises(ValueError):
        AlertConfig(interruptions=2, interruptions_clear=2)
    assert AlertTracker(AlertConfig()).active == []


def test_early_start_is_not_an_interruption():
    # ben starts 0.3 s before ana finishes and goes on: the floor changes, nobody was cut off
    s = sig({"ana": [S(0, 500)], "ben": [S(470, 900)]}, 1000)
    assert s.interruptions == ()
    assert s.follows == {("ana", "ben"): 1}
    assert s.participants["ben"].response_latency_s == pytest.approx(-0.3)
    # 0.5 s of overlap is the threshold
    s = sig({"ana": [S(0, 500)], "ben": [S(450, 900)]}, 1000)
    assert s.interruptions == ((4.5, "ben", "ana"),)


def test_a_person_talked_over_who_pauses_and_goes_on_is_interrupted():
    # ben starts at 470, just before ana's 0.32 s pause (500-532); she goes on to 600
    # while he talks: one utterance of hers, cut off by ben (not an early start).
    s = sig({"ana": [S(0, 500), S(532, 600)], "ben": [S(470, 900)]}, 1000)
    assert s.interruptions == ((4.7, "ben", "ana"),)
    assert s.participants["ana"].turns == 1
    # But someone who already held the floor when this person began does split them:
    # cleo's "mm-hm" during ana's turn, then her own turn 0.9 s later (0.2 s before ana
    # ends: an early start), is a backchannel and a new turn, not one utterance started
    # over ana.
    s = sig({"ana": [S(0, 470)], "cleo": [S(300, 360), S(450, 900)]}, 1000)
    assert s.interruptions == ()
    assert s.participants["cleo"].backchannels == 1
    assert s.participants["cleo"].turns == 1
