"""Numeric domains counted by Spark (dbt_synth/pushdown.py) on the JVM of tests/spark_env.py:
the same release as on the sample when the sample is the whole table, and only counts beside
the sample reach the driver."""

from __future__ import annotations

import pytest

from dbt_synth import synthesize
from dbt_synth.domains.tree import LEVEL_BITS
from dbt_synth.noise import replayable_noise
from dbt_synth.pushdown import Aggregates
from dbt_synth.schema import ColumnKind
from dbt_synth.warehouse import create
from dbt_synth.warehouse.spark import SparkWarehouse
from tests.pushdown_cases import (
    coded_source,
    ordered_source,
    same_code_counts,
    same_numeric_domains,
)

pytestmark = pytest.mark.spark


def test_spark_counts_release_the_sample_paths_numeric_domains_at_rate_one(spark):
    warehouse = create(spark.session)
    assert isinstance(warehouse, SparkWarehouse)
    frame = spark.session.createDataFrame(ordered_source(rows=3000)).selectExpr(
        "*", "cast(at as timestamp_ntz) as at_ntz"
    )
    schema = warehouse.schema(frame)
    kinds = {spec.name: spec.kind for spec in schema.columns}
    assert kinds["at"] is ColumnKind.TIMESTAMPTZ and kinds["at_ntz"] is ColumnKind.TIMESTAMP
    config = {"epsilon": 4.0, "rows": 200, "mechanism": "marginal", "max_fit_rows": 10_000}
    fetched, aggregated = warehouse.fetched_rows, warehouse.aggregated_rows
    with replayable_noise(7):
        engine = synthesize(warehouse.source_rows(frame), schema=schema, config=config)
    counts = warehouse.aggregated_rows - aggregated
    sampled = warehouse.fetched_rows - fetched - counts
    with replayable_noise(7):
        memory = synthesize(warehouse.arrow(frame), schema=schema, config=config)
    assert engine.sample_rate == memory.sample_rate == 1.0
    same_numeric_domains(engine, memory)
    # Only counts came to the driver (the marginal mechanism's too, so no sample was drawn):
    # tree cells the previous level kept (at most 16 per kept node) and the 15 pairs' cells.
    assert sampled == 0
    cards = [c.codes for c in engine.columns]
    pair_cells = sum(a * b for i, a in enumerate(cards) for b in cards[i + 1 :])
    assert 6 * len(LEVEL_BITS) < counts < 6 * 3000 + pair_cells


def test_spark_counts_the_marginals_as_the_driver_and_fetches_no_sample(spark):
    """The codes in Spark SQL (awkward strings, NaN and ±inf kept and not, `other`, booleans,
    dates, timestamps) count as `encode` does; at rate 1 under replayed noise the fit is the
    driver's, and no source row reaches the driver, only counts."""
    warehouse = create(spark.session)
    source = coded_source(rows=3000)
    frame = spark.session.createDataFrame(source)
    schema = warehouse.schema(frame)
    config = {"epsilon": 4.0, "rows": 300, "mechanism": "marginal", "seed": 3}
    fetched, aggregated = warehouse.fetched_rows, warehouse.aggregated_rows
    said: list[str] = []
    with replayable_noise(11):
        engine = synthesize(
            warehouse.source_rows(frame), schema=schema, config=config, progress=said.append
        )
    counts = warehouse.aggregated_rows - aggregated
    assert warehouse.fetched_rows - fetched == counts  # no sample: every row fetched is a count
    assert "1- and 2-way counts of 7 columns computed by the warehouse" in said
    table = warehouse.arrow(frame)
    with replayable_noise(11):
        driver = synthesize(table, schema=schema, config=config)
    assert engine.sample_rate == driver.sample_rate == 1.0
    assert [s.rdp.tolist() for s in engine.spends] == [s.rdp.tolist() for s in driver.spends]
    assert engine.table.to_pandas().equals(driver.table.to_pandas())
    aggregates = Aggregates(lambda q: warehouse.aggregate(frame, q), warehouse.dialect)
    assert same_code_counts(driver, table, aggregates) == 7
