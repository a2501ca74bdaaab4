"""The RTP bridge example (docs/examples): its RTP parsing, and RTP/Opus end to end.

End to end: a real server on a free loopback port, the bridge on a free UDP port,
send_rtp's packets of a few seconds of a bundled-sample track, and the session summary
(SessionService.EndSession) against the offline analysis of the same seconds.
"""

from __future__ import annotations

import asyncio
import importlib.util
import re
import signal
import sys
import wave
from pathlib import Path
from types import ModuleType

import grpc
import numpy as np
import pytest

from engine.config import EngineConfig, VadConfig
from engine.offline import analyze
from engine.sample import sample_session
from engine.server import Server
from groupsense.v1 import groupsense_pb2 as pb
from groupsense.v1 import groupsense_pb2_grpc as pb_grpc

EXAMPLES = Path(__file__).resolve().parents[1] / "docs" / "examples"


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up here
    spec.loader.exec_module(module)
    return module


bridge_mod = _load("rtp_bridge")
send_mod = _load("send_rtp")
parse_rtp = bridge_mod.parse_rtp
RtpError = bridge_mod.RtpError


# -- the RTP header parser ------------------------------------------------------------------
def test_parse_plain_packet_by_hand() -> None:
    # V=2, no P/X/CC; M=1, PT=111; seq 0x1234; ts 0xDEADBEEF; SSRC 0x01020304; payload.
    data = bytes.fromhex("80ef1234deadbeef01020304") + b"\xfc\x01\x02"
    p = parse_rtp(data)
    assert (p.marker, p.payload_type, p.sequence) == (True, 111, 0x1234)
    assert (p.timestamp, p.ssrc) == (0xDEADBEEF, 0x01020304)
    assert p.csrcs == () and p.extension_profile is None and p.padding == 0
    assert p.payload == b"\xfc\x01\x02"


def test_parse_csrc_extension_and_padding_by_hand() -> None:
    data = (
        bytes([0x80 | 0x20 | 0x10 | 2, 111])  # V=2, P, X, CC=2; M=0, PT=111
        + (65535).to_bytes(2, "big")
        + (7).to_bytes(4, "big")
        + (9).to_bytes(4, "big")
        + (0xAAAAAAAA).to_bytes(4, "big")  # CSRC 1
        + (0xBBBBBBBB).to_bytes(4, "big")  # CSRC 2
        + bytes.fromhex("bede0002")  # one-byte-header extension profile, 2 words
        + bytes.fromhex("10ff000022aabb00")
        + b"OPUS"
        + b"\x00\x00\x03"  # 3 bytes of padding, the count last
    )
    p = parse_rtp(data)
    assert (p.marker, p.payload_type, p.sequence, p.timestamp, p.ssrc) == (False, 111, 65535, 7, 9)
    assert p.csrcs == (0xAAAAAAAA, 0xBBBBBBBB)
    assert p.extension_profile == 0xBEDE
    assert p.extension == bytes.fromhex("10ff000022aabb00")
    assert p.padding == 3
    assert p.payload == b"OPUS"


