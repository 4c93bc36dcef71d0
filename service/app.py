"""The Starlette application: /graphql, /auth/*, /healthz, /readyz, /metrics."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import hmac
import itertools
import logging
import re
import secrets
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from strawberry.extensions.parser_cache import _get_parse_cache
from strawberry.extensions.validation_cache import _get_validate_cache
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL

from service.attachments.routes import routes as attachment_routes
from service.audit.service import checkpoint_periodically
from service.auth.cache import PrincipalCache
from service.auth.errors import INVALID_TOKEN
from service.auth.ratelimit import TokenBucket
from service.auth.routes import routes as auth_routes
from service.auth.tokens import TokenService
from service.config import Settings
from service.db import Database
from service.errors import REQUEST_TOO_LARGE, DomainError
from service.events import EventHub
from service.migrate import head_revision
from service.observability import Metrics, Observer, Tracing, build_tracing
from service.observability.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from service.schema.persisted import PersistedQueries
from service.schema.root import VALIDATION_CACHE_SIZE, build_schema
from service.schema.view import (
    PingyiGraphQL,
    http_error_handler,
    negotiated_headers,
    transport_error,
)
from service.shutdown import Drain

log = logging.getLogger("pingyi.app")

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
# Request ids name a request in logs and audit events: unique, not secret. A random tag
# per process and a counter: no system call per request, as uuid4 makes.
_PROCESS_TAG = secrets.token_hex(6)
_REQUEST_COUNTER = itertools.count(1)


def _next_request_id() -> str:
    return f"{_PROCESS_TAG}-{next(_REQUEST_COUNTER):x}"


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class AppState:
    settings: Settings
    db: Database
    tokens: TokenService
    principals: PrincipalCache
    metrics: Metrics = field(default_factory=Metrics)
    # The time sessions, lockouts and second factors are judged by (tests move it)
    clock: Callable[[], datetime] = field(default=_utc_now)
    # Token requests per client address (service/auth/ratelimit.py)
    login_limiter: TokenBucket = field(default_factory=TokenBucket)
    # Events between processes (LISTEN pingyi_events); made by create_app if not given
    events: EventHub = field(default=None)  # type: ignore[assignment]
    # Set on SIGTERM while the process drains: /readyz answers 503 (service/shutdown.py)
    drain: Drain = field(default_factory=Drain)
    # OpenTelemetry request spans, when PINGYI_TRACING is on (made by create_app)
    tracing: Tracing | None = None
    # Logs, metrics and spans of each request (service/observability; made by create_app)
    observer: Observer = field(default=None)  # type: ignore[assignment]


def _json_error(exc: DomainError) -> JSONResponse:
    return JSONResponse(
        {"errors": [{"message": exc.message, "extensions": {"code": exc.code}}]},
        status_code=exc.http_status,
        headers={"Retry-After": "5"} if exc.http_status == 503 else None,
    )


class EdgeMiddleware:
    """Request id, body-size limit, bearer-token validation and metrics, for every request.

    Token validation here needs no database: the signature, issuer, audience and expiry.
    Whether the token's session was revoked is checked in the request's transaction.
    """

    def __init__(self, app: ASGIApp, state: AppState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            if scope["type"] == "websocket":  # a line and a gauge per connection
                scope["pingyi.request_id"] = _next_request_id()
                await self.state.observer.websocket(scope, receive, send, self.app)
                return
            await self.app(scope, receive, send)
            return
        state = self.state
        started = time.perf_counter()
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        incoming = headers.get("x-request-id", "")
        request_id = incoming if _REQUEST_ID.match(incoming) else _next_request_id()
        scope["pingyi.request_id"] = request_id
        observer = state.observer
        span = observer.start(scope, headers)
        status_holder = {"status": 500}
        graphql = scope.get("path") == "/graphql"
        held: list[Message] = []  # a non-JSON refusal of /graphql, being rewritten

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                if graphql and _needs_json(message):
                    held.append(message)
                    return
                status_holder["status"] = message["status"]
                status_holder["started"] = True
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", request_id.encode())]
                if graphql:  # refusals made here too, in the media type asked for
                    message["headers"] = negotiated_headers(message["headers"], headers)
            elif held:
                # Every answer of /graphql is JSON with a code: a plain-text refusal
                # (Starlette's 405 for a GET, say) is replaced once its body is in.
                held.append(message)
                if message.get("more_body"):
                    return
                start, body = held[0], b"".join(m.get("body", b"") for m in held[1:])
                held.clear()
                reason = body.decode("utf-8", "replace").strip()
                await _json_error(transport_error(start["status"], reason))(
                    scope, _no_body, send_with_id
                )
                return
            elif status_holder["status"] >= 400:  # a refusal: its code, for the log line
                observer.capture(scope, message.get("body", b""))
            await send(message)

        try:
            limit = state.settings.max_body_bytes
            if _is_upload(scope, headers):
                # A file upload to /graphql (bearer token checked below, required by the
                # view): the upload limit, enforced while the body streams in.
                limit = state.settings.max_upload_bytes
            declared = headers.get("content-length")
            if declared is not None and (not declared.isdigit() or int(declared) > limit):
                await _json_error(REQUEST_TOO_LARGE.error(limit=limit))(
                    scope, receive, send_with_id
                )
                return
            authorization = headers.get("authorization", "")
            if authorization and scope.get("path") != "/metrics":  # its own token
                scheme, _, token = authorization.partition(" ")
                claims = (
                    state.tokens.validate_access_token(token.strip())
                    if scheme.lower() == "bearer"
                    else None
                )
                if claims is None:
                    await _json_error(INVALID_TOKEN.error())(scope, receive, send_with_id)
                    return
                scope["pingyi.claims"] = claims
            await self.app(scope, _limited(receive, limit), send_with_id)
        except BodyTooLarge:
            await _json_error(REQUEST_TOO_LARGE.error(limit=limit))(scope, receive, send_with_id)
        except Exception:
            if not graphql or status_holder.get("started"):
                raise
            # Not even a GraphQL answer could be made: still a coded JSON one.
            log.error("unhandled error in /graphql", exc_info=True)
            await _json_error(
                DomainError("INTERNAL_SERVER_ERROR", "服务器内部错误", http_status=500)
            )(scope, _no_body, send_with_id)
        finally:
            route = scope.get("route")
            path = getattr(route, "path", None) or "other"
            observer.finish(
                scope, path, status_holder["status"], time.perf_counter() - started, span
            )


def _needs_json(start: Message) -> bool:
    """A refusal (status >= 400) whose body is not JSON."""
    if start["status"] < 400:
        return False
    for key, value in start.get("headers", []):
        if key.lower() == b"content-type":
            # JSON, or the GraphQL-over-HTTP media type (service/schema/view.py)
            return not value.lower().startswith(
                (b"application/json", b"application/graphql-response+json")
            )
    return True


async def _no_body() -> Message:
    return {"type": "http.disconnect"}


def _is_upload(scope: Scope, headers: dict[str, str]) -> bool:
    media_type = headers.get("content-type", "").partition(";")[0].strip().lower()
    return (
        scope.get("method") == "POST"
        and scope.get("path") == "/graphql"
        and media_type == "multipart/form-data"
        and headers.get("authorization", "")[:7].lower() == "bearer "
    )


class BodyTooLarge(Exception):
    pass


def _limited(receive: Receive, limit: int) -> Receive:
    """A receive that stops a body (chunked or lying about its length) past `limit`."""
    seen = 0

    async def wrapped() -> Message:
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit:
                raise BodyTooLarge
        return message

    return wrapped


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    state: AppState = request.app.state.pingyi
    if state.drain.draining:  # going away: the balancer sends no new requests here
        return JSONResponse({"status": "draining"}, status_code=503)
    try:
        async with state.db.transaction(write=False) as tx:
            current = await tx.scalar("SELECT version_num FROM alembic_version")
    except Exception as exc:  # any failure to reach the database means not ready
        return JSONResponse(
            {"status": "unavailable", "reason": type(exc).__name__}, status_code=503
        )
    head = head_revision()
    if current != head:
        return JSONResponse(
            {"status": "migrating", "database": current, "expected": head}, status_code=503
        )
    return JSONResponse({"status": "ready", "revision": current})


async def metrics(request: Request) -> Response:
    """Prometheus text, for the scraper only: it names paths and volumes, which an
    outsider has no business seeing. Without `PINGYI_METRICS_TOKEN` the endpoint does
    not exist (404); with it, `Authorization: Bearer <token>` is required (404 too
    otherwise, so its existence is not advertised)."""
    state: AppState = request.app.state.pingyi
    expected = state.settings.metrics_token
    scheme, _, sent = request.headers.get("authorization", "").partition(" ")
    if (
        not expected
        or scheme.lower() != "bearer"
        or not hmac.compare_digest(sent.strip().encode(), expected.encode())
    ):
        return JSONResponse(
            {"errors": [{"message": "页面不存在", "extensions": {"code": "NOT_FOUND"}}]},
            status_code=404,
        )
    return Response(state.metrics.render(), media_type=METRICS_CONTENT_TYPE)


def _observer(state: AppState, schema: Any) -> Observer:
    """The request observer, and what /metrics reads when scraped: the pool's state and
    the hit counts of the principal, token, parse, validation and prepared-document
    caches (service/observability)."""
    observer = Observer(state.metrics, state.tracing)
    observer.schema = schema
    metrics = state.metrics
    metrics.watch_pool(state.db.pool.get_stats, state.db.checked_out, state.settings.db_pool_size)
    if metrics.audit_appended not in state.db.deferred_commit_timers:
        state.db.deferred_commit_timers.append(metrics.audit_appended)
    principals = state.principals
    metrics.watch_cache("principal", lambda: (principals.hits, principals.misses))
    verified = state.tokens._verified
    metrics.watch_cache("access_token", lambda: (verified.hits, verified.misses))
    parse = _get_parse_cache(VALIDATION_CACHE_SIZE)
    validate = _get_validate_cache(VALIDATION_CACHE_SIZE)
    metrics.watch_cache("graphql_parse", lambda: parse.cache_info()[:2])  # type: ignore[attr-defined]
    metrics.watch_cache("graphql_validation", lambda: validate.cache_info()[:2])  # type: ignore[attr-defined]
    metrics.watch_cache(
        "graphql_prepared",
        lambda: (getattr(schema, "prepared_hits", 0), getattr(schema, "prepared_misses", 0)),
    )
    return observer


def settle_heap() -> None:
    """Move what start-up built (schemas, tables, the policy), which lives as long as
    the process, out of the garbage collector's sight. Each full collection otherwise
    walked ~130k such objects: an ~80 ms pause every ~1,000 requests (the p99), and
    ~0.1 s of a county's close, whose 40,000 rows set off full collections."""
    gc.collect()
    gc.freeze()


