"""Frozen, keyword-only, validated configuration. Imports nothing of the engine."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Self

VAD_BACKENDS = ("webrtc", "numba", "silero", "silero-gated")


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


@dataclass(frozen=True, kw_only=True, slots=True)
class BleedConfig:
    """Speaker-bleed suppression (another participant's voice from loudspeakers).

    A stream's speech hop is bleed when another stream, up to `max_lag_ms`
    earlier, was speaking at least `min_ratio_db` louder and their level
    envelopes correlate (over about `window_ms`) at least `min_corr`. Defaults
    were set on synthesized sessions of the bundled sample's voices (seeds apart
    from those reported).
    """

    enabled: bool = True
    max_lag_ms: int = 300
    window_ms: int = 400
    min_corr: float = 0.7
    min_ratio_db: float = 8.0
    diff_hops: int = 4  # level change over this many hops is what is correlated
    min_std_db: float = 1.0  # below this an envelope is too flat to correlate
    fill_gap_ms: int = 200  # offline: gaps this short between bleed runs are bleed too
    min_run_ms: int = 100  # offline: bleed runs shorter than this are ignored
    floor_dbfs: float = -70.0  # levels are clamped up to this before correlating

    def __post_init__(self) -> None:
        if not isinstance(self.enabled, bool):
            raise ValueError(f"enabled must be true or false, got {self.enabled!r}")
        if not 0 <= self.max_lag_ms <= 1000:
            raise ValueError(f"max_lag_ms must be in [0, 1000], got {self.max_lag_ms}")
        if not 20 <= self.window_ms <= 10_000:
            raise ValueError(f"window_ms must be in [20, 10000], got {self.window_ms}")
        if not 0.0 < self.min_corr < 1.0:
            raise ValueError(f"min_corr must be in (0, 1), got {self.min_corr}")
        if not 0.0 <= self.min_ratio_db <= 60.0:
            raise ValueError(f"min_ratio_db must be in [0, 60], got {self.min_ratio_db}")
        if not 0.0 < self.min_std_db <= 30.0:
            raise ValueError(f"min_std_db must be in (0, 30], got {self.min_std_db}")
        if not 1 <= self.diff_hops <= 20:
            raise ValueError(f"diff_hops must be in [1, 20], got {self.diff_hops}")
        if not 0 <= self.fill_gap_ms <= 2000:
            raise ValueError(f"fill_gap_ms must be in [0, 2000], got {self.fill_gap_ms}")
        if not 0 <= self.min_run_ms <= 2000:
            raise ValueError(f"min_run_ms must be in [0, 2000], got {self.min_run_ms}")
        if not -100.0 <= self.floor_dbfs <= -20.0:
            raise ValueError(f"floor_dbfs must be in [-100, -20], got {self.floor_dbfs}")

    @property
    def max_lag_hops(self) -> int:
        return (self.max_lag_ms + 5) // 10

    @property
    def window_hops(self) -> int:
        return max(1, (self.window_ms + 5) // 10)

    @property
    def fill_gap_hops(self) -> int:
        return (self.fill_gap_ms + 5) // 10

    @property
    def min_run_hops(self) -> int:
        return (self.min_run_ms + 5) // 10


@dataclass(frozen=True, kw_only=True, slots=True)
class SignalConfig:
    """How speech becomes engagement signals (definitions in docs/signals.md)."""

    turn_gap_s: float = 1.0  # pauses up to this stay inside one utterance
    backchannel_max_s: float = 1.0  # shorter utterances inside another's turn: backchannels
    group_silence_min_s: float = 3.0  # nobody speaking this long: a group silence
    overlap_min_s: float = 0.25  # two or more speaking this long: an overlap
    response_max_s: float = 10.0  # a floor change after a longer gap is not a response
    interruption_overlap_s: float = 0.5  # the one cut off spoke on at least this long

    def __post_init__(self) -> None:
        for name in (
            "interruption_overlap_s",
            "turn_gap_s",
            "backchannel_max_s",
            "group_silence_min_s",
            "overlap_min_s",
            "response_max_s",
        ):
            v = getattr(self, name)
            if not 0.0 < v <= 600.0:
                raise ValueError(f"{name} must be in (0, 600] seconds, got {v}")


@dataclass(frozen=True, kw_only=True, slots=True)
class AlertConfig:
    """When alerts fire and clear. Each has hysteresis: it clears on a weaker condition
    than the one that raised it, so it does not flicker."""

    withdrawal_min: float = 8.0  # a participant silent this many minutes ...
    withdrawal_others_s: float = 60.0  # ... while the others spoke at least this long
    dominance_share: float = 0.5  # over this share of the last 5 minutes ...
    dominance_clear_share: float = 0.4  # ... clears below this
    dominance_min_speech_s: float = 60.0  # only once the last 5 minutes hold this much speech
    dominance_facilitator: bool = False  # facilitators lead: no dominance alert for them
    silence_s: float = 20.0  # a group silence this long
    interruptions: int = 3  # interruptions of one person within the last 5 minutes ...
    interruptions_clear: int = 1  # ... clears at or below this

    def __post_init__(self) -> None:
        if not 0.5 <= self.withdrawal_min <= 120:
            raise ValueError(f"withdrawal_min must be in [0.5, 120], got {self.withdrawal_min}")
        if not 0 <= self.withdrawal_others_s <= 7200:
            raise ValueError(
                f"withdrawal_others_s must be in [0, 7200], got {self.withdrawal_others_s}"
            )
        if not 0.0 < self.dominance_clear_share < self.dominance_share <= 1.0:
            raise ValueError("need 0 < dominance_clear_share < dominance_share <= 1")
        if not 0 <= self.dominance_min_speech_s <= 300:
            raise ValueError("dominance_min_speech_s must be in [0, 300]")
        if not 3.0 <= self.silence_s <= 3600:
            raise ValueError(f"silence_s must be in [3, 3600], got {self.silence_s}")
        if not 0 <= self.interruptions_clear < self.interruptions <= 100:
            raise ValueError("need 0 <= interruptions_clear < interruptions <= 100")


def _from_mapping(cls: Any, table: str, data: dict[str, Any]) -> Any:
    """Build a config dataclass from a file's table; unknown keys are an error."""
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(f"[{table}]: unknown setting(s): {', '.join(unknown)}")
    return cls(**data)