@pytest.mark.parametrize(
    ("csrcs", "extension", "padding"),
    [
        ((), None, 0),
        ((1, 2, 3), None, 0),
        ((), (0x1000, b"\x01\x02\x03\x04" * 3), 0),
        ((), None, 1),
        ((5,), (0xBEDE, b""), 8),
    ],
)
def test_parse_round_trips_the_senders_packets(
    csrcs: tuple[int, ...], extension: tuple[int, bytes] | None, padding: int
) -> None:
    data = send_mod.rtp_packet(
        payload_type=96,
        sequence=40_000,
        timestamp=2**32 - 1,
        ssrc=0xCAFEBABE,
        payload=b"\x78" + bytes(40),
        marker=True,
        csrcs=csrcs,
        extension=extension,
        padding=padding,
    )
    p = parse_rtp(data)
    assert (p.payload_type, p.sequence, p.timestamp, p.ssrc) == (96, 40_000, 2**32 - 1, 0xCAFEBABE)
    assert p.marker and p.csrcs == csrcs and p.padding == padding
    assert p.extension_profile == (extension[0] if extension else None)
    assert p.extension == (extension[1] if extension else b"")
    assert p.payload == b"\x78" + bytes(40)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "shorter than the 12-byte RTP header"),
        (bytes.fromhex("80ef1234deadbeef010203"), "shorter than the 12-byte RTP header"),
        (bytes.fromhex("40ef1234deadbeef01020304") + b"x", "RTP version 1, expected 2"),
        (bytes.fromhex("00ef1234deadbeef01020304") + b"x", "RTP version 0, expected 2"),
        (bytes.fromhex("83ef1234deadbeef01020304") + bytes(8), r"too short for its 3 CSRC"),
        (bytes.fromhex("90ef1234deadbeef01020304") + b"\xbe\xde", "inside its header extension"),
        (
            bytes.fromhex("90ef1234deadbeef01020304") + bytes.fromhex("bede0003") + bytes(8),
            "declares 12 bytes, only 8 remain",
        ),
        (bytes.fromhex("a0ef1234deadbeef01020304") + b"ab\x00", "padding count is 0"),
        (bytes.fromhex("a0ef1234deadbeef01020304") + b"ab\x09", "padding count 9 exceeds"),
    ],
)
def test_malformed_packets_give_a_clear_error(data: bytes, message: str) -> None:
    with pytest.raises(RtpError, match=message):
        parse_rtp(data)
    assert issubclass(RtpError, ValueError)


def test_rtcp_is_recognised_and_rtp_is_not() -> None:
    sender_report = bytes.fromhex("80c80006") + bytes(24)  # RTCP SR, PT 200
    assert bridge_mod.is_rtcp(sender_report)
    assert not bridge_mod.is_rtcp(bytes.fromhex("80ef1234deadbeef01020304"))  # PT 111 + M
    assert not bridge_mod.is_rtcp(bytes.fromhex("806f1234deadbeef01020304"))  # PT 111


def test_sequence_numbers_extend_across_wraparound_and_reordering() -> None:
    ext = bridge_mod.SequenceExtender()
    got = [ext.extend(s) for s in (65533, 65534, 0, 65535, 1, 2, 65535)]
    base = got[0]
    assert [g - base for g in got] == [0, 1, 3, 2, 4, 5, 2]
    assert base == 65536 + 65533
    # A packet reordered ahead of the first one still gets a non-negative number.
    first = bridge_mod.SequenceExtender()
    assert first.extend(0) == 65536
    assert first.extend(65535) == 65535
    # Many wraps: monotone, one per packet.
    many = bridge_mod.SequenceExtender()
    seqs = [(60_000 + i) & 0xFFFF for i in range(200_000)]
    out = [many.extend(s) for s in seqs]
    assert out[-1] - out[0] == len(seqs) - 1


async def test_bridge_ignores_what_it_cannot_forward() -> None:
    settings = bridge_mod.Settings(
        server="127.0.0.1:9", session="s", listen=("127.0.0.1", 0), max_ssrcs=1
    )
    bridge = bridge_mod.Bridge(settings)
    try:
        pkt = send_mod.rtp_packet
        bridge.on_datagram(b"\x80")  # malformed
        bridge.on_datagram(bytes.fromhex("80c80006") + bytes(24))  # RTCP
        bridge.on_datagram(pkt(payload_type=13, sequence=1, timestamp=0, ssrc=7, payload=b"\x01"))
        bridge.on_datagram(pkt(payload_type=111, sequence=1, timestamp=0, ssrc=7, payload=b""))
        assert bridge.streams == {}
        assert (bridge.malformed, bridge.ignored) == (1, 3)
    finally:
        await bridge.stop(timeout_s=1)


# -- end to end -----------------------------------------------------------------------------
TRACK = 1  # "ana" in the bundled sample
START_S, DURATION_S = 10.0, 14.0  # she speaks at 12.5-16.6 s and 17.9-21.4 s
SPEED = 8.0


def _offline_speaking_s(tmp_path: Path) -> float:
    """speaking_s from engine.offline.analyze for exactly the audio send_rtp encodes."""
    frames = list(
        send_mod.frames_20ms(
            send_mod.pcm_48k_mono(str(sample_session()), TRACK), START_S, DURATION_S
        )
    )
    path = tmp_path / "window.wav"
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(send_mod.OPUS_RATE)
        w.writeframes(np.concatenate(frames).astype("<i2").tobytes())
    result = analyze([path], VadConfig())
    assert len(result.participants) == 1
    return result.participants[0].figures.speaking_s


