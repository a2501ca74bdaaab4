"""The ingest short cuts change nothing: `JitterBuffer.push_next` and `push_batch`'s fast
path against the general path and against the jitter buffer as it was before them (a
dataclass heap, kept here as the reference), on mixed streams: in order, gaps,
reorders, duplicates, late frames, clock jumps, bad payloads, a full buffer, and more
than the 1024 remembered sequence numbers."""

from __future__ import annotations

import collections
import dataclasses
import heapq
import random
from collections import deque
from dataclasses import dataclass, field

import pytest

from engine.config import LiveConfig, VadConfig
from engine.errors import GroupsenseError, StreamFormatError
from engine.ingest import Codec, JitterBuffer, Role, StreamSpec, StreamWarning, WarningKind
from engine.live import LiveEngine, StreamHandle
from engine.server import Auth, IngestServicer, _Node
from groupsense.v1 import groupsense_pb2 as pb


@dataclass(order=True, slots=True)
class _Pending:
    capture_ms: int
    sequence: int
    payload: bytes = field(compare=False)


@dataclass(slots=True)
class RefJitter:
    """JitterBuffer before the short cuts (commit 31b5eda), verbatim but for the name
    and for the later in-order release (`_released_seq`, and the next frame in sequence
    not late at the released capture time), which tests/test_jitter_release.py covers."""

    jitter_ms: int = 200
    backwards_tolerance_ms: int = 2000
    max_frames: int = 500
    _heap: list[_Pending] = field(default_factory=list)
    _newest_ms: int = -1
    _released_ms: int = -1
    _released_seq: int = -1
    _max_seq: int = -1
    _recent: deque[int] = field(default_factory=lambda: deque(maxlen=1024))
    _recent_set: set[int] = field(default_factory=set)

    def push(self, sequence: int, capture_ms: int, payload: bytes) -> list[StreamWarning]:
        warnings: list[StreamWarning] = []
        if sequence in self._recent_set:
            return [StreamWarning(WarningKind.DUPLICATE, sequence, "sequence seen before; dropped")]
        if self._newest_ms >= 0 and capture_ms < self._newest_ms - self.backwards_tolerance_ms:
            raise StreamFormatError(
                f"capture timestamps run backwards: frame {sequence} at {capture_ms} ms is "
                f"{self._newest_ms - capture_ms} ms behind the newest frame "
                f"(tolerance {self.backwards_tolerance_ms} ms)"
            )
        if capture_ms <= self._released_ms and not (
            capture_ms == self._released_ms and sequence == self._released_seq + 1
        ):
            self._remember(sequence)
            return [
                StreamWarning(
                    WarningKind.LATE_FRAME,
                    sequence,
                    f"arrived after {capture_ms} ms was analysed (jitter window "
                    f"{self.jitter_ms} ms); dropped",
                )
            ]
        if self._max_seq >= 0:
            if sequence > self._max_seq + 1:
                warnings.append(
                    StreamWarning(
                        WarningKind.SEQUENCE_GAP,
                        sequence,
                        f"{sequence - self._max_seq - 1} frame(s) missing before {sequence}",
                    )
                )
            elif sequence < self._max_seq:
                warnings.append(
                    StreamWarning(WarningKind.REORDERED, sequence, "arrived out of order; used")
                )
        if len(self._heap) >= self.max_frames:
            raise StreamFormatError(
                f"more than {self.max_frames} frames buffered: capture timestamps are not "
                "advancing with the audio"
            )
        self._remember(sequence)
        self._max_seq = max(self._max_seq, sequence)
        self._newest_ms = max(self._newest_ms, capture_ms)
        heapq.heappush(self._heap, _Pending(capture_ms, sequence, payload))
        return warnings

    def _remember(self, sequence: int) -> None:
        if len(self._recent) == self._recent.maxlen:
            self._recent_set.discard(self._recent[0])
        self._recent.append(sequence)
        self._recent_set.add(sequence)

    def release(self, *, drain: bool = False) -> list[tuple[int, int, bytes]]:
        out = []
        limit = self._newest_ms - self.jitter_ms
        while self._heap and (
            drain
            or self._heap[0].capture_ms <= limit
            or (self._released_seq >= 0 and self._heap[0].sequence == self._released_seq + 1)
        ):
            f = heapq.heappop(self._heap)
            out.append((f.capture_ms, f.sequence, f.payload))
            self._released_ms = f.capture_ms
            self._released_seq = f.sequence
        return out

    def __len__(self) -> int:
        return len(self._heap)


