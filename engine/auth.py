"""Bearer tokens with roles, signed with the server's secret (HMAC-SHA256).

A token is `gs1.<payload>.<signature>`, both parts base64url: the payload is JSON
{"role", "sessions", "exp", "sub"}. Roles:
- `ingest`: held by the video server; may only send audio (to the sessions listed,
  or any with "*").
- `facilitator`: may only read the sessions listed (subscribe, list, summary, end).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
import time
from dataclasses import dataclass
from enum import StrEnum

from engine.errors import GroupsenseError

PREFIX = "gs1"
MIN_SECRET_BYTES = 32
_TTL = re.compile(r"^(\d+)([smhd])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


class TokenRole(StrEnum):
    INGEST = "ingest"
    FACILITATOR = "facilitator"


class AuthError(GroupsenseError):
    """Missing, malformed, forged or expired credentials (UNAUTHENTICATED)."""

    grpc_status = "UNAUTHENTICATED"


class ForbiddenError(GroupsenseError):
    """Valid credentials that do not allow this call (PERMISSION_DENIED)."""

    grpc_status = "PERMISSION_DENIED"


@dataclass(frozen=True, slots=True)
class Claims:
    role: TokenRole
    sessions: tuple[str, ...]  # "*" = every session
    expires_at: float
    subject: str

    def may_access(self, session_id: str) -> bool:
        return "*" in self.sessions or session_id in self.sessions


def parse_ttl(text: str) -> int:
    """'90s', '30m', '2h', '7d' -> seconds."""
    m = _TTL.match(text.strip())
    if not m or int(m.group(1)) <= 0:
        raise ValueError(f"ttl must look like 90s, 30m, 2h or 7d, got {text!r}")
    return int(m.group(1)) * _UNITS[m.group(2)]


def new_secret() -> str:
    return secrets.token_urlsafe(MIN_SECRET_BYTES)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _check_secret(secret: bytes) -> None:
    if len(secret) < MIN_SECRET_BYTES:
        raise ValueError(f"the server secret must be at least {MIN_SECRET_BYTES} bytes")


def create_token(
    secret: bytes,
    *,
    role: TokenRole | str,
    sessions: tuple[str, ...] | list[str],
    ttl_s: int,
    subject: str = "",
    now: float | None = None,
) -> str:
    _check_secret(secret)
    role = TokenRole(role)
    if not sessions:
        raise ValueError("a token needs at least one session (or '*')")
    if role is TokenRole.FACILITATOR and "*" in sessions:
        raise ValueError("a facilitator token must name its sessions; '*' is for ingest tokens")
    if ttl_s <= 0:
        raise ValueError(f"ttl must be positive, got {ttl_s}")
    issued = time.time() if now is None else now
    payload = {
        "role": role.value,
        "sessions": list(sessions),
        "exp": int(issued + ttl_s),
        "sub": subject,
    }
    body = _b64(json.dumps(payload, separators=(",", ":"), sort_keys=True).encode())
    sig = _b64(hmac.new(secret, f"{PREFIX}.{body}".encode(), hashlib.sha256).digest())
    return f"{PREFIX}.{body}.{sig}"


def verify_token(secret: bytes, token: str, *, now: float | None = None) -> Claims:
    parts = token.split(".")
    if len(parts) != 3 or parts[0] != PREFIX:
        raise AuthError("malformed token")
    expected = hmac.new(secret, f"{PREFIX}.{parts[1]}".encode(), hashlib.sha256).digest()
    try:
        given = _unb64(parts[2])
    except ValueError:
        raise AuthError("malformed token signature") from None
    if not hmac.compare_digest(expected, given):
        raise AuthError("token signature does not verify (forged, or another server's)")
    try:
        payload = json.loads(_unb64(parts[1]))
        claims = Claims(
            role=TokenRole(payload["role"]),
            sessions=tuple(str(s) for s in payload["sessions"]),
            expires_at=float(payload["exp"]),
            subject=str(payload.get("sub", "")),
        )
    except (ValueError, KeyError, TypeError):
        raise AuthError("malformed token payload") from None
    if (time.time() if now is None else now) >= claims.expires_at:
        raise AuthError("token expired")
    return claims


def bearer(metadata: tuple[tuple[str, str | bytes], ...] | None) -> str:
    """The token from an `authorization: Bearer <token>` header; AuthError if absent."""
    for key, value in metadata or ():
        if key.lower() == "authorization":
            text = value.decode() if isinstance(value, bytes) else value
            scheme, _, token = text.partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                raise AuthError("authorization header must be 'Bearer <token>'")
            return token.strip()
    raise AuthError("missing bearer token (authorization metadata)")
