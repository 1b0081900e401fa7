"""The package's generic tests in a real `dbt build` of integration_tests, on DuckDB and Postgres.

Every bad twin must be caught by exactly the tests meant for it and the real DP twin by none;
the counts of failing rows are read from dbt's own results. Postgres tests skip only when no
server is reachable and CI is unset (`scripts/start_postgres.sh` starts one).
"""

from __future__ import annotations

import importlib.util
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest
from dbt.cli.main import dbtRunner, dbtRunnerResult

from fixtures.real_data import cps1988
from tests.dbt_projects import REPO_ROOT

DEMO = REPO_ROOT / "integration_tests"
PG_DATABASE = "dbt_synth_sql_tests"

# twin model -> the generic tests that must flag it; all others must pass it.
CAUGHT_BY = {
    "twin_good": set(),
    "twin_copy": {"no_exact_copies", "near_duplicate_leakage"},
    "twin_noisy": {"near_duplicate_leakage"},
    "twin_shuffled": {"correlation_drift"},
    "twin_missing_category": {"distribution_drift", "correlation_drift"},
}
# The failing rows these tests read are stored (store_failures on bad_twins): the project opts in
# to storing the observed figures, which are hidden from stored rows by default
# (tests/test_sql_no_real_values.py checks the default).
STORE_OBSERVED = ("--vars", "{dbt_synth_store_observed: true}")
GENERIC_TESTS = {
    "schema_matches",
    "distribution_drift",
    "correlation_drift",
    "no_exact_copies",
    "near_duplicate_leakage",
}


@dataclass
class Build:
    result: dbtRunnerResult
    target: str
    root: Path
    # Counts a relation's rows where the warehouse is neither DuckDB nor Postgres (Spark).
    count_rows: Callable[[str], int] | None = None


