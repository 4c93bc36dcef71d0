"""A province on one PostgreSQL: generate it once, then measure it beside a county.

    python -m bench.province generate [--only county|province] [--force]
    python -m bench.province evaluate [--only county|province] [--mass 18] [--services]
    python -m bench.province measure  [--runs 15] [--warmup 3] [--plans DIR] [--json FILE]
    python -m bench.province policy   [--runs 5]
    (all take --admin-url URL, default postgresql://postgres@127.0.0.1:5432/postgres)

Why: issue 11 asks how far one PostgreSQL carries a province (20 counties, 2,000
tenants, 40,000 branches, 1,000,000 members with a year of dues and meetings) and
whether the branch-level operations stay flat from a county (40,000 members) to the
province (at most 1.5x). Writing that through the services would take a day, so
`generate` reuses `bench.county.generate` (COPY on one owner connection per county,
foreign-key triggers off as a superuser, the services' own id sequences, paths and
PII sealing) once per county, under one platform root. The databases are KEPT
(`pingyi_province_bench`, `pingyi_county_bench`) with the field and signing keys in
`--workdir`: on a shared 2-CPU machine the province takes minutes to write, so it is
written once and measured many times.

`evaluate` opens one evaluation round per branch of the first county through the
services and brings them to balloting, then writes the ballots as the per-position
counters the service keeps (migration 0015); the other counties' rounds are cloned
from one of those in SQL (`--services` opens them all through the services: slow).

`measure` sends, in each database, one GraphQL request at a time over HTTP through the
ASGI app, with real logins, JWT, Casbin and forced RLS under the application role:

- branch member list: `members(orgUnitId: <branch>, first: 50)`, as its branch
  secretary;
- tenant overview: `evaluationOverview(<township>)` with the tenant's sum and its
  branches, as the township's committee secretary;
- branch tally: `advanceEvaluationRound(<round>, BALLOTING)` (close balloting: take
  the counts, proposals), as the branch secretary; the round is put back afterwards;
- county overview: `evaluationOverview(<county>) { tenants(first: 100) }`, as the
  county organizer;

interleaved county/province, medians reported, plus `EXPLAIN (ANALYZE, BUFFERS)` of
every SELECT the request sent, replayed as the application role with the request's own
scope (buffers, rows thrown away by filters, sequential scans). It exits non-zero when
a branch-level workload grows more than 1.5x.

`policy` replays the read workloads' statements with the tenant policy as migrated and
rewritten to evaluate the scope once per statement, in a rolled-back transaction.
Figures and the Citus plan: docs/scaling.md. Run by hand, never by the test suite.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
import time
import uuid
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy.engine import make_url

from bench.county import Shape, generate
from bench.evaluations import RESTORE_COUNTERS, _open_to_balloting, _owner
from bench.harness import bench_settings, say
from service.config import Settings
from service.db import create_database_if_missing, libpq_url
from service.migrate import migrate
from service.runtime import install_field_cipher

PROVINCE_DB = "pingyi_province_bench"
COUNTY_DB = "pingyi_county_bench"
DEFAULT_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
DEFAULT_WORKDIR = Path.home() / ".cache" / "pingyi-bench-province"
MONTHS = 12  # "a year of dues and meetings"


@dataclass(frozen=True)
class Plan:
    """One data set: `counties` counties, each of `per_county` shape."""

    database: str
    counties: int
    per_county: Shape


PLANS = {
    # 20 x (100 tenants, 2,000 branches, 50,000 members) = 2,000 / 40,000 / 1,000,000
    "province": Plan(PROVINCE_DB, 20, Shape(100, 2000, 50_000, MONTHS, 1)),
    # bench.county's default county, with the province's year of history
    "county": Plan(COUNTY_DB, 1, Shape(100, 2000, 40_000, MONTHS, 1)),
}


def db_url(admin_url: str, name: str) -> str:
    return make_url(admin_url).set(database=name).render_as_string(hide_password=False)


def settings_for(owner: str, workdir: Path) -> Settings:
    """The bench's settings: the kept keys in `workdir` (one per data set would do;
    one for both keeps the sealing identical), the service's defaults otherwise."""
    workdir.mkdir(parents=True, exist_ok=True)
    return bench_settings(owner, workdir, token_ttl=24 * 3600)


def meta_path(workdir: Path, database: str) -> Path:
    return workdir / f"{database}.json"


