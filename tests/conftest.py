"""Shared fixtures. Tests that need ../shared/data skip with a reason where it is absent."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.datasets import shared_data_dir


@pytest.fixture(scope="session")
def shared_data() -> Path:
    root = shared_data_dir()
    if root is None:
        pytest.skip("../shared/data (labelled real speech) is not present on this machine")
    return root


# -- a real groupsense server on loopback (tests/test_server_*.py, test_live_vs_offline.py) --
@pytest.fixture
async def start_server():  # type: ignore[no-untyped-def]
    """Factory: `await start_server(live=LiveConfig(...), secret_file=...)` starts an
    engine.server.Server on a free 127.0.0.1 port; every server is stopped at teardown."""
    from engine.config import EngineConfig, LiveConfig, ServerConfig, VadConfig
    from engine.server import Server

    servers: list[Server] = []

    async def start(
        *, live: LiveConfig | None = None, vad: VadConfig | None = None, **server: object
    ) -> Server:
        config = EngineConfig(
            server=ServerConfig(**{"port": 0, **server}),  # type: ignore[arg-type]
            live=live or LiveConfig(),
            vad=vad or VadConfig(),
        )
        srv = Server(config)
        await srv.start()
        servers.append(srv)
        return srv

    yield start
    for srv in servers:
        await srv.stop()


@pytest.fixture
async def channel_to():  # type: ignore[no-untyped-def]
    """Factory: `channel_to(server)` opens a plaintext channel to it, closed at teardown."""
    import grpc

    channels: list[grpc.aio.Channel] = []

    def open_(server: object, options: tuple[tuple[str, object], ...] = ()) -> grpc.aio.Channel:
        ch = grpc.aio.insecure_channel(
            f"127.0.0.1:{server.port}",  # type: ignore[attr-defined]
            options=list(options),
        )
        channels.append(ch)
        return ch

    yield open_
    for ch in channels:
        await ch.close()
