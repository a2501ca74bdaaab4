"""`groupsense eval diar`: online shared-microphone diarization scored by DER on real meetings.

Each file is streamed hop by hop through the engine's VAD and a `SharedMicDiarizer`, as
a live stream would be; labels are taken as committed (never revised), so the DER is the
online system's. DER: collar 0.25 s either side of each reference boundary, overlapped
speech scored (every reference speaker of a frame counts), optimal one-to-one mapping.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from collections.abc import Sequence
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
TUNED = ClusterConfig(new_speaker=0.32, update=0.37)


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


SPLICE_TURN_S = (2.0, 8.0)
SPLICE_TRIM_S = 0.1  # dropped at both ends of each reference stretch (boundary slop)
SPLICE_FILE_S = 30.0  # cross-meeting splices are cut into files of about this length


def single_speaker_hops(item: Item) -> dict[str, np.ndarray]:
    """Reference speaker -> its hops (in the UEM) where no one else is labelled, each
    stretch trimmed by SPLICE_TRIM_S at both ends so a neighbour's voice stays out."""
    n = item.hops.shape[0]
    act = {
        s: frames_from_intervals([(a, b) for a, b, k in item.ref if k == s], n)
        for s in sorted({t[2] for t in item.ref})
    }
    count = np.sum(list(act.values()), axis=0)
    inside = frames_from_intervals([item.uem], n)
    trim = round(SPLICE_TRIM_S * HOPS_PER_SECOND)
    out = {}
    for s, a in act.items():
        alone = a & (count == 1) & inside
        edges = np.flatnonzero(np.diff(np.concatenate([[0], alone.astype(np.int8), [0]])))
        keep = [
            np.arange(lo + trim, hi - trim)
            for lo, hi in zip(edges[::2], edges[1::2], strict=True)
            if hi - lo > 2 * trim
        ]
        if keep:
            out[s] = np.concatenate(keep)
    return out


def meetings(items: list[Item]) -> list[list[Item]]:
    """Files grouped by recording: AMI speaker ids are global, so files sharing a speaker
    come from one meeting (same room and microphones)."""
    groups: list[tuple[set[str], list[Item]]] = []
    for it in items:
        spk = {t[2] for t in it.ref}
        hit = [g for g in groups if g[0] & spk]
        merged = (spk.union(*(g[0] for g in hit)), [x for g in hit for x in g[1]] + [it])
        groups = [g for g in groups if not any(g is h for h in hit)] + [merged]
    return [sorted(g[1], key=lambda it: it.fid) for g in groups]


def _pools(items: list[Item]) -> dict[str, np.ndarray]:
    """Speaker -> int16 hops of their single-speaker speech over `items`, in file order."""
    got: dict[str, list[np.ndarray]] = {}
    for it in items:
        for s, idx in single_speaker_hops(it).items():
            got.setdefault(s, []).append(it.hops[idx])
    return {s: np.concatenate(h) for s, h in sorted(got.items())}


def _level(hops: np.ndarray) -> np.ndarray:
    """Scaled to -26 dBFS RMS, so that recordings of different rooms differ by more than level."""
    x = hops.astype(np.float32)
    rms = float(np.sqrt(np.mean(x * x))) or 1.0
    return np.clip(x * (0.05 * 32768 / rms), -32768, 32767).astype(np.int16)


def _alternate(
    fid: str,
    pools: dict[str, np.ndarray],
    pos: dict[str, int],
    rng: np.random.Generator,
    limit: int,
) -> Item | None:
    """Alternating turns of SPLICE_TURN_S from `pools` (never one speaker twice in a row)
    until `limit` hops or fewer than two voices are left; None if no change of voice."""
    lo, hi = (round(x * HOPS_PER_SECOND) for x in SPLICE_TURN_S)
    parts: list[np.ndarray] = []
    ref: list[Turn] = []
    t, prev = 0, None
    while t < limit:
        cands = [s for s in pools if s != prev and pools[s].shape[0] - pos[s] >= lo]
        if not cands:
            break
        s = cands[int(rng.integers(len(cands)))]
        k = min(int(rng.integers(lo, hi + 1)), pools[s].shape[0] - pos[s])
        parts.append(pools[s][pos[s] : pos[s] + k])
        pos[s] += k
        ref.append((t / HOPS_PER_SECOND, (t + k) / HOPS_PER_SECOND, s))
        t, prev = t + k, s
    if len({r[2] for r in ref}) < 2:
        return None
    return Item(fid, np.concatenate(parts), ref, (0.0, t / HOPS_PER_SECOND))


