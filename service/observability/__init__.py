"""Observability: one JSON log line, metrics and (optionally) a span per request.

The edge middleware (service/app.py) calls `Observer.start` when a request arrives and
`Observer.finish` when it has been answered; what only the GraphQL view knows travels
in the ASGI scope, set by the view without computing anything:

- `pingyi.principal`: the request's Principal (account id, home tenant);
- `pingyi.operation_key`: `(query, operationName)` as sent; the operation's label is
  looked up after the answer, from the schema's prepared documents (so only documents
  that passed validation name a label; anything else is `unvalidated`);
- `pingyi.outcome`: the first error's `extensions.code` (errors counted by code in
  `note_errors`); without it, a refusal's code is read from its JSON body
  (`capture`, only for answers of status 400 and above), else `OK` or `HTTP_<status>`.

Measured cost (`bench/observe.py`): see README "Observability".
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import orjson
from graphql import FieldNode, OperationDefinitionNode

from service.observability.logs import access_line
from service.observability.metrics import Metrics
from service.observability.tracing import Tracing, build_tracing

__all__ = ["Metrics", "Observer", "Tracing", "build_tracing", "operation_label"]

UNVALIDATED = "unvalidated"
# Refusal bodies are small JSON; past this much nothing is kept to parse.
_CAPTURE_LIMIT = 4096


def operation_label(document: Any, operation_name: str | None) -> str:
    """The operation's name, or for an anonymous one its type and root fields
    (`query me,tenants`): schema names, so bounded."""
    for definition in document.definitions:
        if not isinstance(definition, OperationDefinitionNode):
            continue
        name = definition.name.value if definition.name else None
        if operation_name is not None and name != operation_name:
            continue
        if name:
            return name
        fields = sorted(
            {s.name.value for s in definition.selection_set.selections if isinstance(s, FieldNode)}
        )
        return f"{definition.operation.value} {','.join(fields)}"
    return UNVALIDATED


class Observer:
    def __init__(self, metrics: Metrics, tracing: Tracing | None = None) -> None:
        self.metrics = metrics
        self.tracing = tracing
        # The GraphQL schema whose prepared documents name operations (create_app)
        self.schema: Any = None
        self._labels: dict[tuple[str, str | None], str] = {}

    # --- per request ------------------------------------------------------------------

    def start(self, scope: dict[str, Any], headers: dict[str, str]) -> Any:
        if self.tracing is None:
            return None
        return self.tracing.start(scope.get("method", "GET"), headers)

    def capture(self, scope: dict[str, Any], body: bytes) -> None:
        """Keep the start of a refusal's body (status >= 400) to read its code."""
        if "pingyi.outcome" in scope:
            return
        kept = scope.get("pingyi.refusal", b"")
        if len(kept) < _CAPTURE_LIMIT:
            scope["pingyi.refusal"] = kept + body[: _CAPTURE_LIMIT - len(kept)]

    def note_errors(self, scope: dict[str, Any], errors: Iterable[dict[str, Any]]) -> None:
        """The GraphQL answer's errors, as formatted for the client (the view)."""
        first = None
        for error in errors:
            code = (error.get("extensions") or {}).get("code") or "INTERNAL_SERVER_ERROR"
            self.metrics.error(code)
            if first is None:
                first = code
        if first is not None:
            scope["pingyi.outcome"] = first

    def finish(
        self, scope: dict[str, Any], path: str, status: int, seconds: float, span: Any
    ) -> None:
        metrics = self.metrics
        metrics.http_request(path, status, seconds)
        outcome = scope.get("pingyi.outcome")
        if outcome is None:
            if status < 400:
                outcome = "OK"
            else:
                outcome = _refusal_code(scope.get("pingyi.refusal")) or f"HTTP_{status}"
                metrics.error(outcome)
        key = scope.get("pingyi.operation_key")
        operation = None
        if key is not None:
            operation = self._label(key)
            metrics.operation(operation, seconds)
        principal = scope.get("pingyi.principal")
        if principal is not None:
            account_id = principal.account_id
            account = principal.account
            tenant_id = account.home_tenant_id if account is not None else _sole(principal)
        else:
            claims = scope.get("pingyi.claims")
            account_id = getattr(claims, "account_id", None)
            tenant_id = None
        request_id = scope.get("pingyi.request_id", "")
        method = scope.get("method", "")
        access_line(
            request_id=request_id,
            method=method,
            path=path,
            status=status,
            operation=operation,
            outcome=outcome,
            account_id=account_id,
            tenant_id=tenant_id,
            seconds=seconds,
        )
        if span is not None and self.tracing is not None:
            self.tracing.finish(
                span,
                method=method,
                path=path,
                status=status,
                operation=operation,
                outcome=outcome,
                request_id=request_id,
                account_id=account_id,
            )

    async def websocket(
        self,
        scope: dict[str, Any],
        receive: Callable[[], Awaitable[Any]],
        send: Callable[[Any], Awaitable[None]],
        app: Callable[..., Awaitable[None]],
    ) -> None:
        """Serve one WebSocket connection (subscriptions), counted while open, and one
        line when it ends: method `WS`, status the close code, outcome `OK` for a
        normal close (1000, 1001, 1005) else `WS_<code>`, duration the connection's."""
        started = time.perf_counter()
        closed: list[int] = []

        async def watched_send(message: Any) -> None:
            if message["type"] == "websocket.close" and not closed:
                closed.append(int(message.get("code") or 1000))
            await send(message)

        async def watched_receive() -> Any:
            message = await receive()
            if message["type"] == "websocket.disconnect" and not closed:
                closed.append(int(message.get("code") or 1005))
            return message

        metrics = self.metrics
        metrics.websockets_open += 1
        try:
            await app(scope, watched_receive, watched_send)
        finally:
            metrics.websockets_open -= 1
            code = closed[0] if closed else 1006  # ended without a close: abnormal
            outcome = "OK" if code in (1000, 1001, 1005) else f"WS_{code}"
            metrics.websocket_closed(outcome)
            route = scope.get("route")
            path = getattr(route, "path", None) or "other"
            principal = scope.get("pingyi.principal")
            account = getattr(principal, "account", None)
            access_line(
                request_id=scope.get("pingyi.request_id", ""),
                method="WS",
                path=path,
                status=code,
                operation=None,
                outcome=outcome,
                account_id=getattr(principal, "account_id", None),
                tenant_id=None if account is None else account.home_tenant_id,
                seconds=time.perf_counter() - started,
            )

    def _label(self, key: tuple[str, str | None]) -> str:
        found = self._labels.get(key)
        if found is not None:
            return found
        prepared = getattr(self.schema, "prepared", None)
        document = prepared(*key) if prepared is not None else None
        if document is None:
            return UNVALIDATED  # not kept: the same text may validate later
        label = operation_label(document.document, key[1])
        if len(self._labels) >= 256:
            # As many texts as the schema keeps prepared (each may be up to the body
            # limit): start again, cheaply, rather than hold more
            self._labels.clear()
        self._labels[key] = label
        return label


def _sole(principal: Any) -> int | None:
    tenants = principal.tenant_ids
    return next(iter(tenants)) if len(tenants) == 1 else None


def _refusal_code(body: bytes | None) -> str | None:
    """The stable code of a refusal's JSON body: a GraphQL error's `extensions.code`,
    or the `code` of an /auth refusal (an OAuth-style body, `service.auth.routes`)."""
    if not body:
        return None
    try:
        answer = orjson.loads(body)
        errors = answer.get("errors")
        code = errors[0]["extensions"]["code"] if errors is not None else answer["code"]
    except (orjson.JSONDecodeError, AttributeError, LookupError, TypeError):
        return None
    return code if isinstance(code, str) and code.isupper() and len(code) <= 64 else None
