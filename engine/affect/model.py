"""The affect model on onnxruntime: one shared, immutable session; batched across streams.

The model (engine/affect/models/affect.onnx, built by scripts/train_affect.py and described
in engine/affect/MODEL_CARD.md) maps a window's feature vector from
engine.affect.features to arousal, valence and 7 emotion-category probabilities. It has
no per-stream state, so one `AffectModel` serves every participant: gather the windows
that completed in a tick, stack their features, call `predict` once.

Cues for a clinician, never a diagnosis: these are scores of acted German speech
transferred to another domain; see the model card's limitations.
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib import resources
from typing import NamedTuple

import numpy as np

from engine.affect.features import FEATURE_NAMES, FEATURE_VERSION, N_FEATURES, batch_features
from engine.ort import onnxruntime as ort

MODEL_FILE = "affect.onnx"
MAX_BATCH = 1024  # rows per session call; larger inputs are split


def model_path() -> str:
    return str(resources.files("engine.affect").joinpath("models", MODEL_FILE))


class AffectOutput(NamedTuple):
    """Per input row: arousal and valence in [0, 1] (valence None if the model has no such
    head) and category probabilities summing to 1, in the order of `AffectModel.classes`.
    Unpacks as `arousal, valence, probs`."""

    arousal: np.ndarray  # float32 (n,)
    valence: np.ndarray | None  # float32 (n,)
    probs: np.ndarray  # float32 (n, k)


class AffectModel:
    """Shared affect model. Thread-safe: onnxruntime's `run` may be called concurrently and
    nothing here mutates after construction."""

    __slots__ = ("_outputs", "_session", "classes", "metadata")

    def __init__(self, path: str | None = None, threads: int = 1) -> None:
        if threads < 1:
            raise ValueError(f"threads must be >= 1, got {threads}")
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.log_severity_level = 3
        self._session = ort.InferenceSession(
            path or model_path(), sess_options=opts, providers=["CPUExecutionProvider"]
        )
        meta = dict(self._session.get_modelmeta().custom_metadata_map)
        self.metadata: dict[str, str] = meta
        version = meta.get("feature_version", "")
        if version != str(FEATURE_VERSION):
            raise ValueError(
                f"model was trained on feature version {version!r}, features.py is "
                f"{FEATURE_VERSION}: retrain with scripts/train_affect.py"
            )
        if tuple(meta.get("feature_names", "").split(",")) != FEATURE_NAMES:
            raise ValueError("model's feature names differ from engine.affect.features")
        inp = self._session.get_inputs()[0]
        if inp.name != "features" or inp.shape[-1] != N_FEATURES:
            raise ValueError(f"model input {inp.name}{inp.shape} is not features[n, {N_FEATURES}]")
        self.classes: tuple[str, ...] = tuple(meta.get("classes", "").split(","))
        names = [o.name for o in self._session.get_outputs()]
        if "arousal" not in names or "probs" not in names:
            raise ValueError(f"model outputs {names} lack arousal or probs")
        self._outputs = ["arousal", "probs"] + (["valence"] if "valence" in names else [])

    @property
    def has_valence(self) -> bool:
        return "valence" in self._outputs

    def predict(self, features: np.ndarray) -> AffectOutput:
        """Scores for each row of `features` (float32 [n, N_FEATURES]); row i depends only
        on input row i, however the rows are batched."""
        if features.ndim != 2 or features.shape[1] != N_FEATURES:
            raise ValueError(f"features must be [n, {N_FEATURES}], got {features.shape}")
        if not np.all(np.isfinite(features)):
            raise ValueError("features contain NaN or inf")
        x = np.ascontiguousarray(features, dtype=np.float32)
        n = x.shape[0]
        arousal = np.zeros(n, np.float32)
        valence = np.zeros(n, np.float32) if self.has_valence else None
        probs = np.zeros((n, len(self.classes)), np.float32)
        for a in range(0, n, MAX_BATCH):
            b = min(n, a + MAX_BATCH)
            res = self._session.run(self._outputs, {"features": x[a:b]})
            arousal[a:b] = res[0]
            probs[a:b] = res[1]
            if valence is not None:
                valence[a:b] = res[2]
        return AffectOutput(arousal, valence, probs)

    def predict_windows(self, windows: Sequence[np.ndarray]) -> AffectOutput:
        """Scores for windows of 16 kHz int16 speech (one per participant, from each one's
        `SpeechWindow`): features in small FFT batches, then one session call."""
        return self.predict(batch_features(windows))
