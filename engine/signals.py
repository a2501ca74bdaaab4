"""Engagement signals as pure functions over speech segments (definitions: docs/signals.md).

Everything is in hops (10 ms) internally. The batch functions here take whole segment
lists; `SignalTracker` computes the same figures incrementally for the live path, fed
segments as the VAD finalises them, and gives identical results (tests/test_signals.py
checks both on synthesized sessions cut at many points).

Vocabulary (docs/signals.md says it for therapists):
- segment: a stretch of one person's detected speech (VAD + hangover);
- utterance: a person's segments joined across pauses of at most `turn_gap_s`;
- backchannel: an utterance shorter than `backchannel_max_s` that starts while someone
  else holds the floor ("mm-hm"): it does not take the floor and is not a turn;
- turn: every other utterance;
- floor: held by the speaker of the latest turn until that utterance ends; taken by a
  turn that starts while the floor is free, or that starts while another holds it and
  outlasts them: an interruption if they spoke on for at least
  `interruption_overlap_s` after it started, else an early start.
"""

from __future__ import annotations

import bisect
import math
import operator
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from engine.config import SignalConfig
from engine.types import HOPS_PER_SECOND, SpeechSegment

TURN_GAP_HOPS = HOPS_PER_SECOND  # pauses up to 1 s stay inside an utterance
Memo = str | tuple[str, str]  # a `_memo` key: a figure, or (a figure, a participant)


def _hops(seconds: float) -> int:
    return round(seconds * HOPS_PER_SECOND)


# ---------------------------------------------------------------------------------------
# the foundation figures (kept: `groupsense analyze` tables and tests use them)


@dataclass(frozen=True, kw_only=True, slots=True)
class SpeakingFigures:
    speaking_s: float
    share: float  # of all participants' speaking time
    turns: int
    longest_turn_s: float
    longest_silence_s: float  # longest stretch of the session without this person's speech


def turns(segments: Sequence[SpeechSegment], max_gap: int = TURN_GAP_HOPS) -> list[SpeechSegment]:
    """Merge segments separated by at most `max_gap` hops (utterances)."""
    merged: list[SpeechSegment] = []
    for seg in sorted(segments, key=lambda s: s.start):
        if merged and seg.start - merged[-1].end <= max_gap:
            merged[-1] = SpeechSegment(merged[-1].start, max(merged[-1].end, seg.end))
        else:
            merged.append(seg)
    return merged


utterances = turns


def speaking_hops(segments: Iterable[SpeechSegment]) -> int:
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


# ---------------------------------------------------------------------------------------
# small pure pieces


def window_hops(segments: Iterable[SpeechSegment], lo: int, hi: int) -> int:
    """Hops of speech inside [lo, hi)."""
    return sum(max(0, min(s.end, hi) - max(s.start, lo)) for s in segments)


def balance(values: Sequence[float]) -> tuple[float, float]:
    """(normalised entropy, Gini) of non-negative amounts, e.g. speaking times.

    Entropy is 1.0 when everyone speaks equally and 0.0 when one person does all the
    talking; Gini is 0.0 when equal and approaches 1.0 when one dominates. With fewer
    than two people or no speech at all, balance is undefined: (1.0, 0.0) by convention.
    """
    vals = [float(v) for v in values]
    if any(v < 0 for v in vals):
        raise ValueError("balance needs non-negative amounts")
    total = sum(vals)
    n = len(vals)
    if n < 2 or total <= 0:
        return 1.0, 0.0
    entropy = _entropy(vals, total)
    diffs = sum(abs(a - b) for a in vals for b in vals)
    gini = diffs / (2 * n * n * (total / n))
    return entropy, gini


def _entropy(vals: Sequence[float], total: float) -> float:
    """Normalised entropy of the shares `vals / total` (two or more, total > 0); ints
    give the same floats (v / total converts v exactly, far below 2**53)."""
    log = math.log
    return -sum([p * log(p) for p in [v / total for v in vals] if p > 0]) / log(len(vals))


