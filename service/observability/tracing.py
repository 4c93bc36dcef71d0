"""OpenTelemetry tracing, off by default (`PINGYI_TRACING=1` turns it on).

Off, nothing of OpenTelemetry is imported and the request path pays one `is None`
check. On, every HTTP request is one SERVER span (W3C `traceparent` from the caller
is continued), named `POST /graphql` or, for GraphQL, after its operation, with
attributes that carry no personal data (the same fields as the access log line:
route, status, operation, outcome code, request id, account id). Spans go to an OTLP
exporter (`PINGYI_TRACING_EXPORTER=otlp`, needs `opentelemetry-exporter-otlp-proto-http`,
configured by the standard `OTEL_EXPORTER_OTLP_*` variables) or to stderr
(`console`); the service name comes from `OTEL_SERVICE_NAME` (default `pingyi`).
The SDK is an optional extra: `pip install "pingyi[tracing]"`.
"""

from __future__ import annotations

import os
from typing import Any

from service.config import Settings


class Tracing:
    """Request spans through one tracer (a provider of this app's own, not the global
    one, so that tests and several apps in a process stay apart)."""

    def __init__(self, provider: Any) -> None:
        from opentelemetry import context
        from opentelemetry.trace import SpanKind, Status, StatusCode, set_span_in_context
        from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

        self.provider = provider
        self.tracer = provider.get_tracer("pingyi")
        self._propagator = TraceContextTextMapPropagator()
        self._context = context
        self._in_context = set_span_in_context
        self._server = SpanKind.SERVER
        self._client = SpanKind.CLIENT
        self._error = Status(StatusCode.ERROR)
        self._ok = Status(StatusCode.OK)

    def start(self, method: str, headers: dict[str, str]) -> Any:
        """A span for an incoming request, continuing the caller's trace if it sent one,
        made the current span (so the database's message spans nest under it)."""
        parent = self._propagator.extract(headers) if "traceparent" in headers else None
        span = self.tracer.start_span(
            method, context=parent, kind=self._server, attributes={"http.request.method": method}
        )
        return span, self._context.attach(self._in_context(span))

    def message(self, statements: int) -> Any:
        """A span (a context manager) for one message to PostgreSQL: how many statements
        it held, never their text (values are bound into it client-side)."""
        return self.tracer.start_span(
            "postgresql",
            kind=self._client,
            attributes={"db.system": "postgresql", "db.statements": statements},
        )

    def finish(
        self,
        started: Any,
        *,
        method: str,
        path: str,
        status: int,
        operation: str | None,
        outcome: str,
        request_id: str,
        account_id: int | None,
    ) -> None:
        span, token = started
        self._context.detach(token)
        span.update_name(f"{method} {path}" if operation is None else f"graphql {operation}")
        span.set_attribute("http.route", path)
        span.set_attribute("http.response.status_code", status)
        span.set_attribute("pingyi.request_id", request_id)
        span.set_attribute("pingyi.outcome", outcome)
        if operation is not None:
            span.set_attribute("graphql.operation.name", operation)
        if account_id is not None:
            span.set_attribute("enduser.id", str(account_id))
        span.set_status(self._error if status >= 500 else self._ok)
        span.end()

    def shutdown(self) -> None:
        self.provider.shutdown()


def build_tracing(settings: Settings, exporter: Any = None) -> Tracing | None:
    """The app's tracing, or None when off. `exporter` (a test's in-memory one) is used
    as it is, with a synchronous processor; otherwise the setting's, batched."""
    if not settings.tracing and exporter is None:
        return None
    try:
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import (
            BatchSpanProcessor,
            ConsoleSpanExporter,
            SimpleSpanProcessor,
        )
    except ImportError as exc:  # the extra is not installed
        raise RuntimeError(
            'PINGYI_TRACING=1 needs the OpenTelemetry SDK: pip install "pingyi[tracing]"'
        ) from exc
    resource = Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME") or "pingyi"})
    provider = TracerProvider(resource=resource)
    if exporter is not None:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    elif settings.tracing_exporter == "console":
        provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter()))
    else:
        try:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        except ImportError as exc:
            raise RuntimeError(
                "PINGYI_TRACING_EXPORTER=otlp needs opentelemetry-exporter-otlp-proto-http"
                ' (pip install "pingyi[tracing]")'
            ) from exc
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    return Tracing(provider)
