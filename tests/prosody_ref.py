"""The prosody path before spectra were skipped off speech: the forward FFT and every
kernel on every hop. The reference the skipping path must match exactly
(tests/test_prosody.py) and the `old` side of bench/bench_prosody.py's comparison."""

from __future__ import annotations

import numpy as np

from engine.affect import kernels as k
from engine.affect.prosody import (
    _BINS,
    _WINDOW,
    _WINDOW_ACF,
    _WINDOW_POWER,
    FFT_BLOCK,
    HISTORY,
    ProsodyHops,
    ProsodyTracker,
)
from engine.types import HOP, SAMPLE_RATE


def dense_advance(
    t: ProsodyTracker, buf: np.ndarray, power: np.ndarray, acf: np.ndarray, mask: np.ndarray
) -> ProsodyHops:
    """ProsodyTracker._advance as it was: every kernel on every hop of the chunk."""
    st = t.state
    n = mask.shape[0]
    speech_b = np.array(mask, dtype=np.bool_)
    sp = speech_b.view(np.uint8)
    level, alpha, hamm, flux = (np.empty(n) for _ in range(4))
    rows = np.arange(n)
    k.spectral_kernel(power, rows, _WINDOW_POWER, _BINS, st.spectral, level, alpha, hamm, flux)
    f0 = np.empty(n)
    r = np.empty(n)
    k.pitch_kernel(acf, _WINDOW_ACF, level, sp, t._pitch_params, st.pitch, f0, r)
    voiced = f0 > 0.0
    period = np.zeros(n)
    np.divide(SAMPLE_RATE, f0, out=period, where=voiced)
    base = st.hops * HOP - HISTORY
    hop_end = (st.hops + 1 + np.arange(n, dtype=np.int64)) * HOP
    pulses = np.empty((n, k.PULSE_OUT_SIZE))
    k.pulse_kernel(buf, base, hop_end, period, t._pulse_params, st.pulse, pulses)
    nuc = np.empty(n, dtype=np.uint8)
    k.nuclei_kernel(level, voiced.view(np.uint8), sp, t._nuclei_params, st.nuclei, nuc)
    values = np.empty((n, k.N_FEATURES))
    k.assemble_kernel(f0, r, level, alpha, hamm, flux, pulses, sp, values, st.sums)
    nucleus = nuc.view(np.bool_)
    out = ProsodyHops(
        start_hop=st.hops, values=values, speech=speech_b, voiced=voiced, nucleus=nucleus
    )
    st.history[:] = buf[buf.shape[0] - HISTORY :]
    st.hops += n
    st.speech_hops += int(speech_b.sum())
    st.voiced_hops += int(voiced.sum())
    st.nuclei_count += int(nucleus.sum())
    return out


def dense_batch(
    trackers: list[ProsodyTracker],
    pcms: list[np.ndarray],
    masks: list[np.ndarray],
    *,
    acf_everywhere: bool = True,
) -> list[ProsodyHops]:
    """process_batch as it was: the forward FFT and every kernel on every hop; the
    inverse FFT on every hop too, or (`acf_everywhere=False`, the last production
    path before the skipping one) on speech hops only."""
    counts = [m.shape[0] for m in masks]
    frames = np.empty((sum(counts), k.FRAME))
    bufs, row = [], 0
    for t, pcm, n in zip(trackers, pcms, counts, strict=True):
        buf = np.empty(HISTORY + pcm.shape[0])
        buf[:HISTORY] = t.state.history
        np.multiply(pcm, 1.0 / 32768.0, out=buf[HISTORY:])
        bufs.append(buf)
        k.frames_kernel(buf, HISTORY + HOP - k.FRAME, HOP, _WINDOW, frames[row : row + n])
        row += n
    spec = np.fft.rfft(frames, k.NFFT, axis=1)
    power = spec.real * spec.real + spec.imag * spec.imag
    lag_max = max(t.config.lag_hi for t in trackers) + 2
    if acf_everywhere:
        acf = np.ascontiguousarray(np.fft.irfft(power, k.NFFT, axis=1)[:, :lag_max])
    else:
        acf = np.zeros((len(frames), lag_max))
        rows = np.flatnonzero(np.concatenate(masks))
        if len(rows):
            acf[rows] = np.fft.irfft(power[rows], k.NFFT, axis=1)[:, :lag_max]
    out, row = [], 0
    for t, buf, n, m in zip(trackers, bufs, counts, masks, strict=True):
        out.append(dense_advance(t, buf, power[row : row + n], acf[row : row + n], m))
        row += n
    return out