def _loader():
    spec = importlib.util.spec_from_file_location("load_data", DEMO / "scripts" / "load_data.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _pg_settings() -> dict[str, object]:
    return {
        "host": os.environ.get("DBT_SYNTH_PG_HOST", "127.0.0.1"),
        "port": int(os.environ.get("DBT_SYNTH_PG_PORT", "5432")),
        "user": os.environ.get("DBT_SYNTH_PG_USER", "postgres"),
        "password": os.environ.get("DBT_SYNTH_PG_PASSWORD", "postgres"),
    }


def _pg_connect(dbname: str):
    import psycopg2

    return psycopg2.connect(dbname=dbname, connect_timeout=5, **_pg_settings())


def _require_postgres() -> None:
    """Make this test's own database; skip only outside CI when no server answers."""
    import psycopg2

    try:
        admin = _pg_connect("postgres")
    except psycopg2.OperationalError as error:
        if os.environ.get("CI"):
            raise AssertionError(
                f"Postgres is not reachable in CI ({error}); run scripts/start_postgres.sh"
            ) from error
        pytest.skip(f"no Postgres server reachable ({error}); run scripts/start_postgres.sh")
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute("select 1 from pg_database where datname = %s", (PG_DATABASE,))
        if cur.fetchone() is None:
            cur.execute(f"create database {PG_DATABASE}")
    admin.close()


def _dbt(*args: str) -> dbtRunnerResult:
    return dbtRunner().invoke([*args, "--project-dir", str(DEMO), "--profiles-dir", str(DEMO)])


@pytest.fixture(scope="module")
def env():
    with pytest.MonkeyPatch.context() as patch:
        yield patch


@pytest.fixture(scope="module")
def duckdb_build(tmp_path_factory, env) -> Build:
    root = tmp_path_factory.mktemp("sql_duckdb")
    database = root / "demo.duckdb"
    env.setenv("DBT_SYNTH_DUCKDB_PATH", str(database))
    loader = _loader()
    loader.load_duckdb(str(database), loader.DEMO_TABLES)
    assert _dbt("deps", "--quiet").success
    result = _dbt("build", *STORE_OBSERVED, "--target-path", str(root / "target"))
    return Build(result, "duckdb", root)


@pytest.fixture(scope="module")
def postgres_build(tmp_path_factory, env, duckdb_build) -> Build:
    _require_postgres()
    root = tmp_path_factory.mktemp("sql_postgres")
    env.setenv("DBT_SYNTH_PG_DBNAME", PG_DATABASE)
    loader = _loader()
    loader.load_postgres(loader.DEMO_TABLES, str(duckdb_build.root / "demo.duckdb"))
    result = _dbt(
        "build", "--target", "postgres", *STORE_OBSERVED, "--target-path", str(root / "target")
    )
    return Build(result, "postgres", root)


def _count_rows(build: Build, relation: str) -> int:
    if build.count_rows is not None:
        return build.count_rows(relation)
    if build.target == "duckdb":
        with duckdb.connect(str(build.root / "demo.duckdb")) as con:
            return con.execute(f"select count(*) from {relation}").fetchone()[0]
    with _pg_connect(PG_DATABASE) as pg, pg.cursor() as cur:
        cur.execute(f"select count(*) from {relation}")
        return cur.fetchone()[0]


def _generic_test_failures(build: Build) -> dict[tuple[str, str], tuple[str, int]]:
    """(twin model, generic test) -> (status, failing rows stored by store_failures)."""
    assert build.result.success, build.result.exception or [
        (r.node.name, r.message) for r in build.result.result.results if str(r.status) != "pass"
    ]
    outcomes = {}
    for r in build.result.result.results:
        metadata = getattr(r.node, "test_metadata", None)
        if metadata is None or metadata.namespace != "dbt_synth":
            continue
        model = r.node.attached_node.split(".")[-1]
        if model not in CAUGHT_BY:
            continue
        outcomes[(model, metadata.name)] = (str(r.status), _count_rows(build, r.node.relation_name))
    return outcomes


def _assert_bad_twins_caught(build: Build) -> None:
    outcomes = _generic_test_failures(build)
    expected = {(m, t) for m in CAUGHT_BY for t in GENERIC_TESTS}
    assert set(outcomes) == expected
    flagged = {key for key, (_, failures) in outcomes.items() if failures > 0}
    assert flagged == {(m, t) for m, tests in CAUGHT_BY.items() for t in tests}
    # Expected catches are configured error_if/warn_if "=0": a caught bad twin is a PASS.
    assert {status for status, _ in outcomes.values()} == {"pass"}


def test_duckdb_flags_exactly_the_bad_twins_each_test_is_meant_for(duckdb_build):
    _assert_bad_twins_caught(duckdb_build)


def test_postgres_flags_exactly_the_bad_twins_each_test_is_meant_for(postgres_build):
    _assert_bad_twins_caught(postgres_build)


def _stored_failures(build: Build, model: str, test: str) -> list[tuple]:
    for r in build.result.result.results:
        metadata = getattr(r.node, "test_metadata", None)
        if metadata and metadata.name == test and r.node.attached_node.endswith("." + model):
            query = (
                "select column_name, metric, observed, threshold, detail "
                f"from {r.node.relation_name}"
            )
            with duckdb.connect(str(build.root / "demo.duckdb")) as con:
                return con.execute(query + " order by observed desc").fetchall()
    raise AssertionError(f"no {test} on {model}")


def test_failing_rows_name_column_metric_observed_and_threshold(duckdb_build):
    region = _stored_failures(duckdb_build, "twin_missing_category", "distribution_drift")
    assert [(c, m) for c, m, *_ in region] == [("region", "tvd")]
    # Dropping 'west' (21.6% of real rows) moves exactly that share of mass.
    assert region[0][2] == pytest.approx(0.216, abs=0.01)
    assert float(region[0][3]) == pytest.approx(0.1)
    shuffled = _stored_failures(duckdb_build, "twin_shuffled", "correlation_drift")
    pairs = {c: observed for c, m, observed, *_ in shuffled if m == "pearson_diff"}
    # Real corr(wage, education) is 0.30 and corr(education, experience) -0.29: both lost.
    assert pairs["wage, education"] > 0.2
    assert pairs["education, experience"] > 0.2
    leak = _stored_failures(duckdb_build, "twin_copy", "near_duplicate_leakage")
    assert leak[0][1] == "closer_to_train_gap" and leak[0][2] > 0.05
    copies = _stored_failures(duckdb_build, "twin_copy", "no_exact_copies")
    assert copies[0][1:3] == ("exact_copy_share", 1.0)
    # over_real_duplicates moves the bar by the real duplicate share, an exact aggregate: the
    # failing row shows max_share and says the share is not shown.
    assert float(copies[0][3]) == 0
    assert "real value not shown" in copies[0][4]
    assert f"{100 * _real_duplicate_share():.2f}" not in copies[0][4]


def _real_duplicate_share() -> float:
    frame = cps1988()
    return float(frame.duplicated(keep=False).mean())


def test_twin_is_fit_on_the_train_split_and_the_ledger_records_the_rule(duckdb_build):
    with duckdb.connect(str(duckdb_build.root / "demo.duckdb")) as con:
        holdout, rows_dp = con.execute(
            "select holdout, source_rows_dp from main_synth.synth_ledger "
            "where model = 'cps1988_twin'"
        ).fetchone()
        (train_rows,) = con.execute("select count(*) from main.twin_copy").fetchone()
    assert json.loads(holdout)["share"] == 0.2
    assert json.loads(holdout)["key"] == "whole row"
    # 80% of 28,155 rows, up to sampling of the hash split; the DP count is within a few dozen.
    assert abs(train_rows - 0.8 * 28155) < 300
    assert abs(rows_dp - train_rows) < 200


def _train_rows_python() -> list[tuple]:
    from dbt_synth.holdout import is_held_out
    from dbt_synth.schema import ColumnKind

    frame = cps1988()
    kinds = [
        ColumnKind.FLOAT
        if c == "wage"
        else ColumnKind.INTEGER
        if c in ("education", "experience")
        else ColumnKind.STRING
        for c in frame.columns
    ]
    rows = [tuple(r) for r in frame.itertuples(index=False)]
    return sorted(r for r in rows if not is_held_out(r, kinds, 0.2))


def test_python_duckdb_and_postgres_agree_on_the_holdout_split(duckdb_build, postgres_build):
    python_train = _train_rows_python()
    with duckdb.connect(str(duckdb_build.root / "demo.duckdb")) as con:
        duck_train = sorted(con.execute("select * from main.twin_copy").fetchall())
    with _pg_connect(PG_DATABASE) as pg, pg.cursor() as cur:
        cur.execute("select * from public.twin_copy")
        pg_train = sorted(cur.fetchall())
    assert len(python_train) == len(duck_train) == len(pg_train)
    assert duck_train == python_train
    assert pg_train == python_train


def test_the_fit_time_filter_keeps_the_same_rows_as_the_sql_tests(duckdb_build):
    from dbt_synth.holdout import rule_for, train_filter_sql
    from dbt_synth.warehouse.duckdb import schema_from_duckdb

    with duckdb.connect(str(duckdb_build.root / "demo.duckdb")) as con:
        source = con.sql("select * from raw.cps1988")
        schema = schema_from_duckdb(source, table="cps1988")
        predicate = train_filter_sql(schema, rule_for(schema, 0.2))
        fit_rows = sorted(con.execute(f"select * from raw.cps1988 where {predicate}").fetchall())
        test_rows = sorted(con.execute("select * from main.twin_copy").fetchall())
    assert fit_rows == test_rows
