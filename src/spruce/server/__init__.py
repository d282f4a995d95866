"""`spruce serve`: the HTTP API, live progress over WebSocket, the dashboard and /metrics.

Progress sockets (`/ws/progress/{job_id}?after=N`, `/ws/progress?after=CURSOR`) send one event
JSON per text frame (firehose frames add a `cursor` field) and close with:
1000 the job's end event was sent · 1001 / 1012 the server is stopping (reconnect with `after`) ·
1011 server error · 1013 too many connections (retry later) · 4008 slow consumer (reconnect
with `after`) · 4400 malformed job id or cursor · 4404 unknown job · 4410 the cursor was removed
by retention (the reason names the earliest; restart from `after=0`).
A refused handshake gets HTTP 401 (token) or 403 (Origin or Host).
"""

from __future__ import annotations

from spruce.server.app import create_app
from spruce.server.bridge import BridgeLimits, CloseCode, EventBusWebSocketBridge

__all__ = ["BridgeLimits", "CloseCode", "EventBusWebSocketBridge", "create_app"]
