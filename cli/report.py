"""`groupsense report`: the post-session report as one self-contained HTML file."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import grpc
from google.protobuf.json_format import MessageToDict

from cli.client import add_connection_args, call_metadata, open_channel, rpc_error_line
from engine.dashboard.report import render_report
from groupsense.v1 import groupsense_pb2 as pb
from groupsense.v1 import groupsense_pb2_grpc as pb_grpc


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "report",
        help="post-session report (HTML, prints to PDF)",
        description="Writes a self-contained HTML report from ANALYSIS.json (what "
        "`groupsense analyze --json` writes: the full report, with who spoke when) or from "
        "an ended SESSION_ID on a running server (its summary: shares, balance, who follows "
        "whom, silences, alerts). A running server's dashboard also serves it at "
        "/report/SESSION_ID.",
    )
    p.add_argument("source", metavar="SESSION_ID|ANALYSIS.json")
    p.add_argument("--out", required=True, metavar="REPORT.html", help="'-' = stdout")
    p.add_argument("--title", default=None, help="report title (default: session or files)")
    add_connection_args(p)
    p.set_defaults(run=run)


def summary_dict(summary: pb.SessionSummary) -> dict[str, Any]:
    """A SessionSummary in the dashboard's JSON shape (generic, so new fields flow)."""
    data: dict[str, Any] = MessageToDict(
        summary, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
    )
    data.update(data.pop("group", {}))
    data["session_ms"] = int(data.pop("duration_ms", 0))
    data["final"] = True
    for p in data.get("participants", []):
        p["role"] = str(p.get("role", "")).removeprefix("ROLE_").lower()
    return data


async def fetch_summary(args: argparse.Namespace, session_id: str) -> dict[str, Any]:
    channel = open_channel(args)
    try:
        stub = pb_grpc.SessionServiceStub(channel)
        summary = await stub.GetSummary(
            pb.GetSummaryRequest(session_id=session_id), metadata=call_metadata(args), timeout=20
        )
    finally:
        await channel.close()
    return summary_dict(summary)


def run(args: argparse.Namespace) -> int:
    source = Path(args.source)
    if source.suffix.lower() == ".json" or source.is_file():
        try:
            data = json.loads(source.read_text(encoding="utf-8"))
        except OSError as exc:
            print(f"groupsense report: {args.source}: {exc.strerror}", file=sys.stderr)
            return 1
        except ValueError as exc:
            print(f"groupsense report: {args.source}: not JSON ({exc})", file=sys.stderr)
            return 1
    else:
        try:
            data = asyncio.run(fetch_summary(args, args.source))
        except grpc.RpcError as exc:
            print(rpc_error_line("report", exc), file=sys.stderr)
            return 1
    try:
        html = render_report(data, title=args.title)
    except ValueError as exc:
        print(f"groupsense report: {args.source}: {exc}", file=sys.stderr)
        return 1
    if args.out == "-":
        sys.stdout.write(html)
    else:
        Path(args.out).write_text(html, encoding="utf-8")
        print(f"groupsense report: wrote {args.out}", file=sys.stderr)
    return 0
