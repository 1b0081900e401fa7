"""The Spark warehouse: the SparkSession dbt-spark hands a Python model, and Spark DataFrames.

Chosen when the session is a pyspark `SparkSession`, classic or Spark Connect. pyspark is
imported only inside the methods, which run only once such a session has arrived: DuckDB users
never install it. What crosses from Spark to the driver is small by construction:

- `schema`: the DataFrame's schema, Spark's type names classified through sqlglot's Spark
  dialect (`timestamp` is TIMESTAMP WITH LOCAL TIME ZONE, `timestamp_ntz` a plain TIMESTAMP;
  arrays, maps and structs are UNSUPPORTED and follow the `unsupported` policy).
- `source_rows`: the exact count is computed in Spark; the Poisson sample is drawn in Spark
  (`DataFrame.sample(withReplacement=False, fraction)` keeps each row by an independent
  Bernoulli draw) and only the sample reaches the driver, as Arrow.
- `aggregate`: runs in Spark; only the (small) result reaches the driver. The source rows
  carry it (`SourceRows.aggregates`), so the fit's category counts and numeric domains' tree
  counts are computed over the whole source in Spark (`dbt_synth.pushdown`) and noised on the
  driver.
- `materialise_twin`: the fitted generator travels to the executors with the generating
  function (pyspark broadcasts a large function's pickle), each task generates its chunks
  (`mapInArrow` over a range of chunk indices), and the twin is cast to the source's types in
  Spark. The driver never holds the twin. The executors need dbt_synth installed (on
  Databricks: a cluster library). A child twin's keys are attached there too, from counts
  the executors take (`dbt_synth.warehouse.spark_child`).
- `append`/`read`: our tables (the ledger, the model store) are Spark tables.
"""

from __future__ import annotations

import math
import threading
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa

from dbt_synth.errors import SourceError
from dbt_synth.generation import TwinGenerator
from dbt_synth.pushdown import Aggregates
from dbt_synth.relational.generator import ChildGenerator
from dbt_synth.schema import TableSchema, column_spec
from dbt_synth.source_rows import SourceRows
from dbt_synth.warehouse.base import OwnTable, Warehouse, bind_tables, register
from dbt_synth.warehouse.spark_child import child_frame
from dbt_synth.warehouse.spark_keys import SparkParentTwin
from dbt_synth.warehouse.spark_keys import quote as _quote

# Twins built in parallel dbt threads share one session: serialise DDL + insert on our tables.
_LOCK = threading.Lock()
# Rows generated per task-side chunk: one Arrow batch of ~10 MB per modelled column.
CHUNK_ROWS = 262_144


@dataclass(frozen=True)
class SparkSourceRows(SourceRows):
    """A Spark DataFrame's count, with the Poisson sample drawn inside Spark.

    `stream` (every row to the driver) exists for the interface; the pipeline reads the
    source through `sample` only.
    """

    frame: Any = field(default=None, repr=False)
    warehouse: SparkWarehouse | None = field(default=None, repr=False)

    @classmethod
    def of_frame(cls, frame: Any, warehouse: SparkWarehouse) -> SparkSourceRows:
        schema = frame.limit(0).toArrow().schema
        return cls(
            int(frame.count()),
            schema,
            lambda: warehouse.fetch(frame).to_batches(),
            frame,
            warehouse,
            aggregates=Aggregates(
                lambda query: warehouse.aggregate(frame, query), SparkWarehouse.dialect
            ),
        )

    def sample(self, rate: float, rng: np.random.Generator) -> pa.Table:
        """Each row kept by an independent Bernoulli(rate) draw, in Spark; all when rate ≥ 1.

        Spark seeds each partition's sampler from one seed, taken from `rng`: the same seed and
        partitioning give the same sample.
        """
        frame = self.frame
        if rate < 1:
            seed = int(rng.integers(0, 2**62))
            frame = frame.sample(withReplacement=False, fraction=float(rate), seed=seed)
        return self.warehouse.fetch(frame).cast(self.schema)


