"""Where decoding time goes, per 20 ms Opus packet, and which decoder to use.

On the 10-minute, 8-track Opus session of bench/make_long_session.py (speech):
- demux alone; demux + decode at 48 kHz with FFmpeg's native `opus` decoder (what a
  file's stream uses by default) and with FFmpeg's `libopus` wrapper;
- FFmpeg at 48 kHz then libswresample, per decoded frame and in blocks
  (BlockResampler): same samples, checked here;
- `decode_file` as it is: libopus called directly at 16 kHz (engine.audio.opus);
- the live path's `OpusDecoder` on raw packets (also direct), and the bare libopus
  call, the floor.

    pytest bench/bench_decode.py --benchmark-only
    python bench/bench_decode.py [--reps 3]     # the table, measured in one run
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from functools import cache
from pathlib import Path

import av
import numpy as np
import pytest
from benchutil import pin_one_core
from make_long_session import ensure_long_session

from engine.audio.decode import FILE_BLOCK_S, OpusDecoder, decode_file
from engine.audio.opus import MAX_FRAME, Opus16kDecoder
from engine.audio.resample import BlockResampler, Resampler

MINUTES = 10.0


@cache
def opus_file() -> Path:
    return ensure_long_session(MINUTES).opus


@cache
def n_packets() -> int:
    with av.open(str(opus_file())) as c:
        return sum(1 for p in c.demux(c.streams.audio) if p.size)


@cache
def raw_packets() -> tuple[tuple[int, bytes], ...]:
    """(track, payload) in file order, as an RTP receiver would hand them over."""
    with av.open(str(opus_file())) as c:
        return tuple((p.stream.index, bytes(p)) for p in c.demux(c.streams.audio) if p.size)


def _contexts(container: av.container.InputContainer, codec: str) -> dict[int, av.CodecContext]:
    out = {}
    for s in container.streams.audio:
        ctx = av.CodecContext.create(codec, "r")
        ctx.extradata = s.codec_context.extradata  # OpusHead: channels, pre-skip
        ctx.sample_rate = s.codec_context.sample_rate
        ctx.layout = s.codec_context.layout
        out[s.index] = ctx
    return out


def demux_only() -> int:
    with av.open(str(opus_file())) as c:
        return sum(1 for _ in c.demux(c.streams.audio))


def demux_decode(codec: str | None) -> int:
    """codec None: the stream's own decoder (FFmpeg picks the native `opus`)."""
    n = 0
    with av.open(str(opus_file())) as c:
        ctxs = _contexts(c, codec) if codec else None
        for p in c.demux(c.streams.audio):
            if ctxs is None:
                frames = p.decode()  # the closing empty packet flushes the stream's decoder
            elif p.size:
                frames = ctxs[p.stream.index].decode(p)
            else:
                frames = ctxs[p.stream.index].decode(None)
            n += sum(f.samples for f in frames)  # type: ignore[union-attr]
    return n


def per_frame_resampling() -> list[np.ndarray]:
    """FFmpeg at 48 kHz and one libswresample call per decoded frame (the first file path)."""
    with av.open(str(opus_file())) as c:
        rs = {s.index: Resampler() for s in c.streams.audio}
        out: dict[int, list[np.ndarray]] = {i: [] for i in rs}
        for p in c.demux(c.streams.audio):
            for f in p.decode():
                out[p.stream.index].append(rs[p.stream.index].convert(f))  # type: ignore[arg-type]
        for i, r in rs.items():
            out[i].append(r.convert(None))
    return [np.concatenate(out[i]) for i in sorted(out)]


def block_resampling() -> list[np.ndarray]:
    """FFmpeg at 48 kHz, frames gathered, one resampler call per block (the second)."""
    with av.open(str(opus_file())) as c:
        rs = {s.index: BlockResampler(FILE_BLOCK_S) for s in c.streams.audio}
        out: dict[int, list[np.ndarray]] = {i: [] for i in rs}
        for p in c.demux(c.streams.audio):
            for f in p.decode():
                out[p.stream.index].append(rs[p.stream.index].push(f))  # type: ignore[arg-type]
        for i, r in rs.items():
            out[i].append(r.flush())
    return [np.concatenate(out[i]) for i in sorted(out)]


