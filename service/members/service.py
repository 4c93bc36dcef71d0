"""Use cases of the member ledger: read, list, add, edit, status, 转正, move, reveal.

Every operation authorizes through `authz.require` at the member's branch; every
write appends one audit event (and a history entry) in the same transaction. A member
is never deleted: leaving the party or the county is a status.

ID-card and phone numbers reach the database only sealed (service/crypto.py); readers
get the masks, and the full values only through `reveal_member_pii`, which takes
`member:read_pii` and a reason and leaves an audit event. Audit details and error
messages never carry the numbers.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from service.audit.service import record
from service.auth.principal import Principal
from service.auth.service import get_account
from service.authz import authorizer, readable_paths, require
from service.authz.actions import Action
from service.crypto import SealBroken, field_cipher
from service.db import Transaction
from service.errors import VERSION_CONFLICT, not_found
from service.members import repository, rules
from service.members.actions import MemberAction
from service.members.errors import (
    ACCOUNT_ALREADY_LINKED,
    BIRTH_DATE_MISMATCH,
    BRANCH_ARCHIVED,
    CONFIRMED_BEFORE_JOINED,
    ID_NUMBER_INVALID,
    JOINED_UNDER_18,
    MEMBER,
    MEMBER_ALREADY_EXISTS,
    MEMBER_NOT_ON_ROLLS,
    NAME_MISSING,
    NOT_A_BRANCH,
    NOT_PROBATIONARY,
    PHONE_INVALID,
    PII_UNREADABLE,
    REASON_REQUIRED,
    SAME_BRANCH,
    STATUS_HELD_BY_CASE,
    STATUS_MOVE_NOT_ALLOWED,
)
from service.members.repository import MemberFilter
from service.members.rules import (
    CATEGORY_LABELS,
    STATUS_LABELS,
    Gender,
    MemberCategory,
    MemberStatus,
    gender_from_id,
)
from service.pagination import Page, PageRequest
from service.tenants import repository as units
from service.tenants.rules import OrgUnitKind

TABLE = "members"


# --- reading ------------------------------------------------------------------------


async def get_member(
    tx: Transaction, principal: Principal, member_id: int, action: Action = MemberAction.READ
) -> Any:
    """The member, if the principal may do `action` at their branch; NOT_FOUND otherwise
    (also when the principal may see the branch but not its members)."""
    member = await repository.get_member(tx, member_id)
    if member is None:
        raise not_found(MEMBER)
    require_for_member(principal, action, member)
    return member


def require_for_member(principal: Principal, action: Action, member: Any) -> None:
    """`require` at the member's branch; a member outside the principal's ledger is
    NOT_FOUND, one inside it FORBIDDEN for actions they may not take."""
    require(principal, action, member.branch_path, what=MEMBER, seen_with=MemberAction.READ)


@dataclass(frozen=True, slots=True)
class MemberOwner:
    """Whose a member's own ledger row is (a sanction, an application, a contact): what
    `own_or_readable` reads, from a row joined with its member."""

    account_id: int | None
    branch_path: str

    @classmethod
    def of_joined(cls, row: Any) -> MemberOwner:
        return cls(account_id=row.member_account_id, branch_path=row.branch_path)


@dataclass(frozen=True, slots=True)
class MemberKey:
    """A member as a DataLoader keys it: hashable whatever columns its row came with (a
    list's row may carry JSON facts), and enough to authorize and to find its rows."""

    tenant_id: int
    id: int
    account_id: int | None
    branch_path: str

    @classmethod
    def of(cls, row: Any) -> MemberKey:
        return cls(row.tenant_id, row.id, row.account_id, row.branch_path)


def own_or_readable(principal: Principal, member: Any) -> bool:
    """Whether the principal is the member (`account_id`) or reads their branch's ledger
    (`branch_path`): a member's own rows are shown to both."""
    own = principal.account_id is not None and member.account_id == principal.account_id
    return own or authorizer().allowed(principal, MemberAction.READ, member.branch_path)


def require_own_or_readable(principal: Principal, member: Any, what: str = MEMBER) -> None:
    """The member themselves, or a reader of their branch's ledger; NOT_FOUND otherwise."""
    if not own_or_readable(principal, member):
        raise not_found(what)


async def load_members(
    tx: Transaction, principal: Principal, ids: Sequence[int]
) -> list[Any | None]:
    """Batch read for DataLoaders; members the principal may not read come back None."""
    by_id = await repository.get_members(tx, ids)
    auth = authorizer()
    found: list[Any | None] = []
    for member_id in ids:
        member = by_id.get(member_id)
        if member is not None and not auth.allowed(
            principal, MemberAction.READ, member.branch_path
        ):
            member = None
        found.append(member)
    return found


async def my_member(tx: Transaction, principal: Principal) -> Any | None:
    """The principal's own record (`me { member }`): linked through the account."""
    if principal.account_id is None:
        return None
    return await repository.member_of_account(tx, principal.account_id)


async def load_account_members(
    tx: Transaction, principal: Principal, account_ids: Sequence[int]
) -> list[Any | None]:
    """Members linked to accounts: one's own always, others' where the ledger is
    readable."""
    by_account = await repository.members_of_accounts(tx, account_ids)
    auth = authorizer()
    found: list[Any | None] = []
    for account_id in account_ids:
        member = by_account.get(account_id)
        if (
            member is not None
            and account_id != principal.account_id
            and not auth.allowed(principal, MemberAction.READ, member.branch_path)
        ):
            member = None
        found.append(member)
    return found


@dataclass(frozen=True)
class MemberQuery:
    """A list's filters as the user gives them."""

    org_unit_id: int | None = None
    category: MemberCategory | None = None
    statuses: tuple[MemberStatus, ...] = ()
    is_mobile: bool | None = None
    name_contains: str | None = None
    id_number: str | None = None
    flagged: bool | None = None  # 三不: with (True) or without (False) a flag


async def member_filter(tx: Transaction, principal: Principal, query: MemberQuery) -> MemberFilter:
    """The repository filter for `query` (the unit, when given, must be readable)."""
    if query.org_unit_id is None:
        return query_filter(tx, query)
    unit = await units.get_unit(tx, query.org_unit_id)
    if unit is None:
        raise not_found("组织")
    require(principal, MemberAction.READ, unit.path, what="组织")
    return query_filter(tx, query, within=unit.path, tenant_ids=[unit.tenant_id])


def query_filter(
    tx: Transaction,
    query: MemberQuery,
    *,
    within: str | None = None,
    tenant_ids: Sequence[int] | None = None,
) -> MemberFilter:
    """The filter of `query` but for its unit, which the caller resolves (or folds into
    its statement). An ID number becomes one search key per tenant it may be in: the
    keys are per tenant."""
    id_keys = None
    if query.id_number:
        number = rules.normalize_id_number(query.id_number)
        if not rules.valid_id_number(number):
            raise ID_NUMBER_INVALID.error()
        cipher = field_cipher()
        tenants = sorted(tx.scope.tenant_ids) if tenant_ids is None else tenant_ids
        id_keys = [cipher.index(number, tenant_id=t) for t in tenants]
    return MemberFilter(
        within=within,
        category=query.category.value if query.category else None,
        statuses=[s.value for s in query.statuses] or None,
        is_mobile=query.is_mobile,
        name_contains=(query.name_contains or "").strip() or None,
        id_search_keys=id_keys,
    )


async def list_members(
    tx: Transaction, principal: Principal, page: PageRequest, query: MemberQuery
) -> Page[Any]:
    """Members of the branches the principal may read (narrowed by `query`)."""
    readable = readable_paths(principal, MemberAction.READ)
    if not readable:
        return Page.empty()
    if query.flagged is not None:
        from service.members import flags  # builds on this module

        return (await flags.flagged_page(tx, principal, page, query)).page
    where = query_filter(tx, query)
    if query.org_unit_id is None:
        return await repository.members_page(tx, readable, where, page)
    # The unit and the page in one statement; the page is dropped unread unless the
    # principal may read the ledger at the unit (RLS kept it inside their tenants).
    found = await repository.members_page_under(
        tx, readable, where, page, unit_id=query.org_unit_id
    )
    if found is None:
        raise not_found("组织")
    unit_path, members = found
    require(principal, MemberAction.READ, unit_path, what="组织")
    return members


async def member_history(
    tx: Transaction, principal: Principal, member_id: int, page: PageRequest
) -> Page[Any]:
    member = await get_member(tx, principal, member_id)
    return await repository.history_page(tx, member.id, page)


# --- checks -------------------------------------------------------------------------


def checked_name(name: str) -> str:
    """A member's name as the ledger keeps it (`rules.clean_name`), or NAME_MISSING."""
    cleaned = rules.clean_name(name)
    if cleaned is None:
        raise NAME_MISSING.error()
    return cleaned


def _id_number(raw: str) -> str:
    number = rules.normalize_id_number(raw)
    if not rules.valid_id_number(number):
        raise ID_NUMBER_INVALID.error()
    return number


def checked_phone(raw: str | None) -> str | None:
    """A phone number as the ledger keeps it (normalized), None if not given, or
    PHONE_INVALID."""
    if raw is None or not str(raw).strip():
        return None
    number = rules.normalize_phone(raw)
    if not rules.valid_phone(number):
        raise PHONE_INVALID.error()
    return number


def _dates(birth: date, joined: date, confirmed: date | None) -> None:
    if rules.joined_under_18(birth, joined):
        raise JOINED_UNDER_18.error()
    if confirmed is not None and confirmed < joined:
        raise CONFIRMED_BEFORE_JOINED.error()


async def checked_branch(
    tx: Transaction, principal: Principal, branch_id: int, action: Action
) -> Any:
    """The branch (党支部) a member is written under: `action` allowed there, a branch,
    not archived."""
    branch = await units.get_unit(tx, branch_id)
    if branch is None:
        raise not_found("党支部")
    require(principal, action, branch.path, what="党支部")
    if branch.kind != OrgUnitKind.BRANCH:
        raise NOT_A_BRANCH.error()
    if branch.archived_at is not None:
        raise BRANCH_ARCHIVED.error()
    return branch


def sealed_pii(
    *, tenant_id: int, member_id: int, id_number: str, phone: str | None
) -> dict[str, Any]:
    """The member columns that hold the ID and phone numbers, sealed to this row."""
    cipher = field_cipher()
    bound = {"tenant_id": tenant_id, "table": TABLE, "row_id": member_id}
    return {
        "id_number_enc": cipher.seal(id_number, column="id_number", **bound),
        "id_number_hmac": cipher.index(id_number, tenant_id=tenant_id),
        "id_number_mask": rules.mask_id_number(id_number),
        "phone_enc": cipher.seal(phone, column="phone", **bound) if phone else None,
        "phone_mask": rules.mask_phone(phone),
    }


@dataclass(frozen=True)
class PersonalData:
    id_number: str
    phone: str | None


async def open_pii(tx: Transaction, member_id: int) -> PersonalData:
    """The member's numbers in the clear (callers authorize and audit)."""
    row = await repository.get_secrets(tx, member_id)
    if row is None:
        raise not_found(MEMBER)
    cipher = field_cipher()
    bound = {"tenant_id": row.tenant_id, "table": TABLE, "row_id": row.id}
    try:
        id_number = cipher.open(row.id_number_enc, column="id_number", **bound)
        phone = cipher.open(row.phone_enc, column="phone", **bound) if row.phone_enc else None
    except SealBroken:
        raise PII_UNREADABLE.error() from None
    return PersonalData(id_number=id_number, phone=phone)


# --- writing ------------------------------------------------------------------------


@dataclass(frozen=True)
class NewMember:
    """A member to add, as the user typed them (checked by `add_member`)."""

    branch_id: int
    name: str
    id_number: str
    joined_on: date
    category: MemberCategory = MemberCategory.FULL
    gender: Gender | None = None
    birth_date: date | None = None
    confirmed_on: date | None = None
    phone: str | None = None
    is_mobile: bool = False
    mobile_location: str | None = None
    mobile_contact_plan: str | None = None
    dues_by_family: bool = False
    tracked_since: date | None = None


async def add_member(
    tx: Transaction,
    principal: Principal,
    new: NewMember,
    *,
    history_kind: str = "created",
    audit_action: str = "member.create",
) -> Any:
    """Add a member to a branch (the tenant's first record of this ID number)."""
    branch = await checked_branch(tx, principal, new.branch_id, MemberAction.CREATE)
    name = checked_name(new.name)
    number = _id_number(new.id_number)
    phone = checked_phone(new.phone)
    from_id = rules.birth_date_from_id(number)
    assert from_id is not None  # valid_id_number checked it
    if new.birth_date is not None and new.birth_date != from_id:
        raise BIRTH_DATE_MISMATCH.error()
    _dates(from_id, new.joined_on, new.confirmed_on)
    tenant_id = branch.tenant_id
    existing = await repository.find_by_id_number(
        tx, tenant_id, field_cipher().index(number, tenant_id=tenant_id)
    )
    if existing is not None:
        raise MEMBER_ALREADY_EXISTS.error(name=existing.name)
    member_id = await repository.next_id(tx)
    today = date.today()
    member = await repository.insert_member(
        tx,
        tenant_id=tenant_id,
        id=member_id,
        branch_id=branch.id,
        branch_path=branch.path,
        name=name,
        gender=(new.gender or gender_from_id(number)).value,
        birth_date=from_id,
        joined_on=new.joined_on,
        confirmed_on=new.confirmed_on,
        category=new.category.value,
        is_mobile=new.is_mobile,
        mobile_location=_text(new.mobile_location),
        mobile_contact_plan=_text(new.mobile_contact_plan),
        dues_by_family=new.dues_by_family,
        tracked_since=new.tracked_since or today,
        **sealed_pii(tenant_id=tenant_id, member_id=member_id, id_number=number, phone=phone),
    )
    if member is None:  # a concurrent add of the same number won the race
        raise MEMBER_ALREADY_EXISTS.error(name=name)
    await repository.add_history(
        tx,
        member,
        kind=history_kind,
        effective_on=today,
        actor=principal.actor,
        details={"branch_id": branch.id},
    )
    await record(
        tx,
        principal,
        tenant_id=tenant_id,
        action=audit_action,
        object_type="Member",
        object_id=member.id,
        details={"name": name, "branch_id": branch.id, "category": new.category.value},
    )
    return member


def _text(value: str | None, limit: int = 200) -> str | None:
    if value is None:
        return None
    cleaned = " ".join(str(value).split())[:limit]
    return cleaned or None


_UNSET: Any = object()


@dataclass(frozen=True)
class MemberChanges:
    """Fields to change; those left `_UNSET` stay as they are."""

    name: Any = _UNSET
    gender: Any = _UNSET
    id_number: Any = _UNSET
    phone: Any = _UNSET
    joined_on: Any = _UNSET
    is_mobile: Any = _UNSET
    mobile_location: Any = _UNSET
    mobile_contact_plan: Any = _UNSET
    dues_by_family: Any = _UNSET

    def given(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v is not _UNSET}


UNSET = _UNSET


async def update_member(
    tx: Transaction,
    principal: Principal,
    *,
    member_id: int,
    changes: MemberChanges,
    expected_version: int | None = None,
) -> Any:
    """Edit a member's record. A new ID number or phone is sealed again; the audit
    event names the fields changed, never their values for those two."""
    member = await get_member(tx, principal, member_id, MemberAction.UPDATE)
    given = changes.given()
    values: dict[str, Any] = {}
    if "name" in given:
        values["name"] = checked_name(given["name"])
    if "gender" in given and given["gender"] is not None:
        values["gender"] = Gender(given["gender"]).value
    for flag in ("is_mobile", "dues_by_family"):
        if flag in given and given[flag] is not None:
            values[flag] = bool(given[flag])
    for text in ("mobile_location", "mobile_contact_plan"):
        if text in given:
            values[text] = _text(given[text])
    birth = member.birth_date
    if "joined_on" in given and given["joined_on"] is not None:
        values["joined_on"] = given["joined_on"]
    if "id_number" in given or "phone" in given:
        current = await open_pii(tx, member.id)
        number = _id_number(given["id_number"]) if "id_number" in given else current.id_number
        phone = checked_phone(given["phone"]) if "phone" in given else current.phone
        if number != current.id_number:
            key = field_cipher().index(number, tenant_id=member.tenant_id)
            other = await repository.find_by_id_number(tx, member.tenant_id, key)
            if other is not None and other.id != member.id:
                raise MEMBER_ALREADY_EXISTS.error(name=other.name)
            birth = rules.birth_date_from_id(number) or birth
            values["birth_date"] = birth
        values |= sealed_pii(
            tenant_id=member.tenant_id, member_id=member.id, id_number=number, phone=phone
        )
    _dates(birth, values.get("joined_on", member.joined_on), member.confirmed_on)
    version = member.version if expected_version is None else expected_version
    updated = await repository.update_member(tx, member, expected_version=version, **values)
    if updated is None:
        raise VERSION_CONFLICT.error(what="党员信息")
    changed = sorted(k for k in given if k in {*values, "id_number", "phone"})
    await repository.add_history(
        tx,
        member,
        kind="updated",
        effective_on=date.today(),
        actor=principal.actor,
        details={"fields": changed},
    )
    await record(
        tx,
        principal,
        tenant_id=member.tenant_id,
        action="member.update",
        object_type="Member",
        object_id=member.id,
        details={"fields": changed},
    )
    return updated


# Statuses a disposal case ends in (除名, 退党): recorded by hand only with no case open.
CASE_DECIDED = frozenset({MemberStatus.REMOVED, MemberStatus.WITHDREW})


async def change_status(
    tx: Transaction,
    principal: Principal,
    *,
    member_id: int,
    status: MemberStatus,
    effective_on: date,
    note: str | None = None,
    expected_version: int | None = None,
) -> Any:
    """Move a member's status (停止党籍, 除名, 退党, 去世, 转出本县 …); never a delete."""
    member = await get_member(tx, principal, member_id, MemberAction.UPDATE)
    current = MemberStatus(member.status)
    if not rules.may_move(current, status):
        raise STATUS_MOVE_NOT_ALLOWED.error(
            current=STATUS_LABELS[current], target=STATUS_LABELS[status]
        )
    # The statuses a disposal case decides (service/cases) follow its procedure: 限期改正
    # is only ever a case's, and while a case is open neither removal nor withdrawal
    # may be recorded beside it (the case's end state and the status must agree).
    if MemberStatus.CORRECTING in (current, status) or (
        status in CASE_DECIDED and await repository.has_open_case(tx, member.tenant_id, member.id)
    ):
        raise STATUS_HELD_BY_CASE.error()
    return await set_status(
        tx,
        principal,
        member,
        status=status,
        effective_on=effective_on,
        note=note,
        expected_version=expected_version,
    )


async def set_status(
    tx: Transaction,
    principal: Principal,
    member: Any,
    *,
    status: MemberStatus,
    effective_on: date,
    note: str | None,
    expected_version: int | None = None,
) -> Any:
    """Write a status move with its history entry and audit event. The caller has
    authorized it and checked the move (`change_status`, an expulsion's sanction)."""
    version = member.version if expected_version is None else expected_version
    updated = await repository.update_member(
        tx, member, expected_version=version, status=status.value, status_changed_on=effective_on
    )
    if updated is None:
        raise VERSION_CONFLICT.error(what="党员信息")
    details = {"from": member.status, "to": status.value, "note": _text(note, 500)}
    await repository.add_history(
        tx,
        member,
        kind="status_changed",
        effective_on=effective_on,
        actor=principal.actor,
        details=details,
    )
    await record(
        tx,
        principal,
        tenant_id=member.tenant_id,
        action="member.status",
        object_type="Member",
        object_id=member.id,
        details=details,
    )
    return updated


def _on_rolls(member: Any, doing: str) -> None:
    status = MemberStatus(member.status)
    if status not in rules.ON_ROLLS:
        raise MEMBER_NOT_ON_ROLLS.error(status=STATUS_LABELS[status], doing=doing)


async def confirm_membership(
    tx: Transaction,
    principal: Principal,
    *,
    member_id: int,
    confirmed_on: date,
    expected_version: int | None = None,
) -> Any:
    """转正: a probationary member becomes a full member on `confirmed_on`."""
    member = await get_member(tx, principal, member_id, MemberAction.UPDATE)
    _on_rolls(member, "转正")
    if member.category != MemberCategory.PROBATIONARY:
        raise NOT_PROBATIONARY.error()
    if confirmed_on < member.joined_on:
        raise CONFIRMED_BEFORE_JOINED.error()
    version = member.version if expected_version is None else expected_version
    updated = await repository.update_member(
        tx,
        member,
        expected_version=version,
        category=MemberCategory.FULL.value,
        confirmed_on=confirmed_on,
    )
    if updated is None:
        raise VERSION_CONFLICT.error(what="党员信息")
    details = {
        "from": CATEGORY_LABELS[MemberCategory.PROBATIONARY],
        "to": CATEGORY_LABELS[MemberCategory.FULL],
    }
    await repository.add_history(
        tx,
        member,
        kind="category_changed",
        effective_on=confirmed_on,
        actor=principal.actor,
        details=details,
    )
    await record(
        tx,
        principal,
        tenant_id=member.tenant_id,
        action="member.confirm",
        object_type="Member",
        object_id=member.id,
        details={"confirmed_on": confirmed_on.isoformat()},
    )
    return updated


async def move_member(
    tx: Transaction,
    principal: Principal,
    *,
    member_id: int,
    to_branch_id: int,
    effective_on: date,
    note: str | None = None,
) -> Any:
    """Move a member to another branch. Within the tenant that is an edit; to another
    tenant it is 组织关系转接, which takes `member:transfer` at both ends: the record
    and its own history (dues, tasks, sanctions, registrations, contacts) move with it,
    its numbers are sealed again for the new tenant, and both tenants' audit logs say
    so. Meetings stay with the branch that held them."""
    member = await get_member(tx, principal, member_id, MemberAction.UPDATE)
    _on_rolls(member, "转接")
    if member.branch_id == to_branch_id:
        raise SAME_BRANCH.error()
    crosses = False
    target = await units.get_unit(tx, to_branch_id)
    if target is not None and target.tenant_id != member.tenant_id:
        crosses = True
        require_for_member(principal, MemberAction.TRANSFER, member)
    branch = await checked_branch(
        tx, principal, to_branch_id, MemberAction.TRANSFER if crosses else MemberAction.UPDATE
    )
    values: dict[str, Any] = {"branch_id": branch.id, "branch_path": branch.path}
    details = {
        "from_branch_id": member.branch_id,
        "to_branch_id": branch.id,
        "note": _text(note, 500),
    }
    if crosses:
        pii = await open_pii(tx, member.id)
        key = field_cipher().index(pii.id_number, tenant_id=branch.tenant_id)
        other = await repository.find_by_id_number(tx, branch.tenant_id, key)
        if other is not None:
            raise MEMBER_ALREADY_EXISTS.error(name=other.name)
        values |= {"tenant_id": branch.tenant_id} | sealed_pii(
            tenant_id=branch.tenant_id,
            member_id=member.id,
            id_number=pii.id_number,
            phone=pii.phone,
        )
        details |= {"from_tenant_id": member.tenant_id, "to_tenant_id": branch.tenant_id}
        await record(
            tx,
            principal,
            tenant_id=member.tenant_id,
            action="member.transfer_out",
            object_type="Member",
            object_id=member.id,
            details=details,
        )
    updated = await repository.update_member(tx, member, expected_version=member.version, **values)
    if updated is None:
        raise VERSION_CONFLICT.error(what="党员信息")
    await repository.add_history(
        tx,
        updated,
        kind="transferred_in" if crosses else "branch_changed",
        effective_on=effective_on,
        actor=principal.actor,
        details=details,
    )
    await record(
        tx,
        principal,
        tenant_id=updated.tenant_id,
        action="member.transfer_in" if crosses else "member.move",
        object_type="Member",
        object_id=member.id,
        details=details,
    )
    return updated


def stated_reason(reason: str | None) -> str:
    """The reason given for seeing personal data in full (2–200 characters, inner
    whitespace collapsed); REASON_REQUIRED otherwise."""
    stated = " ".join((reason or "").split())
    if not 2 <= len(stated) <= 200:
        raise REASON_REQUIRED.error()
    return stated


async def reveal_pii(
    tx: Transaction, principal: Principal, *, member_id: int, reason: str
) -> PersonalData:
    """The full ID and phone numbers, for `member:read_pii` and a stated reason; the
    reason goes into the audit log (the numbers do not)."""
    member = await get_member(tx, principal, member_id, MemberAction.READ)
    require_for_member(principal, MemberAction.READ_PII, member)
    stated = stated_reason(reason)
    pii = await open_pii(tx, member.id)
    await record(
        tx,
        principal,
        tenant_id=member.tenant_id,
        action="member.reveal_pii",
        object_type="Member",
        object_id=member.id,
        details={"reason": stated},
    )
    return pii


# Called with (tx, member row after the change, its new account id or None) when a
# member's login account changes: a domain that keeps the member's account on its own
# rows (a disposal case, for the member to read it) follows it in the same transaction.
AccountLinkHook = Callable[[Transaction, Any, int | None], Awaitable[None]]
_account_link_hooks: list[AccountLinkHook] = []


def on_account_linked(hook: AccountLinkHook) -> AccountLinkHook:
    """Register `hook` (idempotent) for `link_account`."""
    if hook not in _account_link_hooks:
        _account_link_hooks.append(hook)
    return hook


async def link_account(
    tx: Transaction, principal: Principal, *, member_id: int, account_id: int | None
) -> Any:
    """Link (or unlink, with None) the login account a member uses (`me { member }`)."""
    member = await get_member(tx, principal, member_id, MemberAction.UPDATE)
    if account_id is not None:
        await get_account(tx, principal, account_id)  # NOT_FOUND unless readable
        other = await repository.member_of_account(tx, account_id)
        if other is not None and other.id != member.id:
            raise ACCOUNT_ALREADY_LINKED.error()
    updated = await repository.update_member(
        tx, member, expected_version=member.version, account_id=account_id
    )
    if updated is None:
        raise VERSION_CONFLICT.error(what="党员信息")
    await record(
        tx,
        principal,
        tenant_id=member.tenant_id,
        action="member.link_account",
        object_type="Member",
        object_id=member.id,
        details={"account_id": account_id},
    )
    for hook in list(_account_link_hooks):
        await hook(tx, updated, account_id)
    return updated
