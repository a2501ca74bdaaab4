"""Vocal cues for the facilitator: how a participant's voice differs from their own usual.

Cues for a human, never a diagnosis. Each one compares a person's recent speech with a
baseline learnt from that same person's earlier speech (`WindowBaseline`), needs a
minimum of evidence before it shows (`min_evidence_s` of their speech, the baseline
learnt first), and clears with hysteresis. Every cue carries its evidence: how far from
the person's usual (in their own baseline units), over how much of their speech, and a
confidence. Definitions in docs/signals.md.
"""

from __future__ import annotations

import math
import warnings
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from engine.types import Cue

WINDOW_FEATURES = (
    "f0_mean_st",  # pitch, semitones
    "f0_sd_st",  # pitch variability
    "loudness_db",  # level, dBFS (relative to the person's own usual, so gain-safe enough)
    "jitter",  # local jitter, fraction of the period
    "shimmer_db",
    "hnr_db",
    "syllable_rate",  # syllable nuclei per second of speech
    "arousal",  # the affect model's score in [0, 1]
)
"""What is summarised for each window of a participant's speech."""

MIN_SCALE = np.array([0.5, 0.3, 1.5, 0.002, 0.1, 1.0, 0.3, 0.05])
"""Floor of each feature's baseline spread: a very steady voice must not make a tiny
change look large."""

# (kind, direction, plain words); "strained_voice" combines jitter, shimmer and HNR
CUES: tuple[tuple[str, str], ...] = (
    ("raised_pitch", "is speaking at a higher pitch than usual"),
    ("pitch_variability", "is varying their pitch more than usual"),
    ("strained_voice", "sounds more strained (rougher or breathier) than usual"),
    ("quiet_speech", "is speaking more quietly than usual"),
    ("slowed_speech", "is speaking more slowly than usual"),
    ("high_arousal", "sounds more activated or tense than usual"),
)


@dataclass(frozen=True, kw_only=True, slots=True)
class CueConfig:
    learn_s: float = 60.0  # seconds of a person's speech that set their baseline
    half_life_s: float = 1800.0  # of speech: how slowly the baseline follows them after
    evidence_s: float = 20.0  # seconds of their recent speech a cue is judged on
    raise_z: float = 2.0  # mean deviation (baseline units) over `evidence_s` that raises a
    # cue, with at least half of that speech beyond it
    clear_z: float = 1.0  # ... and below which it clears

    def __post_init__(self) -> None:
        if not 10.0 <= self.learn_s <= 1800.0:
            raise ValueError(f"learn_s must be in [10, 1800], got {self.learn_s}")
        if not self.half_life_s > 0:
            raise ValueError(f"half_life_s must be > 0, got {self.half_life_s}")
        if not 4.0 <= self.evidence_s <= 600.0:
            raise ValueError(f"evidence_s must be in [4, 600], got {self.evidence_s}")
        if not 0.0 <= self.clear_z < self.raise_z <= 10.0:
            raise ValueError("need 0 <= clear_z < raise_z <= 10")


@dataclass(slots=True)
class WindowBaseline:
    """A person's usual: median and spread (MAD x 1.4826) of their first windows, then
    followed slowly (exponentially forgetting medians of later windows)."""

    learn_windows: int
    rate: float  # per window
    values: list[np.ndarray] = field(default_factory=list)
    median: np.ndarray = field(default_factory=lambda: np.full(len(WINDOW_FEATURES), np.nan))
    scale: np.ndarray = field(default_factory=lambda: np.full(len(WINDOW_FEATURES), np.nan))

    def reset(self) -> None:
        self.values.clear()
        self.median.fill(np.nan)
        self.scale.fill(np.nan)

    @property
    def ready(self) -> np.ndarray:
        return np.isfinite(self.median)

    def deviation(self, v: np.ndarray) -> np.ndarray:
        return np.where(self.ready, (v - self.median) / self.scale, np.nan)

    def update(self, v: np.ndarray) -> None:
        if len(self.values) < self.learn_windows:
            self.values.append(v)
            if len(self.values) == self.learn_windows:
                stack = np.vstack(self.values)
                # a feature never measured while learning (no voiced hop, say) stays NaN,
                # which nanmedian announces with a warning per call: expected, not news
                with np.errstate(all="ignore"), warnings.catch_warnings():
                    warnings.simplefilter("ignore", RuntimeWarning)
                    med = np.nanmedian(stack, axis=0)
                    mad = np.nanmedian(np.abs(stack - med), axis=0) * 1.4826
                self.median = med
                self.scale = np.maximum(np.nan_to_num(mad, nan=0.0), MIN_SCALE)
                self.values.clear()
            return
        ok = np.isfinite(v) & self.ready
        step = self.rate
        # stochastic quantile steps: the median moves towards the value, the spread
        # towards the absolute deviation, each by a small fraction of the spread
        self.median = np.where(
            ok, self.median + step * self.scale * np.sign(v - self.median), self.median
        )
        dev = np.abs(v - self.median) * 1.4826
        self.scale = np.where(
            ok,
            np.maximum(self.scale + step * self.scale * np.sign(dev - self.scale), MIN_SCALE),
            self.scale,
        )


