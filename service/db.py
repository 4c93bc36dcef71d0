"""PostgreSQL: the embedded server, the connection pool, and one transaction per request.

Two connections matter:
- the *owner* URL runs migrations and owns the tables;
- the *application* URL connects as a role that is neither superuser nor owner, so the
  forced row-level security policies apply to every query the service makes.

With no `PINGYI_DATABASE_URL` an embedded PostgreSQL (pgserver) is started in the data
directory; it survives restarts.

The request path talks to PostgreSQL through psycopg directly (no ORM, no greenlet
bridge): SQLAlchemy describes the tables and builds the write statements, psycopg sends
them. Every message is a *simple query* with the values bound client-side by psycopg's
escaping, so the tenant scope (`SET LOCAL`, which takes no parameters) travels in the
same network round trip as the first statement that needs it:

- a read-only request (a GraphQL query) sends `SET LOCAL transaction_read_only = on;
  SET LOCAL …; SET LOCAL …; SELECT …` per round trip, an implicit read-only transaction
  each. Under READ COMMITTED every statement takes its own snapshot anyway, so this
  reads exactly what one explicit transaction would, and needs no BEGIN or COMMIT.
  Statements that resolvers issue in the same tick of the event loop (sibling fields,
  DataLoaders) share one message;
- a writing request (a mutation, the CLI, login) opens an explicit transaction with its
  first message (`BEGIN; SET LOCAL …; SET LOCAL …; INSERT …`) and ends with one COMMIT
  or ROLLBACK.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import warnings
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg
from psycopg import pq, sql
from psycopg.rows import namedtuple_row
from psycopg_pool import AsyncConnectionPool, PoolTimeout
from sqlalchemy import MetaData
from sqlalchemy.dialects.postgresql import psycopg as pg_dialect
from sqlalchemy.engine import URL, make_url
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.sql import ClauseElement

from service.config import Settings
from service.errors import STATEMENT_TIMEOUT, UNAVAILABLE, DomainError

log = logging.getLogger(__name__)

_NO_SPAN = contextlib.nullcontext()

EMBEDDED_DB_NAME = "pingyi"

Params = dict[str, Any] | Sequence[Any] | None
Statement = str | ClauseElement


class Base(DeclarativeBase):
    """Table definitions. Mapped classes describe tables and give statements their
    columns (`OrgUnit.id`); rows are read as named tuples, never as ORM instances."""

    metadata = MetaData(
        naming_convention={
            "ix": "ix_%(table_name)s_%(column_0_N_name)s",
            "uq": "uq_%(table_name)s_%(column_0_N_name)s",
            "ck": "ck_%(table_name)s_%(constraint_name)s",
            "fk": "fk_%(table_name)s_%(column_0_N_name)s",
            "pk": "pk_%(table_name)s",
        }
    )


def sqlalchemy_url(url: str | URL) -> URL:
    """Any postgres URL -> the SQLAlchemy psycopg 3 dialect URL."""
    parsed = make_url(str(url)) if isinstance(url, str) else url
    return parsed.set(drivername="postgresql+psycopg")


def libpq_url(url: str | URL) -> str:
    """Any postgres URL -> a plain libpq conninfo URL that psycopg.connect accepts."""
    parsed = make_url(str(url)) if isinstance(url, str) else url
    return parsed.set(drivername="postgresql").render_as_string(hide_password=False)


def start_embedded(data_dir: Path) -> str:
    """Start (or reuse) the embedded PostgreSQL; return the owner URL of the pingyi database."""
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset (containers, CI): harmless.
        warnings.simplefilter("ignore")
        import pgserver  # imported lazily: only the embedded path needs it

    pgdata = data_dir / "pgdata"
    pgdata.mkdir(parents=True, exist_ok=True)
    server = pgserver.get_server(pgdata, cleanup_mode="stop")
    _embedded.append(server)
    admin_url = server.get_uri()
    create_database_if_missing(admin_url, EMBEDDED_DB_NAME)
    return server.get_uri(EMBEDDED_DB_NAME)


# The embedded servers this process started or joined (pgserver handles).
_embedded: list[Any] = []


def stop_embedded() -> None:
    """Let go of the embedded PostgreSQL this process started: pgserver stops it when
    no other process holds a handle on it (a concurrent `pingyi` command keeps it up).

    pgserver also does this at interpreter exit, but a process killed by SIGTERM's
    default action never gets there (uvicorn re-raises the signal it caught), which
    left the server running after `pingyi serve` stopped; the CLI calls this itself."""
    while _embedded:
        _embedded.pop().cleanup()


def create_database_if_missing(admin_url: str, name: str) -> None:
    with psycopg.connect(libpq_url(admin_url), autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if not exists:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def app_url_for(settings: Settings, owner_url: str) -> URL:
    if settings.app_database_url:
        return sqlalchemy_url(settings.app_database_url)
    return sqlalchemy_url(owner_url).set(
        username=settings.app_db_role, password=settings.app_db_password
    )


@dataclass(frozen=True)
class Scope:
    """What one transaction may see (lock 2): `app.account_id` and `app.tenant_ids`.

    Produced by authentication (the principal's grants) or by the CLI operator; a
    transaction holds one and may only widen it (a principal creating a tenant inside
    its own domain)."""

    account_id: int | None
    tenant_ids: frozenset[int]

    @classmethod
    def of(cls, account_id: int | None, tenant_ids: Iterable[int]) -> Scope:
        return cls(None if account_id is None else int(account_id), frozenset(tenant_ids))

    def widened(self, tenant_ids: Iterable[int]) -> Scope:
        return Scope(self.account_id, self.tenant_ids | frozenset(int(t) for t in tenant_ids))

    def statements(self) -> list[str]:
        """`SET LOCAL` of both settings. SET takes no bind parameters, so the values are
        formatted from integers only: nothing a client sends reaches this text."""
        account = "" if self.account_id is None else str(int(self.account_id))
        tenants = ",".join(str(int(t)) for t in sorted(self.tenant_ids))
        return [
            f"SET LOCAL app.account_id = '{account}'",
            f"SET LOCAL app.tenant_ids = '{tenants}'",
        ]

    def set_local(self) -> str:
        """The same as one piece of SQL text."""
        return "; ".join(self.statements()) + "; "


EMPTY_SCOPE = Scope(None, frozenset())
_IN_TRANSACTION = psycopg.pq.TransactionStatus.INTRANS
_IN_FAILED_TRANSACTION = psycopg.pq.TransactionStatus.INERROR
_SEPARATOR = "\n;\n"
# Deferred statements (`Transaction.defer`) a transaction holds before it sends them.
DEFER_BATCH = 256

_DIALECT = pg_dialect.dialect()


def int_array(values: Iterable[int]) -> str:
    """PostgreSQL's text form of an integer array ("{1,2,3}"), to bind as one value and
    cast in SQL (`%(ids)s::bigint[]`). psycopg binds a list element by element, each
    dumped and checked for quoting; for arrays of tens of thousands (a county's close)
    that cost more than the statement. Only integers: nothing in it needs quoting."""
    return "{" + ",".join(map(str, map(int, values))) + "}"


def compile_statement(statement: ClauseElement) -> tuple[str, dict[str, Any]]:
    """A SQLAlchemy Core statement -> (SQL with %(name)s placeholders, its values)."""
    compiled = statement.compile(dialect=_DIALECT, compile_kwargs={"render_postcompile": True})
    return str(compiled), dict(compiled.params)


class GuardFailed(Exception):
    """The transaction's guard answered false: everything sent with it is void, and
    the transaction refuses further statements (the caller starts over)."""


class ConnectionUnavailable(DomainError):
    """No database connection could be had for the statement (pool exhausted).

    A coded error (UNAVAILABLE, 503), so every surface answers it as "busy, retry"
    rather than as an internal error."""

    def __init__(self) -> None:
        err = UNAVAILABLE.error()
        super().__init__(err.code, err.message, http_status=err.http_status)


class StatementCancelled(Exception):
    """The statement was sent with a sibling's that was cancelled (the request fails)."""


class TransactionFailed(Exception):
    """A statement of a writing transaction failed earlier: the transaction is lost."""


@dataclass
class _Pending:
    statement: str
    params: Params
    future: asyncio.Future[list[Any]]


class Transaction:
    """One request's unit of work on one pooled connection.

    Statements of one request may be issued concurrently (sibling resolvers,
    DataLoaders): they queue, and whatever is queued when the connection is free goes
    out as one message. A statement whose caller is cancelled before it was sent is not
    sent; one cancelled while on the wire is cancelled on the server by psycopg, which
    drains the connection before re-raising, and a writing transaction is then failed,
    so it can only roll back. No task is started per statement.

    A reading transaction (`write=False`) is read-only on the server too: each message
    starts with `SET LOCAL transaction_read_only = on`, so a write cannot slip through
    the implicit per-message transactions that rollback would not undo.
    """

    def __init__(
        self,
        db: Database,
        scope: Scope,
        *,
        write: bool,
        guard: tuple[str, Params] | None = None,
        read_only: bool = True,
    ) -> None:
        self.db = db
        self._write = write
        # A non-writing transaction that may still write: each message is its own
        # implicit transaction, committed when it ends (one-statement bookkeeping such
        # as the principal load recording a session's last activity, service/auth).
        self._read_only = read_only
        # A statement answering one boolean that must be true for this transaction's
        # work to count; it rides in the first message, until it has answered.
        self._guard: tuple[str, Params] | None = guard
        self._stale = False
        self._finished = False
        self._sent_any = False
        self._scope = scope
        self._scope_sent = False
        self._begun = False  # a message that starts with BEGIN went (or was going) out
        self._failed = False
        self._conn: psycopg.AsyncConnection[Any] | None = None
        self._pending: list[_Pending] = []
        # Appends that go out with the COMMIT (see `defer`)
        self._deferred: list[tuple[str, Params]] = []
        self._lock = asyncio.Lock()
        self._auth_changes: set[str] = set()
        # The request's "now" by the service's clock (AppState.clock), set by the GraphQL
        # view so business dates follow an injected clock (service/clock.py); None
        # outside a request (the CLI): the wall clock then.
        self.now: datetime | None = None

    @property
    def write(self) -> bool:
        return self._write

    @write.setter
    def write(self, value: bool) -> None:
        """The mode may be set until the first message goes out, never after."""
        if value != self._write and self._sent_any:
            raise RuntimeError("a transaction's mode is fixed once a statement was sent")
        self._write = value

    @property
    def scope(self) -> Scope:
        return self._scope

    @property
    def stale(self) -> bool:
        """The guard answered false, or could not answer."""
        return self._stale

    def rescope(self, scope: Scope) -> None:
        """Use `scope` from the next statement on (login: the account's home tenant)."""
        if scope != self._scope:
            self._scope = scope
            self._scope_sent = False

    def widen(self, tenant_ids: Iterable[int]) -> None:
        self.rescope(self._scope.widened(tenant_ids))

    def auth_changed(self, what: str) -> None:
        """Note that this transaction changes who may do what (`account:<id>`,
        `session:<uuid>`, `tenants`). Database triggers tell every process after the
        commit (NOTIFY); this tells this process's caches synchronously at the commit,
        before the answer reaches the client."""
        self._auth_changes.add(what)

    # --- statements ---------------------------------------------------------------

    async def rows(self, statement: Statement, params: Params = None) -> list[Any]:
        """Every row of one statement (named tuples); [] for a statement without rows.

        A string statement with `params` uses %(name)s placeholders (and %% for a
        literal %); without `params` it is sent as written. One statement per call."""
        if isinstance(statement, ClauseElement):
            statement, params = compile_statement(statement)
        future: asyncio.Future[list[Any]] = asyncio.get_running_loop().create_future()
        mine = _Pending(statement, params, future)
        self._pending.append(mine)
        # Whoever holds the lock sends everything queued, its own and its siblings'; the
        # others find their answer ready when their turn comes. If the sender is
        # cancelled, the next in line sends what is left.
        try:
            async with self._lock:
                if not future.done():
                    await asyncio.sleep(0)  # let the siblings of this tick queue theirs
                    conn = await self._connection()
                    while self._pending:
                        batch, self._pending = self._pending, []
                        await self._send(conn, batch)
        except asyncio.CancelledError:
            if mine in self._pending:  # not sent yet: it never will be
                self._pending.remove(mine)
            raise
        except BaseException as exc:
            self._fail_pending(exc if isinstance(exc, Exception) else StatementCancelled())
            raise
        try:
            return future.result()
        except (psycopg.errors.QueryCanceled, psycopg.errors.LockNotAvailable) as exc:
            # statement_timeout / lock_timeout: the server gave up on it, which the
            # client may retry; the connection itself is fine.
            raise STATEMENT_TIMEOUT.error() from exc
        except psycopg.OperationalError as exc:
            if connection_lost(exc):
                # The server went away under the statement (restart, failover,
                # pg_terminate_backend): nothing of this transaction was kept, and the
                # same request succeeds once the pool reconnects. A retryable 503.
                raise ConnectionUnavailable() from exc
            raise

    async def first(self, statement: Statement, params: Params = None) -> Any | None:
        found = await self.rows(statement, params)
        return found[0] if found else None

    async def one(self, statement: Statement, params: Params = None) -> Any:
        found = await self.rows(statement, params)
        if len(found) != 1:
            raise LookupError(f"expected one row, got {len(found)}")
        return found[0]

    async def scalar(self, statement: Statement, params: Params = None) -> Any:
        row = await self.first(statement, params)
        return None if row is None else row[0]

    async def execute(self, statement: Statement, params: Params = None) -> None:
        await self.rows(statement, params)

    async def defer(self, statement: Statement, params: Params = None) -> None:
        """Queue a statement without rows to go out with the COMMIT, in the same message.

        For appends whose trigger takes a lock held to the end of the transaction (the
        audit chain's per-tenant lock, migration 0005): sent with the COMMIT, the lock
        is held for one step on the server, never across a round trip and the event
        loop's queue, so concurrent writers of one tenant do not wait on each other's
        round trips. Its failure fails the commit (nothing is written). A transaction
        that queues many sends them in batches of `DEFER_BATCH` as it goes (bulk work:
        the lock is then held longer, the message stays small). Nothing later in the
        transaction sees a deferred row: defer only what no statement of it reads."""
        if not self._write:
            raise TransactionFailed("deferred statements belong to a writing transaction")
        if isinstance(statement, ClauseElement):
            statement, params = compile_statement(statement)
        self._deferred.append((statement, params))
        if len(self._deferred) >= DEFER_BATCH:
            await self.flush_deferred()

    async def flush_deferred(self) -> None:
        """Send the deferred statements now, in one message: for a step that must see
        their effect later in the same transaction (closing a round after ballots cast
        in the same transaction, as seeding does)."""
        batch, self._deferred = self._deferred, []
        # Queued in one tick, they go out as one message.
        await asyncio.gather(*(self.rows(text, values) for text, values in batch))

    async def confirm(self) -> bool:
        """Whether the guard answered true; sends it alone if no message has carried it
        yet (a request that needed no statement). An error counts as false."""
        if self._guard is not None and not self._stale and not self._failed:
            async with self._lock:
                if self._guard is not None:
                    await self._send(await self._connection(), [])
        return self._guard is None and not self._stale

    def _prefix(self) -> list[str]:
        """The statements that must precede the next message's own."""
        if not self._write:
            read_only = ["SET LOCAL transaction_read_only = on"] if self._read_only else []
            return [*read_only, *self._scope.statements()]
        prefix = [] if self._begun else ["BEGIN"]
        if not self._scope_sent:
            prefix += self._scope.statements()
        return prefix

    async def _send(self, conn: psycopg.AsyncConnection[Any], batch: list[_Pending]) -> None:
        """Send `batch`, with the prefix and the guard while it has not answered, as
        one message, and give every statement of it its answer (a result or an error).
        Only the sender's own cancellation is raised from here."""
        try:
            if self._stale:
                raise GuardFailed()
            if self._failed:
                raise TransactionFailed("transaction already failed")
            batch = self._bind(conn, batch)
            guard = self._bound_guard(conn)
            if not batch and guard is None:
                return
            prefix = self._prefix()
            own = [*([guard] if guard else []), *(p.statement for p in batch)]
            # A newline before each ';' ends a trailing `--` comment of the statement
            # before it, so no statement can swallow the next.
            message = _SEPARATOR.join([*prefix, *own])
            self.db.observe(message, len(prefix) + len(own))
            self._sent_any = True
            if self._write and not self._begun:
                self._begun = True
            try:
                with self.db.span(len(prefix) + len(own)):
                    results = await self._run(conn, message, len(prefix), len(own))
            except psycopg.Error as exc:
                if self._write:
                    raise
                if guard is not None and not batch:
                    self._stale = True  # the guard could not answer: nothing is confirmed
                    raise GuardFailed() from exc
                if len(own) == 1:
                    raise
                # One statement of a read message failed (its implicit transaction took
                # the others with it): the guard alone, then each statement alone.
                if self._guard is not None:
                    await self._send(conn, [])
                for pending in batch:
                    await self._send(conn, [pending])
                return
            if self._write:
                self._scope_sent = True
            if guard is not None:
                self._guard = None
                verdict = results.pop(0)
                if not verdict or verdict[0][0] is not True:
                    self._stale = True
                    raise GuardFailed()
            for pending, result in zip(batch, results, strict=True):
                if not pending.future.done():
                    pending.future.set_result(result)
        except BaseException as exc:
            if self._write:
                self._failed = True  # whatever happened on the wire, it cannot commit
            # The sender's own cancellation goes on up; the others see an ordinary error.
            failure = StatementCancelled() if isinstance(exc, asyncio.CancelledError) else exc
            _settle(batch, failure)
            if not isinstance(exc, Exception):
                raise

    def _bound_guard(self, conn: psycopg.AsyncConnection[Any]) -> str | None:
        if self._guard is None:
            return None
        statement, params = self._guard
        return statement if params is None else conn.cursor().mogrify(statement, params)

    def _bind(self, conn: psycopg.AsyncConnection[Any], batch: list[_Pending]) -> list[_Pending]:
        """The batch with its values bound into the text (psycopg's escaping); a
        statement whose values cannot be bound fails alone (and, in a writing
        transaction, fails the transaction: its work would be incomplete)."""
        cursor = conn.cursor()
        bound: list[_Pending] = []
        for pending in batch:
            if pending.params is None:
                bound.append(pending)
                continue
            try:
                text = cursor.mogrify(pending.statement, pending.params)
            except (psycopg.Error, TypeError, ValueError) as exc:
                self._failed = self._failed or self._write
                _settle([pending], exc)
                continue
            bound.append(_Pending(text, None, pending.future))
        return bound

    @staticmethod
    async def _run(
        conn: psycopg.AsyncConnection[Any], message: str, skip: int, count: int
    ) -> list[list[Any]]:
        """The results of the message's last `count` statements (the first `skip` are
        the prefix). A message giving more or fewer results than statements is refused:
        a statement text holding two statements would shift every answer after it."""
        async with conn.cursor() as cursor:
            await cursor.execute(message)
            results: list[list[Any]] = []
            for i in range(skip + count):
                if i and not cursor.nextset():
                    raise psycopg.ProgrammingError(
                        f"expected {skip + count} results, the message gave {i}"
                    )
                if i >= skip:
                    results.append(await cursor.fetchall() if _has_rows(cursor) else [])
            if cursor.nextset():
                raise psycopg.ProgrammingError("a statement held more than one statement")
            return results

    def _fail_pending(self, exc: Exception) -> None:
        pending, self._pending = self._pending, []
        _settle(pending, exc)

    # --- lifetime -------------------------------------------------------------------

    async def _connection(self) -> psycopg.AsyncConnection[Any]:
        if self._finished:
            # A straggler after the request ended must not take a connection of its own.
            raise TransactionFailed("transaction already finished")
        if self._conn is None:
            try:
                self._conn = await self.db.getconn()
            except PoolTimeout as exc:
                # No connection in time: nothing queued now will be sent.
                self._fail_pending(ConnectionUnavailable())
                raise ConnectionUnavailable() from exc
            except BaseException:
                self._fail_pending(ConnectionUnavailable())
                raise
        return self._conn

    async def _commit_with(
        self, conn: psycopg.AsyncConnection[Any], deferred: list[tuple[str, Params]]
    ) -> bool:
        """The deferred statements and COMMIT as one message (with BEGIN and the scope
        when nothing went out before); whether it committed."""
        cursor = conn.cursor()
        try:
            texts = [
                text if values is None else cursor.mogrify(text, values)
                for text, values in deferred
            ]
        except (psycopg.Error, TypeError, ValueError):
            log.exception("a deferred statement could not be bound")
            return False
        prefix = self._prefix() if self._begun else ["BEGIN", *self._scope.statements()]
        message = _SEPARATOR.join([*prefix, *texts, "COMMIT"])
        self.db.observe(message, len(prefix) + len(texts) + 1)
        self._begun = True
        started = time.perf_counter()
        try:
            with self.db.span(len(prefix) + len(texts) + 1):
                await conn.execute(message)
        except psycopg.Error as exc:
            log.warning("commit with deferred statements failed: %s", type(exc).__name__)
            return False
        for timer in self.db.deferred_commit_timers:
            timer(time.perf_counter() - started)
        return conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE

    async def finish(self, *, commit: bool) -> None:
        """End the transaction and free the connection: COMMIT when asked and nothing
        failed, ROLLBACK otherwise, decided by the connection's own state. Raises
        TransactionFailed when a commit was asked for and could not be made. Safe to
        call more than once."""
        if self._finished:
            return
        ok = commit and not self._failed and not self._stale
        if ok and self._deferred and self._conn is None:
            try:
                await self._connection()
            except BaseException:
                self._finished = True
                raise
        self._finished = True
        conn, self._conn = self._conn, None
        deferred, self._deferred = self._deferred, []
        if conn is None:
            if commit and not ok:
                raise TransactionFailed("transaction failed before it reached the database")
            return
        try:
            status = conn.info.transaction_status
            if (
                ok
                and deferred
                and (status == psycopg.pq.TransactionStatus.INTRANS or not self._begun)
            ):
                ok = await self._commit_with(conn, deferred)
                status = conn.info.transaction_status
                if status != psycopg.pq.TransactionStatus.IDLE:
                    # A deferred statement failed: the server skipped the rest of the
                    # message, COMMIT included.
                    self.db.observe("ROLLBACK", 1)
                    await conn.execute("ROLLBACK")
            elif status in (
                psycopg.pq.TransactionStatus.INTRANS,
                psycopg.pq.TransactionStatus.INERROR,
            ):
                ok = ok and status == psycopg.pq.TransactionStatus.INTRANS
                self.db.observe("COMMIT" if ok else "ROLLBACK", 1)
                await conn.execute("COMMIT" if ok else "ROLLBACK")
            elif self._begun:
                ok = False  # a BEGIN went out, yet no transaction is open: it was lost
            if commit and not ok:
                if conn.broken:
                    raise ConnectionUnavailable()
                raise TransactionFailed("transaction failed and was rolled back")
            if ok and self._begun and self._auth_changes:
                for hook in self.db.after_auth_change:
                    hook(frozenset(self._auth_changes))
        except psycopg.OperationalError as exc:
            if not conn.broken:
                raise
            # The connection was lost at the end (the server restarted): the server
            # rolled back whatever it had not committed. Asked to commit, the client is
            # told to retry (503 UNAVAILABLE); had the COMMIT itself reached the server
            # just before, the retry meets the first write's unique key or version
            # (docs/operations.md, "Faults").
            if commit:
                raise ConnectionUnavailable() from exc
        finally:
            await self.db.putconn(conn)


def connection_lost(exc: BaseException) -> bool:
    """Whether a database error means the connection or the server is gone, not the
    statement wrong: no SQLSTATE (the socket closed), class 08 (connection exception),
    57 (operator intervention: admin or crash shutdown, the server starting up; not
    57014, a statement cancelled by its timeout, which is STATEMENT_TIMEOUT) or 53300
    (too many connections). Such a failure is worth retrying as it is. The rest of
    class 53 (disk full, out of memory) is a fault of the server to surface, not to
    retry."""
    if not isinstance(exc, psycopg.OperationalError):
        return False
    state = exc.sqlstate
    if state == "57014":  # query_canceled
        return False
    return state is None or state[:2] in ("08", "57") or state == "53300"


def _session_options(
    url: str,
    *,
    statement_timeout_ms: int,
    lock_timeout_ms: int,
    idle_in_transaction_timeout_ms: int,
) -> str:
    """The connection's startup `options` with the three timeouts and the time zone
    added to whatever the URL already sets. Sent in the startup packet, they are the
    session's defaults: no statement of the request path (nor a `RESET ALL`) can leave
    a connection without them, and they cost no round trip.

    The time zone is UTC whatever the server's default (unless the URL sets one):
    timestamps read the same on every server (business dates are Beijing's, computed
    by service/clock.py), and
    psycopg loads a `timestamptz` in the zone named "UTC" with `datetime.timezone.utc`
    instead of a ZoneInfo (`Etc/UTC` is another name to it): ~0.3 us less per value,
    a third of a 20-row page's load (measured on the `children` row)."""
    existing = psycopg.conninfo.conninfo_to_dict(url).get("options") or ""
    timeouts = {
        "statement_timeout": statement_timeout_ms,
        "lock_timeout": lock_timeout_ms,
        "idle_in_transaction_session_timeout": idle_in_transaction_timeout_ms,
    }
    added = " ".join(f"-c {name}={max(0, int(ms))}" for name, ms in timeouts.items())
    # The URL's own options come after the time zone (a later -c wins): an operator's
    # TimeZone there stands; the timeouts come last and stand whatever it says.
    return f"-c TimeZone=UTC {existing} {added}".replace("  ", " ").strip()


def _has_rows(cursor: psycopg.AsyncCursor[Any]) -> bool:
    """Whether the current result holds rows (a SELECT, a RETURNING): what psycopg's
    `cursor.description is not None` says, without building a Column per column."""
    res = cursor.pgresult
    return res is not None and (res.nfields > 0 or res.status in _ROWS_STATUSES)


_ROWS_STATUSES = frozenset(
    (pq.ExecStatus.TUPLES_OK, pq.ExecStatus.SINGLE_TUPLE, pq.ExecStatus.TUPLES_CHUNK)
)


def _settle(pending: Iterable[_Pending], exc: BaseException) -> None:
    """Answer every unanswered statement with `exc`, marked as seen: its waiter may be
    gone too (cancelled with the request)."""
    for item in pending:
        if not item.future.done():
            item.future.set_exception(exc)
            item.future.exception()


class Database:
    """The application's handle on PostgreSQL: a pool of app-role connections."""

    def __init__(
        self,
        url: str | URL,
        *,
        pool_size: int = 10,
        pool_timeout: float = 3.0,
        statement_timeout_ms: int = 15_000,
        lock_timeout_ms: int = 5_000,
        idle_in_transaction_timeout_ms: int = 30_000,
        pre_ping_after: float = 1.0,
    ) -> None:
        self.url = libpq_url(url)
        self.pre_ping_after = pre_ping_after
        self.pool = AsyncConnectionPool(
            self.url,
            min_size=1,
            max_size=pool_size,
            timeout=pool_timeout,
            open=False,
            # A connection that sat idle is checked (an empty query) before it is handed
            # out: one the server or the network dropped meanwhile is replaced instead of
            # failing a request. One busy a moment ago is not: checking every checkout
            # would cost each request a second round trip (bench.compare counts them).
            check=self._check_if_idle,
            kwargs={
                "autocommit": True,
                "cursor_factory": psycopg.AsyncClientCursor,
                "row_factory": namedtuple_row,
                "options": _session_options(
                    self.url,
                    statement_timeout_ms=statement_timeout_ms,
                    lock_timeout_ms=lock_timeout_ms,
                    idle_in_transaction_timeout_ms=idle_in_transaction_timeout_ms,
                ),
            },
        )
        self._opened = False
        self._open_lock = asyncio.Lock()
        # Tests and benchmarks watch what is sent: (message, statements in it).
        self.observers: list[Callable[[str, int], None]] = []
        # Called with what a committed transaction noted as `auth_changed`.
        self.after_auth_change: list[Callable[[frozenset[str]], None]] = []
        # Called with the seconds a COMMIT carrying deferred statements (the audit
        # appends) took: the audit append latency of /metrics.
        self.deferred_commit_timers: list[Callable[[float], None]] = []
        # OpenTelemetry, when PINGYI_TRACING is on (service/observability/tracing.py):
        # a span per message sent, under the request's span
        self.tracer: Any = None

    def span(self, statements: int) -> contextlib.AbstractContextManager[Any]:
        """A span around one message (none with tracing off: a shared no-op)."""
        if self.tracer is None:
            return _NO_SPAN
        return self.tracer.message(statements)  # type: ignore[no-any-return]

    def observe(self, message: str, statements: int) -> None:
        for observer in self.observers:
            observer(message, statements)

    async def getconn(self) -> psycopg.AsyncConnection[Any]:
        if not self._opened:
            # Opened on first use, inside the serving event loop; once, however many
            # requests arrive together.
            async with self._open_lock:
                if not self._opened:
                    await self.pool.open()
                    self._opened = True
        return await self.pool.getconn()

    async def putconn(self, conn: psycopg.AsyncConnection[Any]) -> None:
        conn._pingyi_returned_at = time.monotonic()  # type: ignore[attr-defined]
        await self.pool.putconn(conn)

    async def _check_if_idle(self, conn: psycopg.AsyncConnection[Any]) -> None:
        """The pool's check: ping a connection returned more than `pre_ping_after`
        seconds ago (or never used); hand out a recently used one as it is."""
        returned = getattr(conn, "_pingyi_returned_at", None)
        if returned is not None and time.monotonic() - returned < self.pre_ping_after:
            return
        await AsyncConnectionPool.check_connection(conn)

    def checked_out(self) -> int:
        """Connections in use right now (0 when every request has given its back)."""
        if not self._opened:
            return 0
        stats = self.pool.get_stats()
        return int(stats.get("pool_size", 0)) - int(stats.get("pool_available", 0))

    def begin(
        self,
        scope: Scope = EMPTY_SCOPE,
        *,
        write: bool = True,
        guard: tuple[str, Params] | None = None,
    ) -> Transaction:
        """A transaction the caller ends with `finish(commit=...)`."""
        return Transaction(self, scope, write=write, guard=guard)

    @asynccontextmanager
    async def transaction(
        self,
        scope: Scope = EMPTY_SCOPE,
        *,
        write: bool = True,
        guard: tuple[str, Params] | None = None,
        read_only: bool = True,
    ) -> AsyncIterator[Transaction]:
        """One transaction; committed when the block ends cleanly, rolled back otherwise.
        `write=False, read_only=False`: every message commits on its own (see Transaction)."""
        tx = Transaction(self, scope, write=write, guard=guard, read_only=read_only)
        try:
            yield tx
        except BaseException:
            await tx.finish(commit=False)
            raise
        await tx.finish(commit=True)

    async def dispose(self) -> None:
        if self._opened:
            self._opened = False
            await self.pool.close()
