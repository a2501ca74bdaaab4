"""Offline analysis of recorded sessions: files in, who spoke when out.

The same per-stream pipeline as the live path. Each input file is decoded in one
pass with its tracks batched through the VAD together; audio is held only for
the hops waiting for the next batched VAD call.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from engine.affect.stream import AffectStream, affect_step
from engine.alerts import replay
from engine.audio.decode import decode_file
from engine.bleed import BleedSuppressor, remove_hops, segments_to_mask, tidy_mask
from engine.config import AlertConfig, BleedConfig, SignalConfig, VadConfig
from engine.diarize.cluster import speaker_name
from engine.diarize.embed import SpeakerEmbedder
from engine.diarize.online import (
    DiarizeConfig,
    SharedMicDiarizer,
    segments_by_speaker,
    shared_mic_vad,
)
from engine.errors import InputFileError
from engine.pipeline import ParticipantPipeline, finish, step
from engine.signals import SessionSignals, SpeakingFigures, speaking_figures
from engine.types import (
    HOP,
    HOPS_PER_SECOND,
    SAMPLE_RATE,
    Alert,
    Cue,
    SpeechSegment,
    TrackInfo,
)
from engine.vad import VadBackend, make_backend

BATCH_HOPS = 200  # run the VAD once ~2 s of audio per track is waiting
TRUNCATION_TOLERANCE_S = 0.5

ProgressFn = Callable[[float], None]
"""Called with the seconds of audio decoded so far (summed over files, longest track)."""


@dataclass(frozen=True, kw_only=True, slots=True)
class ParticipantResult:
    name: str
    track: TrackInfo
    segments: tuple[SpeechSegment, ...]
    figures: SpeakingFigures


@dataclass(frozen=True, kw_only=True, slots=True)
class Analysis:
    participants: tuple[ParticipantResult, ...]
    duration_s: float
    vad: str
    errors: tuple[InputFileError, ...]
    signals: SessionSignals  # keyed by participant name (docs/signals.md)
    alerts: tuple[Alert, ...]  # as a live session would have raised and cleared them
    affect: dict[str, AffectResult]  # by participant name; empty unless asked for


@dataclass(frozen=True, kw_only=True, slots=True)
class AffectResult:
    """A participant's voice over the session (analyze --affect): cues for a human."""

    arousal: float  # the affect model's mean over their speech windows, 0-1; -1 if none
    valence: float
    windows: int  # 2 s windows of their speech analysed
    cues: tuple[Cue, ...]  # every cue raised, with when it cleared (-1: still active)


def analyze(
    paths: Sequence[str | os.PathLike[str]],
    config: VadConfig,
    *,
    backend: VadBackend | None = None,
    progress: ProgressFn | None = None,
    bleed: BleedConfig | None = None,
    signals: SignalConfig | None = None,
    alerts: AlertConfig | None = None,
    roles: Mapping[str, str] | None = None,
    shared_mic: DiarizeConfig | None = None,
    affect: bool = False,
) -> Analysis:
    """Analyse files as one session: each audio track is a participant, all start at 0.

    A file that fails (corrupt, truncated, empty, no audio, bad layout) is
    reported in `errors` and left out; the other files are still analysed.
    Speaker bleed (`bleed`, on by default) is taken out of the speech after the VAD.
    With `shared_mic`, every track is a shared microphone: its speech is diarized into
    sub-participants "<name>/A", "/B", ... that replace it (a second decoding pass).
    """
    backend = backend or make_backend(config)
    bleed = bleed or BleedConfig()
    done: list[tuple[TrackInfo, ParticipantPipeline]] = []
    errors: list[InputFileError] = []
    streams: dict[str, AffectStream] = {}  # by file#track; only with `affect`
    offset_s = 0.0
    for path in paths:
        try:
            result = _analyze_file(
                os.fspath(path),
                config if shared_mic is None else shared_mic_vad(config),
                backend,
                progress,
                offset_s,
                keep_levels=bleed.enabled,
                affect=streams if affect else None,
            )
        except InputFileError as exc:
            errors.append(exc)
            continue
        done.extend(result)
        offset_s += max((p.hops_in for _, p in result), default=0) / HOPS_PER_SECOND
    names = _unique_names([t.name for t, _ in done])
    session_hops = max((p.hops_in for _, p in done), default=0)
    raw = [list(p.segments) for _, p in done]  # before bleed removal: the diarizer's mask
    if bleed.enabled and len(done) > 1:
        _suppress_bleed(
            [p for _, p in done],
            session_hops,
            bleed,
            config.min_speech_hops,
            config.min_silence_hops,
        )
    parts = [(n, t, list(p.segments)) for n, (t, p) in zip(names, done, strict=True)]
    if shared_mic is not None:
        parts = _split_shared_mics(parts, raw, shared_mic)
    figures = speaking_figures({n: segs for n, _, segs in parts}, session_hops)
    participants = tuple(
        ParticipantResult(name=n, track=t, segments=tuple(segs), figures=figures[n])
        for n, t, segs in parts
    )
    final, raised = replay(
        {r.name: r.segments for r in participants},
        session_hops,
        roles=roles or {},
        signals=signals or SignalConfig(),
        alerts=alerts or AlertConfig(),
    )
    return Analysis(
        participants=participants,
        duration_s=session_hops / HOPS_PER_SECOND,
        vad=backend.name,
        errors=tuple(errors),
        signals=final,
        alerts=tuple(raised),
        affect={
            n: _affect_result(streams[f"{t.path}#{t.index}"])
            for n, (t, _) in zip(names, done, strict=True)
            if f"{t.path}#{t.index}" in streams and shared_mic is None
        },
    )