def create_app(
    state: AppState,
    *,
    on_shutdown: Any = None,
    extra_routes: list[Route] | None = None,
    schema: Any = None,
) -> Starlette:
    """The app. `extra_routes` lets a benchmark mount a baseline endpoint beside /graphql;
    `schema` lets a test serve a schema with extra fields through the same stack."""
    settings = state.settings
    if state.events is None:
        state.events = EventHub(state.db.url)
    if state.tracing is None:
        state.tracing = build_tracing(settings)
    if state.tracing is not None:
        state.db.tracer = state.tracing
    graphql = PingyiGraphQL(
        schema if schema is not None else build_schema(settings),
        graphql_ide="graphiql" if settings.dev_mode else None,
        allow_queries_via_get=False,
        # Subscriptions over WebSocket only (service/schema/transport.py)
        subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL,),
        connection_init_wait_timeout=timedelta(seconds=10),
        max_subscriptions_per_connection=20,
        # APQ and trusted documents; a bad manifest stops the start here
        persisted=PersistedQueries.from_settings(settings),
    )
    state.observer = _observer(state, graphql.schema)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        state.principals.start()
        state.events.start()
        settle_heap()
        # Signed audit checkpoints, written outside the database every interval.
        checkpoints = (
            asyncio.create_task(checkpoint_periodically(state.db, settings))
            if settings.audit_checkpoint_interval_seconds > 0
            else None
        )
        # SIGTERM: unready at once, serve on for the drain period, then uvicorn's stop.
        disarm = state.drain.install(settings.shutdown_drain_seconds)
        yield
        disarm()
        if checkpoints is not None:
            checkpoints.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await checkpoints
        await state.events.stop()
        await state.principals.stop()
        await state.db.dispose()
        if state.tracing is not None:
            state.tracing.shutdown()  # what is batched goes out
        if on_shutdown is not None:
            on_shutdown()

    methods = ["GET", "POST"] if settings.dev_mode else ["POST"]
    app = Starlette(
        routes=[
            Route("/graphql", graphql, methods=methods),
            WebSocketRoute("/graphql", graphql),
            *auth_routes,
            *attachment_routes,
            Route("/healthz", healthz, methods=["GET"]),
            Route("/readyz", readyz, methods=["GET"]),
            Route("/metrics", metrics, methods=["GET"]),
            *(extra_routes or []),
        ],
        middleware=[Middleware(EdgeMiddleware, state=state)],
        # 404 / 405 anywhere: coded JSON, not plain text (service/schema/view.py)
        exception_handlers={StarletteHTTPException: http_error_handler},
        lifespan=lifespan,
    )
    app.state.pingyi = state
    return app
