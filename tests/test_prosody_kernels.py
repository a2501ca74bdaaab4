"""Every prosody kernel against a plain-numpy/Python reference written here from the
kernels' documented behaviour, on real-like inputs and on the edge cases (silence,
clipping, zeros)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from engine.affect import kernels as k
from engine.affect.prosody import _BINS, _WINDOW, _WINDOW_ACF, _WINDOW_POWER, ProsodyConfig

FS = 16_000


def voice(n: int, f0: float, seed: int, noise: float = 0.05, clip: float = 1.0) -> np.ndarray:
    """A glottal-like pulse train through a resonance, with slow F0 drift and noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(n) / FS
    f = f0 * (1.0 + 0.05 * np.sin(2 * np.pi * 3 * t))
    phase = np.cumsum(f) / FS
    x = np.zeros(n)
    for h in range(1, 12):
        x += np.sin(2 * np.pi * h * phase) / h
    x = 0.3 * x / np.abs(x).max() + noise * rng.standard_normal(n) * 0.3
    return np.clip(x, -clip, clip)


def frames_of(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    n = (x.shape[0] - k.FRAME) // 160 + 1
    f = np.stack([x[i * 160 : i * 160 + k.FRAME] for i in range(n)])
    f = (f - f.mean(axis=1, keepdims=True)) * _WINDOW
    spec = np.fft.rfft(f, k.NFFT, axis=1)
    power = np.abs(spec) ** 2
    acf = np.fft.irfft(power, k.NFFT, axis=1)[:, :300].copy()
    return power, acf


# ---------------------------------------------------------------------------
# pitch_kernel


def ref_pitch(
    acf: np.ndarray, level: np.ndarray, speech: np.ndarray, cfg: ProsodyConfig
) -> tuple[np.ndarray, np.ndarray]:
    lo, hi = cfg.lag_lo, cfg.lag_hi
    f0 = np.zeros(acf.shape[0])
    rr = np.zeros(acf.shape[0])
    prev = 0.0
    for i in range(acf.shape[0]):
        if not speech[i] or level[i] < cfg.silence_db or acf[i, 0] <= 0:
            prev = 0.0
            continue
        r = acf[i, : hi + 2] / acf[i, 0] / _WINDOW_ACF[: hi + 2]
        taus = np.arange(lo, hi + 1)
        rm, rc, rp = r[taus - 1], r[taus], r[taus + 1]
        peak = (rc > rm) & (rc >= rp) & (rc >= cfg.voicing_threshold)
        den = rm - 2 * rc + rp
        delta = np.where(den < 0, 0.5 * (rm - rp) / np.where(den < 0, den, -1.0), 0.0)
        rpk = rc - 0.25 * (rm - rp) * delta
        rpk = np.where(rpk > 1.0, 1.0 / rpk, rpk)
        lag = taus + delta
        f = FS / lag
        with np.errstate(invalid="ignore"):  # lags off the peaks may be nonsense: unused
            strength = rpk + cfg.octave_cost * np.log2(hi / lag)
            if prev > 0:
                strength = strength - cfg.jump_cost * np.abs(np.log2(f / prev))
        if peak.any():
            j = int(np.argmax(np.where(peak, strength, -np.inf)))
            f0[i], rr[i] = f[j], rpk[j]
        prev = f0[i]
    return f0, rr


def params_of(cfg: ProsodyConfig) -> np.ndarray:
    p = np.zeros(k.PITCH_PARAMS_SIZE)
    p[k.P_LAG_LO], p[k.P_LAG_HI] = cfg.lag_lo, cfg.lag_hi
    p[k.P_VOICING], p[k.P_OCTAVE_COST] = cfg.voicing_threshold, cfg.octave_cost
    p[k.P_JUMP_COST], p[k.P_SILENCE_DB] = cfg.jump_cost, cfg.silence_db
    return p


@pytest.mark.parametrize("f0", [70.0, 120.0, 230.0, 420.0])
def test_pitch_kernel_matches_reference_and_truth(f0: float) -> None:
    x = np.concatenate((voice(8000, f0, 1), np.zeros(3000), voice(8000, f0 * 1.2, 2, 0.3)))
    _, acf = frames_of(x)
    level = np.full(acf.shape[0], -30.0)
    speech = np.ones(acf.shape[0], np.uint8)
    speech[5:8] = 0
    cfg = ProsodyConfig()
    f0_out, r_out = np.empty(acf.shape[0]), np.empty(acf.shape[0])
    state = np.zeros(k.PITCH_STATE_SIZE)
    k.pitch_kernel(acf, _WINDOW_ACF, level, speech, params_of(cfg), state, f0_out, r_out)
    f_ref, r_ref = ref_pitch(acf, level, speech, cfg)
    assert_allclose(f0_out, f_ref, rtol=1e-12)
    assert_allclose(r_out, r_ref, rtol=1e-12)
    assert_array_equal(f0_out[5:8], 0.0)
    # the clean first stretch is voiced and within 2 % of the true F0 at each frame centre
    centre = (np.arange(10, 40) * 160 + k.FRAME / 2) / FS
    truth = f0 * (1.0 + 0.05 * np.sin(2 * np.pi * 3 * centre))
    clean = f0_out[10:40]
    assert (clean > 0).all()
    assert np.all(np.abs(clean / truth - 1) < 0.02)


def test_pitch_kernel_silence_and_zeros() -> None:
    acf = np.zeros((5, 300))
    out_f, out_r = np.full(5, 9.0), np.full(5, 9.0)
    state = np.array([100.0])
    level = np.full(5, -120.0)
    k.pitch_kernel(
        acf,
        _WINDOW_ACF,
        level,
        np.ones(5, np.uint8),
        params_of(ProsodyConfig()),
        state,
        out_f,
        out_r,
    )
    assert_array_equal(out_f, 0.0)
    assert_array_equal(out_r, 0.0)
    assert state[0] == 0.0


# ---------------------------------------------------------------------------
# spectral_kernel


def ref_spectral(power: np.ndarray) -> tuple[np.ndarray, ...]:
    b50, b1k, b2k, b5k, b8k = (int(b) for b in _BINS)
    full = power[:, 0] + power[:, -1] + 2 * power[:, 1:-1].sum(axis=1)
    level = 10 * np.log10(full / k.NFFT / _WINDOW_POWER + 1e-12)
    alpha = 10 * np.log10((power[:, b1k:b5k].sum(1) + 1e-12) / (power[:, b50:b1k].sum(1) + 1e-12))
    hamm = 10 * np.log10((power[:, :b2k].max(1) + 1e-12) / (power[:, b2k:b5k].max(1) + 1e-12))
    mag = np.sqrt(power[:, :b8k])
    s = mag.sum(axis=1, keepdims=True)
    norm = np.where(s > 0, mag / np.where(s > 0, s, 1), 0.0)
    flux = np.zeros(power.shape[0])
    flux[1:] = ((norm[1:] - norm[:-1]) ** 2).sum(axis=1)
    return level, alpha, hamm, flux


def test_spectral_kernel_matches_reference() -> None:
    x = np.concatenate((voice(6000, 150, 3), np.zeros(2000), voice(6000, 180, 4, clip=0.1)))
    power, _ = frames_of(x)
    n = power.shape[0]
    outs = [np.empty(n) for _ in range(4)]
    state = np.zeros(k.SPECTRAL_STATE_SIZE)
    k.spectral_kernel(power, np.arange(n), _WINDOW_POWER, _BINS, state, *outs)
    for got, want in zip(outs, ref_spectral(power), strict=True):
        assert_allclose(got, want, rtol=1e-9, atol=1e-12)
    # a full-scale sine reads -3 dBFS (RMS): the level is calibrated
    t = np.arange(k.FRAME) / FS
    p1, _ = frames_of(np.sin(2 * np.pi * 1000.3 * t))
    lvl = np.empty(1)
    k.spectral_kernel(
        p1, np.arange(1), _WINDOW_POWER, _BINS, np.zeros(k.SPECTRAL_STATE_SIZE), lvl, *outs[1:]
    )
    assert abs(lvl[0] + 3.01) < 0.3
    assert all(np.isfinite(o).all() for o in outs)


def test_frame_rows_kernel_frames_speech_and_levels_the_rest() -> None:
    """Frames kept on speech hops and the hop before each, exactly as frames_kernel makes
    them; on the other hops the time-domain level: the numpy formula, and the spectral
    kernel's level up to rounding (Parseval), including silence's -120 floor."""
    x = np.concatenate((voice(6000, 150, 3), np.zeros(2000), voice(6000, 180, 4, clip=0.1)))
    n = (x.shape[0] - k.FRAME) // 160 + 1
    f = np.stack([x[i * 160 : i * 160 + k.FRAME] for i in range(n)])
    f = (f - f.mean(axis=1, keepdims=True)) * _WINDOW
    speech = np.random.default_rng(4).random(n) < 0.3
    speech[-1] = True
    keep = speech.copy()
    keep[:-1] |= speech[1:]
    frames, rows, sel = np.empty((n, k.FRAME)), np.empty(n, np.int64), np.empty(n, bool)
    got = np.full(n, np.nan)
    m = k.frame_rows_kernel(x, 0, 160, _WINDOW, speech, _WINDOW_POWER, 7, frames, rows, sel, got)
    assert m == keep.sum() and rows[:m].tolist() == (7 + np.flatnonzero(keep)).tolist()
    assert sel[:m].tolist() == speech[keep].tolist()
    assert_allclose(frames[:m], f[keep], rtol=1e-12, atol=1e-15)
    ref = np.empty((n, k.FRAME))
    k.frames_kernel(x, 0, 160, _WINDOW, ref)
    assert (frames[:m] == ref[keep]).all()  # bit for bit: both paths give the same spectra
    assert np.isnan(got[keep]).all()  # kept hops' level comes from their spectrum
    want = 10 * np.log10((f * f).sum(axis=1) / _WINDOW_POWER + 1e-12)
    assert_allclose(got[~keep], want[~keep], rtol=1e-12)
    k.frame_rows_kernel(
        x, 0, 160, _WINDOW, np.zeros(n, bool), _WINDOW_POWER, 0, frames, rows, sel, got
    )
    assert_allclose(got, want, rtol=1e-12)
    power, _ = frames_of(x)
    spectral = [np.empty(n) for _ in range(4)]
    k.spectral_kernel(
        power, np.arange(n), _WINDOW_POWER, _BINS, np.zeros(k.SPECTRAL_STATE_SIZE), *spectral
    )
    assert_allclose(got, spectral[0], rtol=0, atol=1e-11)  # dB: rounding only
    assert (got == -120.0).any() and (got[got == -120.0] == spectral[0][got == -120.0]).all()


# ---------------------------------------------------------------------------
# pulse_kernel


def ref_pulses(x: np.ndarray, base: int, hop_end: np.ndarray, period: np.ndarray) -> np.ndarray:
    """Plain-Python restatement of the pulse tracker from its docstring."""
    out = np.zeros((len(hop_end), k.PULSE_OUT_SIZE))
    last, last_t, last_amp, pol = -1.0, 0.0, 0.0, 1.0

    def peak(lo: int, hi: int) -> tuple[float, float]:
        """Absolute position and amplitude of the largest pol * x in [lo, hi]."""
        seg = pol * x[lo : hi + 1]
        j = int(np.argmax(seg))
        kk = lo + j
        d, amp = 0.0, float(seg[j])
        if lo < kk < hi:
            a, c = pol * x[kk - 1], pol * x[kk + 1]
            den = a - 2 * amp + c
            if den < 0:
                d = 0.5 * (a - c) / den
                amp = amp - 0.25 * (a - c) * d
        return float(kk + base) + d, amp

    for i, (e, t0) in enumerate(zip(hop_end, period, strict=True)):
        if t0 <= 0:
            last = -1.0
            continue
        end = int(e) - base
        limit = int(e) - k.FRAME // 2 + 80
        if last < 0:
            lo, hi = int(limit - t0) - base, limit - 1 - base
            j = lo + int(np.argmax(np.abs(x[lo : hi + 1])))
            pol = 1.0 if x[j] >= 0 else -1.0
            last, last_amp = peak(lo, hi)
            last_t = 0.0
            continue
        while last + 0.8 * t0 < limit:
            lo = math.ceil(last + 0.8 * t0) - base
            hi = min(int(last + 1.25 * t0) - base, end - 2)
            if hi < lo:
                break
            pos, amp = peak(lo, hi)
            t = pos - last
            if last_t > 0 and t <= 1.3 * last_t and last_t <= 1.3 * t:
                out[i, k.O_NPAIRS] += 1
                out[i, k.O_SUM_DT] += abs(t - last_t)
            out[i, k.O_NPER] += 1
            out[i, k.O_SUM_T] += t
            if last_amp > 0 and amp > 0 and amp <= 1.6 * last_amp and last_amp <= 1.6 * amp:
                out[i, k.O_NAMP] += 1
                out[i, k.O_SUM_DB] += abs(20 * math.log10(amp / last_amp))
            last, last_t, last_amp = pos, t, amp
    return out


def test_pulse_kernel_matches_reference_and_known_jitter() -> None:
    # impulses with alternating periods 100 / 104 samples: jitter = 4 / 102
    rng = np.random.default_rng(5)
    x = np.zeros(20_000)
    pos, alt = 1500, 0
    amps = []
    while pos < 18_000:
        a = 0.5 if alt == 0 else 0.45
        x[pos] = a
        amps.append(a)
        pos += 100 + 4 * alt
        alt ^= 1
    x += 0.001 * rng.standard_normal(x.shape[0])
    base = -1024
    xb = np.concatenate((np.zeros(1024), x))
    n = x.shape[0] // 160
    hop_end = (np.arange(n, dtype=np.int64) + 1) * 160
    period = np.full(n, 102.0)
    period[:12] = 0.0
    period[60:63] = 0.0  # one unvoiced gap ends the chain
    period[111:] = 0.0  # the impulses stop at sample 18000
    out = np.empty((n, k.PULSE_OUT_SIZE))
    state = np.array([-1.0, 0.0, 0.0, 1.0])
    params = np.array([1.3, 1.6])
    k.pulse_kernel(xb, base, hop_end, period, params, state, out)
    assert_allclose(out, ref_pulses(xb, base, hop_end, period), rtol=1e-12, atol=1e-12)
    tot = out.sum(axis=0)
    jitter = (tot[k.O_SUM_DT] / tot[k.O_NPAIRS]) / (tot[k.O_SUM_T] / tot[k.O_NPER])
    assert abs(jitter - 4 / 102) < 0.002
    shimmer = tot[k.O_SUM_DB] / tot[k.O_NAMP]
    assert abs(shimmer - 20 * math.log10(0.5 / 0.45)) < 0.05
    assert tot[k.O_NPER] > 100


# ---------------------------------------------------------------------------
# nuclei_kernel


def ref_nuclei(level: np.ndarray, voiced: np.ndarray, speech: np.ndarray, p: np.ndarray) -> list:
    dip, rng, decay = p
    mode, cand, cand_ok, valley, ref = 0, -1e300, False, -1e300, -1e300
    out = []
    for v, vo, sp in zip(level.tolist(), voiced.tolist(), speech.tolist(), strict=True):
        hit = 0
        ref -= decay
        if sp and v > ref:
            ref = v
        if mode == 0:
            if v > cand:
                cand, cand_ok = v, bool(vo and sp)
            elif v <= cand - dip:
                hit = int(cand_ok and cand >= ref - rng and cand - valley >= dip)
                mode, valley = 1, v
        elif v < valley:
            valley = v
        elif v >= valley + dip:
            mode, cand, cand_ok = 0, v, bool(vo and sp)
        out.append(hit)
    return out


def test_nuclei_kernel_matches_reference_and_counts_syllables() -> None:
    # eight syllable-like bumps of 6 dB at 4/s (peaks at hops 6, 31, ..., 181)
    t = np.arange(200)
    level = -40 + 6 * np.maximum(0, np.sin(2 * np.pi * 4 * t / 100)) ** 2
    level[150:] -= 40  # quiet tail: outside the range of recent speech
    voiced = np.ones(200, np.uint8)
    voiced[50:62] = 0  # the bump at hop 56 is unvoiced
    speech = np.ones(200, np.uint8)
    rng = np.random.default_rng(0)
    level = level + 0.05 * rng.standard_normal(200)
    params = np.array([2.0, 25.0, 0.02])
    out = np.empty(200, np.uint8)
    state = k.nuclei_initial_state()
    k.nuclei_kernel(level, voiced, speech, params, state, out)
    assert out.tolist() == ref_nuclei(level, voiced, speech, params)
    # counted: 6, 31, 81, 106, 131; not 56 (unvoiced), 156 and 181 (40 dB down: too quiet)
    assert np.flatnonzero(out).size == 5
    assert out[:50].sum() == 2 and out[50:62].sum() == 0 and out[150:].sum() == 0


def test_frames_kernel() -> None:
    x = np.random.default_rng(2).standard_normal(3000)
    out = np.empty((5, k.FRAME))
    k.frames_kernel(x, 100, 160, _WINDOW, out)
    want = np.stack([x[100 + i * 160 : 100 + i * 160 + k.FRAME] for i in range(5)])
    want = (want - want.mean(axis=1, keepdims=True)) * _WINDOW
    assert_allclose(out, want, rtol=1e-12, atol=1e-15)


def test_assemble_kernel() -> None:
    rng = np.random.default_rng(3)
    n = 40
    f0 = np.where(rng.random(n) < 0.6, rng.uniform(80, 300, n), 0.0)
    r = np.concatenate((rng.uniform(0.45, 1.0, n - 2), [1.0, 0.0]))
    level, alpha, hamm, flux = (rng.standard_normal(n) for _ in range(4))
    pulses = np.abs(rng.standard_normal((n, k.PULSE_OUT_SIZE)))
    pulses[rng.random(n) < 0.3, k.O_NPAIRS] = 0.0
    pulses[rng.random(n) < 0.3, k.O_NAMP] = 0.0
    speech = (rng.random(n) < 0.8).astype(np.uint8)
    f0[speech == 0] = 0.0
    out = np.empty((n, k.N_FEATURES))
    sums = np.zeros((k.N_SUMS, 3))
    k.assemble_kernel(f0, r, level, alpha, hamm, flux, pulses, speech, out, sums)

    sp, vo = speech.astype(bool), f0 > 0
    rc = np.clip(r, 1e-6, 0.999)
    with np.errstate(divide="ignore", invalid="ignore"):
        want = np.full((n, k.N_FEATURES), np.nan)
        want[vo, k.F_F0] = 12 * np.log2(f0[vo] / 27.5)
        want[vo, k.F_HNR] = 10 * np.log10(rc[vo] / (1 - rc[vo]))
        want[sp, k.F_LOUD], want[sp, k.F_ALPHA] = level[sp], alpha[sp]
        want[sp, k.F_HAMM], want[sp, k.F_FLUX] = hamm[sp], flux[sp]
        jit = pulses[:, k.O_SUM_DT] / pulses[:, k.O_NPAIRS]
        jit /= pulses[:, k.O_SUM_T] / pulses[:, k.O_NPER]
        ok = sp & (pulses[:, k.O_NPAIRS] > 0)
        want[ok, k.F_JITTER] = jit[ok]
        ok = sp & (pulses[:, k.O_NAMP] > 0)
        want[ok, k.F_SHIMMER] = (pulses[:, k.O_SUM_DB] / pulses[:, k.O_NAMP])[ok]
    assert_allclose(out, want, rtol=1e-12)
    assert np.isfinite(out[:, k.F_HNR][vo]).all()  # r = 1 and r = 0 are clipped
    assert_allclose(sums[: k.N_FEATURES, 0], (~np.isnan(want)).sum(axis=0))
    assert_allclose(sums[: k.N_FEATURES, 1], np.nansum(want, axis=0), rtol=1e-12)
    assert_allclose(sums[: k.N_FEATURES, 2], np.nansum(want**2, axis=0), rtol=1e-12)
    assert_allclose(sums[k.N_FEATURES :, 1], pulses[sp].sum(axis=0), rtol=1e-12)


def ref_follow(values: np.ndarray, median: float, scale: float, rate: float, floor: float):
    for v in values[~np.isnan(values)].tolist():
        step = rate * max(scale, 1e-9)
        median += step * np.sign(v - median)
        scale += step if abs(v - median) > scale / 1.4826 else -step
        scale = max(scale, floor)
    return median, scale


def test_baseline_follow_kernel() -> None:
    v = np.random.default_rng(4).standard_normal(500) * 3 + 10
    v[::7] = np.nan
    stats = np.array([8.0, 1.0])
    used = k.baseline_follow_kernel(v, stats, 0.01, 0.2)
    assert used == int((~np.isnan(v)).sum())
    assert_allclose(stats, ref_follow(v, 8.0, 1.0, 0.01, 0.2), rtol=1e-12)
    stats = np.array([0.0, 0.0])
    k.baseline_follow_kernel(np.zeros(10), stats, 0.01, 0.5)
    assert stats.tolist() == [0.0, 0.5]  # the floor holds on a constant input
