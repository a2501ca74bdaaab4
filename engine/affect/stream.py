"""One consenting participant's affect path: prosody per hop, windows of speech, the
affect model, cues against their own baseline. `affect_step` advances many at once.

Runs only for participants whose StreamConfig consents (`affect_consent`), or in
`groupsense analyze --affect`; without it nothing here is created for them, so no affect
output about them can exist. Audio is held for one window of speech at most (2 s).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache

import numpy as np

from engine.affect.cues import WINDOW_FEATURES, CueConfig, CueDetector
from engine.affect.features import WINDOW_S, SpeechWindow, batch_features
from engine.affect.model import AffectModel
from engine.affect.prosody import ProsodyHops, ProsodyTracker, process_batch
from engine.types import HOP, HOPS_PER_SECOND, Cue

RECENT_WINDOWS = 30
"""Windows (of WINDOW_S speech) the reported arousal/valence average over: one minute."""


@cache
def shared_model() -> AffectModel:
    """The one affect model of the process: immutable, shared by every stream."""
    return AffectModel()


@dataclass(slots=True)
class _Acc:
    """Per-hop prosody of the window being filled (speech hops only)."""

    f0: list[np.ndarray] = field(default_factory=list)
    loud: list[np.ndarray] = field(default_factory=list)
    jitter: list[np.ndarray] = field(default_factory=list)
    shimmer: list[np.ndarray] = field(default_factory=list)
    hnr: list[np.ndarray] = field(default_factory=list)
    nuclei: int = 0
    hops: int = 0

    def add(self, h: ProsodyHops, take: np.ndarray) -> None:
        """The hops at indices `take` (int, ascending, distinct) of `h`."""
        self.f0.append(h.f0_st[take])
        self.loud.append(h.loudness_db[take])
        self.jitter.append(h.jitter[take])
        self.shimmer.append(h.shimmer_db[take])
        self.hnr.append(h.hnr_db[take])
        self.nuclei += int(np.count_nonzero(h.nucleus[take]))
        self.hops += int(take.shape[0])

    def summary(self, arousal: float) -> list[float]:
        def cat(xs: list[np.ndarray]) -> np.ndarray:
            x = np.concatenate(xs) if xs else np.zeros(0)
            return x[np.isfinite(x)]

        f0, loud, jit, shim, hnr = map(
            cat, (self.f0, self.loud, self.jitter, self.shimmer, self.hnr)
        )

        def mean(x: np.ndarray) -> float:
            return float(x.mean()) if x.size else math.nan

        speech_s = self.hops / HOPS_PER_SECOND
        return [
            mean(f0),
            float(f0.std()) if f0.size >= 10 else math.nan,
            mean(loud),
            mean(jit),
            mean(shim),
            mean(hnr),
            self.nuclei / speech_s if speech_s > 0 else math.nan,
            arousal,
        ]


@dataclass(slots=True)
class AffectStream:
    """Private state of one participant's affect analysis, kept across reconnects."""

    participant: str
    config: CueConfig = field(default_factory=CueConfig)
    # False: prosody and its cues only. The affect model's window audio is never held
    # and its arousal/valence never computed (no `high_arousal` cue; means read -1).
    use_model: bool = True
    prosody: ProsodyTracker = field(default_factory=ProsodyTracker)
    window: SpeechWindow = field(init=False)
    cues: CueDetector = field(init=False)
    acc: _Acc = field(default_factory=_Acc)
    arousal: deque[float] = field(default_factory=lambda: deque(maxlen=RECENT_WINDOWS))
    valence: deque[float] = field(default_factory=lambda: deque(maxlen=RECENT_WINDOWS))
    windows: int = 0
    arousal_sum: float = 0.0  # over all windows: the session's mean
    valence_sum: float = 0.0
    means_of: int = field(default=-1, init=False, repr=False, compare=False)  # `windows`
    # the cached recent means were computed at (-1: none); see _recent_means
    means: tuple[float, float] = field(default=(-1.0, -1.0), init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.cues = CueDetector(self.participant, self.config, WINDOW_S)
        # without the model, windows are only counted: no audio buffer
        self.window = SpeechWindow(keep_audio=self.use_model)

    def reset(self) -> None:
        self.prosody.reset()
        self.window.reset()
        self.cues.reset()
        self.acc = _Acc()
        self.arousal.clear()
        self.valence.clear()
        self.windows = 0
        self.arousal_sum = self.valence_sum = 0.0
        self.means_of = -1

    def _recent_means(self) -> tuple[float, float]:
        """(mean arousal, mean valence) of the recent windows, -1 without one.

        Cached until the next window: every snapshot (each 50 ms) asks, a window comes
        at most every 2 s of speech, and np.mean's call overhead on a 30-item deque cost
        more than the rest of a participant's view. Only `affect_step` adds to the
        deques, and it counts every window in `windows` after adding it; reset() drops
        the cache. `windows` is read first, so a view taken on the event loop while the
        executor adds a window is at worst recomputed once more, never left stale. The
        values are np.mean's own (a running sum would round differently)."""
        windows = self.windows
        if self.means_of != windows:
            self.means = (
                float(np.mean(self.arousal)) if self.arousal else -1.0,
                float(np.mean(self.valence)) if self.valence else -1.0,
            )
            self.means_of = windows
        return self.means

    @property
    def mean_arousal(self) -> float:
        return self._recent_means()[0]

    @property
    def mean_valence(self) -> float:
        return self._recent_means()[1]


def affect_step(
    streams: Sequence[AffectStream],
    pcms: Sequence[np.ndarray],
    speech: Sequence[np.ndarray],
    end_hops: Sequence[int],
) -> list[Cue]:
    """Advance several participants by whole hops of 16 kHz int16 audio (`pcms`, each
    int16[n * HOP]) with the VAD's per-hop speech flags; `end_hops` is each block's end
    in session hops (for the cues' times). One prosody call and one model call for all
    (streams with `use_model` off skip the model). Returns the cues raised or cleared."""
    if not streams:
        return []
    # Most blocks hold no speech: the trackers' speech counts tell which without a
    # pass over the masks.
    before = [s.prosody.state.speech_hops for s in streams]
    hops = process_batch([s.prosody for s in streams], pcms, speech)
    pending: list[tuple[AffectStream, np.ndarray | None, float, _Acc]] = []
    for s, pcm, h, end, b in zip(streams, pcms, hops, end_hops, before, strict=True):
        if s.prosody.state.speech_hops == b:
            continue
        n = h.speech.shape[0]
        cap = s.window.cap // HOP  # speech hops per window
        # split the block where windows fill, so each window's prosody matches its audio
        idx = np.flatnonzero(h.speech)
        start = 0
        while start < idx.size:
            room = cap - s.window.fill // HOP
            part = idx[start : start + room]
            s.acc.add(h, part)
            window: np.ndarray | None = None  # the model's audio of a full window
            if s.use_model:
                full = s.window.push_hops(pcm.reshape(-1, HOP)[part])
                done = bool(full)
                window = full[0] if full else None
            else:
                done = s.window.count_hops(part.size) > 0
            start += part.size
            if done:
                t_s = (end - (n - 1 - int(part[-1]))) / HOPS_PER_SECOND
                pending.append((s, window, t_s, s.acc))
                s.acc = _Acc()
    if not pending:
        return []
    audio = [w for _, w, _, _ in pending if w is not None]
    out = shared_model().predict(batch_features(audio)) if audio else None
    changed: list[Cue] = []
    k = 0
    for s, w, t_s, acc in pending:
        if out is None or w is None:  # a stream without the model: prosody's cues only
            s.windows += 1
            changed += s.cues.update(t_s, acc.summary(math.nan))
            continue
        arousal = float(out.arousal[k])
        s.arousal.append(arousal)
        s.arousal_sum += arousal
        if out.valence is not None:
            s.valence.append(float(out.valence[k]))
            s.valence_sum += float(out.valence[k])
        s.windows += 1
        changed += s.cues.update(t_s, acc.summary(arousal))
        k += 1
    return changed


__all__ = ["WINDOW_FEATURES", "AffectStream", "affect_step", "shared_model"]
