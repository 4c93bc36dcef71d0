"""GraphQL `children` against a hand-written SQL endpoint, under the same auth and RLS.

    python -m bench.children [--database-url URL] [--connections 16] [--duration 10]
                             [--warmup 2] [--rounds 3] [--loader auto|wrk|httpx]
                             [--baseline-auth principal|scope]

Run by hand, never by the test suite. It starts its own PostgreSQL (embedded pgserver in
a temporary directory, or a fresh database on the server of --database-url, dropped at
the end), migrates, creates a county with four townships of branches and a committee
secretary (党委书记) of the first township, then serves the app with uvicorn (one worker)
on 127.0.0.1 beside a baseline route, and loads both from this machine, alternating:

A  POST /graphql          { children(parentId, first: 20) { edges { node { id name kind } } } }
B  POST /bench/children   one SELECT in a transaction scoped like the GraphQL one

Both requests carry the same bearer JWT, checked by the same middleware. README.md beside
this file says exactly what the baseline does and skips.
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from strawberry.extensions.parser_cache import _get_parse_cache
from strawberry.extensions.validation_cache import _get_validate_cache

from bench.harness import (
    PAGE,
    PASSWORD,
    Dataset,
    Load,
    add_load_options,
    children_route,
    fresh_database,
    migrated,
    run_wrk,
    say,
    seed,
    write_wrk_script,
)
from service.app import create_app
from service.runtime import build_state
from service.schema.ids import to_global_id
from service.schema.root import VALIDATION_CACHE_SIZE

TOWNSHIPS = 4  # the first is measured; the others give RLS rows to filter out

GRAPHQL_QUERY = (
    "query Children($parent: ID!) { children(parentId: $parent, first: 20) "
    "{ edges { node { id name kind } } } }"
)


@dataclass(frozen=True)
class Fixture:
    username: str
    parent_gid: str  # the measured township
    other_parent_gid: str  # a township of the same county the secretary may not read
    tenant_id: int  # what load_principal computes as the secretary's whole scope
    expected: list[tuple[str, str, str]]  # (global id, name, KIND) of the first page


def fixture_of(ds: Dataset) -> Fixture:
    return Fixture(
        username=ds.secretary,
        parent_gid=to_global_id("OrgUnit", ds.town_ids[0]),
        other_parent_gid=to_global_id("OrgUnit", ds.town_ids[1]),
        tenant_id=ds.secretary_tenant_id,
        expected=[(to_global_id("OrgUnit", i), name, kind) for i, name, kind in ds.children],
    )


# --------------------------------------------------------------------------- server


@contextmanager
def serving(app: Any) -> Iterator[str]:
    """uvicorn, one worker, in a thread of this process, on a free port of 127.0.0.1."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        sock.close()


# --------------------------------------------------------------------------- checks


@dataclass(frozen=True)
class Endpoint:
    name: str
    path: str
    body: bytes


def endpoints(fixture: Fixture) -> list[Endpoint]:
    graphql = {"query": GRAPHQL_QUERY, "variables": {"parent": fixture.parent_gid}}
    baseline = {"parentId": fixture.parent_gid, "first": PAGE}
    return [
        Endpoint("graphql", "/graphql", json.dumps(graphql).encode()),
        Endpoint("baseline", "/bench/children", json.dumps(baseline).encode()),
    ]


def login(base: str, username: str) -> str:
    response = httpx.post(
        f"{base}/auth/token", data={"username": username, "password": PASSWORD}, timeout=30
    )
    response.raise_for_status()
    return str(response.json()["access_token"])