def splice_items(items: list[Item], *, seed: int, across_meetings: bool = True) -> list[Item]:
    """Tuning material with changes of voice, built in memory (never written) from trn*.

    AMI's 30 s excerpts rarely change speaker inside a single-speaker stretch, so a
    threshold tuned on them alone never learns where two voices part. Here each reference
    speaker's single-speaker speech (overlap excluded, see `single_speaker_hops`) is cut
    into turns of 2-8 s that alternate between speakers: first within each meeting (same
    room and microphones, natural levels: `splice<seed>-m<k>`), then, with `across_meetings`,
    from what is left of every speaker across meetings, each pool levelled to one RMS, in
    files of about 30 s (`splice<seed>-x<k>`). Seeded: the same seed gives the same audio and
    the same reference turns.
    """
    rng = np.random.default_rng(seed)
    out: list[Item] = []
    pools: dict[str, np.ndarray] = {}
    pos: dict[str, int] = {}
    for k, group in enumerate(meetings(items)):
        pm = _pools(group)
        pp = {s: 0 for s in pm}
        got = _alternate(f"splice{seed}-m{k}", pm, pp, rng, limit=10**9)
        if got is not None:
            out.append(got)
        for s, h in pm.items():
            if h.shape[0] > pp[s]:
                pools[s] = h[pp[s] :]
    if across_meetings:
        levelled = {s: _level(h) for s, h in pools.items()}
        pos = {s: 0 for s in levelled}
        limit = round(SPLICE_FILE_S * HOPS_PER_SECOND)
        k = 0
        while True:
            got = _alternate(f"splice{seed}-x{k}", levelled, pos, rng, limit)
            if got is None:
                break
            out.append(got)
            k += 1
    return out


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
    *,
    expected: bool = False,
) -> tuple[Der, int, float, float]:
    """Summed DER over `items`; with `expected`, each file's speaker count is given as
    `min_speakers` (as a facilitator's `expected_speakers` would be)."""
    total = Der(0.0, 0.0, 0.0, 0.0)
    worst, busy, audio = 0, 0.0, 0.0
    for it in items:
        cfg = config
        if expected:
            n = min(len({t[2] for t in it.ref}), config.cluster.max_speakers)
            cfg = replace(config, cluster=replace(config.cluster, min_speakers=n))
        labels, lat, b = diarize(embedder, cfg, it.hops, masks[it.fid])
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
    d.add_argument(
        "--oracle-vad",
        action="store_true",
        help="also score with reference speech (with --tune: tune with it instead)",
    )
    d.add_argument(
        "--tune",
        nargs="?",
        const="thresholds",
        choices=("thresholds", "eager", "overlap"),
        help="grid-search on trn* files only: the clustering thresholds (default), eager "
        "(with each file's speaker count given) or the overlap labelling; thresholds and "
        "eager are scored on trn* and on trn* turns spliced in memory (--splice-seeds)",
    )
    d.add_argument(
        "--splice-seeds",
        type=lambda v: [int(x) for x in v.split(",")],
        default=[0, 1, 2],
        help="seeds of the spliced trn* tuning material, comma-separated (default 0,1,2)",
    )
    d.add_argument("--json", metavar="OUT", help="write the table as JSON")
    d.set_defaults(run=run_diar)


class CachedEmbedder(SpeakerEmbedder):
    """Embeddings remembered by window content: a grid over thresholds cuts the same
    windows again and again (the cut depends only on latency and the speech mask)."""

    def __init__(self, inner: SpeakerEmbedder) -> None:
        super().__init__(inner.session)
        self._cache: dict[bytes, np.ndarray] = {}

    def embed(self, windows: Sequence[np.ndarray]) -> np.ndarray:
        keys = [hashlib.blake2b(w.tobytes(), digest_size=16).digest() for w in windows]
        todo = [i for i, k in enumerate(keys) if k not in self._cache]
        if todo:
            for i, e in zip(todo, super().embed([windows[i] for i in todo]), strict=True):
                self._cache[keys[i]] = e
        if not keys:
            return super().embed([])
        return np.stack([self._cache[k] for k in keys])


