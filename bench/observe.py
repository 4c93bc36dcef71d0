"""What observing a request costs: the edge's per-request work, in process; and the
same over HTTP, before and after, interleaved.

    python -m bench.observe [--requests N]
    python -m bench.observe --http [--database-url URL] [--rounds 3 --duration 5 ...]

Times, per request, what `EdgeMiddleware` does for observability once a GraphQL request
has been answered (service/observability: `Observer.start` + `finish`: route counter
and seconds, the operation's histogram, the JSON access line written to /dev/null),
against what the edge did before (two `collections.Counter` additions), and with the
access line off and tracing on (in-memory exporter, when the SDK is installed). The
GraphQL work itself is left out: a W1 request costs ~1.6 ms of CPU here (README,
Performance), so a figure of µs is the share to compare with that.

`--http` serves `bench.children`'s data and load (W1: `children(first: 20)` as a
township secretary) from one app and, round by round, swaps the app's observer between
"before" (the edge's old two counters, no line) and "after" (metrics and the JSON
access line, written to /dev/null), so both face the same machine noise.
"""

from __future__ import annotations

import argparse
import logging
import os
import time
import uuid
from collections import Counter
from typing import Any

from graphql import parse

from service.auth.principal import AccountSummary, Principal
from service.observability import Metrics, Observer, build_tracing
from service.observability.logs import ACCESS_LOGGER, JsonFormatter

QUERY = "query Children($p: ID!) { children(parentId: $p, first: 20) { edges { node { id } } } }"


class _Prepared:
    """The schema's prepared documents, as the observer reads them."""

    def __init__(self) -> None:
        self.document = type("P", (), {"document": parse(QUERY)})()

    def prepared(self, query: str, name: str | None) -> Any:
        return self.document


def _principal() -> Principal:
    account = AccountSummary(
        id=42,
        username="x",
        display_name="x",
        home_tenant_id=7,
        home_org_unit_id=9,
        is_active=True,
        created_at=None,  # type: ignore[arg-type]
    )
    return Principal(
        account_id=42,
        username="x",
        grants=(),
        tenant_ids=frozenset({7}),
        session_id=uuid.uuid4(),
        account=account,
    )


def _observe(observer: Observer, n: int) -> float:
    principal = _principal()
    started = time.perf_counter()
    for i in range(n):
        scope: dict[str, Any] = {
            "method": "POST",
            "pingyi.request_id": f"abc-{i:x}",
            "pingyi.principal": principal,
            "pingyi.operation_key": (QUERY, "Children"),
        }
        span = observer.start(scope, {})
        observer.finish(scope, "/graphql", 200, 0.002, span)
    return (time.perf_counter() - started) / n * 1e6


def _before(n: int) -> float:
    requests: Counter[tuple[str, int]] = Counter()
    seconds: Counter[str] = Counter()
    started = time.perf_counter()
    for _ in range(n):
        requests[("/graphql", 200)] += 1
        seconds["/graphql"] += 0.002
    return (time.perf_counter() - started) / n * 1e6


class _Before(Observer):
    """What the edge did before service/observability: two counters, nothing else."""

    def __init__(self) -> None:
        super().__init__(Metrics())
        self.requests: Counter[tuple[str, int]] = Counter()
        self.seconds: Counter[str] = Counter()

    def start(self, scope: dict[str, Any], headers: dict[str, str]) -> Any:
        return None

    def capture(self, scope: dict[str, Any], body: bytes) -> None:
        return None

    def note_errors(self, scope: dict[str, Any], errors: Any) -> None:
        return None

    def finish(
        self, scope: dict[str, Any], path: str, status: int, seconds: float, span: Any
    ) -> None:
        self.requests[(path, status)] += 1
        self.seconds[path] += seconds


def _http(args: argparse.Namespace) -> None:
    import asyncio
    import shutil
    import statistics
    import tempfile
    from pathlib import Path

    from bench.children import (
        TOWNSHIPS,
        endpoints,
        fixture_of,
        login,
        measure,
        serving,
        verify,
    )
    from bench.harness import children_route, fresh_database, migrated, say, seed
    from service.app import create_app
    from service.runtime import build_state

    loader = "wrk" if shutil.which("wrk") else "httpx"
    workdir = Path(tempfile.mkdtemp(prefix="pingyi-bench-observe-"))
    with fresh_database(args.database_url, workdir) as owner:
        settings = migrated(owner, workdir, token_ttl=3600)
        dataset = asyncio.run(seed(settings, owner, townships=TOWNSHIPS, branches=24))
        fixture = fixture_of(dataset)
        state = build_state(settings, owner)
        app = create_app(state, extra_routes=[children_route("principal", {fixture.tenant_id})])
        after, before = state.observer, _Before()
        eps = endpoints(fixture)
        graphql = [ep for ep in eps if ep.name == "graphql"]
        one = argparse.Namespace(**{**vars(args), "rounds": 1})
        rps: dict[str, list[float]] = {"before": [], "after": []}
        with serving(app) as base:
            token = login(base, fixture.username)
            verify(base, token, fixture, eps)
            for r in range(args.rounds):
                for name, observer in (("before", before), ("after", after)):
                    state.observer = observer
                    (result,) = measure(base, token, graphql, one, loader, workdir)
                    rps[name].append(result["rps"])
                    say(f"  round {r + 1} {name:<6} {result['rps']:8.1f} req/s")
        b, a = statistics.median(rps["before"]), statistics.median(rps["after"])
        ratios = [x / y for x, y in zip(rps["after"], rps["before"], strict=True)]
        print(f"W1 over HTTP ({loader}), medians: before {b:.1f} req/s, after {a:.1f} req/s,")
        print(f"after/before {a / b:.3f} (per round: {', '.join(f'{x:.3f}' for x in ratios)})")
    shutil.rmtree(workdir, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=50_000)
    parser.add_argument("--http", action="store_true", help="before/after over HTTP")
    parser.add_argument("--database-url", default=os.environ.get("PINGYI_DATABASE_URL"))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=5)
    parser.add_argument("--warmup", type=float, default=1)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=5)
    args = parser.parse_args()
    n = args.requests
    access = logging.getLogger(ACCESS_LOGGER)
    sink = logging.StreamHandler(open(os.devnull, "w"))
    sink.setFormatter(JsonFormatter())
    access.addHandler(sink)
    access.propagate = False
    if args.http:
        access.setLevel(logging.INFO)
        _http(args)
        return

    def observer(tracing: bool = False) -> Observer:
        from service.config import Settings

        exporter = None
        if tracing:
            from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
                InMemorySpanExporter,
            )

            exporter = InMemorySpanExporter()
        found = Observer(Metrics(), build_tracing(Settings(), exporter) if tracing else None)
        found.schema = _Prepared()
        return found

    rows = [("before: two Counter additions", _before(n))]
    access.setLevel(logging.WARNING)
    rows.append(("metrics only (PINGYI_ACCESS_LOG=0)", _observe(observer(), n)))
    access.setLevel(logging.INFO)
    rows.append(("metrics + JSON access line (default)", _observe(observer(), n)))
    try:
        rows.append(("+ tracing (in-memory exporter)", _observe(observer(True), n // 5)))
    except ImportError:
        pass
    for label, micros in rows:
        print(f"{label:<40} {micros:8.2f} µs/request")


if __name__ == "__main__":
    main()
