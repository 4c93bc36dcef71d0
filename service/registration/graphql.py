"""GraphQL of the registration drive (党员登记): `RegistrationDrive` and
`RegistrationApplication` nodes, `Member.registrations` (a member reads their own with
`me { member { registrations { ... } } }`; the resolver lives here), the root lists
and the three mutations."""

from __future__ import annotations

from datetime import date, datetime
from enum import Enum
from typing import TYPE_CHECKING, Annotated, Any

import strawberry
from strawberry.types import Info

from service.registration import rules, service
from service.registration.service import ApplicationQuery, Submission
from service.schema.context import Context
from service.schema.ids import from_global_id, to_global_id
from service.schema.relay import Connection, Node, connection, register_node
from service.tenants.graphql import OrgUnit, load_org_units

if TYPE_CHECKING:
    from service.members.graphql import Member

LazyMember = Annotated["Member", strawberry.lazy("service.members.graphql")]

RegistrationChannel = strawberry.enum(
    Enum("RegistrationChannel", {m.name: m.value for m in rules.RegistrationChannel}),  # type: ignore[misc]
    description="提交渠道：网页、小程序",
)
RegistrationReview = strawberry.enum(
    Enum("RegistrationReview", {m.name: m.value for m in rules.Review}),  # type: ignore[misc]
    description="审核状态：待审核、通过、退回",
)
ReviewDecision = strawberry.enum(
    Enum("ReviewDecision", {"ACCEPTED": "accepted", "RETURNED": "returned"}),  # type: ignore[misc]
    description="审核结论：通过、退回（须写明理由）",
)
_CHANNELS = {m.value: RegistrationChannel(m.value) for m in rules.RegistrationChannel}
_REVIEWS = {m.value: RegistrationReview(m.value) for m in rules.Review}


async def load_drives(context: Context, ids: Any) -> list[Any | None]:
    return await service.load_drives(context.tx, context.principal, ids)


async def load_applications(context: Context, ids: Any) -> list[Any | None]:
    return await service.load_applications(context.tx, context.principal, ids)


@strawberry.type(description="党员登记（一个租户内的一次登记；县级发起的各租户共享 batch）")
class RegistrationDrive(Node):
    id: strawberry.ID
    batch: str = strawberry.field(description="同一次发起的各租户登记共享的批次号")
    title: str
    opens_on: date = strawberry.field(description="开始日期")
    closes_on: date = strawberry.field(description="截止日期（含）；此后提交记为逾期")
    opened_by: str
    created_at: datetime
    row: strawberry.Private[Any]

    @classmethod
    def of(cls, row: Any) -> RegistrationDrive:
        return cls(
            id=strawberry.ID(to_global_id("RegistrationDrive", row.id)),
            batch=str(row.batch),
            title=row.title,
            opens_on=row.opens_on,
            closes_on=row.closes_on,
            opened_by=row.opened_by,
            created_at=row.created_at,
            row=row,
        )

    @strawberry.field(description="所属租户；无权查看时为 null")
    async def tenant(self, info: Info[Context, None]) -> OrgUnit | None:
        row = await info.context.loader(load_org_units).load(self.row.tenant_id)
        return OrgUnit.of(row) if row is not None else None


