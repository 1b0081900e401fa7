"""The warehouse seam: the only operations dbt-synth performs on a warehouse.

The pipeline never imports an engine. The dbt glue (`dbt_synth/twin.py`) asks `create(session)`
for the `Warehouse` that serves the `session` dbt hands the model, and reads, fits and writes
through it. An engine plugs in by subclassing `Warehouse` and decorating the class with
`register`; `create` picks the first registered class whose `accepts(session)` is true, as
dbt-duckdb picks an environment from its config. The DuckDB implementation is
`dbt_synth/warehouse/duckdb.py`.

Relations are whatever the engine's dbt adapter hands a Python model (`dbt.ref`/`dbt.source`):
a DuckDB relation, a Spark DataFrame. They go in and out of the seam unchanged; Arrow is the
only form rows take between the seam and the pipeline.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import pyarrow as pa
import sqlglot
from sqlglot import exp

from dbt_synth.errors import SynthError
from dbt_synth.generation import TwinGenerator
from dbt_synth.schema import TableSchema
from dbt_synth.source_rows import SourceRows


class WarehouseError(SynthError):
    """No registered warehouse serves the session dbt handed the model."""


@dataclass(frozen=True)
class OwnTable:
    """A table dbt-synth writes itself (the ledger; later the model store), by schema and name."""

    schema: str
    name: str


class Warehouse(ABC):
    """One dbt session's warehouse, as the twin sees it.

    Every method is one operation of the seam; each says what it may read and what it must
    return. Implementations run each natively (a Spark one may take the Poisson sample with
    the engine and return DataFrames); callers rely on the contract only.
    """

    #: sqlglot dialect of the SQL this warehouse runs (`aggregate` queries, `filter` predicates).
    dialect: ClassVar[str]

    def __init__(self, session: Any) -> None:
        self.session = session

    @classmethod
    @abstractmethod
    def accepts(cls, session: Any) -> bool:
        """Whether this implementation serves `session` (checked without touching data)."""

    @abstractmethod
    def schema(self, relation: Any) -> TableSchema:
        """The relation's columns in order: name, warehouse type verbatim, NOT NULL.

        Types and nullability come from the catalog, never from values (they are public).
        """

    @abstractmethod
    def source_rows(self, relation: Any) -> SourceRows:
        """The relation's exact row count and its rows as a stream of Arrow batches.

        The count is an input to a DP release, never written anywhere. `SourceRows.sample`
        keeps each row with a given probability (the Poisson sample within `max_fit_rows`);
        an engine may return a subclass that samples inside the engine, so that only the
        sample crosses into Python.
        """

    @abstractmethod
    def aggregate(self, relation: Any, query: str) -> pa.Table:
        """The small result of an aggregate `query` that reads the relation as `source`.

        For releases computed by the engine (GROUP BY counts): the caller noises the result
        before it leaves the pipeline, so the exact aggregate is never stored or logged.
        """

    @abstractmethod
    def aggregate_tables(self, relations: Mapping[str, Any], query: str) -> pa.Table:
        """As `aggregate`, for a `query` that reads several relations, each as the table its
        name gives (a child as `child`, its parent as `parent`: children per parent)."""

    @abstractmethod
    def derive(self, relations: Mapping[str, Any], query: str) -> Any:
        """Lazily, the relation a `query` (in `dialect`) defines over several relations, each
        read as the table its name gives (a child joined with its parents' sources): it stays
        in the engine, to be read through `source_rows` like a source."""

    @abstractmethod
    def capped(self, relation: Any, columns: Sequence[str], cap: int, seed: int) -> Any:
        """The relation with at most `cap` rows per value of `columns` (rows with a NULL in
        them are one group), chosen at random from `seed`: the same rows on every read.

        Contribution bounding done by the engine: no key is read to the driver."""

    @abstractmethod
    def filter(self, relation: Any, predicate: str) -> Any:
        """The relation's rows for which the SQL `predicate` (in `dialect`) is true, lazily."""

    @abstractmethod
    def arrow(self, relation: Any) -> pa.Table:
        """The whole relation in memory (a parent twin, a parent's attributes)."""

    def parent_twin(self, relation: Any) -> Any:
        """A parent twin as a child's keys read it (`relational.ParentData.twin`): whole, as
        Arrow; an engine that can draw keys from it in place returns its own handle."""
        return self.arrow(relation)

    @abstractmethod
    def materialise(self, batches: Iterator[pa.RecordBatch], schema: TableSchema, name: str) -> Any:
        """The twin's rows, each column cast to its source type, in source column order.

        `batches` is consumed once and never held whole. Returns what the dbt model returns
        for its adapter to write (a relation, a DataFrame); a failing cast raises here, before
        the ledger row is written. `name` is the model's, for naming staging objects.
        """

    def materialise_twin(self, generator: TwinGenerator, schema: TableSchema, name: str) -> Any:
        """`materialise` the rows of a fitted generator. An engine with workers of its own
        (Spark) overrides this to generate there, so that the twin never passes the driver."""
        return self.materialise(generator.batches(), schema, name)

    @abstractmethod
    def append(self, table: OwnTable, rows: pa.Table) -> None:
        """Append `rows` to one of our tables, creating its schema and the table when missing
        and adding columns the table lacks (a newer dbt-synth may record more); safe from
        several dbt threads at once."""

    @abstractmethod
    def read(
        self,
        table: OwnTable,
        *,
        where: Mapping[str, str] | None = None,
        columns: Sequence[str] | None = None,
    ) -> pa.Table | None:
        """Rows of one of our tables, or None when it does not exist yet.

        Only the rows whose columns equal every value in `where` (all rows without it), and
        only `columns` of them (all columns without it): the engine filters and projects, so
        that e.g. the model store loads the one stored fit it needs, not every twin's.
        """


def bind_tables(query: str, views: Mapping[str, str], dialect: str) -> str:
    """`query` (in `dialect`) with each unqualified table named in `views` read from its view."""
    tree = sqlglot.parse_one(query, dialect=dialect)
    for table in tree.find_all(exp.Table):
        if table.name in views and not table.db:
            table.set("this", exp.to_identifier(views[table.name]))
    return tree.sql(dialect=dialect)


_REGISTERED: list[type[Warehouse]] = []


def register(implementation: type[Warehouse]) -> type[Warehouse]:
    """Class decorator: make `create` consider `implementation` (latest registered first)."""
    _REGISTERED.insert(0, implementation)
    return implementation


def create(session: Any) -> Warehouse:
    """The warehouse that serves `session`, as dbt hands it to a Python model."""
    for implementation in _REGISTERED:
        if implementation.accepts(session):
            return implementation(session)
    raise WarehouseError(
        f"no dbt-synth warehouse serves a session of type {type(session).__name__}",
        fix="run the twin on a supported adapter (dbt-duckdb), or register a Warehouse for it "
        "with dbt_synth.warehouse.register",
    )
