"""Session synthesizer: multi-track group sessions from recorded speech, with exact truth.

Why: the engagement signals and the bleed suppressor need sessions whose truth is
known to the hop, with the events a facilitator cares about (turns, backchannels,
overlaps, interruptions, group silences) and the loudspeaker bleed a real call
has. Speech comes from the bundled sample's utterances (cut from each track at
its truth segments) and, where present, from ../shared/data/vad (cut at its
speech labels). Everything is a deterministic function of the script and seed.

Main names:
- `Script` of events (`Turn`, `Backchannel`, `Overlap`, `Interruption`,
  `Silence`) plus session-wide `Bleed` couplings; `random_script(seed)`.
- `synthesize(script) -> Session`: int16 16 kHz tracks and a `Truth`.
- `Session.write_mkv(dir)`: one Opus track per participant, titled by name.
- `packets(session)` and `network(packets, seed=...)`: the live-path arrival.

All truth times are in 10 ms hops (the engine's unit), half-open [start, end).
"""

from __future__ import annotations

import wave
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import av
import numpy as np
from scipy.signal import butter, lfilter, sosfilt

from engine.audio.decode import decode_file
from engine.datasets import read_scv, shared_data_dir
from engine.sample import sample_session, sample_truth
from engine.types import HOP, HOPS_PER_SECOND, SAMPLE_RATE, SpeechSegment

MERGE_GAP_S = 0.3
BACKCHANNEL_CLEAR_S = 1.0
"""A backchannel this close to its speaker's own other speech is, by docs/signals.md
(pauses up to `turn_gap_s` = 1 s stay inside an utterance), part of that utterance:
the truth would then name a backchannel and an interruption or turn start that the
audio does not hold, so such backchannels are left out of the session."""
"""Pauses shorter than this inside one person's speech count as speech in `segments`
(a listener hears one utterance; the VAD's default min_silence bridges them too)."""
GROUP_SILENCE_S = 3.0
FADE_S = 0.02


# -- voices -------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Voice:
    """One speaker's recorded utterances (16 kHz float32, peak-normalised to 1)."""

    name: str
    clips: tuple[np.ndarray, ...]
    short: tuple[np.ndarray, ...] = ()  # recorded backchannels, if any


def _norm(clips: list[np.ndarray]) -> list[np.ndarray]:
    peak = max(float(np.abs(c).max()) for c in clips)
    return [(c / peak).astype(np.float32) for c in clips]


@cache
def sample_voices() -> tuple[Voice, ...]:
    """The bundled sample's four voices, cut from their tracks at the truth segments."""
    truth = sample_truth()
    tracks, chunks = decode_file(sample_session())
    parts: list[list[np.ndarray]] = [[] for _ in tracks]
    for i, pcm in chunks:
        parts[i].append(pcm)
    audio = [np.concatenate(p).astype(np.float32) / 32768.0 for p in parts]
    bcs = {(round(a, 3), n) for a, _, n in truth["events"]["backchannels"]}
    voices = []
    for p in truth["participants"]:
        x = audio[p["track"]]
        clips: list[np.ndarray] = []
        short: list[np.ndarray] = []
        for a, b in p["segments"]:
            c = x[round(a * SAMPLE_RATE) : round(b * SAMPLE_RATE)]
            (short if (round(a, 3), p["name"]) in bcs else clips).append(c)
        allc = _norm(clips + short)
        voices.append(Voice(p["name"], tuple(allc[: len(clips)]), tuple(allc[len(clips) :])))
    return tuple(voices)


