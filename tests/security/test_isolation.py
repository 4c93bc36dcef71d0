"""Tenant isolation through the API (lock 1 and lock 2 together).

A principal of tenant A tries every query and mutation with tenant B's ids and gets
nothing: the very answer an id that does not exist gets (same code, same message), or
an empty list, never B's data.

The probes are not a hand-kept list: `Walker` reads the schema the app serves and builds
one request per root field, ID argument (also inside input objects), kind of id and
variant of the optional arguments (filters, cursors, page sizes), selecting every leaf
field it can reach. A new root field is covered without anyone remembering to add it,
and a field the walker cannot drive (an id argument of unknown kind, an id argument
below the root, a required custom scalar, a subscription without its own isolation
test) fails the suite until the walker is taught.
"""

from __future__ import annotations

import copy
import json
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from graphql import (
    GraphQLEnumType,
    GraphQLError,
    GraphQLInputObjectType,
    GraphQLInterfaceType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLScalarType,
    GraphQLSchema,
    GraphQLType,
    GraphQLUnionType,
    get_named_type,
    is_leaf_type,
    is_required_argument,
    is_required_input_field,
    parse,
    specified_rules,
    validate,
)

from service.app import AppState
from service.auth.service import operator_principal
from service.authz.roles import Role
from service.authz.service import assign_role
from service.pagination import encode_cursor
from service.schema.ids import to_global_id
from service.schema.limits import alias_limit_rule, depth_limit_rule
from service.schema.root import build_schema
from tests import factories
from tests.support import PASSWORD, World, build_world, error_codes, gql, login

# The kinds of node a global id can name, and an id of each that cannot exist.
KINDS = (
    "OrgUnit",
    "Account",
    "RoleAssignment",
    "Member",
    "Meeting",
    "MemberTask",
    "DuesPayment",
    "Sanction",
    "RegistrationDrive",
    "RegistrationApplication",
    "MemberImport",
    "ApprovalRequest",
    "ApprovalStep",
    "GradingPolicyVersion",
    "EvaluationObjection",
    "EvaluationRound",
    "EvaluationEntry",
    "DisposalCase",
    "Attachment",
)
MISSING_LOCAL_ID = 2**62

# Which kind of id an ID argument (or input field) carries, by its name. `None`: any node
# (the field itself decides, e.g. `node(id:)`, `orgUnit(id:)`). An ID argument whose name
# is missing here stops the walk: add it, so that the walker can fill it in.
ID_ARG_KINDS: dict[str, str | None] = {
    "id": None,
    "parentId": "OrgUnit",
    "orgUnitId": "OrgUnit",
    "homeOrgUnitId": "OrgUnit",
    "accountId": "Account",
    "roleAssignmentId": "RoleAssignment",
    "branchId": "OrgUnit",
    "toBranchId": "OrgUnit",
    "memberId": "Member",
    "driveId": "RegistrationDrive",
    "applicationId": "RegistrationApplication",
    "meetingId": "Meeting",
    "taskId": "MemberTask",
    "tenantId": "OrgUnit",  # a tenant's top unit
    "importId": "MemberImport",
    "tenant": "OrgUnit",  # auditEvents(filter: {tenant}): a tenant's top unit
    "orgUnit": "OrgUnit",  # auditEvents(filter: {orgUnit})
    "stepId": "ApprovalStep",  # decideApprovalStep(input: {stepId})
    "policyId": "GradingPolicyVersion",  # gradingPreview(policyId:)
    "roundId": "EvaluationRound",
    "objectionId": "EvaluationObjection",  # answerEvaluationObjection(input: {objectionId})
    "presentMemberIds": "Member",  # recordEvaluationAssembly(input: {presentMemberIds})
    "memberIds": "Member",  # tellEvaluationResults(input: {memberIds})
    "caseId": "DisposalCase",  # the steps of a disposal case (service/cases)
    "educatorMemberIds": "Member",  # assignCaseEducators(input: {educatorMemberIds})
    "evaluationRoundId": "EvaluationRound",  # openDisposalCase(input: {evaluationRoundId})
    "attachmentIds": "Attachment",  # files uploaded first, linked by a case's step
    "previousMemberId": "Member",  # readmitMember(input: {previousMemberId})
}

# Enum values that make a plausible request (a member at a branch, a branch below a
# tenant); other enums take their first value.
PREFERRED_ENUM_VALUES = {"OrgUnitKind": "BRANCH", "Role": "MEMBER"}

# Root query fields about the caller only: no positive control with B's data for them.
# `gradingPolicy` without a unit is the caller's county's policy, `gradingPreview`
# computes from its arguments (with B's policy id it is probed like every id field).
# `memberGrades` without a member is the caller's own history (with B's member id it is
# probed like every id field).
SELF_FIELDS = frozenset(
    {
        "me",
        "gradingPolicy",
        "gradingPreview",
        "myEvaluations",
        "memberGrades",
        "myCases",  # the caller's own disposal cases
        "educatorCases",  # the cases the caller educates in
    }
)

# Codes the baseline (A's own ids, as A's committee secretary) may answer after the
# lookup: A's case waits for its advance filing, so the secretary's pre-review (which the
# secretary holds) is out of order there; the lookup itself succeeded.
BASELINE_CODES = {"recordCasePreReview": frozenset({"CASE_STAGE_INVALID"})}

# Root fields only the auditor may use (everyone else: FORBIDDEN): their baseline and
# positive control are asked as the county's auditor.
AUDITOR_FIELDS = frozenset({"auditEvents", "auditVerification", "exportAuditEvents"})

# Codes an answer about B's id may carry (always identical to the missing-id answer).
HIDING_CODES = frozenset({"NOT_FOUND", "FORBIDDEN"})

# Mutations of the caller's own credentials: no id argument, nothing of anyone else to
# find. The walker's old password is wrong on purpose (walking must not change the
# walker's password), so their answer is this code, about the caller alone.
# Binding WeChat is about the caller's own account too: the walk's service has no WeChat
# provider configured (WECHAT_NOT_CONFIGURED, answered before anything is read), and
# the walker's accounts are bound to no WeChat user (tests/auth/test_wechat.py binds).
SELF_MUTATION_CODES = {
    "changePassword": frozenset({"WRONG_PASSWORD"}),
    "bindWechat": frozenset({"WECHAT_NOT_CONFIGURED"}),
    "unbindWechat": frozenset({"WECHAT_NOT_BOUND_TO_ACCOUNT"}),
}

# The mass representatives' token ballot answers TOKEN_INVALID to any token it cannot
# use, before it looks at any id: the walker has no usable token, so every answer is
# that refusal (identical for B's ids and missing ones, checked below). Ids with a
# usable token: tests/evaluations/test_rounds.py::test_token_ballot_hides_other_members.
TOKEN_FIELD_CODES = {
    "tokenBallot": frozenset({"TOKEN_INVALID"}),
    "castTokenBallot": frozenset({"TOKEN_INVALID"}),
}


@dataclass(frozen=True)
class WalkerUpload:
    """The value of an `Upload` argument: `ask` sends the request as a GraphQL multipart
    request with these bytes as the file part."""

    data: bytes


