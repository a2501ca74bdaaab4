"""Kaldi-compatible log mel filterbank in numpy (the CAM++ encoder's front end).

Reproduces `torchaudio.compliance.kaldi.fbank(wav, num_mel_bins=80, sample_frequency=16000,
dither=0)` as 3D-Speaker's `FBank` calls it, then subtracts the per-window mean of every
bin (`mean_nor=True`): 16 kHz, 400-sample frames every 160 samples with snip_edges (no
padding: 1 + (n - 400) // 160 frames), DC offset removed per frame, pre-emphasis 0.97
(first sample against itself), Povey window (Hann, non-periodic, to the power 0.85),
zero-padded to 512, power spectrum, 80 triangular bins on the HTK mel scale
(1127 ln(1 + f/700)) from 20 Hz to 8 kHz, natural log floored at float32 epsilon.
The input scale only shifts each bin by a constant, which the mean subtraction removes.
"""

from __future__ import annotations

import numpy as np

from engine.types import SAMPLE_RATE

FRAME = 400
SHIFT = 160
N_FFT = 512
N_BINS = 80
LOW_HZ = 20.0
PREEMPH = 0.97
EPS = float(np.finfo(np.float32).eps)


def _mel(f: np.ndarray | float) -> np.ndarray:
    return 1127.0 * np.log(1.0 + np.asarray(f, np.float64) / 700.0)


def kaldi_mel_banks(
    n_bins: int = N_BINS, n_fft: int = N_FFT, sr: int = SAMPLE_RATE, low: float = LOW_HZ
) -> np.ndarray:
    """(n_bins, n_fft // 2 + 1) triangles in the mel domain; the Nyquist column is zero."""
    n_half = n_fft // 2
    lo, hi = _mel(low), _mel(sr / 2)
    delta = (hi - lo) / (n_bins + 1)
    left = lo + np.arange(n_bins)[:, None] * delta
    centre, right = left + delta, left + 2 * delta
    mel = _mel(sr / n_fft * np.arange(n_half))[None, :]
    up = (mel - left) / (centre - left)
    down = (right - mel) / (right - centre)
    banks = np.maximum(0.0, np.minimum(up, down))
    return np.pad(banks, ((0, 0), (0, 1))).astype(np.float32)


_BANKS = kaldi_mel_banks()
_WINDOW = ((0.5 - 0.5 * np.cos(2 * np.pi * np.arange(FRAME) / (FRAME - 1))) ** 0.85).astype(
    np.float32
)


def fbank(wav: np.ndarray) -> np.ndarray:
    """float32 samples at 16 kHz (at least 400) -> (1 + (n - 400) // 160, 80) log mel energies."""
    if wav.ndim != 1 or wav.shape[0] < FRAME:
        raise ValueError(f"wav must be 1-D with at least {FRAME} samples, got {wav.shape}")
    frames = np.lib.stride_tricks.sliding_window_view(wav.astype(np.float32, copy=False), FRAME)
    frames = frames[::SHIFT]
    x = frames - frames.mean(axis=1, keepdims=True)
    x = (
        np.concatenate(
            [x[:, :1] * np.float32(1.0 - PREEMPH), x[:, 1:] - PREEMPH * x[:, :-1]], axis=1
        )
        * _WINDOW
    )
    spec = np.fft.rfft(x, n=N_FFT, axis=1)
    power = (spec.real**2 + spec.imag**2).astype(np.float32)
    # einsum, not `@`: small products through OpenBLAS's threaded sgemm stall on a loaded
    # machine (see embed.mel_frames)
    mel = np.einsum("fb,mb->fm", power, _BANKS)
    return np.log(np.maximum(mel, np.float32(EPS)))


def fbank_mean_normalised(wav: np.ndarray) -> np.ndarray:
    """`fbank` minus its mean over the window's frames, as 3D-Speaker's FBank(mean_nor=True)."""
    f = fbank(wav)
    return f - f.mean(axis=0, keepdims=True)