def cmd_generate(args: argparse.Namespace) -> int:
    names = [args.only] if args.only else ["county", "province"]
    for name in names:
        plan = PLANS[name]
        if args.counties is not None and name == "province":
            plan = Plan(plan.database, args.counties, plan.per_county)
        owner = db_url(args.admin_url, plan.database)
        meta = meta_path(args.workdir, plan.database)
        if meta.exists() and not args.force:
            say(f"{plan.database}: already generated ({meta}); --force to write it again")
            continue
        if args.force:
            with psycopg.connect(libpq_url(args.admin_url), autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{plan.database}" WITH (FORCE)')
        create_database_if_missing(args.admin_url, plan.database)
        settings = settings_for(owner, args.workdir)
        say(f"{plan.database}: migrating ...")
        migrate(owner, settings)
        install_field_cipher(settings)
        counties: list[dict[str, Any]] = []
        started = time.perf_counter()
        totals: dict[str, int] = {}
        for k in range(plan.counties):
            shape = Shape(
                plan.per_county.tenants,
                plan.per_county.branches,
                plan.per_county.members,
                plan.per_county.months,
                seed=plan.per_county.seed + k,
            )
            say(f"{plan.database}: county {k + 1}/{plan.counties} {shape} ...")
            county = generate(owner, shape, progress=lambda m: say("  " + m))
            for table, n in county.counts.items():
                totals[table] = totals.get(table, 0) + n
            counties.append(
                {"code": county.code, "county_id": county.county_id, "seconds": county.seconds}
            )
            # Written per county, so a run cut short still says what is there.
            meta.with_suffix(".partial").write_text(
                json.dumps({"counties": counties, "counts": totals}, indent=2)
            )
        seconds = time.perf_counter() - started
        meta.write_text(
            json.dumps(
                {
                    "database": plan.database,
                    "counties": counties,
                    "counts": totals,
                    "rows": sum(totals.values()),
                    "seconds": seconds,
                    "generated_on": date.today().isoformat(),
                },
                indent=2,
            )
        )
        say(f"{plan.database}: {sum(totals.values())} rows in {seconds:.0f} s")
        for table, n in totals.items():
            say(f"  {table:<20}{n:>12}")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    """One evaluation round per branch of every county in balloting, with every roster
    member's and `--mass` mass representatives' ballots counted: what a branch tally
    and the overviews read. The first county's rounds are opened and advanced through
    the services (`bench.evaluations`' own step) and their ballots written by COPY;
    the other counties' are cloned from one of them in SQL unless `--services`. Once
    per data set (kept in the metadata: a county already done is skipped)."""
    names = [args.only] if args.only else ["county", "province"]
    for name in names:
        plan = PLANS[name]
        owner = db_url(args.admin_url, plan.database)
        path = meta_path(args.workdir, plan.database)
        meta = json.loads(path.read_text())
        settings = settings_for(owner, args.workdir)
        install_field_cipher(settings)
        started = time.perf_counter()
        for k, county in enumerate(meta["counties"]):
            if county.get("rounds"):
                continue
            t0 = time.perf_counter()
            if k > 0 and not args.services:
                tenants = tenant_ids(owner, county["county_id"])
                template = meta["counties"][0].get("template_round") or first_round(
                    owner, meta["counties"][0]["county_id"]
                )
                with psycopg.connect(libpq_url(owner), autocommit=True) as conn:
                    made = clone_evaluations(conn, template, tenants, args.mass)
                county.update(rounds=made["evaluation_rounds"], cloned=made)
                say(
                    f"{plan.database}: county {k + 1}/{len(meta['counties'])}: cloned in SQL"
                    f" {made} in {time.perf_counter() - t0:.0f} s"
                )
                path.write_text(json.dumps(meta, indent=2))
                continue
            ids, batch = asyncio.run(_open_to_balloting(settings, owner, county["county_id"]))
            opened = time.perf_counter() - t0
            tenants = [county["county_id"], *tenant_ids(owner, county["county_id"])]
            with _owner(libpq_url(owner), tenants) as conn:
                votes = write_ballots(conn, ids, args.mass, seed=k + 1)
            county.update(rounds=len(ids), batch=str(batch), votes=votes, template_round=ids[0])
            say(
                f"{plan.database}: county {k + 1}/{len(meta['counties'])}: {len(ids)} rounds "
                f"opened in {opened:.0f} s, {votes} votes, {time.perf_counter() - t0:.0f} s"
            )
            path.write_text(json.dumps(meta, indent=2))
        meta["evaluation_seconds"] = meta.get("evaluation_seconds", 0) + (
            time.perf_counter() - started
        )
        path.write_text(json.dumps(meta, indent=2))
    return 0


def write_ballots(conn: psycopg.Connection[Any], ids: list[int], mass: int, seed: int) -> int:
    """Every roster member's ballot and `mass` representatives' per round, as the
    service keeps them since migration 0015: the per-position counters that
    `evaluation_count_ballot` adds to, with participation rows and used tokens to match
    (as `bench.evaluations` writes them, without its reference table of single votes).
    Returns the number of graded entries counted."""
    rng = random.Random(seed)
    roster: dict[int, list[tuple[int, int, bool]]] = {}
    for tenant, rid, member, may_vote in conn.execute(
        "SELECT tenant_id, round_id, member_id, may_vote FROM evaluation_entries"
        " WHERE round_id = ANY(%s) AND position IS NOT NULL ORDER BY round_id, position",
        (ids,),
    ):
        roster.setdefault(rid, []).append((tenant, member, may_vote))
    graded = 0
    with conn.transaction():
        with conn.cursor().copy(
            "COPY evaluation_counts (tenant_id, round_id, position, excellent, qualified,"
            " basic, unqualified) FROM STDIN"
        ) as copy:
            for rid, people in roster.items():
                tenant = people[0][0]
                # A branch where most are qualified, some excellent, a few basic.
                weights = [rng.choice((1, 1, 2, 2, 2, 2, 2, 3)) for _ in people]
                counts = [[0, 0, 0, 0] for _ in people]
                voters = [i for i, p in enumerate(people) if p[2]] + [-1] * mass
                for who in voters:
                    for i, w in enumerate(weights):
                        if i == who:
                            continue  # nobody grades themselves: a blank
                        grade = w if rng.random() < 0.8 else rng.randint(0, 4)
                        if grade:
                            counts[i][grade - 1] += 1
                            graded += 1
                for position, c in enumerate(counts, start=1):
                    copy.write_row((tenant, rid, position, *c))
        with conn.cursor().copy(
            "COPY evaluation_participation (tenant_id, round_id, voter_member_id) FROM STDIN"
        ) as copy:
            for rid, people in roster.items():
                for tenant, member, may_vote in people:
                    if may_vote:
                        copy.write_row((tenant, rid, member))
        with conn.cursor().copy(
            "COPY evaluation_ballot_tokens (tenant_id, round_id, token_hash, used, expires_at)"
            " FROM STDIN"
        ) as copy:
            for rid, people in roster.items():
                for _ in range(mass):
                    copy.write_row((people[0][0], rid, os.urandom(32), True, "2100-01-01"))
    conn.execute("ANALYZE evaluation_counts, evaluation_participation, evaluation_entries")
    return graded


# --------------------------------------------------------------------------- measure

PAGE = 50
MEMBERS_DOC = (
    "query($unit: ID!) { members(orgUnitId: $unit, first: 50) {"
    " nodes { name idNumber branch { name } } } }"
)
DISTRIBUTION = "distribution { roster excellent qualified basic unqualified pending }"
TENANT_DOC = (
    "query($unit: ID!, $year: Int!, $half: Int!) {"
    " evaluationOverview(orgUnitId: $unit, year: $year, half: $half) {"
    f" tenants(first: 1) {{ nodes {{ branches rounds {DISTRIBUTION} }} }}"
    f" branches(first: 50) {{ nodes {{ stage branch {{ name }} {DISTRIBUTION} }} }} }} }}"
)
COUNTY_DOC = (
    "query($unit: ID!, $year: Int!, $half: Int!) {"
    " evaluationOverview(orgUnitId: $unit, year: $year, half: $half) {"
    f" tenants(first: 100) {{ nodes {{ branches rounds tenant {{ name }} {DISTRIBUTION} }} }}"
    " } }"
)
TALLY_DOC = (
    "mutation($round: ID!) { advanceEvaluationRound(roundId: $round, expectedStage: BALLOTING)"
    " { round { stage } } }"
)
# Puts the measured round back in balloting after a timed close, its counters back
# from the entries (untimed; as the owner).
RESET_ROUND = (
    RESTORE_COUNTERS.format(rounds="r.tenant_id = %(tenant)s AND r.id = %(round)s"),
    "UPDATE evaluation_rounds SET stage = 'balloting', closed_at = NULL, ballots_cast = NULL,"
    " roster_voters = NULL WHERE tenant_id = %(tenant)s AND id = %(round)s",
    "UPDATE evaluation_entries SET excellent = NULL, qualified = NULL, basic = NULL,"
    " unqualified = NULL, blank = NULL, computed_grade = NULL,"
    " computed_rule = NULL WHERE tenant_id = %(tenant)s AND round_id = %(round)s",
)
WORKLOADS = ("branch_members", "tenant_overview", "branch_tally", "county_overview")
BRANCH_LEVEL = ("branch_members", "branch_tally")  # may grow at most 1.5x


@dataclass
class Target:
    """One data set's measured branch, its tenant and county, and their officers."""

    name: str
    owner: str
    county_id: int
    tenant_id: int
    branch_id: int
    branch_name: str
    branch_members: int
    round_id: int
    year: int
    half: int
    other_branch_id: int  # a branch of another tenant (the isolation check)
    users: dict[str, str]  # branch / tenant / county -> username


def pick(owner: str, meta: dict[str, Any], size: int) -> dict[str, Any]:
    """The first county's first tenant's lowest-id branch with `size` members (the
    same size in both data sets, so the two measure the same work), its round."""
    county_id = meta["counties"][0]["county_id"]
    tenants = sorted(tenant_ids(owner, county_id))
    with psycopg.connect(libpq_url(owner)) as conn:
        conn.execute("SELECT set_config('app.tenant_ids', %s, false)", (str(tenants[0]),))
        row = conn.execute(
            "SELECT m.branch_id, u.name, count(*) FROM members m JOIN org_units u"
            " ON u.tenant_id = m.tenant_id AND u.id = m.branch_id WHERE m.tenant_id = %s"
            " GROUP BY m.branch_id, u.name ORDER BY abs(count(*) - %s), m.branch_id LIMIT 1",
            (tenants[0], size),
        ).fetchone()
        assert row is not None, "the tenant has members"
        rnd = conn.execute(
            "SELECT id, year, half FROM evaluation_rounds WHERE tenant_id = %s AND branch_id = %s",
            (tenants[0], row[0]),
        ).fetchone()
        assert rnd is not None, "run `evaluate` first"
        conn.execute("SELECT set_config('app.tenant_ids', %s, false)", (str(tenants[1]),))
        other = conn.execute(
            "SELECT min(id) FROM org_units WHERE tenant_id = %s AND kind = 'branch'",
            (tenants[1],),
        ).fetchone()
    assert other is not None
    return {
        "county_id": county_id,
        "tenant_id": tenants[0],
        "branch_id": int(row[0]),
        "branch_name": str(row[1]),
        "branch_members": int(row[2]),
        "round_id": int(rnd[0]),
        "year": int(rnd[1]),
        "half": int(rnd[2]),
        "other_branch_id": int(other[0]),
    }


async def make_officers(settings: Settings, owner: str, chosen: dict[str, Any]) -> dict[str, str]:
    """A branch secretary, the tenant's committee secretary and a county organizer,
    made by the CLI operator through the services (once per data set)."""
    from types import SimpleNamespace

    from bench.harness import _login
    from service.auth.service import operator_principal
    from service.authz.roles import Role
    from service.runtime import build_state

    state = build_state(settings, owner)
    tag = f"prov{chosen['branch_id']}"
    try:
        async with state.db.transaction() as tx:
            op = await operator_principal(tx, name="bench")
            made = {}
            for who, role, unit, shown in (
                ("branch", Role.BRANCH_SECRETARY, chosen["branch_id"], "基准支部书记"),
                ("tenant", Role.COMMITTEE_SECRETARY, chosen["tenant_id"], "基准党委书记"),
                ("county", Role.COUNTY_ORGANIZER, chosen["county_id"], "基准组织部"),
            ):
                unit_ns = SimpleNamespace(id=unit)
                made[who] = await _login(tx, op, f"{tag}.{who}", shown, role, unit_ns)
            return made
    finally:
        await state.db.dispose()


def target(args: argparse.Namespace, name: str, size: int) -> Target:
    plan = PLANS[name]
    owner = db_url(args.admin_url, plan.database)
    path = meta_path(args.workdir, plan.database)
    meta = json.loads(path.read_text())
    if "measure" not in meta:
        chosen = pick(owner, meta, size)
        settings = settings_for(owner, args.workdir)
        chosen["users"] = asyncio.run(make_officers(settings, owner, chosen))
        meta["measure"] = chosen
        path.write_text(json.dumps(meta, indent=2))
    return Target(name=name, owner=owner, **meta["measure"])


def _reset(t: Target) -> None:
    with psycopg.connect(libpq_url(t.owner), autocommit=True) as conn:
        conn.execute("SELECT set_config('app.tenant_ids', %s, false)", (str(t.tenant_id),))
        with conn.transaction():  # all or nothing: a second reset would find counters
            for statement in RESET_ROUND:
                conn.execute(statement, {"tenant": t.tenant_id, "round": t.round_id})


class Session:
    """One data set served in this process: the app over ASGI, its officers' tokens."""

    def __init__(self, t: Target, settings: Settings) -> None:
        import httpx

        from service.app import create_app
        from service.runtime import build_state

        self.t = t
        self.state = build_state(settings, t.owner)
        self.client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=create_app(self.state)), base_url="http://bench"
        )
        self.tokens: dict[str, str] = {}

    async def start(self) -> None:
        from bench.harness import PASSWORD

        await self.state.principals.wait_connected()
        for who, username in self.t.users.items():
            r = await self.client.post(
                "/auth/token", data={"username": username, "password": PASSWORD}
            )
            if r.status_code != 200:
                raise SystemExit(f"{self.t.name}: login {username}: {r.status_code} {r.text}")
            self.tokens[who] = r.json()["access_token"]

    async def stop(self) -> None:
        await self.client.aclose()
        await self.state.principals.stop()
        await self.state.db.dispose()

    def request(self, workload: str) -> tuple[str, str, dict[str, Any]]:
        from service.schema.ids import to_global_id

        t = self.t
        period = {"year": t.year, "half": t.half}
        if workload == "branch_members":
            return "branch", MEMBERS_DOC, {"unit": to_global_id("OrgUnit", t.branch_id)}
        if workload == "tenant_overview":
            return "tenant", TENANT_DOC, {"unit": to_global_id("OrgUnit", t.tenant_id)} | period
        if workload == "county_overview":
            return "county", COUNTY_DOC, {"unit": to_global_id("OrgUnit", t.county_id)} | period
        if workload == "branch_tally":
            return "branch", TALLY_DOC, {"round": to_global_id("EvaluationRound", t.round_id)}
        raise ValueError(workload)

    async def post(self, who: str, document: str, variables: dict[str, Any]) -> dict[str, Any]:
        r = await self.client.post(
            "/graphql",
            json={"query": document, "variables": variables},
            headers={"Authorization": f"Bearer {self.tokens[who]}"},
        )
        body: dict[str, Any] = r.json()
        return body

    async def run(self, workload: str) -> tuple[float, dict[str, Any]]:
        """One timed request (wall clock, in-process); the round is reset afterwards."""
        who, document, variables = self.request(workload)
        t0 = time.perf_counter()
        body = await self.post(who, document, variables)
        took = time.perf_counter() - t0
        if "errors" in body:
            raise SystemExit(f"{self.t.name} {workload}: {body['errors']}")
        if workload == "branch_tally":
            _reset(self.t)
        return took, body

    async def check(self) -> dict[str, Any]:
        """The answers are the ones expected before anything is timed."""
        from service.schema.ids import to_global_id

        t = self.t
        _, body = await self.run("branch_members")
        nodes = body["data"]["members"]["nodes"]
        if len(nodes) != min(t.branch_members, PAGE) or any(
            n["branch"]["name"] != t.branch_name for n in nodes
        ):
            raise SystemExit(f"{t.name}: the member list is not the branch's: {nodes[:3]}")
        _, body = await self.run("tenant_overview")
        overview = body["data"]["evaluationOverview"]
        roster = sum(b["distribution"]["roster"] for b in overview["branches"]["nodes"])
        if overview["tenants"]["nodes"][0]["distribution"]["roster"] != roster:
            raise SystemExit(f"{t.name}: the tenant's sum is not its branches' sum")
        _, body = await self.run("county_overview")
        county = body["data"]["evaluationOverview"]["tenants"]["nodes"]
        _, body = await self.run("branch_tally")
        if body["data"]["advanceEvaluationRound"]["round"]["stage"] != "TALLIED":
            raise SystemExit(f"{t.name}: the round was not tallied: {body}")
        other = await self.post(
            "branch", MEMBERS_DOC, {"unit": to_global_id("OrgUnit", t.other_branch_id)}
        )
        codes = [e.get("extensions", {}).get("code") for e in other.get("errors", [])]
        if codes != ["NOT_FOUND"]:
            raise SystemExit(f"{t.name}: another tenant's branch answered {other}")
        return {
            "branch_page": len(nodes),
            "tenant_branches": len(overview["branches"]["nodes"]),
            "county_tenants": len(county),
            "county_roster": sum(n["distribution"]["roster"] for n in county),
        }

    async def messages(self, workload: str) -> list[str]:
        """The SQL messages one warm request sends (the database's observers)."""
        seen: list[str] = []

        def observe(message: str, n: int) -> None:
            seen.append(message)

        self.state.db.observers.append(observe)
        try:
            await self.run(workload)
        finally:
            self.state.db.observers.remove(observe)
        return seen


