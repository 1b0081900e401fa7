"""The DuckDB warehouse: the session dbt-duckdb hands a Python model, and DuckDB relations.

`dbt.ref()`/`dbt.source()` in dbt-duckdb return `select * from "db"."schema"."table"`; the
table behind such a relation is found by parsing that query with sqlglot, so its declared
NOT NULL constraints are read from the catalog.
"""

from __future__ import annotations

import itertools
import threading
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import duckdb
import pyarrow as pa
import sqlglot
from sqlglot import exp

from dbt_synth.errors import SourceError
from dbt_synth.schema import TableSchema, column_spec
from dbt_synth.source_rows import BATCH_ROWS, SourceRows
from dbt_synth.warehouse.base import OwnTable, Warehouse, bind_tables, register

# Twins built in parallel dbt threads share one process: serialise DDL + insert on our tables.
_LOCK = threading.Lock()


@register
class DuckDBWarehouse(Warehouse):
    """DuckDB through a connection or dbt-duckdb's cursor wrapper around one."""

    dialect = "duckdb"

    @classmethod
    def accepts(cls, session: Any) -> bool:
        # dbt-duckdb wraps the cursor (DuckDBCursorWrapper) and forwards attribute look-ups.
        return isinstance(getattr(session, "_cursor", session), duckdb.DuckDBPyConnection)

    def schema(self, relation: Any) -> TableSchema:
        return schema_from_duckdb(relation, self.session)

    def source_rows(self, relation: Any) -> SourceRows:
        (rows,) = relation.aggregate("count(*)").fetchall()[0]
        schema = relation.limit(0).to_arrow_table().schema

        def stream() -> Iterable[pa.RecordBatch]:
            yield from relation.to_arrow_reader(BATCH_ROWS)

        return SourceRows(int(rows), schema, stream)

    def aggregate(self, relation: Any, query: str) -> pa.Table:
        return relation.query("source", query).to_arrow_table()

    def aggregate_tables(self, relations: Mapping[str, Any], query: str) -> pa.Table:
        views = {name: f"__dbt_synth_{name}_{uuid.uuid4().hex}" for name in relations}
        for name, relation in relations.items():
            relation.create_view(views[name], replace=True)
        try:
            return self.session.query(bind_tables(query, views, self.dialect)).to_arrow_table()
        finally:
            for view in views.values():
                self.session.execute(f"drop view if exists {_quote(view)}")

    def derive(self, relations: Mapping[str, Any], query: str) -> Any:
        # Each relation as a view of its own name: they live as long as the connection, since the
        # derived relation reads them whenever it is read.
        views = {name: f"__dbt_synth_{name}_{uuid.uuid4().hex}" for name in relations}
        for name, relation in relations.items():
            relation.create_view(views[name], replace=True)
        return self.session.query(bind_tables(query, views, self.dialect))

    def capped(self, relation: Any, columns: Sequence[str], cap: int, seed: int) -> Any:
        # DuckDB's random() is not the same on every read (threads): the kept rows are stored
        # in a temporary table, in the engine, so that the count and the sample see the same.
        name = f"__dbt_synth_capped_{uuid.uuid4().hex}"
        relation.create_view(f"{name}_source", replace=True)
        keys = ", ".join(_quote(c) for c in columns)
        rank, draw = _quote("__dbt_synth_rank"), _quote("__dbt_synth_draw")
        self.session.execute("select setseed(?)", [(seed % 2**31) / 2**31])
        drawn = f"select *, random() as {draw} from {_quote(name + '_source')}"
        self.session.execute(
            f"create temp table {_quote(name)} as select * exclude ({rank}, {draw}) from ("
            f"select *, row_number() over (partition by {keys} order by {draw}) as {rank} "
            f"from ({drawn})) where {rank} <= {int(cap)}"
        )
        self.session.execute(f"drop view {_quote(name + '_source')}")
        return self.session.table(name)

    def filter(self, relation: Any, predicate: str) -> Any:
        return relation.filter(predicate)

    def arrow(self, relation: Any) -> pa.Table:
        return relation.to_arrow_table()

    def materialise(self, batches: Iterator[pa.RecordBatch], schema: TableSchema, name: str) -> Any:
        # Cast into a temp table rather than in dbt's final CTAS, so that a cast problem surfaces
        # before the ledger is written; streamed, so the twin is never whole in Python memory.
        staged = _quote(f"__dbt_synth_twin_{name}")
        view = f"__dbt_synth_twin_{name}_arrow"
        first = next(batches)
        stream = pa.RecordBatchReader.from_batches(first.schema, itertools.chain([first], batches))
        self.session.register(view, stream)
        select = ", ".join(
            f"cast({_quote(c.name)} as {c.sql_type}) as {_quote(c.name)}" for c in schema.columns
        )
        self.session.execute(
            f"create or replace temp table {staged} as select {select} from {_quote(view)}"
        )
        self.session.unregister(view)
        return self.session.query(f"select * from {staged}")

    def append(self, table: OwnTable, rows: pa.Table) -> None:
        qualified = f"{_quote(table.schema)}.{_quote(table.name)}"
        view = f"__dbt_synth_append_{uuid.uuid4().hex}"
        with _LOCK:
            self.session.register(view, rows)
            try:
                incoming = self.session.query(f"select * from {_quote(view)}")
                self.session.execute(f"create schema if not exists {_quote(table.schema)}")
                self.session.execute(
                    f"create table if not exists {qualified} as "
                    f"select * from {_quote(view)} limit 0"
                )
                for name, sql_type in zip(incoming.columns, incoming.types, strict=True):
                    column = f"{_quote(name)} {sql_type}"
                    self.session.execute(
                        f"alter table {qualified} add column if not exists {column}"
                    )
                self.session.execute(
                    f"insert into {qualified} by name select * from {_quote(view)}"
                )
            finally:
                self.session.unregister(view)

    def read(
        self,
        table: OwnTable,
        *,
        where: Mapping[str, str] | None = None,
        columns: Sequence[str] | None = None,
    ) -> pa.Table | None:
        ((exists,),) = self.session.execute(
            "select count(*) from information_schema.tables "
            "where table_schema = ? and table_name = ?",
            [table.schema, table.name],
        ).fetchall()
        if not exists:
            return None
        selected = ", ".join(_quote(c) for c in columns) if columns else "*"
        filters = " and ".join(f"{_quote(c)} = ?" for c in where or {})
        return self.session.query(
            f"select {selected} from {_quote(table.schema)}.{_quote(table.name)}"
            + (f" where {filters}" if filters else ""),
            params=list((where or {}).values()),
        ).to_arrow_table()


