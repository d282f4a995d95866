"""`spruce serve`: the HTTP API, live progress over WebSocket, the dashboard and /metrics.

Progress sockets (`/ws/progress/{job_id}?after=N`, `/ws/progress?after=CURSOR`) send one event
JSON per text frame (firehose frames add a `cursor` field) and close with:
1000 the job's end event was sent · 1001 / 1012 the server is stopping (reconnect with `after`) ·
1011 server error · 1013 try again later: too many connections, or the event log cannot be read
(a store restarting; the reason says which; reconnect with `after`) · 4008 slow consumer: the
client's queue filled up or its socket took nothing for 20 s (reconnect with `after`) · 4400
malformed job id or cursor · 4404 unknown job, also when the job left the event log while
followed (a Redis without persistence restarted) · 4410 the cursor was removed by retention (the
reason names the earliest; restart from `after=0`).
A refused handshake gets HTTP 401 (token) or 403 (Origin or Host); one whose request target is
longer than 8 KB gets 414, whose headers pass 8 KB or 100 fields 431 (400 when the head arrives
in pieces past 16 KB), at once, before the token check, and its connection is closed.
"""

from __future__ import annotations

from spruce.server.app import create_app
from spruce.server.bridge import BridgeLimits, CloseCode, EventBusWebSocketBridge

__all__ = ["BridgeLimits", "CloseCode", "EventBusWebSocketBridge", "create_app"]