def _affect_result(a: AffectStream) -> AffectResult:
    n = a.windows if a.use_model else 0  # the model's means; prosody-only streams have none
    return AffectResult(
        arousal=a.arousal_sum / n if n else -1.0,
        valence=a.valence_sum / n if n and a.valence_sum > 0 else -1.0,
        windows=a.windows,
        cues=tuple(a.cues.history),
    )


def _analyze_file(
    path: str,
    config: VadConfig,
    backend: VadBackend,
    progress: ProgressFn | None,
    offset_s: float,
    *,
    keep_levels: bool = False,
    affect: dict[str, AffectStream] | None = None,
) -> list[tuple[TrackInfo, ParticipantPipeline]]:
    tracks, chunks = decode_file(path)
    pipelines = [ParticipantPipeline.open(t.name, backend, config) for t in tracks]
    streams: list[AffectStream | None] = [None] * len(tracks)
    for k, p in enumerate(pipelines):
        p.keep_levels = keep_levels
        if affect is not None:
            p.keep_audio = True
            streams[k] = affect.setdefault(f"{path}#{k}", AffectStream(tracks[k].name))
    batch = BATCH_HOPS * len(pipelines)
    waiting = 0
    report_every = 10 * SAMPLE_RATE
    next_report = report_every
    decoded = [0] * len(tracks)
    for i, pcm in chunks:
        pipelines[i].feed(pcm)
        decoded[i] += pcm.shape[0]
        waiting += pcm.shape[0]
        if waiting >= batch * 160:
            step(backend, pipelines)
            _feed_affect(pipelines, streams)
            waiting = 0
            if progress is not None and decoded[i] >= next_report:
                progress(offset_s + max(decoded) / SAMPLE_RATE)
                next_report += report_every
    step(backend, pipelines)
    for p in pipelines:
        finish(backend, p)
    _feed_affect(pipelines, streams)
    for t, n in zip(tracks, decoded, strict=True):
        got = n / SAMPLE_RATE
        if t.duration_s is not None and got + TRUNCATION_TOLERANCE_S < t.duration_s:
            raise InputFileError(
                path,
                f"truncated: audio track {t.index} ends at {got:.1f} s "
                f"but the file declares {t.duration_s:.1f} s",
            )
    if progress is not None:
        progress(offset_s + max(decoded) / SAMPLE_RATE)
    return list(zip(tracks, pipelines, strict=True))


def _feed_affect(
    pipelines: Sequence[ParticipantPipeline], streams: Sequence[AffectStream | None]
) -> None:
    """The hops the VAD just passed, through prosody, the affect model and cues (one
    batched call per block); the audio is dropped right after."""
    queues = []
    for p, a in zip(pipelines, streams, strict=True):
        held, audio = p.audio_hops, p.take_audio()
        if a is not None and audio:
            end = p.hops_done - held
            items = []
            for hops, speech in audio:
                end += speech.shape[0]
                items.append((a, hops.reshape(-1), speech, end))
            queues.append(items)
    while any(queues):
        batch = [q.pop(0) for q in queues if q]
        affect_step(
            [b[0] for b in batch],
            [b[1] for b in batch],
            [b[2] for b in batch],
            [b[3] for b in batch],
        )


