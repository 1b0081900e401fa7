"""Throwaway dbt projects on a real DuckDB file, using this repo as a local package."""

from __future__ import annotations

import importlib.util
import textwrap
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import duckdb
import pandas as pd
from dbt.cli.main import dbtRunner, dbtRunnerResult

REPO_ROOT = Path(__file__).resolve().parents[1]


@dataclass
class DbtProject:
    """A dbt project in a temp dir; `run` invokes dbt in-process like a user's shell would."""

    root: Path

    @property
    def database(self) -> Path:
        return self.root / "warehouse.duckdb"

    def write(self, relative: str, text: str) -> None:
        path = self.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip())

    def load(self, table: str, frame: pd.DataFrame, schema: str = "raw") -> None:
        with duckdb.connect(str(self.database)) as con:
            con.execute(f"create schema if not exists {schema}")
            con.register("frame", frame)
            con.execute(f"create or replace table {schema}.{table} as select * from frame")

    def execute(self, sql: str) -> None:
        with duckdb.connect(str(self.database)) as con:
            con.execute(sql)

    def query(self, sql: str) -> list[tuple]:
        with duckdb.connect(str(self.database)) as con:
            return con.execute(sql).fetchall()

    def frame(self, sql: str) -> pd.DataFrame:
        with duckdb.connect(str(self.database)) as con:
            return con.execute(sql).df()

    def dbt(self, *args: str) -> dbtRunnerResult:
        return self.dbt_with_callbacks([], *args)

    def dbt_with_callbacks(self, callbacks: list, *args: str) -> dbtRunnerResult:
        """`dbt`, with each of dbt's structured log events also handed to `callbacks`."""
        return dbtRunner(callbacks=callbacks).invoke(
            [*args, "--project-dir", str(self.root), "--profiles-dir", str(self.root)]
        )


def new_project(root: Path, sources: dict[str, list[str]] | None = None) -> DbtProject:
    """A DuckDB dbt project with `raw` sources named in `sources` ({table: [columns]})."""
    project = DbtProject(root)
    project.write(
        "dbt_project.yml",
        """
        name: synth_test
        version: "1.0.0"
        config-version: 2
        profile: synth_test
        model-paths: ["models"]
        """,
    )
    project.write(
        "profiles.yml",
        f"""
        synth_test:
          target: duckdb
          outputs:
            duckdb:
              type: duckdb
              path: "{project.database}"
              schema: main
              threads: 2
        """,
    )
    project.write("packages.yml", f"packages:\n  - local: {REPO_ROOT}\n")
    tables = "".join(f"      - name: {t}\n" for t in (sources or {}))
    project.write(
        "models/sources.yml", f"version: 2\nsources:\n  - name: raw\n    tables:\n{tables}"
    )
    result = project.dbt("deps", "--quiet")
    assert result.success, result.exception
    return project


def twin_model(source: str, synth: dict) -> str:
    """The code of a twin model of `raw.<source>` with the given synth config."""
    return f"""
    import dbt_synth


    def model(dbt, session):
        dbt.config(materialized="table", synth={synth!r})
        return dbt_synth.twin(dbt, session, dbt.source("raw", "{source}"), dbt.config.get("synth"))
    """


def flights_loader() -> ModuleType:
    """integration_tests/scripts/load_data.py (the demos' real tables), as a module."""
    path = REPO_ROOT / "integration_tests" / "scripts" / "load_data.py"
    spec = importlib.util.spec_from_file_location("load_data", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
