"""Validation rules that keep hostile queries cheap: depth, aliases, introspection.

The rule classes are module-level and added once, so the validation cache key
(schema, document, rules) is the same on every request and the cache keeps hitting
(adding limiters as per-request factories defeats it: strawberry issue #4635).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    StringValueNode,
    ValidationContext,
    ValidationRule,
)
from strawberry.extensions import SchemaExtension
from strawberry.extensions.parser_cache import _get_parse_cache
from strawberry.extensions.validation_cache import _get_validate_cache


def _depth(
    selection_set: SelectionSetNode | None,
    fragments: dict[str, FragmentDefinitionNode],
    seen: frozenset[str],
) -> int:
    if selection_set is None:
        return 0
    deepest = 0
    for selection in selection_set.selections:
        if isinstance(selection, FieldNode):
            if selection.name.value.startswith("__"):
                continue
            deepest = max(deepest, 1 + _depth(selection.selection_set, fragments, seen))
        elif isinstance(selection, InlineFragmentNode):
            deepest = max(deepest, _depth(selection.selection_set, fragments, seen))
        elif isinstance(selection, FragmentSpreadNode):
            name = selection.name.value
            fragment = fragments.get(name)
            if fragment is not None and name not in seen:
                deepest = max(deepest, _depth(fragment.selection_set, fragments, seen | {name}))
    return deepest


def depth_limit_rule(max_depth: int) -> type[ValidationRule]:
    class QueryDepthRule(ValidationRule):
        def enter_operation_definition(self, node: OperationDefinitionNode, *_: Any) -> None:
            context: ValidationContext = self.context
            fragments = {
                d.name.value: d
                for d in context.document.definitions
                if isinstance(d, FragmentDefinitionNode)
            }
            depth = _depth(node.selection_set, fragments, frozenset())
            if depth > max_depth:
                self.report_error(
                    GraphQLError(
                        f"查询嵌套层数 {depth} 超过上限 {max_depth}",
                        node,
                        extensions={"code": "QUERY_TOO_DEEP"},
                    )
                )

    return QueryDepthRule


def _aliases(
    selection_set: SelectionSetNode | None,
    fragments: dict[str, FragmentDefinitionNode],
    seen: frozenset[str],
) -> int:
    """Aliased fields of a selection set, a fragment's counted at each spread of it: an
    alias inside a fragment spread ten times makes ten fields in the answer."""
    if selection_set is None:
        return 0
    count = 0
    for selection in selection_set.selections:
        if isinstance(selection, FieldNode):
            count += (selection.alias is not None) + _aliases(
                selection.selection_set, fragments, seen
            )
        elif isinstance(selection, InlineFragmentNode):
            count += _aliases(selection.selection_set, fragments, seen)
        elif isinstance(selection, FragmentSpreadNode):
            name = selection.name.value
            fragment = fragments.get(name)
            if fragment is not None and name not in seen:  # a cycle is refused elsewhere
                count += _aliases(fragment.selection_set, fragments, seen | {name})
    return count


def alias_limit_rule(max_aliases: int) -> type[ValidationRule]:
    class AliasCountRule(ValidationRule):
        """Aliases of every operation of the document, fragments expanded per use."""

        def leave_document(self, node: Any, *_: Any) -> None:
            definitions = self.context.document.definitions
            fragments = {
                d.name.value: d for d in definitions if isinstance(d, FragmentDefinitionNode)
            }
            self.count = sum(
                _aliases(d.selection_set, fragments, frozenset())
                for d in definitions
                if isinstance(d, OperationDefinitionNode)
            )
            if self.count > max_aliases:
                self.report_error(
                    GraphQLError(
                        f"别名数量 {self.count} 超过上限 {max_aliases}",
                        node,
                        extensions={"code": "TOO_MANY_ALIASES"},
                    )
                )

    return AliasCountRule


class ValidTextRule(ValidationRule):
    """A string literal holding a NUL character is refused (INVALID_INPUT) before
    anything runs: PostgreSQL cannot store it, and it would otherwise fail deep in a
    statement as an internal error. (A lone surrogate cannot be written in a literal:
    the parser refuses it; variables are checked by the view.)"""

    def enter_string_value(self, node: StringValueNode, *_: Any) -> None:
        if "\x00" in node.value:
            self.report_error(
                GraphQLError(
                    "输入含有无效字符（如空字符或不成对的代理字符）",
                    node,
                    extensions={"code": "INVALID_INPUT"},
                )
            )


class NoIntrospectionRule(ValidationRule):
    def enter_field(self, node: FieldNode, *_: Any) -> None:
        if node.name.value in {"__schema", "__type"}:
            self.report_error(
                GraphQLError(
                    "已关闭 GraphQL 内省查询", node, extensions={"code": "INTROSPECTION_DISABLED"}
                )
            )


class CachedDocuments(SchemaExtension):
    """Parse (with the token limit) and validate (with the rules above) through the
    process-wide LRU caches that strawberry's ParserCache and ValidationCache use.

    One extension instead of those two plus MaxTokensLimiter and AddValidationRules:
    the same caches and keys, a quarter of the per-request hook bookkeeping. The
    rules are a tuple made once, so the validation cache key stays equal across
    requests (strawberry issue #4635 is about keys that do not)."""

    def __init__(self, rules: tuple[type[ValidationRule], ...], max_tokens: int, size: int) -> None:
        super().__init__()
        self.rules = rules
        self.max_tokens = max_tokens
        self.parse = _get_parse_cache(size)
        self.validate = _get_validate_cache(size)

    def on_operation(self) -> Iterator[None]:
        context = self.execution_context
        context.parse_options["max_tokens"] = self.max_tokens
        context.validation_rules = context.validation_rules + self.rules
        yield

    def on_parse(self) -> Iterator[None]:
        context = self.execution_context
        context.graphql_document = self.parse(context.query, **context.parse_options)
        yield

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        errors = self.validate(
            context.schema._schema, context.graphql_document, context.validation_rules
        )
        context.pre_execution_errors = errors
        remember = getattr(context.schema, "remember_valid_document", None)
        if not errors and remember is not None and context.query:
            # The name as the client sent it (None too), the key the next request has.
            sent_name = context._provided_operation_name
            remember(context.query, sent_name, context.graphql_document)
        yield
