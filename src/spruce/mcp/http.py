"""The MCP server as streamable HTTP routes for `spruce serve`, on the server's own services.

Serving it inside the one Starlette app (not as a second app) keeps one bus and one job runner, so a
job an agent starts shows on the dashboard and a job started over HTTP or from a terminal shows to
the agent.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from pathlib import Path

from starlette.routing import BaseRoute

from spruce.container import Services
from spruce.mcp.server import Runner, build_server

MCP_PATH = "/mcp"


@dataclass(frozen=True)
class McpRoutes:
    """Routes to add to the app, and a context to hold open for the app's whole lifespan."""

    routes: list[BaseRoute]
    lifespan: Callable[[], AbstractAsyncContextManager[None]]


def mcp_routes(
    services: Services,
    runner: Runner,
    *,
    roots: Sequence[Path],
    host: str = "127.0.0.1",
    path: str = MCP_PATH,
) -> McpRoutes:
    """The MCP endpoint at `path` over `services` and `runner`.

    Bound to a loopback `host`, the SDK also refuses requests whose Host or Origin header is not
    loopback (DNS rebinding).
    """
    server = build_server(services, runner, roots=roots)
    # The SDK builds its session manager with this app; its routes are what we serve.
    app = server.streamable_http_app(streamable_http_path=path, host=host)
    return McpRoutes(routes=list(app.routes), lifespan=server.session_manager.run)
