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
