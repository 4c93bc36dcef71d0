"""A branch secretary's member list with 三不 flags, over HTTP, on a county-sized ledger.

    python -m bench.member_list [--database-url URL] [--connections 16] [--duration 10]
                                [--warmup 2] [--rounds 3] [--loader auto|wrk|httpx]
                                [--tenants 100 --branches 2000 --members 40000 --months 24]

Run by hand, never by the test suite. It writes a county with `bench.county` (100
tenants, 2,000 branches, 40,000 members, two years of dues and meetings) into a fresh
database, makes a branch secretary (支部书记) of the county's fullest branch through the
services, serves the app as `bench.children` does (uvicorn, one worker, in a thread)
and loads `POST /graphql` with the first page of that branch's members, two ways in
alternating rounds, so that the cost of the flags reads as a ratio within one run:

plain  members(orgUnitId, first: 50) { nodes { name idNumber branch { name } } }
lapse  the same with  lapse { flags { kind months } }  on each member (三不, over the
       last 24 closed months of dues, meetings and tasks)

Before loading: both answer the branch's members (the same names in the same order),
the flagged members the generator made show their flags, another tenant's branch is
NOT_FOUND; then the SQL statements (and round trips) one request sends, counted by the
database's observers over a few warm requests.
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import psycopg

from bench.children import Endpoint, login, measure, serving
from bench.county import Branch, County, add_shape_options, generate, shape_of
from bench.harness import _login, fresh_database, migrated, say
from service.app import create_app
from service.auth.service import operator_principal
from service.authz.roles import Role
from service.config import Settings
from service.db import libpq_url
from service.runtime import build_state, install_field_cipher
from service.schema.ids import to_global_id

PAGE = 50
FIELDS = "name idNumber branch { name }"
LAPSE = "lapse { flags { kind months } }"


def query(extra: str = "") -> str:
    """The measured document; `extra` adds member fields (the flags, or more later)."""
    return (
        "query Members($unit: ID!) { members(orgUnitId: $unit, first: "
        f"{PAGE}) {{ nodes {{ {FIELDS} {extra} }} }} }}"
    )


QUERIES = {"plain": query(), "lapse": query(LAPSE)}


def fullest_branch(owner: str, county: County) -> tuple[Branch, int]:
    """The county's branch with the most members (ties: the lowest id), and how many."""
    scope = ",".join(str(t) for t in county.tenant_ids)
    with psycopg.connect(libpq_url(owner)) as conn:
        conn.execute("SELECT set_config('app.tenant_ids', %s, false)", (scope,))
        row = conn.execute(
            "SELECT branch_id, count(*) FROM members WHERE branch_id = ANY(%s)"
            " GROUP BY branch_id ORDER BY count(*) DESC, branch_id LIMIT 1",
            ([b.id for b in county.branches],),
        ).fetchone()
    assert row is not None, "the county has members"
    branch = next(b for b in county.branches if b.id == row[0])
    return branch, int(row[1])


async def make_secretary(settings: Settings, owner: str, branch: Branch, tag: str) -> str:
    """A branch secretary of `branch`, made by the CLI operator through the services."""
    state = build_state(settings, owner)
    try:
        async with state.db.transaction() as tx:
            op = await operator_principal(tx, name="bench")
            unit = SimpleNamespace(id=branch.id)
            role = Role.BRANCH_SECRETARY
            return await _login(tx, op, f"{tag}.secretary", "基准支部书记", role, unit)
    finally:
        await state.db.dispose()


