"""Mobile members (流动党员): the contact log and who has not been reached.

The report names mobile members the hardest problem: they work far away and are kept
in touch by phone. The branch logs every contact (reached or not); the list of the
unreached is what a branch secretary works from, so it is one statement (a lateral
max of reached contacts per member) over the scoped member select, keyset by member.

A member's contacts, like their sanctions and registrations, are shown to the member
themselves and to readers of their branch (`service.require_own_or_readable`).
"""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from typing import Any

from sqlalchemy.dialects.postgresql import insert

from service.audit.service import record
from service.auth.principal import Principal
from service.authz import readable_paths, require
from service.db import Transaction
from service.errors import not_found
from service.members import repository, rules
from service.members.actions import MemberAction
from service.members.errors import (
    CONTACT_IN_FUTURE,
    CONTACTED_BY_MISSING,
    MEMBER_NOT_ON_ROLLS,
    MONTHS_INVALID,
    NOT_MOBILE_MEMBER,
    OUTCOME_MISSING,
)
from service.members.models import MobileContact
from service.members.service import (  # noqa: F401 (re-exported for the ledger's packages)
    get_member,
    own_or_readable,
    require_own_or_readable,
)
from service.pagination import Page, PageRequest, keyset
from service.tenants import repository as units

MAX_MONTHS = 24
DEFAULT_MONTHS = 3


class ContactChannel(StrEnum):
    PHONE = "phone"  # 电话
    SMS = "sms"  # 短信
    WECHAT = "wechat"  # 微信
    VISIT = "visit"  # 走访


_FIELDS = tuple(c.name for c in MobileContact.__table__.columns)
_COLUMNS = ", ".join(_FIELDS)
_M_COLUMNS = ", ".join(f"m.{name}" for name in repository.FIELDS)


def clean_text(value: str | None, limit: int) -> str | None:
    """Outer whitespace trimmed; None when empty or longer than `limit`."""
    text = (value or "").strip()
    return text if 0 < len(text) <= limit else None


def months_before(day: date, months: int) -> date:
    """The same day `months` calendar months earlier (the month's last day if shorter).

    >>> months_before(date(2025, 5, 31), 3)
    datetime.date(2025, 2, 28)
    """
    ordinal = day.year * 12 + day.month - 1 - months
    year, month = divmod(ordinal, 12)
    for last in (day.day, 30, 29, 28):
        try:
            return date(year, month + 1, min(day.day, last))
        except ValueError:
            continue
    raise AssertionError("unreachable")


# --- statements ---------------------------------------------------------------------


async def contacts_page(tx: Transaction, member_id: int, page: PageRequest) -> Page[Any]:
    rows = await tx.rows(
        f"SELECT {_COLUMNS} FROM mobile_contacts WHERE member_id = %(member)s AND {keyset()}",
        {"member": member_id, **page.params},
    )
    return Page.of(rows, page)


async def insert_contact(tx: Transaction, **values: Any) -> Any:
    return await tx.one(
        insert(MobileContact).values(**values).returning(*MobileContact.__table__.columns)
    )


async def unreached_page(
    tx: Transaction, principal: Principal, *, within: str, since: date, page: PageRequest
) -> Page[Any]:
    """Mobile members on the rolls under `within` (and the readable paths) whose last
    reached contact is before `since` or who were never reached; each row has the
    member's columns and `last_reached_on`."""
    readable = readable_paths(principal, MemberAction.READ)
    scope, params = readable.sql("m.branch_path")
    rows = await tx.rows(
        f"""
        SELECT {_M_COLUMNS}, r.last_reached_on
        FROM members m LEFT JOIN LATERAL (
          SELECT max(c.contacted_on) AS last_reached_on FROM mobile_contacts c
          WHERE c.tenant_id = m.tenant_id AND c.member_id = m.id AND c.reached
        ) r ON true
        WHERE {scope} AND starts_with(m.branch_path, %(within)s) AND m.is_mobile
          AND m.status = ANY(%(on_rolls)s)
          AND (r.last_reached_on IS NULL OR r.last_reached_on < %(since)s)
          AND {keyset("m.id")}
        """,
        params
        | page.params
        | {"within": within, "since": since, "on_rolls": sorted(rules.ON_ROLLS)},
    )
    return Page.of(rows, page)


# --- use cases ----------------------------------------------------------------------


async def record_contact(
    tx: Transaction,
    principal: Principal,
    *,
    member_id: int,
    contacted_on: date,
    channel: ContactChannel,
    contacted_by: str,
    reached: bool,
    outcome: str,
) -> Any:
    """Log one contact with a mobile member (reached or not)."""
    member = await get_member(tx, principal, member_id, MemberAction.CONTACT)
    if not member.is_mobile:
        raise NOT_MOBILE_MEMBER.error()
    status = rules.MemberStatus(member.status)
    if status not in rules.ON_ROLLS:
        raise MEMBER_NOT_ON_ROLLS.error(status=rules.STATUS_LABELS[status], doing="记录联系")
    if contacted_on > date.today():
        raise CONTACT_IN_FUTURE.error()
    by = clean_text(contacted_by, 50)
    if by is None:
        raise CONTACTED_BY_MISSING.error()
    said = clean_text(outcome, 1000)
    if said is None:
        raise OUTCOME_MISSING.error()
    row = await insert_contact(
        tx,
        tenant_id=member.tenant_id,
        member_id=member.id,
        contacted_on=contacted_on,
        channel=channel.value,
        contacted_by=by,
        reached=reached,
        outcome=said,
        recorded_by=principal.actor,
    )
    await record(
        tx,
        principal,
        tenant_id=member.tenant_id,
        action="member.contact",
        object_type="Member",
        object_id=member.id,
        details={
            "contact_id": row.id,
            "channel": channel.value,
            "reached": reached,
            "contacted_on": contacted_on.isoformat(),
        },
    )
    return row


async def member_contacts(
    tx: Transaction, principal: Principal, member: Any, page: PageRequest
) -> Page[Any]:
    """The contact log of a member already shown to the principal."""
    require_own_or_readable(principal, member)
    return await contacts_page(tx, member.id, page)


async def unreached_mobile_members(
    tx: Transaction,
    principal: Principal,
    *,
    org_unit_id: int,
    page: PageRequest,
    months: int = DEFAULT_MONTHS,
) -> Page[Any]:
    """Mobile members under the unit not reached in the last `months` months."""
    unit = await units.get_unit(tx, org_unit_id)
    if unit is None:
        raise not_found("组织")
    require(principal, MemberAction.READ, unit.path, what="组织")
    if not 1 <= months <= MAX_MONTHS:
        raise MONTHS_INVALID.error(maximum=MAX_MONTHS)
    since = months_before(date.today(), months)
    return await unreached_page(tx, principal, within=unit.path, since=since, page=page)
