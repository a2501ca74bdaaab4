"""Readers for the labelled recordings in ../shared/data (never bundled: licences forbid)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

DATA_ENV = "GROUPSENSE_DATA"


def shared_data_dir() -> Path | None:
    """$GROUPSENSE_DATA, else the first ../shared/data above the working dir or this package."""
    env = os.environ.get(DATA_ENV)
    if env:
        p = Path(env)
        return p if p.is_dir() else None
    for base in (Path.cwd(), Path(__file__).resolve().parent):
        for parent in (base, *base.parents):
            cand = parent / "shared" / "data"
            if cand.is_dir():
                return cand
    return None


@dataclass(frozen=True, slots=True)
class VadItem:
    name: str
    wav: Path
    speech: tuple[tuple[float, float], ...]  # labelled speech intervals, seconds
    duration_s: float


def read_scv(path: Path) -> tuple[tuple[tuple[float, float], ...], float]:
    """TEN VAD label line: name,start,end,label,start,end,label,... (label 1 = speech)."""
    fields = path.read_text(encoding="utf-8").strip().split(",")
    values = fields[1:]
    if len(values) % 3:
        raise ValueError(f"{path}: expected start,end,label triples after the name")
    speech = []
    end = 0.0
    for i in range(0, len(values), 3):
        s, e, lab = float(values[i]), float(values[i + 1]), values[i + 2].strip()
        if lab not in ("0", "1"):
            raise ValueError(f"{path}: label must be 0 or 1, got {lab!r}")
        if lab == "1":
            speech.append((s, e))
        end = max(end, e)
    return tuple(speech), end


def vad_items(root: Path) -> list[VadItem]:
    items = []
    for scv in sorted(root.glob("*.scv")):
        wav = scv.with_suffix(".wav")
        if not wav.exists():
            continue
        speech, dur = read_scv(scv)
        items.append(VadItem(scv.stem, wav, speech, dur))
    return items


@dataclass(frozen=True, slots=True)
class RttmTurn:
    file: str
    start: float
    end: float
    speaker: str


def read_rttm(path: Path) -> list[RttmTurn]:
    """SPEAKER <file> <chan> <start> <dur> <NA> <NA> <speaker> <NA> <NA>."""
    turns = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        parts = line.split()
        if not parts or parts[0] != "SPEAKER":
            continue
        if len(parts) < 8:
            raise ValueError(f"{path}:{n}: RTTM line has {len(parts)} fields, expected 10")
        start, dur = float(parts[3]), float(parts[4])
        turns.append(RttmTurn(parts[1], start, start + dur, parts[7]))
    return turns


def diarization_items(root: Path) -> dict[str, tuple[Path, list[RttmTurn]]]:
    """AMI excerpts and the sample: file id -> (wav, reference turns), where both exist."""
    refs: dict[str, list[RttmTurn]] = {}
    for rttm in sorted(root.glob("*.rttm")):
        for t in read_rttm(rttm):
            refs.setdefault(t.file, []).append(t)
    return {
        fid: (root / f"{fid}.wav", turns)
        for fid, turns in sorted(refs.items())
        if (root / f"{fid}.wav").exists()
    }
