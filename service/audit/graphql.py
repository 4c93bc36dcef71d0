"""The auditor's GraphQL fields: `auditEvents`, `auditVerification`, `exportAuditEvents`.

Only a holder of AuditAction.READ (the auditor, at the root or the county) gets any
answer; everyone else is refused like any other unreadable object (NOT_FOUND where
they cannot see the unit, FORBIDDEN where they can), and the refusal is audited.
"""

from __future__ import annotations

import base64
import binascii
import csv
import io
import json
from datetime import UTC, datetime
from enum import Enum
from typing import Any

import strawberry
from strawberry.types import Info

from service.audit import service
from service.auth.principal import Principal
from service.db import Transaction
from service.errors import INVALID_CURSOR
from service.members.excel import write_members_xlsx
from service.schema.context import Context
from service.schema.ids import from_global_id, to_global_id
from service.schema.relay import PageInfo

# An export holds at most this many events (newest first); narrow the filter for more.
MAX_EXPORT_ROWS = 100_000


@strawberry.enum(description="审计事件结果")
class AuditOutcome(Enum):
    SUCCESS = "success"
    DENIED = "denied"
    FAILED = "failed"


@strawberry.enum(description="审计导出格式")
class AuditExportFormat(Enum):
    CSV = "csv"
    XLSX = "xlsx"


@strawberry.input(description="审计事件筛选；各条件同时成立")
class AuditEventFilter:
    tenant: strawberry.ID | None = strawberry.field(default=None, description="租户（顶层组织）")
    org_unit: strawberry.ID | None = strawberry.field(
        default=None, description="对象为该组织或其下级组织的事件"
    )
    actor: str | None = strawberry.field(default=None, description="操作者（用户名）")
    action: str | None = strawberry.field(default=None, description="动作，如 orgunit.rename")
    outcome: AuditOutcome | None = None
    from_: datetime | None = strawberry.field(default=None, name="from", description="起（含）")
    to: datetime | None = strawberry.field(default=None, description="止（不含）")


@strawberry.type(description="审计事件：时间、操作者、动作、对象、结果、请求号")
class AuditEvent:
    tenant_id: strawberry.ID = strawberry.field(description="租户（顶层组织）的 id")
    seq: int = strawberry.field(description="该租户哈希链中的序号")
    occurred_at: datetime
    actor: str
    actor_account_id: strawberry.ID | None
    action: str
    object_type: str
    object_id: str
    outcome: AuditOutcome
    request_id: str | None
    details: str = strawberry.field(description="详情（JSON 文本，如改名前后的值）")
    hash: str

    @classmethod
    def of(cls, row: Any) -> AuditEvent:
        return cls(
            tenant_id=strawberry.ID(to_global_id("OrgUnit", row.tenant_id)),
            seq=int(row.seq),
            occurred_at=row.occurred_at,
            actor=row.actor,
            actor_account_id=strawberry.ID(to_global_id("Account", row.actor_account_id))
            if row.actor_account_id is not None
            else None,
            action=row.action,
            object_type=row.object_type,
            object_id=row.object_id,
            outcome=AuditOutcome(row.outcome),
            request_id=row.request_id,
            details=json.dumps(row.details, ensure_ascii=False, sort_keys=True),
            hash=row.hash,
        )


@strawberry.type
class AuditEventEdge:
    cursor: str
    node: AuditEvent


@strawberry.type(description="审计事件（新的在前）；游标按（时间、租户、序号）排序")
class AuditEventConnection:
    edges: list[AuditEventEdge]
    page_info: PageInfo

    @strawberry.field
    def nodes(self) -> list[AuditEvent]:
        return [edge.node for edge in self.edges]


@strawberry.type(description="一个租户哈希链的校验结果")
class TenantChainVerification:
    tenant_id: strawberry.ID
    events_checked: int
    head_seq: int
    ok: bool
    broken_seq: int | None = strawberry.field(description="第一处问题的序号")
    reason: str | None


@strawberry.type(description="审计日志哈希链与签名检查点的校验结果")
class AuditVerification:
    ok: bool
    events_checked: int
    tenants: list[TenantChainVerification]
    problems: list[str] = strawberry.field(description="检查点文件本身的问题")


@strawberry.type(description="导出的审计事件文件")
class AuditExport:
    filename: str
    content_base64: str
    row_count: int


_CURSOR_PREFIX = "audit:"


def encode_cursor(row: Any) -> str:
    at = row.occurred_at.astimezone(UTC).isoformat(timespec="microseconds")
    raw = f"{_CURSOR_PREFIX}{at}|{int(row.tenant_id)}|{int(row.seq)}"
    return base64.urlsafe_b64encode(raw.encode()).decode()


def decode_cursor(cursor: str) -> tuple[datetime, int, int]:
    try:
        raw = base64.urlsafe_b64decode(cursor.encode()).decode()
        if not raw.startswith(_CURSOR_PREFIX):
            raise ValueError(raw)
        at, tenant, seq = raw.removeprefix(_CURSOR_PREFIX).split("|")
        key = (datetime.fromisoformat(at), int(tenant), int(seq))
    except (ValueError, UnicodeDecodeError, binascii.Error) as exc:
        raise INVALID_CURSOR.error() from exc
    if not service.valid_key(key) or key[0].tzinfo is None:
        raise INVALID_CURSOR.error()
    return key