@strawberry.type(description="党员登记申请表")
class RegistrationApplication(Node):
    id: strawberry.ID
    thought: str = strawberry.field(description="思想方面")
    work: str = strawberry.field(description="工作方面")
    conduct: str = strawberry.field(description="作风方面")
    life: str = strawberry.field(description="生活方面")
    wishes_to_stay: bool = strawberry.field(description="是否愿意继续做党员")
    channel: RegistrationChannel  # type: ignore[valid-type]
    submitted_at: datetime
    is_late: bool = strawberry.field(description="截止日期后提交")
    review: RegistrationReview  # type: ignore[valid-type]
    review_note: str | None
    reviewed_by: str | None
    reviewed_at: datetime | None
    row: strawberry.Private[Any]

    @classmethod
    def of(cls, row: Any) -> RegistrationApplication:
        return cls(
            id=strawberry.ID(to_global_id("RegistrationApplication", row.id)),
            thought=row.thought,
            work=row.work,
            conduct=row.conduct,
            life=row.life,
            wishes_to_stay=row.wishes_to_stay,
            channel=_CHANNELS[row.channel],
            submitted_at=row.submitted_at,
            is_late=row.is_late,
            review=_REVIEWS[row.review],
            review_note=row.review_note,
            reviewed_by=row.reviewed_by,
            reviewed_at=row.reviewed_at,
            row=row,
        )

    @strawberry.field
    async def drive(self, info: Info[Context, None]) -> RegistrationDrive | None:
        row = await info.context.loader(load_drives).load(self.row.drive_id)
        return RegistrationDrive.of(row) if row is not None else None

    @strawberry.field(description="申请人；无权查看时为 null")
    async def member(self, info: Info[Context, None]) -> LazyMember | None:
        from service.members.graphql import Member, load_account_members, load_members

        ctx = info.context
        row = await ctx.loader(load_members).load(self.row.member_id)
        if row is None and ctx.principal.account_id is not None:  # one's own record
            own = await ctx.loader(load_account_members).load(ctx.principal.account_id)
            row = own if own is not None and own.id == self.row.member_id else None
        return Member.of(row) if row is not None else None


@strawberry.type(description="尚未提交登记申请的正式党员")
class MissingRegistration:
    member: LazyMember
    is_late: bool = strawberry.field(description="已过截止日期仍未提交")


async def drive_by_id(context: Context, drive_id: int) -> RegistrationDrive:
    return RegistrationDrive.of(await service.get_drive(context.tx, context.principal, drive_id))


async def application_by_id(context: Context, application_id: int) -> RegistrationApplication:
    row = await service.get_application(context.tx, context.principal, application_id)
    return RegistrationApplication.of(row)


register_node("RegistrationDrive", drive_by_id)
register_node("RegistrationApplication", application_by_id)


async def _member_registrations(
    root: Any, info: Info[Context, None], first: int | None = None, after: str | None = None
) -> Connection[RegistrationApplication]:
    """`Member.registrations`: the member's applications, one per drive."""
    ctx = info.context
    page = await service.member_applications(
        ctx.tx, ctx.principal, root.row, ctx.page(first, after)
    )
    return connection(page, RegistrationApplication.of)  # type: ignore[no-any-return]


member_registrations: Any = strawberry.field(
    resolver=_member_registrations, description="党员登记申请（本人可见自己的）"
)


def _drive_id(global_id: strawberry.ID) -> int:
    return from_global_id(global_id, "RegistrationDrive")[1]


def _unit_id(global_id: strawberry.ID | None) -> int | None:
    return from_global_id(global_id, "OrgUnit")[1] if global_id else None


@strawberry.type
class RegistrationQuery:
    @strawberry.field(description="可见的党员登记（本人所在租户的，或有权查看台账的租户的）")
    async def registration_drives(
        self, info: Info[Context, None], first: int | None = None, after: str | None = None
    ) -> Connection[RegistrationDrive]:
        ctx = info.context
        page = await service.list_drives(ctx.tx, ctx.principal, ctx.page(first, after))
        return connection(page, RegistrationDrive.of)  # type: ignore[no-any-return]

    @strawberry.field(
        description="某次登记中已提交的申请（可按组织、审核状态、逾期、去留意愿筛选）"
    )
    async def registration_applications(
        self,
        info: Info[Context, None],
        drive_id: strawberry.ID,
        org_unit_id: strawberry.ID | None = None,
        first: int | None = None,
        after: str | None = None,
        review: RegistrationReview | None = None,  # type: ignore[valid-type]
        late: bool | None = None,
        wishes_to_stay: bool | None = None,
    ) -> Connection[RegistrationApplication]:
        ctx = info.context
        query = ApplicationQuery(
            org_unit_id=_unit_id(org_unit_id),
            review=rules.Review(review.value) if review is not None else None,
            late=late,
            wishes_to_stay=wishes_to_stay,
        )
        page = await service.list_applications(
            ctx.tx,
            ctx.principal,
            drive_id=_drive_id(drive_id),
            query=query,
            page=ctx.page(first, after),
        )
        return connection(page, RegistrationApplication.of)  # type: ignore[no-any-return]

    @strawberry.field(description="某次登记中尚未提交的正式党员（过截止日期即逾期）")
    async def registration_missing(
        self,
        info: Info[Context, None],
        drive_id: strawberry.ID,
        org_unit_id: strawberry.ID | None = None,
        first: int | None = None,
        after: str | None = None,
    ) -> Connection[MissingRegistration]:
        from service.members.graphql import Member

        ctx = info.context
        drive, page = await service.list_missing(
            ctx.tx,
            ctx.principal,
            drive_id=_drive_id(drive_id),
            org_unit_id=_unit_id(org_unit_id),
            page=ctx.page(first, after),
        )
        late = service.missing_are_late(drive)
        return connection(  # type: ignore[no-any-return]
            page, lambda row: MissingRegistration(member=Member.of(row), is_late=late)
        )


