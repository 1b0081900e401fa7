"""A child twin generated on Spark's executors, its foreign keys attached there.

One generating pass over chunk indices (`mapInArrow`), as for a single twin (`SparkWarehouse.
materialise_twin`), never the twin's rows on the driver:

1. Each task generates its chunks of the fitted (joined) twin, keeps them in Spark (the
   `staged` frame, persisted: one chunk per partition, in order) and counts them for key
   planning (`ChildGenerator.counter`: category values, key states, attribute signatures). Only
   these counts, one small record per chunk written beside the chunk's rows, reach the driver.
2. The driver plans the keys from the summed counts (`ChildGenerator.plan`: the category
   mapping, the attribute matching against the DP children-per-parent histogram) and draws,
   chunk by chunk in order, each chunk's share of the matching's quotas
   (`Attacher.draw`: counts only). Each task then reads its staged chunk back and attaches its
   keys (`Attacher.attach`): the chunks are generated once, not again.

The keys of an attributes-mode key whose parent twin is a Spark DataFrame are never read:
the plan holds the parent twin's signature counts only, the attacher gives each row the index
of its matched parent-twin row, and the keys come from a join with the parent twin numbered in
Spark (`spark_keys.py`, where the numbering's equivalence to the driver road is argued). A
parent twin given as Arrow (the Python API) is broadcast with the attacher, as before.
"""

from __future__ import annotations

import math
import pickle
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from dbt_synth.relational.attach import Survey, index_field
from dbt_synth.relational.generator import ChildGenerator
from dbt_synth.relational.keys import ForeignKey
from dbt_synth.warehouse.spark_keys import INDEX

# Columns of the staged frame beside the fitted twin's: the chunk index, and on one extra row
# per chunk (every other column NULL) the chunk's pickled counts.
_CHUNK = "__dbt_synth_chunk"
_COUNTS = "__dbt_synth_counts"


def child_frame(
    warehouse: Any, generator: ChildGenerator, chunk_rows: int, prepare: Callable[[], None]
) -> tuple[Any, Any]:
    """The child twin as a Spark DataFrame generated on the executors (not yet cast), and the
    persisted staged chunks it reads (to unpersist once the twin is materialised); `prepare`
    runs first in every generating task (the single twin's thread setting)."""
    from pyspark.sql.pandas.types import from_arrow_schema

    fitted, counter = generator.fitted, generator.counter
    chunks = max(1, math.ceil(fitted.rows / chunk_rows))
    probe = fitted.chunk(0, chunk_rows=1)
    rows_schema = probe.schema
    staged_schema = pa.schema(
        [
            *(f.with_nullable(True) for f in rows_schema),
            pa.field(_CHUNK, pa.int64()),
            pa.field(_COUNTS, pa.binary()),
        ]
    )

    def generate(indices: Iterable[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        prepare()
        for batch in indices:
            for index in batch.column(0).to_pylist():
                rows = fitted.chunk(index, chunk_rows=chunk_rows).cast(rows_schema)
                yield _staged(rows, index, None, staged_schema)
                counted = pickle.dumps(counter([rows]))
                yield _staged(rows.slice(0, 0), index, counted, staged_schema)

    staged = (
        warehouse.session.range(0, chunks, 1, chunks)
        .mapInArrow(generate, from_arrow_schema(staged_schema))
        .persist()
    )
    records = staged.filter(f"{_COUNTS} is not null").select(_CHUNK, _COUNTS)
    per_chunk = _by_chunk(warehouse.fetch(records), chunks)
    planned = generator.plan(_summed(per_chunk))
    attacher = planned.attacher
    rng = np.random.default_rng(generator.seed)
    passes = attacher.start()
    drawn = [attacher.draw(counted, passes, rng) for counted in per_chunk]

    shape = attacher.attach(probe, attacher.draw(counter([probe]), attacher.start(), rng), rng)
    arrow_schema, seed, names = shape.schema, generator.seed, rows_schema.names

    def attach(batches: Iterable[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        # A partition holds one staged chunk (the range's), read back whole: its draw is the
        # chunk's. Spark's Arrow types are cast back to the generator's.
        read = list(batches)
        if not read:
            return
        table = pa.Table.from_batches(read)
        for index in pc.unique(table.column(_CHUNK)).to_pylist():
            part = table.filter(pc.equal(table.column(_CHUNK), index))
            rows = pa.RecordBatch.from_arrays(
                [part.column(c).combine_chunks().cast(rows_schema.field(c).type) for c in names],
                schema=rows_schema,
            )
            keyed = attacher.attach(rows, drawn[index], np.random.default_rng([seed, index]))
            yield keyed.cast(arrow_schema)

    rows_only = staged.filter(f"{_COUNTS} is null")
    keyed = rows_only.mapInArrow(attach, from_arrow_schema(arrow_schema))
    for held in planned.held:
        index = index_field(held.plan)
        keyed = keyed.join(held.numbered().withColumnRenamed(INDEX, index), index, "left")
    if planned.held:
        keyed = keyed.select(*(f"`{c.replace('`', '``')}`" for c in generator.names))
    return keyed, staged


def _staged(
    rows: pa.RecordBatch, index: int, counted: bytes | None, schema: pa.Schema
) -> pa.RecordBatch:
    """`rows` of chunk `index` as staged rows, or with `counted` the chunk's count record."""
    n = max(rows.num_rows, 1 if counted is not None else 0)
    columns = list(rows.columns) if counted is None else [pa.nulls(n, f.type) for f in rows.schema]
    counts = pa.array([counted] * n, pa.binary())
    return pa.RecordBatch.from_arrays(
        [*columns, pa.array([index] * n, pa.int64()), counts], schema=schema
    )


def _by_chunk(fetched: pa.Table, chunks: int) -> list[dict[ForeignKey, Survey]]:
    """Each chunk's counts, in chunk order (the order the quotas are drawn down in)."""
    per_chunk: list[dict[ForeignKey, Survey] | None] = [None] * chunks
    indices = fetched.column(_CHUNK).to_pylist()
    for index, counted in zip(indices, fetched.column(_COUNTS).to_pylist(), strict=True):
        per_chunk[index] = pickle.loads(counted)
    return [counted or {} for counted in per_chunk]


def _summed(per_chunk: list[dict[ForeignKey, Survey]]) -> dict[ForeignKey, Survey]:
    """The whole twin's counts per key."""
    whole: dict[ForeignKey, Survey] = {}
    for counted in per_chunk:
        for key, part in counted.items():
            whole.setdefault(key, Survey()).add(part)
    return whole
