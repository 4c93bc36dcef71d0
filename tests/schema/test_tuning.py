"""The execution shortcuts of service/schema/tuning.py change how a value is found, never
which value: every answer, error and error path is graphql-core's own.

A small schema with every shape the shortcut computes directly (leaves, enums, a custom
scalar, objects behind an interface, lists of leaves and of objects, `__typename`) is
executed twice over the same data: by plain strawberry, and tuned as Pingyi's schema is
(`tune` + `PlainShortcut`, with plans shared across executions of a document). The data
includes what only graphql-core may answer: nulls where the type says non-null, values
of the wrong type, a missing attribute, an awaitable in a plain attribute, a generator
for a list.
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Callable
from datetime import datetime
from types import SimpleNamespace
from typing import Any, NewType

import pytest
import strawberry
from graphql import Undefined, parse
from graphql import execute as graphql_execute
from strawberry.extensions import FieldExtension
from strawberry.schema.config import StrawberryConfig
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from service.schema.tuning import (
    PlainShortcut,
    SharedPlans,
    is_awaitable,
    shared_plans,
    tune,
)

# Cases whose awaitable sits in a field a document does not ask for are never awaited.
pytestmark = pytest.mark.filterwarnings("ignore:coroutine 'later' was never awaited")


@strawberry.enum
class Color(enum.Enum):
    RED = "red"
    GREEN = "green"


# A scalar that serializes anything as it is, as a JSON scalar does.
Anything = NewType("Anything", object)
CONFIG = StrawberryConfig(
    scalar_map={
        Anything: strawberry.scalar(
            name="Anything", serialize=lambda value: value, parse_value=lambda value: value
        )
    }
)


class Shout(FieldExtension):
    """A field extension on a field without a resolver: it must keep working."""

    def resolve(self, next_: Callable[..., Any], source: Any, info: Any, **kwargs: Any) -> Any:
        return str(next_(source, info, **kwargs)).upper()


@strawberry.interface
class Named:
    name: str


@strawberry.type
class Leaf(Named):
    name: str
    count: int | None
    color: Color
    when: datetime | None
    tags: list[str]
    maybe_tags: list[str | None] | None
    extra: Anything | None
    shout: str = strawberry.field(default="quiet", extensions=[Shout()])


@strawberry.type
class Box:
    label: str
    leaf: Leaf
    maybe_leaf: Leaf | None
    leaves: list[Leaf]
    maybe_leaves: list[Leaf | None] | None

    @strawberry.field
    async def slow(self) -> str:
        await asyncio.sleep(0)
        return f"slow {self.label}"

    @strawberry.field
    def echo(self, text: str) -> str:
        return f"{self.label}: {text}"


def good_leaf(name: str = "a") -> Leaf:
    return Leaf(
        name=name,
        count=3,
        color=Color.GREEN,
        when=datetime(2026, 11, 28, 8, 0),
        tags=["x", "y"],
        maybe_tags=["z", None],
        extra={"k": [1, 2]},
    )


async def later(value: Any) -> Any:
    await asyncio.sleep(0)
    return value


class Settled:
    """An awaitable that is not a coroutine (as a Future is): String would str() it."""

    def __init__(self, value: Any) -> None:
        self.value = value

    def __await__(self) -> Any:
        return self.value
        yield  # a generator: awaiting it returns `value` at once


class RaisingLeaf(Leaf):
    """A Leaf whose `count` property raises (not an AttributeError)."""

    @property  # type: ignore[override]
    def count(self) -> int:
        raise ValueError("count unavailable")


def raising_leaf(name: str = "r") -> Leaf:
    leaf = object.__new__(RaisingLeaf)
    values = vars(good_leaf(name))
    values.pop("count")
    vars(leaf).update(values)
    return leaf


def broken(**changes: Any) -> Leaf:
    leaf = good_leaf("broken")
    for key, value in changes.items():
        setattr(leaf, key, value)
    return leaf


def box(label: str, **changes: Any) -> Any:
    values: dict[str, Any] = {
        "label": label,
        "leaf": good_leaf("l"),
        "maybe_leaf": None,
        "leaves": [good_leaf("p"), good_leaf("q")],
        "maybe_leaves": [good_leaf("r"), None],
    }
    values.update(changes)
    return Box(**values)


# Each case builds fresh data (an awaitable can be awaited once).
CASES: dict[str, Callable[[], Any]] = {
    "good": lambda: box("good"),
    "null in non-null leaf": lambda: box("n1", leaf=broken(name=None)),
    "null in non-null object": lambda: box("n2", leaf=None),
    "null item in non-null list": lambda: box("n3", leaves=[good_leaf(), None]),
    "null in non-null list of leaves": lambda: box("n4", leaf=broken(tags=["x", None])),
    "wrong scalar": lambda: box("w1", leaf=broken(count="three")),
    "wrong enum": lambda: box("w2", leaf=broken(color="green")),
    "wrong custom scalar": lambda: box("w3", leaf=broken(when="yesterday")),
    "wrong object type": lambda: box("w4", leaf=SimpleNamespace(name="n")),
    "not a list": lambda: box("w5", leaves=good_leaf()),
    "generator for a list": lambda: box("g", leaves=(good_leaf(n) for n in "st")),
    "missing attribute": lambda: SimpleNamespace(label="m", leaf=good_leaf()),
    "awaitable leaf": lambda: box("a1", leaf=broken(name=later("late"))),
    "awaitable custom scalar": lambda: box("a2", leaf=broken(when=later(datetime(2026, 1, 1)))),
    "awaitable in a permissive scalar": lambda: box("a5", leaf=broken(extra=later("any"))),
    "awaitable in a built-in scalar": lambda: box("a6", leaf=broken(name=Settled("settled"))),
    "awaitable item of a list of leaves": lambda: box("a7", leaf=broken(tags=["x", Settled("y")])),
    "a property raises": lambda: box("p1", leaf=raising_leaf()),
    "a property raises in a list": lambda: box("p2", leaves=[good_leaf(), raising_leaf()]),
    "an exception as a leaf value": lambda: box("e1", leaf=broken(extra=ValueError("no data"))),
    "an exception as an object": lambda: box("e2", maybe_leaf=ValueError("no leaf")),
    "undefined as a value": lambda: box("u1", leaf=broken(count=Undefined)),
    "awaitable object": lambda: box("a3", maybe_leaf=later(good_leaf("m"))),
    "awaitable list": lambda: box("a4", maybe_leaves=later([good_leaf("u")])),
}


@strawberry.type
class Query:
    @strawberry.field
    def box(self, case: str) -> Box:
        return CASES[case]()  # type: ignore[no-any-return]

    @strawberry.field
    def maybe_box(self, case: str) -> Box | None:
        return CASES[case]()  # type: ignore[no-any-return]

    @strawberry.field
    def boxes(self, cases: list[str]) -> list[Box | None]:
        return [CASES[case]() for case in cases]


class TunedContext(PlainShortcut, StrawberryGraphQLCoreExecutionContext):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.is_awaitable = is_awaitable


reference = strawberry.Schema(query=Query, config=CONFIG)
tuned = strawberry.Schema(query=Query, execution_context_class=TunedContext, config=CONFIG)
TUNED = tune(tuned._schema)

LEAF_FIELDS = "name count color when tags maybeTags extra shout"
DOCUMENTS = {
    "everything": f"""query($case: String!) {{ box(case: $case) {{ __typename label
        leaf {{ __typename {LEAF_FIELDS} }} maybeLeaf {{ {LEAF_FIELDS} }}
        leaves {{ {LEAF_FIELDS} }} maybeLeaves {{ name when }} }} }}""",
    "nullable root": f"""query($case: String!) {{ maybeBox(case: $case) {{ label
        leaf {{ {LEAF_FIELDS} }} leaves {{ name }} }} }}""",
    "mixed": """query($case: String!) { maybeBox(case: $case) { slow label
        e: echo(text: "hi") leaf { name color } leaves { name } maybeLeaf { name } } }""",
    "aliases, fragments, merged fields": """query($case: String!) {
        maybeBox(case: $case) { ...B label first: leaf { n: name } leaf { name count }
        leaf { color } } }
        fragment B on Box { label leaves { ... on Named { name } ...L } }
        fragment L on Leaf { tags name }""",
    "directives": """query($case: String!, $skip: Boolean!) {
        maybeBox(case: $case) { label @skip(if: $skip)
        leaf { name count @include(if: $skip) } leaves @skip(if: $skip) { name } } }""",
    "typename only": """query($case: String!) { maybeBox(case: $case) {
        maybeLeaf { __typename } leaf { __typename } } }""",
    "a list of roots": """query($cases: [String!]!) { boxes(cases: $cases) {
        label leaf { name when } } }""",
}


def run(schema: strawberry.Schema, document: Any, variables: dict[str, Any], plans: Any) -> Any:
    async def go() -> Any:
        token = shared_plans.set(plans)
        try:
            outcome = graphql_execute(
                schema._schema,
                document,
                variable_values=variables,
                executor_class=schema.execution_context_class,
                is_awaitable=is_awaitable,
            )
        finally:
            shared_plans.reset(token)
        if is_awaitable(outcome):
            outcome = await outcome
        errors = sorted((e.message, tuple(e.path or ())) for e in outcome.errors or ())
        return outcome.data, errors

    return asyncio.run(go())


def test_the_schema_is_tuned() -> None:
    assert TUNED["fields"] > 10
    assert TUNED["enums"] == 1


@pytest.mark.parametrize("name", sorted(DOCUMENTS))
def test_tuned_answers_are_graphql_cores(name: str) -> None:
    document = parse(DOCUMENTS[name])
    plans = SharedPlans.of(document)
    assert (plans is None) == (name == "directives")
    compared = 0
    for case in CASES:
        for skip in (False, True):  # twice over each document: the plans are reused
            variables = {"case": case, "cases": ["good", case, "good"], "skip": skip}
            expected = run(reference, document, variables, None)
            got = run(tuned, document, variables, plans)
            assert got == expected, (name, case, skip)
            compared += 1
    assert compared == 2 * len(CASES)
    if plans is not None:
        assert plans.plans  # the document's plans were kept and used again


def test_errors_are_reported_where_graphql_core_reports_them() -> None:
    """The comparison above would pass if both ignored the broken data; they do not."""
    document = parse(DOCUMENTS["everything"])
    data, errors = run(tuned, document, {"case": "null in non-null leaf"}, SharedPlans.of(document))
    assert data is None
    assert errors == [
        ("Cannot return null for non-nullable field Leaf.name.", ("box", "leaf", "name"))
    ]
    data, errors = run(tuned, document, {"case": "awaitable leaf"}, SharedPlans.of(document))
    assert errors == []
    assert data["box"]["leaf"]["name"] == "late"
    data, errors = run(tuned, document, {"case": "wrong object type"}, None)
    assert [path for _, path in errors] == [("box", "leaf")]
    assert "Expected value of type 'Leaf'" in errors[0][0]


@strawberry.type
class Tree:
    box: Box
    child: Tree | None


class CountedBox:
    """A Box whose `label` counts its reads (the tuned path may read a value twice: once
    itself, and once more in graphql-core when something below it is irregular)."""

    def __init__(self, depth: int) -> None:
        self.reads = 0
        self.depth = depth
        self.leaf = good_leaf()
        self.maybe_leaf = None
        self.leaves: list[Any] = []
        self.maybe_leaves = None

    @property
    def label(self) -> str:
        self.reads += 1
        return "counted"


def test_an_irregular_value_deep_down_costs_one_more_read_not_one_per_level() -> None:
    boxes = [CountedBox(depth) for depth in range(5)]
    boxes[-1].leaf = broken(name=None)  # a null where the type says non-null, at the bottom
    tree: Any = None
    for counted in reversed(boxes):
        tree = SimpleNamespace(box=counted, child=tree)

    @strawberry.type
    class TreeQuery:
        @strawberry.field
        def tree(self) -> Tree:
            return tree  # type: ignore[no-any-return]

    schema = strawberry.Schema(query=TreeQuery, execution_context_class=TunedContext, config=CONFIG)
    tune(schema._schema)
    nested = "box { label leaf { name } }"
    for _ in range(4):
        nested = f"box {{ label leaf {{ name }} }} child {{ {nested} }}"
    document = parse(f"{{ tree {{ {nested} }} }}")
    data, errors = run(schema, document, {}, SharedPlans.of(document))
    assert [path for _, path in errors] == [
        ("tree", "child", "child", "child", "child", "box", "leaf", "name")
    ]
    assert data["tree"]["box"]["label"] == "counted"
    assert [b.reads for b in boxes] == [2, 2, 2, 2, 2]
