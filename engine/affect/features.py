"""Window-level voice features for the affect model: eGeMAPS-inspired functionals in numpy.

One participant's speech is cut into windows of a few seconds (`SpeechWindow`); each
window becomes one fixed-length vector (`window_features`, or `batch_features` for
many streams with one FFT call per frame size). The functionals follow the spirit of
eGeMAPS (Eyben et al., 2016) -- spectral shape, spectral tilt (slopes, alpha ratio,
Hammarberg index), spectral flux, loudness dynamics, pitch statistics in semitones and
voicing -- but are computed with plain FFTs over 25 ms / 40 ms frames every 20 ms,
cheap enough to run live for every participant.

Why gain-invariant: telehealth audio passes through automatic gain control and
unknown microphones, so absolute level says little about a voice. Every feature here
is (up to int16 rounding and the -65 dBFS floor) unchanged when the window is scaled
by a constant: band energies are taken relative to the window's own mean level, and
loudness enters only through its dynamics.

Deterministic: a pure function of the samples. Nothing is stored or written.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from engine.types import HOP, SAMPLE_RATE

FEATURE_VERSION = 1
"""Bumped whenever a feature changes; the exported model records the version it saw."""

FRAME = 400  # 25 ms spectral frame
NFFT = 512
PITCH_FRAME = 640  # 40 ms: two periods at 60 Hz
PITCH_NFFT = 1024  # >= PITCH_FRAME + LAG_HI: no circular wrap in the lag range
F0_MIN_HZ = 60.0
F0_MAX_HZ = 500.0
LAG_LO = int(SAMPLE_RATE // F0_MAX_HZ)  # 32
LAG_HI = int(np.ceil(SAMPLE_RATE / F0_MIN_HZ))  # 267
VOICING_THRESHOLD = 0.45  # normalised autocorrelation peak (Praat's default)
OCTAVE_RATIO = 0.8  # take the shortest lag whose peak is within this of the best
N_MELS = 16
ACTIVE_RANGE_DB = 40.0  # frames within this of the window's loudest frame count
SILENCE_DB = -70.0  # frames below this (dBFS) never count
STEP = 2 * HOP  # 20 ms between frames: functionals over seconds need no finer step
MIN_SAMPLES = SAMPLE_RATE // 4
"""Shortest window accepted (0.25 s); 2-4 s of speech is what the model was trained on."""
BATCH_WINDOWS = 4
"""Windows framed together in `batch_features`."""
FFT_BLOCK = 32
"""Frames per FFT call: small enough that a block's spectra stay in cache."""
WINDOW_S = 2.0
"""Window length the model was trained on (Emo-DB clips cut to 2.0 s)."""
_EPS = 1e-10


def _names() -> tuple[str, ...]:
    names = [f"mel{b:02d}_rel_mean" for b in range(N_MELS)]
    names += [f"mel{b:02d}_std" for b in range(N_MELS)]
    names += ["level_std_db", "level_range_db", "level_delta_db"]
    names += ["slope0_500_mean", "slope0_500_std", "slope500_1500_mean", "slope500_1500_std"]
    names += ["alpha_ratio_mean", "alpha_ratio_std", "hammarberg_mean", "hammarberg_std"]
    names += ["flux_mean", "flux_std", "centroid_khz_mean", "centroid_khz_std"]
    names += ["f0_st_mean", "f0_st_std", "f0_st_p10", "f0_st_p90", "f0_st_range"]
    names += ["f0_st_delta", "voiced_fraction", "voicing_strength"]
    return tuple(names)


FEATURE_NAMES = _names()
N_FEATURES = len(FEATURE_NAMES)


def _mel_filterbank() -> np.ndarray:
    """Triangular filters on the HTK mel scale, 50-8000 Hz, shape (N_MELS, NFFT // 2 + 1)."""

    def mel(f: np.ndarray | float) -> np.ndarray:
        return 2595.0 * np.log10(1.0 + np.asarray(f) / 700.0)

    edges_mel = np.linspace(mel(50.0), mel(SAMPLE_RATE / 2), N_MELS + 2)
    edges = 700.0 * (10.0 ** (edges_mel / 2595.0) - 1.0)
    freqs = np.fft.rfftfreq(NFFT, 1.0 / SAMPLE_RATE)
    fb = np.zeros((N_MELS, freqs.size))
    for b in range(N_MELS):
        lo, mid, hi = edges[b], edges[b + 1], edges[b + 2]
        up = (freqs - lo) / (mid - lo)
        down = (hi - freqs) / (hi - mid)
        fb[b] = np.maximum(0.0, np.minimum(up, down))
    return fb


