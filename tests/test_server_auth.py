"""Who may do what, against a real server on loopback: bearer tokens (missing, expired,
forged, wrong role, wrong session), `groupsense token create`, TLS and mutual TLS, and
the refusal to listen beyond loopback without TLS or tokens."""

from __future__ import annotations

import argparse
import base64
import json
import subprocess
import time
from pathlib import Path

import grpc
import pytest
import trustme
from grpc_health.v1 import health_pb2, health_pb2_grpc
from live_util import (
    CLI,
    REPO,
    Stream,
    Subscriber,
    by_id,
    cli_env,
    config,
    frame,
    quiet,
    stream_all,
    talk,
)

from cli.client import open_channel
from engine.auth import create_token, new_secret, verify_token
from engine.config import ServerConfig
from groupsense.v1 import groupsense_pb2 as pb
from groupsense.v1 import groupsense_pb2_grpc as pb_grpc

pytestmark = pytest.mark.timeout(60)

Code = grpc.StatusCode
A, B = "room-a", "room-b"
PCM = talk(("q", 0.2), ("v", 0.8), ("q", 0.2))
QUIET_FRAME = quiet(0.02).tobytes()
METHODS = ("StreamAudio", "Subscribe", "ListSessions", "EndSession", "GetSummary")


@pytest.fixture
def secret_file(tmp_path: Path) -> Path:
    path = tmp_path / "secret"
    path.write_text(new_secret() + "\n")
    assert len(path.read_text().strip()) == 43
    return path


def md(token: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),)


def token(secret_file: Path, role: str, *sessions: str, **kw: object) -> str:
    secret = secret_file.read_bytes().strip()
    return create_token(secret, role=role, sessions=sessions, ttl_s=3600, **kw)  # type: ignore[arg-type]


async def call(
    ch: grpc.aio.Channel, method: str, metadata: tuple[tuple[str, str], ...], session: str = A
) -> tuple[Code, str]:
    """Call `method` for `session`; (status, details). A call that is let through is
    reported as OK (for StreamAudio: once its config is acknowledged)."""
    if method == "StreamAudio":
        s = Stream(ch, metadata)
        await s.send(config(session, "probe"))
        await s._first.wait()
        if s.acks:
            await s.finish()
            return Code.OK, ""
        return await s.status()
    try:
        if method == "Subscribe":
            stream = pb_grpc.SignalServiceStub(ch).Subscribe(
                pb.SubscribeRequest(session_id=session), metadata=metadata, timeout=10
            )
            await stream.read()
            stream.cancel()
        else:
            stub = pb_grpc.SessionServiceStub(ch)
            request = {
                "ListSessions": pb.ListSessionsRequest(),
                "EndSession": pb.EndSessionRequest(session_id=session),
                "GetSummary": pb.GetSummaryRequest(session_id=session),
            }[method]
            await getattr(stub, method)(request, metadata=metadata, timeout=10)
    except grpc.aio.AioRpcError as exc:
        return exc.code(), exc.details() or ""
    return Code.OK, ""


def _edit_payload(tok: str, **changes: object) -> str:
    prefix, body, sig = tok.split(".")
    payload = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    payload.update(changes)
    raw = json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()
    return ".".join([prefix, base64.urlsafe_b64encode(raw).rstrip(b"=").decode(), sig])


@pytest.mark.parametrize("method", METHODS)
async def test_bad_credentials_are_unauthenticated(
    method: str, secret_file: Path, tmp_path: Path, start_server, channel_to
) -> None:
    server = await start_server(secret_file=str(secret_file))
    ch = channel_to(server)
    secret = secret_file.read_bytes().strip()
    role = "ingest" if method == "StreamAudio" else "facilitator"
    good = create_token(secret, role=role, sessions=[A], ttl_s=3600)
    other_secret = new_secret().encode()
    cases = {
        (): "missing bearer token (authorization metadata)",
        (("authorization", f"Basic {good}"),): "authorization header must be 'Bearer <token>'",
        md("not-a-token"): "malformed token",
        md(create_token(secret, role=role, sessions=[A], ttl_s=3600, now=time.time() - 7200)): (
            "token expired"
        ),
        md(create_token(other_secret, role=role, sessions=[A], ttl_s=3600)): (
            "token signature does not verify (forged, or another server's)"
        ),
        md(_edit_payload(good, sessions=["*"])): (
            "token signature does not verify (forged, or another server's)"
        ),
        md(_edit_payload(good, exp=int(time.time()) + 10**6)): (
            "token signature does not verify (forged, or another server's)"
        ),
    }
    for metadata, message in cases.items():
        assert await call(ch, method, metadata) == (Code.UNAUTHENTICATED, message), metadata
    # The same call with the genuine token is not refused for its credentials.
    code, details = await call(ch, method, md(good))
    assert code not in (Code.UNAUTHENTICATED, Code.PERMISSION_DENIED), (code, details)