class WalkerGap(AssertionError):
    """The schema has something the walker cannot drive: teach it, do not skip it."""


# Subscriptions run over WebSocket (graphql-transport-ws), which the walker does not
# speak: each root subscription field names the focused test that shows tenant B's
# events never reach tenant A's subscriber. A new one fails the walker until it has
# one; an ID argument on a subscription would need the walker itself.
SUBSCRIPTION_ISOLATION_TESTS: dict[str, str] = {
    "approvalInbox": "tests/events/test_subscriptions.py::test_inbox_events_stay_in_their_tenant",
    "myEvaluationResult": (
        "tests/evaluations/test_round_e2e.py::test_result_events_stay_with_their_member"
    ),
}
_REPO = Path(__file__).resolve().parents[2]


def _check_subscriptions(schema: GraphQLSchema) -> None:
    root = schema.subscription_type
    for name, fdef in (root.fields if root is not None else {}).items():
        test = SUBSCRIPTION_ISOLATION_TESTS.get(name)
        if test is None:
            raise WalkerGap(f"subscription {name}: name its isolation test above")
        path, _, function = test.partition("::")
        if f"async def {function}(" not in (_REPO / path).read_text(encoding="utf-8"):
            raise WalkerGap(f"subscription {name}: {test} does not exist")
        if any(_contains_id(arg.type) for arg in fdef.args.values()):
            raise WalkerGap(f"subscription {name} takes an id: teach the walker")


@dataclass(frozen=True)
class Slot:
    """Where an id goes in a request's variables, and which kind of id it carries."""

    path: tuple[str | int, ...]
    name: str
    kind: str | None


@dataclass
class Probe:
    field: str
    operation: str  # "query" | "mutation"
    variant: str
    document: str
    variables: dict[str, Any]
    slots: list[Slot]

    def label(self) -> str:
        return f"{self.operation} {self.field} [{self.variant}]"

    def fill(self, values: dict[Slot, str]) -> dict[str, Any]:
        variables = copy.deepcopy(self.variables)
        for slot, value in values.items():
            target: Any = variables
            for step in slot.path[:-1]:
                target = target[step]
            target[slot.path[-1]] = value
        return variables


def _contains_id(type_: GraphQLType, seen: frozenset[str] = frozenset()) -> bool:
    named = get_named_type(type_)
    if isinstance(named, GraphQLScalarType):
        return named.name == "ID"
    if isinstance(named, GraphQLInputObjectType) and named.name not in seen:
        return any(_contains_id(f.type, seen | {named.name}) for f in named.fields.values())
    return False


class Walker:
    """Builds the probes for every root query and mutation field of a schema."""

    def __init__(
        self,
        schema: GraphQLSchema,
        *,
        tag: str,
        max_depth: int,
        max_tokens: int,
        max_aliases: int,
        max_page_size: int,
    ) -> None:
        self.schema = schema
        self.tag = tag
        self.max_tokens = max_tokens
        self.rules = (
            *specified_rules,
            depth_limit_rule(max_depth),
            alias_limit_rule(max_aliases),
        )
        self.max_page_size = max_page_size
        self._counter = 0

    # -- values ---------------------------------------------------------------------

    def _scalar(self, type_name: str, name: str) -> Any:
        self._counter += 1
        n = self._counter
        if type_name == "String":
            strings = {
                "name": "走查名称",
                "displayName": "走查",
                "code": f"walk{n}",
                "username": f"{self.tag}.walk{n}",
                "password": PASSWORD,
                "after": encode_cursor(0),  # from the very start: every id is after it
                "nameContains": "乙",
                "idNumber": factories.id_number(),
                "phone": "13800000000",
                "reason": "走查事由",
                "fromMonth": "2026-01",  # recordExcuse
                "toMonth": "2026-02",
            }
            return strings.get(name, "乙")
        if type_name == "Int":
            # year: the evaluation rounds of the world (evaluationOverview and its export)
            return {"first": self.max_page_size, "year": 2020}.get(name, 1)
        if type_name == "Float":
            return 1.0
        if type_name == "Boolean":
            return True
        if type_name == "Date":
            return "2020-07-01"
        if type_name == "DateTime":
            # auditEvents(filter: {from, to}): a window that holds every event
            return "2020-07-01T00:00:00+00:00" if name == "from" else "2999-01-01T00:00:00+00:00"
        if type_name == "Upload":
            # A real file part (see `ask`): a one-row ledger that would be imported.
            return WalkerUpload(
                factories.ledger_xlsx(
                    [[1, "走查", factories.id_number(), "2010-07-01", "甲镇第一支部", None]]
                )
            )
        raise WalkerGap(f"argument `{name}` of scalar type {type_name}: teach the walker a value")

    def _value(
        self,
        type_: GraphQLType,
        path: tuple[str | int, ...],
        name: str,
        slots: list[Slot],
        with_optional: bool,
    ) -> Any:
        if isinstance(type_, GraphQLNonNull):
            return self._value(type_.of_type, path, name, slots, with_optional)
        if isinstance(type_, GraphQLList):
            return [self._value(type_.of_type, (*path, 0), name, slots, with_optional)]
        if isinstance(type_, GraphQLInputObjectType):
            out: dict[str, Any] = {}
            for fname, f in type_.fields.items():
                if is_required_input_field(f) or with_optional:
                    out[fname] = self._value(f.type, (*path, fname), fname, slots, with_optional)
            return out
        if isinstance(type_, GraphQLEnumType):
            return PREFERRED_ENUM_VALUES.get(type_.name) or next(iter(type_.values))
        assert isinstance(type_, GraphQLScalarType), type_
        if type_.name == "ID":
            if name not in ID_ARG_KINDS:
                raise WalkerGap(
                    f"ID argument `{name}` at {'.'.join(map(str, path))}: add its kind of id "
                    "to ID_ARG_KINDS in tests/security/test_isolation.py"
                )
            slots.append(Slot(path, name, ID_ARG_KINDS[name]))
            return None
        return self._scalar(type_.name, name)

    # -- selections -----------------------------------------------------------------

    def _selection(
        self, type_: GraphQLType, budget: int, shapes: dict[str, str] | None = None
    ) -> str | None:
        """`shapes`: inside an interface or union, the type each field name had in the
        fragments before; a name seen with another type is aliased (`meetingKind: kind`),
        as GraphQL requires of fields that would merge with different shapes."""
        named = get_named_type(type_)
        if is_leaf_type(named):
            return ""
        if budget <= 0:
            return None
        if isinstance(named, GraphQLInterfaceType | GraphQLUnionType):
            parts = ["__typename"]
            seen: dict[str, str] = {}
            for possible in self.schema.get_possible_types(named):
                sub = self._selection(possible, budget, seen)
                if sub:
                    parts.append(f"... on {possible.name} {sub}")
            return "{ " + " ".join(parts) + " }"
        assert isinstance(named, GraphQLObjectType), named
        parts = []
        for fname, f in named.fields.items():
            for aname, arg in f.args.items():
                if _contains_id(arg.type):
                    raise WalkerGap(
                        f"{named.name}.{fname}({aname}:) takes an id below the root: "
                        "extend the walker to substitute B's ids there too"
                    )
            if any(is_required_argument(a) for a in f.args.values()):
                raise WalkerGap(f"{named.name}.{fname} has required arguments: teach the walker")
            shown = fname
            if shapes is not None and shapes.setdefault(fname, str(f.type)) != str(f.type):
                alias = named.name[0].lower() + named.name[1:] + fname[0].upper() + fname[1:]
                shown = f"{alias}: {fname}"
            if is_leaf_type(get_named_type(f.type)):
                parts.append(shown)
            else:
                sub = self._selection(f.type, budget - 1)
                if sub:
                    parts.append(f"{shown} {sub}")
        return "{ " + " ".join(parts) + " }" if parts else None

    def _document(self, operation: str, name: str, args: dict[str, str], return_type: Any) -> str:
        """The deepest selection the app's own limits (depth, tokens) accept."""
        defs = ", ".join(f"${a}: {t}" for a, t in args.items())
        call = ", ".join(f"{a}: ${a}" for a in args)
        head = f"{operation} Walk({defs})" if defs else f"{operation} Walk"
        for budget in (4, 3, 2, 1):
            selection = self._selection(return_type, budget)
            if selection is None:
                continue
            document = f"{head} {{ {name}{f'({call})' if call else ''} {selection} }}"
            try:
                ast = parse(document, max_tokens=self.max_tokens)
            except GraphQLError:  # over the token limit: try a shallower selection
                continue
            if not validate(self.schema, ast, self.rules):
                return document
        raise WalkerGap(f"{operation} {name}: no selection fits the depth and token limits")

    # -- probes ---------------------------------------------------------------------

    def root_fields(self) -> dict[str, list[str]]:
        _check_subscriptions(self.schema)  # covered by their own tests (over WebSocket)
        out = {"query": list(self.schema.query_type.fields)}  # type: ignore[union-attr]
        if self.schema.mutation_type is not None:
            out["mutation"] = list(self.schema.mutation_type.fields)
        return out

    def probes(self) -> list[Probe]:
        result: list[Probe] = []
        roots = {"query": self.schema.query_type, "mutation": self.schema.mutation_type}
        for operation, names in self.root_fields().items():
            root = roots[operation]
            assert root is not None
            for name in names:
                result.extend(self._field_probes(operation, name, root.fields[name]))
        return result

    def _field_probes(self, operation: str, name: str, fdef: Any) -> Iterator[Probe]:
        required = [a for a, d in fdef.args.items() if is_required_argument(d)]
        optional = [a for a in fdef.args if a not in required]
        # Variants: required arguments only; all arguments (filters, cursor, page size,
        # optional input fields); each optional argument alone; each value of an optional
        # enum argument (filter by every kind).
        variants: list[tuple[str, list[str], bool, dict[str, Any]]] = [
            ("required", [], False, {}),
            ("all", optional, True, {}),
        ]
        for a in optional:
            arg_type = get_named_type(fdef.args[a].type)
            variants.append((a, [a], False, {}))
            if isinstance(arg_type, GraphQLEnumType):
                variants.extend((f"{a}={v}", [a], False, {a: v}) for v in arg_type.values)
        seen: set[str] = set()
        for label, extra, with_optional, fixed in variants:
            slots: list[Slot] = []
            variables: dict[str, Any] = {}
            arg_types: dict[str, str] = {}
            for a in [*required, *extra]:
                arg = fdef.args[a]
                arg_types[a] = str(arg.type)
                variables[a] = (
                    fixed[a] if a in fixed else self._value(arg.type, (a,), a, slots, with_optional)
                )
            document = self._document(operation, name, arg_types, fdef.type)
            key = json.dumps([document, variables], sort_keys=True, default=repr)
            if key in seen:
                continue
            seen.add(key)
            yield Probe(name, operation, label, document, variables, slots)


