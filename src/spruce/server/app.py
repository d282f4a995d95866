"""create_app: the Starlette application of `spruce serve`, built from one process's services."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Final

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.responses import FileResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from spruce.server.api import Api, JobControl
from spruce.server.bridge import BridgeLimits, EventBusWebSocketBridge
from spruce.server.security import (
    MAX_BODY_BYTES,
    BodyLimitMiddleware,
    Guard,
    GuardMiddleware,
)

if TYPE_CHECKING:
    from starlette.requests import Request

    from spruce.container import Services

STATIC_DIR: Final = Path(__file__).parent / "static"
Lifespan = Callable[[], AbstractAsyncContextManager[None]]


def create_app(
    services: Services,
    runner: JobControl | None,
    *,
    roots: Sequence[Path],
    token: str | None = None,
    allowed_origins: Iterable[str] = (),
    allowed_hosts: frozenset[str] | None = None,
    limits: BridgeLimits | None = None,
    max_body: int = MAX_BODY_BYTES,
    mounts: Sequence[BaseRoute] = (),
    lifespans: Sequence[Lifespan] = (),
) -> Starlette:
    """The server app; the bridge starts and stops with the app's lifespan.

    `allowed_origins` are the exact origins browsers may write from (the server's own, see
    `security.own_origins`); `allowed_hosts` the Host names it answers (None: any).  `mounts`
    (e.g. the MCP app at /mcp) and their `lifespans` are added as given.
    """
    bridge = EventBusWebSocketBridge(services.bus, services.log, limits=limits)
    api = Api(services.log, bridge, runner, roots=roots, metrics=services.metrics)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with contextlib.AsyncExitStack() as stack:
            await bridge.start()
            stack.push_async_callback(bridge.aclose)
            for extra in lifespans:
                await stack.enter_async_context(extra())
            yield

    routes: list[BaseRoute] = [
        Route("/", _dashboard),
        Route("/favicon.ico", _favicon),
        *api.routes(),
        Mount("/static", StaticFiles(directory=STATIC_DIR), name="static"),
        *mounts,
    ]
    guard = Guard(token=token, origins=frozenset(allowed_origins))
    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        middleware=[
            Middleware(GuardMiddleware, guard=guard, hosts=allowed_hosts),
            Middleware(BodyLimitMiddleware, limit=max_body),
        ],
    )
    app.state.bridge = bridge
    return app


async def _dashboard(request: Request) -> Response:
    return FileResponse(STATIC_DIR / "index.html", headers={"Cache-Control": "no-cache"})


async def _favicon(request: Request) -> Response:
    # Browsers ask for /favicon.ico whatever the page links: answer it rather than 404.
    return FileResponse(STATIC_DIR / "favicon.svg", media_type="image/svg+xml")
