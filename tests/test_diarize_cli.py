"""`groupsense analyze --shared-mic` end to end on a real two-speaker file, and the RTTM
export read back and scored against the reference."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from engine.datasets import read_rttm
from engine.metrics import diarization_error

REPO = Path(__file__).resolve().parents[1]


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "GROUPSENSE_DEBUG"}
    return subprocess.run(
        [sys.executable, "-m", "cli.main", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        timeout=300,
    )


@pytest.mark.realdata
def test_shared_mic_json_and_rttm_round_trip(shared_data: Path, tmp_path: Path) -> None:
    wav = shared_data / "diarization" / "sample.wav"
    out_json, out_rttm = tmp_path / "a.json", tmp_path / "a.rttm"
    r = run_cli(
        "analyze", "--shared-mic", "--vad", "silero", str(wav),
        "--json", str(out_json), "--rttm", str(out_rttm), cwd=tmp_path,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    doc = json.loads(out_json.read_text())
    names = [p["name"] for p in doc["participants"]]
    assert names and all(n.startswith("sample/") and len(n) == len("sample/A") for n in names)
    assert sorted(names) == names and names[0] == "sample/A"
    turns = read_rttm(out_rttm)
    assert {t.file for t in turns} == {"sample"}
    # the RTTM holds exactly the JSON's segments (2 decimals)
    from_json = sorted((p["name"], s, e) for p in doc["participants"] for s, e in p["segments"])
    from_rttm = sorted((t.speaker, round(t.start, 2), round(t.end, 2)) for t in turns)
    assert len(from_json) == len(from_rttm)
    for (n1, s1, e1), (n2, s2, e2) in zip(from_json, from_rttm, strict=True):
        assert n1 == n2 and abs(s1 - s2) < 0.011 and abs(e1 - e2) < 0.011
    # scored with the reference: the speech is found (misses are only the VAD's)
    ref = [
        (t.start, t.end, t.speaker) for t in read_rttm(shared_data / "diarization" / "sample.rttm")
    ]
    der = diarization_error(ref, [(t.start, t.end, t.speaker) for t in turns], uem=(0.0, 30.0))
    assert der.miss / der.total < 0.1
    assert der.der < 0.6


@pytest.mark.realdata
def test_rttm_without_shared_mic_names_tracks(shared_data: Path, tmp_path: Path) -> None:
    wav = shared_data / "diarization" / "sample.wav"
    out = tmp_path / "b.rttm"
    r = run_cli("analyze", "--vad", "silero", str(wav), "--rttm", str(out), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    turns = read_rttm(out)
    assert turns and {t.speaker for t in turns} == {"sample"}


def test_bad_max_speakers_is_refused(tmp_path: Path) -> None:
    r = run_cli("analyze", "--shared-mic", "--max-speakers", "0", cwd=tmp_path)
    assert r.returncode == 2 and "max_speakers" in r.stderr


def test_silent_shared_mic_stays_listed(tmp_path: Path) -> None:
    import wave

    from engine.config import VadConfig
    from engine.diarize.online import DiarizeConfig
    from engine.offline import analyze

    path = tmp_path / "room.wav"
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(b"\0\0" * 16000 * 3)
    result = analyze([path], VadConfig(backend="webrtc"), shared_mic=DiarizeConfig())
    assert [p.name for p in result.participants] == ["room/A"]
    assert result.participants[0].segments == ()
