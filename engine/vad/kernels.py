"""Numba kernels for voice activity: pure functions over arrays the caller preallocates
(but `webrtc_kernel`, which drives webrtcvad's C detectors).

Each kernel has a plain-numpy reference in tests/test_vad_kernels.py.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numba import njit

# ---------------------------------------------------------------------------
# Hangover smoothing: probabilities -> speech segments, streaming.

# Layout of the int64 hangover state vector.
H_RAW_ON, H_SEG_OPEN, H_SEG_START, H_LAST_END, H_T = range(5)
HANGOVER_STATE_SIZE = 5


@njit(cache=True, nogil=True)
def hangover_kernel(
    probs: np.ndarray,  # float32 (n,)
    state: np.ndarray,  # int64 (HANGOVER_STATE_SIZE,), updated in place
    onset: float,
    offset: float,
    min_speech: int,
    min_silence: int,
    out: np.ndarray,  # int64 (n + 1, 2): closed segments [start, end) in hops
) -> int:
    """Hysteresis, gap bridging and short-run removal; returns the number of segments closed."""
    raw_on = state[H_RAW_ON]
    seg_open = state[H_SEG_OPEN]
    seg_start = state[H_SEG_START]
    last_end = state[H_LAST_END]
    t = state[H_T]
    n_out = 0
    for i in range(probs.shape[0]):
        p = probs[i]
        active = p >= offset if raw_on else p >= onset
        raw_on = 1 if active else 0
        if active:
            if seg_open == 0:
                seg_open = 1
                seg_start = t
            last_end = t + 1
        elif seg_open == 1 and t + 1 - last_end >= min_silence:
            if last_end - seg_start >= min_speech:
                out[n_out, 0] = seg_start
                out[n_out, 1] = last_end
                n_out += 1
            seg_open = 0
        t += 1
    state[H_RAW_ON] = raw_on
    state[H_SEG_OPEN] = seg_open
    state[H_SEG_START] = seg_start
    state[H_LAST_END] = last_end
    state[H_T] = t
    return n_out


# ---------------------------------------------------------------------------
# The numba VAD: band-limited log energy against an adaptive noise floor.

# Biquad coefficient rows: b0 b1 b2 a1 a2 (a0 normalised to 1).
BQ_DC, BQ_HP, BQ_LP = range(3)

# Layout of the float64 per-stream state vector.
S_Z = 0  # 6 biquad delay values: 2 per filter
S_NF = 6  # noise floor, dB
S_INIT = 7  # 1 once the floor is seeded
S_BLOCK_MIN = 8  # running minimum of the current block
S_BLOCK_POS = 9  # hops into the current block
S_BLOCK_IDX = 10  # which block slot is current
S_PREV_L = 11  # previous hop's speech-band level, dB
S_BLOCKS = 12  # N_BLOCKS block minima follow
N_BLOCKS = 8
STATE_SIZE = S_BLOCKS + N_BLOCKS

# Layout of the float64 parameter vector.
(
    P_BLOCK_HOPS,
    P_FALL,
    P_TRACK,
    P_RISE_FAR,
    P_NEAR_DB,
    P_SNR0,
    P_SNR_SLOPE,
    P_RATIO_W,
    P_FLOOR_DB,
    P_LEVEL_GATE_DB,
) = range(10)
N_PARAMS = 10

DBFS_OFFSET = 20.0 * math.log10(32768.0)


@njit(cache=True, nogil=True, inline="always")
def _biquad(x: float, coef: np.ndarray, row: int, st: np.ndarray, z: int) -> float:
    y = coef[row, 0] * x + st[z]
    st[z] = coef[row, 1] * x - coef[row, 3] * y + st[z + 1]
    st[z + 1] = coef[row, 2] * x - coef[row, 4] * y
    return y


@njit(cache=True, nogil=True)
def energy_vad_kernel(
    hops: np.ndarray,  # int16 (N, 160): the hops of every stream, stream after stream
    offsets: np.ndarray,  # int64 (S + 1,): stream s owns hops[offsets[s]:offsets[s+1]]
    states: np.ndarray,  # float64 (S, STATE_SIZE), updated in place
    coef: np.ndarray,  # float64 (3, 5) biquads: DC block, speech high-pass, speech low-pass
    params: np.ndarray,  # float64 (N_PARAMS,)
    out: np.ndarray,  # float32 (N,): speech probability per hop
) -> None:
    """One call for a whole batch of streams: per hop, a speech probability.

    Features: speech-band (high-pass then low-pass) level in dBFS, its distance
    to a noise floor (which falls fast, follows noise-like levels near it, rises
    slowly under speech, and never stays below the minimum of the last N_BLOCKS
    blocks), and the share of energy in the speech band.
    """
    block_hops = int(params[P_BLOCK_HOPS])
    hop = hops.shape[1]
    for s in range(offsets.shape[0] - 1):
        st = states[s]
        for h in range(offsets[s], offsets[s + 1]):
            e_sp = 0.0
            e_all = 0.0
            for k in range(hop):
                x = float(hops[h, k])
                d = _biquad(x, coef, BQ_DC, st, S_Z)
                y = _biquad(d, coef, BQ_HP, st, S_Z + 2)
                y = _biquad(y, coef, BQ_LP, st, S_Z + 4)
                e_all += d * d
                e_sp += y * y
            level = 10.0 * math.log10(e_sp / hop + 1.0) - DBFS_OFFSET
            ratio = 10.0 * math.log10((e_sp + 1.0) / (e_all + 1.0))
            if st[S_INIT] == 0.0:
                st[S_NF] = level
                st[S_INIT] = 1.0
                st[S_BLOCK_MIN] = level
                st[S_PREV_L] = level
                for b in range(N_BLOCKS):
                    st[S_BLOCKS + b] = level
            # Noise floor: falls fast below, follows the mean of noise-like levels near it,
            # and creeps up only slowly under speech (levels far above it).
            nf = st[S_NF]
            if level < nf:
                nf += params[P_FALL] * (level - nf)
            elif level - nf < params[P_NEAR_DB]:
                nf += params[P_TRACK] * (level - nf)
            else:
                nf += params[P_RISE_FAR]
            # Block minima bound the floor from below so a louder room is learnt in seconds.
            smooth = 0.5 * (level + st[S_PREV_L])
            st[S_PREV_L] = level
            if smooth < st[S_BLOCK_MIN]:
                st[S_BLOCK_MIN] = smooth
            st[S_BLOCK_POS] += 1.0
            if st[S_BLOCK_POS] >= block_hops:
                st[S_BLOCKS + int(st[S_BLOCK_IDX])] = st[S_BLOCK_MIN]
                st[S_BLOCK_IDX] = (st[S_BLOCK_IDX] + 1.0) % N_BLOCKS
                st[S_BLOCK_POS] = 0.0
                st[S_BLOCK_MIN] = 1e9
            wmin = st[S_BLOCKS]
            for b in range(1, N_BLOCKS):
                if st[S_BLOCKS + b] < wmin:
                    wmin = st[S_BLOCKS + b]
            if nf < wmin:
                nf = wmin
            if nf < params[P_FLOOR_DB]:
                nf = params[P_FLOOR_DB]
            st[S_NF] = nf
            snr = smooth - nf
            z = params[P_SNR_SLOPE] * (snr - params[P_SNR0]) + params[P_RATIO_W] * ratio
            if level < params[P_LEVEL_GATE_DB]:
                z -= 10.0
            out[h] = 1.0 / (1.0 + math.exp(-z))


# ---------------------------------------------------------------------------
# The WebRTC VAD's C entry point over many streams' hops.


@njit(cache=True, nogil=True)
def webrtc_kernel(
    process: Any,  # ctypes WebRtcVad_Process(VadInst*, int fs, const int16_t*, size_t) -> int
    handles: np.ndarray,  # int64 (streams,): each stream's VadInst*
    counts: np.ndarray,  # int64 (streams,): hops of each stream, stream after stream
    hops: np.ndarray,  # int16 (sum(counts), hop), C-contiguous
    sample_rate: int,
    out: np.ndarray,  # float32 (sum(counts),): 1.0 speech, 0.0 not, -1.0 an error
) -> None:
    """webrtcvad's own C call once per hop, each with its stream's detector, as
    `Vad.is_speech` makes it, without a Python call, a row view and a buffer export
    per hop (0.4 of 1.65 us a hop). Not pure: the detectors are C state it advances;
    tests/test_vad_kernels.py holds it to `Vad.is_speech` on real speech."""
    width = hops.shape[1]
    base = hops.ctypes.data
    r = 0
    for i in range(handles.shape[0]):
        handle = handles[i]
        for _ in range(counts[i]):
            out[r] = process(handle, sample_rate, base + 2 * width * r, width)
            r += 1


# ---------------------------------------------------------------------------
# Silero's chunking: each stream's new samples into model inputs, and the gate.

# Layout of a silero stream's int64 counters (one row per stream in a batch).
SM_HOPS_IN, SM_CHUNKS, SM_HEARD_NOW, SM_HEARD_PREV = range(4)
SILERO_META_SIZE = 4


@njit(cache=True, nogil=True, inline="always")
def _chunk_of_hop(k: int, hop: int, chunk: int) -> int:
    """The chunk holding hop k's centre."""
    return (k * hop + hop // 2) // chunk


@njit(cache=True, nogil=True, inline="always")
def _first_hop_of_chunk(c: int, hop: int, chunk: int) -> int:
    """The first hop centred in chunk c or later (every hop before it is centred earlier)."""
    return -(-(c * chunk - hop // 2) // hop)


@njit(cache=True, nogil=True)
def silero_cut_kernel(
    tails: np.ndarray,  # float32: every stream's tail (context, then pending), one after another
    n_tail: np.ndarray,  # int64 (streams,): each tail's length, >= context
    samples: np.ndarray,  # float32: every stream's new samples, one after another
    n_samples: np.ndarray,  # int64 (streams,)
    flags: np.ndarray,  # float32: the gate's decision on every new hop (> 0: speech)
    n_hops: np.ndarray,  # int64 (streams,): new hops of each stream
    gated: bool,
    meta: np.ndarray,  # int64 (streams, SILERO_META_SIZE), updated in place
    hop: int,
    chunk: int,
    context: int,
    x_out: np.ndarray,  # float32 (>= chunks made, context + chunk): the model inputs
    owner_out: np.ndarray,  # int64: each input's stream
    rank_out: np.ndarray,  # int64: each input's rank among its stream's inputs of this call
    open_out: np.ndarray,  # uint8: 1 where the model scores the input, 0 where the gate is shut
    tails_out: np.ndarray,  # float32 (streams, context + chunk): each stream's new tail
    n_tail_out: np.ndarray,  # int64 (streams,): its length
) -> int:
    """Each stream's tail and new samples, cut into whole model inputs (context + chunk
    samples, consecutive inputs overlapping by `context`), stream after stream and in
    order within a stream; returns how many. What is left over (the last `context`
    samples and any partial chunk) is the new tail.

    The gate (`gated`): an input is scored where a new or earlier hop centred in its chunk,
    or in the chunk before, was heard as speech. A chunk is complete only once the hop
    holding its last sample is in, and every hop centred in it starts before that one,
    so its flags are all known when it is decided."""
    width = context + chunk
    t_at = 0
    s_at = 0
    f_at = 0
    made = 0
    for i in range(n_tail.shape[0]):
        nt = n_tail[i]
        ns = n_samples[i]
        total = nt + ns
        hops_in = meta[i, SM_HOPS_IN]
        done = meta[i, SM_CHUNKS]
        heard = meta[i, SM_HEARD_NOW]
        prev = meta[i, SM_HEARD_PREV]
        j = 0
        rank = 0
        start = 0  # of the next input, in this stream's tail + samples
        while start + width <= total:
            while j < n_hops[i] and _chunk_of_hop(hops_in + j, hop, chunk) <= done:
                if flags[f_at + j] > 0.0:
                    heard = 1
                j += 1
            for k in range(width):
                p = start + k
                x_out[made, k] = tails[t_at + p] if p < nt else samples[s_at + p - nt]
            owner_out[made] = i
            rank_out[made] = rank
            open_out[made] = 1 if (not gated or heard or prev) else 0
            prev = heard
            heard = 0
            done += 1
            rank += 1
            made += 1
            start += chunk
        while j < n_hops[i]:  # centred in the chunk still being filled
            if flags[f_at + j] > 0.0:
                heard = 1
            j += 1
        for p in range(start, total):
            tails_out[i, p - start] = tails[t_at + p] if p < nt else samples[s_at + p - nt]
        n_tail_out[i] = total - start
        meta[i, SM_HOPS_IN] = hops_in + n_hops[i]
        meta[i, SM_CHUNKS] = done
        meta[i, SM_HEARD_NOW] = heard
        meta[i, SM_HEARD_PREV] = prev
        t_at += nt
        s_at += ns
        f_at += n_hops[i]
    return made


@njit(cache=True, nogil=True)
def silero_emit_kernel(
    before: np.ndarray,  # int64 (streams, SILERO_META_SIZE): the counters before the cut
    after: np.ndarray,  # int64 (streams, SILERO_META_SIZE): and after it
    chunk_probs: np.ndarray,  # float32: each input's probability, in silero_cut_kernel's order
    hop: int,
    chunk: int,
    out: np.ndarray,  # float32 (>= hops emitted): each stream's new hop probabilities
    n_out: np.ndarray,  # int64 (streams,): how many hops each stream got
) -> int:
    """The probability of each hop whose chunk is now scored, in hop order, stream after
    stream: a hop takes its centre's chunk. A stream's earlier chunks were all emitted on
    earlier calls (a hop arrives no later than its chunk completes), so each hop here
    falls in one of this call's inputs. Returns the number of hops emitted."""
    r = 0
    row = 0  # this stream's first input
    for i in range(before.shape[0]):
        done0 = before[i, SM_CHUNKS]
        done1 = after[i, SM_CHUNKS]
        lo = min(before[i, SM_HOPS_IN], _first_hop_of_chunk(done0, hop, chunk))
        hi = min(after[i, SM_HOPS_IN], _first_hop_of_chunk(done1, hop, chunk))
        for k in range(lo, hi):
            out[r] = chunk_probs[row + _chunk_of_hop(k, hop, chunk) - done0]
            r += 1
        n_out[i] = max(hi - lo, 0)
        row += done1 - done0
    return r