Outcome = tuple[str, object]


def _outcome(fn: object, *args: object) -> Outcome:
    try:
        return ("ok", fn(*args))  # type: ignore[operator]
    except GroupsenseError as exc:
        return (type(exc).__name__, str(exc))


def mixed_stream(rng: random.Random, n: int, broken: bool = True) -> list[tuple[int, int]]:
    """(sequence, capture ms) of a sender on a bad network: mostly the next frame, with
    gaps, reorders, duplicates, stale frames (far back, a broken clock, if `broken`),
    and capture clock jumps."""
    out: list[tuple[int, int]] = []
    seq, ms = rng.randrange(0, 3), rng.randrange(0, 50)
    for _ in range(n):
        r = rng.random()
        if r < 0.70 or not out:
            seq, ms = seq + 1, ms + 20
            out.append((seq, ms))
        elif r < 0.78:  # a gap
            k = rng.randrange(2, 6)
            seq, ms = seq + k, ms + 20 * k
            out.append((seq, ms))
        elif r < 0.86:  # a reorder: the next two swapped
            out += [(seq + 2, ms + 40), (seq + 1, ms + 20)]
            seq, ms = seq + 2, ms + 40
        elif r < 0.91:  # a duplicate of a recent frame
            out.append(rng.choice(out[-30:]))
        elif r < 0.95:  # an old frame: late, or (far back) a broken clock
            s, m = rng.choice(out[-200:] if broken else out[-8:])
            back = rng.choice((0, 100, 3000) if broken else (0, 100))
            # its own sequence number, or one still to come (late: remembered, so that
            # the frame that comes with it later is a duplicate)
            out.append((rng.choice((s, seq + rng.randrange(1, 4))), m - back))
        elif r < 0.98:  # the capture clock jumps ahead
            ms += rng.choice((150, 900))
        else:  # an equal capture time
            seq += 1
            out.append((seq, ms))
    return out


@pytest.mark.parametrize("seed", range(12))
def test_push_next_then_push_equals_the_old_buffer(seed: int) -> None:
    rng = random.Random(seed)
    jitter = rng.choice((20, 60, 200))
    new = JitterBuffer(jitter_ms=jitter, max_frames=rng.choice((40, 500)))
    ref = RefJitter(jitter_ms=jitter, max_frames=new.max_frames)
    fast = 0
    for i, (seq, ms) in enumerate(mixed_stream(rng, 4000)):
        payload = f"{i}".encode()  # unique: the release order of ties shows
        want = _outcome(ref.push, seq, ms, payload)
        held = new.push_next(seq, ms, payload)
        if held:
            fast += 1
            assert want == ("ok", []) and held == len(ref)
        else:
            assert _outcome(new.push, seq, ms, payload) == want
        assert len(new) == len(ref)
        if rng.random() < 0.3:
            drain = rng.random() < 0.02
            assert new.release(drain=drain) == ref.release(drain=drain)
    assert new.release(drain=True) == ref.release(drain=True)
    assert 1000 < fast < 3500  # both paths were taken


@pytest.mark.parametrize("seed", range(4))
def test_push_alone_equals_the_old_buffer(seed: int) -> None:
    rng = random.Random(100 + seed)
    new, ref = JitterBuffer(jitter_ms=60), RefJitter(jitter_ms=60)
    for i, (seq, ms) in enumerate(mixed_stream(rng, 3000)):
        payload = f"{i}".encode()
        assert _outcome(new.push, seq, ms, payload) == _outcome(ref.push, seq, ms, payload)
        if rng.random() < 0.3:
            assert new.release() == ref.release()
    assert new.release(drain=True) == ref.release(drain=True)


