"""Foreign-key values of a child twin, drawn from its parents' twins.

Category-mode keys map each DP-kept value one-to-one onto a parent-twin key; attributes-mode
keys take the key of the parent-twin row `attributes.assign` matched them to; implied keys are
checked, since the chain of twins already makes them hold.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from dbt_synth.errors import SourceError, SynthError
from dbt_synth.relational.attributes import assign
from dbt_synth.relational.cardinality import Cardinality, children_per_parent
from dbt_synth.relational.config import OrphanPolicy, RelationalConfig
from dbt_synth.relational.joined import KeyState, attribute_field, state_field
from dbt_synth.relational.keys import ForeignKey, KeyMode
from dbt_synth.relational.plan import KeyPlan, ParentData
from dbt_synth.schema import TableSchema


@dataclass(frozen=True)
class KeyReport:
    """How one FK was twinned, for the ledger and tests."""

    key: ForeignKey
    mode: KeyMode
    attributes: tuple[str, ...]
    cardinality: Cardinality | None
    orphan_rate: float
    null_rate: float
    implied_by: ForeignKey | None = None
    mapping: dict[Any, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.key.label

    @property
    def parent(self) -> str:
        return self.key.parent


def attach(
    sampled: pa.Table,
    child: pa.Table,
    schema: TableSchema,
    plans: tuple[KeyPlan, ...],
    parents: dict[str, ParentData],
    cardinalities: dict[ForeignKey, Cardinality],
    relational: RelationalConfig,
    rng: np.random.Generator,
) -> tuple[pa.Table, list[KeyReport]]:
    n = sampled.num_rows
    out: dict[str, pa.Array] = {}
    reports: list[KeyReport] = []
    for plan in plans:
        key, attributes = plan.key, plan.attributes
        if plan.mode is KeyMode.IMPLIED:
            continue
        parent = parents[key.parent].twin
        if plan.mode is KeyMode.CATEGORY:
            column = key.columns[0]
            values, mapping = _map_category(
                sampled.column(column), parent.column(key.parent_columns[0]), rng
            )
            out[column] = values
            reports.append(
                KeyReport(key, plan.mode, (), None, 0.0, _null_rate(values), mapping=mapping)
            )
            continue
        state = np.asarray(sampled.column(state_field(plan)).to_pylist(), dtype=object)
        child_attrs = {a: sampled.column(attribute_field(plan, a)) for a in attributes}
        orphan = state == KeyState.ORPHAN.value
        reproduce = relational.orphans is OrphanPolicy.REPRODUCE
        wanted = (state == KeyState.PARENT.value) | (orphan & (not reproduce))
        chosen = assign(
            np.flatnonzero(wanted),
            child_attrs,
            parent,
            attributes,
            cardinalities[key],
            rng,
        )
        for j, (column, parent_column) in enumerate(
            zip(key.columns, key.parent_columns, strict=True)
        ):
            parent_values = parent.column(parent_column).combine_chunks()
            indices = np.full(n, -1)
            indices[np.flatnonzero(wanted)] = chosen
            taken = parent_values.take(pa.array(np.where(indices < 0, 0, indices)))
            mask = pa.array(indices < 0)
            values = pc.if_else(mask, pa.nulls(n, taken.type), taken)
            if reproduce and orphan.any():
                values = _with_orphans(values, orphan, parent_values, child.column(column), j, rng)
            out[column] = values
        reports.append(
            KeyReport(
                key,
                plan.mode,
                attributes,
                cardinalities[key],
                float(orphan.mean()) if n else 0.0,
                float((state == KeyState.NULL.value).mean()) if n else 0.0,
            )
        )
    for plan in plans:
        if plan.mode is KeyMode.IMPLIED:
            key = plan.key
            wider = next(r.key for r in reports if set(key.columns) <= set(r.key.columns))
            _check_implied(key, out, parents[key.parent].twin)
            reports.append(KeyReport(key, plan.mode, (), None, 0.0, 0.0, implied_by=wider))
    arrays = [out[c] if c in out else sampled.column(c) for c in schema.names]
    return pa.Table.from_arrays(arrays, names=schema.names), reports


def _null_rate(values: pa.Array) -> float:
    return values.null_count / len(values) if len(values) else 0.0


def _map_category(sampled: pa.ChunkedArray, keys: pa.ChunkedArray, rng: np.random.Generator):
    """DP-kept FK values → parent-twin keys, one-to-one while keys last (most frequent first);
    values beyond the parent twin's size share random keys. NULL stays NULL."""
    values = sampled.to_pandas()
    order = values.value_counts(dropna=True).index.tolist()
    pool = keys.drop_null().unique().to_pylist()
    if not pool:
        raise SourceError(
            "the parent twin has no keys to draw from", fix="build the parent twin with rows"
        )
    shuffled = [pool[i] for i in rng.permutation(len(pool))]
    mapping = {
        v: shuffled[i] if i < len(shuffled) else shuffled[rng.integers(len(shuffled))]
        for i, v in enumerate(order)
    }
    mapped = values.map(mapping)
    return pa.Array.from_pandas(mapped, type=keys.type), mapping


def _with_orphans(values, orphan, parent_values, source_column, j, rng) -> pa.Array:
    """`orphans: reproduce`: orphan rows get fresh keys that no parent-twin row holds."""
    existing = set(parent_values.to_pylist())
    count = int(orphan.sum())
    if pa.types.is_integer(parent_values.type):
        start = (max((v for v in existing if v is not None), default=0) or 0) + 1
        fresh = list(range(start, start + count))
    else:
        fresh = [f"orphan-{j}-{i}" for i in range(count)]
        fresh = [v for v in fresh if v not in existing]
    array = values.to_pylist()
    for index, value in zip(np.flatnonzero(orphan), fresh, strict=False):
        array[index] = value
    return pa.array(array, type=values.type)


def _check_implied(key: ForeignKey, out: dict[str, pa.Array], parent: pa.Table) -> None:
    """An implied key (flights.origin via weather) must hold because the chain of twins does."""
    child = pa.table({c: out[c] for c in key.columns})
    counts = children_per_parent(child, key.columns, parent, key.parent_columns)
    attached = int(counts.sum())
    expected = child.num_rows - sum(
        int(pc.sum(pc.is_null(child.column(c))).as_py()) for c in key.columns
    )
    if attached < expected:
        raise SynthError(
            f"foreign key {list(key.columns)} → {key.parent} is implied by a wider key, but "
            f"{expected - attached} twin rows hold values that {key.parent} lacks",
            fix="twin the wider key's parent as a child of "
            f"{key.parent} (e.g. weather_twin with foreign key origin → airports_twin)",
            column=key.columns[0],
        )
