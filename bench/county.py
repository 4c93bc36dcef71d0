"""A synthetic county's member ledger, written fast, for the ledger benchmarks.

    python -m bench.county [--tenants 100] [--branches 2000] [--members 40000]
                           [--months 24] [--database-url URL | --into URL] [--xlsx FILE]

Why it exists and why it writes the way it does: the ledger benchmarks need a county
of realistic size (100 tenants, 2,000 branches, 40,000 members with two years of dues
and meetings: a few million rows). Through the services that would take an hour, so
the rows go in with COPY on one owner connection, in one transaction. What the
services would check is reproduced here instead:

- org units and tenants as `service.tenants.service.create_org_unit` writes them: ids
  from `org_unit_id_seq`, a unit of a tenant kind is its own tenant (`tenant_id = id`,
  a `tenants` row with the same id and path), paths by `rules.child_path`;
- members' ID and phone numbers sealed by `service.members.service.sealed_pii` itself
  (the process's field cipher: a server with the same key opens them), valid GB 11643
  numbers, joined at 18 or later, ids from `ledger_id_seq`;
- row-level security is forced even for the owner, so the session's
  `app.tenant_ids` names every tenant written (a superuser bypasses it anyway).

The people are a pure function of the shape and `--seed`: `--xlsx` writes the same
people as one big tenant's ledger file (the county format the importer reads), for
`bench.import_ledger`.

What the data holds, per member, over the `--months` closed months before this one:
dues paid monthly (30%) or quarterly under a recorded arrangement (70%), paid by
family for ~5%; ~3% stopped paying 6–9 months ago (a 三不 flag), ~2% 3–5 months ago
(the dues warning); two meetings per branch per month with ~88% attendance, ~4%
excused, and ~2% of members absent from every meeting for 6–9 months (a flag);
~0.2% hold a sanction. ~5% are probationary members who joined within the year.
"""

from __future__ import annotations

import argparse
import atexit
import os
import random
import secrets
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import psycopg

from bench.harness import fresh_database, migrated, say
from service.config import Settings
from service.db import libpq_url
from service.dues.rules import Month
from service.members import rules
from service.members.service import sealed_pii
from service.runtime import install_field_cipher
from service.tenants.rules import child_path

REGION = "371326"  # 平邑县: the first six digits of a local ID number
SURNAMES = "王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗梁宋郑谢韩唐冯于董萧程曹袁邓许傅沈曾彭吕"
GIVEN = "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超秀兰霞平刚桂英华建国文玉珍红梅凤春海波"
PLACES = ("北京市", "上海市", "广州市", "深圳市", "青岛市", "济南市", "苏州市", "天津市")
EXCUSES = ("因病请假", "外出务工", "家中有事")
SANCTION_KINDS = ("warning", "serious_warning", "removal_from_post", "probation_one_year")
MEETING_KINDS = ("branch_assembly", "party_lecture")  # 支部党员大会, 党课 (三会一课)
MEETINGS_PER_MONTH = 2
DUES_FEN_PER_MONTH = 200
ACTOR = "bench"


@dataclass(frozen=True)
class Shape:
    tenants: int = 100
    branches: int = 2000
    members: int = 40_000
    months: int = 24
    seed: int = 1


@dataclass(frozen=True, slots=True)
class Person:
    """One member, before any database id: what the ledger file and the rows share."""

    index: int
    branch: int  # global branch index, 0 .. branches-1
    name: str
    id_number: str
    phone: str | None
    male: bool
    birth: date
    joined: date
    confirmed: date | None
    is_mobile: bool
    location: str | None
    by_family: bool
    quarterly: bool
    unpaid_from: int | None  # month ordinal from which no dues are paid
    absent_from: int | None  # month ordinal from which every meeting is missed
    sanctioned: bool


@dataclass(frozen=True)
class Branch:
    index: int
    id: int
    tenant_id: int
    path: str
    name: str


@dataclass
class County:
    """What `generate` wrote: enough for a benchmark to find its way around."""

    code: str
    county_id: int
    tenant_ids: list[int]
    branches: list[Branch]
    first_month: Month
    last_month: Month  # the last closed month: the one before today's
    counts: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0


