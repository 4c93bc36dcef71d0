"""Demo ledger: members in every demo branch, two years of dues and meetings, a few
members who show each 三不 prompt, contacts with mobile members, a sanction and an open
registration drive, so a newcomer sees the ledger working at once.

Members are added through the ledger's own service (checked, sealed, audited). Their
two years of history are seed data, not acts of a user: they go in as a few bulk
statements (thousands of rows in well under a second) with one audit event per
tenant saying so. Everything is drawn from a fixed seed, so every demo is the same.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from datetime import date, timedelta
from typing import Any

from service.audit.service import record
from service.auth.principal import Principal
from service.db import Transaction
from service.dues.rules import Month
from service.members.mobile import ContactChannel, record_contact
from service.members.rules import MemberCategory, id_check_digit
from service.members.service import NewMember, add_member, link_account
from service.registration.service import open_drive
from service.sanctions.rules import SanctionKind
from service.sanctions.service import record_sanction

SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡"
    "余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯"
    "龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"
)
GIVEN = "建国华明丽军伟芳秀英敏静强磊洋艳勇杰娟涛超霞平刚桂兰春梅海燕红志文斌玉凤德成宏亮"
PLACES = ["广东省东莞市", "浙江省义乌市", "江苏省苏州市", "福建省晋江市", "上海市浦东新区"]
REGION = "511302"

# Who shows which prompt, by position in the first branch of the first tenant.
LAPSE_DEMO = {
    0: "dues_7",  # 7 months without dues: flagged
    1: "dues_4",  # 4 months: the earlier warning only
    2: "life_6",  # absent from every meeting for 6 months: flagged
    3: "tasks_6",  # assigned tasks left undone for 6 months: flagged
    4: "excused_8",  # 8 months without dues, with a recorded reason: not flagged
    5: "family",  # a mobile member whose family pays: paid, shown as such
}


def _id_number(rng: random.Random, born: date, serial: int) -> str:
    first17 = f"{REGION}{born:%Y%m%d}{serial % 1000:03d}"
    return first17 + id_check_digit(first17)


async def load_demo_ledger(
    tx: Transaction,
    principal: Principal,
    branches: Sequence[Any],
    *,
    member_account_id: int | None,
    today: date | None = None,
    progress: Callable[[str], None] = print,
) -> int:
    """Fill `branches` (rows of org_units; the first is the one the demo member
    account belongs to) with members and their history; return how many members."""
    rng = random.Random(20261127)  # noqa: S311 (demo data, not secrets)
    today = today or date.today()
    last_closed = Month.of(today) - 1
    window = list(Month.range(last_closed - 23, last_closed))
    since = window[0].first_day
    members: list[tuple[Any, str]] = []
    serial = 0
    for b_index, branch in enumerate(branches):
        count = 12 if b_index == 0 else rng.randint(7, 12)
        for i in range(count):
            serial += 1
            born = date(1950, 1, 1) + timedelta(days=rng.randint(0, 365 * 50))
            joined = born.replace(year=born.year + rng.randint(20, 30), day=1)
            if joined > today - timedelta(days=400):
                joined = today - timedelta(days=rng.randint(400, 3000))
            role = LAPSE_DEMO.get(i, "") if b_index == 0 else ""
            probationary = role == "" and rng.random() < 0.06
            mobile = role == "family" or (role == "" and rng.random() < 0.1)
            name = rng.choice(SURNAMES) + "".join(rng.choices(GIVEN, k=rng.choice((1, 2))))
            member = await add_member(
                tx,
                principal,
                NewMember(
                    branch_id=branch.id,
                    name=name,
                    id_number=_id_number(rng, born, serial),
                    joined_on=today - timedelta(days=200) if probationary else joined,
                    category=MemberCategory.PROBATIONARY if probationary else MemberCategory.FULL,
                    phone=f"1{rng.choice('3589')}{rng.randint(0, 999_999_999):09d}",
                    is_mobile=mobile,
                    mobile_location=rng.choice(PLACES) if mobile else None,
                    mobile_contact_plan="每月电话联系，微信群学习" if mobile else None,
                    dues_by_family=role == "family",
                    tracked_since=since,
                ),
            )
            members.append((member, role))
        progress(f"  党员台账：{branch.name} {count} 人")
    if member_account_id is not None:
        plain = next(m for m, role in members if role == "")
        await link_account(tx, principal, member_id=plain.id, account_id=member_account_id)
    await _history(tx, members, branches, window, rng)
    await _current_affairs(tx, principal, members, branches[0], today, rng)
    for tenant_id in sorted({m.tenant_id for m, _ in members}):
        await record(
            tx,
            principal,
            tenant_id=tenant_id,
            action="demo.seed_ledger",
            object_type="Tenant",
            object_id=tenant_id,
            details={"months": len(window)},
        )
    return len(members)


async def _current_affairs(
    tx: Transaction,
    principal: Principal,
    members: list[tuple[Any, str]],
    first_branch: Any,
    today: date,
    rng: random.Random,
) -> None:
    """What a user acts on today, through the services: contacts with most mobile
    members (some stay unreached), a warning sanction, and a registration drive of the
    first branch's tenant that opened a week ago."""
    for member, role in members:
        if member.is_mobile and (role == "family" or rng.random() < 0.6):
            await record_contact(
                tx,
                principal,
                member_id=member.id,
                contacted_on=today - timedelta(days=rng.randint(3, 60)),
                channel=rng.choice(list(ContactChannel)),
                contacted_by="支部书记",
                reached=True,
                outcome="了解务工情况，提醒按时参加线上学习",
            )
    plain = [m for m, role in members if role == "" and m.branch_id == first_branch.id]
    await record_sanction(
        tx,
        principal,
        member_id=plain[-1].id,
        kind=SanctionKind.WARNING,
        decided_on=today - timedelta(days=90),
        decided_by="城关镇纪委",
        matter="违反工作纪律，造成不良影响",
    )
    await open_drive(
        tx,
        principal,
        org_unit_id=first_branch.tenant_id,
        title=f"{today.year}年党员登记",
        opens_on=today - timedelta(days=7),
    )