def walker_for(state: AppState, world: World) -> Walker:
    settings = state.settings
    return Walker(
        build_schema(settings)._schema,
        tag=world.tag,
        max_depth=settings.max_query_depth,
        max_tokens=settings.max_tokens,
        max_aliases=settings.max_aliases,
        max_page_size=settings.max_page_size,
    )


# -- the world's ids and the strings that would betray B -------------------------------


def _owner_rows(
    owner_conn: psycopg.Connection[Any], query: str, params: tuple[Any, ...], scope: list[int]
) -> list[tuple[Any, ...]]:
    """Rows read as the owner, with a scope in case the owner is bound by forced RLS."""
    with owner_conn.transaction():
        owner_conn.execute(
            "SELECT set_config('app.tenant_ids', %s, true)", (",".join(map(str, scope)),)
        )
        return owner_conn.execute(query, params).fetchall()  # type: ignore[arg-type]


def role_assignment_gids(owner_conn: psycopg.Connection[Any], tenant_id: int) -> list[str]:
    rows = _owner_rows(
        owner_conn,
        "SELECT id FROM role_assignments WHERE tenant_id = %s ORDER BY id",
        (tenant_id,),
        [tenant_id],
    )
    return [to_global_id("RoleAssignment", r[0]) for r in rows]


def role_assignment_gid(
    owner_conn: psycopg.Connection[Any], world: World, who: str, unit: str
) -> str:
    tenant = world.units[unit].tenant_id
    rows = _owner_rows(
        owner_conn,
        "SELECT id FROM role_assignments WHERE tenant_id = %s AND account_id = %s"
        " AND org_unit_id = %s",
        (tenant, world.accounts[who], world.units[unit].id),
        [tenant],
    )
    assert len(rows) == 1, rows
    return to_global_id("RoleAssignment", rows[0][0])


@dataclass
class Ids:
    b: dict[str, list[str]]  # B's global ids by kind
    a: dict[str, str]  # one of A's global ids by kind (companions and baselines)
    markers: list[str] = field(default_factory=list)  # strings no A answer may contain
    # A's ids and strings that a branch secretary of a1 may not see either.
    beyond_a1: dict[str, list[str]] = field(default_factory=dict)
    beyond_a1_markers: list[str] = field(default_factory=list)

    @staticmethod
    def missing(kind: str) -> str:
        return to_global_id(kind, MISSING_LOCAL_ID)

    def hidden_from(self, who: str) -> tuple[dict[str, list[str]], list[str]]:
        """The ids `who` must not find, by kind, and the strings it must never be shown."""
        if who != "bsA1":
            return self.b, self.markers
        ids = {k: [*self.b[k], *self.beyond_a1.get(k, [])] for k in KINDS}
        return ids, [*self.markers, *self.beyond_a1_markers]