def branch_name(index: int) -> str:
    """Unique in the whole county, so the one-tenant ledger file can reuse them."""
    return f"第{index + 1:04d}村党支部"


def window(months: int, today: date | None = None) -> tuple[Month, Month]:
    last = Month.of(today or date.today()) - 1
    return last - (months - 1), last


def _id_number(rng: random.Random, birth: date, male: bool, taken: set[str]) -> str:
    while True:
        seq = rng.randrange(0, 500) * 2 + (1 if male else 0)
        first17 = f"{REGION}{birth:%Y%m%d}{seq:03d}"
        number = first17 + rules.id_check_digit(first17)
        if number not in taken:
            taken.add(number)
            return number


def people(shape: Shape, today: date | None = None) -> list[Person]:
    """The county's members: deterministic for a shape, seed and day."""
    today = today or date.today()
    last = window(shape.months, today)[1]
    rng = random.Random(shape.seed)
    taken: set[str] = set()
    found: list[Person] = []
    for i in range(shape.members):
        male = rng.random() < 0.72
        probationary = rng.random() < 0.05
        if probationary:
            joined = today - timedelta(days=rng.randrange(30, 360))
            birth = joined - timedelta(days=rng.randrange(18 * 366, 40 * 365))
            confirmed = None
        else:
            birth = date(rng.randrange(1940, 2002), rng.randrange(1, 13), rng.randrange(1, 29))
            earliest = date(birth.year + 19, birth.month, birth.day)
            latest = today - timedelta(days=400)
            span = max((latest - earliest).days, 1)
            joined = earliest + timedelta(days=rng.randrange(span))
            confirmed = joined + timedelta(days=365)
        name = rng.choice(SURNAMES) + "".join(rng.choices(GIVEN, k=rng.choice((1, 2, 2))))
        phone = None
        if rng.random() < 0.9:
            phone = f"1{rng.choice('3456789')}{rng.randrange(10**9):09d}"
        is_mobile = rng.random() < 0.05
        roll = rng.random()
        unpaid_from = None
        if roll < 0.03:
            unpaid_from = (last - rng.randrange(5, 9)).ordinal
        elif roll < 0.05:
            unpaid_from = (last - rng.randrange(2, 5)).ordinal
        absent_from = (last - rng.randrange(5, 9)).ordinal if rng.random() < 0.02 else None
        found.append(
            Person(
                index=i,
                branch=rng.randrange(shape.branches),
                name=name,
                id_number=_id_number(rng, birth, male, taken),
                phone=phone,
                male=male,
                birth=birth,
                joined=joined,
                confirmed=confirmed,
                is_mobile=is_mobile,
                location=rng.choice(PLACES) if is_mobile else None,
                by_family=rng.random() < 0.05,
                quarterly=rng.random() < 0.7,
                unpaid_from=unpaid_from,
                absent_from=absent_from,
                sanctioned=rng.random() < 0.002,
            )
        )
    return found


def tracked_since(person: Person, first: Month) -> date:
    start = date(first.year, first.month, 1)
    return max(start, person.joined)


def payments(person: Person, first: Month, last: Month) -> Iterator[tuple[Month, int, date]]:
    """(first month covered, months covered, paid on) of each payment, oldest first."""
    start = max(first, Month.of(tracked_since(person, first)))
    stop = last if person.unpaid_from is None else Month.from_ordinal(person.unpaid_from) - 1
    day = 5 + person.index % 20
    month = start
    while month <= stop:
        if person.quarterly:
            quarter_end = month + (2 - (month.month - 1) % 3)
            if quarter_end > stop:
                break  # the quarter is not over (or the member stopped paying in it)
            n = quarter_end - month + 1
            yield month, n, date(quarter_end.year, quarter_end.month, day)
        else:
            n = 1
            yield month, 1, date(month.year, month.month, day)
        month = month + n


# --------------------------------------------------------------------------- writing


class Ids:
    """A block of ledger ids reserved at once (setval past it), handed out in order."""

    def __init__(self, first: int) -> None:
        self.next = first

    def take(self) -> int:
        value = self.next
        self.next += 1
        return value


