"""Fixtures shared across test modules."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.spark_env import ClusterRun, SparkEnv, start, start_cluster


@pytest.fixture(scope="session")
def spark(tmp_path_factory) -> SparkEnv:
    """The local Spark every Spark test shares (tests/spark_env.py); skips without pyspark."""
    return start(tmp_path_factory.mktemp("spark"))


@pytest.fixture(scope="session", autouse=True)
def spark_cluster(request, tmp_path_factory) -> Iterator[ClusterRun | None]:
    """scripts/spark_cluster.sh, started with the session when a `cluster` test is selected.

    Its JVMs take minutes to start and build on two cores; started first, they do it while the
    other tests run instead of before tests/test_spark_cluster.py, which waits for the result.
    None when no cluster test is selected, or pyspark or Java is missing.
    """
    selected = any(item.get_closest_marker("cluster") for item in request.session.items)
    run = start_cluster(tmp_path_factory.mktemp("spark_cluster")) if selected else None
    yield run
    if run is not None:
        run.stop()
