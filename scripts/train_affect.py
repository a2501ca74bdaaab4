"""Train, evaluate (leave-one-speaker-out) and export the affect model.

    python scripts/train_affect.py            # evaluate, then export the shipped model
    python scripts/train_affect.py --no-export

Data: ../shared/data/emotion (Emo-DB speakers 03, 08, 09, 10, 11, 12; 22.05 kHz clips cut
to 2.0 s), read with PyAV and converted to 16 kHz by engine.audio.resample.Resampler, so
training sees what the engine sees; features from engine.affect.features. Nothing is
written but the model and its metrics (no audio, no per-file features).

Targets, from the emotion letter:
  categories  W anger, L boredom, E disgust, A fear, F happiness, T sadness, N neutral (7)
  arousal     high W, F, A = 1 vs low L, T, N = 0; disgust (E) is left out of the arousal
              head's training and evaluation (its arousal is ambiguous)
  valence     positive F, N = 1 vs negative W, L, E, A, T = 0 (a binary grouping as
              Schuller et al., ASRU 2009, "Acoustic emotion recognition: a benchmark
              comparison of performances", made for Emo-DB; their exact mapping was not
              re-checked here). Neutral counts as not negative.

Model: features standardised (training mean and std, inside the ONNX graph), then three
L2-regularised logistic regressions (multinomial for the categories, binary for arousal
and valence) with class-balanced weights, fitted by L-BFGS. The L2 strength of each head
is chosen by an inner leave-one-speaker-out over the training speakers only, so the
held-out speaker never influences any choice.

Evaluation: outer leave-one-speaker-out over the 6 speakers; predictions of all folds are
pooled and 95 % bootstrap intervals (files resampled, 2000 draws, seeded) are given, plus
the spread over held-out speakers. Majority baseline: the training folds' most frequent
class. The final model is refitted on all speakers with the L2 strengths the full-data
inner LOSO picks, and exported with the `onnx` helper API (dev-only dependency).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
from scipy.optimize import minimize

from engine.affect.features import FEATURE_NAMES, FEATURE_VERSION, N_FEATURES, batch_features
from engine.audio.resample import QUALITY, Resampler
from engine.datasets import shared_data_dir

ROOT = Path(__file__).resolve().parents[1]

LETTERS = "WLEAFTN"
CLASSES = ("anger", "boredom", "disgust", "fear", "happiness", "sadness", "neutral")
HIGH_AROUSAL = "WFA"
LOW_AROUSAL = "LTN"
POSITIVE = "FN"
LAMBDAS = (1e-3, 3e-3, 1e-2, 3e-2, 1e-1, 3e-1, 1.0)
SEED = 20261128
N_BOOT = 2000
MODEL_PATH = ROOT / "engine" / "affect" / "models" / "affect.onnx"
EVAL_PATH = ROOT / "engine" / "affect" / "models" / "affect_eval.json"
OPSET = 17


@dataclass(frozen=True, slots=True)
class EmoData:
    x: np.ndarray  # float32 (n, N_FEATURES)
    speaker: np.ndarray  # str (n,)
    cat: np.ndarray  # int (n,) index into CLASSES
    arousal: np.ndarray  # float (n,) 1 high, 0 low, nan disgust
    valence: np.ndarray  # float (n,) 1 positive, 0 negative


def read_16k(path: Path) -> np.ndarray:
    res = Resampler()
    parts = []
    with av.open(str(path)) as container:
        for frame in container.decode(audio=0):
            parts.append(res.convert(frame))
    parts.append(res.convert(None))
    return np.concatenate(parts)


def load_emodb(root: Path) -> EmoData:
    wavs = sorted((root / "wav").glob("*.wav"))
    if not wavs:
        raise FileNotFoundError(f"no Emo-DB clips under {root / 'wav'}")
    x = np.concatenate(
        [batch_features([read_16k(p) for p in wavs[i : i + 32]]) for i in range(0, len(wavs), 32)]
    )
    letters = [p.name[5] for p in wavs]
    cat = np.array([LETTERS.index(e) for e in letters])
    ar = np.array(
        [1.0 if e in HIGH_AROUSAL else 0.0 if e in LOW_AROUSAL else np.nan for e in letters]
    )
    val = np.array([1.0 if e in POSITIVE else 0.0 for e in letters])
    return EmoData(x, np.array([p.name[:2] for p in wavs]), cat, ar, val)


# ---- model ---------------------------------------------------------------------------


def standardizer(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mean = x.mean(axis=0)
    std = x.std(axis=0)
    return mean, np.where(std > 1e-6, std, 1.0)


def balanced_weights(y: np.ndarray, k: int) -> np.ndarray:
    counts = np.bincount(y, minlength=k).astype(float)
    w = np.where(counts > 0, y.shape[0] / (k * np.maximum(counts, 1.0)), 0.0)
    return w[y]


def fit_softmax(z: np.ndarray, y: np.ndarray, k: int, lam: float) -> tuple[np.ndarray, np.ndarray]:
    """Class-balanced multinomial logistic regression with L2 on the weights (not the bias)."""
    n, d = z.shape
    sw = balanced_weights(y, k)
    onehot = np.eye(k)[y]

    def loss(theta: np.ndarray) -> tuple[float, np.ndarray]:
        w = theta[: d * k].reshape(d, k)
        b = theta[d * k :]
        logits = z @ w + b
        logits -= logits.max(axis=1, keepdims=True)
        logp = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
        f = -np.sum(sw * np.sum(onehot * logp, axis=1)) / n + 0.5 * lam * np.sum(w * w)
        g = (np.exp(logp) - onehot) * sw[:, None] / n
        return f, np.concatenate([(z.T @ g + lam * w).ravel(), g.sum(axis=0)])

    res = minimize(
        loss, np.zeros(d * k + k), jac=True, method="L-BFGS-B", options={"maxiter": 5000}
    )
    return res.x[: d * k].reshape(d, k), res.x[d * k :]


def fit_binary(z: np.ndarray, y: np.ndarray, lam: float) -> tuple[np.ndarray, float]:
    w, b = fit_softmax(z, y.astype(int), 2, lam)
    return w[:, 1] - w[:, 0], float(b[1] - b[0])  # the same model as one sigmoid


def softmax(logits: np.ndarray) -> np.ndarray:
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def sigmoid(v: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-v))


@dataclass(frozen=True, slots=True)
class Weights:
    mean: np.ndarray  # (d,)
    std: np.ndarray  # (d,)
    w: np.ndarray  # (d, 9): 7 category logits, arousal logit, valence logit
    b: np.ndarray  # (9,)


def forward(wt: Weights, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Plain-numpy forward pass: (arousal, valence, category probabilities)."""
    logits = ((x - wt.mean) / wt.std) @ wt.w + wt.b
    return sigmoid(logits[:, 7]), sigmoid(logits[:, 8]), softmax(logits[:, :7])


