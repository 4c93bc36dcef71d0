"""A small load generator for the fault tests: concurrent writers creating branches
(one unique code each) and readers, over real HTTP, every answer recorded."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from service.schema.ids import to_global_id

CREATE = """
mutation($input: CreateOrgUnitInput!) { createOrgUnit(input: $input) { orgUnit { id code } } }
"""
READ = "query($id: ID!) { orgUnit(id: $id) { name } }"


@dataclass
class Outcome:
    kind: str  # "write" or "read"
    code: str | None  # the branch code a write tried to create
    status: int | None  # None: no HTTP answer at all
    error: str | None  # extensions.code of the first error, or the transport error
    retry_after: str | None
    at: float  # when the answer came (monotonic)

    @property
    def ok(self) -> bool:
        return self.status == 200 and self.error is None


@dataclass
class Load:
    """`workers` tasks sending alternately a write and a read while `running()`."""

    base: str
    token: str
    parent_id: int
    prefix: str
    outcomes: list[Outcome] = field(default_factory=list)
    _serial: itertools.count[int] = field(default_factory=itertools.count)

    def acknowledged(self) -> set[str]:
        return {o.code for o in self.outcomes if o.kind == "write" and o.ok and o.code}

    def failures(self) -> list[Outcome]:
        return [o for o in self.outcomes if not o.ok]

    async def one(self, client: httpx.AsyncClient, kind: str) -> Outcome:
        code = None
        parent = to_global_id("OrgUnit", self.parent_id)
        if kind == "write":
            code = f"{self.prefix}-{next(self._serial)}"
            payload: dict[str, Any] = {
                "query": CREATE,
                "variables": {
                    "input": {"parentId": parent, "kind": "BRANCH", "code": code, "name": code}
                },
            }
        else:
            payload = {"query": READ, "variables": {"id": parent}}
        try:
            response = await client.post(
                "/graphql", json=payload, headers={"Authorization": f"Bearer {self.token}"}
            )
        except httpx.HTTPError as exc:
            outcome = Outcome(kind, code, None, type(exc).__name__, None, time.monotonic())
        else:
            error = None
            try:
                errors = response.json().get("errors") or []
            except ValueError:
                errors = [{"extensions": {"code": "NOT_JSON"}}]
            if errors:
                error = (errors[0].get("extensions") or {}).get("code")
            outcome = Outcome(
                kind,
                code,
                response.status_code,
                error,
                response.headers.get("retry-after"),
                time.monotonic(),
            )
        self.outcomes.append(outcome)
        return outcome

    async def run(
        self, running: Callable[[], bool], *, workers: int = 4, pause: float = 0.01
    ) -> None:
        async def worker(n: int) -> None:
            async with httpx.AsyncClient(base_url=self.base, timeout=30) as client:
                for i in itertools.count():
                    if not running():
                        return
                    await self.one(client, "write" if (i + n) % 2 == 0 else "read")
                    await asyncio.sleep(pause)

        await asyncio.gather(*(worker(n) for n in range(workers)))
