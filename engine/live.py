"""The live engine: streams in, per-session snapshots out.

Ingest handlers only validate and queue frames (cheap, on the event loop). A
tick task releases frames from the jitter buffers (the next in sequence, or any whose
jitter window has passed) and hands the work for
*every* stream to one executor call: decode, reframe, and one batched VAD call
across all streams of all sessions. Back on the loop, sessions compute their
figures and publish snapshots. Only the executor writes decoders and pipelines (a
reconnect's new decoder and consent wait for the start of a pass), but the loop reads
what it wrote (the VAD's open segment, how far speech is final), so a whole pass (the
executor call and the loop's work on its results) runs alone, under one lock
(`_exclusive`): a pass's loop half overlapping the next pass's executor call once saw
speech settled before the segment that settled it, and lost that speech.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import logging
import math
import time
import zlib
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TypeVar

import numpy as np

from engine.affect.stream import AffectStream, affect_step
from engine.alerts import AlertTracker
from engine.audio.decode import OpusDecoder, PcmDecoder
from engine.bleed.live import LiveBleed
from engine.config import AlertConfig, BleedConfig, LiveConfig, SignalConfig, VadConfig
from engine.diarize.embed import SpeakerEmbedder
from engine.diarize.live import SharedMicStream, SubUpdate, step_mics
from engine.diarize.online import DiarizeConfig, SharedMicDiarizer, shared_mic_vad
from engine.errors import GroupsenseError, OverloadError, PayloadDecodeError, StreamFormatError
from engine.ingest import Codec, JitterBuffer, RtpClock, StreamSpec, StreamWarning, WarningKind
from engine.pipeline import ParticipantPipeline, finish, step
from engine.privacy import Pseudonymizer
from engine.publish import SignalHub
from engine.signals import SessionSignals, SignalTracker
from engine.types import (
    HOP,
    HOPS_PER_SECOND,
    Alert,
    Cue,
    ParticipantView,
    SessionView,
    SpeechSegment,
    Transition,
)
from engine.vad import VadBackend, make_backend

log = logging.getLogger("groupsense.live")
T = TypeVar("T")

SAMPLES_PER_MS = 16
CONTIGUOUS_TOLERANCE = 15 * SAMPLES_PER_MS  # timestamp rounding and clock jitter, in samples
HOP_BYTES = 2 * HOP  # one hop of 16-bit mono PCM
CONCEAL_SAMPLES = 100 * SAMPLES_PER_MS  # a lost packet or two: bridge with zeros, keep VAD state
DTX_FILL_SAMPLES = 1000 * SAMPLES_PER_MS  # DTX pauses up to this are fed as silence
SKEW_TOLERANCE_MS = 1000
SKEW_WARN_EVERY_S = 30.0
AFFECT_BLOCK_HOPS = 50  # consenting participants' audio goes to prosody per 500 ms:
# per-call costs then count once per 50 hops (100 ms blocks cost 26 % more per hop)
AFFECT_PHASES = 25  # blocks end at one of 25 phases, a 20 ms tick apart, picked by
# participant id: each tick takes a 25th of the participants, in one batched call.
# Five phases made every fifth tick carry a fifth of everyone's 500 ms, and that tick's
# delay set the p99 latency (175 webrtc/PCM streams: p99 158-181 ms against 134-148)
BLEED_BLOCK_HOPS = 10  # a session's bleed stage steps every 100 ms of session time, not
# every tick: its per-call cost was a fifth of the engine's; it gives the same segments
# (chunking-invariant), released to the signals at most 90 ms later
PUBLISH_PHASES = 16  # sessions' periodic snapshots fall at one of 16 phases of the interval
AFFECT_MAX_HOPS = 1024  # hops per batched prosody call: about 12 MB of frames and spectra


class NotFoundError(GroupsenseError):
    grpc_status = "NOT_FOUND"


class SessionEndedError(GroupsenseError):
    grpc_status = "FAILED_PRECONDITION"


class DrainingError(GroupsenseError):
    grpc_status = "UNAVAILABLE"


class ReplacedError(GroupsenseError):
    grpc_status = "ABORTED"


@dataclass(slots=True)
class LiveParticipant:
    """One participant's state. Holds its pseudonym, never the ref it came with."""

    pid: str
    spec: StreamSpec
    pipeline: ParticipantPipeline
    jitter: JitterBuffer
    decoder: PcmDecoder | OpusDecoder
    rtp: RtpClock | None = None
    connection: int = 0  # increases with every (re)connect
    connected: bool = True
    error: GroupsenseError | None = None  # set by the executor; the handler aborts with it
    frames_received: int = 0
    last_sequence: int = 0
    placed_sequence: int = -1  # sequence of the last frame put on the timeline
    fresh_connection: bool = True  # no frame yet on this connection
    clock_origin: tuple[int, float] | None = None  # (capture ms, arrival s) of the first frame
    last_skew_warning: float = -1e9
    checked_spec: StreamSpec | None = None  # a PCM payload of `checked_size` bytes is
    checked_size: int = 0  # valid under this spec: its frames' usual size, checked once
    epoch_hop: int = 0  # session hop where the current pipeline epoch began
    next_sample: int = -1  # session sample where the next decoded sample goes
    closed: list[SpeechSegment] = field(default_factory=list)  # session hops (bleed removed)
    fresh: list[SpeechSegment] = field(default_factory=list)  # closed by the VAD, not yet
    # passed on (to the bleed stage, or straight to the signals with bleed off)
    levels: list[tuple[int, np.ndarray]] = field(default_factory=list)  # (session hop, dBFS)
    level_hops: int = 0  # hops of this epoch whose levels have been collected
    lost: list[tuple[int, int]] = field(default_factory=list)  # session hops of lost audio
    affect: AffectStream | None = None  # only with the participant's consent
    affect_due: int = 0  # session hop up to which audio gathers before prosody runs
    cue_changes: list[Cue] = field(default_factory=list)  # raised/cleared, not yet announced
    unknown_hops: int = 0
    last_end_hop: int = -1
    speaking: bool = False
    needs_finish: bool = False  # the stream ended: finish its epoch on the next tick
    carried: list[tuple[int, int, bytes]] = field(default_factory=list)  # a replaced
    # connection's frames, still to analyse before the new connection's
    finish_carried: bool = False  # the old connection's epoch (with `carried`, if any)
    # ends at the next tick, apart from the new connection's frames
    # A reconnect's decoder (its format changed) and consent, which take effect once the
    # old connection's frames are analysed: those were sent in the old format and under
    # the old consent, and an executor call may be decoding them as the reconnect comes.
    staged_decoder: PcmDecoder | OpusDecoder | None = None
    staged_consent: bool | None = None  # set by every reconnect: also "something staged"
    mic: SharedMicStream | None = None  # a shared microphone: its speech is diarized

    def position_hop(self) -> int:
        return max(self.next_sample, 0) // HOP

    def open_segment(self) -> SpeechSegment | None:
        """The segment in progress, in session hops (None if silent). Raw VAD: bleed is
        taken out only of closed segments, so this (and `speaking`) may be bleed."""
        seg = self.pipeline.hangover.open_segment()
        if seg is None:
            return None
        if not self.epoch_hop and seg.start >= self.last_end_hop and seg.end > seg.start:
            return seg  # already in session hops and unclipped: asked each tick and snapshot
        start = max(seg.start + self.epoch_hop, self.last_end_hop)
        end = seg.end + self.epoch_hop
        return SpeechSegment(start, end) if end > start else None

    def settled_hop(self, now: int) -> int:
        """Session hop before which this participant's speech is final."""
        idle = not (self.connected or self.needs_finish or self.carried)
        if self.next_sample < 0 or (idle and not self.pipeline.hangover.in_speech):
            return now  # nothing more can come (a stream that returns starts after now)
        return self.epoch_hop + self.pipeline.hangover.settled_until()

    def segments_now(self) -> list[SpeechSegment]:
        segs = list(self.closed)
        open_seg = self.open_segment()
        if open_seg is not None:
            segs.append(open_seg)
        return segs


