"""The GraphQL schema: types, root fields, limits and error handling."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import strawberry
from graphql import GraphQLError
from strawberry.extensions import AddValidationRules, MaxTokensLimiter, ParserCache, ValidationCache
from strawberry.schema.config import StrawberryConfig
from strawberry.types import ExecutionContext

from service.config import Settings
from service.errors import DomainError
from service.schema.limits import NoIntrospectionRule, alias_limit_rule, depth_limit_rule
from service.schema.mutation import Mutation
from service.schema.query import Query
from service.schema.types import Account, OrgUnit, RoleAssignment

log = logging.getLogger("pingyi.graphql")

SCHEMA_FILE = Path(__file__).resolve().parent.parent.parent / "schema.graphql"
VALIDATION_CACHE_SIZE = 256


class PingyiSchema(strawberry.Schema):
    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        # Coded errors are expected answers, not incidents: log only the unexpected,
        # whose text stays on the server (it may hold personal data).
        for error in errors:
            original = error.original_error
            if original is not None and not isinstance(original, DomainError | GraphQLError):
                log.error("unexpected error in %s", error.path, exc_info=original)


def build_schema(settings: Settings) -> PingyiSchema:
    rules: list[Any] = [
        depth_limit_rule(settings.max_query_depth),
        alias_limit_rule(settings.max_aliases),
    ]
    if not settings.dev_mode:
        rules.append(NoIntrospectionRule)
    return PingyiSchema(
        query=Query,
        mutation=Mutation,
        types=[OrgUnit, Account, RoleAssignment],
        config=StrawberryConfig(disable_field_suggestions=not settings.dev_mode),
        # Factories build fresh extensions per request, but over the same rule classes
        # (made once above), so the validation cache key stays equal across requests.
        extensions=[
            lambda: MaxTokensLimiter(max_token_count=settings.max_tokens),
            lambda: ParserCache(maxsize=VALIDATION_CACHE_SIZE),
            lambda: AddValidationRules(rules),
            lambda: ValidationCache(maxsize=VALIDATION_CACHE_SIZE),
        ],
    )


def format_error(error: GraphQLError) -> dict[str, Any]:
    """What the client sees of an error: coded errors as they are, the rest masked."""
    original = error.original_error
    out: dict[str, Any] = {}
    if isinstance(original, DomainError):
        out = {"message": original.message, "extensions": {"code": original.code}}
    elif original is None:
        code = (error.extensions or {}).get("code")
        message = error.message
        if code is None:
            if "tokens" in message and "Parsing aborted" in message:
                code, message = "QUERY_TOO_LARGE", "查询过长，超过词法单元上限"
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
