"""Per-session speaker-bleed suppression over aligned blocks of hops.

A participant whose microphone picks up another's voice from loudspeakers gets a
delayed, attenuated copy of that voice, which a VAD rightly calls speech. Only the
session sees every stream, so detection runs per session across streams; its
history is private state with `reset()`, and results do not depend on how the
hops are chunked.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from engine.bleed import kernels
from engine.config import BleedConfig
from engine.types import HOP, SpeechSegment

__all__ = [
    "BleedState",
    "BleedSuppressor",
    "hop_levels",
    "remove_hops",
    "segments_to_mask",
    "tidy_mask",
]


def hop_levels(hops: np.ndarray) -> np.ndarray:
    """Per-hop log energy (dBFS, float32) of int16 hops shaped (n, HOP)."""
    if hops.dtype != np.int16 or hops.ndim != 2 or hops.shape[1] != HOP:
        raise ValueError(f"hops must be int16 of shape (n, {HOP}), got {hops.dtype} {hops.shape}")
    out = np.empty(hops.shape[0], np.float32)
    kernels.hop_level_kernel(hops, out)
    return out


@dataclass(slots=True)
class BleedState:
    """The history one session's detector carries between blocks."""

    n_streams: int
    ring: int
    t: np.ndarray = field(init=False)
    hist_env: np.ndarray = field(init=False)
    hist_speech: np.ndarray = field(init=False)
    hist_diff: np.ndarray = field(init=False)
    hist_mom: np.ndarray = field(init=False)
    cross: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        s, r = self.n_streams, self.ring
        self.t = np.zeros(1, np.int64)
        self.hist_env = np.zeros((s, r), np.float64)
        self.hist_speech = np.zeros((s, r), np.bool_)
        self.hist_diff = np.zeros((s, 2 * r), np.float64)  # a doubled ring: see bleed_kernel
        self.hist_mom = np.zeros((s, r, 2), np.float64)
        self.cross = np.zeros((s, s, r), np.float64)

    def reset(self) -> None:
        self.t.fill(0)
        self.hist_env.fill(0.0)
        self.hist_speech.fill(False)
        self.hist_diff.fill(0.0)
        self.hist_mom.fill(0.0)
        self.cross.fill(0.0)


class BleedSuppressor:
    """Steps over aligned blocks of hops for all streams of one session.

    `step(envelopes, speech)` takes float32 (streams, hops) levels in dBFS (see
    `hop_levels`) and the VAD's bool (streams, hops) speech decisions for the same
    hops, and returns the bool (streams, hops) mask of hops that are bleed. With
    the config switched off the mask is all False.
    """

    __slots__ = ("_params", "config", "last_dominated", "last_source", "state")

    def __init__(self, n_streams: int, config: BleedConfig) -> None:
        if not 1 <= n_streams <= 1024:
            raise ValueError(f"n_streams must be in [1, 1024], got {n_streams}")
        self.config = config
        self.state = BleedState(
            n_streams=n_streams, ring=max(config.max_lag_hops, config.diff_hops) + 1
        )
        p = np.zeros(kernels.N_PARAMS, np.float64)
        p[kernels.P_ALPHA] = 1.0 / config.window_hops
        p[kernels.P_MIN_CORR] = config.min_corr
        p[kernels.P_MIN_RATIO_DB] = config.min_ratio_db
        p[kernels.P_MIN_VAR] = config.min_std_db**2
        p[kernels.P_FLOOR_DB] = config.floor_dbfs
        p[kernels.P_DIFF_HOPS] = config.diff_hops
        self._params = p
        self.last_source = np.zeros((n_streams, 0), np.int32)
        """For each hop of the last step: the stream its bleed came from, or -1."""
        self.last_dominated = np.zeros((n_streams, 0), np.bool_)
        """For each hop of the last step: speech that some other stream, speaking up to
        `max_lag_ms` earlier, was `min_ratio_db` louder than (bleed by level alone)."""

    @property
    def n_streams(self) -> int:
        return self.state.n_streams

    @property
    def hops_seen(self) -> int:
        return int(self.state.t[0])

    def step(self, envelopes: np.ndarray, speech: np.ndarray) -> np.ndarray:
        s = self.state.n_streams
        if envelopes.ndim != 2 or envelopes.shape[0] != s:
            raise ValueError(f"envelopes must be ({s}, hops), got {envelopes.shape}")
        if speech.shape != envelopes.shape:
            raise ValueError(f"speech {speech.shape} must match envelopes {envelopes.shape}")
        n = envelopes.shape[1]
        out = np.zeros((s, n), np.bool_)
        self.last_source = np.full((s, n), -1, np.int32)
        self.last_dominated = np.zeros((s, n), np.bool_)
        if not self.config.enabled or n == 0:
            self.state.t[0] += n
            return out
        env = np.ascontiguousarray(envelopes, np.float32)
        if not np.isfinite(env).all():
            raise ValueError("envelopes must be finite")
        st = self.state
        kernels.bleed_kernel(
            env,
            np.ascontiguousarray(speech, np.bool_),
            st.t,
            st.hist_env,
            st.hist_speech,
            st.hist_diff,
            st.hist_mom,
            st.cross,
            self._params,
            out,
            self.last_source,
            self.last_dominated,
        )
        return out

    def reset(self) -> None:
        self.state.reset()
        self.last_source = np.zeros((self.state.n_streams, 0), np.int32)
        self.last_dominated = np.zeros((self.state.n_streams, 0), np.bool_)


