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
from datetime import date, timedelta
from typing import Any

from service.auth.passwords import hash_password
from service.auth.principal import Principal
from service.auth.service import register_account
from service.authz.roles import Role
from service.authz.service import assign_role
from service.db import Transaction
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
