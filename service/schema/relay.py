"""What every domain's GraphQL module shares: Relay nodes, connections, the node registry.

A domain registers how to fetch each of its node types by id (`register_node`); the
root `node(id:)` field looks the type up here instead of in an if-chain.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import strawberry

from service.errors import not_found
from service.pagination import Page, encode_cursor
from service.schema.ids import from_global_id

if TYPE_CHECKING:
    from service.schema.context import Context

T = TypeVar("T")


@strawberry.interface(description="Relay node: anything with a global id")
class Node:
    id: strawberry.ID


@strawberry.type
class PageInfo:
    has_next_page: bool
    has_previous_page: bool
    start_cursor: str | None
    end_cursor: str | None


@strawberry.type
class Edge(Generic[T]):
    cursor: str
    node: T


@strawberry.type
class Connection(Generic[T]):
    edges: list[Edge[T]]
    page_info: PageInfo

    @strawberry.field
    def nodes(self) -> list[T]:
        return [edge.node for edge in self.edges]


class LazyEdge:
    """What an `Edge` field resolves from: `node` and `cursor` by attribute, as every
    basic field is read (service/schema/tuning.py). The cursor is encoded only when a
    client asks for it; most ask for `pageInfo.endCursor` alone. (`Edge` implements no
    interface, so graphql-core never checks the object's class.)"""

    __slots__ = ("key", "node")

    def __init__(self, key: int, node: Any) -> None:
        self.key = key
        self.node = node

    @property
    def cursor(self) -> str:
        return encode_cursor(self.key)


def connection(page: Page[Any], convert: Callable[[Any], Any]) -> Any:
    """A connection of `page`'s rows, each shown as `convert(row)`; cursors are row ids."""
    items = page.items
    return Connection(
        edges=[LazyEdge(item.id, convert(item)) for item in items],  # type: ignore[misc]
        page_info=PageInfo(
            has_next_page=page.has_next_page,
            has_previous_page=page.has_previous_page,
            start_cursor=encode_cursor(items[0].id) if items else None,
            end_cursor=encode_cursor(items[-1].id) if items else None,
        ),
    )


NodeFetcher = Callable[["Context", int], Awaitable[Any]]
_NODE_FETCHERS: dict[str, NodeFetcher] = {}


def register_node(type_name: str, fetch: NodeFetcher) -> None:
    """`fetch(context, local_id)` returns the node of `type_name` or raises NOT_FOUND."""
    if type_name in _NODE_FETCHERS:
        raise ValueError(f"node type {type_name} registered twice")
    _NODE_FETCHERS[type_name] = fetch


def registered_node_types() -> frozenset[str]:
    return frozenset(_NODE_FETCHERS)


async def fetch_node(context: Context, global_id: str) -> Any:
    type_name, local_id = from_global_id(global_id)
    fetch = _NODE_FETCHERS.get(type_name)
    if fetch is None:
        raise not_found()
    return await fetch(context, local_id)
