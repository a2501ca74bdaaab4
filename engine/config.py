"""Frozen, keyword-only, validated configuration. Imports nothing of the engine."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Self

VAD_BACKENDS = ("webrtc", "numba", "silero")


@dataclass(frozen=True, kw_only=True, slots=True)
class VadConfig:
    """Voice-activity settings, shared by all backends.

    Probabilities go through hysteresis (on at `threshold`, off below
    `threshold - hysteresis`); gaps shorter than `min_silence_ms` are bridged and
    runs shorter than `min_speech_ms` are dropped. Defaults were set on the
    bundled sample and the AMI excerpts, never on the VAD test set we report.
    """

    backend: str = "webrtc"
    threshold: float = 0.5
    hysteresis: float = 0.15
    min_speech_ms: int = 120
    min_silence_ms: int = 300
    webrtc_aggressiveness: int = 3
    silero_threads: int = 1

    def __post_init__(self) -> None:
        if self.backend not in VAD_BACKENDS:
            raise ValueError(
                f"backend must be one of {', '.join(VAD_BACKENDS)}, got {self.backend!r}"
            )
        if not 0.0 < self.threshold < 1.0:
            raise ValueError(f"threshold must be in (0, 1), got {self.threshold}")
        if not 0.0 <= self.hysteresis < self.threshold:
            raise ValueError(f"hysteresis must be in [0, threshold), got {self.hysteresis}")
        if not 0 <= self.min_speech_ms <= 10_000:
            raise ValueError(f"min_speech_ms must be in [0, 10000], got {self.min_speech_ms}")
        if not 0 <= self.min_silence_ms <= 10_000:
            raise ValueError(f"min_silence_ms must be in [0, 10000], got {self.min_silence_ms}")
        if self.webrtc_aggressiveness not in (0, 1, 2, 3):
            raise ValueError(f"webrtc_aggressiveness must be 0-3, got {self.webrtc_aggressiveness}")
        if not 1 <= self.silero_threads <= 64:
            raise ValueError(f"silero_threads must be in [1, 64], got {self.silero_threads}")

    @property
    def min_speech_hops(self) -> int:
        return (self.min_speech_ms + 5) // 10

    @property
    def min_silence_hops(self) -> int:
        return (self.min_silence_ms + 5) // 10

    @classmethod
    def from_mapping(cls, data: dict[str, Any]) -> Self:
        """Build from a config file's table; unknown keys are an error, not ignored."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown VAD setting(s): {', '.join(unknown)}")
        return cls(**data)
