"""`groupsense analyze`: who spoke when in recorded sessions."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import math
import sys
from pathlib import Path
from typing import Any

from cli.progress import ProgressBar
from engine import __version__
from engine.audio.decode import probe_file
from engine.audio.resample import QUALITY
from engine.config import VAD_BACKENDS, VadConfig
from engine.diarize.cluster import ClusterConfig
from engine.diarize.online import DiarizeConfig
from engine.errors import InputFileError
from engine.offline import AffectResult, Analysis, analyze
from engine.sample import sample_session

PROGRESS_MIN_S = 60.0


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "analyze",
        help="who spoke when in recorded sessions",
        description=(
            "Analyse recordings as one session: every audio track of every file is a "
            "participant (multi-track MKV/WebM/MP4 from recorders, or one file per "
            "participant). With no FILES, analyses the bundled sample session."
        ),
    )
    p.add_argument("files", nargs="*", metavar="FILES", help="audio or video files")
    p.add_argument("--vad", choices=VAD_BACKENDS, default="webrtc", help="VAD backend")
    p.add_argument(
        "--json", metavar="OUT", help="write segments and figures as JSON ('-' = stdout)"
    )
    p.add_argument(
        "--webrtc-aggressiveness", type=int, choices=range(4), default=None, metavar="0-3"
    )
    p.add_argument(
        "--facilitator",
        action="append",
        default=[],
        metavar="NAME",
        help="the participant (track title or file stem) leading the group; repeatable",
    )
    p.add_argument(
        "--shared-mic",
        action="store_true",
        help="every input track is a shared microphone: diarize it into sub-participants "
        "NAME/A, NAME/B, ... (online diarizer, 5 s latency)",
    )
    p.add_argument(
        "--max-speakers", type=int, default=8, metavar="N", help="per shared microphone (1-26)"
    )
    p.add_argument(
        "--rttm", metavar="OUT", help="write who-spoke-when as RTTM (file id = input's stem)"
    )
    p.add_argument(
        "--affect",
        action="store_true",
        help="also analyse voices (prosody, affect model, cues against each person's own "
        "baseline; only with the participants' consent)",
    )
    p.add_argument("--min-speech-ms", type=int, default=None)
    p.add_argument("--min-silence-ms", type=int, default=None)
    p.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="progress bar on stderr (default: for inputs over a minute, on a terminal)",
    )
    p.set_defaults(run=run)


def _config(args: argparse.Namespace) -> VadConfig:
    overrides: dict[str, Any] = {"backend": args.vad}
    if args.webrtc_aggressiveness is not None:
        overrides["webrtc_aggressiveness"] = args.webrtc_aggressiveness
    if args.min_speech_ms is not None:
        overrides["min_speech_ms"] = args.min_speech_ms
    if args.min_silence_ms is not None:
        overrides["min_silence_ms"] = args.min_silence_ms
    return VadConfig(**overrides)


def run(args: argparse.Namespace) -> int:
    try:
        config = _config(args)
    except ValueError as exc:
        print(f"groupsense analyze: {exc}", file=sys.stderr)
        return 2
    shared = None
    if args.shared_mic:
        try:
            shared = DiarizeConfig(
                latency_s=5.0, cluster=ClusterConfig(max_speakers=args.max_speakers)
            )
        except ValueError as exc:
            print(f"groupsense analyze: {exc}", file=sys.stderr)
            return 2
    files = list(args.files)
    if not files:
        files = [str(sample_session())]
        print(
            f"groupsense: no FILES given; analysing the bundled sample {files[0]}", file=sys.stderr
        )

    total_s = 0.0
    for f in files:
        with contextlib.suppress(InputFileError):  # reported once, by analyze() below
            total_s += max((t.duration_s or 0.0) for t in probe_file(f))
    show = (
        args.progress
        if args.progress is not None
        else (total_s > PROGRESS_MIN_S and sys.stderr.isatty())
    )
    bar = ProgressBar(total_s, "analysing") if show and total_s > 0 else None
    try:
        roles = dict.fromkeys(args.facilitator, "facilitator")
        result = analyze(
            files, config, progress=bar, roles=roles, shared_mic=shared, affect=args.affect
        )
    finally:
        if bar is not None:
            bar.close()

    for err in result.errors:
        print(f"groupsense: error: {err}", file=sys.stderr)
    if result.participants:
        print(format_table(result))
    if args.json:
        text = json.dumps(to_json(result), indent=1)
        if args.json == "-":
            print(text)
        else:
            with open(args.json, "w", encoding="utf-8") as f:
                f.write(text + "\n")
    if args.rttm:
        with open(args.rttm, "w", encoding="utf-8") as f:
            f.write(to_rttm(result))
    return 1 if result.errors else 0


def to_rttm(result: Analysis) -> str:
    """One SPEAKER line per segment; file id = the input's stem, speaker = participant."""
    lines = []
    for p in result.participants:
        fid = Path(p.track.path).stem
        for s in p.segments:
            lines.append(
                f"SPEAKER {fid} 1 {s.start_s:.2f} {s.duration_s:.2f} <NA> <NA> "
                f"{p.name.replace(' ', '_')} <NA> <NA>"
            )
    return "".join(line + "\n" for line in lines)


def _clock(seconds: float) -> str:
    m, s = divmod(seconds, 60)
    return f"{int(m)}:{s:04.1f}"