@dataclass(frozen=True, kw_only=True, slots=True)
class LiveConfig:
    """Live-path limits and timing."""

    tick_ms: int = 50  # how often buffered frames are analysed
    jitter_ms: int = 200  # how long frames after a missing one wait for it
    backwards_tolerance_ms: int = 2000  # further back than this is a broken clock: error
    max_frame_ms: int = 200
    max_sessions: int = 64
    max_streams: int = 1024
    max_streams_per_session: int = 32
    subscriber_queue: int = 8  # snapshots a slow subscriber may fall behind by
    snapshot_interval_s: float = 1.0
    idle_session_s: float = 600.0  # a session with nobody connected ends after this
    max_summaries: int = 256  # ended sessions whose summary is kept (in memory only)
    # Shared microphones: who spoke is final this long after the VAD decides (1-10 s;
    # longer sees more of a new voice before naming it, docs/integration.md).
    shared_mic_latency_s: float = 2.0
    # False: frames are ordered and acknowledged but never decoded or analysed; only the
    # timeline advances. For measuring the transport alone (groupsense bench).
    analyse_audio: bool = True
    # False: consenting participants get prosody and its cues against their own baseline,
    # without the affect model (no arousal/valence, no high_arousal cue, the model never
    # loaded): cheaper, and for deployments that want no learnt affect scores.
    affect_model: bool = True

    def __post_init__(self) -> None:
        for name in (
            "tick_ms",
            "jitter_ms",
            "backwards_tolerance_ms",
            "max_frame_ms",
            "max_sessions",
            "max_streams",
            "max_streams_per_session",
            "subscriber_queue",
            "max_summaries",
        ):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if not 0.05 <= self.snapshot_interval_s <= 60:
            raise ValueError(f"snapshot_interval_s must be 0.05-60, got {self.snapshot_interval_s}")
        if self.idle_session_s <= 0:
            raise ValueError(f"idle_session_s must be positive, got {self.idle_session_s}")
        for name in ("analyse_audio", "affect_model"):  # "false" in a file is a truthy string
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be true or false, got {getattr(self, name)!r}")
        if not 1.0 <= self.shared_mic_latency_s <= 10.0:
            raise ValueError(f"shared_mic_latency_s must be 1-10, got {self.shared_mic_latency_s}")


LOOPBACK = ("127.0.0.1", "localhost", "::1", "[::1]")


