"""The warehouse seam on a real local Spark: each operation, on the JVM of tests/spark_env.py."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

import numpy as np
import pyarrow as pa
import pytest

from dbt_synth import synthesize
from dbt_synth.encoding import CategoryModel
from dbt_synth.schema import ColumnKind
from dbt_synth.warehouse import OwnTable, create
from dbt_synth.warehouse.spark import SparkWarehouse

pytestmark = pytest.mark.spark

ROWS = 100_000


@pytest.fixture(scope="module")
def warehouse(spark) -> SparkWarehouse:
    spark.session.sql("create database if not exists wh_test")
    spark.session.sql("drop table if exists wh_test.src")
    spark.session.sql("drop table if exists wh_test.ledger_test")
    spark.session.sql(
        "create table wh_test.src using parquet as select "
        "id, cast(id % 7 as int) as small, cast(id * 1.25 as decimal(12, 2)) as price, "
        "case when id % 3 = 0 then 'oslo' else 'rome' end as city, "
        "id % 2 = 0 as even, date_add(date'2024-01-01', cast(id % 365 as int)) as day, "
        "timestamp_seconds(1704067200 + id % 86400) as ts, "
        "cast(timestamp'2024-01-01 00:00:00' as timestamp_ntz) as ts_ntz, "
        "array(id) as ids, named_struct('a', id) as nested "
        f"from range({ROWS})"
    )
    warehouse = create(spark.session)
    assert isinstance(warehouse, SparkWarehouse)
    return warehouse


def test_schema_maps_spark_types_to_column_kinds(warehouse, spark):
    schema = warehouse.schema(spark.session.table("wh_test.src"))
    assert schema.table == "src"
    kinds = {c.name: (c.kind, c.sql_type) for c in schema.columns}
    assert kinds == {
        "id": (ColumnKind.INTEGER, "bigint"),
        "small": (ColumnKind.INTEGER, "int"),
        "price": (ColumnKind.DECIMAL, "decimal(12,2)"),
        "city": (ColumnKind.STRING, "string"),
        "even": (ColumnKind.BOOLEAN, "boolean"),
        "day": (ColumnKind.DATE, "date"),
        "ts": (ColumnKind.TIMESTAMPTZ, "timestamp"),
        "ts_ntz": (ColumnKind.TIMESTAMP, "timestamp_ntz"),
        "ids": (ColumnKind.UNSUPPORTED, "array<bigint>"),
        "nested": (ColumnKind.UNSUPPORTED, "struct<a:bigint>"),
    }
    assert schema.column("price").decimal_scale == 2


def test_poisson_sample_is_drawn_in_spark_row_by_row(warehouse, spark):
    rows = warehouse.source_rows(spark.session.table("wh_test.src"))
    assert rows.rows == ROWS
    rate = 0.05
    sizes = [rows.sample(rate, np.random.default_rng(s)).num_rows for s in range(4)]
    # Bernoulli per row: each size is Binomial(n, p), sd = sqrt(n p (1 - p)) ≈ 69.
    sd = (ROWS * rate * (1 - rate)) ** 0.5
    assert all(abs(size - ROWS * rate) < 5 * sd for size in sizes)
    assert len(set(sizes)) > 1  # a fixed-size sample would give the same size every time
    first = rows.sample(rate, np.random.default_rng(0))
    again = rows.sample(rate, np.random.default_rng(0))
    assert first.column("id").to_pylist() == again.column("id").to_pylist()
    assert first.schema == rows.schema
    # Kept rows are spread over the whole table, not a prefix.
    assert max(first.column("id").to_pylist()) > 0.9 * ROWS


def test_aggregate_runs_in_spark_and_returns_the_small_result(warehouse, spark):
    result = warehouse.aggregate(
        spark.session.table("wh_test.src"),
        "select city, count(*) as n from source group by city order by city",
    )
    assert result.to_pylist() == [{"city": "oslo", "n": 33_334}, {"city": "rome", "n": 66_666}]


def test_own_tables_append_add_columns_and_read_back(warehouse):
    table = OwnTable("wh_test", "ledger_test")
    assert warehouse.read(table) is None
    warehouse.append(table, pa.table({"model": ["a"], "epsilon": [1.0]}))
    warehouse.append(table, pa.table({"epsilon": [0.5], "model": ["b"], "note": ["new"]}))
    rows = sorted(warehouse.read(table).to_pylist(), key=lambda r: r["model"])
    assert rows == [
        {"model": "a", "epsilon": 1.0, "note": None},
        {"model": "b", "epsilon": 0.5, "note": "new"},
    ]


def _synthesized(warehouse, source, **config):
    """`source`'s schema and its fit at ε 1, seed 3, with `config` on top."""
    schema = warehouse.schema(source)
    config = {"epsilon": 1.0, "seed": 3, **config}
    return schema, synthesize(warehouse.source_rows(source), schema=schema, config=config)