def _reserve(conn: psycopg.Connection, sequence: str, n: int) -> int:
    """The first of `n` consecutive ids of `sequence`, reserved for this writer (the
    benchmark's own database: nobody else draws from it meanwhile)."""
    row = conn.execute(
        "SELECT setval(%s::regclass, nextval(%s::regclass) + %s - 1)", (sequence, sequence, n)
    ).fetchone()
    assert row is not None
    return int(row[0]) - n + 1


def _copy(
    conn: psycopg.Connection, table: str, columns: tuple[str, ...], rows: Iterator[tuple]
) -> int:
    n = 0
    with conn.cursor() as cur, cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as cp:
        for row in rows:
            cp.write_row(row)
            n += 1
    return n


def generate(
    owner_url: str,
    shape: Shape,
    *,
    today: date | None = None,
    progress: Callable[[str], None] = say,
    check_keys: bool = False,
    units_only: bool = False,
) -> County:
    """Write a county of `shape` into the migrated database at `owner_url` (owner
    connection, one transaction). The process's field cipher must be installed. As a
    superuser the foreign keys are not checked row by row unless `check_keys`. With
    `units_only`, only the tenants and org units (no member, no ledger row)."""
    started = time.perf_counter()
    today = today or date.today()
    first, last = window(shape.months, today)
    crowd = [] if units_only else people(shape, today)
    progress(f"  {len(crowd)} people made ({time.perf_counter() - started:.1f} s)")
    code = "bc" + secrets.token_hex(3)
    with psycopg.connect(libpq_url(owner_url)) as conn:
        root = conn.execute("SELECT id, path FROM tenants WHERE kind = 'platform'").fetchone()
        assert root is not None, "the migrations create the platform root"
        root_id, root_path = int(root[0]), str(root[1])
        unit_ids = [
            int(r[0])
            for r in conn.execute(
                "SELECT nextval('org_unit_id_seq') FROM generate_series(1, %s)",
                (1 + shape.tenants + shape.branches,),
            )
        ]
        county_id, town_ids = unit_ids[0], unit_ids[1 : 1 + shape.tenants]
        branch_ids = unit_ids[1 + shape.tenants :]
        # RLS is forced for the owner too: this session may touch every tenant written.
        scope = ",".join(str(i) for i in [county_id, *town_ids])
        conn.execute("SELECT set_config('app.tenant_ids', %s, false)", (scope,))
        superuser = conn.execute("SELECT current_setting('is_superuser') = 'on'").fetchone()
        if not check_keys and superuser and superuser[0]:
            # The foreign-key triggers would check ~3 million rows one by one (most of
            # the time taken); the rows are consistent by construction. Superuser only.
            conn.execute("SET session_replication_role = replica")
            progress("  foreign keys not checked row by row (session_replication_role)")

        county_path = child_path(root_path, county_id)
        town_paths = [child_path(county_path, t) for t in town_ids]
        branches = [
            Branch(
                index=b,
                id=branch_ids[b],
                tenant_id=town_ids[b % shape.tenants],
                path=child_path(town_paths[b % shape.tenants], branch_ids[b]),
                name=branch_name(b),
            )
            for b in range(shape.branches)
        ]
        county = County(code, county_id, town_ids, branches, first, last)
        counts = county.counts

        def tenant_rows() -> Iterator[tuple]:
            yield county_id, root_id, "county", code, county_path
            for t, tid in enumerate(town_ids):
                yield tid, county_id, "township", f"t{t:03d}", town_paths[t]

        counts["tenants"] = _copy(
            conn, "tenants", ("id", "parent_id", "kind", "code", "path"), tenant_rows()
        )

        def unit_rows() -> Iterator[tuple]:
            yield county_id, county_id, root_id, root_id, "county", code, "基准县", county_path
            for t, tid in enumerate(town_ids):
                name = f"基准县第{t + 1:03d}乡镇"
                yield tid, tid, county_id, county_id, "township", f"t{t:03d}", name, town_paths[t]
            for br in branches:
                yield (
                    br.tenant_id,
                    br.id,
                    br.tenant_id,
                    br.tenant_id,
                    "branch",
                    f"b{br.index:05d}",
                    br.name,
                    br.path,
                )

        unit_columns = ("tenant_id", "id", "parent_tenant_id", "parent_id", "kind", "code")
        counts["org_units"] = _copy(conn, "org_units", (*unit_columns, "name", "path"), unit_rows())
        progress(f"  {counts['org_units']} org units ({time.perf_counter() - started:.1f} s)")
        if units_only:
            conn.commit()
            county.seconds = time.perf_counter() - started
            return county

        member_ids = _reserve(conn, "ledger_id_seq", len(crowd))
        ids_of = [member_ids + p.index for p in crowd]
        tenant_of = [branches[p.branch].tenant_id for p in crowd]

        def member_rows() -> Iterator[tuple]:
            for p in crowd:
                br = branches[p.branch]
                mid = ids_of[p.index]
                pii = sealed_pii(
                    tenant_id=br.tenant_id, member_id=mid, id_number=p.id_number, phone=p.phone
                )
                yield (
                    br.tenant_id,
                    mid,
                    br.id,
                    br.path,
                    p.name,
                    "male" if p.male else "female",
                    p.birth,
                    pii["id_number_enc"],
                    pii["id_number_hmac"],
                    pii["id_number_mask"],
                    pii["phone_enc"],
                    pii["phone_mask"],
                    p.joined,
                    p.confirmed,
                    "full" if p.confirmed else "probationary",
                    p.is_mobile,
                    p.location,
                    p.by_family,
                    tracked_since(p, first),
                )

        member_columns = (
            "tenant_id", "id", "branch_id", "branch_path", "name", "gender", "birth_date",
            "id_number_enc", "id_number_hmac", "id_number_mask", "phone_enc", "phone_mask",
            "joined_on", "confirmed_on", "category", "is_mobile", "mobile_location",
            "dues_by_family", "tracked_since",
        )  # fmt: skip
        counts["members"] = _copy(conn, "members", member_columns, member_rows())
        progress(f"  {counts['members']} members sealed ({time.perf_counter() - started:.1f} s)")

        history_first = _reserve(conn, "ledger_id_seq", len(crowd))
        counts["member_history"] = _copy(
            conn,
            "member_history",
            ("tenant_id", "id", "member_id", "kind", "effective_on", "actor"),
            (
                (
                    tenant_of[p.index],
                    history_first + p.index,
                    ids_of[p.index],
                    "imported",
                    tracked_since(p, first),
                    ACTOR,
                )
                for p in crowd
            ),
        )

        quarterly = [p for p in crowd if p.quarterly]
        arrangement_first = _reserve(conn, "ledger_id_seq", max(len(quarterly), 1))
        start_day = date(first.year, first.month, 1)
        counts["dues_arrangements"] = _copy(
            conn,
            "dues_arrangements",
            ("tenant_id", "id", "member_id", "schedule", "from_month", "agreed_on", "recorded_by"),
            (
                (
                    tenant_of[p.index],
                    arrangement_first + k,
                    ids_of[p.index],
                    "quarterly",
                    first.ordinal,
                    start_day,
                    ACTOR,
                )
                for k, p in enumerate(quarterly)
            ),
        )

        # Payments first (their ids), then the months they cover: two passes over the
        # same pure schedule, so that nothing of a million rows is held in memory.
        payment_first = _reserve(conn, "ledger_id_seq", len(crowd) * shape.months)

        def payment_rows() -> Iterator[tuple]:
            pid = payment_first
            for p in crowd:
                paid_by = "family" if p.by_family else "self"
                for _, n, paid_on in payments(p, first, last):
                    amount = DUES_FEN_PER_MONTH * n
                    yield tenant_of[p.index], pid, ids_of[p.index], paid_on, amount, paid_by, ACTOR
                    pid += 1

        def month_rows() -> Iterator[tuple]:
            pid = payment_first
            for p in crowd:
                paid_by = "family" if p.by_family else "self"
                for start, n, _ in payments(p, first, last):
                    for k in range(n):
                        yield tenant_of[p.index], ids_of[p.index], start.ordinal + k, pid, paid_by
                    pid += 1

        counts["dues_payments"] = _copy(
            conn,
            "dues_payments",
            ("tenant_id", "id", "member_id", "paid_on", "amount_fen", "paid_by", "recorded_by"),
            payment_rows(),
        )
        counts["dues_months"] = _copy(
            conn,
            "dues_months",
            ("tenant_id", "member_id", "month", "payment_id", "paid_by"),
            month_rows(),
        )
        progress(
            f"  {counts['dues_payments']} payments, {counts['dues_months']} months paid "
            f"({time.perf_counter() - started:.1f} s)"
        )

        months = [first + k for k in range(shape.months)]
        per_branch = shape.months * MEETINGS_PER_MONTH
        meeting_first = _reserve(conn, "ledger_id_seq", shape.branches * per_branch)

        def meeting_id(branch: int, m: int, k: int) -> int:
            return meeting_first + branch * per_branch + m * MEETINGS_PER_MONTH + k

        def meeting_rows() -> Iterator[tuple]:
            for br in branches:
                for m, month in enumerate(months):
                    for k, kind in enumerate(MEETING_KINDS[:MEETINGS_PER_MONTH]):
                        held = date(month.year, month.month, 8 + 12 * k)
                        topic = f"{month.year}年{month.month}月{'党员大会' if k == 0 else '党课'}"
                        yield (br.tenant_id, meeting_id(br.index, m, k), br.id, br.path, kind,
                               held, month.ordinal, topic, ACTOR)  # fmt: skip

        counts["meetings"] = _copy(
            conn,
            "meetings",
            (
                "tenant_id",
                "id",
                "branch_id",
                "branch_path",
                "kind",
                "held_on",
                "month",
                "topic",
                "recorded_by",
            ),
            meeting_rows(),
        )

        by_branch: list[list[Person]] = [[] for _ in branches]
        for p in crowd:
            by_branch[p.branch].append(p)

        def attendance_rows() -> Iterator[tuple]:
            rng = random.Random(shape.seed + 1)
            for br in branches:
                present = [
                    (p, Month.of(tracked_since(p, first)).ordinal) for p in by_branch[br.index]
                ]
                for m, month in enumerate(months):
                    for k in range(MEETINGS_PER_MONTH):
                        mid = meeting_id(br.index, m, k)
                        for p, since in present:
                            if month.ordinal < since:
                                continue
                            reason = None
                            if p.absent_from is not None and month.ordinal >= p.absent_from:
                                presence = "absent"
                            else:
                                r = rng.random()
                                if r < 0.88:
                                    presence = "attended"
                                elif r < 0.92:
                                    presence, reason = "excused", EXCUSES[int(r * 1000) % 3]
                                else:
                                    presence = "absent"
                            yield (br.tenant_id, mid, ids_of[p.index], month.ordinal, presence,
                                   reason)  # fmt: skip

        counts["meeting_attendance"] = _copy(
            conn,
            "meeting_attendance",
            ("tenant_id", "meeting_id", "member_id", "month", "presence", "reason"),
            attendance_rows(),
        )
        progress(
            f"  {counts['meetings']} meetings, {counts['meeting_attendance']} attendance rows "
            f"({time.perf_counter() - started:.1f} s)"
        )

        sanctioned = [p for p in crowd if p.sanctioned]
        sanction_first = _reserve(conn, "ledger_id_seq", max(len(sanctioned), 1))
        counts["sanctions"] = _copy(
            conn,
            "sanctions",
            (
                "tenant_id",
                "id",
                "member_id",
                "kind",
                "decided_on",
                "decided_by",
                "matter",
                "recorded_by",
            ),
            (
                (
                    tenant_of[p.index],
                    sanction_first + k,
                    ids_of[p.index],
                    SANCTION_KINDS[k % len(SANCTION_KINDS)],
                    today - timedelta(days=30 + k),
                    "基准县纪委",
                    "违反组织纪律",
                    ACTOR,
                )
                for k, p in enumerate(sanctioned)
            ),
        )
        conn.commit()
        progress(f"  committed ({time.perf_counter() - started:.1f} s); analyzing ...")
        conn.autocommit = True
        conn.execute(
            "ANALYZE tenants, org_units, members, member_history, dues_payments, dues_months, "
            "dues_arrangements, meetings, meeting_attendance, sanctions"
        )
    county.seconds = time.perf_counter() - started
    return county


