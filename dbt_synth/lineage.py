"""Keys and tests through lineage: what a project's tests say about the tables it twins.

A dbt project tests its marts (`orders.customer_id` is a `relationships` to `customers`) while
the twins are of the raw seeds or sources those marts are built from. Column-level lineage over
the models' compiled SQL (sqlglot) traces each tested column back, through renames, CTEs, joins
and several model hops, to the twinned column it comes from. The tests then apply to the twins:
a `relationships` test declares a foreign key between the twinned tables it traces to, and
`unique`, `not_null` and `accepted_values` move to the twinned column, so that the twin
satisfies what the project tests downstream.

The rules are conservative (a test a twin inherits wrongly makes it fail, or worse, shapes it):

- A column is traced only along a *pure* path: at every step it is a plain column reference,
  renamed or not, from exactly one upstream column. Anything computed (a cast, `coalesce`, an
  aggregate, a window, a union of branches) stops the trace.
- `relationships` needs pure paths on both sides; rows may be filtered or joined on the way,
  since the test states a design fact about the values, not about the row counts.
- `unique`, `not_null` and `accepted_values` also need every select on the path to keep each
  upstream row at least once: no WHERE, GROUP BY, HAVING, QUALIFY, DISTINCT or LIMIT, and joins
  only as LEFT joins onto the column's own table. (`unique` on `customer_id` after a GROUP BY
  or a filter says nothing about the staging rows.)
- Row-level rules (`not_null`, `accepted_values`, `accepted_range`, `expression_is_true`, column
  pairs; rule_tests.py) move to the twinned table when every column they name traces there
  along such row-keeping paths; a test with a `where` config moves only as such a rule.
- Name-based guesses (a `<table>_id` column next to a unique key of `<table>`) are returned
  apart, as proposals a user confirms; they are never applied.

Everything here is a pure function of the manifest, the compiled SQL and the column lists.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlglot
from sqlglot import exp
from sqlglot.lineage import Node, lineage
from sqlglot.optimizer.qualify import qualify
from sqlglot.optimizer.scope import build_scope

from dbt_synth.manifest_nodes import (
    display_name,
    generic_tests,
    is_identifier,
    model_order,
    relations,
    relationships_parent,
    seed_columns,
    test_owner,
)
from dbt_synth.rule_tests import TracedRule, test_where, traced_rules

# Selects with one of these clauses may drop or merge upstream rows.
_ROW_CHANGING = ("where", "group", "having", "qualify", "distinct", "limit", "offset")
# Prefixes of raw and staging layers, stripped when guessing what `<table>_id` refers to.
_LAYER_PREFIX = re.compile(r"^(raw|src|source|stg|staging|base|int|dim|fct)_")


class InheritedTest(enum.Enum):
    """The generic tests a twinned column inherits through lineage."""

    UNIQUE = "unique"
    NOT_NULL = "not_null"
    ACCEPTED_VALUES = "accepted_values"


@dataclass(frozen=True)
class TwinColumn:
    """A column of a twinned node (`node` is its dbt unique id), spelt as the node spells it."""

    node: str
    column: str


@dataclass(frozen=True)
class TracedTest:
    """A test declared on `origin` (`model.column`) that holds for the twinned `column`.

    `values` and `quote` are the `accepted_values` arguments (None for the other kinds).
    """

    column: TwinColumn
    kind: InheritedTest
    origin: str
    values: tuple[Any, ...] | None = None
    quote: bool | None = None

    def arguments(self) -> dict[str, Any]:
        """The test's arguments as a dbt yml writes them."""
        if self.kind is not InheritedTest.ACCEPTED_VALUES:
            return {}
        arguments: dict[str, Any] = {"values": list(self.values or ())}
        if self.quote is not None:
            arguments["quote"] = self.quote
        return arguments


@dataclass(frozen=True)
class TracedKey:
    """A foreign key between twinned columns: `child` values are `parent` values.

    `origin` names the `relationships` test it comes from (`orders.customer_id → customers.
    customer_id`) or, for a proposal, the reason it was guessed.
    """

    child: TwinColumn
    parent: TwinColumn
    origin: str


@dataclass(frozen=True)
class TracedConstraints:
    """What the project's tests say about its twinned tables.

    `keys` and `tests` come from tests traced through lineage (tests declared on a twinned node
    itself are included: they trace in zero steps); `proposals` are name-based guesses only.
    """

    tests: tuple[TracedTest, ...] = ()
    keys: tuple[TracedKey, ...] = ()
    proposals: tuple[TracedKey, ...] = ()
    # Row-level rules (rule_tests.py) for `synth.rules`, spelt in the twinned columns.
    rules: tuple[TracedRule, ...] = ()

    def tests_on(self, node: str) -> tuple[TracedTest, ...]:
        return tuple(t for t in self.tests if t.column.node == node)

    def keys_of(self, node: str) -> tuple[TracedKey, ...]:
        """Foreign keys whose child column is in `node`."""
        return tuple(k for k in self.keys if k.child.node == node)

    def proposals_of(self, node: str) -> tuple[TracedKey, ...]:
        return tuple(k for k in self.proposals if k.child.node == node)