def world_ids(world: World, owner_conn: psycopg.Connection[Any]) -> Ids:
    b_tenant = world.units["B"].tenant_id
    b_units = [world.gid("B"), world.gid("b1")]
    b_accounts = [world.account_gid("secB"), world.account_gid("orgB")]
    b_roles = role_assignment_gids(owner_conn, b_tenant)
    assert len(b_roles) >= 2, b_roles
    markers = [
        "乙镇",
        f"{world.tag}-B",
        f"{world.tag}-b1",
        world.user("secB").lower(),
        world.user("orgB").lower(),
        *b_units,
        *b_accounts,
        *b_roles,
        "memB1同志",
        world.member_gid("memB1"),
        *(world.record_gid(r) for r in ("meetingB1", "taskB1", "duesB1")),
        *(world.record_gid(r) for r in ("sanctionB1", "driveB1", "emptydriveB1", "applicationB1")),
        "乙镇党委",
        world.record_gid("importB"),
        *(world.record_gid(r) for r in ("requestB1", "stepB1", "overduerequestB1", "overdueB1")),
        world.record_gid("policyB1"),
        world.record_gid("objectionB1"),
        world.record_gid("roundB1"),
        world.record_gid("entryB1"),
        world.record_gid("ballotB1"),
        "乙镇评议异议",
        world.record_gid("caseB1"),
        "乙镇处置案件事实",
        world.record_gid("attachmentB1"),
    ]
    return Ids(
        b={
            "OrgUnit": b_units,
            "Account": b_accounts,
            "RoleAssignment": b_roles,
            "Member": [world.member_gid("memB1")],
            "Meeting": [world.record_gid("meetingB1")],
            "MemberTask": [world.record_gid("taskB1")],
            "DuesPayment": [world.record_gid("duesB1")],
            "Sanction": [world.record_gid("sanctionB1")],
            "RegistrationDrive": [world.record_gid(r) for r in ("driveB1", "emptydriveB1")],
            "RegistrationApplication": [world.record_gid("applicationB1")],
            "MemberImport": [world.record_gid("importB")],
            "ApprovalRequest": [world.record_gid(r) for r in ("requestB1", "overduerequestB1")],
            "ApprovalStep": [world.record_gid(r) for r in ("stepB1", "overdueB1")],
            "GradingPolicyVersion": [world.record_gid("policyB1")],
            "EvaluationObjection": [world.record_gid("objectionB1")],
            "EvaluationRound": [world.record_gid(r) for r in ("roundB1", "ballotB1")],
            "EvaluationEntry": [world.record_gid("entryB1")],
            "DisposalCase": [world.record_gid("caseB1")],
            "Attachment": [world.record_gid("attachmentB1")],
        },
        a={
            "OrgUnit": world.gid("A"),
            "Account": world.account_gid("memA1"),
            "RoleAssignment": role_assignment_gid(owner_conn, world, "memA1", "a1"),
            "Member": world.member_gid("memA1"),
            "Meeting": world.record_gid("meetingA1"),
            "MemberTask": world.record_gid("taskA1"),
            "DuesPayment": world.record_gid("duesA1"),
            "Sanction": world.record_gid("sanctionA1"),
            "RegistrationDrive": world.record_gid("driveA1"),
            "RegistrationApplication": world.record_gid("applicationA1"),
            "MemberImport": world.record_gid("importA"),
            # A's request waits at the county: A's secretary sees it, may not decide it
            "ApprovalRequest": world.record_gid("requestA1"),
            "ApprovalStep": world.record_gid("stepA1"),
            "GradingPolicyVersion": world.record_gid("policyA1"),
            "EvaluationObjection": world.record_gid("objectionA1"),
            # in balloting with memA1 on its roster: a ballot's ids are looked up
            "EvaluationRound": world.record_gid("ballotA1"),
            "EvaluationEntry": world.record_gid("entryA1"),
            # opened, its advance filing pending with A's committee
            "DisposalCase": world.record_gid("caseA1"),
            "Attachment": world.record_gid("attachmentA1"),
        },
        markers=markers,
        beyond_a1={
            "OrgUnit": [world.gid(u) for u in ("A", "a2", "ag", "a3")],
            "Account": [world.account_gid(w) for w in ("secA", "orgA")],
            "RoleAssignment": [
                role_assignment_gid(owner_conn, world, "secA", "A"),
                role_assignment_gid(owner_conn, world, "orgA", "A"),
            ],
        },
        beyond_a1_markers=[
            '"甲镇"',
            "甲镇第二支部",
            "甲镇企业",
            *(f"{world.tag}-{u}" for u in ("A", "a2", "ag", "a3")),
            world.user("secA").lower(),
            world.user("orgA").lower(),
            *(world.gid(u) for u in ("A", "a2", "ag", "a3")),
            *(world.account_gid(w) for w in ("secA", "orgA")),
        ],
    )


def other_tenant_tables(owner_conn: psycopg.Connection[Any]) -> list[str]:
    """Every table with a tenant_id column beyond those snapshot_b names itself: a new
    domain's tables are compared before and after A's probes without being listed."""
    rows = owner_conn.execute(
        "SELECT table_name FROM information_schema.columns"
        " WHERE table_schema = 'public' AND column_name = 'tenant_id' ORDER BY table_name"
    ).fetchall()
    named = {"org_units", "role_assignments", "audit_events"}
    return [r[0] for r in rows if r[0] not in named]


def leaks(text: str, markers: list[str]) -> list[str]:
    return [m for m in markers if m in text]


def snapshot_b(owner_conn: psycopg.Connection[Any], world: World) -> dict[str, Any]:
    """Everything of B's the API could change, as the owner sees it."""
    b = world.units["B"].tenant_id
    return {
        "org_units": _owner_rows(
            owner_conn, "SELECT * FROM org_units WHERE tenant_id = %s ORDER BY id", (b,), [b]
        ),
        "role_assignments": _owner_rows(
            owner_conn,
            "SELECT * FROM role_assignments WHERE tenant_id = %s ORDER BY id",
            (b,),
            [b],
        ),
        "audit_events": _owner_rows(
            owner_conn,
            "SELECT seq, action, hash FROM audit_events WHERE tenant_id = %s ORDER BY seq",
            (b,),
            [b],
        ),
        "accounts": _owner_rows(
            owner_conn,
            "SELECT * FROM accounts WHERE home_tenant_id = %s ORDER BY id",
            (b,),
            [b],
        ),
        "tenants": _owner_rows(
            owner_conn,
            "SELECT * FROM tenants WHERE id = %s OR parent_id = %s ORDER BY id",
            (b, b),
            [b],
        ),
        **{
            table: _owner_rows(
                owner_conn,
                f"SELECT * FROM {table} WHERE tenant_id = %s ORDER BY 2",
                (b,),
                [b],
            )
            for table in other_tenant_tables(owner_conn)
        },
        "walker_accounts": _owner_rows(
            owner_conn,
            "SELECT id FROM accounts WHERE username LIKE %s",
            (f"{world.tag}.walk%",),
            [b],
        ),
    }


# -- speaking to the app ----------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    status: int
    body: dict[str, Any]

    @property
    def text(self) -> str:
        return json.dumps(self.body, ensure_ascii=False, sort_keys=True)

    @property
    def codes(self) -> set[str]:
        return set(error_codes(self.body))


