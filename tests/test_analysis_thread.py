"""LiveConfig.analysis_thread: a tick's analysis on a thread of its own, or on the event
loop itself. Why both: the thread lets FFTs, numba kernels and ONNX overlap ingest and
snapshots on another core; confined to one core it overlaps nothing and its hand-offs
only cost. The two must give the same session through a real server, and "auto" must
follow the process's CPU affinity."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

import grpc
import pytest
from live_util import REPO, Stream, config, end_session, frames, talk

from engine.config import LiveConfig
from engine.server import Server

VOICES = {  # two participants who take turns and overlap once; ana consents to affect
    "ana": talk(("q", 0.5), ("v", 2.5), ("q", 1.5), ("v", 1.2), ("q", 1.0)),
    "ben": talk(("q", 2.6), ("v", 1.0), ("q", 0.8), ("v", 2.0), ("q", 0.3)),
}


async def _summary(server: Server, ch: grpc.aio.Channel) -> str:
    """The session's summary as text, participants named by their refs."""

    async def send(ref: str) -> None:
        cfg = config("room", ref)
        cfg.config.affect_consent = ref == "ana"
        s = Stream(ch, ())
        assert await s.send(cfg, *frames(VOICES[ref]))
        assert await s.finish() == grpc.StatusCode.OK

    await asyncio.gather(send("ana"), send("ben"))
    summary = await end_session(ch, "room")
    # pseudonyms come from each server's own secret: name participants by their ref
    names = {server.engine.pseudonyms.pseudonym("room", ref): ref for ref in VOICES}
    for p in summary.participants:
        p.participant_id = names[p.participant_id]
    # in ref order: they are listed in the order they joined, which the two calls race for
    people = sorted(summary.participants, key=lambda p: p.participant_id)
    del summary.participants[:]
    summary.participants.extend(people)
    text = str(summary)
    for pseudonym, ref in names.items():
        text = text.replace(pseudonym, ref)
    return text


async def test_the_event_loop_gives_the_threads_session(start_server, channel_to) -> None:  # type: ignore[no-untyped-def]
    got: dict[str, str] = {}
    for setting in ("on", "off"):
        server = await start_server(
            live=LiveConfig(tick_ms=20, jitter_ms=20, analysis_thread=setting)
        )
        assert (server.engine._executor is None) == (setting == "off")
        got[setting] = await _summary(server, channel_to(server))
    assert "ana" in got["on"] and "ben" in got["on"]
    assert "speaking_s" in got["on"] and "affect: true" in got["on"]
    assert got["off"] == got["on"]


def _has_thread(cpus: set[int] | None, setting: str = "auto") -> bool:
    """Whether a fresh process, confined to `cpus` (None: as it is), runs the analysis
    on a thread (a subprocess: the test process keeps its own affinity)."""
    code = (
        "import os, sys\n"
        f"cpus = {sorted(cpus) if cpus is not None else None!r}\n"
        "if cpus is not None: os.sched_setaffinity(0, cpus)\n"
        "from engine.config import LiveConfig, VadConfig\n"
        "from engine.live import LiveEngine\n"
        f"e = LiveEngine(LiveConfig(analysis_thread={setting!r}), VadConfig(backend='webrtc'))\n"
        "print(e._executor is not None)\n"
        "e.close()\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    )
    return out.stdout.strip() == "True"


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="no CPU affinity here")
def test_auto_runs_on_the_loop_when_confined_to_one_cpu() -> None:
    cpus = os.sched_getaffinity(0)
    one = {min(cpus)}
    assert not _has_thread(one)
    assert _has_thread(one, "on")  # asked for, a thread even on one core
    if len(cpus) > 1:
        assert _has_thread(None)
        assert not _has_thread(None, "off")


def test_analysis_thread_rejects_other_values() -> None:
    with pytest.raises(ValueError, match="analysis_thread must be auto, on or off"):
        LiveConfig(analysis_thread="yes")
