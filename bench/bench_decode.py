"""Where decoding time goes, per 20 ms Opus packet, and which decoder to use.

On the 10-minute, 8-track Opus session of bench/make_long_session.py (speech):
- demux alone; demux + decode with FFmpeg's native `opus` decoder (what a
  file's stream uses by default) and with `libopus`;
- the file path as it was (a libswresample call per decoded frame) against the
  block path `decode_file` uses now (BlockResampler): same samples, checked here;
- the live path's `OpusDecoder` (raw packets, a resampler call per packet) with
  libopus, as it ships, and with the native decoder.

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

from engine.audio.decode import OpusDecoder, decode_file
from engine.audio.resample import Resampler

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
    """The file path before BlockResampler: one libswresample call per decoded frame."""
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
    """`decode_file` as it is: frames gathered, one resampler call per block."""
    tracks, chunks = decode_file(opus_file())
    out: list[list[np.ndarray]] = [[] for _ in tracks]
    for i, pcm in chunks:
        out[i].append(pcm)
    return [np.concatenate(o) for o in out]


def raw_packet_decoder(codec: str) -> list[np.ndarray]:
    """The live path: OpusDecoder per participant, packet by packet (libopus as shipped)."""
    decs: dict[int, OpusDecoder] = {}
    out: dict[int, list[np.ndarray]] = {}
    for i, payload in raw_packets():
        if i not in decs:
            decs[i] = OpusDecoder()
            if codec != "libopus":  # the same class on another FFmpeg decoder
                ctx = av.CodecContext.create(codec, "r")
                ctx.sample_rate = 48_000
                ctx.layout = "mono"
                decs[i]._codec = ctx
            out[i] = []
        out[i].append(decs[i].decode(payload))
    return [np.concatenate([*out[i], decs[i].flush()]) for i in sorted(out)]


def cases() -> dict[str, Callable[[], object]]:
    return {
        "demux": demux_only,
        "demux + decode, native opus": lambda: demux_decode(None),
        "demux + decode, libopus": lambda: demux_decode("libopus"),
        "file, resampler call per frame (before)": per_frame_resampling,
        "file, block resampler (decode_file now)": block_resampling,
        "raw packets, OpusDecoder libopus (live)": lambda: raw_packet_decoder("libopus"),
        "raw packets, OpusDecoder on native opus": lambda: raw_packet_decoder("opus"),
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
    ref = best["demux + decode, native opus"]
    print(f"{opus_file().name}: {packets} Opus packets (20 ms), best of {args.reps}, core {core}\n")
    print("| case | us per packet | vs demux + native decode |")
    print("| --- | ---: | ---: |")
    for name, t in best.items():
        print(f"| {name} | {t / packets * 1e6:.1f} | {t / ref:.2f}x |")
    print("\nsame audio?")
    print(f"- block vs per-frame resampling: {_diff(block_resampling(), per_frame_resampling())}")
    print(
        "- live OpusDecoder, native vs libopus: "
        f"{_diff(raw_packet_decoder('opus'), raw_packet_decoder('libopus'))}"
    )
    print(
        "- file: decode_file (native) vs live OpusDecoder (libopus): "
        f"{_diff(block_resampling(), raw_packet_decoder('libopus'))}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
