"""Window features: determinism, batching, gain invariance, pitch on known signals,
silence, input checks, and speech windows however the audio is chunked."""

from __future__ import annotations

import numpy as np
import pytest

from engine.affect import features as F
from engine.types import HOP

T = np.arange(32000) / 16000.0


def _voice(f0: float, amp: float = 4000.0, seed: int = 0) -> np.ndarray:
    """A harmonic tone with a syllable-like envelope and a little noise."""
    rng = np.random.default_rng(seed)
    s = sum(np.sin(2 * np.pi * f0 * h * T) / h for h in range(1, 10))
    env = 0.55 + 0.45 * np.sin(2 * np.pi * 4.0 * T)
    return np.clip(amp * s * env + rng.normal(0, 20, T.size), -32768, 32767).astype(np.int16)


def _feature(x: np.ndarray, name: str) -> float:
    return float(x[F.FEATURE_NAMES.index(name)])


def test_names_and_shape() -> None:
    assert len(set(F.FEATURE_NAMES)) == F.N_FEATURES
    out = F.window_features(_voice(150.0))
    assert out.shape == (F.N_FEATURES,) and out.dtype == np.float32
    assert np.all(np.isfinite(out))


@pytest.mark.parametrize("f0", [90.0, 150.0, 200.0, 240.0, 300.0, 400.0])
def test_pitch_of_harmonic_tone(f0: float) -> None:
    x = F.window_features(_voice(f0))
    want = 12.0 * np.log2(f0 / 27.5)
    assert abs(_feature(x, "f0_st_mean") - want) < 0.3
    assert _feature(x, "f0_st_std") < 0.3
    assert _feature(x, "voiced_fraction") > 0.95


def test_noise_is_unvoiced_and_tilts_flat() -> None:
    rng = np.random.default_rng(1)
    noise = rng.normal(0, 3000, T.size).astype(np.int16)
    x = F.window_features(noise)
    assert _feature(x, "voiced_fraction") < 0.1
    assert abs(_feature(x, "alpha_ratio_mean")) < 12.0  # 1-5 kHz holds ~4x the power of 50-1k
    assert _feature(x, "alpha_ratio_mean") < _feature(
        F.window_features(_voice(150.0)), "alpha_ratio_mean"
    )


def test_batch_rows_equal_single_windows() -> None:
    ws = [_voice(120.0 + 30 * i, seed=i)[: 32000 - 5000 * i] for i in range(6)]
    assert len(ws) > F.BATCH_WINDOWS  # crosses a batch boundary
    batch = F.batch_features(ws)
    for i, w in enumerate(ws):
        np.testing.assert_array_equal(batch[i], F.window_features(w))
    np.testing.assert_array_equal(F.batch_features(ws), batch)  # deterministic


def _spectra_one_call(windows: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """The reference: every frame of every window through one FFT call, as the spectra
    were computed before they ran in blocks."""
    counts = [F.n_frames(w.shape[0]) for w in windows]
    xs = [w.astype(np.float64) / 32768.0 for w in windows]
    frames = np.concatenate([F._frames(x, F.FRAME, c) for x, c in zip(xs, counts, strict=True)])
    spec = np.fft.rfft(frames * F._WIN, F.NFFT)
    power = spec.real**2 + spec.imag**2
    pf = np.concatenate([F._frames(x, F.PITCH_FRAME, c) for x, c in zip(xs, counts, strict=True)])
    pf = (pf - pf.mean(axis=1, keepdims=True)) * F._PWIN
    ps = np.fft.rfft(pf, F.PITCH_NFFT)
    r = np.fft.irfft(ps.real**2 + ps.imag**2, F.PITCH_NFFT)
    r0 = r[:, :1]
    acf = r[:, F.LAG_LO - 1 : F.LAG_HI + 2] / np.where(r0 > F._EPS, r0, np.inf)
    return power, acf / F._PWIN_ACF_NORM


def test_blocked_spectra_equal_one_fft_call() -> None:
    ws = [_voice(110.0 + 25 * i, seed=i)[: 32000 - 3130 * i] for i in range(4)]
    ws.append(np.zeros(F.MIN_SAMPLES, np.int16))
    power, acf, counts = F._spectra(ws)
    assert sum(counts) % F.FFT_BLOCK and sum(counts) > 3 * F.FFT_BLOCK  # a partial block
    want_power, want_acf = _spectra_one_call(ws)
    np.testing.assert_array_equal(power, want_power)
    np.testing.assert_array_equal(acf, want_acf)


@pytest.mark.parametrize("seed", range(4))
def test_p10_p90_is_numpys_percentile(seed: int) -> None:
    rng = np.random.default_rng(seed)
    for n in range(1, 260):
        x = rng.normal(-30.0, 10.0 ** rng.uniform(-3, 2), n)
        if n % 3 == 0:
            x = np.round(x, 1)  # ties
        assert F._p10_p90(x) == tuple(np.percentile(x, (10.0, 90.0)))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_mean_std_is_numpys_mean_and_std(seed: int) -> None:
    """Bit for bit, at every size a window's functionals see (1 to a few hundred frames),
    on contiguous and strided arrays and on wide ranges of values."""
    rng = np.random.default_rng(seed)
    for n in [*range(1, 40), 99, 100, 127, 128, 129, 257, 1000]:
        for x in (
            rng.standard_normal(n) * 10.0 ** rng.uniform(-6, 6),
            rng.uniform(-70, 0, 2 * n)[::2],
            np.full(n, 3.1),
        ):
            mean, sd = F._mean_std(x)
            assert mean == float(x.mean())
            assert sd == (float(np.std(x)) if n > 1 else 0.0)
            assert F._std(x) == sd


def test_gain_invariant() -> None:
    x = _voice(180.0, amp=8000.0)
    quiet = (x.astype(np.float64) * 0.25).round().astype(np.int16)
    np.testing.assert_allclose(F.window_features(quiet), F.window_features(x), atol=0.2)


def test_silence_gives_zeros() -> None:
    np.testing.assert_array_equal(F.window_features(np.zeros(16000, np.int16)), 0.0)


def test_rejects_bad_input() -> None:
    with pytest.raises(ValueError):
        F.window_features(np.zeros(100, np.int16))
    with pytest.raises(ValueError):
        F.window_features(np.zeros(16000, np.float32))


def test_speech_window_is_chunking_invariant() -> None:
    rng = np.random.default_rng(5)
    hops = 700
    pcm = rng.integers(-3000, 3000, hops * HOP).astype(np.int16)
    speech = rng.random(hops) < 0.7
    whole = F.SpeechWindow(window_s=2.0).push(pcm, speech)
    assert len(whole) == int(speech.sum()) // 200
    np.testing.assert_array_equal(whole[0], pcm.reshape(-1, HOP)[speech][:200].reshape(-1))
    w = F.SpeechWindow(window_s=2.0)
    pieces: list[np.ndarray] = []
    a = 0
    while a < hops:
        b = min(hops, a + int(rng.integers(1, 60)))
        pieces += w.push(pcm[a * HOP : b * HOP], speech[a:b])
        a = b
    assert len(pieces) == len(whole)
    for p, q in zip(pieces, whole, strict=True):
        np.testing.assert_array_equal(p, q)
    w.reset()
    assert w.fill == 0
    with pytest.raises(ValueError):
        w.push(pcm[: HOP * 3], speech[:2])
