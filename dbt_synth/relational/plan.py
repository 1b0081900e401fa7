"""How each foreign key of a child twin is twinned: a `KeyPlan` per key, decided before any fit.

Keys are planned widest first; a key whose columns a wider one covers is implied
(flights.origin by (origin, time_hour) → weather) and only checked.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc
from sqlglot import exp

from dbt_synth.errors import ConfigError
from dbt_synth.relational.keys import ForeignKey, KeyMode

if TYPE_CHECKING:
    from dbt_synth.warehouse.base import Warehouse


@dataclass(frozen=True)
class HeldSource:
    """A parent's source left in its warehouse: its schema here (public), its rows read only by
    the warehouse (the join a child's fit samples, `engine.ChildTables`; two counts below)."""

    relation: Any
    schema: pa.Schema
    warehouse: Warehouse

    @classmethod
    def of(cls, warehouse: Warehouse, relation: Any) -> HeldSource:
        """`relation`'s Arrow schema, from an empty result: no row is read."""
        empty = warehouse.aggregate(relation, "select * from source limit 0")
        return cls(relation, empty.schema, warehouse)

    @property
    def column_names(self) -> list[str]:
        return list(self.schema.names)

    def is_attribute(self, name: str) -> bool:
        """As `_is_attribute`, from the column's distinct values and rows counted by the engine
        (two numbers, used for this choice only and never stored)."""
        kind = self.schema.field(name).type
        if not (pa.types.is_string(kind) or pa.types.is_large_string(kind)):
            return True
        column = exp.to_identifier(name, quoted=True).sql(self.warehouse.dialect)
        counts = self.warehouse.aggregate(
            self.relation, f"select count(distinct {column}) as d, count(*) as n from source"
        )
        distinct, rows = (int(counts.column(c)[0].as_py()) for c in ("d", "n"))
        return distinct <= max(0.5 * rows, 1)


@dataclass(frozen=True)
class ParentData:
    """A parent as the child sees it: its twin (keys to draw), its source (attributes to learn):
    in memory (the Python API), or held by the warehouse the child is read from (dbt). A twin
    held by Spark (`warehouse/spark_keys.SparkParentTwin`) is read through aggregates."""

    twin: pa.Table | Any
    source: pa.Table | HeldSource | None = None


def parent_table(parent: ParentData) -> pa.Table:
    """The parent's twin as one Arrow table: read whole where an engine holds it."""
    return parent.twin if isinstance(parent.twin, pa.Table) else parent.twin.table()


@dataclass(frozen=True)
class KeyPlan:
    """One foreign key, its resolved mode (never AUTO) and the parent attributes it learns."""

    key: ForeignKey
    mode: KeyMode
    attributes: tuple[str, ...] = ()


def plan_keys(
    keys: tuple[ForeignKey, ...], parents: dict[str, ParentData], model: str
) -> tuple[KeyPlan, ...]:
    """A plan per key, widest first."""
    plans = []
    covered: set[str] = set()
    for key in sorted(keys, key=lambda k: -len(k.columns)):
        parent = _parent_of(key, parents, model)
        overlap = covered & set(key.columns)
        if overlap == set(key.columns):
            plans.append(KeyPlan(key, KeyMode.IMPLIED))
            continue
        if overlap:
            raise ConfigError(
                f"foreign key {list(key.columns)} shares only {sorted(overlap)} with a wider key",
                fix="declare the narrower key's parent as the parent of the wider key's parent "
                "twin (like weather.origin → airports) and drop the partial overlap",
                model=model,
                column=key.columns[0],
            )
        covered |= set(key.columns)
        attributes = _attributes(key, parent, model)
        mode = key.mode
        if mode is KeyMode.AUTO:
            single = not attributes and len(key.columns) == 1
            mode = KeyMode.CATEGORY if single else KeyMode.ATTRIBUTES
        if mode is KeyMode.CATEGORY and len(key.columns) != 1:
            raise ConfigError(
                "category mode needs a single-column foreign key",
                fix="use mode: attributes for composite keys",
                model=model,
                column=key.columns[0],
            )
        plans.append(KeyPlan(key, mode, attributes))
    return tuple(plans)


def _parent_of(key: ForeignKey, parents: dict[str, ParentData], model: str) -> ParentData:
    if key.parent not in parents:
        raise ConfigError(
            f"foreign key {list(key.columns)} references '{key.parent}', which this model "
            f"does not ref",
            fix=f"pass parents={{'{key.parent}': (dbt.ref('{key.parent}'), dbt.source(...))}} "
            "to dbt_synth.child_twin so dbt builds the parent twin first",
            model=model,
            column=key.columns[0],
        )
    parent = parents[key.parent]
    for column in key.parent_columns:
        if column not in parent.twin.column_names:
            raise ConfigError(
                f"parent twin '{key.parent}' has no column '{column}'",
                fix=f"set parent_columns to some of {parent.twin.column_names}",
                model=model,
                column=key.columns[0],
            )
    return parent


def _attributes(key: ForeignKey, parent: ParentData, model: str) -> tuple[str, ...]:
    if parent.source is None:
        if key.attributes:
            raise ConfigError(
                f"attributes {list(key.attributes)} of '{key.parent}' need its source",
                fix=f"pass parents={{'{key.parent}': (dbt.ref('{key.parent}'), "
                "dbt.source('raw', '...'))}",
                model=model,
                column=key.columns[0],
            )
        return ()
    shared = [
        c
        for c in parent.source.column_names
        if c in parent.twin.column_names and c not in key.parent_columns
    ]
    if key.attributes is None:
        # Default: every non-key parent column both tables hold, except free text/ids.
        if isinstance(parent.source, HeldSource):
            return tuple(c for c in shared if parent.source.is_attribute(c))
        return tuple(c for c in shared if _is_attribute(parent.source.column(c)))
    for name in key.attributes:
        if name not in shared:
            raise ConfigError(
                f"attribute '{name}' is not a column of both '{key.parent}' and its source",
                fix=f"use some of {shared}",
                model=model,
                column=key.columns[0],
            )
    return key.attributes


def _is_attribute(array: pa.ChunkedArray) -> bool:
    """Strings with nearly one value per row (names) carry no learnable dependency."""
    if pa.types.is_string(array.type) or pa.types.is_large_string(array.type):
        return pc.count_distinct(array).as_py() <= max(0.5 * len(array), 1)
    return True
