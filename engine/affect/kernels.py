"""Numba kernels for prosody: pure functions over arrays the caller preallocates.

One row is one 10 ms hop; its analysis frame is the FRAME samples that end with the
hop (45 ms, three periods at 67 Hz), so a stream needs no look-ahead and the frame
centre lags the hop end by 22.5 ms. The wrapper (engine/affect/prosody.py) computes
the power spectra and autocorrelations with numpy's FFT over all streams' frames, in
blocks, only on the hops the kernels read them on; these kernels then run per stream,
in hop order, carrying state.

Definitions follow eGeMAPS (Eyben et al., 2016) and Praat (Boersma 1993) where they
give one. Each kernel has a plain-numpy reference in tests/test_prosody_kernels.py;
the fused ones (stream_frames_kernel, advance_kernel) are compared bit for bit with the
kernels and numpy steps they replace in tests/test_prosody_fused.py.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

FS = 16_000
FRAME = 720
"""Analysis frame in samples (45 ms)."""
NFFT = 1024
"""FFT size: autocorrelation lags below NFFT - FRAME (304 > 267 = 60 Hz) do not wrap."""
N_BINS = NFFT // 2 + 1
F0_REF_HZ = 27.5
"""eGeMAPS reports F0 in semitones re 27.5 Hz (A0)."""

# ---------------------------------------------------------------------------
# Pitch: normalised autocorrelation (Boersma 1993) with octave and continuity costs.

P_LAG_LO, P_LAG_HI, P_VOICING, P_OCTAVE_COST, P_JUMP_COST, P_SILENCE_DB = range(6)
PITCH_PARAMS_SIZE = 6
PITCH_STATE_SIZE = 1  # previous hop's F0 in Hz, 0 if unvoiced


@njit(cache=True, nogil=True)
def pitch_kernel(
    acf: np.ndarray,  # float64 (n, >= lag_hi + 2): autocorrelation of the windowed frames
    window_acf: np.ndarray,  # float64 (>= lag_hi + 2): the window's autocorrelation, [0] = 1
    level_db: np.ndarray,  # float64 (n): frame level, dBFS
    speech: np.ndarray,  # uint8 (n): VAD speech mask
    params: np.ndarray,  # float64 (PITCH_PARAMS_SIZE,)
    state: np.ndarray,  # float64 (PITCH_STATE_SIZE,), updated in place
    out_f0: np.ndarray,  # float64 (n): F0 in Hz, 0 when unvoiced
    out_r: np.ndarray,  # float64 (n): normalised autocorrelation at the chosen lag, 0 unvoiced
) -> None:
    """Per hop, the best autocorrelation peak by Praat's strength rule, chosen causally.

    Candidates are local maxima of r(tau) = acf(tau) / acf(0) / w(tau), refined by a
    parabola, with r >= the voicing threshold. Strength = r + octave_cost *
    log2(lag_hi / lag) (prefer the higher octave: guards against sub-harmonics) minus
    jump_cost * |log2(f / previous f)| when the previous hop was voiced (guards against
    octave jumps: Praat's transition cost, applied greedily so the choice never waits).
    """
    lag_lo = int(params[P_LAG_LO])
    lag_hi = int(params[P_LAG_HI])
    voicing = params[P_VOICING]
    octave_cost = params[P_OCTAVE_COST]
    jump_cost = params[P_JUMP_COST]
    silence_db = params[P_SILENCE_DB]
    prev = state[0]
    for i in range(acf.shape[0]):
        out_f0[i] = 0.0
        out_r[i] = 0.0
        r0 = acf[i, 0]
        if speech[i] == 0 or level_db[i] < silence_db or r0 <= 0.0:
            prev = 0.0
            continue
        best = -1e300
        best_f = 0.0
        best_r = 0.0
        rm = acf[i, lag_lo - 1] / r0 / window_acf[lag_lo - 1]
        rc = acf[i, lag_lo] / r0 / window_acf[lag_lo]
        for tau in range(lag_lo, lag_hi + 1):
            rp = acf[i, tau + 1] / r0 / window_acf[tau + 1]
            if rc > rm and rc >= rp and rc >= voicing:
                den = rm - 2.0 * rc + rp
                delta = 0.0
                if den < 0.0:
                    delta = 0.5 * (rm - rp) / den
                rpk = rc - 0.25 * (rm - rp) * delta
                if rpk > 1.0:
                    rpk = 1.0 / rpk
                lag = tau + delta
                f = FS / lag
                strength = rpk + octave_cost * math.log2(lag_hi / lag)
                if prev > 0.0:
                    strength -= jump_cost * abs(math.log2(f / prev))
                if strength > best:
                    best = strength
                    best_f = f
                    best_r = rpk
            rm = rc
            rc = rp
        out_f0[i] = best_f
        out_r[i] = best_r
        prev = best_f
    state[0] = prev


# ---------------------------------------------------------------------------
# Spectral shape: level, alpha ratio, Hammarberg index, spectral flux.

S_HAS_PREV = 0
"""Spectral state: [has_prev, previous normalised magnitude spectrum (N_BINS)]."""
SPECTRAL_STATE_SIZE = 1 + N_BINS


@njit(cache=True, nogil=True)
def spectral_kernel(
    power: np.ndarray,  # float64 (m, N_BINS): |rfft(window * frame / 32768, NFFT)|^2
    rows: np.ndarray,  # int64 (m): the output index of each power row, in hop order
    window_power: float,  # sum of window^2: turns spectral energy into mean square
    bins: np.ndarray,  # int64 (5,): bin of 50 Hz, 1 kHz, 2 kHz, 5 kHz, 8 kHz (exclusive)
    state: np.ndarray,  # float64 (SPECTRAL_STATE_SIZE,), updated in place
    out_level_db: np.ndarray,  # float64 (n): frame RMS level, dBFS (floor -120)
    out_alpha_db: np.ndarray,  # float64 (n): 10 log10(E[1-5 kHz] / E[50 Hz-1 kHz])
    out_hammarberg_db: np.ndarray,  # float64 (n): 10 log10(max P[0-2 kHz] / max P[2-5 kHz])
    out_flux: np.ndarray,  # float64 (n): squared L2 change of the normalised magnitude spectrum
) -> None:
    """Spectral tilt and change per hop, as eGeMAPS defines them (energies, not magnitudes).

    Level comes from the spectrum by Parseval, so it costs one pass. Flux compares each
    frame's magnitude spectrum, normalised to sum 1 (level-independent), with the
    previous row's; the first row of a stream has flux 0. Rows may skip hops (outputs
    at indices not in `rows` are left alone): the wrapper computes spectra only on and
    just before speech hops, so a speech hop's flux is always against its previous hop.
    """
    b50, b1k, b2k, b5k, b8k = bins[0], bins[1], bins[2], bins[3], bins[4]
    tiny = 1e-12
    nb = power.shape[1]
    mag = np.empty(b8k)
    for i in range(power.shape[0]):
        o = rows[i]
        total = power[i, 0] + power[i, nb - 1]
        for k in range(1, nb - 1):
            total += 2.0 * power[i, k]
        ms = total / NFFT / window_power
        out_level_db[o] = 10.0 * math.log10(ms + 1e-12)
        low = 0.0
        for k in range(b50, b1k):
            low += power[i, k]
        high = 0.0
        for k in range(b1k, b5k):
            high += power[i, k]
        out_alpha_db[o] = 10.0 * math.log10((high + tiny) / (low + tiny))
        pk_low = 0.0
        for k in range(0, b2k):
            pk_low = max(pk_low, power[i, k])
        pk_high = 0.0
        for k in range(b2k, b5k):
            pk_high = max(pk_high, power[i, k])
        out_hammarberg_db[o] = 10.0 * math.log10((pk_low + tiny) / (pk_high + tiny))
        for k in range(b8k):  # each square root once (a separate loop: vectorised)
            mag[k] = math.sqrt(power[i, k])
        mag_sum = 0.0
        for k in range(b8k):
            mag_sum += mag[k]
        flux = 0.0
        for k in range(b8k):
            m = mag[k] / mag_sum if mag_sum > 0.0 else 0.0
            d = m - state[1 + k]
            flux += d * d
            state[1 + k] = m
        out_flux[o] = flux if state[S_HAS_PREV] > 0.0 else 0.0
        state[S_HAS_PREV] = 1.0


# ---------------------------------------------------------------------------
# Glottal pulses -> local jitter and local shimmer (Praat's definitions).

Q_LAST_POS, Q_LAST_T, Q_LAST_AMP, Q_POLARITY = range(4)
PULSE_STATE_SIZE = 4  # last pulse (absolute sample, -1 none), last period, last amplitude
PU_MAX_PERIOD_FACTOR, PU_MAX_AMP_FACTOR = range(2)
PULSE_PARAMS_SIZE = 2
# Per-hop sums: pairs of periods, sum |T_i - T_i-1|, periods, sum T, amplitude pairs,
# sum |20 log10(A_i / A_i-1)|.
O_NPAIRS, O_SUM_DT, O_NPER, O_SUM_T, O_NAMP, O_SUM_DB = range(6)
PULSE_OUT_SIZE = 6


@njit(cache=True, nogil=True)
def _peak(x: np.ndarray, lo: int, hi: int, pol: float) -> tuple[int, float, float]:
    """Largest pol * x in [lo, hi], refined by a parabola: (index, offset, amplitude).

    Index and offset apart, so callers form absolute positions as (index + base) + offset:
    the same float however the stream was chunked."""
    k = lo
    v = pol * x[lo]
    for j in range(lo + 1, hi + 1):
        if pol * x[j] > v:
            v = pol * x[j]
            k = j
    d = 0.0
    amp = v
    if lo < k < hi:
        a = pol * x[k - 1]
        c = pol * x[k + 1]
        den = a - 2.0 * v + c
        if den < 0.0:
            d = 0.5 * (a - c) / den
            amp = v - 0.25 * (a - c) * d
    return k, d, amp


@njit(cache=True, nogil=True)
def pulse_kernel(
    x: np.ndarray,  # float64: samples; x[0] is absolute sample `base`
    base: int,
    hop_end: np.ndarray,  # int64 (n): absolute end sample of each hop
    period: np.ndarray,  # float64 (n): F0 period in samples, 0 when unvoiced
    params: np.ndarray,  # float64 (PULSE_PARAMS_SIZE,)
    state: np.ndarray,  # float64 (PULSE_STATE_SIZE,), updated in place
    out: np.ndarray,  # float64 (n, PULSE_OUT_SIZE): per-hop sums, overwritten
) -> None:
    """Mark one waveform peak per period through voiced stretches; sum period and
    amplitude differences of consecutive periods.

    A hop owns the pulses whose search starts in the central 10 ms of its frame (the
    part its voicing decision describes). The next pulse is the largest sample of the
    onset's polarity within 0.8-1.25 periods of the last; an unvoiced hop ends the
    chain. As in Praat, a period pair counts for jitter only if the periods differ by
    at most `max_period_factor`, and an amplitude pair for shimmer only within
    `max_amp_factor`.
    """
    max_pf = params[PU_MAX_PERIOD_FACTOR]
    max_af = params[PU_MAX_AMP_FACTOR]
    last = state[Q_LAST_POS]
    last_t = state[Q_LAST_T]
    last_amp = state[Q_LAST_AMP]
    pol = state[Q_POLARITY]
    half = FRAME // 2
    for i in range(hop_end.shape[0]):
        for c in range(PULSE_OUT_SIZE):
            out[i, c] = 0.0
        t0 = period[i]
        if t0 <= 0.0:
            last = -1.0
            continue
        end = hop_end[i] - base  # exclusive, in x
        limit = hop_end[i] - half + 80  # absolute: centre of the frame + half a hop
        if last < 0.0:
            lo = int(limit - t0) - base
            hi = limit - 1 - base
            best = lo
            for j in range(lo + 1, hi + 1):
                if abs(x[j]) > abs(x[best]):
                    best = j
            pol = 1.0 if x[best] >= 0.0 else -1.0
            kk, d, amp = _peak(x, lo, hi, pol)
            last = float(kk + base) + d
            last_t = 0.0
            last_amp = amp
            continue
        while last + 0.8 * t0 < limit:
            lo = math.ceil(last + 0.8 * t0) - base
            hi = min(int(last + 1.25 * t0) - base, end - 2)
            if hi < lo:
                break
            kk, d, amp = _peak(x, lo, hi, pol)
            pos = float(kk + base) + d
            t = pos - last
            if last_t > 0.0 and t <= max_pf * last_t and last_t <= max_pf * t:
                out[i, O_NPAIRS] += 1.0
                out[i, O_SUM_DT] += abs(t - last_t)
            out[i, O_NPER] += 1.0
            out[i, O_SUM_T] += t
            ok_amp = last_amp > 0.0 and amp > 0.0
            if ok_amp and amp <= max_af * last_amp and last_amp <= max_af * amp:
                out[i, O_NAMP] += 1.0
                out[i, O_SUM_DB] += abs(20.0 * math.log10(amp / last_amp))
            last = pos
            last_t = t
            last_amp = amp
    state[Q_LAST_POS] = last
    state[Q_LAST_T] = last_t
    state[Q_LAST_AMP] = last_amp
    state[Q_POLARITY] = pol


# ---------------------------------------------------------------------------
# Syllable nuclei: voiced intensity peaks with dips either side (de Jong & Wempe 2009).

N_MODE, N_CAND, N_CAND_OK, N_VALLEY, N_LEVEL = range(5)
NUCLEI_STATE_SIZE = 5
NU_DIP_DB, NU_RANGE_DB, NU_DECAY_DB = range(3)
NUCLEI_PARAMS_SIZE = 3


@njit(cache=True, nogil=True)
def nuclei_kernel(
    level_db: np.ndarray,  # float64 (n): frame level, dBFS
    voiced: np.ndarray,  # uint8 (n)
    speech: np.ndarray,  # uint8 (n)
    params: np.ndarray,  # float64 (NUCLEI_PARAMS_SIZE,)
    state: np.ndarray,  # float64 (NUCLEI_STATE_SIZE,), updated in place
    out: np.ndarray,  # uint8 (n): 1 at the hop where a nucleus is confirmed
) -> None:
    """Count a nucleus at each intensity peak that is voiced, within `range_db` of the
    speaker's recent loudest speech, and stands `dip_db` above the valleys on both
    sides.

    Streaming form of de Jong & Wempe: a peak is confirmed when the level has fallen
    `dip_db` below it (so it is reported a few hops late, never revised). The
    reference level is the loudest speech hop so far, decaying `decay_db` per hop.
    """
    dip = params[NU_DIP_DB]
    rng = params[NU_RANGE_DB]
    decay = params[NU_DECAY_DB]
    mode = state[N_MODE]  # 0: climbing to a peak, 1: descending to a valley
    cand = state[N_CAND]
    cand_ok = state[N_CAND_OK]
    valley = state[N_VALLEY]
    ref = state[N_LEVEL]
    for i in range(level_db.shape[0]):
        out[i] = 0
        v = level_db[i]
        ref -= decay
        if speech[i] != 0 and v > ref:
            ref = v
        if mode == 0.0:
            if v > cand:
                cand = v
                cand_ok = 1.0 if (voiced[i] != 0 and speech[i] != 0) else 0.0
            elif v <= cand - dip:
                if cand_ok > 0.0 and cand >= ref - rng and cand - valley >= dip:
                    out[i] = 1
                mode = 1.0
                valley = v
        else:
            if v < valley:
                valley = v
            elif v >= valley + dip:
                mode = 0.0
                cand = v
                cand_ok = 1.0 if (voiced[i] != 0 and speech[i] != 0) else 0.0
    state[N_MODE] = mode
    state[N_CAND] = cand
    state[N_CAND_OK] = cand_ok
    state[N_VALLEY] = valley
    state[N_LEVEL] = ref


def nuclei_initial_state() -> np.ndarray:
    s = np.zeros(NUCLEI_STATE_SIZE)
    s[N_CAND] = -1e300
    s[N_VALLEY] = -1e300
    s[N_LEVEL] = -1e300
    return s


# ---------------------------------------------------------------------------
# Framing and per-hop feature assembly: the glue, in numba so a 20 ms push stays cheap.


@njit(cache=True, nogil=True)
def _mean4(seg: np.ndarray) -> float:
    """Mean with four partial sums (see frames_kernel)."""
    flen = seg.shape[0]
    a0 = a1 = a2 = a3 = 0.0
    j = 0
    while j + 4 <= flen:
        a0 += seg[j]
        a1 += seg[j + 1]
        a2 += seg[j + 2]
        a3 += seg[j + 3]
        j += 4
    while j < flen:
        a0 += seg[j]
        j += 1
    return ((a0 + a1) + (a2 + a3)) / flen


@njit(cache=True, nogil=True)
def frames_kernel(
    x: np.ndarray,  # float64: samples
    first: int,  # index in x of the first frame's first sample
    hop: int,
    window: np.ndarray,  # float64 (FRAME,)
    out: np.ndarray,  # float64 (n, FRAME): windowed frames with their mean removed
) -> None:
    # Four partial sums and 1-D row/segment views: the sum no longer waits on one
    # accumulator and the write loop vectorises (out[i, j] with x[s + j] did not),
    # 6-7x faster; the mean differs from a sequential sum by rounding only.
    flen = window.shape[0]
    for i in range(out.shape[0]):
        seg = x[first + i * hop : first + i * hop + flen]
        mean = _mean4(seg)
        row = out[i]
        for j in range(flen):
            row[j] = (seg[j] - mean) * window[j]


@njit(cache=True, nogil=True)
def frame_rows_kernel(
    x: np.ndarray,  # float64: samples
    first: int,  # index in x of the first hop's frame's first sample
    hop: int,
    window: np.ndarray,  # float64 (FRAME,)
    speech: np.ndarray,  # bool (n): the hops' speech mask
    window_power: float,  # sum of window^2
    base: int,  # the first hop's index in the caller's batch
    out_frames: np.ndarray,  # float64 (>= rows written, >= FRAME): frames of the hops
    # kept, zero-padded to the row's width (NFFT: the FFT then pads nothing itself)
    out_rows: np.ndarray,  # int64 (>= rows written): base + hop index of each kept frame
    out_speech: np.ndarray,  # bool (>= rows written): each kept frame's speech flag
    out_level_db: np.ndarray,  # float64 (n): level of the hops not kept, dBFS (floor -120)
) -> int:
    """Frame the hops whose spectrum a kernel reads (speech hops and the hop before
    each: the flux compares with it), as frames_kernel would; for the other hops only
    the level from time-domain energy, which by Parseval is spectral_kernel's level up
    to rounding (it steers the syllable-nucleus tracker). Returns the frames written.

    Why fused: most hops are not speech, and storing their frames only to sum their
    squares cost a pass over megabytes per tick and most of the framing time."""
    flen = window.shape[0]
    n = speech.shape[0]
    r = 0
    for i in range(n):
        seg = x[first + i * hop : first + i * hop + flen]
        mean = _mean4(seg)
        if speech[i] or (i + 1 < n and speech[i + 1]):
            row = out_frames[r]
            for j in range(flen):
                row[j] = (seg[j] - mean) * window[j]
            for j in range(flen, row.shape[0]):
                row[j] = 0.0
            out_rows[r] = base + i
            out_speech[r] = speech[i]
            r += 1
            continue
        e0 = e1 = e2 = e3 = 0.0
        j = 0
        while j + 4 <= flen:
            v0 = (seg[j] - mean) * window[j]
            v1 = (seg[j + 1] - mean) * window[j + 1]
            v2 = (seg[j + 2] - mean) * window[j + 2]
            v3 = (seg[j + 3] - mean) * window[j + 3]
            e0 += v0 * v0
            e1 += v1 * v1
            e2 += v2 * v2
            e3 += v3 * v3
            j += 4
        while j < flen:
            v0 = (seg[j] - mean) * window[j]
            e0 += v0 * v0
            j += 1
        e = (e0 + e1) + (e2 + e3)
        out_level_db[i] = 10.0 * math.log10(e / window_power + 1e-12)
    return r


@njit(cache=True, nogil=True)
def stream_frames_kernel(
    history: np.ndarray,  # float64 (H,): the stream's samples before the chunk
    pcm: np.ndarray,  # int16 (n * hop,): the chunk
    out_x: np.ndarray,  # float64 (H + n * hop,): history, then the chunk scaled to +-1
    first: int,
    hop: int,
    window: np.ndarray,
    speech: np.ndarray,
    window_power: float,
    base: int,
    out_frames: np.ndarray,
    out_rows: np.ndarray,
    out_speech: np.ndarray,
    out_level_db: np.ndarray,
) -> int:
    """One stream's samples laid out (history, then the chunk / 32768: exact, a power
    of two) and framed by frame_rows_kernel: one call per stream instead of four."""
    h = history.shape[0]
    for j in range(h):
        out_x[j] = history[j]
    scale = 1.0 / 32768.0
    for j in range(pcm.shape[0]):
        out_x[h + j] = pcm[j] * scale
    return frame_rows_kernel(
        out_x,
        first,
        hop,
        window,
        speech,
        window_power,
        base,
        out_frames,
        out_rows,
        out_speech,
        out_level_db,
    )


F_F0, F_LOUD, F_JITTER, F_SHIMMER, F_HNR, F_ALPHA, F_HAMM, F_FLUX = range(8)
N_FEATURES = 8
# Summary sums rows (count, sum, sum of squares):
# the 8 features, then the PULSE_OUT_SIZE pulse sums of speech hops.
N_SUMS = N_FEATURES + PULSE_OUT_SIZE


@njit(cache=True, nogil=True)
def assemble_kernel(
    f0: np.ndarray,  # float64 (n): Hz, 0 unvoiced
    r: np.ndarray,  # float64 (n): autocorrelation peak
    level_db: np.ndarray,
    alpha_db: np.ndarray,
    hammarberg_db: np.ndarray,
    flux: np.ndarray,
    pulses: np.ndarray,  # float64 (n, PULSE_OUT_SIZE)
    speech: np.ndarray,  # uint8 (n)
    out: np.ndarray,  # float64 (n, N_FEATURES): NaN where undefined
    sums: np.ndarray,  # float64 (N_SUMS, 3), updated in place
) -> None:
    """Per-hop features in their units, NaN off speech (and off voicing for F0 and HNR, off
    closed period pairs for jitter and shimmer), and their running sums in hop order."""
    nan = np.nan
    for i in range(f0.shape[0]):
        for c in range(N_FEATURES):
            out[i, c] = nan
        if speech[i] == 0:
            continue
        if f0[i] > 0.0:
            out[i, F_F0] = 12.0 * math.log2(f0[i] / F0_REF_HZ)
            rc = min(max(r[i], 1e-6), 0.999)
            out[i, F_HNR] = 10.0 * math.log10(rc / (1.0 - rc))
        out[i, F_LOUD] = level_db[i]
        out[i, F_ALPHA] = alpha_db[i]
        out[i, F_HAMM] = hammarberg_db[i]
        out[i, F_FLUX] = flux[i]
        if pulses[i, O_NPAIRS] > 0.0:
            mean_t = pulses[i, O_SUM_T] / pulses[i, O_NPER]
            out[i, F_JITTER] = pulses[i, O_SUM_DT] / pulses[i, O_NPAIRS] / mean_t
        if pulses[i, O_NAMP] > 0.0:
            out[i, F_SHIMMER] = pulses[i, O_SUM_DB] / pulses[i, O_NAMP]
        for c in range(N_FEATURES):
            v = out[i, c]
            if not math.isnan(v):
                sums[c, 0] += 1.0
                sums[c, 1] += v
                sums[c, 2] += v * v
        for c in range(PULSE_OUT_SIZE):
            v = pulses[i, c]
            sums[N_FEATURES + c, 0] += 1.0
            sums[N_FEATURES + c, 1] += v
            sums[N_FEATURES + c, 2] += v * v


# ---------------------------------------------------------------------------
# Slow baseline tracking (engine/affect/baseline.py), after the learning period.

MAD_TO_SD = 1.4826


@njit(cache=True, nogil=True)
def baseline_follow_kernel(
    values: np.ndarray,  # float64 (n,): one feature's values in hop order, NaN skipped
    stats: np.ndarray,  # float64 (2,): median, scale (MAD * 1.4826); updated in place
    rate: float,  # step per value, in units of the scale
    floor: float,  # smallest scale
) -> int:
    """Stochastic median and MAD steps: each value moves the median by rate * scale toward
    itself, and the scale by rate * scale toward covering half the absolute deviations.
    Returns the number of values used."""
    median = stats[0]
    scale = stats[1]
    used = 0
    for i in range(values.shape[0]):
        v = values[i]
        if math.isnan(v):
            continue
        used += 1
        step = rate * max(scale, 1e-9)
        if v > median:
            median += step
        elif v < median:
            median -= step
        if abs(v - median) > scale / MAD_TO_SD:
            scale += step
        else:
            scale -= step
        scale = max(scale, floor)
    stats[0] = median
    stats[1] = scale
    return used


# ---------------------------------------------------------------------------
# One stream's chunk after its spectra, fused: most chunks of a live tick are a few
# streams' 500 ms blocks without speech, where the separate calls' dispatch and the
# temporaries between them cost more than the kernels' work.


@njit(cache=True, nogil=True)
def advance_kernel(
    acf: np.ndarray,  # float64 (n, >= lag_hi + 2): autocorrelations (read on speech hops)
    window_acf: np.ndarray,  # float64: the window's autocorrelation, [0] = 1
    level_db: np.ndarray,  # float64 (n)
    alpha_db: np.ndarray,  # float64 (n)
    hammarberg_db: np.ndarray,  # float64 (n)
    flux: np.ndarray,  # float64 (n)
    speech: np.ndarray,  # uint8 (n)
    x: np.ndarray,  # float64: samples, history then the chunk; x[0] is absolute `base`
    hops: int,  # hops of the stream before this chunk
    hop: int,
    pitch_params: np.ndarray,
    pulse_params: np.ndarray,
    nuclei_params: np.ndarray,
    pitch_state: np.ndarray,  # updated in place, as are the three below
    pulse_state: np.ndarray,
    nuclei_state: np.ndarray,
    sums: np.ndarray,
    history: np.ndarray,  # float64 (H,): set to the last H samples of x
    out_values: np.ndarray,  # float64 (n, N_FEATURES)
    out_voiced: np.ndarray,  # uint8 (n)
    out_nucleus: np.ndarray,  # uint8 (n)
) -> tuple[int, int, int]:
    """pitch_kernel, the periods, pulse_kernel, nuclei_kernel and assemble_kernel in one
    call, exactly as ProsodyTracker ran them one by one; then the history kept for the
    next chunk. Returns (speech hops, voiced hops, nuclei)."""
    n = speech.shape[0]
    f0 = np.empty(n)
    r = np.empty(n)
    pitch_kernel(acf, window_acf, level_db, speech, pitch_params, pitch_state, f0, r)
    period = np.zeros(n)
    hop_end = np.empty(n, dtype=np.int64)
    n_speech = n_voiced = 0
    for i in range(n):
        if f0[i] > 0.0:
            period[i] = FS / f0[i]
            out_voiced[i] = 1
            n_voiced += 1
        else:
            out_voiced[i] = 0
        n_speech += speech[i] != 0
        hop_end[i] = (hops + 1 + i) * hop
    h = history.shape[0]
    base = hops * hop - h
    pulses = np.empty((n, PULSE_OUT_SIZE))
    pulse_kernel(x, base, hop_end, period, pulse_params, pulse_state, pulses)
    nuclei_kernel(level_db, out_voiced, speech, nuclei_params, nuclei_state, out_nucleus)
    assemble_kernel(
        f0, r, level_db, alpha_db, hammarberg_db, flux, pulses, speech, out_values, sums
    )
    off = x.shape[0] - h
    for j in range(h):
        history[j] = x[off + j]
    n_nuclei = 0
    for i in range(n):
        n_nuclei += out_nucleus[i] != 0
    return n_speech, n_voiced, n_nuclei
