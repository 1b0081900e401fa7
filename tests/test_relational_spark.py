"""A child twin on Apache Spark: integration_tests/child built by dbt-spark `method: session`.

planes_twin (fresh tail numbers) and flights_twin, whose tailnum keys are drawn from
planes_twin, built through the test-only `session` submission helper in the one JVM of
tests/spark_env.py. Checked in Spark itself, not only through dbt's relationships test: every
non-NULL tailnum of the child twin is a key of the parent twin.
"""

from __future__ import annotations

import pytest
from dbt.cli.main import dbtRunner, dbtRunnerResult

from tests.dbt_projects import REPO_ROOT
from tests.spark_env import SparkEnv, script

pytestmark = pytest.mark.spark

CHILD = REPO_ROOT / "integration_tests" / "child"
# The flights sample of test_sql_spark's cardinality project: both load raw.flights alike.
FLIGHTS_ROWS = 20_000


def _dbt(*args: str) -> dbtRunnerResult:
    script("spark_session").register()
    project = str(CHILD)
    return dbtRunner().invoke(
        [*args, "--target", "spark", "--project-dir", project, "--profiles-dir", project]
    )


@pytest.fixture(scope="module")
def child_build(spark: SparkEnv, tmp_path_factory) -> dbtRunnerResult:
    loader = script("load_data")
    loader.load_spark(loader.CHILD_TABLES, flights_rows=FLIGHTS_ROWS)
    root = tmp_path_factory.mktemp("child_spark")
    assert _dbt("deps", "--quiet").success
    return _dbt("build", "--target-path", str(root / "target"))


def test_child_twin_is_built_on_spark_and_its_tests_pass(child_build):
    statuses = {r.node.name: str(r.status) for r in child_build.result.results}
    assert statuses["planes_twin"] == "success"
    assert statuses["flights_twin"] == "success"
    tests = [r for r in child_build.result.results if r.node.resource_type == "test"]
    assert len(tests) == 3  # unique + not_null on planes_twin, relationships on flights_twin
    assert {str(r.status) for r in tests} == {"pass"}, statuses


def test_every_child_key_exists_in_the_parent_twin(spark, child_build):
    ((children, keyed, distinct),) = spark.rows(
        "select count(*), count(tailnum), count(distinct tailnum) from child.flights_twin"
    )
    ((parents,),) = spark.rows("select count(*) from child.planes_twin")
    ((orphans,),) = spark.rows(
        "select count(*) from (select tailnum from child.flights_twin where tailnum is not null) f "
        "left anti join child.planes_twin p on f.tailnum = p.tailnum"
    )
    # The twins' sizes are DP counts of 20,000 flights and 3,322 planes.
    assert abs(children - FLIGHTS_ROWS) < 500
    assert abs(parents - 3322) < 200
    assert keyed > 0.8 * children  # most flights carry a tail number, as in the source
    assert orphans == 0
    # The keys are the parent twin's fresh ones, spread over many of them.
    assert distinct > 1000


def test_a_rebuild_on_spark_resamples_the_stored_child_fit_for_nothing(
    spark, child_build, tmp_path
):
    rebuild = _dbt("run", "--select", "flights_twin", "--target-path", str(tmp_path / "target"))
    assert rebuild.success, rebuild.exception
    fit, again = spark.rows(
        "select epsilon, fit_id, resampled_from from child.synth_ledger "
        "where model = 'flights_twin' order by finished_at"
    )
    assert fit[0] > 0.99 and again[0] == 0.0 and again[1] == again[2] == fit[1]
    ((stored,),) = spark.rows(
        "select count(*) from child.synth_models where model = 'flights_twin'"
    )
    ((orphans,),) = spark.rows(
        "select count(*) from (select tailnum from child.flights_twin where tailnum is not null) f "
        "left anti join child.planes_twin p on f.tailnum = p.tailnum"
    )
    assert stored == 1 and orphans == 0
