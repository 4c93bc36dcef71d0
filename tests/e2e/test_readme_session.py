"""The README's curl session and the WeChat guide's session, pasted as is into bash
against a running `pingyi serve --demo` (a subprocess on a free port, its own database),
with the local code2session stand-in for WeChat. Only the address lines are changed
(`PINGYI=…`, `WX=…`): every other line runs as a reader would paste it.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest
from psycopg import sql
from sqlalchemy.engine import make_url

from service.db import create_database_if_missing, libpq_url
from tests.auth.wechat_server import APP_ID, APP_SECRET, serve
from tests.conftest import TestDatabase
from tests.support import free_port

REPO = Path(__file__).resolve().parents[2]
# The sessions are curl commands: without curl they are skipped on a developer's
# machine, never in CI (.ci/run sets CI), where a missing curl fails them.
pytestmark = pytest.mark.skipif(
    shutil.which("curl") is None and not os.environ.get("CI"), reason="curl is not installed"
)


def _ready(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.fixture(scope="module")
def demo(database: TestDatabase, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """`pingyi serve --demo` on a fresh database of the test server, WeChat configured
    to the stand-in: {"pingyi": URL, "wx": URL}."""
    name = f"pingyi_readme_{secrets.token_hex(4)}"
    create_database_if_missing(database.owner_url, name)
    owner = make_url(database.owner_url).set(database=name).render_as_string(hide_password=False)
    fake, wechat = serve()
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PINGYI_")}
    env.update(
        PINGYI_DATABASE_URL=owner,
        PINGYI_DATA_DIR=str(tmp_path_factory.mktemp("readme")),
        PINGYI_WECHAT_APP_ID=APP_ID,
        PINGYI_WECHAT_APP_SECRET=APP_SECRET,
        PINGYI_WECHAT_API_BASE=fake.base_url,
        PINGYI_AUDIT_CHECKPOINT_INTERVAL_SECONDS="0",
    )
    process = subprocess.Popen(  # noqa: S603 (the tests' own arguments)
        [sys.executable, "-m", "service.cli", "serve", "--demo", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 240
        while not _ready(port) and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.3)
        assert _ready(port), "pingyi serve --demo did not become ready"
        yield {"pingyi": f"http://127.0.0.1:{port}", "wx": fake.base_url}
    finally:
        process.terminate()
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        wechat.shutdown()
        wechat.server_close()
        with psycopg.connect(libpq_url(database.owner_url), autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def _block(path: Path, after: str) -> str:
    """The first ```sh block after the line starting with `after`."""
    text = path.read_text(encoding="utf-8")
    start = text.index(after)
    match = re.search(r"```sh\n(.*?)```", text[start:], re.S)
    assert match, f"no sh block after {after!r} in {path}"
    return match.group(1)


def _run(script: str) -> list[dict]:
    """Run in bash as pasted; each printed line is a JSON answer."""
    done = subprocess.run(  # noqa: S603
        ["bash", "-c", script],  # noqa: S607 (bash from PATH, as a reader's shell)
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert not done.stderr, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines() if line.strip()]


def test_the_readme_session_works_pasted_as_is(demo: dict) -> None:
    script = _block(REPO / "README.md", "## A session with curl")
    assert script.startswith("PINGYI=http://127.0.0.1:8000")
    answers = _run(script.replace("http://127.0.0.1:8000", demo["pingyi"], 1))
    tenants, created, accounts, logged_out = answers
    assert tenants["data"]["me"]["username"] == "county.org"
    assert tenants["data"]["tenants"]["pageInfo"]["hasNextPage"] is True
    assert created["data"]["createOrgUnit"]["orgUnit"]["name"] == "新兴镇"
    assert len(accounts["data"]["accounts"]["nodes"]) == 5
    assert logged_out == {"ok": True}  # with the access token of the rotated pair


def test_the_wechat_guide_session_works_pasted_as_is(demo: dict) -> None:
    script = _block(REPO / "docs" / "clients-wechat.md", "Then, once the demo answers")
    first = script.splitlines()[0]
    assert first == "PINGYI=http://127.0.0.1:8000; WX=http://127.0.0.1:18432", first
    script = script.replace(first, f"PINGYI={demo['pingyi']}; WX={demo['wx']}", 1)
    unbound, bound, me, risky, busy, unbound_again = _run(script)
    assert unbound["code"] == "WECHAT_NOT_BOUND"
    assert bound["data"]["bindWechat"]["account"]["username"] == "cg1.member"
    assert me["data"]["me"]["username"] == "cg1.member"
    assert risky["code"] == "WECHAT_RISKY_USER"
    assert busy["code"] == "WECHAT_UNAVAILABLE"
    assert unbound_again["data"]["unbindWechat"]["ok"] is True
