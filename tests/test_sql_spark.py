"""The package's generic tests on Apache Spark (dbt-spark `method: session`, local[2]).

One dbt build of integration_tests on Spark: the demo twin (a dbt Python model, built through
the Spark warehouse, dbt_synth/warehouse/spark.py) with its ledger row, and the same planted bad
twins as on DuckDB and Postgres (tests/test_sql_tests.py), each caught by exactly its tests, and
the real DP twin by none. cardinality_drift runs on the flights halves of the Postgres test in
a second, small project in the same session. All of it in the one JVM of tests/spark_env.py.
"""

from __future__ import annotations

import json

import pytest
from dbt.cli.main import dbtRunner, dbtRunnerResult

from tests.spark_env import SparkEnv, script
from tests.test_sql_cardinality_postgres import write_project
from tests.test_sql_tests import (
    DEMO,
    STORE_OBSERVED,
    Build,
    _assert_bad_twins_caught,
    _real_duplicate_share,
    _train_rows_python,
)

pytestmark = pytest.mark.spark


def _dbt(project: str, *args: str) -> dbtRunnerResult:
    script("spark_session").register()
    return dbtRunner().invoke(
        [*args, "--target", "spark", "--project-dir", project, "--profiles-dir", project]
    )


@pytest.fixture(scope="module")
def spark_build(spark: SparkEnv, tmp_path_factory) -> Build:
    loader = script("load_data")
    loader.load_spark(loader.DEMO_TABLES)
    root = tmp_path_factory.mktemp("sql_spark")
    assert _dbt(str(DEMO), "deps", "--quiet").success
    result = _dbt(str(DEMO), "build", *STORE_OBSERVED, "--target-path", str(root / "target"))
    return Build(result, "spark", root, count_rows=spark.count)


def test_demo_twin_is_built_on_spark_with_the_source_schema_and_a_ledger_row(spark, spark_build):
    statuses = {r.node.name: str(r.status) for r in spark_build.result.result.results}
    assert statuses["cps1988_twin"] == "success"
    assert statuses["dbt_synth_schema_matches_cps1988_twin_source_raw_cps1988_"] == "pass"
    source = spark.session.table("raw.cps1988").schema
    twin = spark.session.table("demo_synth.cps1988_twin").schema
    assert [(f.name, f.dataType) for f in twin.fields] == [
        (f.name, f.dataType) for f in source.fields
    ]
    ((epsilon, target, rows_dp, twin_rows, holdout),) = spark.rows(
        "select epsilon, target_epsilon, source_rows_dp, twin_rows, holdout "
        "from demo_synth.synth_ledger where model = 'cps1988_twin'"
    )
    assert target == 1.0 and epsilon == pytest.approx(1.0, abs=1e-3)
    assert json.loads(holdout)["share"] == 0.2
    # The train split (80 % of 28,155 rows) up to the DP noise of the count.
    assert abs(rows_dp - 0.8 * 28155) < 300
    assert spark.count("demo_synth.cps1988_twin") == twin_rows


def test_spark_flags_exactly_the_bad_twins_each_test_is_meant_for(spark_build):
    _assert_bad_twins_caught(spark_build)


def _stored(spark: SparkEnv, build: Build, model: str, test: str) -> list[tuple]:
    for r in build.result.result.results:
        metadata = getattr(r.node, "test_metadata", None)
        if metadata and metadata.name == test and r.node.attached_node.endswith("." + model):
            return spark.rows(
                "select column_name, metric, observed, threshold, detail "
                f"from {r.node.relation_name} order by observed desc"
            )
    raise AssertionError(f"no {test} on {model}")


def test_spark_failing_rows_explain_themselves(spark, spark_build):
    copies = _stored(spark, spark_build, "twin_copy", "no_exact_copies")
    assert copies[0][1:3] == ("exact_copy_share", 1.0)
    # The bar moved by the real duplicate share (an exact aggregate), which is not shown.
    assert float(copies[0][3]) == 0
    assert "real value not shown" in copies[0][4]
    assert f"{100 * _real_duplicate_share():.2f}" not in copies[0][4]
    shuffled = _stored(spark, spark_build, "twin_shuffled", "correlation_drift")
    pairs = {c: observed for c, m, observed, *_ in shuffled if m == "pearson_diff"}
    assert pairs["wage, education"] > 0.2


def test_spark_holdout_split_is_the_python_one(spark, spark_build):
    """row_text and hash_fraction on Spark keep exactly the rows Python's rule keeps."""
    spark_train = sorted(spark.rows("select * from demo.twin_copy"))
    assert spark_train == _train_rows_python()


@pytest.fixture(scope="module")
def cardinality_build(spark: SparkEnv, tmp_path_factory) -> dbtRunnerResult:
    loader = script("load_data")
    flights = [table for table in loader.FLIGHTS_TABLES if table[2] == "flights"]
    loader.load_spark(flights, flights_rows=20_000)
    root = tmp_path_factory.mktemp("cardinality_spark")
    write_project(
        root,
        "spark",
        """
        type: spark
        method: session
        host: localhost
        schema: cardinality
        threads: 2
        """,
    )
    assert _dbt(str(root), "deps", "--quiet").success
    return _dbt(str(root), "build")


def test_spark_cardinality_drift_passes_a_random_half_and_flags_a_skewed_one(cardinality_build):
    outcomes = {r.node.name: (str(r.status), r.failures) for r in cardinality_build.result.results}
    assert outcomes["cardinality_good"] == ("pass", 0)
    assert outcomes["cardinality_skewed"] == ("fail", 1)
