"""What the benchmarks share: a throwaway database, the data, the bare endpoints, wrk.

Used by `bench.children` and `bench.compare`; run by hand, never by the test suite.
The coupling to the service is kept to: Settings, build_state, migrate (in the
commands), the data-creation services in `seed`, and, in the bare endpoints,
`principal_for_request` with the app's principal cache and
`state.db.transaction(scope, guard=...)`: what /graphql itself uses, so that a bare
endpoint does the same authentication work (the cached principal's guard included).
"""

from __future__ import annotations

import argparse
import os
import secrets
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import orjson
import psycopg
from psycopg import sql
from sqlalchemy.engine import make_url
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from service.auth.service import (
    RequestPrincipal,
    create_account,
    operator_principal,
    principal_for_request,
)
from service.authz.roles import Role
from service.authz.service import assign_role
from service.config import Settings
from service.db import (
    Scope,
    app_url_for,
    create_database_if_missing,
    libpq_url,
    start_embedded,
)
from service.errors import DomainError
from service.migrate import migrate
from service.runtime import build_state
from service.schema.ids import from_global_id, to_global_id
from service.tenants.rules import OrgUnitKind
from service.tenants.service import archive_org_unit, create_org_unit

PASSWORD = "Bench-Passw0rd!"  # noqa: S105 (throwaway accounts in a throwaway database)
PAGE = 20

CHILDREN_SQL = (
    "SELECT id, name, kind FROM org_units "
    "WHERE parent_id = %(parent)s AND archived_at IS NULL ORDER BY id LIMIT %(limit)s"
)
# What `tenants` lists: tenant top units of a tenant kind, not archived (RLS scopes it).
TENANTS_SQL = (
    "SELECT id, name, kind FROM org_units WHERE id = tenant_id AND kind IN "
    "('township', 'development_zone', 'new_district', 'county_department') "
    "AND archived_at IS NULL ORDER BY id LIMIT %(limit)s"
)


def say(message: str) -> None:
    print(message, flush=True)


# --------------------------------------------------------------------------- database


