"""Voice activity: three backends (silero with or without a WebRTC gate) behind one
protocol, and hangover smoothing."""

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
    if config.backend in ("silero", "silero-gated"):
        from engine.vad.silero import SileroBackend

        return SileroBackend(config, gate=config.backend == "silero-gated")
    raise ValueError(f"unknown VAD backend {config.backend!r}")


__all__ = ["Hangover", "VadBackend", "VadConfig", "VadStreamState", "make_backend"]
