"""A TCP proxy in front of PostgreSQL that counts the statements its clients send.

Only for counting (`bench.compare` routes a separate, short-lived copy of each server
through it, never a measured one). It reads the frontend protocol: a simple Query ('Q')
counts one statement per `;`-separated part and one round trip; in the extended protocol
an Execute ('E') counts one statement and a Sync ('S') one round trip. With `capture` on,
the text of each statement is kept (Parse/Bind map a portal back to its query text, so
prepared statements are named too).
"""

from __future__ import annotations

import asyncio
import struct
import threading
from dataclasses import dataclass, field

SSL_REQUEST = 80877103
GSSENC_REQUEST = 80877104


@dataclass
class Counts:
    statements: int = 0
    round_trips: int = 0
    texts: list[str] = field(default_factory=list)


class _Conn:
    def __init__(self) -> None:
        self.statements: dict[str, str] = {}  # prepared statement name -> text
        self.portals: dict[str, str] = {}  # portal name -> text


def _cstr(buf: bytes, start: int) -> tuple[str, int]:
    end = buf.index(b"\0", start)
    return buf[start:end].decode("utf-8", "replace"), end + 1


class StatementCounter:
    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.counts = Counts()
        self.capture = False
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.base_events.Server | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self.port = 0

    # ------------------------------------------------------------------ control

    def start(self) -> int:
        self._thread.start()
        future = asyncio.run_coroutine_threadsafe(self._listen(), self._loop)
        self.port = future.result(timeout=10)
        return self.port

    def stop(self) -> None:
        async def close() -> None:
            if self._server is not None:
                self._server.close()
            for task in asyncio.all_tasks():
                if task is not asyncio.current_task():
                    task.cancel()

        if self._thread.is_alive():
            asyncio.run_coroutine_threadsafe(close(), self._loop).result(timeout=10)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)

    def reset(self, capture: bool = False) -> None:
        with self._lock:
            self.counts = Counts()
            self.capture = capture

    def snapshot(self) -> Counts:
        with self._lock:
            c = self.counts
            return Counts(c.statements, c.round_trips, list(c.texts))

    # ------------------------------------------------------------------ proxy

    async def _listen(self) -> int:
        self._server = await asyncio.start_server(self._client, "127.0.0.1", 0)
        return int(self._server.sockets[0].getsockname()[1])

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.close()
            return
        downstream = asyncio.ensure_future(self._pipe(up_reader, writer))
        try:
            await self._upstream(reader, writer, up_writer)
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            up_writer.close()
            downstream.cancel()
            writer.close()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while chunk := await reader.read(65536):
                writer.write(chunk)
                await writer.drain()
        except (OSError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    async def _upstream(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        up: asyncio.StreamWriter,
    ) -> None:
        # Startup: SSL/GSS requests are refused here (the bytes must stay readable).
        while True:
            head = await reader.readexactly(8)
            length, code = struct.unpack("!ii", head)
            rest = await reader.readexactly(length - 8)
            if code in (SSL_REQUEST, GSSENC_REQUEST):
                writer.write(b"N")
                await writer.drain()
                continue
            up.write(head + rest)
            await up.drain()
            break
        conn = _Conn()
        while True:
            head = await reader.readexactly(5)
            kind = head[:1]
            (length,) = struct.unpack("!i", head[1:])
            body = await reader.readexactly(length - 4)
            self._observe(conn, kind, body)
            up.write(head + body)
            await up.drain()
            if kind == b"X":
                return

    def _observe(self, conn: _Conn, kind: bytes, body: bytes) -> None:
        texts: list[str] = []
        trips = 0
        if kind == b"Q":
            query, _ = _cstr(body, 0)
            texts = [p.strip() for p in query.split(";") if p.strip()]
            trips = 1
        elif kind == b"P":
            name, i = _cstr(body, 0)
            query, _ = _cstr(body, i)
            conn.statements[name] = query
        elif kind == b"B":
            portal, i = _cstr(body, 0)
            statement, _ = _cstr(body, i)
            conn.portals[portal] = conn.statements.get(statement, "?")
        elif kind == b"E":
            portal, _ = _cstr(body, 0)
            texts = [conn.portals.get(portal, "?").strip()]
        elif kind == b"S":
            trips = 1
        if not texts and not trips:
            return
        with self._lock:
            self.counts.statements += len(texts)
            self.counts.round_trips += trips
            if self.capture:
                self.counts.texts.extend(texts)
