"""Build the bundled sample group session and its exact ground truth.

Why this exists: groupsense needs a realistic multi-track recording of an
online group-therapy session to demo, test and benchmark the engine, but no
redistributable recording of real human speech is available (and real session
audio must never be shipped).  This script synthesises one with espeak-ng from a
fixed, fictional script, so the audio is freely redistributable and every
speech boundary is known exactly.

It writes, into ``--out-dir`` (default ``engine/data/sample``):

* ``session.mkv``: Matroska, four Opus mono tracks (48 kHz, ~18 kbit/s), one per
  participant in the order facilitator, ana, ben, cleo; each track's ``title``
  tag is the participant's name.  All tracks last the full session.
* ``truth.json``: per-participant speech segments and derived events
  (overlaps, the interruption, group silences, backchannels, non-speech
  sounds) and the definitions used, in seconds with 3 decimals, measured on
  the clean 16 kHz clips before any encoding.

(``README.md`` in that folder is written by hand and describes both.)

The output is a deterministic function of the fixed seed, this script and the
espeak-ng version (recorded in ``truth.json``).

Usage::

    python scripts/make_sample_session.py [--out-dir engine/data/sample]
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import math
import re
import subprocess
import sys
import tempfile
import wave
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy.signal import resample_poly

try:
    import av
except ImportError:  # pragma: no cover - environment guard
    sys.exit("PyAV is required: pip install av (it bundles ffmpeg with libopus)")

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT_DIR = REPO_ROOT / "engine" / "data" / "sample"

SEED = 20_240_611
SR = 16_000  # sample rate of the truth and of the clean mix
OPUS_SR = 48_000  # Opus only runs at 48 kHz internally
OPUS_FRAME = 960  # 20 ms at 48 kHz
OPUS_BIT_RATE = 18_000
UPSAMPLE = OPUS_SR // SR

TRIM_REL = 0.01  # a sample is "speech" if |x| > 1% of the clip peak
PAUSE_FRAME_S = 0.020  # frame length for internal-pause detection
PAUSE_RMS_REL = 0.01  # a frame is quiet if RMS < 1% of the clip's peak frame RMS
PAUSE_MIN_S = 0.250  # internal pauses longer than this split the truth segment
GROUP_SILENCE_MIN_S = 2.0  # gaps in everybody's speech at least this long
SPEECH_PEAK_DBFS = -6.0
NOISE_RMS_DBFS = -55.0
LEAD_IN_S = 1.0
TAIL_S = 1.5
GAP_RANGE_S = (0.3, 1.5)
LONG_SILENCE_RANGE_S = (8.0, 12.0)
OVERLAP_RANGE_S = (0.5, 1.5)
INTERRUPT_CUT_S = 0.8  # the interrupted speaker stops this long after the interrupter's onset
INTERRUPT_MIN_REMAINING_S = 2.0
FADE_S = 0.020
DURATION_RANGE_S = (150.0, 210.0)
MAX_FILE_BYTES = 3 * 1024 * 1024
MAX_DURATION_MISMATCH_S = 0.030
MAX_ALIGNMENT_LAG_S = 0.010


@dataclass(frozen=True)
class Participant:
    name: str
    role: str
    voice: str
    pitch: int
    speed: int
    gain_db: float = 0.0


PARTICIPANTS: tuple[Participant, ...] = (
    Participant("facilitator", "facilitator", "en-us+m3", pitch=40, speed=158),
    Participant("ana", "participant", "en-gb+f2", pitch=62, speed=165),
    Participant("ben", "participant", "en+m1", pitch=28, speed=178),
    Participant("cleo", "participant", "en-us+f4", pitch=75, speed=145, gain_db=-14.0),
)
TRACK = {p.name: i for i, p in enumerate(PARTICIPANTS)}


# --- Placement rules -------------------------------------------------------
# Every rule positions the *speech onset* (first above-threshold sample) of an
# utterance relative to what was placed before it.


@dataclass(frozen=True)
class Gap:
    """Start after everybody has finished; seconds=None draws from GAP_RANGE_S."""

    seconds: float | None = None


@dataclass(frozen=True)
class Overlap:
    """Start `lead` seconds before the current speaker finishes (None: random)."""

    lead: float | None = None


@dataclass(frozen=True)
class Interrupt:
    """Start `after` seconds into the current speaker's speech and cut them off."""

    after: float