@pytest.mark.parametrize("fast", [False, True])
def test_forgotten_sequence_numbers_and_equal_frames(fast: bool) -> None:
    """After 1024 other sequence numbers a repeat is no longer a duplicate; a frame
    equal in capture ms and sequence to one still held is released in the old order."""
    new, ref = JitterBuffer(jitter_ms=200), RefJitter(jitter_ms=200)

    def both(seq: int, ms: int, payload: bytes) -> None:
        want = _outcome(ref.push, seq, ms, payload)
        if not (fast and new.push_next(seq, ms, payload)):
            assert _outcome(new.push, seq, ms, payload) == want

    for seq in range(50):
        both(seq, seq * 20, b"a%d" % seq)
    assert new.release() == ref.release()  # up to 780 ms
    both(50, 2500, b"held")
    for k in range(6):
        for seq in range(2000 * (k + 1), 2000 * (k + 1) + 1030):  # late: remembered only
            both(seq, 700, b"late")
        # 50 is forgotten now: a frame equal to the held ones (in capture ms and
        # sequence), with a payload that sorts against its arrival
        both(50, 2500, bytes([9 - k]))
    for seq in range(20_000, 20_020):
        both(seq, 2400 + seq - 20_000, b"b%d" % seq)
    both(49, 2450, b"49")  # 49 is forgotten too: reordered, used
    out = new.release(drain=True)
    assert out == ref.release(drain=True)
    assert len([f for f in out if f[1] == 50]) == 7


@pytest.mark.parametrize("seed", range(4))
def test_long_in_order_stretches_remember_as_before(seed: int) -> None:
    """Runs of thousands of frames in order (the remembered numbers stay a rising run)
    between repeats from just inside and just outside the 1024 remembered."""
    rng = random.Random(200 + seed)
    new, ref = JitterBuffer(jitter_ms=40), RefJitter(jitter_ms=40)
    seq, ms, outcomes = 0, 0, collections.Counter[str]()
    for i in range(12_000):
        if i % 9 == 4:  # a repeat, captured after the newest frame (so not late: the
            # frame at `ms` may be released already, in order)
            frame = (seq - rng.randrange(1000, 1050), ms + 10)
        elif i % 1500 == 700:  # a long reorder or a gap, now and then
            frame = (seq + rng.choice((-3000, 5)), ms)
        else:
            seq, ms = seq + 1, ms + 20
            frame = (seq, ms)
        payload = b"%d" % i
        want = _outcome(ref.push, *frame, payload)
        if not new.push_next(*frame, payload):
            assert _outcome(new.push, *frame, payload) == want
        if want[0] == "ok":
            outcomes.update(w.kind.value for w in want[1])  # type: ignore[union-attr]
        if i % 3 == 0:
            assert new.release() == ref.release()
    assert new.release(drain=True) == ref.release(drain=True)
    assert outcomes["duplicate"] > 50 and outcomes["reordered"] > 1000  # forgotten ones


@pytest.mark.parametrize("seed", range(3))
def test_the_remembered_sequence_numbers_are_the_last_1024(seed: int) -> None:
    """Every frame, the numbers at the edge of the window are remembered or forgotten as
    in the old buffer's deque: through long rising runs (whose forgotten head is
    dropped now and then), gaps, reorders and late frames with numbers still to come."""
    rng = random.Random(5 + seed)
    new, ref = JitterBuffer(jitter_ms=40), RefJitter(jitter_ms=40)
    seq, ms = 0, 0
    for i in range(15_000):
        r = rng.random()
        if r < 0.002:  # reordered
            frame = (seq - rng.randrange(2, 40), ms)
        elif r < 0.004:  # late, with a number still to come
            frame = (seq + rng.randrange(1, 4), ms - 500)
        elif r < 0.15:  # a gap: the general path, and the run still rises
            seq, ms = seq + 2, ms + 40
            frame = (seq, ms)
        else:
            seq, ms = seq + 1, ms + 20
            frame = (seq, ms)
        want = _outcome(ref.push, *frame, b"")
        if not new.push_next(*frame, b""):
            assert _outcome(new.push, *frame, b"") == want
        oldest = ref._recent[0]  # the window's edge, and the numbers just forgotten
        for x in (*range(oldest - 4, oldest + 3), *range(seq - 3, seq + 4)):
            assert new._seen(x) == (x in ref._recent_set), (i, x)
        if i % 2:
            assert new.release() == ref.release()


@pytest.mark.parametrize("fast", [False, True])
def test_a_full_buffer_raises_as_before(fast: bool) -> None:
    new, ref = JitterBuffer(max_frames=4), RefJitter(max_frames=4)
    for seq in range(6):
        want = _outcome(ref.push, seq, seq * 20, b"x")
        if not (fast and new.push_next(seq, seq * 20, b"x")):
            assert _outcome(new.push, seq, seq * 20, b"x") == want
    assert want[0] == "StreamFormatError" and len(new) == len(ref) == 4


