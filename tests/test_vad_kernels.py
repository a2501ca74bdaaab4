"""Every numba kernel against a plain-numpy/Python reference written here.

The references are written from the kernels' documented behaviour, not by calling
them: hysteresis, gap bridging and short-run removal for `hangover_kernel`;
scipy's `lfilter` for the biquads and a per-hop Python loop for the noise floor
and logistic of `energy_vad_kernel`; `webrtcvad.Vad.is_speech` for `webrtc_kernel`;
whole-signal slicing and a per-chunk loop over the gate's flags for Silero's
`silero_cut_kernel` and `silero_emit_kernel`.
"""

from __future__ import annotations

import math
from functools import cache

import numpy as np
import pytest
import webrtcvad
from numpy.testing import assert_allclose, assert_array_equal
from scipy.signal import lfilter

from engine.audio.decode import decode_file
from engine.config import VadConfig
from engine.sample import sample_session
from engine.types import HOP, SpeechSegment
from engine.vad import kernels
from engine.vad.base import Hangover
from engine.vad.energy import COEF, EnergyVadParams
from engine.vad.webrtc import WebRtcBackend

# ---------------------------------------------------------------------------
# hangover_kernel


def ref_raw_activity(probs: np.ndarray, onset: float, offset: float) -> list[bool]:
    """Hysteresis: switch on at p >= onset, stay on while p >= offset."""
    on = False
    raw = []
    for p in probs.astype(np.float64).tolist():  # compare in float64, as the kernel does
        on = p >= offset if on else p >= onset
        raw.append(on)
    return raw


def ref_runs(raw: list[bool]) -> list[tuple[int, int]]:
    runs: list[tuple[int, int]] = []
    start = None
    for t, on in enumerate(raw):
        if on and start is None:
            start = t
        elif not on and start is not None:
            runs.append((start, t))
            start = None
    if start is not None:
        runs.append((start, len(raw)))
    return runs


def ref_hangover(
    probs: np.ndarray, onset: float, offset: float, min_speech: int, min_silence: int
) -> tuple[list[tuple[int, int]], tuple[int, int] | None, list[bool]]:
    """(segments closed inside the stream, the still-open merged run or None, raw activity).

    Runs separated by fewer than `min_silence` inactive hops are merged; a merged
    run closes once `max(min_silence, 1)` inactive hops follow it, and is kept only
    if it lasts at least `min_speech` hops.
    """
    raw = ref_raw_activity(probs, onset, offset)
    merged: list[tuple[int, int]] = []
    for s, e in ref_runs(raw):
        if merged and s - merged[-1][1] < min_silence:
            merged[-1] = (merged[-1][0], e)
        else:
            merged.append((s, e))
    n = len(raw)
    closed_after = max(min_silence, 1)
    closed = [(s, e) for s, e in merged if n - e >= closed_after and e - s >= min_speech]
    still_open = merged[-1] if merged and n - merged[-1][1] < closed_after else None
    return closed, still_open, raw


def run_kernel(
    probs: np.ndarray,
    onset: float,
    offset: float,
    min_speech: int,
    min_silence: int,
    state: np.ndarray | None = None,
) -> tuple[list[tuple[int, int]], np.ndarray]:
    if state is None:
        state = np.zeros(kernels.HANGOVER_STATE_SIZE, dtype=np.int64)
    out = np.full((probs.shape[0] + 1, 2), -1, dtype=np.int64)
    n = kernels.hangover_kernel(
        np.ascontiguousarray(probs, dtype=np.float32),
        state,
        onset,
        offset,
        min_speech,
        min_silence,
        out,
    )
    return [(int(a), int(b)) for a, b in out[:n]], state


def random_probs(rng: np.random.Generator, n: int) -> np.ndarray:
    """Blocks of high and low probability with jitter, so runs and gaps of many lengths occur."""
    probs = np.empty(n, dtype=np.float32)
    pos = 0
    high = bool(rng.integers(2))
    while pos < n:
        length = int(rng.integers(1, 40))
        centre = 0.8 if high else 0.2
        probs[pos : pos + length] = np.clip(
            centre + rng.normal(0.0, 0.25, size=min(length, n - pos)), 0.0, 1.0
        )
        pos += length
        high = not high
    return probs


