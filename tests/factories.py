"""Keyword-argument factories: make one thing of a domain with sensible defaults.

Each takes the transaction and the operator principal (`operator_principal(tx)`) and
goes through the domain's own service, so what a factory makes is what the service
would make (audited, scoped, checked). Every default is unique per call, so tests never
collide; pass a value when a test cares about it. Later domains add theirs here
(`member(...)`, `evaluation_round(...)`, ...), in the same shape.
"""

from __future__ import annotations

import functools
import itertools
import secrets
from collections.abc import Sequence
from datetime import date, timedelta
from typing import Any

from service.auth.passwords import hash_password
from service.auth.principal import Principal
from service.auth.service import register_account
from service.authz.roles import Role
from service.authz.service import assign_role
from service.db import Transaction
from service.dues.rules import Month, PaidBy
from service.dues.service import record_payment
from service.meetings.rules import MeetingKind, Presence
from service.meetings.service import Entry, assign_task, record_meeting
from service.members.rules import MemberCategory, birth_date_from_id, id_check_digit
from service.members.service import NewMember, add_member
from service.tenants.rules import OrgUnitKind
from service.tenants.service import create_org_unit

PASSWORD = "Test-Passw0rd!"
_serial = itertools.count(1)


@functools.cache
def password_hash() -> str:
    """PASSWORD hashed once per run: argon2 is slow on purpose, and worlds need many."""
    return hash_password(PASSWORD)


def unique(prefix: str) -> str:
    return f"{prefix}{next(_serial)}{secrets.token_hex(2)}"


async def org_unit(
    tx: Transaction,
    op: Principal,
    *,
    parent: Any,
    kind: OrgUnitKind = OrgUnitKind.BRANCH,
    code: str | None = None,
    name: str | None = None,
) -> Any:
    """A unit under `parent` (a row or an id); a branch unless `kind` says otherwise."""
    parent_id = parent if isinstance(parent, int) else parent.id
    return await create_org_unit(
        tx,
        op,
        parent_id=parent_id,
        kind=kind,
        code=code or unique("u"),
        name=name or unique("组织"),
    )


async def account(
    tx: Transaction,
    op: Principal,
    *,
    home: Any,
    username: str | None = None,
    display_name: str | None = None,
    role: Role | None = None,
    role_at: Any = None,
) -> Any:
    """An account at `home` (password PASSWORD); with `role`, held at `role_at` (default
    `home`)."""
    home_id = home if isinstance(home, int) else home.id
    created = await register_account(
        tx,
        op,
        username=username or unique("user").lower(),
        display_name=display_name or "测试用户",
        password_hash=password_hash(),
        home_org_unit_id=home_id,
    )
    if role is not None:
        where = role_at if role_at is not None else home
        await assign_role(
            tx,
            op,
            account_id=created.id,
            role=role,
            org_unit_id=where if isinstance(where, int) else where.id,
        )
    return created


def id_number(birth: date | None = None, *, serial: int | None = None) -> str:
    """A valid ID-card number (GB 11643 check digit), unique per call unless `serial`."""
    born = birth or date(1980, 1, 1) + timedelta(days=next(_serial) % 9000)
    seq = serial if serial is not None else next(_serial) % 1000
    first17 = f"511302{born:%Y%m%d}{seq:03d}"
    return first17 + id_check_digit(first17)


async def member(
    tx: Transaction,
    op: Principal,
    *,
    branch: Any,
    name: str | None = None,
    id_number: str | None = None,
    joined_on: date | None = None,
    category: MemberCategory = MemberCategory.FULL,
    phone: str | None = "13812345678",
    is_mobile: bool = False,
    tracked_since: date | None = None,
    **extra: Any,
) -> Any:
    """A member of `branch` (a row or an id), through the ledger's own service."""
    number = id_number or globals()["id_number"]()
    born = birth_date_from_id(number)
    assert born is not None
    if id_number is None and joined_on is not None and born.year > joined_on.year - 19:
        # A generated birth date (1980 to 2004) must leave the member 18 when joining.
        number = globals()["id_number"](date(joined_on.year - 19, 1, 1))
        born = birth_date_from_id(number)
        assert born is not None
    return await add_member(
        tx,
        op,
        NewMember(
            branch_id=branch if isinstance(branch, int) else branch.id,
            name=name or unique("党员"),
            id_number=number,
            joined_on=joined_on or date(born.year + 25, 7, 1),
            category=category,
            phone=phone,
            is_mobile=is_mobile,
            tracked_since=tracked_since,
            **extra,
        ),
    )


