"""Live-update tests: real servers on 127.0.0.1, real WebSockets, one database.

`serve_app()` runs the app in this process under uvicorn, with an AppState of its own
(pool, principal cache, event listener: as a separate process has), so a test can
await its event hub. `serve_process()` runs `service.runtime:app_from_env` (what each
`pingyi serve` worker runs) in a subprocess. Both serve on a socket bound here
first: a client may connect at once and waits in the backlog until the server is up.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from service.app import AppState, create_app
from service.config import Settings
from service.runtime import build_state

PROTOCOL = "graphql-transport-ws"


def _bound_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    sock.set_inheritable(True)
    return sock


@dataclass
class Server:
    port: int
    state: AppState | None = None  # in-process servers only

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws(self) -> str:
        return f"ws://127.0.0.1:{self.port}/graphql"

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.http, timeout=30)


@contextlib.asynccontextmanager
async def serve_app(settings: Settings, owner_url: str) -> AsyncIterator[Server]:
    state = build_state(settings, owner_url)
    app = create_app(state)
    sock = _bound_socket()
    config = uvicorn.Config(app, ws="websockets-sansio", lifespan="on", log_level="warning")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        yield Server(port=sock.getsockname()[1], state=state)
    finally:
        server.should_exit = True
        await task
        sock.close()


@contextlib.contextmanager
def serve_process(settings: Settings, owner_url: str) -> Iterator[Server]:
    sock = _bound_socket()
    env = {
        **os.environ,
        "PINGYI_DATABASE_URL": owner_url,
        "PINGYI_DATA_DIR": str(settings.data_dir),
        "PINGYI_JWT_PRIVATE_KEY_FILE": str(settings.jwt_private_key_file),
        "PINGYI_MFA_REQUIRED": "0",
        "PINGYI_LOGIN_RATE_PER_MINUTE": "0",
        "PINGYI_AUDIT_CHECKPOINT_INTERVAL_SECONDS": "0",
    }
    process = subprocess.Popen(  # noqa: S603 (our own command)
        [
            sys.executable,
            "-m",
            "uvicorn",
            "service.runtime:app_from_env",
            "--factory",
            "--fd",
            str(sock.fileno()),
            "--ws",
            "websockets-sansio",
            "--log-level",
            "warning",
        ],
        env=env,
        pass_fds=(sock.fileno(),),
        cwd=Path(__file__).resolve().parents[2],
    )
    try:
        yield Server(port=sock.getsockname()[1])
    finally:
        process.terminate()
        process.wait(timeout=30)
        sock.close()


@pytest.fixture
async def server(settings: Settings, database: Any) -> AsyncIterator[Server]:
    async with serve_app(settings, database.owner_url) as running:
        yield running


class GraphQLWS:
    """A `graphql-transport-ws` client, written out so each message is visible."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws

    @classmethod
    @contextlib.asynccontextmanager
    async def connect(cls, url: str) -> AsyncIterator[GraphQLWS]:
        async with connect(url, subprotocols=[PROTOCOL], open_timeout=30) as ws:  # type: ignore[list-item]
            yield cls(ws)

    async def send(self, message: dict[str, Any]) -> None:
        await self.ws.send(json.dumps(message))

    async def recv(self) -> dict[str, Any]:
        frame = await self.ws.recv()
        # Text frames, as the protocol's clients (graphql-ws, browsers) expect.
        assert isinstance(frame, str), f"a binary frame: {frame!r}"
        return json.loads(frame)  # type: ignore[no-any-return]

    async def init(self, token: str | None) -> dict[str, Any]:
        payload = {"authorization": f"Bearer {token}"} if token else {}
        await self.send({"type": "connection_init", "payload": payload})
        return await self.recv()

    async def subscribe(self, op_id: str, query: str, variables: Any = None) -> None:
        await self.send(
            {"id": op_id, "type": "subscribe", "payload": {"query": query, "variables": variables}}
        )

    async def closed(self) -> tuple[int | None, str | None]:
        """Wait for the server to close; (code, reason). Messages before it fail."""
        try:
            message = await self.ws.recv()
        except ConnectionClosed as exc:
            return (exc.rcvd.code, exc.rcvd.reason) if exc.rcvd else (None, None)
        raise AssertionError(f"expected a close, got {message!r}")


@contextlib.asynccontextmanager
async def subscribed(
    server: Server, token: str, query: str, *, topic: str, op_id: str = "1"
) -> AsyncIterator[GraphQLWS]:
    """A connection with one subscription, returned once the server's event hub has
    the subscriber (so a write after this reaches it)."""
    assert server.state is not None
    hub = server.state.events
    async with GraphQLWS.connect(server.ws) as client:
        assert (await client.init(token))["type"] == "connection_ack"
        before = hub.subscribers(topic)
        await client.subscribe(op_id, query)
        await hub.wait_for_subscribers(topic, before + 1)
        yield client
