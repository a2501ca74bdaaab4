"""`groupsense eval diar`: online shared-microphone diarization scored by DER on real meetings.

Each file is streamed hop by hop through the engine's VAD and a `SharedMicDiarizer`, as
a live stream would be; labels are taken as committed (never revised), so the DER is the
online system's. DER: collar 0.25 s either side of each reference boundary, overlapped
speech scored (every reference speaker of a frame counts), optimal one-to-one mapping.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from engine.audio.decode import decode_file
from engine.config import VadConfig
from engine.datasets import RttmTurn, diarization_items, shared_data_dir
from engine.diarize.cluster import ClusterConfig
from engine.diarize.embed import SpeakerEmbedder
from engine.diarize.online import (
    DiarizeConfig,
    SharedMicDiarizer,
    segments_by_speaker,
    shared_mic_vad,
)
from engine.metrics import Der, Turn, diarization_error, frames_from_intervals
from engine.types import HOP, HOPS_PER_SECOND
from engine.vad import Hangover, make_backend

LATENCIES = (1.0, 5.0)
# tuned on trn01..09 with `groupsense eval diar --tune` (never on dev*/sample)
TUNED = ClusterConfig(new_speaker=0.35, update=0.4)


@dataclass(frozen=True, slots=True)
class Item:
    fid: str
    hops: np.ndarray  # int16 (n, HOP)
    ref: list[Turn]
    uem: tuple[float, float]


def load_items(root: Path) -> list[Item]:
    uems: dict[str, tuple[float, float]] = {}
    for f in sorted(root.glob("*.uem")):
        for line in f.read_text(encoding="utf-8").splitlines():
            p = line.split()
            if len(p) >= 4:
                uems[p[0]] = (float(p[2]), float(p[3]))
    items = []
    for fid, (wav, turns) in diarization_items(root).items():
        _, chunks = decode_file(wav)
        samples = np.concatenate([c for _, c in chunks])
        n = -(-samples.shape[0] // HOP)
        hops = np.zeros((n, HOP), np.int16)
        hops.reshape(-1)[: samples.shape[0]] = samples
        ref = [(t.start, t.end, t.speaker) for t in turns]
        items.append(Item(fid, hops, ref, uems.get(fid, (0.0, n / HOPS_PER_SECOND))))
    return items


def vad_mask(hops: np.ndarray, backend_name: str) -> np.ndarray:
    config = shared_mic_vad(VadConfig(backend=backend_name))  # as analyze and live use it
    backend = make_backend(config)
    state = backend.open_stream()
    hang = Hangover(config)
    probs = np.concatenate([backend.process([state], [hops])[0], backend.flush(state)])
    mask = np.zeros(hops.shape[0], dtype=bool)
    for s in hang.push(probs) + hang.flush():
        mask[s.start : s.end] = True
    return mask


def oracle_mask(ref: list[RttmTurn] | list[Turn], n: int) -> np.ndarray:
    return frames_from_intervals([(t[0], t[1]) for t in ref], n, HOPS_PER_SECOND)  # type: ignore[index]


def diarize(
    embedder: SpeakerEmbedder, config: DiarizeConfig, hops: np.ndarray, mask: np.ndarray
) -> tuple[np.ndarray, int, float]:
    """Stream hop by hop: (labels (n, 2), worst commit latency in hops, busy seconds)."""
    d = SharedMicDiarizer(embedder, config)
    labels = np.full((hops.shape[0], 2), -1, np.int8)
    worst = 0
    t0 = time.perf_counter()
    for i in range(hops.shape[0]):
        got = d.process(hops[i : i + 1], mask[i : i + 1])
        if got.speakers.shape[0]:
            labels[got.start : got.end] = got.speakers
            speech = np.flatnonzero(mask[got.start : got.end])
            if speech.size:
                worst = max(worst, i + 1 - (got.start + int(speech[0])))
    got = d.flush()
    labels[got.start : got.end] = got.speakers
    return labels, worst, time.perf_counter() - t0


def hyp_turns(labels: np.ndarray) -> list[Turn]:
    return [
        (s.start_s, s.end_s, f"S{k}")
        for k, segs in segments_by_speaker(labels).items()
        for s in segs
    ]


def score(
    embedder: SpeakerEmbedder,
    config: DiarizeConfig,
    items: list[Item],
    masks: dict[str, np.ndarray],
) -> tuple[Der, int, float, float]:
    total = Der(0.0, 0.0, 0.0, 0.0)
    worst, busy, audio = 0, 0.0, 0.0
    for it in items:
        labels, lat, b = diarize(embedder, config, it.hops, masks[it.fid])
        total = total + diarization_error(it.ref, hyp_turns(labels), uem=it.uem, collar=0.25)
        worst, busy = max(worst, lat), busy + b
        audio += it.hops.shape[0] / HOPS_PER_SECOND
    return total, worst, busy, audio


def add_subparser(what: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    d = what.add_parser(
        "diar",
        help="DER of online shared-microphone diarization at 1 s and 5 s latency",
        description="Streams ../shared/data/diarization (AMI excerpts + sample) through VAD and "
        "the online diarizer; DER with a 0.25 s collar, overlapped speech scored. Reports on "
        "dev* and sample; trn* are for --tune only.",
    )
    d.add_argument("--data", type=Path, default=None, help="folder with *.wav, *.rttm, *.uem")
    d.add_argument("--vad", choices=("silero", "webrtc"), default="silero")
    d.add_argument("--oracle-vad", action="store_true", help="also score with reference speech")
    d.add_argument("--tune", action="store_true", help="grid-search thresholds on trn* files")
    d.add_argument("--json", metavar="OUT", help="write the table as JSON")
    d.set_defaults(run=run_diar)


def _grid(
    embedder: SpeakerEmbedder, items: list[Item], masks: dict[str, np.ndarray]
) -> list[dict[str, float]]:
    rows = []
    for latency in LATENCIES:
        for new in (0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5):
            for gap in (0.05, 0.15):
                cc = replace(TUNED, new_speaker=new, update=min(new + gap, 0.95))
                cfg = DiarizeConfig(latency_s=latency, cluster=cc)
                r, _, _, _ = score(embedder, cfg, items, masks)
                rows.append(
                    {"latency_s": latency, "new_speaker": new, "update": cc.update, "der": r.der}
                )
                print(
                    f"latency {latency:.0f} s  new_speaker {new:.2f}  update {cc.update:.2f}  "
                    f"DER {r.der:6.1%}",
                    flush=True,
                )
    return rows


def run_diar(args: argparse.Namespace) -> int:
    root = args.data
    if root is None:
        base = shared_data_dir()
        root = base / "diarization" if base else None
    if root is None or not root.is_dir():
        print(
            "groupsense eval diar: no diarization data found; pass --data DIR "
            "(the folder ../shared/data/diarization) or set GROUPSENSE_DATA",
            file=sys.stderr,
        )
        return 2
    items = load_items(root)
    if not items:
        print(f"groupsense eval diar: {root}: no *.wav with RTTM turns", file=sys.stderr)
        return 2
    embedder = SpeakerEmbedder()
    masks = {it.fid: vad_mask(it.hops, args.vad) for it in items}
    oracle = {it.fid: oracle_mask(it.ref, it.hops.shape[0]) for it in items}
    train = [it for it in items if it.fid.startswith("trn")]
    if args.tune:
        grid = _grid(embedder, train, masks)
        if args.json:
            Path(args.json).write_text(json.dumps(grid, indent=1), encoding="utf-8")
        return 0
    test = [it for it in items if not it.fid.startswith("trn")]
    sets = [
        ("dev*", [it for it in test if it.fid.startswith("dev")]),
        ("sample", [it for it in test if it.fid == "sample"]),
        ("dev*+sample", test),
    ]
    vads = [(args.vad, masks)] + ([("oracle", oracle)] if args.oracle_vad else [])
    print(
        f"Online diarization DER on {root}: collar 0.25 s, overlap scored; "
        f"thresholds tuned on trn* only ({len(train)} files)"
    )
    print(
        f"{'files':12} {'VAD':7} {'latency':>7} {'DER':>6} {'miss':>6} {'FA':>6} {'conf':>6} "
        f"{'max wait':>8} {'x RT':>6}"
    )
    rows: list[dict[str, object]] = []
    for vad_name, m in vads:
        for set_name, its in sets:  # context: all speech given to one speaker
            one = sum(
                (
                    diarization_error(
                        it.ref,
                        hyp_turns(np.where(m[it.fid][:, None], [0, -1], -1).astype(np.int8)),
                        uem=it.uem,
                        collar=0.25,
                    )
                    for it in its
                ),
                Der(0.0, 0.0, 0.0, 0.0),
            )
            rows.append({"files": set_name, "vad": vad_name, "latency_s": None, "der": one.der})
            print(f"{set_name:12} {vad_name:7} {'1 spk':>7} {one.der:6.1%}   (baseline: one label)")
        for latency in LATENCIES:
            cfg = DiarizeConfig(latency_s=latency, cluster=TUNED)
            for set_name, its in sets:
                if not its:
                    continue
                r, worst, busy, audio = score(embedder, cfg, its, m)
                row = {
                    "files": set_name,
                    "vad": vad_name,
                    "latency_s": latency,
                    "der": r.der,
                    "miss": r.miss / r.total,
                    "false_alarm": r.false_alarm / r.total,
                    "confusion": r.confusion / r.total,
                    "scored_s": r.total,
                    "max_wait_s": worst / HOPS_PER_SECOND,
                    "rt_factor": busy / audio,
                }
                rows.append(row)
                print(
                    f"{set_name:12} {vad_name:7} {latency:6.0f}s {r.der:6.1%} "
                    f"{row['miss']:6.1%} {row['false_alarm']:6.1%} {row['confusion']:6.1%} "
                    f"{row['max_wait_s']:7.2f}s {row['rt_factor']:6.3f}",
                    flush=True,
                )
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1), encoding="utf-8")
    return 0
