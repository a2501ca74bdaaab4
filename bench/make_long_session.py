"""Build the long benchmark session: 90 minutes, 8 participants, from the bundled sample.

Why: the issue's target is a 90-minute, 8-participant recording analysed well
under a minute on one core; the 3-minute sample is too short to show per-packet
costs. The 8 tracks are the sample's 4 tracks and the same 4 delayed by 37 s
(circularly, so every track stays a plausible participant), each looped to the
full length. Two encodings of the same audio:

- `long_session_opus.mkv`: 8 Opus mono tracks, 48 kHz, 20 kbit/s, 20 ms frames
  (what a recorder's egress writes);
- `long_session_flac.mkv`: 8 FLAC mono tracks at 16 kHz (no resampling needed).

Deterministic (FFmpeg bitexact flags, no randomness): a rebuild gives the same
bytes on the same FFmpeg. A `long_session.json` beside the files records the
parameters; files whose parameters match are not rebuilt.

    python bench/make_long_session.py [--minutes 90] [--cache-dir bench/.cache] [--force]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import av
import numpy as np

from engine.audio.decode import decode_file
from engine.sample import sample_session
from engine.types import SAMPLE_RATE

BENCH_DIR = Path(__file__).resolve().parent
DEFAULT_CACHE_DIR = BENCH_DIR / ".cache"
GENERATOR_VERSION = 1
OPUS_SR = 48_000
OPUS_FRAME = 960  # 20 ms at 48 kHz
BLOCK_S = 10  # samples are generated and encoded in blocks of this many seconds


@dataclass(frozen=True, kw_only=True, slots=True)
class SessionParams:
    minutes: float = 90.0
    shift_s: float = 37.0
    opus_bit_rate: int = 20_000
    opus_frame_ms: int = 20
    flac_rate: int = SAMPLE_RATE
    generator: int = GENERATOR_VERSION
    sample_sha256: str = ""

    @property
    def n_samples(self) -> int:
        """Length of every track at 16 kHz."""
        return round(self.minutes * 60 * SAMPLE_RATE)

    @property
    def duration_s(self) -> float:
        return self.n_samples / SAMPLE_RATE


@dataclass(frozen=True, slots=True)
class LongSession:
    opus: Path
    flac: Path
    params: SessionParams
    n_tracks: int

    @property
    def duration_s(self) -> float:
        return self.params.duration_s

    @property
    def audio_s(self) -> float:
        """Seconds of audio summed over tracks (what 'streams x real time' counts)."""
        return self.params.duration_s * self.n_tracks


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def sources(shift_s: float) -> tuple[list[str], list[np.ndarray]]:
    """The 8 loop sources at 16 kHz: the sample's tracks, then the same delayed by shift_s."""
    tracks, chunks = decode_file(sample_session())
    parts: list[list[np.ndarray]] = [[] for _ in tracks]
    for i, pcm in chunks:
        parts[i].append(pcm)
    base = [np.concatenate(p) for p in parts]
    shift = round(shift_s * SAMPLE_RATE)
    names = [t.name for t in tracks] + [f"{t.name}+{shift_s:g}s" for t in tracks]
    return names, base + [np.roll(x, shift) for x in base]


def _looped(src: np.ndarray, start: int, n: int) -> np.ndarray:
    """Samples [start, start + n) of `src` repeated forever."""
    idx = (np.arange(start, start + n) % src.shape[0]).astype(np.intp)
    return src[idx]


def _blocks(src: np.ndarray, total: int) -> list[tuple[int, int]]:
    step = BLOCK_S * SAMPLE_RATE
    return [(s, min(step, total - s)) for s in range(0, total, step)]


def _encode_opus_track(job: tuple[np.ndarray, int, str, str, int]) -> str:
    """One track as its own Opus MKV (merged into one file afterwards)."""
    src, total, path, title, bit_rate = job
    with av.open(path, "w", format="matroska", options={"fflags": "+bitexact"}) as out:
        stream = out.add_stream(
            "libopus",
            rate=OPUS_SR,
            layout="mono",
            format="s16",
            options={"application": "voip", "frame_duration": "20", "flags": "+bitexact"},
        )
        stream.bit_rate = bit_rate
        stream.metadata["title"] = title
        up = av.AudioResampler(format="s16", layout="mono", rate=OPUS_SR, frame_size=OPUS_FRAME)
        pts = 0
        for start, n in _blocks(src, total):
            frame = av.AudioFrame.from_ndarray(
                _looped(src, start, n).reshape(1, -1), format="s16", layout="mono"
            )
            frame.sample_rate = SAMPLE_RATE
            for f in up.resample(frame):
                f.pts = pts
                pts += f.samples
                out.mux(stream.encode(f))
        for f in up.resample(None):
            f.pts = pts
            pts += f.samples
            out.mux(stream.encode(f))
        out.mux(stream.encode(None))
    return path