def _suppress_bleed(
    pipelines: list[ParticipantPipeline],
    n_hops: int,
    config: BleedConfig,
    min_speech_hops: int,
    min_silence_hops: int,
) -> None:
    """Take other participants' voices picked up from loudspeakers out of each stream's
    segments, then drop leftovers shorter than the VAD's minimum speech run."""
    env = np.full((len(pipelines), n_hops), config.floor_dbfs, np.float32)
    speech = np.zeros((len(pipelines), n_hops), np.bool_)
    for k, p in enumerate(pipelines):
        if p.levels:
            lv = np.concatenate(p.levels)
            env[k, : lv.shape[0]] = lv[:n_hops]
        p.levels.clear()
        speech[k] = segments_to_mask(p.segments, n_hops)
    suppressor = BleedSuppressor(len(pipelines), config)
    mask = suppressor.step(env, speech)
    for k, p in enumerate(pipelines):
        bleed = tidy_mask(mask[k], config.fill_gap_hops, config.min_run_hops)
        p.segments[:] = remove_hops(
            p.segments, bleed, min_speech_hops, suppressor.last_dominated[k], min_silence_hops
        )


def _split_shared_mics(
    parts: list[tuple[str, TrackInfo, list[SpeechSegment]]],
    raw: list[list[SpeechSegment]],
    config: DiarizeConfig,
) -> list[tuple[str, TrackInfo, list[SpeechSegment]]]:
    """Diarize every track's speech into sub-participants. The diarizer hears the VAD's
    speech; each sub-participant keeps only its hops that are left after bleed removal
    (as the live path does, where labels must not wait for the bleed stage)."""
    embedder = SpeakerEmbedder()
    by_path: dict[str, list[tuple[str, TrackInfo, list[SpeechSegment], list[SpeechSegment]]]]
    by_path = {}
    for part, vad in zip(parts, raw, strict=True):
        by_path.setdefault(part[1].path, []).append((*part, vad))
    out: list[tuple[str, TrackInfo, list[SpeechSegment]]] = []
    for path, file_parts in by_path.items():
        out.extend(_diarize_file(path, file_parts, embedder, config))
    return out


def _diarize_file(
    path: str,
    parts: list[tuple[str, TrackInfo, list[SpeechSegment], list[SpeechSegment]]],
    embedder: SpeakerEmbedder,
    config: DiarizeConfig,
) -> list[tuple[str, TrackInfo, list[SpeechSegment]]]:
    """Decode the file again, stepping each track's diarizer every ~2 s of its audio, so
    audio is held only per batch, as in the first pass."""
    diarizers = {t.index: SharedMicDiarizer(embedder, config) for _, t, _, _ in parts}
    masks = {
        t.index: segments_to_mask(vad, max((s.end for s in vad), default=0))
        for _, t, _, vad in parts
    }
    labels: dict[int, list[np.ndarray]] = {i: [] for i in diarizers}
    held: dict[int, list[np.ndarray]] = {i: [] for i in diarizers}
    fed = dict.fromkeys(diarizers, 0)

    def feed(i: int, final: bool) -> None:
        pcm = np.concatenate(held[i]) if held[i] else np.zeros(0, np.int16)
        n = -(-pcm.shape[0] // HOP) if final else pcm.shape[0] // HOP
        hops = np.zeros((n, HOP), np.int16)
        hops.reshape(-1)[: min(pcm.shape[0], n * HOP)] = pcm[: n * HOP]
        held[i] = [] if final else [pcm[n * HOP :]]
        m = masks[i][fed[i] : fed[i] + n]
        speech = np.zeros(n, bool)
        speech[: m.shape[0]] = m
        fed[i] += n
        labels[i].append(diarizers[i].process(hops, speech).speakers)
        if final:
            labels[i].append(diarizers[i].flush().speakers)

    _, chunks = decode_file(path)
    for i, pcm in chunks:
        if i in diarizers:
            held[i].append(pcm)
            if sum(c.shape[0] for c in held[i]) >= BATCH_HOPS * HOP:
                feed(i, False)
    for i in diarizers:
        feed(i, True)
    out = []
    for name, t, cleaned, _ in parts:
        lab = np.concatenate(labels[t.index])
        keep = segments_to_mask(cleaned, lab.shape[0])
        found = segments_by_speaker(np.where(keep[:, None], lab, np.int8(-1)))
        # identities in order, as the live path lists them; a silent mic stays as "/A"
        for k in range(max(found, default=0) + 1):
            found.setdefault(k, [])
        for k in sorted(found):
            out.append((speaker_name(name, k), t, found[k]))
    return out


def _unique_names(names: list[str]) -> list[str]:
    """Participants from different files may share a name: suffix repeats with #2, #3..."""
    seen: dict[str, int] = {}
    out = []
    for n in names:
        seen[n] = seen.get(n, 0) + 1
        out.append(n if seen[n] == 1 else f"{n}#{seen[n]}")
    return out
