"""Prometheus metrics of one process (`prometheus_client`), served by `/metrics`.

The request path only adds to plain Python numbers (a dict entry per label value, a
list of bucket counts per histogram: a few hundred nanoseconds); a collector turns them
into Prometheus families when scraped. `prometheus_client`'s own metric objects take a
lock and check their state on every `inc`/`observe`, which cost ~10 µs a request here
(bench/observe.py). A process serves on one event-loop thread, so nothing else writes
these numbers meanwhile. What can be read when scraped instead (the pool's state, the
caches' counters) is read then, and costs the request path nothing.

Label values are bounded: routes are the app's route templates (an unknown path counts
as `other`), error codes are the declared ones, and operation names are those of
documents that passed validation, at most `MAX_OPERATIONS` of them per process (after
that `other`), so a client inventing a new operation name per request cannot grow
the scrape without bound.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, ProcessCollector
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

# Distinct operation names kept as label values, `other` included.
MAX_OPERATIONS = 200
# Distinct error codes kept as label values (the declared codes are far fewer).
MAX_CODES = 300
# Distinct (route, status) pairs
MAX_ROUTES = 1000
OTHER = "other"

# Request latency: the p50 of a cached read is ~2-30 ms here, a close of rounds seconds.
LATENCY_BUCKETS = (
    0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
)  # fmt: skip
# The audit append rides with the COMMIT: milliseconds, more when a tenant's chain is busy.
AUDIT_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0)

CONTENT_TYPE = CONTENT_TYPE_LATEST


class _Histogram:
    """Bucket counts (not cumulative; the last is +Inf) and the sum of observations."""

    __slots__ = ("bounds", "counts", "total")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self.total = 0.0

    def observe(self, value: float) -> None:
        # Prometheus buckets are `le`: a value equal to a bound belongs to it
        self.counts[bisect_left(self.bounds, value)] += 1
        self.total += value

    def cumulative(self) -> list[tuple[str, float]]:
        out, running = [], 0
        for bound, count in zip((*self.bounds, float("inf")), self.counts, strict=True):
            running += count
            out.append((floatToGoString(bound), running))
        return out


def _bounded(table: dict[str, object], key: str, limit: int) -> str:
    """`key`, or `other` once `limit - 1` other keys are in `table`."""
    if key in table or len(table) < limit - 1:
        return key
    return OTHER


class Metrics:
    """One process's metrics, in a registry of its own (not the global one), so that
    several apps in one process (the tests) do not collide."""

    def __init__(self) -> None:
        self.http: dict[tuple[str, int], int] = {}
        self.http_seconds: dict[str, float] = {}
        self.operations: dict[str, _Histogram] = {}
        self.errors: dict[str, int] = {}
        self.audit = _Histogram(AUDIT_BUCKETS)
        self.websockets_open = 0
        self.websockets_closed: dict[str, int] = {}
        self.pool: tuple[Callable[[], dict[str, int]], Callable[[], int], int] | None = None
        self.caches: dict[str, Callable[[], tuple[int, int]]] = {}
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(_Collector(self))
        # CPU seconds, resident memory, open files of this process (read from /proc
        # when scraped; absent where there is no /proc)
        ProcessCollector(registry=self.registry)

    # --- the request path -----------------------------------------------------------

    def http_request(self, path: str, status: int, seconds: float) -> None:
        http = self.http
        key = (path, status)
        if key in http:
            http[key] += 1
        elif len(http) < MAX_ROUTES:
            http[key] = 1
        self.http_seconds[path] = self.http_seconds.get(path, 0.0) + seconds

    def operation(self, label: str, seconds: float) -> None:
        histogram = self.operations.get(label)
        if histogram is None:
            label = _bounded(self.operations, label, MAX_OPERATIONS)  # type: ignore[arg-type]
            histogram = self.operations.get(label)
            if histogram is None:
                histogram = self.operations[label] = _Histogram(LATENCY_BUCKETS)
        histogram.observe(seconds)

    def error(self, code: str) -> None:
        code = _bounded(self.errors, code, MAX_CODES)  # type: ignore[arg-type]
        self.errors[code] = self.errors.get(code, 0) + 1

    def audit_appended(self, seconds: float) -> None:
        self.audit.observe(seconds)

    def websocket_closed(self, outcome: str) -> None:
        outcome = _bounded(self.websockets_closed, outcome, MAX_CODES)  # type: ignore[arg-type]
        self.websockets_closed[outcome] = self.websockets_closed.get(outcome, 0) + 1

    # --- read when scraped ----------------------------------------------------------

    def watch_pool(
        self, stats: Callable[[], dict[str, int]], in_use: Callable[[], int], max_size: int
    ) -> None:
        """The pool's `get_stats()` (psycopg_pool) and connections in use, read at each
        scrape (in use from the Database: before the pool opens, its stats count the
        connection it will make as neither free nor used)."""
        self.pool = (stats, in_use, max_size)

    def watch_cache(self, name: str, counts: Callable[[], tuple[int, int]]) -> None:
        """A cache's (hits, misses) so far, read at each scrape."""
        self.caches[name] = counts

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _Collector(Collector):
    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[Metric]:
        m = self.metrics
        requests = CounterMetricFamily(
            "pingyi_http_requests", "HTTP requests by route and status", labels=["path", "status"]
        )
        for (path, status), n in sorted(m.http.items()):
            requests.add_metric([path, str(status)], n)
        yield requests
        seconds = CounterMetricFamily(
            "pingyi_http_request_seconds",
            "Seconds spent answering HTTP requests, by route",
            labels=["path"],
        )
        for path, total in sorted(m.http_seconds.items()):
            seconds.add_metric([path], total)
        yield seconds
        operations = HistogramMetricFamily(
            "pingyi_graphql_operation_duration_seconds",
            "GraphQL requests by operation name (or type and root fields when unnamed)",
            labels=["operation"],
        )
        for label, histogram in sorted(m.operations.items()):
            operations.add_metric([label], histogram.cumulative(), sum_value=histogram.total)
        yield operations
        errors = CounterMetricFamily(
            "pingyi_errors",
            "Errors answered, by extensions.code (GraphQL errors and coded HTTP refusals)",
            labels=["code"],
        )
        for code, n in sorted(m.errors.items()):
            errors.add_metric([code], n)
        yield errors
        audit = HistogramMetricFamily(
            "pingyi_audit_append_duration_seconds",
            "The COMMIT message that carries a transaction's audit events (their inserts,"
            " the chain trigger under the tenant's lock, and the commit)",
        )
        audit.add_metric([], m.audit.cumulative(), sum_value=m.audit.total)
        yield audit
        yield GaugeMetricFamily(
            "pingyi_websocket_connections",
            "WebSocket connections (subscriptions) open now",
            value=m.websockets_open,
        )
        closes = CounterMetricFamily(
            "pingyi_websocket_closed",
            "WebSocket connections ended, by outcome (OK or WS_<close code>)",
            labels=["outcome"],
        )
        for outcome, n in sorted(m.websockets_closed.items()):
            closes.add_metric([outcome], n)
        yield closes
        if m.pool is not None:
            yield from _pool_metrics(*m.pool)
        yield from _cache_metrics(m.caches)