SETTINGS = [
    # onset, offset, min_speech, min_silence
    (0.5, 0.35, 12, 30),
    (0.5, 0.5, 0, 0),
    (0.6, 0.2, 3, 0),
    (0.5, 0.35, 1, 1),
    (0.9, 0.1, 5, 10),
    (0.3, 0.3, 20, 5),
    (0.7, 0.4, 0, 2),
]


def check_against_reference(probs, onset, offset, min_speech, min_silence):
    closed, still_open, raw = ref_hangover(probs, onset, offset, min_speech, min_silence)
    got, state = run_kernel(probs, onset, offset, min_speech, min_silence)
    assert got == closed
    assert state[kernels.H_T] == probs.shape[0]
    assert state[kernels.H_RAW_ON] == int(bool(raw and raw[-1]))
    assert state[kernels.H_SEG_OPEN] == int(still_open is not None)
    if still_open is not None:
        assert (state[kernels.H_SEG_START], state[kernels.H_LAST_END]) == still_open
    return closed, still_open


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize(("onset", "offset", "min_speech", "min_silence"), SETTINGS)
def test_hangover_kernel_matches_reference_on_random_probs(
    seed, onset, offset, min_speech, min_silence
):
    rng = np.random.default_rng(seed)
    probs = random_probs(rng, int(rng.integers(50, 1500)))
    closed, _ = check_against_reference(probs, onset, offset, min_speech, min_silence)
    # Not vacuous: these inputs always make and close speech segments at these settings.
    assert closed or min_speech > 0


def test_hangover_random_inputs_exercise_bridging_and_dropping():
    """The reference settings above really bridge gaps and drop short runs."""
    rng = np.random.default_rng(0)
    probs = random_probs(rng, 1500)
    _, _, raw = ref_hangover(probs, 0.5, 0.35, 12, 30)
    runs = ref_runs(raw)
    closed, _ = check_against_reference(probs, 0.5, 0.35, 12, 30)
    assert len(closed) < len(runs)  # runs were merged or dropped
    bridged = check_against_reference(probs, 0.5, 0.35, 0, 0)[0]
    assert bridged == [r for r in runs if r[1] < len(raw)]  # min_silence 0 bridges nothing


@pytest.mark.parametrize(("onset", "offset", "min_speech", "min_silence"), SETTINGS)
def test_hangover_kernel_all_zeros(onset, offset, min_speech, min_silence):
    probs = np.zeros(300, dtype=np.float32)
    got, state = run_kernel(probs, onset, offset, min_speech, min_silence)
    assert got == []
    assert state.tolist() == [0, 0, 0, 0, 300]


@pytest.mark.parametrize(("onset", "offset", "min_speech", "min_silence"), SETTINGS)
def test_hangover_kernel_all_ones_stays_open(onset, offset, min_speech, min_silence):
    probs = np.ones(300, dtype=np.float32)
    got, state = run_kernel(probs, onset, offset, min_speech, min_silence)
    assert got == []  # nothing closes while speech goes on
    assert state[kernels.H_SEG_OPEN] == 1
    assert (state[kernels.H_SEG_START], state[kernels.H_LAST_END]) == (0, 300)


@pytest.mark.parametrize("where", [0, 1, 50, 98, 99])
@pytest.mark.parametrize(("min_speech", "min_silence"), [(0, 0), (1, 0), (1, 1), (2, 0), (1, 5)])
def test_hangover_kernel_single_spike(where, min_speech, min_silence):
    probs = np.zeros(100, dtype=np.float32)
    probs[where] = 1.0
    got, state = run_kernel(probs, 0.5, 0.35, min_speech, min_silence)
    closes_inside = 100 - (where + 1) >= max(min_silence, 1)
    if closes_inside and min_speech <= 1:
        assert got == [(where, where + 1)]
    else:
        assert got == []
    assert state[kernels.H_SEG_OPEN] == int(not closes_inside)
    check_against_reference(probs, 0.5, 0.35, min_speech, min_silence)


