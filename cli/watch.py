"""`groupsense watch`: a live terminal view of one session's signals."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import TextIO

import grpc

from cli.client import add_connection_args, call_metadata, open_channel, rpc_error_line
from groupsense.v1 import groupsense_pb2 as pb
from groupsense.v1 import groupsense_pb2_grpc as pb_grpc


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("watch", help="live terminal view of a session's signals")
    p.add_argument("session", metavar="S")
    add_connection_args(p)
    p.set_defaults(run=run)


def _clock(seconds: float) -> str:
    m, s = divmod(int(seconds), 60)
    return f"{m}:{s:02d}"


def render(snap: pb.SessionSnapshot, names: dict[str, str] | None = None) -> str:
    names = names or {}
    lines = [
        f"session {snap.session_id}  t={_clock(snap.session_ms / 1000)}  "
        f"{'(ended)' if snap.final else ''}".rstrip()
    ]
    lines.append(f"  {'participant':16} {'now':8} {'speaking':>8} {'share':>6} {'quiet for':>9}")
    for p in snap.participants:
        role = " (F)" if p.role == pb.ROLE_FACILITATOR else ""
        label = names.get(p.participant_id, p.participant_id) + role
        now = "SPEAKING" if p.speaking else ("" if p.connected else "offline")
        quiet = "-" if p.since_last_spoke_s < 0 else _clock(p.since_last_spoke_s)
        bar = "#" * round(p.share * 20)
        lines.append(
            f"  {label:16} {now:8} {_clock(p.speaking_s):>8} {p.share * 100:5.1f}% "
            f"{quiet:>9}  {bar}"
        )
    for e in snap.events:
        lines.append(f"  * {e}")
    return "\n".join(lines)


async def watch(args: argparse.Namespace, out: TextIO, names: dict[str, str] | None = None) -> int:
    channel = open_channel(args)
    stub = pb_grpc.SignalServiceStub(channel)
    tty = out.isatty()
    try:
        async for snap in stub.Subscribe(
            pb.SubscribeRequest(session_id=args.session), metadata=call_metadata(args)
        ):
            text = render(snap, names)
            if tty:
                out.write("\x1b[H\x1b[J" + text + "\n")
            elif snap.events or snap.final:
                out.write(text + "\n")
            out.flush()
            if snap.final:
                return 0
    except grpc.RpcError as exc:
        print(rpc_error_line("watch", exc), file=sys.stderr)
        return 1
    finally:
        await channel.close()
    return 0


def run(args: argparse.Namespace) -> int:
    try:
        return asyncio.run(watch(args, sys.stdout))
    except KeyboardInterrupt:
        return 130
