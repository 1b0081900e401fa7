"""A child twin generated on Spark's executors, its foreign keys attached there.

Two passes over chunk indices (`mapInArrow`), as for a single twin (`SparkWarehouse.
materialise_twin`), never the twin's rows on the driver:

1. Each task generates its chunks of the fitted (joined) twin and counts them for key planning
   (`ChildGenerator.counter`: category values, key states, attribute signatures). Only these
   counts, one small record per chunk, reach the driver.
2. The driver plans the keys from the summed counts (`ChildGenerator.plan`: the category
   mapping, the attribute matching against the DP children-per-parent histogram) and draws,
   chunk by chunk in order, each chunk's share of the matching's quotas
   (`Attacher.draw`: counts only). Each task then generates its chunks again (the same rows:
   `TwinGenerator.chunk` is seeded by chunk) and attaches their keys (`Attacher.attach`).

Why the parent twin's keys are broadcast rather than joined: planning the matching needs, per
parent-twin row, its attribute signature and a child capacity drawn from the DP histogram, so
the driver holds a few numbers per parent row in any case; the key columns add one value each.
A join of generated parent indices against the parent twin numbered in Spark would need a
stable numbering (a window over the whole parent twin on one partition) and a shuffle of the
whole child twin, to save the driver only those key values. Parent twins are dimension tables
(planes, airlines, customers): their keys are small next to the child twin, which is what must
not reach the driver. The broadcast holds the key columns only, and the chunk shares hold one
entry per parent that receives children in the chunk.
"""

from __future__ import annotations

import math
import pickle
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import numpy as np
import pyarrow as pa

from dbt_synth.relational.attach import Survey
from dbt_synth.relational.generator import ChildGenerator
from dbt_synth.relational.keys import ForeignKey

_COUNTS = pa.schema([("chunk", pa.int64()), ("counts", pa.binary())])


def child_frame(
    warehouse: Any, generator: ChildGenerator, chunk_rows: int, prepare: Callable[[], None]
) -> Any:
    """The child twin as a Spark DataFrame generated on the executors (not yet cast);
    `prepare` runs first in every task (the single twin's thread setting)."""
    from pyspark.sql.pandas.types import from_arrow_schema

    fitted, counter = generator.fitted, generator.counter
    chunks = max(1, math.ceil(fitted.rows / chunk_rows))

    def count(indices: Iterable[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        prepare()
        for batch in indices:
            for index in batch.column(0).to_pylist():
                counted = pickle.dumps(counter([fitted.chunk(index, chunk_rows=chunk_rows)]))
                yield pa.RecordBatch.from_pylist(
                    [{"chunk": index, "counts": counted}], schema=_COUNTS
                )

    ranged = warehouse.session.range(0, chunks, 1, chunks)
    fetched = warehouse.fetch(ranged.mapInArrow(count, from_arrow_schema(_COUNTS)))
    per_chunk = _by_chunk(fetched, chunks)
    attacher = generator.plan(_summed(per_chunk)).attacher
    rng = np.random.default_rng(generator.seed)
    passes = attacher.start()
    drawn = [attacher.draw(counted, passes, rng) for counted in per_chunk]

    probe = fitted.chunk(0, chunk_rows=1)
    shape = attacher.attach(probe, attacher.draw(counter([probe]), attacher.start(), rng), rng)
    arrow_schema, seed = shape.schema, generator.seed

    def generate(indices: Iterable[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        prepare()
        for batch in indices:
            for index in batch.column(0).to_pylist():
                rows = fitted.chunk(index, chunk_rows=chunk_rows)
                keyed = attacher.attach(rows, drawn[index], np.random.default_rng([seed, index]))
                yield keyed.cast(arrow_schema)

    return ranged.mapInArrow(generate, from_arrow_schema(arrow_schema))


def _by_chunk(fetched: pa.Table, chunks: int) -> list[dict[ForeignKey, Survey]]:
    """Each chunk's counts, in chunk order (the order the quotas are drawn down in)."""
    per_chunk: list[dict[ForeignKey, Survey] | None] = [None] * chunks
    indices = fetched.column("chunk").to_pylist()
    for index, counted in zip(indices, fetched.column("counts").to_pylist(), strict=True):
        per_chunk[index] = pickle.loads(counted)
    return [counted or {} for counted in per_chunk]


def _summed(per_chunk: list[dict[ForeignKey, Survey]]) -> dict[ForeignKey, Survey]:
    """The whole twin's counts per key."""
    whole: dict[ForeignKey, Survey] = {}
    for counted in per_chunk:
        for key, part in counted.items():
            whole.setdefault(key, Survey()).add(part)
    return whole
