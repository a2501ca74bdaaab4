"""Vocal cues: against each person's own baseline, with minimum evidence and hysteresis,
on made-up window features and on real acted speech (Emo-DB, ../shared/data/emotion)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from engine.affect.cues import WINDOW_FEATURES, CueConfig, CueDetector
from engine.affect.features import SpeechWindow
from engine.affect.stream import AffectStream, affect_step
from engine.audio.decode import decode_file
from engine.config import VadConfig
from engine.pipeline import ParticipantPipeline, step
from engine.vad import make_backend

USUAL = np.array([10.0, 2.0, -25.0, 0.02, 0.8, 12.0, 4.0, 0.3])
SPREAD = np.array([0.8, 0.4, 2.0, 0.004, 0.15, 1.5, 0.5, 0.08])


def windows(rng: np.random.Generator, n: int, shift: dict[str, float] | None = None):
    out = []
    for _ in range(n):
        v = USUAL + rng.normal(0, 1, USUAL.shape) * SPREAD
        for name, z in (shift or {}).items():
            v[WINDOW_FEATURES.index(name)] += z * SPREAD[WINDOW_FEATURES.index(name)]
        out.append(v)
    return out


def run(det: CueDetector, seq, t0: float = 0.0):
    changed, t = [], t0
    for v in seq:
        t += det.window_s
        changed += det.update(t, v)
    return changed, t


def test_raised_pitch_fires_after_enough_evidence_and_clears() -> None:
    rng = np.random.default_rng(0)
    det = CueDetector("p-1", CueConfig(learn_s=60, evidence_s=20), window_s=2.0)
    got, t = run(det, windows(rng, 60))  # 2 minutes of usual speech
    assert got == []
    got, t = run(det, windows(rng, 15, {"f0_mean_st": 4.0}), t)  # 30 s, pitch raised
    raised = [c for c in got if c.kind == "raised_pitch"]
    assert len(raised) == 1 and raised[0].active
    cue = raised[0]
    # judged on the last 20 s (10 windows): their mean must pass 2 baseline units, which
    # a shift of 4 does after about half of them
    assert 120 + 8 <= cue.since_s <= 120 + 20
    assert cue.deviation >= 2.0 and cue.evidence_s == pytest.approx(20.0)
    assert 0.5 <= cue.confidence <= 1.0
    assert "higher pitch than usual" in cue.message and "p-1" in cue.message
    got, t = run(det, windows(rng, 20), t)  # back to usual
    cleared = [c for c in got if c.kind == "raised_pitch"]
    assert len(cleared) == 1 and not cleared[0].active and cleared[0].cleared_s > cue.since_s
    assert det.active == {} or "raised_pitch" not in det.active


def test_nothing_fires_while_the_baseline_is_learnt() -> None:
    rng = np.random.default_rng(1)
    det = CueDetector("p-2", CueConfig(learn_s=60, evidence_s=20), window_s=2.0)
    # a person who starts out tense: that IS their baseline, no cue
    got, _ = run(det, windows(rng, 60, {"f0_mean_st": 4.0, "arousal": 4.0}))
    assert got == []


def test_a_brief_change_does_not_fire() -> None:
    rng = np.random.default_rng(2)
    det = CueDetector("p-3", CueConfig(learn_s=60, evidence_s=20), window_s=2.0)
    run(det, windows(rng, 40))
    got, _ = run(det, [*windows(rng, 2, {"loudness_db": -6.0}), *windows(rng, 20)], 80.0)
    assert got == []


def test_quiet_slow_strained_and_aroused_each_fire() -> None:
    rng = np.random.default_rng(3)
    cases = {
        "quiet_speech": {"loudness_db": -4.0},
        "slowed_speech": {"syllable_rate": -4.0},
        "strained_voice": {"jitter": 4.0, "shimmer_db": 4.0, "hnr_db": -4.0},
        "high_arousal": {"arousal": 4.0},
        "pitch_variability": {"f0_sd_st": 4.0},
    }
    for kind, shift in cases.items():
        det = CueDetector("p", CueConfig(learn_s=60, evidence_s=20), window_s=2.0)
        run(det, windows(rng, 40))
        got, _ = run(det, windows(rng, 15, shift), 80.0)
        assert kind in {c.kind for c in got}, kind


def test_undefined_features_do_not_fire() -> None:
    rng = np.random.default_rng(4)
    det = CueDetector("p", CueConfig(learn_s=60, evidence_s=20), window_s=2.0)
    run(det, windows(rng, 40))
    unvoiced = [np.where(np.arange(8) < 2, math.nan, v) for v in windows(rng, 20)]
    got, _ = run(det, unvoiced, 80.0)
    assert got == []


def test_config_is_validated() -> None:
    with pytest.raises(ValueError):
        CueConfig(raise_z=1.0, clear_z=1.5)
    with pytest.raises(ValueError):
        CueConfig(learn_s=1.0)
    det = CueDetector("p", CueConfig(), window_s=2.0)
    with pytest.raises(ValueError):
        det.update(1.0, [1.0, 2.0])


# -- real acted speech -------------------------------------------------------------------


def _emodb(shared_data: Path, speaker: str, emotions: str) -> list[Path]:
    files = sorted((shared_data / "emotion" / "wav").glob(f"{speaker}*.wav"))
    return [f for f in files if f.stem[5] in emotions]


def _feed(stream: AffectStream, audio: np.ndarray) -> list:
    vad = VadConfig()
    backend = make_backend(vad)
    p = ParticipantPipeline.open("x", backend, vad)
    p.keep_audio = True
    changed = []
    for k in range(0, audio.shape[0], 1600):  # 100 ms blocks, as the live tick gives
        p.feed(audio[k : k + 1600])
        step(backend, [p])
        for hops, speech in p.take_audio():
            changed += affect_step([stream], [hops.reshape(-1)], [speech], [p.hops_done])
    return changed


@pytest.mark.parametrize("speaker", ["09", "11", "12"])  # not the speakers tuned on
def test_calm_then_aroused_speech_raises_arousal_or_pitch_cues(shared_data, speaker) -> None:
    """A speaker's low-arousal clips (boredom, sadness, neutral) set their baseline; their
    high-arousal clips (anger, fear, happiness) that follow raise a cue within 20 s."""

    def load(paths: list[Path]) -> np.ndarray:
        gap = np.zeros(8000, np.int16)
        parts = []
        for f in paths:
            _, it = decode_file(f)
            parts += [np.concatenate([x for _, x in it]), gap]
        return np.concatenate(parts)

    calm = load(_emodb(shared_data, speaker, "LTN"))
    tense = load(_emodb(shared_data, speaker, "WAF"))
    stream = AffectStream("p-x", CueConfig(learn_s=16, evidence_s=8))
    changed = _feed(stream, np.concatenate([calm, tense]))
    switch = calm.shape[0] / 16000
    hot = ("high_arousal", "raised_pitch")
    assert [c.kind for c in changed if c.kind in hot and c.since_s < switch - 2] == []
    fired = [c for c in changed if c.kind in hot and c.since_s >= switch - 2]
    assert fired, [(c.kind, c.since_s) for c in changed]
    assert min(c.since_s for c in fired) <= switch + 20
    assert stream.windows >= (calm.shape[0] + tense.shape[0]) / 16000 / 2 * 0.5


def test_prosody_only_cues_match_the_models_but_for_arousal(shared_data) -> None:
    """Without the affect model (`use_model=False`) the same speech gives the same
    windows and the same prosody cues, to the digit; only `high_arousal` is gone, and
    no window of audio is kept."""
    calm = [f for s in ("09", "11") for f in _emodb(shared_data, s, "LTN")]
    tense = [f for s in ("09", "11") for f in _emodb(shared_data, s, "WAF")]
    gap = np.zeros(8000, np.int16)
    audio = np.concatenate(
        [x for f in calm + tense for x in (np.concatenate([c for _, c in decode_file(f)[1]]), gap)]
    )
    cfg = CueConfig(learn_s=16, evidence_s=8)
    full, lean = AffectStream("p-x", cfg), AffectStream("p-x", cfg, use_model=False)
    with_model, without = _feed(full, audio), _feed(lean, audio)
    assert lean.window.buf.size == 0 and list(lean.arousal) == [] and lean.mean_arousal == -1.0
    assert lean.windows == full.windows > 20
    assert any(c.kind == "high_arousal" for c in with_model)  # so the filter below matters
    assert [c for c in with_model if c.kind != "high_arousal"] == without
    assert without and all(c.kind != "high_arousal" for c in without)


def test_window_counts_without_audio() -> None:
    w = SpeechWindow(keep_audio=False)
    per = w.cap // 160
    assert w.buf.size == 0
    assert w.count_hops(per - 1) == 0 and w.count_hops(1) == 1 and w.fill == 0
    assert w.count_hops(2 * per + 3) == 2 and w.fill == 3 * 160
    with pytest.raises(ValueError, match="keeps no audio"):
        w.push_hops(np.zeros((1, 160), np.int16))
    with pytest.raises(ValueError, match="keeps audio"):
        SpeechWindow().count_hops(1)
