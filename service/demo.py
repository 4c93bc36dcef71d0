"""Demo data: one county, 8 tenants of all four kinds, ~30 branches, an account per role,
and a member ledger of a few hundred members with two years of history
(service/demo_ledger.py)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from service.auth.passwords import hash_password
from service.auth.service import operator_principal, register_account
from service.authz.roles import ROLE_LABELS, Role
from service.authz.service import assign_role
from service.db import Transaction
from service.demo_cases import load_demo_cases
from service.demo_evaluations import load_demo_evaluations
from service.demo_ledger import load_demo_ledger
from service.tenants import repository as units
from service.tenants.rules import OrgUnitKind
from service.tenants.service import create_org_unit

DEMO_PASSWORD = "Pingyi-Demo-2026"  # noqa: S105 (printed to the user on purpose)
COUNTY_CODE = "demo-county"

K = OrgUnitKind
# (code, name, kind, branches); a branch entry that is a tuple is a general branch
# with branches of its own.
TENANTS: list[tuple[str, str, OrgUnitKind, list[str | tuple[str, list[str]]]]] = [
    (
        "chengguan",
        "城关镇",
        K.TOWNSHIP,
        ["机关第一支部", "机关第二支部", "东街社区支部", "西街社区支部"],
    ),
    ("qingshi", "青石镇", K.TOWNSHIP, ["青石村支部", "石桥村支部", "青山村支部", "镇机关支部"]),
    ("liuxi", "柳溪乡", K.TOWNSHIP, ["柳溪村支部", "下溪村支部", "上溪村支部", "乡机关支部"]),
    ("baiyun", "白云乡", K.TOWNSHIP, ["白云村支部", "云岭村支部", "白石村支部", "乡机关支部"]),
    (
        "kaifaqu",
        "经济开发区",
        K.DEVELOPMENT_ZONE,
        ["管委会机关支部", ("园区企业党总支", ["电子厂支部", "纺织厂支部", "物流园支部"])],
    ),
    ("binjiang", "滨江新区", K.NEW_DISTRICT, ["新区机关支部", "滨江社区支部", "锦苑社区支部"]),
    ("jiaoyuju", "县教育局", K.COUNTY_DEPARTMENT, ["局机关支部", "县一中支部", "实验小学支部"]),
    (
        "weijianju",
        "县卫生健康局",
        K.COUNTY_DEPARTMENT,
        ["局机关支部", "县人民医院支部", "疾控中心支部"],
    ),
]


@dataclass(frozen=True)
class DemoLogin:
    username: str
    role: Role
    where: str


async def load_demo(tx: Transaction, progress: Callable[[str], None] = print) -> list[DemoLogin]:
    """Create the demo county unless it exists; return the demo logins either way."""
    principal = await operator_principal(tx, name="demo")
    root = await units.root_unit(tx)
    county = await units.county_by_code(tx, COUNTY_CODE)
    if county is None:
        county = await create_org_unit(
            tx, principal, parent_id=root.id, kind=K.COUNTY, code=COUNTY_CODE, name="平安县"
        )
        first_branch: dict[str, Any] = {}
        all_branches: list[Any] = []
        township = None
        for i, (code, name, kind, branches) in enumerate(TENANTS, start=1):
            progress(f"  [{i}/{len(TENANTS)}] {name}")
            tenant = await create_org_unit(
                tx, principal, parent_id=county.id, kind=kind, code=code, name=name
            )
            if code == "chengguan":
                township = tenant
            n = 0
            for entry in branches:
                n += 1
                if isinstance(entry, tuple):
                    general_name, subs = entry
                    general = await create_org_unit(
                        tx,
                        principal,
                        parent_id=tenant.id,
                        kind=K.GENERAL_BRANCH,
                        code=f"{code}-{n:02d}",
                        name=general_name,
                    )
                    for sub in subs:
                        n += 1
                        sub_branch = await create_org_unit(
                            tx,
                            principal,
                            parent_id=general.id,
                            kind=K.BRANCH,
                            code=f"{code}-{n:02d}",
                            name=sub,
                        )
                        all_branches.append(sub_branch)
                else:
                    branch = await create_org_unit(
                        tx,
                        principal,
                        parent_id=tenant.id,
                        kind=K.BRANCH,
                        code=f"{code}-{n:02d}",
                        name=entry,
                    )
                    first_branch.setdefault(code, branch)
                    all_branches.append(branch)
        assert township is not None
        branch = first_branch["chengguan"]
        places = {"county": county, "township": township, "branch": branch}
        password_hash = hash_password(DEMO_PASSWORD)  # one hash serves every demo login
        member_account_id = None
        for login in demo_logins():
            where = places[login.where]
            account = await register_account(
                tx,
                principal,
                username=login.username,
                display_name=f"演示{ROLE_LABELS[login.role]}",
                password_hash=password_hash,
                home_org_unit_id=where.id,
            )
            await assign_role(
                tx, principal, account_id=account.id, role=login.role, org_unit_id=where.id
            )
            if login.role is Role.MEMBER:
                member_account_id = account.id
        # The demo accounts' branch first: its members show each 三不 prompt.
        all_branches.sort(key=lambda b: b.id != branch.id)
        await load_demo_ledger(
            tx, principal, all_branches, member_account_id=member_account_id, progress=progress
        )
        await load_demo_evaluations(tx, principal, progress=progress)
        await load_demo_cases(tx, principal, progress=progress)
    else:
        progress("  演示数据已存在，跳过")
    names = [login.username for login in demo_logins()]
    rows = await tx.rows(
        "SELECT username FROM accounts WHERE username = ANY(%(names)s)", {"names": names}
    )
    existing = {row.username for row in rows}
    return [login for login in demo_logins() if login.username in existing]


def demo_logins() -> list[DemoLogin]:
    return [
        DemoLogin("sysadmin", Role.SYSTEM_ADMIN, "county"),
        DemoLogin("secadmin", Role.SECURITY_ADMIN, "county"),
        DemoLogin("auditor", Role.AUDITOR, "county"),
        DemoLogin("county.org", Role.COUNTY_ORGANIZER, "county"),
        DemoLogin("cg.secretary", Role.COMMITTEE_SECRETARY, "township"),
        DemoLogin("cg.organizer", Role.COMMITTEE_ORGANIZER, "township"),
        DemoLogin("cg1.secretary", Role.BRANCH_SECRETARY, "branch"),
        DemoLogin("cg1.committee", Role.BRANCH_COMMITTEE_MEMBER, "branch"),
        DemoLogin("cg1.member", Role.MEMBER, "branch"),
    ]