@cache
def shared_voices() -> tuple[Voice, ...]:
    """Real speech from ../shared/data/vad, one voice per file, cut at its speech labels.

    Empty when the data is absent. Files with under 3 s of labelled speech are skipped.
    """
    root = shared_data_dir()
    if root is None or not (root / "vad").is_dir():
        return ()
    voices = []
    for scv in sorted((root / "vad").glob("*.scv")):
        wav = scv.with_suffix(".wav")
        if not wav.exists():
            continue
        with wave.open(str(wav)) as w:
            if w.getframerate() != SAMPLE_RATE or w.getsampwidth() != 2 or w.getnchannels() != 1:
                continue
            x = np.frombuffer(w.readframes(w.getnframes()), np.int16).astype(np.float32) / 32768
        speech, _ = read_scv(scv)
        clips = [x[round(a * SAMPLE_RATE) : round(b * SAMPLE_RATE)] for a, b in speech]
        clips = [c for c in clips if c.shape[0] >= 0.3 * SAMPLE_RATE and np.abs(c).max() > 0]
        if sum(c.shape[0] for c in clips) >= 3 * SAMPLE_RATE:
            voices.append(Voice(scv.stem, tuple(_norm(clips))))
    return tuple(voices)


# -- the script ---------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True, slots=True)
class Turn:
    """`speaker` takes the floor `gap_s` after the current turn ends, for ~`duration_s`."""

    speaker: str
    duration_s: float
    gap_s: float = 0.6


@dataclass(frozen=True, kw_only=True, slots=True)
class Backchannel:
    """A 0.3-0.8 s acknowledgement by `speaker` inside the current turn (at fraction `at`);
    it does not take the floor."""

    speaker: str
    at: float = 0.5


@dataclass(frozen=True, kw_only=True, slots=True)
class Overlap:
    """`speaker` starts `overlap_s` before the current turn ends, which still finishes."""

    speaker: str
    duration_s: float
    overlap_s: float = 0.8


@dataclass(frozen=True, kw_only=True, slots=True)
class Interruption:
    """`speaker` starts `after_s` into the current turn; its speaker stops `stop_s` later
    (at most 1 s); `speaker` keeps the floor for ~`duration_s`."""

    speaker: str
    duration_s: float
    after_s: float = 1.5
    stop_s: float = 0.6


@dataclass(frozen=True, kw_only=True, slots=True)
class Silence:
    """Nobody speaks for `duration_s` before the next turn."""

    duration_s: float


Event = Turn | Backchannel | Overlap | Interruption | Silence


@dataclass(frozen=True, kw_only=True, slots=True)
class Bleed:
    """`target`'s microphone picks up `source`'s voice from loudspeakers all session:
    delayed by `delay_ms`, attenuated by `gain_db` (negative), optionally low-passed."""

    source: str
    target: str
    delay_ms: float = 80.0
    gain_db: float = -20.0
    lowpass_hz: float | None = 3400.0


@dataclass(frozen=True, kw_only=True, slots=True)
class Script:
    participants: tuple[str, ...]
    events: tuple[Event, ...]
    bleeds: tuple[Bleed, ...] = ()
    roles: tuple[str, ...] | None = None  # default: first is "facilitator", others "participant"
    levels_dbfs: tuple[float, ...] | None = None  # speech peak per participant; default -8
    noise_dbfs: float = -60.0  # RMS of each track's independent background noise
    lead_in_s: float = 1.0
    tail_s: float = 1.5
    seed: int = 0  # clip choice, pauses, noise

    def __post_init__(self) -> None:
        names = set(self.participants)
        if len(names) != len(self.participants) or not names:
            raise ValueError("participants must be unique and non-empty")
        for e in self.events:
            if not isinstance(e, Silence) and e.speaker not in names:
                raise ValueError(f"unknown speaker {e.speaker!r}")
        for b in self.bleeds:
            if b.source not in names or b.target not in names or b.source == b.target:
                raise ValueError(f"bad bleed {b}")
            if not b.gain_db < 0 or not 0 <= b.delay_ms <= 500:
                raise ValueError(f"bleed gain must be < 0 dB and delay 0-500 ms: {b}")
        for seq in (self.roles, self.levels_dbfs):
            if seq is not None and len(seq) != len(self.participants):
                raise ValueError("roles and levels_dbfs need one entry per participant")


# -- the truth ----------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class TurnTruth:
    speaker: str
    start: int  # hops
    end: int
    kind: str  # "turn" | "overlap" (started over the previous turn) | "interruption"


