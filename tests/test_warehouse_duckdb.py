"""The warehouse seam on a real DuckDB: each operation, and how `create` picks an engine."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

import duckdb
import numpy as np
import pyarrow as pa
import pytest

from dbt_synth import synthesize
from dbt_synth.ledger import LedgerEntry, entry_for, ledger_schema, read_entries, write_entry
from dbt_synth.schema import ColumnKind, arrow_sql_type, schema_of_arrow
from dbt_synth.warehouse import OwnTable, Warehouse, WarehouseError, create, register
from dbt_synth.warehouse import base as warehouse_base
from dbt_synth.warehouse.duckdb import DuckDBWarehouse


@pytest.fixture
def con() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute(
        "create table src (id integer not null, city varchar, price decimal(8, 2), day date)"
    )
    con.execute(
        "insert into src select i, case when i % 3 = 0 then 'oslo' else 'rome' end, "
        "i * 1.25, date '2024-01-01' + cast(i as integer) from range(1000) t(i)"
    )
    return con


def test_create_serves_a_duckdb_connection_and_dbt_duckdbs_cursor_wrapper(con):
    from dbt.adapters.duckdb.environments.local import DuckDBCursorWrapper

    assert isinstance(create(con), DuckDBWarehouse)
    assert isinstance(create(DuckDBCursorWrapper(con)), DuckDBWarehouse)
    with pytest.raises(WarehouseError, match=r"no dbt-synth warehouse serves .* dict"):
        create({})


def test_a_registered_engine_is_chosen_for_its_own_sessions(monkeypatch):
    monkeypatch.setattr(warehouse_base, "_REGISTERED", list(warehouse_base._REGISTERED))

    class Session:
        pass

    @register
    class Other(DuckDBWarehouse):
        @classmethod
        def accepts(cls, session) -> bool:
            return isinstance(session, Session)

    assert type(create(Session())) is Other
    assert type(create(duckdb.connect())) is DuckDBWarehouse
    assert issubclass(Other, Warehouse)


def test_schema_reads_types_and_not_null_from_the_catalog(con):
    schema = DuckDBWarehouse(con).schema(con.table("src"))
    assert schema.table == "src"
    assert [(c.name, c.sql_type, c.nullable) for c in schema.columns] == [
        ("id", "INTEGER", False),
        ("city", "VARCHAR", True),
        ("price", "DECIMAL(8,2)", True),
        ("day", "DATE", True),
    ]
    assert schema.column("price").kind is ColumnKind.DECIMAL


def test_source_rows_count_exactly_and_stream_every_row_once(con):
    rows = DuckDBWarehouse(con).source_rows(con.table("src"))
    assert rows.rows == 1000
    assert rows.schema.names == ["id", "city", "price", "day"]
    ids = pa.concat_arrays([b.column(0) for b in rows.stream()]).to_pylist()
    assert sorted(ids) == list(range(1000))
    sample = rows.sample(0.2, np.random.default_rng(4))
    # Binomial(1000, 0.2): mean 200, sd 12.6.
    assert 150 < sample.num_rows < 250


def test_aggregate_runs_sql_on_the_relation_as_source(con):
    counts = DuckDBWarehouse(con).aggregate(
        con.table("src"), "select city, count(*) as n from source group by city order by city"
    )
    assert counts.to_pylist() == [{"city": "oslo", "n": 334}, {"city": "rome", "n": 666}]


def test_filter_keeps_the_rows_of_the_predicate_lazily(con):
    warehouse = DuckDBWarehouse(con)
    kept = warehouse.filter(con.table("src"), "id < 10 and city = 'rome'")
    assert warehouse.source_rows(kept).rows == 6
    assert warehouse.arrow(kept).column("id").to_pylist() == [1, 2, 4, 5, 7, 8]


def test_materialise_casts_each_column_to_its_source_type_in_source_order(con):
    warehouse = DuckDBWarehouse(con)
    schema = warehouse.schema(con.table("src"))
    # Generated values come as wide types and in another column order.
    batch = pa.record_batch(
        {
            "day": pa.array(["2024-02-01", None]),
            "price": pa.array([3.14159, 2.0]),
            "city": pa.array(["oslo", "rome"]),
            "id": pa.array([7.0, 8.0]),
        }
    )
    relation = warehouse.materialise(iter([batch, batch]), schema, "t")
    assert relation.columns == ["id", "city", "price", "day"]
    assert [str(t) for t in relation.types] == ["INTEGER", "VARCHAR", "DECIMAL(8,2)", "DATE"]
    assert relation.fetchall()[0] == (7, "oslo", Decimal("3.14"), date(2024, 2, 1))
    assert len(relation.fetchall()) == 4


def test_materialise_fails_on_a_value_the_source_type_cannot_hold(con):
    warehouse = DuckDBWarehouse(con)
    schema = warehouse.schema(con.table("src"))
    batch = pa.record_batch({"id": [1e12], "city": ["x"], "price": [1.0], "day": ["2024-01-01"]})
    with pytest.raises(duckdb.ConversionException):
        warehouse.materialise(iter([batch]), schema, "t")


def test_append_creates_the_table_adds_new_columns_and_reads_back():
    con = duckdb.connect()
    warehouse = DuckDBWarehouse(con)
    table = OwnTable("audit", "runs")
    assert warehouse.read(table) is None
    warehouse.append(table, pa.table({"model": ["a"], "epsilon": [1.0]}))
    # A newer version records one more column; older rows read it as NULL.
    warehouse.append(table, pa.table({"epsilon": [0.5], "model": ["b"], "unit": ["row"]}))
    rows = warehouse.read(table)
    assert rows.column_names == ["model", "epsilon", "unit"]
    assert rows.to_pylist() == [
        {"model": "a", "epsilon": 1.0, "unit": None},
        {"model": "b", "epsilon": 0.5, "unit": "row"},
    ]


def test_ledger_columns_are_the_entry_fields_typed_by_their_annotations():
    schema = ledger_schema()
    assert schema.names == list(LedgerEntry.__dataclass_fields__)
    assert schema.field("twin_rows").type == pa.int64()
    assert schema.field("epsilon").type == pa.float64()
    assert schema.field("started_at").type == pa.timestamp("us")
    assert schema.field("holdout").type == pa.string()


def test_a_ledger_entry_round_trips_through_the_warehouse():
    result = synthesize(
        pa.table({"x": np.arange(2000) % 7, "y": ["a", "b"] * 1000}), epsilon=1.0, seed=1
    )
    entry = entry_for(
        result,
        model="m",
        source="s",
        invocation_id=None,
        started_at=datetime(2026, 1, 1),
        finished_at=datetime(2026, 1, 1, 0, 1),
    )
    warehouse = DuckDBWarehouse(duckdb.connect())
    table = OwnTable("main", "synth_ledger")
    assert read_entries(warehouse, table) == ()
    write_entry(warehouse, entry, table)
    write_entry(warehouse, entry, table)
    assert read_entries(warehouse, table) == (entry, entry)
    assert entry.privacy_unit == "row" and entry.holdout is None


ARROW_TYPES = [
    pa.null(),
    pa.bool_(),
    *(pa.int8(), pa.int16(), pa.int32(), pa.int64()),
    *(pa.uint8(), pa.uint16(), pa.uint32(), pa.uint64()),
    *(pa.float32(), pa.float64(), pa.decimal128(10, 2), pa.decimal128(38, 6)),
    *(pa.string(), pa.large_string(), pa.string_view(), pa.binary(), pa.large_binary()),
    *(pa.date32(), pa.date64(), pa.time32("s"), pa.time32("ms"), pa.time64("us")),
    pa.time64("ns"),
    *(pa.timestamp(unit) for unit in ("s", "ms", "us", "ns")),
    *(pa.timestamp("s", "UTC"), pa.timestamp("us", "UTC"), pa.timestamp("ns", "Europe/Oslo")),
    pa.dictionary(pa.int32(), pa.string()),
    pa.dictionary(pa.int8(), pa.int64()),
    *(pa.duration("us"), pa.month_day_nano_interval()),
    *(pa.list_(pa.int64()), pa.struct([("a", pa.int64())]), pa.map_(pa.string(), pa.int64())),
]


@pytest.mark.parametrize("arrow_type", ARROW_TYPES, ids=str)
def test_in_memory_columns_get_the_type_duckdb_would_store(arrow_type):
    # The pipeline names Arrow types without importing an engine; DuckDB is the reference.
    (stored,) = duckdb.connect().from_arrow(pa.schema([("c", arrow_type)]).empty_table()).types
    assert arrow_sql_type(arrow_type) == str(stored)


def test_a_pandas_categorical_is_a_string_column_not_an_enum():
    import pandas as pd

    table = pa.Table.from_pandas(pd.DataFrame({"c": pd.Categorical(["a", "b"])}))
    (spec,) = schema_of_arrow(table.schema).columns
    assert (spec.sql_type, spec.kind, spec.enum_values) == ("VARCHAR", ColumnKind.STRING, None)


def test_read_filters_and_projects_in_the_engine():
    warehouse = DuckDBWarehouse(duckdb.connect())
    table = OwnTable("audit", "runs")
    warehouse.append(table, pa.table({"model": ["a", "b", "a"], "fit": ["1", "2", "3"]}))
    rows = warehouse.read(table, where={"model": "a"}, columns=("fit",))
    assert rows.to_pylist() == [{"fit": "1"}, {"fit": "3"}]
    assert warehouse.read(table, where={"model": "a", "fit": "3"}).num_rows == 1
    # Values are bound as parameters, never spliced into the SQL.
    assert warehouse.read(table, where={"model": "a' or '1'='1"}).num_rows == 0
