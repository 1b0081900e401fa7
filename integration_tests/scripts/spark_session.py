"""dbt on a local or remote Spark, with Python models run in the SparkSession itself (test-only).

dbt-spark runs a Python model only through its Databricks submission helpers
(`all_purpose_cluster`, `job_cluster`): they upload the compiled model to a Databricks
workspace, where a notebook executes it with the global `spark` bound to the cluster's session.
A local Spark, or a Spark Connect server, has no workspace to upload to. This module adds one
more submission method, `session`, that does what that notebook does: it executes the compiled
model code with `spark` bound to the SparkSession of dbt-spark's `method: session` connection.

It is test infrastructure, not part of dbt-synth: nothing in `dbt_synth` imports it, and on
Databricks the same model files run through dbt-spark's (or dbt-databricks') own methods.
`register()` patches dbt-spark's adapter class in this process only; the command line below
registers and then runs dbt, so a shell can build the demo on Spark:

    python integration_tests/scripts/spark_session.py build --project-dir integration_tests \\
        --profiles-dir integration_tests --target spark

`local_session()` starts (or returns) the same local SparkSession the profile's `spark` target
describes, for loaders and tests that talk to Spark next to dbt in one process. Both read the
same environment: DBT_SYNTH_SPARK_DIR (warehouse files and the Derby metastore, which admits one
process at a time per folder) and DBT_SYNTH_SPARK_MASTER (default local[2]). With SPARK_REMOTE
set (sc://host:port), pyspark connects to that Spark Connect server instead.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

SUBMISSION_METHOD = "session"
DEFAULT_DIR = "spark_local"


def spark_dir() -> Path:
    """Where the local warehouse and metastore live (absolute, so every process agrees)."""
    return Path(os.environ.get("DBT_SYNTH_SPARK_DIR", DEFAULT_DIR)).resolve()


def local_settings() -> dict[str, str]:
    """The Spark settings of the profile's `spark` target (profiles.yml renders the same)."""
    root = spark_dir()
    return {
        "spark.master": os.environ.get("DBT_SYNTH_SPARK_MASTER", "local[2]"),
        "spark.sql.warehouse.dir": str(root / "warehouse"),
        "spark.driver.extraJavaOptions": f"-Dderby.system.home={root}",
        # Small test tables: one shuffle partition per core of local[2], not Spark's 200 (the
        # SQL tests run dozens of shuffles over 28k rows; each task costs more than its rows).
        "spark.sql.shuffle.partitions": "2",
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        # dbt-spark's session connection sets this too; a session started first must agree.
        "spark.sql.ansi.enabled": "false",
    }


def local_session() -> Any:
    """The process's SparkSession (Hive catalog), started with `local_settings()` if none is."""
    from pyspark.sql import SparkSession

    _python_workers()
    if os.environ.get("SPARK_REMOTE"):
        return SparkSession.builder.getOrCreate()
    builder = SparkSession.builder.enableHiveSupport()
    for key, value in local_settings().items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    return session


def _python_workers() -> None:
    """Spark's Python workers run this interpreter (its pyarrow, pandas and dbt_synth), not
    whatever `python3` is first on PATH."""
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)


def _session_for(credentials: Any) -> Any:
    """The session dbt-spark's `method: session` cursor uses: same builder, same parameters."""
    from pyspark.sql import SparkSession

    builder = SparkSession.builder
    if not os.environ.get("SPARK_REMOTE"):
        builder = builder.enableHiveSupport()
        for key, value in credentials.server_side_parameters.items():
            builder = builder.config(key, value)
    return builder.getOrCreate()


def _job_helper_class() -> type:
    from dbt.adapters.base import PythonJobHelper

    class SessionJobHelper(PythonJobHelper):
        """Executes a compiled Python model with `spark` bound to the connection's session."""

        def __init__(self, parsed_model: dict, credentials: Any) -> None:
            self.model = f"{parsed_model['schema']}.{parsed_model['alias']}"
            self.credentials = credentials

        def submit(self, compiled_code: str) -> str:
            namespace = {"spark": _session_for(self.credentials), "__name__": "__dbt_model__"}
            exec(compile(compiled_code, f"<dbt model {self.model}>", "exec"), namespace)
            return self.model

    return SessionJobHelper


def register() -> None:
    """Make `session` a submission method of dbt-spark, and the default on `method: session`.

    Idempotent. The default matters because the same model files also run on DuckDB: they
    carry no `submission_method`, as on Databricks, where the adapter's default applies.
    """
    from dbt.adapters.spark.impl import SparkAdapter

    _python_workers()
    if getattr(SparkAdapter, "_dbt_synth_session", False):
        return
    helpers = SparkAdapter.python_submission_helpers.fget
    default = SparkAdapter.default_python_submission_method.fget
    helper = _job_helper_class()

    def python_submission_helpers(self) -> dict[str, type]:
        return {**helpers(self), SUBMISSION_METHOD: helper}

    def default_python_submission_method(self) -> str:
        on_session = self.config.credentials.method == SUBMISSION_METHOD
        return SUBMISSION_METHOD if on_session else default(self)

    SparkAdapter.python_submission_helpers = property(python_submission_helpers)
    SparkAdapter.default_python_submission_method = property(default_python_submission_method)
    SparkAdapter._dbt_synth_session = True


def main(argv: list[str]) -> int:
    """`dbt <argv>` in this process, with the `session` submission method registered."""
    from dbt.cli.main import dbtRunner

    register()
    result = dbtRunner().invoke(argv)
    return 0 if result.success else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
