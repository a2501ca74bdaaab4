"""`groupsense eval vad`: score every VAD backend on labelled real speech."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from engine.audio.decode import decode_file
from engine.config import VAD_BACKENDS, VadConfig
from engine.datasets import shared_data_dir, vad_items
from engine.errors import InputFileError
from engine.metrics import (
    Detection,
    detection,
    frames_from_intervals,
    frames_from_segments,
    roc_auc,
)
from engine.types import HOP, HOPS_PER_SECOND, SAMPLE_RATE
from engine.vad import Hangover, make_backend


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("eval", help="score the engine on labelled real speech")
    what = p.add_subparsers(dest="what", required=True, metavar="WHAT")
    v = what.add_parser(
        "vad",
        help="frame-level precision, recall, F1 and ROC-AUC of each VAD backend",
        description="Scores each backend at 10 ms frames on ../shared/data/vad "
        "(the TEN VAD test set): P/R/F1 of the smoothed segments, ROC-AUC of the raw "
        "probabilities, and cost relative to webrtc measured in the same run.",
    )
    v.add_argument("--data", type=Path, default=None, help="folder with *.wav + *.scv")
    v.add_argument("--vad", nargs="+", choices=VAD_BACKENDS, default=list(VAD_BACKENDS))
    v.add_argument("--json", metavar="OUT", help="write the table as JSON")
    v.set_defaults(run=run_vad)

    from cli import eval_diar  # diarization scoring lives in its own module

    eval_diar.add_subparser(what)


def _load(path: Path) -> np.ndarray:
    _, chunks = decode_file(path)
    return np.concatenate([c for _, c in chunks])


def score_backend(backend_name: str, items: list[tuple[Any, np.ndarray]]) -> dict[str, Any]:
    config = VadConfig(backend=backend_name)
    backend = make_backend(config)
    total = Detection(0, 0, 0)
    all_probs, all_truth = [], []
    busy = 0.0
    audio_s = 0.0
    for item, samples in items:
        n = -(-samples.shape[0] // HOP)
        hops = np.zeros((n, HOP), np.int16)
        hops.reshape(-1)[: samples.shape[0]] = samples
        state = backend.open_stream()
        hang = Hangover(config)
        t0 = time.perf_counter()
        probs = np.concatenate([backend.process([state], [hops])[0], backend.flush(state)])
        segments = hang.push(probs) + hang.flush()
        busy += time.perf_counter() - t0
        audio_s += samples.shape[0] / SAMPLE_RATE
        truth = frames_from_intervals(item.speech, n, HOPS_PER_SECOND)
        total = total + detection(frames_from_segments(segments, n), truth)
        all_probs.append(probs[:n])
        all_truth.append(truth)
    auc = roc_auc(np.concatenate(all_probs), np.concatenate(all_truth))
    return {
        "backend": backend_name,
        "precision": total.precision,
        "recall": total.recall,
        "f1": total.f1,
        "roc_auc": auc,
        "frames": int(total.tp + total.fp + total.fn),
        "us_per_audio_s": busy / audio_s * 1e6,
    }


def run_vad(args: argparse.Namespace) -> int:
    root = args.data
    if root is None:
        base = shared_data_dir()
        root = base / "vad" if base else None
    if root is None or not root.is_dir():
        print(
            "groupsense eval vad: no labelled VAD data found; pass --data DIR "
            "(the folder ../shared/data/vad) or set GROUPSENSE_DATA",
            file=sys.stderr,
        )
        return 2
    found = vad_items(root)
    if not found:
        print(f"groupsense eval vad: {root}: no *.wav with a matching *.scv", file=sys.stderr)
        return 2
    items = []
    for item in found:
        try:
            items.append((item, _load(item.wav)))
        except InputFileError as exc:
            print(f"groupsense: error: {exc}", file=sys.stderr)
            return 1
    # Warm every backend (numba compile, ONNX session) before timing anything.
    for name in args.vad:
        score_backend(name, items[:1])
    rows = [score_backend(name, items) for name in args.vad]
    ref = next((r["us_per_audio_s"] for r in rows if r["backend"] == "webrtc"), None)
    audio_s = sum(s.shape[0] for _, s in items) / SAMPLE_RATE
    print(f"VAD on {root} ({len(items)} files, {audio_s:.0f} s, 10 ms frames)")
    print(
        f"{'backend':12} {'precision':>9} {'recall':>7} {'F1':>6} {'ROC-AUC':>8} "
        f"{'cost vs webrtc':>15}"
    )
    for r in rows:
        cost = f"{r['us_per_audio_s'] / ref:.2f}x" if ref else "-"
        print(
            f"{r['backend']:12} {r['precision']:9.3f} {r['recall']:7.3f} {r['f1']:6.3f} "
            f"{r['roc_auc']:8.3f} {cost:>15}"
        )
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump({"data": str(root), "audio_s": audio_s, "rows": rows}, f, indent=1)
    return 0
