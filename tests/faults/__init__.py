"""Faults survived: a throwaway PostgreSQL restarted and killed under load, SIGTERM,
rolling updates, backup and restore (docs/operations.md)."""
