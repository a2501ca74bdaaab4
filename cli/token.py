"""`groupsense token`: issue signed, expiring bearer tokens from the server's secret."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from engine.auth import TokenRole, create_token, new_secret, parse_ttl
from engine.config import EngineConfig


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("token", help="issue bearer tokens; make a server secret")
    what = p.add_subparsers(dest="what", required=True, metavar="ACTION")
    c = what.add_parser("create", help="print a signed token")
    c.add_argument("--role", required=True, choices=[r.value for r in TokenRole])
    c.add_argument(
        "--session",
        action="append",
        required=True,
        metavar="S",
        help="a session the token grants (repeatable; '*' = any, ingest tokens only)",
    )
    c.add_argument("--ttl", default="2h", help="lifetime: 90s, 30m, 2h, 7d (default 2h)")
    c.add_argument("--subject", default="", help="who holds it (for the audit trail)")
    c.add_argument("--secret-file", default=None)
    c.add_argument("--config", metavar="FILE.toml", help="take secret_file from [server]")
    c.set_defaults(run=run_create)
    s = what.add_parser("secret", help="write a new random server secret to FILE (mode 600)")
    s.add_argument("file", metavar="FILE")
    s.set_defaults(run=run_secret)


def run_create(args: argparse.Namespace) -> int:
    try:
        secret_file = args.secret_file
        if secret_file is None and args.config:
            secret_file = EngineConfig.load(args.config).server.secret_file
        if not secret_file:
            raise ValueError("needs --secret-file (or --config with [server] secret_file)")
        secret = Path(secret_file).read_bytes().strip()
        token = create_token(
            secret,
            role=args.role,
            sessions=args.session,
            ttl_s=parse_ttl(args.ttl),
            subject=args.subject,
        )
    except (ValueError, OSError) as exc:
        print(f"groupsense token: {exc}", file=sys.stderr)
        return 2
    print(token)
    return 0


def run_secret(args: argparse.Namespace) -> int:
    path = Path(args.file)
    if path.exists():
        print(f"groupsense token: {path} exists; not overwriting a secret", file=sys.stderr)
        return 2
    path.touch(mode=0o600)
    path.write_text(new_secret() + "\n")
    print(f"groupsense: wrote a new secret to {path}", file=sys.stderr)
    return 0