def verify(base: str, token: str, fixture: Fixture, eps: list[Endpoint]) -> None:
    """Both endpoints give the expected 20 (id, name, kind); RLS and auth are on in both."""
    auth = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    with httpx.Client(base_url=base, timeout=30) as client:
        bodies: dict[str, bytes] = {}
        for ep in eps:
            response = client.post(ep.path, content=ep.body, headers=auth)
            if response.status_code != 200 or "errors" in response.json():
                raise SystemExit(f"{ep.name}: {response.status_code} {response.text[:500]}")
            edges = response.json()["data"]["children"]["edges"]
            got = [(e["node"]["id"], e["node"]["name"], e["node"]["kind"]) for e in edges]
            if got != fixture.expected:
                raise SystemExit(f"{ep.name} returned {got!r}, expected {fixture.expected!r}")
            bodies[ep.name] = response.content
        same = "byte-identical" if len(set(bodies.values())) == 1 else "equal as JSON"
        say(f"check: both endpoints return the same {PAGE} branches ({same} bodies)")

        # Another township of the county: GraphQL says NOT_FOUND (Casbin); the baseline
        # has no authorization check, so its empty answer shows RLS filtering its rows.
        other_gql = json.dumps(
            {"query": GRAPHQL_QUERY, "variables": {"parent": fixture.other_parent_gid}}
        )
        codes = [
            e.get("extensions", {}).get("code")
            for e in client.post("/graphql", content=other_gql, headers=auth).json()["errors"]
        ]
        other_base = json.dumps({"parentId": fixture.other_parent_gid, "first": PAGE})
        leaked = client.post("/bench/children", content=other_base, headers=auth).json()
        if codes != ["NOT_FOUND"] or leaked["data"]["children"]["edges"]:
            raise SystemExit(f"isolation check failed: graphql {codes}, baseline {leaked}")
        say("check: another township's branches: GraphQL NOT_FOUND, baseline 0 rows (RLS)")

        for ep in eps:
            bad = client.post(
                ep.path,
                content=ep.body,
                headers={"Authorization": "Bearer x.y.z", "Content-Type": "application/json"},
            )
            if bad.status_code != 401:
                raise SystemExit(f"{ep.name} accepted a bad token: {bad.status_code}")
        say("check: a bad bearer token is refused (401) by both")


# --------------------------------------------------------------------------- load


def run_httpx(url: str, token: str, body: bytes, load: Load, seconds: float) -> dict[str, Any]:
    """The fallback load generator: asyncio + httpx, in a process of its own."""
    spec = {
        "url": url,
        "token": token,
        "body": body.decode(),
        "connections": load.connections,
        "duration": seconds,
        "timeout": load.timeout,
    }
    done = subprocess.run(
        [sys.executable, "-m", "bench.children", "_loadgen"],
        input=json.dumps(spec),
        capture_output=True,
        text=True,
        timeout=seconds + 60,
        check=True,
    )
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


async def _loadgen(spec: dict[str, Any]) -> dict[str, Any]:
    connections = int(spec["connections"])
    headers = {"Authorization": f"Bearer {spec['token']}", "Content-Type": "application/json"}
    body = spec["body"].encode()
    latencies: list[float] = []
    errors: Counter[str] = Counter()
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    async with httpx.AsyncClient(limits=limits, timeout=float(spec["timeout"])) as client:
        started = time.perf_counter()
        deadline = started + float(spec["duration"])

        async def worker() -> None:
            while time.perf_counter() < deadline:
                t0 = time.perf_counter()
                try:
                    response = await client.post(spec["url"], content=body, headers=headers)
                except httpx.HTTPError:
                    errors["errors"] += 1
                    continue
                latencies.append(time.perf_counter() - t0)
                if response.status_code > 399:
                    errors["non_2xx"] += 1

        await asyncio.gather(*(worker() for _ in range(connections)))
        elapsed = time.perf_counter() - started
    cuts = statistics.quantiles(latencies, n=100, method="inclusive") if latencies else [0] * 99
    return {
        "requests": len(latencies),
        "duration_s": elapsed,
        "p50_ms": cuts[49] * 1e3,
        "p90_ms": cuts[89] * 1e3,
        "p99_ms": cuts[98] * 1e3,
        "errors": errors["errors"],
        "non_2xx": errors["non_2xx"],
    }


def cache_counts() -> tuple[int, int, int, int]:
    parse = _get_parse_cache(VALIDATION_CACHE_SIZE).cache_info()
    validate = _get_validate_cache(VALIDATION_CACHE_SIZE).cache_info()
    return parse.hits, parse.misses, validate.hits, validate.misses