async def test_roles_and_sessions_are_enforced(secret_file: Path, start_server, channel_to) -> None:
    server = await start_server(secret_file=str(secret_file))
    ch = channel_to(server)
    ingest = md(token(secret_file, "ingest", "*", subject="video-server"))
    for session in (A, B):
        await stream_all(ch, session, "ana", PCM, metadata=ingest)

    # An ingest token may only send audio.
    for method in ("Subscribe", "ListSessions", "EndSession", "GetSummary"):
        assert await call(ch, method, ingest) == (
            Code.PERMISSION_DENIED,
            f"an ingest token may not call {method}",
        )
    # A facilitator token may not send audio, nor touch sessions it does not name.
    fac_a = md(token(secret_file, "facilitator", A))
    assert await call(ch, "StreamAudio", fac_a) == (
        Code.PERMISSION_DENIED,
        "a facilitator token may not call StreamAudio",
    )
    for method in ("Subscribe", "EndSession", "GetSummary"):
        assert await call(ch, method, fac_a, session=B) == (
            Code.PERMISSION_DENIED,
            f"this token does not grant access to session {B!r}",
        ), method
    # An ingest token for A alone may not send to B.
    ingest_a = md(token(secret_file, "ingest", A))
    assert await call(ch, "StreamAudio", ingest_a, session=B) == (
        Code.PERMISSION_DENIED,
        f"this token does not grant access to session {B!r}",
    )
    # What A's facilitator may do: see A (only A), subscribe to it, end it.
    listed = await pb_grpc.SessionServiceStub(ch).ListSessions(
        pb.ListSessionsRequest(), metadata=fac_a
    )
    assert [s.session_id for s in listed.sessions] == [A]
    both = md(token(secret_file, "facilitator", A, B))
    listed = await pb_grpc.SessionServiceStub(ch).ListSessions(
        pb.ListSessionsRequest(), metadata=both
    )
    assert sorted(s.session_id for s in listed.sessions) == [A, B]
    sub = Subscriber(ch, A, fac_a)
    first = await sub.wait_for(lambda s: True)
    assert first.session_id == A and len(first.participants) == 1
    summary = await pb_grpc.SessionServiceStub(ch).EndSession(
        pb.EndSessionRequest(session_id=A), metadata=fac_a
    )
    assert (await sub.end())[-1].final
    assert by_id(summary)[first.participants[0].participant_id].speaking_s > 0.5
    # Health stays open to load balancers, without a token.
    got = await health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(service=""))
    assert got.status == health_pb2.HealthCheckResponse.SERVING


