"""Per-stream prosody: eGeMAPS-style voice features per 10 ms hop, and running summaries.

`ProsodyTracker` takes a participant's 16 kHz int16 audio in whole hops together with
the VAD's speech mask for those hops and returns `ProsodyHops`; `process_batch` does
the same for many streams with shared FFT calls (the costly, vectorisable step). Results
depend only on the audio and mask, never on how they are split into chunks: every
stateful step runs in hop order in engine/affect/kernels.py.

The FFT runs only where a kernel reads a spectrum: on speech hops and on the hop
before each, whose spectrum the flux of the next one compares with. People speak
10-20 % of a group session, so that skips most of the cost. A non-speech hop's level
still steers the syllable-nucleus tracker; it comes from the frame's time-domain
energy, equal to the spectral one by Parseval (tests/test_prosody.py checks that the
outputs match the all-hops FFT exactly).

Nothing here stores audio beyond a 64 ms history per stream.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from engine.affect import kernels as k
from engine.types import HOP, HOPS_PER_SECOND, SAMPLE_RATE

HISTORY = 1024
"""Samples kept between pushes: one frame plus the pulse tracker's look-back."""
FRAME_LAG_S = (k.FRAME / 2) / SAMPLE_RATE
"""A hop's frame is centred this long before the hop's end (22.5 ms)."""


@dataclass(frozen=True, kw_only=True, slots=True)
class ProsodyConfig:
    """Prosody settings. Defaults were set on the vad/ files and Emo-DB speakers 03, 08, 10
    (see bench/eval_prosody.py); the figures we report come from other files."""

    f0_min_hz: float = 60.0
    f0_max_hz: float = 500.0
    voicing_threshold: float = 0.45  # Praat's default
    octave_cost: float = 0.1  # per octave, favours the higher of two harmonically related peaks
    jump_cost: float = 0.15  # per octave of change from the previous voiced hop
    silence_db: float = -55.0  # frames below this level (dBFS) are never voiced
    max_period_factor: float = 1.3  # Praat's jitter/shimmer defaults
    max_amplitude_factor: float = 1.6
    nucleus_dip_db: float = 1.0  # de Jong & Wempe use 2 dB on a smoother contour
    nucleus_range_db: float = 25.0  # nuclei within this of the recent loudest speech
    nucleus_decay_db_per_s: float = 2.0

    def __post_init__(self) -> None:
        if not 40.0 <= self.f0_min_hz < self.f0_max_hz <= 1000.0:
            raise ValueError(
                f"need 40 <= f0_min_hz < f0_max_hz <= 1000, got {self.f0_min_hz}, {self.f0_max_hz}"
            )
        if SAMPLE_RATE / self.f0_min_hz + 2 > k.NFFT - k.FRAME:
            raise ValueError(f"f0_min_hz {self.f0_min_hz} is below what the frame can analyse")
        if not 0.0 < self.voicing_threshold < 1.0:
            raise ValueError(f"voicing_threshold must be in (0, 1), got {self.voicing_threshold}")
        for name in ("octave_cost", "jump_cost", "nucleus_dip_db", "nucleus_decay_db_per_s"):
            if getattr(self, name) < 0.0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.max_period_factor <= 1.0 or self.max_amplitude_factor <= 1.0:
            raise ValueError("max_period_factor and max_amplitude_factor must be > 1")
        if self.nucleus_range_db <= 0.0:
            raise ValueError(f"nucleus_range_db must be > 0, got {self.nucleus_range_db}")

    @property
    def lag_lo(self) -> int:
        return math.floor(SAMPLE_RATE / self.f0_max_hz)

    @property
    def lag_hi(self) -> int:
        return math.ceil(SAMPLE_RATE / self.f0_min_hz)


def _window() -> tuple[np.ndarray, np.ndarray, float]:
    w = np.hanning(k.FRAME + 2)[1:-1]  # strictly positive Hann
    wp = np.abs(np.fft.rfft(w, k.NFFT)) ** 2
    wacf = np.fft.irfft(wp, k.NFFT)
    return w, wacf / wacf[0], float(np.sum(w * w))