@dataclass(frozen=True, slots=True)
class InterruptionTruth:
    t: int  # hop where `by` starts
    by: str
    of: str
    of_stops: int  # hop where the interrupted speaker's speech ends


@dataclass(frozen=True, slots=True)
class OverlapTruth:
    start: int
    end: int
    names: tuple[str, ...]  # sorted


@dataclass(frozen=True, slots=True)
class BleedTruth:
    source: str
    target: str
    delay_ms: float
    gain_db: float
    segments: tuple[SpeechSegment, ...]  # hops of target's track carrying source's voice


@dataclass(frozen=True, slots=True)
class Truth:
    """Exact truth, in hops. `segments` are what a listener counts as each person's
    speech (utterance extents, pauses under MERGE_GAP_S merged); `utterances` are
    the unmerged placed clips."""

    hops: int
    names: tuple[str, ...]
    roles: tuple[str, ...]
    segments: dict[str, tuple[SpeechSegment, ...]]
    utterances: dict[str, tuple[SpeechSegment, ...]]
    turns: tuple[TurnTruth, ...]
    backchannels: tuple[tuple[str, SpeechSegment], ...]
    interruptions: tuple[InterruptionTruth, ...]
    overlaps: tuple[OverlapTruth, ...]
    group_silences: tuple[SpeechSegment, ...]  # >= GROUP_SILENCE_S, lead-in and tail excluded
    bleed: tuple[BleedTruth, ...]

    def speech_mask(self, name: str) -> np.ndarray:
        return _mask(self.segments[name], self.hops)

    def bleed_mask(self, name: str) -> np.ndarray:
        """Hops of `name`'s track that carry someone else's voice from loudspeakers."""
        m = np.zeros(self.hops, np.bool_)
        for b in self.bleed:
            if b.target == name:
                m |= _mask(b.segments, self.hops)
        return m

    def bleed_only_mask(self, name: str) -> np.ndarray:
        """Bleed hops where `name` is not speaking: what must not count as their speech."""
        return self.bleed_mask(name) & ~self.speech_mask(name)

    def speaking_s(self, name: str) -> float:
        return sum(s.end - s.start for s in self.segments[name]) / HOPS_PER_SECOND

    @property
    def duration_s(self) -> float:
        return self.hops / HOPS_PER_SECOND


def _mask(segments: Sequence[SpeechSegment], n: int) -> np.ndarray:
    m = np.zeros(n, np.bool_)
    for s in segments:
        m[max(s.start, 0) : min(s.end, n)] = True
    return m


def _runs(mask: np.ndarray) -> list[SpeechSegment]:
    edges = np.flatnonzero(np.diff(np.concatenate([[0], mask.astype(np.int8), [0]])))
    return [SpeechSegment(int(a), int(b)) for a, b in zip(edges[::2], edges[1::2], strict=True)]


def _merge(segs: list[SpeechSegment], gap: int) -> list[SpeechSegment]:
    out: list[SpeechSegment] = []
    for s in sorted(segs, key=lambda s: s.start):
        if out and s.start - out[-1].end < gap:
            out[-1] = SpeechSegment(out[-1].start, max(out[-1].end, s.end))
        else:
            out.append(s)
    return out


# -- synthesis ----------------------------------------------------------------------------
@dataclass(slots=True)
class _Placed:
    speaker: int
    start: int  # samples, a multiple of HOP
    audio: np.ndarray
    pieces: list[tuple[int, int]]  # speech extents inside `audio`, samples


