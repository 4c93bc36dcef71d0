"""The /graphql endpoint: the principal, one unit of work per request, JSON out.

The principal comes from the per-process cache (no statement; its guard rides in the
request's first message) or, on a miss, from one statement of its own. The request's
`Transaction` carries the principal's scope with its first statement (see service.db):
a query costs one round trip per dependent read, a mutation the same plus its COMMIT.
A guard that fails voids the run, which starts once more with a fresh principal.

File uploads (`multipart/form-data`, the GraphQL multipart request spec) are accepted
only with a bearer token and are parsed before strawberry sees them (`_read_upload_form`);
the edge gives them `max_upload_bytes` instead of `max_body_bytes` (service/app.py).

Without an account a request may run only the mass representatives' token ballot
(`tokenBallot`, `castTokenBallot`: `token_ballot_only`), as a principal with no grants
and no tenant; the token itself scopes the transaction (service/evaluations/service.py).
"""

from __future__ import annotations

import logging
from typing import Any

import orjson
from cross_web import HTTPException as StrawberryHTTPException
from graphql import (
    ExecutionResult,
    FieldNode,
    GraphQLError,
    OperationDefinitionNode,
    OperationType,
    parse,
)
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.exceptions import ConnectionRejectionError
from strawberry.http import GraphQLHTTPResponse, GraphQLRequestData
from strawberry.types.unset import UNSET

from service.audit.service import audit_denials
from service.auth.principal import Principal
from service.auth.service import RequestPrincipal, principal_for_request
from service.db import Transaction
from service.errors import (
    INVALID_INPUT,
    INVALID_REQUEST,
    METHOD_NOT_ALLOWED,
    NOT_FOUND,
    REQUEST_TOO_LARGE,
    STATEMENT_TIMEOUT,
    UNAVAILABLE,
    UNSUPPORTED_MEDIA_TYPE,
    DomainError,
    has_invalid_text,
    unauthenticated,
)
from service.evaluations.graphql import TOKEN_FIELDS
from service.schema.context import Context
from service.schema.root import format_error
from service.schema.subscriptions import SubscriptionConnection
from service.schema.transport import PingyiTransportWSHandler

log = logging.getLogger("pingyi.graphql")

_PLAIN_KEYS = frozenset({"query", "variables", "operationName", "extensions"})
# Answers worth retrying: 503 with Retry-After (seconds).
_RETRY_CODES = frozenset({UNAVAILABLE.code, STATEMENT_TIMEOUT.code})
RETRY_AFTER_SECONDS = 5


def _failure(exc: Exception) -> ExecutionResult:
    message = exc.message if isinstance(exc, DomainError) else "commit failed"
    return ExecutionResult(data=None, errors=[GraphQLError(message, original_error=exc)])


def _mark_retry(result: ExecutionResult, sub_response: Any) -> None:
    """A busy database (no connection in time) or a statement over its time limit
    answers 503 with Retry-After, so clients and proxies back off instead of retrying
    at once."""
    for error in result.errors or ():
        original = error.original_error
        if isinstance(original, DomainError) and original.code in _RETRY_CODES:
            sub_response.status_code = 503
            sub_response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
            return


def _is_upload(request: Any) -> bool:
    if not isinstance(request, Request) or request.method != "POST":
        return False
    media_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    return media_type == "multipart/form-data"


def _refusal(exc: DomainError) -> Response:
    return Response(
        orjson.dumps({"errors": [{"message": exc.message, "extensions": {"code": exc.code}}]}),
        status_code=exc.http_status,
        media_type="application/json",
    )


# Strawberry's transport refusals (plain text in English) -> what the client is told.
_TRANSPORT_REASONS = {
    "Batching is not enabled": "不支持批量请求，每次请求只能包含一个操作",
    "Unable to parse request body as JSON": "请求体不是有效的 JSON",
    "No GraphQL query found in the request": "请求中没有 GraphQL 查询",
    "Unable to parse the multipart body": "上传请求格式无效（应为 GraphQL multipart 请求）",
}


def transport_error(status: int, reason: str = "") -> DomainError:
    """The coded JSON error for a refusal of /graphql below GraphQL itself (method,
    content type, a body that is no single GraphQL request), so every answer of the
    endpoint is JSON with `extensions.code`."""
    if status == 405:
        return METHOD_NOT_ALLOWED.error()
    if status == 415 or reason == "Unsupported content type":
        return UNSUPPORTED_MEDIA_TYPE.error()
    if status == 404:
        return NOT_FOUND.error(what="页面")
    if status == 413:
        return REQUEST_TOO_LARGE.error("请求体过大")
    if status == 503:
        return UNAVAILABLE.error()
    return INVALID_REQUEST.error(_TRANSPORT_REASONS.get(reason, INVALID_REQUEST.message))


