"""The root of the GraphQL schema: each domain's parts composed, limits, error handling.

Domains own their types, loaders and root fields (`service/<domain>/graphql.py`); this
module only puts their `Query` and `Mutation` parts together and adds the root
`node(id:)` field, which finds the type through the node registry.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import strawberry
from graphql import DocumentNode, GraphQLError, OperationType
from graphql import ExecutionResult as GraphQLExecutionResult
from graphql import execute as graphql_execute
from strawberry.schema.config import StrawberryConfig
from strawberry.schema.exceptions import InvalidOperationTypeError
from strawberry.schema.schema import (
    DEFAULT_ALLOWED_OPERATION_TYPES,
    StrawberryGraphQLCoreExecutionContext,
)
from strawberry.tools import merge_types
from strawberry.types import ExecutionContext, ExecutionResult, Info
from strawberry.types.graphql import OperationType as StrawberryOperationType
from strawberry.utils.operation import get_operation_type

from service.approvals.graphql import (
    ApprovalRequest,
    ApprovalsMutation,
    ApprovalsQuery,
    ApprovalStep,
)
from service.approvals.subscriptions import ApprovalsSubscription
from service.attachments.graphql import AttachmentsMutation
from service.audit.graphql import AuditMutation, AuditQuery
from service.auth.graphql import (
    Account,
    AccountAdminMutation,
    AuthMutation,
    AuthQuery,
    WechatMutation,
)
from service.authz.graphql import AuthzMutation, RoleAssignment
from service.cases.archive_graphql import CaseArchiveMutation
from service.cases.graphql import CasesMutation, CasesQuery, DisposalCase
from service.cases.overview_graphql import CaseOverviewMutation, CaseOverviewQuery
from service.config import Settings
from service.dues.graphql import DuesMutation, DuesPayment
from service.errors import INVALID_INPUT, DomainError
from service.evaluations.determinations_graphql import (
    DeterminationsMutation,
    DeterminationsQuery,
    EvaluationObjection,
)
from service.evaluations.graphql import (
    EvaluationEntry,
    EvaluationMutation,
    EvaluationQuery,
    EvaluationRound,
)
from service.evaluations.overview_graphql import OverviewMutation, OverviewQuery
from service.evaluations.policies_graphql import (
    GradingPolicyVersion,
    PoliciesMutation,
    PoliciesQuery,
)
from service.evaluations.subscriptions import EvaluationSubscription
from service.meetings.graphql import Meeting, MeetingsMutation, MeetingsQuery, MemberTask
from service.members.flags_graphql import FlagsMutation
from service.members.graphql import Member, MembersMutation, MembersQuery
from service.members.import_graphql import ImportMutation
from service.members.mobile_graphql import MobileMutation, MobileQuery
from service.members.readmission_graphql import ReadmissionMutation
from service.registration.graphql import (
    RegistrationApplication,
    RegistrationDrive,
    RegistrationMutation,
    RegistrationQuery,
)
from service.sanctions.graphql import Sanction, SanctionsMutation
from service.schema.context import Context
from service.schema.limits import (
    CachedDocuments,
    NoIntrospectionRule,
    ValidTextRule,
    alias_limit_rule,
    depth_limit_rule,
)
from service.schema.relay import Node, fetch_node
from service.schema.subscriptions import bind_delivery
from service.schema.tuning import (
    CachedNameConverter,
    PlainShortcut,
    SharedPlans,
    is_awaitable,
    shared_plans,
    tune,
)
from service.tenants.graphql import OrgUnit, TenantsMutation, TenantsQuery

log = logging.getLogger("pingyi.graphql")

SCHEMA_FILE = Path(__file__).resolve().parent.parent.parent / "schema.graphql"
VALIDATION_CACHE_SIZE = 256
# Errors that are answers, not incidents: coded ones, and an operation of a kind the
# transport does not run (a query over WebSocket, a subscription over HTTP).
_EXPECTED = (DomainError, GraphQLError, InvalidOperationTypeError)
_EXECUTABLE = frozenset({StrawberryOperationType.QUERY, StrawberryOperationType.MUTATION})
_SUGGESTION = re.compile(r"\s*Did you mean [^?]*\?")


@strawberry.type
class NodeQuery:
    @strawberry.field(description="按全局 id 取任意对象")
    async def node(self, info: Info[Context, None], id: strawberry.ID) -> Node:
        return await fetch_node(info.context, id)  # type: ignore[no-any-return]


# Field order is the order of the parts: the exported schema keeps its shape.
Query = merge_types(
    "Query",
    (
        AuthQuery,
        NodeQuery,
        TenantsQuery,
        MembersQuery,
        MeetingsQuery,
        RegistrationQuery,
        MobileQuery,
        PoliciesQuery,
        EvaluationQuery,
        DeterminationsQuery,
        OverviewQuery,
        ApprovalsQuery,
        CasesQuery,
        CaseOverviewQuery,
        AuditQuery,
    ),
)
Mutation = merge_types(
    "Mutation",
    (
        TenantsMutation,
        AuthMutation,
        AccountAdminMutation,
        WechatMutation,
        AuthzMutation,
        MembersMutation,
        ImportMutation,
        FlagsMutation,
        DuesMutation,
        MeetingsMutation,
        SanctionsMutation,
        RegistrationMutation,
        MobileMutation,
        PoliciesMutation,
        EvaluationMutation,
        DeterminationsMutation,
        OverviewMutation,
        ApprovalsMutation,
        AuditMutation,
        AttachmentsMutation,
        ReadmissionMutation,
        CaseArchiveMutation,
        CaseOverviewMutation,
        CasesMutation,
    ),
)
# Live updates over WebSocket (service/schema/subscriptions.py): each domain's part.
Subscription = merge_types("Subscription", (ApprovalsSubscription, EvaluationSubscription))


class SettlingExecutionContext(PlainShortcut, StrawberryGraphQLCoreExecutionContext):
    """Shares with the Context the resolvers that outlive the result.

    When a field error bubbles up synchronously, graphql-core settles the sibling
    resolvers already running "in the background" and returns without them, though
    they still use the request's transaction. PingyiSchema.execute waits for them.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if isinstance(self.context_value, Context):
            self.context_value.background_work = self.background_futures
            # Known before any resolver runs: a mutation gets an explicit transaction
            # (BEGIN with its first statement, COMMIT at the end); a query reads in
            # implicit ones (see service.db).
            if self.operation.operation is OperationType.MUTATION:
                self.context_value.tx.write = True
        self.is_awaitable = is_awaitable  # see service.schema.tuning

    def build_per_event_executor(self, payload: Any) -> Any:
        # Each event of a subscription runs in a transaction of its own, with the
        # subscriber's principal (service/schema/subscriptions.py).
        return bind_delivery(super().build_per_event_executor(payload), payload)