@dataclass(frozen=True)
class During:
    """Backchannel starting at `fraction` of the current main utterance's speech."""

    fraction: float


Placement = Gap | Overlap | Interrupt | During


@dataclass(frozen=True)
class Line:
    speaker: str
    text: str
    place: Placement
    backchannel: bool = False


F, A, B, C = (p.name for p in PARTICIPANTS)
BACKCHANNEL_MM_HM = "um hum"  # espeak-ng spells "mm hm" out letter by letter

SCRIPT: tuple[Line, ...] = (
    Line(F, "Good evening everyone and welcome back to our Thursday group.", Gap(LEAD_IN_S)),
    Line(F, "Let us take a moment to notice how we are arriving today.", Gap()),
    Line(F, "Ana would you like to start us off?", Gap()),
    Line(A, "Sure I had a pretty rough week at work but I kept my evening walks going.", Gap()),
    Line(F, BACKCHANNEL_MM_HM, During(0.55), backchannel=True),
    Line(A, "The walks really help me clear my head after a long day at the office.", Gap()),
    Line(B, "That is actually something I have been meaning to try for months.", Overlap(0.9)),
    Line(
        B, "My week was mostly about sleep because I kept waking up at four in the morning.", Gap()
    ),
    Line(F, "That sounds exhausting Ben.", Gap()),
    Line(
        B,
        "It was and then I get anxious about not sleeping which makes the whole thing worse.",
        Gap(),
    ),
    Line(A, "yeah", During(0.6), backchannel=True),
    Line(B, "Some nights I just lie there going over every conversation from the day.", Gap()),
    Line(A, "I used to do that too until I started keeping a notebook by the bed.", Gap()),
    Line(F, "Many people here have described that same loop between worry and sleep.", Gap()),
    Line(F, "Cleo how has your week been?", Gap()),
    Line(C, "It was okay I think.", Gap()),
    Line(F, "Thank you Cleo and you are welcome to say more whenever you feel ready.", Gap()),
    Line(A, "I remember feeling exactly that way in my first few sessions too.", Overlap(1.2)),
    Line(
        A,
        "What helped me most was writing down one small thing every night"
        " that went better than I expected.",
        Gap(),
    ),
    Line(B, "Sorry to jump in but did you do that on paper or on your phone?", Interrupt(2.4)),
    Line(A, "On paper because the phone just pulls me straight back into my email.", Gap()),
    Line(
        B,
        "That makes sense because I always end up scrolling when I pick up my phone at night.",
        Gap(),
    ),
    Line(A, "It took me a few weeks before it stopped feeling like homework.", Gap()),
    Line(B, "I think I would need something like that to make it stick.", Gap()),
    Line(F, "Let us pause here and take a few quiet breaths together.", Gap()),
    Line(F, "Thank you all for taking that time.", Gap(10.0)),
    Line(F, "What did you notice in your body during the silence?", Gap()),
    Line(B, "My shoulders were really tight and I only noticed once I stopped talking.", Gap()),
    Line(F, BACKCHANNEL_MM_HM, During(0.4), backchannel=True),
    Line(A, "Same for me because my jaw was clenched the whole time.", Overlap(0.7)),
    Line(B, "I think I carry a lot of tension around without realising it.", Gap()),
    Line(
        A, "My physiotherapist once told me that stress always lands somewhere in the body.", Gap()
    ),
    Line(A, "Maybe we could remind each other to check our shoulders during the week.", Gap()),
    Line(B, "I really like that idea a lot.", Overlap()),
    Line(C, "I would like to try that too.", Gap()),
    Line(F, "That is a lovely suggestion.", Gap()),
    Line(A, "We could even send a short message to the group every Monday morning.", Gap()),
    Line(B, "yeah", Gap(), backchannel=True),
    Line(B, "I can set a reminder on my calendar so I do not forget.", Gap()),
    Line(A, "I could also share a short breathing exercise that works well for me.", Gap()),
    Line(B, "That would be really helpful for the mornings before work.", Gap()),
    Line(F, "Let us use the last few minutes to name one thing you will take away.", Gap()),
    Line(A, "I will keep writing my list of small good things every evening.", Gap()),
    Line(B, "For me it is going to bed without my phone at least three nights this week.", Gap()),
    Line(A, "yeah", During(0.65), backchannel=True),
    Line(B, "I know it sounds small but it feels like a real step for me.", Gap()),
    Line(F, "Thank you all for your openness tonight and see you next week.", Gap()),
    Line(A, "Thank you and see you all next week.", Overlap()),
    Line(B, "Bye everyone and take care.", Gap()),
)