@pytest.mark.parametrize("fast", [False, True])
def test_the_next_sequence_number_far_back_is_a_broken_clock(fast: bool) -> None:
    new, ref = JitterBuffer(), RefJitter()
    for seq, ms in [(0, 0), (1, 20), (2, 5000), (3, 40), (4, 2990), (5, 3000)]:
        want = _outcome(ref.push, seq, ms, b"x")
        if not (fast and new.push_next(seq, ms, b"x")):
            assert _outcome(new.push, seq, ms, b"x") == want
    assert new.release(drain=True) == ref.release(drain=True)


class _Context:
    def invocation_metadata(self) -> tuple[object, ...]:
        return ()


def test_node_batch_reads_the_timestamp_oneof_as_before(monkeypatch: pytest.MonkeyPatch) -> None:
    """capture_ms set (to 0 too), rtp_timestamp set, neither: what push_batch gets."""
    engine = _engine()
    node = _Node(IngestServicer(engine, Auth(None)), _Context())  # type: ignore[arg-type]
    cfg = pb.StreamConfig(
        session_id="s",
        participant_ref="a",
        role=pb.ROLE_PARTICIPANT,
        codec=pb.CODEC_PCM16LE,
        sample_rate_hz=16_000,
        channels=1,
    )
    assert not node.open(pb.ChannelOpen(channel=4, config=cfg)).error
    got: list[tuple[object, ...]] = []

    def push_batch(items: list[tuple[object, ...]]) -> tuple[list[object], bool]:
        got.extend(item[1:4] for item in items)
        return [], False

    monkeypatch.setattr(engine, "push_batch", push_batch)
    frames = [
        pb.ChannelFrame(channel=4, sequence=1, capture_ms=20),
        pb.ChannelFrame(channel=4, sequence=2, capture_ms=0),
        pb.ChannelFrame(channel=4, sequence=3, rtp_timestamp=960),
        pb.ChannelFrame(channel=4, sequence=4, rtp_timestamp=0),
        pb.ChannelFrame(channel=4, sequence=5),
    ]
    batch = pb.FrameBatch.FromString(pb.FrameBatch(frames=frames).SerializeToString())
    node.batch(batch)
    assert got == [(1, 20, None), (2, 0, None), (3, None, 960), (4, None, 0), (5, None, None)]
    engine._executor.shutdown(wait=True)


def _engine() -> LiveEngine:
    return LiveEngine(LiveConfig(jitter_ms=60, max_frame_ms=60), VadConfig(backend="webrtc"))


def _spec(i: int, codec: Codec) -> StreamSpec:
    return StreamSpec(
        session_id=f"s{i % 3}",
        participant_ref=f"p{i}",
        role=Role.PARTICIPANT,
        codec=codec,
        sample_rate=16_000 if codec is Codec.PCM16LE else 48_000,
        channels=1 + i % 2 if codec is Codec.PCM16LE else 1,
    )


BAD_PCM = ("empty", "partial sample", "too long", "no timestamp")
BAD_OPUS = ("empty", "odd code 1", "zero frames", "too long", "no timestamp")


def _frame(
    rng: random.Random, spec: StreamSpec, seq: int, ms: int, bad: str | None
) -> tuple[int, int | None, int | None, bytes]:
    width = 2 * spec.channels
    payload = bytes([0xF8, rng.randrange(256)]) if spec.codec is Codec.OPUS else bytes(320 * width)
    if bad == "empty":
        payload = b""
    elif bad == "partial sample":
        payload = bytes(320 * width + 1)
    elif bad == "too long":  # 61 ms of PCM; 2 x 60 ms of Opus
        payload = bytes(16 * 61 * width) if spec.codec is Codec.PCM16LE else bytes([0x19, 0, 0])
    elif bad == "odd code 1":
        payload = bytes([0x01, 0x00])
    elif bad == "zero frames":
        payload = bytes([0x1B, 0x00])
    return (seq, None if bad == "no timestamp" else ms, None, payload)


class _Clock:
    """time.monotonic for engine.live, moved by the test: both engines see one clock."""

    now = 1000.0

    @classmethod
    def monotonic(cls) -> float:
        return cls.now


