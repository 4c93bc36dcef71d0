"""How long a 40,000-row ledger import takes, against openpyxl reading the same file.

    python -m bench.import_ledger [--rows 40000] [--branches 2000] [--rounds 3]
                                  [--database-url URL] [--json FILE]

Run by hand, never by the test suite. The issue's target: the import costs at most 2×
what openpyxl alone takes to read the file. Each round measures, on the same bytes:

(a) openpyxl: `load_workbook(read_only=True, data_only=True)` and every row of the
    sheet with `values_only` — the floor any reader of the file pays;
(b) `service.members.excel.read_ledger`: (a) plus the zip checks, header finding and
    the per-cell rules (pure, no database);
(c) the user's import: `imports.preview_import` in one write transaction (read, check
    against the tenant's branches and ledger, stage the rows sealed) then
    `imports.confirm_import` in another (unseal, write the members and their history in
    chunks, audit), as the CLI operator, into a fresh tenant with the file's branches
    (the same names, so every row is accepted).

The file is `bench.county`'s people as one tenant's ledger (title row, the county's
Chinese headers). The database is fresh (embedded, or created on --database-url and
dropped at the end). Medians over the rounds; the ratios are of medians in this run.
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import io
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import openpyxl

from bench.county import Shape, generate, write_ledger_xlsx
from bench.harness import fresh_database, migrated, say
from service.auth.service import operator_principal
from service.config import Settings
from service.members import excel
from service.runtime import build_state

try:  # being written beside this benchmark; (c) is reported pending without it
    from service.members import imports
except ImportError:  # pragma: no cover - depends on the tree
    imports = None  # type: ignore[assignment]


def openpyxl_alone(data: bytes) -> int:
    """(a): the rows openpyxl yields, read as the importer reads them."""
    workbook = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    try:
        n = 0
        for _ in workbook.worksheets[0].iter_rows(values_only=True):
            n += 1
        return n
    finally:
        workbook.close()


def reader(data: bytes) -> tuple[int, int]:
    """(b): rows accepted and problems reported by the service's reader."""
    ledger = excel.read_ledger(data)
    return len(ledger.rows), len(ledger.problems)


async def whole_import(
    state: Any, settings: Settings, owner: str, shape: Shape, data: bytes
) -> dict[str, Any]:
    """(c): preview then confirm, into a tenant made for this round."""
    county = generate(owner, shape, units_only=True, progress=lambda _: None)
    tenant_unit_id = county.tenant_ids[0]
    t0 = time.perf_counter()
    async with state.db.transaction() as tx:
        op = await operator_principal(tx, name="bench")
        report = await imports.preview_import(
            tx, op, tenant_unit_id=tenant_unit_id, data=data, filename="ledger.xlsx",
            settings=settings,
        )  # fmt: skip
    t1 = time.perf_counter()
    async with state.db.transaction() as tx:
        op = await operator_principal(tx, name="bench")
        result = await imports.confirm_import(tx, op, import_id=report.import_id)
    t2 = time.perf_counter()
    if result.imported != shape.members or report.rejected:
        raise SystemExit(
            f"import wrote {result.imported} of {shape.members} rows, "
            f"{len(report.rejected)} rejected: {report.rejected[:3]}"
        )
    return {"preview_s": t1 - t0, "confirm_s": t2 - t1, "import_s": t2 - t0}


def timed(fn: Any, *args: Any) -> tuple[float, Any]:
    t0 = time.perf_counter()
    out = fn(*args)
    return time.perf_counter() - t0, out


