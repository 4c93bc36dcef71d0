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

import functools
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
from service.auth.credentials import count_refused_secrets
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
from service.schema.errors import PERSISTED_QUERY_NOT_FOUND, PERSISTED_QUERY_NOT_SUPPORTED
from service.schema.persisted import PersistedQueries
from service.schema.root import format_error
from service.schema.subscriptions import SubscriptionConnection
from service.schema.transport import PingyiTransportWSHandler

log = logging.getLogger("pingyi.graphql")

# The GraphQL-over-HTTP specification's own media type, served when the client asks for
# it: request errors (nothing ran) then answer 4xx without a `data` entry.
GRAPHQL_RESPONSE = "application/graphql-response+json"
# Persisted-query answers the Apollo protocol gives with 200 in `application/json`: the
# client's cue to send the full text (older clients turn persisted queries off on 400).
_APQ_RETRY_CODES = frozenset({PERSISTED_QUERY_NOT_FOUND.code, PERSISTED_QUERY_NOT_SUPPORTED.code})
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


@functools.lru_cache(maxsize=64)
def prefers_graphql_response(accept: str) -> bool:
    """Whether an Accept header asks for `application/graphql-response+json` at least as
    much as for `application/json` (or a wildcard covering it); ties go to the newer
    type, as the specification prefers it. No header, or `*/*` alone: JSON."""
    best = {GRAPHQL_RESPONSE: -1.0, "json": -1.0}
    for part in accept.split(","):
        media, *params = (p.strip() for p in part.split(";"))
        weight = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    weight = float(value)
                except ValueError:
                    weight = 0.0
        media = media.lower()
        key = GRAPHQL_RESPONSE if media == GRAPHQL_RESPONSE else "json"
        if key == "json" and media not in ("application/json", "application/*", "*/*"):
            continue
        best[key] = max(best[key], weight)
    return best[GRAPHQL_RESPONSE] > 0 and best[GRAPHQL_RESPONSE] >= best["json"]


def negotiated_headers(
    response_headers: list[tuple[bytes, bytes]], request_headers: dict[str, str]
) -> list[tuple[bytes, bytes]]:
    """A /graphql answer's headers, `application/json` replaced by the newer media type
    when the request prefers it: the edge's own refusals (413, a bad token) included."""
    if not prefers_graphql_response(request_headers.get("accept", "")):
        return response_headers
    return [
        (key, GRAPHQL_RESPONSE.encode())
        if key.lower() == b"content-type" and value.lower().startswith(b"application/json")
        else (key, value)
        for key, value in response_headers
    ]


def _graphql_response(request: Any) -> bool:
    headers = getattr(request, "headers", None)
    return headers is not None and prefers_graphql_response(headers.get("accept", ""))