# --------------------------------------------------------------------------- ledger file

TITLE = "基准县党员信息台账"
HEADERS = (
    "序号", "姓名", "性别", "身份证号", "出生日期", "入党日期", "转正日期", "人员类别",
    "所在支部", "联系电话", "是否流动党员", "外出地点",
)  # fmt: skip


def write_ledger_xlsx(path: Path, shape: Shape, today: date | None = None) -> int:
    """The same people as ONE tenant's ledger in the county format (a title row, then
    the Chinese headers, one row a member; branches by `branch_name`); the row count."""
    from openpyxl import Workbook

    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet("党员台账")
    sheet.append([TITLE])
    sheet.append(list(HEADERS))
    n = 0
    for p in people(shape, today):
        n += 1
        sheet.append(
            [
                n,
                p.name,
                "男" if p.male else "女",
                p.id_number,
                p.birth,
                p.joined,
                p.confirmed,
                "正式党员" if p.confirmed else "预备党员",
                branch_name(p.branch),
                p.phone,
                "是" if p.is_mobile else "否",
                p.location,
            ]
        )
    workbook.save(path)
    return n


# --------------------------------------------------------------------------- main


def add_shape_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--tenants", type=int, default=100, help="tenants (townships) (100)")
    p.add_argument("--branches", type=int, default=2000, help="branches, over all tenants (2000)")
    p.add_argument("--members", type=int, default=40_000, help="members (40000)")
    p.add_argument("--months", type=int, default=24, help="closed months of dues/meetings (24)")
    p.add_argument("--seed", type=int, default=1, help="random seed of the people (1)")


