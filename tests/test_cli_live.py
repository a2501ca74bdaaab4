"""The live CLIs as a user meets them: one clear line per failure, and the demo end to end."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


async def cli(*args: str, timeout: float = 120) -> tuple[int, str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("GROUPSENSE_DEBUG", "GROUPSENSE_TOKEN")}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "cli.main",
        *args,
        cwd=REPO,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout)
    return proc.returncode or 0, out.decode(), err.decode()


async def test_replay_reports_the_servers_status_not_a_transport_error(start_server) -> None:  # type: ignore[no-untyped-def]
    srv = await start_server()
    code, _, err = await cli(
        "replay", "--session", "bad id", "--speed", "max", "--server", f"127.0.0.1:{srv.port}"
    )
    assert code == 1
    assert err.strip() == (
        "groupsense replay: INVALID_ARGUMENT: config: session_id must be 1-128 characters "
        "of letters, digits and . _ : -"
    )


async def test_replay_without_a_token_is_unauthenticated(start_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    secret = tmp_path / "secret"
    secret.write_text("s" * 43)
    srv = await start_server(secret_file=str(secret))
    code, _, err = await cli(
        "replay", "--session", "s1", "--speed", "max", "--server", f"127.0.0.1:{srv.port}"
    )
    assert code == 1
    assert "UNAUTHENTICATED: missing bearer token" in err and "Traceback" not in err


async def test_watch_unknown_session_is_not_found(start_server) -> None:  # type: ignore[no-untyped-def]
    srv = await start_server()
    code, _, err = await cli("watch", "nope", "--server", f"127.0.0.1:{srv.port}")
    assert code == 1
    assert err.strip() == "groupsense watch: NOT_FOUND: no active session 'nope'"


async def test_unreachable_server_is_one_line() -> None:
    code, _, err = await cli("watch", "s", "--server", "127.0.0.1:9")
    assert code == 1
    assert err.startswith("groupsense watch: UNAVAILABLE") and "Traceback" not in err


async def test_demo_shows_named_participants_and_a_final_view() -> None:
    code, out, err = await cli("demo", "--speed", "max", timeout=180)
    assert code == 0, err
    final = out[out.rindex("(ended)") :]
    for name in ("facilitator (F)", "ana", "ben", "cleo"):
        assert name in final
    assert "started speaking" in out and "stopped speaking" in out
