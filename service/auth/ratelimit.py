"""A per-client token bucket for the token endpoint (in-process).

The lockout counts failures per account; without a limit per client, one client could
walk a list of usernames and lock every account. Each client address gets a bucket of
`rate` requests that refills at `rate` per minute; the clock is passed in, so tests
need not wait. Per process: with N workers a client gets up to N times the rate.
"""

from __future__ import annotations

import math
from collections import OrderedDict


class TokenBucket:
    def __init__(self, max_clients: int = 100_000) -> None:
        self.max_clients = max_clients
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def take(self, client: str, *, rate_per_minute: int, now: float) -> float:
        """0 when `client` may go ahead (a token is taken), else seconds until it may."""
        if rate_per_minute <= 0:
            return 0.0
        capacity = float(rate_per_minute)
        per_second = rate_per_minute / 60.0
        tokens, at = self._buckets.get(client, (capacity, now))
        tokens = min(capacity, tokens + max(0.0, now - at) * per_second)
        if tokens < 1.0:
            self._buckets[client] = (tokens, now)
            return max(1.0, math.ceil((1.0 - tokens) / per_second))
        self._buckets[client] = (tokens - 1.0, now)
        self._buckets.move_to_end(client)
        while len(self._buckets) > self.max_clients:
            self._buckets.popitem(last=False)
        return 0.0
