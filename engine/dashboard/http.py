"""The dashboard's HTTP server: static assets, a JSON API, server-sent events.

It runs in the `groupsense serve` process beside the gRPC server and reads the same
`LiveEngine` snapshots as `Subscribe` does (`LiveEngine.subscribe`), so the browser and
gRPC subscribers see the same figures. Plain asyncio and the standard library: the
dashboard needs GET, a small POST and one long-lived text/event-stream response, which
do not justify a web framework as a runtime dependency.

Sign-in: the facilitator pastes their gs1 token once; it is checked like a gRPC bearer
token and then travels in an HttpOnly, SameSite=Strict cookie (EventSource cannot send
headers), never in a URL, so it cannot end up in access logs or browser history. API
clients may send `Authorization: Bearer <token>` instead. With no secret configured
(loopback-only use) nobody needs to sign in, as with gRPC.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import ssl
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from http import HTTPStatus
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from engine.auth import AuthError, Claims, ForbiddenError, TokenRole, verify_token
from engine.config import ServerConfig
from engine.dashboard.report import render_report
from engine.dashboard.view_json import session_json
from engine.errors import GroupsenseError
from engine.live import LiveEngine, NotFoundError
from engine.types import SessionView

log = logging.getLogger("groupsense.dashboard")

STATIC = Path(__file__).resolve().parent / "static"
COOKIE = "gs_token"
MAX_HEAD = 16 * 1024
MAX_BODY = 16 * 1024
IDLE_S = 30.0  # a keep-alive connection with no request for this long is closed
MAX_ACKS = 10_000  # acknowledged alert ids kept per facilitator and session
MAX_RUNS = 20_000  # speaking runs kept per participant (a 90-minute session has ~1000)
WATCH_S = 0.25  # how often new sessions are looked for
HISTORY_MS = 10 * 60 * 1000  # what a browser that (re)connects gets of the timeline
_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
}
_CSP_APP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
_CSP_REPORT = (  # the report is one self-contained file: inline style, inline SVG, no script
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'none'"
)


class HttpError(Exception):
    def __init__(self, status: HTTPStatus, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True, slots=True)
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes = b""

    def cookie(self, name: str) -> str | None:
        for part in self.headers.get("cookie", "").split(";"):
            key, _, value = part.strip().partition("=")
            if key == name and value:
                return value
        return None


@dataclass(frozen=True, slots=True)
class Viewer:
    """Who is asking: their claims (None when auth is off) and a key for their acks."""

    claims: Claims | None
    key: str

    def may_access(self, session_id: str) -> bool:
        return self.claims is None or self.claims.may_access(session_id)


@dataclass(slots=True)
class _AckBook:
    """Alerts acknowledged, per session and facilitator; alerts the dashboard has shown."""

    acked: dict[str, dict[str, set[str]]] = field(default_factory=dict)
    seen: dict[str, set[str]] = field(default_factory=dict)

    def is_acked(self, session_id: str, who: str, alert_id: str) -> bool:
        return alert_id in self.acked.get(session_id, {}).get(who, set())

    def ack(self, session_id: str, who: str, alert_id: str) -> None:
        ids = self.acked.setdefault(session_id, {}).setdefault(who, set())
        if len(ids) >= MAX_ACKS:
            raise HttpError(HTTPStatus.TOO_MANY_REQUESTS, "too many acknowledged alerts")
        ids.add(alert_id)

    def saw(self, session_id: str, ids: Iterable[str]) -> None:
        seen = self.seen.setdefault(session_id, set())
        if len(seen) < MAX_ACKS:
            seen.update(ids)

    def forget_except(self, keep: set[str]) -> None:
        for book in (self.acked, self.seen):
            for sid in [s for s in book if s not in keep]:
                del book[sid]


@dataclass(slots=True)
class _Timeline:
    """Who spoke when, as the dashboard saw it: runs of each participant's speaking
    flag, in session ms. Lets a browser that connects mid-session draw the last ten
    minutes at once, and the report of a live session plot participation over time.
    Figures only, kept in memory while the engine keeps the session."""

    runs: dict[str, list[list[int]]] = field(default_factory=dict)
    speaking: set[str] = field(default_factory=set)
    prev_ms: int = -1

    def update(self, view: SessionView) -> None:
        now = view.session_ms
        prev = now if self.prev_ms < 0 else min(self.prev_ms, now)
        for p in view.participants:
            pid = p.participant_id
            runs = self.runs.setdefault(pid, [])
            if p.speaking and pid in self.speaking:
                runs[-1][1] = now
            elif p.speaking:
                runs.append([prev, now])
                self.speaking.add(pid)
            elif pid in self.speaking:
                runs[-1][1] = now
                self.speaking.discard(pid)
            if len(runs) > MAX_RUNS:
                del runs[0]
        self.prev_ms = now

    def recent(self, window_ms: int = HISTORY_MS) -> dict[str, Any]:
        start = self.prev_ms - window_ms
        return {
            "session_ms": self.prev_ms,
            "runs": {pid: [r for r in runs if r[1] >= start] for pid, runs in self.runs.items()},
            "speaking": sorted(self.speaking),
        }

    def segments_s(self) -> dict[str, list[list[float]]]:
        return {pid: [[a / 1000, b / 1000] for a, b in runs] for pid, runs in self.runs.items()}


def _alert_ids(data: dict[str, Any]) -> list[str]:
    alerts = data.get("alerts")
    if not isinstance(alerts, list):
        return []
    return [str(a["id"]) for a in alerts if isinstance(a, dict) and "id" in a]


def tls_context(config: ServerConfig) -> ssl.SSLContext | None:
    """The gRPC side's certificate and key. Client certificates are not asked for: a
    facilitator's browser authenticates with its token (mutual TLS is for ingest)."""
    if not config.tls:
        return None
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(str(config.tls_cert), str(config.tls_key))
    return ctx