def _balance_hops(amounts: Sequence[int], *, gini: bool = True) -> tuple[float, float]:
    """`balance` of whole hops (non-negative ints), the same floats, for every snapshot.

    Its Gini takes n^2 float differences; of integers these are exact, so their sum is
    the integer sum over sorted amounts (each x_k counts 2k - n + 1 times, k from 0),
    O(n log n). `gini=False` leaves the Gini at 0.0, for when only entropy is wanted."""
    if amounts and min(amounts) < 0:
        raise ValueError("balance needs non-negative amounts")
    n = len(amounts)
    total = float(sum(amounts))  # exact, as balance's float sum is: far below 2**53
    if n < 2 or total <= 0:
        return 1.0, 0.0
    entropy = _entropy(amounts, total)
    if not gini:
        return entropy, 0.0
    half = sum(map(operator.mul, range(1 - n, n, 2), sorted(amounts)))  # 2k - n + 1
    return entropy, float(2 * half) / (2 * n * n * (total / n))


BalanceMemo = dict[bool, tuple[list[int], tuple[float, float]]]
"""The last amounts `_balance_hops` saw and its result, by `gini` (see _balance_memo)."""


def _balance_memo(memo: BalanceMemo | None, amounts: list[int], gini: bool) -> tuple[float, float]:
    """`_balance_hops`, reusing the last result while the amounts are the same: they stay
    so from one snapshot (each 50 ms) to the next while nobody speaks, windowed ones
    while no window edge crosses speech."""
    if memo is None:
        return _balance_hops(amounts, gini=gini)
    hit = memo.get(gini)
    if hit is not None and hit[0] == amounts:
        return hit[1]
    out = _balance_hops(amounts, gini=gini)
    memo[gini] = (amounts, out)
    return out


def _speech_matrix(
    by_pid: Mapping[str, Sequence[SpeechSegment]], lo: int, hi: int
) -> tuple[list[str], np.ndarray]:
    pids = list(by_pid)
    m = np.zeros((len(pids), max(hi - lo, 0)), np.bool_)
    for row, pid in enumerate(pids):
        for s in by_pid[pid]:
            a, b = max(s.start, lo), min(s.end, hi)
            if b > a:
                m[row, a - lo : b - lo] = True
    return pids, m


# ---------------------------------------------------------------------------------------
# overlap and group silence: a sweep over hops, chunkable


@dataclass(slots=True)
class SweepState:
    """Carried between blocks of hops, so that any split gives the same result."""

    hop: int = 0  # first hop not yet swept
    first_speech: int = -1  # first hop anyone spoke: group silences count after it
    silence_start: int = -1  # start of the open stretch with nobody speaking
    overlap_start: int = -1  # start of the open stretch with two or more speaking
    overlap_hops: dict[str, int] = field(default_factory=dict)
    overlap_counts: dict[str, int] = field(default_factory=dict)  # stretches they were in
    open_members: set[str] = field(default_factory=set)  # who is in the open overlap
    overlaps: list[tuple[int, int]] = field(default_factory=list)  # completed, >= min
    silences: list[tuple[int, int]] = field(default_factory=list)  # completed, >= min
    memo: dict[Memo, tuple[int, Any]] = field(default_factory=dict)  # see _memo

    def reset(self) -> None:
        self.memo.clear()
        self.hop, self.first_speech, self.silence_start, self.overlap_start = 0, -1, -1, -1
        for d in (self.overlap_hops, self.overlap_counts):
            d.clear()
        self.open_members.clear()
        self.overlaps.clear()
        self.silences.clear()


def _runs(flag: np.ndarray, base: int) -> list[tuple[int, int]]:
    edges = np.flatnonzero(np.diff(flag.view(np.int8), prepend=0, append=0))
    return [(int(edges[k]) + base, int(edges[k + 1]) + base) for k in range(0, len(edges), 2)]


def _close(
    runs: list[tuple[int, int]], open_start: int, base: int, end: int
) -> tuple[list[tuple[int, int]], int]:
    """Join a block's runs to the run left open by the previous block; return the runs
    completed and the start of the run left open at `end` (-1 if none)."""
    if open_start >= 0:
        if runs and runs[0][0] == base:
            runs[0] = (open_start, runs[0][1])
        else:
            runs.insert(0, (open_start, base))
    if runs and runs[-1][1] == end:
        return runs[:-1], runs[-1][0]
    return runs, -1