async def _history(
    tx: Transaction,
    members: list[tuple[Any, str]],
    branches: Sequence[Any],
    window: list[Month],
    rng: random.Random,
) -> None:
    """Two years of dues, meetings, attendance and tasks in bulk."""
    payments: list[tuple[int, int, date, int, str, int]] = []  # tenant, member, on, fen, by, m
    excuses: list[tuple[int, int, int, int, str]] = []
    tasks: list[tuple[int, int, str, date, date, int, str]] = []
    skip_life: dict[int, set[Month]] = {}
    for member, role in members:
        joined = Month.of(member.joined_on)
        unpaid: set[Month] = set()
        if role == "dues_7":
            unpaid = set(window[-7:])
        elif role == "dues_4":
            unpaid = set(window[-4:])
        elif role == "excused_8":
            unpaid = set(window[-8:])
            excuses.append(
                (
                    member.tenant_id,
                    member.id,
                    window[-8].ordinal,
                    window[-1].ordinal,
                    "外出务工期间经支部同意暂缓交纳，返乡后补交",
                )
            )
        elif role == "life_6":
            skip_life[member.id] = set(window[-6:])
        elif role == "tasks_6":
            for month in window[-6:]:
                due = month.first_day + timedelta(days=20)
                tasks.append(
                    (
                        member.tenant_id,
                        member.id,
                        "联系帮扶困难群众",
                        month.first_day,
                        due,
                        month.ordinal,
                        "not_done",
                    )
                )
        elif rng.random() < 0.2:
            month = rng.choice(window)
            tasks.append(
                (
                    member.tenant_id,
                    member.id,
                    "参加志愿服务",
                    month.first_day,
                    month.first_day + timedelta(days=20),
                    month.ordinal,
                    "done",
                )
            )
        paid_by = "family" if member.dues_by_family else "self"
        fen = rng.choice((200, 500, 1000, 2000, 3000))
        for month in window:
            if month < joined or month in unpaid:
                continue
            paid_on = month.first_day + timedelta(days=rng.randint(0, 20))
            payments.append((member.tenant_id, member.id, paid_on, fen, paid_by, month.ordinal))
    await tx.execute(
        """
        WITH p AS (
          INSERT INTO dues_payments (tenant_id, member_id, paid_on, amount_fen, paid_by,
                                     recorded_by)
          SELECT t, m, d, f, b, 'demo'
          FROM unnest(%(t)s::bigint[], %(m)s::bigint[], %(d)s::date[], %(f)s::int[],
                      %(b)s::text[]) AS x(t, m, d, f, b)
          RETURNING tenant_id, id, member_id, paid_on, paid_by
        )
        INSERT INTO dues_months (tenant_id, member_id, month, payment_id, paid_by)
        SELECT p.tenant_id, p.member_id,
               extract(year FROM p.paid_on)::int * 12 + extract(month FROM p.paid_on)::int - 1,
               p.id, p.paid_by
        FROM p
        """,
        {
            "t": [p[0] for p in payments],
            "m": [p[1] for p in payments],
            "d": [p[2] for p in payments],
            "f": [p[3] for p in payments],
            "b": [p[4] for p in payments],
        },
    )
    if excuses:
        await tx.execute(
            """
            INSERT INTO ledger_excuses (tenant_id, member_id, kind, from_month, to_month,
                                        reason, recorded_by)
            SELECT t, m, 'dues', f, l, r, 'demo'
            FROM unnest(%(t)s::bigint[], %(m)s::bigint[], %(f)s::int[], %(l)s::int[],
                        %(r)s::text[]) AS x(t, m, f, l, r)
            """,
            {k: [e[i] for e in excuses] for i, k in enumerate("tmflr")},
        )
    if tasks:
        await tx.execute(
            """
            INSERT INTO member_tasks (tenant_id, member_id, title, assigned_on, due_on,
                                      due_month, outcome, recorded_by)
            SELECT t, m, ti, a, d, dm, o, 'demo'
            FROM unnest(%(t)s::bigint[], %(m)s::bigint[], %(ti)s::text[], %(a)s::date[],
                        %(d)s::date[], %(dm)s::int[], %(o)s::text[]) AS x(t, m, ti, a, d, dm, o)
            """,
            {
                k: [row[i] for row in tasks]
                for i, k in enumerate(("t", "m", "ti", "a", "d", "dm", "o"))
            },
        )
    await _meetings(tx, members, branches, window, rng, skip_life)


