"""The shipped affect model: size, ONNX equals a numpy forward pass of its own weights,
batching invariance, offline loading, and speaker-independent arousal on real speech."""

from __future__ import annotations

import importlib.util
import json
import socket
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import onnx
import pytest
from onnx import helper, numpy_helper

from engine.affect.features import N_FEATURES, batch_features
from engine.affect.model import AffectModel, model_path

ROOT = Path(__file__).resolve().parents[1]
EVAL = ROOT / "engine" / "affect" / "models" / "affect_eval.json"


def _reference(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Plain-numpy forward pass over the weights stored in the ONNX file."""
    init = {t.name: numpy_helper.to_array(t) for t in onnx.load(model_path()).graph.initializer}
    z = (x.astype(np.float64) - init["mean"]) / init["std"]
    logits = z @ init["W"].astype(np.float64) + init["B"]
    cat = logits[:, :7]
    e = np.exp(cat - cat.max(axis=1, keepdims=True))
    sig = 1.0 / (1.0 + np.exp(-logits[:, 7:9]))
    return sig[:, 0], sig[:, 1], e / e.sum(axis=1, keepdims=True)


def _inputs() -> np.ndarray:
    """Feature rows of real synthetic signals plus points spread around the training data."""
    rng = np.random.default_rng(7)
    t = np.arange(32000) / 16000.0
    sigs = []
    for f0 in (110.0, 220.0, 330.0):
        s = sum(np.sin(2 * np.pi * f0 * h * t) / h for h in range(1, 8))
        env = 0.5 + 0.5 * np.sin(2 * np.pi * 3.0 * t)
        sigs.append((3000 * s * env + rng.normal(0, 30, t.size)).astype(np.int16))
    init = {t.name: numpy_helper.to_array(t) for t in onnx.load(model_path()).graph.initializer}
    spread = init["mean"] + init["std"] * rng.normal(0, 1.5, (40, N_FEATURES))
    return np.concatenate([batch_features(sigs), spread.astype(np.float32)])


def test_model_file_is_small() -> None:
    assert Path(model_path()).stat().st_size <= 1_000_000


def test_onnx_equals_numpy_forward_pass() -> None:
    x = _inputs()
    arousal, valence, probs = AffectModel().predict(x)
    ra, rv, rp = _reference(x)
    assert valence is not None
    np.testing.assert_allclose(arousal, ra, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(valence, rv, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(probs, rp, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    assert np.ptp(arousal) > 0.5  # the inputs span low to high arousal: a real comparison


def test_batched_rows_equal_one_by_one() -> None:
    model = AffectModel()
    x = _inputs()
    out = model.predict(x)
    for i in range(x.shape[0]):
        one = model.predict(x[i : i + 1])
        np.testing.assert_allclose(one.arousal[0], out.arousal[i], rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(one.probs[0], out.probs[i], rtol=1e-6, atol=1e-7)
    assert model.predict(np.zeros((0, N_FEATURES), np.float32)).probs.shape == (0, 7)


def test_predict_windows_is_features_then_model() -> None:
    t = np.arange(24000) / 16000.0
    ws = [
        (4000 * np.sin(2 * np.pi * f * t) * (1 + np.sin(5 * t))).astype(np.int16)
        for f in (150, 260)
    ]
    model = AffectModel()
    got = model.predict_windows(ws)
    want = model.predict(batch_features(ws))
    np.testing.assert_array_equal(got.arousal, want.arousal)
    np.testing.assert_array_equal(got.probs, want.probs)


def test_rejects_bad_input() -> None:
    model = AffectModel()
    with pytest.raises(ValueError):
        model.predict(np.zeros((2, N_FEATURES - 1), np.float32))
    bad = np.zeros((1, N_FEATURES), np.float32)
    bad[0, 3] = np.nan
    with pytest.raises(ValueError):
        model.predict(bad)


def test_rejects_model_of_other_feature_version(tmp_path: Path) -> None:
    m = onnx.load(model_path())
    props = {p.key: p.value for p in m.metadata_props}
    props["feature_version"] = "999"
    del m.metadata_props[:]
    helper.set_model_props(m, props)
    path = tmp_path / "old.onnx"
    onnx.save(m, str(path))
    with pytest.raises(ValueError, match="feature version"):
        AffectModel(str(path))


def test_loads_and_runs_without_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise OSError("network access attempted")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    out = AffectModel().predict(_inputs())
    assert np.all((out.arousal >= 0) & (out.arousal <= 1))


def test_recorded_loso_metrics_beat_majority() -> None:
    """What scripts/train_affect.py measured (leave-one-speaker-out) is stored beside the
    model; the model must clearly beat the majority class."""
    m = json.loads(EVAL.read_text(encoding="utf-8"))
    assert m["category_uar_ci95"][0] > m["majority_category_uar"] + 0.2
    assert m["category_accuracy_ci95"][0] > m["majority_category_accuracy"] + 0.15
    assert m["arousal_auc_ci95"][0] > 0.8


def _train_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "train_affect", ROOT / "scripts" / "train_affect.py"
    )
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules["train_affect"] = mod
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.realdata
def test_arousal_separates_held_out_speakers(shared_data: Path) -> None:
    """Retrain two leave-one-speaker-out folds (the shipped model saw every speaker) with
    the L2 strengths that fold's inner LOSO chose, and score the held-out speaker."""
    root = shared_data / "emotion"
    if not (root / "wav").is_dir():
        pytest.skip("../shared/data/emotion is not present")
    tr = _train_script()
    data = tr.load_emodb(root)
    chosen = json.loads(EVAL.read_text(encoding="utf-8"))["lambdas_per_fold"]
    for held in ("09", "11"):
        test = data.speaker == held
        wt = tr.fit(data, np.flatnonzero(~test), tuple(chosen[held]))
        arousal, _, probs = tr.forward(wt, data.x[test])
        y = data.arousal[test]
        has = ~np.isnan(y)
        assert tr.auc(y[has], arousal[has]) > 0.9, held
        majority = np.mean(data.cat[test] == np.bincount(data.cat[~test]).argmax())
        assert np.mean(probs.argmax(axis=1) == data.cat[test]) > majority + 0.15, held
