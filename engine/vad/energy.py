"""The `numba` backend: our own VAD, one kernel call for a whole batch of streams."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from engine.config import VadConfig
from engine.types import SAMPLE_RATE
from engine.vad import kernels
from engine.vad.base import VadStreamState, check_hops


def biquad(kind: str, freq_hz: float, q: float = 1 / math.sqrt(2)) -> np.ndarray:
    """RBJ-cookbook 2nd-order high- or low-pass: b0 b1 b2 a1 a2 with a0 = 1."""
    w0 = 2 * math.pi * freq_hz / SAMPLE_RATE
    alpha = math.sin(w0) / (2 * q)
    cw = math.cos(w0)
    if kind == "highpass":
        b = [(1 + cw) / 2, -(1 + cw), (1 + cw) / 2]
    elif kind == "lowpass":
        b = [(1 - cw) / 2, 1 - cw, (1 - cw) / 2]
    else:
        raise ValueError(f"unknown biquad kind {kind!r}")
    a0, a1, a2 = 1 + alpha, -2 * cw, 1 - alpha
    return np.array([b[0] / a0, b[1] / a0, b[2] / a0, a1 / a0, a2 / a0])


COEF = np.stack([biquad("highpass", 60.0), biquad("highpass", 300.0), biquad("lowpass", 3400.0)])


@dataclass(frozen=True, kw_only=True, slots=True)
class EnergyVadParams:
    """Kernel parameters, from `python bench/tune_numba_vad.py` (AMI excerpts, clean and noisy).

    Never tuned on the VAD test set we report on (../shared/data/vad).
    """

    block_hops: int = 60  # noise-floor window = 8 blocks = 4.8 s
    fall: float = 0.3  # share of the gap closed per hop when the level drops below the floor
    track: float = 0.05  # share of the gap closed per hop for levels within near_db above
    near_db: float = 4.0
    rise_far_db: float = 0.002  # dB per hop the floor creeps up under louder levels (speech)
    snr0_db: float = 3.0  # SNR at which the probability is one half
    snr_slope: float = 0.3  # logistic slope per dB
    ratio_weight: float = 0.0  # per dB of speech-band share (<= 0)
    floor_db: float = -85.0
    level_gate_db: float = -70.0  # below this level a hop is not speech, whatever its SNR

    def as_array(self) -> np.ndarray:
        p = np.zeros(kernels.N_PARAMS)
        p[kernels.P_BLOCK_HOPS] = self.block_hops
        p[kernels.P_FALL] = self.fall
        p[kernels.P_TRACK] = self.track
        p[kernels.P_RISE_FAR] = self.rise_far_db
        p[kernels.P_NEAR_DB] = self.near_db
        p[kernels.P_SNR0] = self.snr0_db
        p[kernels.P_SNR_SLOPE] = self.snr_slope
        p[kernels.P_RATIO_W] = self.ratio_weight
        p[kernels.P_FLOOR_DB] = self.floor_db
        p[kernels.P_LEVEL_GATE_DB] = self.level_gate_db
        return p


@dataclass(slots=True)
class EnergyState:
    vector: np.ndarray = field(default_factory=lambda: np.zeros(kernels.STATE_SIZE))

    def reset(self) -> None:
        self.vector.fill(0.0)


class NumbaBackend:
    name = "numba"

    def __init__(self, config: VadConfig, params: EnergyVadParams | None = None) -> None:
        del config  # the shared smoothing settings apply after the kernel
        self.params = params or EnergyVadParams()
        self._params = self.params.as_array()

    def open_stream(self) -> EnergyState:
        return EnergyState()

    def process(
        self, states: Sequence[VadStreamState], hops: Sequence[np.ndarray]
    ) -> list[np.ndarray]:
        n_streams = len(states)
        if n_streams != len(hops):
            raise ValueError(f"{n_streams} states but {len(hops)} hop arrays")
        offsets = np.zeros(n_streams + 1, dtype=np.int64)
        for i, h in enumerate(hops):
            check_hops(h)
            offsets[i + 1] = offsets[i] + h.shape[0]
        batch = np.concatenate(hops) if n_streams > 1 else np.ascontiguousarray(hops[0])
        matrix = np.empty((n_streams, kernels.STATE_SIZE))
        for i, st in enumerate(states):
            if not isinstance(st, EnergyState):
                raise TypeError(f"not a numba stream state: {type(st).__name__}")
            matrix[i] = st.vector
        out = np.empty(batch.shape[0], dtype=np.float32)
        kernels.energy_vad_kernel(batch, offsets, matrix, COEF, self._params, out)
        for i, st in enumerate(states):
            st.vector[:] = matrix[i]  # type: ignore[attr-defined]
        return [out[offsets[i] : offsets[i + 1]] for i in range(n_streams)]

    def flush(self, state: VadStreamState) -> np.ndarray:
        return np.zeros(0, dtype=np.float32)


__all__ = ["EnergyState", "EnergyVadParams", "NumbaBackend"]
