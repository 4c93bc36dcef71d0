"""Use cases of the registration drive (党员登记): open, submit, review, and the lists
a branch works from (submissions, who is missing).

Who sees a drive: a reader of the ledger anywhere in the drive's tenant (the county,
the tenant's committee, a branch), and the tenant's own members. Opening takes
`registration:open` at the county or a tenant unit; a county drive is one row per
active tenant below it (sharing `batch`), each audited in that tenant's log.

A member submits for themselves (`registration:submit` at their own branch): only full
members on the rolls, once per drive (a returned application may be submitted again),
never before the opening day; after the last day it is accepted and marked late.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from service.audit.service import record
from service.auth.principal import Principal
from service.authz import authorizer, readable_paths, require
from service.db import Transaction
from service.errors import forbidden, not_found
from service.members.actions import MemberAction
from service.members.errors import MEMBER_NOT_ON_ROLLS
from service.members.mobile import clean_text
from service.members.rules import ON_ROLLS, STATUS_LABELS, MemberCategory, MemberStatus
from service.members.service import (
    MemberOwner,
    my_member,
    own_or_readable,
    require_own_or_readable,
)
from service.pagination import Page, PageRequest
from service.registration import repository, rules
from service.registration.actions import RegistrationAction
from service.registration.errors import (
    ALREADY_REVIEWED,
    ALREADY_SUBMITTED,
    APPLICATION,
    DAYS_INVALID,
    DRIVE,
    DRIVE_NO_TENANTS,
    DRIVE_NOT_OPEN,
    DRIVE_UNIT_INVALID,
    NOT_FULL_MEMBER,
    NOT_IN_DRIVE,
    NOTE_REQUIRED,
    SUMMARY_MISSING,
    TITLE_MISSING,
)
from service.registration.repository import ApplicationFilter
from service.registration.rules import RegistrationChannel, Review
from service.tenants import repository as units
from service.tenants.rules import TENANT_KINDS, OrgUnitKind, is_within
from service.tenants.service import ensure_active

# --- who sees a drive ---------------------------------------------------------------


def _reader_tenants(principal: Principal) -> set[int]:
    """Tenants where the principal reads some of the ledger through a grant held there."""
    auth = authorizer()
    return {
        g.tenant_id
        for g in principal.grants
        if auth.allowed(principal, MemberAction.READ, g.org_path)
    }


def _sees_drive(principal: Principal, drive: Any, own_tenant: int | None) -> bool:
    if drive.tenant_id == own_tenant or drive.tenant_id in _reader_tenants(principal):
        return True
    auth = authorizer()
    return any(
        is_within(drive.tenant_path, g.org_path)
        and auth.allowed(principal, MemberAction.READ, g.org_path)
        for g in principal.grants
    )


async def get_drive(tx: Transaction, principal: Principal, drive_id: int) -> Any:
    """The drive, if the principal may see it; NOT_FOUND otherwise."""
    drive = await repository.get_drive(tx, drive_id)
    if drive is None:
        raise not_found(DRIVE)
    if _sees_drive(principal, drive, None):
        return drive
    me = await my_member(tx, principal)
    if me is None or not _sees_drive(principal, drive, me.tenant_id):
        raise not_found(DRIVE)
    return drive


async def load_drives(
    tx: Transaction, principal: Principal, ids: Sequence[int]
) -> list[Any | None]:
    by_id = await repository.get_drives(tx, ids)
    me = None
    if any(d is not None and not _sees_drive(principal, d, None) for d in by_id.values()):
        me = await my_member(tx, principal)
    own = me.tenant_id if me is not None else None
    return [
        d if d is not None and _sees_drive(principal, d, own) else None
        for d in (by_id.get(i) for i in ids)
    ]


async def list_drives(tx: Transaction, principal: Principal, page: PageRequest) -> Page[Any]:
    """Drives of the tenants the principal reads in, and of the member's own tenant."""
    readable = readable_paths(principal, MemberAction.READ)
    tenants = _reader_tenants(principal)
    me = await my_member(tx, principal)
    if me is not None:
        tenants.add(me.tenant_id)
    if not readable and not tenants:
        return Page.empty()
    return await repository.drives_page(tx, readable, sorted(tenants), page)


# --- opening ------------------------------------------------------------------------


