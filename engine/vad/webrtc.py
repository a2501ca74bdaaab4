"""The WebRTC VAD (GMM on six sub-band energies), one private `Vad` per stream."""

from __future__ import annotations

import ctypes
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from itertools import accumulate, repeat
from typing import Any

import numpy as np
import webrtcvad

from engine.config import VadConfig
from engine.types import HOP, SAMPLE_RATE
from engine.vad.base import VadStreamState, check_flat, process_by_flat
from engine.vad.kernels import webrtc_kernel

try:  # webrtcvad's C module: `Vad.is_speech` is a thin Python wrapper around its `process`
    import _webrtcvad
    from _webrtcvad import process as _process
except ImportError:  # pragma: no cover - a webrtcvad build without it
    _webrtcvad = None
    _process = None


def _c_entry() -> tuple[Any, Any] | None:
    """(WebRtcVad_Process, PyCapsule_GetPointer) through ctypes, or None: the C function
    behind `process`, which `webrtc_kernel` calls for many hops at once. The module
    exports it (webrtcvad-wheels 2.0.14 does); a build that does not falls back."""
    path = getattr(_webrtcvad, "__file__", None)
    if path is None:
        return None
    try:
        fn = ctypes.CDLL(path).WebRtcVad_Process
    except (OSError, AttributeError):  # pragma: no cover - another build
        return None
    fn.restype = ctypes.c_int
    fn.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p, ctypes.c_size_t]
    get = ctypes.pythonapi.PyCapsule_GetPointer
    get.restype = ctypes.c_void_p
    get.argtypes = [ctypes.py_object, ctypes.c_char_p]
    return fn, get


_C = _c_entry()
_CAPSULE = b"WebRtcVadPtr"  # the name webrtcvad gives the capsule around its VadInst*


@dataclass(slots=True)
class WebRtcState:
    aggressiveness: int
    vad: webrtcvad.Vad = field(init=False)
    handle: int = field(init=False)  # its VadInst*, valid while `vad` lives; 0: unknown

    def __post_init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.vad = webrtcvad.Vad(self.aggressiveness)
        self.handle = 0
        core = getattr(self.vad, "_vad", None)  # the capsule around the C detector
        if _C is not None and core is not None:
            try:
                self.handle = _C[1](core, _CAPSULE) or 0
            except ValueError:  # pragma: no cover - a capsule by another name
                self.handle = 0


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
        return process_by_flat(self.process_flat, states, hops)

    def process_flat(
        self, states: Sequence[VadStreamState], hops: np.ndarray, counts: Sequence[int]
    ) -> tuple[np.ndarray, list[int]]:
        """`process` for hops already in one array, stream after stream (`counts[i]` of
        `states[i]`); returns one probability per hop in the same order, and the counts
        (a hop's decision never waits for later audio)."""
        n_hops = check_flat(hops, counts, len(states))
        hops = np.ascontiguousarray(hops)  # the C call reads each row as one buffer
        ours: list[WebRtcState] = []
        handles: list[int] = []
        for state in states:
            if not isinstance(state, WebRtcState):
                raise TypeError(f"not a webrtc stream state: {type(state).__name__}")
            ours.append(state)
            handles.append(state.handle)
        if _C is None or not all(handles):  # pragma: no cover - a build without the symbol
            at = list(accumulate(counts, initial=0))
            parts = [self._one(s, hops[a:b]) for s, a, b in zip(ours, at, at[1:], strict=False)]
            flat = np.concatenate(parts) if parts else np.zeros(0, np.float32)
            return flat, list(counts)
        # Every stream's hops in one kernel call, each hop with its stream's own detector:
        # no Python call or array per hop or per stream (a live tick has a few hops per
        # stream, and the per-stream set-up cost more than the hops).
        out = np.empty(hops.shape[0], np.float32)
        webrtc_kernel(_C[0], np.array(handles, np.int64), n_hops, hops, SAMPLE_RATE, out)
        if out.size and out.min() < 0.0:  # pragma: no cover - the hops were checked
            raise RuntimeError("WebRtcVad_Process refused a hop")
        return out, list(counts)

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