def sweep(
    state: SweepState,
    pids: Sequence[str],
    block: np.ndarray,
    *,
    min_silence: int,
    min_overlap: int,
) -> None:
    """Advance over `block` (bool [participants, hops], starting at `state.hop`).

    Completed group silences (nobody speaking for >= min_silence hops, after the first
    speech of the session and ended by speech) and overlaps (two or more speaking for
    >= min_overlap hops) are appended; per participant, the hops they spoke while
    someone else also spoke are counted.
    """
    n = block.shape[1] if block.ndim == 2 else 0
    if n == 0:
        return
    base, end = state.hop, state.hop + n
    count = block.sum(axis=0)
    multi = count >= 2
    for row, pid in enumerate(pids):
        state.overlap_hops[pid] = state.overlap_hops.get(pid, 0) + int(
            np.count_nonzero(block[row] & multi)
        )
    if state.first_speech < 0 and count.any():
        state.first_speech = base + int(np.argmax(count > 0))
    done, state.silence_start = _close(_runs(count == 0, base), state.silence_start, base, end)
    first = state.first_speech
    state.silences += [(a, b) for a, b in done if b - a >= min_silence and 0 <= first < a]
    runs = _runs(multi, base)
    members = [
        {p for row, p in enumerate(pids) if block[row, a - base : b - base].any()} for a, b in runs
    ]
    if state.overlap_start >= 0:  # join the run left open by the previous block
        if runs and runs[0][0] == base:
            runs[0] = (state.overlap_start, runs[0][1])
            members[0] |= state.open_members
        else:
            runs.insert(0, (state.overlap_start, base))
            members.insert(0, set(state.open_members))
    state.overlap_start, state.open_members = -1, set()
    if runs and runs[-1][1] == end:
        state.overlap_start, state.open_members = runs.pop()[0], members.pop()
    for (a, b), who in zip(runs, members, strict=True):
        if b - a >= min_overlap:
            state.overlaps.append((a, b))
            for p in who:
                state.overlap_counts[p] = state.overlap_counts.get(p, 0) + 1
    state.hop = end


# ---------------------------------------------------------------------------------------
# the floor: turns, backchannels, interruptions, transitions, response latency


@dataclass(slots=True)
class FloorState:
    """Walks utterances in start order (ties by participant id) and classifies each."""

    holder: str | None = None  # speaker of the latest floor-taking turn
    holder_end: int = -1  # end of that turn's utterance
    turn_hops: dict[str, list[int]] = field(default_factory=dict)  # durations of turns
    backchannels: dict[str, int] = field(default_factory=dict)
    interruptions: list[tuple[int, str, str]] = field(default_factory=list)  # (hop, by, of)
    follows: dict[tuple[str, str], int] = field(default_factory=dict)  # (from, to): count
    latencies: dict[str, list[int]] = field(default_factory=dict)  # responder: hops
    made: dict[str, int] = field(default_factory=dict)  # interruptions made, per person
    received: dict[str, int] = field(default_factory=dict)
    walked_until: int = -1  # start of the last utterance walked
    memo: dict[Memo, tuple[int, Any]] = field(default_factory=dict)  # see _memo

    def reset(self) -> None:
        self.holder, self.holder_end, self.walked_until = None, -1, -1
        for d in (self.turn_hops, self.backchannels, self.follows, self.latencies):
            d.clear()
        for c in (self.made, self.received, self.memo):
            c.clear()
        self.interruptions.clear()

    def walk(self, pid: str, u: SpeechSegment, cfg: SignalConfig) -> None:
        dur = u.end - u.start
        self.walked_until = u.start
        holder = self.holder
        held = holder is not None and holder != pid and self.holder_end > u.start
        if held and dur < _hops(cfg.backchannel_max_s):
            self.backchannels[pid] = self.backchannels.get(pid, 0) + 1
            return
        self.turn_hops.setdefault(pid, []).append(dur)
        if held and holder is not None:
            if self.holder_end >= u.end:
                return  # an overlapping turn that did not take the floor
            if self.holder_end - u.start >= _hops(cfg.interruption_overlap_s):
                self.interruptions.append((u.start, pid, holder))
                self.made[pid] = self.made.get(pid, 0) + 1
                self.received[holder] = self.received.get(holder, 0) + 1
            # else an early start: the floor changes, nobody was cut off
        if holder is not None and holder != pid:
            self.follows[(holder, pid)] = self.follows.get((holder, pid), 0) + 1
            latency = u.start - self.holder_end
            if latency <= _hops(cfg.response_max_s):
                self.latencies.setdefault(pid, []).append(latency)
        self.holder, self.holder_end = pid, u.end


