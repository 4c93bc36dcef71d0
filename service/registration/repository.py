"""Statements of the registration drive. No authorization and no audit: the service
decides.

A drive row is read with `tenant_path` (its tenant's top unit), which authorization
compares with the principal's grants; an application with its member's `branch_path`
and `member_account_id`. Lists of applications and of members yet to submit start
from the readable paths over the member's branch, like every list of the ledger.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, update
from sqlalchemy.dialects.postgresql import insert

from service.authz import ReadablePaths
from service.db import Transaction
from service.members import repository as members
from service.members.rules import ON_ROLLS, MemberCategory
from service.pagination import Page, PageRequest, keyset
from service.registration.models import RegistrationApplication, RegistrationDrive
from service.registration.rules import Review
from service.tenants.rules import TENANT_KINDS

DRIVE_FIELDS = tuple(c.name for c in RegistrationDrive.__table__.columns)
_D_COLUMNS = ", ".join(f"d.{name}" for name in DRIVE_FIELDS)
_DRIVE = (
    f"SELECT {_D_COLUMNS}, t.path AS tenant_path FROM registration_drives d"
    " JOIN org_units t ON t.tenant_id = d.tenant_id AND t.id = d.tenant_id"
)
APP_FIELDS = tuple(c.name for c in RegistrationApplication.__table__.columns)
_A_COLUMNS = ", ".join(f"a.{name}" for name in APP_FIELDS)
_APP = (
    f"SELECT {_A_COLUMNS}, m.branch_path, m.account_id AS member_account_id"
    " FROM registration_applications a"
    " JOIN members m ON m.tenant_id = a.tenant_id AND m.id = a.member_id"
)
_M_COLUMNS = ", ".join(f"m.{name}" for name in members.FIELDS)
_ON_ROLLS = sorted(ON_ROLLS)


# --- drives -------------------------------------------------------------------------


async def active_tenants_below(tx: Transaction, path: str) -> list[Any]:
    """The active tenant top units under `path` (a county's townships, zones ...)."""
    return await tx.rows(
        "SELECT tenant_id, id, path FROM org_units WHERE id = tenant_id"
        " AND kind = ANY(%(kinds)s) AND archived_at IS NULL AND starts_with(path, %(path)s)"
        " ORDER BY id",
        {"kinds": sorted(TENANT_KINDS), "path": path},
    )


async def insert_drives(tx: Transaction, rows: list[dict[str, Any]]) -> list[Any]:
    return await tx.rows(
        insert(RegistrationDrive).values(rows).returning(*RegistrationDrive.__table__.columns)
    )


async def get_drive(tx: Transaction, drive_id: int) -> Any | None:
    return await tx.first(f"{_DRIVE} WHERE d.id = %(id)s", {"id": drive_id})


async def get_drives(tx: Transaction, ids: Sequence[int]) -> dict[int, Any]:
    rows = await tx.rows(f"{_DRIVE} WHERE d.id = ANY(%(ids)s::bigint[])", {"ids": sorted(set(ids))})
    return {row.id: row for row in rows}


async def drives_page(
    tx: Transaction, readable: ReadablePaths, tenant_ids: Sequence[int], page: PageRequest
) -> Page[Any]:
    """Drives of tenants at or under the readable paths, or in `tenant_ids`."""
    within, params = readable.sql("t.path")
    rows = await tx.rows(
        f"{_DRIVE} WHERE ({within} OR d.tenant_id = ANY(%(tenants)s::bigint[]))"
        f" AND {keyset('d.id')}",
        params | page.params | {"tenants": sorted(set(tenant_ids))},
    )
    return Page.of(rows, page)


# --- applications -------------------------------------------------------------------


async def get_application(tx: Transaction, application_id: int) -> Any | None:
    return await tx.first(f"{_APP} WHERE a.id = %(id)s", {"id": application_id})


async def get_applications(tx: Transaction, ids: Sequence[int]) -> dict[int, Any]:
    rows = await tx.rows(f"{_APP} WHERE a.id = ANY(%(ids)s::bigint[])", {"ids": sorted(set(ids))})
    return {row.id: row for row in rows}


async def upsert_application(tx: Transaction, **values: Any) -> Any | None:
    """The new application, or the member's returned one submitted again; None when the
    member already has one that is pending or accepted."""
    statement = insert(RegistrationApplication).values(**values)
    again = {
        name: getattr(statement.excluded, name)
        for name in ("thought", "work", "conduct", "life", "wishes_to_stay", "channel", "is_late")
    }
    return await tx.first(
        statement.on_conflict_do_update(
            constraint="uq_registration_applications",
            set_={
                **again,
                "submitted_at": func.now(),
                "review": Review.PENDING.value,
                "review_note": None,
                "reviewed_by": None,
                "reviewed_at": None,
            },
            where=RegistrationApplication.review == Review.RETURNED.value,
        ).returning(*RegistrationApplication.__table__.columns)
    )


async def review_application(
    tx: Transaction, application: Any, *, review: Review, note: str | None, actor: str
) -> Any | None:
    """The reviewed application; None when it is no longer pending."""
    return await tx.first(
        update(RegistrationApplication)
        .where(
            RegistrationApplication.tenant_id == application.tenant_id,
            RegistrationApplication.id == application.id,
            RegistrationApplication.review == Review.PENDING.value,
        )
        .values(review=review.value, review_note=note, reviewed_by=actor, reviewed_at=func.now())
        .returning(*RegistrationApplication.__table__.columns)
    )


class ApplicationFilter:
    """What a drive's list of applications may be narrowed by (all optional)."""

    __slots__ = ("late", "review", "wishes_to_stay", "within")

    def __init__(
        self,
        *,
        within: str | None = None,
        review: Review | None = None,
        late: bool | None = None,
        wishes_to_stay: bool | None = None,
    ) -> None:
        self.within = within
        self.review = review
        self.late = late
        self.wishes_to_stay = wishes_to_stay

    def sql(self) -> tuple[list[str], dict[str, Any]]:
        conditions: list[str] = []
        params: dict[str, Any] = {}
        if self.within is not None:
            conditions.append("starts_with(m.branch_path, %(within)s)")
            params["within"] = self.within
        if self.review is not None:
            conditions.append("a.review = %(review)s")
            params["review"] = self.review.value
        if self.late is not None:
            conditions.append("a.is_late = %(late)s")
            params["late"] = self.late
        if self.wishes_to_stay is not None:
            conditions.append("a.wishes_to_stay = %(stay)s")
            params["stay"] = self.wishes_to_stay
        return conditions, params


async def applications_page(
    tx: Transaction,
    readable: ReadablePaths,
    drive: Any,
    where: ApplicationFilter,
    page: PageRequest,
) -> Page[Any]:
    scope, params = readable.sql("m.branch_path")
    conditions, filter_params = where.sql()
    text = " AND ".join([scope, "a.tenant_id = %(tenant)s", "a.drive_id = %(drive)s", *conditions])
    rows = await tx.rows(
        f"{_APP} WHERE {text} AND {keyset('a.id')}",
        params | filter_params | page.params | {"tenant": drive.tenant_id, "drive": drive.id},
    )
    return Page.of(rows, page)


async def member_applications_page(tx: Transaction, member_id: int, page: PageRequest) -> Page[Any]:
    rows = await tx.rows(
        f"{_APP} WHERE a.member_id = %(member)s AND {keyset('a.id')}",
        {"member": member_id, **page.params},
    )
    return Page.of(rows, page)


async def missing_page(
    tx: Transaction,
    readable: ReadablePaths,
    drive: Any,
    within: str | None,
    page: PageRequest,
) -> Page[Any]:
    """Full members on the rolls of the drive's tenant, under the readable paths (and
    `within`), with no application in the drive."""
    scope, params = readable.sql("m.branch_path")
    conditions = [scope, "m.tenant_id = %(tenant)s", "m.category = %(full)s"]
    conditions.append("m.status = ANY(%(on_rolls)s)")
    if within is not None:
        conditions.append("starts_with(m.branch_path, %(within)s)")
        params["within"] = within
    rows = await tx.rows(
        f"""
        SELECT {_M_COLUMNS} FROM members m
        WHERE {" AND ".join(conditions)}
          AND NOT EXISTS (
            SELECT 1 FROM registration_applications a
            WHERE a.tenant_id = m.tenant_id AND a.member_id = m.id AND a.drive_id = %(drive)s)
          AND {keyset("m.id")}
        """,
        params
        | page.params
        | {
            "tenant": drive.tenant_id,
            "drive": drive.id,
            "full": MemberCategory.FULL.value,
            "on_rolls": _ON_ROLLS,
        },
    )
    return Page.of(rows, page)