def test_hangover_kernel_hysteresis_thresholds_are_inclusive():
    # 0.5 turns on (>= onset); 0.25 keeps it on (>= offset); 0.24 turns it off;
    # 0.25 then does not turn it back on (< onset).
    probs = np.array([0.0, 0.5, 0.25, 0.25, 0.24, 0.25, 0.5, 0.0, 0.0], dtype=np.float32)
    got, _ = run_kernel(probs, 0.5, 0.25, 0, 0)
    assert got == [(1, 4), (6, 7)]
    check_against_reference(probs, 0.5, 0.25, 0, 0)


def test_hangover_kernel_bridges_gaps_shorter_than_min_silence_only():
    on = np.ones(5, dtype=np.float32)
    probs = np.concatenate(
        [on, np.zeros(2, np.float32), on, np.zeros(3, np.float32), on, np.zeros(3, np.float32)]
    )
    # min_silence 3: the 2-hop gap is bridged, the 3-hop gaps end segments.
    got, _ = run_kernel(probs, 0.5, 0.5, 0, 3)
    assert got == [(0, 12), (15, 20)]


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize(("onset", "offset", "min_speech", "min_silence"), SETTINGS[:4])
def test_hangover_kernel_streaming_equals_one_call(seed, onset, offset, min_speech, min_silence):
    rng = np.random.default_rng(100 + seed)
    probs = random_probs(rng, 800)
    whole, whole_state = run_kernel(probs, onset, offset, min_speech, min_silence)
    cuts = np.sort(rng.choice(np.arange(1, 800), size=12, replace=False))
    state = np.zeros(kernels.HANGOVER_STATE_SIZE, dtype=np.int64)
    got: list[tuple[int, int]] = []
    for part in np.split(probs, cuts):
        segs, state = run_kernel(part, onset, offset, min_speech, min_silence, state)
        got.extend(segs)
    assert got == whole
    assert_array_equal(state, whole_state)


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize(
    ("threshold", "hysteresis", "min_speech_ms", "min_silence_ms"),
    [(0.5, 0.15, 120, 300), (0.5, 0.0, 0, 0), (0.6, 0.3, 30, 100)],
)
def test_hangover_wrapper_push_and_flush_match_reference(
    seed, threshold, hysteresis, min_speech_ms, min_silence_ms
):
    """Pushes longer than the wrapper's 1024-hop output buffer and odd splits, then flush."""
    cfg = VadConfig(
        threshold=threshold,
        hysteresis=hysteresis,
        min_speech_ms=min_speech_ms,
        min_silence_ms=min_silence_ms,
    )
    rng = np.random.default_rng(seed)
    probs = random_probs(rng, 3000)
    closed, still_open, _ = ref_hangover(
        probs, threshold, threshold - hysteresis, cfg.min_speech_hops, cfg.min_silence_hops
    )
    expected = list(closed)
    if still_open is not None and still_open[1] - still_open[0] >= cfg.min_speech_hops:
        expected.append(still_open)
    h = Hangover(cfg)
    got: list[SpeechSegment] = []
    for part in np.split(probs, [2500, 2501, 2700]):
        got.extend(h.push(part))
    assert h.hops_seen == 3000
    got.extend(h.flush())
    assert [(s.start, s.end) for s in got] == expected
    assert not h.in_speech
    h.reset()
    assert h.hops_seen == 0
    assert [(s.start, s.end) for s in h.push(probs) + h.flush()] == expected


def test_hangover_flush_keeps_open_segment_only_if_long_enough():
    cfg = VadConfig(threshold=0.5, hysteresis=0.0, min_speech_ms=50, min_silence_ms=100)
    h = Hangover(cfg)
    assert h.push(np.r_[np.zeros(10), np.ones(4)].astype(np.float32)) == []
    assert h.in_speech
    assert h.flush() == []  # 4 hops < 5
    h2 = Hangover(cfg)
    h2.push(np.r_[np.zeros(10), np.ones(5), np.zeros(3)].astype(np.float32))
    assert h2.flush() == [SpeechSegment(10, 15)]


# ---------------------------------------------------------------------------
# energy_vad_kernel


def _sos(row: int) -> tuple[np.ndarray, np.ndarray]:
    c = COEF[row]
    return c[:3], np.array([1.0, c[3], c[4]])


BRANCHES = ("fall", "track", "rise_far", "block_rotate", "window_clamp", "floor_clamp", "gate")