def _walk(node: dict[str, Any], out: list[dict[str, Any]]) -> None:
    out.append(node)
    for child in node.get("Plans", []):
        _walk(child, out)


def explain(t: Target, settings: Settings, messages: list[str]) -> dict[str, Any]:
    """EXPLAIN (ANALYZE, BUFFERS) of every SELECT the request sent, as the application
    role with the request's own SET LOCAL scope, in one transaction rolled back after
    (a write request's writes are replayed too, so its later reads see them).
    Returns the text plans and a summary: scans used, sequential scans of tables, rows
    removed by filters (what RLS or a predicate threw away) and buffers touched."""
    from bench.harness import app_role_url

    plans: list[str] = []
    nodes: list[dict[str, Any]] = []
    hit = read = 0
    executed = 0.0
    # One transaction for the whole request, as the service ran it (a write request's
    # later reads see its earlier writes); transaction control in the messages is
    # left out, the savepoints below stand in for it.
    control = ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE")
    with (
        psycopg.connect(app_role_url(settings, t.owner)) as conn,
        conn.transaction(force_rollback=True),
    ):
        for message in messages:
            parts = [p.strip() for p in message.split(";") if p.strip()]
            for part in parts:
                if part.upper().startswith(control):
                    continue
                if part.upper().startswith("SET LOCAL"):
                    conn.execute(part)
                    continue
                if not part.upper().startswith(("SELECT", "WITH")):
                    # A write (the tally's stage move, its stored counts, the
                    # audit append): done, so the reads after it see what they
                    # saw in the request; undone with the whole transaction.
                    try:
                        with conn.transaction():
                            conn.execute(part)
                    except psycopg.Error as exc:
                        plans.append(f"-- {part[:200]}\n-- not run: {exc}")
                    continue
                try:
                    with conn.transaction(force_rollback=True):
                        text = conn.execute("EXPLAIN (ANALYZE, BUFFERS) " + part).fetchall()
                        tree = conn.execute(
                            "EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + part
                        ).fetchone()[0]
                except psycopg.Error as exc:
                    plans.append(f"-- {part[:200]}\n-- not explained: {exc}")
                    continue
                plans.append(f"-- {' '.join(part.split())[:400]}\n" + "\n".join(r[0] for r in text))
                _walk(tree[0]["Plan"], nodes)
                # A node's buffers include its children's: the top node's are the
                # statement's.
                top = tree[0]["Plan"]
                hit += int(top.get("Shared Hit Blocks", 0))
                read += int(top.get("Shared Read Blocks", 0))
                executed += float(tree[0].get("Execution Time", 0.0))
    scans = sorted(
        {
            f"{n['Node Type']} {n.get('Index Name') or n.get('Relation Name', '')}".strip()
            for n in nodes
            if "Scan" in n["Node Type"]
        }
    )
    return {
        "plans": plans,
        "scans": scans,
        "seq_scans": sorted(
            {n.get("Relation Name", "?") for n in nodes if n["Node Type"] == "Seq Scan"}
        ),
        "rows_removed": sum(int(n.get("Rows Removed by Filter", 0)) for n in nodes),
        "shared_hit": hit,
        "shared_read": read,
        "execution_ms": round(executed, 2),
    }


