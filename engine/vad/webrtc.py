"""The WebRTC VAD (GMM on six sub-band energies), one private `Vad` per stream."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import webrtcvad

from engine.config import VadConfig
from engine.types import SAMPLE_RATE
from engine.vad.base import VadStreamState, check_hops


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
            is_speech = state.vad.is_speech
            buf = np.ascontiguousarray(h).tobytes()
            step = h.shape[1] * 2
            probs = np.fromiter(
                (is_speech(buf[i : i + step], SAMPLE_RATE) for i in range(0, len(buf), step)),
                dtype=np.float32,
                count=h.shape[0],
            )
            results.append(probs)
        return results

    def flush(self, state: VadStreamState) -> np.ndarray:
        return np.zeros(0, dtype=np.float32)