@dataclass(frozen=True)
class PreparedDocument:
    """A document strawberry has parsed (under the token limit) and validated (under
    every rule) without error, and the type of the operation it names."""

    document: DocumentNode
    operation: StrawberryOperationType
    plans: SharedPlans | None  # how its selection sets execute, where no variable varies them


class PingyiSchema(strawberry.Schema):
    """Strawberry's schema, with two additions to `execute`.

    - A document seen before and found valid runs straight on graphql-core's executor
      (with strawberry's execution context, types and resolvers). Parsing and
      validation are pure functions of the text, the schema and the rules, all fixed
      here, so strawberry's pipeline (extension hooks, operation preparation, the
      parse and validation cache look-ups: ~15 % of a request, cProfile) would only
      find the same answer again. The first sight of every document, every document
      that failed, and anything with operation extensions goes through strawberry's
      `execute` as before.
    - Resolvers that outlive the result are awaited before the transaction ends.
    """

    prepared_documents = 256

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._prepared: OrderedDict[tuple[str, str | None], PreparedDocument] = OrderedDict()
        # Requests that found / did not find their document prepared (/metrics)
        self.prepared_hits = 0
        self.prepared_misses = 0

    def remember_valid_document(
        self, query: str, operation_name: str | None, document: DocumentNode
    ) -> None:
        """Called by `CachedDocuments` when a document passed validation."""
        try:
            operation = get_operation_type(document, operation_name)
        except RuntimeError:
            return
        self._prepared[(query, operation_name)] = PreparedDocument(
            document, operation, SharedPlans.of(document)
        )
        if len(self._prepared) > self.prepared_documents:
            self._prepared.popitem(last=False)

    def prepared(self, query: str | None, operation_name: str | None) -> PreparedDocument | None:
        if not query:
            return None
        key = (query, operation_name)
        found = self._prepared.get(key)
        if found is not None:
            self._prepared.move_to_end(key)  # least recently used goes first
        return found

    async def execute(  # type: ignore[override]
        self,
        query: str | None,
        variable_values: dict[str, Any] | None = None,
        context_value: Any | None = None,
        root_value: Any | None = None,
        operation_name: str | None = None,
        allowed_operation_types: Iterable[StrawberryOperationType] | None = None,
        operation_extensions: dict[str, Any] | None = None,
    ) -> Any:
        # Operation extensions (persisted queries, ...) take strawberry's whole path.
        prepared = None if operation_extensions else self.prepared(query, operation_name)
        if prepared is None:
            self.prepared_misses += 1
        else:
            self.prepared_hits += 1
        allowed = (
            DEFAULT_ALLOWED_OPERATION_TYPES
            if allowed_operation_types is None
            else allowed_operation_types
        )
        # Subscriptions stream over WebSocket (`stream`), never through `execute`:
        # a subscription document POSTed over HTTP is refused (the common road pays
        # one comparison for it).
        if (
            prepared is not None
            and prepared.operation in allowed
            and prepared.operation is not StrawberryOperationType.SUBSCRIPTION
        ):
            result = await self._execute_prepared(
                prepared,
                variable_values,
                context_value,
                root_value,
                operation_name,
                operation_extensions,
            )
        else:
            result = await super().execute(
                query,
                variable_values=variable_values,
                context_value=context_value,
                root_value=root_value,
                operation_name=operation_name,
                allowed_operation_types=_EXECUTABLE.intersection(allowed),
                operation_extensions=operation_extensions,
            )
        # The view ends the transaction next: nothing may still be using it.
        if isinstance(context_value, Context):
            while pending := [f for f in context_value.background_work if not f.done()]:
                await asyncio.wait(pending)
        return result

    async def _execute_prepared(
        self,
        prepared: PreparedDocument,
        variable_values: dict[str, Any] | None,
        context_value: Any,
        root_value: Any,
        operation_name: str | None,
        operation_extensions: dict[str, Any] | None,
    ) -> ExecutionResult:
        try:
            # The execution context takes the document's plans when it is built, which
            # graphql_execute does before it returns.
            plans = shared_plans.set(prepared.plans)
            try:
                outcome = graphql_execute(
                    self._schema,
                    prepared.document,
                    root_value=root_value,
                    context_value=context_value,
                    variable_values=variable_values,
                    operation_name=operation_name,
                    executor_class=self.execution_context_class,
                    is_awaitable=is_awaitable,
                    operation_extensions=operation_extensions,
                )
            finally:
                shared_plans.reset(plans)
            if is_awaitable(outcome):
                outcome = await outcome
        except Exception as exc:  # as strawberry's execute: an error result, logged
            outcome = GraphQLExecutionResult(
                data=None, errors=[GraphQLError(str(exc), original_error=exc)]
            )
        if outcome.errors:
            self._process_errors(outcome.errors)  # suggestions stripped, then logged
        return ExecutionResult(data=outcome.data, errors=outcome.errors, extensions={})

    @staticmethod
    def remove_field_suggestion(error: GraphQLError) -> None:
        # Strawberry strips suggestions from unknown-field errors only; those of unknown
        # arguments, types, enum values and input fields would spell out the schema
        # that disabled introspection hides. Called only when suggestions are off.
        error.message = _SUGGESTION.sub("", error.message)

    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        # Coded errors are expected answers, not incidents: log only the unexpected,
        # whose text stays on the server (it may hold personal data).
        for error in errors:
            original = error.original_error
            if original is not None and not isinstance(original, _EXPECTED):
                log.error("unexpected error in %s", error.path, exc_info=original)