async def _measure(args: argparse.Namespace, targets: list[Target]) -> dict[str, Any]:
    import statistics

    sessions = [Session(t, settings_for(t.owner, args.workdir)) for t in targets]
    results: dict[str, Any] = {"checks": {}, "times": {}, "statements": {}, "explain": {}}
    try:
        for s in sessions:
            await s.start()
            results["checks"][s.t.name] = await s.check()
            say(f"{s.t.name}: checks passed {results['checks'][s.t.name]}")
        for s in sessions:  # warm: principal caches, parser caches, the database's pages
            for w in WORKLOADS:
                for _ in range(args.warmup):
                    await s.run(w)
        times: dict[str, dict[str, list[float]]] = {
            s.t.name: {w: [] for w in WORKLOADS} for s in sessions
        }
        for run in range(args.runs):
            for s in sessions if run % 2 == 0 else list(reversed(sessions)):
                for w in WORKLOADS:
                    took, _ = await s.run(w)
                    times[s.t.name][w].append(took * 1000)
        results["times"] = times
        for s in sessions:
            for w in WORKLOADS:
                messages = await s.messages(w)
                results["statements"].setdefault(s.t.name, {})[w] = {
                    "messages": len(messages),
                    "statements": sum(1 for m in messages for p in m.split(";") if p.strip()),
                }
                summary = explain(s.t, settings_for(s.t.owner, args.workdir), messages)
                results["explain"].setdefault(s.t.name, {})[w] = summary
    finally:
        for s in sessions:
            await s.stop()
    medians = {
        name: {w: statistics.median(v) for w, v in per.items()} for name, per in times.items()
    }
    results["medians_ms"] = medians
    # The fastest of each series: on a shared machine the load moves between runs, and
    # the least disturbed request says more about the work than a median does.
    results["fastest_ms"] = {
        name: {w: min(v) for w, v in per.items()} for name, per in times.items()
    }
    return results


