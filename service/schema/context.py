"""What every resolver gets: the request's transaction, principal, loaders, settings."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from strawberry.dataloader import DataLoader

from service.auth.principal import Principal
from service.config import Settings
from service.pagination import PageRequest
from service.tenants.models import OrgUnit
from service.tenants.service import load_org_units


@dataclass
class Context:
    session: AsyncSession
    principal: Principal
    settings: Settings
    request: Any = None
    response: Any = None
    loaders: dict[str, DataLoader[Any, Any]] = field(default_factory=dict)
    # Futures of resolvers still running after the result (see SettlingExecutionContext)
    background_work: set[Any] = field(default_factory=set)

    def page(self, first: int | None, after: str | None) -> PageRequest:
        return PageRequest.parse(
            first,
            after,
            default=self.settings.default_page_size,
            maximum=self.settings.max_page_size,
        )

    @property
    def org_unit_loader(self) -> DataLoader[int, OrgUnit | None]:
        loader = self.loaders.get("org_unit")
        if loader is None:

            async def load(ids: list[int]) -> list[OrgUnit | None]:
                return await load_org_units(self.session, self.principal, ids)

            loader = DataLoader(load_fn=load)
            self.loaders["org_unit"] = loader
        return loader
