"""The real-cluster check: scripts/spark_cluster.sh, run as CI runs it.

The script starts a standalone master, a worker and a Spark Connect server on 127.0.0.1 (three
JVMs, executors in a fourth), builds the demo twin with its tests and the child project (a parent
twin and a child twin whose keys are drawn from it, with its relationships test) through
SPARK_REMOTE, and stops the services by their pids. It runs in its own processes, next to the
local Spark of tests/spark_env.py, with its own warehouse and free ports; tests/conftest.py
starts it when the session begins, and this test waits for its result.
"""

from __future__ import annotations

import pytest

from tests.spark_env import ClusterRun, require_spark

pytestmark = pytest.mark.cluster


def test_cluster_builds_the_demo_twin_and_a_child_twin_through_spark_connect(
    spark_cluster: ClusterRun | None,
):
    require_spark()
    assert spark_cluster is not None  # started by tests/conftest.py when this test is selected
    run = spark_cluster.outcome(timeout=1800)
    output = run.stdout + run.stderr
    # The script's own lines (where its logs are, how long each stage took): shown with -s.
    print(
        *(line for line in run.stdout.splitlines() if line.startswith("spark_cluster:")), sep="\n"
    )
    assert run.returncode == 0, output[-6000:]
    assert "demo twin built and tested on the cluster" in run.stdout
    assert "child twin built and tested on the cluster" in run.stdout
    # dbt's summary lines: every node of both builds passed, none errored or was skipped.
    summaries = [line for line in run.stdout.splitlines() if "Done. PASS=" in line]
    assert len(summaries) == 2, output[-6000:]
    for line in summaries:
        assert "ERROR=0" in line and "SKIP=0" in line, line
        passed = int(line.split("PASS=")[1].split()[0])
        assert passed >= 4, line  # at least the twin(s) and their tests