def cmd_measure(args: argparse.Namespace) -> int:
    names = [args.only] if args.only else ["county", "province"]
    meta = {n: json.loads(meta_path(args.workdir, PLANS[n].database).read_text()) for n in names}
    for name, m in meta.items():
        if not all(c.get("rounds") for c in m["counties"]):
            raise SystemExit(f"{name}: run `generate` and `evaluate` first")
    for name in names:  # the code measured is today's: the schema must be too
        owner = db_url(args.admin_url, PLANS[name].database)
        migrate(owner, settings_for(owner, args.workdir))
    targets = [target(args, name, args.branch_size) for name in names]
    for t in targets:
        say(
            f"{t.name}: branch {t.branch_id} ({t.branch_members} members), tenant "
            f"{t.tenant_id}, county {t.county_id}, round {t.round_id}"
        )
    results = asyncio.run(_measure(args, targets))
    medians = results["medians_ms"]
    say("")
    say(f"medians over {args.runs} runs, ms (in-process, one request at a time)")
    say(f"{'workload':<18}" + "".join(f"{n:>10}" for n in names) + f"{'ratio':>8}  limit")
    ratios = {}
    for w in WORKLOADS:
        line = f"{w:<18}" + "".join(f"{medians[n][w]:>10.2f}" for n in names)
        if len(names) == 2:
            ratios[w] = medians["province"][w] / medians["county"][w]
            line += f"{ratios[w]:>7.2f}x  " + ("<= 1.5x" if w in BRANCH_LEVEL else "")
        say(line)
    results["ratios"] = ratios
    fastest = results["fastest_ms"]
    say(
        "fastest, ms: "
        + "; ".join(f"{w} " + " / ".join(f"{fastest[n][w]:.2f}" for n in names) for w in WORKLOADS)
    )
    say("")
    for w in WORKLOADS:
        for name in names:
            e = results["explain"][name][w]
            st = results["statements"][name][w]
            say(
                f"{w} / {name}: {st['statements']} statements in {st['messages']} messages;"
                f" buffers hit {e['shared_hit']} read {e['shared_read']};"
                f" executed in {e['execution_ms']} ms;"
                f" rows removed by filters {e['rows_removed']}; seq scans {e['seq_scans']}"
            )
        say(f"  scans: {results['explain'][names[-1]][w]['scans']}")
    if args.plans:
        args.plans.mkdir(parents=True, exist_ok=True)
        for name in names:
            for w in WORKLOADS:
                (args.plans / f"{name}-{w}.txt").write_text(
                    "\n\n".join(results["explain"][name][w]["plans"]) + "\n"
                )
        say(f"plans written to {args.plans}")
    if args.json:
        slim = {k: v for k, v in results.items() if k != "explain"}
        slim["explain"] = {
            n: {w: {k: v for k, v in e.items() if k != "plans"} for w, e in per.items()}
            for n, per in results["explain"].items()
        }
        slim["rows"] = {n: m.get("rows") for n, m in meta.items()}
        args.json.write_text(json.dumps(slim, indent=2))
    failed = [w for w in BRANCH_LEVEL if ratios.get(w, 0) > 1.5]
    if failed:
        say(f"branch-level operations over 1.5x: {failed}")
        return 1
    return 0