def _refusal(exc: DomainError, request: Any = None, *, status: int | None = None) -> Response:
    """A coded JSON refusal, in the media type the client asked for."""
    return Response(
        orjson.dumps({"errors": [{"message": exc.message, "extensions": {"code": exc.code}}]}),
        status_code=exc.http_status if status is None else status,
        media_type=GRAPHQL_RESPONSE if _graphql_response(request) else "application/json",
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


async def http_error_handler(request: Request, exc: Exception) -> Response:
    """Starlette's own refusals on every path (an unknown path, a wrong method), coded
    JSON with a Chinese message as everything else the service answers, rather than
    English plain text. /graphql's carry its transport wording."""
    status = getattr(exc, "status_code", 500)
    if request.url.path == "/graphql":
        error = transport_error(status, str(getattr(exc, "detail", "")))
    elif status == 405:
        error = METHOD_NOT_ALLOWED.error(f"该地址不接受 {request.method} 请求")
    elif status == 404:
        error = NOT_FOUND.error(what="页面")
    else:
        error = transport_error(status)
    response = _refusal(error, request if request.url.path == "/graphql" else None)
    for name, value in (getattr(exc, "headers", None) or {}).items():
        response.headers[name] = value  # `Allow` of a 405
    return response


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


class _RequestRefused(Exception):
    """A request error found while strawberry reads the request (`parse_http_body`)."""

    def __init__(self, error: DomainError) -> None:
        super().__init__(error.message)
        self.error = error


def _request_refusal(exc: DomainError, request: Any) -> Response:
    """A request error: nothing ran. `application/json` answers the persisted-query
    retry cues with 200 as Apollo servers do; everything else has its status."""
    legacy = not _graphql_response(request) and exc.code in _APQ_RETRY_CODES
    return _refusal(exc, request, status=200 if legacy else None)


class PingyiGraphQL(GraphQL):
    """Strawberry's ASGI view, with the request's unit of work around execution.

    A mutation commits when it produced no error and rolls back otherwise, so a
    failed mutation leaves nothing half-written; it commits before the response is
    sent.
    """

    # Subscriptions over WebSocket (`graphql-transport-ws`): service/schema/transport.py
    graphql_transport_ws_handler_class = PingyiTransportWSHandler

    def __init__(
        self, *args: Any, persisted: PersistedQueries | None = None, **kwargs: Any
    ) -> None:
        # File uploads (multipart/form-data) are read by `_read_upload_form` first.
        kwargs.setdefault("multipart_uploads_enabled", True)
        super().__init__(*args, **kwargs)
        # APQ and trusted documents (service/schema/persisted.py); the default: APQ on
        self.persisted = persisted or PersistedQueries(cache_bytes=8 * 2**20)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Strawberry's, with its plain-text transport refusals answered as coded JSON."""
        if scope["type"] == "websocket":
            await self._serve_websocket(scope, receive, send)
            return
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        request = Request(scope=scope, receive=receive)
        try:
            response = await self.run(request)
        except StrawberryHTTPException as exc:
            response = _refusal(transport_error(exc.status_code, exc.reason), request)
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
            scope["pingyi.principal"] = connection.principal  # the connection's line
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

        A POST of `application/json` holding one JSON object is read here: its
        parameters checked (a wrong type is 400 INVALID_REQUEST), its persisted query
        resolved to a document (service/schema/persisted.py), and that executed
        directly. Anything else (GET, batches, uploads, streaming, bodies that are not
        JSON) takes strawberry's general `run`, which answers it as before (trusted
        documents enforced there too: `parse_http_body`). The work is
        the same; strawberry's content negotiation and request adapters were most of
        the view's ~18 % of a request (cProfile)."""
        if _is_upload(request):
            refused = await self._read_upload_form(request)
            if refused is not None:
                return refused
            return await self._general_run(request, context, root_value)
        try:
            request_data = await self._json_operation(request)
        except DomainError as exc:
            return _request_refusal(exc, request)
        if request_data is None:
            return await self._general_run(request, context, root_value)
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

    async def _general_run(self, request: Any, context: Any, root_value: Any) -> Any:
        """Strawberry's `run`, a refusal of `parse_http_body` answered as on the short road."""
        try:
            return await super().run(request, context, root_value)
        except _RequestRefused as refused:
            return _request_refusal(refused.error, request)

    async def parse_http_body(self, request: Any) -> Any:
        """Strawberry's reading of a request on its general road (uploads, a streaming
        Accept, GET, batches), with trusted documents enforced as on the short road:
        each operation's `query` or persisted hash resolved by the manifest
        (`PersistedQueries.resolve_request`), or the request refused before anything
        runs. Without a manifest nothing changes here."""
        request_data = await super().parse_http_body(request)
        if self.persisted.trusted is None:
            return request_data
        operations = request_data if isinstance(request_data, list) else [request_data]
        try:
            for operation in operations:
                document = await self.persisted.resolve_request(  # (nothing registers)
                    operation.query, operation.extensions, register=False
                )
                operation.query = document
                operation.extensions = None
        except DomainError as exc:
            raise _RequestRefused(exc) from exc
        return request_data

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

    async def _json_operation(self, request: Any) -> GraphQLRequestData | None:
        """One operation from a JSON object body, or None for strawberry's general road
        (not a POST of application/json, not JSON, a batch, a streaming Accept).

        Unknown keys and unknown `extensions` are ignored (the specification lets a
        server do so); `extensions.persistedQuery` is resolved here, so the operation
        runs as a plain text document and takes the prepared/cached road."""
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
        if not isinstance(data, dict):
            return None
        query, variables = data.get("query"), data.get("variables")
        operation_name, extensions = data.get("operationName"), data.get("extensions")
        if not isinstance(query, str | None):
            raise INVALID_REQUEST.error("参数 query 应为字符串")
        if not isinstance(variables, dict | None):
            raise INVALID_REQUEST.error("参数 variables 应为对象")
        if not isinstance(operation_name, str | None):
            raise INVALID_REQUEST.error("参数 operationName 应为字符串")
        if not isinstance(extensions, dict | None):
            raise INVALID_REQUEST.error("参数 extensions 应为对象")
        persisted = self.persisted
        # The common request (text, no hash, no manifest) costs no coroutine here.
        plain = persisted.trusted is None and (extensions or {}).get("persistedQuery") is None
        # Only a caller with an access token stores documents (persisted.py).
        register = request.scope.get("pingyi.claims") is not None
        document = (
            query
            if plain
            else await persisted.resolve_request(query, extensions, register=register)
        )
        if document is None:
            if not register:  # who asks comes first: without a token, that is the answer
                raise unauthenticated()
            raise INVALID_REQUEST.error(_TRANSPORT_REASONS["No GraphQL query found in the request"])
        return GraphQLRequestData(
            query=document,
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
        # For the request's log line and metrics (service/observability): labelled
        # after the answer, from the prepared documents; nothing computed here.
        query = getattr(request_data, "query", None)
        if isinstance(query, str):
            request.scope["pingyi.operation_key"] = (query, request_data.operation_name)
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
            request.scope["pingyi.principal"] = loaded.principal
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
                # FORBIDDEN answers leave an event, and wrong passwords given to change
                # one's credentials count as failed logins: written after the request's
                # own transaction (read-only, or rolled back); nothing to do without one.
                await audit_denials(state.db, loaded.principal, result.errors)
                await count_refused_secrets(state.db, loaded.principal, result.errors)
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
        tx.now = state.clock()  # business dates of the request (service/clock.py)
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

    async def get_sub_response(self, request: Any) -> Any:
        sub_response = await super().get_sub_response(request)
        # Read by create_response, which is not given the request.
        sub_response.pingyi_graphql_response = _graphql_response(request)
        return sub_response

    async def process_result(self, request: Any, result: ExecutionResult) -> GraphQLHTTPResponse:
        data: GraphQLHTTPResponse = {"data": result.data}
        if result.errors:
            data["errors"] = errors = [format_error(e) for e in result.errors]
            if isinstance(request, Request):  # counted by code; the first is the outcome
                request.app.state.pingyi.observer.note_errors(request.scope, errors)
            # A request error (parse, validation, variables, a refusal before anything
            # ran): no error has a path and there is no data. The newer media type has
            # no `data` entry then (and a 4xx status, set by create_response).
            if (
                result.data is None
                and _graphql_response(request)
                and all(not e.path for e in result.errors)
            ):
                del data["data"]
        return data

    def create_response(self, response_data: Any, sub_response: Any) -> Response:
        response = super().create_response(response_data, sub_response)
        if getattr(sub_response, "pingyi_graphql_response", False):
            response.headers["content-type"] = GRAPHQL_RESPONSE
            if isinstance(response_data, dict) and "data" not in response_data:
                if response.status_code < 400:
                    response.status_code = 400
        return response