def _strain(z: np.ndarray) -> float:
    i = {n: k for k, n in enumerate(WINDOW_FEATURES)}
    parts = [z[i["jitter"]], z[i["shimmer_db"]], -z[i["hnr_db"]]]
    parts = [p for p in parts if math.isfinite(p)]
    return float(np.mean(parts)) if parts else math.nan


def cue_scores(z: np.ndarray) -> dict[str, float]:
    """Per cue kind, the signed deviation that raises it (positive = towards the cue)."""
    i = {n: k for k, n in enumerate(WINDOW_FEATURES)}
    return {
        "raised_pitch": float(z[i["f0_mean_st"]]),
        "pitch_variability": float(z[i["f0_sd_st"]]),
        "strained_voice": _strain(z),
        "quiet_speech": float(-z[i["loudness_db"]]),
        "slowed_speech": float(-z[i["syllable_rate"]]),
        "high_arousal": float(z[i["arousal"]]),
    }


@dataclass(slots=True)
class CueDetector:
    """One participant's cues. `update` with each window's features; returns what changed."""

    participant: str
    config: CueConfig
    window_s: float  # seconds of speech per window
    baseline: WindowBaseline = field(init=False)
    recent: deque[dict[str, float]] = field(init=False)
    active: dict[str, Cue] = field(default_factory=dict)
    history: list[Cue] = field(default_factory=list)
    speech_s: float = 0.0

    def __post_init__(self) -> None:
        c = self.config
        self.baseline = WindowBaseline(
            learn_windows=max(3, round(c.learn_s / self.window_s)),
            rate=math.log(2.0) / max(c.half_life_s / self.window_s, 1.0),
        )
        self.recent = deque(maxlen=max(2, round(c.evidence_s / self.window_s)))

    def reset(self) -> None:
        self.baseline.reset()
        self.recent.clear()
        self.active.clear()
        self.history.clear()
        self.speech_s = 0.0

    def update(self, t_s: float, features: Sequence[float]) -> list[Cue]:
        """One window of speech ended at session time `t_s` with these WINDOW_FEATURES."""
        v = np.asarray(features, np.float64)
        if v.shape != (len(WINDOW_FEATURES),):
            raise ValueError(f"need {len(WINDOW_FEATURES)} features, got {v.shape}")
        self.speech_s += self.window_s
        z = self.baseline.deviation(v)
        self.baseline.update(v)
        if not self.baseline.ready.any():
            return []
        self.recent.append(cue_scores(z))
        if len(self.recent) < (self.recent.maxlen or 1):
            return []  # not yet `evidence_s` of speech judged against the baseline
        changed: list[Cue] = []
        c = self.config
        for kind, words in CUES:
            vals = [r[kind] for r in self.recent if math.isfinite(r[kind])]
            if len(vals) < len(self.recent) // 2 + 1:
                continue  # too little defined evidence (e.g. unvoiced speech)
            smooth = float(np.mean(vals))
            beyond = sum(x >= c.raise_z for x in vals) / len(vals)
            cue = self.active.get(kind)
            if cue is None and smooth >= c.raise_z and beyond >= 0.5:
                evidence = len(vals) * self.window_s
                cue = Cue(
                    id=f"{kind}:{self.participant}:{round(t_s * 1000)}",
                    kind=kind,
                    participant=self.participant,
                    since_s=t_s,
                    cleared_s=-1.0,
                    deviation=round(smooth, 2),
                    evidence_s=evidence,
                    confidence=round(beyond, 2),
                    message=(
                        f"{self.participant} {words}: {smooth:.1f} times their usual "
                        f"variation, over the last {evidence:.0f} s of their speech"
                    ),
                )
                self.active[kind] = cue
                self.history.append(cue)
                changed.append(cue)
            elif cue is not None and smooth < c.clear_z:
                done = Cue(
                    id=cue.id,
                    kind=cue.kind,
                    participant=cue.participant,
                    since_s=cue.since_s,
                    cleared_s=t_s,
                    deviation=cue.deviation,
                    evidence_s=cue.evidence_s,
                    confidence=cue.confidence,
                    message=cue.message,
                )
                del self.active[kind]
                self.history[self.history.index(cue)] = done
                changed.append(done)
        return changed