# Column values of a cloned round / entry that differ from the template's.
ROUND_OVERRIDES = {
    "tenant_id": "u.tenant_id",
    "id": "nextval('ledger_id_seq')",
    "batch": "%(batch)s::uuid",
    "branch_id": "u.id",
    "branch_path": "u.path",
}
ENTRY_OVERRIDES = {
    "tenant_id": "m.tenant_id",
    "id": "nextval('ledger_id_seq')",
    "round_id": "r.id",
    "member_id": "m.id",
    "position": "row_number() OVER (PARTITION BY r.id ORDER BY m.id)",
    "name": "m.name",
    "category": "m.category",
    "may_vote": "m.category = 'full'",
}


def _columns(conn: psycopg.Connection[Any], table: str) -> list[str]:
    return [
        r[0]
        for r in conn.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = 'public'"
            " AND table_name = %s ORDER BY ordinal_position",
            (table,),
        )
    ]


def clone_evaluations(
    conn: psycopg.Connection[Any], template_round: int, county_tenants: list[int], mass: int
) -> dict[str, int]:
    """One round per branch of `county_tenants` in balloting, cloned in SQL from a round
    the services opened (`template_round`: its stage, policy snapshot, title ...), with
    the roster of each branch's members, the per-position counters of every full
    member's and `mass` representatives' ballots (roughly a quarter excellent, a little
    over half qualified, a few basic or unqualified, the rest blank), participation
    rows and used tokens. The volume and shape of what the services would write, at a
    fraction of the time; the measured county is always opened through the services.
    As a superuser with the foreign-key triggers off (consistent by construction)."""
    conn.execute("SET session_replication_role = replica")
    rounds = _columns(conn, "evaluation_rounds")
    entries = _columns(conn, "evaluation_entries")
    round_exprs = ", ".join(ROUND_OVERRIDES.get(c, f"t.{c}") for c in rounds)
    entry_exprs = ", ".join(ENTRY_OVERRIDES.get(c, f"t.{c}") for c in entries)
    batch = str(uuid.uuid4())
    params = {"batch": batch, "tenants": county_tenants, "tpl": template_round, "mass": mass}
    counts: dict[str, int] = {}
    with conn.transaction():
        counts["evaluation_rounds"] = conn.execute(
            f"INSERT INTO evaluation_rounds ({', '.join(rounds)}) SELECT {round_exprs}"
            " FROM evaluation_rounds t CROSS JOIN org_units u"
            " WHERE t.id = %(tpl)s AND u.kind = 'branch' AND u.tenant_id = ANY(%(tenants)s)"
            " AND u.archived_at IS NULL",
            params,
        ).rowcount
        counts["evaluation_entries"] = conn.execute(
            f"INSERT INTO evaluation_entries ({', '.join(entries)}) SELECT {entry_exprs}"
            " FROM evaluation_rounds r"
            " JOIN members m ON m.tenant_id = r.tenant_id AND m.branch_id = r.branch_id"
            " CROSS JOIN (SELECT * FROM evaluation_entries WHERE round_id = %(tpl)s"
            "             ORDER BY position LIMIT 1) t"
            " WHERE r.batch = %(batch)s::uuid",
            params,
        ).rowcount
        counts["evaluation_counts"] = conn.execute(
            """
            INSERT INTO evaluation_counts
                (tenant_id, round_id, position, excellent, qualified, basic, unqualified)
            SELECT tenant_id, round_id, position,
                   (n * (0.15 + 0.2 * random()))::int, (n * 0.55)::int,
                   (n * 0.05 * random())::int, (n * 0.02 * random())::int
            FROM (SELECT e.tenant_id, e.round_id, e.position,
                         sum(e.may_vote::int) OVER (PARTITION BY e.round_id)
                           - e.may_vote::int + %(mass)s AS n
                  FROM evaluation_entries e JOIN evaluation_rounds r
                    ON r.tenant_id = e.tenant_id AND r.id = e.round_id
                  WHERE r.batch = %(batch)s::uuid) x
            """,
            params,
        ).rowcount
        counts["evaluation_participation"] = conn.execute(
            "INSERT INTO evaluation_participation (tenant_id, round_id, voter_member_id)"
            " SELECT e.tenant_id, e.round_id, e.member_id FROM evaluation_entries e"
            " JOIN evaluation_rounds r ON r.tenant_id = e.tenant_id AND r.id = e.round_id"
            " WHERE r.batch = %(batch)s::uuid AND e.may_vote",
            params,
        ).rowcount
        counts["evaluation_ballot_tokens"] = conn.execute(
            "INSERT INTO evaluation_ballot_tokens (tenant_id, round_id, token_hash, used,"
            " expires_at) SELECT r.tenant_id, r.id, sha256((r.id || ':' || g || ':'"
            " || random())::bytea), true, '2100-01-01' FROM evaluation_rounds r"
            " CROSS JOIN generate_series(1, %(mass)s) g WHERE r.batch = %(batch)s::uuid",
            params,
        ).rowcount
    conn.execute("RESET session_replication_role")
    return counts


