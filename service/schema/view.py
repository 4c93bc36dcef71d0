"""The /graphql endpoint: the principal, one unit of work per request, JSON out.

The principal comes from the per-process cache (no statement) or, on a miss, from one
statement of its own. The request's `Transaction` then carries the principal's scope
with its first statement (see service.db): a query costs one round trip per dependent
read, a mutation the same plus its COMMIT.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson
from graphql import ExecutionResult, GraphQLError
from starlette.requests import Request
from strawberry.asgi import GraphQL
from strawberry.http import GraphQLHTTPResponse

from service.auth.service import load_principal
from service.errors import DomainError, unauthenticated
from service.schema.context import Context
from service.schema.root import format_error

log = logging.getLogger("pingyi.graphql")


def _failure(exc: Exception) -> ExecutionResult:
    message = exc.message if isinstance(exc, DomainError) else "commit failed"
    return ExecutionResult(data=None, errors=[GraphQLError(message, original_error=exc)])


class PingyiGraphQL(GraphQL):
    """Strawberry's ASGI view, with the request's unit of work around execution.

    A mutation commits when it produced no error and rolls back otherwise, so a
    failed mutation leaves nothing half-written; it commits before the response is
    sent.
    """

    async def get_context(self, request: Any, response: Any = None) -> Any:
        # The real Context needs the principal, which execute_operation loads.
        return None

    def encode_json(self, data: object) -> bytes:
        # orjson: several times faster than json.dumps, and UTF-8 rather than \u escapes.
        return orjson.dumps(data)

    async def execute_operation(  # type: ignore[override]
        self,
        request: Request,
        request_adapter: Any,
        request_data: Any,
        context: Any,
        root_value: Any,
        sub_response: Any,
    ) -> Any:
        state = request.app.state.pingyi
        state.principals.start()
        claims = request.scope.get("pingyi.claims")
        try:
            if claims is None:
                raise unauthenticated()
            principal = await load_principal(
                state.db,
                claims,
                cache=state.principals,
                request_id=request.scope.get("pingyi.request_id", ""),
            )
        except DomainError as exc:
            sub_response.status_code = exc.http_status
            return _failure(exc)
        tx = state.db.begin(principal.scope, write=False)
        ctx = Context(
            tx=tx,
            principal=principal,
            settings=state.settings,
            request=request,
            response=sub_response,
        )
        try:
            result = await super().execute_operation(
                request, request_adapter, request_data, ctx, root_value, sub_response
            )
        except BaseException:
            await tx.finish(commit=False)
            raise
        results = result if isinstance(result, list) else [result]
        if any(getattr(r, "errors", None) for r in results):
            await tx.finish(commit=False)
            return result
        try:
            await tx.finish(commit=True)
        except Exception as exc:  # the commit itself failed: nothing was written
            log.error("commit failed", exc_info=exc)
            return _failure(exc)
        return result

    async def process_result(self, request: Any, result: ExecutionResult) -> GraphQLHTTPResponse:
        data: GraphQLHTTPResponse = {"data": result.data}
        if result.errors:
            data["errors"] = [format_error(e) for e in result.errors]
        return data
