"""Prosody against Praat (parselmouth) and the Emo-DB syllable labels, on held-out speakers.

The defaults of ProsodyConfig were set on vad/ and Emo-DB speakers 03, 08, 10; these
tests score speakers 09, 11, 12 only (bench/eval_prosody.py prints every set).
Skips only when ../shared/data or praat-parselmouth (a test dependency) is absent.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench" / "eval_prosody.py"


def load_eval() -> ModuleType:
    spec = importlib.util.spec_from_file_location("eval_prosody", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["eval_prosody"] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def report(shared_data: Path):  # type: ignore[no-untyped-def]
    pytest.importorskip("parselmouth", reason="praat-parselmouth (test dependency) not installed")
    ev = load_eval()
    files = ev.file_sets(shared_data)["report: emotion 09,11,12"]
    if len(files) < 50:
        pytest.skip(f"expected the Emo-DB excerpts in {shared_data}/emotion, found {len(files)}")
    return ev.evaluate_set(files)


def test_f0_matches_praat(report) -> None:  # type: ignore[no-untyped-def]
    assert report.f0_frames > 5000  # both voiced on most of the speech
    assert report.f0_median_err_st <= 0.5
    assert report.f0_gross_rate <= 0.05


def test_voice_quality_tracks_praat(report) -> None:  # type: ignore[no-untyped-def]
    # measured 0.55 / 0.76 / 0.92 on these files; floors leave room for platform noise
    assert report.r_jitter >= 0.4
    assert report.r_shimmer >= 0.6
    assert report.r_hnr >= 0.8


def test_speech_rate_tracks_syllable_labels(report) -> None:  # type: ignore[no-untyped-def]
    # measured r 0.74, MAE 0.78 syllables/s (labelled rates 2-6.5/s)
    assert report.r_rate >= 0.6
    assert report.rate_mae <= 1.1