_WINDOW, _WINDOW_ACF, _WINDOW_POWER = _window()
FFT_BLOCK = 32
"""Frames per FFT call: the transforms' temporaries then stay in cache (one call over a
tick's 600+ frames spilt megabytes and cost 40-50 % more per frame)."""
_BINS = np.array(
    [round(f * k.NFFT / SAMPLE_RATE) for f in (50.0, 1000.0, 2000.0, 5000.0)] + [k.N_BINS],
    dtype=np.int64,
)


@dataclass(slots=True)
class ProsodyState:
    """One stream's state: audio history, kernel states, running sums, hops seen."""

    history: np.ndarray = field(default_factory=lambda: np.zeros(HISTORY))
    pitch: np.ndarray = field(default_factory=lambda: np.zeros(k.PITCH_STATE_SIZE))
    spectral: np.ndarray = field(default_factory=lambda: np.zeros(k.SPECTRAL_STATE_SIZE))
    pulse: np.ndarray = field(default_factory=lambda: np.array([-1.0, 0.0, 0.0, 1.0]))
    nuclei: np.ndarray = field(default_factory=k.nuclei_initial_state)
    sums: np.ndarray = field(default_factory=lambda: np.zeros((k.N_SUMS, 3)))
    hops: int = 0
    speech_hops: int = 0
    voiced_hops: int = 0
    nuclei_count: int = 0
    spectral_hop: int = -1
    """The hop whose spectrum `spectral` holds (-1: none). Spectra are skipped off speech,
    so a chunk that opens with speech may need the previous hop's recomputed."""

    def reset(self) -> None:
        self.history.fill(0.0)
        self.pitch.fill(0.0)
        self.spectral.fill(0.0)
        self.pulse[:] = (-1.0, 0.0, 0.0, 1.0)
        self.nuclei[:] = k.nuclei_initial_state()
        self.sums.fill(0.0)
        self.hops = self.speech_hops = self.voiced_hops = self.nuclei_count = 0
        self.spectral_hop = -1


FEATURES = (
    "f0_st",  # F0, semitones re 27.5 Hz (eGeMAPS F0semitoneFrom27.5Hz); voiced hops
    "loudness_db",  # frame RMS level, dBFS
    "jitter",  # local jitter, fraction of the mean period (eGeMAPS jitterLocal)
    "shimmer_db",  # local shimmer, dB (eGeMAPS shimmerLocaldB)
    "hnr_db",  # harmonics-to-noise ratio from the autocorrelation peak, dB; voiced hops
    "alpha_ratio_db",  # energy 1-5 kHz over 50 Hz-1 kHz, dB (eGeMAPS alphaRatio)
    "hammarberg_db",  # peak 0-2 kHz over peak 2-5 kHz, dB (eGeMAPS hammarbergIndex)
    "spectral_flux",  # change of the normalised magnitude spectrum (eGeMAPS spectralFlux)
)
"""The float per-hop features, in the column order of ProsodyHops.values."""


@dataclass(frozen=True, kw_only=True, slots=True)
class ProsodyHops:
    """Features of consecutive hops [start_hop, start_hop + n) of one stream.

    `values` holds one row per hop and one column per name in FEATURES (properties give
    each column). NaN where a feature is undefined: every feature outside speech; F0 and
    HNR off voiced hops; jitter and shimmer on hops that closed no pair of glottal
    periods. Each hop's frame is centred FRAME_LAG_S before the hop's end.
    """

    start_hop: int
    values: np.ndarray  # float64 (n, len(FEATURES))
    speech: np.ndarray  # bool (n): the VAD mask as given
    voiced: np.ndarray  # bool (n): speech with a pitch
    nucleus: np.ndarray  # bool (n): a syllable nucleus was confirmed at this hop

    @property
    def n(self) -> int:
        return int(self.speech.shape[0])

    def matrix(self, names: Sequence[str] = ()) -> np.ndarray:
        """The named features as columns (n, len(names)); all of FEATURES if empty."""
        if not names:
            return self.values
        return self.values[:, [FEATURES.index(name) for name in names]]

    @property
    def f0_st(self) -> np.ndarray:
        return self.values[:, k.F_F0]

    @property
    def loudness_db(self) -> np.ndarray:
        return self.values[:, k.F_LOUD]

    @property
    def jitter(self) -> np.ndarray:
        return self.values[:, k.F_JITTER]

    @property
    def shimmer_db(self) -> np.ndarray:
        return self.values[:, k.F_SHIMMER]

    @property
    def hnr_db(self) -> np.ndarray:
        return self.values[:, k.F_HNR]

    @property
    def alpha_ratio_db(self) -> np.ndarray:
        return self.values[:, k.F_ALPHA]

    @property
    def hammarberg_db(self) -> np.ndarray:
        return self.values[:, k.F_HAMM]

    @property
    def spectral_flux(self) -> np.ndarray:
        return self.values[:, k.F_FLUX]


