"""The privacy unit of a child twin: ε per child row, the guarantee per unit, contribution caps.

With `privacy_unit: parent` a parent of the first (widest) foreign key and all its
(≤ max_children) children is one unit; by group privacy a row-level (ε, δ) mechanism gives it
(K·ε, K·e^{(K−1)ε}·δ), so rows get ε/K.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from dbt_synth.errors import ConfigError
from dbt_synth.relational.config import PrivacyUnit, RelationalConfig
from dbt_synth.relational.keys import ForeignKey
from dbt_synth.source_rows import SourceRows


@dataclass(frozen=True)
class UnitBudget:
    """ε per child row and the unit in words, for the ledger."""

    row_epsilon: float
    described: str


def row_budget(
    target: float, relational: RelationalConfig, keys: tuple[ForeignKey, ...], model: str
) -> UnitBudget:
    """ε per child row for a `target` ε per unit; `keys` widest first."""
    if relational.privacy_unit is PrivacyUnit.ROW:
        return UnitBudget(
            target,
            "row (one child row; a parent with k children is covered at k·ε by group privacy)",
        )
    if not keys:
        raise ConfigError(
            "privacy_unit: parent needs a foreign key to say which parent is the unit",
            fix="add synth.foreign_keys or a relationships test, or use privacy_unit: row",
            model=model,
        )
    key, cap = keys[0], relational.max_children
    return UnitBudget(
        target / cap,
        f"parent ({key.parent} via {key.label}, with all its children capped at {cap})",
    )


def unit_guarantee(
    epsilon: float, delta: float, relational: RelationalConfig
) -> tuple[float, float]:
    """(ε, δ) per unit from the (ε, δ) spent per child row."""
    if relational.privacy_unit is PrivacyUnit.ROW:
        return epsilon, delta
    cap = relational.max_children
    return cap * epsilon, min(cap * math.exp((cap - 1) * epsilon) * delta, 1.0)


def cap_children(
    child: SourceRows, key: ForeignKey, cap: int, rng: np.random.Generator
) -> SourceRows:
    """Keep at most `cap` random children per parent key (contribution bounding).

    Only the key columns are read whole, to rank each parent's children; the rows themselves
    stay a stream, filtered batch by batch."""
    columns = list(key.columns)
    schema = pa.schema([child.schema.field(c) for c in columns])
    frame = pa.Table.from_batches([b.select(columns) for b in child.stream()], schema).to_pandas()
    order = rng.permutation(len(frame))
    shuffled = frame.iloc[order]
    rank = shuffled.groupby(columns, dropna=False, sort=False).cumcount().to_numpy()
    keep = np.zeros(len(frame), dtype=bool)
    keep[order[rank < cap]] = True

    def stream() -> Iterator[pa.RecordBatch]:
        start = 0
        for batch in child.stream():
            yield batch.filter(pa.array(keep[start : start + batch.num_rows]))
            start += batch.num_rows

    return SourceRows(int(keep.sum()), child.schema, stream)
