"""Fixtures shared across test modules."""

from __future__ import annotations

import pytest

from tests.spark_env import SparkEnv, start


@pytest.fixture(scope="session")
def spark(tmp_path_factory) -> SparkEnv:
    """The local Spark every Spark test shares (tests/spark_env.py); skips without pyspark."""
    return start(tmp_path_factory.mktemp("spark"))