@dataclass(frozen=True, kw_only=True, slots=True)
class ProsodySummary:
    """A stream's running summary since its start (or last reset). NaN when undefined."""

    speech_s: float  # time the VAD marked as speech
    voiced_s: float  # speech time with a pitch
    f0_mean_st: float
    f0_sd_st: float  # pitch variability
    loudness_mean_db: float  # over speech hops
    loudness_sd_db: float
    jitter: float  # over all period pairs, as Praat's "jitter (local)"
    shimmer_db: float  # over all amplitude pairs, as Praat's "shimmer (local, dB)"
    hnr_mean_db: float  # over voiced hops
    alpha_ratio_mean_db: float  # over speech hops
    hammarberg_mean_db: float
    spectral_flux_mean: float
    nuclei: int
    syllable_rate: float  # nuclei per second of speech (articulation-rate-like)


def _mean_sd(s: np.ndarray) -> tuple[float, float]:
    n, total, sq = float(s[0]), float(s[1]), float(s[2])
    if n <= 0:
        return math.nan, math.nan
    mean = total / n
    var = max(sq / n - mean * mean, 0.0)
    return mean, math.sqrt(var)


class ProsodyTracker:
    """One participant's prosody. Not shared between streams; cheap to create."""

    __slots__ = ("_nuclei_params", "_pitch_params", "_pulse_params", "config", "state")

    def __init__(self, config: ProsodyConfig | None = None) -> None:
        self.config = config or ProsodyConfig()
        self.state = ProsodyState()
        c = self.config
        self._pitch_params = np.zeros(k.PITCH_PARAMS_SIZE)
        self._pitch_params[k.P_LAG_LO] = c.lag_lo
        self._pitch_params[k.P_LAG_HI] = c.lag_hi
        self._pitch_params[k.P_VOICING] = c.voicing_threshold
        self._pitch_params[k.P_OCTAVE_COST] = c.octave_cost
        self._pitch_params[k.P_JUMP_COST] = c.jump_cost
        self._pitch_params[k.P_SILENCE_DB] = c.silence_db
        self._pulse_params = np.array([c.max_period_factor, c.max_amplitude_factor])
        self._nuclei_params = np.array(
            [c.nucleus_dip_db, c.nucleus_range_db, c.nucleus_decay_db_per_s / HOPS_PER_SECOND]
        )

    def reset(self) -> None:
        self.state.reset()

    def push(self, pcm: np.ndarray, speech: np.ndarray) -> ProsodyHops:
        """Features of the hops in `pcm` (int16: (n * HOP,) samples or (n, HOP) hops) given
        the VAD's per-hop speech mask (bool, (n,))."""
        return process_batch([self], [pcm], [speech])[0]

    def summary(self) -> ProsodySummary:
        st = self.state
        s = st.sums
        f0_mean, f0_sd = _mean_sd(s[k.F_F0])
        loud_mean, loud_sd = _mean_sd(s[k.F_LOUD])
        p = s[k.N_FEATURES :, 1]
        jitter = math.nan
        if p[k.O_NPAIRS] > 0 and p[k.O_SUM_T] > 0:
            jitter = (p[k.O_SUM_DT] / p[k.O_NPAIRS]) / (p[k.O_SUM_T] / p[k.O_NPER])
        shimmer = p[k.O_SUM_DB] / p[k.O_NAMP] if p[k.O_NAMP] > 0 else math.nan
        speech_s = st.speech_hops / HOPS_PER_SECOND
        return ProsodySummary(
            speech_s=speech_s,
            voiced_s=st.voiced_hops / HOPS_PER_SECOND,
            f0_mean_st=f0_mean,
            f0_sd_st=f0_sd,
            loudness_mean_db=loud_mean,
            loudness_sd_db=loud_sd,
            jitter=float(jitter),
            shimmer_db=float(shimmer),
            hnr_mean_db=_mean_sd(s[k.F_HNR])[0],
            alpha_ratio_mean_db=_mean_sd(s[k.F_ALPHA])[0],
            hammarberg_mean_db=_mean_sd(s[k.F_HAMM])[0],
            spectral_flux_mean=_mean_sd(s[k.F_FLUX])[0],
            nuclei=st.nuclei_count,
            syllable_rate=st.nuclei_count / speech_s if speech_s > 0 else math.nan,
        )

    def _advance(
        self,
        buf: np.ndarray,
        level: np.ndarray,
        alpha: np.ndarray,
        hamm: np.ndarray,
        flux: np.ndarray,
        acf: np.ndarray,
        speech: np.ndarray,
        values: np.ndarray,
        voiced: np.ndarray,
        nucleus: np.ndarray,
    ) -> ProsodyHops:
        """Everything after the spectral kernel, given its outputs for the chunk's hops
        (only level is read off speech), into the caller's output rows: `speech` (bool,
        the caller's copy of the mask), `values`, `voiced` and `nucleus` (uint8)."""
        st = self.state
        n_speech, n_voiced, n_nuclei = k.advance_kernel(
            acf,
            _WINDOW_ACF,
            level,
            alpha,
            hamm,
            flux,
            speech.view(np.uint8),
            buf,
            st.hops,
            HOP,
            self._pitch_params,
            self._pulse_params,
            self._nuclei_params,
            st.pitch,
            st.pulse,
            st.nuclei,
            st.sums,
            st.history,
            values,
            voiced,
            nucleus,
        )
        out = ProsodyHops(
            start_hop=st.hops,
            values=values,
            speech=speech,
            voiced=voiced.view(np.bool_),
            nucleus=nucleus.view(np.bool_),
        )
        st.hops += speech.shape[0]
        st.speech_hops += n_speech
        st.voiced_hops += n_voiced
        st.nuclei_count += n_nuclei
        return out