def direct_file() -> list[np.ndarray]:
    """`decode_file` as it is: libopus straight to 16 kHz, in blocks."""
    tracks, chunks = decode_file(opus_file())
    out: list[list[np.ndarray]] = [[] for _ in tracks]
    for i, pcm in chunks:
        out[i].append(pcm)
    return [np.concatenate(o) for o in out]


def raw_packet_decoder() -> list[np.ndarray]:
    """The live path: OpusDecoder per participant, packet by packet."""
    decs: dict[int, OpusDecoder] = {}
    out: dict[int, list[np.ndarray]] = {}
    for i, payload in raw_packets():
        if i not in decs:
            decs[i] = OpusDecoder()
            out[i] = []
        out[i].append(decs[i].decode(payload))
    return [np.concatenate([*out[i], decs[i].flush()]) for i in sorted(out)]


def bare_libopus() -> int:
    """libopus at 16 kHz into one reused buffer, nothing else: the floor."""
    decs: dict[int, Opus16kDecoder] = {}
    buf = np.zeros(MAX_FRAME, np.int16)
    address = buf.ctypes.data
    n = 0
    for i, payload in raw_packets():
        dec = decs.get(i) or decs.setdefault(i, Opus16kDecoder())
        n += dec.decode_to(payload, address)
    return n


def cases() -> dict[str, Callable[[], object]]:
    return {
        "demux": demux_only,
        "demux + decode 48 kHz, native opus": lambda: demux_decode(None),
        "demux + decode 48 kHz, FFmpeg libopus": lambda: demux_decode("libopus"),
        "file, 48 kHz + resampler call per frame": per_frame_resampling,
        "file, 48 kHz + block resampler": block_resampling,
        "file, libopus at 16 kHz (decode_file now)": direct_file,
        "raw packets, OpusDecoder (live)": raw_packet_decoder,
        "raw packets, bare libopus 16 kHz call": bare_libopus,
    }


def _diff(a: list[np.ndarray], b: list[np.ndarray]) -> str:
    if [x.shape for x in a] != [y.shape for y in b]:
        return f"lengths differ: {[x.shape[0] for x in a]} vs {[y.shape[0] for y in b]}"
    d = np.concatenate([x.astype(np.int64) - y for x, y in zip(a, b, strict=True)])
    if not d.any():
        return "identical"
    ref = np.concatenate(b).astype(float)
    return (
        f"max |diff| {np.abs(d).max()} LSB, RMS {np.sqrt(np.mean(d.astype(float) ** 2)):.3f} LSB "
        f"(signal RMS {np.sqrt(np.mean(ref**2)):.0f} LSB)"
    )


# ---------------------------------------------------------------------------
# pytest-benchmark


@pytest.fixture(scope="module")
def packets() -> int:
    raw_packets()
    return n_packets()


@pytest.mark.parametrize("name", list(cases()))
def test_decode(benchmark, packets, name):
    benchmark.pedantic(cases()[name], rounds=1, iterations=1)
    benchmark.extra_info["packets"] = packets
    benchmark.extra_info["us_per_packet"] = round(benchmark.stats.stats.min / packets * 1e6, 2)


def test_block_resampling_gives_the_same_audio(packets):
    assert _diff(block_resampling(), per_frame_resampling()) == "identical"


# ---------------------------------------------------------------------------
# python bench/bench_decode.py


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Per-packet decode costs, measured in one run.")
    ap.add_argument("--reps", type=int, default=3, help="best of this many runs per case")
    args = ap.parse_args(argv)
    core = pin_one_core()
    packets = n_packets()
    raw_packets()
    todo = cases()
    best = dict.fromkeys(todo, float("inf"))
    for _ in range(args.reps):  # interleaved: load drift hits every case alike
        for name, fn in todo.items():
            t0 = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - t0)
    ref = best["file, 48 kHz + block resampler"]
    print(f"{opus_file().name}: {packets} Opus packets (20 ms), best of {args.reps}, core {core}\n")
    print("| case | us per packet | vs 48 kHz + block resampler |")
    print("| --- | ---: | ---: |")
    for name, t in best.items():
        print(f"| {name} | {t / packets * 1e6:.1f} | {t / ref:.2f}x |")
    print("\nsame audio?")
    print(f"- block vs per-frame resampling: {_diff(block_resampling(), per_frame_resampling())}")
    print(
        "- decode_file (libopus at 16 kHz) vs 48 kHz + resampler: "
        f"{_diff(direct_file(), block_resampling())}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
