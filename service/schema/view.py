"""The /graphql endpoint: the principal, one unit of work per request, JSON out.

The principal comes from the per-process cache (no statement; its guard rides in the
request's first message) or, on a miss, from one statement of its own. The request's
`Transaction` carries the principal's scope with its first statement (see service.db):
a query costs one round trip per dependent read, a mutation the same plus its COMMIT.
A guard that fails voids the run, which starts once more with a fresh principal.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson
from graphql import ExecutionResult, GraphQLError
from starlette.requests import Request
from strawberry.asgi import GraphQL
from strawberry.http import GraphQLHTTPResponse

from service.auth.service import RequestPrincipal, principal_for_request
from service.db import Transaction
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
        use_cache = True
        while True:
            try:
                if claims is None:
                    raise unauthenticated()
                loaded = await principal_for_request(
                    state.db,
                    claims,
                    cache=state.principals,
                    request_id=request.scope.get("pingyi.request_id", ""),
                    use_cache=use_cache,
                )
            except DomainError as exc:
                sub_response.status_code = exc.http_status
                return _failure(exc)
            result, tx = await self._run_once(
                request, request_adapter, request_data, root_value, sub_response, loaded
            )
            if not tx.stale:
                return result
            # The cached principal was out of date (its notification had not arrived):
            # nothing of this run counts. Once more with the principal read afresh.
            state.principals.invalidate(f"session:{claims.session_id}")
            use_cache = False

    async def _run_once(
        self,
        request: Request,
        request_adapter: Any,
        request_data: Any,
        root_value: Any,
        sub_response: Any,
        loaded: RequestPrincipal,
    ) -> tuple[Any, Transaction]:
        """Execute the operation in one unit of work; (result, its transaction)."""
        state = request.app.state.pingyi
        principal = loaded.principal
        tx = state.db.begin(principal.scope, write=False, guard=loaded.guard)
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
            results = result if isinstance(result, list) else [result]
            failed = any(getattr(r, "errors", None) for r in results)
            # A request that sent no statement (answered from the principal alone, or
            # refused before reading) sends the guard now: its answer must count too.
            failed = not await tx.confirm() or failed
        except BaseException:
            await tx.finish(commit=False)
            raise
        if failed:
            await tx.finish(commit=False)
            return result, tx
        try:
            await tx.finish(commit=True)
        except Exception as exc:  # the commit itself failed: nothing was written
            log.error("commit failed", exc_info=exc)
            return _failure(exc), tx
        return result, tx

    async def process_result(self, request: Any, result: ExecutionResult) -> GraphQLHTTPResponse:
        data: GraphQLHTTPResponse = {"data": result.data}
        if result.errors:
            data["errors"] = [format_error(e) for e in result.errors]
        return data
