"""The only place that decides what about a participant may leave the engine.

Participant refs from the video server are replaced on arrival by a keyed,
per-session pseudonym: stable within a session (a reconnect resumes the same
participant), unlinkable across sessions, and not reversible without the key.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets


class Pseudonymizer:
    """HMAC-SHA256(session key, ref) -> 'p-' + 10 hex digits.

    The session key is derived from the server secret and the session id, so the
    same ref keeps its pseudonym across server restarts; with no secret configured
    a random key per process is used (pseudonyms then change on restart).
    """

    def __init__(self, secret: bytes | None = None) -> None:
        self._secret = secret if secret else secrets.token_bytes(32)

    def session_key(self, session_id: str) -> bytes:
        return hmac.new(
            self._secret, b"session-key:" + session_id.encode(), hashlib.sha256
        ).digest()

    def pseudonym(self, session_id: str, participant_ref: str) -> str:
        digest = hmac.new(
            self.session_key(session_id), participant_ref.encode(), hashlib.sha256
        ).hexdigest()
        return f"p-{digest[:10]}"