def _flat(pcm: np.ndarray) -> np.ndarray:
    """Hops as the framer gives them, (n, HOP), or as one run of samples, (n * HOP,)."""
    if pcm.ndim == 2 and pcm.shape[1] == HOP:
        return pcm.reshape(-1)
    return pcm


def _check(pcm: np.ndarray, speech: np.ndarray) -> int:
    if pcm.dtype != np.int16 or pcm.ndim != 1:
        raise ValueError(f"pcm must be int16, (n,) or (n, {HOP}); got {pcm.dtype} {pcm.shape}")
    if pcm.shape[0] % HOP:
        raise ValueError(f"pcm must hold whole {HOP}-sample hops, got {pcm.shape[0]} samples")
    n = pcm.shape[0] // HOP
    if speech.shape != (n,):
        raise ValueError(f"speech mask must have one value per hop ({n}), got {speech.shape}")
    return n


def process_batch(
    trackers: Sequence[ProsodyTracker],
    pcms: Sequence[np.ndarray],
    speech: Sequence[np.ndarray],
) -> list[ProsodyHops]:
    """Advance several streams at once: FFTs over all their frames (FFT_BLOCK per call),
    then each stream's kernels in hop order. Same result as calling each tracker's push alone.

    The returned ProsodyHops are views into arrays shared by the batch: a live tick's
    call holds a few streams' blocks, mostly without speech, where allocating each
    stream's arrays apart cost more than computing them."""
    if not len(trackers) == len(pcms) == len(speech):
        raise ValueError(f"{len(trackers)} trackers, {len(pcms)} pcm arrays, {len(speech)} masks")
    if len({id(t) for t in trackers}) != len(trackers):
        raise ValueError("a tracker appears twice in one batch")
    if not trackers:
        return []
    pcms = [_flat(p) for p in pcms]
    counts = [_check(p, m) for p, m in zip(pcms, speech, strict=True)]
    # One copy of all masks (the caller may reuse its own); each stream gets a view.
    masks_all = np.concatenate([np.asarray(m, dtype=np.bool_) for m in speech])
    ends = list(itertools.accumulate(counts))
    masks = [masks_all[e - n : e] for e, n in zip(ends, counts, strict=True)]
    # A chunk that opens with speech needs the previous hop's spectrum for its flux;
    # unless the stream's state holds it, that hop is framed again from the history.
    pre = [
        n > 0 and bool(m[0]) and t.state.hops > 0 and t.state.spectral_hop != t.state.hops - 1
        for t, m, n in zip(trackers, masks, counts, strict=True)
    ]
    total = ends[-1] + sum(pre)
    # Frames only where a kernel reads a spectrum (speech hops and the hop before each,
    # whose spectrum the next hop's flux compares with); other hops get their level only.
    # NFFT wide, the kernel zeroing each row's tail: rfft of a padded row is the same,
    # bit for bit, as rfft(frame, NFFT), without the copy numpy makes to pad it.
    frames = np.empty((total, k.NFFT))
    rows = np.empty(total, dtype=np.int64)  # each frame's row in the batch
    sel = np.empty(total, dtype=np.bool_)  # each frame's speech flag
    level, alpha, hamm, flux = np.zeros((4, total))
    # every stream's samples (history, then its chunk), one after the other
    bufs_all = np.empty(HISTORY * len(trackers) + HOP * ends[-1])
    bufs: list[np.ndarray] = []
    starts: list[int] = []  # each stream's first row (its extra previous hop, if any)
    bounds = [0]  # each stream's spectra: frames [bounds[i], bounds[i + 1])
    first = HISTORY + HOP - k.FRAME
    row = kept = at = 0
    for t, pcm, n, m, p in zip(trackers, pcms, counts, masks, pre, strict=True):
        buf = bufs_all[at : at + HISTORY + pcm.shape[0]]
        at += buf.shape[0]
        bufs.append(buf)
        starts.append(row)
        if p:  # the previous hop, framed again from the history: its spectrum only
            m = np.concatenate(([False], m))
        kept += k.stream_frames_kernel(
            t.state.history,
            pcm,
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
        bounds.append(kept)
        row += n + p
    rows = rows[:kept]
    lag_max = max(t.config.lag_hi for t in trackers) + 2
    # The pitch kernel reads autocorrelations on speech hops only: a batch without
    # speech (most, live) needs no columns, and zeroing them cost more than its kernels.
    acf = np.zeros((total, lag_max if masks_all.any() else 0))
    power = np.empty((kept, k.N_BINS))
    for a in range(0, kept, FFT_BLOCK):
        b = min(a + FFT_BLOCK, kept)
        spec = np.fft.rfft(frames[a:b], axis=1)
        pw = power[a:b]
        np.multiply(spec.real, spec.real, out=pw)
        pw += spec.imag * spec.imag
        # The autocorrelation only where the pitch kernel reads it, on speech hops: the
        # inverse FFT costs about a third of the forward one.
        s = sel[a:b]
        n_sel = int(np.count_nonzero(s))
        if n_sel == b - a:
            acf[rows[a:b]] = np.fft.irfft(pw, k.NFFT, axis=1)[:, :lag_max]
        elif n_sel:
            acf[rows[a:b][s]] = np.fft.irfft(pw[s], k.NFFT, axis=1)[:, :lag_max]
    values = np.empty((ends[-1], k.N_FEATURES))
    voiced = np.empty(ends[-1], dtype=np.uint8)
    nucleus = np.empty(ends[-1], dtype=np.uint8)
    results = []
    for i, (t, buf, n, p) in enumerate(zip(trackers, bufs, counts, pre, strict=True)):
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
        o = ends[i] - n  # the stream's first output row
        results.append(
            t._advance(
                buf,
                level[row:end],
                alpha[row:end],
                hamm[row:end],
                flux[row:end],
                acf[row:end],
                masks[i],
                values[o : o + n],
                voiced[o : o + n],
                nucleus[o : o + n],
            )
        )
    return results