def first_round(owner: str, county_id: int) -> int:
    """The lowest-id round of a county opened through the services (the template)."""
    with psycopg.connect(libpq_url(owner)) as conn:
        row = conn.execute(
            "SELECT min(r.id) FROM evaluation_rounds r JOIN tenants t ON t.id = r.tenant_id"
            " WHERE t.parent_id = %s",
            (county_id,),
        ).fetchone()
    assert row is not None and row[0] is not None, "the first county has no rounds"
    return int(row[0])


# --------------------------------------------------------------------------- policy

# Tables whose tenant policy the `policy` experiment rewrites (what the workloads read).
POLICY_TABLES = ("org_units", "members", "evaluation_rounds", "evaluation_entries")
INITPLAN = "tenant_id = ANY ((SELECT pingyi_tenant_scope())::bigint[])"


async def _messages_of(t: Target, settings: Settings, workload: str) -> list[str]:
    s = Session(t, settings)
    await s.start()
    try:
        for _ in range(2):
            await s.run(workload)
        return await s.messages(workload)
    finally:
        await s.stop()


def cmd_policy(args: argparse.Namespace) -> int:
    """The SELECTs of each read workload, as the application role with the request's
    scope, with the tenant policy as migrated (`pingyi_tenant_scope()` evaluated for
    every row checked) and rewritten as an initplan (evaluated once per statement),
    inside a transaction that is rolled back: nothing changes in the database."""
    names = [args.only] if args.only else ["county", "province"]
    for name in names:
        t = target(args, name, args.branch_size)
        settings = settings_for(t.owner, args.workdir)
        for workload in ("branch_members", "tenant_overview", "county_overview"):
            messages = asyncio.run(_messages_of(t, settings, workload))
            parts = [p.strip() for m in messages for p in m.split(";") if p.strip()]
            scope = [p for p in parts if p.upper().startswith("SET LOCAL APP.")]
            selects = [p for p in parts if p.upper().startswith("SELECT")]
            with psycopg.connect(libpq_url(t.owner)) as conn:
                for variant in ("as migrated", "initplan"):
                    with conn.transaction(force_rollback=True):
                        if variant == "initplan":
                            for table in POLICY_TABLES:
                                conn.execute(
                                    f"ALTER POLICY tenant_isolation ON {table}"
                                    f" USING ({INITPLAN}) WITH CHECK ({INITPLAN})"
                                )
                        conn.execute(f"SET LOCAL ROLE {settings.app_db_role}")
                        for statement in scope:
                            conn.execute(statement)
                        times = []
                        for _ in range(args.runs):
                            t0 = time.perf_counter()
                            for statement in selects:
                                conn.execute(statement).fetchall()
                            times.append((time.perf_counter() - t0) * 1000)
                    say(
                        f"{name:<9}{workload:<17}{variant:<12} ms: "
                        + " ".join(f"{x:.1f}" for x in times)
                    )
    return 0


