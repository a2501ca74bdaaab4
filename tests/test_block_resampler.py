"""Block resampling (files) must give exactly the audio of frame-by-frame resampling."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from engine.audio.resample import BlockResampler, Resampler
from engine.errors import StreamFormatError


def _frames(rate: int, layout: str, fmt: str, sizes: list[int]) -> list[av.AudioFrame]:
    rng = np.random.default_rng(rate)
    channels = 1 if layout == "mono" else 2
    frames, pts = [], 0
    for n in sizes:
        x = (rng.standard_normal((channels, n)) * 3000).astype(np.int16)
        # s16 is interleaved; fltp is planar float
        arr = x.T.reshape(1, -1).copy() if fmt == "s16" else (x / 32768.0).astype(np.float32)
        f = av.AudioFrame.from_ndarray(arr, format=fmt, layout=layout)
        f.sample_rate = rate
        f.pts = pts
        pts += n
        frames.append(f)
    return frames


@pytest.mark.parametrize("rate", [8000, 16000, 44100, 48000])
@pytest.mark.parametrize(
    ("layout", "fmt"), [("mono", "s16"), ("stereo", "s16"), ("stereo", "fltp")]
)
def test_block_equals_frame_by_frame(rate: int, layout: str, fmt: str) -> None:
    sizes = [960, 1024, 37, 960 * 40, *([441] * 30), 5]
    per_frame = Resampler()
    expected = np.concatenate(
        [
            *(per_frame.convert(f) for f in _frames(rate, layout, fmt, sizes)),
            per_frame.convert(None),
        ]
    )
    block = BlockResampler(0.5)
    got = np.concatenate(
        [*(block.push(f) for f in _frames(rate, layout, fmt, sizes)), block.flush()]
    )
    np.testing.assert_array_equal(got, expected)


def test_format_change_mid_stream_is_refused() -> None:
    block = BlockResampler(0.5)
    block.push(_frames(16000, "mono", "s16", [320])[0])
    with pytest.raises(StreamFormatError, match="format changed mid-stream"):
        block.push(_frames(48000, "mono", "s16", [960])[0])


def _write_tone(path: Path, codec: str, seconds: float = 3.0) -> Path:
    with av.open(str(path), "w") as c:
        s = c.add_stream(codec, rate=48000, layout="mono")
        n = int(48000 * seconds)
        x = (np.sin(np.arange(n) * 0.05) * 9000).astype(np.int16).reshape(1, -1)
        step = 960 if codec == "libopus" else 4608
        for k in range(0, n, step):
            f = av.AudioFrame.from_ndarray(x[:, k : k + step], format="s16", layout="mono")
            f.sample_rate = 48000
            f.pts = k
            for p in s.encode(f):
                c.mux(p)
        for p in s.encode(None):
            c.mux(p)
    return path


def test_decoded_file_equals_frame_by_frame(tmp_path: Path) -> None:
    """decode_file (block path) against a plain per-frame decode of the same 48 kHz file."""
    from engine.audio.decode import decode_file

    path = _write_tone(tmp_path / "t.mka", "flac")
    _, chunks = decode_file(path)
    got = np.concatenate([pcm for _, pcm in chunks])
    r = Resampler()
    with av.open(str(path)) as c:
        parts = [r.convert(fr) for fr in c.decode(audio=0)]
    expected = np.concatenate([*parts, r.convert(None)])
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("suffix", ["ogg", "mka"])
def test_direct_opus_matches_ffmpeg_decode(tmp_path: Path, suffix: str) -> None:
    """Opus files go to libopus at 16 kHz directly (engine.audio.opus). Against FFmpeg's
    48 kHz decode + libswresample: same length (pre-skip and end trimming applied), no
    shift, and the same audio up to the two paths' different low-pass filters."""
    from engine.audio.decode import decode_file

    path = _write_tone(tmp_path / f"t.{suffix}", "libopus")
    _, chunks = decode_file(path)
    got = np.concatenate([pcm for _, pcm in chunks]).astype(np.float64)
    r = Resampler()
    with av.open(str(path)) as c:
        parts = [r.convert(fr) for fr in c.decode(audio=0)]
    ref = np.concatenate([*parts, r.convert(None)]).astype(np.float64)
    assert got.size == ref.size == 3 * 16000
    core = slice(800, -800)  # the filters' edges differ
    lags = range(-8, 9)
    best = max(lags, key=lambda k: float(np.dot(np.roll(got, k)[core], ref[core])))
    assert best == 0
    err = got[core] - ref[core]
    snr_db = 10 * np.log10(np.sum(ref[core] ** 2) / np.sum(err**2))
    assert snr_db > 30.0


def test_live_opus_decoder_equals_file_path(tmp_path: Path) -> None:
    """The live path's OpusDecoder, fed the same packets, gives the file path's samples
    (but for the file's pre-skip and end trimming, which raw RTP packets do not carry)."""
    from engine.audio.decode import OpusDecoder, decode_file

    path = _write_tone(tmp_path / "t.ogg", "libopus")
    _, chunks = decode_file(path)
    got = np.concatenate([pcm for _, pcm in chunks])
    dec = OpusDecoder()
    with av.open(str(path)) as c:
        live = np.concatenate([dec.decode(bytes(p)) for p in c.demux(audio=0) if p.size])
    skip = 312 // 3  # OpusHead pre-skip of libopus's encoder, in 16 kHz samples
    np.testing.assert_array_equal(live[skip : skip + got.size], got)
