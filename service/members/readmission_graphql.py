"""GraphQL of re-admission: `readmitMember` (a new record linked to the old one; see
service/members/readmission.py for the 5-year bar)."""

from __future__ import annotations

from datetime import date

import strawberry
from strawberry.types import Info

from service.members import readmission, rules
from service.members.graphql import Member, MemberCategory
from service.schema.context import Context
from service.schema.ids import from_global_id, to_global_id


@strawberry.input(description="重新接收离党人员入党：新建党员记录并关联原记录（原记录不变）")
class ReadmitMemberInput:
    previous_member_id: strawberry.ID = strawberry.field(description="原（已离党）党员记录")
    branch_id: strawberry.ID = strawberry.field(description="接收的党支部")
    joined_on: date = strawberry.field(description="重新入党日期")
    category: MemberCategory = strawberry.field(  # type: ignore[valid-type]
        default_factory=lambda: MemberCategory("probationary"),
        description="人员类别，默认预备党员",
    )
    name: str | None = strawberry.field(default=None, description="姓名（已改名时填写）")
    phone: str | None = None
    note: str | None = strawberry.field(default=None, description="记入党员档案的说明")


@strawberry.type
class ReadmitMemberPayload:
    member: Member
    previous_member_id: strawberry.ID


@strawberry.type
class ReadmissionMutation:
    @strawberry.mutation(
        description="重新接收入党：被除名、被劝退者须满 5 年（REJOIN_BARRED），记入审计"
    )
    async def readmit_member(
        self, info: Info[Context, None], input: ReadmitMemberInput
    ) -> ReadmitMemberPayload:
        ctx = info.context
        previous = from_global_id(input.previous_member_id, "Member")[1]
        row = await readmission.readmit_member(
            ctx.tx,
            ctx.principal,
            readmission.Readmission(
                previous_member_id=previous,
                branch_id=from_global_id(input.branch_id, "OrgUnit")[1],
                joined_on=input.joined_on,
                category=rules.MemberCategory(input.category.value),
                name=input.name,
                phone=input.phone,
                note=input.note,
            ),
        )
        return ReadmitMemberPayload(
            member=Member.of(row),
            previous_member_id=strawberry.ID(to_global_id("Member", previous)),
        )