_FREQS = np.fft.rfftfreq(NFFT, 1.0 / SAMPLE_RATE)
_WIN = np.hanning(FRAME + 2)[1:-1]
_WIN_POWER = float(np.sum(_WIN**2))
_MEL = _mel_filterbank()
_PWIN = np.hanning(PITCH_FRAME + 2)[1:-1]
_PWIN_ACF = np.fft.irfft(np.abs(np.fft.rfft(_PWIN, PITCH_NFFT)) ** 2, PITCH_NFFT)
_PWIN_ACF_NORM = (_PWIN_ACF / _PWIN_ACF[0])[LAG_LO - 1 : LAG_HI + 2]
_BAND_0_500 = (_FREQS > 0) & (_FREQS <= 500)
_BAND_500_1500 = (_FREQS > 500) & (_FREQS <= 1500)
_ALPHA_LO = (_FREQS >= 50) & (_FREQS < 1000)
_ALPHA_HI = (_FREQS >= 1000) & (_FREQS <= 5000)
_HAM_LO = _FREQS <= 2000
_HAM_HI = (_FREQS > 2000) & (_FREQS <= 5000)


def _slope_weights(mask: np.ndarray) -> np.ndarray:
    """Least-squares slope of dB over frequency (dB per kHz) as one dot product."""
    f = _FREQS[mask] / 1000.0
    fc = f - f.mean()
    w = np.zeros(_FREQS.size)
    w[mask] = fc / np.sum(fc * fc)
    return w


_NB = int(np.searchsorted(_FREQS, 5000.0, side="right"))  # bins up to 5 kHz: all dB needs
_SLOPE_0_500 = _slope_weights(_BAND_0_500)[:_NB]
_SLOPE_500_1500 = _slope_weights(_BAND_500_1500)[:_NB]
_HAM_LO_NB = _HAM_LO[:_NB]
_HAM_HI_NB = _HAM_HI[:_NB]


def n_frames(n_samples: int) -> int:
    return 1 + (n_samples - FRAME) // STEP


def _frames(x: np.ndarray, length: int, count: int) -> np.ndarray:
    """`count` frames of `length` samples at STEP steps (zero-padded at the end)."""
    need = (count - 1) * STEP + length
    if x.shape[0] < need:
        x = np.concatenate((x, np.zeros(need - x.shape[0], x.dtype)))
    return np.lib.stride_tricks.sliding_window_view(x[:need], length)[::STEP]


def _check(pcm: np.ndarray) -> None:
    if pcm.dtype != np.int16 or pcm.ndim != 1:
        raise ValueError(f"expected 1-D int16 samples, got {pcm.dtype} with shape {pcm.shape}")
    if pcm.shape[0] < MIN_SAMPLES:
        raise ValueError(f"window of {pcm.shape[0]} samples is shorter than {MIN_SAMPLES}")


def _p10_p90(x: np.ndarray) -> tuple[float, float]:
    """`np.percentile(x, (10, 90))` (linear method) bit for bit, for a non-empty array
    without NaN: numpy's own index, weight and interpolation formulas, without its
    per-call overhead (which cost more than the rest of a window's level features)."""
    s = np.sort(x)
    n = s.shape[0]
    out = []
    for q in (10.0 / 100, 90.0 / 100):
        v = (n - 1) * q  # the virtual index
        lo = math.floor(v)
        if v >= n - 1:  # numpy takes the last value twice, weight v + 1
            a = b = float(s[-1])
            g = v + 1.0
        else:
            a, b, g = float(s[lo]), float(s[lo + 1]), v - lo
        d = b - a
        out.append(b - d * (1.0 - g) if g >= 0.5 else a + d * g)
    return out[0], out[1]


def _mean_std(x: np.ndarray) -> tuple[float, float]:
    """(`x.mean()`, `_std(x)`) of a 1-D float64 array, bit for bit: numpy's own steps
    (pairwise sum / n; pairwise sum of squared deviations / n; sqrt) without the per-call
    overhead of np.mean and np.std, which cost more than a window's level features."""
    n = x.shape[0]
    if n <= 1:
        return float(x.mean()), 0.0
    mean = np.add.reduce(x) / n
    d = x - mean
    np.multiply(d, d, out=d)
    return float(mean), math.sqrt(np.add.reduce(d) / n)


def _std(x: np.ndarray) -> float:
    return _mean_std(x)[1] if x.size > 1 else 0.0