def _grid_overlap(
    embedder: SpeakerEmbedder, items: list[Item], masks: dict[str, np.ndarray]
) -> list[dict[str, object]]:
    """Overlap labelling (a second voice where two centroids score within `overlap_margin`
    and the second at least `overlap_min`) on trn* only, with the tuned thresholds."""
    rows: list[dict[str, object]] = []
    grid: list[tuple[float | None, float]] = [(None, 0.0)] + [
        (m, low) for m in (0.03, 0.06, 0.1, 0.15, 0.2) for low in (0.2, 0.3, 0.4, 0.5)
    ]
    for latency in LATENCIES:
        for margin, low in grid:
            cfg = DiarizeConfig(
                latency_s=latency, cluster=TUNED, overlap_margin=margin, overlap_min=low
            )
            r, _, _, _ = score(embedder, cfg, items, masks)
            rows.append(
                {"latency_s": latency, "overlap_margin": margin, "overlap_min": low,
                 "der": r.der, "miss": r.miss / r.total,
                 "false_alarm": r.false_alarm / r.total, "confusion": r.confusion / r.total}
            )  # fmt: skip
            print(
                f"latency {latency:.0f} s  overlap_margin {margin}  overlap_min {low:.2f}  "
                f"DER {r.der:6.1%}  miss {r.miss / r.total:6.1%}  "
                f"FA {r.false_alarm / r.total:6.1%}  conf {r.confusion / r.total:6.1%}",
                flush=True,
            )
    return rows


Sets = list[tuple[str, list[Item], dict[str, np.ndarray]]]


def _score_sets(
    embedder: SpeakerEmbedder,
    cfg: DiarizeConfig,
    sets: Sets,
    row: dict[str, object],
    label: str,
    *,
    expected: bool = False,
) -> dict[str, object]:
    """One grid point: `row` plus each set's DER under its name, printed as it comes."""
    for name, its, m in sets:
        row[name] = score(embedder, cfg, its, m, expected=expected)[0].der
    print(f"{label}  " + "  ".join(f"{name} {row[name]:6.1%}" for name, _, _ in sets), flush=True)
    return row


NEW_SPEAKER_GRID = (0.25, 0.3, 0.32, 0.35, 0.38, 0.4, 0.45)


def _grid_thresholds(
    embedder: SpeakerEmbedder,
    sets: Sets,
) -> list[dict[str, object]]:
    """new_speaker (update = new_speaker + 0.05) x confirmation margin, on each set, with
    overlap labelling off (it is tuned afterwards, on top: --tune overlap)."""
    rows: list[dict[str, object]] = []
    for latency in LATENCIES:
        for new in NEW_SPEAKER_GRID:
            for confirm in (0.0, 0.05, 0.1, None):
                if latency == 1.0 and confirm != 0.0:
                    continue  # 1 s leaves no look-ahead window to confirm with
                cc = replace(TUNED, new_speaker=new, update=new + 0.05)
                cfg = DiarizeConfig(
                    latency_s=latency, cluster=cc, confirm_margin=confirm, overlap_margin=None
                )
                row: dict[str, object] = {
                    "latency_s": latency, "new_speaker": new, "update": cc.update,
                    "confirm_margin": confirm,
                }  # fmt: skip
                label = f"latency {latency:.0f} s  new_speaker {new:.2f}  confirm {confirm}"
                rows.append(_score_sets(embedder, cfg, sets, row, label))
    return rows


def _grid_eager(
    embedder: SpeakerEmbedder,
    sets: Sets,
    cluster: ClusterConfig,
) -> list[dict[str, object]]:
    """`eager` (the threshold while fewer identities than expected exist), with each
    file's true speaker count as the expected count."""
    rows: list[dict[str, object]] = []
    for latency in LATENCIES:
        for eager in (cluster.new_speaker, 0.35, 0.38, 0.4, 0.45, 0.5, 0.55, 0.6):
            cfg = DiarizeConfig(
                latency_s=latency, cluster=replace(cluster, eager=eager), overlap_margin=None
            )
            row: dict[str, object] = {"latency_s": latency, "eager": eager}
            label = f"latency {latency:.0f} s  eager {eager:.2f}  (count given)"
            rows.append(_score_sets(embedder, cfg, sets, row, label, expected=True))
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
        embedder = CachedEmbedder(embedder)
        if args.oracle_vad:  # tune on reference speech instead of the VAD's
            masks = oracle
    if args.tune == "overlap":
        grid = _grid_overlap(embedder, train, masks)
    elif args.tune:
        spliced = [it for seed in args.splice_seeds for it in splice_items(train, seed=seed)]
        smasks = {
            it.fid: oracle_mask(it.ref, it.hops.shape[0])
            if args.oracle_vad
            else vad_mask(it.hops, args.vad)
            for it in spliced
        }
        tsets = [("trn", train, masks), ("splice", spliced, smasks)]
        if args.tune == "eager":
            grid = _grid_eager(embedder, tsets, TUNED)
        else:
            grid = _grid_thresholds(embedder, tsets)
    if args.tune:
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
        f"thresholds tuned on trn* only ({len(train)} files, and trn* turns spliced in memory)"
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
