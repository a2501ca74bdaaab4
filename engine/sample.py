"""The bundled sample session: where it is and its ground truth."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any


def sample_dir() -> Path:
    return Path(str(resources.files("engine").joinpath("data", "sample")))


def sample_session() -> Path:
    """A 4-participant multi-track recording (one Opus track each) with ground truth."""
    return sample_dir() / "session.mkv"


def sample_truth() -> dict[str, Any]:
    with open(sample_dir() / "truth.json", encoding="utf-8") as f:
        data: dict[str, Any] = json.load(f)
    return data
