"""Config files: the documented example loads as written; mistakes are named, not ignored."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from engine.config import EngineConfig, LiveConfig, ServerConfig, VadConfig

EXAMPLE = Path(__file__).resolve().parents[1] / "docs" / "groupsense.example.toml"


def test_documented_example_is_the_defaults() -> None:
    c = EngineConfig.load(EXAMPLE)
    assert c.server == ServerConfig()
    assert c.live == LiveConfig()
    assert c.vad == VadConfig()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[server]\nprot = 1\n", "[server]: unknown setting(s): prot"),
        ("[vad]\nbackend = 'x'\n", "backend must be one of"),
        ("[live]\njitter_ms = 0\n", "jitter_ms must be positive"),
        ("[live]\nshared_mic_latency_s = 0.5\n", "shared_mic_latency_s must be 1-10"),
        ("[live]\naffect_model = 'false'\n", "affect_model must be true or false, got 'false'"),
        ("[extra]\n", "unknown table(s): extra"),
        ("[server\n", "not valid TOML"),
        ("[server]\nhost = '0.0.0.0'\n", "without TLS"),
    ],
)
def test_config_errors_are_named(tmp_path: Path, text: str, message: str) -> None:
    f = tmp_path / "c.toml"
    f.write_text(text)
    with pytest.raises(ValueError, match=re.escape(message)):
        EngineConfig.load(f)


def test_overrides_beat_the_file(tmp_path: Path) -> None:
    f = tmp_path / "c.toml"
    f.write_text("[server]\nport = 6000\n")
    assert EngineConfig.load(f, port=7000).server.port == 7000
    assert EngineConfig.load(f, port=None).server.port == 6000


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="No such file"):
        EngineConfig.load(tmp_path / "nope.toml")


def test_shared_mic_latency_reaches_the_live_diarizer(tmp_path: Path) -> None:
    from engine.live import LiveEngine

    f = tmp_path / "c.toml"
    f.write_text("[live]\nshared_mic_latency_s = 5.0\n")
    c = EngineConfig.load(f)
    assert LiveEngine(c.live, c.vad).diarize_config.latency_s == 5.0
    assert LiveEngine(LiveConfig(), VadConfig()).diarize_config.latency_s == 2.0
