"""What every resolver gets: the request's transaction, principal, settings, loaders."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from strawberry.dataloader import DataLoader

from service.auth.principal import Principal
from service.config import Settings
from service.db import Transaction
from service.pagination import PageRequest

BatchLoad = Callable[["Context", Sequence[Any]], Awaitable[Sequence[Any]]]


@dataclass
class Context:
    tx: Transaction
    principal: Principal
    settings: Settings
    request: Any = None
    response: Any = None
    loaders: dict[BatchLoad, DataLoader[Any, Any]] = field(default_factory=dict)
    # Futures of resolvers still running after the result (see SettlingExecutionContext)
    background_work: set[Any] = field(default_factory=set)

    def page(self, first: int | None, after: str | None) -> PageRequest:
        return PageRequest.parse(
            first,
            after,
            default=self.settings.default_page_size,
            maximum=self.settings.max_page_size,
        )

    def loader(self, batch_load: BatchLoad) -> DataLoader[Any, Any]:
        """This request's DataLoader for `batch_load(context, keys)`: one per function,
        made on first use, so a domain declares a loader as a plain function."""
        loader = self.loaders.get(batch_load)
        if loader is None:

            async def load(keys: list[Any]) -> Sequence[Any]:
                return await batch_load(self, keys)

            loader = DataLoader(load_fn=load)
            self.loaders[batch_load] = loader
        return loader