def conversation_utterances(
    by_pid: Mapping[str, Sequence[SpeechSegment]], gap: int, backchannel_max: int
) -> list[tuple[int, str, SpeechSegment]]:
    """Utterances of everyone, in start order (ties by participant id).

    A person's segments join across pauses of at most `gap` hops, unless someone else
    spoke at length (an utterance of at least `backchannel_max`) during the pause and
    the joined utterance would be that long too: then the floor has moved on, and what
    follows is a new utterance. Someone who started talking over the utterance before
    the pause does not end it: a person talked over who pauses briefly and goes on is
    still in the same utterance (else every cut-off would read as an early start).
    A "mm-hm" from someone else during the pause does not split it; the pieces of one
    "mm ... hm" said over someone else's turn stay one backchannel, and two "mm-hm"s a
    moment apart stay two.
    """
    first = {pid: utterances(segs, gap) for pid, segs in by_pid.items()}
    long_ones = [
        (u.start, u.end, pid)
        for pid, us in first.items()
        for u in us
        if u.end - u.start >= backchannel_max
    ]
    out: list[tuple[int, str, SpeechSegment]] = []
    for pid, segs in by_pid.items():
        cur: SpeechSegment | None = None
        for seg in sorted(segs, key=lambda x: x.start):
            if cur is not None and seg.start - cur.end <= gap:
                a, b = cur.end, seg.start
                merged = max(cur.end, seg.end) - cur.start
                blocked = merged >= backchannel_max and any(
                    o != pid and s0 < b and e0 > a and not cur.start <= s0 < a
                    for s0, e0, o in long_ones
                )
                if not blocked:
                    cur = SpeechSegment(cur.start, max(cur.end, seg.end))
                    continue
            if cur is not None:
                out.append((cur.start, pid, cur))
            cur = seg
        if cur is not None:
            out.append((cur.start, pid, cur))
    out.sort(key=lambda x: (x[0], x[1]))
    return out


# ---------------------------------------------------------------------------------------
# the figures a snapshot carries


@dataclass(kw_only=True, slots=True)
class ParticipantSignals:
    """One participant's figures at one moment. A value: never changed once built.

    Not `frozen`: the live path builds one per participant per snapshot (20 a second
    under load), and a frozen dataclass's __init__ costs 3-5x a plain one's (every
    field through object.__setattr__)."""

    speaking_s: float
    share: float  # of everyone's speaking time, whole session
    share_5min: float  # ... over the last 5 minutes
    speech_5min_s: float  # their speaking time in the last 5 minutes
    share_1min: float  # ... over the last minute
    share_vs_equal: float  # share x participants: 1.0 = an equal share, 2.0 = twice it
    turns: int
    mean_turn_s: float
    longest_turn_s: float
    backchannels: int
    since_last_spoke_s: float  # -1 until the participant first speaks
    response_latency_s: float  # median over their responses; NaN without one
    responses: int
    overlap_s: float  # time spoken while someone else also spoke
    overlaps: int  # overlap stretches (>= overlap_min_s) they were part of
    interruptions_made: int
    interruptions_received: int


@dataclass(kw_only=True, slots=True)
class SessionSignals:
    """A session's figures at one moment; a value, not frozen (see ParticipantSignals)."""

    now_s: float
    participants: dict[str, ParticipantSignals]
    balance_entropy: float  # 1 = equal shares, 0 = one person talks
    balance_gini: float  # 0 = equal, towards 1 = one dominates
    balance_entropy_5min: float
    group_silences: int
    group_silence_s: float
    longest_group_silence_s: float
    current_group_silence_s: float  # the one going on now (0 if someone speaks)
    overlaps: int
    overlap_s: float
    turn_rate_per_min: float  # floor changes per minute of session
    facilitator_share: float  # NaN without a facilitator
    follows: dict[tuple[str, str], int]  # (from, to): floor changes from one to the other
    interruptions: tuple[tuple[float, str, str], ...]  # (time s, by, of)
    silences: tuple[tuple[float, float], ...]  # completed group silences (start s, end s)


