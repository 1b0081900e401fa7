"""What a child twin is fitted on: the child's rows joined with their real parents' attributes.

Per attributes-mode key the child's key columns are replaced by a public 3-state column
(parent / NULL / orphan) and the real parent's attribute values, so the fit learns how child
columns depend on the parent (long flights on big planes).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from enum import Enum
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pyarrow as pa

from dbt_synth.conditioning import Constraints
from dbt_synth.config import ColumnConfig, SynthConfig
from dbt_synth.relational.keys import KeyMode
from dbt_synth.relational.plan import KeyPlan, ParentData
from dbt_synth.rules import Rule, RuleKind, ident
from dbt_synth.schema import TableSchema
from dbt_synth.source_rows import SourceRows

if TYPE_CHECKING:
    from dbt_synth.generation import TwinGenerator
    from dbt_synth.relational.engine import ChildTables


class KeyState(Enum):
    """Where a child row's key points: a parent, nowhere (NULL), or a missing parent."""

    PARENT = "parent"
    NULL = "null"
    ORPHAN = "orphan"


def state_field(plan: KeyPlan) -> str:
    """The fit column holding `plan`'s key state."""
    return f"__fk_state__{plan.key.label}"


def attribute_field(plan: KeyPlan, attribute: str) -> str:
    """The fit column holding the parent's `attribute` for `plan`'s key."""
    return f"__fk_attr__{plan.key.label}__{attribute}"


def joined_config(
    config: SynthConfig, plans: tuple[KeyPlan, ...], names: tuple[str, ...], schema: TableSchema
) -> tuple[SynthConfig, tuple[str, ...]]:
    """The child's config as its joined rows (`names`) are fitted and sampled under it, and
    the labels of its rules that no redraw can serve.

    An attributes-mode key's columns are not among the joined rows: each row has the key's
    state instead, and its value is drawn from the parent twin after sampling. So `not_null`
    on such a column becomes a rule on the state (the row points at a parent or is an orphan,
    never NULL) where the column is nullable; where it is NOT NULL the state has no NULL value
    (`joined`), so the rule holds by construction and, like any other rule on the key, is not
    redrawn for (as a rule on a fresh key, `conditioning.constraints_of`): the ledger lists it.
    A rule left to redraw sends a Spark twin to the driver's sampler, so none is kept in vain."""
    states = {
        column: state_field(plan)
        for plan in plans
        if plan.mode is KeyMode.ATTRIBUTES
        for column in plan.key.columns
    }
    rules: list[Rule] = []
    not_redrawn: list[str] = []
    for rule in config.rules:
        if set(rule.columns) <= set(names):
            rules.append(rule)
        elif (
            rule.kind is RuleKind.NOT_NULL
            and rule.columns[0] in states
            and rule.label == f"not_null: {rule.columns[0]}"
            and schema.column(rule.columns[0]).nullable
        ):
            state = states[rule.columns[0]]
            predicate = f"{ident(state)} <> '{KeyState.NULL.value}'"
            rules.append(replace(rule, predicate=predicate, columns=(state,)))
        elif set(rule.columns) - set(names) <= set(states):
            not_redrawn.append(rule.label)
        else:
            rules.append(rule)  # names a column the source lacks: constraints_of says so
    return replace(config, rules=tuple(rules)), tuple(not_redrawn)


def not_redrawn(generator: TwinGenerator, labels: tuple[str, ...]) -> TwinGenerator:
    """`generator` with `labels` (from `joined_config`) listed as rules not redrawn for."""
    if not labels:
        return generator
    constraints = generator.constraints or Constraints()
    skipped = constraints.skipped + labels
    return replace(generator, constraints=replace(constraints, skipped=skipped))


