"""`GET /attachments/{id}`: download one attachment with a bearer token.

The edge (service/app.py) has validated the token's signature and put its claims on
the scope; here the principal is read as /graphql reads it (its session must be live),
and the read runs in one writing transaction with the principal's scope, because the
download is audited in the same transaction (a file handed out is always on record).
RLS limits the row to the principal's tenants (another tenant's id is NOT_FOUND), and
the owner's read check decides the rest (service.attachments.service.may_read).

The answer: `Content-Disposition: attachment` (never rendered inline, so an uploaded
file cannot run in the service's origin), `X-Content-Type-Options: nosniff`, the
content type the bytes showed at upload, `Cache-Control: private, no-store`.
"""

from __future__ import annotations

import logging
from urllib.parse import quote

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from service.attachments import service
from service.attachments.errors import ATTACHMENT
from service.auth.service import principal_for_request
from service.errors import DomainError, not_found, unauthenticated
from service.schema.ids import from_global_id

log = logging.getLogger("pingyi.attachments")


def _error(exc: DomainError) -> Response:
    body = orjson.dumps({"errors": [{"message": exc.message, "extensions": {"code": exc.code}}]})
    return Response(
        body,
        status_code=exc.http_status,
        media_type="application/json; charset=utf-8",
        headers={"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"},
    )


def content_disposition(filename: str) -> str:
    """RFC 6266 / 5987: an ASCII fallback and the UTF-8 name (Chinese filenames)."""
    fallback = "".join(
        c if c.isascii() and c.isprintable() and c not in '"\\' else "_" for c in filename
    )
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


async def download(request: Request) -> Response:
    state = request.app.state.pingyi
    claims = request.scope.get("pingyi.claims")
    try:
        if claims is None:
            raise unauthenticated()
        _, attachment_id = from_global_id(request.path_params["id"], "Attachment")
        state.principals.start()
        loaded = await principal_for_request(
            state.db,
            claims,
            cache=None,
            request_id=request.scope.get("pingyi.request_id", ""),
            use_cache=False,
            now=state.clock(),
            idle_seconds=state.settings.session_idle_seconds,
        )
        tx = state.db.begin(loaded.principal.scope, write=True, guard=loaded.guard)
        try:
            made = await service.download(tx, loaded.principal, attachment_id=attachment_id)
        except BaseException:
            await tx.finish(commit=False)
            raise
        await tx.finish(commit=True)
    except DomainError as exc:
        if exc.code == "NOT_FOUND":
            exc = not_found(ATTACHMENT)
        return _error(exc)
    return Response(
        made.content,
        media_type=made.content_type,
        headers={
            "Content-Disposition": content_disposition(made.filename),
            "X-Content-Type-Options": "nosniff",
            "Cache-Control": "private, no-store",
            "Content-Security-Policy": "default-src 'none'; sandbox",
        },
    )


routes = [Route("/attachments/{id}", download, methods=["GET"])]