def _merge(parts: list[str], path: Path) -> None:
    """Remux single-track files into one multi-track file, interleaved packet by packet."""
    inputs = [av.open(p) for p in parts]
    try:
        with av.open(str(path), "w", format="matroska", options={"fflags": "+bitexact"}) as out:
            out.metadata["title"] = "groupsense long benchmark session (synthetic)"
            outs = []
            for c in inputs:
                s = out.add_stream_from_template(c.streams.audio[0])
                s.metadata["title"] = c.streams.audio[0].metadata.get("title", "")
                outs.append(s)
            iters = [c.demux(c.streams.audio[0]) for c in inputs]
            live = list(range(len(iters)))
            while live:
                still = []
                for k in live:
                    packet = next(iters[k], None)
                    if packet is None:
                        continue
                    if packet.dts is None:  # the demuxer's closing empty packet
                        continue
                    packet.stream = outs[k]
                    out.mux(packet)
                    still.append(k)
                live = still
    finally:
        for c in inputs:
            c.close()


def _write_opus(names: list[str], srcs: list[np.ndarray], p: SessionParams, path: Path) -> None:
    tmp = [str(path.with_name(f"{path.stem}.track{k}.mkv")) for k in range(len(srcs))]
    jobs = [
        (s, p.n_samples, t, n, p.opus_bit_rate) for s, t, n in zip(srcs, tmp, names, strict=True)
    ]
    workers = max(1, min(len(jobs), os.cpu_count() or 1))
    with ProcessPoolExecutor(max_workers=workers) as pool:
        list(pool.map(_encode_opus_track, jobs))
    partial = path.with_suffix(".partial.mkv")
    _merge(tmp, partial)
    os.replace(partial, path)
    for t in tmp:
        os.remove(t)


def _write_flac(names: list[str], srcs: list[np.ndarray], p: SessionParams, path: Path) -> None:
    partial = path.with_suffix(".partial.mkv")
    with av.open(str(partial), "w", format="matroska", options={"fflags": "+bitexact"}) as out:
        out.metadata["title"] = "groupsense long benchmark session (synthetic)"
        streams = []
        for name in names:
            s = out.add_stream("flac", rate=p.flac_rate, layout="mono", format="s16")
            s.metadata["title"] = name
            streams.append(s)
        for start, n in _blocks(srcs[0], p.n_samples):
            for s, src in zip(streams, srcs, strict=True):
                frame = av.AudioFrame.from_ndarray(
                    _looped(src, start, n).reshape(1, -1), format="s16", layout="mono"
                )
                frame.sample_rate = p.flac_rate
                frame.pts = start
                out.mux(s.encode(frame))
        for s in streams:
            out.mux(s.encode(None))
    os.replace(partial, path)


def ensure_long_session(
    minutes: float = 90.0,
    cache_dir: str | os.PathLike[str] = DEFAULT_CACHE_DIR,
    force: bool = False,
    verbose: bool = True,
) -> LongSession:
    """Build (or reuse) the long session in `cache_dir`; returns where it is."""
    cache = Path(cache_dir)
    cache.mkdir(parents=True, exist_ok=True)
    params = SessionParams(minutes=minutes, sample_sha256=_sha256(sample_session()))
    tag = f"{minutes:g}min"
    opus = cache / f"long_session_{tag}_opus.mkv"
    flac = cache / f"long_session_{tag}_flac.mkv"
    meta = cache / f"long_session_{tag}.json"
    want = asdict(params)
    have = json.loads(meta.read_text()) if meta.exists() else None
    if not force and have == want and opus.exists() and flac.exists():
        return LongSession(opus, flac, params, 8)
    meta.unlink(missing_ok=True)
    names, srcs = sources(params.shift_s)
    t0 = time.perf_counter()
    if verbose:
        print(f"building {minutes:g} min x {len(srcs)} tracks in {cache} ...", file=sys.stderr)
    _write_flac(names, srcs, params, flac)
    if verbose:
        print(f"  {flac.name}: {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    _write_opus(names, srcs, params, opus)
    if verbose:
        print(f"  {opus.name}: {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    meta.write_text(json.dumps(want, indent=1) + "\n")
    return LongSession(opus, flac, params, len(srcs))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=90.0)
    ap.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE_DIR)
    ap.add_argument("--force", action="store_true", help="rebuild even if present")
    args = ap.parse_args(argv)
    if args.minutes <= 0:
        ap.error("--minutes must be positive")
    s = ensure_long_session(args.minutes, args.cache_dir, args.force)
    for path in (s.opus, s.flac):
        print(f"{path} ({path.stat().st_size / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