def ref_energy_vad(
    hops: np.ndarray, params: np.ndarray, state: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, dict[str, int]]:
    """One stream: (probabilities, final state, how often each branch ran)."""
    n = hops.shape[0]
    st = np.zeros(kernels.STATE_SIZE) if state is None else state.copy()
    hits = dict.fromkeys(BRANCHES, 0)
    # Three biquads in series, state carried across hops and calls.
    x = hops.reshape(-1).astype(np.float64)
    z = st[kernels.S_Z : kernels.S_Z + 6]
    d, z_dc = lfilter(*_sos(kernels.BQ_DC), x, zi=z[0:2])
    hp, z_hp = lfilter(*_sos(kernels.BQ_HP), d, zi=z[2:4])
    y, z_lp = lfilter(*_sos(kernels.BQ_LP), hp, zi=z[4:6])
    st[kernels.S_Z : kernels.S_Z + 6] = np.concatenate([z_dc, z_hp, z_lp])
    e_sp = np.sum(y.reshape(n, HOP) ** 2, axis=1)
    e_all = np.sum(d.reshape(n, HOP) ** 2, axis=1)
    level = 10.0 * np.log10(e_sp / HOP + 1.0) - 20.0 * np.log10(32768.0)
    ratio = 10.0 * np.log10((e_sp + 1.0) / (e_all + 1.0))

    block_hops = int(params[kernels.P_BLOCK_HOPS])
    fall, track, rise_far = (
        params[kernels.P_FALL],
        params[kernels.P_TRACK],
        params[kernels.P_RISE_FAR],
    )
    near = params[kernels.P_NEAR_DB]
    floor_db, gate_db = params[kernels.P_FLOOR_DB], params[kernels.P_LEVEL_GATE_DB]
    nblk = kernels.N_BLOCKS
    init = st[kernels.S_INIT] != 0.0
    nf = st[kernels.S_NF]
    block_min = st[kernels.S_BLOCK_MIN]
    block_pos = int(st[kernels.S_BLOCK_POS])
    block_idx = int(st[kernels.S_BLOCK_IDX])
    prev = st[kernels.S_PREV_L]
    blocks = st[kernels.S_BLOCKS : kernels.S_BLOCKS + nblk].tolist()
    probs = np.empty(n, dtype=np.float64)
    for h in range(n):
        lv = float(level[h])
        if not init:  # the first hop seeds floor, block minima and the previous level
            nf, block_min, prev, blocks, init = lv, lv, lv, [lv] * nblk, True
        if lv < nf:
            nf = nf + fall * (lv - nf)
            hits["fall"] += 1
        elif lv - nf < near:
            nf = nf + track * (lv - nf)
            hits["track"] += 1
        else:
            nf = nf + rise_far
            hits["rise_far"] += 1
        smooth = 0.5 * (lv + prev)
        prev = lv
        block_min = min(block_min, smooth)
        block_pos += 1
        if block_pos >= block_hops:
            blocks[block_idx] = block_min
            block_idx = (block_idx + 1) % nblk
            block_pos = 0
            block_min = 1e9
            hits["block_rotate"] += 1
        if nf < min(blocks):
            nf = min(blocks)
            hits["window_clamp"] += 1
        if nf < floor_db:
            nf = floor_db
            hits["floor_clamp"] += 1
        zz = params[kernels.P_SNR_SLOPE] * (smooth - nf - params[kernels.P_SNR0])
        zz += params[kernels.P_RATIO_W] * ratio[h]
        if lv < gate_db:
            zz -= 10.0
            hits["gate"] += 1
        probs[h] = 1.0 / (1.0 + math.exp(-zz))
    st[kernels.S_NF] = nf
    st[kernels.S_INIT] = 1.0 if init else 0.0
    st[kernels.S_BLOCK_MIN] = block_min
    st[kernels.S_BLOCK_POS] = block_pos
    st[kernels.S_BLOCK_IDX] = block_idx
    st[kernels.S_PREV_L] = prev
    st[kernels.S_BLOCKS : kernels.S_BLOCKS + nblk] = blocks
    return probs.astype(np.float32), st, hits


