"""What a child twin is fitted on: the child's rows joined with their real parents' attributes.

Per attributes-mode key the child's key columns are replaced by a public 3-state column
(parent / NULL / orphan) and the real parent's attribute values, so the fit learns how child
columns depend on the parent (long flights on big planes).
"""

from __future__ import annotations

from enum import Enum
from typing import Any

import numpy as np
import pyarrow as pa

from dbt_synth.relational.keys import KeyMode
from dbt_synth.relational.plan import KeyPlan, ParentData
from dbt_synth.schema import TableSchema


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


def joined(
    child: pa.Table,
    plans: tuple[KeyPlan, ...],
    parents: dict[str, ParentData],
    config: dict[str, Any],
    schema: TableSchema,
) -> tuple[pa.Table, dict[str, Any]]:
    """Child columns (FK columns of attributes-mode keys dropped) + real parent attributes and a
    public parent/NULL/orphan state per key, with the column config that goes with them.

    The NULL state exists only if a key column is nullable in the warehouse schema (a public
    fact), so a NOT NULL key never comes out NULL from noise."""
    columns = dict(config.get("columns") or {})
    drop: set[str] = set()
    frame = child
    for plan in plans:
        key = plan.key
        if plan.mode is KeyMode.IMPLIED:
            continue
        if plan.mode is KeyMode.CATEGORY:
            columns.setdefault(key.columns[0], {"role": "category"})
            continue
        drop |= set(key.columns)
        state, values = _lookup(child, plan, parents[key.parent].source)
        frame = frame.append_column(state_field(plan), pa.array(state))
        nullable = any(schema.column(c).nullable for c in key.columns)
        states = [s.value for s in KeyState if nullable or s is not KeyState.NULL]
        columns[state_field(plan)] = {"categories": states}
        for name, array in values.items():
            frame = frame.append_column(attribute_field(plan, name), array)
    frame = frame.drop_columns(sorted(c for c in drop if c in frame.column_names))
    return frame, columns


def _lookup(child: pa.Table, plan: KeyPlan, source: pa.Table | None):
    """Per child row: 'parent' / 'null' / 'orphan' and the parent's attribute values."""
    key, attributes = plan.key, plan.attributes
    frame = child.select(list(key.columns)).to_pandas()
    null = frame.isna().any(axis=1).to_numpy()
    if source is None:
        state = np.where(null, KeyState.NULL.value, KeyState.PARENT.value)
        return state, {}
    parent = source.select([*key.parent_columns, *attributes]).to_pandas()
    parent.columns = [*key.columns, *(f"__attr__{a}" for a in attributes)]
    parent = parent.drop_duplicates(subset=list(key.columns))
    parent["__found__"] = True
    merged = frame.merge(parent, on=list(key.columns), how="left")
    found = merged["__found__"].eq(True).to_numpy()
    state = np.where(
        null, KeyState.NULL.value, np.where(found, KeyState.PARENT.value, KeyState.ORPHAN.value)
    )
    values = {
        a: pa.Array.from_pandas(merged[f"__attr__{a}"], type=source.schema.field(a).type)
        for a in attributes
    }
    return state, values
