"""How to send a scoped read: one simple-query message, pipeline mode, or separate trips.

    python -m bench.roundtrip [--database-url URL] [--requests 3000] [--rounds 5]

Run by hand, never by the test suite. A read as the request path makes it: the scope
(`SET LOCAL app.account_id`, `SET LOCAL app.tenant_ids`) then one page of 20 org units,
all under row-level security as the application role, on a fresh database with one
township of 24 branches. Each way is timed over the same number of sequential reads
(one connection, one client: latency, not throughput), in interleaved rounds; the
medians, the ratios to the simple-query message and the client's CPU per read (what a
CPU-bound server pays) are printed.

- simple: `SET LOCAL …; SET LOCAL …; SELECT …` as one simple-query message, values
  bound client-side (what service/db.py does): one round trip, an implicit transaction;
- pipeline: psycopg's pipeline mode on an autocommit connection, the two SETs and the
  SELECT (extended protocol, server-side parameters, prepared after the first use) up
  to one Sync: one round trip, an implicit transaction;
- pipeline+tx: the same with an explicit BEGIN … COMMIT around it inside the pipeline;
- separate: BEGIN, SET LOCAL, SET LOCAL, SELECT, COMMIT as five round trips (what the
  foundation did, less its principal query).
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import psycopg

from bench.harness import app_role_url, fresh_database, migrated, say, seed

PAGE = (
    "SELECT id, name, kind FROM org_units WHERE parent_id = %(parent)s "
    "AND archived_at IS NULL ORDER BY id LIMIT 21"
)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--database-url", default=None, help="superuser URL; else embedded")
    parser.add_argument("--requests", type=int, default=3000, help="reads per way per round")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="pingyi-roundtrip-"))
    try:
        with fresh_database(args.database_url, workdir) as owner:
            settings = migrated(owner, workdir)
            data = asyncio.run(seed(settings, owner, townships=1, branches=24))
            with psycopg.connect(owner) as conn:
                found = conn.execute(
                    "SELECT id FROM accounts WHERE username = %s", (data.secretary,)
                ).fetchone()
            assert found is not None
            say(f"{args.rounds} rounds x {args.requests} reads per way, one connection")
            asyncio.run(
                measure(
                    app_role_url(settings, owner),
                    found[0],
                    data.secretary_tenant_id,
                    data.town_ids[0],
                    args,
                )
            )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


async def measure(
    app_url: str, account: int, tenant: int, parent: int, args: argparse.Namespace
) -> None:
    conn = await psycopg.AsyncConnection.connect(app_url, autocommit=True)
    sets = f"SET LOCAL app.account_id = '{account}'; SET LOCAL app.tenant_ids = '{tenant}'"
    client = psycopg.AsyncClientCursor(conn)

    async def simple() -> int:
        await client.execute(sets + "; " + client.mogrify(PAGE, {"parent": parent}))
        client.nextset()
        client.nextset()
        return len(await client.fetchall())

    async def pipeline(explicit: bool) -> int:
        async with conn.pipeline():
            cur = conn.cursor()
            if explicit:
                await cur.execute("BEGIN")
            await cur.execute(f"SET LOCAL app.account_id = '{account}'")
            await cur.execute(f"SET LOCAL app.tenant_ids = '{tenant}'")
            page = conn.cursor()
            await page.execute(PAGE, {"parent": parent}, prepare=True)
            if explicit:
                await cur.execute("COMMIT")
        return len(await page.fetchall())

    async def separate() -> int:
        cur = conn.cursor()
        await cur.execute("BEGIN")
        await cur.execute(f"SET LOCAL app.account_id = '{account}'")
        await cur.execute(f"SET LOCAL app.tenant_ids = '{tenant}'")
        await cur.execute(PAGE, {"parent": parent})
        rows = await cur.fetchall()
        await cur.execute("COMMIT")
        return len(rows)

    ways: dict[str, Callable[[], Awaitable[int]]] = {
        "simple": simple,
        "pipeline": lambda: pipeline(False),
        "pipeline+tx": lambda: pipeline(True),
        "separate": separate,
    }
    for name, way in ways.items():  # the same answer, and warm
        assert await way() == 21, name  # 24 branches, one archived: 23, limit 21
    per_request: dict[str, list[float]] = {name: [] for name in ways}
    cpu: dict[str, list[float]] = {name: [] for name in ways}
    for round_no in range(1, args.rounds + 1):
        for name, way in ways.items():
            started, cpu_started = time.perf_counter(), time.process_time()
            for _ in range(args.requests):
                await way()
            elapsed = time.perf_counter() - started
            per_request[name].append(elapsed / args.requests * 1e6)
            cpu[name].append((time.process_time() - cpu_started) / args.requests * 1e6)
            say(
                f"round {round_no} {name:<12} {per_request[name][-1]:8.1f} µs/read, "
                f"{cpu[name][-1]:6.1f} µs of client CPU"
            )
    await conn.close()
    base = statistics.median(per_request["simple"])
    print("\nmedian over rounds (one connection, sequential reads):")
    print("| way | µs per read | reads/s | vs simple | client CPU µs per read |")
    print("|---|---:|---:|---:|---:|")
    for name, samples in per_request.items():
        median = statistics.median(samples)
        print(
            f"| {name} | {median:.1f} | {1e6 / median:.0f} | {base / median:.2f}× "
            f"| {statistics.median(cpu[name]):.1f} |"
        )


if __name__ == "__main__":
    main()
