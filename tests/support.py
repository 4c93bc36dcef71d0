"""Building test worlds and speaking to the app over HTTP."""

from __future__ import annotations

import hashlib
import os
import secrets
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from types import SimpleNamespace
from typing import Any, NoReturn

import httpx
import psycopg
import pytest
from psycopg import sql
from sqlalchemy.engine import make_url

from service.app import AppState
from service.auth.service import operator_principal
from service.authz.roles import Role
from service.db import Database, create_database_if_missing, libpq_url
from service.members.service import MemberChanges, link_account, update_member
from service.schema.ids import to_global_id
from service.tenants import repository as units
from service.tenants.rules import OrgUnitKind
from tests import factories
from tests.factories import PASSWORD, password_hash

__all__ = ["PASSWORD", "password_hash"]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def scratch_database(owner_url: str, prefix: str) -> Iterator[str]:
    """A new, empty database on the server of `owner_url` (created through it, so owned
    alike), dropped afterwards whatever happens: its owner URL."""
    name = f"{prefix}_{secrets.token_hex(3)}"
    create_database_if_missing(owner_url, name)
    try:
        yield make_url(owner_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(libpq_url(owner_url), autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def unavailable(reason: str, *, required: bool = False) -> NoReturn:
    """What a test needs (a tool, a service) is missing: the test is skipped on a
    developer's machine and fails in CI (`CI` set) or where `required`, so CI never
    passes without it."""
    if required or os.environ.get("CI"):
        pytest.fail(f"required here but unavailable: {reason}")
    pytest.skip(reason)


PDF = b"%PDF-1.7\n1 0 obj\n<<>>\nendobj\n%%EOF\n"  # the smallest file an upload accepts


@dataclass
class World:
    """Ids are global GraphQL ids; `units` maps a short name to the org unit's row."""

    tag: str
    units: dict[str, Any] = field(default_factory=dict)
    accounts: dict[str, int] = field(default_factory=dict)
    members: dict[str, Any] = field(default_factory=dict)
    # other ledger rows by name: "meetingA1", "taskA1", "duesA1", "meetingB1", ...
    records: dict[str, Any] = field(default_factory=dict)

    def gid(self, unit: str) -> str:
        return to_global_id("OrgUnit", self.units[unit].id)

    def user(self, who: str) -> str:
        return f"{self.tag}.{who}".lower()

    def account_gid(self, who: str) -> str:
        return to_global_id("Account", self.accounts[who])

    def member_gid(self, who: str) -> str:
        return to_global_id("Member", self.members[who].id)

    def record_gid(self, name: str) -> str:
        """`meetingB1` -> a Meeting id, `taskB1` -> MemberTask, `duesB1` -> DuesPayment."""
        kind = {"meeting": "Meeting", "task": "MemberTask", "dues": "DuesPayment"}
        kind |= {
            "sanction": "Sanction",
            "drive": "RegistrationDrive",
            "emptydrive": "RegistrationDrive",
            "application": "RegistrationApplication",
            "import": "MemberImport",
            "request": "ApprovalRequest",
            "step": "ApprovalStep",
            "overduerequest": "ApprovalRequest",
            "overdue": "ApprovalStep",
            "policy": "GradingPolicyVersion",
            "objection": "EvaluationObjection",
            "round": "EvaluationRound",
            "entry": "EvaluationEntry",
            "ballot": "EvaluationRound",
            "case": "DisposalCase",
            "attachment": "Attachment",
        }
        return to_global_id(kind[name.rstrip("AB1")], self.records[name].id)


async def build_world(state: AppState, *, evaluations: bool = False, cases: bool = False) -> World:
    """county > townships A and B; A has branches a1, a2 and general branch ag > a3;
    B has branch b1. Accounts: county organizer, security admin and auditor at the
    county; secretary and organizer of A and B; branch secretary and member of a1.
    Members: memA1 (linked to the account memA1) and otherA1 in a1, memB1 in b1.
    Records: a meeting of a1 and of b1, a task and a dues payment of memA1 and memB1,
    a pending ledger import of A and of B. With `evaluations`, also approval requests,
    grading policies and evaluation rounds of both townships (see below): the records
    the isolation walker and the approvals tests look for, which cost about as much
    again as the rest, so the other tests' worlds go without them."""
    tag = "t" + secrets.token_hex(4)
    world = World(tag=tag)
    async with state.db.transaction() as tx:
        op = await operator_principal(tx, name="tests")
        root = (await units.root_unit(tx)).id
        K = OrgUnitKind

        async def unit(name: str, parent: int, kind: OrgUnitKind, label: str) -> Any:
            row = await factories.org_unit(
                tx, op, parent=parent, kind=kind, code=f"{tag}-{name}", name=label
            )
            world.units[name] = row
            return row

        county = await unit("county", root, K.COUNTY, f"测试县{tag}")
        a = await unit("A", county.id, K.TOWNSHIP, "甲镇")
        b = await unit("B", county.id, K.TOWNSHIP, "乙镇")
        await unit("a1", a.id, K.BRANCH, "甲镇第一支部")
        await unit("a2", a.id, K.BRANCH, "甲镇第二支部")
        ag = await unit("ag", a.id, K.GENERAL_BRANCH, "甲镇企业党总支")
        await unit("a3", ag.id, K.BRANCH, "甲镇企业第一支部")
        await unit("b1", b.id, K.BRANCH, "乙镇第一支部")

        people: list[tuple[str, Role | None, str]] = [
            ("county", Role.COUNTY_ORGANIZER, "county"),
            ("security", Role.SECURITY_ADMIN, "county"),
            ("sysadmin", Role.SYSTEM_ADMIN, "county"),
            ("auditor", Role.AUDITOR, "county"),
            ("secA", Role.COMMITTEE_SECRETARY, "A"),
            ("orgA", Role.COMMITTEE_ORGANIZER, "A"),
            ("secB", Role.COMMITTEE_SECRETARY, "B"),
            ("orgB", Role.COMMITTEE_ORGANIZER, "B"),
            ("bsA1", Role.BRANCH_SECRETARY, "a1"),
            ("memA1", Role.MEMBER, "a1"),
            ("nobody", None, "A"),
        ]
        for who, role, where in people:
            account = await factories.account(
                tx,
                op,
                home=world.units[where],
                username=world.user(who),
                display_name=who,
                role=role,
            )
            world.accounts[who] = account.id

        for who, branch in (("memA1", "a1"), ("otherA1", "a1"), ("memB1", "b1")):
            world.members[who] = await factories.member(
                tx, op, branch=world.units[branch], name=f"{who}同志"
            )
        await link_account(
            tx, op, member_id=world.members["memA1"].id, account_id=world.accounts["memA1"]
        )
        # One of each ledger record in a1 and in b1 (this month: the 三不 walk never
        # judges the current month).
        for side, branch, who, place in (
            ("A1", "a1", "memA1", "甲镇一支部"),
            ("B1", "b1", "memB1", "乙镇"),
        ):
            mem = world.members[who]
            world.records[f"meeting{side}"] = await factories.meeting(
                tx, op, branch=world.units[branch], topic=f"{place}党员大会", attended=[mem]
            )
            world.records[f"task{side}"] = await factories.task(
                tx, op, member=mem, title=f"{place}走访群众"
            )
            world.records[f"dues{side}"] = await factories.dues_payment(tx, op, member=mem)
        # A pending ledger import per township (its id: `importA`, `importB`).
        for side in ("A", "B"):
            pending = await factories.member_import(tx, op, tenant=world.units[side])
            world.records[f"import{side}"] = SimpleNamespace(id=pending.import_id)
        # Sanctions, registration drives and applications, a mobile member's contact:
        # `sanctionA1` (of otherA1), `driveA1` with `applicationA1` (memA1), and in B
        # `sanctionB1`, `driveB1` with `applicationB1`, `emptydriveB1` (nobody has
        # submitted); memB1 is a mobile member with one unreached contact (`contactB1`).
        world.records["sanctionA1"] = await factories.sanction(
            tx, op, member=world.members["otherA1"], decided_by="甲镇党委"
        )
        world.records["sanctionB1"] = await factories.sanction(
            tx, op, member=world.members["memB1"], decided_by="乙镇党委"
        )
        for side, unit, who in (("A1", "A", "memA1"), ("B1", "B", "memB1")):
            place = world.units[unit].name
            [drive] = await factories.registration_drive(
                tx, op, unit=world.units[unit], title=f"{place}党员登记"
            )
            world.records[f"drive{side}"] = drive
            world.records[f"application{side}"] = await factories.registration_application(
                tx, drive=drive, member=world.members[who]
            )
        [world.records["emptydriveB1"]] = await factories.registration_drive(
            tx, op, unit=world.units["B"], title="乙镇第二次党员登记"
        )
        world.members["memB1"] = await update_member(
            tx, op, member_id=world.members["memB1"].id, changes=MemberChanges(is_mobile=True)
        )
        world.records["contactB1"] = await factories.mobile_contact(
            tx, op, member=world.members["memB1"], reached=False
        )
        if cases:
            # Disposal cases (service/cases), opened and filed in advance (the filing
            # waits with the township): `caseA1` of memA1 (a 三不 flag), `caseB1` of
            # memB1 (an application to withdraw: memB1 has a sanction, and a case about
            # conduct would be double handling).
            from service.cases.rules import CaseOrigin
            from service.cases.service import open_case

            for side, who, origin in (
                ("A1", "memA1", CaseOrigin.LAPSE_FLAG),
                ("B1", "memB1", CaseOrigin.WITHDRAWAL_APPLICATION),
            ):
                world.records[f"case{side}"] = await open_case(
                    tx,
                    op,
                    member_id=world.members[who].id,
                    origin=origin,
                    facts=f"{world.units[side[0]].name}处置案件事实",
                    not_sanctioned_statement="本案不涉及已受党纪处分的问题",
                )
            # An unlinked upload per side (`attachmentA1` by bsA1 in a1, `attachmentB1` by
            # secB in b1), and memB1's latest grade unqualified: a case candidate of B.
            for side, branch, uploader in (("A1", "a1", "bsA1"), ("B1", "b1", "secB")):
                unit_row = world.units[branch]
                world.records[f"attachment{side}"] = await tx.one(
                    "INSERT INTO attachments (tenant_id, branch_id, branch_path, filename,"
                    " content_type, size_bytes, sha256, content, uploaded_by) VALUES"
                    " (%(t)s, %(b)s, %(p)s, %(f)s, 'application/pdf', %(n)s, %(h)s, %(c)s,"
                    " %(by)s) RETURNING id",
                    {
                        "t": unit_row.tenant_id,
                        "b": unit_row.id,
                        "p": unit_row.path,
                        "f": f"{unit_row.name}谈话记录.pdf",
                        "n": len(PDF),
                        "h": hashlib.sha256(PDF).hexdigest(),
                        "c": PDF,
                        "by": world.accounts[uploader],
                    },
                )
            await tx.execute(
                "INSERT INTO member_grades (tenant_id, member_id, year, grade)"
                " VALUES (%(t)s, %(m)s, %(y)s, 'unqualified')",
                {
                    "t": world.members["memB1"].tenant_id,
                    "m": world.members["memB1"].id,
                    "y": date.today().year,
                },
            )
        if not evaluations:
            return world
        # Approvals: `requestA1` from a1 and `requestB1` from b1, both routed to the
        # county and approved by their township's secretary, so their pending steps
        # (`stepA1`, `stepB1`) wait in the county organizer's inbox; and in B
        # `overduerequestB1`, whose pending step at B (`overdueB1`) is past its deadline
        # (the county's overdue list).
        for side, branch, secretary in (("A1", "a1", "secA"), ("B1", "b1", "secB")):
            request = await factories.approval_request(
                tx,
                op,
                branch=world.units[branch],
                to_county=True,
                summary={"branch": world.units[branch].name},
                approved_by=[world.accounts[secretary]],
            )
            world.records[f"request{side}"] = request
            world.records[f"step{side}"] = request.pending_step
        overdue = await factories.approval_request(
            tx, op, branch=world.units["b1"], summary={"branch": "乙镇第一支部"}, overdue=True
        )
        world.records["overduerequestB1"] = overdue
        world.records["overdueB1"] = overdue.pending_step
        # Grading policies: `policyA1` and `policyB1`, each township's own version.
        for side, unit in (("A1", "A"), ("B1", "B")):
            world.records[f"policy{side}"] = await factories.grading_policy(
                tx, op, unit=world.units[unit], note=f"{world.units[unit].name}评议办法"
            )
        # Evaluation determinations (tests/factories.evaluation_records): rounds of a
        # past half-year in self-evaluation, `roundA1` of a1 and `roundB1` of b1, each
        # with an objection about memA1 / memB1 (`objectionA1`, `objectionB1`), an
        # assembly record, and that member's grade of the year before.
        for side, branch, who, place in (
            ("A1", "a1", "memA1", "甲镇"),
            ("B1", "b1", "memB1", "乙镇"),
        ):
            made = await factories.evaluation_records(
                tx,
                op,
                branch=world.units[branch],
                member=world.members[who],
                text=f"{place}评议异议",
            )
            world.records[f"round{side}"] = made.round
            world.records[f"objection{side}"] = made.objection
        # A round in balloting (2021, first half), no ballot cast yet: `ballotA1`,
        # `ballotB1`, and the member's roster entry in it: `entryA1` (memA1), `entryB1`
        # (memB1). The isolation walker uses `ballotA1` as A's round, so that a ballot's
        # member ids are looked up.
        for side, branch, who in (("A1", "a1", "memA1"), ("B1", "b1", "memB1")):
            balloting = await factories.evaluation_round(
                tx, op, branch=world.units[branch], year=2021, half=1, stage="balloting"
            )
            world.records[f"ballot{side}"] = balloting
            world.records[f"entry{side}"] = await tx.one(
                "SELECT id FROM evaluation_entries WHERE round_id = %(r)s AND member_id = %(m)s",
                {"r": balloting.id, "m": world.members[who].id},
            )
    return world


async def first_login(
    client: httpx.AsyncClient, username: str, password: str, new_password: str
) -> str:
    """Log in an account someone else created: its first login must change the password
    (PASSWORD_CHANGE_REQUIRED), in the same request."""
    response = await client.post(
        "/auth/token",
        data={"username": username, "password": password, "new_password": new_password},
    )
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


async def login(client: httpx.AsyncClient, username: str, password: str = PASSWORD) -> str:
    response = await client.post("/auth/token", data={"username": username, "password": password})
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


async def gql(
    client: httpx.AsyncClient,
    token: str | None,
    query: str,
    variables: dict[str, Any] | None = None,
    *,
    status: int | None = 200,
) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = await client.post(
        "/graphql", json={"query": query, "variables": variables or {}}, headers=headers
    )
    if status is not None:
        assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    return body


def error_codes(body: dict[str, Any]) -> list[str]:
    return [e.get("extensions", {}).get("code") for e in body.get("errors") or []]


# A world and a county organizer's login for a whole module, for modules whose tests
# only read or write under unique codes: import both into the module (`world` and
# `token` there, overriding the per-test world).
@pytest.fixture(scope="module", name="world")
async def module_world(state: AppState) -> World:
    return await build_world(state)


@pytest.fixture(scope="module", name="token")
async def module_token(app: Any, world: World) -> str:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://pingyi.test") as c:
        return await login(c, world.user("county"))


@dataclass
class Traffic:
    """What a Database sent while watched: one entry per message (network round trip)
    with the number of statements in it."""

    messages: list[tuple[str, int]] = field(default_factory=list)

    @property
    def round_trips(self) -> int:
        return len(self.messages)

    @property
    def statements(self) -> int:
        return sum(n for _, n in self.messages)


@contextmanager
def watching(db: Database) -> Iterator[Traffic]:
    traffic = Traffic()

    def observe(message: str, statements: int) -> None:
        traffic.messages.append((message, statements))

    db.observers.append(observe)
    try:
        yield traffic
    finally:
        db.observers.remove(observe)


def run_cli(owner_url: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """Run `pingyi ARGS` as an operator would, against the test database."""
    return subprocess.run(  # noqa: S603 (the tests' own arguments)
        [sys.executable, "-m", "service.cli", *args],
        env={**os.environ, "PINGYI_DATABASE_URL": owner_url, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
