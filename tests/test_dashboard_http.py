"""The dashboard's HTTP server without a browser: TLS with the gRPC side's certificate,
sign-in cookies, refusals, request limits, the JSON carrying every snapshot field, and
`groupsense serve --http-port` in its own process."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import signal
import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from engine.auth import create_token, new_secret
from engine.config import EngineConfig, ServerConfig
from engine.dashboard.http import DashboardServer
from engine.dashboard.report import render_report
from engine.dashboard.view_json import session_json
from engine.server import Server
from engine.types import ParticipantView, SessionView
from tests.live_util import CLI, REPO, cli_env, config, end_session, frames, free_port, talk

S = "room-1"


async def http(
    port: int,
    raw: bytes,
    *,
    tls: ssl.SSLContext | None = None,
    until_close: bool = True,
) -> tuple[int, dict[str, str], bytes]:
    """Send raw bytes, read one response (status, headers, body)."""
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", port, ssl=tls, server_hostname="localhost" if tls else None
    )
    try:
        writer.write(raw)
        await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ")[1])
        headers = {}
        for line in lines[1:]:
            if ":" in line:
                k, _, v = line.partition(":")
                headers[k.strip().lower()] = v.strip()
        body = await asyncio.wait_for(reader.readexactly(int(headers.get("content-length", 0))), 10)
        return status, headers, body
    finally:
        writer.close()


def request(
    method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None
) -> bytes:
    h = {"Host": "127.0.0.1", "Connection": "close", **(headers or {})}
    if body:
        h["Content-Length"] = str(len(body))
    lines = [f"{method} {path} HTTP/1.1", *(f"{k}: {v}" for k, v in h.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


@pytest.fixture
def secret_file(tmp_path: Path) -> Path:
    f = tmp_path / "secret"
    f.write_text(new_secret())
    return f


@pytest.fixture
async def served(secret_file: Path) -> AsyncIterator[tuple[Server, DashboardServer, bytes]]:
    cfg = EngineConfig(server=ServerConfig(port=0, secret_file=str(secret_file)))
    server = Server(cfg)
    await server.start()
    secret = cfg.server.read_secret()
    assert secret is not None
    dash = DashboardServer(server.engine, secret, cfg.server, port=0)
    await dash.start()
    yield server, dash, secret
    await server.stop()
    await dash.stop()


async def test_sign_in_sets_a_strict_httponly_cookie_and_refuses_others(
    served: tuple[Server, DashboardServer, bytes],
) -> None:
    _, dash, secret = served
    good = create_token(secret, role="facilitator", sessions=[S], ttl_s=600, subject="a")
    login = request(
        "POST", "/api/login", json.dumps({"token": good}).encode(),
        {"Content-Type": "application/json"},
    )  # fmt: skip
    status, headers, body = await http(dash.port, login)
    assert status == 200 and json.loads(body)["sessions"] == [S]
    cookie = headers["set-cookie"]
    assert cookie.startswith(f"gs_token={good};") and "HttpOnly" in cookie
    assert "SameSite=Strict" in cookie and "Secure" not in cookie  # plaintext loopback
    assert 590 <= int(cookie.split("Max-Age=")[1].split(";")[0]) <= 600

    # With the cookie the API answers; a waiting session is listed, nothing else.
    status, _, body = await http(
        dash.port, request("GET", "/api/sessions", headers={"Cookie": f"gs_token={good}"})
    )
    assert status == 200
    assert json.loads(body)["sessions"] == [
        {"session_id": S, "status": "waiting", "participants": 0}
    ]
    # Bearer works too; a forged, expired or ingest token does not.
    expired = create_token(secret, role="facilitator", sessions=[S], ttl_s=1, now=0)
    ingest = create_token(secret, role="ingest", sessions=["*"], ttl_s=600)
    for token, code, words in (
        (good[:-2] + "xx", 401, "does not verify"),
        (expired, 401, "expired"),
        (ingest, 403, "facilitator token"),
    ):
        status, _, body = await http(
            dash.port, request("GET", "/api/me", headers={"Authorization": f"Bearer {token}"})
        )
        assert status == code and words in json.loads(body)["error"], body
    status, _, _ = await http(dash.port, request("GET", "/api/me"))
    assert status == 401
    # The page itself is public (it only asks for a token), with a strict CSP.
    status, headers, body = await http(dash.port, request("GET", "/"))
    assert status == 200 and b"Facilitator token" in body
    assert "script-src 'self'" in headers["content-security-policy"]
    assert headers["x-content-type-options"] == "nosniff"


async def test_state_changing_requests_must_be_same_origin_json(
    served: tuple[Server, DashboardServer, bytes],
) -> None:
    _, dash, secret = served
    good = create_token(secret, role="facilitator", sessions=[S], ttl_s=600)
    body = json.dumps({"token": good}).encode()
    for headers, code in (
        ({"Content-Type": "application/x-www-form-urlencoded"}, 415),
        ({"Content-Type": "application/json", "Origin": "http://evil.example"}, 403),
        ({"Content-Type": "application/json", "Sec-Fetch-Site": "cross-site"}, 403),
    ):
        status, resp, _ = await http(dash.port, request("POST", "/api/login", body, headers))
        assert status == code and "set-cookie" not in resp


async def test_malformed_and_oversized_requests(
    served: tuple[Server, DashboardServer, bytes],
) -> None:
    _, dash, _ = served
    status, _, _ = await http(dash.port, b"NONSENSE\r\n\r\n")
    assert status == 400
    status, _, _ = await http(dash.port, b"GET / HTTP/1.1\r\nX: " + b"a" * 20_000 + b"\r\n\r\n")
    assert status == 431
    big = request("POST", "/api/login", headers={"Content-Length": "999999"})
    status, _, _ = await http(dash.port, big)
    assert status == 413
    status, _, _ = await http(dash.port, request("GET", "/static/../../etc/passwd"))
    assert status == 404
    status, _, _ = await http(dash.port, request("DELETE", "/api/sessions"))
    assert status == 405


async def test_keep_alive_serves_several_requests_on_one_connection(
    served: tuple[Server, DashboardServer, bytes],
) -> None:
    _, dash, _ = served
    reader, writer = await asyncio.open_connection("127.0.0.1", dash.port)
    try:
        for name in ("app.js", "app.css"):
            writer.write(f"GET /static/{name} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            assert head.startswith(b"HTTP/1.1 200")
            length = int(head.split(b"Content-Length: ")[1].split(b"\r\n")[0])
            await reader.readexactly(length)
    finally:
        writer.close()


async def test_dashboard_uses_the_grpc_certificate(secret_file: Path, tmp_path: Path) -> None:
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    cert = ca.issue_cert("localhost", "127.0.0.1")
    cert_pem, key_pem = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.private_key_pem.write_to_path(str(key_pem))
    cert.cert_chain_pems[0].write_to_path(str(cert_pem))
    cfg = ServerConfig(
        port=0, tls_cert=str(cert_pem), tls_key=str(key_pem), secret_file=str(secret_file)
    )
    server = Server(EngineConfig(server=cfg))
    await server.start()
    dash = DashboardServer(server.engine, cfg.read_secret(), cfg, port=0)
    await dash.start()
    try:
        assert dash.url.startswith("https://")
        client = ssl.create_default_context()
        ca.configure_trust(client)
        status, headers, _ = await http(dash.port, request("GET", "/"), tls=client)
        assert status == 200 and "strict-transport-security" in headers
        secret = cfg.read_secret()
        assert secret is not None
        token = create_token(secret, role="facilitator", sessions=[S], ttl_s=60)
        login = request(
            "POST", "/api/login", json.dumps({"token": token}).encode(),
            {"Content-Type": "application/json"},
        )  # fmt: skip
        status, headers, _ = await http(dash.port, login, tls=client)
        assert status == 200 and "; Secure" in headers["set-cookie"]
        with pytest.raises((ssl.SSLError, ConnectionError, asyncio.IncompleteReadError)):
            await http(dash.port, request("GET", "/"))  # plaintext is not served
    finally:
        await server.stop()
        await dash.stop()


def test_session_json_carries_every_field_and_new_ones() -> None:
    """The conversion is generic: a field added to the view reaches the browser unedited."""

    @dataclasses.dataclass(kw_only=True, slots=True)
    class FutureView(SessionView):
        novelty: tuple[dict[str, Any], ...] = ()

    p = ParticipantView(
        participant_id="p-0123456789", role="participant", connected=True, speaking=False,
        speaking_s=1.5, share=float("nan"), since_last_spoke_s=-1.0, unknown_s=0.0,
    )  # fmt: skip
    view = FutureView(session_id=S, seq=3, session_ms=1200, participants=(p,), novelty=({"x": 1},))
    data = session_json(view)
    names = {f.name for f in dataclasses.fields(FutureView)}
    assert names <= set(data) and data["novelty"] == [{"x": 1}]
    assert set(data["participants"][0]) == {f.name for f in dataclasses.fields(p)}
    assert data["participants"][0]["share"] is None  # NaN is not JSON
    json.dumps(data, allow_nan=False)
    html = render_report(data)  # a summary without segments still makes a report
    assert "Shares of talk" in html and "no speech segments" in html


async def test_serve_cli_serves_the_dashboard(tmp_path: Path) -> None:
    """`groupsense serve --http-port N`: the same process, the same engine as gRPC."""
    import grpc

    from tests.live_util import Stream

    port, http_port = free_port(), free_port()
    proc = await asyncio.create_subprocess_exec(
        *CLI, "serve", "--port", str(port), "--http-port", str(http_port),
        cwd=REPO, env=cli_env(), stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert proc.stderr is not None
    try:
        lines = []
        while not any("serving on" in x for x in lines):
            line = await asyncio.wait_for(proc.stderr.readline(), 60)
            assert line, "".join(lines)
            lines.append(line.decode())
        assert any(f"dashboard on http://127.0.0.1:{http_port}/" in x for x in lines), lines
        ch = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
        s = Stream(ch)
        assert await s.send(config(S, "someone"), *frames(talk(("v", 1.0), ("q", 0.5))))
        await s.pid()
        status, _, body = await http(http_port, request("GET", "/api/sessions"))
        assert status == 200  # no secret: local use, no sign-in (as with gRPC)
        assert [x["session_id"] for x in json.loads(body)["sessions"]] == [S]
        status, _, body = await http(http_port, request("GET", f"/api/sessions/{S}"))
        assert json.loads(body)["participants"][0]["participant_id"] == await s.pid()
        await s.finish()
        await end_session(ch, S)
        await ch.close()
        # `groupsense report S` asks the running server for the ended session's summary.
        out = tmp_path / "report.html"
        rep = await asyncio.create_subprocess_exec(
            *CLI, "report", S, "--out", str(out), "--server", f"127.0.0.1:{port}",
            cwd=REPO, env=cli_env(), stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        _, err = await asyncio.wait_for(rep.communicate(), 60)
        assert rep.returncode == 0, err.decode()
        html = out.read_text()
        assert f"session {S}" in html and "100%" in html  # one speaker: all the talk
        assert "no speech segments" in html
        rep = await asyncio.create_subprocess_exec(
            *CLI, "report", "never-was", "--out", str(out), "--server", f"127.0.0.1:{port}",
            cwd=REPO, env=cli_env(), stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        _, err = await asyncio.wait_for(rep.communicate(), 60)
        assert rep.returncode == 1 and "NOT_FOUND" in err.decode()
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            await asyncio.wait_for(proc.wait(), 30)
        finally:
            if proc.returncode is None:
                proc.kill()
    assert proc.returncode == 0