def fit(data: EmoData, idx: np.ndarray, lams: tuple[float, float, float]) -> Weights:
    """All three heads on the files `idx`, with L2 strengths (categories, arousal, valence)."""
    x = data.x[idx].astype(np.float64)
    mean, std = standardizer(x)
    z = (x - mean) / std
    wc, bc = fit_softmax(z, data.cat[idx], len(CLASSES), lams[0])
    has = ~np.isnan(data.arousal[idx])
    wa, ba = fit_binary(z[has], data.arousal[idx][has], lams[1])
    wv, bv = fit_binary(z, data.valence[idx], lams[2])
    return Weights(mean, std, np.column_stack([wc, wa, wv]), np.concatenate([bc, [ba, bv]]))


# ---- metrics -------------------------------------------------------------------------


def uar(y: np.ndarray, pred: np.ndarray, k: int) -> float:
    recalls = [np.mean(pred[y == c] == c) for c in range(k) if np.any(y == c)]
    return float(np.mean(recalls))


def auc(y: np.ndarray, score: np.ndarray) -> float:
    """ROC AUC as the Mann-Whitney probability (ties count half)."""
    pos, neg = score[y == 1], score[y == 0]
    if not pos.size or not neg.size:
        return float("nan")
    diff = pos[:, None] - neg[None, :]
    return float((np.sum(diff > 0) + 0.5 * np.sum(diff == 0)) / (pos.size * neg.size))


def bootstrap(fn, n: int, rng: np.random.Generator) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    vals = [fn(rng.integers(0, n, n)) for _ in range(N_BOOT)]
    lo, hi = np.nanpercentile(vals, (2.5, 97.5))
    return float(lo), float(hi)


def inner_choice(data: EmoData, idx: np.ndarray) -> tuple[float, float, float]:
    """L2 strengths picked by leave-one-speaker-out within `idx` (UAR, AUC, AUC)."""
    speakers = sorted(set(data.speaker[idx]))
    scores = np.zeros((len(LAMBDAS), 3))
    for li, lam in enumerate(LAMBDAS):
        pred_c = np.zeros(idx.size, int)
        pa = np.zeros(idx.size)
        pv = np.zeros(idx.size)
        for s in speakers:
            te = data.speaker[idx] == s
            wt = fit(data, idx[~te], (lam, lam, lam))
            a, v, p = forward(wt, data.x[idx[te]])
            pred_c[te], pa[te], pv[te] = p.argmax(axis=1), a, v
        ar = data.arousal[idx]
        has = ~np.isnan(ar)
        scores[li] = (
            uar(data.cat[idx], pred_c, len(CLASSES)),
            auc(ar[has], pa[has]),
            auc(data.valence[idx], pv),
        )
    best = scores.argmax(axis=0)  # on ties, the smallest lambda (first in LAMBDAS)
    return LAMBDAS[best[0]], LAMBDAS[best[1]], LAMBDAS[best[2]]