def format_table(result: Analysis) -> str:
    head = (
        "participant",
        "speaking",
        "share",
        "turns",
        "backchannels",
        "interrupts/ed",
        "longest turn",
        "longest silence",
    )
    sig = result.signals.participants
    rows = [
        (
            p.name,
            _clock(p.figures.speaking_s),
            f"{p.figures.share * 100:.1f}%",
            str(sig[p.name].turns),
            str(sig[p.name].backchannels),
            f"{sig[p.name].interruptions_made}/{sig[p.name].interruptions_received}",
            f"{sig[p.name].longest_turn_s:.1f} s",
            f"{p.figures.longest_silence_s:.1f} s",
        )
        for p in result.participants
    ]
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    g = result.signals
    lines = [
        f"session: {_clock(result.duration_s)} min, {len(rows)} participants, VAD {result.vad}",
        "  ".join(
            h.ljust(w) if i == 0 else h.rjust(w)
            for i, (h, w) in enumerate(zip(head, widths, strict=True))
        ),
    ]
    for r in rows:
        lines.append(
            "  ".join(
                c.ljust(w) if i == 0 else c.rjust(w)
                for i, (c, w) in enumerate(zip(r, widths, strict=True))
            )
        )
    fac = (
        "" if math.isnan(g.facilitator_share) else f", facilitator share {g.facilitator_share:.0%}"
    )
    lines.append(
        f"balance {g.balance_entropy:.2f} (1 = equal), {g.group_silences} group silences "
        f"({g.group_silence_s:.0f} s), {len(g.interruptions)} interruptions, "
        f"{g.turn_rate_per_min:.1f} floor changes/min{fac}"
    )
    for a in result.alerts:
        end = "still active at the end" if a.active else f"cleared {_clock(a.cleared_s)}"
        lines.append(f"alert at {_clock(a.since_s)} ({end}): {a.message}")
    for name, v in result.affect.items():
        mood = f"arousal {v.arousal:.2f}" if v.arousal >= 0 else "too little speech"
        lines.append(f"voice of {name}: {mood} over {v.windows} windows, {len(v.cues)} cues")
        for c in v.cues:
            lines.append(f"  cue at {_clock(c.since_s)}: {c.message}")
    return "\n".join(lines)


def _num(v: float, digits: int = 3) -> float | None:
    return None if math.isnan(v) else round(v, digits)


def affect_json(a: AffectResult) -> dict[str, Any]:
    """A participant's voice over the session: model scores and cues (docs/signals.md)."""
    return {
        "arousal": None if a.arousal < 0 else round(a.arousal, 3),
        "valence": None if a.valence < 0 else round(a.valence, 3),
        "windows": a.windows,
        "cues": [
            {
                "kind": c.kind,
                "since_s": round(c.since_s, 2),
                "cleared_s": None if c.active else round(c.cleared_s, 2),
                "deviation": c.deviation,
                "evidence_s": c.evidence_s,
                "confidence": c.confidence,
                "message": c.message,
            }
            for c in a.cues
        ],
    }


def signals_json(result: Analysis) -> dict[str, Any]:
    """The session's engagement signals (docs/signals.md); NaN (undefined) is null."""
    g = result.signals
    return {
        "balance_entropy": _num(g.balance_entropy),
        "balance_gini": _num(g.balance_gini),
        "balance_entropy_5min": _num(g.balance_entropy_5min),
        "group_silences": g.group_silences,
        "group_silence_s": round(g.group_silence_s, 2),
        "longest_group_silence_s": round(g.longest_group_silence_s, 2),
        "silences": [[round(a, 2), round(b, 2)] for a, b in g.silences],
        "overlaps": g.overlaps,
        "overlap_s": round(g.overlap_s, 2),
        "turn_rate_per_min": round(g.turn_rate_per_min, 3),
        "facilitator_share": _num(g.facilitator_share),
        "follows": [{"from": a, "to": b, "count": n} for (a, b), n in sorted(g.follows.items())],
        "interruptions": [{"t": round(t, 2), "by": by, "of": of} for t, by, of in g.interruptions],
    }


def to_json(result: Analysis) -> dict[str, Any]:
    return {
        "groupsense": __version__,
        "vad": result.vad,
        "resampling": QUALITY,
        "duration_s": round(result.duration_s, 2),
        "participants": [
            {
                "name": p.name,
                "file": p.track.path,
                "track": p.track.index,
                "speaking_s": round(p.figures.speaking_s, 2),
                "share": round(p.figures.share, 4),
                "turns": result.signals.participants[p.name].turns,
                "longest_turn_s": round(result.signals.participants[p.name].longest_turn_s, 2),
                "longest_silence_s": round(p.figures.longest_silence_s, 2),
                "signals": {
                    k: (_num(v) if isinstance(v, float) else v)
                    for k, v in dataclasses.asdict(result.signals.participants[p.name]).items()
                },
                "segments": [[round(s.start_s, 2), round(s.end_s, 2)] for s in p.segments],
                **(
                    {"affect": affect_json(result.affect[p.name])}
                    if p.name in result.affect
                    else {}
                ),
            }
            for p in result.participants
        ],
        "group": signals_json(result),
        "alerts": [
            {
                "id": a.id,
                "kind": a.kind,
                "participant": a.participant,
                "since_s": round(a.since_s, 2),
                "cleared_s": None if a.active else round(a.cleared_s, 2),
                "message": a.message,
            }
            for a in result.alerts
        ],
        "errors": [{"file": e.path, "error": e.cause} for e in result.errors],
    }
