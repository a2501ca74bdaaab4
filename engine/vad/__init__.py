"""Voice activity: three backends behind one protocol, and hangover smoothing."""

from __future__ import annotations

from engine.config import VadConfig
from engine.vad.base import Hangover, VadBackend, VadStreamState


def make_backend(config: VadConfig) -> VadBackend:
    """Build the configured backend (imports only what it needs)."""
    if config.backend == "webrtc":
        from engine.vad.webrtc import WebRtcBackend

        return WebRtcBackend(config)
    if config.backend == "numba":
        from engine.vad.energy import NumbaBackend

        return NumbaBackend(config)
    if config.backend == "silero":
        from engine.vad.silero import SileroBackend

        return SileroBackend(config)
    raise ValueError(f"unknown VAD backend {config.backend!r}")


__all__ = ["Hangover", "VadBackend", "VadConfig", "VadStreamState", "make_backend"]
