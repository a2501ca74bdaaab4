"""affect_step's fast paths (no pass over a block without speech, window parts by index,
SpeechWindow.push_hops) against the path before them (tests/affect_ref.py): the same
cues, windows, model inputs and stream states, bit for bit."""

from __future__ import annotations

import dataclasses
from collections import deque
from typing import Any

import affect_ref
import numpy as np
import pytest
from affect_ref import old_affect_step
from numpy.testing import assert_array_equal

import engine.affect.stream as stream_mod
from engine.affect.features import SpeechWindow
from engine.affect.stream import AffectStream, affect_step
from engine.types import HOP
from tests.test_prosody import _runs_mask, _sample_tracks


def same(a: Any, b: Any, where: str = "") -> None:
    """Equal field by field, arrays bit for bit."""
    if isinstance(a, np.ndarray):
        assert_array_equal(a, b, err_msg=where)
        assert a.dtype == b.dtype, where
    elif dataclasses.is_dataclass(a):
        for f in dataclasses.fields(a):
            same(getattr(a, f.name), getattr(b, f.name), f"{where}.{f.name}")
    elif isinstance(a, list | tuple | deque):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            same(x, y, f"{where}[{i}]")
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for key in a:
            same(a[key], b[key], f"{where}[{key}]")
    elif hasattr(a, "state") and hasattr(a, "config"):  # ProsodyTracker, baselines
        same(a.state, b.state, f"{where}.state")
    else:
        assert repr(a) == repr(b), where


@pytest.mark.parametrize("seed", [0, 1])
def test_affect_step_equals_the_path_before(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Five streams of real audio (turns at 20 % speech, i.i.d. hops, all speech, none),
    a random subset per call with random block lengths, as the live engine's phases
    give: every window's features, every cue and every state as before."""
    rng = np.random.default_rng(seed)
    tracks = _sample_tracks()
    n = 4000
    pcms = [tracks[i % len(tracks)][0][(i * 53) * HOP :][: n * HOP] for i in range(5)]
    masks = [
        _runs_mask(n, 0.2, 60.0, seed),
        rng.random(n) < 0.5,
        np.ones(n, bool),
        np.zeros(n, bool),
        _runs_mask(n, 0.3, 200.0, seed + 5),
    ]
    seen: dict[str, list[np.ndarray]] = {"new": [], "old": []}
    real = stream_mod.batch_features

    def recording(key: str) -> Any:
        def f(windows: Any) -> np.ndarray:
            seen[key].append(real(windows))
            return seen[key][-1]

        return f

    monkeypatch.setattr(stream_mod, "batch_features", recording("new"))
    monkeypatch.setattr(affect_ref, "batch_features", recording("old"))
    new = [AffectStream(f"p{i}") for i in range(len(pcms))]
    old = [AffectStream(f"p{i}") for i in range(len(pcms))]
    done = [0] * len(pcms)
    while min(done) < n:
        pick = [i for i in range(len(pcms)) if done[i] < n and rng.random() < 0.5]
        if not pick:
            continue
        ins = []
        for i in pick:
            step = min(int(rng.choice([1, 3, 50, 50, 50, 150])), n - done[i])
            ins.append(
                (pcms[i][done[i] * HOP : (done[i] + step) * HOP], masks[i][done[i] :][:step])
            )
            done[i] += step
        args = (
            [p for p, _ in ins],
            [m for _, m in ins],
            [done[i] for i in pick],
        )
        got = affect_step([new[i] for i in pick], *args)
        want = old_affect_step([old[i] for i in pick], *args)
        same(got, want, "cues")
    windows = sum(s.windows for s in new)
    assert windows > 10
    assert windows == sum(s.windows for s in old)
    same(seen["new"], seen["old"], "features")
    for a, b in zip(new, old, strict=True):
        same(a.prosody, b.prosody, a.participant)
        same(a.window, b.window, a.participant)
        same(a.acc, b.acc, a.participant)
        same(a.cues, b.cues, a.participant)
        same(
            (list(a.arousal), list(a.valence), a.arousal_sum, a.valence_sum),
            (list(b.arousal), list(b.valence), b.arousal_sum, b.valence_sum),
        )


def test_push_hops_equals_push() -> None:
    rng = np.random.default_rng(4)
    a, b = SpeechWindow(), SpeechWindow()
    for _ in range(40):
        h = int(rng.integers(0, 120))
        pcm = rng.integers(-32768, 32768, h * HOP, dtype=np.int16)
        mask = rng.random(h) < 0.6
        full_a = a.push(pcm, mask)
        full_b = b.push_hops(pcm.reshape(-1, HOP)[mask])
        same(full_a, full_b)
        assert a.fill == b.fill
    assert_array_equal(a.buf, b.buf)
    with pytest.raises(ValueError):
        a.push_hops(np.zeros(HOP, np.int16))
