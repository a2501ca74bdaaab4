"""Grid search for the numba VAD's kernel parameters on the AMI excerpts.

Why a separate set: the VAD accuracy we report is on ../shared/data/vad (TEN VAD
test set); tuning there would flatter the numbers. Here speech truth is the union
of the speakers in the AMI RTTM files of ../shared/data/diarization, and the
objective is the mean F1 over the clean excerpts and the same excerpts with pink
noise added at 20, 10 and 5 dB SNR (fixed seed): calls are rarely as quiet as a
meeting room, and a VAD tuned on clean audio alone learns a threshold too high.

    python bench/tune_numba_vad.py            # prints the best settings by F1
"""

from __future__ import annotations

import itertools
import sys
from dataclasses import replace

import numpy as np

from engine.audio.decode import decode_file
from engine.config import VadConfig
from engine.datasets import diarization_items, shared_data_dir
from engine.metrics import Detection, detection, frames_from_intervals, frames_from_segments
from engine.types import HOP
from engine.vad import Hangover
from engine.vad.energy import EnergyVadParams, NumbaBackend


def _with_noise(x: np.ndarray, snr_db: float | None, truth: np.ndarray) -> np.ndarray:
    """Add pink noise at `snr_db` relative to the speech frames' power (None: clean)."""
    if snr_db is None:
        return x.astype(np.int16)
    rng = np.random.default_rng(7)
    white = rng.standard_normal(x.shape[0])
    spectrum = np.fft.rfft(white)
    spectrum[1:] /= np.sqrt(np.arange(1, spectrum.shape[0]))
    pink = np.fft.irfft(spectrum, n=x.shape[0])
    speech = x.reshape(-1, HOP)[truth].reshape(-1)
    p_speech = float(np.mean(speech**2)) if speech.size else float(np.mean(x**2))
    pink *= np.sqrt(p_speech / 10 ** (snr_db / 10) / np.mean(pink**2))
    return np.clip(x + pink, -32768, 32767).astype(np.int16)


def main() -> int:
    root = shared_data_dir()
    if root is None:
        print("needs ../shared/data/diarization", file=sys.stderr)
        return 2
    data = []
    for fid, (wav, turns) in diarization_items(root / "diarization").items():
        _, chunks = decode_file(wav)
        x = np.concatenate([c for _, c in chunks])
        n = x.shape[0] // HOP
        truth = frames_from_intervals([(t.start, t.end) for t in turns], n)
        clean = x[: n * HOP].astype(np.float64)
        for snr_db in (None, 20.0, 10.0, 5.0):
            data.append((snr_db, _with_noise(clean, snr_db, truth).reshape(n, HOP), truth))
    config = VadConfig(backend="numba")
    base = EnergyVadParams()
    grid = {
        "snr0_db": [0.0, 1.5, 3.0, 4.5, 6.0],
        "snr_slope": [0.3, 0.45, 0.7],
        "ratio_weight": [0.0, 0.05, 0.15],
        "level_gate_db": [-70.0],
        "rise_db": [0.005, 0.01, 0.02],
    }
    results = []
    for values in itertools.product(*grid.values()):
        params = replace(base, **dict(zip(grid, values, strict=True)))
        backend = NumbaBackend(config, params)
        by_condition: dict[float | None, Detection] = {}
        for snr_db, hops, truth in data:
            st = backend.open_stream()
            hang = Hangover(config)
            probs = backend.process([st], [hops])[0]
            segs = hang.push(probs) + hang.flush()
            d = detection(frames_from_segments(segs, hops.shape[0]), truth)
            by_condition[snr_db] = by_condition.get(snr_db, Detection(0, 0, 0)) + d
        conds = list(by_condition.values())
        mean = lambda attr: float(np.mean([getattr(d, attr) for d in conds]))  # noqa: E731
        results.append((mean("f1"), mean("precision"), mean("recall"), values))
    results.sort(reverse=True)
    print("mean over clean, 20, 10, 5 dB SNR\nF1     P      R      " + " ".join(grid))
    for f1, p, r, values in results[:10]:
        print(f"{f1:.3f}  {p:.3f}  {r:.3f}  {values}")
    defaults = tuple(getattr(base, k) for k in grid)
    current = [x for x in results if x[3] == defaults]
    if current:
        f1, p, r, _ = current[0]
        print(f"current defaults: F1 {f1:.3f} P {p:.3f} R {r:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