def _same(
    fast: LiveEngine,
    slow: LiveEngine,
    hf: StreamHandle,
    hs: StreamHandle,
    frame: tuple[int, int | None, int | None, bytes],
) -> list[StreamWarning] | str:
    """One frame through push_batch and push_frame: the same outcome."""
    news, _ = fast.push_batch([(hf, *frame)])
    try:
        want: list[StreamWarning] | str = slow.push_frame(hs, *frame)
    except GroupsenseError as exc:
        want = str(exc)
    got = news[0][1] if news else []
    assert (str(got) if isinstance(got, GroupsenseError) else got) == want
    return want


def test_clock_skew_warnings_on_the_short_cut(monkeypatch: pytest.MonkeyPatch) -> None:
    """In-order frames (the short cut) from a sender whose clock runs 20 % slow: the
    same warnings, at the same frames, rate-limited alike."""
    monkeypatch.setattr("engine.live.time", _Clock)
    fast, slow = _engine(), _engine()
    spec = _spec(0, Codec.PCM16LE)
    hf, hs = fast.open_stream(spec), slow.open_stream(spec)
    warned = []
    for k in range(5000):
        _Clock.now += 0.025
        if _same(fast, slow, hf, hs, (k, k * 20, None, bytes(640))):
            warned.append(k)
        fast.participant(hf).jitter.release()
        slow.participant(hs).jitter.release()
    assert len(warned) == 4 and warned[1] - warned[0] == 1200
    for engine in (fast, slow):
        engine._executor.shutdown(wait=True)


def test_a_resumed_stream_behind_the_analysed_audio_fails_on_the_short_cut() -> None:
    """A reconnect that starts its sequence numbers at 0 again, before what is analysed."""
    fast, slow = _engine(), _engine()
    spec = _spec(0, Codec.PCM16LE)
    hf, hs = fast.open_stream(spec), slow.open_stream(spec)
    for k in range(10):
        assert _same(fast, slow, hf, hs, (k, 1000 + k * 20, None, bytes(640))) == []
    hf, hs = fast.open_stream(spec), slow.open_stream(spec)
    for engine, h in ((fast, hf), (slow, hs)):
        engine.participant(h).next_sample = 16 * 2000  # analysed up to 2 s
    assert "must continue the session clock" in str(
        _same(fast, slow, hf, hs, (0, 1500, None, bytes(640)))
    )
    for engine in (fast, slow):
        engine._executor.shutdown(wait=True)


def test_a_reconnect_with_another_format_checks_payloads_anew() -> None:
    """1600 bytes: 50 ms at 16 kHz, then (reconnected at 8 kHz) 100 ms, over the limit."""
    fast, slow = _engine(), _engine()
    spec = _spec(0, Codec.PCM16LE)
    hf, hs = fast.open_stream(spec), slow.open_stream(spec)
    for k in range(5):
        assert _same(fast, slow, hf, hs, (k, k * 50, None, bytes(1600))) == []
    spec = dataclasses.replace(spec, sample_rate=8000)
    hf, hs = fast.open_stream(spec), slow.open_stream(spec)
    assert _same(fast, slow, hf, hs, (5, 250, None, bytes(800))) == []  # a fresh connection
    assert "exceeds the 60 ms limit" in str(_same(fast, slow, hf, hs, (6, 300, None, bytes(1600))))
    for engine in (fast, slow):
        engine._executor.shutdown(wait=True)


def test_opus_frame_lengths_against_the_limit_on_the_short_cut() -> None:
    """Every TOC byte, one frame and more, with a 40 ms limit: valid or not as before."""
    fast, slow = (
        LiveEngine(LiveConfig(jitter_ms=60, max_frame_ms=40), VadConfig(backend="webrtc"))
        for _ in range(2)
    )
    spec = _spec(0, Codec.OPUS)
    outcomes = collections.Counter[str]()
    for toc in range(256):
        hf, hs = fast.open_stream(spec), slow.open_stream(spec)  # fresh: errors end it
        assert _same(fast, slow, hf, hs, (0, toc * 1000, None, bytes([0xF8]))) == []
        for k, tail in enumerate((b"", b"\x00", b"\x02\x00", b"\x03\x00\x00")):
            got = _same(
                fast, slow, hf, hs, (k + 1, toc * 1000 + 20 * k + 20, None, bytes([toc]) + tail)
            )
            outcomes[str(got)[:20]] += 1
            if got:
                break
    assert len(outcomes) >= 3  # used, too long, malformed
    for engine in (fast, slow):
        engine._executor.shutdown(wait=True)