def test_twin_is_generated_on_the_executors_and_cast_to_source_types(warehouse, spark):
    source = spark.session.table("wh_test.src").drop("ids", "nested", "ts_ntz")
    schema, result = _synthesized(warehouse, source, rows=600_000)
    twin = warehouse.materialise_twin(result.generator, schema, "src_twin")
    assert [(f.name, f.dataType.simpleString()) for f in twin.schema.fields] == [
        (c.name, c.sql_type) for c in schema.columns
    ]
    # Three chunks of 262,144 rows: three tasks, each on its own random stream.
    assert twin.count() == 600_000
    assert twin.rdd.getNumPartitions() == 3
    first = twin.select("price", "day", "ts").first()
    assert isinstance(first.price, Decimal | None)
    assert isinstance(first.day, date | None)
    assert isinstance(first.ts, datetime | None)
    cities = {r.city for r in twin.select("city").distinct().collect()}
    assert cities <= {"oslo", "rome", None}


def test_a_twin_under_a_condition_and_a_rule_keeps_them_on_spark(warehouse, spark):
    source = spark.session.table("wh_test.src").select("small", "city", "even")
    schema, result = _synthesized(
        warehouse,
        source,
        rows=20_000,
        condition="small < 3",
        rules=[{"expression": "city = 'oslo' or not even"}],
    )
    twin = warehouse.materialise_twin(result.generator, schema, "src_twin_conditioned")
    assert twin.count() == 20_000
    # Unconstrained, about 4/7 of rows have small >= 3 and a third are (rome, even).
    assert twin.where("small >= 3 or small is null").count() == 0
    assert twin.where("city = 'rome' and even").count() == 0
    assert result.generator.log.drawn > 20_000


def test_category_counts_are_computed_in_spark_and_only_the_sample_reaches_the_driver(
    warehouse, spark
):
    source = spark.session.table("wh_test.src").select("id", "small", "price", "city", "even")
    schema = warehouse.schema(source)
    before, aggregated = warehouse.fetched_rows, warehouse.aggregated_rows
    said: list[str] = []
    result = synthesize(
        warehouse.source_rows(source),
        schema=schema,
        # DP-SGD reads rows: the sample road (the marginal mechanism's counts are Spark's, and
        # no sample is drawn: tests/test_pushdown_spark.py).
        config={"epsilon": 1.0, "max_fit_rows": 1000, "rows": 1000, "mechanism": "dpsgd"},
        progress=said.append,
    )
    counts = warehouse.aggregated_rows - aggregated
    fetched = warehouse.fetched_rows - before - counts
    rate = result.sample_rate
    assert rate == pytest.approx(0.01, rel=0.05)
    # The Poisson sample (≈ 1,000 rows, sd ≈ 31) reached the driver, and the counts' groups
    # (2 cities + 2 booleans, the numeric columns' tree cells); the other ~99,000 source rows
    # did not.
    assert 800 < fetched < 1300
    assert 4 < counts < 5000
    assert "category counts of 2 columns computed by the warehouse" in said
    # The domains were released on the whole table's counts (σ ≈ 20 before scaling, 0.2 after),
    # not on the sample's (whose binomial sd at this rate is ≈ 18).
    models = dict(zip(schema.names, result.generator.models, strict=True))
    city, even = models["city"], models["even"]
    assert isinstance(city, CategoryModel) and isinstance(even, CategoryModel)
    counts = dict(zip(city.domain.values, city.domain.counts, strict=True))
    assert counts["oslo"] == pytest.approx(33_334 * rate, abs=3)
    assert counts["rome"] == pytest.approx(66_666 * rate, abs=3)
    evens = dict(zip(even.domain.values, even.domain.counts, strict=True))
    assert evens[True] == pytest.approx(50_000 * rate, abs=3)
    assert evens[False] == pytest.approx(50_000 * rate, abs=3)


def test_read_filters_and_projects_in_spark(warehouse):
    table = OwnTable("wh_test", "read_narrowed")
    warehouse.append(table, pa.table({"model": ["a", "b", "a"], "fit": ["1", "2", "3"]}))
    rows = warehouse.read(table, where={"model": "a"}, columns=("fit",))
    assert sorted(rows.column("fit").to_pylist()) == ["1", "3"] and rows.column_names == ["fit"]
    assert warehouse.read(table, where={"model": "a", "fit": "3"}).num_rows == 1