async def open_drive(
    tx: Transaction,
    principal: Principal,
    *,
    org_unit_id: int,
    title: str,
    opens_on: date,
    days: int = rules.DEFAULT_DAYS,
) -> list[Any]:
    """Open a drive for a tenant, or for every active tenant below a county."""
    unit = await units.get_unit(tx, org_unit_id)
    if unit is None:
        raise not_found("组织")
    require(principal, RegistrationAction.OPEN, unit.path, what="组织")
    ensure_active(unit, "发起党员登记")
    kind = OrgUnitKind(unit.kind)
    if kind is OrgUnitKind.COUNTY:
        tenants = [t.tenant_id for t in await repository.active_tenants_below(tx, unit.path)]
        if not tenants:
            raise DRIVE_NO_TENANTS.error()
    elif kind in TENANT_KINDS:
        tenants = [unit.tenant_id]
    else:
        raise DRIVE_UNIT_INVALID.error()
    name = clean_text(title, rules.MAX_TITLE)
    if name is None:
        raise TITLE_MISSING.error()
    if not 1 <= days <= rules.MAX_DAYS:
        raise DAYS_INVALID.error(maximum=rules.MAX_DAYS)
    last_day = rules.closes_on(opens_on, days)
    batch = uuid.uuid4()
    drives = await repository.insert_drives(
        tx,
        [
            {
                "tenant_id": tenant,
                "batch": batch,
                "title": name,
                "opens_on": opens_on,
                "closes_on": last_day,
                "opened_by": principal.actor,
            }
            for tenant in tenants
        ],
    )
    for drive in drives:
        await record(
            tx,
            principal,
            tenant_id=drive.tenant_id,
            action="registration.open",
            object_type="RegistrationDrive",
            object_id=drive.id,
            details={
                "title": name,
                "batch": str(batch),
                "org_unit_id": unit.id,
                "opens_on": opens_on.isoformat(),
                "closes_on": last_day.isoformat(),
            },
        )
    return drives


# --- submitting ---------------------------------------------------------------------


@dataclass(frozen=True)
class Submission:
    """A member's self-summary (思想、工作、作风、生活) and wish to stay a member."""

    thought: str
    work: str
    conduct: str
    life: str
    wishes_to_stay: bool
    channel: RegistrationChannel = RegistrationChannel.WEB


async def submit(
    tx: Transaction, principal: Principal, *, drive_id: int, submission: Submission
) -> Any:
    """The principal's own application in the drive (a returned one submitted again)."""
    drive = await repository.get_drive(tx, drive_id)
    if drive is None:
        raise not_found(DRIVE)
    me = await my_member(tx, principal)
    own_tenant = me.tenant_id if me is not None else None
    if not _sees_drive(principal, drive, own_tenant):
        raise not_found(DRIVE)
    if me is None or not authorizer().allowed(principal, RegistrationAction.SUBMIT, me.branch_path):
        raise forbidden()
    if me.tenant_id != drive.tenant_id:
        raise NOT_IN_DRIVE.error()
    status = MemberStatus(me.status)
    if status not in ON_ROLLS:
        raise MEMBER_NOT_ON_ROLLS.error(status=STATUS_LABELS[status], doing="参加党员登记")
    if me.category != MemberCategory.FULL:
        raise NOT_FULL_MEMBER.error()
    today = date.today()
    where = rules.window(drive.opens_on, drive.closes_on, today)
    if where is rules.Window.NOT_OPEN:
        raise DRIVE_NOT_OPEN.error()
    parts: dict[str, str] = {}
    for part, label in rules.SUMMARY_PARTS.items():
        text = clean_text(getattr(submission, part), rules.MAX_SUMMARY)
        if text is None:
            raise SUMMARY_MISSING.error(part=label, limit=rules.MAX_SUMMARY)
        parts[part] = text
    late = where is rules.Window.CLOSED
    application = await repository.upsert_application(
        tx,
        tenant_id=drive.tenant_id,
        drive_id=drive.id,
        member_id=me.id,
        wishes_to_stay=submission.wishes_to_stay,
        channel=submission.channel.value,
        is_late=late,
        **parts,
    )
    if application is None:
        raise ALREADY_SUBMITTED.error()
    await record(
        tx,
        principal,
        tenant_id=drive.tenant_id,
        action="registration.submit",
        object_type="RegistrationApplication",
        object_id=application.id,
        details={
            "drive_id": drive.id,
            "member_id": me.id,
            "wishes_to_stay": submission.wishes_to_stay,
            "late": late,
            "channel": submission.channel.value,
        },
    )
    return application


