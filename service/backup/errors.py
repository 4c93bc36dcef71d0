"""Failures of `pingyi backup` / `pingyi restore`: told to the operator on the command
line (code and Chinese message), never an answer of the API."""

from __future__ import annotations

from service.errors import ErrorCode

BACKUP_FAILED = ErrorCode("BACKUP_FAILED", "备份失败：{reason}")
RESTORE_FAILED = ErrorCode("RESTORE_FAILED", "恢复失败：{reason}")
RESTORE_TARGET_NOT_EMPTY = ErrorCode(
    "RESTORE_TARGET_NOT_EMPTY", "目标数据库已有 {tables} 张表，拒绝恢复；请恢复到新建的空库"
)
PG_TOOL_MISSING = ErrorCode(
    "PG_TOOL_MISSING", "找不到主版本不低于 {major} 的 {tool}（可设置 PINGYI_PG_BIN_DIR）"
)
