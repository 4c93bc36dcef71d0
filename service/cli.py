"""`pingyi`: serve | migrate | demo | create-admin | import-members | export-members |
audit verify | audit checkpoint | backup | restore | export-schema."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
import signal
import sys
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from service.config import Settings

T = TypeVar("T")


def _say(message: str) -> None:
    print(message, flush=True)


def _in_transaction(settings: Settings, owner: str, work: Callable[[Any], Awaitable[T]]) -> T:
    """Run `work(tx)` in one transaction as the application role; commit if it returns."""
    from service.runtime import build_state

    async def run() -> T:
        state = build_state(settings, owner)
        try:
            async with state.db.transaction() as tx:
                return await work(tx)
        finally:
            await state.db.dispose()

    return asyncio.run(run())


def _print_logins(logins: list[Any]) -> None:
    from service.authz.roles import ROLE_LABELS
    from service.demo import DEMO_PASSWORD

    _say(f"演示账号（密码均为 {DEMO_PASSWORD}）：")
    for login in logins:
        _say(f"  {login.username:<15} {ROLE_LABELS[login.role]}")


def cmd_migrate(settings: Settings) -> int:
    from service.runtime import prepare_database

    _say("正在迁移数据库 ...")
    prepare_database(settings)
    _say("数据库已是最新版本。")
    return 0


def cmd_demo(settings: Settings) -> list[Any]:
    from service.demo import load_demo
    from service.runtime import prepare_database

    owner = prepare_database(settings)
    _say("正在载入演示数据 ...")
    logins = _in_transaction(settings, owner, lambda s: load_demo(s, progress=_say))
    _print_logins(logins)
    return logins


def cmd_serve(settings: Settings, demo: bool) -> int:
    import uvicorn

    from service.db import stop_embedded
    from service.observability.logs import uvicorn_log_config
    from service.runtime import prepare_database

    if settings.migrate_on_start:
        owner = prepare_database(settings)
    else:
        # Migrated beforehand (the chart's hook Job); this process may hold only the
        # application role's URL, which the workers then read from the environment.
        from service.runtime import connection_base

        owner = connection_base(settings)
    if demo:
        from service.demo import load_demo

        _say("正在载入演示数据 ...")
        logins = _in_transaction(settings, owner, lambda tx: load_demo(tx, progress=_say))
        _print_logins(logins)
    _say(f"Pingyi 已启动：GraphQL 地址 http://{settings.host}:{settings.port}/graphql")
    _say(f"登录：POST http://{settings.host}:{settings.port}/auth/token")
    # Each worker builds its own app (pool, caches, listener) from the environment; the
    # database is the one this process migrated (an embedded server lives as long as it).
    if owner != settings.app_database_url:  # not an application-role-only process
        os.environ["PINGYI_DATABASE_URL"] = owner
    if demo:
        # The demo password and the demo administrators' missing second factor are
        # accepted only while serving with --demo (service/auth/credentials.py).
        os.environ["PINGYI_DEMO"] = "1"
    # uvicorn catches SIGTERM, shuts down, then raises the signal again: with its default
    # action the process would die there, before the embedded PostgreSQL is stopped.
    # As SystemExit it unwinds through the `finally` below instead.
    previous = signal.signal(signal.SIGTERM, _exit_on_sigterm)
    try:
        uvicorn.run(
            "service.runtime:app_from_env",
            factory=True,
            host=settings.host,
            port=settings.port,
            workers=settings.workers,
            # GraphQL subscriptions: WebSocket on /graphql (service/schema/transport.py)
            ws="websockets-sansio",
            log_level="info",
            access_log=False,  # Pingyi writes its own line per request (no personal data)
            # JSON lines in every worker (PINGYI_LOG_FORMAT; service/observability/logs.py)
            log_config=uvicorn_log_config(settings.log_format, settings.access_log),
            # After SIGTERM: finish open requests, then close what is left (the chart's
            # terminationGracePeriodSeconds = preStop sleep + this + a margin)
            timeout_graceful_shutdown=settings.graceful_shutdown_seconds,
        )
    finally:
        signal.signal(signal.SIGTERM, previous)
        stop_embedded()
    return 0


def _exit_on_sigterm(signum: int, frame: Any) -> None:
    raise SystemExit(0)


def cmd_create_admin(settings: Settings, args: argparse.Namespace) -> int:
    from service.auth.service import create_account, operator_principal
    from service.authz.roles import Role
    from service.authz.service import assign_role
    from service.errors import DomainError
    from service.runtime import prepare_database
    from service.tenants import repository as units

    password = os.environ.get("PINGYI_ADMIN_PASSWORD") or getpass.getpass("新账号的密码：")
    owner = prepare_database(settings)

    async def work(tx: Any) -> str:
        principal = await operator_principal(tx)
        if args.county:
            unit = await units.county_by_code(tx, args.county)
            if unit is None:
                raise DomainError("NOT_FOUND", f"县“{args.county}”不存在", http_status=404)
        else:
            unit = await units.root_unit(tx)
        account = await create_account(
            tx,
            principal,
            username=args.username,
            display_name=args.display_name or args.username,
            password=password,
            home_org_unit_id=unit.id,
        )
        await assign_role(
            tx, principal, account_id=account.id, role=Role(args.role), org_unit_id=unit.id
        )
        return f"已创建账号 {account.username}（{args.role}，{unit.name}）"

    try:
        _say(_in_transaction(settings, owner, work))
    except DomainError as exc:
        _say(f"失败：{exc.message}（{exc.code}）")
        return 1
    return 0


def _progress_printer(stream: Any) -> Callable[[int, int], None]:
    """Progress on `stream`: a bar redrawn in place on a terminal, plain lines otherwise."""
    tty = stream.isatty()

    def show(done: int, total: int) -> None:
        if tty:
            width = 30
            filled = width * done // total if total else width
            bar = "#" * filled + "-" * (width - filled)
            end = "\n" if done >= total else ""
            stream.write(f"\r写入党员 [{bar}] {done}/{total}{end}")
        else:
            stream.write(f"已写入 {done}/{total} 行\n")
        stream.flush()

    return show


def cmd_import_members(settings: Settings, args: argparse.Namespace) -> int:
    import json

    from service.auth.service import operator_principal
    from service.errors import DomainError
    from service.members.excel import FILE_TOO_LARGE
    from service.members.imports import import_file
    from service.runtime import prepare_database
    from service.tenants.rules import TENANT_KINDS

    def fail(message: str) -> int:
        print(f"导入失败：{message}", file=sys.stderr, flush=True)
        return 1

    try:
        size = os.path.getsize(args.file)
        if size > settings.max_upload_bytes:
            raise FILE_TOO_LARGE.error(limit=f"{settings.max_upload_bytes / 2**20:g} MB")
        with open(args.file, "rb") as fh:
            data = fh.read()
    except OSError as exc:
        return fail(f"无法读取文件 {args.file}（{exc.strerror or exc}）")
    except DomainError as exc:
        return fail(f"{exc.message}（{exc.code}）")
    owner = prepare_database(settings)

    async def work(tx: Any) -> Any:
        principal = await operator_principal(tx)
        found = await tx.rows(
            "SELECT id, name FROM org_units WHERE id = tenant_id AND code = %(code)s"
            " AND kind = ANY(%(kinds)s)",
            {"code": args.tenant, "kinds": sorted(k.value for k in TENANT_KINDS)},
        )
        if not found:
            raise DomainError("NOT_FOUND", f"编码为“{args.tenant}”的乡镇（租户）不存在")
        if len(found) > 1:
            raise DomainError("NOT_FOUND", f"编码“{args.tenant}”对应多个租户，无法确定导入到哪一个")
        report, result = await import_file(
            tx,
            principal,
            tenant_unit_id=found[0].id,
            data=data,
            filename=os.path.basename(args.file),
            settings=settings,
            dry_run=args.dry_run,
            progress=_progress_printer(sys.stderr),
        )
        return found[0].name, report, result

    try:
        tenant_name, report, result = _in_transaction(settings, owner, work)
    except DomainError as exc:
        return fail(f"{exc.message}（{exc.code}）")
    if args.report:
        with open(args.report, "w", encoding="utf-8") as fh:
            json.dump(report.as_json(), fh, ensure_ascii=False, indent=2)
    shown = 50
    for problem in report.rejected[:shown]:
        _say(f"第 {problem.row} 行 {problem.column}：{problem.message}（{problem.code}）")
    if len(report.rejected) > shown:
        more = len(report.rejected) - shown
        where = "见报告文件" if args.report else "可用 --report 导出"
        _say(f"……另有 {more} 条未列出，{where}")
    _say(
        f"{tenant_name}：共 {report.rows} 行，合格 {report.accepted} 行，"
        f"已在台账中 {report.already_present} 行，问题 {len(report.rejected)} 条。"
    )
    if result is None:
        _say("试运行：未写入任何数据。")
    else:
        _say(f"已导入 {result.imported} 名党员（已在台账中 {result.already_present} 名）。")
    return 0


def cmd_export_members(settings: Settings, args: argparse.Namespace) -> int:
    """The tenant's (or one unit's) member list as .xlsx, as the platform operator;
    masked unless --unmasked with a --reason (audited like any export)."""
    from service.auth.service import operator_principal
    from service.errors import DomainError
    from service.members.export import export_members
    from service.members.service import MemberQuery
    from service.runtime import prepare_database
    from service.tenants.rules import TENANT_KINDS

    def fail(message: str) -> int:
        print(f"导出失败：{message}", file=sys.stderr, flush=True)
        return 1

    if args.unmasked and not args.reason:
        return fail("导出完整身份证号与电话须用 --reason 说明事由")
    owner = prepare_database(settings)

    def progress(rows: int) -> None:
        print(f"已读取 {rows} 名党员", file=sys.stderr, flush=True)

    async def work(tx: Any) -> Any:
        principal = await operator_principal(tx)
        found = await tx.rows(
            "SELECT id, name FROM org_units WHERE id = tenant_id AND code = %(code)s"
            " AND kind = ANY(%(kinds)s)",
            {"code": args.tenant, "kinds": sorted(k.value for k in TENANT_KINDS)},
        )
        if len(found) != 1:
            raise DomainError("NOT_FOUND", f"编码为“{args.tenant}”的租户不存在或不唯一")
        unit_id = found[0].id
        if args.org_unit:
            unit = await tx.first(
                "SELECT id FROM org_units WHERE tenant_id = %(t)s AND code = %(code)s",
                {"t": unit_id, "code": args.org_unit},
            )
            if unit is None:
                raise DomainError("NOT_FOUND", f"编码为“{args.org_unit}”的组织不存在")
            unit_id = unit.id
        return await export_members(
            tx,
            principal,
            MemberQuery(org_unit_id=unit_id),
            reason=args.reason if args.unmasked else None,
            progress=progress,
        )

    try:
        made = _in_transaction(settings, owner, work)
    except DomainError as exc:
        return fail(f"{exc.message}（{exc.code}）")
    try:
        with open(args.out, "wb") as fh:
            fh.write(made.content)
    except OSError as exc:
        return fail(f"无法写入 {args.out}（{exc.strerror or exc}）")
    kind = "脱敏" if made.masked else "完整信息"
    _say(f"已导出 {made.count} 名党员（{kind}）到 {args.out}")
    return 0


def _all_tenants_transaction(settings: Settings, work: Callable[[Any], Awaitable[T]]) -> T:
    """Run `work(tx)` as the application role with every tenant in scope (the audit
    commands read every chain)."""
    from service.audit.service import all_tenant_ids
    from service.runtime import connection_base

    async def scoped(tx: Any) -> T:
        tx.widen(await all_tenant_ids(tx))
        return await work(tx)

    return _in_transaction(settings, connection_base(settings), scoped)


def cmd_audit_verify(settings: Settings) -> int:
    """Recompute every chain and hold each against its last signed checkpoint."""
    from service.audit.checkpoints import last_checkpoints
    from service.audit.service import all_tenant_ids, verify_tenants

    _say("正在校验审计日志哈希链 ...")
    checkpoints, problems = last_checkpoints(settings)

    async def work(tx: Any) -> Any:
        return await verify_tenants(tx, await all_tenant_ids(tx), checkpoints, problems)

    result = _all_tenants_transaction(settings, work)
    findings = 0
    for problem in result.problems:
        findings += 1
        _say(f"检查点：{problem.reason}")
    for tenant in result.tenants:
        if tenant.broken is not None:
            findings += 1
            _say(f"断链：租户 {tenant.tenant_id} 第 {tenant.broken.seq} 条：{tenant.broken.reason}")
        elif tenant.checkpoint is not None:
            findings += 1
            _say(
                f"检查点不符：租户 {tenant.tenant_id} 第 {tenant.checkpoint.seq} 条："
                f"{tenant.checkpoint.reason}"
            )
    if findings:
        _say(f"已检查 {result.checked} 条事件，发现 {findings} 处问题。")
        return 1
    _say(f"已检查 {result.checked} 条事件，哈希链完整，与最后检查点一致。")
    return 0


def cmd_audit_checkpoint(settings: Settings) -> int:
    """Sign every tenant's chain head now and append it to the checkpoint file."""
    from service.audit.checkpoints import HEADS_SQL, checkpoint_file, write_checkpoints

    async def work(tx: Any) -> list[Any]:
        return list(await tx.rows(HEADS_SQL))

    heads = _all_tenants_transaction(settings, work)
    made = write_checkpoints(settings, [(r.tenant_id, r.seq, r.hash) for r in heads])
    _say(f"已为 {len(made)} 个租户的审计链写入签名检查点：{checkpoint_file(settings)}")
    return 0


