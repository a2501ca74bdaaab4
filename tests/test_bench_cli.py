"""`groupsense bench` end to end: a real pinned server process, real load-generator
processes over loopback gRPC, a tiny N for a few seconds. Asserts the JSON contract
and that the figures are sane, not that this shared machine is fast."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cli.bench import batch_requests, channel_frame, frame_request, session_sizes
from cli.main import main
from groupsense.v1 import groupsense_pb2 as pb

KEYS = {
    "streams_per_core",
    "transport_streams_per_core",
    "latency_p50_ms",
    "latency_p95_ms",
    "latency_p99_ms",
    "cpu_per_stream_pct",
    "rss_per_stream_mb",
    "steps",
}


def test_frame_request_is_a_valid_ingest_request() -> None:
    raw = frame_request(300, 6000, b"\x01\x02payload")
    req = pb.IngestRequest.FromString(raw)
    assert req.WhichOneof("message") == "frame"
    assert (req.frame.sequence, req.frame.capture_ms, req.frame.payload) == (
        300,
        6000,
        b"\x01\x02payload",
    )


@pytest.mark.parametrize("n", [1, 5, 6, 12, 13, 17, 25, 100, 601])
def test_session_sizes(n: int) -> None:
    sizes = session_sizes(n)
    assert sum(sizes) == n
    if n >= 6:
        assert all(6 <= s <= 12 for s in sizes), sizes


def test_bench_quick_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out, plot = tmp_path / "bench.json", tmp_path / "bench.svg"
    code = main(
        [
            "bench",
            "--vad",
            "webrtc",
            "--codec",
            "pcm",
            "--start",
            "6",
            "--max-streams",
            "6",
            "--growth",
            "2",
            "--refine",
            "0",
            "--seconds",
            "2",
            "--warmup",
            "1",
            "--workers",
            "1",
            "--p99-ms",
            "1000",  # a loaded shared machine: this checks the machinery, not the target
            "--json",
            str(out),
            "--plot",
            str(plot),
        ]
    )
    assert code == 0
    report = json.loads(out.read_text())
    assert "session_ms >= 20k+20" in report["definition"]
    cfg = report["configurations"]["webrtc/pcm"]
    assert cfg.keys() >= KEYS
    assert cfg["transport_streams_per_core"] == report["transport"]["pcm"]["streams_per_core"]
    for c in (cfg, report["transport"]["pcm"]):
        steps = c["steps"]
        assert [s["streams"] for s in steps] == [6]  # one session of 6, one step
        assert c["streams_per_core"] == 6  # 6 participants must pass at p99 < 1 s
        assert c["capped"]  # the search stopped at --max-streams: a lower bound
        first = steps[0]
        assert first["dropped"] == 0 and first["ok"]
        # In-order frames do not wait for the jitter window; never seconds.
        assert 0 < first["latency_p50_ms"] <= first["latency_p99_ms"] < 1000
        assert 0 < first["server_cpu_pct"] <= 110
        assert 0 <= c["rss_per_stream_mb"] < 50
    assert plot.read_text().startswith("<svg")
    printed = capsys.readouterr().out
    assert "| webrtc/pcm | >=6 | >=6 | <=100 % |" in printed
    # The same table and plot again from the JSON, without running anything.
    again = tmp_path / "again.svg"
    assert main(["bench", "--from-json", str(out), "--plot", str(again)]) == 0
    assert capsys.readouterr().out == printed
    assert again.read_text() == plot.read_text()
    assert 'stroke="#505050" stroke-width="3"' in again.read_text()  # the PCM ceiling: grey


def test_bench_from_json_refuses_what_is_not_a_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "other.json"
    bad.write_text('{"rows": []}')
    assert main(["bench", "--from-json", str(bad)]) == 2
    assert "not a bench --json report (missing 'definition')" in capsys.readouterr().err
    assert main(["bench", "--from-json", str(tmp_path / "absent.json")]) == 2
    assert "absent.json: No such file or directory" in capsys.readouterr().err


def test_channel_frames_make_valid_node_batches_under_the_size_limit() -> None:
    frames = [channel_frame(c, 300 + c, 6000, bytes([c]) * 640) for c in range(200)]
    reqs = batch_requests(frames, max_bytes=20_000)
    assert len(reqs) == 7 and all(len(r) < 20_100 for r in reqs)
    got = [f for r in reqs for f in pb.NodeRequest.FromString(r).batch.frames]
    assert [(f.channel, f.sequence, f.capture_ms) for f in got] == [
        (c, 300 + c, 6000) for c in range(200)
    ]
    assert got[7].payload == bytes([7]) * 640


def test_bench_stream_ingest_and_soak(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--ingest stream (one StreamAudio call per participant) still measures, with and
    without the affect model (--affect); --soak runs an accelerated session and reports
    memory per session minute."""
    out = tmp_path / "bench.json"
    args = ["bench", "--vad", "webrtc", "--codec", "opus", "--start", "6", "--max-streams", "6"]
    args += ["--refine", "0", "--seconds", "2", "--warmup", "1", "--workers", "1"]
    args += ["--p99-ms", "1000", "--no-transport", "--ingest", "stream", "--json", str(out)]
    assert main([*args, "--affect", "model", "prosody"]) == 0
    report = json.loads(out.read_text())
    assert report["ingest"] == "stream" and report["affect"] == ["model", "prosody"]
    assert list(report["configurations"]) == ["webrtc/opus", "webrtc/opus/prosody"]
    for cfg in report["configurations"].values():
        step = cfg["steps"][0]
        assert step["ok"] and step["dropped"] == 0
    soak = tmp_path / "soak.json"
    soak_args = ["--soak", "1.5", "--soak-streams", "6", "--affect", "prosody"]
    code = main(["bench", *soak_args, "--json", str(soak)])
    res = json.loads(soak.read_text())["soak"]
    assert code == (0 if res["flat"] else 1)
    assert res["errors"] == [] and res["participants"] == 6
    assert res["session_minutes"] == 1.5 and res["speed"] > 1
    assert set(res["rss_mb_by_minute"]) >= {"0", "1"}
    assert res["configuration"] == "webrtc/opus/prosody"
    assert "soak webrtc/opus/prosody: 6 participants" in capsys.readouterr().out
