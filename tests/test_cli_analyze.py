"""`groupsense analyze` end to end: the bundled sample against its truth, files per
participant, and bad input that must give one clear line and spare the other files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pytest

from engine.sample import sample_truth

REPO = Path(__file__).resolve().parents[1]


def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "GROUPSENSE_DEBUG"}
    return subprocess.run(
        [sys.executable, "-m", "cli.main", *args],
        capture_output=True,
        text=True,
        cwd=cwd or REPO,
        env=env,
        timeout=300,
    )


def truth_speaking() -> dict[str, float]:
    return {p["name"]: sum(e - s for s, e in p["segments"]) for p in sample_truth()["participants"]}


@pytest.mark.parametrize("vad", ["webrtc", "numba", "silero"])
def test_sample_speaking_time_matches_truth(vad: str, tmp_path: Path) -> None:
    out = tmp_path / "a.json"
    r = run_cli("analyze", "--vad", vad, "--json", str(out))
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr
    data = json.loads(out.read_text())
    got = {p["name"]: p["speaking_s"] for p in data["participants"]}
    truth = truth_speaking()
    assert set(got) == set(truth) == {"facilitator", "ana", "ben", "cleo"}
    for name, t in truth.items():
        if vad == "numba" and name == "cleo":
            # Our energy VAD fires once on noise in the quiet participant's track
            # (0.4 s); her 3.4 s of speech is too little for 3 % to absorb that.
            assert abs(got[name] - t) <= 0.6, (name, got[name], t)
        else:
            assert abs(got[name] - t) <= 0.03 * t, (name, got[name], t)
    # The table names every participant and the JSON carries the segments.
    for name in truth:
        assert name in r.stdout
    ana = next(p for p in data["participants"] if p["name"] == "ana")
    assert all(e > s for s, e in ana["segments"])
    assert ana["turns"] >= 10
    assert data["vad"] == vad


def test_sample_default_is_the_bundled_session() -> None:
    r = run_cli("analyze")
    assert r.returncode == 0, r.stderr
    assert "bundled sample" in r.stderr
    assert "cleo" in r.stdout and "share" in r.stdout


def test_quiet_participant_and_group_silence_visible() -> None:
    """The figures a facilitator needs: cleo barely speaks; the group silence shows."""
    r = run_cli("analyze", "--json", "-")
    data = json.loads(r.stdout[r.stdout.index("{") :])
    by = {p["name"]: p for p in data["participants"]}
    assert by["cleo"]["share"] < 0.05
    assert min(p["share"] for n, p in by.items() if n != "cleo") > 0.2
    # Nobody speaks during the scripted 10 s group silence. The webrtc VAD does fire
    # on the scripted 300 ms rustle there (a known weakness; bleed and noise events
    # are the signals issue's work), so only segments overlapping it are forgiven.
    events = sample_truth()["events"]
    ((g0, g1),) = events["group_silences"]
    noises = [(s, e) for s, e, _ in events["non_speech"]]
    inside = [
        (p["name"], s, e)
        for p in data["participants"]
        for s, e in p["segments"]
        if e > g0 + 0.3 and s < g1 - 0.3
    ]
    for name, s, e in inside:
        assert any(s < ne + 0.3 and e > ns - 0.3 for ns, ne in noises), (name, s, e)
        assert e - s < 1.0


def _write_track(path: Path, tone_hz: float, seconds: float, codec: str = "pcm_s16le") -> None:
    rate = 16000
    t = np.arange(int(rate * seconds)) / rate
    x = np.sin(2 * np.pi * tone_hz * t) * 8000 * (np.sin(2 * np.pi * 0.5 * t) > 0)
    with av.open(str(path), "w") as c:
        s = c.add_stream(codec, rate=rate, layout="mono")
        f = av.AudioFrame.from_ndarray(
            x.astype(np.int16).reshape(1, -1), format="s16", layout="mono"
        )
        f.sample_rate = rate
        for p in s.encode(f):
            c.mux(p)
        for p in s.encode(None):
            c.mux(p)


def test_one_file_per_participant(tmp_path: Path) -> None:
    a, b = tmp_path / "alice.wav", tmp_path / "bob.flac"
    _write_track(a, 300, 6.0)
    _write_track(b, 500, 4.0, codec="flac")
    out = tmp_path / "o.json"
    r = run_cli("analyze", str(a), str(b), "--json", str(out))
    assert r.returncode == 0, r.stderr
    names = [p["name"] for p in json.loads(out.read_text())["participants"]]
    assert names == ["alice", "bob"]


def _bad_files(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    """name -> (file, a fragment the error line must contain)."""
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    junk = tmp_path / "junk.ogg"
    junk.write_bytes(np.random.default_rng(1).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    good = tmp_path / "whole.wav"
    _write_track(good, 300, 8.0)
    truncated = tmp_path / "truncated.wav"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    video = tmp_path / "video_only.mkv"
    with av.open(str(video), "w") as c:
        s = c.add_stream("mpeg4", rate=10)
        s.width, s.height, s.pix_fmt = 64, 48, "yuv420p"
        for i in range(5):
            frame = av.VideoFrame.from_ndarray(
                np.full((48, 64, 3), i * 40, np.uint8), format="rgb24"
            )
            for p in s.encode(frame):
                c.mux(p)
        for p in s.encode(None):
            c.mux(p)
    surround = tmp_path / "surround.wav"
    with av.open(str(surround), "w") as c:
        s = c.add_stream("pcm_s16le", rate=16000, layout="5.1")
        f = av.AudioFrame.from_ndarray(
            np.zeros((1, 16000 * 6), np.int16), format="s16", layout="5.1"
        )
        f.sample_rate = 16000
        for p in s.encode(f):
            c.mux(p)
        for p in s.encode(None):
            c.mux(p)
    return {
        "empty": (empty, "empty file"),
        "corrupt": (junk, "not a readable media file"),
        "truncated": (truncated, "truncated"),
        "no audio": (video, "no audio track"),
        "layout": (surround, "unsupported channel layout"),
        "missing": (tmp_path / "nope.wav", "no such file"),
    }


@pytest.mark.parametrize("case", ["empty", "corrupt", "truncated", "no audio", "layout", "missing"])
def test_bad_input_one_line_and_others_analysed(case: str, tmp_path: Path) -> None:
    bad, cause = _bad_files(tmp_path)[case]
    good = tmp_path / "alice.wav"
    _write_track(good, 300, 6.0)
    out = tmp_path / "o.json"
    r = run_cli("analyze", str(bad), str(good), "--json", str(out))
    assert r.returncode == 1
    assert "Traceback" not in r.stderr
    errors = [line for line in r.stderr.splitlines() if line.startswith("groupsense: error:")]
    assert len(errors) == 1, r.stderr
    assert str(bad) in errors[0] and cause in errors[0], errors[0]
    data = json.loads(out.read_text())
    assert [p["name"] for p in data["participants"]] == ["alice"]
    assert data["participants"][0]["speaking_s"] > 1.0
    assert data["errors"][0]["file"] == str(bad)


def test_progress_bar_for_long_input(tmp_path: Path) -> None:
    long = tmp_path / "long.wav"
    _write_track(long, 300, 75.0)
    r = run_cli("analyze", str(long), "--progress")
    assert r.returncode == 0, r.stderr
    assert "analysing [" in r.stderr and "100.0%" in r.stderr
    short = run_cli("analyze", str(long)[:-8] + "long.wav")  # not a tty: no bar by default
    assert "analysing [" not in short.stderr


def test_bad_option_is_a_usage_error() -> None:
    r = run_cli("analyze", "--vad", "nonesuch")
    assert r.returncode == 2
    assert "invalid choice" in r.stderr and "Traceback" not in r.stderr


def test_affect_only_when_asked(tmp_path: Path) -> None:
    """`--affect` adds each participant's voice summary (the model's arousal in [0, 1],
    valence, windows, cues); without it the JSON holds nothing about voices."""
    out = tmp_path / "a.json"
    r = run_cli("analyze", "--affect", "--json", str(out))
    assert r.returncode == 0, r.stderr
    data = json.loads(out.read_text())
    for p in data["participants"]:
        a = p["affect"]
        assert 0.0 <= a["arousal"] <= 1.0 and 0.0 <= a["valence"] <= 1.0
        assert a["windows"] >= 1 and isinstance(a["cues"], list)
    assert "voice of ana: arousal" in r.stdout
    plain = tmp_path / "b.json"
    r = run_cli("analyze", "--json", str(plain))
    assert r.returncode == 0, r.stderr
    data = json.loads(plain.read_text())
    assert all("affect" not in p for p in data["participants"])
    assert "voice of" not in r.stdout


def test_report_shows_the_cues_of_analyze_affect(tmp_path: Path) -> None:
    """The report reads analyze --affect's per-participant cues (a cue added by hand:
    the sample's voices raise none)."""
    from engine.dashboard.report import render_report

    out = tmp_path / "a.json"
    assert run_cli("analyze", "--affect", "--json", str(out)).returncode == 0
    data = json.loads(out.read_text())
    words = "is speaking at a higher pitch than usual"
    data["participants"][1]["affect"]["cues"] = [
        {
            "kind": "raised_pitch",
            "since_s": 60.0,
            "cleared_s": 90.0,
            "deviation": 2.4,
            "evidence_s": 20.0,
            "confidence": 0.8,
            "message": f"ana {words}: 2.4 times their usual variation",
        }
    ]
    page = render_report(data)
    assert words in page
    assert "cues were not computed" not in page
