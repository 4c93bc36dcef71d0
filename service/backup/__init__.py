"""Backup and restore of the whole database (`pingyi backup` / `pingyi restore`);
service.py says how and why, docs/operations.md when and what to keep beside it."""

from service.backup.service import BackupResult, RestoreResult, backup, find_tool, restore

__all__ = ["BackupResult", "RestoreResult", "backup", "find_tool", "restore"]