def _uploads(value: Any, path: str) -> Iterator[tuple[str, WalkerUpload]]:
    if isinstance(value, WalkerUpload):
        yield path, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _uploads(item, f"{path}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _uploads(item, f"{path}.{index}")


async def ask(
    client: httpx.AsyncClient, token: str, document: str, variables: dict[str, Any]
) -> Answer:
    headers = {"Authorization": f"Bearer {token}"}
    uploads = list(_uploads(variables, "variables"))
    if not uploads:
        response = await client.post(
            "/graphql", json={"query": document, "variables": variables}, headers=headers
        )
        return Answer(response.status_code, response.json())
    # The GraphQL multipart request spec: the files are null in `operations`, `map` says
    # where each file part goes.
    operations = {"query": document, "variables": json.loads(json.dumps(variables, default=_null))}
    response = await client.post(
        "/graphql",
        data={
            "operations": json.dumps(operations),
            "map": json.dumps({str(i): [path] for i, (path, _) in enumerate(uploads)}),
        },
        files={str(i): (f"walk{i}.xlsx", up.data) for i, (_, up) in enumerate(uploads)},
        headers=headers,
    )
    return Answer(response.status_code, response.json())


def _null(value: Any) -> None:
    assert isinstance(value, WalkerUpload), value


def nonempty_lists(value: Any) -> bool:
    if isinstance(value, list):
        return bool(value)
    if isinstance(value, dict):
        return any(nonempty_lists(v) for v in value.values())
    return False


def candidate_kinds(slot: Slot) -> tuple[str, ...]:
    return KINDS if slot.kind is None else (slot.kind,)


def companions(probe: Probe, target: Slot, ids: Ids) -> dict[Slot, str]:
    out = {}
    for other in probe.slots:
        if other is target:
            continue
        if other.kind is None:
            raise WalkerGap(
                f"{probe.label()}: `{other.name}` is one of several ids and its kind is "
                "unknown; give it a kind in ID_ARG_KINDS"
            )
        out[other] = ids.a[other.kind]
    return out


# -- fixtures: one world for the read-only tests of this module -------------------------


@pytest.fixture(scope="module")
async def shared(state: AppState) -> World:
    """A world the read-only tests share (building one costs seconds: password hashes).
    Tests that change their world use the per-test `world` fixture instead."""
    return await build_world(state, evaluations=True, cases=True)


@pytest.fixture
async def world(state: AppState) -> World:
    """The per-test world, with every kind of record the walker asks about."""
    return await build_world(state, evaluations=True, cases=True)


_tokens: dict[tuple[str, str], str] = {}


async def token_for(client: httpx.AsyncClient, world: World, who: str) -> str:
    key = (world.tag, who)
    if key not in _tokens:
        _tokens[key] = await login(client, world.user(who))
    return _tokens[key]


# -- the walk ---------------------------------------------------------------------------


def test_walker_drives_every_root_field(state: AppState) -> None:
    """Every root field yields probes, and a field that takes an id gets its id slots."""
    walker = Walker(
        build_schema(state.settings)._schema,
        tag="tcheck",
        max_depth=state.settings.max_query_depth,
        max_tokens=state.settings.max_tokens,
        max_aliases=state.settings.max_aliases,
        max_page_size=state.settings.max_page_size,
    )
    probes = walker.probes()
    for operation, names in walker.root_fields().items():
        driven = {p.field for p in probes if p.operation == operation}
        assert driven == set(names), (operation, set(names) - driven)
    root_types = {"query": walker.schema.query_type, "mutation": walker.schema.mutation_type}
    slotted: dict[tuple[str, str], bool] = defaultdict(bool)
    for probe in probes:
        slotted[(probe.operation, probe.field)] |= bool(probe.slots)
    for (operation, name), has_slots in slotted.items():
        fdef = root_types[operation].fields[name]  # type: ignore[union-attr]
        takes_id = any(_contains_id(a.type) for a in fdef.args.values())
        assert has_slots == takes_id, (operation, name)
    # The walk reaches the connections and the nested types, not only the root.
    text = " ".join(p.document for p in probes)
    for piece in ("edges", "pageInfo", "nodes", "roleAssignments", "... on RoleAssignment"):
        assert piece in text, piece


def test_walker_refuses_what_it_cannot_drive(state: AppState) -> None:
    """An id argument of unknown kind stops the walk instead of being skipped."""
    walker = walker_for(state, World(tag="tcheck"))
    slots: list[Slot] = []
    schema = walker.schema
    id_type = schema.type_map["ID"]
    with pytest.raises(WalkerGap, match="unheardOfId"):
        walker._value(GraphQLNonNull(id_type), ("unheardOfId",), "unheardOfId", slots, False)  # type: ignore[arg-type]


async def test_tenant_a_finds_nothing_of_b_through_any_root_field(
    client: httpx.AsyncClient, state: AppState, shared: World, owner_conn: psycopg.Connection[Any]
) -> None:
    """As A's secretary, A's organizer and a1's branch secretary: B's ids (and, for the
    branch secretary, A's units, accounts and grants above a1) in every ID argument of
    every root field answer exactly what an id that does not exist answers."""
    world = shared
    ids = world_ids(world, owner_conn)
    probes = walker_for(state, world).probes()
    before = snapshot_b(owner_conn, world)
    problems: list[str] = []
    hidden_by_not_found: dict[tuple[str, str], set[str]] = defaultdict(set)
    asked = 0

    for who in ("secA", "orgA", "bsA1"):
        token = await token_for(client, world, who)
        hidden, markers = ids.hidden_from(who)
        for probe in probes:
            if not probe.slots:
                answer = await ask(client, token, probe.document, probe.variables)
                asked += 1
                found = leaks(answer.text, markers)
                if found:
                    problems.append(f"{who} {probe.label()}: leaks {found}: {answer.text}")
                own = SELF_MUTATION_CODES.get(probe.field, frozenset())
                own |= TOKEN_FIELD_CODES.get(probe.field, frozenset())
                if answer.codes - HIDING_CODES - own:
                    problems.append(f"{who} {probe.label()}: unexpected {answer.text}")
                continue
            for slot in probe.slots:
                fixed = companions(probe, slot, ids)
                for kind in KINDS:
                    control = await ask(
                        client,
                        token,
                        probe.document,
                        probe.fill({**fixed, slot: ids.missing(kind)}),
                    )
                    asked += 1
                    if not control.codes and nonempty_lists(control.body.get("data")):
                        problems.append(f"{who} {probe.label()}: a missing id found {control.text}")
                    for b_id in hidden[kind]:
                        answer = await ask(
                            client, token, probe.document, probe.fill({**fixed, slot: b_id})
                        )
                        asked += 1
                        where = f"{who} {probe.label()} {slot.name}={kind} {b_id}"
                        found = leaks(answer.text, markers)
                        if found:
                            problems.append(f"{where}: leaks {found}: {answer.text}")
                        if answer != control:
                            problems.append(
                                f"{where}: differs from a missing id:\n  B:       {answer.text}"
                                f"\n  missing: {control.text}"
                            )
                        token_refusal = TOKEN_FIELD_CODES.get(probe.field, frozenset())
                        if answer.codes - HIDING_CODES - token_refusal:
                            problems.append(f"{where}: unexpected {answer.text}")
                        if "NOT_FOUND" in answer.codes and kind in candidate_kinds(slot):
                            hidden_by_not_found[(probe.label(), slot.name)].add(who)

    assert not problems, f"{len(problems)} problems:\n" + "\n".join(problems[:30])
    # Not vacuous: for every id argument some principal of A got past authorization to the
    # lookup and was told NOT_FOUND (not merely FORBIDDEN, not a validation error).
    # The auditor's fields refuse every principal of A before any lookup (FORBIDDEN,
    # identical for B's and missing ids, checked above); the auditor's own NOT_FOUND
    # lookups are driven by the positive control and tests/audit.
    for probe in probes:
        if probe.field in AUDITOR_FIELDS or probe.field in TOKEN_FIELD_CODES:
            continue
        for slot in probe.slots:
            assert hidden_by_not_found[(probe.label(), slot.name)], (probe.label(), slot)
    assert asked > 300, asked
    assert snapshot_b(owner_conn, world) == before, "B changed under A's probes"


async def test_walker_baseline_a_reaches_its_own_data(
    client: httpx.AsyncClient, state: AppState, shared: World, owner_conn: psycopg.Connection[Any]
) -> None:
    """The same requests with A's own ids are answered to A's secretary (queries) or
    refused as FORBIDDEN after the lookup (mutations): NOT_FOUND in the walk is isolation,
    not a malformed request."""
    world = shared
    ids = world_ids(world, owner_conn)
    secretary = await token_for(client, world, "secA")
    auditor = await token_for(client, world, "auditor")
    problems = []
    for probe in walker_for(state, world).probes():
        if probe.variant != "required":
            continue
        if probe.field in TOKEN_FIELD_CODES:  # no usable token: TOKEN_INVALID, see above
            continue
        token = auditor if probe.field in AUDITOR_FIELDS else secretary
        if not probe.slots:
            answer = await ask(client, token, probe.document, probe.variables)
            if probe.operation == "query" and answer.codes:
                problems.append(f"{probe.label()}: {answer.text}")
            continue
        for slot in probe.slots:
            fixed = companions(probe, slot, ids)
            answers = [
                await ask(client, token, probe.document, probe.fill({**fixed, slot: ids.a[kind]}))
                for kind in candidate_kinds(slot)
            ]
            allowed = set() if probe.operation == "query" else {"FORBIDDEN"}
            allowed |= BASELINE_CODES.get(probe.field, frozenset())
            if not any(a.codes <= allowed for a in answers):
                problems.append(f"{probe.label()} {slot.name}: {[a.text for a in answers]}")
    assert not problems, "\n".join(problems)


async def test_walker_positive_control_county_sees_b(
    client: httpx.AsyncClient, state: AppState, shared: World, owner_conn: psycopg.Connection[Any]
) -> None:
    """The county organizer, whose domain holds both townships, gets B's data from the
    same query probes: the walk would notice a leak."""
    world = shared
    ids = world_ids(world, owner_conn)
    county = await token_for(client, world, "county")
    auditor = await token_for(client, world, "auditor")
    # The auditor's unfiltered list shows the newest events of every tenant: make B's
    # the newest (a denied attempt of B's own secretary, recorded in B's chain), so
    # that the first page must show B.
    denied = await gql(
        client,
        await token_for(client, world, "secB"),
        "mutation($i: CreateOrgUnitInput!) { createOrgUnit(input: $i) { orgUnit { id } } }",
        {"i": {"parentId": world.gid("B"), "kind": "BRANCH", "code": "nope", "name": "不许"}},
    )
    assert error_codes(denied) == ["FORBIDDEN"]
    seen_b: dict[str, bool] = {}
    for probe in walker_for(state, world).probes():
        if probe.operation != "query" or probe.field in SELF_FIELDS:
            continue
        if probe.field in TOKEN_FIELD_CODES:  # no usable token: TOKEN_INVALID, see above
            continue
        token = auditor if probe.field in AUDITOR_FIELDS else county
        if not probe.slots:
            answer = await ask(client, token, probe.document, probe.variables)
            seen_b[probe.field] = seen_b.get(probe.field, False) or bool(
                leaks(answer.text, ids.markers)
            )
            continue
        if probe.variant != "required":
            continue
        for slot in probe.slots:
            fixed = companions(probe, slot, ids)
            hit = False
            for kind in candidate_kinds(slot):
                for b_id in ids.b[kind]:
                    answer = await ask(
                        client, token, probe.document, probe.fill({**fixed, slot: b_id})
                    )
                    hit = hit or (not answer.codes and bool(leaks(answer.text, ids.markers)))
            seen_b[f"{probe.field}({slot.name})"] = hit
    assert seen_b and all(seen_b.values()), [k for k, v in seen_b.items() if not v]


# -- hand-written probes the issue names ------------------------------------------------

ORG_UNIT_FIELDS = "id name code kind parent { id name } tenant { id name }"
OWN_ALIASES = f"""
  mineA: orgUnit(id: $a) {{ {ORG_UNIT_FIELDS} }}
  mineA1: node(id: $a1) {{ id ... on OrgUnit {{ {ORG_UNIT_FIELDS} }} }}
  mineAccount: node(id: $acc) {{ id ... on Account {{ username homeOrgUnit {{ name }} }} }}
"""


def _error_of(body: dict[str, Any], alias: str) -> tuple[str, str]:
    [error] = [e for e in body["errors"] if e["path"][0] == alias]
    return error["extensions"]["code"], error["message"]


async def test_aliases_mixing_a_and_b_ids(
    client: httpx.AsyncClient, shared: World, owner_conn: psycopg.Connection[Any]
) -> None:
    world = shared
    token = await token_for(client, world, "secA")
    ids = world_ids(world, owner_conn)
    own = {"a": world.gid("A"), "a1": world.gid("a1"), "acc": world.account_gid("orgA")}
    head = "query($a: ID!, $a1: ID!, $acc: ID!, $x: ID!)"

    only_a = await gql(client, token, f"query($a: ID!, $a1: ID!, $acc: ID!) {{{OWN_ALIASES}}}", own)
    assert only_a.get("errors") is None, only_a
    assert only_a["data"]["mineA"]["name"] == "甲镇"
    assert only_a["data"]["mineA1"]["name"] == "甲镇第一支部"
    assert only_a["data"]["mineA1"]["parent"]["name"] == "甲镇"
    assert only_a["data"]["mineAccount"]["homeOrgUnit"]["name"] == "甲镇"

    intruders = {
        "OrgUnit": [
            ("orgUnit", world.gid("B"), ORG_UNIT_FIELDS),
            ("orgUnit", world.gid("b1"), ORG_UNIT_FIELDS),
            ("node", world.gid("B"), f"id ... on OrgUnit {{ {ORG_UNIT_FIELDS} }}"),
        ],
        "Account": [("node", world.account_gid("secB"), "id ... on Account { username }")],
        "RoleAssignment": [
            ("node", gid, "id ... on RoleAssignment { role orgUnit { name } }")
            for gid in ids.b["RoleAssignment"]
        ],
    }
    # The root fields are non-null, so an error nulls the whole `data`; what counts is
    # that A's aliases raise nothing and B's alias raises just what a missing id raises.
    for kind, calls in intruders.items():
        for root, gid, selection in calls:
            query = f"{head} {{{OWN_ALIASES} intruder: {root}(id: $x) {{ {selection} }} }}"
            body = await gql(client, token, query, {**own, "x": gid})
            missing = await gql(client, token, query, {**own, "x": Ids.missing(kind)})
            assert not leaks(json.dumps(body, ensure_ascii=False), ids.markers), body
            assert [e["path"] for e in body["errors"]] == [["intruder"]], body
            assert _error_of(body, "intruder") == _error_of(missing, "intruder"), (body, missing)
            assert _error_of(body, "intruder")[0] == "NOT_FOUND"

    # All at once: whatever errors come back belong to B's or the missing aliases.
    query = f"""query($a: ID!, $a1: ID!, $acc: ID!, $b: ID!, $b1: ID!, $x: ID!, $sb: ID!) {{
      {OWN_ALIASES}
      theirsB: orgUnit(id: $b) {{ {ORG_UNIT_FIELDS} }}
      theirsB1: node(id: $b1) {{ id ... on OrgUnit {{ {ORG_UNIT_FIELDS} }} }}
      missing: orgUnit(id: $x) {{ {ORG_UNIT_FIELDS} }}
      theirSecretary: node(id: $sb) {{ id ... on Account {{ username }} }}
    }}"""
    variables = {
        **own,
        "b": world.gid("B"),
        "b1": world.gid("b1"),
        "x": Ids.missing("OrgUnit"),
        "sb": world.account_gid("secB"),
    }
    body = await gql(client, token, query, variables)
    assert not leaks(json.dumps(body, ensure_ascii=False), ids.markers), body
    assert body["data"] is None and body["errors"], body
    for error in body["errors"]:
        assert error["path"][0] in {"theirsB", "theirsB1", "missing", "theirSecretary"}, body
        assert error["extensions"]["code"] == "NOT_FOUND", body


async def test_tenant_filters_return_nothing_of_b(
    client: httpx.AsyncClient, shared: World, owner_conn: psycopg.Connection[Any]
) -> None:
    world = shared
    ids = world_ids(world, owner_conn)
    query = """query($name: String, $kind: OrgUnitKind, $after: String, $all: Boolean!) {
      tenants(first: 100, nameContains: $name, kind: $kind, after: $after,
              includeArchived: $all) {
        edges { cursor node { id name } } nodes { id name parent { name } }
        pageInfo { hasNextPage endCursor }
      }
    }"""
    before_b = encode_cursor(world.units["B"].id - 1)  # A was created before B: past A
    # (variables, what A's committee members see); a1's branch secretary sees no tenant.
    cases: list[tuple[dict[str, Any], list[str]]] = [
        ({"name": "乙", "kind": "TOWNSHIP", "all": True}, []),
        ({"name": "乙镇", "kind": None, "all": False}, []),
        ({"name": None, "kind": "TOWNSHIP", "all": True, "after": before_b}, []),
        ({"name": None, "kind": None, "all": True, "after": encode_cursor(0)}, ["甲镇"]),
        ({"name": None, "kind": "TOWNSHIP", "all": False}, ["甲镇"]),
    ]
    for who in ("secA", "orgA", "bsA1"):
        token = await token_for(client, world, who)
        markers = ids.hidden_from(who)[1]
        for variables, expected in cases:
            body = await gql(client, token, query, variables)
            assert body.get("errors") is None, body
            assert not leaks(json.dumps(body, ensure_ascii=False), markers), (who, body)
            names = [n["name"] for n in body["data"]["tenants"]["nodes"]]
            assert names == ([] if who == "bsA1" else expected), (who, variables, names)

    # Positive control: the same filters show B to the county organizer.
    token = await token_for(client, world, "county")
    body = await gql(client, token, query, {"name": "乙", "kind": "TOWNSHIP", "all": True})
    assert [n["name"] for n in body["data"]["tenants"]["nodes"]] == ["乙镇"], body
    body = await gql(client, token, query, {"kind": "TOWNSHIP", "all": True, "after": before_b})
    assert [n["name"] for n in body["data"]["tenants"]["nodes"]] == ["乙镇"], body


async def test_children_of_b_are_not_found(client: httpx.AsyncClient, shared: World) -> None:
    world = shared
    query = """query($p: ID!) {
      children(parentId: $p, first: 100, includeArchived: true) { nodes { id name } }
    }"""
    token = await token_for(client, world, "secA")
    missing = await gql(client, token, query, {"p": Ids.missing("OrgUnit")})
    for unit in ("B", "b1"):
        body = await gql(client, token, query, {"p": world.gid(unit)})
        assert error_codes(body) == ["NOT_FOUND"], body
        assert body == missing, (body, missing)
    own = await gql(client, token, query, {"p": world.gid("A")})
    assert [n["name"] for n in own["data"]["children"]["nodes"]] == [
        "甲镇第一支部",
        "甲镇第二支部",
        "甲镇企业党总支",
    ]
    # Positive control.
    county = await token_for(client, world, "county")
    body = await gql(client, county, query, {"p": world.gid("B")})
    assert [n["name"] for n in body["data"]["children"]["nodes"]] == ["乙镇第一支部"]


MUTATIONS = {
    "rename": """mutation($input: RenameOrgUnitInput!) {
      renameOrgUnit(input: $input) { orgUnit { id name } } }""",
    "archive": """mutation($input: ArchiveOrgUnitInput!) {
      archiveOrgUnit(input: $input) { orgUnit { id archived } } }""",
    "create": """mutation($input: CreateOrgUnitInput!) {
      createOrgUnit(input: $input) { orgUnit { id name } } }""",
    "account": """mutation($input: CreateAccountInput!) {
      createAccount(input: $input) { account { id username } } }""",
    "assign": """mutation($input: AssignRoleInput!) {
      assignRole(input: $input) { roleAssignment { id role } } }""",
    "revoke": """mutation($input: RevokeRoleInput!) {
      revokeRole(input: $input) { roleAssignment { id role } } }""",
}


async def test_mutations_of_org_a_against_b_fail_and_change_nothing(
    client: httpx.AsyncClient, world: World, owner_conn: psycopg.Connection[Any]
) -> None:
    token = await login(client, world.user("orgA"))
    ids = world_ids(world, owner_conn)
    missing_unit = Ids.missing("OrgUnit")
    b_role = role_assignment_gid(owner_conn, world, "secB", "B")
    new_account = {"username": f"{world.tag}.intruder", "displayName": "入侵", "password": PASSWORD}
    member = {"accountId": world.account_gid("memA1"), "role": "MEMBER"}
    # (mutation, input with B's id, the same input with an id that does not exist)
    attempts: list[tuple[str, dict[str, Any], dict[str, Any]]] = []
    for unit in ("B", "b1"):
        gid = world.gid(unit)
        new_unit = {"kind": "BRANCH", "code": "x1", "name": "入侵支部"}
        attempts += [
            ("rename", {"id": gid, "name": "被改名"}, {"id": missing_unit, "name": "被改名"}),
            ("archive", {"id": gid}, {"id": missing_unit}),
            ("create", {**new_unit, "parentId": gid}, {**new_unit, "parentId": missing_unit}),
            (
                "account",
                {**new_account, "homeOrgUnitId": gid},
                {**new_account, "homeOrgUnitId": missing_unit},
            ),
            ("assign", {**member, "orgUnitId": gid}, {**member, "orgUnitId": missing_unit}),
        ]
    at_a1 = {"role": "MEMBER", "orgUnitId": world.gid("a1")}
    attempts += [
        (
            "assign",
            {**at_a1, "accountId": world.account_gid("secB")},
            {**at_a1, "accountId": Ids.missing("Account")},
        ),
        (
            "revoke",
            {"roleAssignmentId": b_role},
            {"roleAssignmentId": Ids.missing("RoleAssignment")},
        ),
    ]
    before = snapshot_b(owner_conn, world)
    for name, attack, control in attempts:
        body = await gql(client, token, MUTATIONS[name], {"input": attack})
        expected = await gql(client, token, MUTATIONS[name], {"input": control})
        assert error_codes(body) == ["NOT_FOUND"], (name, attack, body)
        assert body == expected, (name, body, expected)
        assert not leaks(json.dumps(body, ensure_ascii=False), ids.markers), body
    assert snapshot_b(owner_conn, world) == before

    # Positive control: the same organizer may do these things inside A.
    renamed = await gql(
        client, token, MUTATIONS["rename"], {"input": {"id": world.gid("a2"), "name": "甲镇二支"}}
    )
    assert renamed.get("errors") is None, renamed
    assert renamed["data"]["renameOrgUnit"]["orgUnit"]["name"] == "甲镇二支"


async def test_branch_secretary_sees_only_own_branch(
    client: httpx.AsyncClient, shared: World, owner_conn: psycopg.Connection[Any]
) -> None:
    world = shared
    token = await token_for(client, world, "bsA1")
    node = "query($id: ID!) { node(id: $id) { id ... on OrgUnit { name } } }"
    org_unit = "query($id: ID!) { orgUnit(id: $id) { id name } }"
    missing = {kind: await gql(client, token, node, {"id": Ids.missing(kind)}) for kind in KINDS}
    missing_org_unit = await gql(client, token, org_unit, {"id": Ids.missing("OrgUnit")})
    assert error_codes(missing["OrgUnit"]) == ["NOT_FOUND"]

    hidden = {
        "OrgUnit": [world.gid(u) for u in ("a2", "ag", "a3", "A", "county", "B", "b1")],
        "Account": [world.account_gid(w) for w in ("secA", "orgA", "county", "secB")],
        "RoleAssignment": [
            role_assignment_gid(owner_conn, world, "secA", "A"),
            role_assignment_gid(owner_conn, world, "secB", "B"),
        ],
    }
    for kind, gids in hidden.items():
        for gid in gids:
            body = await gql(client, token, node, {"id": gid})
            assert body == missing[kind], (kind, gid, body)
            if kind == "OrgUnit":
                body = await gql(client, token, org_unit, {"id": gid})
                assert body == missing_org_unit, (gid, body)
    children_of_a = await gql(
        client,
        token,
        "query($p: ID!) { children(parentId: $p) { nodes { name } } }",
        {"p": world.gid("A")},
    )
    assert error_codes(children_of_a) == ["NOT_FOUND"]

    # Own branch: readable, but its parent (the township) is not shown.
    own = await gql(
        client,
        token,
        "query($id: ID!) { orgUnit(id: $id) { name parent { name } tenant { name } } }",
        {"id": world.gid("a1")},
    )
    assert own.get("errors") is None, own
    assert own["data"]["orgUnit"] == {"name": "甲镇第一支部", "parent": None, "tenant": None}
    tenants = await gql(client, token, "{ tenants(first: 100) { nodes { name } } }")
    assert tenants["data"]["tenants"]["nodes"] == []


async def test_cross_tenant_grant_of_an_a_account_is_not_shown_to_a(
    client: httpx.AsyncClient, state: AppState, world: World, owner_conn: psycopg.Connection[Any]
) -> None:
    """memA1 also becomes a member in B's branch: A's secretary reading memA1 sees the
    grant in A and not the one in B (its id, its unit, its existence)."""
    async with state.db.transaction() as tx:
        op = await operator_principal(tx, name="tests")
        grant = await assign_role(
            tx,
            op,
            account_id=world.accounts["memA1"],
            role=Role.MEMBER,
            org_unit_id=world.units["b1"].id,
        )
    b_grant = to_global_id("RoleAssignment", grant.id)
    ids = world_ids(world, owner_conn)
    query = """query($id: ID!) { node(id: $id) { ... on Account {
      username roleAssignments(first: 100) {
        edges { cursor node { id role orgUnit { id name } } } nodes { id } } } } }"""
    for who in ("secA", "orgA"):
        token = await login(client, world.user(who))
        body = await gql(client, token, query, {"id": world.account_gid("memA1")})
        assert body.get("errors") is None, body
        text = json.dumps(body, ensure_ascii=False)
        assert b_grant not in text and not leaks(text, ids.markers), text
        nodes = body["data"]["node"]["roleAssignments"]["edges"]
        assert [(n["node"]["role"], n["node"]["orgUnit"]["name"]) for n in nodes] == [
            ("MEMBER", "甲镇第一支部")
        ]
        direct = await gql(
            client, token, "query($id: ID!) { node(id: $id) { id } }", {"id": b_grant}
        )
        assert error_codes(direct) == ["NOT_FOUND"], direct

    # memA1 itself sees both of its grants (positive control).
    token = await login(client, world.user("memA1"))
    body = await gql(client, token, "{ me { roleAssignments { nodes { id orgUnit { name } } } } }")
    names = sorted(n["orgUnit"]["name"] for n in body["data"]["me"]["roleAssignments"]["nodes"])
    assert names == sorted(["乙镇第一支部", "甲镇第一支部"]), body


@pytest.mark.parametrize("who", ["county", "security", "sysadmin"])
async def test_county_level_roles_see_both_townships(
    client: httpx.AsyncClient, shared: World, who: str
) -> None:
    """Positive control of the whole suite: a role held above both tenants sees both."""
    world = shared
    token = await token_for(client, world, who)
    body = await gql(
        client,
        token,
        "query($a: ID!, $b: ID!) { a: orgUnit(id: $a) { name } b: orgUnit(id: $b) { name } }",
        {"a": world.gid("a1"), "b": world.gid("b1")},
    )
    assert body.get("errors") is None, body
    assert body["data"] == {"a": {"name": "甲镇第一支部"}, "b": {"name": "乙镇第一支部"}}