def run_energy_kernel(
    streams: list[np.ndarray], params: np.ndarray, states: np.ndarray | None = None
) -> tuple[list[np.ndarray], np.ndarray]:
    offsets = np.zeros(len(streams) + 1, dtype=np.int64)
    offsets[1:] = np.cumsum([s.shape[0] for s in streams])
    batch = np.ascontiguousarray(np.concatenate(streams).astype(np.int16))
    if states is None:
        states = np.zeros((len(streams), kernels.STATE_SIZE))
    out = np.full(batch.shape[0], np.nan, dtype=np.float32)
    kernels.energy_vad_kernel(batch, offsets, states, COEF, params, out)
    return [out[offsets[i] : offsets[i + 1]] for i in range(len(streams))], states


def to_hops(x: np.ndarray) -> np.ndarray:
    n = x.shape[0] // HOP
    return np.clip(np.round(x[: n * HOP]), -32768, 32767).astype(np.int16).reshape(n, HOP)


def noise(rng, n_hops, amp):
    return rng.normal(0.0, amp, n_hops * HOP)


def sine_burst_over_noise(rng, n_hops=700):
    x = noise(rng, n_hops, 60.0)
    t = np.arange(x.shape[0]) / 16_000
    burst = (t > 1.5) & (t < 3.5)
    syllables = 1 + 0.5 * np.sin(2 * np.pi * 4 * t[burst])
    x[burst] += 8000.0 * np.sin(2 * np.pi * 440.0 * t[burst]) * syllables
    return to_hops(x)


