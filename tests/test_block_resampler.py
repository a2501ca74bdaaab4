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


def test_decoded_file_equals_frame_by_frame(tmp_path: Path) -> None:
    """decode_file (block path) against a plain per-frame decode of the same Ogg/Opus file."""
    from engine.audio.decode import decode_file

    path = tmp_path / "t.ogg"
    with av.open(str(path), "w") as c:
        s = c.add_stream("libopus", rate=48000, layout="mono")
        x = (np.sin(np.arange(48000 * 3) * 0.05) * 9000).astype(np.int16).reshape(1, -1)
        f = av.AudioFrame.from_ndarray(x, format="s16", layout="mono")
        f.sample_rate = 48000
        for p in [*s.encode(f), *s.encode(None)]:
            c.mux(p)
    _, chunks = decode_file(path)
    got = np.concatenate([pcm for _, pcm in chunks])
    r = Resampler()
    with av.open(str(path)) as c:
        parts = [r.convert(fr) for fr in c.decode(audio=0)]
    expected = np.concatenate([*parts, r.convert(None)])
    np.testing.assert_array_equal(got, expected)