async def _meetings(
    tx: Transaction,
    members: list[tuple[Any, str]],
    branches: Sequence[Any],
    window: list[Month],
    rng: random.Random,
    skip_life: dict[int, set[Month]],
) -> None:
    by_branch: dict[int, list[Any]] = {}
    for member, _ in members:
        by_branch.setdefault(member.branch_id, []).append(member)
    kinds = ("branch_assembly", "party_lecture", "themed_party_day", "branch_committee")
    # One topic per kind, in the order of `kinds`.
    topics = (
        "学习党的二十届四中全会精神",
        "党课：党章学习",
        "主题党日：走访慰问老党员",
        "支部工作部署",
    )
    meetings: list[tuple[int, int, str, str, date, int, str]] = []
    for branch in branches:
        for month in window:
            k = month.ordinal % len(kinds)
            held = month.first_day + timedelta(days=rng.randint(5, 25))
            meetings.append(
                (branch.tenant_id, branch.id, branch.path, kinds[k], held, month.ordinal, topics[k])
            )
    rows = await tx.rows(
        """
        INSERT INTO meetings (tenant_id, branch_id, branch_path, kind, held_on, month, topic,
                              recorded_by)
        SELECT t, b, p, k, h, m, tp, 'demo'
        FROM unnest(%(t)s::bigint[], %(b)s::bigint[], %(p)s::text[], %(k)s::text[],
                    %(h)s::date[], %(m)s::int[], %(tp)s::text[]) AS x(t, b, p, k, h, m, tp)
        RETURNING tenant_id, id, branch_id, month
        """,
        {
            k: [row[i] for row in meetings]
            for i, k in enumerate(("t", "b", "p", "k", "h", "m", "tp"))
        },
    )
    attendance: list[tuple[int, int, int, int, str, str | None]] = []
    for meeting in rows:
        month = Month.from_ordinal(meeting.month)
        for member in by_branch.get(meeting.branch_id, []):
            if month < Month.of(member.joined_on):
                continue
            if month in skip_life.get(member.id, set()):
                presence, reason = "absent", None
            else:
                roll = rng.random()
                if member.is_mobile and roll < 0.5:
                    presence, reason = "excused", "在外务工，线上学习"
                elif roll < 0.06:
                    presence, reason = "excused", "生病住院"
                elif roll < 0.12:
                    presence, reason = "absent", None
                else:
                    presence, reason = "attended", None
            attendance.append(
                (meeting.tenant_id, meeting.id, member.id, meeting.month, presence, reason)
            )
    await tx.execute(
        """
        INSERT INTO meeting_attendance (tenant_id, meeting_id, member_id, month, presence, reason)
        SELECT * FROM unnest(%(t)s::bigint[], %(mt)s::bigint[], %(m)s::bigint[], %(mo)s::int[],
                             %(p)s::text[], %(r)s::text[])
        """,
        {k: [row[i] for row in attendance] for i, k in enumerate(("t", "mt", "m", "mo", "p", "r"))},
    )
