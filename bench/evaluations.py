"""Democratic evaluation at county scale: closing and tallying a half-year, and casting
ballots under load.

    python -m bench.evaluations tally   [--database-url URL] [--runs 5] [--mass 18]
                                        [--tenants 100 --branches 2000 --members 40000]
    python -m bench.evaluations ballots [--database-url URL] [--voters 200] [--branch-size 20]

Run by hand, never by the test suite.

`tally`: a county from `bench.county` (40,000 members in 2,000 branches, dues and
meetings for 2 months: the ledger's history does not matter here), one round per branch
opened and brought to balloting through the services (the county organization
department opens the batch; each branch secretary's moves are made by the operator),
then every roster member's ballot and `--mass` mass representatives' ballots per branch
(about 1.4 million graded entries, blanks not counted), written with COPY as the owner
twice: as the service keeps them (the per-position counters that `evaluation_count_ballot`
adds to as ballots arrive, migration 0015) and, for the reference, as one row per
graded entry in `bench_votes` (what a store of single votes holds; 0010 stored that),
with participation rows and used tokens to match. Then, in alternating runs, it times:

  sql    one hand-written aggregate over the 1.4 million graded entries (`bench_votes`):
         counts of each grade per round and roster position (what a tally of stored
         votes must at least read); and, for comparison, the same read of the counters;
  close  `service.evaluations.service.close_rounds` for all 2,000 rounds in one
         transaction: turnout, stage, the counts taken from the counters through
         `evaluation_take_counts` (which deletes them), every proposal and quota, the
         stored counts and grades, one audit event per round;

and between runs it puts the rounds back in balloting and the counters back from the
entries (as the owner, untimed). The process settles its start-up heap as the service
does (`service.app.settle_heap`). It prints the medians, the ratio close/sql, and the plan
of taking the counts.

`ballots`: `--voters` members in branches of `--branch-size`, each with an account,
served by uvicorn (one worker, as `bench.children` does) and loaded from another
process (httpx, logins first, untimed); every voter sends the same
ballot TWICE at the same moment (all requests at once, `--voters` x 2 concurrent
requests), so each branch's ballots race their duplicates. It prints p50/p99 latency of
accepted and refused requests and checks, after closing the rounds, that exactly one
ballot per voter was stored and counted (zero lost, zero duplicated).
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import json
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import psycopg

from bench.children import serving
from bench.county import Shape, generate
from bench.harness import PASSWORD, _login, fresh_database, migrated, say
from service.app import create_app, settle_heap
from service.auth.service import operator_principal
from service.authz.roles import Role
from service.evaluations import service as evaluations
from service.evaluations.service import CLOSE_CHUNK
from service.evaluations.stages import Stage
from service.members.service import link_account
from service.runtime import build_state, install_field_cipher
from service.schema.ids import to_global_id

YEAR = date.today().year
HALF = 1

TALLY_SQL = """
SELECT v.round_id, v.position, v.grade, count(*) AS votes
FROM bench_votes v
GROUP BY v.round_id, v.position, v.grade
"""
# The statement evaluation_take_counts runs for the counts (migration 0018).
FUNCTION_STATEMENT = """
WITH taken AS (
  DELETE FROM evaluation_counts c
  WHERE c.round_id = ANY (%s::bigint[])
    AND c.tenant_id = ANY ((SELECT pingyi_tenant_scope())::bigint[])
  RETURNING c.round_id, c.position, c.excellent, c.qualified, c.basic, c.unqualified
)
SELECT * FROM taken
"""
# The same answer from the counters the service keeps (one row per round and position).
COUNTERS_SQL = """
SELECT c.round_id, c.position, c.excellent, c.qualified, c.basic, c.unqualified
FROM evaluation_counts c
"""

# The counters a close took, back from the entries it stored their counts in (a
# position nobody graded has no counter), in the order of their key.
RESTORE_COUNTERS = """
INSERT INTO evaluation_counts (tenant_id, round_id, position, excellent, qualified, basic,
  unqualified)
SELECT e.tenant_id, e.round_id, e.position, e.excellent, e.qualified, e.basic, e.unqualified
FROM evaluation_entries e JOIN evaluation_rounds r ON r.tenant_id = e.tenant_id
  AND r.id = e.round_id
