"""The /graphql endpoint: one transaction per request, scoped to the principal."""

from __future__ import annotations

from typing import Any

from graphql import ExecutionResult, GraphQLError
from starlette.requests import Request
from strawberry.asgi import GraphQL
from strawberry.http import GraphQLHTTPResponse

from service.auth.service import load_principal
from service.errors import DomainError, unauthenticated
from service.schema import format_error
from service.schema.context import Context


class PingyiGraphQL(GraphQL):
    """Strawberry's ASGI view, with the request's transaction around execution.

    The transaction commits when the operation produced no error and rolls back
    otherwise, so a failed mutation leaves nothing half-written. It commits before the
    response is sent.
    """

    async def get_context(self, request: Any, response: Any = None) -> Any:
        # The real Context needs the transaction, which execute_operation opens.
        return None

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
        claims = request.scope.get("pingyi.claims")
        session = state.db.sessionmaker()
        try:
            await session.begin()
            try:
                if claims is None:
                    raise unauthenticated()
                principal = await load_principal(
                    session, claims, request_id=request.scope.get("pingyi.request_id", "")
                )
            except DomainError as exc:
                sub_response.status_code = exc.http_status
                return ExecutionResult(
                    data=None, errors=[GraphQLError(exc.message, original_error=exc)]
                )
            ctx = Context(
                session=session,
                principal=principal,
                settings=state.settings,
                request=request,
                response=sub_response,
            )
            result = await super().execute_operation(
                request, request_adapter, request_data, ctx, root_value, sub_response
            )
            results = result if isinstance(result, list) else [result]
            if any(getattr(r, "errors", None) for r in results):
                await session.rollback()
            else:
                await session.commit()
            return result
        finally:
            await session.close()

    async def process_result(self, request: Any, result: ExecutionResult) -> GraphQLHTTPResponse:
        data: GraphQLHTTPResponse = {"data": result.data}
        if result.errors:
            data["errors"] = [format_error(e) for e in result.errors]
        return data