async def run(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    shape = Shape(tenants=1, branches=args.branches, members=args.rows, months=1, seed=args.seed)
    path = workdir / "ledger.xlsx"
    took, n = timed(write_ledger_xlsx, path, shape)
    data = path.read_bytes()
    say(f"ledger file: {n} rows, {len(data) / 2**20:.1f} MB (written in {took:.1f} s)")
    runs: list[dict[str, Any]] = []
    with fresh_database(args.database_url, workdir) as owner:
        settings = migrated(owner, workdir)
        state = build_state(settings, owner)  # installs the field cipher of `settings`
        try:
            for r in range(1, args.rounds + 1):
                a, rows = timed(openpyxl_alone, data)
                b, (accepted, problems) = timed(reader, data)
                if accepted != args.rows or problems:
                    raise SystemExit(f"read_ledger: {accepted} rows, {problems} problems")
                run: dict[str, Any] = {"round": r, "openpyxl_s": a, "read_ledger_s": b}
                if imports is not None:
                    run |= await whole_import(state, settings, owner, shape, data)
                runs.append(run)
                say(
                    f"  round {r}: openpyxl {a:6.2f} s ({rows} rows)  read_ledger {b:6.2f} s"
                    + (
                        f"  preview {run['preview_s']:6.2f} s  confirm {run['confirm_s']:6.2f} s"
                        f"  import {run['import_s']:6.2f} s"
                        if "import_s" in run
                        else "  import: pending (service.members.imports missing)"
                    )
                )
        finally:
            await state.db.dispose()
    return {"runs": runs, "bytes": len(data), "rows": args.rows}


def report(out: dict[str, Any]) -> dict[str, float]:
    runs = out["runs"]
    keys = [k for k in ("openpyxl_s", "read_ledger_s", "preview_s", "confirm_s", "import_s")
            if k in runs[0]]  # fmt: skip
    medians = {k: statistics.median(r[k] for r in runs) for k in keys}
    say("")
    say(f"{'round':<8}" + "".join(f"{k.removesuffix('_s'):>13}" for k in keys))
    for r in runs:
        say(f"{r['round']:<8}" + "".join(f"{r[k]:>13.2f}" for k in keys))
    say(f"{'median':<8}" + "".join(f"{medians[k]:>13.2f}" for k in keys))
    base = medians["openpyxl_s"]
    say("")
    say(f"read_ledger/openpyxl: {medians['read_ledger_s'] / base:.2f}x")
    if "import_s" in medians:
        # Each round's own ratio, then their median: the machine's load moves between
        # rounds, and a ratio of two medians from different rounds mixes two loads.
        per_round = [r["import_s"] / r["openpyxl_s"] for r in runs]
        say(f"preview/openpyxl:     {medians['preview_s'] / base:.2f}x")
        say(
            f"import/openpyxl:      {statistics.median(per_round):.2f}x per round, median"
            f" (rounds {', '.join(f'{x:.2f}' for x in per_round)}; target: at most 2x)"
        )
        rate = out["rows"] / medians["import_s"]
        say(f"import: {rate:.0f} rows/s")
    else:
        say("import: pending (service.members.imports is not in this tree)")
    say(
        f"machine: {os.cpu_count()} CPUs, {platform.platform()}, Python "
        f"{platform.python_version()}, openpyxl {openpyxl.__version__}"
    )
    return medians


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m bench.import_ledger", description=__doc__.split("\n")[0]
    )
    p.add_argument(
        "--database-url",
        default=os.environ.get("PINGYI_DATABASE_URL"),
        help="an owner/superuser URL: a fresh database is created there and dropped at the "
        "end (default: $PINGYI_DATABASE_URL, else embedded pgserver)",
    )
    p.add_argument("--rows", type=int, default=40_000, help="members in the file (40000)")
    p.add_argument("--branches", type=int, default=2000, help="branches they belong to (2000)")
    p.add_argument("--rounds", type=int, default=3, help="rounds of (a), (b), (c) (3)")
    p.add_argument("--seed", type=int, default=1, help="bench.county's seed of the people (1)")
    p.add_argument("--json", type=Path, help="also write every round and the medians here")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    workdir = Path(tempfile.mkdtemp(prefix="pingyi-import-"))
    # Registered before pgserver's own exit hook, so it runs after the server has stopped.
    atexit.register(shutil.rmtree, workdir, ignore_errors=True)
    out = asyncio.run(run(args, workdir))
    medians = report(out)
    if args.json:
        args.json.write_text(json.dumps(out | {"medians": medians}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
