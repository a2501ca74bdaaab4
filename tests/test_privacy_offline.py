"""Privacy by construction: analysing a session writes no audio and no per-frame data.

The only file an analysis may create is the JSON the user asked for; numba's
compiled-code cache (machine code, no data) is the one allowed by-product.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from engine.sample import sample_session

REPO = Path(__file__).resolve().parents[1]
ALLOWED_SUFFIXES = {".nbi", ".nbc", ".pyc"}  # numba cache index/code, bytecode


def snapshot(*roots: Path) -> dict[str, float]:
    files: dict[str, float] = {}
    for root in roots:
        for dirpath, _, names in os.walk(root):
            if ".git" in Path(dirpath).parts or ".venv" in Path(dirpath).parts:
                continue
            for n in names:
                p = os.path.join(dirpath, n)
                try:
                    files[p] = os.stat(p).st_mtime
                except FileNotFoundError:
                    continue
    return files


@pytest.mark.parametrize("vad", ["webrtc", "silero"])  # silero: onnxruntime writes nothing
def test_analyze_writes_only_the_requested_json(tmp_path: Path, vad: str) -> None:
    home, tmp, work = tmp_path / "home", tmp_path / "tmp", tmp_path / "work"
    for d in (home, tmp, work):
        d.mkdir()
    watched = (home, tmp, work, REPO / "engine", REPO / "cli")
    before = snapshot(*watched)
    out = work / "result.json"
    env = dict(os.environ, HOME=str(home), TMPDIR=str(tmp), XDG_CACHE_HOME=str(home / ".cache"))
    r = subprocess.run(
        [
            *(sys.executable, "-m", "cli.main", "analyze", str(sample_session())),
            *("--vad", vad, "--json", str(out)),
        ],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    after = snapshot(*watched)
    written = {
        p
        for p, m in after.items()
        if (p not in before or before[p] != m) and Path(p).suffix not in ALLOWED_SUFFIXES
    }
    assert written == {str(out)}
    # The JSON holds segments and figures, nothing sample-shaped.
    data = json.loads(out.read_text())
    for p in data["participants"]:
        assert set(p) == {
            "name",
            "file",
            "track",
            "speaking_s",
            "share",
            "turns",
            "longest_turn_s",
            "longest_silence_s",
            "segments",
            "signals",
        }
        assert len(p["segments"]) < 100
        # figures only: numbers (null where undefined), no arrays that could hold samples
        assert all(v is None or isinstance(v, int | float) for v in p["signals"].values())
    # Nothing but the table went to the terminal.
    assert len(r.stdout) < 2000