def _functionals(power: np.ndarray, pitch_acf: np.ndarray) -> np.ndarray:
    """One window's feature vector from its frames' power spectra and normalised ACFs.

    power: (F, NFFT // 2 + 1) power spectra; pitch_acf: (F, LAG_HI - LAG_LO + 3)
    normalised autocorrelation over lags LAG_LO - 1 .. LAG_HI + 1.
    """
    out = np.zeros(N_FEATURES)
    energy = power.sum(axis=1) / _WIN_POWER  # mean square per frame, full scale = 1
    level = 10.0 * np.log10(energy + _EPS)
    active = (
        (level >= max(SILENCE_DB, float(level.max()) - ACTIVE_RANGE_DB)) if level.size else level
    )
    if not np.any(active):
        return out  # silence: an all-zero vector, never NaN
    p = power[active]
    lv = level[active]
    db = 10.0 * np.log10(p[:, :_NB] + _EPS * _WIN_POWER)
    i = 0
    mel_db = 10.0 * np.log10(p @ _MEL.T + _EPS * _WIN_POWER)
    out[i : i + N_MELS] = mel_db.mean(axis=0) - mel_db.mean()
    i += N_MELS
    out[i : i + N_MELS] = mel_db.std(axis=0)
    i += N_MELS
    p10, p90 = _p10_p90(lv)
    run = np.diff(level)[active[1:] & active[:-1]]
    out[i : i + 3] = (_std(lv), p90 - p10, float(np.mean(np.abs(run))) if run.size else 0.0)
    i += 3
    s1 = db @ _SLOPE_0_500
    s2 = db @ _SLOPE_500_1500
    alpha = 10.0 * np.log10(
        (p[:, _ALPHA_LO].sum(axis=1) + _EPS) / (p[:, _ALPHA_HI].sum(axis=1) + _EPS)
    )
    ham = db[:, _HAM_LO_NB].max(axis=1) - db[:, _HAM_HI_NB].max(axis=1)
    for v in (s1, s2, alpha, ham):
        out[i : i + 2] = _mean_std(v)
        i += 2
    mag = np.sqrt(power)
    mag = mag / (mag.sum(axis=1, keepdims=True) + _EPS)
    both = active[1:] & active[:-1]
    flux = np.sqrt(np.sum(np.diff(mag, axis=0) ** 2, axis=1))[both] * 100.0
    out[i : i + 2] = _mean_std(flux) if flux.size else (0.0, 0.0)
    i += 2
    cen = (p @ _FREQS) / (p.sum(axis=1) + _EPS) / 1000.0
    out[i : i + 2] = _mean_std(cen)
    i += 2
    f0_st, strength = _pitch(pitch_acf[active])
    voiced = f0_st > 0.0
    if np.any(voiced):
        v = f0_st[voiced]
        q10, q90 = _p10_p90(v)
        d = np.diff(f0_st)[voiced[1:] & voiced[:-1]]
        mean, sd = _mean_std(v)
        out[i : i + 6] = (
            mean,
            sd,
            q10,
            q90,
            q90 - q10,
            float(np.mean(np.abs(d))) if d.size else 0.0,
        )
    i += 6
    out[i] = float(voiced.mean())
    out[i + 1] = float(strength.mean())
    return out