def build_schema(
    settings: Settings, *, query: type = Query, subscription: type | None = Subscription
) -> PingyiSchema:
    """The schema; `query` and `subscription` let a test serve extra root fields with
    everything else equal."""
    rules: list[Any] = [
        depth_limit_rule(settings.max_query_depth),
        alias_limit_rule(settings.max_aliases),
        ValidTextRule,
    ]
    if not settings.dev_mode:
        rules.append(NoIntrospectionRule)
    rule_tuple = tuple(rules)
    schema = PingyiSchema(
        query=query,
        mutation=Mutation,
        subscription=subscription,
        types=[
            OrgUnit,
            Account,
            RoleAssignment,
            Member,
            DuesPayment,
            Meeting,
            MemberTask,
            Sanction,
            RegistrationDrive,
            RegistrationApplication,
            GradingPolicyVersion,
            EvaluationRound,
            EvaluationEntry,
            EvaluationObjection,
            ApprovalRequest,
            ApprovalStep,
            DisposalCase,
        ],
        config=StrawberryConfig(
            disable_field_suggestions=not settings.dev_mode,
            name_converter=CachedNameConverter(),
        ),
        execution_context_class=SettlingExecutionContext,
        # A fresh extension per request, over the same rule classes (made once above).
        extensions=[
            lambda: CachedDocuments(rule_tuple, settings.max_tokens, VALIDATION_CACHE_SIZE)
        ],
    )
    tune(schema._schema)
    return schema