def schema_from_duckdb(
    relation: Any, connection: Any = None, *, table: str | None = None
) -> TableSchema:
    """The schema of a DuckDB relation, with NOT NULL constraints when it reads a plain table
    and `connection` is given; `table` names the source when the relation does not."""
    not_null: set[str] = set()
    name = table or "source"
    located = _table_of(relation)
    if located is not None:
        name = table or located[2]
        if connection is not None:
            not_null = _not_null_columns(connection, *located)
    columns = tuple(
        column_spec(col, str(col_type), nullable=col not in not_null)
        for col, col_type in zip(relation.columns, relation.types, strict=True)
    )
    if not columns:
        raise SourceError(
            f"source '{name}' has no columns", fix="point the twin at a table with columns"
        )
    return TableSchema(name, columns)


def _table_of(relation: Any) -> tuple[str, str, str] | None:
    try:
        query = relation.sql_query()
        parsed = sqlglot.parse_one(query, dialect="duckdb")
    except (AttributeError, sqlglot.errors.ParseError):
        return None
    if not isinstance(parsed, exp.Select) or parsed.args.get("where") or parsed.args.get("joins"):
        return None
    source = parsed.args.get("from_") or parsed.args.get("from")
    table = source.this if source is not None else None
    if not isinstance(table, exp.Table):
        return None
    return table.catalog, table.db, table.name


def _not_null_columns(connection: Any, catalog: str, schema: str, table: str) -> set[str]:
    filters = ["table_name = ?"]
    params = [table]
    if schema:
        filters.append("table_schema = ?")
        params.append(schema)
    if catalog:
        filters.append("table_catalog = ?")
        params.append(catalog)
    rows = connection.execute(
        "select column_name from information_schema.columns where is_nullable = 'NO' and "
        + " and ".join(filters),
        params,
    ).fetchall()
    return {r[0] for r in rows}


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'
