"""Error codes of live updates (实时推送): what ends a subscription early."""

from __future__ import annotations

from service.errors import ErrorCode

# The listener lost its database connection, or the subscriber fell behind: events
# may have been missed, so the client reloads what it shows and subscribes again.
EVENTS_INTERRUPTED = ErrorCode("EVENTS_INTERRUPTED", "实时推送已中断，请刷新后重新订阅", 503)
# Queries and mutations go over HTTP POST, where each is one unit of work.
SUBSCRIPTIONS_ONLY = ErrorCode(
    "SUBSCRIPTIONS_ONLY", "WebSocket 连接只接受订阅（subscription），查询和修改请用 HTTP POST"
)
