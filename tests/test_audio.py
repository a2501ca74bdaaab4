"""Audio front end: ring buffer, framer, and decoding of files and payloads made here with PyAV."""

from __future__ import annotations

import itertools
import os
from pathlib import Path

import av
import numpy as np
import pytest
from numpy.testing import assert_array_equal

from engine.audio.decode import OpusDecoder, PcmDecoder, decode_file, probe_file
from engine.audio.framer import Framer
from engine.audio.ring import RingBuffer
from engine.errors import InputFileError, PayloadDecodeError, StreamFormatError
from engine.types import HOP, SAMPLE_RATE

# ---------------------------------------------------------------------------
# RingBuffer


def test_ring_fifo_across_wraparound():
    rb = RingBuffer(10)
    rb.write(np.arange(7, dtype=np.int16))
    out = np.zeros(5, np.int16)
    rb.read_into(out)
    assert_array_equal(out, [0, 1, 2, 3, 4])
    rb.write(np.arange(7, 15, dtype=np.int16))  # 8 samples: wraps past the end of storage
    assert len(rb) == 10
    out = np.zeros(10, np.int16)
    rb.read_into(out)
    assert_array_equal(out, np.arange(5, 15))
    assert len(rb) == 0


def test_ring_many_wraparounds_keep_order():
    rng = np.random.default_rng(0)
    rb = RingBuffer(37)
    written = np.arange(5000, dtype=np.int16)
    read = []
    w = 0
    while len(read) < written.size:
        n = int(rng.integers(0, 37 - len(rb) + 1))
        n = min(n, written.size - w)
        rb.write(written[w : w + n])
        w += n
        k = int(rng.integers(0, len(rb) + 1))
        out = np.zeros(k, np.int16)
        rb.read_into(out)
        read.extend(out.tolist())
        if w == written.size and len(rb):
            out = np.zeros(len(rb), np.int16)
            rb.read_into(out)
            read.extend(out.tolist())
    assert read == written.tolist()


def test_ring_overflow_is_an_error_and_leaves_content():
    rb = RingBuffer(8)
    rb.write(np.arange(6, dtype=np.int16))
    with pytest.raises(OverflowError, match="capacity 8"):
        rb.write(np.arange(3, dtype=np.int16))
    assert len(rb) == 6
    out = np.zeros(6, np.int16)
    rb.read_into(out)
    assert_array_equal(out, np.arange(6))


def test_ring_reading_more_than_buffered_is_an_error():
    rb = RingBuffer(8)
    rb.write(np.ones(3, np.int16))
    with pytest.raises(ValueError, match="3 buffered"):
        rb.read_into(np.zeros(4, np.int16))
    assert len(rb) == 3


def test_ring_clear_forgets_and_zeroes_storage():
    rb = RingBuffer(8)
    rb.write(np.full(8, 1234, np.int16))
    rb.read_into(np.zeros(3, np.int16))
    rb.clear()
    assert len(rb) == 0
    assert not rb._buf.any()  # no audio lingers in memory (the documented reason for clear)
    rb.write(np.arange(8, dtype=np.int16))  # full capacity is available again
    out = np.zeros(8, np.int16)
    rb.read_into(out)
    assert_array_equal(out, np.arange(8))


@pytest.mark.parametrize("capacity", [0, -1])
def test_ring_rejects_bad_capacity(capacity):
    with pytest.raises(ValueError):
        RingBuffer(capacity)


# ---------------------------------------------------------------------------
# Framer


def test_framer_hops_are_exact_whatever_the_chunking():
    rng = np.random.default_rng(1)
    x = rng.integers(-32768, 32767, 16_000 + 77, dtype=np.int16)
    f = Framer()
    hops = []
    pos = 0
    while pos < x.size:
        n = int(rng.integers(0, 900))
        hops.append(f.push(x[pos : pos + n]).copy())
        pos += n
    got = np.concatenate(hops)
    n_hops = x.size // HOP
    assert got.shape == (n_hops, HOP)
    assert_array_equal(got.reshape(-1), x[: n_hops * HOP])
    assert f.hops_emitted == n_hops
    tail = f.flush()
    assert tail.shape == (1, HOP)
    assert_array_equal(tail[0, :77], x[-77:])
    assert not tail[0, 77:].any()  # zero-padded
    assert f.hops_emitted == n_hops + 1
    assert f.flush().shape == (0, HOP)  # nothing left