@dataclass(frozen=True, slots=True)
class Session:
    script: Script
    names: tuple[str, ...]
    roles: tuple[str, ...]
    tracks: np.ndarray  # int16 (participants, samples), 16 kHz
    truth: Truth
    _cache: dict[str, Path] = field(default_factory=dict, compare=False)

    def track(self, name: str) -> np.ndarray:
        return self.tracks[self.names.index(name)]

    def write_mkv(
        self, directory: str | Path, filename: str = "session.mkv", bit_rate: int = 32_000
    ) -> Path:
        """One Opus mono track per participant (16 kHz input, 20 ms frames), titled by name."""
        path = Path(directory) / filename
        frame = SAMPLE_RATE // 50
        n_frames = -(-self.tracks.shape[1] // frame)
        padded = np.zeros((self.tracks.shape[0], n_frames * frame), np.int16)
        padded[:, : self.tracks.shape[1]] = self.tracks
        with av.open(str(path), "w", format="matroska") as out:
            streams = []
            for name in self.names:
                st = out.add_stream(
                    "libopus",
                    rate=SAMPLE_RATE,
                    layout="mono",
                    format="s16",
                    options={"application": "voip", "frame_duration": "20"},
                )
                st.bit_rate = bit_rate
                st.metadata["title"] = name
                streams.append(st)
            for k in range(n_frames):
                for st, x in zip(streams, padded, strict=True):
                    f = av.AudioFrame.from_ndarray(
                        x[None, k * frame : (k + 1) * frame], format="s16", layout="mono"
                    )
                    f.sample_rate = SAMPLE_RATE
                    f.pts = k * frame
                    out.mux(st.encode(f))
            for st in streams:
                out.mux(st.encode(None))
        return path


def _fade_out(x: np.ndarray) -> np.ndarray:
    n = min(round(FADE_S * SAMPLE_RATE), x.shape[0])
    x = x.copy()
    x[x.shape[0] - n :] *= np.linspace(1.0, 0.0, n, dtype=np.float32)
    return x


def _trim_end(x: np.ndarray) -> int:
    """Samples up to the end of the last 10 ms hop within 30 dB of the loudest hop."""
    n = x.shape[0] // HOP
    if n == 0:
        return x.shape[0]
    e = (x[: n * HOP].reshape(n, HOP) ** 2).mean(axis=1)
    loud = np.flatnonzero(e >= e.max() * 1e-3)
    return int(loud[-1] + 1) * HOP


def _hop_len(n: int) -> int:
    return -(-n // HOP) * HOP


def _utterance(
    voice: Voice, seconds: float, rng: np.random.Generator
) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """Clips joined with short pauses until `seconds`, the last one cut with a fade."""
    target = round(seconds * SAMPLE_RATE)
    parts: list[np.ndarray] = []
    pieces: list[tuple[int, int]] = []
    pos = 0
    while pos < target:
        if parts:
            pause = int(rng.integers(8, 20)) * HOP  # 80-190 ms
            parts.append(np.zeros(pause, np.float32))
            pos += pause
        c = voice.clips[int(rng.integers(len(voice.clips)))]
        c = np.concatenate([c, np.zeros(_hop_len(c.shape[0]) - c.shape[0], np.float32)])
        parts.append(c)
        pieces.append((pos, pos + c.shape[0]))
        pos += c.shape[0]
    x = np.concatenate(parts)
    if x.shape[0] > target:
        return _truncate(x, pieces, target)
    return x, pieces


def _truncate(
    x: np.ndarray, pieces: list[tuple[int, int]], at: int
) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """Cut at sample `at` with a fade; trim quiet end; keep the pieces that remain."""
    y = _fade_out(x[:at])
    pieces = [(a, min(b, at)) for a, b in pieces if a < at]
    a, b = pieces[-1]
    end = a + _trim_end(y[a:b])
    pieces[-1] = (a, end)
    pieces = [(p, q) for p, q in pieces if q - p >= HOP]
    return y[:end], pieces


def _backchannel(voice: Voice, rng: np.random.Generator) -> tuple[np.ndarray, list]:
    shorts = [s for s in voice.short if 0.3 * SAMPLE_RATE <= s.shape[0] <= 0.8 * SAMPLE_RATE]
    if shorts:
        c = shorts[int(rng.integers(len(shorts)))]
        return c, [(0, c.shape[0])]
    for _ in range(50):
        c = voice.clips[int(rng.integers(len(voice.clips)))]
        n = round(float(rng.uniform(0.35, 0.75)) * SAMPLE_RATE)
        if c.shape[0] > n:
            x, pieces = _truncate(c, [(0, c.shape[0])], n)
            if pieces and pieces[0][1] >= 0.3 * SAMPLE_RATE:
                return x, pieces
    c = voice.clips[0][: round(0.5 * SAMPLE_RATE)]
    return _fade_out(c), [(0, c.shape[0])]


def _noise(n: int, dbfs: float, rng: np.random.Generator) -> np.ndarray:
    x = lfilter([1.0], [1.0, -0.9], rng.standard_normal(n)).astype(np.float32)
    rms = float(np.sqrt((x**2).mean())) or 1.0
    return x * (10 ** (dbfs / 20) / rms)


def synthesize(script: Script, voices: Sequence[Voice] | None = None) -> Session:
    """Build the session `script` describes; participant k speaks with voice k mod len."""
    voices = tuple(voices) if voices is not None else sample_voices()
    if not voices:
        raise ValueError("no voices")
    rng = np.random.default_rng(script.seed)
    names = script.participants
    idx = {n: i for i, n in enumerate(names)}
    levels = script.levels_dbfs or tuple(-8.0 for _ in names)
    gains = [10 ** (lv / 20) for lv in levels]
    voice_of = [voices[i % len(voices)] for i in range(len(names))]

    def hop_at(seconds: float) -> int:
        return max(0, round(seconds * HOPS_PER_SECOND)) * HOP

    placed: list[_Placed] = []
    turns: list[tuple[int, int, str]] = []  # (placed index, kind)
    inter: list[tuple[int, int, int]] = []  # (start sample, by, of)
    floor: int | None = None  # index into placed of the current turn
    cursor = hop_at(script.lead_in_s)
    pending_gap: float | None = None

    def end_of(p: _Placed) -> int:
        return p.start + p.pieces[-1][1]

    for ev in script.events:
        if isinstance(ev, Silence):
            pending_gap = (pending_gap or 0.0) + ev.duration_s
            continue
        sp = idx[ev.speaker]
        if isinstance(ev, Backchannel):
            if floor is None or placed[floor].speaker == sp:
                raise ValueError(f"backchannel by {ev.speaker} needs someone else's turn")
            x, pieces = _backchannel(voice_of[sp], rng)
            f = placed[floor]
            span = max(end_of(f) - f.start - x.shape[0], 0)
            start = f.start + hop_at(ev.at * span / SAMPLE_RATE)
            placed.append(_Placed(sp, start, x * gains[sp], pieces))
            turns.append((len(placed) - 1, -1, "backchannel"))
            continue
        x, pieces = _utterance(voice_of[sp], ev.duration_s, rng)
        kind = "turn"
        if floor is None:
            start = cursor if pending_gap is None else cursor + hop_at(pending_gap)
        elif isinstance(ev, Turn):
            gap = ev.gap_s if pending_gap is None else pending_gap
            start = end_of(placed[floor]) + hop_at(gap)
        else:
            f = placed[floor]
            if f.speaker == sp:
                raise ValueError(f"{ev.speaker} cannot overlap or interrupt themself")
            if isinstance(ev, Overlap):
                kind = "overlap"
                start = max(f.start + HOP, end_of(f) - hop_at(ev.overlap_s))
            else:
                kind = "interruption"
                if not 0 < ev.stop_s <= 1.0:
                    raise ValueError("an interrupted speaker stops within 1 s")
                start = f.start + hop_at(ev.after_s)
                stop = start + hop_at(ev.stop_s)
                if stop + HOP >= end_of(f):
                    raise ValueError("interruption: the current turn is too short")
                f.audio, f.pieces = _truncate(f.audio, f.pieces, stop - f.start)
                inter.append((start, sp, f.speaker))
        pending_gap = None
        placed.append(_Placed(sp, start, x * gains[sp], pieces))
        turns.append((len(placed) - 1, 0, kind))
        floor = len(placed) - 1

    clear = hop_at(BACKCHANNEL_CLEAR_S)
    dropped: set[int] = set()
    for i, flag, _ in turns:
        if flag != -1:
            continue
        p = placed[i]
        if any(
            j != i
            and j not in dropped
            and q.speaker == p.speaker
            and max(q.start - end_of(p), p.start - end_of(q)) <= clear
            for j, q in enumerate(placed)
        ):
            dropped.add(i)
    if dropped:
        renum = {
            old: new for new, old in enumerate(k for k in range(len(placed)) if k not in dropped)
        }
        placed = [p for k, p in enumerate(placed) if k not in dropped]
        turns = [(renum[i], flag, kind) for i, flag, kind in turns if i not in dropped]

    last = max((end_of(p) for p in placed), default=hop_at(script.lead_in_s))
    n_samples = last + hop_at(script.tail_s) + (hop_at(pending_gap) if pending_gap else 0)
    n_hops = n_samples // HOP
    clean = np.zeros((len(names), n_samples), np.float32)
    for p in placed:
        clean[p.speaker, p.start : p.start + p.audio.shape[0]] += p.audio

    utter: dict[str, list[SpeechSegment]] = {n: [] for n in names}
    for p in placed:
        for a, b in p.pieces:
            utter[names[p.speaker]].append(
                SpeechSegment((p.start + a) // HOP, -(-(p.start + b) // HOP))
            )
    merge = round(MERGE_GAP_S * HOPS_PER_SECOND)
    segments = {n: tuple(_merge(utter[n], merge)) for n in names}

    mixed = clean.copy()
    bleed_truth = []
    for bl in script.bleeds:
        s, t = idx[bl.source], idx[bl.target]
        src = clean[s].astype(np.float64)
        if bl.lowpass_hz:
            src = sosfilt(butter(2, bl.lowpass_hz, fs=SAMPLE_RATE, output="sos"), src)
        d = round(bl.delay_ms * SAMPLE_RATE / 1000)
        mixed[t, d:] += (src[: n_samples - d] * 10 ** (bl.gain_db / 20)).astype(np.float32)
        segs = []
        for p in placed:
            if p.speaker == s:
                for a, e in p.pieces:
                    lo, hi = (p.start + a + d) // HOP, -(-(p.start + e + d) // HOP)
                    if lo < n_hops:
                        segs.append(SpeechSegment(lo, min(hi, n_hops)))
        bleed_truth.append(
            BleedTruth(bl.source, bl.target, bl.delay_ms, bl.gain_db, tuple(_merge(segs, 1)))
        )
    for k in range(len(names)):
        mixed[k] += _noise(n_samples, script.noise_dbfs, rng)
    tracks = np.clip(np.round(mixed * 32767), -32768, 32767).astype(np.int16)

    all_speech = np.zeros(n_hops, np.int32)
    masks = {n: _mask(segments[n], n_hops) for n in names}
    for m in masks.values():
        all_speech += m
    overlaps = tuple(
        OverlapTruth(r.start, r.end, tuple(sorted(n for n in names if masks[n][r.start])))
        for r in _runs(all_speech >= 2)
    )
    # (names at an overlap's first hop; a 3-way overlap changing members is split by runs)
    silences = []
    speech_any = np.flatnonzero(all_speech > 0)
    if speech_any.size:
        first, lastv = int(speech_any[0]), int(speech_any[-1]) + 1
        for r in _runs(all_speech[first:lastv] == 0):
            if r.end - r.start >= GROUP_SILENCE_S * HOPS_PER_SECOND:
                silences.append(SpeechSegment(first + r.start, first + r.end))

    def seg_of(p: _Placed) -> SpeechSegment:
        return SpeechSegment(p.start // HOP, -(-end_of(p) // HOP))

    turn_truth = tuple(
        TurnTruth(names[placed[i].speaker], *_se(seg_of(placed[i])), kind)
        for i, flag, kind in turns
        if flag == 0
    )
    bcs = tuple((names[placed[i].speaker], seg_of(placed[i])) for i, flag, _ in turns if flag == -1)
    inter_truth = []
    for start, by, of in inter:
        stops = max(seg_of(p).end for p in placed if p.speaker == of and p.start < start)
        inter_truth.append(InterruptionTruth(start // HOP, names[by], names[of], stops))
    roles = script.roles or tuple(
        "facilitator" if i == 0 else "participant" for i in range(len(names))
    )
    truth = Truth(
        hops=n_hops,
        names=names,
        roles=roles,
        segments=segments,
        utterances={n: tuple(sorted(v, key=lambda s: s.start)) for n, v in utter.items()},
        turns=turn_truth,
        backchannels=bcs,
        interruptions=tuple(inter_truth),
        overlaps=overlaps,
        group_silences=tuple(silences),
        bleed=tuple(bleed_truth),
    )
    return Session(script, names, roles, tracks, truth)


def _se(s: SpeechSegment) -> tuple[int, int]:
    return s.start, s.end


# -- random scripts -----------------------------------------------------------------------
def random_script(
    seed: int,
    *,
    participants: int | None = None,
    minutes: float | None = None,
    bleeds: int | None = None,
) -> Script:
    """A plausible session: 4-8 participants, 3-10 minutes, uneven shares, one quiet
    person, backchannels, overlaps, interruptions, group silences and 1-3 bleed paths."""
    rng = np.random.default_rng(seed)
    n = participants if participants is not None else int(rng.integers(4, 9))
    total = 60 * (minutes if minutes is not None else float(rng.uniform(3, 10)))
    names = tuple(["facilitator"] + [f"p{i}" for i in range(1, n)])
    weights = rng.dirichlet(np.full(n, 1.5))
    weights[-1] *= 0.2  # the quiet one
    weights /= weights.sum()
    events: list[Event] = []
    elapsed = 1.0
    current = "facilitator"
    last_dur = 0.0

    def pick(exclude: str) -> str:
        w = np.array([0.0 if x == exclude else weights[i] for i, x in enumerate(names)])
        return names[int(rng.choice(n, p=w / w.sum()))]

    events.append(Turn(speaker=current, duration_s=6.0))
    elapsed += 6.0
    last_dur = 6.0
    while elapsed < total - 10:
        r = rng.uniform()
        if r < 0.15:
            events.append(Backchannel(speaker=pick(current), at=float(rng.uniform(0.1, 0.9))))
            continue
        if r < 0.19:
            d = float(rng.uniform(3.2, 8.0))
            events.append(Silence(duration_s=d))
            elapsed += d
        dur = float(np.clip(rng.lognormal(np.log(5.0), 0.6), 1.5, 20.0))
        who = pick(current)
        if 0.19 <= r < 0.31:
            # an early start: the next speaker comes in up to 0.35 s before the end
            # (docs/signals.md: under 0.5 s of talking over is not an interruption)
            ov = float(rng.uniform(0.1, 0.35))
            events.append(Overlap(speaker=who, duration_s=dur, overlap_s=ov))
            elapsed += dur - ov
        elif 0.31 <= r < 0.37 and last_dur >= 3.5:
            after = float(rng.uniform(1.0, last_dur - 2.0))
            events.append(
                Interruption(
                    speaker=who,
                    duration_s=dur,
                    after_s=after,
                    stop_s=float(rng.uniform(0.75, 1.0)),  # talked over, then cut off
                )
            )
            elapsed += dur + after - last_dur
        else:
            gap = float(rng.uniform(0.25, 1.5))
            events.append(Turn(speaker=who, duration_s=dur, gap_s=gap))
            elapsed += dur + gap
        current, last_dur = who, dur
    nb = bleeds if bleeds is not None else int(rng.integers(1, 4))
    pairs = [(a, b) for a in names for b in names if a != b]
    chosen = rng.choice(len(pairs), size=min(nb, len(pairs)), replace=False)
    bl = tuple(
        Bleed(
            source=pairs[int(k)][0],
            target=pairs[int(k)][1],
            delay_ms=float(rng.uniform(30, 200)),
            gain_db=float(rng.uniform(-25, -15)),
            lowpass_hz=[None, 3400.0, 5000.0][int(rng.integers(3))],
        )
        for k in chosen
    )
    levels = tuple(float(rng.uniform(-12, -4)) for _ in names)
    return Script(
        participants=names,
        events=tuple(events),
        bleeds=bl,
        levels_dbfs=levels,
        noise_dbfs=float(rng.uniform(-65, -55)),
        seed=seed,
    )


# -- live-path arrival --------------------------------------------------------------------
FRAME_MS = 20


@dataclass(frozen=True, slots=True)
class Packet:
    participant: str
    sequence: int
    capture_ms: int
    payload: bytes  # PCM16LE or one Opus packet
    arrival_ms: float = 0.0


def packets(session: Session, codec: str = "pcm16", bit_rate: int = 24_000) -> list[Packet]:
    """Every participant's 20 ms frames in capture order (arrival = capture time).

    Opus packets come from PyAV's libopus encoder at 16 kHz; the decoded audio
    starts with the encoder's priming delay (pre-skip), which the receiver trims.
    """
    if codec not in ("pcm16", "opus"):
        raise ValueError(f"codec must be pcm16 or opus, got {codec!r}")
    frame = SAMPLE_RATE * FRAME_MS // 1000
    out: list[Packet] = []
    for name, x in zip(session.names, session.tracks, strict=True):
        n = x.shape[0] // frame
        if codec == "pcm16":
            payloads = [x[k * frame : (k + 1) * frame].astype("<i2").tobytes() for k in range(n)]
        else:
            payloads = _opus_packets(x[: n * frame], frame, bit_rate)
        out += [
            Packet(name, k, k * FRAME_MS, p, float(k * FRAME_MS)) for k, p in enumerate(payloads)
        ]
    out.sort(key=lambda p: (p.capture_ms, session.names.index(p.participant)))
    return out


def _opus_packets(x: np.ndarray, frame: int, bit_rate: int) -> list[bytes]:
    ctx = av.CodecContext.create("libopus", "w")
    ctx.sample_rate = SAMPLE_RATE
    ctx.layout = "mono"
    ctx.format = "s16"
    ctx.bit_rate = bit_rate
    ctx.options = {"application": "voip", "frame_duration": "20"}
    out: list[bytes] = []
    for k in range(x.shape[0] // frame):
        f = av.AudioFrame.from_ndarray(
            x[None, k * frame : (k + 1) * frame], format="s16", layout="mono"
        )
        f.sample_rate = SAMPLE_RATE
        f.pts = k * frame
        out += [bytes(p) for p in ctx.encode(f)]
    out += [bytes(p) for p in ctx.encode(None)]
    return out[: x.shape[0] // frame]


def network(
    sent: Sequence[Packet],
    *,
    seed: int,
    delay_ms: float = 40.0,
    jitter_ms: float = 60.0,
    loss: float = 0.02,
    duplicate: float = 0.01,
) -> list[Packet]:
    """What arrives: each packet delayed by `delay_ms` + uniform(0, `jitter_ms`) (so
    packets reorder within a jitter window), lost with probability `loss`, sent twice
    with probability `duplicate`; sorted by arrival. Deterministic per seed."""
    if not 0 <= loss < 1 or not 0 <= duplicate < 1 or jitter_ms < 0 or delay_ms < 0:
        raise ValueError("loss and duplicate in [0, 1), delays >= 0")
    rng = np.random.default_rng(seed)
    out: list[Packet] = []
    for p in sent:
        if rng.uniform() < loss:
            continue
        t = p.capture_ms + delay_ms + float(rng.uniform(0, jitter_ms))
        out.append(Packet(p.participant, p.sequence, p.capture_ms, p.payload, t))
        if rng.uniform() < duplicate:
            t2 = t + float(rng.uniform(0, jitter_ms))
            out.append(Packet(p.participant, p.sequence, p.capture_ms, p.payload, t2))
    out.sort(key=lambda p: p.arrival_ms)
    return out