@register
class SparkWarehouse(Warehouse):
    """Spark through the session dbt-spark (`method: session`, Databricks, Connect) provides."""

    dialect = "spark"

    def __init__(self, session: Any) -> None:
        super().__init__(session)
        # Rows this warehouse has brought to the driver (samples, aggregate results, tables read
        # whole): what the driver's memory holds of the warehouse, at most.
        self.fetched_rows = 0
        # Of those, the rows of aggregate results (counts, never source rows).
        self.aggregated_rows = 0

    def fetch(self, frame: Any) -> pa.Table:
        """`frame`'s rows on the driver, as Arrow, counted in `fetched_rows`."""
        table = frame.toArrow()
        self.fetched_rows += table.num_rows
        return table

    @classmethod
    def accepts(cls, session: Any) -> bool:
        # By class, not isinstance: importing pyspark here would make it a dependency.
        kind = type(session)
        return kind.__name__ == "SparkSession" and kind.__module__.startswith("pyspark.")

    def schema(self, relation: Any) -> TableSchema:
        name = _table_name(relation)
        columns = tuple(
            column_spec(
                f.name, f.dataType.simpleString(), nullable=bool(f.nullable), dialect="spark"
            )
            for f in relation.schema.fields
        )
        if not columns:
            raise SourceError(
                f"source '{name}' has no columns", fix="point the twin at a table with columns"
            )
        return TableSchema(name, columns)

    def source_rows(self, relation: Any) -> SourceRows:
        return SparkSourceRows.of_frame(relation, self)

    def aggregate(self, relation: Any, query: str) -> pa.Table:
        return self.aggregate_tables({"source": relation}, query)

    def aggregate_tables(self, relations: Mapping[str, Any], query: str) -> pa.Table:
        views = {name: f"__dbt_synth_{name}_{uuid.uuid4().hex}" for name in relations}
        for name, relation in relations.items():
            relation.createOrReplaceTempView(views[name])
        try:
            result = self.fetch(self.session.sql(bind_tables(query, views, self.dialect)))
            self.aggregated_rows += result.num_rows
            return result
        finally:
            for view in views.values():
                self.session.catalog.dropTempView(view)

    def derive(self, relations: Mapping[str, Any], query: str) -> Any:
        # Temporary views of the session: the derived DataFrame reads them whenever it runs.
        views = {name: f"__dbt_synth_{name}_{uuid.uuid4().hex}" for name in relations}
        for name, relation in relations.items():
            relation.createOrReplaceTempView(views[name])
        return self.session.sql(bind_tables(query, views, self.dialect))

    def capped(self, relation: Any, columns: Sequence[str], cap: int, seed: int) -> Any:
        """Rows ranked within their key by `rand(seed)`, drawn in a projection over the
        relation's own partitions before the window's shuffle, and kept by a local checkpoint
        (in the executors' storage, released when the frame is garbage-collected after the
        build): the window runs once, and every read (count, sample, counts) sees the same
        rows."""
        from pyspark.sql import Window, functions

        draw, rank = "__dbt_synth_draw", "__dbt_synth_rank"
        window = Window.partitionBy(*(functions.col(_quote(c)) for c in columns)).orderBy(draw)
        return (
            relation.withColumn(draw, functions.rand(seed % 2**63))
            .withColumn(rank, functions.row_number().over(window))
            .filter(functions.col(rank) <= int(cap))
            .drop(rank, draw)
            .localCheckpoint()
        )

    def filter(self, relation: Any, predicate: str) -> Any:
        return relation.filter(predicate)

    def arrow(self, relation: Any) -> pa.Table:
        return self.fetch(relation)

    def parent_twin(self, relation: Any) -> Any:
        """Left in Spark: keys are drawn from it there (`spark_keys`)."""
        return SparkParentTwin.of(self, relation)

    def materialise(self, batches: Iterator[pa.RecordBatch], schema: TableSchema, name: str) -> Any:
        """Rows already generated on the driver (the Python API's road), cast in Spark."""
        table = pa.Table.from_batches(list(batches))
        return self._cast(self.session.createDataFrame(table), schema)

    def materialise_twin(self, generator: TwinGenerator, schema: TableSchema, name: str) -> Any:
        """Generate on the executors, cast in Spark; persisted and counted here, so that a
        failure in generation or cast surfaces before the ledger row is written. A child
        twin's keys are attached on the executors too (`spark_child`). A twin drawn under rules,
        a condition or a rebalance is assembled on the driver, where its constrained rows are
        drawn."""
        from pyspark.sql.pandas.types import from_arrow_schema

        constraints = generator.constraints
        free = constraints is None or not constraints.binding
        if isinstance(generator, ChildGenerator) and free:
            generated, staged = child_frame(self, generator, CHUNK_ROWS, _task_threads)
            twin = self._cast(generated, schema).persist()
            twin.count()
            staged.unpersist()
            return twin
        if not isinstance(generator, TwinGenerator) or not free:
            # Rules, a condition or a rebalance are drawn by one sequential sampler (its redraws
            # and quotas span chunks, and its log feeds the build's report): on the driver.
            return super().materialise_twin(generator, schema, name)

        probe = generator.chunk(0, chunk_rows=1)
        arrow_schema = probe.schema
        chunks = max(1, math.ceil(generator.rows / CHUNK_ROWS))

        def generate(indices: Iterable[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
            _task_threads()
            for batch in indices:
                for index in batch.column(0).to_pylist():
                    yield generator.chunk(index, chunk_rows=CHUNK_ROWS).cast(arrow_schema)

        generated = self.session.range(0, chunks, 1, chunks).mapInArrow(
            generate, from_arrow_schema(arrow_schema)
        )
        twin = self._cast(generated, schema).persist()
        twin.count()
        return twin

    def append(self, table: OwnTable, rows: pa.Table) -> None:
        qualified = f"{_quote(table.schema)}.{_quote(table.name)}"
        with _LOCK:
            frame = self.session.createDataFrame(rows)
            self.session.sql(f"create database if not exists {_quote(table.schema)}")
            if self._exists(table):
                frame = self._widen(qualified, frame)
            # saveAsTable in append mode matches columns by name, not position.
            frame.write.mode("append").format("parquet").saveAsTable(qualified)

    def _widen(self, qualified: str, frame: Any) -> Any:
        """Add to the table the columns `frame` brings, and to `frame` (as NULLs) the columns
        the table has and it lacks (an older dbt-synth writing a newer ledger)."""
        existing = self.session.table(qualified).schema.fields
        present = {f.name for f in existing}
        missing = [f for f in frame.schema.fields if f.name not in present]
        if missing:
            added = ", ".join(f"{_quote(f.name)} {f.dataType.simpleString()}" for f in missing)
            self.session.sql(f"alter table {qualified} add columns ({added})")
        brought = set(frame.columns)
        return frame.selectExpr(
            *(_quote(f.name) for f in frame.schema.fields),
            *(
                f"cast(null as {f.dataType.simpleString()}) as {_quote(f.name)}"
                for f in existing
                if f.name not in brought
            ),
        )

    def read(
        self,
        table: OwnTable,
        *,
        where: Mapping[str, str] | None = None,
        columns: Sequence[str] | None = None,
    ) -> pa.Table | None:
        if not self._exists(table):
            return None
        from pyspark.sql import functions

        frame = self.session.table(f"{_quote(table.schema)}.{_quote(table.name)}")
        for column, value in (where or {}).items():
            frame = frame.filter(functions.col(_quote(column)) == functions.lit(value))
        if columns:
            frame = frame.select(*(_quote(c) for c in columns))
        return self.fetch(frame)

    def _exists(self, table: OwnTable) -> bool:
        return bool(self.session.catalog.tableExists(f"{table.schema}.{table.name}"))

    def _cast(self, frame: Any, schema: TableSchema) -> Any:
        return frame.selectExpr(
            *(f"cast({_quote(c.name)} as {c.sql_type}) as {_quote(c.name)}" for c in schema.columns)
        )


def _table_name(relation: Any) -> str:
    """The table a `spark.table(...)` DataFrame reads (classic or Connect), else 'source'."""
    plan = getattr(relation, "_plan", None)  # Spark Connect: a Read plan names its table
    name = getattr(plan, "table_name", None)
    if name is None:
        try:  # classic: the analysed plan's leaf names the catalog table
            text = relation._jdf.queryExecution().analyzed().toString()
        except Exception:
            return "source"
        name = _leaf_table(text)
    return str(name).split(".")[-1].strip("`") if name else "source"


def _leaf_table(plan_text: str) -> str | None:
    # e.g. "SubqueryAlias spark_catalog.raw.cps1988\n+- Relation raw.cps1988[...] parquet"
    for line in plan_text.splitlines():
        stripped = line.lstrip("+-: ")
        if stripped.startswith("SubqueryAlias "):
            return stripped.split(" ", 1)[1].strip()
    return None


def _task_threads() -> None:
    """Torch threads of a generating task: the cores Spark gave it (`spark.task.cpus`, 1 by
    default). Torch's own default, one thread per core of the machine in every Python worker,
    oversubscribes an executor that already runs one task per core."""
    import torch
    from pyspark import TaskContext

    context = TaskContext.get()
    torch.set_num_threads(max(1, context.cpus() if context is not None else 1))