def loso(data: EmoData) -> dict[str, object]:
    n = data.x.shape[0]
    speakers = sorted(set(data.speaker))
    pred_c = np.zeros(n, int)
    base_c = np.zeros(n, int)
    pa = np.zeros(n)
    pv = np.zeros(n)
    base_a = np.zeros(n)
    base_v = np.zeros(n)
    chosen = {}
    for s in speakers:
        te = data.speaker == s
        tr = np.flatnonzero(~te)
        lams = inner_choice(data, tr)
        chosen[s] = lams
        wt = fit(data, tr, lams)
        a, v, p = forward(wt, data.x[te])
        pred_c[te], pa[te], pv[te] = p.argmax(axis=1), a, v
        base_c[te] = np.bincount(data.cat[tr], minlength=len(CLASSES)).argmax()
        ar_tr = data.arousal[tr]
        base_a[te] = float(np.nanmean(ar_tr) >= 0.5)
        base_v[te] = float(np.mean(data.valence[tr]) >= 0.5)
        print(f"  held out {s}: lambdas {lams}", flush=True)

    y = data.cat
    has = ~np.isnan(data.arousal)
    ya = data.arousal
    rng = np.random.default_rng(SEED)
    k = len(CLASSES)

    def on_arousal(ii: np.ndarray) -> np.ndarray:
        return ii[has[ii]]

    metrics: dict[str, object] = {
        "n_files": int(n),
        "n_arousal_files": int(has.sum()),
        "category_accuracy": float(np.mean(pred_c == y)),
        "category_accuracy_ci95": bootstrap(lambda ii: np.mean(pred_c[ii] == y[ii]), n, rng),
        "category_uar": uar(y, pred_c, k),
        "category_uar_ci95": bootstrap(lambda ii: uar(y[ii], pred_c[ii], k), n, rng),
        "majority_category_accuracy": float(np.mean(base_c == y)),
        "majority_category_uar": uar(y, base_c, k),
        "arousal_auc": auc(ya[has], pa[has]),
        "arousal_auc_ci95": bootstrap(
            lambda ii: auc(ya[on_arousal(ii)], pa[on_arousal(ii)]), n, rng
        ),
        "arousal_accuracy": float(np.mean((pa[has] >= 0.5) == (ya[has] == 1))),
        "arousal_accuracy_ci95": bootstrap(
            lambda ii: np.mean((pa[on_arousal(ii)] >= 0.5) == (ya[on_arousal(ii)] == 1)), n, rng
        ),
        "arousal_uar": uar(ya[has].astype(int), (pa[has] >= 0.5).astype(int), 2),
        "majority_arousal_accuracy": float(np.mean(base_a[has] == ya[has])),
        "valence_auc": auc(data.valence, pv),
        "valence_auc_ci95": bootstrap(lambda ii: auc(data.valence[ii], pv[ii]), n, rng),
        "valence_uar": uar(data.valence.astype(int), (pv >= 0.5).astype(int), 2),
        "valence_uar_ci95": bootstrap(
            lambda ii: uar(data.valence[ii].astype(int), (pv[ii] >= 0.5).astype(int), 2), n, rng
        ),
        "majority_valence_accuracy": float(np.mean(base_v == data.valence)),
        "per_speaker": {
            s: {
                "n": int(np.sum(data.speaker == s)),
                "category_accuracy": float(
                    np.mean(pred_c[data.speaker == s] == y[data.speaker == s])
                ),
                "category_uar": uar(y[data.speaker == s], pred_c[data.speaker == s], k),
                "arousal_auc": auc(ya[(data.speaker == s) & has], pa[(data.speaker == s) & has]),
                "valence_auc": auc(data.valence[data.speaker == s], pv[data.speaker == s]),
            }
            for s in speakers
        },
        "confusion": np.array(
            [[int(np.sum((y == t) & (pred_c == p))) for p in range(k)] for t in range(k)]
        ).tolist(),
        "lambdas_per_fold": chosen,
    }
    return metrics


def speaker_normalised(data: EmoData) -> EmoData:
    x = data.x.astype(np.float64)
    for s in set(data.speaker):
        m = data.speaker == s
        x[m] = (x[m] - x[m].mean(axis=0)) / (x[m].std(axis=0) + 1e-6)
    return EmoData(x.astype(np.float32), data.speaker, data.cat, data.arousal, data.valence)


# ---- export --------------------------------------------------------------------------