def test_framer_whole_hop_chunks_take_the_short_path_and_mix_with_partial_ones():
    """20 ms chunks on an empty framer come back as the samples themselves (the live
    case); after a partial chunk they go through the ring again, with the same hops."""
    rng = np.random.default_rng(2)
    x = rng.integers(-32768, 32767, 40 * 320, dtype=np.int16)
    f = Framer()
    hops, pos = [], 0
    for n in itertools.cycle((320, 320, 77, 83, 320, 160, 0, 480, 250, 70)):
        if pos >= x.size:
            break
        chunk = x[pos : pos + n]
        out = f.push(chunk)
        if n and not n % HOP and pos % HOP == 0:
            assert np.shares_memory(out, chunk)  # no copy through the ring
        hops.append(out.copy())
        pos += n
    got = np.concatenate(hops)
    assert_array_equal(got.reshape(-1), x[: got.size])
    assert got.shape[0] == x.size // HOP == f.hops_emitted


def test_framer_flush_pads_with_zeros_even_after_louder_hops():
    f = Framer()
    f.push(np.full(HOP * 3, 999, np.int16))
    f.push(np.full(5, 7, np.int16))
    tail = f.flush()
    assert_array_equal(tail[0, :5], 7)
    assert not tail[0, 5:].any()


def test_framer_exact_hop_multiple_has_no_tail():
    f = Framer()
    assert f.push(np.ones(HOP * 4, np.int16)).shape == (4, HOP)
    assert f.flush().shape == (0, HOP)


def test_framer_reset_drops_partial_hop():
    f = Framer()
    f.push(np.full(HOP + 50, 5, np.int16))
    f.reset()
    assert f.hops_emitted == 0
    assert f.flush().shape == (0, HOP)
    x = np.arange(HOP, dtype=np.int16)
    assert_array_equal(f.push(x)[0], x)  # the dropped 50 samples do not lead the next hop


def test_framer_rejects_wrong_input():
    f = Framer()
    with pytest.raises(ValueError, match="int16"):
        f.push(np.zeros(HOP, np.float32))
    with pytest.raises(ValueError, match="1-D"):
        f.push(np.zeros((2, HOP), np.int16))
    with pytest.raises(ValueError):
        Framer(capacity_hops=0)


def test_framer_bounded_chunk_size():
    """The framer never grows: a chunk longer than its capacity is refused, not buffered."""
    f = Framer(capacity_hops=4)
    assert f.push(np.zeros(4 * HOP + 10, np.int16)).shape == (4, HOP)
    with pytest.raises(ValueError, match="capacity"):
        Framer(capacity_hops=4).push(np.zeros(6 * HOP, np.int16))


# ---------------------------------------------------------------------------
# Files made with PyAV


def tone(rate: int, n: int, freq: float, amp: float = 0.5) -> np.ndarray:
    return (amp * 32767 * np.sin(2 * np.pi * freq * np.arange(n) / rate)).astype(np.int16)


def dominant_hz(x: np.ndarray, rate: int = SAMPLE_RATE) -> float:
    x = x.astype(np.float64)
    spectrum = np.abs(np.fft.rfft(x * np.hanning(x.size)))
    return float(np.argmax(spectrum) * rate / x.size)


def _frames(x: np.ndarray, rate: int, layout: str, frame: int):
    """Interleaved s16 frames of `frame` samples per channel from x of shape (n, channels)."""
    for k in range(0, x.shape[0], frame):
        part = np.ascontiguousarray(x[k : k + frame]).reshape(1, -1)
        f = av.AudioFrame.from_ndarray(part, format="s16", layout=layout)
        f.sample_rate = rate
        f.pts = k
        yield f


def write_audio(
    path: Path,
    tracks: list[tuple[np.ndarray, int, str]],  # (samples (n, channels), rate, layout)
    codecs: list[str],
    titles: list[str | None] | None = None,
    fmt: str | None = None,
) -> Path:
    with av.open(str(path), "w", format=fmt) as c:
        streams = []
        for i, ((_, rate, layout), codec) in enumerate(zip(tracks, codecs, strict=True)):
            s = c.add_stream(codec, rate=rate, layout=layout)
            if titles and titles[i]:
                s.metadata["title"] = titles[i]
            streams.append(s)
        for s, (x, rate, layout) in zip(streams, tracks, strict=True):
            frame = 960 if s.codec_context.name in ("libopus", "opus") else 1024  # 20 ms Opus
            for f in _frames(x, rate, layout, frame):
                for p in s.encode(f):
                    c.mux(p)
        for s in streams:
            for p in s.encode(None):
                c.mux(p)
    return path


def mono(x: np.ndarray) -> np.ndarray:
    return x[:, None]


