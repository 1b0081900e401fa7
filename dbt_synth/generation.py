"""Twin rows from a fitted generator, produced in bounded chunks.

Generation is post-processing of DP releases and touches no data. Producing the twin chunk by
chunk keeps memory flat for twins of any size; a fixed seed makes every pass yield the same rows.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import pyarrow as pa

from dbt_synth.conditioning import Constraints, SamplingLog
from dbt_synth.encoding import ColumnModel
from dbt_synth.mechanisms.base import Mechanism

# Rows generated per chunk: ~10 MB per modelled column of codes.
CHUNK_ROWS = 262_144


class TwinRows(Protocol):
    """Where a twin's rows come from: a single twin's `TwinGenerator`, or a child twin's
    `relational.generator.ChildGenerator` (which attaches foreign keys to a `TwinGenerator`'s
    chunks). Either yields the same rows, chunk by chunk, on every pass."""

    @property
    def rows(self) -> int: ...

    def batches(self) -> Iterator[pa.RecordBatch]: ...

    def table(self) -> pa.Table: ...


@dataclass(frozen=True)
class TwinGenerator:
    """Everything needed to (re)generate the twin: per-column models and the fitted mechanism."""

    names: tuple[str, ...]
    models: tuple[ColumnModel, ...]
    mechanism: Mechanism | None
    rows: int
    seed: int
    # Rules, condition and rebalance (conditioning.py); `log` counts what their sampling redrew.
    constraints: Constraints | None = None
    log: SamplingLog = field(default_factory=SamplingLog, compare=False, repr=False)

    def batches(self, chunk_rows: int = CHUNK_ROWS) -> Iterator[pa.RecordBatch]:
        """The twin's rows in source column order; the same rows on every call."""
        if self.constraints is not None and self.constraints.binding:
            yield from self.constraints.batches(self, chunk_rows)
            return
        rng = np.random.default_rng(self.seed)
        for start in range(0, self.rows, chunk_rows):
            yield self._rows(start, min(chunk_rows, self.rows - start), rng)

    def chunk(self, index: int, chunk_rows: int = CHUNK_ROWS) -> pa.RecordBatch:
        """Rows `index * chunk_rows` onwards (at most `chunk_rows`), from a random stream of
        their own (seed and index): chunks can be generated anywhere and in any order, as
        Spark's executors do. Not the rows `batches` yields, which share one stream."""
        start = index * chunk_rows
        rng = np.random.default_rng([self.seed, index])
        return self._rows(start, max(0, min(chunk_rows, self.rows - start)), rng)

    def _rows(self, start: int, n: int, rng: np.random.Generator) -> pa.RecordBatch:
        modelled = [i for i, model in enumerate(self.models) if model.modelled]
        codes = self.mechanism.sample(n, rng) if self.mechanism is not None else None
        column_of = {i: j for j, i in enumerate(modelled)}
        arrays = [
            model.decode(codes[:, column_of[i]], rng)
            if model.modelled
            else model.generate(n, rng, start=start)
            for i, model in enumerate(self.models)
        ]
        return pa.RecordBatch.from_arrays(arrays, names=list(self.names))

    def table(self) -> pa.Table:
        """The whole twin in memory (the Python API; dbt streams `batches` instead)."""
        return pa.Table.from_batches(list(self.batches()))