def export_onnx(wt: Weights, path: Path, lams: tuple[float, float, float]) -> None:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    d, k = N_FEATURES, len(CLASSES)

    def const(name: str, a: np.ndarray) -> onnx.TensorProto:
        return numpy_helper.from_array(np.ascontiguousarray(a), name)

    inits = [
        const("mean", wt.mean.astype(np.float32)),
        const("std", wt.std.astype(np.float32)),
        const("W", wt.w.astype(np.float32)),
        const("B", wt.b.astype(np.float32)),
        const("cat_start", np.array([0], np.int64)),
        const("cat_end", np.array([k], np.int64)),
        const("ar_start", np.array([k], np.int64)),
        const("ar_end", np.array([k + 1], np.int64)),
        const("val_start", np.array([k + 1], np.int64)),
        const("val_end", np.array([k + 2], np.int64)),
        const("axis1", np.array([1], np.int64)),
    ]
    nodes = [
        helper.make_node("Sub", ["features", "mean"], ["centred"]),
        helper.make_node("Div", ["centred", "std"], ["z"]),
        helper.make_node("Gemm", ["z", "W", "B"], ["logits"]),
        helper.make_node("Slice", ["logits", "cat_start", "cat_end", "axis1"], ["cat_logits"]),
        helper.make_node("Softmax", ["cat_logits"], ["probs"], axis=1),
        helper.make_node("Slice", ["logits", "ar_start", "ar_end", "axis1"], ["ar_logit"]),
        helper.make_node("Sigmoid", ["ar_logit"], ["ar_col"]),
        helper.make_node("Squeeze", ["ar_col", "axis1"], ["arousal"]),
        helper.make_node("Slice", ["logits", "val_start", "val_end", "axis1"], ["val_logit"]),
        helper.make_node("Sigmoid", ["val_logit"], ["val_col"]),
        helper.make_node("Squeeze", ["val_col", "axis1"], ["valence"]),
    ]
    graph = helper.make_graph(
        nodes,
        "groupsense_affect",
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, ["n", d])],
        [
            helper.make_tensor_value_info("arousal", TensorProto.FLOAT, ["n"]),
            helper.make_tensor_value_info("valence", TensorProto.FLOAT, ["n"]),
            helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["n", k]),
        ],
        inits,
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET)],
        producer_name="groupsense scripts/train_affect.py",
    )
    model.ir_version = 8
    meta = {
        "feature_version": str(FEATURE_VERSION),
        "feature_names": ",".join(FEATURE_NAMES),
        "classes": ",".join(CLASSES),
        "arousal": "P(high: anger, happiness, fear vs low: boredom, sadness, neutral)",
        "valence": "P(positive: happiness, neutral vs negative: anger, boredom, disgust, fear, "
        "sadness)",
        "training_data": "Emo-DB speakers 03 08 09 10 11 12, 2.0 s clips, resampled " + QUALITY,
        "l2": ",".join(str(v) for v in lams),
    }
    helper.set_model_props(model, meta)
    onnx.checker.check_model(model, full_check=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(model.SerializeToString())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--no-export", action="store_true", help="evaluate only")
    ap.add_argument(
        "--speaker-norm",
        action="store_true",
        help="evaluate only, with each speaker's features standardised over all that speaker's "
        "clips (an optimistic bound on what per-person feature baselines could add)",
    )
    args = ap.parse_args()
    shared = shared_data_dir()
    if shared is None or not (shared / "emotion" / "wav").is_dir():
        print("no ../shared/data/emotion: nothing to train on", file=sys.stderr)
        return 2
    data = load_emodb(shared / "emotion")
    if args.speaker_norm:
        data = speaker_normalised(data)
        args.no_export = True
    print(f"{data.x.shape[0]} clips, {N_FEATURES} features; leave-one-speaker-out:", flush=True)
    metrics = loso(data)
    lams = inner_choice(data, np.arange(data.x.shape[0]))
    metrics["final_lambdas"] = lams
    metrics["feature_version"] = FEATURE_VERSION
    metrics["seed"] = SEED
    metrics["n_bootstrap"] = N_BOOT
    print(json.dumps({k: v for k, v in metrics.items() if k not in ("per_speaker",)}, indent=1))
    for s, m in metrics["per_speaker"].items():  # type: ignore[attr-defined]
        print(s, {k: round(v, 3) for k, v in m.items()})
    if not args.no_export:
        wt = fit(data, np.arange(data.x.shape[0]), lams)
        export_onnx(wt, MODEL_PATH, lams)
        EVAL_PATH.write_text(json.dumps(metrics, indent=1) + "\n", encoding="utf-8")
        print(f"wrote {MODEL_PATH} ({MODEL_PATH.stat().st_size} bytes) and {EVAL_PATH}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