@dataclass(frozen=True)
class _Hop:
    """A column comes purely from `node`.`column`; `keeps_rows` if every step kept the rows.

    One step of a model's lineage, or the end of a whole trace at a twinned node.
    """

    node: str
    column: str
    keeps_rows: bool

    @property
    def twin_column(self) -> TwinColumn:
        return TwinColumn(self.node, self.column)


@dataclass
class _Graph:
    """Relations, column lists and one-step lineage of every model, built once."""

    manifest: Any
    twinned: frozenset[str]
    dialect: str | None
    by_relation: dict[tuple[str, ...], str] = field(default_factory=dict)
    columns: dict[str, tuple[str, ...]] = field(default_factory=dict)
    hops: dict[tuple[str, str], _Hop | None] = field(default_factory=dict)

    def trace(self, node: str, column: str) -> _Hop | None:
        """Follow pure steps from `node`.`column` until a twinned node, or give up (None)."""
        keeps_rows = True
        seen = set()
        while node not in self.twinned:
            if (node, column) in seen:
                return None
            seen.add((node, column))
            hop = self.hops.get((node, column.lower()))
            if hop is None:
                return None
            node, column, keeps_rows = hop.node, hop.column, keeps_rows and hop.keeps_rows
        spelt = {c.lower(): c for c in self.columns.get(node, ())}
        return _Hop(node, spelt.get(column.lower(), column), keeps_rows)


def trace_constraints(
    manifest: Any,
    twinned: Iterable[str],
    compiled: Mapping[str, str],
    *,
    columns: Mapping[str, Sequence[str]] | None = None,
) -> TracedConstraints:
    """The tests and foreign keys of a project, traced back to its twinned nodes.

    Args:
        manifest: dbt's parsed `Manifest` (`dbt parse`); its tests and relations are read.
        twinned: unique ids of the seeds, sources and models that get twins.
        compiled: compiled SQL by model unique id (`dbt compile`); a model missing here stops
            every trace through it.
        columns: column names of sources (or any node) that the manifest does not list; a
            seed's columns are read from its CSV header.

    Returns:
        The traced tests and keys, and name-based key proposals (never to be applied silently).
    """
    graph = _build(manifest, frozenset(twinned), compiled, columns or {})
    tests, keys = [], []
    for test in generic_tests(manifest):
        kind, kwargs = test.test_metadata.name, test.test_metadata.kwargs or {}
        owner = test_owner(manifest, test)
        if owner is None or not is_identifier(test.column_name):
            continue
        origin = f"{display_name(manifest, owner)}.{test.column_name}"
        traced, where = graph.trace(owner, test.column_name), test_where(test)
        if traced is None:
            continue
        if kind == "relationships":
            parent = relationships_parent(manifest, test, kwargs)
            field_name = kwargs.get("field")
            if parent is None or not is_identifier(field_name):
                continue
            target = graph.trace(parent, field_name)
            if target is not None and target.twin_column != traced.twin_column:
                origin += f" → {display_name(manifest, parent)}.{field_name}"
                keys.append(TracedKey(traced.twin_column, target.twin_column, origin))
        elif kind in {k.value for k in InheritedTest} and traced.keeps_rows and not where:
            values = kwargs.get("values")
            tests.append(
                TracedTest(
                    traced.twin_column,
                    InheritedTest(kind),
                    origin,
                    tuple(values) if isinstance(values, list | tuple) else None,
                    kwargs.get("quote") if kind == InheritedTest.ACCEPTED_VALUES.value else None,
                )
            )
    keys = _distinct(keys, lambda k: (k.child, k.parent))
    tests = _distinct(tests, lambda t: (t.column, t.kind, t.values))
    rules = _distinct(traced_rules(manifest, graph.trace), lambda r: (r.node, repr(r.entry)))
    proposals = _proposals(graph, tests, keys)
    return TracedConstraints(tuple(tests), tuple(keys), proposals, tuple(rules))


