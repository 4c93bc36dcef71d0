"""A member learns their final grade live (评议结果实时推送):
`subscription { myEvaluationResult { grade round { title } entry { id } } }`.

When a round becomes final, the determinations announce it on the topic
`evaluation_result` with the round and the accounts of its members
(service/evaluations/determinations.py, `_write_final`). A subscriber hears only its
own result: its account must be among the event's, and its own entry of that round is
read again in the event's own transaction with its principal and scope
(service/schema/subscriptions.py). A secretary who reads the whole round hears
nothing of other members' grades here.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any

import strawberry
from strawberry.types import Info

from service.auth.principal import Principal
from service.evaluations import repository, rules
from service.evaluations.determinations import EVENT_TOPIC
from service.evaluations.graphql import EvaluationEntry, EvaluationRound
from service.evaluations.policies_graphql import GRADES, Grade
from service.evaluations.service import get_round
from service.evaluations.stages import Stage
from service.members.service import my_member
from service.schema.context import Context
from service.schema.subscriptions import deliveries


@strawberry.type(description="本人的民主评议最终结果")
class EvaluationResultEvent:
    round: EvaluationRound
    entry: EvaluationEntry
    grade: Grade  # type: ignore[valid-type]
    grade_label: str


def concerns(principal: Principal, payload: dict[str, Any]) -> bool:
    """Pre-filter without a statement: the principal's account is one of the round's
    members' and the round lies in its scope. `result_event` decides for real."""
    accounts = payload.get("account_ids")
    return (
        principal.account_id is not None
        and isinstance(accounts, list)
        and principal.account_id in accounts
        and payload.get("tenant_id") in principal.tenant_ids
    )


async def result_event(context: Context, payload: dict[str, Any]) -> EvaluationResultEvent | None:
    """The subscriber's own final result of the event's round, read now; None when
    it has none (not on the roster, the round not final)."""
    round_id = payload.get("round_id")
    if not isinstance(round_id, int):
        return None
    tx, principal = context.tx, context.principal
    row = await get_round(tx, principal, round_id)
    me = await my_member(tx, principal)
    if me is None or Stage(row.stage) is not Stage.FINAL:
        return None
    entry = await repository.entry_of_member(tx, row, me.id)
    if entry is None or entry.final_grade is None:
        return None
    if entry.member_account_id != principal.account_id:
        return None
    return EvaluationResultEvent(
        round=EvaluationRound.of(row),
        entry=EvaluationEntry.seen_by(context, entry),
        grade=GRADES[entry.final_grade],
        grade_label=rules.GRADE_LABELS[rules.Grade(entry.final_grade)],
    )


@strawberry.type
class EvaluationSubscription:
    @strawberry.subscription(
        description="本人的民主评议结果：所在评议结束时推送本人的最终等次（只含本人的）"
    )
    async def my_evaluation_result(
        self, info: Info[Any, None]
    ) -> AsyncGenerator[EvaluationResultEvent, None]:
        async for delivery in deliveries(info, EVENT_TOPIC, select=result_event, accept=concerns):
            yield delivery
