"""One local Spark for the whole pytest process: the tests that need Spark share its JVM.

A Spark JVM takes 15-70 s to start on two busy cores, and its Derby metastore admits one
process per folder, so every Spark test module gets the same session, started once, with its
warehouse and metastore in a temporary folder (DBT_SYNTH_SPARK_DIR, which dbt's `spark` target
in integration_tests/profiles.yml reads too). The session is never stopped: the JVM ends with
the process.

Outside CI a machine without pyspark or Java skips these tests; in CI they must run.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tests.dbt_projects import REPO_ROOT

SCRIPTS = REPO_ROOT / "integration_tests" / "scripts"


@dataclass(frozen=True)
class SparkEnv:
    """The process's SparkSession and the folder its warehouse and metastore live in."""

    session: Any
    root: Path

    def count(self, relation: str) -> int:
        return int(self.session.sql(f"select count(*) from {relation}").collect()[0][0])

    def rows(self, sql: str) -> list[tuple]:
        return [tuple(row) for row in self.session.sql(sql).collect()]


def script(name: str) -> ModuleType:
    """A module of integration_tests/scripts (they are scripts, not a package)."""
    spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def require_spark() -> None:
    """Skip without pyspark or Java, except in CI, where their absence fails."""
    missing = []
    if importlib.util.find_spec("pyspark") is None:
        missing.append("pyspark (pip install -e '.[test]')")
    if shutil.which("java") is None:
        missing.append("Java 17 (apt-get install -y openjdk-17-jre-headless)")
    if not missing:
        return
    if os.environ.get("CI"):
        raise AssertionError(f"Spark tests need {', '.join(missing)} in CI")
    pytest.skip(f"no {', '.join(missing)}")


def start(root: Path) -> SparkEnv:
    """The process's local SparkSession, its warehouse under `root` if it starts now."""
    require_spark()
    os.environ.setdefault("DBT_SYNTH_SPARK_DIR", str(root))
    session = script("spark_session").local_session()
    return SparkEnv(session, Path(os.environ["DBT_SYNTH_SPARK_DIR"]))