def joined(
    child: SourceRows,
    plans: tuple[KeyPlan, ...],
    parents: dict[str, ParentData],
    config: SynthConfig,
    schema: TableSchema,
    tables: ChildTables | None = None,
) -> tuple[SourceRows, dict[str, ColumnConfig]]:
    """Child columns (FK columns of attributes-mode keys dropped) + real parent attributes and a
    public parent/NULL/orphan state per key, with the column config that goes with them.

    The rows are joined batch by batch as the fit streams them, or, when the child and its
    parents' sources are `tables` of a warehouse, by the warehouse (`engine.py`). The NULL state
    exists only if a key column is nullable in the warehouse schema (a public fact), so a NOT
    NULL key never comes out NULL from noise."""
    columns = dict(config.columns)
    attributed = []
    for plan in plans:
        key = plan.key
        if plan.mode is KeyMode.CATEGORY:
            columns.setdefault(key.columns[0], ColumnConfig(role="category"))
        if plan.mode is not KeyMode.ATTRIBUTES:
            continue
        attributed.append(plan)
        nullable = any(schema.column(c).nullable for c in key.columns)
        states = [s.value for s in KeyState if nullable or s is not KeyState.NULL]
        columns[state_field(plan)] = ColumnConfig(categories=tuple(states))
    if tables is not None:
        return tables.joined(attributed, parents, schema.names), columns
    lookups = [_Lookup.of(plan, parents[plan.key.parent].source) for plan in attributed]
    drop = {c for lookup in lookups for c in lookup.plan.key.columns}

    def join(table: pa.Table) -> pa.Table:
        for lookup in lookups:
            table = lookup.append(table)
        return table.select([c for c in table.column_names if c not in drop])

    def stream() -> Iterator[pa.RecordBatch]:
        for batch in child.stream():
            if batch.num_rows:
                yield from join(pa.Table.from_batches([batch])).combine_chunks().to_batches()

    schema_out = join(pa.Table.from_batches([], schema=child.schema)).schema
    return JoinedRows(child.rows, schema_out, stream, child=child, join=join), columns


@dataclass(frozen=True)
class JoinedRows(SourceRows):
    """The joined rows, whose Poisson sample is the child's sample joined: the join is row by
    row, so sampling first keeps the same rows, and an engine that samples inside itself
    (Spark) sends the driver only the sampled child rows."""

    child: SourceRows | None = field(default=None, repr=False)
    join: Callable[[pa.Table], pa.Table] | None = field(default=None, repr=False)

    def sample(self, rate: float, rng: np.random.Generator) -> pa.Table:
        sampled = self.child.sample(rate, rng)
        return self.join(sampled).cast(self.schema)


@dataclass(frozen=True)
class _Lookup:
    """One attributes-mode key's real parents: key columns and attributes, one row per key."""

    plan: KeyPlan
    parents: pd.DataFrame | None
    types: dict[str, pa.DataType]

    @classmethod
    def of(cls, plan: KeyPlan, source: pa.Table | None) -> _Lookup:
        key, attributes = plan.key, plan.attributes
        if source is None:
            return cls(plan, None, {})
        parent = source.select([*key.parent_columns, *attributes]).to_pandas()
        parent.columns = [*key.columns, *(f"__attr__{a}" for a in attributes)]
        parent = parent.drop_duplicates(subset=list(key.columns))
        parent["__found__"] = True
        return cls(plan, parent, {a: source.schema.field(a).type for a in attributes})

    def append(self, child: pa.Table) -> pa.Table:
        """`child` with this key's state column and parent attribute columns."""
        key = self.plan.key
        frame = child.select(list(key.columns)).to_pandas()
        null = frame.isna().any(axis=1).to_numpy()
        if self.parents is None:
            state = np.where(null, KeyState.NULL.value, KeyState.PARENT.value)
            return child.append_column(state_field(self.plan), pa.array(state, pa.string()))
        merged = frame.merge(self.parents, on=list(key.columns), how="left")
        found = merged["__found__"].eq(True).to_numpy()
        orphan_or_parent = np.where(found, KeyState.PARENT.value, KeyState.ORPHAN.value)
        state = np.where(null, KeyState.NULL.value, orphan_or_parent)
        child = child.append_column(state_field(self.plan), pa.array(state, pa.string()))
        for a, kind in self.types.items():
            values = pa.Array.from_pandas(merged[f"__attr__{a}"], type=kind)
            child = child.append_column(attribute_field(self.plan, a), values)
        return child
