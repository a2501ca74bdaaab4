"""The WebRTC VAD (GMM on six sub-band energies), one private `Vad` per stream."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from itertools import accumulate, repeat

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
    core: object = field(init=False)  # the C object behind `vad`, or None

    def __post_init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.vad = webrtcvad.Vad(self.aggressiveness)
        self.core = getattr(self.vad, "_vad", None)


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
        ours: list[WebRtcState] = []
        for state, h in zip(states, hops, strict=True):
            if not isinstance(state, WebRtcState):
                raise TypeError(f"not a webrtc stream state: {type(state).__name__}")
            check_hops(h)
            ours.append(state)
        if _process is None or len(hops) < 2 or any(s.core is None for s in ours):
            return [self._one(s, h) for s, h in zip(ours, hops, strict=True)]
        counts = [h.shape[0] for h in hops]
        out = self.process_flat(ours, np.concatenate(hops), counts)
        results, at = [], 0
        for n in counts:
            results.append(out[at : at + n])
            at += n
        return results

    def process_flat(
        self, states: Sequence[VadStreamState], hops: np.ndarray, counts: Sequence[int]
    ) -> np.ndarray:
        """`process` for hops already in one array, stream after stream (`counts[i]` of
        `states[i]`); returns one probability per hop in the same order."""
        check_hops(hops)
        hops = np.ascontiguousarray(hops)  # the C call reads each row as one buffer
        if len(states) != len(counts) or sum(counts) != hops.shape[0]:
            raise ValueError(
                f"{len(states)} states, {sum(counts)} hops counted, {hops.shape[0]} given"
            )
        ours: list[WebRtcState] = []
        for state in states:
            if not isinstance(state, WebRtcState):
                raise TypeError(f"not a webrtc stream state: {type(state).__name__}")
            ours.append(state)
        cores = [s.core for s in ours]
        if _process is None or None in cores:
            at = list(accumulate(counts, initial=0))
            parts = [self._one(s, hops[a:b]) for s, a, b in zip(ours, at, at[1:], strict=False)]
            return np.concatenate(parts) if parts else np.zeros(0, np.float32)
        # Every stream's hops in one pass: the C call behind Vad.is_speech once per hop,
        # each with its stream's own detector, and no Python frame or array per stream
        # (a live tick has a few hops per stream; the per-stream set-up cost more).
        per_hop = [c for c, n in zip(cores, counts, strict=True) for _ in range(n)]
        return np.fromiter(
            map(_process, per_hop, repeat(SAMPLE_RATE), hops, repeat(HOP)),
            dtype=np.float32,
            count=hops.shape[0],
        )

    @staticmethod
    def _one(state: WebRtcState, h: np.ndarray) -> np.ndarray:
        return np.fromiter(speech_flags(state.vad, h), dtype=np.float32, count=h.shape[0])

    def flush(self, state: VadStreamState) -> np.ndarray:
        return np.zeros(0, dtype=np.float32)


def speech_flags(vad: webrtcvad.Vad, hops: np.ndarray) -> Iterator[bool]:
    """`vad`'s decision on each hop (int16, (n, HOP)), in order."""
    h = np.ascontiguousarray(hops)
    core = getattr(vad, "_vad", None)
    if _process is not None and core is not None:
        # The C call behind Vad.is_speech, once per hop over the rows of `h`:
        # the same decisions without a Python frame per hop.
        return map(_process, repeat(core), repeat(SAMPLE_RATE), h, repeat(HOP))
    return map(vad.is_speech, (bytes(row) for row in h), repeat(SAMPLE_RATE))