def shape_of(args: argparse.Namespace) -> Shape:
    if args.tenants < 1 or args.branches < args.tenants or args.months < 1:
        raise SystemExit("need at least one tenant, a branch per tenant and one month")
    return Shape(args.tenants, args.branches, args.members, args.months, args.seed)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench.county", description=__doc__.split("\n")[0])
    add_shape_options(p)
    where = p.add_mutually_exclusive_group()
    where.add_argument(
        "--database-url",
        default=os.environ.get("PINGYI_DATABASE_URL"),
        help="an owner/superuser URL: a fresh database is created there, migrated, filled, "
        "timed and dropped (default: $PINGYI_DATABASE_URL, else embedded pgserver)",
    )
    where.add_argument(
        "--into",
        help="the owner URL of an existing, migrated Pingyi database to add the county to "
        "(kept); numbers are sealed with the service's own field key (PINGYI_* settings)",
    )
    p.add_argument("--xlsx", type=Path, help="also write the people as one tenant's ledger here")
    p.add_argument("--no-database", action="store_true", help="only write --xlsx")
    p.add_argument(
        "--check-keys",
        action="store_true",
        help="let PostgreSQL check every foreign key row by row (slower; by default a "
        "superuser skips those triggers: the rows are consistent by construction)",
    )
    return p


