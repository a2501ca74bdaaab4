"""`groupsense serve`: the live gRPC server."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys

from engine.config import EngineConfig
from engine.dashboard.http import DashboardServer
from engine.server import Server


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "serve",
        help="run the live gRPC server",
        description="Serves IngestService, SignalService, SessionService, health and reflection. "
        "With no options: 127.0.0.1:50051, plaintext, no tokens (local use only).",
    )
    p.add_argument("--config", metavar="FILE.toml", help="[server], [live] and [vad] tables")
    p.add_argument("--host", default=None, help="default 127.0.0.1")
    p.add_argument("--port", type=int, default=None, help="default 50051")
    p.add_argument("--secret-file", default=None, help="token-signing secret (enables auth)")
    p.add_argument(
        "--insecure",
        action="store_true",
        default=None,
        help="allow a non-loopback address without TLS (TLS terminated by a trusted proxy)",
    )
    p.add_argument(
        "--http-port",
        type=int,
        default=8080,
        metavar="N",
        help="facilitator dashboard over HTTP(S) on the same host (default 8080; 0 = any free)",
    )
    p.set_defaults(run=run)


def load_config(args: argparse.Namespace) -> EngineConfig:
    return EngineConfig.load(
        args.config,
        host=args.host,
        port=args.port,
        secret_file=args.secret_file,
        insecure=args.insecure,
    )


async def serve_forever(config: EngineConfig, http_port: int = 8080) -> None:
    server = Server(config)
    port = await server.start()
    dashboard = DashboardServer(
        server.engine, config.server.read_secret(), config.server, port=http_port
    )
    try:
        await dashboard.start()
    except OSError as exc:
        await server.stop()
        raise OSError(
            f"dashboard port {http_port}: {exc.strerror}; pick one with --http-port"
        ) from None
    print(f"groupsense: dashboard on {dashboard.url}", file=sys.stderr, flush=True)
    s = config.server
    auth = "token auth" if server.auth.enabled else "no auth (local use)"
    print(
        f"groupsense: serving on {s.host}:{port} ({'TLS' if s.tls else 'plaintext'}, {auth}); "
        "Ctrl-C drains and stops",
        file=sys.stderr,
        flush=True,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    print("groupsense: draining...", file=sys.stderr, flush=True)
    await server.stop()
    await dashboard.stop()


def run(args: argparse.Namespace) -> int:
    try:
        config = load_config(args)
        if not 0 <= args.http_port <= 65535:
            raise ValueError(f"--http-port must be 0-65535, got {args.http_port}")
    except ValueError as exc:
        print(f"groupsense serve: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    try:
        asyncio.run(serve_forever(config, args.http_port))
    except OSError as exc:
        print(f"groupsense serve: {exc}", file=sys.stderr)
        return 1
    return 0
