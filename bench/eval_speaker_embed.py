"""Speaker-verification EER of the shipped GE2E encoder on real meeting speech.

Windows of 1.5 s (the diarizer's window) are cut from single-speaker stretches of the
RTTM references in ../shared/data/diarization; every pair of windows from the same
recording is a trial (same speaker or not), which is the decision a shared-microphone
diarizer makes. Nothing is tuned here: this only measures the model (MODEL_CARD.md).

    python bench/eval_speaker_embed.py [--data DIR]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from cli.eval_diar import load_items
from engine.datasets import shared_data_dir
from engine.diarize.embed import SpeakerEmbedder
from engine.types import HOP, HOPS_PER_SECOND

WIN = 150  # hops


def eer(scores: np.ndarray, same: np.ndarray) -> float:
    """Equal error rate: where false acceptance equals false rejection."""
    order = np.argsort(-scores)
    s = same[order]
    far = np.cumsum(~s) / max(1, int((~s).sum()))
    frr = 1.0 - np.cumsum(s) / max(1, int(s.sum()))
    i = int(np.argmin(np.abs(far - frr)))
    return float((far[i] + frr[i]) / 2)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, default=None)
    args = ap.parse_args()
    base = shared_data_dir()
    root = args.data or (base / "diarization" if base else None)
    if root is None or not root.is_dir():
        print("no diarization data (../shared/data/diarization)", file=sys.stderr)
        return 2
    embedder = SpeakerEmbedder()
    all_scores, all_same = [], []
    n_windows = 0
    for it in load_items(root):
        n = it.hops.shape[0]
        who = np.zeros((n, len({t[2] for t in it.ref})), bool)
        names = sorted({t[2] for t in it.ref})
        for a, b, spk in it.ref:
            who[round(a * HOPS_PER_SECOND) : round(b * HOPS_PER_SECOND), names.index(spk)] = True
        single = who.sum(axis=1) == 1
        windows, labels = [], []
        i = 0
        while i + WIN <= n:
            if single[i : i + WIN].all() and (who[i : i + WIN] == who[i]).all():
                windows.append(it.hops[i : i + WIN].reshape(-1).astype(np.float32) / 32768.0)
                labels.append(int(np.argmax(who[i])))
                i += WIN
            else:
                i += 10
        if len(windows) < 2:
            continue
        e = embedder.embed(windows)
        sim = e @ e.T
        iu = np.triu_indices(len(windows), 1)
        lab = np.array(labels)
        all_scores.append(sim[iu])
        all_same.append((lab[:, None] == lab[None, :])[iu])
        n_windows += len(windows)
    scores, same = np.concatenate(all_scores), np.concatenate(all_same)
    print(
        f"{n_windows} windows of {WIN * HOP / 16000:.1f} s, {same.sum()} same-speaker and "
        f"{(~same).sum()} different-speaker trials within recordings"
    )
    print(f"EER {eer(scores, same):.1%}")
    print(
        f"cosine: same speaker mean {scores[same].mean():.3f}, "
        f"different speakers mean {scores[~same].mean():.3f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
