"""The multi-table demo (integration_tests/nycflights) builds green from a clean target:
five twins, a relationships test on every twin foreign key, cardinality_drift on two of them."""

from __future__ import annotations

import importlib.util

import pytest
from dbt.cli.main import dbtRunner

from tests.dbt_projects import REPO_ROOT

DEMO = REPO_ROOT / "integration_tests" / "nycflights"
TWINS = {"airlines_twin", "airports_twin", "planes_twin", "weather_twin", "flights_twin"}


def _loader():
    path = REPO_ROOT / "integration_tests" / "scripts" / "load_data.py"
    spec = importlib.util.spec_from_file_location("load_data", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def build(tmp_path_factory):
    root = tmp_path_factory.mktemp("nycflights")
    database = root / "nycflights.duckdb"
    loader = _loader()
    # The demo's own default sample (20,000 flights, seed 13), which its thresholds were set on.
    loader.load_duckdb(str(database), loader.FLIGHTS_TABLES, 20_000)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DBT_SYNTH_DUCKDB_PATH", str(database))
        args = ["--project-dir", str(DEMO), "--profiles-dir", str(DEMO)]
        assert dbtRunner().invoke(["deps", "--quiet", *args]).success
        # A target path with no manifest yet: keys must come from the one this build writes.
        result = dbtRunner().invoke(["build", "--target-path", str(root / "target"), *args])
    return result, database


def test_every_twin_builds_and_every_foreign_key_test_passes(build):
    result, _ = build
    assert result.success, result.exception
    statuses = {r.node.name: str(r.status) for r in result.result.results}
    assert {name: statuses[name] for name in TWINS} == dict.fromkeys(TWINS, "success")
    relationships = {n: s for n, s in statuses.items() if "relationships" in n}
    # carrier, tailnum, origin, dest of flights and origin of weather, plus the composite
    # (origin, time_hour) → weather_twin (a relationships test on an expression, named).
    twin_checks = {n: s for n, s in relationships.items() if n.startswith("relationships_")}
    twin_checks["composite"] = statuses["flights_twin_origin_time_hour_in_weather_twin"]
    assert len(twin_checks) == 6 and set(twin_checks.values()) == {"pass"}
    drift = {n: s for n, s in statuses.items() if "cardinality_drift" in n}
    assert len(drift) == 2 and set(drift.values()) == {"pass"}
    # The one test on the real source documents its orphans and warns.
    source_orphans = [s for n, s in relationships.items() if n.startswith("source_")]
    assert source_orphans == ["warn"]


def test_ledger_states_the_privacy_unit_of_each_twin(build):
    import duckdb

    _, database = build
    with duckdb.connect(str(database)) as con:
        units = dict(con.execute("select model, privacy_unit from main.synth_ledger").fetchall())
    assert set(units) == TWINS
    assert units["flights_twin"].startswith("row (one child row")
    assert units["planes_twin"] == "row"


def test_a_child_twin_holds_rows_out_and_is_no_closer_to_its_training_rows(build):
    import duckdb

    result, database = build
    statuses = {r.node.name: str(r.status) for r in result.result.results}
    leakage = [s for n, s in statuses.items() if n.startswith("dbt_synth_near_duplicate_leakage")]
    assert leakage == ["pass"]
    with duckdb.connect(str(database)) as con:
        rule = con.execute(
            "select holdout from main.synth_ledger where model = 'weather_twin'"
        ).fetchall()
        real_rows = con.execute("select count(*) from raw.weather").fetchall()[0][0]
        fitted = con.execute(
            "select source_rows_dp from main.synth_ledger where model = 'weather_twin'"
        ).fetchall()[0][0]
    assert rule[0][0] is not None and '"share": 0.2' in rule[0][0]
    # The DP count is of the 80 % train rows only (its noise is a few rows).
    assert abs(fitted - 0.8 * real_rows) < 0.02 * real_rows
