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

And one in graphql-core's executor itself (`PlainShortcut`): completing a field that
reads an attribute (no resolver, no arguments, no directives) costs a `Path`, a
resolve-info object, the resolver call, an awaitable check and `complete_value`'s
dispatch, though the answer is `serialize(getattr(source, name))` for a leaf, and the
same again for each field of an object or of each item of a list. For each selection
set the shortcut decides once (a plan) which fields are plain, including objects and
lists whose whole sub-selection is plain, and computes those directly: a page of
twenty units is one loop, not ~80 trips through `execute_field`. Every other field,
and any plain one whose value is irregular (null where the type says non-null, a value
that does not serialize or is not of its type, an awaitable, an iterable that is not a
list), goes through graphql-core's own `execute_field`, which reports it exactly as
before. A prepared document without directives keeps its plans across executions
(`SharedPlans`): without `@skip`/`@include` its selection sets cannot vary.

All change how a value is found, never which value: the schema export and every answer
stay the same (the test suite runs with this on; tests/schema/test_tuning.py compares
answers, errors and error paths with plain strawberry's, over irregular data).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from contextvars import ContextVar
from types import GeneratorType
from typing import Any

from graphql import (
    DocumentNode,
    GraphQLEnumType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLScalarType,
    GraphQLSchema,
    Undefined,
)
from graphql.language import Visitor, visit
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
            # strawberry marks a field without a resolver `_is_default` even when field
            # extensions (or permissions, which are extensions) wrap its value.
            if (
                getattr(field.resolve, "_is_default", False)
                and definition is not None
                and definition.base_resolver is None
                and not definition.extensions
            ):
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


# --------------------------------------------------------------------------- plain subtrees
#
# A plan says, for each field of one selection set, how its value is found. Steps:
_FIELD = 0  # (tag, response name): graphql-core's execute_field
_LEAF = 1  # (tag, name, attribute, serialize, non-null)
_TYPENAME = 2  # (tag, name, the type's name)
_OBJECT = 3  # (tag, name, attribute, non-null, is_type_of or None, plan of its fields)
_LIST = 4  # (tag, name, attribute, non-null, item non-null, item serialize, is_type_of, plan)
_Step = tuple[Any, ...]


class _Irregular(Exception):
    """A value graphql-core must complete itself: it reports the error, or knows the shape."""


_IRREGULAR = _Irregular()


# Types whose values graphql-core completes as they are: not awaitable, not an error,
# not a generator. (A str() of anything else is what String and ID would make of it.)
_REGULAR_BY_TYPE: dict[type, bool] = {}


def _regular(value: Any) -> bool:
    """Whether graphql-core would complete `value` without awaiting it first, raising
    it (an Exception returned as a value) or iterating it lazily: decided per type."""
    kind = type(value)
    known = _REGULAR_BY_TYPE.get(kind)
    if known is None:
        known = not (
            issubclass(kind, BaseException) or kind is GeneratorType or is_awaitable(value)
        )
        _REGULAR_BY_TYPE[kind] = known
    return known


def _read(source: Any, attribute: str) -> Any:
    """`getattr`, with whatever a property raises left for graphql-core to report."""
    try:
        return getattr(source, attribute)
    except Exception:
        raise _IRREGULAR from None


def _null(value: Any, non_null: bool) -> bool:
    """Whether `value` answers null (graphql-core nulls Undefined too); a null where the
    type says non-null is irregular (graphql-core reports it)."""
    if value is not None and value is not Undefined:
        return False
    if non_null:
        raise _IRREGULAR
    return True


def _leaf_value(value: Any, serialize: Callable[[Any], Any], non_null: bool) -> Any:
    if _null(value, non_null):
        return None
    if not _regular(value):
        raise _IRREGULAR
    try:
        out = serialize(value)
    except Exception:
        raise _IRREGULAR from None
    if out is None or out is Undefined:
        raise _IRREGULAR
    return out


def _object_value(value: Any, non_null: bool, is_type_of: Any, plan: list[_Step]) -> Any:
    if _null(value, non_null):
        return None
    if not _regular(value):
        raise _IRREGULAR
    if is_type_of is not None:
        try:
            fits = is_type_of(value, None)
        except Exception:
            raise _IRREGULAR from None
        if fits is not True:
            raise _IRREGULAR
    return _fill(plan, value)


def _list_value(value: Any, step: _Step) -> Any:
    _, _, _, non_null, item_non_null, serialize, is_type_of, plan = step
    if _null(value, non_null):
        return None
    if type(value) is not list and type(value) is not tuple:
        raise _IRREGULAR  # other iterables, async ones, or not a list at all
    if serialize is not None:
        return [_leaf_value(item, serialize, item_non_null) for item in value]
    return [_object_value(item, item_non_null, is_type_of, plan) for item in value]


def _fill(plan: list[_Step], source: Any) -> dict[str, Any]:
    """The answer for `source` under a plan of direct steps only."""
    out: dict[str, Any] = {}
    for step in plan:
        tag = step[0]
        if tag == _LEAF:  # by far the most common step
            out[step[1]] = _leaf_value(_read(source, step[2]), step[3], step[4])
        elif tag == _OBJECT:
            out[step[1]] = _object_value(_read(source, step[2]), step[3], step[4], step[5])
        elif tag == _LIST:
            out[step[1]] = _list_value(_read(source, step[2]), step)
        else:
            out[step[1]] = step[2]
    return out


class SharedPlans:
    """Plans of one prepared document, kept across its executions.

    Which fields a selection set holds depends on the document, the runtime type and,
    through `@skip`/`@include`, on the variables. A document without directives has
    the same selection sets in every execution, so its plans are kept with it, keyed
    by the type and the identity of the field nodes (which the document keeps alive).
    """

    __slots__ = ("plans",)

    def __init__(self) -> None:
        self.plans: dict[tuple[Any, ...], tuple[list[_Step], bool]] = {}

    @staticmethod
    def of(document: DocumentNode) -> SharedPlans | None:
        """Shared plans for `document`, or None if any directive could vary them."""
        return None if _has_directives(document) else SharedPlans()


class _DirectiveFinder(Visitor):
    found = False

    def enter_directive(self, *_: Any) -> Any:
        self.found = True
        return self.BREAK


def _has_directives(document: DocumentNode) -> bool:
    finder = _DirectiveFinder()
    visit(document, finder)
    return finder.found


# Set by the schema around the execution of a prepared document (service/schema/root.py).
shared_plans: ContextVar[SharedPlans | None] = ContextVar("shared_plans", default=None)


class PlainShortcut:
    """Mixed into the execution context: `execute_fields` with plain fields computed
    directly (see the module docstring). Plans are kept for the execution, keyed by the
    memoized selection set (kept alive with its plan, so its id stays unique), and for
    the document's later executions where that is safe (`SharedPlans`)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._plans: dict[tuple[Any, int], tuple[Any, list[_Step], bool]] = {}
        self._shared = shared_plans.get()
        # While graphql-core re-executes an irregular plain field, its subtree is left to
        # graphql-core too: each value is read once more, not once per level above it.
        self._by_graphql_core = 0

    def _plan(self, parent_type: GraphQLObjectType, grouped: Any) -> tuple[list[_Step], bool]:
        """The plan of one selection set, and whether every step in it is direct."""
        plans = self._plans
        key = (parent_type, id(grouped))
        found = plans.get(key)
        if found is not None:
            return found[1], found[2]
        shared = self._shared
        if shared is not None:
            shared_key = (parent_type, *(id(d.node) for ds in grouped.values() for d in ds))
            kept = shared.plans.get(shared_key)
            if kept is None:
                kept = shared.plans[shared_key] = self._build_plan(parent_type, grouped)
            plans[key] = (grouped, *kept)
            return kept
        built = self._build_plan(parent_type, grouped)
        plans[key] = (grouped, *built)
        return built

    def _build_plan(self, parent_type: GraphQLObjectType, grouped: Any) -> tuple[list[_Step], bool]:
        steps = [self._step(parent_type, name, details) for name, details in grouped.items()]
        return steps, all(step[0] != _FIELD for step in steps)

    def _step(self, parent_type: GraphQLObjectType, response_name: str, details: Any) -> _Step:
        first = details[0]
        plain = all(
            not d.node.arguments
            and not d.node.directives
            and d.defer_usage is None
            and getattr(d, "fragment_variable_values", None) is None
            for d in details
        )
        if not plain:
            return (_FIELD, response_name)
        field_name = first.node.name.value
        if field_name == "__typename":
            return (_TYPENAME, response_name, parent_type.name)
        field = self.schema.get_field(parent_type, field_name)  # type: ignore[attr-defined]
        attribute = getattr(getattr(field, "resolve", None), "attribute_name", None)
        if field is None or attribute is None or field.args:
            return (_FIELD, response_name)
        non_null = isinstance(field.type, GraphQLNonNull)
        named = field.type.of_type if non_null else field.type
        if isinstance(named, GraphQLScalarType | GraphQLEnumType):
            return (_LEAF, response_name, attribute, named.serialize, non_null)
        if isinstance(named, GraphQLObjectType):
            plan = self._direct_subplan(named, details)
            if plan is not None:
                return (_OBJECT, response_name, attribute, non_null, named.is_type_of, plan)
        elif isinstance(named, GraphQLList):
            item_non_null = isinstance(named.of_type, GraphQLNonNull)
            item = named.of_type.of_type if item_non_null else named.of_type
            if isinstance(item, GraphQLScalarType | GraphQLEnumType):
                return (_LIST, response_name, attribute, non_null, item_non_null,
                        item.serialize, None, None)  # fmt: skip
            if isinstance(item, GraphQLObjectType):
                plan = self._direct_subplan(item, details)
                if plan is not None:
                    return (_LIST, response_name, attribute, non_null, item_non_null,
                            None, item.is_type_of, plan)  # fmt: skip
        return (_FIELD, response_name)

    def _direct_subplan(self, object_type: GraphQLObjectType, details: Any) -> list[_Step] | None:
        """The plan of a field's sub-selection, if every step in it is direct."""
        grouped, defer_usages, _ = self.collect_subfields(object_type, details)  # type: ignore[attr-defined]
        if defer_usages:
            return None
        plan, direct = self._plan(object_type, grouped)
        return plan if direct else None

    def execute_fields(  # type: ignore[no-untyped-def]
        self, parent_type, source_value, path, grouped_field_set, position_context
    ):
        if self.middleware_manager is not None or self._by_graphql_core:  # type: ignore[attr-defined]
            return super().execute_fields(  # type: ignore[misc]
                parent_type, source_value, path, grouped_field_set, position_context
            )
        plan, direct = self._plan(parent_type, grouped_field_set)
        if direct:
            try:
                return _fill(plan, source_value)
            except _Irregular:
                # graphql-core completes the whole selection set and reports what it
                # finds: each value is read once more, not once per level above it.
                self._by_graphql_core += 1
                try:
                    return super().execute_fields(  # type: ignore[misc]
                        parent_type, source_value, path, grouped_field_set, position_context
                    )
                finally:
                    self._by_graphql_core -= 1
        if all(step[0] == _FIELD for step in plan):
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
            for step in plan:
                response_name = step[1]
                plain = step[0] != _FIELD
                if plain:
                    try:
                        results[response_name] = _fill([step], source_value)[response_name]
                        continue
                    except _Irregular:
                        pass
                # Not a plain field, or an irregular one: graphql-core completes it and
                # reports what it finds (below an irregular one, graphql-core alone).
                self._by_graphql_core += plain
                try:
                    result = self.execute_field(  # type: ignore[attr-defined]
                        parent_type,
                        source_value,
                        grouped_field_set[response_name],
                        Path(path, response_name, parent_type.name),
                        position_context,
                    )
                finally:
                    self._by_graphql_core -= plain
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