def format_error(error: GraphQLError) -> dict[str, Any]:
    """What the client sees of an error: coded errors as they are, the rest masked."""
    original = error.original_error
    out: dict[str, Any] = {}
    if isinstance(original, DomainError):
        out = {"message": original.message, "extensions": {"code": original.code}}
    elif original is None or (isinstance(original, GraphQLError) and not error.path):
        # No original: a parse or validation error. A GraphQLError and no path: a
        # variable whose value does not fit its type. Both are the client's to fix.
        code = (error.extensions or {}).get("code")
        message = error.message
        if code is None:
            if "tokens" in message and "Parsing aborted" in message:
                code, message = "QUERY_TOO_LARGE", "查询过长，超过词法单元上限"
            elif "Invalid Unicode escape sequence" in message:
                # A lone surrogate written as an escape: text no column can hold.
                code, message = "INVALID_INPUT", INVALID_INPUT.message
            else:
                syntax = "Syntax Error" in message
                code = "GRAPHQL_PARSE_FAILED" if syntax else "GRAPHQL_VALIDATION_FAILED"
                message = f"查询无效：{message}"
        out = {"message": message, "extensions": {"code": code}}
    else:
        out = {"message": "服务器内部错误", "extensions": {"code": "INTERNAL_SERVER_ERROR"}}
    if error.locations:
        out["locations"] = [{"line": loc.line, "column": loc.column} for loc in error.locations]
    if error.path:
        out["path"] = list(error.path)
    return out


def export_sdl(settings: Settings | None = None) -> str:
    return build_schema(settings or Settings()).as_str() + "\n"
