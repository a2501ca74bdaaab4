"""The jitter buffer waits only for missing frames.

Why: a frame whose sequence number follows the last one released has nothing before it
still to come, so holding it for the window only delayed every live signal by the
window (200 ms by default) on every healthy stream. Frames after a hole still wait for
the missing one, up to the window, and are then used in capture order as before.
"""

from __future__ import annotations

import asyncio

from engine.config import LiveConfig, VadConfig
from engine.ingest import JitterBuffer, WarningKind
from engine.live import LiveEngine
from tests.live_util import FRAME, pcm_spec, talk


def _seqs(frames: list[tuple[int, int, bytes]]) -> list[int]:
    return [seq for _, seq, _ in frames]


def test_in_order_frames_leave_at_once_after_the_first() -> None:
    jb = JitterBuffer(jitter_ms=200)
    jb.push(0, 0, b"0")
    assert jb.release() == []  # the first frame waits: frames before it may still come
    for seq in range(1, 10):
        jb.push(seq, 20 * seq, b"")
        assert jb.release() == []  # still within the first frame's window
    jb.push(10, 200, b"")
    assert _seqs(jb.release()) == list(range(11))  # the window passed: all, in order
    for seq in range(11, 60):
        jb.push(seq, 20 * seq, b"")
        assert _seqs(jb.release()) == [seq]  # each at the first release after it came


def test_a_hole_holds_later_frames_until_the_missing_one_comes() -> None:
    jb = JitterBuffer(jitter_ms=200)
    for seq in range(12):
        jb.push(seq, 20 * seq, b"")
    assert _seqs(jb.release()) == list(range(12))
    jb.push(13, 260, b"")  # 12 is missing
    jb.push(14, 280, b"")
    assert jb.release() == []
    assert [w.kind for w in jb.push(12, 240, b"")] == [WarningKind.REORDERED]
    assert _seqs(jb.release()) == [12, 13, 14]  # at once, not a window later


def test_a_lost_frame_is_waited_for_one_window_then_given_up() -> None:
    jb = JitterBuffer(jitter_ms=100)
    for seq in range(7):
        jb.push(seq, 20 * seq, b"")
    assert _seqs(jb.release()) == list(range(7))
    for seq in range(8, 13):  # 7 (at 140 ms) is lost
        jb.push(seq, 20 * seq, b"")
        assert jb.release() == []
    jb.push(13, 260, b"")  # 160 ms is now 100 ms old: given up on 7
    assert _seqs(jb.release()) == list(range(8, 14))  # and the ones after it follow
    [late] = jb.push(7, 140, b"")
    assert late.kind is WarningKind.LATE_FRAME


async def test_a_live_stream_is_analysed_up_to_its_newest_frame() -> None:
    """With the default 200 ms window, each pass analyses every frame received, where it
    used to stop 200 ms short of the newest one."""
    engine = LiveEngine(LiveConfig(tick_ms=20), VadConfig(backend="webrtc"))
    assert engine.config.jitter_ms == 200
    audio = talk(("q", 0.4), ("v", 1.0), ("q", 0.6))
    try:
        h = engine.open_stream(pcm_spec("room"))
        behind = []
        for k in range(audio.shape[0] // FRAME):
            engine.push_frame(h, k, 20 * k, None, audio[k * FRAME : (k + 1) * FRAME].tobytes())
            await engine._process()
            if k >= 10:  # past the first frame's window
                behind.append(20 * (k + 1) - engine.processed_ms(h))
        assert behind and set(behind) == {0}
        view = await engine.end_session("room")
        [p] = view.participants
        assert 0.8 <= p.speaking_s <= 1.2
    finally:
        engine._executor.shutdown(wait=True)
        await asyncio.sleep(0)


def test_the_next_frame_may_share_the_released_capture_time() -> None:
    """Chunks shorter than 1 ms, or a coarse clock, give consecutive frames the same
    capture ms: the next in sequence is not late for it (another frame there is)."""
    jb = JitterBuffer(jitter_ms=200)
    for seq in range(12):
        jb.push(seq, 20 * seq, b"")
    assert _seqs(jb.release()) == list(range(12))  # up to 220 ms
    assert jb.push(12, 220, b"") == []
    assert jb.push_next(13, 221, b"") == 2  # in order again: the short cut takes it
    assert _seqs(jb.release()) == [12, 13]
    [late] = jb.push(20, 221, b"")  # not the next: 221 ms was analysed
    assert late.kind is WarningKind.LATE_FRAME