async def _domain_filter(
    tx: Transaction, principal: Principal, wanted: AuditEventFilter | None
) -> service.AuditFilter:
    """The GraphQL filter as the service's, its ids resolved and authorized there."""
    if wanted is None:
        return await service.resolve_filter(tx, principal)
    return await service.resolve_filter(
        tx,
        principal,
        tenant_id=from_global_id(wanted.tenant, "OrgUnit")[1] if wanted.tenant else None,
        org_unit_id=from_global_id(wanted.org_unit, "OrgUnit")[1] if wanted.org_unit else None,
        actor=wanted.actor,
        action=wanted.action,
        outcome=service.Outcome(wanted.outcome.value) if wanted.outcome else None,
        since=wanted.from_,
        until=wanted.to,
    )


@strawberry.type
class AuditQuery:
    @strawberry.field(description="审计事件（仅审计管理员），按时间倒序分页")
    async def audit_events(
        self,
        info: Info[Context, None],
        filter: AuditEventFilter | None = None,
        first: int | None = None,
        after: str | None = None,
    ) -> AuditEventConnection:
        ctx = info.context
        # Who may ask is settled first: a refused caller learns nothing from the
        # other arguments (a cursor, a page size).
        wanted = await _domain_filter(ctx.tx, ctx.principal, filter)
        tenants = await service.authorized_tenants(ctx.tx, ctx.principal, wanted)
        size = ctx.page(first, None).first
        key = decode_cursor(after) if after is not None else None
        page = await service.list_events(ctx.tx, tenants, wanted, first=size, after=key)
        edges = [AuditEventEdge(cursor=encode_cursor(r), node=AuditEvent.of(r)) for r in page.items]
        return AuditEventConnection(
            edges=edges,
            page_info=PageInfo(
                has_next_page=page.has_next_page,
                has_previous_page=after is not None,
                start_cursor=edges[0].cursor if edges else None,
                end_cursor=edges[-1].cursor if edges else None,
            ),
        )

    @strawberry.field(description="重算审计哈希链并与签名检查点比对（仅审计管理员）")
    async def audit_verification(self, info: Info[Context, None]) -> AuditVerification:
        ctx = info.context
        result = await service.verify_readable(ctx.tx, ctx.principal, ctx.settings)
        tenants = []
        for t in result.tenants:
            finding = t.broken or t.checkpoint
            tenants.append(
                TenantChainVerification(
                    tenant_id=strawberry.ID(to_global_id("OrgUnit", t.tenant_id)),
                    events_checked=t.checked,
                    head_seq=t.head_seq,
                    ok=finding is None,
                    broken_seq=finding.seq if finding is not None else None,
                    reason=finding.reason if finding is not None else None,
                )
            )
        return AuditVerification(
            ok=result.ok,
            events_checked=result.checked,
            tenants=tenants,
            problems=[p.reason for p in result.problems],
        )


HEADERS = ("时间", "租户", "序号", "操作者", "动作", "对象类型", "对象", "结果", "请求号", "详情")


def _export_row(row: Any) -> list[object]:
    return [
        row.occurred_at.astimezone(UTC).isoformat(timespec="seconds"),
        str(row.tenant_id),
        str(row.seq),
        row.actor,
        row.action,
        row.object_type,
        row.object_id,
        row.outcome,
        row.request_id or "",
        json.dumps(row.details, ensure_ascii=False, sort_keys=True),
    ]


def _csv(rows: list[Any]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(HEADERS)
    for row in rows:
        # A cell a spreadsheet would run as a formula gets a quote prefix.
        writer.writerow(
            ["'" + c if isinstance(c, str) and c[:1] in "=+-@\t\r" else c for c in _export_row(row)]
        )
    return ("\ufeff" + buffer.getvalue()).encode()  # BOM: Excel opens UTF-8 as such


@strawberry.type
class AuditMutation:
    @strawberry.mutation(description="导出审计事件（CSV 或 .xlsx；导出本身记入审计）")
    async def export_audit_events(
        self,
        info: Info[Context, None],
        format: AuditExportFormat,
        filter: AuditEventFilter | None = None,
    ) -> AuditExport:
        ctx = info.context
        wanted = await _domain_filter(ctx.tx, ctx.principal, filter)
        rows = await service.export_events(ctx.tx, ctx.principal, wanted, max_rows=MAX_EXPORT_ROWS)
        if format is AuditExportFormat.CSV:
            content = _csv(rows)
        else:
            content = write_members_xlsx(HEADERS, (_export_row(r) for r in rows), title="审计日志")
        home = ctx.principal.account.home_tenant_id if ctx.principal.account else None
        tenant = wanted.tenant_id or home or await service.platform_tenant_id(ctx.tx)
        await service.record(
            ctx.tx,
            ctx.principal,
            tenant_id=tenant,
            action="audit.export",
            object_type="AuditLog",
            object_id=tenant,
            details={"format": format.value, "rows": len(rows)},
        )
        stamp = datetime.now(UTC).strftime("%Y%m%d")
        return AuditExport(
            filename=f"审计日志-{stamp}.{format.value}",
            content_base64=base64.b64encode(content).decode(),
            row_count=len(rows),
        )