def _median(values: Sequence[int]) -> float:
    if not values:
        return math.nan
    return statistics.median(values) / HOPS_PER_SECOND


def _memo(memo: dict[Memo, tuple[int, Any]], key: Memo, items: Sequence[Any], fn: Any) -> Any:
    """`fn(items)`, recomputed only when the append-only list `items` has grown: a
    snapshot a second over a 90-minute session should not redo its whole history."""
    hit = memo.get(key)
    if hit is None or hit[0] != len(items):
        hit = (len(items), fn(items))
        memo[key] = hit
    return hit[1]


def _current_silence(last_ends: Iterable[int], now: int) -> int:
    """Hops since anyone last spoke (0 before anyone has, or while someone speaks)."""
    latest = max(last_ends, default=-1)
    return max(now - latest, 0) if latest >= 0 else 0


def _sum_max(durations: Sequence[int]) -> tuple[int, int]:
    return sum(durations), max(durations, default=0)


def _silence_figures(
    silences: Sequence[tuple[int, int]],
) -> tuple[tuple[tuple[float, float], ...], int, int]:
    """(the silences in seconds, their total and longest length in hops)."""
    return (
        tuple((a / HOPS_PER_SECOND, b / HOPS_PER_SECOND) for a, b in silences),
        sum(b - a for a, b in silences),
        max((b - a for a, b in silences), default=0),
    )


def _total_length(spans: Sequence[tuple[int, int]]) -> int:
    return sum(b - a for a, b in spans)


def _interruption_times(
    interruptions: Sequence[tuple[int, str, str]],
) -> tuple[tuple[float, str, str], ...]:
    return tuple((h / HOPS_PER_SECOND, by, of) for h, by, of in interruptions)


Settled = tuple[int, float, float, int, float, int, float, int, int, int]
"""`_settled_figures`: turns, mean and longest turn (s), backchannels, response latency
(s) and responses, overlap (s) and overlaps, interruptions made and received."""


def _settled_figures(p: str, floor: FloorState, sweep_state: SweepState) -> Settled:
    """A participant's figures that depend on the floor walk and the sweep only: the live
    path keeps them until either moves (a few times a minute), not per snapshot."""
    memo = floor.memo
    durs = floor.turn_hops.get(p, ())
    turn_sum, turn_max = _memo(memo, ("turns", p), durs, _sum_max)
    lats = floor.latencies.get(p, ())
    return (
        len(durs),
        (turn_sum / len(durs) / HOPS_PER_SECOND) if durs else 0.0,
        turn_max / HOPS_PER_SECOND,
        floor.backchannels.get(p, 0),
        _memo(memo, ("latency", p), lats, _median),
        len(lats),
        sweep_state.overlap_hops.get(p, 0) / HOPS_PER_SECOND,
        sweep_state.overlap_counts.get(p, 0),
        floor.made.get(p, 0),
        floor.received.get(p, 0),
    )


