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

And one in graphql-core's executor itself (`LeafShortcut`): completing a leaf field
(a scalar or enum read by attribute, no arguments) costs a `Path`, a resolve-info
object, the resolver call, an awaitable check and `complete_value`'s dispatch, though
the answer is `serialize(getattr(source, name))`. For each selection set of a request
the shortcut decides once which of its fields are such leaves and computes those
directly; every other field, and any leaf whose value needs an error (null where
the type says non-null, a value that does not serialize), goes through graphql-core's
own `execute_field`, which reports it exactly as before.

All change how a value is found, never which value: the schema export and every
answer stay the same (the test suite runs with this on).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from types import GeneratorType
from typing import Any

from graphql import (
    GraphQLEnumType,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLScalarType,
    GraphQLSchema,
    Undefined,
)
from graphql.pyutils import Path, gather_with_cancel
from strawberry.execution import optimized_is_awaitable
from strawberry.schema.name_converter import NameConverter

_DEFINITION = "strawberry-definition"


def _attribute(name: str) -> Callable[..., Any]:
    def resolve(source: Any, info: Any, **_: Any) -> Any:
        return getattr(source, name)

    resolve.attribute_name = name  # type: ignore[attr-defined]
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


# (response name, Python attribute, serialize, non-null) for a leaf read directly;
# (response name, None, None, False) for a field graphql-core executes itself.
_Step = tuple[str, str | None, Callable[[Any], Any] | None, bool]
_MISSING: Any = object()


def leaf_plan(schema: GraphQLSchema, parent_type: GraphQLObjectType, grouped: Any) -> list[_Step]:
    """How to execute one selection set: which fields are plain leaves."""
    steps: list[_Step] = []
    for response_name, details in grouped.items():
        first = details[0]
        field = schema.get_field(parent_type, first.node.name.value)
        attribute = getattr(getattr(field, "resolve", None), "attribute_name", None)
        plain = (
            field is not None
            and attribute is not None
            and not field.args
            and getattr(first, "fragment_variable_values", None) is None
            and all(not d.node.arguments and not d.node.directives for d in details)
        )
        if plain:
            assert field is not None
            leaf = field.type.of_type if isinstance(field.type, GraphQLNonNull) else field.type
            if isinstance(leaf, GraphQLScalarType | GraphQLEnumType):
                steps.append(
                    (
                        response_name,
                        attribute,
                        leaf.serialize,
                        isinstance(field.type, GraphQLNonNull),
                    )
                )
                continue
        steps.append((response_name, None, None, False))
    return steps


class LeafShortcut:
    """Mixed into the execution context: `execute_fields` with plain leaves computed
    directly (see the module docstring). Plans live as long as the execution, keyed by
    the memoized selection set (kept alive with its plan, so its id stays unique)."""

    _leaf_plans: dict[tuple[Any, int], tuple[Any, list[_Step]]]

    def execute_fields(  # type: ignore[no-untyped-def]
        self, parent_type, source_value, path, grouped_field_set, position_context
    ):
        if self.middleware_manager is not None:  # type: ignore[attr-defined]
            return super().execute_fields(  # type: ignore[misc]
                parent_type, source_value, path, grouped_field_set, position_context
            )
        try:
            plans = self._leaf_plans
        except AttributeError:
            plans = self._leaf_plans = {}
        key = (parent_type, id(grouped_field_set))
        found = plans.get(key)
        if found is None:
            found = (grouped_field_set, leaf_plan(self.schema, parent_type, grouped_field_set))  # type: ignore[attr-defined]
            plans[key] = found
        plan = found[1]
        if all(attribute is None for _, attribute, _, _ in plan):
            return super().execute_fields(  # type: ignore[misc]
                parent_type, source_value, path, grouped_field_set, position_context
            )
        return self._execute_planned(
            parent_type, source_value, path, grouped_field_set, position_context, plan
        )

    def _execute_planned(  # type: ignore[no-untyped-def]
        self, parent_type, source_value, path, grouped_field_set, position_context, plan
    ):
        results: dict[str, Any] = {}
        is_awaitable_ = self.is_awaitable  # type: ignore[attr-defined]
        awaitable_fields: list[str] = []
        try:
            for response_name, attribute, serialize, non_null in plan:
                if attribute is not None:
                    value = getattr(source_value, attribute, _MISSING)
                    if value is _MISSING:
                        pass
                    elif value is not None and not is_awaitable_(value):
                        try:
                            out = serialize(value)  # type: ignore[misc]
                        except Exception:
                            out = Undefined
                        if out is not Undefined and out is not None:
                            results[response_name] = out
                            continue
                    elif value is None and not non_null:
                        results[response_name] = None
                        continue
                # Not a plain leaf, or one that needs graphql-core to report an error.
                result = self.execute_field(  # type: ignore[attr-defined]
                    parent_type,
                    source_value,
                    grouped_field_set[response_name],
                    Path(path, response_name, parent_type.name),
                    position_context,
                )
                if result is not Undefined:
                    results[response_name] = result
                    if is_awaitable_(result):
                        awaitable_fields.append(response_name)
        except Exception:
            if awaitable_fields:
                self.settle_in_background(  # type: ignore[attr-defined]
                    [results[field] for field in awaitable_fields]
                )
            raise
        if not awaitable_fields:
            return results

        async def get_results() -> dict[str, Any]:
            if len(awaitable_fields) == 1:
                field = awaitable_fields[0]
                results[field] = await results[field]
            else:
                awaited = await gather_with_cancel(*(results[f] for f in awaitable_fields))
                results.update(zip(awaitable_fields, awaited, strict=True))
            return results

        return get_results()
