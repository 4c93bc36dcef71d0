"""GraphQL of the member ledger: the `Member` type, its loaders, its root fields.

`idNumber` and `phone` are always the masks; the full values only come from the
`revealMemberPii` mutation (a write: it leaves an audit event with the reason).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from enum import Enum
from typing import Annotated, Any

import strawberry
from strawberry.types import Info

from service.dues import graphql as dues_graphql
from service.meetings import graphql as meetings_graphql
from service.members import flags_graphql, mobile_graphql, rules, service
from service.members.flags_graphql import LapseAssessment, MemberExcuse
from service.members.service import UNSET, MemberChanges, MemberQuery, NewMember
from service.registration import graphql as registration_graphql
from service.sanctions import graphql as sanctions_graphql
from service.schema.context import Context
from service.schema.ids import from_global_id, to_global_id
from service.schema.relay import Connection, Node, connection, register_node
from service.tenants.graphql import OrgUnit, load_org_units


def _enum(name: str, domain: type[Enum], description: str) -> Any:
    return strawberry.enum(
        Enum(name, {m.name: m.value for m in domain}),  # type: ignore[misc]
        description=description,
    )


Gender = _enum("Gender", rules.Gender, "性别：男、女")
MemberCategory = _enum("MemberCategory", rules.MemberCategory, "人员类别：正式党员、预备党员")
MemberStatus = _enum(
    "MemberStatus",
    rules.MemberStatus,
    "党员状态：正常、限期改正中、停止党籍、除名、退党、开除党籍、去世、转出本县",
)
_GENDERS = {m.value: Gender(m.value) for m in rules.Gender}
_CATEGORIES = {m.value: MemberCategory(m.value) for m in rules.MemberCategory}
_STATUSES = {m.value: MemberStatus(m.value) for m in rules.MemberStatus}


async def load_members(context: Context, ids: Sequence[int]) -> list[Any | None]:
    return await service.load_members(context.tx, context.principal, ids)


async def load_account_members(context: Context, ids: Sequence[int]) -> list[Any | None]:
    return await service.load_account_members(context.tx, context.principal, ids)


@strawberry.type(description="党员（党员信息电子台账）")
class Member(Node):
    id: strawberry.ID
    name: str
    gender: Gender  # type: ignore[valid-type]
    birth_date: date
    id_number: str = strawberry.field(description="身份证号（脱敏）")
    phone: str | None = strawberry.field(description="联系电话（脱敏）")
    joined_on: date = strawberry.field(description="入党日期")
    confirmed_on: date | None = strawberry.field(description="转正日期")
    category: MemberCategory  # type: ignore[valid-type]
    status: MemberStatus  # type: ignore[valid-type]
    status_changed_on: date | None
    is_mobile: bool = strawberry.field(description="流动党员")
    mobile_location: str | None = strawberry.field(description="外出地点")
    mobile_contact_plan: str | None = strawberry.field(description="支部与其保持联系的方式")
    dues_by_family: bool = strawberry.field(description="党费由亲属代缴")
    tracked_since: date = strawberry.field(description="台账自何日起记录其党费与组织生活")
    created_at: datetime
    version: int
    row: strawberry.Private[Any]
    lapse: LapseAssessment | None = flags_graphql.LAPSE_FIELD
    excuses: Connection[MemberExcuse] = flags_graphql.EXCUSES_FIELD

    # 党费 and 组织生活 (resolvers in service/dues/graphql.py, service/meetings/graphql.py)
    dues_payments = dues_graphql.member_dues_payments
    latest_dues_month = dues_graphql.member_latest_dues_month
    dues_schedule = dues_graphql.member_dues_schedule
    attendance = meetings_graphql.member_attendance
    tasks = meetings_graphql.member_tasks
    # 党纪处分, 党员登记, 流动党员联系 (resolvers in service/sanctions/graphql.py,
    # service/registration/graphql.py, service/members/mobile_graphql.py)
    sanctions = sanctions_graphql.member_sanctions
    registrations = registration_graphql.member_registrations
    mobile_contacts = mobile_graphql.member_mobile_contacts

    @classmethod
    def of(cls, row: Any) -> Member:
        return cls(
            id=strawberry.ID(to_global_id("Member", row.id)),
            name=row.name,
            gender=_GENDERS[row.gender],
            birth_date=row.birth_date,
            id_number=row.id_number_mask,
            phone=row.phone_mask,
            joined_on=row.joined_on,
            confirmed_on=row.confirmed_on,
            category=_CATEGORIES[row.category],
            status=_STATUSES[row.status],
            status_changed_on=row.status_changed_on,
            is_mobile=row.is_mobile,
            mobile_location=row.mobile_location,
            mobile_contact_plan=row.mobile_contact_plan,
            dues_by_family=row.dues_by_family,
            tracked_since=row.tracked_since,
            created_at=row.created_at,
            version=row.version,
            row=row,
        )

    @strawberry.field(description="所在党支部；无权查看时为 null")
    async def branch(self, info: Info[Context, None]) -> OrgUnit | None:
        row = await info.context.loader(load_org_units).load(self.row.branch_id)
        return OrgUnit.of(row) if row is not None else None

    @strawberry.field(description="台账变动记录（编入、转接、状态、类别）")
    async def history(
        self, info: Info[Context, None], first: int | None = None, after: str | None = None
    ) -> Connection[MemberHistoryEntry]:
        ctx = info.context
        page = await service.member_history(
            ctx.tx, ctx.principal, self.row.id, ctx.page(first, after)
        )
        return connection(page, MemberHistoryEntry.of)  # type: ignore[no-any-return]


@strawberry.type(description="台账变动记录")
class MemberHistoryEntry:
    kind: str = strawberry.field(
        description="created/imported/updated/branch_changed/transferred_in/status_changed/"
        "category_changed"
    )
    effective_on: date
    details: strawberry.scalars.JSON
    actor: str
    created_at: datetime

    @classmethod
    def of(cls, row: Any) -> MemberHistoryEntry:
        return cls(
            kind=row.kind,
            effective_on=row.effective_on,
            details=row.details,
            actor=row.actor,
            created_at=row.created_at,
        )


async def member_by_id(context: Context, member_id: int) -> Member:
    return Member.of(await service.get_member(context.tx, context.principal, member_id))


register_node("Member", member_by_id)


def member_id(global_id: strawberry.ID) -> int:
    return from_global_id(global_id, "Member")[1]


def _domain(value: Any, kind: type[Enum]) -> Any:
    return kind(value.value) if value is not None else None


@strawberry.type
class MembersQuery:
    @strawberry.field(description="按 id 取党员")
    async def member(self, info: Info[Context, None], id: strawberry.ID) -> Member:
        return await member_by_id(info.context, member_id(id))

    @strawberry.field(description="党员名册：某组织（支部、总支、租户）以下或全部可见的党员")
    async def members(
        self,
        info: Info[Context, None],
        org_unit_id: strawberry.ID | None = None,
        first: int | None = None,
        after: str | None = None,
        category: MemberCategory | None = None,  # type: ignore[valid-type]
        statuses: list[MemberStatus] | None = None,  # type: ignore[valid-type]
        is_mobile: bool | None = None,
        name_contains: str | None = None,
        id_number: Annotated[
            str | None, strawberry.argument(description="按身份证号精确查找")
        ] = None,
        flagged: Annotated[
            bool | None, strawberry.argument(description="有（true）或无（false）“三不”提示")
        ] = None,
    ) -> Connection[Member]:
        ctx = info.context
        query = MemberQuery(
            org_unit_id=from_global_id(org_unit_id, "OrgUnit")[1] if org_unit_id else None,
            category=_domain(category, rules.MemberCategory),
            statuses=tuple(rules.MemberStatus(s.value) for s in statuses or ()),
            is_mobile=is_mobile,
            name_contains=name_contains,
            id_number=id_number,
            flagged=flagged,
        )
        if flagged is not None:
            return await flags_graphql.flagged_connection(ctx, ctx.page(first, after), query)
        page = await service.list_members(ctx.tx, ctx.principal, ctx.page(first, after), query)
        return connection(page, Member.of)  # type: ignore[no-any-return]


@strawberry.input(description="新增党员")
class CreateMemberInput:
    branch_id: strawberry.ID
    name: str
    id_number: str
    joined_on: date
    category: MemberCategory = strawberry.field(  # type: ignore[valid-type]
        default_factory=lambda: MemberCategory("full")
    )
    gender: Gender | None = None  # type: ignore[valid-type]
    confirmed_on: date | None = None
    phone: str | None = None
    is_mobile: bool = False
    mobile_location: str | None = None
    mobile_contact_plan: str | None = None
    dues_by_family: bool = False


@strawberry.input(description="修改党员信息；未给出的字段不变")
class UpdateMemberInput:
    member_id: strawberry.ID
    expected_version: int | None = None
    name: str | None = strawberry.UNSET
    gender: Gender | None = strawberry.UNSET  # type: ignore[valid-type]
    id_number: str | None = strawberry.UNSET
    phone: str | None = strawberry.UNSET
    joined_on: date | None = strawberry.UNSET
    is_mobile: bool | None = strawberry.UNSET
    mobile_location: str | None = strawberry.UNSET
    mobile_contact_plan: str | None = strawberry.UNSET
    dues_by_family: bool | None = strawberry.UNSET


@strawberry.input(description="变更党员状态（不删除）")
class ChangeMemberStatusInput:
    member_id: strawberry.ID
    status: MemberStatus  # type: ignore[valid-type]
    effective_on: date
    note: str | None = None
    expected_version: int | None = None


@strawberry.input(description="预备党员转正")
class ConfirmMemberInput:
    member_id: strawberry.ID
    confirmed_on: date
    expected_version: int | None = None


@strawberry.input(description="转到其他党支部；跨租户即组织关系转接")
class MoveMemberInput:
    member_id: strawberry.ID
    to_branch_id: strawberry.ID
    effective_on: date
    note: str | None = None


@strawberry.input(description="查看完整身份证号与电话：须有权限并说明事由（记入审计）")
class RevealMemberPiiInput:
    member_id: strawberry.ID
    reason: str


@strawberry.input(description="关联党员本人的登录账号")
class LinkMemberAccountInput:
    member_id: strawberry.ID
    account_id: strawberry.ID | None = None


@strawberry.type
class MemberPayload:
    member: Member


@strawberry.type(description="完整的个人敏感信息")
class MemberPii:
    id_number: str
    phone: str | None


def _unset_or(value: Any, convert: Any = None) -> Any:
    if value is strawberry.UNSET:
        return UNSET
    if convert is not None and value is not None:
        return convert(value)
    return value


@strawberry.type
class MembersMutation:
    @strawberry.mutation(description="新增党员")
    async def create_member(
        self, info: Info[Context, None], input: CreateMemberInput
    ) -> MemberPayload:
        ctx = info.context
        row = await service.add_member(
            ctx.tx,
            ctx.principal,
            NewMember(
                branch_id=from_global_id(input.branch_id, "OrgUnit")[1],
                name=input.name,
                id_number=input.id_number,
                joined_on=input.joined_on,
                category=rules.MemberCategory(input.category.value),
                gender=_domain(input.gender, rules.Gender),
                confirmed_on=input.confirmed_on,
                phone=input.phone,
                is_mobile=input.is_mobile,
                mobile_location=input.mobile_location,
                mobile_contact_plan=input.mobile_contact_plan,
                dues_by_family=input.dues_by_family,
            ),
        )
        return MemberPayload(member=Member.of(row))

    @strawberry.mutation(description="修改党员信息")
    async def update_member(
        self, info: Info[Context, None], input: UpdateMemberInput
    ) -> MemberPayload:
        ctx = info.context
        changes = MemberChanges(
            name=_unset_or(input.name),
            gender=_unset_or(input.gender, lambda g: rules.Gender(g.value)),
            id_number=_unset_or(input.id_number),
            phone=_unset_or(input.phone),
            joined_on=_unset_or(input.joined_on),
            is_mobile=_unset_or(input.is_mobile),
            mobile_location=_unset_or(input.mobile_location),
            mobile_contact_plan=_unset_or(input.mobile_contact_plan),
            dues_by_family=_unset_or(input.dues_by_family),
        )
        row = await service.update_member(
            ctx.tx,
            ctx.principal,
            member_id=member_id(input.member_id),
            changes=changes,
            expected_version=input.expected_version,
        )
        return MemberPayload(member=Member.of(row))

    @strawberry.mutation(description="变更党员状态")
    async def change_member_status(
        self, info: Info[Context, None], input: ChangeMemberStatusInput
    ) -> MemberPayload:
        ctx = info.context
        row = await service.change_status(
            ctx.tx,
            ctx.principal,
            member_id=member_id(input.member_id),
            status=rules.MemberStatus(input.status.value),
            effective_on=input.effective_on,
            note=input.note,
            expected_version=input.expected_version,
        )
        return MemberPayload(member=Member.of(row))

    @strawberry.mutation(description="预备党员转正")
    async def confirm_member(
        self, info: Info[Context, None], input: ConfirmMemberInput
    ) -> MemberPayload:
        ctx = info.context
        row = await service.confirm_membership(
            ctx.tx,
            ctx.principal,
            member_id=member_id(input.member_id),
            confirmed_on=input.confirmed_on,
            expected_version=input.expected_version,
        )
        return MemberPayload(member=Member.of(row))

    @strawberry.mutation(description="转到其他党支部（跨租户即组织关系转接）")
    async def move_member(self, info: Info[Context, None], input: MoveMemberInput) -> MemberPayload:
        ctx = info.context
        row = await service.move_member(
            ctx.tx,
            ctx.principal,
            member_id=member_id(input.member_id),
            to_branch_id=from_global_id(input.to_branch_id, "OrgUnit")[1],
            effective_on=input.effective_on,
            note=input.note,
        )
        return MemberPayload(member=Member.of(row))

    @strawberry.mutation(description="查看完整身份证号与电话（须说明事由，记入审计）")
    async def reveal_member_pii(
        self, info: Info[Context, None], input: RevealMemberPiiInput
    ) -> MemberPii:
        ctx = info.context
        pii = await service.reveal_pii(
            ctx.tx, ctx.principal, member_id=member_id(input.member_id), reason=input.reason
        )
        return MemberPii(id_number=pii.id_number, phone=pii.phone)

    @strawberry.mutation(description="关联党员本人的登录账号（accountId 为空即解除）")
    async def link_member_account(
        self, info: Info[Context, None], input: LinkMemberAccountInput
    ) -> MemberPayload:
        ctx = info.context
        account = from_global_id(input.account_id, "Account")[1] if input.account_id else None
        row = await service.link_account(
            ctx.tx, ctx.principal, member_id=member_id(input.member_id), account_id=account
        )
        return MemberPayload(member=Member.of(row))
