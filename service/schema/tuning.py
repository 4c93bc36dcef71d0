"""Cheaper execution of the schema strawberry built, without leaving strawberry.

Measured on `children(first: 20) { edges { node { id name kind } } }` (cProfile,
in-process): graphql-core completes ~80 fields per request, and two of strawberry's
per-field steps cost more than the work they wrap:

- a field without a resolver goes through `_get_basic_result` -> `get_result` ->
  the configured default resolver: three Python calls for one `getattr`. Here it is
  one closure over the field's Python name, which is exactly what the default
  resolver does (strawberry marks such fields `_is_default`; fields with a resolver,
  permissions or extensions are not touched);
- an enum value is turned into its GraphQL name by scanning every value of the enum
  and comparing `.value`s (`CustomGraphQLEnumType.coerce_output_value`). Here it is a
  dictionary from member to name, falling back to strawberry's own method for
  anything else.

Two more, found by py-spy under load (`python -m bench.children --profile`):

- graphql-core asks of every value whether it is awaitable; strawberry's check has a
  fast path for primitives only, so each of our objects (edges, units, connections)
  costs two `isinstance` and a failing `hasattr`. `is_awaitable` here decides once per
  type (`await` looks `__await__` up on the type), except for generators, whose answer
  depends on the instance;
- argument names are converted to camelCase again on every request
  (`convert_arguments`); `CachedNameConverter` remembers each conversion.

All change how a value is found, never which value: the schema export and every
answer stay the same (the test suite runs with this on).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from types import GeneratorType
from typing import Any

from graphql import GraphQLEnumType, GraphQLObjectType, GraphQLSchema
from strawberry.execution import optimized_is_awaitable
from strawberry.schema.name_converter import NameConverter

_DEFINITION = "strawberry-definition"


def _attribute(name: str) -> Callable[..., Any]:
    def resolve(source: Any, info: Any, **_: Any) -> Any:
        return getattr(source, name)

    return resolve


def _direct_basic_fields(schema: GraphQLSchema) -> int:
    tuned = 0
    for named in schema.type_map.values():
        if not isinstance(named, GraphQLObjectType) or named.name.startswith("__"):
            continue
        for field in named.fields.values():
            definition = (field.extensions or {}).get(_DEFINITION)
            if getattr(field.resolve, "_is_default", False) and definition is not None:
                field.resolve = _attribute(definition.python_name)
                tuned += 1
    return tuned


def _enum_by_member(schema: GraphQLSchema) -> int:
    tuned = 0
    for named in schema.type_map.values():
        wrapped = getattr(named, "wrapped_cls", None)
        if not isinstance(named, GraphQLEnumType) or wrapped is None:
            continue
        # Resolvers return members of the Python enum; the GraphQL value is its .value.
        names = {wrapped(value.value): name for name, value in named.values.items()}
        fallback = named.coerce_output_value

        def coerce(output: Any, names: dict[Any, str] = names, fallback: Any = fallback) -> Any:
            found = names.get(output)
            return found if found is not None else fallback(output)

        named.coerce_output_value = coerce  # type: ignore[method-assign]
        named.serialize = coerce  # type: ignore[method-assign]
        tuned += 1
    return tuned


def tune(schema: GraphQLSchema) -> dict[str, int]:
    """Apply both to `schema` (graphql-core's, built by strawberry); what was tuned."""
    return {"fields": _direct_basic_fields(schema), "enums": _enum_by_member(schema)}


_AWAITABLE_BY_TYPE: dict[type, bool] = {}


def is_awaitable(value: Any) -> bool:
    """strawberry's `optimized_is_awaitable`, remembered per type."""
    kind = type(value)
    known = _AWAITABLE_BY_TYPE.get(kind)
    if known is None:
        known = optimized_is_awaitable(value)
        if kind is not GeneratorType:
            _AWAITABLE_BY_TYPE[kind] = known
    return known


class CachedNameConverter(NameConverter):
    """strawberry's name converter, remembering each snake_case -> camelCase."""

    @functools.lru_cache(maxsize=4096)  # noqa: B019 (one converter per schema, kept for good)
    def apply_naming_config(self, name: str) -> str:
        return super().apply_naming_config(name)