def stereo(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    return np.stack([left, right], axis=1)


def decode_all(path) -> tuple[list, dict[int, np.ndarray]]:
    tracks, chunks = decode_file(path)
    out: dict[int, list[np.ndarray]] = {t.index: [] for t in tracks}
    for i, pcm in chunks:
        assert pcm.dtype == np.int16 and pcm.ndim == 1
        out[i].append(pcm)
    return tracks, {i: np.concatenate(v) if v else np.zeros(0, np.int16) for i, v in out.items()}


@pytest.mark.parametrize("rate", [8_000, 22_050, 44_100, 48_000])
@pytest.mark.parametrize("layout", ["mono", "stereo"])
def test_wav_decodes_to_16k_mono(tmp_path, rate, layout):
    x = tone(rate, rate, 440.0)
    data = mono(x) if layout == "mono" else stereo(x, x)
    path = write_audio(tmp_path / "tone.wav", [(data, rate, layout)], ["pcm_s16le"], fmt="wav")
    tracks, audio = decode_all(path)
    assert len(tracks) == 1
    t = tracks[0]
    channels = 2 if layout == "stereo" else 1
    assert (t.name, t.sample_rate, t.channels, t.codec) == ("tone", rate, channels, "pcm_s16le")
    assert t.duration_s == pytest.approx(1.0, abs=1e-3)
    assert abs(audio[0].size - SAMPLE_RATE) <= HOP
    assert dominant_hz(audio[0]) == pytest.approx(440.0, abs=2.0)
    # level is kept through resampling and downmix (0.5 full scale sine -> RMS ~ 0.354)
    rms = np.sqrt(np.mean(audio[0][HOP:-HOP].astype(np.float64) ** 2)) / 32767
    assert rms == pytest.approx(0.5 / np.sqrt(2), rel=0.05)


def test_wav_high_tone_is_not_aliased(tmp_path):
    """A 6 kHz tone at 44.1 kHz survives resampling at 6 kHz (below 8 kHz Nyquist)."""
    x = tone(44_100, 44_100, 6_000.0)
    path = write_audio(
        tmp_path / "hi.wav", [(stereo(x, x), 44_100, "stereo")], ["pcm_s16le"], fmt="wav"
    )
    _, audio = decode_all(path)
    assert dominant_hz(audio[0]) == pytest.approx(6_000.0, abs=3.0)


def test_wav_tone_above_nyquist_is_filtered_not_folded(tmp_path):
    """A 10 kHz tone cannot be represented at 16 kHz: it must be removed, not folded to 6 kHz."""
    x = tone(48_000, 48_000, 10_000.0)
    path = write_audio(
        tmp_path / "ultra.wav", [(mono(x), 48_000, "mono")], ["pcm_s16le"], fmt="wav"
    )
    _, audio = decode_all(path)
    rms = np.sqrt(np.mean(audio[0].astype(np.float64) ** 2)) / 32767
    assert rms < 0.01


def test_ogg_opus_file(tmp_path):
    x = tone(48_000, 48_000, 440.0)
    path = write_audio(tmp_path / "voice.ogg", [(mono(x), 48_000, "mono")], ["libopus"], fmt="ogg")
    tracks, audio = decode_all(path)
    assert [(t.name, t.codec, t.sample_rate, t.channels) for t in tracks] == [
        ("voice", "opus", 48_000, 1)
    ]
    assert abs(audio[0].size - SAMPLE_RATE) <= HOP
    assert dominant_hz(audio[0]) == pytest.approx(440.0, abs=2.0)


@pytest.fixture
def two_track_mkv(tmp_path) -> Path:
    a = tone(48_000, 48_000, 300.0)
    b = tone(44_100, 44_100, 1_000.0)
    return write_audio(
        tmp_path / "session.mkv",
        [(mono(a), 48_000, "mono"), (stereo(b, b), 44_100, "stereo")],
        ["libopus", "flac"],
        titles=["Alice", "Bob"],
    )


def test_two_track_mkv_probe_names_tracks_from_titles(two_track_mkv):
    tracks = probe_file(two_track_mkv)
    assert [(t.index, t.name) for t in tracks] == [(0, "Alice"), (1, "Bob")]
    assert [t.codec for t in tracks] == ["opus", "flac"]
    assert [t.channels for t in tracks] == [1, 2]
    assert [t.sample_rate for t in tracks] == [48_000, 44_100]
    assert all(t.path == os.fspath(two_track_mkv) for t in tracks)
    assert all(t.duration_s == pytest.approx(1.0, abs=0.05) for t in tracks)


def test_two_track_mkv_decodes_both_tracks(two_track_mkv):
    tracks, audio = decode_all(two_track_mkv)
    assert [t.name for t in tracks] == ["Alice", "Bob"]
    for i, freq in ((0, 300.0), (1, 1_000.0)):
        assert abs(audio[i].size - SAMPLE_RATE) <= HOP
        assert dominant_hz(audio[i]) == pytest.approx(freq, abs=2.0)


def test_untitled_tracks_are_named_after_the_file(tmp_path):
    a = tone(48_000, 24_000, 300.0)
    two = write_audio(tmp_path / "rec.mkv", [(mono(a), 48_000, "mono")] * 2, ["flac", "flac"])
    assert [t.name for t in probe_file(two)] == ["rec#0", "rec#1"]
    one = write_audio(tmp_path / "solo.mkv", [(mono(a), 48_000, "mono")], ["flac"])
    assert [t.name for t in probe_file(one)] == ["solo"]


# ---------------------------------------------------------------------------
# Raw payloads


@pytest.mark.parametrize("rate", [8_000, 16_000, 48_000])
@pytest.mark.parametrize("channels", [1, 2])
def test_pcm_decoder_length_and_tone(rate, channels):
    x = tone(rate, rate, 440.0)
    inter = np.repeat(x[:, None], channels, axis=1).reshape(-1).astype("<i2")
    dec = PcmDecoder(rate, channels)
    per_frame = rate // 50  # 20 ms payloads
    out = [
        dec.decode(inter[k * channels : (k + per_frame) * channels].tobytes())
        for k in range(0, rate, per_frame)
    ]
    out.append(dec.flush())
    y = np.concatenate(out)
    assert y.dtype == np.int16
    assert abs(y.size - SAMPLE_RATE) <= 2
    assert dominant_hz(y) == pytest.approx(440.0, abs=2.0)


def test_pcm_decoder_16k_mono_is_passthrough():
    x = np.arange(-500, 500, dtype="<i2")
    y = PcmDecoder(16_000, 1).decode(x.tobytes())
    assert_array_equal(y, x)


@pytest.mark.parametrize(("channels", "nbytes"), [(1, 3), (1, 321), (2, 2), (2, 6), (2, 7)])
def test_pcm_decoder_rejects_partial_samples(channels, nbytes):
    dec = PcmDecoder(16_000, channels)
    with pytest.raises(PayloadDecodeError, match=f"{nbytes} bytes"):
        dec.decode(b"\x01" * nbytes)


def test_pcm_decoder_rejects_empty_payload():
    with pytest.raises(PayloadDecodeError):
        PcmDecoder(16_000, 1).decode(b"")


@pytest.mark.parametrize(("rate", "channels"), [(7_999, 1), (96_000, 1), (16_000, 0), (16_000, 6)])
def test_stream_format_is_validated(rate, channels):
    with pytest.raises(StreamFormatError):
        PcmDecoder(rate, channels)
    with pytest.raises(StreamFormatError):
        OpusDecoder(rate, channels)


def opus_packets(tmp_path: Path, channels: int, freq: float) -> list[bytes]:
    """Raw Opus packets (as RTP would carry them), demuxed from an Ogg file made here."""
    x = tone(48_000, 48_000, freq)
    data = mono(x) if channels == 1 else stereo(x, x)
    layout = "mono" if channels == 1 else "stereo"
    path = write_audio(tmp_path / "p.ogg", [(data, 48_000, layout)], ["libopus"], fmt="ogg")
    with av.open(str(path)) as c:
        return [bytes(p) for p in c.demux(c.streams.audio[0]) if p.size]


@pytest.mark.parametrize("channels", [1, 2])
def test_opus_decoder_on_raw_packets(tmp_path, channels):
    packets = opus_packets(tmp_path, channels, 440.0)
    assert len(packets) >= 50
    dec = OpusDecoder(48_000, channels)
    y = np.concatenate([dec.decode(p) for p in packets] + [dec.flush()])
    assert y.dtype == np.int16
    # 20 ms per packet (encoder delay and padding are not trimmed for raw packets)
    assert abs(y.size - len(packets) * 320) <= HOP
    assert dominant_hz(y[1600:]) == pytest.approx(440.0, abs=2.0)


@pytest.mark.parametrize(
    "garbage",
    [
        b"garbage!",
        b"\xff\xff\xff",
        b"\x03\x00",  # code-3 packet declaring zero frames
        b"\x02",  # code-2 packet missing its frame length
        b"\x01\x05\x05\x05",  # code-1 packet (two equal frames) of odd payload length
    ],
)
def test_opus_decoder_rejects_garbage(garbage):
    """Malformed packets raise the typed error (and the decoder stays usable)."""
    dec = OpusDecoder()
    with pytest.raises(PayloadDecodeError, match="Opus packet does not decode"):
        dec.decode(garbage)
    y = np.concatenate([dec.decode(b"\x00"), dec.flush()])
    assert y.size == HOP


def test_opus_decoder_rejects_empty_packet():
    with pytest.raises(PayloadDecodeError, match="empty"):
        OpusDecoder().decode(b"")


def test_opus_decoder_accepts_some_garbage_silently():
    """libopus cannot tell every garbage byte string from a packet. A single zero byte is a
    valid TOC (SILK narrow-band, one 10 ms frame, no payload) and decodes to 10 ms of silence;
    a valid TOC byte followed by arbitrary bytes decodes as a 20 ms SILK frame. What is
    asserted is exactly that: no error, the frame's duration in samples once flushed."""
    dec = OpusDecoder()
    y = np.concatenate([dec.decode(b"\x00"), dec.flush()])
    assert y.size == HOP
    assert not y.any()
    dec = OpusDecoder()
    y = np.concatenate([dec.decode(b"\x08" + bytes(range(200))), dec.flush()])
    assert y.size == 2 * HOP


# ---------------------------------------------------------------------------
# Bad files: each raises InputFileError naming the file and a specific cause


def _consume(path) -> None:
    probe_file(path)
    _tracks, chunks = decode_file(path)
    for _ in chunks:
        pass


def assert_input_error(path: Path, *cause_words: str) -> InputFileError:
    with pytest.raises(InputFileError) as info:
        _consume(path)
    err = info.value
    assert err.path == os.fspath(path)
    assert str(err).startswith(f"{os.fspath(path)}: ")
    for word in cause_words:
        assert word in err.cause, err.cause
    return err


def test_missing_file(tmp_path):
    assert_input_error(tmp_path / "nope.wav", "no such file")


def test_directory(tmp_path):
    assert_input_error(tmp_path, "directory")


def test_empty_file(tmp_path):
    p = tmp_path / "empty.wav"
    p.write_bytes(b"")
    assert_input_error(p, "empty file")


@pytest.mark.parametrize("name", ["noise.wav", "noise.bin", "noise.mkv"])
def test_random_bytes(tmp_path, name):
    p = tmp_path / name
    p.write_bytes(np.random.default_rng(0).bytes(20_000))
    assert_input_error(p, "not a readable media file")


def test_text_file(tmp_path):
    """FFmpeg opens .txt as its 'tty' (ANSI art) format: a readable file without audio."""
    p = tmp_path / "notes.txt"
    p.write_text("minutes of the session\n" * 100)
    assert_input_error(p, "no audio track")


def test_text_file_named_like_audio(tmp_path):
    p = tmp_path / "notes.wav"
    p.write_text("minutes of the session\n" * 100)
    assert_input_error(p, "not a readable media file")


def test_wav_truncated_mid_data(tmp_path):
    """The header declares 2 s of audio, the file holds about 1 s of it."""
    x = tone(44_100, 2 * 44_100, 440.0)
    full = write_audio(
        tmp_path / "full.wav", [(stereo(x, x), 44_100, "stereo")], ["pcm_s16le"], fmt="wav"
    )
    data = full.read_bytes()
    cut = tmp_path / "cut.wav"
    cut.write_bytes(data[: len(data) // 2 + 1])  # mid-sample, too
    err = assert_input_error(cut, "truncated", "header")
    assert str(2 * 44_100 * 2 * 2) in err.cause  # names the data size the header declares


def test_mkv_with_only_video(tmp_path):
    path = tmp_path / "screen.mkv"
    with av.open(str(path), "w") as c:
        s = c.add_stream("mpeg4", rate=10)
        s.width, s.height, s.pix_fmt = 64, 48, "yuv420p"
        for i in range(5):
            img = np.full((48, 64, 3), 40 * i, np.uint8)
            for p in s.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                c.mux(p)
        for p in s.encode(None):
            c.mux(p)
    with av.open(str(path)) as c:  # the file is valid, with one video stream
        assert len(c.streams.video) == 1 and not c.streams.audio
    assert_input_error(path, "no audio track")


def test_six_channel_wav(tmp_path):
    x = tone(48_000, 4_800, 440.0)
    path = write_audio(
        tmp_path / "surround.wav",
        [(np.repeat(x[:, None], 6, 1), 48_000, "5.1")],
        ["pcm_s16le"],
        fmt="wav",
    )
    assert_input_error(path, "5.1", "6 channels", "track 0")
