"""The `graphql-transport-ws` protocol on /graphql, as Pingyi speaks it.

Strawberry's handler does the protocol (connection_init within a time limit,
connection_ack, ping/pong, subscribe/next/error/complete, 4400/4401/4403/4408/4409/4429
closes). What this adds:

- only subscriptions: a query or mutation sent over the socket is answered with an
  `error` (SUBSCRIPTIONS_ONLY); over HTTP POST each is one unit of work with its commit,
  which a long-lived socket has no place for;
- errors formatted as on HTTP (`root.format_error`: coded errors as they are, anything
  unexpected masked), and an error that ends the stream (EVENTS_INTERRUPTED, say) sent
  as the protocol's terminal `error` message rather than a `next`;
- trusted documents (service/schema/persisted.py) as over HTTP: in that mode a
  `subscribe` whose document (text, or `extensions.persistedQuery`) is not in the
  manifest is answered with an `error` (PERSISTED_QUERY_NOT_IN_LIST) and never runs;
- nothing is sent once the connection is closed (a revoked session closes it from
  another task while events may be in flight).
"""

from __future__ import annotations

import logging
from contextlib import suppress
from typing import Any

import orjson
from graphql import GraphQLError
from starlette.websockets import WebSocketDisconnect
from strawberry.http.exceptions import WebSocketDisconnected
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
    Operation,
)
from strawberry.types.execution import ExecutionResult, PreExecutionError
from strawberry.types.graphql import OperationType
from strawberry.utils.aio import aclosing

from service.errors import INVALID_REQUEST, DomainError
from service.events.errors import SUBSCRIPTIONS_ONLY
from service.schema.root import format_error

log = logging.getLogger("pingyi.graphql")


def format_ws_error(error: GraphQLError) -> dict[str, Any]:
    original = error.original_error
    if isinstance(original, InvalidOperationTypeError):
        exc = SUBSCRIPTIONS_ONLY.error()
        return {"message": exc.message, "extensions": {"code": exc.code}}
    if isinstance(original, CannotGetOperationTypeError):
        exc = INVALID_REQUEST.error("找不到要执行的操作（检查 operationName）")
        return {"message": exc.message, "extensions": {"code": exc.code}}
    return format_error(error)


class PingyiTransportWSHandler(BaseGraphQLTransportWSHandler[Any, Any]):
    async def send_message(self, message: Any) -> None:
        if getattr(self.context, "closed", False):
            raise WebSocketDisconnected()
        try:
            # A text frame: graphql-transport-ws messages are JSON text. Strawberry sends
            # what the view's encoder returns, and orjson returns bytes: a binary frame,
            # which the graphql-ws client does not parse ("Message is missing the 'type'
            # property"; a browser hands it over as a Blob).
            await self.websocket.ws.send_text(orjson.dumps(message).decode())
        except WebSocketDisconnect as exc:
            raise WebSocketDisconnected() from exc
        except RuntimeError as exc:  # Starlette: the socket was closed meanwhile
            raise WebSocketDisconnected() from exc

    async def handle_subscribe(self, message: Any) -> None:
        """Strawberry's, the document resolved by the trusted manifest first (if there
        is one). A refusal rides in the operation in place of its document, so it is
        answered as that subscription's `error` after strawberry's own checks (an
        unacknowledged connection, a duplicate id, too many subscriptions)."""
        persisted = getattr(self.view, "persisted", None)
        payload = message.get("payload") if isinstance(message, dict) else None
        if persisted is not None and persisted.trusted is not None and isinstance(payload, dict):
            resolved: Any
            try:
                resolved = await persisted.resolve_request(
                    payload.get("query"), payload.get("extensions"), register=False
                )
            except DomainError as exc:
                resolved = exc
            if resolved is not None:
                message = {**message, "payload": {**payload, "query": resolved}}
        await super().handle_subscribe(message)

    async def run_operation(self, operation: Operation[Any, Any]) -> None:
        if isinstance(operation.query, DomainError):  # not in the trusted manifest
            refusal = operation.query
            with suppress(WebSocketDisconnected):
                await self._send_error(
                    operation, [GraphQLError(refusal.message, original_error=refusal)]
                )
            self.operations.pop(operation.id, None)
            return
        try:
            source = await self.schema.stream(
                operation.query,
                variable_values=operation.variables,
                context_value=self.context,
                root_value=self.root_value,
                operation_name=operation.operation_name,
                allowed_operation_types=(OperationType.SUBSCRIPTION,),
            )
            async with aclosing(source):
                async for result in source:
                    if not isinstance(result, ExecutionResult):  # incremental delivery
                        refusal = INVALID_REQUEST.error("订阅不支持 @defer/@stream")
                        await self._send_error(
                            operation, [GraphQLError(refusal.message, original_error=refusal)]
                        )
                        return
                    if result.errors and (
                        isinstance(result, PreExecutionError) or result.data is None
                    ):
                        # Refused before it started, or ended by an error: terminal.
                        await self._send_error(operation, result.errors)
                        return
                    payload: dict[str, Any] = {"data": result.data}
                    if result.errors:
                        payload["errors"] = [format_ws_error(e) for e in result.errors]
                    await operation.send_operation_message(
                        {"id": operation.id, "type": "next", "payload": payload}
                    )
            await operation.send_operation_message({"id": operation.id, "type": "complete"})
        except WebSocketDisconnected:
            self.operations.pop(operation.id, None)
        except Exception as error:
            log.error("subscription failed", exc_info=error)
            with suppress(Exception):
                await self._send_error(operation, [GraphQLError("internal", original_error=error)])
            self.operations.pop(operation.id, None)

    async def _send_error(self, operation: Operation[Any, Any], errors: list[Any]) -> None:
        await operation.send_operation_message(
            {
                "id": operation.id,
                "type": "error",
                "payload": [format_ws_error(e) for e in errors],
            }
        )
