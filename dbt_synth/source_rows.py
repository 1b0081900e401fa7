"""A source read within a memory bound: its row count, and a Poisson sample streamed in batches.

A twin of a table with tens of millions of rows does not need all of them to learn a few
thousand noisy marginals. The fit reads the source once as Arrow record batches and keeps each
row independently with probability `rate` (Poisson sampling), so memory is bounded by the sample,
not the table. The rate is set from the DP row count, so choosing it reveals nothing more.
Subsampling is not used to claim a smaller ε: the twin's guarantee is the one of its mechanism
run on the sample, which holds for the full table as well.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa

from dbt_synth.pushdown import Aggregates

# Rows per Arrow batch read from the warehouse: a few tens of MB for a wide table.
BATCH_ROWS = 131_072


@dataclass(frozen=True)
class SourceRows:
    """A source's exact row count and a way to stream its rows (each call streams afresh).

    A warehouse (`dbt_synth.warehouse`) builds one per source; an engine that samples natively
    returns a subclass whose `sample` keeps the same contract. An engine that runs aggregate SQL
    over the whole source sets `aggregates`: the pipeline then takes category counts from it
    (`dbt_synth.pushdown`) instead of from the sample in memory.
    """

    rows: int
    schema: pa.Schema
    stream: Callable[[], Iterable[pa.RecordBatch]]
    aggregates: Aggregates | None = field(default=None, kw_only=True)

    @classmethod
    def of(cls, data: SourceRows | pa.Table | pd.DataFrame) -> SourceRows:
        """Wrap an in-memory table (the Python API) in the same streaming interface."""
        if isinstance(data, SourceRows):
            return data
        table = (
            data if isinstance(data, pa.Table) else pa.Table.from_pandas(data, preserve_index=False)
        )
        return cls(table.num_rows, table.schema, lambda: table.to_batches(BATCH_ROWS))

    def sample(self, rate: float, rng: np.random.Generator) -> pa.Table:
        """Every row kept independently with probability `rate`; all rows when `rate` ≥ 1.

        Draws are taken in row order from one generator, so the sample depends on the seed and
        the row order only, not on how the rows were cut into batches.
        """
        kept = []
        for batch in self.stream():
            if rate < 1:
                batch = batch.filter(pa.array(rng.random(batch.num_rows) < rate))
            kept.append(batch)
        return pa.Table.from_batches(kept, schema=self.schema)


class LazySample:
    """The Poisson sample of a source, drawn the first time a column's values are read.

    A fit whose domains and marginals the engine counts over the whole source
    (`dbt_synth.pushdown`, `dbt_synth.pushdown_marginals`) reads no column here, and no row
    reaches the driver; a text column, or a table whose marginals are counted on the driver,
    draws it once. Whether it is drawn depends on the columns' plans and DP releases only.
    """

    def __init__(
        self,
        source: SourceRows,
        rate: float,
        rng: np.random.Generator,
        drawn: Callable[[], None],
    ) -> None:
        self._source, self._rate, self._rng, self._drawn = source, rate, rng, drawn
        self._table: pa.Table | None = None

    def column(self, name: str) -> pa.ChunkedArray:
        if self._table is None:
            self._table = self._source.sample(self._rate, self._rng)
            self._drawn()
        return self._table.column(name)

    def values(self, name: str) -> Callable[[], pa.ChunkedArray]:
        """The column's sampled values, read when called."""
        return lambda: self.column(name)

    def release(self) -> None:
        """Let the sample go (the fit no longer reads it)."""
        self._table = None