def _figures(
    *,
    pids: Sequence[str],
    roles: Mapping[str, str],
    segs: Mapping[str, Sequence[SpeechSegment]],
    floor: FloorState,
    sweep_state: SweepState,
    now: int,
    cfg: SignalConfig,
    spoken: Mapping[str, int] | None = None,
    last_end: Mapping[str, int] | None = None,
    windows: tuple[Mapping[str, int], Mapping[str, int]] | None = None,
    fixed: dict[str, Settled] | None = None,
    balances: BalanceMemo | None = None,
) -> SessionSignals:
    """Assemble figures from the floor walk, the sweep and the segments up to `now`
    (`segs` needs only the last 5 minutes when `spoken` and `last_end` are given).
    `fixed` caches `_settled_figures` by participant: the caller empties it whenever
    the floor walk or the sweep moves. `balances` keeps the last balance figures.

    The live path calls this for every snapshot of every session (each 50 ms under
    load), so the per-participant loop looks each table up once and builds no closures
    or key strings; what only grows is summed once per growth (`_memo`)."""
    if spoken is None:
        spoken = {p: speaking_hops(segs[p]) for p in pids}
    if last_end is None:
        last_end = {p: max((s.end for s in segs[p]), default=-1) for p in pids}
    total = sum(spoken.values())
    w5: Mapping[str, int]
    w1: Mapping[str, int]
    if windows is None:
        w5 = {p: window_hops(segs[p], now - _hops(300.0), now) for p in pids}
        w1 = {p: window_hops(segs[p], now - _hops(60.0), now) for p in pids}
    else:
        w5, w1 = windows
    t5, t1 = sum(w5.values()), sum(w1.values())
    n = len(pids)
    out = {}
    for p in pids:
        st = None if fixed is None else fixed.get(p)
        if st is None:
            st = _settled_figures(p, floor, sweep_state)
            if fixed is not None:
                fixed[p] = st
        turns_, mean_turn, longest, bc, latency, responses, ov_s, ov_n, made, received = st
        sp, end, a5, a1 = spoken[p], last_end[p], w5[p], w1[p]
        share = sp / total if total else 0.0
        out[p] = ParticipantSignals(
            speaking_s=sp / HOPS_PER_SECOND,
            share=share,
            share_5min=a5 / t5 if t5 else 0.0,
            speech_5min_s=a5 / HOPS_PER_SECOND,
            share_1min=a1 / t1 if t1 else 0.0,
            share_vs_equal=share * n,
            turns=turns_,
            mean_turn_s=mean_turn,
            longest_turn_s=longest,
            backchannels=bc,
            since_last_spoke_s=-1.0 if end < 0 else max(now - end, 0) / HOPS_PER_SECOND,
            response_latency_s=latency,
            responses=responses,
            overlap_s=ov_s,
            overlaps=ov_n,
            interruptions_made=made,
            interruptions_received=received,
        )
    entropy, gini = _balance_memo(balances, [spoken[p] for p in pids], True)
    entropy5, _ = _balance_memo(balances, [w5[p] for p in pids], False)
    fac = [p for p in pids if roles.get(p) == "facilitator"]
    silences = sweep_state.silences
    sil_tuple, sil_total, sil_longest = _memo(
        sweep_state.memo, "silences", silences, _silence_figures
    )
    minutes = now / HOPS_PER_SECOND / 60.0
    changes = sum(floor.follows.values())
    return SessionSignals(
        now_s=now / HOPS_PER_SECOND,
        participants=out,
        balance_entropy=entropy,
        balance_gini=gini,
        balance_entropy_5min=entropy5,
        group_silences=len(silences),
        group_silence_s=sil_total / HOPS_PER_SECOND,
        longest_group_silence_s=sil_longest / HOPS_PER_SECOND,
        current_group_silence_s=_current_silence(last_end.values(), now) / HOPS_PER_SECOND,
        overlaps=len(sweep_state.overlaps),
        overlap_s=_memo(sweep_state.memo, "overlap", sweep_state.overlaps, _total_length)
        / HOPS_PER_SECOND,
        turn_rate_per_min=changes / minutes if minutes > 0 else 0.0,
        facilitator_share=(sum(spoken[p] for p in fac) / total if total else 0.0)
        if fac
        else math.nan,
        follows=dict(floor.follows),
        interruptions=_memo(floor.memo, "interruptions", floor.interruptions, _interruption_times),
        silences=sil_tuple,
    )


def session_signals(
    by_pid: Mapping[str, Sequence[SpeechSegment]],
    now: int,
    cfg: SignalConfig,
    roles: Mapping[str, str] | None = None,
) -> SessionSignals:
    """Every signal of one session at hop `now`, from its complete speech segments."""
    if now < 0:
        raise ValueError(f"now must be >= 0, got {now}")
    clipped = {
        p: [SpeechSegment(s.start, min(s.end, now)) for s in segs if s.start < now]
        for p, segs in by_pid.items()
    }
    pids = list(clipped)
    floor = FloorState()
    for _, pid, u in conversation_utterances(
        clipped, _hops(cfg.turn_gap_s), _hops(cfg.backchannel_max_s)
    ):
        floor.walk(pid, u, cfg)
    _, m = _speech_matrix(clipped, 0, now)
    state = SweepState()
    sweep(
        state,
        pids,
        m,
        min_silence=_hops(cfg.group_silence_min_s),
        min_overlap=_hops(cfg.overlap_min_s),
    )
    return _figures(
        pids=pids,
        roles=roles or {},
        segs=clipped,
        floor=floor,
        sweep_state=state,
        now=now,
        cfg=cfg,
    )


