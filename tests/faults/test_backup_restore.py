"""`pingyi backup` / `pingyi restore`, as an operator runs them (the CLI, subprocesses).

The test database, with a world and a signed audit checkpoint, is backed up; the
archive is restored into a new, empty database of the same server (a second restore
into it is refused), which then serves over HTTP, passes `pingyi audit verify` against
the checkpoint taken before the backup, and shows a member's ID number with the
personal-data key, while a service with any other key cannot read it (PII_UNREADABLE)
and the sealed bytes do not open with another key.
"""

from __future__ import annotations

import asyncio
import secrets
import stat
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from sqlalchemy.engine import make_url

from service.app import create_app
from service.backup import restore
from service.cli import cmd_audit_checkpoint
from service.config import Settings
from service.crypto import FieldCipher, SealBroken, field_cipher
from service.db import libpq_url
from service.errors import DomainError
from service.runtime import build_state, install_field_cipher
from service.schema.ids import to_global_id
from tests.support import World, error_codes, gql, login, run_cli, scratch_database

REVEAL = "mutation($i: RevealMemberPiiInput!) { revealMemberPii(input: $i) { idNumber phone } }"


@pytest.fixture
def restored_url(database: Any) -> Iterator[str]:
    """An empty database beside the test database, dropped afterwards."""
    with scratch_database(database.owner_url, f"{make_url(database.owner_url).database}_r") as url:
        yield url


async def _reveal(client: httpx.AsyncClient, token: str, member_id: int) -> dict[str, Any]:
    return await gql(
        client,
        token,
        REVEAL,
        {"i": {"memberId": to_global_id("Member", member_id), "reason": "备份恢复核对"}},
        status=None,
    )


async def test_backup_restore_serves_verifies_and_needs_the_key(
    client: httpx.AsyncClient,
    world: World,
    database: Any,
    settings: Settings,
    restored_url: str,
    tmp_path: Path,
) -> None:
    member = world.members["memA1"].id
    token = await login(client, world.user("county"))
    original = (await _reveal(client, token, member))["data"]["revealMemberPii"]
    cli_env = {"PINGYI_DATA_DIR": str(settings.data_dir)}
    # A signed checkpoint of every chain head (the command's own code, in a thread: one
    # interpreter start less), then the backup.
    at_source = replace(settings, database_url=database.owner_url)
    assert await asyncio.to_thread(cmd_audit_checkpoint, at_source) == 0
    archive = tmp_path / "pingyi.dump"
    done = run_cli(database.owner_url, "backup", str(archive), **cli_env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert archive.stat().st_size > 0
    assert not (tmp_path / "pingyi.dump.partial").exists()
    # Every tenant's data is in it: readable by its owner only, whatever the umask.
    assert stat.S_IMODE(archive.stat().st_mode) == 0o600

    done = run_cli(restored_url, "restore", str(archive), **cli_env)
    assert done.returncode == 0, done.stdout + done.stderr
    # Only into an empty database: a second restore would mix two histories.
    with pytest.raises(DomainError) as refused:
        restore(settings, restored_url, archive)
    assert refused.value.code == "RESTORE_TARGET_NOT_EMPTY"

    verified = run_cli(restored_url, "audit", "verify", **cli_env)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "哈希链完整" in verified.stdout

    # The restored database serves, and shows the numbers with the key ...
    state = build_state(settings, restored_url)
    try:
        transport = httpx.ASGITransport(app=create_app(state))
        async with httpx.AsyncClient(transport=transport, base_url="http://restored") as c:
            restored_token = await login(c, world.user("county"))
            body = await _reveal(c, restored_token, member)
            assert body["data"]["revealMemberPii"] == original, body
    finally:
        await state.principals.stop()
        await state.db.dispose()

    # ... and not without it: a service with another key cannot open them,
    other_key = tmp_path / "other-field-key"
    other_key.write_text(secrets.token_bytes(32).hex())
    state = build_state(replace(settings, field_key_file=other_key), restored_url)
    try:
        transport = httpx.ASGITransport(app=create_app(state))
        async with httpx.AsyncClient(transport=transport, base_url="http://restored") as c:
            restored_token = await login(c, world.user("county"))
            body = await _reveal(c, restored_token, member)
            assert error_codes(body) == ["PII_UNREADABLE"], body
            assert original["idNumber"] not in str(body)
    finally:
        await state.principals.stop()
        await state.db.dispose()
        install_field_cipher(settings)  # the session's key again, for the other tests

    # nor do the sealed bytes in the archive's rows open with another key.
    with psycopg.connect(libpq_url(restored_url)) as conn:
        row = conn.execute(
            "SELECT tenant_id, id, id_number_enc FROM members WHERE id = %s", (member,)
        ).fetchone()
    assert row is not None
    bound = {"tenant_id": row[0], "table": "members", "column": "id_number", "row_id": row[1]}
    assert field_cipher().open(row[2], **bound) == original["idNumber"]
    with pytest.raises(SealBroken):
        FieldCipher(secrets.token_bytes(32)).open(row[2], **bound)