def post(client: httpx.Client, token: str, body: bytes) -> dict[str, Any]:
    response = client.post(
        "/graphql",
        content=body,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    if response.status_code != 200:
        raise SystemExit(f"/graphql: {response.status_code} {response.text[:500]}")
    payload: dict[str, Any] = response.json()
    return payload


def body_of(document: str, unit_gid: str) -> bytes:
    return json.dumps({"query": document, "variables": {"unit": unit_gid}}).encode()


def verify(base: str, token: str, branch: Branch, members: int, other_gid: str) -> dict[str, int]:
    """Both documents answer the branch's first page; flags appear; another tenant's
    branch is NOT_FOUND. The page's size and its number of flags."""
    gid = to_global_id("OrgUnit", branch.id)
    with httpx.Client(base_url=base, timeout=60) as client:
        answers = {}
        for name, document in QUERIES.items():
            payload = post(client, token, body_of(document, gid))
            if "errors" in payload:
                raise SystemExit(f"{name}: {payload['errors']}")
            answers[name] = payload["data"]["members"]["nodes"]
        names = {k: [m["name"] for m in v] for k, v in answers.items()}
        if names["plain"] != names["lapse"] or len(names["plain"]) != min(members, PAGE):
            raise SystemExit(f"the two answers differ or are short: {names}")
        if any(m["branch"]["name"] != branch.name for m in answers["plain"]):
            raise SystemExit("a member of another branch is listed")
        flags = sum(len(m["lapse"]["flags"]) for m in answers["lapse"] if m["lapse"])
        say(f"check: {len(names['plain'])} members of {branch.name}, {flags} 三不 flags among them")
        payload = post(client, token, body_of(QUERIES["plain"], other_gid))
        codes = [e.get("extensions", {}).get("code") for e in payload.get("errors", [])]
        if codes != ["NOT_FOUND"]:
            raise SystemExit(f"another tenant's branch answered {payload}")
        say("check: another tenant's branch: NOT_FOUND")
    return {"page": len(names["plain"]), "flags": flags}


def count_statements(state: Any, base: str, token: str, gid: str) -> dict[str, dict[str, Any]]:
    """Per document: statements and messages (round trips) of one request, after 5 warm
    ones (principal cached, loaders and caches warm), mean over 10; and one listed."""
    seen: list[tuple[str, int]] = []
    observe: Callable[[str, int], None] = lambda message, n: seen.append((message, n))  # noqa: E731
    counts: dict[str, dict[str, Any]] = {}
    with httpx.Client(base_url=base, timeout=60) as client:
        for name, document in QUERIES.items():
            body = body_of(document, gid)
            for _ in range(5):
                post(client, token, body)
            state.db.observers.append(observe)
            try:
                seen.clear()
                post(client, token, body)
                listed = [message for message, _ in seen]
                seen.clear()
                for _ in range(10):
                    post(client, token, body)
                counts[name] = {
                    "statements": sum(n for _, n in seen) / 10,
                    "messages": len(seen) / 10,
                    "listed": listed,
                }
            finally:
                state.db.observers.remove(observe)
            c = counts[name]
            say(
                f"statements per request, {name}: {c['statements']:g} in {c['messages']:g} messages"
            )
            for k, message in enumerate(listed, 1):
                parts = [" ".join(part.split()) for part in message.split(";") if part.strip()]
                reads = [part for part in parts if not part.startswith("SET LOCAL")]
                say(f"    message {k}: {len(parts) - len(reads)} SET LOCAL, then")
                for part in reads:
                    say(f"      {part[:110]}")
    return counts


def report(results: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    say("")
    header = f"{'round':<7}{'query':<8}{'req/s':>9}{'p50 ms':>9}{'p90 ms':>9}{'p99 ms':>9}"
    say(header + f"{'requests':>10}{'errors':>8}")
    for r in results:
        say(
            f"{r['round']:<7}{r['endpoint']:<8}{r['rps']:>9.1f}{r['p50_ms']:>9.2f}"
            f"{r['p90_ms']:>9.2f}{r['p99_ms']:>9.2f}{r['requests']:>10}"
            f"{r['errors'] + r['non_2xx']:>8}"
        )
    medians: dict[str, dict[str, float]] = {}
    for name in QUERIES:
        mine = [r for r in results if r["endpoint"] == name]
        medians[name] = {
            k: statistics.median(r[k] for r in mine) for k in ("rps", "p50_ms", "p90_ms", "p99_ms")
        }
        m = medians[name]
        say(
            f"{'median':<7}{name:<8}{m['rps']:>9.1f}{m['p50_ms']:>9.2f}"
            f"{m['p90_ms']:>9.2f}{m['p99_ms']:>9.2f}"
        )
    p, f = medians["plain"], medians["lapse"]
    say("")
    say(
        f"lapse/plain: throughput {f['rps'] / p['rps']:.2f}x, "
        f"median latency {f['p50_ms'] / p['p50_ms']:.2f}x"
    )
    return medians


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m bench.member_list", description=__doc__.split("\n")[0]
    )
    p.add_argument(
        "--database-url",
        default=os.environ.get("PINGYI_DATABASE_URL"),
        help="an owner/superuser URL: a fresh database is created there and dropped at the "
        "end (default: $PINGYI_DATABASE_URL, else embedded pgserver)",
    )
    p.add_argument("--connections", type=int, default=16, help="concurrent connections (16)")
    p.add_argument("--threads", type=int, default=1, help="wrk threads (1)")
    p.add_argument("--duration", type=float, default=10, help="seconds measured per run (10)")
    p.add_argument("--warmup", type=float, default=2, help="seconds of warm-up per run (2)")
    p.add_argument("--rounds", type=int, default=3, help="alternating rounds plain, lapse (3)")
    p.add_argument("--timeout", type=float, default=5, help="per-request timeout, seconds (5)")
    p.add_argument("--loader", choices=["auto", "wrk", "httpx"], default="auto")
    p.add_argument("--json", type=Path, help="also write the results to this file")
    add_shape_options(p)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    shape = shape_of(args)
    loader = args.loader
    if loader == "auto":
        loader = "wrk" if shutil.which("wrk") else "httpx"
    workdir = Path(tempfile.mkdtemp(prefix="pingyi-members-"))
    # Registered before pgserver's own exit hook, so it runs after the server has stopped.
    atexit.register(shutil.rmtree, workdir, ignore_errors=True)
    ttl = max(3600, int(4 * args.rounds * (args.warmup + args.duration)) + 600)
    with fresh_database(args.database_url, workdir) as owner:
        settings = migrated(owner, workdir, token_ttl=ttl)
        install_field_cipher(settings)
        say(f"generating a county of {shape} ...")
        county = generate(owner, shape)
        say(f"county written in {county.seconds:.1f} s ({sum(county.counts.values())} rows)")
        branch, members = fullest_branch(owner, county)
        other = next(b for b in county.branches if b.tenant_id != branch.tenant_id)
        username = asyncio.run(make_secretary(settings, owner, branch, county.code))
        state = build_state(settings, owner)
        app = create_app(state)
        gid = to_global_id("OrgUnit", branch.id)
        eps = [Endpoint(name, "/graphql", body_of(doc, gid)) for name, doc in QUERIES.items()]
        with serving(app) as base:
            token = login(base, username)
            page = verify(base, token, branch, members, to_global_id("OrgUnit", other.id))
            counts = count_statements(state, base, token, gid)
            say(
                f"load: {loader}, {args.connections} connections, {args.rounds} rounds of "
                f"{args.warmup:g} s warm-up + {args.duration:g} s per query"
            )
            t0 = time.perf_counter()
            results = measure(base, token, eps, args, loader, workdir)
            say(f"(measured in {time.perf_counter() - t0:.0f} s)")
        medians = report(results)
        say(
            f"machine: {os.cpu_count()} CPUs, {platform.platform()}, "
            f"Python {platform.python_version()}"
        )
        if args.json:
            args.json.write_text(
                json.dumps(
                    {
                        "runs": results,
                        "medians": medians,
                        "statements": counts,
                        "page": page,
                        "branch_members": members,
                        "county_seconds": county.seconds,
                        "county_rows": county.counts,
                        "loader": loader,
                    },
                    indent=2,
                )
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