def tidy_mask(mask: np.ndarray, fill_hops: int, min_run_hops: int) -> np.ndarray:
    """Whole-run clean-up of one stream's bleed mask (offline: it looks ahead).

    Per-hop decisions flicker inside a bleed run (soft syllables sink into the
    noise); genuine overlap yields only short, scattered hits. So gaps of at most
    `fill_hops` between bleed hops are filled first, then runs shorter than
    `min_run_hops` are dropped.
    """
    out = _fill_inner(mask, fill_hops)
    if min_run_hops > 0:
        for a, b in _runs(out):
            if b - a < min_run_hops:
                out[a:b] = False
    return out


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    edges = np.flatnonzero(np.diff(np.concatenate([[0], mask.astype(np.int8), [0]])))
    return [(int(a), int(b)) for a, b in zip(edges[::2], edges[1::2], strict=True)]


def segments_to_mask(segments: Sequence[SpeechSegment], n_hops: int) -> np.ndarray:
    """Bool per hop, True inside any segment (clipped to [0, n_hops))."""
    mask = np.zeros(n_hops, np.bool_)
    for seg in segments:
        mask[max(seg.start, 0) : min(seg.end, n_hops)] = True
    return mask


LOCK_ON_HOPS = 40
"""The envelope correlation takes a few hundred ms to build up, so a loudspeaker copy's
first syllable is missed: a segment whose bleed begins within this many hops (0.4 s) of
its start is taken as bleed from its start."""

TAKE_BACK_HOPS = 80
"""The same lag where the copy follows the stream's own voice (someone takes the floor
while this person finishes): the correlation, disturbed by the own voice, locks on again
only after up to half a second. A bleed run takes in the hops right before it that are
`dominated` (another stream much louder: the own voice is not in them), up to this many
(0.8 s); the own voice's last loud hop stops it."""


def remove_hops(
    segments: Sequence[SpeechSegment],
    removed: np.ndarray,
    min_speech_hops: int,
    dominated: np.ndarray | None = None,
    min_silence_hops: int = 0,
) -> list[SpeechSegment]:
    """Cut the `removed` hops out of the segments; drop what is left shorter than
    `min_speech_hops` (the VAD's own rule, so a few unmarked hops at the edge of a
    bleed run do not survive as speech); a segment starting as bleed is bleed from its
    start (LOCK_ON_HOPS); with `dominated` (per hop, as `removed`), a bleed run inside
    a segment is taken back over the dominated hops before it (TAKE_BACK_HOPS). A bleed
    run shorter than `min_silence_hops` between two kept pieces stays speech: the VAD
    bridges pauses that short, and a cut there would split one utterance in two (the
    floor seems to move on while its speaker merely paused under someone's voice)."""
    out: list[SpeechSegment] = []
    n = removed.shape[0]
    for seg in sorted(segments, key=lambda s: s.start):
        a0, b0 = max(seg.start, 0), min(seg.end, n)
        keep = ~removed[a0:b0]
        first = int(np.argmin(keep)) if keep.size and not keep.all() else -1
        if first >= 0 and dominated is not None:
            keep = _take_back(keep, dominated[a0:b0])
            first = int(np.argmin(keep))
        if 0 < first <= LOCK_ON_HOPS:
            keep = keep.copy()
            keep[:first] = False  # a segment that starts as bleed: its onset is bleed too
        if first >= 0 and min_silence_hops > 0:
            keep = _fill_inner(keep, min_silence_hops - 1)  # gaps the VAD would bridge
        # segments reaching past the mask keep their tail
        tail = max(seg.end - max(n, seg.start), 0)
        flags = np.concatenate([keep, np.ones(tail, np.bool_)])
        edges = np.flatnonzero(np.diff(np.concatenate([[False], flags, [False]]).astype(np.int8)))
        for a, b in zip(edges[::2], edges[1::2], strict=True):
            if b - a >= min_speech_hops:
                out.append(SpeechSegment(seg.start + int(a), seg.start + int(b)))
    return out


def _fill_inner(mask: np.ndarray, max_len: int) -> np.ndarray:
    """A copy with every run of False of at most `max_len` hops between True hops set."""
    out = mask.copy()
    for a, b in _runs(~out) if max_len > 0 else ():
        if a > 0 and b < out.shape[0] and b - a <= max_len:
            out[a:b] = True
    return out


def _take_back(keep: np.ndarray, dominated: np.ndarray) -> np.ndarray:
    """Each bleed run (False in `keep`) grows back over the dominated hops before it."""
    keep = keep.copy()
    starts = np.flatnonzero(keep[:-1] & ~keep[1:]) + 1  # first hop of each inner bleed run
    for a in starts.tolist():
        h = a
        while h > 0 and a - h < TAKE_BACK_HOPS and keep[h - 1] and dominated[h - 1]:
            h -= 1
        keep[h:a] = False
    return keep
