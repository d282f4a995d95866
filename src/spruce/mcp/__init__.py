"""spruce over MCP: AI agents start jobs, read results and follow live progress.

`build_server` makes the server over one process's services; `spruce mcp` serves it on stdio and
`spruce serve` mounts it at `/mcp` (streamable HTTP).
"""

from __future__ import annotations

from spruce.mcp.server import Runner, build_server

__all__ = ["Runner", "build_server"]