def unfused_advance(
    t: ProsodyTracker,
    buf: np.ndarray,
    level: np.ndarray,
    alpha: np.ndarray,
    hamm: np.ndarray,
    flux: np.ndarray,
    acf: np.ndarray,
    mask: np.ndarray,
) -> ProsodyHops:
    """ProsodyTracker._advance before k.advance_kernel: one call per kernel, numpy
    between them, and a shortcut for chunks without speech."""
    st = t.state
    n = mask.shape[0]
    speech_b = np.array(mask, dtype=np.bool_)
    sp = speech_b.view(np.uint8)
    nuc = np.empty(n, dtype=np.uint8)
    n_speech = int(np.count_nonzero(sp))
    if n and not n_speech:
        st.pitch[0] = 0.0
        st.pulse[k.Q_LAST_POS] = -1.0
        voiced = np.zeros(n, dtype=np.bool_)
        k.nuclei_kernel(level, sp, sp, t._nuclei_params, st.nuclei, nuc)
        values = np.full((n, k.N_FEATURES), np.nan)
    else:
        f0 = np.empty(n)
        r = np.empty(n)
        k.pitch_kernel(acf, _WINDOW_ACF, level, sp, t._pitch_params, st.pitch, f0, r)
        voiced = f0 > 0.0
        period = np.zeros(n)
        np.divide(SAMPLE_RATE, f0, out=period, where=voiced)
        base = st.hops * HOP - HISTORY
        hop_end = (st.hops + 1 + np.arange(n, dtype=np.int64)) * HOP
        pulses = np.empty((n, k.PULSE_OUT_SIZE))
        k.pulse_kernel(buf, base, hop_end, period, t._pulse_params, st.pulse, pulses)
        k.nuclei_kernel(level, voiced.view(np.uint8), sp, t._nuclei_params, st.nuclei, nuc)
        values = np.empty((n, k.N_FEATURES))
        k.assemble_kernel(f0, r, level, alpha, hamm, flux, pulses, sp, values, st.sums)
    nucleus = nuc.view(np.bool_)
    out = ProsodyHops(
        start_hop=st.hops, values=values, speech=speech_b, voiced=voiced, nucleus=nucleus
    )
    st.history[:] = buf[buf.shape[0] - HISTORY :]
    st.hops += n
    st.speech_hops += n_speech
    st.voiced_hops += int(np.count_nonzero(voiced))
    st.nuclei_count += int(np.count_nonzero(nucleus))
    return out


def unfused_batch(
    trackers: list[ProsodyTracker], pcms: list[np.ndarray], speech: list[np.ndarray]
) -> list[ProsodyHops]:
    """process_batch before the fused kernels (stream_frames_kernel, advance_kernel) and
    the batch-wide output arrays: each stream's buffer, framing call and outputs apart."""
    masks = [np.asarray(m, dtype=np.bool_) for m in speech]
    counts = [m.shape[0] for m in masks]
    pre = [
        n > 0 and bool(m[0]) and t.state.hops > 0 and t.state.spectral_hop != t.state.hops - 1
        for t, m, n in zip(trackers, masks, counts, strict=True)
    ]
    total = sum(counts) + sum(pre)
    frames = np.empty((total, k.FRAME))
    rows = np.empty(total, dtype=np.int64)
    sel = np.empty(total, dtype=np.bool_)
    level, alpha, hamm, flux = np.zeros((4, total))
    bufs: list[np.ndarray] = []
    starts: list[int] = []
    first = HISTORY + HOP - k.FRAME
    row = kept = 0
    for t, pcm, n, m, p in zip(trackers, pcms, counts, masks, pre, strict=True):
        buf = np.empty(HISTORY + pcm.shape[0])
        buf[:HISTORY] = t.state.history
        np.multiply(pcm, 1.0 / 32768.0, out=buf[HISTORY:])
        bufs.append(buf)
        starts.append(row)
        if p:
            m = np.concatenate(([False], m))
        kept += k.frame_rows_kernel(
            buf,
            first - HOP * p,
            HOP,
            _WINDOW,
            m,
            _WINDOW_POWER,
            row,
            frames[kept:],
            rows[kept:],
            sel[kept:],
            level[row : row + n + p],
        )
        row += n + p
    starts.append(row)
    rows = rows[:kept]
    lag_max = max(t.config.lag_hi for t in trackers) + 2
    acf = np.zeros((total, lag_max))
    power = np.empty((kept, k.N_BINS))
    for a in range(0, kept, FFT_BLOCK):
        b = min(a + FFT_BLOCK, kept)
        spec = np.fft.rfft(frames[a:b], k.NFFT, axis=1)
        pw = power[a:b]
        np.multiply(spec.real, spec.real, out=pw)
        pw += spec.imag * spec.imag
        s = sel[a:b]
        n_sel = int(np.count_nonzero(s))
        if n_sel == b - a:
            acf[rows[a:b]] = np.fft.irfft(pw, k.NFFT, axis=1)[:, :lag_max]
        elif n_sel:
            acf[rows[a:b][s]] = np.fft.irfft(pw[s], k.NFFT, axis=1)[:, :lag_max]
    bounds = np.searchsorted(rows, starts).tolist()
    results = []
    for i, (t, buf, n, m, p) in enumerate(zip(trackers, bufs, counts, masks, pre, strict=True)):
        st = t.state
        lo, hi = bounds[i], bounds[i + 1]
        row = starts[i] + int(p)
        if hi > lo:
            r = rows[lo:hi]
            k.spectral_kernel(
                power[lo:hi], r, _WINDOW_POWER, _BINS, st.spectral, level, alpha, hamm, flux
            )
            st.spectral_hop = st.hops + int(r[-1]) - row
        end = row + n
        results.append(
            unfused_advance(
                t,
                buf,
                level[row:end],
                alpha[row:end],
                hamm[row:end],
                flux[row:end],
                acf[row:end],
                m,
            )
        )
    return results