def tenant_ids(owner: str, county_id: int) -> list[int]:
    """The tenants directly under a county (`tenants` has no RLS)."""
    with psycopg.connect(libpq_url(owner)) as conn:
        return [
            int(r[0])
            for r in conn.execute("SELECT id FROM tenants WHERE parent_id = %s", (county_id,))
        ]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench.province", description=__doc__.split("\n")[0])
    p.add_argument(
        "--admin-url",
        default=os.environ.get("PINGYI_BENCH_ADMIN_URL", DEFAULT_ADMIN),
        help=f"superuser URL of the server the kept databases live on ({DEFAULT_ADMIN})",
    )
    p.add_argument("--workdir", type=Path, default=DEFAULT_WORKDIR, help="kept keys and metadata")
    sub = p.add_subparsers(dest="command", required=True)
    g = sub.add_parser("generate", help="write the county and the province databases (once)")
    g.add_argument("--only", choices=sorted(PLANS), help="only this data set")
    g.add_argument("--counties", type=int, help="counties of the province (20)")
    g.add_argument("--force", action="store_true", help="drop and write again")
    g.set_defaults(run=cmd_generate)
    e = sub.add_parser("evaluate", help="rounds in balloting and ballots for every branch (once)")
    e.add_argument("--only", choices=sorted(PLANS), help="only this data set")
    e.add_argument("--mass", type=int, default=18, help="mass representatives per branch (18)")
    e.add_argument(
        "--services",
        action="store_true",
        help="open every county's rounds through the services (slow: minutes a county);"
        " by default only the first county's, the others cloned from it in SQL",
    )
    e.set_defaults(run=cmd_evaluate)
    m = sub.add_parser("measure", help="time the workloads side by side, explain their SQL")
    m.add_argument("--only", choices=sorted(PLANS), help="only this data set (no ratio)")
    m.add_argument("--runs", type=int, default=15, help="timed requests per workload (15)")
    m.add_argument("--warmup", type=int, default=3, help="untimed requests before (3)")
    m.add_argument("--branch-size", type=int, default=25, help="members of the branch (25)")
    m.add_argument("--plans", type=Path, help="write each workload's plans here")
    m.add_argument("--json", type=Path, help="write the figures here")
    m.set_defaults(run=cmd_measure)
    q = sub.add_parser("policy", help="the tenant policy per row vs once per statement")
    q.add_argument("--only", choices=sorted(PLANS), help="only this data set")
    q.add_argument("--runs", type=int, default=5, help="runs per variant (5)")
    q.add_argument("--branch-size", type=int, default=25, help="members of the branch (25)")
    q.set_defaults(run=cmd_policy)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    return int(args.run(args))


if __name__ == "__main__":
    sys.exit(main())
