"""A child and its parents' sources left in the warehouse that holds them (dbt's road).

What a child twin's fit reads of them is computed there, so that no parent source, and no child
row beyond the fit's Poisson sample, reaches the driver:

- `privacy_unit: parent` caps each parent's children in the engine (`Warehouse.capped`);
- the joined rows the fit samples (`joined.py`) are a join in the engine: the (capped) child
  left-joined with each attributes-mode key's parent source, one parent row per key, and the
  key's parent/NULL/orphan state computed in SQL. The join keeps every child row exactly once,
  so its Poisson sample is the child's Poisson sample joined (the rate, and the accounting
  that rests on it, are the child's);
- children per parent are counted by the engine over the same (capped) child (`KeyCounter`).

The parents' twins are read whole (`ParentData.twin`) where the engine cannot draw keys from
them in place (DuckDB); Spark keeps them (`warehouse/spark_keys.py`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import sqlglot
from sqlglot import exp

from dbt_synth.relational.cardinality import KeyCounter
from dbt_synth.relational.joined import KeyState, attribute_field, state_field
from dbt_synth.relational.keys import ForeignKey
from dbt_synth.relational.plan import HeldSource, KeyPlan, ParentData
from dbt_synth.source_rows import SourceRows

if TYPE_CHECKING:
    from dbt_synth.warehouse.base import Warehouse


@dataclass(frozen=True)
class ChildTables:
    """The child as a relation of `warehouse`, and per parent the relation its children are
    counted against (the parent's source when given, else its twin)."""

    warehouse: Warehouse
    child: Any
    references: Mapping[str, Any]

    def capped(self, key: ForeignKey, cap: int, seed: int) -> ChildTables:
        """At most `cap` random children per parent of `key` (contribution bounding)."""
        return replace(self, child=self.warehouse.capped(self.child, key.columns, cap, seed))

    def rows(self) -> SourceRows:
        """The child's rows (its exact count is taken by the engine)."""
        return self.warehouse.source_rows(self.child)

    def counter(self) -> KeyCounter:
        """Children per parent of this child, counted by the engine."""

        def run(parent: str, query: str) -> Any:
            relations = {"child": self.child, "parent": self.references[parent]}
            return self.warehouse.aggregate_tables(relations, query)

        return KeyCounter(run, self.warehouse.dialect)

    def joined(
        self, plans: list[KeyPlan], parents: dict[str, ParentData], names: Sequence[str]
    ) -> SourceRows:
        """The child's `names` columns (attributes-mode keys dropped) with each of `plans`'
        state and parent attributes, as `joined.joined` joins them in memory, joined in the
        engine. The fit samples it as it samples a source, without the engine's aggregates
        (as the in-memory join's rows, which have none)."""
        relations = {"child": self.child}
        for i, plan in enumerate(plans):
            source = parents[plan.key.parent].source
            if isinstance(source, HeldSource):
                relations[f"parent_{i}"] = source.relation
        query = joined_sql(plans, names, set(relations), self.warehouse.dialect)
        rows = self.warehouse.source_rows(self.warehouse.derive(relations, query))
        return replace(rows, aggregates=None)


def joined_sql(plans: list[KeyPlan], names: Sequence[str], tables: set[str], dialect: str) -> str:
    """The join of `joined_rows`: `child`, and `parent_i` (when in `tables`) for the i-th plan,
    deduplicated on its key (one arbitrary row per key value, as the in-memory lookup keeps)."""

    def q(name: str) -> str:
        return exp.to_identifier(name, quoted=True).sql("duckdb")

    drop = {c for plan in plans for c in plan.key.columns}
    selected = [f"c.{q(c)}" for c in names if c not in drop]
    joins = []
    for i, plan in enumerate(plans):
        key, alias = plan.key, f"p{i}"
        null = " or ".join(f"c.{q(c)} is null" for c in key.columns)
        state = f"when {null} then '{KeyState.NULL.value}' "
        if f"parent_{i}" not in tables:
            # No parent source: every non-NULL key is taken to have a parent (as in memory).
            parent = f"'{KeyState.PARENT.value}'"
            selected.append(f"case {state}else {parent} end as {q(state_field(plan))}")
            continue
        found = f"{alias}.__dbt_synth_found"
        selected.append(
            f"case {state}when {found} then '{KeyState.PARENT.value}' "
            f"else '{KeyState.ORPHAN.value}' end as {q(state_field(plan))}"
        )
        selected += [
            f"{alias}.__dbt_synth_a{j} as {q(attribute_field(plan, a))}"
            for j, a in enumerate(plan.attributes)
        ]
        keys = [f"{q(p)} as __dbt_synth_k{j}" for j, p in enumerate(key.parent_columns)]
        attributes = [f"{q(a)} as __dbt_synth_a{j}" for j, a in enumerate(plan.attributes)]
        partition = ", ".join(q(p) for p in key.parent_columns)
        ranked = (
            f"select *, row_number() over (partition by {partition} order by {partition}) "
            f"as __dbt_synth_rn from parent_{i}"
        )
        on = " and ".join(f"c.{q(c)} = {alias}.__dbt_synth_k{j}" for j, c in enumerate(key.columns))
        joins.append(
            f"left join (select {', '.join(keys + attributes)}, true as __dbt_synth_found "
            f"from ({ranked}) as r where __dbt_synth_rn = 1) as {alias} on {on}"
        )
    sql = f"select {', '.join(selected)} from child as c {' '.join(joins)}"
    return sqlglot.transpile(sql, read="duckdb", write=dialect)[0]