def measure(
    base: str,
    token: str,
    eps: list[Endpoint],
    args: argparse.Namespace,
    loader: str,
    workdir: Path,
) -> list[dict[str, Any]]:
    load = Load(args.connections, args.threads, args.timeout)
    runners: dict[str, Callable[[float], dict[str, Any]]] = {}
    for ep in eps:
        url = base + ep.path
        if loader == "wrk":
            script = write_wrk_script(workdir / f"{ep.name}.lua", ep.body, token)
            runners[ep.name] = lambda s, url=url, script=script: run_wrk(url, script, load, s)
        else:
            runners[ep.name] = lambda s, url=url, body=ep.body: run_httpx(url, token, body, load, s)
    results = []
    for r in range(1, args.rounds + 1):
        for ep in eps:
            if args.warmup > 0:
                runners[ep.name](args.warmup)
            result = runners[ep.name](args.duration)
            result.update(round=r, endpoint=ep.name, rps=result["requests"] / result["duration_s"])
            say(
                f"  round {r} {ep.name:<9} {result['rps']:8.1f} req/s"
                f"  p50 {result['p50_ms']:7.2f} ms"
            )
            results.append(result)
    return results


def profile(
    base: str,
    token: str,
    eps: list[Endpoint],
    args: argparse.Namespace,
    loader: str,
    workdir: Path,
) -> None:
    """Sample this process (the server thread) with py-spy while each endpoint is loaded;
    write collapsed stacks to --profile DIR and print the top frames."""
    spy = shutil.which("py-spy")
    if spy is None:
        raise SystemExit("--profile needs py-spy (pip install py-spy)")
    out: Path = args.profile
    out.mkdir(parents=True, exist_ok=True)
    seconds = args.duration
    for ep in eps:
        stacks = out / f"{ep.name}.txt"
        command = [spy, "record", "-p", str(os.getpid()), "-d", f"{seconds:g}", "-r", "250"]
        command += ["--format", "raw", "-o", str(stacks), "--nonblocking"]
        sampler = subprocess.Popen(  # noqa: S603 (fixed argv, no shell)
            command,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(0.5)
        one = argparse.Namespace(**{**vars(args), "rounds": 1, "warmup": 0})
        measure(base, token, [ep], one, loader, workdir)
        sampler.wait(timeout=seconds + 60)
        summarize(stacks, ep.name, args.profile_top)


def summarize(stacks: Path, name: str, top: int) -> None:
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in stacks.read_text().splitlines():
        frames, _, count = line.rpartition(" ")
        if not frames or not count.isdigit():
            continue
        n = int(count)
        total += n
        parts = frames.split(";")
        own[parts[-1]] += n
        for frame in set(parts):
            inclusive[frame] += n
    say(f"\nprofile {name}: {total} samples ({stacks})")
    for title, counts in (("self", own), ("inclusive", inclusive)):
        say(f"  top {top} by {title} time:")
        for frame, n in counts.most_common(top):
            say(f"    {100 * n / max(total, 1):5.1f}%  {frame}")


# --------------------------------------------------------------------------- report


def report(results: list[dict[str, Any]], eps: list[Endpoint]) -> dict[str, dict[str, float]]:
    header = (
        f"{'round':<7}{'endpoint':<10}{'req/s':>9}{'p50 ms':>9}{'p90 ms':>9}{'p99 ms':>9}"
        f"{'requests':>10}{'errors':>8}{'non-2xx':>9}"
    )
    say("")
    say(header)
    say("-" * len(header))
    for r in results:
        say(
            f"{r['round']:<7}{r['endpoint']:<10}{r['rps']:>9.1f}{r['p50_ms']:>9.2f}"
            f"{r['p90_ms']:>9.2f}{r['p99_ms']:>9.2f}{r['requests']:>10}{r['errors']:>8}"
            f"{r['non_2xx']:>9}"
        )
    say("-" * len(header))
    medians: dict[str, dict[str, float]] = {}
    for ep in eps:
        mine = [r for r in results if r["endpoint"] == ep.name]
        medians[ep.name] = {
            k: statistics.median(r[k] for r in mine) for k in ("rps", "p50_ms", "p90_ms", "p99_ms")
        }
        m = medians[ep.name]
        say(
            f"{'median':<7}{ep.name:<10}{m['rps']:>9.1f}{m['p50_ms']:>9.2f}"
            f"{m['p90_ms']:>9.2f}{m['p99_ms']:>9.2f}"
        )
    g, b = medians["graphql"], medians["baseline"]
    say("")
    say(
        f"GraphQL/baseline: throughput {g['rps'] / b['rps']:.2f}x, "
        f"median latency {g['p50_ms'] / b['p50_ms']:.2f}x"
    )
    return medians


# --------------------------------------------------------------------------- main


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench.children", description=__doc__.split("\n")[0])
    add_load_options(p, rounds_help="alternating rounds A,B,A,B,... (3)")
    p.add_argument("--loader", choices=["auto", "wrk", "httpx"], default="auto")
    p.add_argument(
        "--baseline-auth",
        choices=["principal", "scope"],
        default="principal",
        help="principal: the baseline gets the principal like /graphql (default); "
        "scope: it only SETs LOCAL the scope the principal would have",
    )
    p.add_argument(
        "--profile",
        type=Path,
        help="after measuring, sample the server with py-spy under each load (--duration "
        "seconds) and write collapsed stacks to this directory",
    )
    p.add_argument("--profile-top", type=int, default=25, help="frames listed per profile")
    return p


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["_loadgen"]:
        print(json.dumps(asyncio.run(_loadgen(json.load(sys.stdin)))))
        return 0
    args = build_parser().parse_args(argv)
    if args.branches < PAGE + 2:
        raise SystemExit(f"--branches must be at least {PAGE + 2}")
    loader = args.loader
    if loader == "auto":
        loader = "wrk" if shutil.which("wrk") else "httpx"
    elif loader == "wrk" and not shutil.which("wrk"):
        raise SystemExit("wrk is not installed (apt-get install wrk), or use --loader httpx")

    workdir = Path(tempfile.mkdtemp(prefix="pingyi-bench-"))
    # Registered before pgserver's own exit hook, so it runs after the server has stopped.
    atexit.register(shutil.rmtree, workdir, ignore_errors=True)
    per_run = args.warmup + args.duration
    ttl = max(3600, int(4 * args.rounds * per_run) + 600)  # outlive the whole run
    with fresh_database(args.database_url, workdir) as owner:
        settings = migrated(owner, workdir, token_ttl=ttl)
        say(f"seeding {TOWNSHIPS} townships x {args.branches} branches ...")
        dataset = asyncio.run(seed(settings, owner, townships=TOWNSHIPS, branches=args.branches))
        fixture = fixture_of(dataset)
        state = build_state(settings, owner)
        app = create_app(
            state, extra_routes=[children_route(args.baseline_auth, {fixture.tenant_id})]
        )
        eps = endpoints(fixture)
        with serving(app) as base:
            token = login(base, fixture.username)
            verify(base, token, fixture, eps)
            say(
                f"load: {loader}, {args.connections} connections, {args.rounds} rounds of "
                f"{args.warmup:g} s warm-up + {args.duration:g} s per endpoint; "
                f"baseline auth: {args.baseline_auth}"
            )
            before = cache_counts()
            results = measure(base, token, eps, args, loader, workdir)
            after = cache_counts()
            if args.profile:
                profile(base, token, eps, args, loader, workdir)
        medians = report(results, eps)
        ph, pm, vh, vm = (a - b for a, b in zip(after, before, strict=True))
        say(
            f"strawberry's caches during the runs: parse {ph} hits/{pm} misses, validation "
            f"{vh} hits/{vm} misses (0/0 once the document is prepared: a repeated "
            "document runs without parsing or validating again)"
        )
        say(
            f"machine: {os.cpu_count()} CPUs, {platform.platform()}, "
            f"Python {platform.python_version()}, uvicorn {uvicorn.__version__}"
        )
        if args.json:
            args.json.write_text(
                json.dumps(
                    {
                        "runs": results,
                        "medians": medians,
                        "caches": {"parse": [ph, pm], "validation": [vh, vm]},
                        "loader": loader,
                        "connections": args.connections,
                        "baseline_auth": args.baseline_auth,
                    },
                    indent=2,
                )
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
