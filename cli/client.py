"""Client-side connection settings shared by replay, watch and the demo."""

from __future__ import annotations

import argparse
import os
from typing import Any

import grpc

TOKEN_ENV = "GROUPSENSE_TOKEN"


def add_connection_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--server", default="127.0.0.1:50051", metavar="HOST:PORT")
    p.add_argument(
        "--token",
        default=None,
        help=f"bearer token (default: ${TOKEN_ENV}; none for a local server)",
    )
    p.add_argument("--tls-ca", metavar="PEM", help="verify the server with this CA (enables TLS)")
    p.add_argument("--tls-cert", metavar="PEM", help="client certificate, for mutual TLS")
    p.add_argument("--tls-key", metavar="PEM", help="client private key, for mutual TLS")


def _read(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def open_channel(args: argparse.Namespace) -> grpc.aio.Channel:
    options: list[tuple[str, Any]] = [("grpc.keepalive_time_ms", 30_000)]
    if args.tls_ca:
        creds = grpc.ssl_channel_credentials(
            root_certificates=_read(args.tls_ca),
            private_key=_read(args.tls_key) if args.tls_key else None,
            certificate_chain=_read(args.tls_cert) if args.tls_cert else None,
        )
        return grpc.aio.secure_channel(args.server, creds, options=options)
    return grpc.aio.insecure_channel(args.server, options=options)


def call_metadata(args: argparse.Namespace) -> tuple[tuple[str, str], ...]:
    token = args.token or os.environ.get(TOKEN_ENV)
    return (("authorization", f"Bearer {token}"),) if token else ()


def rpc_error_line(command: str, exc: grpc.RpcError) -> str:
    code = exc.code() if hasattr(exc, "code") else None
    details = exc.details() if hasattr(exc, "details") else str(exc)
    name = code.name if code is not None else "ERROR"
    return f"groupsense {command}: {name}: {details}"