async def dues_payment(
    tx: Transaction,
    op: Principal,
    *,
    member: Any,
    paid_on: date | None = None,
    months: Sequence[str] | None = None,
    amount_fen: int = 2000,
    paid_by: str = "self",
) -> Any:
    """A payment for `member` (a row), by default for the month it is paid in."""
    day = paid_on or date.today()
    return await record_payment(
        tx,
        op,
        member_id=member.id,
        paid_on=day,
        amount_fen=amount_fen,
        paid_by=PaidBy(paid_by),
        months=list(months) if months is not None else [str(Month.of(day))],
    )


async def meeting(
    tx: Transaction,
    op: Principal,
    *,
    branch: Any,
    kind: str = "branch_assembly",
    held_on: date | None = None,
    topic: str | None = None,
    attended: Sequence[Any] = (),
) -> Any:
    """A meeting of `branch` (a row) where `attended` (member rows) came; the rest of
    the branch's members on the rolls are absent."""
    return await record_meeting(
        tx,
        op,
        branch_id=branch.id,
        kind=MeetingKind(kind),
        held_on=held_on or date.today(),
        topic=topic or unique("主题"),
        attendance=[Entry(member_id=m.id, presence=Presence.ATTENDED) for m in attended],
    )


async def task(
    tx: Transaction,
    op: Principal,
    *,
    member: Any,
    title: str | None = None,
    assigned_on: date | None = None,
    due_on: date | None = None,
) -> Any:
    """A task given to `member` (a row), due in two weeks by default."""
    start = assigned_on or date.today()
    return await assign_task(
        tx,
        op,
        member_id=member.id,
        title=title or unique("任务"),
        assigned_on=start,
        due_on=due_on or start + timedelta(days=14),
    )


LEDGER_HEADERS = ("序号", "姓名", "身份证号", "入党日期", "所在支部", "联系电话")


def ledger_xlsx(
    rows: Sequence[Sequence[Any]],
    *,
    headers: Sequence[str] = LEDGER_HEADERS,
    title: str | None = None,
    merges: Sequence[str] = (),
) -> bytes:
    """An .xlsx ledger as a township would type it: an optional title row merged over
    the columns, the header, `rows` (ID numbers as text), and any `merges` (A1 ranges)."""
    import io

    from openpyxl import Workbook
    from openpyxl.utils import get_column_letter

    book = Workbook()
    sheet = book.active
    if title is not None:
        sheet.append([title])
        sheet.merge_cells(f"A1:{get_column_letter(len(headers))}1")
    sheet.append(list(headers))
    for row in rows:
        sheet.append(list(row))
    for ref in merges:
        sheet.merge_cells(ref)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


async def member_import(
    tx: Transaction, op: Principal, *, tenant: Any, data: bytes | None = None
) -> Any:
    """A pending (previewed, unconfirmed) ledger import into `tenant` (its top unit);
    by default of one row whose branch does not exist, so confirming it adds nobody."""
    from service.members.imports import preview_import

    data = data or ledger_xlsx([[1, "待导入", id_number(), "2010-07-01", "无此支部", None]])
    return await preview_import(tx, op, tenant_unit_id=tenant.id, data=data)


async def sanction(
    tx: Transaction,
    op: Principal,
    *,
    member: Any,
    kind: str = "warning",
    decided_on: date | None = None,
    decided_by: str = "中共测试镇委员会",
    matter: str | None = None,
) -> Any:
    """A discipline sanction of `member` (a row), a warning decided today by default."""
    from service.sanctions.rules import SanctionKind
    from service.sanctions.service import record_sanction

    return await record_sanction(
        tx,
        op,
        member_id=member.id,
        kind=SanctionKind(kind),
        decided_on=decided_on or date.today(),
        decided_by=decided_by,
        matter=matter or unique("违纪事项"),
    )


async def registration_drive(
    tx: Transaction,
    op: Principal,
    *,
    unit: Any,
    title: str | None = None,
    opens_on: date | None = None,
    days: int = 15,
) -> list[Any]:
    """A registration drive opened at `unit` (a tenant or the county), open since
    yesterday by default: one row per tenant covered."""
    from service.registration.service import open_drive

    return await open_drive(
        tx,
        op,
        org_unit_id=unit.id,
        title=title or unique("党员登记"),
        opens_on=opens_on or date.today() - timedelta(days=1),
        days=days,
    )


async def registration_application(
    tx: Transaction, *, drive: Any, member: Any, wishes_to_stay: bool = True
) -> Any:
    """`member`'s submission to `drive` (rows), written straight through the repository:
    the service takes submissions only from the member's own account."""
    from service.registration.repository import upsert_application

    return await upsert_application(
        tx,
        tenant_id=drive.tenant_id,
        drive_id=drive.id,
        member_id=member.id,
        thought="思想总结",
        work="工作总结",
        conduct="作风总结",
        life="生活总结",
        wishes_to_stay=wishes_to_stay,
        channel="web",
        is_late=False,
    )