def clipping_square(n_hops=300):
    period = 80  # 200 Hz, full scale both ways
    x = np.where((np.arange(n_hops * HOP) // (period // 2)) % 2 == 0, 32767, -32768)
    return x.astype(np.int16).reshape(n_hops, HOP)


def test_params() -> np.ndarray:
    """Short blocks and a non-zero ratio weight, so every branch runs on short inputs."""
    return EnergyVadParams(
        block_hops=5,
        fall=0.3,
        track=0.05,
        near_db=6.0,
        rise_far_db=0.01,
        snr0_db=6.0,
        snr_slope=0.5,
        ratio_weight=-0.2,
        floor_db=-80.0,
        level_gate_db=-65.0,
    ).as_array()


test_params.__test__ = False  # a helper, not a test

PARAM_SETS = {"defaults": EnergyVadParams().as_array(), "short-blocks": test_params()}

INPUTS = {
    "noise": lambda: to_hops(noise(np.random.default_rng(1), 600, 300.0)),
    "sine-burst": lambda: sine_burst_over_noise(np.random.default_rng(2)),
    "silence": lambda: np.zeros((200, HOP), dtype=np.int16),
    "clipping-square": clipping_square,
    "loud-then-quiet": lambda: np.concatenate(
        [
            to_hops(noise(np.random.default_rng(3), 150, 4000.0)),
            to_hops(noise(np.random.default_rng(4), 300, 20.0)),
        ]
    ),
}


@pytest.mark.parametrize("params_name", PARAM_SETS)
@pytest.mark.parametrize("input_name", INPUTS)
def test_energy_kernel_matches_reference(input_name, params_name):
    hops = INPUTS[input_name]()
    params = PARAM_SETS[params_name]
    expected, ref_state, _ = ref_energy_vad(hops, params)
    (got,), states = run_energy_kernel([hops], params)
    assert np.all(np.isfinite(got))
    assert np.all((got >= 0.0) & (got <= 1.0))
    assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    assert_allclose(states[0], ref_state, rtol=1e-9, atol=1e-6)


def test_energy_reference_inputs_exercise_every_branch():
    """The comparison above is only as good as its coverage: every branch of the floor runs."""
    totals = dict.fromkeys(BRANCHES, 0)
    for make in INPUTS.values():
        for params in PARAM_SETS.values():
            _, _, hits = ref_energy_vad(make(), params)
            for k, v in hits.items():
                totals[k] += v
    assert all(v > 0 for v in totals.values()), totals


def test_energy_kernel_digital_silence_is_finite_and_not_speech():
    hops = np.zeros((100, HOP), dtype=np.int16)
    for params in PARAM_SETS.values():
        (got,), states = run_energy_kernel([hops], params)
        assert np.all(np.isfinite(got))
        assert np.all(np.isfinite(states))
        assert got.max() < 0.01  # below the level gate: never speech
        assert states[0, kernels.S_NF] == params[kernels.P_FLOOR_DB]


def test_energy_kernel_clipping_is_finite():
    hops = clipping_square()
    for params in PARAM_SETS.values():
        (got,), states = run_energy_kernel([hops], params)
        assert np.all(np.isfinite(got))
        assert np.all(np.isfinite(states))


def test_energy_kernel_sine_burst_scores_above_background():
    """A 2 s tone burst, shorter than the 4.8 s floor window, stays above the floor."""
    params = test_params()
    params[kernels.P_BLOCK_HOPS] = 60
    hops = sine_burst_over_noise(np.random.default_rng(2))
    (got,), _ = run_energy_kernel([hops], params)
    t = (np.arange(hops.shape[0]) + 0.5) / 100
    burst = got[(t > 1.6) & (t < 3.4)]
    before = got[(t > 0.5) & (t < 1.4)]
    assert np.median(burst) > 0.9
    assert np.median(before) < 0.5


@pytest.mark.parametrize("params_name", PARAM_SETS)
def test_energy_kernel_batch_equals_separate_calls(params_name):
    params = PARAM_SETS[params_name]
    streams = [
        sine_burst_over_noise(np.random.default_rng(5), 420),
        to_hops(noise(np.random.default_rng(6), 1, 500.0)),
        clipping_square(77),
    ]
    batched, batch_states = run_energy_kernel(streams, params)
    for i, s in enumerate(streams):
        (alone,), alone_state = run_energy_kernel([s], params)
        assert_array_equal(batched[i], alone)
        assert_array_equal(batch_states[i], alone_state[0])


def test_energy_kernel_empty_stream_in_batch_is_untouched():
    params = PARAM_SETS["defaults"]
    streams = [
        to_hops(noise(np.random.default_rng(7), 30, 500.0)),
        np.zeros((0, HOP), np.int16),
        to_hops(noise(np.random.default_rng(8), 20, 500.0)),
    ]
    outs, states = run_energy_kernel(streams, params)
    assert [o.shape[0] for o in outs] == [30, 0, 20]
    assert_array_equal(states[1], np.zeros(kernels.STATE_SIZE))
    (alone,), _ = run_energy_kernel([streams[2]], params)
    assert_array_equal(outs[2], alone)


@pytest.mark.parametrize("params_name", PARAM_SETS)
def test_energy_kernel_state_carries_across_calls(params_name):
    params = PARAM_SETS[params_name]
    hops = sine_burst_over_noise(np.random.default_rng(9), 500)
    (whole,), whole_state = run_energy_kernel([hops], params)
    states = np.zeros((1, kernels.STATE_SIZE))
    parts = []
    for part in np.split(hops, [1, 2, 61, 300, 301]):
        (got,), states = run_energy_kernel([part], params, states)
        parts.append(got)
    assert_array_equal(np.concatenate(parts), whole)
    assert_array_equal(states, whole_state)
    # and the reference agrees when resumed from a mid-stream state
    first, st, _ = ref_energy_vad(hops[:250], params)
    second, st, _ = ref_energy_vad(hops[250:], params, st)
    assert_allclose(np.concatenate([first, second]), whole, rtol=1e-5, atol=1e-6)
    assert_allclose(st, whole_state[0], rtol=1e-9, atol=1e-6)


# ---------------------------------------------------------------------------
# webrtc_kernel: webrtcvad's C detectors for many streams at once


@cache
def _sample_tracks() -> list[np.ndarray]:
    """The bundled sample's tracks at 16 kHz: real speech, pauses and room noise."""
    infos, chunks = decode_file(str(sample_session()))
    parts: list[list[np.ndarray]] = [[] for _ in infos]
    for i, chunk in chunks:
        parts[i].append(chunk)
    return [np.concatenate(p) for p in parts]


@pytest.mark.parametrize("aggressiveness", [0, 3])
def test_webrtc_kernel_matches_is_speech_on_real_speech(aggressiveness: int) -> None:
    """Eight streams (the sample's four tracks, each twice from other offsets), fed in
    ticks of 0-5 hops each through `process_flat`, give every hop the decision that
    `webrtcvad.Vad.is_speech` (the package's public call) gives it on a detector of
    its own: the kernel keeps each stream's detector apart and walks the hops in order."""
    tracks = _sample_tracks()
    sources = [t[k * 16_000 :] for k in (0, 7) for t in tracks]
    backend = WebRtcBackend(VadConfig(backend="webrtc", webrtc_aggressiveness=aggressiveness))
    ours = [backend.open_stream() for _ in sources]
    assert all(s.handle for s in ours)  # the kernel path, not the fallback
    refs = [webrtcvad.Vad(aggressiveness) for _ in sources]
    at = [0] * len(sources)
    rng = np.random.default_rng(aggressiveness)
    got: list[list[float]] = [[] for _ in sources]
    want: list[list[float]] = [[] for _ in sources]
    for _ in range(1500):
        counts = [int(n) for n in rng.integers(0, 6, len(sources))]
        chunk = []
        for i, n in enumerate(counts):
            h = sources[i][at[i] * HOP : (at[i] + n) * HOP].reshape(-1, HOP)
            chunk.append(h)
            at[i] += n
            want[i] += [float(refs[i].is_speech(row.tobytes(), 16_000)) for row in h]
        out, n_out = backend.process_flat(ours, np.concatenate(chunk), counts)
        assert out.dtype == np.float32
        assert n_out == counts
        for i, part in enumerate(np.split(out, np.cumsum(counts)[:-1])):
            got[i] += part.tolist()
    for g, w in zip(got, want, strict=True):
        assert g == w
    flat = np.concatenate(got)
    assert 0.1 < flat.mean() < 0.9  # speech and non-speech both decided


def test_webrtc_state_reset_gives_a_new_detector() -> None:
    """`reset` replaces the detector: its handle changes and the old one's history
    no longer counts (a fresh detector decides as a new `Vad` does)."""
    backend = WebRtcBackend(VadConfig(backend="webrtc"))
    state = backend.open_stream()
    speech = _sample_tracks()[2][: 300 * HOP].reshape(-1, HOP)
    backend.process_flat([state], speech, [300])
    state.reset()
    fresh = webrtcvad.Vad(VadConfig().webrtc_aggressiveness)
    tail = _sample_tracks()[0][: 200 * HOP].reshape(-1, HOP)
    want = [float(fresh.is_speech(row.tobytes(), 16_000)) for row in tail]
    assert backend.process_flat([state], tail, [200])[0].tolist() == want


# ---------------------------------------------------------------------------
# silero_cut_kernel and silero_emit_kernel

S_HOP, S_CHUNK, S_CONTEXT = HOP, 512, 64
S_WIDTH = S_CONTEXT + S_CHUNK


def ref_silero_inputs(
    x: np.ndarray, flags: np.ndarray, gated: bool
) -> tuple[list[np.ndarray], list[bool]]:
    """A whole stream at once: its model inputs (CONTEXT zeros, then the samples, cut
    at every CHUNK, each input CONTEXT + CHUNK long) and, per input, whether it is
    scored: the gate heard speech in a hop centred in its chunk or in the one before."""
    full = np.concatenate((np.zeros(S_CONTEXT, np.float32), x))
    n = x.shape[0] // S_CHUNK
    inputs = [full[c * S_CHUNK : c * S_CHUNK + S_WIDTH] for c in range(n)]
    heard = [False] * (n + 1)
    for j, f in enumerate(flags.tolist()):
        c = (j * S_HOP + S_HOP // 2) // S_CHUNK
        if f > 0 and c < n:
            heard[c] = True
    scored = [not gated or heard[c] or (c > 0 and heard[c - 1]) for c in range(n)]
    return inputs, scored


def ref_silero_emit(n_hops: int, chunk_probs: list[float]) -> list[float]:
    """Each hop whose centre's chunk is scored gets that chunk's probability."""
    out = []
    for j in range(n_hops):
        c = (j * S_HOP + S_HOP // 2) // S_CHUNK
        if c >= len(chunk_probs):
            break
        out.append(chunk_probs[c])
    return out


@pytest.mark.parametrize("gated", [False, True])
def test_silero_kernels_match_whole_signal_reference(gated: bool) -> None:
    """Six streams fed 0-9 hops a call, batched, through both kernels give each stream
    the inputs, gate decisions and hop probabilities that the whole signal gives at
    once: the tails carry samples across calls and the counters carry the gate."""
    rng = np.random.default_rng(int(gated))
    n_streams, n_hops = 6, 400
    xs = [rng.normal(0, 0.1, n_hops * S_HOP).astype(np.float32) for _ in range(n_streams)]
    flags = [(rng.random(n_hops) < p).astype(np.float32) for p in (0.0, 0.05, 0.3, 0.5, 0.9, 1)]
    meta = np.zeros((n_streams, kernels.SILERO_META_SIZE), np.int64)
    tails = [np.zeros(S_CONTEXT, np.float32) for _ in range(n_streams)]
    at = [0] * n_streams
    got_inputs: list[list[np.ndarray]] = [[] for _ in range(n_streams)]
    got_scored: list[list[bool]] = [[] for _ in range(n_streams)]
    got_probs: list[list[float]] = [[] for _ in range(n_streams)]
    chunk_value = [0.0] * n_streams  # each input's "probability": a per-stream counter
    while min(at) < n_hops:
        counts = [min(int(rng.integers(0, 10)), n_hops - a) for a in at]
        x = np.concatenate(
            [xs[i][at[i] * S_HOP : (at[i] + n) * S_HOP] for i, n in enumerate(counts)]
        )
        f = np.concatenate([flags[i][at[i] : at[i] + n] for i, n in enumerate(counts)])
        n_samples = np.array(counts, np.int64) * S_HOP
        room = int(
            sum(
                (t.shape[0] - S_CONTEXT + n) // S_CHUNK
                for t, n in zip(tails, n_samples, strict=True)
            )
        )
        x_out = np.full((room + 1, S_WIDTH), np.nan, np.float32)
        owner, rank = np.full(room + 1, -1, np.int64), np.full(room + 1, -1, np.int64)
        open_ = np.full(room + 1, 9, np.uint8)
        tails_out = np.empty((n_streams, S_WIDTH), np.float32)
        n_tail_out = np.empty(n_streams, np.int64)
        before = meta.copy()
        made = kernels.silero_cut_kernel(
            np.concatenate(tails),
            np.array([t.shape[0] for t in tails], np.int64),
            x,
            n_samples,
            f,
            np.array(counts, np.int64),
            gated,
            meta,
            S_HOP,
            S_CHUNK,
            S_CONTEXT,
            x_out,
            owner,
            rank,
            open_,
            tails_out,
            n_tail_out,
        )
        assert made == room and np.isnan(x_out[made]).all()  # nothing written past them
        assert owner[:made].tolist() == sorted(owner[:made].tolist())  # stream after stream
        probs = np.empty(made, np.float32)
        for r in range(made):
            i = int(owner[r])
            assert rank[r] == len([o for o in owner[:r] if o == i])
            got_inputs[i].append(x_out[r].copy())
            got_scored[i].append(bool(open_[r]))
            chunk_value[i] += 1.0
            probs[r] = chunk_value[i]
        out = np.full(sum(counts) + 5 * n_streams, np.nan, np.float32)
        n_out = np.empty(n_streams, np.int64)
        emitted = kernels.silero_emit_kernel(before, meta, probs, S_HOP, S_CHUNK, out, n_out)
        assert emitted == n_out.sum()
        for i, part in enumerate(np.split(out[:emitted], np.cumsum(n_out)[:-1])):
            got_probs[i] += part.tolist()
        tails = [tails_out[i, : n_tail_out[i]].copy() for i in range(n_streams)]
        at = [a + n for a, n in zip(at, counts, strict=True)]
    for i in range(n_streams):
        want_inputs, want_scored = ref_silero_inputs(xs[i], flags[i], gated)
        assert len(got_inputs[i]) == len(want_inputs)
        for g, w in zip(got_inputs[i], want_inputs, strict=True):
            assert_array_equal(g, w)
        assert got_scored[i] == want_scored
        assert meta[i, kernels.SM_HOPS_IN] == n_hops
        assert got_probs[i] == ref_silero_emit(
            n_hops, [float(c + 1) for c in range(len(want_inputs))]
        )
    if gated:  # the flags' spread reaches both answers
        assert not all(got_scored[0]) and all(got_scored[-1])