async def _client_gone(request: Any) -> bool:
    """Whether the client closed the connection (its body was read already, so the
    next ASGI message can only be the disconnect; `is_disconnected` does not wait)."""
    if not isinstance(request, Request):
        return False
    return await request.is_disconnected()


# Who asks without an account: no grants, no tenant; the token ballot's service scopes
# the transaction to the token's tenant itself (service/evaluations/service.py).
TOKEN_HOLDER = Principal(account_id=None, username="anonymous", grants=(), tenant_ids=frozenset())


def token_ballot_only(request_data: Any) -> bool:
    """Whether the request is one operation whose root fields are all the token ballot's
    (`tokenBallot`, `castTokenBallot`): the only GraphQL a request without an account
    may run. No fragments, no other operation in the document."""
    query = getattr(request_data, "query", None)
    if not isinstance(query, str):
        return False
    try:
        document = parse(query)
    except GraphQLError:
        return False
    if len(document.definitions) != 1:
        return False
    operation = document.definitions[0]
    if not isinstance(operation, OperationDefinitionNode) or operation.operation not in (
        OperationType.QUERY,
        OperationType.MUTATION,
    ):
        return False
    return all(
        isinstance(node, FieldNode) and node.name.value in TOKEN_FIELDS
        for node in operation.selection_set.selections
    )