async def mobile_contact(
    tx: Transaction,
    op: Principal,
    *,
    member: Any,
    contacted_on: date | None = None,
    reached: bool = True,
    channel: str = "phone",
) -> Any:
    """A contact with the mobile member `member` (a row), today and reached by default."""
    from service.members.mobile import ContactChannel, record_contact

    return await record_contact(
        tx,
        op,
        member_id=member.id,
        contacted_on=contacted_on or date.today(),
        channel=ContactChannel(channel),
        contacted_by="支部书记",
        reached=reached,
        outcome="电话询问近况",
    )


async def acting_as(tx: Transaction, account_id: int) -> Principal:
    """The principal of an account as a login would make it (its grants and the tenants
    they reach), read in `tx`: for factories that act as a decider, not the operator."""
    from service.auth.principal import Grant

    account = await tx.one(
        "SELECT id, username FROM accounts WHERE id = %(id)s", {"id": account_id}
    )
    grants = await tx.rows(
        "SELECT role, org_path, org_unit_id, tenant_id FROM role_assignments"
        " WHERE account_id = %(id)s",
        {"id": account_id},
    )
    reached = await tx.rows(
        "SELECT t.id FROM tenants t, unnest(%(paths)s::text[]) AS g(path)"
        " WHERE starts_with(t.path, g.path)",
        {"paths": [g.org_path for g in grants]},
    )
    return Principal(
        account_id=account.id,
        username=account.username,
        grants=tuple(sorted(Grant(g.role, g.org_path, g.org_unit_id, g.tenant_id) for g in grants)),
        tenant_ids=frozenset(r.id for r in reached) | {g.tenant_id for g in grants},
    )


async def approval_request(
    tx: Transaction,
    op: Principal,
    *,
    branch: Any,
    kind: str = "evaluation_result",
    subject_type: str = "EvaluationRound",
    subject_id: int | None = None,
    to_county: bool = False,
    step_days: int = 15,
    summary: dict[str, Any] | None = None,
    approved_by: Sequence[int] = (),
    overdue: bool = False,
) -> Any:
    """A request submitted from `branch` (a row) by `op`, its first step pending; each
    account of `approved_by` (ids, in chain order) then approves the pending step.
    `overdue`: the pending step's deadline is moved to yesterday. Returns the request
    with `pending_step` (the pending step's row, or None) as a SimpleNamespace."""
    from types import SimpleNamespace

    from service.approvals import ApprovalKind, Decision, decide, submit
    from service.approvals import repository as approvals

    content = summary if summary is not None else {"title": unique("评议结果")}
    digest = secrets.token_hex(16)
    request = await submit(
        tx,
        op,
        kind=ApprovalKind(kind),
        subject_type=subject_type,
        subject_id=subject_id if subject_id is not None else 10**9 + next(_serial),
        branch_unit=branch.id,
        digest=digest,
        summary=content,
        to_county=to_county,
        step_days=step_days,
    )
    for account_id in approved_by:
        [step] = [
            s
            for s in (await approvals.steps_of_requests(tx, [request.id]))[request.id]
            if s.state == "pending"
        ]
        decider = await acting_as(tx, account_id)
        await decide(
            tx, decider, step_id=step.id, decision=Decision.APPROVE, reason=None, digest=digest
        )
    steps = (await approvals.steps_of_requests(tx, [request.id]))[request.id]
    pending = next((s for s in steps if s.state == "pending"), None)
    if overdue and pending is not None:
        await tx.execute(
            "UPDATE approval_steps SET due_at = now() - interval '1 day', opened_at = now()"
            " - interval '20 days' WHERE tenant_id = %(t)s AND id = %(id)s",
            {"t": pending.tenant_id, "id": pending.id},
        )
        pending = await approvals.get_step(tx, pending.id)
    final = await approvals.get_request(tx, request.id)
    return SimpleNamespace(**final._asdict(), pending_step=pending, steps=steps)


async def grading_policy(
    tx: Transaction,
    op: Principal,
    *,
    unit: Any,
    note: str | None = None,
    **values: Any,
) -> Any:
    """A new version of the policy of `unit` (the county or a tenant's top unit, a
    row): the default policy with `values` changed (`GradingPolicy` field names; shares
    as Fractions or "n/d" text). Returns the `PolicyVersion`."""
    from service.evaluations.policies import set_policy

    return await set_policy(
        tx,
        op,
        org_unit_id=unit.id,
        policy={k: (str(v) if not isinstance(v, bool | int) else v) for k, v in values.items()},
        note=note or unique("评议办法"),
    )