def cmd_backup(settings: Settings, path: str) -> int:
    """pg_dump (custom format) of the whole database with the owner URL."""
    from pathlib import Path

    from service.backup import backup
    from service.errors import DomainError
    from service.runtime import owner_url

    try:
        made = backup(settings, owner_url(settings), Path(path))
    except DomainError as exc:
        print(f"{exc.message}（{exc.code}）", file=sys.stderr, flush=True)
        return 1
    _say(
        f"已备份到 {made.path}（{made.size_bytes} 字节，迁移版本 {made.revision}，"
        f"PostgreSQL {made.server_major}，{made.tool}）"
    )
    _say("另请保管个人信息主密钥（PINGYI_FIELD_KEY_FILE）：没有它，证件号与电话无法读取。")
    return 0


def cmd_restore(settings: Settings, path: str) -> int:
    """pg_restore into the empty database of the owner URL, then migrate."""
    from pathlib import Path

    from service.backup import restore
    from service.errors import DomainError
    from service.runtime import owner_url

    try:
        made = restore(settings, owner_url(settings), Path(path))
    except DomainError as exc:
        print(f"{exc.message}（{exc.code}）", file=sys.stderr, flush=True)
        return 1
    _say(f"已恢复 {made.tables} 张表，迁移版本 {made.revision}；请运行 pingyi audit verify。")
    return 0


