"""Each participant's own robust baseline, so a cue is a deviation from that person.

Learning: the values of a participant's first `learn_s` seconds of speech (hops where a
feature is defined) are kept; their median and MAD become the baseline. After that the
stored values are dropped and median and MAD follow the person slowly by stochastic
quantile steps (exponential forgetting with a half-life of `half_life_s` of speech).
Deviations are robust z-scores: (value - median) / (1.4826 * MAD), in baseline units.

Memory is bounded: at most `learn_s` * 100 float32 values per feature while learning.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from engine.affect.kernels import MAD_TO_SD, baseline_follow_kernel
from engine.types import HOPS_PER_SECOND


@dataclass(frozen=True, kw_only=True, slots=True)
class BaselineConfig:
    learn_s: float = 120.0  # seconds of (defined) speech per feature before the baseline is set
    half_life_s: float = 900.0  # of speech, after learning; slow, so a tense hour still shows
    min_scale: tuple[float, ...] = ()  # per feature: floor of MAD * 1.4826 (same units)

    def __post_init__(self) -> None:
        if not 5.0 <= self.learn_s <= 3600.0:
            raise ValueError(f"learn_s must be in [5, 3600], got {self.learn_s}")
        if not self.half_life_s > 0.0:
            raise ValueError(f"half_life_s must be > 0, got {self.half_life_s}")
        if any(not s >= 0.0 for s in self.min_scale):
            raise ValueError(f"min_scale values must be >= 0, got {self.min_scale}")

    @property
    def learn_hops(self) -> int:
        return round(self.learn_s * HOPS_PER_SECOND)

    @property
    def rate(self) -> float:
        """Per-hop step of the quantile updates; about ln 2 / half-life in hops."""
        return math.log(2.0) / (self.half_life_s * HOPS_PER_SECOND)


@dataclass(slots=True)
class BaselineState:
    """Per feature: stored values while learning, then median and scale (MAD * 1.4826)."""

    n_features: int
    learn_hops: int
    values: np.ndarray = field(init=False)  # float32 (n_features, learn_hops)
    count: np.ndarray = field(init=False)  # int64 (n_features,): values seen
    median: np.ndarray = field(init=False)  # NaN until ready
    scale: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.values = np.empty((self.n_features, self.learn_hops), np.float32)
        self.count = np.zeros(self.n_features, np.int64)
        self.median = np.full(self.n_features, np.nan)
        self.scale = np.full(self.n_features, np.nan)

    def reset(self) -> None:
        self.count.fill(0)
        self.median.fill(np.nan)
        self.scale.fill(np.nan)


class RobustBaseline:
    """One participant's baseline over named features (e.g. prosody.FEATURES)."""

    __slots__ = ("_floor", "config", "names", "state")

    def __init__(self, names: Sequence[str], config: BaselineConfig | None = None) -> None:
        if not names or len(set(names)) != len(names):
            raise ValueError(f"need distinct feature names, got {list(names)}")
        self.config = config or BaselineConfig()
        if self.config.min_scale and len(self.config.min_scale) != len(names):
            raise ValueError(f"min_scale has {len(self.config.min_scale)} values for {len(names)}")
        self.names = tuple(names)
        self.state = BaselineState(len(names), self.config.learn_hops)
        self._floor = np.array(self.config.min_scale or (0.0,) * len(names), np.float64)

    def reset(self) -> None:
        self.state.reset()

    @property
    def ready(self) -> np.ndarray:
        """bool per feature: its baseline is set."""
        return self.state.count >= self.state.learn_hops

    def update(self, values: np.ndarray) -> None:
        """Take (n_hops, n_features) values in hop order, NaN where undefined."""
        if values.ndim != 2 or values.shape[1] != len(self.names):
            raise ValueError(f"values must be (n, {len(self.names)}), got {values.shape}")
        st = self.state
        for j in range(len(self.names)):
            col = values[:, j]
            col = col[~np.isnan(col)]
            if col.size == 0:
                continue
            if st.count[j] < st.learn_hops:
                take = min(col.size, st.learn_hops - int(st.count[j]))
                st.values[j, st.count[j] : st.count[j] + take] = col[:take]
                st.count[j] += take
                col = col[take:]
                if st.count[j] == st.learn_hops:
                    learned = st.values[j].astype(np.float64)
                    st.median[j] = float(np.median(learned))
                    mad = float(np.median(np.abs(learned - st.median[j])))
                    st.scale[j] = max(MAD_TO_SD * mad, self._floor[j])
            if col.size:
                stats = np.array([st.median[j], st.scale[j]])
                st.count[j] += baseline_follow_kernel(
                    np.ascontiguousarray(col, dtype=np.float64),
                    stats,
                    self.config.rate,
                    float(self._floor[j]),
                )
                st.median[j], st.scale[j] = stats

    def deviation(self, values: np.ndarray) -> np.ndarray:
        """Robust z of (n, n_features) values: NaN where undefined or not yet learned."""
        if values.shape[-1] != len(self.names):
            raise ValueError(f"values must end in {len(self.names)} features, got {values.shape}")
        st = self.state
        with np.errstate(divide="ignore", invalid="ignore"):
            z = (values - st.median) / st.scale
        return np.where(self.ready & (st.scale > 0), z, np.nan)
