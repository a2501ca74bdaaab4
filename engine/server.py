"""The gRPC face of the engine (grpc.aio): servicers only translate.

Protobuf in -> domain types -> LiveEngine; domain results -> protobuf out. Also:
the auth interceptor, health and reflection services, TLS, limits, keepalive
enforcement and graceful shutdown. Nothing here analyses audio.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1._async import HealthServicer
from grpc_reflection.v1alpha import reflection

from engine.auth import Claims, ForbiddenError, TokenRole, bearer, verify_token
from engine.config import EngineConfig
from engine.errors import GroupsenseError, OverloadError, StreamFormatError
from engine.ingest import Codec, Role, StreamSpec, StreamWarning
from engine.live import DrainingError, LiveEngine, StreamHandle
from engine.privacy import Pseudonymizer
from engine.types import Alert, Cue, ParticipantView, SessionView
from groupsense.v1 import groupsense_pb2 as pb
from groupsense.v1 import groupsense_pb2_grpc as pb_grpc

log = logging.getLogger("groupsense.server")

_SVC = "/groupsense.v1."
METHOD_ROLES: dict[str, TokenRole] = {
    f"{_SVC}IngestService/StreamAudio": TokenRole.INGEST,
    f"{_SVC}IngestService/StreamNode": TokenRole.INGEST,
    f"{_SVC}SignalService/Subscribe": TokenRole.FACILITATOR,
    f"{_SVC}SessionService/ListSessions": TokenRole.FACILITATOR,
    f"{_SVC}SessionService/EndSession": TokenRole.FACILITATOR,
    f"{_SVC}SessionService/GetSummary": TokenRole.FACILITATOR,
}
ACK_INTERVAL_S = 1.0
_STATUS = {name: getattr(grpc.StatusCode, name) for name in grpc.StatusCode.__members__}


def _code(exc: Exception) -> grpc.StatusCode:
    return _STATUS.get(getattr(exc, "grpc_status", "INTERNAL"), grpc.StatusCode.INTERNAL)


def _code_number(exc: Exception) -> int:
    """The google.rpc.Code number of the status an exception maps to (e.g. 3)."""
    number: int = _code(exc).value[0]
    return number


class Auth:
    """Token checks. With no secret configured (loopback-only use) everyone may do anything."""

    def __init__(self, secret: bytes | None) -> None:
        self.secret = secret

    @property
    def enabled(self) -> bool:
        return self.secret is not None

    def claims(self, metadata: Any) -> Claims | None:
        if self.secret is None:
            return None
        return verify_token(self.secret, bearer(tuple(metadata or ())))

    def check_method(self, method: str, metadata: Any) -> None:
        required = METHOD_ROLES.get(method)
        if required is None or self.secret is None:
            return
        claims = self.claims(metadata)
        if claims is not None and claims.role is not required:
            article = "an" if claims.role.value[0] in "aeiou" else "a"
            raise ForbiddenError(
                f"{article} {claims.role.value} token may not call {method.rsplit('/', 1)[-1]}"
            )

    def check_session(self, context: grpc.aio.ServicerContext, session_id: str) -> None:
        claims = self.claims(context.invocation_metadata())
        if claims is not None and not claims.may_access(session_id):
            raise ForbiddenError(f"this token does not grant access to session {session_id!r}")

    def visible(self, context: grpc.aio.ServicerContext, session_id: str) -> bool:
        claims = self.claims(context.invocation_metadata())
        return claims is None or claims.may_access(session_id)


class AuthInterceptor(grpc.aio.ServerInterceptor):
    """Authenticates every call to our services and enforces the role per method."""

    def __init__(self, auth: Auth) -> None:
        self._auth = auth

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        try:
            self._auth.check_method(details.method, details.invocation_metadata)
        except GroupsenseError as exc:
            return _deny(details.method, _code(exc), str(exc))
        return await continuation(details)


def _deny(method: str, code: grpc.StatusCode, message: str) -> grpc.RpcMethodHandler:
    async def unary(_req: Any, context: grpc.aio.ServicerContext) -> Any:
        await context.abort(code, message)

    async def streaming(_req: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
        await context.abort(code, message)
        yield  # pragma: no cover - makes this an async generator

    async def ingest(
        requests: AsyncIterator[Any], context: grpc.aio.ServicerContext
    ) -> AsyncIterator[Any]:
        # Take the client's first message before refusing: a grpc.aio client that writes
        # after the call has ended reports INTERNAL instead of our status (grpc#36066).
        await anext(aiter(requests), None)
        await context.abort(code, message)
        yield  # pragma: no cover

    if method.endswith(("/StreamAudio", "/StreamNode")):
        return grpc.stream_stream_rpc_method_handler(ingest)
    if method.endswith("/Subscribe"):
        return grpc.unary_stream_rpc_method_handler(streaming)
    return grpc.unary_unary_rpc_method_handler(unary)


# -- translation -----------------------------------------------------------------------
_CODECS = {pb.CODEC_PCM16LE: Codec.PCM16LE, pb.CODEC_OPUS: Codec.OPUS}
_ROLES = {pb.ROLE_PARTICIPANT: Role.PARTICIPANT, pb.ROLE_FACILITATOR: Role.FACILITATOR}
_ROLE_PB = {
    Role.PARTICIPANT.value: pb.ROLE_PARTICIPANT,
    Role.FACILITATOR.value: pb.ROLE_FACILITATOR,
}
_WARN_PB = {
    "sequence_gap": pb.StreamWarning.SEQUENCE_GAP,
    "late_frame": pb.StreamWarning.LATE_FRAME,
    "reordered": pb.StreamWarning.REORDERED,
    "duplicate": pb.StreamWarning.DUPLICATE,
    "clock_skew": pb.StreamWarning.CLOCK_SKEW,
}


def spec_from_pb(c: pb.StreamConfig) -> StreamSpec:
    if c.codec not in _CODECS:
        raise StreamFormatError(
            f"config.codec: unknown codec {c.codec}; use CODEC_PCM16LE or CODEC_OPUS"
        )
    if c.role not in _ROLES:
        raise StreamFormatError("config.role: set ROLE_PARTICIPANT or ROLE_FACILITATOR")
    try:
        return StreamSpec(
            session_id=c.session_id,
            participant_ref=c.participant_ref,
            role=_ROLES[c.role],
            codec=_CODECS[c.codec],
            sample_rate=c.sample_rate_hz,
            channels=c.channels,
            affect_consent=c.affect_consent,
            shared_microphone=c.shared_microphone,
            max_speakers=c.max_speakers,
            expected_speakers=c.expected_speakers,
            rtp_clock_rate=c.rtp_clock_rate,
            rtp_timestamp_base=c.rtp_timestamp_base,
            rtp_base_capture_ms=c.rtp_base_capture_ms,
        )
    except StreamFormatError as exc:
        raise StreamFormatError(f"config: {exc}") from None


# Snapshots are built in place: a message passed to a constructor or a repeated field is
# copied (upb), and each keyword costs more than a plain attribute store. Under load every
# session's snapshot is converted each 50-60 ms, so this path is worth its verbosity.
# tests/test_server_snapshot_pb.py checks it against the plain keyword construction.


def _fill_participant(q: pb.ParticipantSignals, v: ParticipantView) -> None:
    q.participant_id = v.participant_id
    q.role = _ROLE_PB[v.role]
    q.connected = v.connected
    q.speaking = v.speaking
    q.speaking_s = v.speaking_s
    q.share = v.share
    q.since_last_spoke_s = v.since_last_spoke_s
    q.unknown_s = v.unknown_s
    q.share_5min = v.share_5min
    q.share_1min = v.share_1min
    q.share_vs_equal = v.share_vs_equal
    q.turns = v.turns
    q.mean_turn_s = v.mean_turn_s
    q.longest_turn_s = v.longest_turn_s
    q.backchannels = v.backchannels
    q.response_latency_s = v.response_latency_s
    q.responses = v.responses
    q.overlap_s = v.overlap_s
    q.overlaps = v.overlaps
    q.interruptions_made = v.interruptions_made
    q.interruptions_received = v.interruptions_received
    q.affect = v.affect
    q.arousal = v.arousal
    q.valence = v.valence
    if v.cues:
        add = q.cues.add
        for c in v.cues:
            _fill_cue(add(), c)


def _fill_cue(q: pb.Cue, c: Cue) -> None:
    q.id = c.id
    q.kind = c.kind
    q.since_s = c.since_s
    q.cleared_s = c.cleared_s
    q.deviation = c.deviation
    q.evidence_s = c.evidence_s
    q.confidence = c.confidence
    q.message = c.message


def _fill_group(g: pb.GroupSignals, v: SessionView) -> None:
    g.balance_entropy = v.balance_entropy
    g.balance_gini = v.balance_gini
    g.balance_entropy_5min = v.balance_entropy_5min
    g.group_silences = v.group_silences
    g.group_silence_s = v.group_silence_s
    g.longest_group_silence_s = v.longest_group_silence_s
    g.current_group_silence_s = v.current_group_silence_s
    g.overlaps = v.overlaps
    g.overlap_s = v.overlap_s
    g.turn_rate_per_min = v.turn_rate_per_min
    g.facilitator_share = v.facilitator_share
    add = g.follows.add
    for t in v.follows:
        q = add()
        q.from_id = t.from_id
        q.to_id = t.to_id
        q.count = t.count


def _fill_alert(q: pb.Alert, a: Alert) -> None:
    q.id = a.id
    q.kind = a.kind
    q.participant_id = a.participant
    q.since_s = a.since_s
    q.cleared_s = a.cleared_s
    q.message = a.message


def _fill_view(m: pb.SessionSnapshot | pb.SessionSummary, v: SessionView) -> None:
    """What a snapshot and a summary share: participants, group and alerts."""
    m.group.SetInParent()  # present even when every figure is zero, as before
    add = m.participants.add
    for p in v.participants:
        _fill_participant(add(), p)
    _fill_group(m.group, v)
    add_alert = m.alerts.add
    for a in v.alerts:
        _fill_alert(add_alert(), a)


def participant_pb(v: ParticipantView) -> pb.ParticipantSignals:
    q = pb.ParticipantSignals()
    _fill_participant(q, v)
    return q


def cue_pb(c: Cue) -> pb.Cue:
    q = pb.Cue()
    _fill_cue(q, c)
    return q


def group_pb(v: SessionView) -> pb.GroupSignals:
    g = pb.GroupSignals()
    _fill_group(g, v)
    return g


def alert_pb(a: Alert) -> pb.Alert:
    q = pb.Alert()
    _fill_alert(q, a)
    return q


def snapshot_pb(v: SessionView) -> pb.SessionSnapshot:
    m = pb.SessionSnapshot(
        session_id=v.session_id, snapshot_seq=v.seq, session_ms=v.session_ms, final=v.final
    )
    m.events.extend(v.events)
    _fill_view(m, v)
    return m


def summary_pb(v: SessionView) -> pb.SessionSummary:
    m = pb.SessionSummary(session_id=v.session_id, duration_ms=v.session_ms)
    _fill_view(m, v)
    return m


def _warnings_pb(warnings: list[StreamWarning]) -> list[pb.StreamWarning]:
    return [
        pb.StreamWarning(kind=_WARN_PB[w.kind.value], sequence=w.sequence, detail=w.detail)
        for w in warnings
    ]


# -- servicers -------------------------------------------------------------------------
class IngestServicer(pb_grpc.IngestServiceServicer):
    def __init__(self, engine: LiveEngine, auth: Auth, max_node_channels: int = 1024) -> None:
        self.engine = engine
        self.auth = auth
        self.max_node_channels = max_node_channels

    async def StreamAudio(
        self, request_iterator: AsyncIterator[pb.IngestRequest], context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.IngestResponse]:
        handle: StreamHandle | None = None
        try:
            first = await anext(aiter(request_iterator), None)
            if first is None:
                return
            if first.WhichOneof("message") != "config":
                await context.abort(
                    grpc.StatusCode.FAILED_PRECONDITION,
                    "the first message of StreamAudio must be a StreamConfig",
                )
            spec = spec_from_pb(first.config)
            self.auth.check_session(context, spec.session_id)
            handle = self.engine.open_stream(spec)
            yield pb.IngestResponse(participant_id=handle.pid)
            last_ack = time.monotonic()
            async for req in request_iterator:
                if req.WhichOneof("message") != "frame":
                    raise StreamFormatError("a StreamConfig may only be the first message")
                f = req.frame
                ts = f.WhichOneof("timestamp")
                warnings = self.engine.push_frame(
                    handle,
                    f.sequence,
                    f.capture_ms if ts == "capture_ms" else None,
                    f.rtp_timestamp if ts == "rtp_timestamp" else None,
                    f.payload,
                )
                await self.engine.pace(handle)
                now = time.monotonic()
                if warnings or now - last_ack >= ACK_INTERVAL_S:
                    last_ack = now
                    yield self._ack(handle, warnings)
            # Client finished sending: analyse its frames, then the final acknowledgement.
            await self.engine.flush_stream(handle)
            yield self._ack(handle, [])
        except GroupsenseError as exc:  # auth errors included
            await context.abort(_code(exc), str(exc))
        finally:
            if handle is not None:
                self.engine.close_stream(handle)

    async def StreamNode(
        self, request_iterator: AsyncIterator[pb.NodeRequest], context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.NodeResponse]:
        """Many participants' channels over one call. Each channel behaves as its own
        StreamAudio call would (same checks, warnings and errors), but an error ends only
        its channel, reported in a ChannelStatus; the call goes on."""
        node = _Node(self, context)
        try:
            async for req in request_iterator:
                kind = req.WhichOneof("message")
                if kind == "batch":
                    out, backlog = node.batch(req.batch)
                    if backlog:
                        await self.engine.wait_tick()
                elif kind == "open":
                    out = [node.open(req.open)]
                elif kind == "close":
                    out = [await node.close(req.close.channel)]
                else:
                    raise StreamFormatError("a NodeRequest must hold an open, a batch or a close")
                out += node.due()
                if out:
                    yield pb.NodeResponse(channels=out)
            # The node finished sending: analyse every channel's frames, final statuses.
            out = await node.finish()
            if out:
                yield pb.NodeResponse(channels=out)
        except GroupsenseError as exc:  # call-level: draining, a malformed request
            await context.abort(_code(exc), str(exc))
        finally:
            node.close_all()

    def _ack(self, handle: StreamHandle, warnings: list[StreamWarning]) -> pb.IngestResponse:
        p = self.engine.participant(handle)
        return pb.IngestResponse(
            participant_id=handle.pid,
            frames_received=p.frames_received,
            last_sequence=p.last_sequence,
            processed_ms=self.engine.processed_ms(handle),
            warnings=_warnings_pb(warnings),
        )


class _Node:
    """The channels of one StreamNode call: channel id -> stream handle."""

    def __init__(self, servicer: IngestServicer, context: grpc.aio.ServicerContext) -> None:
        self.servicer = servicer
        self.engine = servicer.engine
        self.context = context
        self.channels: dict[int, StreamHandle] = {}
        self.refused: set[int] = set()  # ended or never opened: frames dropped until an open
        self.active: set[int] = set()  # received frames since the last periodic ack
        self.last_ack = time.monotonic()

    def _fail(self, channel: int, exc: GroupsenseError) -> pb.ChannelStatus:
        if isinstance(exc, DrainingError):
            raise exc  # the whole server is going away: end the call, not one channel
        handle = self.channels.pop(channel, None)
        if handle is not None:
            self.engine.close_stream(handle)
        self.refused.add(channel)
        self.active.discard(channel)
        return pb.ChannelStatus(
            channel=channel, error_code=_code_number(exc), error=str(exc), closed=True
        )

    def open(self, req: pb.ChannelOpen) -> pb.ChannelStatus:
        ch = req.channel
        try:
            if ch in self.channels:
                # The open channel goes on; only this open is refused.
                return pb.ChannelStatus(
                    channel=ch,
                    error_code=grpc.StatusCode.INVALID_ARGUMENT.value[0],
                    error=f"channel {ch} is already open on this call; close it first",
                )
            if len(self.channels) >= self.servicer.max_node_channels:
                raise OverloadError(
                    f"channel limit per StreamNode call reached "
                    f"({self.servicer.max_node_channels}, [server] max_node_channels)"
                )
            if not req.HasField("config"):
                raise StreamFormatError("ChannelOpen has no config")
            spec = spec_from_pb(req.config)
            self.servicer.auth.check_session(self.context, spec.session_id)
            handle = self.engine.open_stream(spec)
        except GroupsenseError as exc:
            self.refused.add(ch)
            if isinstance(exc, DrainingError):
                raise
            return pb.ChannelStatus(
                channel=ch, error_code=_code_number(exc), error=str(exc), closed=True
            )
        self.channels[ch] = handle
        self.refused.discard(ch)
        return pb.ChannelStatus(channel=ch, ack=pb.IngestResponse(participant_id=handle.pid))

    def batch(self, batch: pb.FrameBatch) -> tuple[list[pb.ChannelStatus], bool]:
        items: list[tuple[StreamHandle, int, int | None, int | None, bytes]] = []
        owners: list[int] = []
        out: list[pb.ChannelStatus] = []
        channels = self.channels
        for f in batch.frames:
            ch = f.channel
            handle = channels.get(ch)
            if handle is None:
                if ch not in self.refused:
                    self.refused.add(ch)
                    out.append(
                        pb.ChannelStatus(
                            channel=ch,
                            error_code=grpc.StatusCode.FAILED_PRECONDITION.value[0],
                            error=f"channel {ch} is not open: a ChannelOpen must come first; "
                            "its frames are dropped until then",
                            closed=True,
                        )
                    )
                continue
            capture_ms: int | None = f.capture_ms
            rtp_timestamp: int | None = None
            # An unset oneof member reads 0: a non-zero capture_ms is the one set, and
            # WhichOneof (about 0.3 us, a third of this loop per frame) is not needed.
            if not capture_ms:
                ts = f.WhichOneof("timestamp")
                if ts != "capture_ms":
                    capture_ms = None
                    if ts == "rtp_timestamp":
                        rtp_timestamp = f.rtp_timestamp
            items.append((handle, f.sequence, capture_ms, rtp_timestamp, f.payload))
            owners.append(ch)
        self.active.update(owners)
        news, backlog = self.engine.push_batch(items)
        warned: dict[int, list[StreamWarning]] = {}
        for i, got in news:
            ch = owners[i]
            if isinstance(got, GroupsenseError):
                if ch in self.channels:
                    out.append(self._fail(ch, got))
            else:
                warned.setdefault(ch, []).extend(got)
        out += [self._status(ch, w) for ch, w in warned.items() if ch in self.channels]
        return out, backlog

    def _status(
        self, ch: int, warnings: list[StreamWarning], closed: bool = False
    ) -> pb.ChannelStatus:
        """The channel's acknowledgement, or its failure if the analysis found one (a
        payload that did not decode) or a newer stream replaced it."""
        try:
            ack = self.servicer._ack(self.channels[ch], warnings)
        except GroupsenseError as exc:
            return self._fail(ch, exc)
        return pb.ChannelStatus(channel=ch, ack=ack, closed=closed)

    def due(self) -> list[pb.ChannelStatus]:
        """Once a second: an acknowledgement for every channel that received frames."""
        now = time.monotonic()
        if now - self.last_ack < ACK_INTERVAL_S:
            return []
        self.last_ack = now
        out = [self._status(ch, []) for ch in sorted(self.active) if ch in self.channels]
        self.active.clear()
        return out

    async def close(self, ch: int) -> pb.ChannelStatus:
        handle = self.channels.get(ch)
        if handle is None:
            return pb.ChannelStatus(
                channel=ch,
                error_code=grpc.StatusCode.FAILED_PRECONDITION.value[0],
                error=f"channel {ch} is not open",
                closed=True,
            )
        try:
            await self.engine.flush_stream(handle)
        except GroupsenseError as exc:
            return self._fail(ch, exc)
        status = self._status(ch, [], closed=True)
        if ch in self.channels:
            self.engine.close_stream(self.channels.pop(ch))
            self.active.discard(ch)
        return status

    async def finish(self) -> list[pb.ChannelStatus]:
        await self.engine.flush_streams(list(self.channels.values()))
        return [self._status(ch, [], closed=True) for ch in sorted(self.channels)]

    def close_all(self) -> None:
        for handle in self.channels.values():
            self.engine.close_stream(handle)
        self.channels.clear()


class SignalServicer(pb_grpc.SignalServiceServicer):
    def __init__(self, engine: LiveEngine, auth: Auth) -> None:
        self.engine = engine
        self.auth = auth

    async def Subscribe(
        self, request: pb.SubscribeRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.SessionSnapshot]:
        try:
            self.auth.check_session(context, request.session_id)
            async for view in self.engine.subscribe(request.session_id):
                yield snapshot_pb(view)
        except GroupsenseError as exc:  # auth errors included
            await context.abort(_code(exc), str(exc))


class SessionServicer(pb_grpc.SessionServiceServicer):
    def __init__(self, engine: LiveEngine, auth: Auth) -> None:
        self.engine = engine
        self.auth = auth

    async def ListSessions(
        self, request: pb.ListSessionsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListSessionsResponse:
        return pb.ListSessionsResponse(
            sessions=[
                pb.SessionInfo(
                    session_id=v.session_id,
                    participants=len(v.participants),
                    session_ms=v.session_ms,
                    active=True,
                )
                for v in await self.engine.list_sessions()
                if self.auth.visible(context, v.session_id)
            ]
        )

    async def EndSession(
        self, request: pb.EndSessionRequest, context: grpc.aio.ServicerContext
    ) -> pb.SessionSummary:
        try:
            self.auth.check_session(context, request.session_id)
            return summary_pb(await self.engine.end_session(request.session_id))
        except GroupsenseError as exc:  # auth errors included
            await context.abort(_code(exc), str(exc))
            raise  # unreachable: abort raises

    async def GetSummary(
        self, request: pb.GetSummaryRequest, context: grpc.aio.ServicerContext
    ) -> pb.SessionSummary:
        try:
            self.auth.check_session(context, request.session_id)
            return summary_pb(self.engine.summary(request.session_id))
        except GroupsenseError as exc:  # auth errors included
            await context.abort(_code(exc), str(exc))
            raise


# -- the server ------------------------------------------------------------------------
class Server:
    """A running groupsense server; `await stop()` drains and shuts down gracefully."""

    def __init__(self, config: EngineConfig) -> None:
        self.config = config
        secret = config.server.read_secret()
        self.auth = Auth(secret)
        self.engine = LiveEngine(
            config.live,
            config.vad,
            pseudonymizer=Pseudonymizer(secret),
            signals=config.signals,
            alerts=config.alerts,
            bleed=config.bleed,
        )
        self.health = HealthServicer()
        self._server: grpc.aio.Server | None = None
        self.port = 0

    def _options(self) -> list[tuple[str, Any]]:
        s = self.config.server
        return [
            ("grpc.max_receive_message_length", s.max_message_bytes),
            ("grpc.max_send_message_length", 4 * 1024 * 1024),
            ("grpc.max_concurrent_streams", s.max_concurrent_streams),
            ("grpc.keepalive_time_ms", int(s.keepalive_time_s * 1000)),
            ("grpc.keepalive_timeout_ms", int(s.keepalive_timeout_s * 1000)),
            ("grpc.keepalive_permit_without_calls", 1),
            ("grpc.http2.min_ping_interval_without_data_ms", int(s.min_ping_interval_s * 1000)),
            ("grpc.http2.max_ping_strikes", 2),
            ("grpc.so_reuseport", 0),
        ]

    async def start(self) -> int:
        s = self.config.server
        await self.engine.start()
        server = grpc.aio.server(interceptors=[AuthInterceptor(self.auth)], options=self._options())
        pb_grpc.add_IngestServiceServicer_to_server(
            IngestServicer(self.engine, self.auth, s.max_node_channels), server
        )
        pb_grpc.add_SignalServiceServicer_to_server(SignalServicer(self.engine, self.auth), server)
        pb_grpc.add_SessionServiceServicer_to_server(
            SessionServicer(self.engine, self.auth), server
        )
        health_pb2_grpc.add_HealthServicer_to_server(self.health, server)
        names = [
            pb.DESCRIPTOR.services_by_name[n].full_name
            for n in ("IngestService", "SignalService", "SessionService")
        ]
        reflection.enable_server_reflection(
            [
                *names,
                health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
                reflection.SERVICE_NAME,
            ],
            server,
        )
        address = (
            f"[{s.host.strip('[]')}]:{s.port}"
            if ":" in s.host.strip("[]")
            else f"{s.host}:{s.port}"
        )
        if s.tls:
            creds = grpc.ssl_server_credentials(
                [(_read(s.tls_key), _read(s.tls_cert))],
                root_certificates=_read(s.tls_client_ca) if s.tls_client_ca else None,
                require_client_auth=bool(s.tls_client_ca),
            )
            self.port = server.add_secure_port(address, creds)
        else:
            self.port = server.add_insecure_port(address)
        if self.port == 0:
            raise OSError(f"could not listen on {address}")
        await server.start()
        self._server = server
        for name in ["", *names]:
            await self.health.set(name, health_pb2.HealthCheckResponse.SERVING)
        # Start-up objects (modules, models, compiled kernels) live as long as the server:
        # out of the collector's sight, full collections stay short under load.
        gc.freeze()
        log.info("listening on %s:%d (%s)", s.host, self.port, "TLS" if s.tls else "plaintext")
        return self.port

    async def stop(self) -> None:
        """Drain: refuse new streams, process what is buffered, send final snapshots."""
        if self._server is None:
            return
        await self.health.enter_graceful_shutdown()
        await self.engine.drain()
        await asyncio.sleep(0.05)  # let subscribers receive their final snapshots
        await self._server.stop(self.config.server.shutdown_grace_s)
        self._server = None

    async def wait(self) -> None:
        if self._server is not None:
            await self._server.wait_for_termination()


def _read(path: str | None) -> bytes:
    if path is None:
        raise ValueError("missing path")
    with open(path, "rb") as f:
        return f.read()