def cmd_export_schema(path: str) -> int:
    from service.schema.root import SCHEMA_FILE, export_sdl

    target = path or str(SCHEMA_FILE)
    with open(target, "w", encoding="utf-8") as fh:
        fh.write(export_sdl())
    _say(f"已写入 {target}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pingyi", description="评议：民主评议党员服务")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="启动服务（无 PINGYI_DATABASE_URL 时使用内嵌 PostgreSQL）")
    serve.add_argument("--demo", action="store_true", help="载入演示数据")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.add_argument("--workers", type=int, help="工作进程数（默认 1，或 PINGYI_WORKERS）")
    sub.add_parser("migrate", help="把数据库迁移到最新版本（可重复执行）")
    sub.add_parser("demo", help="向已有数据库载入演示数据")
    admin = sub.add_parser("create-admin", help="创建管理员账号")
    admin.add_argument("username")
    admin.add_argument(
        "--role",
        default="system_admin",
        choices=["system_admin", "security_admin", "auditor", "county_organizer"],
    )
    admin.add_argument("--county", help="县的编码；省略时在平台根节点任职")
    admin.add_argument("--display-name")
    members = sub.add_parser("import-members", help="从 .xlsx 导入党员台账（以平台运维身份）")
    members.add_argument("file", help="党员台账 .xlsx 文件")
    members.add_argument("--tenant", required=True, help="乡镇等租户的组织编码")
    members.add_argument("--dry-run", action="store_true", help="只检查并输出报告，不写入")
    members.add_argument("--report", help="把检查报告（JSON）写到该路径")
    exporting = sub.add_parser("export-members", help="导出党员名册 .xlsx（以平台运维身份）")
    exporting.add_argument("--tenant", required=True, help="乡镇等租户的组织编码")
    exporting.add_argument("--org-unit", help="只导出该组织（编码）以下的党员")
    exporting.add_argument("--unmasked", action="store_true", help="导出完整身份证号与电话")
    exporting.add_argument("--reason", help="导出完整信息的事由（记入审计）")
    exporting.add_argument("--out", required=True, help="写入的 .xlsx 路径")
    audit = sub.add_parser("audit", help="审计日志")
    audit_sub = audit.add_subparsers(dest="audit_command", required=True)
    audit_sub.add_parser("verify", help="重算哈希链并与签名检查点比对，报告第一处问题")
    audit_sub.add_parser("checkpoint", help="签名各租户审计链的链头，追加到检查点文件")
    backup = sub.add_parser("backup", help="备份整个数据库（pg_dump 自定义格式，用属主连接）")
    backup.add_argument("path", help="备份文件路径")
    restore = sub.add_parser("restore", help="把备份恢复到空数据库（PINGYI_DATABASE_URL），再迁移")
    restore.add_argument("path", help="备份文件路径")
    export = sub.add_parser("export-schema", help="导出 schema.graphql")
    export.add_argument("path", nargs="?", default="")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    settings = Settings.from_env()
    if args.command == "serve":
        from dataclasses import replace

        settings = replace(
            settings,
            host=args.host or settings.host,
            port=args.port or settings.port,
            workers=args.workers or settings.workers,
        )
    if args.command == "serve":
        return cmd_serve(settings, args.demo)
    if args.command == "migrate":
        return cmd_migrate(settings)
    if args.command == "demo":
        cmd_demo(settings)
        return 0
    if args.command == "create-admin":
        return cmd_create_admin(settings, args)
    if args.command == "import-members":
        return cmd_import_members(settings, args)
    if args.command == "export-members":
        return cmd_export_members(settings, args)
    if args.command == "audit" and args.audit_command == "checkpoint":
        return cmd_audit_checkpoint(settings)
    if args.command == "audit":
        return cmd_audit_verify(settings)
    if args.command == "backup":
        return cmd_backup(settings, args.path)
    if args.command == "restore":
        return cmd_restore(settings, args.path)
    if args.command == "export-schema":
        return cmd_export_schema(args.path)
    return 2


if __name__ == "__main__":
    sys.exit(main())