def _pitch(acf: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per frame: F0 in semitones re 27.5 Hz (0 if unvoiced) and the best ACF peak.

    The shortest lag whose local peak reaches OCTAVE_RATIO of the best is taken, which
    guards against octave-down errors; parabolic interpolation refines the lag.
    """
    mid = acf[:, 1:-1]
    is_peak = (mid > acf[:, :-2]) & (mid >= acf[:, 2:])
    peaks = np.where(is_peak, mid, -np.inf)
    best = peaks.max(axis=1)
    ok = np.isfinite(best)
    best = np.where(ok, best, 0.0)
    cand = is_peak & (mid >= OCTAVE_RATIO * best[:, None])
    j = np.argmax(cand, axis=1)
    rows = np.arange(acf.shape[0])
    a, b, c = acf[rows, j], acf[rows, j + 1], acf[rows, j + 2]
    den = a - 2.0 * b + c
    shift = np.where(np.abs(den) > _EPS, 0.5 * (a - c) / np.where(den == 0, 1.0, den), 0.0)
    lag = LAG_LO + j + np.clip(shift, -0.5, 0.5)
    voiced = ok & (best >= VOICING_THRESHOLD)
    f0 = SAMPLE_RATE / lag
    st = np.where(voiced, 12.0 * np.log2(f0 / 27.5), 0.0)
    return st, np.clip(best, 0.0, 1.0)


def _spectra(windows: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """Power spectra and normalised ACFs of every frame of every window.

    The FFTs run over FFT_BLOCK frames at a time: the block's temporaries stay in cache,
    which made this about 40 % cheaper than one call over all frames; every row is
    computed exactly as before (the FFT of a row depends only on that row)."""
    counts = [n_frames(w.shape[0]) for w in windows]
    xs = [w.astype(np.float64) / 32768.0 for w in windows]
    if len(xs) == 1:  # the usual call (one window ends at a time): views, no copies
        frames = _frames(xs[0], FRAME, counts[0])
        pf = _frames(xs[0], PITCH_FRAME, counts[0])
    else:
        frames = np.concatenate([_frames(x, FRAME, c) for x, c in zip(xs, counts, strict=True)])
        pf = np.concatenate([_frames(x, PITCH_FRAME, c) for x, c in zip(xs, counts, strict=True)])
    n = frames.shape[0]
    power = np.empty((n, NFFT // 2 + 1))
    acf = np.empty((n, LAG_HI - LAG_LO + 3))
    for a in range(0, n, FFT_BLOCK):
        b = min(n, a + FFT_BLOCK)
        spec = np.fft.rfft(frames[a:b] * _WIN, NFFT)
        pw = power[a:b]
        np.multiply(spec.real, spec.real, out=pw)
        pw += spec.imag**2
        block = pf[a:b]
        block = (block - block.mean(axis=1, keepdims=True)) * _PWIN
        ps = np.fft.rfft(block, PITCH_NFFT)
        r = np.fft.irfft(ps.real**2 + ps.imag**2, PITCH_NFFT)
        r0 = r[:, :1]
        acf[a:b] = r[:, LAG_LO - 1 : LAG_HI + 2] / np.where(r0 > _EPS, r0, np.inf) / _PWIN_ACF_NORM
    return power, acf, counts


def batch_features(windows: Sequence[np.ndarray]) -> np.ndarray:
    """Feature vectors of many windows (any lengths >= MIN_SAMPLES), float32[n, N_FEATURES].

    Why batch: one FFT call over several streams' frames saves per-call overhead; groups
    of BATCH_WINDOWS keep the temporaries small (all 32 streams at once were slower).
    Row i depends only on window i.
    """
    for w in windows:
        _check(w)
    out = np.zeros((len(windows), N_FEATURES), np.float32)
    if not windows:
        return out
    for a in range(0, len(windows), BATCH_WINDOWS):
        power, acf, counts = _spectra(windows[a : a + BATCH_WINDOWS])
        start = 0
        for row, c in enumerate(counts, start=a):
            out[row] = _functionals(power[start : start + c], acf[start : start + c])
            start += c
    return out


def window_features(pcm: np.ndarray) -> np.ndarray:
    """Feature vector of one window of 16 kHz int16 speech, float32[N_FEATURES]."""
    return batch_features([pcm])[0]


@dataclass(slots=True)
class SpeechWindow:
    """One participant's speech hops, gathered into windows of `window_s` seconds.

    Only hops the VAD marks as speech are kept, so a window holds `window_s` of speech
    however long the pauses between. At most one window of audio is held in memory;
    with `keep_audio` off none is: windows are only counted (`count_hops`; prosody's
    cues need their boundaries, not their samples).
    """

    window_s: float = WINDOW_S
    keep_audio: bool = True
    cap: int = field(init=False)  # samples per window
    buf: np.ndarray = field(init=False)
    fill: int = field(init=False, default=0)

    def __post_init__(self) -> None:
        if not MIN_SAMPLES / SAMPLE_RATE <= self.window_s <= 10.0:
            raise ValueError(f"window_s must be in [0.25, 10], got {self.window_s}")
        self.cap = round(self.window_s * SAMPLE_RATE / HOP) * HOP
        self.buf = np.zeros(self.cap if self.keep_audio else 0, np.int16)

    def push(self, pcm: np.ndarray, speech: np.ndarray) -> list[np.ndarray]:
        """Add whole hops (`pcm` int16[h * HOP], `speech` bool[h]); return full windows."""
        if pcm.dtype != np.int16 or pcm.ndim != 1 or pcm.shape[0] != speech.shape[0] * HOP:
            raise ValueError("need int16 samples of whole hops and one speech flag per hop")
        return self.push_hops(pcm.reshape(-1, HOP)[np.asarray(speech, bool)])

    def push_hops(self, hops: np.ndarray) -> list[np.ndarray]:
        """Add speech hops (int16 (h, HOP), all kept); return full windows."""
        if hops.dtype != np.int16 or hops.ndim != 2 or hops.shape[1] != HOP:
            raise ValueError(f"need int16 hops of shape (h, {HOP})")
        if not self.keep_audio:
            raise ValueError("this window keeps no audio: count_hops")
        hops = hops.reshape(-1)
        full: list[np.ndarray] = []
        pos = 0
        cap = self.cap
        while pos < hops.shape[0]:
            take = min(cap - self.fill, hops.shape[0] - pos)
            self.buf[self.fill : self.fill + take] = hops[pos : pos + take]
            self.fill += take
            pos += take
            if self.fill == cap:
                full.append(self.buf.copy())
                self.fill = 0
        return full

    def count_hops(self, n: int) -> int:
        """`push_hops` without the audio (`keep_audio` off): n more speech hops; returns
        how many windows they completed."""
        if self.keep_audio:
            raise ValueError("this window keeps audio: push_hops")
        self.fill += n * HOP
        done, self.fill = divmod(self.fill, self.cap)
        return done

    def reset(self) -> None:
        self.buf.fill(0)
        self.fill = 0