def test_push_batch_equals_push_frame_frame_by_frame(monkeypatch: pytest.MonkeyPatch) -> None:
    """The same frames, batched through the fast path and one by one through `_push`:
    the same warnings (clock skew included), errors, counts, backlog and released frames."""
    monkeypatch.setattr("engine.live.time", _Clock)
    short_cuts: collections.Counter[bool] = collections.Counter()
    push_next = JitterBuffer.push_next

    def counted(self: JitterBuffer, sequence: int, capture_ms: int, payload: bytes) -> int:
        held = push_next(self, sequence, capture_ms, payload)
        short_cuts[held > 0] += 1
        return held

    monkeypatch.setattr(JitterBuffer, "push_next", counted)
    rng = random.Random(7)
    fast, slow = _engine(), _engine()
    codecs = [Codec.PCM16LE] * 7 + [Codec.OPUS] * 3
    specs = [_spec(i, codec) for i, codec in enumerate(codecs)]
    handles = [[fast.open_stream(spec), slow.open_stream(spec)] for spec in specs]
    plans = []
    for i, spec in enumerate(specs):
        stream = mixed_stream(rng, 1500, broken=i == 0)
        bad_at = rng.randrange(700, 1400) if i >= 4 else -1
        bads = BAD_OPUS if spec.codec is Codec.OPUS else BAD_PCM
        kind = bads[i % len(bads)]
        plans.append(
            [
                _frame(rng, spec, s, m, kind if k == bad_at else None)
                for k, (s, m) in enumerate(stream)
            ]
        )
    ended: set[int] = set()
    pos = [0] * len(specs)
    reconnected = False
    kinds: set[WarningKind] = set()
    never_released = handles[3][0].pid  # its buffer fills: backlog, then an overflow
    while any(pos[i] < len(plans[i]) for i in range(len(specs)) if i not in ended):
        _Clock.now += rng.uniform(0, 0.1)  # runs ahead: skew warnings, rate-limited
        if not reconnected and pos[1] > 600:  # a reconnect: a fresh connection's checks
            handles[1] = [fast.open_stream(specs[1]), slow.open_stream(specs[1])]
            reconnected = True
            for h in handles[1]:  # analysed beyond what comes next: its first frame fails
                engine = fast if h is handles[1][0] else slow
                p = engine.participant(h)
                p.next_sample = 16 * (max(m or 0 for _, m, _, _ in plans[1][: pos[1]]) + 500)
        batch: list[tuple[StreamHandle, int, int | None, int | None, bytes]] = []
        owner: list[int] = []
        for i in range(len(specs)):
            for _ in range(rng.choice((0, 1, 1, 1, 2, 3))):  # several frames per stream too
                if i not in ended and pos[i] < len(plans[i]):
                    batch.append((handles[i][0], *plans[i][pos[i]]))
                    owner.append(i)
                    pos[i] += 1
        news, backlog = fast.push_batch(batch)
        got = dict(news)
        want_backlog = False
        for k, (i, item) in enumerate(zip(owner, batch, strict=True)):
            if i in ended:
                assert k not in got  # a stream's later frames in the batch are skipped
                continue
            try:
                warnings = slow.push_frame(handles[i][1], *item[1:])
            except GroupsenseError as exc:
                assert type(got.get(k)) is type(exc) and str(got[k]) == str(exc)
                ended.add(i)  # as the server does: the stream ends
                continue
            assert got.get(k, []) == warnings
            kinds.update(w.kind for w in warnings)
            p = slow.participant(handles[i][1])
            want_backlog |= len(p.jitter) >= p.jitter.max_frames // 2
        assert backlog == want_backlog
        for hf, hs in handles:
            pf, ps = fast.participant(hf), slow.participant(hs)
            assert (pf.frames_received, pf.last_sequence) == (ps.frames_received, ps.last_sequence)
            if hf.pid != never_released and rng.random() < 0.5:
                assert pf.jitter.release() == ps.jitter.release()
    assert ended >= {1, 3, *range(4, len(specs))}  # each stream's error ended it
    assert kinds == set(WarningKind)
    assert short_cuts[True] > 5000 and short_cuts[False] > 100  # both ways, both engines'
    for engine in (fast, slow):
        engine._executor.shutdown(wait=True)