@dataclass(frozen=True, kw_only=True, slots=True)
class ServerConfig:
    """Where and how the gRPC server listens, and who may talk to it."""

    host: str = "127.0.0.1"
    port: int = 50051
    tls_cert: str | None = None  # PEM server certificate chain
    tls_key: str | None = None  # PEM private key
    tls_client_ca: str | None = None  # PEM CA: when set, clients must present a certificate
    secret_file: str | None = None  # the token-signing secret; no secret = no auth (loopback only)
    insecure: bool = False  # allow a non-loopback address without TLS
    max_message_bytes: int = 64 * 1024
    max_concurrent_streams: int = 256  # HTTP/2 streams per connection
    max_node_channels: int = 1024  # participant channels open at once on one StreamNode call
    keepalive_time_s: float = 30.0
    keepalive_timeout_s: float = 10.0
    min_ping_interval_s: float = 10.0
    shutdown_grace_s: float = 5.0

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:
            raise ValueError(f"port must be 0-65535, got {self.port}")
        if bool(self.tls_cert) != bool(self.tls_key):
            raise ValueError("tls_cert and tls_key go together")
        if self.tls_client_ca and not self.tls_cert:
            raise ValueError("tls_client_ca (mutual TLS) needs tls_cert and tls_key")
        for name in ("tls_cert", "tls_key", "tls_client_ca", "secret_file"):
            path = getattr(self, name)
            if path and not Path(path).is_file():
                raise ValueError(f"{name}: no such file {path}")
        if not self.is_loopback and not self.tls and not self.insecure:
            raise ValueError(
                f"refusing to listen on {self.host} without TLS: set tls_cert and tls_key, "
                "or pass --insecure if a trusted proxy terminates TLS"
            )
        if not self.is_loopback and not self.secret_file:
            raise ValueError(f"refusing to listen on {self.host} without a token secret_file")
        if self.max_node_channels <= 0:
            raise ValueError(f"max_node_channels must be positive, got {self.max_node_channels}")
        if self.max_message_bytes < 1024:
            raise ValueError(f"max_message_bytes must be >= 1024, got {self.max_message_bytes}")

    @property
    def tls(self) -> bool:
        return bool(self.tls_cert)

    @property
    def is_loopback(self) -> bool:
        return self.host in LOOPBACK or self.host.startswith("127.")

    def read_secret(self) -> bytes | None:
        if not self.secret_file:
            return None
        secret = Path(self.secret_file).read_bytes().strip()
        if len(secret) < 32:
            raise ValueError(f"secret_file {self.secret_file}: need at least 32 bytes")
        return secret


@dataclass(frozen=True, kw_only=True, slots=True)
class EngineConfig:
    server: ServerConfig = ServerConfig()
    live: LiveConfig = LiveConfig()
    vad: VadConfig = VadConfig()
    bleed: BleedConfig = BleedConfig()
    signals: SignalConfig = SignalConfig()
    alerts: AlertConfig = AlertConfig()

    @classmethod
    def load(cls, path: str | Path | None = None, **server_overrides: Any) -> Self:
        """From a TOML file with [server], [live], [vad], [bleed], [signals] and [alerts]
        tables (all optional)."""
        data: dict[str, Any] = {}
        if path is not None:
            try:
                with open(path, "rb") as f:
                    data = tomllib.load(f)
            except OSError as exc:
                raise ValueError(f"{path}: {exc.strerror}") from None
            except tomllib.TOMLDecodeError as exc:
                raise ValueError(f"{path}: not valid TOML ({exc})") from None
        unknown = sorted(set(data) - {"server", "live", "vad", "bleed", "signals", "alerts"})
        if unknown:
            raise ValueError(f"unknown table(s): {', '.join(unknown)}")
        server = {
            **data.get("server", {}),
            **{k: v for k, v in server_overrides.items() if v is not None},
        }
        return cls(
            server=_from_mapping(ServerConfig, "server", server),
            live=_from_mapping(LiveConfig, "live", data.get("live", {})),
            vad=_from_mapping(VadConfig, "vad", data.get("vad", {})),
            bleed=_from_mapping(BleedConfig, "bleed", data.get("bleed", {})),
            signals=_from_mapping(SignalConfig, "signals", data.get("signals", {})),
            alerts=_from_mapping(AlertConfig, "alerts", data.get("alerts", {})),
        )