WHERE {rounds} AND e.position IS NOT NULL
  AND e.excellent + e.qualified + e.basic + e.unqualified > 0
ORDER BY 1, 2, 3
"""
RESET_SQL = f"""
{RESTORE_COUNTERS.format(rounds="r.batch = %(batch)s")};
UPDATE evaluation_rounds SET stage = 'balloting', closed_at = NULL, ballots_cast = NULL,
  roster_voters = NULL WHERE batch = %(batch)s;
UPDATE evaluation_entries e SET excellent = NULL, qualified = NULL, basic = NULL,
  unqualified = NULL, blank = NULL, computed_grade = NULL,
  computed_rule = NULL FROM evaluation_rounds r
  WHERE r.tenant_id = e.tenant_id AND r.id = e.round_id AND r.batch = %(batch)s;
"""


def _owner(owner: str, tenants: list[int]) -> psycopg.Connection[Any]:
    conn = psycopg.connect(owner, autocommit=True)
    # RLS is forced for the owner too: name every tenant this connection touches (as
    # pingyi_tenant_scope() reads it: ids separated by commas, no braces).
    scope = ",".join(str(t) for t in tenants)
    conn.execute("SELECT set_config('app.tenant_ids', %s, false)", (scope,))
    return conn


async def _open_to_balloting(settings: Any, owner: str, county_id: int) -> tuple[list[int], Any]:
    """One round per branch of the county, brought to balloting through the services."""
    state = build_state(settings, owner)
    try:
        async with state.db.transaction() as tx:
            op = await operator_principal(tx, name="bench")
            rounds = await evaluations.open_rounds(
                tx, op, org_unit_id=county_id, year=YEAR, half=HALF, title="基准民主评议"
            )
        ids = [r.id for r in rounds]
        t0 = time.perf_counter()
        for n, stage in enumerate((Stage.DRAFT, Stage.SELF_EVALUATION)):
            # Chunks keep each transaction short; the moves are the branch secretary's.
            for start in range(0, len(ids), 200):
                async with state.db.transaction() as tx:
                    op = await operator_principal(tx, name="bench")
                    for rid in ids[start : start + 200]:
                        await evaluations.advance_round(tx, op, round_id=rid, expected_stage=stage)
            say(
                f"  rounds moved past {stage.value} ({n + 1}/2) in {time.perf_counter() - t0:.0f} s"
            )
        return ids, rounds[0].batch
    finally:
        await state.db.dispose()


def _write_ballots(conn: psycopg.Connection[Any], ids: list[int], mass: int, seed: int) -> int:
    """Every roster member's ballot and `mass` representatives' per round, by COPY, as
    the counters the service keeps and as single votes in `bench_votes` (blanks in
    neither); returns the number of votes."""
    rng = random.Random(seed)
    roster: dict[int, list[tuple[int, int, bool]]] = {}
    for tenant, rid, member, may_vote in conn.execute(
        "SELECT tenant_id, round_id, member_id, may_vote FROM evaluation_entries"
        " WHERE round_id = ANY(%s) AND position IS NOT NULL ORDER BY round_id, position",
        (ids,),
    ):
        roster.setdefault(rid, []).append((tenant, member, may_vote))
    entries = 0
    counters: dict[tuple[int, int, int], list[int]] = {}
    conn.execute(
        "CREATE TABLE bench_votes (tenant_id bigint NOT NULL, round_id bigint NOT NULL,"
        " vote_key uuid NOT NULL, position integer NOT NULL, grade smallint NOT NULL,"
        " PRIMARY KEY (tenant_id, round_id, vote_key))"
    )
    with conn.transaction():
        with conn.cursor().copy(
            "COPY bench_votes (tenant_id, round_id, vote_key, position, grade) FROM STDIN"
        ) as copy:
            for rid, people in roster.items():
                tenant = people[0][0]
                size = len(people)
                # A branch where most are qualified, some excellent, a few basic.
                weights = [rng.choice((1, 1, 2, 2, 2, 2, 2, 3)) for _ in range(size)]
                voters = [i for i, p in enumerate(people) if p[2]] + [-1] * mass
                for who in voters:
                    grades = [
                        0 if i == who else (w if rng.random() < 0.8 else rng.randint(0, 4))
                        for i, w in enumerate(weights)
                    ]
                    for position, grade in enumerate(grades, start=1):
                        if grade:
                            copy.write_row((tenant, rid, uuid.uuid4(), position, grade))
                            key = (tenant, rid, position)
                            counters.setdefault(key, [0, 0, 0, 0])[grade - 1] += 1
                            entries += 1
        with conn.cursor().copy(
            "COPY evaluation_counts (tenant_id, round_id, position, excellent, qualified,"
            " basic, unqualified) FROM STDIN"
        ) as copy:
            for key in sorted(counters):
                copy.write_row((*key, *counters[key]))
        with conn.cursor().copy(
            "COPY evaluation_participation (tenant_id, round_id, voter_member_id) FROM STDIN"
        ) as copy:
            for rid, people in roster.items():
                for tenant, member, may_vote in people:
                    if may_vote:
                        copy.write_row((tenant, rid, member))
        with conn.cursor().copy(
            "COPY evaluation_ballot_tokens (tenant_id, round_id, token_hash, used, expires_at)"
            " FROM STDIN"
        ) as copy:
            for rid, people in roster.items():
                for _ in range(mass):
                    copy.write_row((people[0][0], rid, os.urandom(32), True, "2100-01-01"))
    conn.execute(
        "ANALYZE bench_votes, evaluation_counts, evaluation_participation, evaluation_entries"
    )
    return entries


async def _close_all(settings: Any, owner: str, ids: list[int]) -> float:
    state = build_state(settings, owner)
    try:
        t0 = time.perf_counter()
        async with state.db.transaction() as tx:
            op = await operator_principal(tx, name="bench")
            result = await evaluations.close_rounds(tx, op, ids)
        seconds = time.perf_counter() - t0
        if len(result.closed) != len(ids):
            raise SystemExit(f"closed {len(result.closed)} of {len(ids)} rounds")
        return seconds
    finally:
        await state.db.dispose()


def _short(line: str, width: int = 160) -> str:
    """A plan line with its list of 2,000 round ids cut."""
    return line if len(line) <= width else line[:width] + " …"


def cmd_tally(args: argparse.Namespace) -> int:
    workdir = Path(tempfile.mkdtemp(prefix="pingyi-tally-"))
    atexit.register(shutil.rmtree, workdir, ignore_errors=True)
    shape = Shape(tenants=args.tenants, branches=args.branches, members=args.members, months=2)
    with fresh_database(args.database_url, workdir) as owner:
        settings = migrated(owner, workdir)
        install_field_cipher(settings)
        say(f"generating a county of {shape} ...")
        county = generate(owner, shape)
        say(f"county written in {county.seconds:.1f} s")
        say("opening one round per branch and moving them to balloting (services) ...")
        ids, batch = asyncio.run(_open_to_balloting(settings, owner, county.county_id))
        conn = _owner(owner, [county.county_id, *county.tenant_ids])
        t0 = time.perf_counter()
        entries = _write_ballots(conn, ids, args.mass, seed=1)
        ballots = conn.execute(
            "SELECT sum(n) FROM (SELECT count(*) AS n FROM evaluation_participation"
            " UNION ALL SELECT count(*) FROM evaluation_ballot_tokens WHERE used) x"
        ).fetchone()[0]
        say(
            f"{len(ids)} rounds, {ballots} ballots, {entries} votes written in "
            f"{time.perf_counter() - t0:.0f} s"
        )
        sql_times: list[float] = []
        counter_times: list[float] = []
        close_times: list[float] = []
        settle_heap()  # as the service's start-up does
        for run in range(args.runs):
            t0 = time.perf_counter()
            rows = conn.execute(TALLY_SQL).fetchall()
            sql_times.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            conn.execute(COUNTERS_SQL).fetchall()
            counter_times.append(time.perf_counter() - t0)
            close_times.append(asyncio.run(_close_all(settings, owner, ids)))
            graded = conn.execute(
                "SELECT count(*) FROM evaluation_entries WHERE round_id = ANY(%s)"
                " AND computed_grade IS NOT NULL",
                (ids,),
            ).fetchone()[0]
            say(
                f"run {run + 1}: sql {sql_times[-1]:.2f} s ({len(rows)} groups), counters"
                f" {counter_times[-1]:.3f} s, close {close_times[-1]:.2f} s ({graded} entries"
                " graded)"
            )
            if run + 1 == args.runs:
                break  # the last close stays: the tally's plan below needs closed rounds
            # One statement per execute: psycopg sends parameters with the extended
            # protocol, which takes a single command.
            for statement in filter(str.strip, RESET_SQL.split(";")):
                conn.execute(statement, {"batch": batch})
            # A real close meets entries updated a few times, not after a close and a
            # reset: clear the resets' dead versions (untimed), as autovacuum would.
            conn.execute("VACUUM ANALYZE evaluation_entries, evaluation_rounds")
        sql_median = statistics.median(sql_times)
        close_median = statistics.median(close_times)
        say(
            f"medians over {args.runs} runs: sql {sql_median:.2f} s, counters"
            f" {statistics.median(counter_times):.3f} s, close {close_median:.2f} s,"
            f" ratio close/sql {close_median / sql_median:.2f}"
        )
        conn.execute(
            "SELECT set_config('app.tenant_ids', %s, false)",
            (",".join(str(t) for t in [county.county_id, *county.tenant_ids]),),
        )
        # Taking the counts alone, in the chunks close_rounds uses, and its plans: on the
        # closed rounds with their counters put back, each in a transaction rolled back;
        # without JIT, as close_rounds runs.
        conn.execute("SET jit = off")
        chunks = [ids[i : i + CLOSE_CHUNK] for i in range(0, len(ids), CLOSE_CHUNK)]
        conn.execute(RESTORE_COUNTERS.format(rounds="r.batch = %(batch)s"), {"batch": batch})
        conn.execute("VACUUM ANALYZE evaluation_counts")
        with conn.transaction(force_rollback=True):
            t0 = time.perf_counter()
            for chunk in chunks:
                conn.execute("SELECT * FROM evaluation_take_counts(%s)", (chunk,)).fetchall()
            take = time.perf_counter() - t0
        say(
            f"of which (measured once, alone): taking the counts {take:.2f} s"
            f" ({take / sql_median:.2f} x the hand-written aggregate)"
        )
        with conn.transaction(force_rollback=True):
            plan = conn.execute(
                "EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) SELECT * FROM evaluation_take_counts(%s)",
                (ids,),
            ).fetchall()
        say("plan of the function call (all rounds):")
        for (line,) in plan:
            say(f"  {_short(line)}")
        with conn.transaction(force_rollback=True):
            inner = conn.execute(
                "EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) " + FUNCTION_STATEMENT, (ids,)
            ).fetchall()
        say("plan of its statement (the counters deleted and returned, all rounds):")
        for (line,) in inner:
            say(f"  {_short(line)}")
        reference = conn.execute("EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) " + TALLY_SQL).fetchall()
        say("plan of the hand-written aggregate over the graded entries (the reference):")
        for (line,) in reference:
            say(f"  {_short(line)}")
        say(f"machine: {os.cpu_count()} CPUs, {platform.platform()}")
    return 0


# --------------------------------------------------------------------------- ballots


async def _voters(settings: Any, owner: str, county_id: int, tenant_id: int, args: Any) -> Any:
    """Branches of `--branch-size` members under the first tenant, each member with a
    login, and their rounds in balloting."""
    from tests import factories  # the same keyword factories the tests use

    state = build_state(settings, owner)
    branches: list[tuple[int, list[tuple[int, str]]]] = []
    try:
        async with state.db.transaction() as tx:
            op = await operator_principal(tx, name="bench")
            tenant = await tx.one(
                "SELECT * FROM org_units WHERE tenant_id = %(t)s AND id = %(t)s", {"t": tenant_id}
            )
            for b in range(args.voters // args.branch_size):
                unit = await factories.org_unit(tx, op, parent=tenant, name=f"基准投票支部{b}")
                people = []
                for i in range(args.branch_size):
                    member = await factories.member(tx, op, branch=unit, name=f"投票人{b}-{i}")
                    username = f"voter{b}x{i}"
                    await _login(tx, op, username, f"投票人{b}-{i}", Role.MEMBER, unit)
                    account = await tx.one(
                        "SELECT id FROM accounts WHERE username = %(u)s", {"u": username}
                    )
                    await link_account(tx, op, member_id=member.id, account_id=account.id)
                    people.append((member.id, username))
                branches.append((unit.id, people))
        rounds = []
        async with state.db.transaction() as tx:
            op = await operator_principal(tx, name="bench")
            for unit_id, _ in branches:
                [r] = await evaluations.open_rounds(
                    tx, op, org_unit_id=unit_id, year=YEAR, half=HALF, title="投票基准"
                )
                for stage in (Stage.DRAFT, Stage.SELF_EVALUATION):
                    await evaluations.advance_round(tx, op, round_id=r.id, expected_stage=stage)
                rounds.append(r.id)
        return branches, rounds
    finally:
        await state.db.dispose()


CAST = (
    "mutation($r: ID!, $g: [BallotGradeInput!]!) { castEvaluationBallot(roundId: $r,"
    " grades: $g) { accepted } }"
)


async def _storm(base: str, branches: Any, rounds: list[int]) -> dict[str, Any]:
    limits = httpx.Limits(max_connections=1000, max_keepalive_connections=1000)
    async with httpx.AsyncClient(base_url=base, timeout=120, limits=limits) as client:
        tokens: dict[str, str] = {}
        sem = asyncio.Semaphore(8)

        async def login(username: str) -> None:
            async with sem:
                r = await client.post(
                    "/auth/token", data={"username": username, "password": PASSWORD}
                )
                r.raise_for_status()
                tokens[username] = r.json()["access_token"]

        await asyncio.gather(*(login(u) for _, people in branches for _, u in people))
        requests = []
        for (_, people), rid in zip(branches, rounds, strict=True):
            for member_id, username in people:
                grades = [
                    {"memberId": to_global_id("Member", other), "grade": "QUALIFIED"}
                    for other, _ in people
                    if other != member_id
                ]
                body = {
                    "query": CAST,
                    "variables": {"r": to_global_id("EvaluationRound", rid), "g": grades},
                }
                requests.append((tokens[username], body))
                requests.append((tokens[username], body))  # the duplicate, at once
        random.Random(2).shuffle(requests)
        start = asyncio.Event()

        retries = 0

        async def cast(token: str, body: dict[str, Any]) -> tuple[str, float]:
            # A client does what the service asks of it: UNAVAILABLE (the pool stayed
            # busy past its timeout) is retried after Retry-After; the latency counted
            # is the voter's, from the first send to the final answer.
            nonlocal retries
            await start.wait()
            t0 = time.perf_counter()
            while True:
                r = await client.post(
                    "/graphql", json=body, headers={"Authorization": f"Bearer {token}"}
                )
                payload = r.json()
                code = payload["errors"][0]["extensions"]["code"] if payload.get("errors") else None
                if code != "UNAVAILABLE":
                    break
                retries += 1
                await asyncio.sleep(float(r.headers.get("Retry-After", "1")))
            return code or "ACCEPTED", time.perf_counter() - t0

        tasks = [asyncio.create_task(cast(t, b)) for t, b in requests]
        await asyncio.sleep(0.5)
        t0 = time.perf_counter()
        start.set()
        results = await asyncio.gather(*tasks)
        wall = time.perf_counter() - t0
    return {"results": results, "wall": wall, "retries": retries}


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def cmd_ballots(args: argparse.Namespace) -> int:
    workdir = Path(tempfile.mkdtemp(prefix="pingyi-ballots-"))
    atexit.register(shutil.rmtree, workdir, ignore_errors=True)
    shape = Shape(tenants=2, branches=4, members=40, months=2)
    with fresh_database(args.database_url, workdir) as owner:
        settings = replace(migrated(owner, workdir), db_pool_size=args.pool)
        install_field_cipher(settings)
        county = generate(owner, shape)
        branches, rounds = asyncio.run(
            _voters(settings, owner, county.county_id, county.tenant_ids[0], args)
        )
        say(f"{len(rounds)} rounds in balloting, {sum(len(p) for _, p in branches)} voters")
        state = build_state(settings, owner)
        app = create_app(state)
        with serving(app) as base:
            # The voters are another process: a client sharing the server's
            # interpreter (and its GIL) would slow the server it measures.
            storm = _storm_elsewhere(base, branches, rounds, workdir)
        results = storm["results"]
        accepted = [t for code, t in results if code == "ACCEPTED"]
        refused = [t for code, t in results if code == "ALREADY_VOTED"]
        other = sorted({code for code, _ in results} - {"ACCEPTED", "ALREADY_VOTED"})
        every = [t for _, t in results]
        say(
            f"{len(results)} requests at once in {storm['wall']:.2f} s: {len(accepted)} accepted,"
            f" {len(refused)} refused as duplicates, other answers: {other or 'none'};"
            f" {storm['retries']} retries after UNAVAILABLE"
        )
        say(
            f"latency all: p50 {_pct(every, 0.5) * 1000:.0f} ms, p99 {_pct(every, 0.99) * 1000:.0f}"
            f" ms; accepted p50 {_pct(accepted, 0.5) * 1000:.0f} ms, p99"
            f" {_pct(accepted, 0.99) * 1000:.0f} ms"
        )
        conn = _owner(owner, [county.county_id, *county.tenant_ids])
        # The votes the counters hold (the close takes them into the entries).
        stored = conn.execute(
            "SELECT coalesce(sum(excellent + qualified + basic + unqualified), 0)"
            " FROM evaluation_counts WHERE round_id = ANY(%s)",
            (rounds,),
        ).fetchone()[0]
        seconds = asyncio.run(_close_all(settings, owner, rounds))
        counted = conn.execute(
            "SELECT sum(ballots_cast) FROM evaluation_rounds WHERE id = ANY(%s)", (rounds,)
        ).fetchone()[0]
        qualified = conn.execute(
            "SELECT sum(qualified) FROM evaluation_entries WHERE round_id = ANY(%s)", (rounds,)
        ).fetchone()[0]
        voters = sum(len(p) for _, p in branches)
        expected_grades = sum(len(p) * (len(p) - 1) for _, p in branches)
        say(
            f"closed in {seconds:.2f} s: {counted} ballots counted, {stored} votes stored,"
            f" {qualified} 'qualified' grades counted (expected {voters} ballots,"
            f" {expected_grades} grades)"
        )
        ok = counted == voters == len(accepted) and stored == qualified == expected_grades
        say("zero lost, zero duplicated" if ok else "MISMATCH: ballots lost or duplicated")
        say(f"machine: {os.cpu_count()} CPUs, {platform.platform()}")
        return 0 if ok else 1


def _storm_elsewhere(base: str, branches: Any, rounds: list[int], workdir: Path) -> Any:
    plan = workdir / "storm.json"
    plan.write_text(json.dumps({"base": base, "branches": branches, "rounds": rounds}))
    done = subprocess.run(  # noqa: S603 (this interpreter, this module, our own file)
        [sys.executable, "-m", "bench.evaluations", "storm", str(plan)],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def cmd_storm(args: argparse.Namespace) -> int:
    plan = json.loads(Path(args.plan).read_text())
    result = asyncio.run(_storm(plan["base"], plan["branches"], plan["rounds"]))
    print(json.dumps(result), flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="bench.evaluations", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    t = sub.add_parser("tally")
    t.add_argument("--database-url")
    t.add_argument("--runs", type=int, default=5)
    t.add_argument("--mass", type=int, default=18, help="mass representatives per branch")
    t.add_argument("--tenants", type=int, default=100)
    t.add_argument("--branches", type=int, default=2000)
    t.add_argument("--members", type=int, default=40_000)
    b = sub.add_parser("ballots")
    b.add_argument("--database-url")
    b.add_argument("--voters", type=int, default=200)
    b.add_argument("--branch-size", type=int, default=20)
    b.add_argument("--pool", type=int, default=20, help="database pool size of the server")
    st = sub.add_parser("storm", help="(internal) the voters of `ballots`, in their own process")
    st.add_argument("plan")
    args = p.parse_args(sys.argv[1:] if argv is None else argv)
    commands = {"tally": cmd_tally, "ballots": cmd_ballots, "storm": cmd_storm}
    return commands[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