@strawberry.input(description="发起党员登记：县（覆盖其下全部在用租户）或一个租户")
class OpenRegistrationDriveInput:
    org_unit_id: strawberry.ID
    title: str
    opens_on: date
    days: int = strawberry.field(default=rules.DEFAULT_DAYS, description="登记期限（天）")


@strawberry.input(description="提交本人的党员登记申请")
class SubmitRegistrationInput:
    drive_id: strawberry.ID
    thought: str
    work: str
    conduct: str
    life: str
    wishes_to_stay: bool
    channel: RegistrationChannel = strawberry.field(  # type: ignore[valid-type]
        default_factory=lambda: RegistrationChannel("web")
    )


@strawberry.input(description="审核登记申请")
class ReviewRegistrationInput:
    application_id: strawberry.ID
    decision: ReviewDecision  # type: ignore[valid-type]
    note: str | None = None


@strawberry.type
class RegistrationDrivesPayload:
    drives: list[RegistrationDrive]


@strawberry.type
class RegistrationApplicationPayload:
    application: RegistrationApplication


@strawberry.type
class RegistrationMutation:
    @strawberry.mutation(description="发起党员登记")
    async def open_registration_drive(
        self, info: Info[Context, None], input: OpenRegistrationDriveInput
    ) -> RegistrationDrivesPayload:
        ctx = info.context
        rows = await service.open_drive(
            ctx.tx,
            ctx.principal,
            org_unit_id=from_global_id(input.org_unit_id, "OrgUnit")[1],
            title=input.title,
            opens_on=input.opens_on,
            days=input.days,
        )
        return RegistrationDrivesPayload(drives=[RegistrationDrive.of(r) for r in rows])

    @strawberry.mutation(description="提交本人的党员登记申请")
    async def submit_registration(
        self, info: Info[Context, None], input: SubmitRegistrationInput
    ) -> RegistrationApplicationPayload:
        ctx = info.context
        row = await service.submit(
            ctx.tx,
            ctx.principal,
            drive_id=_drive_id(input.drive_id),
            submission=Submission(
                thought=input.thought,
                work=input.work,
                conduct=input.conduct,
                life=input.life,
                wishes_to_stay=input.wishes_to_stay,
                channel=rules.RegistrationChannel(input.channel.value),
            ),
        )
        return RegistrationApplicationPayload(application=RegistrationApplication.of(row))

    @strawberry.mutation(description="审核党员登记申请（通过或退回）")
    async def review_registration(
        self, info: Info[Context, None], input: ReviewRegistrationInput
    ) -> RegistrationApplicationPayload:
        ctx = info.context
        row = await service.review(
            ctx.tx,
            ctx.principal,
            application_id=from_global_id(input.application_id, "RegistrationApplication")[1],
            decision=rules.Review(input.decision.value),
            note=input.note,
        )
        return RegistrationApplicationPayload(application=RegistrationApplication.of(row))
