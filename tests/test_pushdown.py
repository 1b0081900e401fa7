"""Category counts computed by the engine (dbt_synth/pushdown.py), on a real DuckDB.

Spark is the warehouse that uses them in a build (tests/test_warehouse_spark.py); the query is
plain SQL, so DuckDB checks its semantics here in milliseconds: NULL values against the NULLs
that grouping sets put in other columns, types kept, a fixed order.
"""

from __future__ import annotations

import dataclasses

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from dbt_synth import synthesize
from dbt_synth.pushdown import Aggregates, grouping_sets_sql, value_counts
from dbt_synth.source_rows import SourceRows


@pytest.fixture
def aggregates() -> Aggregates:
    source = pa.table(
        {
            "city": ["oslo", "rome", None, "rome", "rome", None],
            "size": [1, 1, 2, None, 3, 3],
            "flag": [True, None, True, True, False, None],
        }
    )
    connection = duckdb.connect()
    relation = connection.from_arrow(source)
    return Aggregates(lambda query: relation.query("source", query).to_arrow_table(), "duckdb")


def test_one_query_counts_every_column_with_its_nulls(aggregates):
    counted = value_counts(aggregates, ["city", "size", "flag"])
    city, size, flag = counted["city"], counted["size"], counted["flag"]
    assert (city.values, city.counts.tolist(), city.nulls) == (["rome", "oslo"], [3.0, 1.0], 2)
    assert (size.values, size.counts.tolist(), size.nulls) == ([1, 3, 2], [2.0, 2.0, 1.0], 1)
    assert (flag.values, flag.counts.tolist(), flag.nulls) == ([True, False], [3.0, 1.0], 2)


def test_counts_match_arrow_value_counts_on_a_larger_table():
    rng_values = [f"v{i % 37}" if i % 11 else None for i in range(5000)]
    source = pa.table({"v": rng_values})
    relation = duckdb.connect().from_arrow(source)
    aggregates = Aggregates(lambda q: relation.query("source", q).to_arrow_table(), "duckdb")
    (counted,) = value_counts(aggregates, ["v"]).values()
    expected = pc.value_counts(source.column("v").drop_null()).to_pylist()
    assert dict(zip(counted.values, counted.counts, strict=True)) == {
        e["values"]: e["counts"] for e in expected
    }
    assert counted.nulls == source.column("v").null_count


def test_identifiers_are_quoted_for_the_dialect():
    assert "`a b`" in grouping_sets_sql(["a b"], "spark")
    assert '"a b"' in grouping_sets_sql(["a b"], "duckdb")
    assert "GROUPING SETS" in grouping_sets_sql(["a", "b"], "spark").upper()


def test_the_fit_releases_category_domains_on_the_whole_source_scaled_to_the_sample():
    rows = 100_000
    source = pa.table(
        {
            "city": pa.array(["oslo" if i % 3 == 0 else "rome" for i in range(rows)]),
            "even": pa.array([i % 2 == 0 for i in range(rows)]),
            "size": pa.array([i % 50 for i in range(rows)]),
        }
    )
    relation = duckdb.connect().from_arrow(source)
    counted = SourceRows.of(source)
    pushed = dataclasses.replace(
        counted,
        aggregates=Aggregates(lambda q: relation.query("source", q).to_arrow_table(), "duckdb"),
    )
    said: list[str] = []
    config = {"epsilon": 1.0, "max_fit_rows": 1000, "rows": 500}
    result = synthesize(pushed, config=config, progress=said.append)
    assert "category counts of 2 columns computed by the warehouse" in said
    rate = result.sample_rate
    models = dict(zip(result.schema.names, result.generator.models, strict=True))
    city = dict(zip(models["city"].domain.values, models["city"].domain.counts, strict=True))
    # σ ≈ 20 on the whole table's counts, 0.2 once scaled; the sample's own counts would be off
    # by a binomial sd of ≈ 18.
    assert city["oslo"] == pytest.approx(33_334 * rate, abs=3)
    assert city["rome"] == pytest.approx(66_666 * rate, abs=3)
    assert result.table.num_rows == 500
    assert set(result.table.column("city").to_pylist()) <= {"oslo", "rome"}
