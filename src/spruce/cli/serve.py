"""`spruce serve`: the HTTP API, live progress over WebSocket, the dashboard and /metrics."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path


def add_parsers(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `spruce serve`."""
    parser = commands.add_parser(
        "serve",
        help="serve the dashboard, HTTP API and live WebSocket progress",
        description="Serve the dashboard, the HTTP API, live progress over WebSocket and "
        "/metrics. Jobs run by `spruce run` in other terminals appear live through the event log.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8675, help="port (default 8675; 0: any free)")
    parser.add_argument("--store", metavar="URL", help="event log URL (default: SPRUCE_STORE)")
    parser.add_argument(
        "--token", help="require this token (default: SPRUCE_TOKEN); needed off loopback"
    )
    parser.add_argument(
        "--root",
        action="append",
        metavar="DIR",
        help="allow starting jobs on projects under DIR (repeatable; default: the working dir)",
    )
    parser.add_argument(
        "--allowed-origin",
        action="append",
        default=[],
        metavar="ORIGIN",
        help="an extra exact origin allowed to write (e.g. https://ci.example.com)",
    )
    parser.set_defaults(handler=main)


def main(args: argparse.Namespace) -> int:
    """Serve until interrupted; 0 on SIGTERM, 130 on Ctrl-C, 2 for a bad address or token."""
    import asyncio
    import os
    from pathlib import Path

    from spruce.errors import UsageError
    from spruce.server.security import TOKEN_ENV, check_bind

    token: str | None = args.token or os.environ.get(TOKEN_ENV) or None
    check_bind(args.host, token)
    if not 0 <= args.port <= 65535:
        raise UsageError(f"invalid --port {args.port}")
    roots = [Path(root).expanduser().resolve() for root in (args.root or [os.getcwd()])]
    for root in roots:
        if not root.is_dir():
            raise UsageError(f"--root {str(root)!r} is not a directory")
    return asyncio.run(_serve(args, token, roots))


async def _serve(args: argparse.Namespace, token: str | None, roots: list[Path]) -> int:
    import signal
    import sys

    from spruce.advert import advertise, dashboard_url
    from spruce.container import open_services
    from spruce.jobs import JobRunner
    from spruce.mcp.http import mcp_routes
    from spruce.server import listen
    from spruce.server.app import create_app
    from spruce.server.security import loopback_hosts, own_origins

    sock = listen.bind(args.host, args.port)
    port = sock.getsockname()[1]
    try:
        async with open_services(
            store_url=args.store, follow_other_processes=True, end_orphans_every=10.0
        ) as services:
            runner = JobRunner(services, roots=roots)
            mcp = mcp_routes(services, runner, roots=roots, host=args.host)
            app = create_app(
                services,
                runner,
                roots=roots,
                token=token,
                allowed_origins=own_origins(args.host, port, args.allowed_origin),
                allowed_hosts=loopback_hosts(args.host),
                mounts=mcp.routes,
                lifespans=[mcp.lifespan],
            )
            server = listen.Server(listen.config(app, host=args.host, port=port))
            host = f"[{args.host}]" if ":" in args.host else args.host
            print(f"spruce: serving http://{host}:{port}/ (store {services.store_url})", flush=True)
            try:
                with advertise(services.store_url, dashboard_url(args.host, port)):
                    await server.serve(sockets=[sock])
            finally:
                await runner.aclose()
    finally:
        sock.close()
    if not server.started:
        print("spruce: error: the server failed to start", file=sys.stderr)
        return 2
    return 130 if server.stop_signal == signal.SIGINT else 0
