"""Helpers for the MCP tests: a server over fresh services, reached through the SDK's client."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import anyio
from mcp import Client
from mcp.types import CallToolResult, TextContent

from spruce.container import Services, open_services
from spruce.mcp import Runner, build_server

RESOURCES = Path(__file__).parent.parent / "resources"


@contextlib.asynccontextmanager
async def mcp_client(
    services: Services, runner: Runner, *, roots: Sequence[Path] = ()
) -> AsyncIterator[Client]:
    """An SDK client connected in-process to the spruce MCP server over `services`."""
    async with Client(build_server(services, runner, roots=roots)) as client:
        yield client


@contextlib.asynccontextmanager
async def memory_services() -> AsyncIterator[Services]:
    """Services over a fresh in-memory event log."""
    async with open_services(store_url="memory://") as services:
        yield services


def structured(result: CallToolResult) -> dict[str, Any]:
    """A successful tool result's structured content (fails the test on a tool error)."""
    assert not result.is_error, error_text(result)
    content: dict[str, Any] | None = result.structured_content
    assert content is not None
    return content


def error_text(result: CallToolResult) -> str:
    """The text of a tool result (for errors: the one sentence an agent reads)."""
    return "".join(block.text for block in result.content if isinstance(block, TextContent))


def findings_of(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """Every finding of a result document as (phase, hook, finding), in document order."""
    return [
        (phase["name"], hook["id"], finding)
        for phase in document["phases"]
        for hook in phase["hooks"]
        for finding in hook["findings"]
    ]


def as_json(result: CallToolResult) -> Any:
    """The JSON text content of a tool result, parsed."""
    return json.loads(error_text(result))


async def wait_until_ended(
    client: Client,
    job_id: str,
    *,
    limit_s: float = 110.0,
    progress_seen: list[float] | None = None,
    detail: str = "full",
) -> dict[str, Any]:
    """The job's result document once it ends, calling wait_for_job as an agent would.

    With `progress_seen`, the progress values the server notifies are appended to it.
    """

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        if progress_seen is not None:
            progress_seen.append(progress)

    with anyio.fail_after(limit_s):
        while True:
            result = await client.call_tool(
                "wait_for_job",
                {"job_id": job_id, "timeout_s": 20, "detail": detail},
                progress_callback=on_progress if progress_seen is not None else None,
            )
            document = structured(result)
            if document["status"] != "running":
                return document


def processes_in(path: Path) -> list[str]:
    """Live processes whose working directory or command line lies in `path` (pid: cmdline)."""
    found = []
    marker = str(path)
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            cwd = os.readlink(entry / "cwd")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue  # gone meanwhile, or not ours to read
        if state != "Z" and (marker in cmdline or cwd.startswith(marker)):
            found.append(f"{entry.name}: {cmdline}")
    return found