def _report(county: County) -> None:
    total = sum(county.counts.values())
    say(f"county {county.code}: {total} rows in {county.seconds:.1f} s")
    for table, n in county.counts.items():
        say(f"  {table:<20}{n:>10}")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    shape = shape_of(args)
    if args.xlsx:
        t0 = time.perf_counter()
        n = write_ledger_xlsx(args.xlsx, shape)
        size = args.xlsx.stat().st_size
        took = time.perf_counter() - t0
        say(f"wrote {args.xlsx}: {n} rows, {size / 2**20:.1f} MB in {took:.1f} s")
    if args.no_database:
        return 0
    if args.into:
        install_field_cipher(Settings.from_env())
        say(f"adding a county of {shape} ...")
        _report(generate(args.into, shape, check_keys=args.check_keys))
        return 0
    workdir = Path(tempfile.mkdtemp(prefix="pingyi-county-"))
    # Registered before pgserver's own exit hook, so it runs after the server has stopped.
    atexit.register(shutil.rmtree, workdir, ignore_errors=True)
    with fresh_database(args.database_url, workdir) as owner:
        settings = migrated(owner, workdir)
        install_field_cipher(settings)  # as build_state would: the key in workdir
        say(f"generating a county of {shape} ...")
        _report(generate(owner, shape, check_keys=args.check_keys))
    return 0


if __name__ == "__main__":
    sys.exit(main())
