"""`groupsense demo`: the live path end to end on one machine.

Starts a server on a free loopback port, replays the bundled sample into it as a
video server would (one Opus stream per participant), and shows the session's
signals as they change.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from cli import replay as replay_cli
from cli import watch as watch_cli
from engine.config import EngineConfig
from engine.sample import sample_session
from engine.server import Server


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("demo", help="live demo: server + replay of the bundled sample + live view")
    p.add_argument("--speed", default="4", help="replay speed (1 = real time; default 4)")
    p.add_argument("--codec", choices=("opus", "pcm"), default="opus")
    p.set_defaults(run=run)


async def demo(speed: float | None, codec: str) -> int:
    server = Server(EngineConfig.load(port=0))
    port = await server.start()
    common = dict(server=f"127.0.0.1:{port}", token=None, tls_ca=None, tls_cert=None, tls_key=None)
    session = "demo"
    print(
        f"groupsense demo: server on 127.0.0.1:{port}; replaying {sample_session().name} "
        f"into session '{session}' ({codec}, speed {speed or 'max'})\n",
        file=sys.stderr,
    )
    rargs = argparse.Namespace(session=session, codec=codec, quiet=True, **common)
    wargs = argparse.Namespace(session=session, **common)
    names: dict[str, str] = {}  # pseudonym -> name, known here only because we are the sender
    sender = asyncio.create_task(replay_cli.replay(rargs, [str(sample_session())], speed, names))
    # The session exists once the first stream arrives (sooner or later on a busy machine).
    while session not in server.engine.sessions and not sender.done():
        await asyncio.sleep(0.02)
    viewer = asyncio.create_task(watch_cli.watch(wargs, sys.stdout, names))
    code = await sender
    await asyncio.sleep(0.5)
    await server.stop()  # drains, sends the final snapshot, ends the viewer
    await asyncio.wait_for(viewer, 10)
    return code


def run(args: argparse.Namespace) -> int:
    try:
        speed = replay_cli.parse_speed(args.speed)
    except ValueError as exc:
        print(f"groupsense demo: {exc}", file=sys.stderr)
        return 2
    return asyncio.run(demo(speed, args.codec))
