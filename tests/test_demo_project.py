"""The demo project in integration_tests/ builds green on DuckDB: twins and all their tests."""

from __future__ import annotations

import importlib.util

import pytest
from dbt.cli.main import dbtRunner

from tests.dbt_projects import REPO_ROOT

DEMO = REPO_ROOT / "integration_tests"


def _load_data_module():
    spec = importlib.util.spec_from_file_location("load_data", DEMO / "scripts" / "load_data.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def demo_build(tmp_path_factory, monkeypatch_module):
    root = tmp_path_factory.mktemp("demo")
    database = root / "demo.duckdb"
    monkeypatch_module.setenv("DBT_SYNTH_DUCKDB_PATH", str(database))
    loader = _load_data_module()
    loader.load_duckdb(str(database), loader.DEMO_TABLES)
    args = ["--project-dir", str(DEMO), "--profiles-dir", str(DEMO)]
    assert dbtRunner().invoke(["deps", "--quiet", *args]).success
    result = dbtRunner().invoke(["build", "--target-path", str(root / "target"), *args])
    return result, database


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as patch:
        yield patch


def test_demo_builds_every_twin_and_passes_every_test(demo_build):
    result, _ = demo_build
    assert result.success, result.exception
    statuses = {r.node.name: str(r.status) for r in result.result.results}
    assert statuses["cps1988_twin"] == "success"
    tests = {
        name: status for name, status in statuses.items() if status in ("pass", "fail", "error")
    }
    assert tests and set(tests.values()) == {"pass"}


def test_demo_ledger_has_one_row_per_twin(demo_build):
    import duckdb

    _, database = demo_build
    with duckdb.connect(str(database)) as con:
        rows = con.execute(
            "select model, epsilon, target_epsilon from main_synth.synth_ledger"
        ).fetchall()
    assert [r[0] for r in rows] == ["cps1988_twin"]
    assert all(r[1] <= r[2] * (1 + 1e-6) for r in rows)