class PingyiGraphQL(GraphQL):
    """Strawberry's ASGI view, with the request's unit of work around execution.

    A mutation commits when it produced no error and rolls back otherwise, so a
    failed mutation leaves nothing half-written; it commits before the response is
    sent.
    """

    # Subscriptions over WebSocket (`graphql-transport-ws`): service/schema/transport.py
    graphql_transport_ws_handler_class = PingyiTransportWSHandler

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # File uploads (multipart/form-data) are read by `_read_upload_form` first.
        kwargs.setdefault("multipart_uploads_enabled", True)
        super().__init__(*args, **kwargs)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Strawberry's, with its plain-text transport refusals answered as coded JSON."""
        if scope["type"] == "websocket":
            await self._serve_websocket(scope, receive, send)
            return
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        try:
            response = await self.run(Request(scope=scope, receive=receive))
        except StrawberryHTTPException as exc:
            response = _refusal(transport_error(exc.status_code, exc.reason))
        await response(scope, receive, send)

    async def _serve_websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        """One WebSocket connection: its messages held to `max_body_bytes` (a larger
        one closes it with 1009), its principal (service/schema/subscriptions.py)."""
        state = scope["app"].state.pingyi
        limit = state.settings.max_body_bytes

        async def limited() -> Any:
            message = await receive()
            if message["type"] == "websocket.receive":
                size = len(message.get("text") or "") + len(message.get("bytes") or b"")
                if size > limit:
                    await send({"type": "websocket.close", "code": 1009, "reason": ""})
                    return {"type": "websocket.disconnect", "code": 1009}
            return message

        websocket = WebSocket(scope, receive=limited, send=send)
        connection = SubscriptionConnection(
            state, websocket, request_id=scope.get("pingyi.request_id", "ws")
        )
        try:
            await self.run(websocket, context=connection)
        finally:
            connection.dispose()

    async def on_ws_connect(self, context: Any) -> Any:
        """`connection_init`: its payload's bearer token, as HTTP checks it; refused
        (4403) without one, or with a token or session that is no longer good."""
        if not await context.authenticate(context.connection_params):
            raise ConnectionRejectionError()
        return UNSET

    def decode_json(self, data: str | bytes) -> object:
        # Bytes that are not UTF-8 are malformed JSON too (not an internal error).
        try:
            return super().decode_json(data)
        except UnicodeDecodeError as exc:
            raise orjson.JSONDecodeError("body is not UTF-8", "", 0) from exc

    async def get_context(self, request: Any, response: Any = None) -> Any:
        # The real Context needs the principal, which execute_operation loads.
        return None

    def encode_json(self, data: object) -> bytes:
        # orjson: several times faster than json.dumps, and UTF-8 rather than \u escapes.
        return orjson.dumps(data)

    async def run(self, request: Any, context: Any = UNSET, root_value: Any = UNSET) -> Any:
        """Strawberry's request handling, with a shorter road for the common request.

        A POST of `application/json` holding one operation (a `query` string, optional
        `variables` object and `operationName` string, no `extensions`) is read here and
        executed directly; anything else (GET, batches, uploads, streaming, malformed
        bodies, extensions) takes strawberry's general `run`, which answers it as
        before. The work is the same; strawberry's content negotiation and request
        adapters were most of the view's ~18 % of a request (cProfile)."""
        if _is_upload(request):
            refused = await self._read_upload_form(request)
            if refused is not None:
                return refused
            return await super().run(request, context, root_value)
        request_data = await self._plain_json_operation(request)
        if request_data is None:
            return await super().run(request, context, root_value)
        sub_response = await self.get_sub_response(request)
        result = await self.execute_operation(
            request=request,
            request_adapter=self.request_adapter_class(request),
            request_data=request_data,
            context=None,
            root_value=None,
            sub_response=sub_response,
        )
        response_data = await self.process_result(request, result)
        if result.errors:
            self._handle_errors(result.errors, response_data)
        return self.create_response(response_data=response_data, sub_response=sub_response)

    @staticmethod
    async def _read_upload_form(request: Request) -> Response | None:
        """Parse a file upload (the GraphQL multipart request spec: `operations`, `map`,
        one file part) before strawberry reads it, or refuse it. Only a request with a
        valid bearer token may upload (a browser cannot attach one on its own, so a
        cross-site form post is refused before its body is read); the edge already
        limits the body to `max_upload_bytes` as it streams in, and the text parts to
        `max_body_bytes` here. Starlette keeps the parsed form for strawberry."""
        if request.scope.get("pingyi.claims") is None:
            return _refusal(unauthenticated())
        settings = request.app.state.pingyi.settings
        try:
            await request.form(max_files=1, max_fields=2, max_part_size=settings.max_body_bytes)
        except (HTTPException, MultiPartException):  # a malformed or over-limit form
            return _refusal(
                INVALID_REQUEST.error("上传请求格式无效（应为 GraphQL multipart 请求）")
            )
        return None

    @staticmethod
    async def _plain_json_operation(request: Any) -> GraphQLRequestData | None:
        if not isinstance(request, Request) or request.method != "POST":
            return None
        headers = request.headers
        media_type = headers.get("content-type", "").partition(";")[0].strip().lower()
        if media_type != "application/json" or "multipart" in headers.get("accept", ""):
            return None
        try:
            data = orjson.loads(await request.body())
        except orjson.JSONDecodeError:
            return None
        if not isinstance(data, dict) or not data.keys() <= _PLAIN_KEYS:
            return None
        query, variables = data.get("query"), data.get("variables")
        operation_name = data.get("operationName")
        if (
            not isinstance(query, str)
            or not isinstance(variables, dict | None)
            or not isinstance(operation_name, str | None)
            or data.get("extensions")
        ):
            return None
        return GraphQLRequestData(
            query=query,
            variables=variables,
            operation_name=operation_name,
            extensions=None,
            protocol="http",
        )

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
                    # Only a mass representative's token ballot runs without an account.
                    if not token_ballot_only(request_data):
                        raise unauthenticated()
                    loaded = RequestPrincipal(TOKEN_HOLDER, None)
                else:
                    loaded = await principal_for_request(
                        state.db,
                        claims,
                        cache=state.principals,
                        request_id=request.scope.get("pingyi.request_id", ""),
                        use_cache=use_cache,
                        now=state.clock(),
                        idle_seconds=state.settings.session_idle_seconds,
                    )
            except DomainError as exc:
                sub_response.status_code = exc.http_status
                failure = _failure(exc)
                _mark_retry(failure, sub_response)
                return failure
            if has_invalid_text(getattr(request_data, "variables", None)):
                return _failure(INVALID_INPUT.error())
            try:
                result, tx = await self._run_once(
                    request, request_adapter, request_data, root_value, sub_response, loaded
                )
            except DomainError as exc:  # no connection for the guard, or its timeout
                failure = _failure(exc)
                _mark_retry(failure, sub_response)
                return failure
            _mark_retry(result, sub_response)
            if not tx.stale:
                # FORBIDDEN answers leave an event, written after the request's own
                # transaction (read-only, or rolled back); nothing to do without one.
                await audit_denials(state.db, loaded.principal, result.errors)
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
            # One operation per request: batching is off (strawberry's default).
            failed = bool(result.errors)
            # A request that sent no statement (answered from the principal alone, or
            # refused before reading) sends the guard now: its answer must count too.
            failed = not await tx.confirm() or failed
        except BaseException:
            await tx.finish(commit=False)
            raise
        if not failed and tx.write and await _client_gone(request):
            # Whoever asked will never learn the outcome: nothing is written, rather
            # than a change committed after its client gave up (and may send it again).
            log.info("client disconnected before commit; rolled back")
            failed = True
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