class DashboardServer:
    """Serves the dashboard for one LiveEngine. `await start()`, then `await stop()`."""

    def __init__(
        self,
        engine: LiveEngine,
        secret: bytes | None,
        config: ServerConfig,
        *,
        port: int = 8080,
        host: str | None = None,
    ) -> None:
        if not 0 <= port <= 65535:
            raise ValueError(f"http port must be 0-65535, got {port}")
        self.engine = engine
        self.secret = secret
        self.config = config
        self.host = host or config.host
        self.port = port
        self.tls = config.tls
        self._acks = _AckBook()
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._timelines: dict[str, _Timeline] = {}
        self._recorders: dict[str, asyncio.Task[None]] = {}
        self._watcher: asyncio.Task[None] | None = None
        self._static = {
            p.name: (p.read_bytes(), _TYPES[p.suffix])
            for p in STATIC.iterdir()
            if p.suffix in _TYPES
        }

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host and not self.host.startswith("[") else self.host
        return f"{'https' if self.tls else 'http'}://{host}:{self.port}/"

    async def start(self) -> int:
        self._server = await asyncio.start_server(
            self._connection,
            self.host.strip("[]"),
            self.port,
            ssl=tls_context(self.config),
            limit=MAX_HEAD,
            reuse_address=True,
        )
        self.port = int(self._server.sockets[0].getsockname()[1])
        self._watcher = asyncio.create_task(self._watch(), name="groupsense-dashboard-watch")
        log.info("dashboard on %s", self.url)
        return self.port

    async def _watch(self) -> None:
        """Record every session's timeline from its first snapshots, viewers or not."""
        while True:
            for sid in self.engine.sessions:
                if sid not in self._recorders:
                    self._timelines[sid] = _Timeline()
                    self._recorders[sid] = asyncio.create_task(self._record(sid))
            known = set(self.engine.sessions) | set(self.engine.summaries)
            for sid in [s for s in self._timelines if s not in known]:
                del self._timelines[sid]
                self._recorders.pop(sid).cancel()
            await asyncio.sleep(WATCH_S)

    async def _record(self, session_id: str) -> None:
        with contextlib.suppress(GroupsenseError):
            async for view in self.engine.subscribe(session_id):
                self._timelines[session_id].update(view)

    async def stop(self) -> None:
        if self._server is None:
            return
        self._server.close()
        background = [*self._recorders.values(), *([self._watcher] if self._watcher else [])]
        for task in [*self._tasks, *background]:
            task.cancel()
        await asyncio.gather(*self._tasks, *background, return_exceptions=True)
        self._recorders.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._server.wait_closed(), 2)
        self._server = None

    # -- connections -----------------------------------------------------------------
    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        try:
            while True:
                try:
                    req = await self._read(reader)
                except HttpError as exc:
                    await self._send_json(writer, exc.status, {"error": exc.message}, close=True)
                    return
                if req is None:
                    return
                keep = await self._dispatch(req, writer)
                if not keep:
                    return
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError):
            return
        except asyncio.CancelledError:
            pass
        finally:
            if task is not None:
                self._tasks.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(writer.wait_closed(), 1)

    async def _read(self, reader: asyncio.StreamReader) -> Request | None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), IDLE_S)
        except (asyncio.IncompleteReadError, TimeoutError, ConnectionError):
            return None
        except asyncio.LimitOverrunError:
            raise HttpError(
                HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, "headers too large"
            ) from None
        try:
            lines = head.decode("latin-1").split("\r\n")
            method, target, version = lines[0].split(" ")
        except ValueError:
            raise HttpError(HTTPStatus.BAD_REQUEST, "malformed request line") from None
        if not version.startswith("HTTP/1."):
            raise HttpError(HTTPStatus.HTTP_VERSION_NOT_SUPPORTED, "HTTP/1.x only")
        headers: dict[str, str] = {}
        for line in lines[1:]:
            if not line:
                continue
            name, sep, value = line.partition(":")
            if not sep:
                raise HttpError(HTTPStatus.BAD_REQUEST, "malformed header")
            headers[name.strip().lower()] = value.strip()
        if "transfer-encoding" in headers:
            raise HttpError(HTTPStatus.NOT_IMPLEMENTED, "chunked request bodies are not supported")
        try:
            length = int(headers.get("content-length", "0"))
        except ValueError:
            raise HttpError(HTTPStatus.BAD_REQUEST, "bad Content-Length") from None
        if not 0 <= length <= MAX_BODY:
            raise HttpError(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"body over {MAX_BODY} bytes")
        body = await asyncio.wait_for(reader.readexactly(length), 10) if length else b""
        path = unquote(urlsplit(target).path)
        return Request(method.upper(), path, headers, body)

    # -- responses ---------------------------------------------------------------------
    def _base_headers(self, content_type: str, csp: str = _CSP_APP) -> list[tuple[str, str]]:
        headers = [
            ("Content-Type", content_type),
            ("Cache-Control", "no-store"),
            ("X-Content-Type-Options", "nosniff"),
            ("Referrer-Policy", "no-referrer"),
            ("Content-Security-Policy", csp),
        ]
        if self.tls:
            headers.append(("Strict-Transport-Security", "max-age=31536000"))
        return headers

    async def _send(
        self,
        writer: asyncio.StreamWriter,
        status: HTTPStatus,
        body: bytes,
        headers: list[tuple[str, str]],
        *,
        close: bool = False,
    ) -> None:
        lines = [f"HTTP/1.1 {status.value} {status.phrase}"]
        lines += [f"{k}: {v}" for k, v in headers]
        lines.append(f"Content-Length: {len(body)}")
        lines.append(f"Connection: {'close' if close else 'keep-alive'}")
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
        await writer.drain()

    async def _send_json(
        self,
        writer: asyncio.StreamWriter,
        status: HTTPStatus,
        data: Any,
        extra: list[tuple[str, str]] | None = None,
        *,
        close: bool = False,
    ) -> None:
        body = json.dumps(data, separators=(",", ":")).encode()
        headers = self._base_headers("application/json") + (extra or [])
        await self._send(writer, status, body, headers, close=close)

    # -- routing -------------------------------------------------------------------------
    async def _dispatch(self, req: Request, writer: asyncio.StreamWriter) -> bool:
        """Answer one request; False when the connection must close afterwards."""
        close = req.headers.get("connection", "").lower() == "close"
        try:
            parts = [p for p in req.path.split("/") if p]
            if req.method == "GET":
                if not parts or parts == ["index.html"]:
                    await self._static_file(writer, "index.html", close)
                elif parts[0] == "static" and len(parts) == 2:
                    await self._static_file(writer, parts[1], close)
                elif parts == ["api", "me"]:
                    await self._send_json(writer, HTTPStatus.OK, self._me(req), close=close)
                elif parts == ["api", "sessions"]:
                    data = {"sessions": self._sessions(self._viewer(req))}
                    await self._send_json(writer, HTTPStatus.OK, data, close=close)
                elif len(parts) == 3 and parts[:2] == ["api", "sessions"]:
                    view = await self._view(self._viewer(req), parts[2])
                    data = self._mark(session_json(view), self._viewer(req))
                    await self._send_json(writer, HTTPStatus.OK, data, close=close)
                elif len(parts) == 4 and parts[:2] == ["api", "sessions"] and parts[3] == "events":
                    await self._events(req, writer, parts[2])
                    return False
                elif len(parts) == 2 and parts[0] == "report":
                    await self._report(req, writer, parts[1], close)
                else:
                    raise HttpError(HTTPStatus.NOT_FOUND, f"no such page {req.path}")
            elif req.method == "POST":
                self._check_same_origin(req)
                if parts == ["api", "login"]:
                    await self._login(req, writer, close)
                elif parts == ["api", "logout"]:
                    await self._send_json(
                        writer, HTTPStatus.OK, {"signed_in": False}, [self._cookie("", 0)]
                    )
                elif (
                    len(parts) == 6
                    and parts[:2] == ["api", "sessions"]
                    and parts[3] == "alerts"
                    and parts[5] == "ack"
                ):
                    await self._ack(req, writer, parts[2], parts[4], close)
                else:
                    raise HttpError(HTTPStatus.NOT_FOUND, f"no such endpoint {req.path}")
            else:
                raise HttpError(HTTPStatus.METHOD_NOT_ALLOWED, f"{req.method} is not supported")
        except HttpError as exc:
            await self._send_json(writer, exc.status, {"error": exc.message}, close=close)
        except (AuthError, ForbiddenError) as exc:
            status = HTTPStatus.UNAUTHORIZED if isinstance(exc, AuthError) else HTTPStatus.FORBIDDEN
            await self._send_json(writer, status, {"error": str(exc)}, close=close)
        except GroupsenseError as exc:  # NotFoundError and friends from the engine
            status = HTTPStatus.NOT_FOUND if exc.grpc_status == "NOT_FOUND" else HTTPStatus.CONFLICT
            await self._send_json(writer, status, {"error": str(exc)}, close=close)
        return not close

    async def _static_file(self, writer: asyncio.StreamWriter, name: str, close: bool) -> None:
        if name not in self._static:
            raise HttpError(HTTPStatus.NOT_FOUND, f"no such file {name}")
        body, ctype = self._static[name]
        headers = self._base_headers(ctype)
        headers[1] = ("Cache-Control", "no-cache")
        await self._send(writer, HTTPStatus.OK, body, headers, close=close)

    # -- auth ----------------------------------------------------------------------------
    def _token(self, req: Request) -> str | None:
        auth = req.headers.get("authorization")
        if auth:
            scheme, _, token = auth.partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                raise AuthError("authorization header must be 'Bearer <token>'")
            return token.strip()
        return req.cookie(COOKIE)

    def _claims(self, token: str) -> Claims:
        if self.secret is None:
            raise AuthError("this server has no token secret")
        claims = verify_token(self.secret, token)
        if claims.role is not TokenRole.FACILITATOR:
            raise ForbiddenError(
                f"a {claims.role.value} token cannot open the dashboard; use a facilitator token"
            )
        return claims

    def _viewer(self, req: Request) -> Viewer:
        if self.secret is None:
            return Viewer(None, "local")
        token = self._token(req)
        if token is None:
            raise AuthError("sign in with a facilitator token")
        claims = self._claims(token)
        key = claims.subject or "token:" + hashlib.sha256(token.encode()).hexdigest()[:16]
        return Viewer(claims, key)

    def _cookie(self, token: str, max_age: int) -> tuple[str, str]:
        attrs = f"{COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}"
        return ("Set-Cookie", attrs + ("; Secure" if self.tls else ""))

    def _check_same_origin(self, req: Request) -> None:
        """POSTs change state with cookie credentials: refuse cross-site requests. A JSON
        content type also forces a CORS preflight, which we never grant."""
        if req.headers.get("sec-fetch-site", "same-origin") not in ("same-origin", "none"):
            raise HttpError(HTTPStatus.FORBIDDEN, "cross-site request refused")
        origin = req.headers.get("origin")
        host = req.headers.get("host", "")
        if origin and urlsplit(origin).netloc != host:
            raise HttpError(HTTPStatus.FORBIDDEN, "cross-origin request refused")
        if not req.headers.get("content-type", "").startswith("application/json"):
            raise HttpError(HTTPStatus.UNSUPPORTED_MEDIA_TYPE, "send application/json")

    async def _login(self, req: Request, writer: asyncio.StreamWriter, close: bool) -> None:
        try:
            body = json.loads(req.body or b"{}")
            token = str(body["token"]).strip()
        except (ValueError, KeyError, TypeError):
            raise HttpError(HTTPStatus.BAD_REQUEST, 'send {"token": "gs1..."}') from None
        if self.secret is None:
            await self._send_json(writer, HTTPStatus.OK, self._me(req), close=close)
            return
        claims = self._claims(token)
        max_age = max(int(claims.expires_at - time.time()), 1)
        data = {
            "auth": True,
            "signed_in": True,
            "subject": claims.subject,
            "sessions": list(claims.sessions),
            "expires_at": claims.expires_at,
        }
        log.info("facilitator %s signed in to the dashboard", claims.subject or "(no subject)")
        await self._send_json(
            writer, HTTPStatus.OK, data, [self._cookie(token, max_age)], close=close
        )

    def _me(self, req: Request) -> dict[str, Any]:
        if self.secret is None:
            return {"auth": False, "signed_in": True, "subject": "", "sessions": ["*"]}
        v = self._viewer(req)
        if v.claims is None:  # unreachable with a secret; keeps the types honest
            raise AuthError("sign in with a facilitator token")
        return {
            "auth": True,
            "signed_in": True,
            "subject": v.claims.subject,
            "sessions": list(v.claims.sessions),
            "expires_at": v.claims.expires_at,
        }

    # -- sessions --------------------------------------------------------------------------
    def _sessions(self, viewer: Viewer) -> list[dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        # Read the sessions' own counters: building views (list_sessions) here would
        # advance the engine's alert state outside its tick.
        for sid, s in self.engine.sessions.items():
            if viewer.may_access(sid):
                out[sid] = {
                    "session_id": sid,
                    "status": "live",
                    "participants": len(s.participants),
                    "session_ms": s.now_hop() * 10,
                }
        for sid, v in self.engine.summaries.items():
            if sid not in out and viewer.may_access(sid):
                out[sid] = _session_info(v, "ended")
        if viewer.claims is not None:
            for sid in viewer.claims.sessions:
                if sid != "*" and sid not in out:
                    out[sid] = {"session_id": sid, "status": "waiting", "participants": 0}
        self._acks.forget_except(set(self.engine.sessions) | set(self.engine.summaries))
        return list(out.values())

    async def _view(self, viewer: Viewer, session_id: str) -> SessionView:
        if not viewer.may_access(session_id):
            raise ForbiddenError(f"this token does not grant access to session {session_id!r}")
        try:
            return await self.engine.view(session_id)
        except NotFoundError:
            raise HttpError(HTTPStatus.NOT_FOUND, f"no session {session_id!r} yet") from None

    def _mark(self, data: dict[str, Any], viewer: Viewer) -> dict[str, Any]:
        """Note which alerts this facilitator has acknowledged."""
        sid = str(data.get("session_id", ""))
        ids = _alert_ids(data)
        self._acks.saw(sid, ids)
        for a in data.get("alerts") or []:
            if isinstance(a, dict) and "id" in a:
                a["acknowledged"] = self._acks.is_acked(sid, viewer.key, str(a["id"]))
        return data

    async def _events(self, req: Request, writer: asyncio.StreamWriter, session_id: str) -> None:
        viewer = self._viewer(req)
        if not viewer.may_access(session_id):
            raise ForbiddenError(f"this token does not grant access to session {session_id!r}")
        stream = self.engine.subscribe(session_id)
        try:
            first = await anext(stream)  # NotFoundError before any byte of the stream
        except StopAsyncIteration:
            raise HttpError(HTTPStatus.NOT_FOUND, f"no session {session_id!r}") from None
        headers = self._base_headers("text/event-stream")
        headers.append(("X-Accel-Buffering", "no"))
        head = ["HTTP/1.1 200 OK", *(f"{k}: {v}" for k, v in headers), "Connection: close"]
        writer.write(("\r\n".join(head) + "\r\n\r\nretry: 2000\n\n").encode("latin-1"))
        timeline = self._timelines.get(session_id)
        if timeline is not None and timeline.prev_ms >= 0:
            history = json.dumps(timeline.recent(), separators=(",", ":"))
            writer.write(f"event: history\ndata: {history}\n\n".encode())
        view: SessionView | None = first
        try:
            while view is not None:
                if viewer.claims is not None and time.time() >= viewer.claims.expires_at:
                    writer.write(b"event: expired\ndata: {}\n\n")
                    await writer.drain()
                    return
                data = json.dumps(self._mark(session_json(view), viewer), separators=(",", ":"))
                writer.write(f"event: snapshot\ndata: {data}\n\n".encode())
                await writer.drain()
                if view.final:
                    writer.write(b"event: end\ndata: {}\n\n")
                    await writer.drain()
                    return
                view = await anext(stream, None)
        finally:
            await stream.aclose()  # type: ignore[attr-defined]

    async def _ack(
        self,
        req: Request,
        writer: asyncio.StreamWriter,
        session_id: str,
        alert_id: str,
        close: bool,
    ) -> None:
        viewer = self._viewer(req)
        if not viewer.may_access(session_id):
            raise ForbiddenError(f"this token does not grant access to session {session_id!r}")
        if alert_id not in self._acks.seen.get(session_id, set()):
            current = _alert_ids(session_json(await self._view(viewer, session_id)))
            if alert_id not in current:
                raise HttpError(
                    HTTPStatus.NOT_FOUND, f"no alert {alert_id!r} in session {session_id!r}"
                )
        self._acks.ack(session_id, viewer.key, alert_id)
        data = {"session_id": session_id, "id": alert_id, "acknowledged": True}
        await self._send_json(writer, HTTPStatus.OK, data, close=close)

    async def _report(
        self, req: Request, writer: asyncio.StreamWriter, session_id: str, close: bool
    ) -> None:
        view = await self._view(self._viewer(req), session_id)
        data = session_json(view)
        timeline = self._timelines.get(session_id)
        if timeline is not None:  # who spoke when, for participation over time
            segments = timeline.segments_s()
            for p in data["participants"]:
                p.setdefault("segments", segments.get(p["participant_id"], []))
        html = render_report(data)
        headers = self._base_headers("text/html; charset=utf-8", _CSP_REPORT)
        await self._send(writer, HTTPStatus.OK, html.encode(), headers, close=close)


def _session_info(v: SessionView, status: str) -> dict[str, Any]:
    return {
        "session_id": v.session_id,
        "status": status,
        "participants": len(v.participants),
        "session_ms": v.session_ms,
    }