@dataclass(slots=True)
class LiveSession:
    session_id: str
    hub: SignalHub[SessionView]
    signals: SignalTracker
    alerts: AlertTracker
    participants: dict[str, LiveParticipant] = field(default_factory=dict)
    seq: int = 0
    next_publish: float = 0.0  # monotonic time the next periodic snapshot is due
    events: list[str] = field(default_factory=list)
    alert_hop: int = 0  # session hop alerts were last evaluated at
    ended: bool = False
    idle_since: float | None = None
    bleed: LiveBleed | None = None  # between the VAD's closed segments and the signals
    bleed_hop: int = 0  # session hop at or after which the bleed stage steps next
    mics: dict[str, SharedMicStream] = field(default_factory=dict)  # by parent pseudonym

    def now_hop(self) -> int:
        """The furthest participant's `position_hop` (one division, not one call each:
        every tick asks this of every session)."""
        latest = max([p.next_sample for p in self.participants.values()], default=0)
        return max(latest, 0) // HOP


@dataclass(frozen=True, slots=True)
class StreamHandle:
    session_id: str
    pid: str
    connection: int


class LiveEngine:
    """Owns sessions, the shared VAD backend, the executor and the tick loop."""

    def __init__(
        self,
        config: LiveConfig,
        vad: VadConfig,
        *,
        pseudonymizer: Pseudonymizer | None = None,
        backend: VadBackend | None = None,
        signals: SignalConfig | None = None,
        alerts: AlertConfig | None = None,
        bleed: BleedConfig | None = None,
        diarize: DiarizeConfig | None = None,
    ) -> None:
        self.config = config
        self.diarize_config = diarize or dataclasses.replace(
            LIVE_DIARIZE, latency_s=config.shared_mic_latency_s
        )
        self.vad = vad
        self.signal_config = signals or SignalConfig()
        self.alert_config = alerts or AlertConfig()
        self.bleed_config = bleed or BleedConfig()
        self.backend = backend or make_backend(vad)
        self.pseudonyms = pseudonymizer or Pseudonymizer()
        self.embedder: SpeakerEmbedder | None = None  # loaded by start(), shared by all mics
        self.sessions: dict[str, LiveSession] = {}
        self.summaries: OrderedDict[str, SessionView] = OrderedDict()
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="groupsense-dsp")
        self._tick_task: asyncio.Task[None] | None = None
        self._draining = False
        self._ticked = asyncio.Event()  # set (and replaced) after every tick's analysis
        self._passes = asyncio.Lock()  # one analysis pass at a time: see the module doc
        self._running: set[asyncio.Task[object]] = set()  # held: the loop keeps tasks weakly
        self.lag_ms = 0.0  # how far the last tick ran behind its schedule

    # -- lifecycle -------------------------------------------------------------------
    async def start(self) -> None:
        """Warm up numba/ONNX before the first participant, then start ticking."""
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._executor, self._warm_up)
        self._tick_task = asyncio.create_task(self._tick_loop(), name="groupsense-tick")

    def _warm_up(self) -> None:
        p = ParticipantPipeline.open("warm-up", self.backend, self.vad)
        p.keep_levels = True
        p.feed(np.zeros(HOP * 40, np.int16))
        step(self.backend, [p])
        finish(self.backend, p)
        # compile its kernel
        b = LiveBleed(self.bleed_config, self.vad.min_speech_hops, self.vad.min_silence_hops)
        for key in ("a", "b"):
            b.add_stream(key)
        b.finish(40)
        self.embedder = SpeakerEmbedder()  # load and run the speaker encoder once
        self.embedder.embed([np.zeros(self.diarize_config.window_hops * HOP, np.float32)])
        # The affect path: prosody kernels compiled and (unless affect_model is off) the
        # model loaded and run once on a full window of "speech", so the first consenting
        # participant sees no stall.
        noise = np.random.default_rng(0).normal(0, 3000, HOP * 250).astype(np.int16)
        warm = AffectStream("warm-up", use_model=self.config.affect_model)
        affect_step([warm], [noise], [np.ones(250, bool)], [250])

    async def drain(self) -> None:
        """Graceful shutdown: refuse new streams, process every buffered frame, end all
        sessions with a final snapshot."""
        self._draining = True
        if self._tick_task is not None:
            self._tick_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._tick_task
            self._tick_task = None
            self._ticked.set()  # no more ticks: release senders waiting in pace()
        await self._exclusive(self._drain_all)
        self._executor.shutdown(wait=True)

    async def _drain_all(self) -> None:
        for s in self.sessions.values():
            for p in s.participants.values():
                p.needs_finish = True
                p.connected = False
        await self._drain_passes(None)
        for sid in list(self.sessions):
            self._end(sid, reason="server shutting down")

    async def _drain_passes(self, only: str | None) -> None:
        """Analyse every frame held, to the end: a reconnect's old connection in a pass
        of its own (its format and consent), then the new connection's frames."""
        await self._pass(drain=True, only=only)
        if any(
            p.staged_consent is not None or len(p.jitter)
            for sid, s in self.sessions.items()
            if only is None or sid == only
            for p in s.participants.values()
        ):
            await self._pass(drain=True, only=only)

    # -- ingest ----------------------------------------------------------------------
    def open_stream(self, spec: StreamSpec) -> StreamHandle:
        if self._draining:
            raise DrainingError("server is shutting down; reconnect to another replica")
        if spec.session_id in self.summaries:
            raise SessionEndedError(f"session {spec.session_id} has ended")
        session = self.sessions.get(spec.session_id)
        if session is None:
            if len(self.sessions) >= self.config.max_sessions:
                raise OverloadError(f"session limit reached ({self.config.max_sessions})")
            session = LiveSession(
                spec.session_id,
                SignalHub(self.config.subscriber_queue),
                SignalTracker(self.signal_config),
                AlertTracker(self.alert_config),
                bleed=(
                    LiveBleed(
                        self.bleed_config, self.vad.min_speech_hops, self.vad.min_silence_hops
                    )
                    if self.bleed_config.enabled
                    else None
                ),
            )
            self.sessions[spec.session_id] = session
        pid = self.pseudonyms.pseudonym(spec.session_id, spec.participant_ref)
        spec = dataclasses.replace(spec, participant_ref=pid)  # the ref goes no further
        p = session.participants.get(pid)
        if p is None:
            live_streams = sum(len(s.participants) for s in self.sessions.values())
            mic = (
                self._open_mic(spec, pid, session.bleed is not None)
                if spec.shared_microphone
                else None
            )
            if len(session.participants) >= self.config.max_streams_per_session:
                raise OverloadError(
                    f"stream limit per session reached ({self.config.max_streams_per_session})"
                )
            if live_streams >= self.config.max_streams:
                raise OverloadError(f"stream limit reached ({self.config.max_streams})")
            p = LiveParticipant(
                pid=pid,
                spec=spec,
                pipeline=ParticipantPipeline.open(
                    pid, self.backend, shared_mic_vad(self.vad) if mic is not None else self.vad
                ),
                jitter=self._jitter(),
                decoder=_decoder(spec),
                mic=mic,
            )
            session.participants[pid] = p
            self._set_consent(p, spec.affect_consent and not spec.shared_microphone)
            if session.bleed is not None:
                p.pipeline.keep_levels = True
                session.bleed.add_stream(pid)
            if mic is not None:
                session.mics[pid] = mic
                p.pipeline.keep_hops = True
            for name in p.mic.names if p.mic is not None else [pid]:
                session.signals.add_participant(name, spec.role.value)
                session.alerts.roles[name] = spec.role.value
                session.events.append(f"{name} joined")
        else:
            shared = (spec.shared_microphone, spec.max_speakers, spec.expected_speakers)
            if shared != (p.spec.shared_microphone, p.spec.max_speakers, p.spec.expected_speakers):
                raise StreamFormatError(
                    "a reconnect may not change shared_microphone, max_speakers or "
                    "expected_speakers"
                )
            if (p.spec.codec, p.spec.sample_rate, p.spec.channels) != (
                spec.codec,
                spec.sample_rate,
                spec.channels,
            ):
                p.staged_decoder = _decoder(spec)  # a reconnect may change format; a stream
                # may not
            p.spec = spec
            p.staged_consent = spec.affect_consent and not spec.shared_microphone
            p.connection += 1
            p.connected = True
            p.error = None
            # The old connection's buffered frames are analysed first, then its epoch ends.
            p.carried.extend(p.jitter.release(drain=True))
            # An old epoch still to finish ends on its own: were the new connection's
            # first frames drained into that pass, the epoch would end inside them.
            p.finish_carried = bool(p.carried) or p.needs_finish
            p.needs_finish = False  # from here on the new connection's (a flush, a close)
            p.jitter = self._jitter()
            p.fresh_connection = True
            p.clock_origin = None
            session.events.append(f"{pid} reconnected")
        p.rtp = (
            RtpClock(spec.rtp_clock_rate, spec.rtp_timestamp_base, spec.rtp_base_capture_ms)
            if spec.rtp_clock_rate
            else None
        )
        session.idle_since = None
        return StreamHandle(spec.session_id, pid, p.connection)

    def _open_mic(self, spec: StreamSpec, pid: str, bleed: bool) -> SharedMicStream:
        """The stream's own diarizer, with its speaker counts; the encoder is shared."""
        if self.embedder is None:
            raise RuntimeError("start() the engine before opening streams")
        c = self.diarize_config
        try:
            cluster = dataclasses.replace(
                c.cluster,
                max_speakers=spec.max_speakers or c.cluster.max_speakers,
                min_speakers=spec.expected_speakers or 1,
            )
        except ValueError as exc:
            raise StreamFormatError(f"config: {exc}") from None
        diarizer = SharedMicDiarizer(self.embedder, dataclasses.replace(c, cluster=cluster))
        return SharedMicStream(pid, diarizer, bleed)

    def _unstage(self, p: LiveParticipant) -> None:
        """A reconnect's decoder and consent, now that no executor call holds the old
        connection's frames (a pass's start, under the pass lock)."""
        if p.staged_decoder is not None:
            p.decoder, p.staged_decoder = p.staged_decoder, None
        if p.staged_consent is not None:
            self._set_consent(p, p.staged_consent)
        p.staged_consent = None

    def _set_consent(self, p: LiveParticipant, consent: bool) -> None:
        """Affect analysis exists for a participant only while they consent; withdrawn
        consent drops everything it held about them."""
        if consent and p.affect is None:
            p.affect = AffectStream(p.pid, use_model=self.config.affect_model)
        elif not consent:
            p.affect = None
            p.cue_changes.clear()
            p.pipeline.take_audio()
        p.pipeline.keep_audio = consent

    def _jitter(self) -> JitterBuffer:
        c = self.config
        return JitterBuffer(jitter_ms=c.jitter_ms, backwards_tolerance_ms=c.backwards_tolerance_ms)

    def participant(self, handle: StreamHandle) -> LiveParticipant:
        if self._draining:
            raise DrainingError("server is shutting down; reconnect to another replica")
        session = self.sessions.get(handle.session_id)
        if session is None or session.ended:
            raise SessionEndedError(f"session {handle.session_id} has ended")
        p = session.participants[handle.pid]
        if p.connection != handle.connection:
            raise ReplacedError("replaced by a newer stream for this participant")
        if p.error is not None:
            raise p.error
        return p

    def push_frame(
        self,
        handle: StreamHandle,
        sequence: int,
        capture_ms: int | None,
        rtp_timestamp: int | None,
        payload: bytes,
    ) -> list[StreamWarning]:
        return self._push(self.participant(handle), sequence, capture_ms, rtp_timestamp, payload)

    def push_batch(
        self, frames: Sequence[tuple[StreamHandle, int, int | None, int | None, bytes]]
    ) -> tuple[list[tuple[int, list[StreamWarning] | GroupsenseError]], bool]:
        """Many streams' frames in one call (StreamNode): (handle, sequence, capture_ms,
        rtp_timestamp, payload) each, as `push_frame` takes them.

        Returns the frames with news, as (index, warnings or the error that ends that
        stream), and whether any stream's buffer is half full (then `wait_tick` before
        sending more). One stream's error never stops the others' frames."""
        news: list[tuple[int, list[StreamWarning] | GroupsenseError]] = []
        backlog = False
        failed: set[StreamHandle] = set()  # a stream's error ends it: skip its later frames
        participant, push, skew_of = self.participant, self._push, self._clock_skew
        sessions, draining = self.sessions, self._draining
        max_frame_ms = self.config.max_frame_ms
        skew_tolerance = SKEW_TOLERANCE_MS + self.config.jitter_ms
        monotonic, pcm = time.monotonic, Codec.PCM16LE
        opus_ok = _single_frame_tocs(max_frame_ms)
        for i, (handle, sequence, capture_ms, rtp_timestamp, payload) in enumerate(frames):
            if failed and handle in failed:
                continue
            try:
                # `participant`'s checks, inline; it is called (and raises) if one fails
                session = sessions.get(handle.session_id)
                if draining or session is None or session.ended:
                    p = participant(handle)
                else:
                    p = session.participants[handle.pid]
                    if p.connection != handle.connection or p.error is not None:
                        p = participant(handle)
                jitter = p.jitter
                # The usual frame takes a short cut: what `_push` does for it, with the
                # same checks in the same order; anything else goes through `_push`.
                held = 0
                if capture_ms is not None and not p.fresh_connection:
                    spec, size = p.spec, len(payload)
                    if size == p.checked_size and spec is p.checked_spec:
                        valid = True
                    elif spec.codec is pcm:
                        width = 2 * spec.channels
                        valid = (
                            size > 0
                            and not size % width
                            and size // width * 1000 / spec.sample_rate <= max_frame_ms
                        )
                        if valid:
                            p.checked_spec, p.checked_size = spec, size
                    else:  # raises as `_check_payload` would for a malformed packet
                        valid = size > 0 and (
                            payload[0] in opus_ok or opus_packet_ms(payload) <= max_frame_ms
                        )
                    if valid and (held := jitter.push_next(sequence, capture_ms, payload)):
                        p.frames_received += 1
                        if sequence > p.last_sequence:
                            p.last_sequence = sequence
                        # `_clock_skew`'s test, inline: called only if a warning may be due
                        now = monotonic()
                        origin = p.clock_origin
                        if origin is not None and (
                            abs((capture_ms - origin[0]) - (now - origin[1]) * 1000)
                            <= skew_tolerance
                            or now - p.last_skew_warning < SKEW_WARN_EVERY_S
                        ):
                            if held >= jitter.max_frames // 2:
                                backlog = True
                            continue
                        skew = skew_of(p, sequence, capture_ms, now)
                        warnings = [skew] if skew is not None else []
                if not held:
                    warnings = push(p, sequence, capture_ms, rtp_timestamp, payload)
            except GroupsenseError as exc:
                news.append((i, exc))
                failed.add(handle)
                continue
            if warnings:
                news.append((i, warnings))
            if len(jitter) >= jitter.max_frames // 2:
                backlog = True
        return news, backlog

    async def wait_tick(self) -> None:
        """Until the next tick has analysed what is due (backpressure; see `pace`)."""
        if self._tick_task is not None:
            await self._ticked.wait()

    def _push(
        self,
        p: LiveParticipant,
        sequence: int,
        capture_ms: int | None,
        rtp_timestamp: int | None,
        payload: bytes,
    ) -> list[StreamWarning]:
        if capture_ms is None:
            if rtp_timestamp is None or p.rtp is None:
                raise StreamFormatError(
                    "frame has no capture_ms, and rtp_timestamp needs rtp_clock_rate in the config"
                    if p.rtp is None
                    else "frame has neither capture_ms nor rtp_timestamp"
                )
            capture_ms = p.rtp.to_ms(rtp_timestamp)
            if capture_ms < 0:
                raise StreamFormatError(
                    f"rtp_timestamp {rtp_timestamp} maps to {capture_ms} ms, before the session "
                    "start: check rtp_timestamp_base and rtp_base_capture_ms"
                )
        _check_payload(p.spec, payload, self.config.max_frame_ms)
        if p.fresh_connection:
            analysed_ms = max(p.next_sample, 0) // SAMPLES_PER_MS
            if capture_ms + self.config.jitter_ms < analysed_ms:
                raise StreamFormatError(
                    f"capture_ms {capture_ms} is before {analysed_ms} ms, up to which this "
                    "participant is already analysed: a resumed stream must continue the "
                    "session clock"
                )
            p.fresh_connection = False
        warnings = p.jitter.push(sequence, capture_ms, payload)
        p.frames_received += 1
        p.last_sequence = max(p.last_sequence, sequence)
        skew = self._clock_skew(p, sequence, capture_ms)
        if skew is not None:
            warnings.append(skew)
        return warnings

    def _clock_skew(
        self, p: LiveParticipant, sequence: int, capture_ms: int, now: float | None = None
    ) -> StreamWarning | None:
        """Capture time running away from arrival time (`now`, read here if not given): a
        drifting sender clock (or a replay faster than real time). Reported, rate-limited;
        never acted on."""
        if now is None:
            now = time.monotonic()
        if p.clock_origin is None:
            p.clock_origin = (capture_ms, now)
            return None
        skew = (capture_ms - p.clock_origin[0]) - (now - p.clock_origin[1]) * 1000
        if abs(skew) <= SKEW_TOLERANCE_MS + self.config.jitter_ms or (
            now - p.last_skew_warning < SKEW_WARN_EVERY_S
        ):
            return None
        p.last_skew_warning = now
        direction = "ahead of" if skew > 0 else "behind"
        return StreamWarning(
            WarningKind.CLOCK_SKEW,
            sequence,
            f"capture clock runs {abs(skew):.0f} ms {direction} arrival since the first frame",
        )

    def close_stream(self, handle: StreamHandle) -> None:
        session = self.sessions.get(handle.session_id)
        if session is None:
            return
        p = session.participants.get(handle.pid)
        if p is None or p.connection != handle.connection:
            return
        p.needs_finish = True  # first: an executor call reading both never sees idle
        p.connected = False
        session.events.append(f"{p.pid} disconnected")
        if not any(q.connected for q in session.participants.values()):
            session.idle_since = time.monotonic()

    async def pace(self, handle: StreamHandle) -> None:
        """Backpressure for a sender faster than real time (a replay at full speed): once
        half the stream's jitter buffer is waiting, wait for the next tick to analyse what
        is due. gRPC flow control then slows the sender; the buffer stays bounded and does
        not overflow into an error."""
        p = self.participant(handle)
        if len(p.jitter) >= p.jitter.max_frames // 2 and self._tick_task is not None:
            await self._ticked.wait()

    async def flush_stream(self, handle: StreamHandle) -> None:
        """The sender half-closed: analyse what it sent now, so the final acknowledgement
        covers every frame and reports a payload that did not decode."""
        self.participant(handle).needs_finish = True
        await self._flush(only=handle.session_id)

    async def flush_streams(self, handles: Sequence[StreamHandle]) -> None:
        """`flush_stream` for many streams (a StreamNode call half-closed): one analysis
        pass for all of them. Streams already ended or replaced are skipped."""
        for h in handles:
            with contextlib.suppress(GroupsenseError, KeyError):
                self.participant(h).needs_finish = True
        await self._flush()

    async def _flush(self, only: str | None = None) -> None:
        """A pass, and a second where a reconnect's old connection took the first to
        end its epoch (it closed, and no tick ended that epoch before the reconnect):
        the new connection's frames and finish are then still to do."""
        await self._process(only=only)
        if any(
            p.needs_finish
            for sid, s in self.sessions.items()
            if only is None or sid == only
            for p in s.participants.values()
        ):
            await self._process(only=only)

    def processed_ms(self, handle: StreamHandle) -> int:
        p = self.sessions[handle.session_id].participants[handle.pid]
        return max(p.next_sample, 0) // SAMPLES_PER_MS

    # -- signals -----------------------------------------------------------------------
    async def subscribe(self, session_id: str) -> AsyncIterator[SessionView]:
        async with self._passes:  # a view reads what passes write: not beside one
            session = self.sessions.get(session_id)  # (it may have ended while we waited)
            first = self._view(session, events=()) if session is not None else None
        if session is None:
            if session_id in self.summaries:
                yield self.summaries[session_id]
                return
            raise NotFoundError(f"no active session {session_id!r}")
        # closed with this generator, not whenever the collector gets to it: until then
        # the hub keeps its queue, and the session builds snapshots for no one
        async with contextlib.aclosing(session.hub.subscribe(first=first)) as views:
            async for view in views:
                yield view

    async def view(self, session_id: str) -> SessionView:
        """The session's snapshot now (its summary once it has ended)."""
        async with self._passes:
            session = self.sessions.get(session_id)
            if session is not None:
                return self._view(session, events=())
        if session_id in self.summaries:
            return self.summaries[session_id]
        raise NotFoundError(f"no session {session_id!r}")

    async def list_sessions(self) -> list[SessionView]:
        async with self._passes:
            return [self._view(s, events=()) for s in self.sessions.values()]

    def summary(self, session_id: str) -> SessionView:
        if session_id in self.summaries:
            return self.summaries[session_id]
        if session_id in self.sessions:
            raise SessionEndedError(f"session {session_id!r} is still active; end it first")
        raise NotFoundError(f"no session {session_id!r}")

    async def end_session(self, session_id: str) -> SessionView:
        if session_id not in self.sessions:
            if session_id in self.summaries:
                return self.summaries[session_id]
            raise NotFoundError(f"no active session {session_id!r}")
        return await self._exclusive(functools.partial(self._end_now, session_id))

    async def _end_now(self, session_id: str) -> SessionView:
        if session_id not in self.sessions:  # ended while this call waited its turn
            if session_id in self.summaries:
                return self.summaries[session_id]
            raise NotFoundError(f"no active session {session_id!r}")
        for p in self.sessions[session_id].participants.values():
            p.needs_finish = True
        await self._drain_passes(session_id)
        return self._end(session_id, reason="ended")

    def _end(self, session_id: str, reason: str) -> SessionView:
        session = self.sessions.pop(session_id)
        session.ended = True
        for p in session.participants.values():
            p.connected = False
        # Everything is final now: close the signals and the alerts on it.
        now = session.now_hop()
        if session.bleed is not None:
            for p in session.participants.values():  # levels held since the last step
                if p.levels:
                    session.bleed.add_level_pieces(p.pid, p.levels)
                    p.levels.clear()
            session.bleed.finish(now)
            self._pass_cleaned(session)
        for mic in session.mics.values():
            self._apply_mic(session, mic.advance(final=True))
        session.signals.finish(now)
        session.events.extend(_alert_events(session.alerts.update(session.signals.snapshot(now))))
        # A number of its own, and the events not yet published, so none is lost.
        session.seq += 1
        view = self._view(session, events=(*session.events, f"session {reason}"), final=True)
        session.events.clear()
        session.hub.publish(view)
        session.hub.close()
        self.summaries[session_id] = view
        while len(self.summaries) > self.config.max_summaries:
            self.summaries.popitem(last=False)
        for p in session.participants.values():
            p.pipeline.reset()  # let go of any buffered audio now
        return view

    def _view(self, s: LiveSession, events: tuple[str, ...], final: bool = False) -> SessionView:
        """A snapshot of `s` (every session, every `snapshot_interval_s`: keep it lean).

        What is the same for a shared mic's sub-participants (connection, affect, cues)
        is worked out once per stream."""
        now = s.now_hop()
        opened = _open_segments(s)
        sig = s.signals.snapshot(now, opened)
        figures = sig.participants
        views: list[ParticipantView] = []
        add = views.append
        all_cues: list[Cue] = []  # in view order, for the alert list
        for pid, p in s.participants.items():
            role, connected, affect = p.spec.role.value, p.connected, p.affect
            unknown = p.unknown_hops + (0 if connected else max(now - p.position_hop(), 0))
            cues: tuple[Cue, ...] = ()
            if affect is None:
                arousal, valence = -1.0, -1.0
            else:
                arousal, valence = affect.mean_arousal, affect.mean_valence
                cues = _cues_of(p, final)
            # a shared mic appears as its sub-participants, never itself; a sub-participant
            # speaks while the mic does and their labels run to now
            for name in p.mic.names if p.mic is not None else (pid,):
                f = figures[name]
                speaking = p.speaking and (p.mic is None or opened[name] is not None)
                latency = f.response_latency_s
                if cues:
                    all_cues.extend(cues)
                add(
                    ParticipantView(
                        participant_id=name,
                        role=role,
                        connected=connected,
                        speaking=speaking,
                        speaking_s=f.speaking_s,
                        share=f.share,
                        since_last_spoke_s=0.0 if speaking else f.since_last_spoke_s,
                        unknown_s=unknown / HOPS_PER_SECOND,
                        share_5min=f.share_5min,
                        share_1min=f.share_1min,
                        share_vs_equal=f.share_vs_equal,
                        turns=f.turns,
                        mean_turn_s=f.mean_turn_s,
                        longest_turn_s=f.longest_turn_s,
                        backchannels=f.backchannels,
                        response_latency_s=latency if latency == latency else -1.0,  # NaN: -1
                        responses=f.responses,
                        overlap_s=f.overlap_s,
                        overlaps=f.overlaps,
                        interruptions_made=f.interruptions_made,
                        interruptions_received=f.interruptions_received,
                        affect=affect is not None,
                        arousal=arousal,
                        valence=valence,
                        cues=cues,
                    )
                )
        return session_view(
            s.session_id,
            s.seq,
            now,
            tuple(views),
            sig,
            tuple(s.alerts.history if final else s.alerts.active)
            + tuple([cue_alert(c) for c in all_cues]),
            events=events,
            final=final,
        )

    # -- the tick ----------------------------------------------------------------------
    async def _tick_loop(self) -> None:
        period = self.config.tick_ms / 1000
        next_at = time.monotonic()
        while True:
            next_at += period
            await self._exclusive(self._tick)
            delay = next_at - time.monotonic()
            self.lag_ms = max(-delay * 1000, 0.0)
            if delay < 0:
                next_at = time.monotonic()
                delay = 0
            await asyncio.sleep(delay)

    async def _tick(self) -> None:
        try:
            await self._pass()
        except Exception:  # a bug in one stage must not stop every session's analysis
            log.exception("tick failed; the engine goes on with the next tick")
        self._ticked.set()
        self._ticked = asyncio.Event()
        try:
            self._publish_due()
            self._expire_idle()
        except Exception:
            log.exception("tick failed while publishing; the engine goes on")

    async def _exclusive(self, body: Callable[[], Awaitable[T]]) -> T:
        """Run `body` (which may run passes) with no other pass running, and to its end
        even if our caller is cancelled (an RPC whose client went away): frames that
        left their jitter buffers must be analysed, and the lock held until the executor
        call that has them is done."""

        async def run() -> T:
            async with self._passes:
                return await body()

        task = asyncio.ensure_future(run())
        self._running.add(task)
        task.add_done_callback(self._running.discard)
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            task.add_done_callback(_report_orphan)  # nobody else will see how it ended
            raise

    async def _process(self, *, drain: bool = False, only: str | None = None) -> None:
        """One analysis pass, alone (see `_exclusive`)."""
        await self._exclusive(functools.partial(self._pass, drain=drain, only=only))

    async def _pass(self, *, drain: bool = False, only: str | None = None) -> None:
        work: list[tuple[LiveParticipant, list[tuple[int, int, bytes]], bool]] = []
        for sid, s in self.sessions.items():
            if only is not None and sid != only:
                continue
            for p in s.participants.values():
                if p.finish_carried:  # a replaced connection's frames and epoch end first;
                    # the new connection's frames (and its own finish, if asked) next pass
                    work.append((p, p.carried, True))
                    p.carried = []
                    p.finish_carried = False
                    continue
                if p.staged_consent is not None:  # a reconnect, and the old
                    self._unstage(p)  # connection's frames are all analysed
                ending = p.needs_finish or drain
                frames = p.jitter.release(drain=ending)
                if frames or ending:
                    work.append((p, frames, ending))
                    p.needs_finish = False
        if not work:
            return
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._executor, self._analyse, work)  # shielded by caller
        for s in self.sessions.values():
            now = s.now_hop()
            # the bleed stage reads levels only when it steps: hold them until then and
            # hand a step's worth over at once (its buffer only moves when it steps)
            step_bleed = s.bleed is not None and (now >= s.bleed_hop or drain)
            for p in s.participants.values():
                was = p.speaking
                p.speaking = p.pipeline.hangover.has_open_segment()
                if p.speaking != was and p.mic is None:  # a shared mic is no one: its
                    # sub-participants' speech is known only once the diarizer labels it
                    s.events.append(f"{p.pid} {'started' if p.speaking else 'stopped'} speaking")
                if p.cue_changes:
                    s.events.extend(_cue_events(p.cue_changes))
                    p.cue_changes.clear()
                if s.bleed is not None:  # most ticks bring levels only: skip the rest
                    if p.fresh:
                        s.bleed.add_segments(p.pid, p.fresh)
                        p.fresh.clear()
                    if p.levels and step_bleed:
                        s.bleed.add_level_pieces(p.pid, p.levels)
                        p.levels.clear()
                    if p.lost:
                        for a, b in p.lost:
                            s.bleed.add_lost(p.pid, a, b)
                        p.lost.clear()
                elif p.fresh:
                    if p.mic is None:  # a shared mic's raw speech went to its diarizer
                        s.signals.add_segments(p.pid, p.fresh)
                    p.closed.extend(p.fresh)
                    p.fresh.clear()
            if s.bleed is not None:
                if step_bleed:
                    # sessions step in different ticks: the phase comes from the id
                    phase = _phase(s.session_id, BLEED_BLOCK_HOPS)
                    s.bleed_hop = now - (now - phase) % BLEED_BLOCK_HOPS + BLEED_BLOCK_HOPS
                    self._advance_bleed(s, s.bleed, now)
            else:
                for p in s.participants.values():
                    if p.mic is None:
                        s.signals.settle(p.pid, p.settled_hop(now))
            for mic in s.mics.values():
                self._apply_mic(s, mic.advance())
            s.signals.advance()
            if now - s.alert_hop >= HOPS_PER_SECOND:  # alerts on session time, not wall time
                s.alert_hop = now
                sig = s.signals.snapshot(now, _open_segments(s))
                s.events.extend(_alert_events(s.alerts.update(sig)))

    def _advance_bleed(self, s: LiveSession, bleed: LiveBleed, now: int) -> None:
        """Step the session's bleed stage as far as every participant's speech is final,
        pass on the cleaned segments, and settle each participant no further than its
        cleaned speech is final (the stage holds segments for its tidy look-ahead)."""
        until = now
        speaking: dict[str, SpeechSegment | None] = {}
        vad_settled = []  # per participant: neither step below changes it, so ask once
        for p in s.participants.values():
            final = vad = p.settled_hop(now)
            vad_settled.append(vad)
            open_seg = p.open_segment()
            if open_seg is not None and open_seg.end > final:
                # long enough to count: its hops up to its end are speech for good
                final = open_seg.end
                speaking[p.pid] = open_seg
            if final < until:
                until = final
        bleed.advance(until, speaking)
        self._pass_cleaned(s)
        for p, vad in zip(s.participants.values(), vad_settled, strict=True):
            settled = bleed.settled(p.pid, vad)
            if p.mic is not None:
                p.mic.settle_cleaned(settled)
            else:
                s.signals.settle(p.pid, settled)

    def _pass_cleaned(self, s: LiveSession) -> None:
        if s.bleed is None:
            return
        for pid, segs in s.bleed.take().items():
            mic = s.participants[pid].mic
            if mic is not None:
                mic.add_cleaned(segs)
            else:
                s.signals.add_segments(pid, segs)
            s.participants[pid].closed.extend(segs)

    @staticmethod
    def _apply_mic(s: LiveSession, up: SubUpdate) -> None:
        """A shared mic's new sub-participants and final segments into the signals."""
        for name in up.joined:
            parent = s.participants[name.rsplit("/", 1)[0]]
            s.signals.add_participant(name, parent.spec.role.value)
            s.alerts.roles[name] = parent.spec.role.value
            s.events.append(f"{name} joined")
        for name, segs in up.segments.items():
            s.signals.add_segments(name, segs)
        for name, hop in up.settled.items():
            s.signals.settle(name, hop)

    def _analyse(
        self, work: list[tuple[LiveParticipant, list[tuple[int, int, bytes]], bool]]
    ) -> None:
        """Executor side: decode, place on the session timeline, one batched VAD step."""
        if not self.config.analyse_audio:  # transport-only benchmark: advance the timeline
            for p, frames, _ in work:
                if frames:
                    end_ms = frames[-1][0] + _payload_ms(p.spec, frames[-1][2])
                    p.next_sample = max(p.next_sample, int(end_ms * SAMPLES_PER_MS))
            return
        for p, frames, _ in self._place_pcm(work):
            for capture_ms, sequence, payload in frames:
                try:
                    pcm = p.decoder.decode(payload)
                except PayloadDecodeError as exc:
                    p.error = PayloadDecodeError(f"frame {sequence}: {exc}")
                    break
                if pcm.size:
                    self._place(p, capture_ms * SAMPLES_PER_MS, pcm, sequence)
        step(self.backend, [p.pipeline for p, _, _ in work])
        self._feed_affect([p for p, _, _ in work], force=False)
        for p, _, ending in work:
            self._collect(p)
            if ending:
                self._end_epoch(p)
        mics = [(p, p.mic, ending) for p, _, ending in work if p.mic is not None]
        if mics and self.embedder is not None:  # shared mics: one batched encoder call
            for p, mic, ending in mics:
                mic.mark(p.settled_hop(p.position_hop()), p.open_segment(), ending=ending)
            step_mics(self.embedder, [mic for _, mic, _ in mics])

    @staticmethod
    def _place_pcm(
        work: list[tuple[LiveParticipant, list[tuple[int, int, bytes]], bool]],
    ) -> list[tuple[LiveParticipant, list[tuple[int, int, bytes]], bool]]:
        """Executor side: the usual PCM frames of every stream in `work` on the timeline
        at once; returns the streams left for `_place` (frame by frame).

        The usual frames are 16 kHz mono, whole hops, each right after the last (as
        `_place`'s first branch takes them), after a frame already placed and with no
        partial hop held. They go into one array with one copy, and each stream gets
        its rows as one block of hops: 1.5 us a frame, against 2.6-3.2 for decoding and
        placing frame by frame (in isolation; a loaded server's cold caches add more).

        A stream's hops stay in memory while any view of their array does, so the
        streams whose audio goes on to the affect path (for up to a block) get an array
        of their own, apart from the rest, whose audio is dropped after this tick; a
        shared microphone's (held for its diarizer, seconds) is placed frame by frame."""
        rest = []
        groups: tuple[list[bytes], list[bytes]] = ([], [])  # by `keep_audio`: the payloads
        placed: tuple[list[tuple[LiveParticipant, int, int]], ...] = ([], [])  # (p, hops, seq)
        for item in work:
            p, frames, _ = item
            decoder = p.decoder
            at = p.next_sample
            if (
                not frames
                or at < 0
                or not isinstance(decoder, PcmDecoder)
                or not decoder.passthrough
                or p.pipeline.keep_hops
                or p.pipeline.framer.pending_samples
            ):
                rest.append(item)
                continue
            for capture_ms, _, payload in frames:
                size = len(payload)
                if not size or size % HOP_BYTES or not _follows(capture_ms * SAMPLES_PER_MS, at):
                    break
                at += size // 2
            else:
                keep = int(p.pipeline.keep_audio)
                groups[keep].extend([payload for _, _, payload in frames])
                placed[keep].append((p, (at - p.next_sample) // HOP, frames[-1][1]))
                continue
            rest.append(item)
        for parts, streams in zip(groups, placed, strict=True):
            if not streams:
                continue
            # a bytearray: the hops are writable and ours, as a decoder's output is
            joined = np.frombuffer(bytearray().join(parts), dtype="<i2")
            hops = joined.astype(np.int16, copy=False).reshape(-1, HOP)
            row = 0
            for p, n, last_sequence in streams:
                p.pipeline.feed_hops(hops[row : row + n])
                p.next_sample += n * HOP
                p.placed_sequence = last_sequence
                row += n
        return rest

    def _feed_affect(self, ps: list[LiveParticipant], *, force: bool = True) -> None:
        """Executor side: the consenting participants' new hops through prosody, the
        affect model and their cues, batched; the audio is dropped right after. Unless
        `force`d (an epoch ends), a participant's hops wait for the end of their block of
        AFFECT_BLOCK_HOPS session hops, at one of AFFECT_PHASES phases (by their id) so
        that groups of participants take turns: the same results (prosody is chunking-
        invariant), cues at most 490 ms later."""
        items: list[tuple[int, LiveParticipant, np.ndarray, np.ndarray]] = []
        for p in ps:
            if not p.pipeline.audio:  # nothing held (no consent, or nothing new)
                continue
            end = p.epoch_hop + p.pipeline.hops_done
            if not force and p.affect is not None and end < p.affect_due:
                continue  # its block is not complete: keep the hops for a later tick
            audio = p.pipeline.take_audio()
            if p.affect is not None and audio:
                if not force:
                    spacing = AFFECT_BLOCK_HOPS // AFFECT_PHASES
                    phase = _phase(p.pid, AFFECT_PHASES) * spacing
                    p.affect_due = end - (end - phase) % AFFECT_BLOCK_HOPS + AFFECT_BLOCK_HOPS
                # contiguous blocks ending at hops_done: one item (one prosody call);
                # the (n, HOP) pieces joined as they are, then flattened once (a reshape
                # per piece cost more than the copy)
                if len(audio) == 1:
                    items.append((end, p, audio[0][0].reshape(-1), audio[0][1]))
                else:
                    pieces, flags = zip(*audio, strict=True)
                    pcm = np.concatenate(pieces).reshape(-1)
                    items.append((end, p, pcm, np.concatenate(flags)))
        items.sort(key=lambda it: it[0])
        # One item per participant; calls of at most AFFECT_MAX_HOPS hops, so that the
        # batched FFT's transient memory stays bounded when the engine runs behind (it
        # once took 1.3 GB at 240 overloaded streams).
        first = 0
        while first < len(items):
            last, hops = first + 1, items[first][3].shape[0]
            while last < len(items) and hops + items[last][3].shape[0] <= AFFECT_MAX_HOPS:
                hops += items[last][3].shape[0]
                last += 1
            batch = items[first:last]
            first = last
            owners = {it[1].pid: it[1] for it in batch}
            changed = affect_step(
                [it[1].affect for it in batch if it[1].affect is not None],
                [it[2] for it in batch],
                [it[3] for it in batch],
                [it[0] for it in batch],
            )
            for c in changed:
                owners[c.participant].cue_changes.append(c)

    def _place(self, p: LiveParticipant, start: int, pcm: np.ndarray, sequence: int) -> None:
        """Put decoded audio on the session timeline.

        A hole with consecutive sequence numbers is Opus DTX (the sender stopped sending
        because it is quiet): silence. A hole with missing sequence numbers is loss:
        unknown. Short holes are bridged with zeros so one lost packet does not split an
        utterance; long ones end the epoch (the VAD restarts after them).
        """
        at = p.next_sample
        if at >= 0 and _follows(start, at):
            # the usual case, right after the last frame: the branches below pass it on
            # as is, and the decoder's output is ours to keep
            p.placed_sequence = sequence
            p.pipeline.feed(pcm, owned=True)
            p.next_sample = at + pcm.shape[0]
            return
        contiguous_seq = sequence == p.placed_sequence + 1
        p.placed_sequence = sequence
        if p.next_sample < 0:
            p.unknown_hops += start // HOP  # joined late: before that, unknown
            p.epoch_hop = start // HOP
            p.next_sample = p.epoch_hop * HOP
        elif start > p.next_sample + CONTIGUOUS_TOLERANCE:
            gap = start - p.next_sample
            if not contiguous_seq:
                p.unknown_hops += gap // HOP
                if p.pipeline.keep_levels and gap <= DTX_FILL_SAMPLES:
                    # lost audio: the bleed detector holds the level across it
                    p.lost.append((p.next_sample // HOP, -(-start // HOP)))
            if gap <= CONCEAL_SAMPLES or (contiguous_seq and gap <= DTX_FILL_SAMPLES):
                p.pipeline.feed(np.zeros(gap, np.int16))
                p.next_sample = start
            else:
                self._end_epoch(p)
                p.epoch_hop = start // HOP
                p.next_sample = p.epoch_hop * HOP
        elif start < p.next_sample - CONTIGUOUS_TOLERANCE:
            overlap = p.next_sample - start
            if overlap >= pcm.shape[0]:
                return
            pcm = pcm[overlap:]
        p.pipeline.feed(pcm)
        p.next_sample += pcm.shape[0]

    def _collect(self, p: LiveParticipant) -> None:
        if p.mic is not None and p.pipeline.kept:
            hop = p.epoch_hop + p.pipeline.hops_stepped - sum(h.shape[0] for h in p.pipeline.kept)
            for h in p.pipeline.kept:
                p.mic.add_audio(hop, h)
                hop += h.shape[0]
            p.pipeline.kept.clear()
        if p.pipeline.segments:
            for seg in p.pipeline.segments:
                start = max(seg.start + p.epoch_hop, p.last_end_hop)  # never overlap the last
                if seg.end + p.epoch_hop > start:
                    p.fresh.append(SpeechSegment(start, seg.end + p.epoch_hop))
                    p.last_end_hop = seg.end + p.epoch_hop
                    if p.mic is not None:
                        p.mic.add_vad([p.fresh[-1]])
            p.pipeline.segments.clear()
        if p.pipeline.levels:  # per-hop levels for the bleed stage, on session hops
            for lv in p.pipeline.levels:
                p.levels.append((p.epoch_hop + p.level_hops, lv))
                p.level_hops += lv.shape[0]
            p.pipeline.levels.clear()

    def _end_epoch(self, p: LiveParticipant) -> None:
        """A gap or a disconnect: close what is open, restart the stream state."""
        if p.next_sample < 0:
            return
        finish(self.backend, p.pipeline)
        self._feed_affect([p])
        self._collect(p)
        p.next_sample = (p.epoch_hop + p.pipeline.hops_in) * HOP
        p.pipeline.reset()
        p.level_hops = 0
        p.epoch_hop = p.next_sample // HOP

    def _publish_due(self, now: float | None = None) -> None:
        """A snapshot of every session with news or whose periodic one is due.

        Periodic snapshots keep a fixed rate: the next is due one interval after the
        last was due, not after the tick that sent it (ticks round each due time up by
        up to a tick, so a 50 ms interval at 20 ms ticks used to become 60 ms). A
        session's first is due at a phase picked by its id, so sessions opened together
        take turns rather than all building their snapshots in the same tick. A session
        nobody subscribes to builds none (about a tenth of the engine's time at 50 ms)."""
        now = time.monotonic() if now is None else now
        interval = self.config.snapshot_interval_s
        for s in self.sessions.values():
            if not s.next_publish:
                phase = _phase(s.session_id, PUBLISH_PHASES) / PUBLISH_PHASES
                s.next_publish = now + phase * interval
            due = now >= s.next_publish
            if s.events or due:
                s.seq += 1
                if s.hub.subscribers:  # else no one would read it: a subscriber's first
                    s.hub.publish(self._view(s, events=tuple(s.events)))  # view is its own
                s.events.clear()
            if due:
                s.next_publish += interval
                if s.next_publish <= now:  # far behind (a long pass): no burst to catch up
                    s.next_publish = now + interval

    def _expire_idle(self) -> None:
        now = time.monotonic()
        for sid, s in list(self.sessions.items()):
            if s.idle_since is not None and now - s.idle_since >= self.config.idle_session_s:
                self._end(sid, reason="ended after every participant left")


LIVE_DIARIZE = DiarizeConfig(latency_s=2.0)
"""Shared microphones live: labels final 2 s after the VAD decides (5 s offline); 2 s
leaves room for two windows of look-ahead before a new voice opens an identity."""


def _follows(start: int, at: int) -> bool:
    """Whether audio starting at sample `start` comes right after the audio placed up to
    `at`, within timestamp rounding and clock jitter: the usual frame, placed as it is
    (`_place`'s first branch, and every frame `_place_pcm` takes)."""
    return -CONTIGUOUS_TOLERANCE <= start - at <= CONTIGUOUS_TOLERANCE


def _phase(key: str, n: int) -> int:
    """One of `n` phases, fixed by `key` (a session or participant id): the engine's
    periodic work (bleed steps, affect blocks, snapshots) is spread over ticks by it."""
    return zlib.crc32(key.encode()) % n


def _report_orphan(task: asyncio.Task[object]) -> None:
    """Log a pass that failed after its caller went away (a bug, not a refusal)."""
    exc = None if task.cancelled() else task.exception()
    if exc is not None and not isinstance(exc, GroupsenseError):
        log.error("analysis pass failed after its caller went away", exc_info=exc)


def _open_segments(s: LiveSession) -> dict[str, SpeechSegment | None]:
    """Speech in progress by participant: a shared mic's by its sub-participants."""
    out = {pid: p.open_segment() for pid, p in s.participants.items() if p.mic is None}
    for mic in s.mics.values():
        out.update(mic.open_segments())
    return out


def _decoder(spec: StreamSpec) -> PcmDecoder | OpusDecoder:
    if spec.codec is Codec.OPUS:
        return OpusDecoder(spec.sample_rate, spec.channels)
    return PcmDecoder(spec.sample_rate, spec.channels)


def _payload_ms(spec: StreamSpec, payload: bytes) -> float:
    if spec.codec is Codec.PCM16LE:
        return len(payload) // (2 * spec.channels) * 1000 / spec.sample_rate
    return opus_packet_ms(payload)


def _check_payload(spec: StreamSpec, payload: bytes, max_frame_ms: int) -> None:
    if not payload:
        raise PayloadDecodeError("empty payload")
    if spec.codec is Codec.PCM16LE:
        width = 2 * spec.channels
        if len(payload) % width:
            raise PayloadDecodeError(
                f"PCM16LE payload of {len(payload)} bytes is not a whole number of "
                f"{spec.channels}-channel samples"
            )
        ms = len(payload) // width * 1000 / spec.sample_rate
        if ms > max_frame_ms:
            raise StreamFormatError(f"frame of {ms:.0f} ms exceeds the {max_frame_ms} ms limit")
    else:
        ms = opus_packet_ms(payload)
        if ms > max_frame_ms:
            raise StreamFormatError(f"frame of {ms:.0f} ms exceeds the {max_frame_ms} ms limit")


_OPUS_FRAME_MS = (
    [10, 20, 40, 60] * 3  # SILK NB/MB/WB
    + [10, 20] * 2  # hybrid SWB/FB
    + [2.5, 5, 10, 20] * 4  # CELT
)


@functools.lru_cache(maxsize=8)
def _single_frame_tocs(max_frame_ms: int) -> frozenset[int]:
    """TOC bytes of one-frame Opus packets (code 0) no longer than `max_frame_ms`: such a
    packet is valid whatever follows its TOC byte, so `opus_packet_ms` need not run."""
    return frozenset(
        toc for toc in range(256) if toc & 3 == 0 and _OPUS_FRAME_MS[toc >> 3] <= max_frame_ms
    )


def opus_packet_ms(packet: bytes) -> float:
    """Duration of an Opus packet from its TOC byte (RFC 6716 section 3.1); checks framing."""
    toc = packet[0]
    frame_ms = _OPUS_FRAME_MS[toc >> 3]
    code = toc & 3
    if code == 0:
        count = 1
    elif code in (1, 2):
        count = 2
        if code == 1 and (len(packet) - 1) % 2:
            raise PayloadDecodeError("Opus packet (code 1) has an odd payload length")
    else:
        if len(packet) < 2:
            raise PayloadDecodeError("Opus packet (code 3) is missing its frame count byte")
        count = packet[1] & 0x3F
        if count == 0:
            raise PayloadDecodeError("Opus packet (code 3) declares zero frames")
    total = frame_ms * count
    if total > 120:
        raise PayloadDecodeError(f"Opus packet of {total} ms exceeds the 120 ms RFC 6716 limit")
    return float(total)


def _cue_events(changed: list[Cue]) -> tuple[str, ...]:
    return tuple(f"cue {c.id} {'raised' if c.active else 'cleared'}: {c.message}" for c in changed)


def cue_alert(c: Cue) -> Alert:
    """A cue, as it appears in the alert list."""
    return Alert(
        id=c.id,
        kind="voice_cue",
        participant=c.participant,
        since_s=c.since_s,
        cleared_s=c.cleared_s,
        message=c.message,
    )


def _alert_events(changed: list[Alert]) -> tuple[str, ...]:
    return tuple(
        f"alert {a.id} {'raised' if a.active else 'cleared'}: {a.message}" for a in changed
    )


def _cues_of(p: LiveParticipant, final: bool) -> tuple[Cue, ...]:
    if p.affect is None:
        return ()
    cues = p.affect.cues
    return tuple(cues.history) if final else tuple(cues.active.values())


def _or(value: float, default: float) -> float:
    return default if math.isnan(value) else value


@functools.lru_cache(maxsize=4096)
def _transition(from_id: str, to_id: str, count: int) -> Transition:
    """Cached: a session of 8 that has talked a while has dozens of (from, to) pairs, and
    each snapshot (each 50 ms) carried a new Transition for every one, though a count
    changes only when the floor does. They are frozen, so snapshots may share them; per
    pair, so that the cache stays small (about 1 MB) however large a session is."""
    return Transition(from_id=from_id, to_id=to_id, count=count)


def session_view(
    session_id: str,
    seq: int,
    now_hop: int,
    participants: tuple[ParticipantView, ...],
    sig: SessionSignals,
    alerts: tuple[Alert, ...],
    *,
    events: tuple[str, ...] = (),
    final: bool = False,
) -> SessionView:
    """A snapshot: participants' views plus the session's signals and alerts."""
    return SessionView(
        session_id=session_id,
        seq=seq,
        session_ms=now_hop * 10,
        participants=participants,
        events=events,
        final=final,
        balance_entropy=sig.balance_entropy,
        balance_gini=sig.balance_gini,
        balance_entropy_5min=sig.balance_entropy_5min,
        group_silences=sig.group_silences,
        group_silence_s=sig.group_silence_s,
        longest_group_silence_s=sig.longest_group_silence_s,
        current_group_silence_s=sig.current_group_silence_s,
        overlaps=sig.overlaps,
        overlap_s=sig.overlap_s,
        turn_rate_per_min=sig.turn_rate_per_min,
        facilitator_share=_or(sig.facilitator_share, -1.0),
        follows=tuple(_transition(a, b, n) for (a, b), n in sorted(sig.follows.items())),
        alerts=alerts,
    )