# ---------------------------------------------------------------------------------------
# the live path: the same figures, incrementally


@dataclass(slots=True)
class _Track:
    role: str
    segments: list[SpeechSegment] = field(default_factory=list)  # final, in order
    spoken: int = 0  # hops in `segments`
    settled: int = 0  # hops before this are final for this participant
    unwalked: int = 0  # index of the first segment not yet handed to the floor walk
    starts: list[int] = field(default_factory=list)  # segment starts, for bisection
    before: list[int] = field(default_factory=list)  # speech hops before each segment

    def speech_before(self, hop: int) -> int:
        """Hops of this participant's final speech before `hop` (prefix sums: a window's
        speech costs two bisections however many segments it holds)."""
        k = bisect.bisect_right(self.starts, hop) - 1
        if k < 0:
            return 0
        seg = self.segments[k]
        return self.before[k] + max(0, min(hop, seg.end) - seg.start)

    unswept: int = 0  # index of the first segment the sweep may still need


class SignalTracker:
    """`session_signals`, computed as segments arrive (the live path).

    Feed each participant's final segments in order (`add_segments`) and how far their
    speech is settled (`settle`: no segment will start before that hop). The floor walk
    and the overlap/silence sweep advance as far as every participant is settled;
    shares, windows and time since last spoke also use the segment still open. Once
    everything up to a hop is settled, the figures equal `session_signals` at that hop
    (tests/test_signals.py).

    A backchannel or a turn is classified once it and every utterance that started
    before it have ended, so counts inside a long monologue appear when it ends.
    """

    def __init__(self, cfg: SignalConfig) -> None:
        self.cfg = cfg
        self._tracks: dict[str, _Track] = {}
        self.floor = FloorState()
        self.sweep = SweepState()
        self._pending: list[tuple[int, str, int]] = []  # (start, pid, end), unwalked, sorted
        self._scan = 0  # pending[:_scan] have been scanned for a group pause
        self._reach = -1  # latest end among them
        self._gap = _hops(cfg.turn_gap_s)
        self._fresh = False  # segments added since the last walk
        self._advanced_to = -1  # settled hop of the last `advance` (-1: none yet)
        self._fixed: dict[str, Settled] = {}  # see _figures; emptied when walk or sweep run
        self._balances: BalanceMemo = {}

    def reset(self) -> None:
        self._tracks.clear()
        self._pending.clear()
        self._scan, self._reach = 0, -1
        self._fresh, self._advanced_to = False, -1
        self._fixed.clear()
        self._balances.clear()
        self.floor.reset()
        self.sweep.reset()

    @property
    def participants(self) -> list[str]:
        return list(self._tracks)

    def add_participant(self, pid: str, role: str = "participant") -> None:
        if pid not in self._tracks:
            self._tracks[pid] = _Track(role=role)

    def add_segments(self, pid: str, segments: Iterable[SpeechSegment]) -> None:
        t = self._tracks[pid]
        for seg in segments:
            if t.segments and seg.start < t.segments[-1].end:
                raise ValueError(f"{pid}: segments must come in order and not overlap")
            t.starts.append(seg.start)
            t.before.append(t.spoken)
            t.segments.append(seg)
            t.spoken += seg.end - seg.start
            t.settled = max(t.settled, seg.end)
            self._fresh = True

    def settle(self, pid: str, until: int) -> None:
        """Nothing of `pid` that starts before `until` is still to come."""
        t = self._tracks[pid]
        t.settled = max(t.settled, until)

    def advance(self) -> None:
        """Walk the floor and sweep as far as every participant is settled."""
        if not self._tracks:
            return
        settled = min([t.settled for t in self._tracks.values()])  # a list: faster, each tick
        if not self._fresh and settled == self._advanced_to:
            return  # most ticks: walk and sweep over the same state would do nothing
        self._fresh, self._advanced_to = False, settled
        self._fixed.clear()
        self._walk(settled)
        self._sweep(settled)

    def finish(self, now: int) -> None:
        """End of session: everything up to `now` is final."""
        for t in self._tracks.values():
            t.settled = max(t.settled, now)
        self._fresh, self._advanced_to = False, -1  # the next `advance` runs in full
        self._fixed.clear()
        self._walk(None)
        self._sweep(now)

    def _walk(self, settled: int | None) -> None:
        """Classify the utterances before the last pause of the whole group longer than
        `turn_gap_s` that is known to be over (None: everything). Utterances never span
        such a pause, and whether a pause splits one depends only on speech next to it,
        so walking in these chunks gives the batch result.

        Incremental: a segment arrives only once its participant is settled past its
        start, so new segments always sort after the ones already scanned."""
        for pid, t in self._tracks.items():
            for seg in t.segments[t.unwalked :]:
                bisect.insort(self._pending, (seg.start, pid, seg.end))
            t.unwalked = len(t.segments)
        pending = self._pending
        cut = -1  # pending[:cut] are walked now
        if settled is None:
            cut = len(pending)
        else:
            k, reach = self._scan, self._reach
            while k < len(pending) and pending[k][0] < settled:
                start, _, end = pending[k]
                if reach >= 0 and start - reach > self._gap:
                    cut = k
                reach = max(reach, end)
                k += 1
            self._scan, self._reach = k, reach
            if k == len(pending) and reach >= 0 and settled - reach > self._gap:
                cut = k  # the group has been quiet since, and nothing more can come
        if cut <= 0:
            return
        chunk: dict[str, list[SpeechSegment]] = {pid: [] for pid in self._tracks}
        for start, pid, end in pending[:cut]:
            chunk[pid].append(SpeechSegment(start, end))
        del pending[:cut]
        self._scan -= cut
        if self._scan == 0:
            self._reach = -1
        for _, pid, u in conversation_utterances(
            chunk, self._gap, _hops(self.cfg.backchannel_max_s)
        ):
            self.floor.walk(pid, u, self.cfg)

    def _sweep(self, until: int) -> None:
        lo = self.sweep.hop
        if until <= lo:
            return
        pids = list(self._tracks)
        block = np.zeros((len(pids), until - lo), np.bool_)
        for row, pid in enumerate(pids):
            t = self._tracks[pid]
            segs = t.segments
            k = t.unswept
            while k < len(segs) and segs[k].start < until:
                a, b = max(segs[k].start, lo), min(segs[k].end, until)
                if b > a:
                    block[row, a - lo : b - lo] = True
                k += 1
            while t.unswept < len(segs) and segs[t.unswept].end <= until:
                t.unswept += 1
        sweep(
            self.sweep,
            pids,
            block,
            min_silence=_hops(self.cfg.group_silence_min_s),
            min_overlap=_hops(self.cfg.overlap_min_s),
        )

    def snapshot(
        self, now: int, open_segments: Mapping[str, SpeechSegment | None] | None = None
    ) -> SessionSignals:
        """The figures at hop `now`; `open_segments` are the segments in progress."""
        open_segments = open_segments or {}
        spoken: dict[str, int] = {}
        last_end: dict[str, int] = {}
        w5: dict[str, int] = {}
        w1: dict[str, int] = {}
        lo5, lo1 = now - _hops(300.0), now - _hops(60.0)
        for pid, t in self._tracks.items():
            sp, end = t.spoken, t.segments[-1].end if t.segments else -1
            upto = sp if end <= now else t.speech_before(now)  # all of it, usually
            a5, a1 = upto - t.speech_before(lo5), upto - t.speech_before(lo1)
            o = open_segments.get(pid)
            if o is not None:
                sp += o.end - o.start
                end = max(end, o.end)
                a5 += max(0, min(o.end, now) - max(o.start, lo5))
                a1 += max(0, min(o.end, now) - max(o.start, lo1))
            spoken[pid], last_end[pid], w5[pid], w1[pid] = sp, end, a5, a1
        return _figures(
            pids=list(self._tracks),
            roles={p: t.role for p, t in self._tracks.items()},
            segs={},
            floor=self.floor,
            sweep_state=self.sweep,
            now=now,
            cfg=self.cfg,
            spoken=spoken,
            last_end=last_end,
            windows=(w5, w1),
            fixed=self._fixed,
            balances=self._balances,
        )