@contextmanager
def fresh_database(admin_url: str | None, workdir: Path) -> Iterator[str]:
    """The owner URL of an empty database: embedded, or created on `admin_url` and dropped."""
    if not admin_url:
        say(f"starting embedded PostgreSQL in {workdir / 'embedded'} ...")
        yield start_embedded(workdir / "embedded")  # stopped by pgserver at exit
        return
    name = f"pingyi_bench_{secrets.token_hex(4)}"
    say(f"creating database {name} on {make_url(admin_url).render_as_string()} ...")
    create_database_if_missing(admin_url, name)
    try:
        yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(libpq_url(admin_url), autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
        say(f"dropped database {name}")


def app_role_url(settings: Settings, owner_url: str) -> str:
    """The libpq URL of the service's application role (not owner, not superuser: RLS
    applies), as the service derives it from the owner URL."""
    return libpq_url(app_url_for(settings, owner_url))


# --------------------------------------------------------------------------- data

Row = tuple[int, str, str]  # (numeric id, name, KIND)


@dataclass(frozen=True)
class Dataset:
    secretary: str  # username: committee secretary (党委书记) of towns[0]
    organizer: str | None  # username: county organizer (县委组织部) at the county, if made
    county_id: int
    town_ids: list[int]  # townships with branches, in id order
    archived_town_id: int | None  # an empty archived township, if made
    secretary_tenant_id: int  # the secretary's whole scope: towns[0]'s tenant
    children: list[Row]  # first page of towns[0]'s children (its archived branch skipped)
    tenants: list[Row]  # first page of the county's tenants (the archived township skipped)


async def seed(
    settings: Settings,
    owner: str,
    *,
    townships: int,
    branches: int,
    organizer: bool = False,
    archived_township: bool = False,
) -> Dataset:
    """County > `townships` townships x `branches` branches, the third branch of the first
    township archived; a committee secretary at the first township; optionally a county
    organizer at the county and an empty archived township after the second one.
    Written as the CLI's operator, through the services."""
    # The platform root's unit has its tenant's id; `tenants` has no RLS.
    with psycopg.connect(libpq_url(owner)) as conn:
        root = conn.execute("SELECT id FROM tenants WHERE kind = 'platform'").fetchone()
    assert root is not None, "the migrations create the platform root"
    state = build_state(settings, owner)
    tag = "b" + secrets.token_hex(3)
    K = OrgUnitKind
    try:
        async with state.db.transaction() as tx:
            op = await operator_principal(tx, name="bench")
            county = await create_org_unit(
                tx, op, parent_id=root[0], kind=K.COUNTY, code=f"{tag}-c", name="基准县"
            )
            towns: list[Any] = []
            kids: list[Any] = []
            archived_town: Any = None
            for t in range(townships):
                if archived_township and t == 2:
                    archived_town = await create_org_unit(
                        tx,
                        op,
                        parent_id=county.id,
                        kind=K.TOWNSHIP,
                        code=f"{tag}-tx",
                        name="基准已撤并镇",
                    )
                    await archive_org_unit(tx, op, unit_id=archived_town.id)
                town = await create_org_unit(
                    tx,
                    op,
                    parent_id=county.id,
                    kind=K.TOWNSHIP,
                    code=f"{tag}-t{t}",
                    name=f"基准第{t + 1}镇",
                )
                towns.append(town)
                for b in range(branches):
                    unit = await create_org_unit(
                        tx,
                        op,
                        parent_id=town.id,
                        kind=K.BRANCH,
                        code=f"{tag}-t{t}-b{b:02d}",
                        name=f"{town.name}第{b + 1:02d}支部",
                    )
                    if t == 0:
                        kids.append(unit)
            # An archived branch in the measured page: every side must skip it.
            await archive_org_unit(tx, op, unit_id=kids[2].id)
            secretary = await _login(
                tx, op, f"{tag}.secretary", "基准党委书记", Role.COMMITTEE_SECRETARY, towns[0]
            )
            organizer_name: str | None = None
            if organizer:
                organizer_name = await _login(
                    tx, op, f"{tag}.organizer", "基准组织部", Role.COUNTY_ORGANIZER, county
                )
            active = [u for i, u in enumerate(kids) if i != 2][:PAGE]
            tenant_units = sorted(towns, key=lambda u: u.id)[:PAGE]
            return Dataset(
                secretary=secretary,
                organizer=organizer_name,
                county_id=county.id,
                town_ids=[u.id for u in towns],
                archived_town_id=archived_town.id if archived_town else None,
                secretary_tenant_id=towns[0].tenant_id,
                children=[(u.id, u.name, "BRANCH") for u in active],
                tenants=[(u.id, u.name, "TOWNSHIP") for u in tenant_units],
            )
    finally:
        await state.db.dispose()


async def _login(tx: Any, op: Any, username: str, shown: str, role: Role, unit: Any) -> str:
    """An account at `unit` holding `role` there, password PASSWORD; its username."""
    account = await create_account(
        tx, op, username=username, display_name=shown, password=PASSWORD, home_org_unit_id=unit.id
    )
    # A made-up account's password counts as chosen by its holder: the load logs in
    # with it as is (a person would change it at the first login).
    await tx.execute(
        "UPDATE accounts SET must_change_password = false WHERE id = %(id)s", {"id": account.id}
    )
    await assign_role(tx, op, account_id=account.id, role=role, org_unit_id=unit.id)
    return str(account.username)


# --------------------------------------------------------------------------- bare endpoints


def _domain_error(exc: DomainError) -> Response:
    return JSONResponse(
        {"errors": [{"message": exc.message, "extensions": {"code": exc.code}}]},
        status_code=exc.http_status,
    )


def _unauthenticated() -> Response:
    return JSONResponse({"errors": [{"message": "unauthenticated"}]}, status_code=401)


def _edges(rows: Any) -> list[dict[str, Any]]:
    return [
        {"node": {"id": to_global_id("OrgUnit", r.id), "name": r.name, "kind": r.kind.upper()}}
        for r in rows
    ]


def _encoded(data: dict[str, Any]) -> Response:
    # Encoded as /graphql encodes its responses (orjson), so the bodies can be byte-equal.
    return Response(orjson.dumps({"data": data}), media_type="application/json")


async def _principal(request: Request, claims: Any) -> RequestPrincipal:
    """The request's principal, loaded as /graphql loads it: from the app's per-process
    cache (with the guard its first statement must carry), or with one statement of
    its own on a miss."""
    state = request.app.state.pingyi
    state.principals.start()
    return await principal_for_request(
        state.db,
        claims,
        cache=state.principals,
        request_id=request.scope.get("pingyi.request_id", ""),
    )


def children_route(mode: str = "principal", fixed_tenant_ids: set[int] | None = None) -> Route:
    """POST /bench/children {"parentId", "first"}: GraphQL's `children` answer, by hand.

    mode "principal": the principal as /graphql gets it (cache, or the principal query),
    and its scope; mode "scope": no principal at all, only the scope it would have
    (`fixed_tenant_ids`). Then one read-only transaction of one SELECT.
    """

    async def children(request: Request) -> Response:
        state = request.app.state.pingyi
        claims = request.scope.get("pingyi.claims")
        if claims is None:
            return _unauthenticated()
        try:
            body = orjson.loads(await request.body())
            _, parent = from_global_id(str(body["parentId"]), "OrgUnit")
            first = int(body.get("first", PAGE))
            guard = None
            if mode == "principal":
                loaded = await _principal(request, claims)
                scope, guard = loaded.principal.scope, loaded.guard
            else:
                scope = Scope.of(claims.account_id, fixed_tenant_ids or ())
            async with state.db.transaction(scope, write=False, guard=guard) as tx:
                rows = await tx.rows(CHILDREN_SQL, {"parent": parent, "limit": first + 1})
        except DomainError as exc:
            return _domain_error(exc)
        return _encoded({"children": {"edges": _edges(rows[:first])}})

    return Route("/bench/children", children, methods=["POST"])


def tenants_route() -> Route:
    """POST /bench/tenants {"first"}: GraphQL's `me { username } tenants(first)` answer,
    by hand: the principal as /graphql gets it (it carries the username), then one
    read-only transaction of one SELECT of the tenant top units, scoped by RLS alone."""

    async def tenants(request: Request) -> Response:
        state = request.app.state.pingyi
        claims = request.scope.get("pingyi.claims")
        if claims is None:
            return _unauthenticated()
        try:
            body = orjson.loads(await request.body())
            first = int(body.get("first", PAGE))
            loaded = await _principal(request, claims)
            principal = loaded.principal
            async with state.db.transaction(principal.scope, write=False, guard=loaded.guard) as tx:
                rows = await tx.rows(TENANTS_SQL, {"limit": first + 1})
        except DomainError as exc:
            return _domain_error(exc)
        return _encoded(
            {"me": {"username": principal.username}, "tenants": {"edges": _edges(rows[:first])}}
        )

    return Route("/bench/tenants", tenants, methods=["POST"])


def decode_org_ids(rows: list[tuple[str, str, str]]) -> list[Row]:
    """Pingyi's (global id, name, KIND) rows as (numeric id, name, KIND)."""
    return [(from_global_id(gid, "OrgUnit")[1], name, kind) for gid, name, kind in rows]


# --------------------------------------------------------------------------- wrk


WRK_SCRIPT = """\
wrk.method = "POST"
wrk.body = [==[{body}]==]
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer {token}"

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {{"requests":%.0f,"duration_s":%.6f,"p50_ms":%.3f,"p90_ms":%.3f,' ..
    '"p99_ms":%.3f,"errors":%.0f,"non_2xx":%.0f}}\\n',
    summary.requests, summary.duration / 1e6, latency:percentile(50) / 1e3,
    latency:percentile(90) / 1e3, latency:percentile(99) / 1e3,
    e.connect + e.read + e.write + e.timeout, e.status))
end
"""


def write_wrk_script(path: Path, body: bytes, token: str) -> Path:
    path.write_text(WRK_SCRIPT.format(body=body.decode(), token=token))
    path.chmod(0o600)
    return path


@dataclass(frozen=True)
class Load:
    connections: int
    threads: int
    timeout: float


def run_wrk(url: str, script: Path, load: Load, seconds: float) -> dict[str, Any]:
    """One wrk run; its Lua `done` prints requests, duration and percentiles as JSON."""
    command = [
        "wrk",
        f"-t{load.threads}",
        f"-c{load.connections}",
        f"-d{seconds:g}s",
        f"--timeout={load.timeout:g}s",
        "-s",
        str(script),
        url,
    ]
    done = subprocess.run(  # noqa: S603 (fixed argv, no shell)
        command, capture_output=True, text=True, timeout=seconds + 60, check=True
    )
    for line in done.stdout.splitlines():
        if line.startswith("BENCH_JSON "):
            result: dict[str, Any] = orjson.loads(line.removeprefix("BENCH_JSON "))
            return result
    raise RuntimeError(f"no result from wrk:\n{done.stdout}\n{done.stderr}")


def add_load_options(p: argparse.ArgumentParser, *, rounds_help: str) -> None:
    """The options both benchmark commands share: the database and the wrk load."""
    p.add_argument(
        "--database-url",
        default=os.environ.get("PINGYI_DATABASE_URL"),
        help="an owner/superuser URL of a running server: a fresh database is created there "
        "and dropped at the end (default: $PINGYI_DATABASE_URL, else embedded pgserver)",
    )
    p.add_argument("--connections", type=int, default=16, help="concurrent connections (16)")
    p.add_argument("--threads", type=int, default=1, help="wrk threads (1)")
    p.add_argument("--duration", type=float, default=10, help="seconds measured per run (10)")
    p.add_argument("--warmup", type=float, default=2, help="seconds of warm-up per run (2)")
    p.add_argument("--rounds", type=int, default=3, help=rounds_help)
    p.add_argument("--timeout", type=float, default=5, help="per-request timeout, seconds (5)")
    p.add_argument("--branches", type=int, default=24, help="branches per township (24)")
    p.add_argument("--json", type=Path, help="also write the results to this file")


def bench_settings(
    owner: str, workdir: Path, *, token_ttl: int = 3600, app_url: str | None = None
) -> Settings:
    """The settings every benchmark process runs with: the service's own (from the
    environment) with the bench's data directory, signing key and token lifetime. The
    bench logs a few made-up accounts in without a phone: no second factor, and no
    per-client login limit (every login comes from this machine). Nothing else
    differs from production."""
    return replace(
        Settings.from_env(),
        database_url=owner,
        app_database_url=app_url,
        data_dir=workdir,
        jwt_private_key_file=workdir / "jwt-signing-key.pem",
        access_token_ttl=token_ttl,
        dev_mode=False,
        mfa_required=False,
        login_rate_per_minute=0,
    )


def migrated(owner: str, workdir: Path, *, token_ttl: int = 3600) -> Settings:
    """The benchmark's settings for a fresh database (`bench_settings`), after migrating it."""
    settings = bench_settings(owner, workdir, token_ttl=token_ttl)
    say("migrating ...")
    migrate(owner, settings)
    return settings
