"""Explicit, once-only conversion of any input format to 16 kHz mono int16.

Uses libswresample through PyAV (its default windowed-sinc filter, 32 taps per
phase, with an anti-alias low-pass): the one place in the engine where sample
rate or channel count changes. Plain decimation is never used.
"""

from __future__ import annotations

import av
import numpy as np

from engine.types import SAMPLE_RATE

QUALITY = "swr-sinc32"
"""Name of the resampling filter, reported in outputs so results are traceable."""


class Resampler:
    """Converts decoded frames of one fixed input format to 16 kHz mono int16."""

    __slots__ = ("_resampler",)

    def __init__(self) -> None:
        self._resampler = av.AudioResampler(format="s16", layout="mono", rate=SAMPLE_RATE)

    def convert(self, frame: av.AudioFrame | None) -> np.ndarray:
        """Resample one frame (None flushes the filter's tail)."""
        out = self._resampler.resample(frame)
        if not out:
            return np.zeros(0, dtype=np.int16)
        if len(out) == 1:
            return out[0].to_ndarray().reshape(-1)
        return np.concatenate([f.to_ndarray().reshape(-1) for f in out])
