"""One local Spark for the whole pytest process: the tests that need Spark share its JVM.

A Spark JVM takes 15-70 s to start on two busy cores, and its Derby metastore admits one
process per folder, so every Spark test module gets the same session, started once, with its
warehouse and metastore in a temporary folder (DBT_SYNTH_SPARK_DIR, which dbt's `spark` target
in integration_tests/profiles.yml reads too). The session is never stopped: the JVM ends with
the process.

The real-cluster check (scripts/spark_cluster.sh, its own JVMs) is started in the background
when the session begins, if its test is selected (`ClusterRun`): its services start and its
builds run while the other tests do, and tests/test_spark_cluster.py waits for its result.

Outside CI a machine without pyspark or Java skips these tests; in CI they must run.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tests.dbt_projects import REPO_ROOT

SCRIPTS = REPO_ROOT / "integration_tests" / "scripts"
CLUSTER_SCRIPT = REPO_ROOT / "scripts" / "spark_cluster.sh"


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


def _missing() -> list[str]:
    missing = []
    if importlib.util.find_spec("pyspark") is None:
        missing.append("pyspark (pip install -e '.[test]')")
    if shutil.which("java") is None:
        missing.append("Java 17 (apt-get install -y openjdk-17-jre-headless)")
    return missing


def require_spark() -> None:
    """Skip without pyspark or Java, except in CI, where their absence fails."""
    missing = _missing()
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


@dataclass(frozen=True)
class ClusterOutcome:
    """What scripts/spark_cluster.sh returned: its exit status and its output."""

    returncode: int
    stdout: str
    stderr: str


class ClusterRun:
    """scripts/spark_cluster.sh running in the background, in its own process group.

    Started at the beginning of the pytest session (tests/conftest.py) so that its JVMs start
    and its builds run beside the other tests; `outcome()` waits for it. `stop()` ends the whole
    group (script, JVMs, dbt) if the session ends first; the script's trap stops the services
    when it finishes normally.
    """

    def __init__(self, folder: Path) -> None:
        self._stdout = folder / "stdout.txt"
        self._stderr = folder / "stderr.txt"
        env = {**os.environ, "PYTHON": sys.executable}
        env.pop("SPARK_REMOTE", None)  # the script sets its own, for its dbt only
        with open(self._stdout, "w") as out, open(self._stderr, "w") as err:
            self._process = subprocess.Popen(
                [str(CLUSTER_SCRIPT)], env=env, stdout=out, stderr=err, start_new_session=True
            )
        self._started = time.monotonic()

    def outcome(self, timeout: float) -> ClusterOutcome:
        """Wait for the script (at most `timeout` seconds since it started) and read its output."""
        left = max(1.0, timeout - (time.monotonic() - self._started))
        try:
            returncode = self._process.wait(timeout=left)
        except subprocess.TimeoutExpired:
            self.stop()
            raise
        return ClusterOutcome(returncode, self._stdout.read_text(), self._stderr.read_text())

    def stop(self) -> None:
        if self._process.poll() is None:
            os.killpg(self._process.pid, signal.SIGTERM)
            try:
                self._process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(self._process.pid, signal.SIGKILL)
                self._process.wait()


def start_cluster(folder: Path) -> ClusterRun | None:
    """The cluster script, started now; None where pyspark or Java is missing (the test then
    skips, or fails in CI, through `require_spark`)."""
    return None if _missing() else ClusterRun(folder)