async def test_token_cli_issues_tokens_the_server_accepts(
    secret_file: Path, start_server, channel_to
) -> None:
    server = await start_server(secret_file=str(secret_file))
    ch = channel_to(server)
    r = subprocess.run(
        [*CLI, "token", "create", "--role", "facilitator", "--session", A, "--ttl", "2h",
         "--secret-file", str(secret_file)],
        capture_output=True, text=True, cwd=REPO, env=cli_env(), timeout=60,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    tok = r.stdout.strip()
    assert tok.startswith("gs1.") and "\n" not in tok
    claims = verify_token(secret_file.read_bytes().strip(), tok)
    assert claims.sessions == (A,)
    assert claims.expires_at - time.time() == pytest.approx(7200, abs=60)
    ingest = md(token(secret_file, "ingest", "*"))
    for session in (A, B):
        await stream_all(ch, session, "ana", PCM, metadata=ingest)
    assert (await call(ch, "Subscribe", md(tok), session=A))[0] == Code.OK
    assert await call(ch, "Subscribe", md(tok), session=B) == (
        Code.PERMISSION_DENIED,
        f"this token does not grant access to session {B!r}",
    )
    # A facilitator token for every session is refused at issue time.
    r = subprocess.run(
        [*CLI, "token", "create", "--role", "facilitator", "--session", "*",
         "--secret-file", str(secret_file)],
        capture_output=True, text=True, cwd=REPO, env=cli_env(), timeout=60,
    )  # fmt: skip
    assert r.returncode == 2 and r.stdout == ""
    assert "a facilitator token must name its sessions" in r.stderr


async def test_pseudonyms_are_keyed_by_the_secret(
    secret_file: Path, start_server, channel_to
) -> None:
    """With a secret, a participant keeps its pseudonym across server restarts (so a
    reconnect after a failover resumes it), and has another one in another session."""
    ingest = md(token(secret_file, "ingest", "*"))
    pids = []
    for _ in range(2):
        server = await start_server(secret_file=str(secret_file))
        ch = channel_to(server)
        s = Stream(ch, ingest)
        assert await s.send(config(A, "ana"), frame(0, 0, QUIET_FRAME))
        t = Stream(ch, ingest)
        assert await t.send(config(B, "ana"), frame(0, 0, QUIET_FRAME))
        pids.append((await s.pid(), await t.pid()))
        await s.finish()
        await t.finish()
        await server.stop()
    assert pids[0] == pids[1]
    assert pids[0][0] != pids[0][1]


# -- TLS ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    d = tmp_path_factory.mktemp("pki")
    ca, client_ca, rogue = trustme.CA(), trustme.CA(), trustme.CA()
    server = ca.issue_cert("localhost", "127.0.0.1")
    client = client_ca.issue_cert("video-server.example")
    stranger = rogue.issue_cert("stranger.example")
    files = {
        "ca": ca.cert_pem,
        "client_ca": client_ca.cert_pem,
        "server_key": server.private_key_pem,
        "client_key": client.private_key_pem,
        "stranger_key": stranger.private_key_pem,
        "rogue_ca": rogue.cert_pem,
    }
    out = {}
    for name, blob in files.items():
        blob.write_to_path(str(d / f"{name}.pem"))
        out[name] = str(d / f"{name}.pem")
    for name, cert in (
        ("server_cert", server),
        ("client_cert", client),
        ("stranger_cert", stranger),
    ):
        path = d / f"{name}.pem"
        for blob in cert.cert_chain_pems:
            blob.write_to_path(str(path), append=True)
        out[name] = str(path)
    return out


def tls_args(port: int, ca: str | None, cert: str | None = None, key: str | None = None):  # type: ignore[no-untyped-def]
    return argparse.Namespace(
        server=f"127.0.0.1:{port}", token=None, tls_ca=ca, tls_cert=cert, tls_key=key
    )


async def list_sessions(ch: grpc.aio.Channel) -> tuple[Code, str]:
    try:
        await pb_grpc.SessionServiceStub(ch).ListSessions(pb.ListSessionsRequest(), timeout=5)
    except grpc.aio.AioRpcError as exc:
        return exc.code(), exc.details() or ""
    return Code.OK, ""


async def test_tls(pki: dict[str, str], start_server) -> None:
    server = await start_server(tls_cert=pki["server_cert"], tls_key=pki["server_key"])
    good = open_channel(tls_args(server.port, pki["ca"]))
    plain = grpc.aio.insecure_channel(f"127.0.0.1:{server.port}")
    wrong_ca = open_channel(tls_args(server.port, pki["rogue_ca"]))
    try:
        assert await list_sessions(good) == (Code.OK, "")
        s = await stream_all(good, A, "ana", PCM)  # and audio flows over it
        assert s.acks[-1].processed_ms == 1200
        assert (await list_sessions(plain))[0] == Code.UNAVAILABLE
        assert (await list_sessions(wrong_ca))[0] == Code.UNAVAILABLE
    finally:
        for ch in (good, plain, wrong_ca):
            await ch.close()


async def test_mutual_tls(pki: dict[str, str], start_server) -> None:
    server = await start_server(
        tls_cert=pki["server_cert"], tls_key=pki["server_key"], tls_client_ca=pki["client_ca"]
    )
    with_cert = open_channel(
        tls_args(server.port, pki["ca"], pki["client_cert"], pki["client_key"])
    )
    without = open_channel(tls_args(server.port, pki["ca"]))
    stranger = open_channel(
        tls_args(server.port, pki["ca"], pki["stranger_cert"], pki["stranger_key"])
    )
    try:
        assert await list_sessions(with_cert) == (Code.OK, "")
        assert (await list_sessions(without))[0] == Code.UNAVAILABLE
        assert (await list_sessions(stranger))[0] == Code.UNAVAILABLE  # cert from another CA
    finally:
        for ch in (with_cert, without, stranger):
            await ch.close()


# -- where the server may listen ---------------------------------------------------------
def test_serve_refuses_a_public_address_without_tls(secret_file: Path) -> None:
    r = subprocess.run(
        [*CLI, "serve", "--host", "0.0.0.0", "--port", "0"],
        capture_output=True, text=True, cwd=REPO, env=cli_env(), timeout=30,
    )  # fmt: skip
    assert r.returncode == 2
    assert "refusing to listen on 0.0.0.0 without TLS" in r.stderr
    assert "--insecure" in r.stderr  # says what to do about it
    assert "Traceback" not in r.stderr
    r = subprocess.run(
        [*CLI, "serve", "--host", "0.0.0.0", "--port", "0", "--insecure"],
        capture_output=True, text=True, cwd=REPO, env=cli_env(), timeout=30,
    )  # fmt: skip
    assert r.returncode == 2
    assert "refusing to listen on 0.0.0.0 without a token secret_file" in r.stderr


def test_public_address_config(secret_file: Path, pki: dict[str, str]) -> None:
    c = ServerConfig(host="0.0.0.0", insecure=True, secret_file=str(secret_file))
    assert not c.is_loopback and not c.tls
    c = ServerConfig(
        host="0.0.0.0",
        tls_cert=pki["server_cert"],
        tls_key=pki["server_key"],
        secret_file=str(secret_file),
    )
    assert c.tls
    with pytest.raises(ValueError, match="without TLS"):
        ServerConfig(host="0.0.0.0", secret_file=str(secret_file))
    with pytest.raises(ValueError, match="without a token secret_file"):
        ServerConfig(host="10.1.2.3", tls_cert=pki["server_cert"], tls_key=pki["server_key"])