async def evaluation_round(
    tx: Transaction,
    op: Principal,
    *,
    branch: Any,
    year: int | None = None,
    half: int = 1,
    title: str | None = None,
    stage: str = "draft",
    ballots: Sequence[dict[int, str]] = (),
    mass_ballots: Sequence[dict[int, str]] = (),
) -> Any:
    """A round of `branch` (a row), opened by `op` (the operator) and moved through the
    service up to `stage` ("draft", "self_evaluation", "balloting" or "tallied").
    `ballots`: each {member_id: grade value}, cast by the roster's voters in roster
    order (one each, participation recorded); `mass_ballots` as if by used tokens. Both
    go in directly (no login per voter), so a test or benchmark builds a tallied round
    quickly; the ballot's own rules are tested over HTTP. Returns the round row."""
    from datetime import datetime

    from service.evaluations import repository as rounds
    from service.evaluations import service as evaluations
    from service.evaluations.rules import Grade
    from service.evaluations.stages import ORDER, Stage

    [row] = await evaluations.open_rounds(
        tx,
        op,
        org_unit_id=branch.id,
        year=year or date.today().year,
        half=half,
        title=title or unique("民主评议"),
    )
    target = Stage(stage)
    while ORDER.index(Stage(row.stage)) < ORDER.index(target):
        row = await evaluations.advance_round(
            tx, op, round_id=row.id, expected_stage=Stage(row.stage)
        )
        if Stage(row.stage) is not Stage.BALLOTING:
            continue
        roster = await rounds.roster(tx, row)
        voters = [e for e in roster if e.may_vote and not e.excused]
        assert len(ballots) <= len(voters), "more ballots than voters"
        by_member = {e.member_id: e.position for e in roster}

        def codes(ballot: dict[int, str], by_member: dict[int, int] = by_member) -> dict[int, int]:
            """{roster position: grade code} of the graded candidates."""
            return {
                by_member[member_id]: rounds.BALLOT_CODES[Grade(grade)]
                for member_id, grade in ballot.items()
            }

        for voter, ballot in zip(voters, ballots, strict=False):
            assert await rounds.record_participation(tx, row, voter.member_id)
            await rounds.count_ballot(tx, row, codes(ballot))
        if mass_ballots:
            hashes = [secrets.token_bytes(32) for _ in mass_ballots]
            await rounds.insert_tokens(
                tx, row, hashes, datetime.now().astimezone() + timedelta(days=1)
            )
            await tx.execute(
                "UPDATE evaluation_ballot_tokens SET used = true"
                " WHERE tenant_id = %(t)s AND round_id = %(r)s",
                {"t": row.tenant_id, "r": row.id},
            )
            for ballot in mass_ballots:
                await rounds.count_ballot(tx, row, codes(ballot))
    return row


async def evaluation_records(
    tx: Transaction,
    op: Principal,
    *,
    branch: Any,
    member: Any,
    text: str | None = None,
    year: int = 2020,
    half: int = 2,
) -> Any:
    """What the determinations show, about `member` (a row) of `branch` (a row): a round
    of `year`/`half` (a past period by default, so it never takes the period of a round
    a test opens) in self-evaluation (its roster drafted), an objection about the
    member, the round's assembly record (not held yet) and the member's grade of the
    year before. Written straight in: the service takes objections only on public
    notice and grades only at final, which the determinations tests reach the long way.
    Returns them as `round`, `objection`, `assembly`."""
    from types import SimpleNamespace

    round_row = await evaluation_round(
        tx, op, branch=branch, year=year, half=half, stage="self_evaluation"
    )
    keys = {"t": round_row.tenant_id, "r": round_row.id, "m": member.id, "by": op.actor}
    objection = await tx.one(
        "INSERT INTO evaluation_objections (tenant_id, round_id, member_id, text, raised_by)"
        " VALUES (%(t)s, %(r)s, %(m)s, %(text)s, %(by)s) RETURNING id, tenant_id, round_id",
        keys | {"text": text or unique("评议异议")},
    )
    assembly = await tx.one(
        "INSERT INTO evaluation_assemblies (tenant_id, round_id, recorded_by, note)"
        " VALUES (%(t)s, %(r)s, %(by)s, %(note)s) RETURNING id",
        keys | {"note": f"{branch.name}党员大会"},
    )
    await tx.execute(
        "INSERT INTO member_grades (tenant_id, member_id, year, grade)"
        " VALUES (%(t)s, %(m)s, %(y)s, 'qualified') ON CONFLICT DO NOTHING",
        keys | {"y": year - 1},
    )
    return SimpleNamespace(round=round_row, objection=objection, assembly=assembly)