# --- reviewing ----------------------------------------------------------------------


async def get_application(tx: Transaction, principal: Principal, application_id: int) -> Any:
    """An application the principal may see (the member's own, or a branch reader)."""
    row = await repository.get_application(tx, application_id)
    if row is None:
        raise not_found(APPLICATION)
    require_own_or_readable(principal, MemberOwner.of_joined(row), APPLICATION)
    return row


async def load_applications(
    tx: Transaction, principal: Principal, ids: Sequence[int]
) -> list[Any | None]:
    by_id = await repository.get_applications(tx, ids)
    found = (by_id.get(i) for i in ids)
    return [
        row if row and own_or_readable(principal, MemberOwner.of_joined(row)) else None
        for row in found
    ]


async def review(
    tx: Transaction,
    principal: Principal,
    *,
    application_id: int,
    decision: Review,
    note: str | None = None,
) -> Any:
    """The branch accepts an application or returns it (with a note) to the member."""
    application = await repository.get_application(tx, application_id)
    if application is None:
        raise not_found(APPLICATION)
    require(
        principal,
        RegistrationAction.REVIEW,
        application.branch_path,
        what=APPLICATION,
        seen_with=MemberAction.READ,
    )
    said = clean_text(note, 500)
    if decision is Review.RETURNED and said is None:
        raise NOTE_REQUIRED.error()
    updated = await repository.review_application(
        tx, application, review=decision, note=said, actor=principal.actor
    )
    if updated is None:
        raise ALREADY_REVIEWED.error()
    await record(
        tx,
        principal,
        tenant_id=application.tenant_id,
        action="registration.review",
        object_type="RegistrationApplication",
        object_id=application.id,
        details={"decision": decision.value, "note": said},
    )
    return updated


# --- lists --------------------------------------------------------------------------


async def _within(tx: Transaction, principal: Principal, org_unit_id: int | None) -> str | None:
    if org_unit_id is None:
        return None
    unit = await units.get_unit(tx, org_unit_id)
    if unit is None:
        raise not_found("组织")
    require(principal, MemberAction.READ, unit.path, what="组织")
    return str(unit.path)


@dataclass(frozen=True)
class ApplicationQuery:
    org_unit_id: int | None = None
    review: Review | None = None
    late: bool | None = None
    wishes_to_stay: bool | None = None


async def list_applications(
    tx: Transaction,
    principal: Principal,
    *,
    drive_id: int,
    query: ApplicationQuery,
    page: PageRequest,
) -> Page[Any]:
    """A drive's applications of members under the readable paths (and the unit)."""
    drive = await get_drive(tx, principal, drive_id)
    within = await _within(tx, principal, query.org_unit_id)
    readable = readable_paths(principal, MemberAction.READ)
    if not readable:
        return Page.empty()
    where = ApplicationFilter(
        within=within, review=query.review, late=query.late, wishes_to_stay=query.wishes_to_stay
    )
    return await repository.applications_page(tx, readable, drive, where, page)


async def list_missing(
    tx: Transaction,
    principal: Principal,
    *,
    drive_id: int,
    org_unit_id: int | None,
    page: PageRequest,
) -> tuple[Any, Page[Any]]:
    """The drive and a page of full members on the rolls who have not submitted (each
    submission from now on is late once the drive has closed: `missing_are_late`)."""
    drive = await get_drive(tx, principal, drive_id)
    within = await _within(tx, principal, org_unit_id)
    readable = readable_paths(principal, MemberAction.READ)
    if not readable:
        return drive, Page.empty()
    return drive, await repository.missing_page(tx, readable, drive, within, page)


def missing_are_late(drive: Any, today: date | None = None) -> bool:
    """Whether a member who has not submitted yet is late (the drive has closed)."""
    return rules.is_late(drive.closes_on, today or date.today())


async def member_applications(
    tx: Transaction, principal: Principal, member: Any, page: PageRequest
) -> Page[Any]:
    """The applications of a member already shown to the principal."""
    require_own_or_readable(principal, member, APPLICATION)
    return await repository.member_applications_page(tx, member.id, page)
