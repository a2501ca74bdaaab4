"""`groupsense analyze` end to end on a 90-minute, 8-participant session, on one core.

The issue's target: well under a minute for 90 min x 8 tracks with the webrtc or
numba backend. Measured on both encodings of bench/make_long_session.py (Opus
as recorders write it, FLAC at 16 kHz), each next to the decode-only time of the
same file (demux + decode + resample, no VAD) so the split is visible. Silero
runs on a 10-minute cut and is scaled to 90 minutes.

    pytest bench/bench_analyze.py --benchmark-only     # pytest-benchmark, rounds=1
    python bench/bench_analyze.py --report             # the markdown table for the README

Both pin the process to one core (`os.sched_setaffinity`; elsewhere run under
`taskset -c 0`) and warm numba and ONNX first. Figures:
- `x_realtime`: session seconds analysed per wall second (the 8 tracks together);
- `streams_per_core`: audio seconds summed over tracks per wall second, i.e. how
  many participant streams one core keeps up with.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from benchutil import best_of, decode_only, pin_one_core, run_analysis, warm_backend
from make_long_session import DEFAULT_CACHE_DIR, LongSession, ensure_long_session

LONG_MIN = 90.0
SHORT_MIN = 10.0  # silero's cut: it runs at a few times real time per stream
FORMATS = ("opus", "flac")
FAST_BACKENDS = ("webrtc", "numba")


def _path(session: LongSession, fmt: str) -> Path:
    return session.opus if fmt == "opus" else session.flac


# ---------------------------------------------------------------------------
# pytest-benchmark


@pytest.fixture(scope="module")
def long_session() -> LongSession:
    return ensure_long_session(LONG_MIN)


@pytest.fixture(scope="module")
def short_session() -> LongSession:
    return ensure_long_session(SHORT_MIN)


@pytest.fixture(scope="module")
def backends() -> dict:
    return {name: warm_backend(name) for name in (*FAST_BACKENDS, "silero")}


def _info(benchmark, session: LongSession, scale: float = 1.0) -> None:
    wall = benchmark.stats.stats.min
    benchmark.extra_info["session_s"] = session.duration_s
    benchmark.extra_info["audio_s"] = session.audio_s
    benchmark.extra_info["tracks"] = session.n_tracks
    benchmark.extra_info["x_realtime"] = round(session.duration_s / wall, 1)
    benchmark.extra_info["streams_per_core"] = round(session.audio_s / wall, 1)
    if scale != 1.0:
        benchmark.extra_info["wall_s_scaled_to_90min"] = round(wall * scale, 2)


@pytest.mark.parametrize("fmt", FORMATS)
def test_decode_only_90min(benchmark, long_session, fmt):
    path = _path(long_session, fmt)
    decode_only(path)  # warms the page cache: the file is read, not the disk
    n = benchmark.pedantic(decode_only, args=(path,), rounds=1, iterations=1)
    assert n == long_session.params.n_samples * long_session.n_tracks
    _info(benchmark, long_session)


@pytest.mark.parametrize("backend_name", FAST_BACKENDS)
@pytest.mark.parametrize("fmt", FORMATS)
def test_analyze_90min(benchmark, long_session, backends, fmt, backend_name):
    path = _path(long_session, fmt)
    result = benchmark.pedantic(
        run_analysis, args=(path, backends[backend_name]), rounds=1, iterations=1
    )
    assert len(result.participants) == long_session.n_tracks
    assert abs(result.duration_s - long_session.duration_s) < 0.05
    _info(benchmark, long_session)


@pytest.mark.parametrize("fmt", FORMATS)
def test_analyze_silero_10min(benchmark, short_session, backends, fmt):
    path = _path(short_session, fmt)
    result = benchmark.pedantic(
        run_analysis, args=(path, backends["silero"]), rounds=1, iterations=1
    )
    assert len(result.participants) == short_session.n_tracks
    _info(benchmark, short_session, scale=LONG_MIN / SHORT_MIN)


# ---------------------------------------------------------------------------
# --report: one run, one table


@dataclass(frozen=True, slots=True)
class Row:
    fmt: str
    backend: str
    wall_s: float  # for LONG_MIN x tracks (scaled when measured on a shorter cut)
    decode_s: float  # decode-only, same file, same run, same scaling
    session_s: float
    audio_s: float
    scaled_from_min: float | None


def measure(
    long_min: float, short_min: float, reps: int, backends: list[str], cache_dir: Path
) -> list[Row]:
    core = pin_one_core()
    print(f"pinned to core {core}; warming backends ...", file=sys.stderr)
    warmed = {name: warm_backend(name) for name in backends}
    rows = []
    sessions = {"long": ensure_long_session(long_min, cache_dir)}
    if "silero" in backends:
        sessions["short"] = ensure_long_session(short_min, cache_dir)
    for fmt in FORMATS:
        for key, session in sessions.items():
            names = [b for b in backends if (b == "silero") == (key == "short")]
            if not names:
                continue
            path = _path(session, fmt)
            scale = long_min / (session.duration_s / 60)
            decode_only(path)  # page cache
            dec = best_of(lambda p=path: decode_only(p), reps)
            print(f"{fmt} {session.duration_s / 60:g} min decode-only {dec:.1f} s", file=sys.stderr)
            for name in names:
                wall = best_of(lambda p=path, b=warmed[name]: run_analysis(p, b), reps)
                print(f"{fmt} {name}: {wall:.1f} s", file=sys.stderr)
                rows.append(
                    Row(
                        fmt=fmt,
                        backend=name,
                        wall_s=wall * scale,
                        decode_s=dec * scale,
                        session_s=long_min * 60,
                        audio_s=long_min * 60 * session.n_tracks,
                        scaled_from_min=None if key == "long" else session.duration_s / 60,
                    )
                )
    return rows


def table(rows: list[Row], long_min: float, n_tracks: int = 8) -> str:
    head = (
        f"| input | VAD | wall s for {long_min:g} min x {n_tracks} | x real time "
        "| streams per core | decode-only s | decode share |"
    )
    lines = [head, "| --- | --- | ---: | ---: | ---: | ---: | ---: |"]
    for r in rows:
        fmt = {"opus": "Opus 48 kHz 20 kbit/s", "flac": "FLAC 16 kHz"}[r.fmt]
        note = f" (from {r.scaled_from_min:g} min)" if r.scaled_from_min else ""
        lines.append(
            f"| {fmt} | {r.backend}{note} | {r.wall_s:.1f} | {r.session_s / r.wall_s:.0f}x "
            f"| {r.audio_s / r.wall_s:.0f} | {r.decode_s:.1f} | {r.decode_s / r.wall_s:.0%} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Print the analyze benchmark as a markdown table.")
    ap.add_argument("--report", action="store_true", help="measure and print the table")
    ap.add_argument("--minutes", type=float, default=LONG_MIN)
    ap.add_argument("--silero-minutes", type=float, default=SHORT_MIN)
    ap.add_argument("--reps", type=int, default=1, help="best of this many runs per cell")
    ap.add_argument(
        "--vad", nargs="+", default=[*FAST_BACKENDS, "silero"], choices=[*FAST_BACKENDS, "silero"]
    )
    ap.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE_DIR)
    args = ap.parse_args(argv)
    if not args.report:
        ap.print_help()
        return 2
    rows = measure(args.minutes, args.silero_minutes, args.reps, args.vad, args.cache_dir)
    print(table(rows, args.minutes))
    return 0


if __name__ == "__main__":
    sys.exit(main())