def _cache_metrics(caches: dict[str, Callable[[], tuple[int, int]]]) -> Iterator[Metric]:
    hits = CounterMetricFamily(
        "pingyi_cache_hits", "Cache look-ups answered from the cache", labels=["cache"]
    )
    misses = CounterMetricFamily(
        "pingyi_cache_misses", "Cache look-ups that had to compute", labels=["cache"]
    )
    ratio = GaugeMetricFamily(
        "pingyi_cache_hit_ratio",
        "hits / (hits + misses) since start (0 before any look-up)",
        labels=["cache"],
    )
    for name, counts in sorted(caches.items()):
        h, m = counts()
        hits.add_metric([name], h)
        misses.add_metric([name], m)
        ratio.add_metric([name], h / (h + m) if h + m else 0.0)
    yield hits
    yield misses
    yield ratio


def _pool_metrics(
    stats_of: Callable[[], dict[str, int]], in_use: Callable[[], int], max_size: int
) -> Iterator[Metric]:
    stats = stats_of()
    available = int(stats.get("pool_available", 0))
    yield GaugeMetricFamily(
        "pingyi_db_pool_in_use", "Application connections checked out now", value=in_use()
    )
    yield GaugeMetricFamily(
        "pingyi_db_pool_idle", "Application connections open and free now", value=available
    )
    yield GaugeMetricFamily(
        "pingyi_db_pool_max",
        "Application connections at most (PINGYI_DB_POOL_SIZE)",
        value=max_size,
    )
    yield GaugeMetricFamily(
        "pingyi_db_pool_waiting",
        "Requests waiting for a free connection now",
        value=int(stats.get("requests_waiting", 0)),
    )
    yield CounterMetricFamily(
        "pingyi_db_pool_wait_seconds",
        "Seconds requests spent waiting for a connection",
        value=int(stats.get("requests_wait_ms", 0)) / 1000,
    )
    yield CounterMetricFamily(
        "pingyi_db_pool_timeouts",
        "Requests that got no connection in PINGYI_DB_POOL_TIMEOUT (503 UNAVAILABLE)",
        value=int(stats.get("requests_errors", 0)),
    )
