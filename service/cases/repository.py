"""Statements of disposal cases. No authorization and no audit: the service decides.

The scoped statement is `readable_cases` (the path-prefix filter of `ReadablePaths`);
a case is also read by the member it concerns and by its educators, whose rights come
from the case itself (`member_account_id`, `case_educators.account_id`), not from a
branch grant: `own_cases` and `educator_cases` select those by account id.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import date
from typing import Any

from service.authz import ReadablePaths
from service.cases.models import CaseEducator, CaseRecord, DisposalCase, EducationSession
from service.db import Transaction
from service.pagination import Page, PageRequest, keyset

FIELDS = tuple(c.name for c in DisposalCase.__table__.columns)
COLUMNS = ", ".join(FIELDS)
_C_COLUMNS = ", ".join(f"c.{name}" for name in FIELDS)
RECORD_COLUMNS = ", ".join(c.name for c in CaseRecord.__table__.columns)
EDUCATOR_COLUMNS = ", ".join(c.name for c in CaseEducator.__table__.columns)
SESSION_COLUMNS = ", ".join(c.name for c in EducationSession.__table__.columns)
# The accounts of a case's educators (who may read it and log sessions), as a column.
_EDUCATORS = (
    "coalesce((SELECT array_agg(e.account_id) FROM case_educators e"
    " WHERE e.tenant_id = c.tenant_id AND e.case_id = c.id AND e.account_id IS NOT NULL),"
    " '{}') AS educator_account_ids"
)


async def get_case(tx: Transaction, case_id: int, *, lock: bool = False) -> Any | None:
    """The case with `educator_account_ids` (who may write sessions and read it)."""
    if lock:
        # FOR UPDATE cannot go with the aggregate; a locked read takes the row alone
        # and the educators after (a mutation's extra round trip, not a list's).
        row = await tx.first(
            f"SELECT {COLUMNS} FROM disposal_cases WHERE id = %(id)s FOR UPDATE", {"id": case_id}
        )
        return row
    return await tx.first(
        f"SELECT {_C_COLUMNS}, {_EDUCATORS} FROM disposal_cases c WHERE c.id = %(id)s",
        {"id": case_id},
    )


async def get_cases(tx: Transaction, ids: Sequence[int]) -> dict[int, Any]:
    rows = await tx.rows(
        f"SELECT {_C_COLUMNS}, {_EDUCATORS} FROM disposal_cases c"
        " WHERE c.id = ANY(%(ids)s::bigint[])",
        {"ids": sorted(set(ids))},
    )
    return {row.id: row for row in rows}


def readable_cases(
    readable: ReadablePaths, *, branch_id: int | None, stage: str | None
) -> tuple[str, dict[str, Any]]:
    """The one scoped statement of cases: under the readable paths, optionally of one
    branch and one stage; callers add the keyset tail."""
    within, params = readable.sql("branch_path")
    conditions = [within]
    if branch_id is not None:
        conditions.append("branch_id = %(branch)s")
        params = params | {"branch": branch_id}
    if stage is not None:
        conditions.append("stage = %(stage)s")
        params = params | {"stage": stage}
    return f"SELECT {COLUMNS} FROM disposal_cases WHERE {' AND '.join(conditions)}", params


async def cases_page(
    tx: Transaction, readable: ReadablePaths, page: PageRequest, *, stage: str | None = None
) -> Page[Any]:
    text, params = readable_cases(readable, branch_id=None, stage=stage)
    rows = await tx.rows(f"{text} AND {keyset()}", params | page.params)
    return Page.of(rows, page)


async def cases_page_under(
    tx: Transaction,
    readable: ReadablePaths,
    unit_id: int,
    page: PageRequest,
    *,
    stage: str | None = None,
) -> tuple[str, Page[Any]] | None:
    """The unit's path and a page of the cases under it, in one statement (the unit is
    read with the page, its path checked after); None when the unit is not found."""
    text, params = readable_cases(readable, branch_id=None, stage=stage)
    rows = await tx.rows(
        f"""
        SELECT u.path AS unit_path, c.*
        FROM org_units u LEFT JOIN LATERAL (
          {text} AND starts_with(branch_path, u.path) AND {keyset()}
        ) c ON true
        WHERE u.id = %(unit)s
        """,
        params | page.params | {"unit": unit_id},
    )
    if not rows:
        return None
    return rows[0].unit_path, Page.of([row for row in rows if row.id is not None], page)


async def own_cases_page(tx: Transaction, account_id: int, page: PageRequest) -> Page[Any]:
    rows = await tx.rows(
        f"SELECT {COLUMNS} FROM disposal_cases WHERE member_account_id = %(account)s"
        f" AND {keyset()}",
        {"account": account_id, **page.params},
    )
    return Page.of(rows, page)


async def educator_cases_page(tx: Transaction, account_id: int, page: PageRequest) -> Page[Any]:
    rows = await tx.rows(
        # with `educator_account_ids`: the rows' records and sessions are read as the
        # educator's, which `service.sees` decides from them
        f"SELECT {_C_COLUMNS}, {_EDUCATORS} FROM disposal_cases c WHERE EXISTS (SELECT 1"
        " FROM case_educators e WHERE e.tenant_id = c.tenant_id AND e.case_id = c.id"
        " AND e.account_id = %(account)s)"
        f" AND {keyset('c.id')}",
        {"account": account_id, **page.params},
    )
    return Page.of(rows, page)


async def insert_case(tx: Transaction, **values: Any) -> Any | None:
    """The new case; None when the member already has an open one (the partial unique
    index decides, also between two openings at once)."""
    names = ", ".join(values)
    marks = ", ".join(f"%({k})s" for k in values)
    return await tx.first(
        f"INSERT INTO disposal_cases ({names}) VALUES ({marks})"
        " ON CONFLICT (tenant_id, member_id) WHERE stage <> 'closed' DO NOTHING"
        f" RETURNING {COLUMNS}",
        values,
    )


async def update_case(tx: Transaction, row: Any, **values: Any) -> Any | None:
    """Write `values` if the case is still at the version read (None: it moved)."""
    sets = ", ".join(f"{k} = %(v_{k})s" for k in values)
    return await tx.first(
        f"UPDATE disposal_cases SET {sets}, version = version + 1,"
        " stage_changed_at = CASE WHEN stage IS DISTINCT FROM %(v_stage_now)s THEN now()"
        " ELSE stage_changed_at END"
        " WHERE tenant_id = %(tenant)s AND id = %(id)s AND version = %(version)s"
        f" RETURNING {COLUMNS}",
        {f"v_{k}": v for k, v in values.items()}
        | {
            "v_stage_now": values.get("stage", row.stage),
            "tenant": row.tenant_id,
            "id": row.id,
            "version": row.version,
        },
    )


async def add_record(
    tx: Transaction,
    case: Any,
    *,
    kind: str,
    occurred_on: date,
    people: Sequence[Any] = (),
    body: str = "",
    data: dict[str, Any] | None = None,
    account_id: int | None,
    actor: str,
) -> Any:
    return await tx.one(
        "INSERT INTO case_records (tenant_id, case_id, kind, occurred_on, people, body, data,"
        " recorded_by, recorded_by_name) VALUES (%(tenant)s, %(case)s, %(kind)s, %(on)s,"
        " %(people)s::jsonb, %(body)s, %(data)s::jsonb, %(account)s, %(actor)s)"
        f" RETURNING {RECORD_COLUMNS}",
        {
            "tenant": case.tenant_id,
            "case": case.id,
            "kind": kind,
            "on": occurred_on,
            "people": json.dumps(list(people), ensure_ascii=False),
            "body": body,
            "data": json.dumps(data or {}, ensure_ascii=False, default=str),
            "account": account_id,
            "actor": actor,
        },
    )


async def records_page(tx: Transaction, case: Any, page: PageRequest) -> Page[Any]:
    rows = await tx.rows(
        f"SELECT {RECORD_COLUMNS} FROM case_records WHERE tenant_id = %(tenant)s"
        f" AND case_id = %(case)s AND {keyset()}",
        {"tenant": case.tenant_id, "case": case.id, **page.params},
    )
    return Page.of(rows, page)


async def records_of(tx: Transaction, case: Any) -> list[Any]:
    """Every record of a case in order (the archive reads them all)."""
    return await tx.rows(
        f"SELECT {RECORD_COLUMNS} FROM case_records WHERE tenant_id = %(tenant)s"
        " AND case_id = %(case)s ORDER BY id",
        {"tenant": case.tenant_id, "case": case.id},
    )


async def educators_of(tx: Transaction, case: Any) -> list[Any]:
    return await tx.rows(
        f"SELECT {EDUCATOR_COLUMNS} FROM case_educators WHERE tenant_id = %(tenant)s"
        " AND case_id = %(case)s ORDER BY member_id",
        {"tenant": case.tenant_id, "case": case.id},
    )


async def sessions_of(tx: Transaction, case: Any) -> list[Any]:
    return await tx.rows(
        f"SELECT {SESSION_COLUMNS} FROM education_sessions WHERE tenant_id = %(tenant)s"
        " AND case_id = %(case)s ORDER BY held_on, id",
        {"tenant": case.tenant_id, "case": case.id},
    )


async def add_educators(
    tx: Transaction, case: Any, educators: Sequence[Any], assigned_on: date
) -> list[Any]:
    return await tx.rows(
        "INSERT INTO case_educators (tenant_id, case_id, member_id, account_id, name,"
        " assigned_on) SELECT %(tenant)s, %(case)s, v.member_id, v.account_id, v.name, %(on)s"
        " FROM unnest(%(members)s::bigint[], %(accounts)s::bigint[], %(names)s::text[])"
        f" AS v(member_id, account_id, name) RETURNING {EDUCATOR_COLUMNS}",
        {
            "tenant": case.tenant_id,
            "case": case.id,
            "on": assigned_on,
            "members": [e.id for e in educators],
            "accounts": [e.account_id for e in educators],
            "names": [e.name for e in educators],
        },
    )


async def add_session(
    tx: Transaction, case: Any, *, educator_member_id: int, held_on: date, summary: str, actor: str
) -> Any:
    return await tx.one(
        "INSERT INTO education_sessions (tenant_id, case_id, educator_member_id, held_on,"
        " summary, recorded_by) VALUES (%(tenant)s, %(case)s, %(educator)s, %(on)s,"
        f" %(summary)s, %(actor)s) RETURNING {SESSION_COLUMNS}",
        {
            "tenant": case.tenant_id,
            "case": case.id,
            "educator": educator_member_id,
            "on": held_on,
            "summary": summary,
            "actor": actor,
        },
    )


async def branch_voters(tx: Transaction, tenant_id: int, branch_id: int) -> list[Any]:
    """The branch's full members on the rolls (正式党员, active or correcting), each with
    their sanctions: who may vote in its member assembly, before probation is counted."""
    return await tx.rows(
        """
        SELECT m.id,
               coalesce((SELECT json_agg(json_build_object('kind', s.kind,
                   'decided_on', s.decided_on, 'probation_ends_on', s.probation_ends_on))
                 FROM sanctions s WHERE s.tenant_id = m.tenant_id AND s.member_id = m.id),
                 '[]'::json) AS sanctions
        FROM members m
        WHERE m.tenant_id = %(tenant)s AND m.branch_id = %(branch)s AND m.category = 'full'
          AND m.status IN ('active', 'correcting')
        ORDER BY m.id
        """,
        {"tenant": tenant_id, "branch": branch_id},
    )


async def sanction_dates(tx: Transaction, tenant_id: int, member_id: int) -> list[date]:
    rows = await tx.rows(
        "SELECT decided_on FROM sanctions WHERE tenant_id = %(tenant)s AND member_id = %(member)s",
        {"tenant": tenant_id, "member": member_id},
    )
    return [r.decided_on for r in rows]


async def set_left(
    tx: Transaction, member: Any, *, left_on: date | None, left_by: str | None
) -> None:
    await tx.execute(
        "UPDATE members SET left_on = %(on)s, left_by = %(by)s"
        " WHERE tenant_id = %(tenant)s AND id = %(id)s",
        {"on": left_on, "by": left_by, "tenant": member.tenant_id, "id": member.id},
    )


async def candidates(tx: Transaction, unit_path: str) -> list[Any]:
    """Members under the unit a case may start from, with the origin that offers them:
    graded unqualified in their latest final grade (member_grades: written when a round
    becomes final), or who told the registration drive they do not wish to stay (本人不愿
    登记); with the id of a case already open for them (the branch sees it is handled)."""
    return await tx.rows(
        """
        WITH offered AS (
          SELECT m.tenant_id, m.id AS member_id, m.name, 'unqualified_grade' AS origin,
                 g.year AS year
          FROM members m
          JOIN LATERAL (SELECT year, grade FROM member_grades x
            WHERE x.tenant_id = m.tenant_id AND x.member_id = m.id
            ORDER BY year DESC LIMIT 1) g ON g.grade = 'unqualified'
          WHERE starts_with(m.branch_path, %(path)s) AND m.status IN ('active', 'correcting')
          UNION ALL
          SELECT m.tenant_id, m.id, m.name, 'not_registering', NULL
          FROM members m
          WHERE starts_with(m.branch_path, %(path)s) AND m.status IN ('active', 'correcting')
            AND EXISTS (SELECT 1 FROM registration_applications a
              WHERE a.tenant_id = m.tenant_id AND a.member_id = m.id AND NOT a.wishes_to_stay)
        )
        SELECT o.member_id, o.name, o.origin, o.year,
          (SELECT c.id FROM disposal_cases c WHERE c.tenant_id = o.tenant_id
            AND c.member_id = o.member_id AND c.stage <> 'closed') AS open_case_id
        FROM offered o ORDER BY o.member_id, o.origin LIMIT 500
        """,
        {"path": unit_path},
    )


async def follow_member_account(
    tx: Transaction, tenant_id: int, member_id: int, account_id: int | None
) -> int:
    """Every case of the member now read by the member's new account (or by none)."""
    return int(
        await tx.scalar(
            "WITH moved AS (UPDATE disposal_cases SET member_account_id = %(account)s"
            " WHERE tenant_id = %(tenant)s AND member_id = %(member)s"
            " AND member_account_id IS DISTINCT FROM %(account)s RETURNING 1)"
            " SELECT count(*) FROM moved",
            {"account": account_id, "tenant": tenant_id, "member": member_id},
        )
    )


async def case_of_record(tx: Transaction, record_id: int) -> int | None:
    """The case a record belongs to (the owner of a record's attachments)."""
    case_id = await tx.scalar(
        "SELECT case_id FROM case_records WHERE id = %(id)s", {"id": record_id}
    )
    return None if case_id is None else int(case_id)
