"""The WebRTC VAD (GMM on six sub-band energies), one private `Vad` per stream."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import repeat

import numpy as np
import webrtcvad

from engine.config import VadConfig
from engine.types import HOP, SAMPLE_RATE
from engine.vad.base import VadStreamState, check_hops

try:  # webrtcvad's C module: `Vad.is_speech` is a thin Python wrapper around its `process`
    from _webrtcvad import process as _process
except ImportError:  # pragma: no cover - a webrtcvad build without it
    _process = None


@dataclass(slots=True)
class WebRtcState:
    aggressiveness: int
    vad: webrtcvad.Vad = field(init=False)

    def __post_init__(self) -> None:
        self.vad = webrtcvad.Vad(self.aggressiveness)

    def reset(self) -> None:
        self.vad = webrtcvad.Vad(self.aggressiveness)


class WebRtcBackend:
    """Binary decisions, reported as probabilities 0.0 or 1.0."""

    name = "webrtc"

    def __init__(self, config: VadConfig) -> None:
        self._aggressiveness = config.webrtc_aggressiveness

    def open_stream(self) -> WebRtcState:
        return WebRtcState(self._aggressiveness)

    def process(
        self, states: Sequence[VadStreamState], hops: Sequence[np.ndarray]
    ) -> list[np.ndarray]:
        results = []
        for state, h in zip(states, hops, strict=True):
            if not isinstance(state, WebRtcState):
                raise TypeError(f"not a webrtc stream state: {type(state).__name__}")
            check_hops(h)
            h = np.ascontiguousarray(h)
            core = getattr(state.vad, "_vad", None)
            if _process is not None and core is not None:
                # The C call behind Vad.is_speech, once per hop over the rows of `h`:
                # the same decisions without a Python frame per hop.
                decisions = map(_process, repeat(core), repeat(SAMPLE_RATE), h, repeat(HOP))
            else:
                decisions = map(state.vad.is_speech, (bytes(row) for row in h), repeat(SAMPLE_RATE))
            results.append(np.fromiter(decisions, dtype=np.float32, count=h.shape[0]))
        return results

    def flush(self, state: VadStreamState) -> np.ndarray:
        return np.zeros(0, dtype=np.float32)
