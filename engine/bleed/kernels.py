"""Numba kernels for speaker-bleed detection: pure functions over caller-owned arrays.

Each kernel has a plain-numpy reference in tests/test_bleed.py.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

DBFS_OFFSET = 20.0 * math.log10(32768.0)
"""A full-scale int16 square wave has power 32768**2: subtract this to read dBFS."""

# Layout of the float64 parameter vector of `bleed_kernel`.
(P_ALPHA, P_MIN_CORR, P_MIN_RATIO_DB, P_MIN_VAR, P_FLOOR_DB, P_DIFF_HOPS) = range(6)
N_PARAMS = 6


@njit(cache=True, nogil=True)
def hop_level_kernel(hops: np.ndarray, out: np.ndarray) -> None:
    """Per-hop log energy in dBFS: int16 (n, HOP) -> float32 (n,).

    The +1 inside the log keeps digital silence finite (-90.3 dBFS), never -inf.
    The energy is summed in integers, which LLVM vectorises (a float sum must run in
    order): the same value as a float64 sum, which is exact too (each square is at most
    2**30 and a hop's sum far below 2**53), at a fifth of the cost.
    """
    hop = hops.shape[1]
    for h in range(hops.shape[0]):
        e = np.int64(0)
        for k in range(hop):
            x = np.int32(hops[h, k])
            e += x * x  # int16 squared fits an int32; the sum is int64
        out[h] = 10.0 * math.log10(float(e) / hop + 1.0) - DBFS_OFFSET


@njit(cache=True, nogil=True, inline="always")
def _cross_update(c: np.ndarray, lagged: np.ndarray, uj: float, alpha: float) -> None:
    """c[d] += alpha * (uj * lagged[d] - c[d]) for every lag d: both run forward and
    contiguous, so the loop is vectorised (the per-pair work of every hop)."""
    for d in range(c.shape[0]):
        c[d] += alpha * (uj * lagged[d] - c[d])


@njit(cache=True, nogil=True)
def bleed_kernel(
    env: np.ndarray,  # float32 (S, n): per-hop level of each stream, dBFS
    speech: np.ndarray,  # bool (S, n): the VAD's speech decision per hop
    t0: np.ndarray,  # int64 (1,): hops already seen (updated in place)
    hist_env: np.ndarray,  # float64 (S, R): ring of the last R levels (clamped)
    hist_speech: np.ndarray,  # bool (S, R): ring of the last R speech decisions
    hist_diff: np.ndarray,  # float64 (S, 2R): level changes u, newest first (see below)
    hist_mom: np.ndarray,  # float64 (S, R, 2): ring of each stream's EMA of u and u*u
    cross: np.ndarray,  # float64 (S, S, R): EMA of u_j[t] * u_i[t - d], d = 0..R-1
    params: np.ndarray,  # float64 (N_PARAMS,)
    out: np.ndarray,  # bool (S, n): bleed decision per hop
    source: np.ndarray,  # int32 (S, n): the stream the bleed came from, -1 if none
    dominated: np.ndarray,  # bool (S, n): (1) and (2) hold for some stream and lag
) -> None:
    """Mark hops where a stream's "speech" is another stream's voice, delayed and quieter.

    A hop t of stream j is bleed when j's VAD says speech and some other stream i,
    at some lag d in 0..R-1 hops, (1) was speaking at t - d, (2) was at least
    `min_ratio_db` louder at t - d than j is at t, and (3) has an envelope whose
    exponentially weighted correlation with j's (time constant 1/alpha hops), at
    lag d, is at least `min_corr`. `dominated` marks speech hops where (1) and (2)
    alone hold: hops that are bleed if the stream's own voice is not in them (the
    level test without the correlation, which needs time to build up). The envelope
    correlated is the hop-to-hop level change u over `diff_hops` hops (clamped
    levels). Loudspeaker pickup is a delayed,
    attenuated, maybe filtered copy: its log envelope follows the source's with a
    constant offset, so every syllable's rise and fall repeats and the correlation
    is high. Two people genuinely talking at once are each loud on their own
    microphone and their syllables rise and fall independently; differencing keeps
    their shared start (both levels jump at once) from looking alike.

    An EMA of a delayed signal is the delayed EMA, so each stream keeps one ring
    of its own moments and only the cross moments are per pair and lag.

    `hist_diff` is a ring written backwards and twice (at w = R-1 - t % R and w + R),
    so u[t - d] for d = 0..R-1 is the forward slice hist_diff[s, w : w + R]: the cross
    update, the one loop over every pair and lag, then reads memory in order.
    """
    n_streams = env.shape[0]
    n = env.shape[1]
    ring = hist_env.shape[1]
    alpha = params[P_ALPHA]
    min_corr = params[P_MIN_CORR]
    min_ratio = params[P_MIN_RATIO_DB]
    min_var = params[P_MIN_VAR]
    floor = params[P_FLOOR_DB]
    lag_u = int(params[P_DIFF_HOPS])  # u is the change over this many hops (< R)
    for h in range(n):
        t = t0[0] + h
        p = t % ring
        w = ring - 1 - p  # where u[t] goes in hist_diff
        # Own levels and moments.
        for s in range(n_streams):
            x = float(env[s, h])
            if x < floor:
                x = floor
            if t == 0:  # seed the rings so the first hops have a defined history
                for r in range(ring):
                    hist_env[s, r] = x
                    hist_diff[s, r] = 0.0
                    hist_diff[s, r + ring] = 0.0
                    hist_speech[s, r] = False
                    hist_mom[s, r, 0] = 0.0
                    hist_mom[s, r, 1] = 0.0
            prev = (p - 1) % ring
            u = x - hist_env[s, (p - lag_u) % ring]
            m1 = hist_mom[s, prev, 0]
            m2 = hist_mom[s, prev, 1]
            if t > 0:
                m1 += alpha * (u - m1)
                m2 += alpha * (u * u - m2)
            hist_env[s, p] = x
            hist_diff[s, w] = u
            hist_diff[s, w + ring] = u
            hist_speech[s, p] = speech[s, h]
            hist_mom[s, p, 0] = m1
            hist_mom[s, p, 1] = m2
        if t == 0:
            for j in range(n_streams):
                for i in range(n_streams):
                    for d in range(ring):
                        cross[j, i, d] = 0.0
        # Cross moments, then the decision (the rings of levels, speech and moments
        # walked as two straight runs, lags 0..p and then the wrapped ones, instead of a
        # modulo per lag): the same arithmetic, in the same order, as a plain walk.
        for j in range(n_streams):
            xj = hist_env[j, p]
            uj = hist_diff[j, w]
            mx = hist_mom[j, p, 0]
            vx = hist_mom[j, p, 1] - mx * mx
            out[j, h] = False
            source[j, h] = -1
            dominated[j, h] = False
            for i in range(n_streams):
                if i == j:
                    continue
                if t > 0:
                    _cross_update(cross[j, i], hist_diff[i, w : w + ring], uj, alpha)
                if not speech[j, h] or out[j, h]:
                    continue  # no decision to make, or made: (2) alone adds nothing
                if vx < min_var and dominated[j, h]:
                    continue  # j too flat to correlate: only `dominated` was open
                for d in range(ring):
                    q = p - d if d <= p else p - d + ring
                    if not hist_speech[i, q]:
                        continue
                    if hist_env[i, q] - xj < min_ratio:
                        continue
                    dominated[j, h] = True
                    if vx < min_var:
                        break  # (3) cannot hold for j: `dominated` was all that was open
                    my = hist_mom[i, q, 0]
                    vy = hist_mom[i, q, 1] - my * my
                    if vy < min_var:
                        continue
                    if cross[j, i, d] - mx * my >= min_corr * math.sqrt(vx * vy):
                        out[j, h] = True
                        source[j, h] = i
                        break
        # (lags beyond t reach the seeded ring: defined values, never speech)
    t0[0] += n