@pytest.mark.timeout(60)
async def test_rtp_opus_end_to_end_matches_offline(tmp_path: Path) -> None:
    server = Server(EngineConfig.load(port=0))
    port = await server.start()
    session = "rtp-bridge-e2e"
    bridge = bridge_mod.Bridge(
        bridge_mod.Settings(
            server=f"127.0.0.1:{port}",
            session=session,
            listen=("127.0.0.1", 0),
            participants={0x5EED: "ana"},
        )
    )
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    try:
        _, udp_port = await bridge.start()
        # Start just below both wraparounds: 16-bit sequence and 32-bit timestamp.
        packetizer = send_mod.Packetizer(
            ssrc=0x5EED, payload_type=111, sequence=65_500, timestamp=2**32 - 960 * 30
        )
        payloads = list(
            send_mod.opus_packets(
                str(sample_session()), TRACK, start_s=START_S, duration_s=DURATION_S
            )
        )
        sent = await asyncio.to_thread(
            send_mod.send, payloads, ("127.0.0.1", udp_port), packetizer, SPEED
        )
        assert sent == len(payloads)
        stream = bridge.streams[0x5EED]
        for _ in range(100):  # loopback UDP: every packet arrives; wait until forwarded
            if stream.frames_sent >= sent:
                break
            await asyncio.sleep(0.05)
        await bridge.stop()
        assert (stream.frames_sent, stream.dropped, stream.failed) == (sent, 0, "")
        # No gaps, reorders or late frames across the wraps; sending faster than real time
        # is (rightly) reported as clock skew.
        assert set(stream.warning_kinds) <= {"CLOCK_SKEW"}, stream.warning_kinds
        summary = await pb_grpc.SessionServiceStub(channel).EndSession(
            pb.EndSessionRequest(session_id=session)
        )
    finally:
        await channel.close()
        await server.stop()

    expected_pid = server.engine.pseudonyms.pseudonym(session, "ana")
    assert stream.participant_id == expected_pid
    assert [p.participant_id for p in summary.participants] == [expected_pid]
    live = summary.participants[0].speaking_s
    offline = _offline_speaking_s(tmp_path)
    assert offline > 5.0  # the window holds ~7.6 s of her speech
    assert live > 0
    assert abs(live - offline) <= 0.05 * offline, (live, offline)


@pytest.mark.timeout(60)
async def test_bridge_script_streams_and_exits_cleanly_on_sigint() -> None:
    server = Server(EngineConfig.load(port=0))
    port = await server.start()
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(EXAMPLES / "rtp_bridge.py"),
        "--listen",
        "127.0.0.1:0",
        "--server",
        f"127.0.0.1:{port}",
        "--session",
        "script",
        "--participant",
        "0x5eed=ben",
        stderr=asyncio.subprocess.PIPE,
    )
    assert proc.stderr is not None
    log: list[str] = []

    async def line_matching(pattern: str) -> re.Match[str]:
        while True:
            line = (await proc.stderr.readline()).decode()  # type: ignore[union-attr]
            assert line, f"bridge exited early:\n{''.join(log)}"
            log.append(line)
            if m := re.search(pattern, line):
                return m

    try:
        m = await asyncio.wait_for(line_matching(r"on 127\.0\.0\.1:(\d+);"), 20)
        payloads = list(send_mod.opus_packets(str(sample_session()), 2, duration_s=3.0))
        packetizer = send_mod.Packetizer.random(ssrc=0x5EED)
        await asyncio.to_thread(
            send_mod.send, payloads, ("127.0.0.1", int(m.group(1))), packetizer, 8.0
        )
        await asyncio.wait_for(line_matching(r"\(ben\) is participant p-[0-9a-f]{10}"), 10)
        await asyncio.sleep(0.5)
        proc.send_signal(signal.SIGINT)
        rest = await asyncio.wait_for(proc.stderr.read(), 15)
        assert await proc.wait() == 0
        text = "".join(log) + rest.decode()
        assert re.search(
            rf"\(ben as p-[0-9a-f]{{10}}\): {len(payloads)} frames sent, 0 dropped", text
        )
        assert "Traceback" not in text
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        await server.stop()