# The track that gets the short non-speech sounds (see render()).
NON_SPEECH_TRACK = "ben"


@dataclass
class Clip:
    line: Line
    audio: np.ndarray  # clean 16 kHz clip at final level (speaker gain included)
    onset: int = 0  # sample index of the clip's first sample in the session
    segments: list[tuple[int, int]] = field(default_factory=list)  # local [start, end)

    @property
    def speech_start(self) -> int:
        return self.onset + self.segments[0][0]

    @property
    def speech_end(self) -> int:
        return self.onset + self.segments[-1][1]

    @property
    def extent(self) -> tuple[int, int]:
        return self.onset, self.onset + len(self.audio)


# --- Synthesis and measurement --------------------------------------------


def espeak_version() -> str:
    out = subprocess.run(
        ["espeak-ng", "--version"], check=True, capture_output=True, text=True
    ).stdout
    match = re.search(r"text-to-speech:\s*(\S+)", out)
    if match is None:
        raise RuntimeError(f"cannot parse espeak-ng version from {out!r}")
    return match.group(1)


def synthesise(text: str, who: Participant, workdir: Path, index: int) -> np.ndarray:
    """Speak `text` with the participant's voice; return a float64 16 kHz clip."""
    path = workdir / f"utt{index:03d}.wav"
    cmd = [
        "espeak-ng",
        "-v",
        who.voice,
        "-p",
        str(who.pitch),
        "-s",
        str(who.speed),
        "-w",
        str(path),
        text,
    ]
    subprocess.run(cmd, check=True, capture_output=True)
    with wave.open(str(path), "rb") as wav:
        if wav.getnchannels() != 1 or wav.getsampwidth() != 2:
            raise RuntimeError(f"unexpected espeak-ng output format in {path}")
        rate = wav.getframerate()
        pcm = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")
    audio = pcm.astype(np.float64) / 32768.0
    g = math.gcd(SR, rate)
    return resample_poly(audio, SR // g, rate // g)


def speech_segments(clip: np.ndarray) -> list[tuple[int, int]]:
    """Truth segments of a clean clip, as local sample ranges [start, end).

    The extent runs from the first to the last sample with |x| > 1% of the
    clip peak.  Runs of 20 ms frames whose RMS is below 1% of the clip's peak
    frame RMS and that last longer than 250 ms split it; the pieces end/start
    at the last/first above-threshold sample outside the quiet run.
    """
    magnitude = np.abs(clip)
    loud = np.flatnonzero(magnitude > TRIM_REL * magnitude.max())
    if loud.size == 0:
        raise RuntimeError("clip has no speech")
    first, last = int(loud[0]), int(loud[-1]) + 1

    frame = round(PAUSE_FRAME_S * SR)
    n_frames = len(clip) // frame
    rms = np.sqrt(np.mean(clip[: n_frames * frame].reshape(n_frames, frame) ** 2, axis=1))
    quiet = rms < PAUSE_RMS_REL * rms.max()
    min_frames = math.floor(PAUSE_MIN_S / PAUSE_FRAME_S) + 1  # strictly longer than 250 ms

    segments: list[tuple[int, int]] = []
    seg_start = first
    i = 0
    while i < n_frames:
        if not quiet[i]:
            i += 1
            continue
        j = i
        while j < n_frames and quiet[j]:
            j += 1
        run_start, run_end = i * frame, j * frame
        if j - i >= min_frames and run_start > seg_start and run_end < last:
            before = loud[loud < run_start]
            after = loud[loud >= run_end]
            segments.append((seg_start, int(before[-1]) + 1))
            seg_start = int(after[0])
        i = j
    segments.append((seg_start, last))
    return segments


def tighten(clip: np.ndarray) -> np.ndarray:
    """Cut the synthesiser's leading/trailing silence down to a 10 ms margin.

    Only sub-threshold samples are removed or faded, so the truth extent is
    unchanged; it keeps a speaker's consecutive clips from overlapping.
    """
    magnitude = np.abs(clip)
    loud = np.flatnonzero(magnitude > TRIM_REL * magnitude.max())
    margin = round(0.010 * SR)
    start, end = max(0, int(loud[0]) - margin), min(len(clip), int(loud[-1]) + 1 + margin)
    out = clip[start:end].copy()
    out[: int(loud[0]) - start] *= np.linspace(0.0, 1.0, int(loud[0]) - start)
    tail = end - int(loud[-1]) - 1
    out[len(out) - tail :] *= np.linspace(1.0, 0.0, tail)
    return out


def db_to_gain(db: float) -> float:
    return 10.0 ** (db / 20.0)


# --- Timeline ----------------------------------------------------------------


@dataclass
class Timeline:
    clips: list[Clip]
    interruption: tuple[int, str, str]  # (onset sample, by, of)
    group_silence: tuple[int, int]  # the scripted long silence
    n_samples: int


def build_timeline(clips: list[Clip], rng: np.random.Generator) -> Timeline:
    """Place every clip so that its speech onset follows its placement rule."""
    placed: list[Clip] = []
    main: Clip | None = None  # the current holder of the floor (not a backchannel)
    interruption: tuple[int, str, str] | None = None
    long_silence: tuple[int, int] | None = None

    for clip in clips:
        rule = clip.line.place
        floor_end = max((c.speech_end for c in placed), default=0)
        if isinstance(rule, Gap):
            gap_s = rule.seconds if rule.seconds is not None else rng.uniform(*GAP_RANGE_S)
            start = floor_end + round(gap_s * SR)
            if rule.seconds is not None and rule.seconds >= LONG_SILENCE_RANGE_S[0]:
                long_silence = (floor_end, start)
        elif main is None:
            raise ValueError(f"{clip.line.text!r}: {type(rule).__name__} needs an earlier line")
        elif isinstance(rule, Overlap):
            low, high = OVERLAP_RANGE_S
            lead = rule.lead if rule.lead is not None else rng.uniform(low + 0.1, high - 0.1)
            if not low <= lead <= high:
                raise ValueError(f"overlap lead {lead} outside {OVERLAP_RANGE_S}")
            if main.speech_end != floor_end:
                raise ValueError(f"{clip.line.text!r}: the overlapped speaker finishes early")
            start = main.speech_end - round(lead * SR)
        elif isinstance(rule, Interrupt):
            start = main.speech_start + round(rule.after * SR)
            interruption = (start, clip.line.speaker, main.line.speaker)
            cut_off(main, start)
        else:  # During
            start = main.speech_start + round(rule.fraction * (main.speech_end - main.speech_start))
        clip.onset = start - clip.segments[0][0]
        if clip.onset < 0:
            raise ValueError(f"{clip.line.text!r} would start before the session")
        placed.append(clip)
        if not clip.line.backchannel:
            main = clip

    if interruption is None or long_silence is None:
        raise ValueError("the script needs one Interrupt and one long Gap")
    end = max(c.speech_end for c in placed) + round(TAIL_S * SR)
    frame16 = OPUS_FRAME // UPSAMPLE
    n_samples = -(-end // frame16) * frame16  # whole 20 ms frames
    for clip in placed:  # drop trailing (sub-threshold) clip samples past the end
        clip.audio = clip.audio[: n_samples - clip.onset]
    check_no_self_overlap(placed)
    return Timeline(placed, interruption, long_silence, n_samples)


def cut_off(victim: Clip, interrupter_onset: int) -> None:
    """Truncate `victim` INTERRUPT_CUT_S after the interrupter's onset, with a fade."""
    local_onset = interrupter_onset - victim.onset
    active = any(s <= local_onset < e for s, e in victim.segments)
    remaining = (victim.segments[-1][1] - local_onset) / SR
    if not active or remaining < INTERRUPT_MIN_REMAINING_S:
        raise ValueError(
            f"interruption must land inside speech with >= {INTERRUPT_MIN_REMAINING_S} s left "
            f"(active={active}, remaining={remaining:.2f} s)"
        )
    cut = local_onset + round(INTERRUPT_CUT_S * SR)
    fade = round(FADE_S * SR)
    audio = victim.audio[:cut].copy()
    audio[-fade:] *= np.linspace(1.0, 0.0, fade)
    victim.audio = audio
    victim.segments = speech_segments(audio)


def check_no_self_overlap(clips: list[Clip]) -> None:
    for name in TRACK:
        extents = sorted(c.extent for c in clips if c.line.speaker == name)
        for (_, end), (start, _) in itertools.pairwise(extents):
            if start < end:
                raise ValueError(f"two clips of {name} overlap on the track")


# --- Rendering -----------------------------------------------------------------


def coloured_noise(n: int, exponent: float, low_hz: float, rng: np.random.Generator) -> np.ndarray:
    """Noise with power spectrum ~ 1/f**exponent above `low_hz`, unit RMS."""
    spectrum = np.fft.rfft(rng.standard_normal(n))
    freqs = np.fft.rfftfreq(n, 1.0 / SR)
    shape = np.zeros_like(freqs)
    keep = freqs >= low_hz
    shape[keep] = freqs[keep] ** (-exponent / 2.0)
    noise = np.fft.irfft(spectrum * shape, n)
    return noise / np.sqrt(np.mean(noise**2))


def fade_edges(signal: np.ndarray, samples: int) -> np.ndarray:
    """Linear fade-in and fade-out over `samples` at each end (copy)."""
    env = np.ones(len(signal))
    env[:samples] = np.linspace(0.0, 1.0, samples)
    env[len(signal) - samples :] = np.linspace(1.0, 0.0, samples)
    return signal * env


def rustle(rng: np.random.Generator) -> np.ndarray:
    """300 ms brown-noise burst (1/f**2 above 80 Hz) at -40 dBFS RMS, 20 ms fades."""
    burst = fade_edges(coloured_noise(round(0.300 * SR), 2.0, 80.0, rng), round(FADE_S * SR))
    return burst * db_to_gain(-40.0) / np.sqrt(np.mean(burst**2))


def click(rng: np.random.Generator) -> np.ndarray:
    """A 6 ms decaying broadband click (mouse or mic bump), peak -30 dBFS."""
    n = round(0.006 * SR)
    burst = rng.standard_normal(n) * np.exp(-np.arange(n) / (0.0012 * SR))
    return burst * db_to_gain(-30.0) / np.abs(burst).max()


def render(timeline: Timeline, seed: int) -> tuple[np.ndarray, list[tuple[int, int, str, str]]]:
    """Mix the tracks (shape [4, n]) and add noise and non-speech sounds."""
    tracks = np.zeros((len(PARTICIPANTS), timeline.n_samples))
    for clip in timeline.clips:
        start, end = clip.extent
        tracks[TRACK[clip.line.speaker], start:end] += clip.audio
    for i in range(len(PARTICIPANTS)):
        noise = coloured_noise(timeline.n_samples, 1.0, 40.0, np.random.default_rng([seed, 1, i]))
        tracks[i] += noise * db_to_gain(NOISE_RMS_DBFS)

    # A rustle in the middle of the long group silence and a click in the gap
    # after the opening line: both on one track, while nobody speaks.
    rng = np.random.default_rng([seed, 2])
    silence_start, silence_end = timeline.group_silence
    gap_start, gap_end = timeline.clips[0].speech_end, timeline.clips[1].speech_start
    sounds = [
        ("rustle", rustle(rng), (silence_start + silence_end) // 2 - round(0.15 * SR)),
        ("click", click(rng), (gap_start + gap_end) // 2),
    ]
    events: list[tuple[int, int, str, str]] = []
    for kind, sound, start in sounds:
        end = start + len(sound)
        if any(start < c.speech_end and c.speech_start < end for c in timeline.clips):
            raise ValueError(f"the {kind} would overlap speech")
        tracks[TRACK[NON_SPEECH_TRACK], start:end] += sound
        events.append((start, end, NON_SPEECH_TRACK, kind))
    if np.abs(tracks).max() >= 1.0:
        raise RuntimeError("mix clips")
    return tracks, sorted(events)


# --- Truth -----------------------------------------------------------------------


def seconds(samples: int) -> float:
    return round(samples / SR, 3)


def active_sets(per_speaker: dict[str, list[tuple[int, int]]]) -> list[tuple[int, int, list[str]]]:
    """Split the session at every segment edge; return (start, end, active names)."""
    edges = sorted({t for segs in per_speaker.values() for seg in segs for t in seg})
    out: list[tuple[int, int, list[str]]] = []
    for a, b in itertools.pairwise(edges):
        names = [n for n in TRACK if any(s <= a and b <= e for s, e in per_speaker[n])]
        out.append((a, b, names))
    return out


def build_truth(
    timeline: Timeline,
    non_speech: list[tuple[int, int, str, str]],
    version: str,
    script_sha: str,
    seed: int,
) -> dict:
    per_speaker: dict[str, list[tuple[int, int]]] = {n: [] for n in TRACK}
    for clip in timeline.clips:
        per_speaker[clip.line.speaker] += [
            (clip.onset + s, clip.onset + e) for s, e in clip.segments
        ]
    for segs in per_speaker.values():
        segs.sort()

    overlaps: list[list] = []
    for a, b, names in active_sets(per_speaker):
        if len(names) < 2:
            continue
        if overlaps and overlaps[-1][1] == a and overlaps[-1][2] == names:
            overlaps[-1][1] = b
        else:
            overlaps.append([a, b, names])

    speech = sorted(seg for segs in per_speaker.values() for seg in segs)
    silences: list[tuple[int, int]] = []
    covered_until = speech[0][1]
    for s, e in speech[1:]:
        if s - covered_until >= GROUP_SILENCE_MIN_S * SR:
            silences.append((covered_until, s))
        covered_until = max(covered_until, e)

    t_int, by, of = timeline.interruption
    return {
        "duration_s": seconds(timeline.n_samples),
        "sample_rate": SR,
        "participants": [
            {
                "name": p.name,
                "track": TRACK[p.name],
                "role": p.role,
                "segments": [[seconds(s), seconds(e)] for s, e in per_speaker[p.name]],
            }
            for p in PARTICIPANTS
        ],
        "events": {
            "overlaps": [[seconds(a), seconds(b), names] for a, b, names in overlaps],
            "interruptions": [{"t": seconds(t_int), "by": by, "of": of}],
            "group_silences": [[seconds(a), seconds(b)] for a, b in silences],
            "backchannels": [
                [seconds(c.speech_start), seconds(c.speech_end), c.line.speaker]
                for c in timeline.clips
                if c.line.backchannel
            ],
            "non_speech": [[seconds(a), seconds(b), name] for a, b, name, _ in non_speech],
        },
        "definitions": {
            "segment": "first to last sample with |x| > 1% of the clean clip's peak, at 16 kHz",
            "segment_split": (
                "internal run (> 0.25 s) of 20 ms frames with RMS < 1% of the clip's peak frame RMS"
            ),
            "overlap": "interval where two or more participants have a segment (backchannels too)",
            "group_silence_min_s": GROUP_SILENCE_MIN_S,
            "non_speech_kinds": [kind for _, _, _, kind in non_speech],
        },
        "generator": f"espeak-ng {version}",
        "seed": seed,
        "script_sha": script_sha,
    }


def is_row(value: object) -> bool:
    """A list or dict printed on one line: scalars and lists of names only."""

    def leaf(v: object) -> bool:
        if isinstance(v, list):
            return all(isinstance(w, str) for w in v)
        return not isinstance(v, dict)

    if isinstance(value, dict):
        return all(leaf(v) for v in value.values())
    return isinstance(value, list) and all(leaf(v) for v in value)


def to_json(value: object, indent: int = 0) -> str:
    """JSON with one segment/event per line (json.dumps(indent=...) puts every number on one)."""
    pad, inner = " " * indent, " " * (indent + 2)
    if isinstance(value, dict) and value and not (is_row(value) and len(json.dumps(value)) < 80):
        items = [f"{inner}{json.dumps(k)}: {to_json(v, indent + 2)}" for k, v in value.items()]
        return "{\n" + ",\n".join(items) + f"\n{pad}}}"
    if isinstance(value, list) and value and not is_row(value):
        items = [f"{inner}{to_json(v, indent + 2)}" for v in value]
        return "[\n" + ",\n".join(items) + f"\n{pad}]"
    return json.dumps(value, separators=(", ", ": "))


# --- Encoding and verification --------------------------------------------------


def encode_mkv(tracks: np.ndarray, path: Path) -> None:
    """Write one Opus mono track per participant, muxed frame by frame."""
    upsampled = resample_poly(tracks, UPSAMPLE, 1, axis=1).astype(np.float32)
    n_frames = upsampled.shape[1] // OPUS_FRAME
    with av.open(str(path), "w", format="matroska", options={"fflags": "+bitexact"}) as out:
        out.metadata["title"] = "groupsense sample session (synthetic)"
        streams = []
        for p in PARTICIPANTS:
            stream = out.add_stream(
                "libopus",
                rate=OPUS_SR,
                layout="mono",
                format="flt",
                options={"application": "voip", "frame_duration": "20", "flags": "+bitexact"},
            )
            stream.bit_rate = OPUS_BIT_RATE
            stream.metadata["title"] = p.name
            stream.metadata["language"] = "eng"
            streams.append(stream)
        for k in range(n_frames):
            for stream, signal in zip(streams, upsampled, strict=True):
                frame = av.AudioFrame.from_ndarray(
                    signal[None, k * OPUS_FRAME : (k + 1) * OPUS_FRAME], format="flt", layout="mono"
                )
                frame.sample_rate = OPUS_SR
                frame.pts = k * OPUS_FRAME
                out.mux(stream.encode(frame))
        for stream in streams:
            out.mux(stream.encode(None))


def decode_mkv(path: Path) -> tuple[list[str], list[int], list[np.ndarray]]:
    """Decode every audio track to float 48 kHz mono; return (titles, pre-skips, signals).

    The pre-skip (encoder priming, in 48 kHz samples) comes from each track's
    OpusHead; FFmpeg's decoder drops those samples itself.
    """
    with av.open(str(path)) as container:
        titles = [s.metadata.get("title", "") for s in container.streams.audio]
        pre_skips = [
            int.from_bytes(bytes(s.codec_context.extradata or b"")[10:12], "little")
            for s in container.streams.audio
        ]
        chunks: list[list[np.ndarray]] = [[] for _ in container.streams.audio]
        for packet in container.demux(container.streams.audio):
            for frame in packet.decode():
                chunks[packet.stream.index].append(frame.to_ndarray().reshape(-1))
    return titles, pre_skips, [np.concatenate(c).astype(np.float64) for c in chunks]


def alignment_lag(reference: np.ndarray, decoded: np.ndarray, max_lag: int) -> int:
    """Lag (samples) maximising the cross-correlation; > 0 means decoded is late."""
    n = min(len(reference), len(decoded))
    size = 1 << (2 * n - 1).bit_length()
    xc = np.fft.irfft(
        np.fft.rfft(decoded[:n], size) * np.conj(np.fft.rfft(reference[:n], size)), size
    )
    lags = np.concatenate([np.arange(0, max_lag + 1), np.arange(-max_lag, 0)])
    values = np.concatenate([xc[: max_lag + 1], xc[-max_lag:]])
    return int(lags[np.argmax(values)])


def verify(path: Path, tracks: np.ndarray, duration_s: float, label: str) -> list[str]:
    """Check the MKV against the clean mix; return report lines or raise."""
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise RuntimeError(f"{path} is {size} bytes, over {MAX_FILE_BYTES}")
    titles, pre_skips, signals = decode_mkv(path)
    expected = [p.name for p in PARTICIPANTS]
    if titles != expected:
        raise RuntimeError(f"track titles {titles} != {expected}")
    report = [f"{label}: {size} bytes ({size / 1e6:.2f} MB), {len(signals)} Opus tracks"]
    for p, pre_skip, signal, reference in zip(
        PARTICIPANTS, pre_skips, signals, tracks, strict=True
    ):
        decoded_s = len(signal) / OPUS_SR
        if abs(decoded_s - duration_s) > MAX_DURATION_MISMATCH_S:
            raise RuntimeError(f"track {p.name}: {decoded_s:.3f} s decoded vs {duration_s:.3f} s")
        at_16k = resample_poly(signal, 1, UPSAMPLE)
        lag = alignment_lag(reference, at_16k, round(0.1 * SR))
        if abs(lag) > MAX_ALIGNMENT_LAG_S * SR:
            raise RuntimeError(f"track {p.name}: decoded audio shifted by {lag / SR * 1000:.1f} ms")
        report.append(
            f"  track {TRACK[p.name]} title={p.name!r}: {decoded_s:.3f} s decoded, "
            f"Opus pre-skip {pre_skip} samples, alignment lag {lag / SR * 1000:+.2f} ms"
        )
    return report


# --- Main ------------------------------------------------------------------------


def summary(truth: dict) -> list[str]:
    times = {p["name"]: sum(e - s for s, e in p["segments"]) for p in truth["participants"]}
    total = sum(times.values())
    lines = [f"session: {truth['duration_s']:.3f} s, {truth['generator']}"]
    for p in truth["participants"]:
        name = p["name"]
        lines.append(
            f"  {name:<12} segments={len(p['segments']):>3}  speaking={times[name]:7.3f} s  "
            f"share={times[name] / total:6.1%}"
        )
    ev = truth["events"]
    lines.append(
        f"  overlaps={len(ev['overlaps'])} interruptions={len(ev['interruptions'])} "
        f"group_silences={ev['group_silences']} backchannels={len(ev['backchannels'])} "
        f"non_speech={len(ev['non_speech'])}"
    )
    return lines


def check_story(truth: dict) -> None:
    """Enforce the properties the sample is meant to exhibit."""
    times = {p["name"]: sum(e - s for s, e in p["segments"]) for p in truth["participants"]}
    if not min(times["ana"], times["ben"]) > times["facilitator"] > times["cleo"]:
        raise RuntimeError(f"speaking times do not tell the intended story: {times}")
    if not DURATION_RANGE_S[0] <= truth["duration_s"] <= DURATION_RANGE_S[1]:
        raise RuntimeError(f"session lasts {truth['duration_s']} s, outside {DURATION_RANGE_S}")
    low, high = LONG_SILENCE_RANGE_S
    long_silences = [e - s for s, e in truth["events"]["group_silences"] if low <= e - s <= high]
    if len(long_silences) != 1:
        raise RuntimeError(
            f"expected one 8-12 s group silence: {truth['events']['group_silences']}"
        )


def check_line(line: Line) -> None:
    """One sentence, no commas (they make espeak-ng pause), 4-20 words (backchannels 1-2)."""
    words = len(line.text.split())
    low, high = (1, 2) if line.backchannel else (4, 20)
    if "," in line.text or re.search(r"[.?!;:]\s*\S", line.text) or not low <= words <= high:
        raise ValueError(f"need one comma-free sentence of {low}-{high} words: {line.text!r}")
    if line.speaker not in TRACK:
        raise ValueError(f"unknown speaker {line.speaker!r}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out-dir", type=Path, default=DEFAULT_OUT_DIR, help="output folder")
    parser.add_argument(
        "--seed", type=int, default=SEED, help="random seed (default: the fixed one)"
    )
    args = parser.parse_args(argv)
    out_dir: Path = args.out_dir
    out_dir.mkdir(parents=True, exist_ok=True)

    version = espeak_version()
    script_sha = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()
    who = {p.name: p for p in PARTICIPANTS}

    clips: list[Clip] = []
    with tempfile.TemporaryDirectory(prefix="groupsense-sample-") as tmp:
        for index, line in enumerate(SCRIPT):
            check_line(line)
            speaker = who[line.speaker]
            audio = tighten(synthesise(line.text, speaker, Path(tmp), index))
            gain = db_to_gain(SPEECH_PEAK_DBFS + speaker.gain_db) / np.abs(audio).max()
            clip = Clip(line, audio * gain)
            clip.segments = speech_segments(clip.audio)
            clips.append(clip)

    timeline = build_timeline(clips, np.random.default_rng(args.seed))
    tracks, non_speech = render(timeline, args.seed)
    truth = build_truth(timeline, non_speech, version, script_sha, args.seed)
    check_story(truth)

    truth_text = to_json(truth) + "\n"
    if json.loads(truth_text) != truth:
        raise RuntimeError("truth.json does not round-trip")
    partial = out_dir / "session.mkv.partial"  # replaced only once verified
    encode_mkv(tracks, partial)
    mkv = out_dir / "session.mkv"
    report = verify(partial, tracks, truth["duration_s"], label=mkv.name)
    partial.replace(mkv)
    (out_dir / "truth.json").write_text(truth_text, encoding="utf-8")

    print("\n".join(summary(truth) + report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
