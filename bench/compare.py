"""Pingyi, a bare endpoint and PostGraphile 5, side by side, in interleaved rounds.

    python -m bench.compare [--database-url URL] [--workload w1|w2|all] [--rounds 3]
                            [--duration 10] [--warmup 2] [--connections 16] [--json FILE]

Run by hand, never by the test suite. Needs wrk, Node and `npm ci` in bench/peer. It
creates a throwaway database (embedded pgserver, or a fresh database on the server of
--database-url, dropped at the end), migrates it, creates a county of townships with
branches, a township committee secretary and a county organizer through the services,
then serves, each in its own process on 127.0.0.1:

  pingyi        POST /graphql of the app (uvicorn, one worker)
  bare          POST /bench/children, /bench/tenants: hand-written, in the same uvicorn
  postgraphile  POST /graphql of bench/peer/server.mjs (PostGraphile 5, amber preset)

all three over the same database as the same application role under the same RLS,
checking the same ES256 access tokens. Two workloads:

  w1  children(parentId, first: 20) { id name kind }, as the committee secretary
  w2  me { username } tenants(first: 20) { id name kind }, as the county organizer

It checks that the three give the same answers, counts the SQL statements each sends
per request (through a counting proxy, on separate short-lived copies of the servers),
then loads them with wrk: per round, per workload, pingyi, bare, postgraphile in turn.
README.md beside this file says what each server does per request.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import platform
import queue
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg
from psycopg import sql
from sqlalchemy.engine import make_url

from bench.harness import (
    PAGE,
    PASSWORD,
    Dataset,
    Load,
    Row,
    add_load_options,
    app_role_url,
    decode_org_ids,
    fresh_database,
    migrated,
    run_wrk,
    say,
    seed,
    write_wrk_script,
)
from bench.pgcount import StatementCounter
from service.config import Settings
from service.schema.ids import to_global_id

PEER_DIR = Path(__file__).resolve().parent / "peer"
SPEC_ENV = "PINGYI_BENCH_SERVE_SPEC"  # how the harness configures its Pingyi process
SERVERS = ("pingyi", "bare", "postgraphile")
TOWNSHIPS = 24  # >= 21, so the organizer's first page of 20 tenants is a full one
COUNT_SAMPLES = 10  # requests per server and workload when counting statements
# Requests before counting: past the principal caches' first miss and any driver's
# prepare threshold (psycopg's is 5 executions), so the count is the steady state.
WARM_REQUESTS = 8

PINGYI_W1 = (
    "query Children($p: ID!) { children(parentId: $p, first: 20) "
    "{ edges { node { id name kind } } } }"
)
PINGYI_W2 = "{ me { username } tenants(first: 20) { edges { node { id name kind } } } }"
# PostGraphile names the column `id` rowId (its `id` is the Node id); the alias gives the
# answer Pingyi's shape. Types: bigint is BigInt (a JSON string), kind is text.
PEER_W1 = (
    "query Children($p: BigInt!) { children: allOrgUnits(condition: "
    "{parentId: $p, archivedAt: null}, orderBy: ROW_ID_ASC, first: 20) "
    "{ edges { node { id: rowId name kind } } } }"
)
PEER_W2 = (
    "{ me { username } tenants: allTenantUnits(orderBy: ROW_ID_ASC, first: 20) "
    "{ edges { node { id: rowId name kind } } } }"
)


# --------------------------------------------------------------------------- workloads


@dataclass(frozen=True)
class Request:
    path: str
    body: bytes


@dataclass(frozen=True)
class Workload:
    key: str
    title: str
    who: str  # "secretary" or "organizer": whose token
    requests: dict[str, Request]  # server -> request


def _body(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode()


def w1(parent_id: int) -> dict[str, Request]:
    gid = to_global_id("OrgUnit", parent_id)
    return {
        "pingyi": Request("/graphql", _body({"query": PINGYI_W1, "variables": {"p": gid}})),
        "bare": Request("/bench/children", _body({"parentId": gid, "first": PAGE})),
        "postgraphile": Request(
            "/graphql", _body({"query": PEER_W1, "variables": {"p": str(parent_id)}})
        ),
    }


def w2() -> dict[str, Request]:
    return {
        "pingyi": Request("/graphql", _body({"query": PINGYI_W2})),
        "bare": Request("/bench/tenants", _body({"first": PAGE})),
        "postgraphile": Request("/graphql", _body({"query": PEER_W2})),
    }


def workloads(ds: Dataset, which: str) -> list[Workload]:
    out = []
    if which in ("w1", "all"):
        out.append(
            Workload(
                "w1",
                "W1 children(parentId, first: 20) as the township committee secretary",
                "secretary",
                w1(ds.town_ids[0]),
            )
        )
    if which in ("w2", "all"):
        out.append(
            Workload(
                "w2",
                "W2 me + tenants(first: 20) as the county organizer",
                "organizer",
                w2(),
            )
        )
    return out


def normalize(server: str, payload: dict[str, Any]) -> tuple[str | None, list[Row]]:
    """(username or None, [(numeric id, name, KIND)]) of any server's answer to W1 or W2."""
    if payload.get("errors") or not isinstance(payload.get("data"), dict):
        raise ValueError(f"{server} answered {json.dumps(payload, ensure_ascii=False)[:500]}")
    data = payload["data"]
    conn = data.get("children") or data.get("tenants") or {"edges": []}
    raw = [(e["node"]["id"], e["node"]["name"], e["node"]["kind"]) for e in conn["edges"]]
    if server == "postgraphile":
        rows = [(int(i), name, kind.upper()) for i, name, kind in raw]
    else:
        rows = decode_org_ids(raw)
    me = data.get("me")
    return (me["username"] if me else None), rows


