"""A parent twin left in Spark: what a child twin's keys need of it, computed there.

The driver road (`relational/generator.py` with the parent twin as Arrow) plans the matching of
child rows to parent-twin rows from each parent row's attribute signature, and takes the key of
the matched row. Here only aggregates of the parent twin reach the driver:

- the `Signer` (quantile edges of numeric attributes, by Spark's exact `percentile`, which
  interpolates as numpy's default; the distinct values of the other attributes);
- the signature counts: the twin signed on the executors by the same `Signer`, then one
  GROUP BY. The matching is planned on the driver over "virtual parents", the distinct
  signatures in sorted order, each repeated by its count (`signatures`): virtual parent p is
  the row numbered p - offset(s) among the rows of its signature s;
- for a category-mode key, at most as many distinct keys, in random order, as the DP-kept
  values it maps (`key_sample`).

The executors attach to each child row the index of its virtual parent, and the keys come from
a join with the twin numbered the same way (`numbered`: the offset of its signature plus its
row number among its signature's rows, ordered by key). Why this is the driver road's
distribution: every draw of `Matching` (the capacities, iid per parent; the multivariate
hypergeometric draws; the fallback's weighted choice) is exchangeable in the parents, so its
result is equivariant under any permutation of the parent rows, and the numbering above is one
such permutation (signatures, and so every label, stay with their rows).

The twin is synthetic: reading aggregates of it spends nothing. `table` (the whole twin, as the
driver road reads it) remains for what needs it: a twin drawn under rules on the driver, an
implied key's check, `orphans: reproduce`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa

from dbt_synth.relational.attributes import _SIGNATURE_BINS, Signer

# Helper columns of the signed and numbered parent twin.
_SIGNATURE = "__dbt_synth_sig"
_PARENTS = "__dbt_synth_parents"
_OFFSET = "__dbt_synth_offset"
INDEX = "__dbt_synth_parent_index"


@dataclass(frozen=True)
class SparkParentTwin:
    """A parent twin as a Spark DataFrame of `warehouse`: its schema on the driver, its rows in
    Spark."""

    warehouse: Any
    frame: Any
    schema: pa.Schema = field(repr=False)

    @classmethod
    def of(cls, warehouse: Any, frame: Any) -> SparkParentTwin:
        return cls(warehouse, frame, frame.limit(0).toArrow().schema)

    @property
    def column_names(self) -> list[str]:
        return list(self.schema.names)

    def table(self) -> pa.Table:
        """The whole twin on the driver (the driver road's read)."""
        return self.warehouse.fetch(self.frame)

    def signer(self, attributes: tuple[str, ...]) -> Signer:
        """`Signer.of` of the whole twin, from two aggregate queries."""
        numeric = [
            a
            for a in attributes
            if pa.types.is_integer(self.schema.field(a).type)
            or pa.types.is_floating(self.schema.field(a).type)
        ]
        binned: set[str] = set()
        if numeric:
            distinct = self._one_row([f"count(distinct {quote(a)})" for a in numeric])
            binned = {a for a, d in zip(numeric, distinct, strict=True) if d > 2 * _SIGNATURE_BINS}
        quantiles = np.linspace(0, 1, _SIGNATURE_BINS + 1)[1:-1]
        at = ", ".join(repr(float(q)) for q in quantiles)
        ordered = [a for a in attributes if a in binned]
        found = self._one_row(
            [
                f"percentile(case when isnan(cast({quote(a)} as double)) then null "
                f"else cast({quote(a)} as double) end, array({at}))"
                for a in ordered
            ]
        )
        edges_of = {
            a: np.unique(np.asarray(v, dtype=float)) for a, v in zip(ordered, found, strict=True)
        }
        edges, codes = [], []
        for name in attributes:
            if name in binned:
                edges.append(edges_of[name])
                codes.append(None)
            else:
                values = self.warehouse.fetch(self._distinct(name)).column(0).combine_chunks()
                edges.append(None)
                codes.append(values.cast(self.schema.field(name).type))
        return Signer(tuple(edges), tuple(codes))

    def signatures(
        self, signer: Signer, attributes: tuple[str, ...]
    ) -> tuple[np.ndarray, np.ndarray]:
        """The virtual parents' signatures (one row per parent-twin row, sorted) and each
        distinct signature's offset among them, from the signature counts."""
        counted = self.warehouse.fetch(
            self._signed(signer, attributes, ()).groupBy(*_signature_columns(attributes)).count()
        )
        columns = _signature_columns(attributes)
        distinct = np.column_stack(
            [counted.column(c).to_numpy().astype(np.int64) for c in columns]
        ).reshape(counted.num_rows, len(columns))
        counts = counted.column("count").to_numpy().astype(np.int64)
        order = np.lexsort(distinct.T[::-1]) if len(columns) else np.arange(len(counts))
        distinct, counts = distinct[order], counts[order]
        offsets = np.r_[0, np.cumsum(counts)[:-1]].astype(np.int64)
        table = pa.table({**{c: distinct[:, j] for j, c in enumerate(columns)}, _OFFSET: offsets})
        # Without the constant column: one bin code per attribute, as `Signer.parents` gives.
        return np.repeat(distinct[:, 1:], counts, axis=0), table

    def numbered(
        self,
        signer: Signer,
        attributes: tuple[str, ...],
        parent_columns: tuple[str, ...],
        offsets: pa.Table,
        names: tuple[str, ...],
    ) -> Any:
        """The twin's key columns (named `names`) beside each row's virtual-parent index."""
        from pyspark.sql import Window, functions

        signed = self._signed(signer, attributes, parent_columns)
        columns = _signature_columns(attributes)
        window = Window.partitionBy(*columns).orderBy(*(quote(c) for c in parent_columns))
        small = self.warehouse.session.createDataFrame(offsets)
        return (
            signed.join(functions.broadcast(small), columns)
            .withColumn(INDEX, functions.col(_OFFSET) + functions.row_number().over(window) - 1)
            .select(
                INDEX,
                *(
                    functions.col(quote(p)).alias(n)
                    for p, n in zip(parent_columns, names, strict=True)
                ),
            )
        )

    def keys_in_order(self, *args: Any) -> pa.Table:
        """`numbered`'s keys on the driver, in index order (the driver road's `parent_keys`)."""
        return self.warehouse.fetch(self.numbered(*args).orderBy(INDEX))

    def key_sample(self, column: str, count: int, seed: int) -> pa.ChunkedArray:
        """Up to `count` distinct non-NULL keys of `column`, drawn uniformly, in random order:
        all of them when the twin holds fewer."""
        from pyspark.sql import functions

        keys = self._distinct(column)
        drawn = keys.orderBy(functions.rand(seed)).limit(max(count, 1))
        return self.warehouse.fetch(drawn).column(0).cast(self.schema.field(column).type)

    def _signed(self, signer: Signer, attributes: tuple[str, ...], keep: tuple[str, ...]) -> Any:
        """The `keep` columns and each row's signature (one column per attribute, and a
        constant one, so that a key without attributes groups too), signed on the executors."""
        from pyspark.sql.pandas.types import from_arrow_schema

        columns = _signature_columns(attributes)
        read = self.frame.select(*(quote(c) for c in dict.fromkeys((*keep, *attributes))))
        kept = [self.schema.field(c) for c in keep]
        out = pa.schema([*kept, *(pa.field(c, pa.int64()) for c in columns)])

        def sign(batches):
            for batch in batches:
                signature = signer.parents(pa.Table.from_batches([batch]), attributes)
                arrays = [batch.column(c).cast(f.type) for c, f in zip(keep, kept, strict=True)]
                constant = [pa.array(np.zeros(batch.num_rows, dtype=np.int64))]
                arrays += constant + [pa.array(signature[:, j]) for j in range(len(attributes))]
                yield pa.RecordBatch.from_arrays(arrays, schema=out)

        return read.mapInArrow(sign, from_arrow_schema(out))

    def _distinct(self, column: str) -> Any:
        """The twin's distinct non-NULL values of `column`, as a frame."""
        return self.frame.select(quote(column)).where(f"{quote(column)} is not null").distinct()

    def _one_row(self, expressions: list[str]) -> list[Any]:
        if not expressions:
            return []
        row = self.warehouse.fetch(self.frame.selectExpr(*expressions))
        return [row.column(i)[0].as_py() for i in range(row.num_columns)]


def _signature_columns(attributes: tuple[str, ...]) -> list[str]:
    return [_SIGNATURE, *(f"{_SIGNATURE}_{j}" for j in range(len(attributes)))]


def quote(identifier: str) -> str:
    """A Spark SQL identifier, backquoted (`spark.py` quotes with it too)."""
    return "`" + identifier.replace("`", "``") + "`"