def _build(
    manifest: Any,
    twinned: frozenset[str],
    compiled: Mapping[str, str],
    columns: Mapping[str, Sequence[str]],
) -> _Graph:
    dialect = getattr(manifest.metadata, "adapter_type", None)
    graph = _Graph(manifest, twinned, dialect)
    for unique_id, node in relations(manifest):
        relation = _relation_key(node.relation_name, dialect)
        if relation:
            graph.by_relation[relation] = unique_id
        listed = columns.get(unique_id) or seed_columns(node) or tuple(node.columns or {})
        if listed:
            graph.columns[unique_id] = tuple(listed)
    for unique_id in model_order(manifest):
        sql = compiled.get(unique_id)
        if sql:
            _add_model(graph, unique_id, sql)
    return graph


def _add_model(graph: _Graph, unique_id: str, sql: str) -> None:
    """One-step lineage of every output column of one model, and its column list."""
    schema: dict[str, Any] = {}
    for relation, upstream in graph.by_relation.items():
        names = graph.columns.get(upstream)
        if names:
            level = schema
            for part in relation[:-1]:
                level = level.setdefault(part, {})
            level[relation[-1]] = {name.lower(): "text" for name in names}
    try:
        statement = sqlglot.parse_one(sql, dialect=graph.dialect)
        statement = qualify(
            statement,
            schema=schema,
            dialect=graph.dialect,
            validate_qualify_columns=False,
            identify=False,
        )
        scope = build_scope(statement)
        nodes = lineage(None, statement, schema=schema, dialect=graph.dialect, scope=scope)
    except sqlglot.errors.SqlglotError:
        return
    graph.columns[unique_id] = tuple(nodes)
    for name, root in nodes.items():
        graph.hops[(unique_id, name.lower())] = _hop(graph, root)


def _hop(graph: _Graph, root: Node) -> _Hop | None:
    """The one upstream relation column `root` is a pure copy of, or None."""
    keeps_rows = True
    node = root
    while node.downstream:
        if len(node.downstream) != 1 or not _is_copy(node.expression):
            return None
        child = node.downstream[0]
        keeps_rows = keeps_rows and _keeps_rows(node.source, child.name.rpartition(".")[0])
        node = child
    if not isinstance(node.expression, exp.Table):
        return None
    upstream = graph.by_relation.get(_table_key(node.expression))
    if upstream is None:
        return None
    return _Hop(upstream, node.name.rpartition(".")[2], keeps_rows)


def _is_copy(expression: exp.Expr) -> bool:
    """A plain column reference, renamed or not."""
    if isinstance(expression, exp.Alias):
        expression = expression.this
    return isinstance(expression, exp.Column)


def _keeps_rows(select: exp.Expr, alias: str) -> bool:
    """Whether every row of the relation aliased `alias` shows up in `select`'s rows."""
    if not isinstance(select, exp.Select):
        return False
    if any(select.args.get(clause) for clause in _ROW_CHANGING):
        return False
    joins = select.args.get("joins") or []
    if not joins:
        return True
    base = select.args.get("from_") or select.args.get("from")
    return (
        base is not None
        and base.this.alias_or_name == alias
        and all(join.side == "LEFT" for join in joins)
    )


def _relation_key(relation_name: str | None, dialect: str | None) -> tuple[str, ...] | None:
    if not relation_name:
        return None
    try:
        table = exp.to_table(relation_name, dialect=dialect)
    except sqlglot.errors.SqlglotError:
        return None
    return _table_key(table)


def _table_key(table: exp.Table) -> tuple[str, ...]:
    return tuple(part.lower() for part in (table.catalog, table.db, table.name) if part)


def _distinct(items: list, key) -> list:
    seen, kept = set(), []
    for item in items:
        if key(item) not in seen:
            seen.add(key(item))
            kept.append(item)
    return kept


def _proposals(
    graph: _Graph, tests: list[TracedTest], keys: list[TracedKey]
) -> tuple[TracedKey, ...]:
    """`<table>_id` columns next to a unique key of `<table>` (or of the same name) that no
    traced `relationships` test already covers: guesses for a user to confirm."""
    unique = [t.column for t in tests if t.kind is InheritedTest.UNIQUE]
    covered = {k.child for k in keys}
    proposals = []
    for parent in unique:
        stem = _LAYER_PREFIX.sub("", display_name(graph.manifest, parent.node).rpartition(".")[2])
        names = {parent.column.lower()} if parent.column.lower().endswith("_id") else set()
        names |= {f"{stem}_id", f"{stem.removesuffix('s')}_id"}
        for node in sorted(graph.twinned):
            if node == parent.node:
                continue
            for column in graph.columns.get(node, ()):
                child = TwinColumn(node, column)
                if column.lower() in names and child not in covered:
                    key = f"{display_name(graph.manifest, parent.node)}.{parent.column}"
                    reason = f"name: {column} next to the unique key {key}"
                    proposals.append(TracedKey(child, parent, reason))
    return tuple(_distinct(proposals, lambda k: (k.child, k.parent)))