# --------------------------------------------------------------------------- processes


class Child:
    """A server process: its READY line parsed, its output drained to a log file, its
    stdin held open (it exits when that closes), stopped with SIGTERM then SIGKILL."""

    def __init__(self, name: str, argv: list[str], cwd: Path, env: dict[str, str], log: Path):
        self.name = name
        self.log = log
        self._log = log.open("ab")
        self.proc = subprocess.Popen(  # noqa: S603 (fixed argv, no shell)
            argv,
            cwd=cwd,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            start_new_session=True,  # a Ctrl-C of the harness reaches us through stop()
        )
        self._ready: queue.Queue[dict[str, Any]] = queue.Queue()
        self._drainer = threading.Thread(target=self._drain, daemon=True)
        self._drainer.start()

    def _drain(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.startswith(b"READY "):
                self._ready.put(json.loads(line[6:]))
            else:
                self._log.write(line)
                self._log.flush()

    def ready(self, timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                return self._ready.get(timeout=0.2)
            except queue.Empty:
                if self.proc.poll() is not None:
                    break
        raise SystemExit(f"{self.name} did not start")

    def show_log(self, lines: int = 30) -> None:
        """The end of the server's log (the run's temp directory goes at exit)."""
        self._log.flush()
        tail = self.log.read_text(errors="replace").splitlines()[-lines:]
        if tail:
            say(f"--- last lines of the {self.name} log:")
            for line in tail:
                say(f"    {line}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        if self.proc.stdin:
            self.proc.stdin.close()
        self._drainer.join(timeout=5)
        self._log.close()


def _python_env() -> dict[str, str]:
    """The environment of a Python child: it imports the same `service` and `bench`."""
    import service

    roots = [str(Path(service.__file__).resolve().parent.parent), str(Path.cwd())]
    env = dict(os.environ)
    paths = [*dict.fromkeys(roots), *filter(None, [env.get("PYTHONPATH")])]
    env["PYTHONPATH"] = os.pathsep.join(paths)
    return env


@contextmanager
def pingyi_server(spec: dict[str, Any], workdir: Path, tag: str) -> Iterator[tuple[str, dict]]:
    env = _python_env()
    env[SPEC_ENV] = json.dumps(spec)  # not in argv: the URLs may hold passwords
    child = Child(
        f"pingyi ({tag})",
        [sys.executable, "-m", "bench.compare", "_serve"],
        Path.cwd(),
        env,
        workdir / f"pingyi-{tag}.log",
    )
    try:
        info = child.ready(60)
        yield f"http://127.0.0.1:{info['port']}", info
    except (Exception, SystemExit):
        child.show_log()
        raise
    finally:
        child.stop()


@contextmanager
def peer_server(
    database_url: str, jwks_url: str, settings: Settings, pool_max: int, workdir: Path, tag: str
) -> Iterator[tuple[str, dict]]:
    env = dict(
        os.environ,
        GRAPHILE_ENV="production",
        NODE_ENV="production",
        PEER_DATABASE_URL=database_url,  # not in argv: it may hold a password
    )
    argv = [
        "node",
        "server.mjs",
        "--jwks-url",
        jwks_url,
        "--issuer",
        settings.jwt_issuer,
        "--audience",
        settings.jwt_audience,
        "--pool-max",
        str(pool_max),
    ]
    child = Child(f"postgraphile ({tag})", argv, PEER_DIR, env, workdir / f"peer-{tag}.log")
    try:
        info = child.ready(90)
        yield f"http://127.0.0.1:{info['port']}", info
    except (Exception, SystemExit):
        child.show_log()
        raise
    finally:
        child.stop()


def serve_main(spec: dict[str, Any]) -> int:
    """The Pingyi process: the app with both bare routes, uvicorn, one worker."""
    import uvicorn

    from bench.harness import bench_settings, children_route, tenants_route
    from service.app import create_app
    from service.runtime import build_state

    workdir = Path(spec["workdir"])
    settings = bench_settings(
        spec["owner"], workdir, token_ttl=int(spec["ttl"]), app_url=spec.get("app_url")
    )
    app = create_app(
        build_state(settings, spec["owner"]), extra_routes=[children_route(), tenants_route()]
    )
    loop = "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"
    http = "httptools" if importlib.util.find_spec("httptools") else "h11"
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(
        app, loop=loop, http=http, log_level="warning", access_log=False, lifespan="on"
    )
    server = uvicorn.Server(config)

    def announce() -> None:
        while not server.started:
            time.sleep(0.05)
        info = {
            "port": sock.getsockname()[1],
            "loop": loop,
            "http": http,
            "uvicorn": uvicorn.__version__,
            "pool_size": settings.db_pool_size,
        }
        print("READY " + json.dumps(info), flush=True)

    def orphaned() -> None:
        sys.stdin.read()  # EOF: the harness is gone
        os._exit(0)

    threading.Thread(target=announce, daemon=True).start()
    threading.Thread(target=orphaned, daemon=True).start()
    server.run(sockets=[sock])
    return 0


# --------------------------------------------------------------------------- checks


def login(base: str, username: str) -> str:
    response = httpx.post(
        f"{base}/auth/token", data={"username": username, "password": PASSWORD}, timeout=30
    )
    response.raise_for_status()
    return str(response.json()["access_token"])


def _post(client: httpx.Client, url: str, req: Request, token: str) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    return client.post(url + req.path, content=req.body, headers=headers)


def _checked(client: httpx.Client, url: str, req: Request, token: str) -> None:
    response = _post(client, url, req, token)
    if response.status_code != 200 or "errors" in response.json():
        raise SystemExit(f"{url}{req.path}: {response.status_code} {response.text[:500]}")


def verify(
    bases: dict[str, str], tokens: dict[str, str], ds: Dataset, loads: list[Workload]
) -> None:
    """The three answer each workload alike, as created; RLS and auth are on in all three."""
    with httpx.Client(timeout=30) as client:
        for w in loads:
            want = (None, ds.children) if w.key == "w1" else (ds.organizer, ds.tenants)
            bodies: dict[str, bytes] = {}
            for server in SERVERS:
                response = _post(client, bases[server], w.requests[server], tokens[w.who])
                if response.status_code != 200:
                    raise SystemExit(f"{w.key} {server}: {response.status_code} {response.text}")
                got = normalize(server, response.json())
                if got != want:
                    raise SystemExit(f"{w.key} {server} returned {got!r}, expected {want!r}")
                bodies[server] = response.content
            same = "byte-identical" if bodies["pingyi"] == bodies["bare"] else "equal rows"
            say(
                f"check {w.key}: pingyi, bare and postgraphile return the same {len(want[1])} "
                f"rows (pingyi and bare: {same})"
            )

        # Another township's branches, as the secretary: Pingyi refuses (Casbin); bare and
        # PostGraphile, which have no authorization check, return no rows: RLS is on.
        other = w1(ds.town_ids[1])
        for server in SERVERS:
            payload = _post(client, bases[server], other[server], tokens["secretary"]).json()
            if server == "pingyi":
                codes = [e.get("extensions", {}).get("code") for e in payload.get("errors", [])]
                ok = codes == ["NOT_FOUND"]
            else:
                ok = normalize(server, payload)[1] == []
            if not ok:
                raise SystemExit(f"isolation check failed for {server}: {payload}")
        say("check: another township's branches: pingyi NOT_FOUND, bare and postgraphile 0 rows")

        # The secretary's tenants: only its own township, in all three (the scope each
        # computes from the grants).
        want_own = (ds.secretary, [r for r in ds.tenants if r[0] == ds.secretary_tenant_id])
        for server, req in w2().items():
            got = normalize(server, _post(client, bases[server], req, tokens["secretary"]).json())
            if got != want_own:
                raise SystemExit(f"secretary's tenants from {server}: {got!r}, want {want_own!r}")
        say("check: the secretary's tenants are its own township only, in all three")

        for server in SERVERS:
            req = w1(ds.town_ids[0])[server]
            status = _post(client, bases[server], req, "x.y.z").status_code
            if status != 401:
                raise SystemExit(f"{server} accepted a bad token: {status}")
        say("check: a bad bearer token is refused (401) by all three")


def count_statements(
    bases: dict[str, str],
    tokens: dict[str, str],
    loads: list[Workload],
    counter: StatementCounter,
) -> dict[str, dict[str, dict[str, Any]]]:
    """Statements and round trips per request, from the proxy, after a few warm requests."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    with httpx.Client(timeout=30) as client:
        for w in loads:
            out[w.key] = {}
            for server in SERVERS:
                url, req = bases[server], w.requests[server]

                def call(url: str = url, req: Request = req, token: str = tokens[w.who]) -> None:
                    _checked(client, url, req, token)

                for _ in range(WARM_REQUESTS):
                    call()
                time.sleep(0.2)
                counter.reset(capture=True)
                call()
                time.sleep(0.2)
                one = counter.snapshot()
                counter.reset()
                for _ in range(COUNT_SAMPLES):
                    call()
                time.sleep(0.2)
                many = counter.snapshot()
                out[w.key][server] = {
                    "statements": many.statements / COUNT_SAMPLES,
                    "round_trips": many.round_trips / COUNT_SAMPLES,
                    "texts": one.texts,
                }
    return out


def print_counts(counts: dict[str, dict[str, dict[str, Any]]], loads: list[Workload]) -> None:
    say(
        f"\nSQL sent per request (counting proxy, after {WARM_REQUESTS} warm requests; mean of "
        f"{COUNT_SAMPLES}; statements of one request listed):"
    )
    for w in loads:
        say(f"  {w.title}")
        for server in SERVERS:
            c = counts[w.key][server]
            say(
                f"    {server:<13}{c['statements']:5.1f} statements, "
                f"{c['round_trips']:4.1f} round trips"
            )
            for text in c["texts"]:
                flat = " ".join(text.split())
                say(f"        {flat[:110]}{'...' if len(flat) > 110 else ''}")


# --------------------------------------------------------------------------- load


def measure(
    bases: dict[str, str],
    tokens: dict[str, str],
    loads: list[Workload],
    args: argparse.Namespace,
    workdir: Path,
) -> list[dict[str, Any]]:
    load = Load(args.connections, args.threads, args.timeout)
    runners: dict[tuple[str, str], Callable[[float], dict[str, Any]]] = {}
    for w in loads:
        for server in SERVERS:
            req = w.requests[server]
            script = write_wrk_script(workdir / f"{w.key}-{server}.lua", req.body, tokens[w.who])
            url = bases[server] + req.path
            runners[(w.key, server)] = lambda s, url=url, script=script: run_wrk(
                url, script, load, s
            )
    results = []
    for r in range(1, args.rounds + 1):
        for w in loads:
            for server in SERVERS:
                run = runners[(w.key, server)]
                if args.warmup > 0:
                    run(args.warmup)
                result = run(args.duration)
                result.update(
                    round=r,
                    workload=w.key,
                    server=server,
                    rps=result["requests"] / result["duration_s"],
                )
                say(
                    f"  round {r} {w.key} {server:<13}{result['rps']:8.1f} req/s"
                    f"  p50 {result['p50_ms']:7.2f} ms  p99 {result['p99_ms']:7.2f} ms"
                    + (
                        f"  errors {result['errors']} non-2xx {result['non_2xx']}"
                        if result["errors"] or result["non_2xx"]
                        else ""
                    )
                )
                results.append(result)
    return results


def report(results: list[dict[str, Any]], loads: list[Workload]) -> dict[str, Any]:
    summary: dict[str, Any] = {}
    for w in loads:
        mine = [r for r in results if r["workload"] == w.key]
        say(f"\n{w.title}")
        header = (
            f"{'round':<7}{'server':<14}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}"
            f"{'requests':>10}{'errors':>8}{'non-2xx':>9}"
        )
        say(header)
        say("-" * len(header))
        for r in mine:
            say(
                f"{r['round']:<7}{r['server']:<14}{r['rps']:>9.1f}{r['p50_ms']:>9.2f}"
                f"{r['p99_ms']:>9.2f}{r['requests']:>10}{r['errors']:>8}{r['non_2xx']:>9}"
            )
        say("-" * len(header))
        medians: dict[str, dict[str, float]] = {}
        for server in SERVERS:
            runs = [r for r in mine if r["server"] == server]
            medians[server] = {
                k: statistics.median(r[k] for r in runs) for k in ("rps", "p50_ms", "p99_ms")
            }
            m = medians[server]
            say(f"{'median':<7}{server:<14}{m['rps']:>9.1f}{m['p50_ms']:>9.2f}{m['p99_ms']:>9.2f}")
        ratios = {
            "pingyi/bare": medians["pingyi"]["rps"] / medians["bare"]["rps"],
            "pingyi/postgraphile": medians["pingyi"]["rps"] / medians["postgraphile"]["rps"],
        }
        say(
            f"req/s (medians): Pingyi/bare {ratios['pingyi/bare']:.2f}x, "
            f"Pingyi/PostGraphile {ratios['pingyi/postgraphile']:.2f}x"
        )
        summary[w.key] = {"title": w.title, "medians": medians, "ratios": ratios}
    return summary


# --------------------------------------------------------------------------- main


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench.compare", description=__doc__.split("\n")[0])
    add_load_options(p, rounds_help="interleaved rounds (3)")
    p.add_argument("--workload", choices=["w1", "w2", "all"], default="all")
    p.add_argument("--townships", type=int, default=TOWNSHIPS, help=f"({TOWNSHIPS})")
    p.add_argument(
        "--peer-pool",
        type=int,
        help="PostGraphile's pg pool size (default: PINGYI_DB_POOL_SIZE, the size of "
        "Pingyi's pool; 10 unless set, which is also node-postgres's default)",
    )
    p.add_argument("--no-count", action="store_true", help="skip counting SQL statements")
    return p


class Deadline(Exception):
    pass


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["_serve"]:
        return serve_main(json.loads(os.environ[SPEC_ENV]))
    args = build_parser().parse_args(argv)
    if args.branches < PAGE + 2:
        raise SystemExit(f"--branches must be at least {PAGE + 2}")
    if args.townships < PAGE + 1:
        raise SystemExit(f"--townships must be at least {PAGE + 1}")
    for tool in ("wrk", "node"):
        if not shutil.which(tool):
            raise SystemExit(f"{tool} is not installed")
    if not (PEER_DIR / "node_modules" / "postgraphile").is_dir():
        raise SystemExit(f"PostGraphile is not installed: cd {PEER_DIR} && npm ci")

    loads_n = 2 if args.workload == "all" else 1
    per_run = args.warmup + args.duration + 1.5
    budget = int(args.rounds * loads_n * len(SERVERS) * per_run) + 600
    ttl = budget + 3600

    def on_alarm(signum: int, frame: Any) -> None:
        raise Deadline(f"the run took more than {budget} s; stopped")

    def on_term(signum: int, frame: Any) -> None:
        raise SystemExit(f"stopped by signal {signum}")

    signal.signal(signal.SIGALRM, on_alarm)
    signal.signal(signal.SIGTERM, on_term)
    signal.alarm(budget)

    workdir = Path(tempfile.mkdtemp(prefix="pingyi-compare-"))
    try:
        return run(args, workdir, ttl)
    except Deadline as exc:
        say(str(exc))
        return 3
    finally:
        signal.alarm(0)
        shutil.rmtree(workdir, ignore_errors=True)


def run(args: argparse.Namespace, workdir: Path, ttl: int) -> int:
    with fresh_database(args.database_url, workdir) as owner:
        settings = migrated(owner, workdir, token_ttl=ttl)
        say(f"seeding {args.townships} townships x {args.branches} branches ...")
        ds = asyncio.run(
            seed(
                settings,
                owner,
                townships=args.townships,
                branches=args.branches,
                organizer=True,
                archived_township=True,
            )
        )
        with psycopg.connect(owner, autocommit=True) as conn:
            role = sql.Identifier(settings.app_db_role).as_string(conn)
            conn.execute((PEER_DIR / "schema.sql").read_text().replace("{app_role}", role))
        app_url = app_role_url(settings, owner)
        pool_max = args.peer_pool or settings.db_pool_size
        loads = workloads(ds, args.workload)
        spec = {"owner": owner, "workdir": str(workdir), "ttl": ttl}

        counts: dict[str, Any] = {}
        tokens: dict[str, str] = {}
        if not args.no_count:
            # Separate copies of the servers whose database connections go through the
            # counting proxy; the measured servers below connect directly.
            parsed = make_url(app_url)
            counter = StatementCounter(parsed.host or "127.0.0.1", parsed.port or 5432)
            proxied = parsed.set(host="127.0.0.1", port=counter.start()).render_as_string(
                hide_password=False
            )
            try:
                with ExitStack() as stack:
                    base, _ = stack.enter_context(
                        pingyi_server({**spec, "app_url": proxied}, workdir, "count")
                    )
                    peer, _ = stack.enter_context(
                        peer_server(
                            proxied,
                            f"{base}/.well-known/jwks.json",
                            settings,
                            pool_max,
                            workdir,
                            "count",
                        )
                    )
                    tokens = {"secretary": login(base, ds.secretary)}
                    tokens["organizer"] = login(base, ds.organizer or "")
                    bases = {"pingyi": base, "bare": base, "postgraphile": peer}
                    counts = count_statements(bases, tokens, loads, counter)
            finally:
                counter.stop()

        with ExitStack() as stack:
            base, pinfo = stack.enter_context(pingyi_server(spec, workdir, "measured"))
            peer, ninfo = stack.enter_context(
                peer_server(
                    app_url, f"{base}/.well-known/jwks.json", settings, pool_max, workdir, "run"
                )
            )
            bases = {"pingyi": base, "bare": base, "postgraphile": peer}
            if not tokens:
                tokens = {"secretary": login(base, ds.secretary)}
                tokens["organizer"] = login(base, ds.organizer or "")
            say(
                f"pingyi: uvicorn {pinfo['uvicorn']}, one worker, loop {pinfo['loop']}, "
                f"http {pinfo['http']}, PINGYI_DB_POOL_SIZE {pinfo['pool_size']}"
            )
            say(
                f"postgraphile: {ninfo['postgraphile']} (grafast {ninfo['grafast']}, pg "
                f"{ninfo['pg']}) on Node {ninfo['node']}, pool {ninfo['poolMax']}"
                + (", Promise.withResolvers polyfilled" if ninfo["withResolversPolyfilled"] else "")
            )
            verify(bases, tokens, ds, loads)
            if counts:
                print_counts(counts, loads)
            say(
                f"\nload: wrk, {args.connections} connections, {args.threads} thread(s), "
                f"{args.rounds} rounds of {args.warmup:g} s warm-up + {args.duration:g} s, "
                "per workload pingyi, bare, postgraphile in turn"
            )
            results = measure(bases, tokens, loads, args, workdir)
        summary = report(results, loads)
        machine = (
            f"{os.cpu_count()} CPUs, {platform.platform()}, Python {platform.python_version()}"
        )
        say(f"\nmachine: {machine}; servers, PostgreSQL and wrk share it")
        if args.json:
            args.json.write_text(
                json.dumps(
                    {
                        "runs": results,
                        "summary": summary,
                        "statements": counts,
                        "pingyi": pinfo,
                        "postgraphile": ninfo,
                        "connections": args.connections,
                        "duration": args.duration,
                        "warmup": args.warmup,
                        "machine": machine,
                    },
                    indent=2,
                    ensure_ascii=False,
                )
            )
            say(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
