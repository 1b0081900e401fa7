"""The generic tests never write a value read from the real table into compiled SQL, logs or
stored failures ("exact aggregates are never written to tables, logs or store_failures").

A small DuckDB project whose real table has planted, distinctive values: 12-digit amounts (so
every ntile cut point is a string no log line holds by chance), categories named `zxqv_…` (the
most frequent planted as the top category) and dates in 2041. The binning tests
(correlation_drift, near_duplicate_leakage) learn their cut points and top categories from that
table; before the fix they fetched them with run_query and inlined them into the test's SQL.
The same build checks that the tests still flag the planted bad twins.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pandas as pd
import pytest

from tests.dbt_projects import DbtProject, new_project

ROWS = 2000
BASE = 987_654_321_000
STEP = 1_000_003
CATEGORIES = ["zxqv_most_common"] + [f"zxqv_cat_{k:02d}" for k in range(12)]

# Category follows the amount: the first 40% of amounts are the top category, then blocks.
SHUFFLED = """
with t as (select *, row_number() over (order by amount) as rn from {{ source('raw', 'real') }}),
     s as (select category, row_number() over (order by md5(cast(amount as varchar))) as rn
           from {{ source('raw', 'real') }})
select t.amount, s.category, t.day, t.flag from t join s on t.rn = s.rn
"""
# Drops every row of the most frequent category without naming it in the SQL.
MISSING = "select * from {{ source('raw', 'real') }} where category not like '%most%'"

TESTS = """
      - dbt_synth.distribution_drift:
          name: drift_{twin}
          arguments: {{compare_model: "source('raw', 'real')"}}
          config: {{store_failures: true}}
      - dbt_synth.correlation_drift:
          name: corr_{twin}
          arguments: {{compare_model: "source('raw', 'real')", bins: 5}}
          config: {{store_failures: true}}
      - dbt_synth.near_duplicate_leakage:
          name: leak_{twin}
          arguments:
            compare_model: "source('raw', 'real')"
            quasi_identifiers: [amount, category, day, flag]
          config: {{store_failures: true, severity: warn}}
"""
TWINS = ("twin_same", "twin_shuffled", "twin_missing")


def _real() -> pd.DataFrame:
    i = pd.RangeIndex(ROWS)
    top = int(0.4 * ROWS)
    block = (ROWS - top) // 12 + 1
    category = [CATEGORIES[0] if k < top else CATEGORIES[1 + (k - top) // block] for k in i]
    return pd.DataFrame(
        {
            "amount": [BASE + k * STEP for k in i],
            "category": category,
            "day": [dt.date(2041, 1, 1) + dt.timedelta(days=k % 365) for k in i],
            "flag": [k % 3 == 0 for k in i],
        }
    )


def _planted() -> list[str]:
    """Every distinct real value as text: amounts, categories and dates."""
    real = _real()
    return (
        [str(v) for v in real["amount"]] + CATEGORIES + sorted({d.isoformat() for d in real["day"]})
    )


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> DbtProject:
    project = new_project(tmp_path_factory.mktemp("sql_no_real_values"), {"real": []})
    project.load("real", _real())
    project.write("models/twin_same.sql", "select * from {{ source('raw', 'real') }}")
    project.write("models/twin_shuffled.sql", SHUFFLED)
    project.write("models/twin_missing.sql", MISSING)
    tests = "".join(f"  - name: {t}\n    data_tests:{TESTS.format(twin=t)}" for t in TWINS)
    project.write("models/schema.yml", "version: 2\nmodels:\n" + tests)
    project.result = project.dbt("build")
    return project


def _outcomes(project: DbtProject) -> dict[str, tuple[str, int, object]]:
    results = project.result.result.results
    return {r.node.name: (str(r.status), r.failures, r.node) for r in results}


def _written_text(root: Path) -> dict[Path, str]:
    """Every file dbt wrote: compiled and run SQL under target/, and logs/dbt.log."""
    files = [*(root / "target").rglob("*.sql"), root / "logs" / "dbt.log"]
    return {path: path.read_text(errors="replace") for path in files}


def test_the_tests_still_flag_the_planted_bad_twins(project):
    outcomes = _outcomes(project)
    assert outcomes["drift_twin_same"][:2] == ("pass", 0)
    assert outcomes["corr_twin_same"][:2] == ("pass", 0)
    # Shuffling category loses its dependence on amount (and day), not its marginal.
    assert outcomes["drift_twin_shuffled"][:2] == ("pass", 0)
    status, failures, node = outcomes["corr_twin_shuffled"]
    assert status == "fail" and failures >= 1
    pairs = project.query(f"select column_name, metric, observed from {node.relation_name}")
    assert ("amount, category", "tvd_2way") in {(c, m) for c, m, _ in pairs}
    status, _, node = outcomes["drift_twin_missing"]
    assert status == "fail"
    assert ("category", "tvd") in {
        tuple(r) for r in project.query(f"select column_name, metric from {node.relation_name}")
    }
    # near_duplicate_leakage ran (its catching of copies is test_sql_tests' twin_copy).
    assert outcomes["leak_twin_same"][0] in ("pass", "warn")


def test_stored_failing_rows_hold_no_observed_figure_by_default(project):
    """A stored row's `observed` is a distance computed exactly from real rows: NULL unless the
    project opts in (`dbt_synth_store_observed`); the row still names column and metric."""
    stored = 0
    for name, (_status, failures, node) in _outcomes(project).items():
        if failures:
            rows = project.query(f"select column_name, metric, observed from {node.relation_name}")
            assert rows and all(observed is None for _, _, observed in rows), name
            stored += len(rows)
    assert stored >= 3


def test_no_real_value_is_in_compiled_sql_or_the_log(project):
    written = _written_text(project.root)
    log = written[project.root / "logs" / "dbt.log"]
    # The check can fail: the log and target/ hold the tests' SQL, cut-point CTEs included.
    assert "bin_cuts" in log
    assert any("bin_cuts" in text for path, text in written.items() if "corr_" in path.name)
    leaks = {
        (path.name, value)
        for path, text in written.items()
        for value in _planted()
        if value in text
    }
    assert leaks == set()


def test_stored_failures_hold_no_real_value(project):
    planted = set(_planted())
    stored = [node for status, _, node in _outcomes(project).values() if status in ("fail", "warn")]
    assert len(stored) >= 3
    for node in stored:
        for row in project.query(f"select * from {node.relation_name}"):
            assert not {str(cell) for cell in row} & planted, (node.name, row)
            assert not any(value in str(cell) for cell in row for value in planted)
            # Nor a real aggregate in the explanation (real correlations, NULL rates).
            assert not re.search(r"real -?[0-9]", str(row)), (node.name, row)


# Last: it rebuilds one stored table with the opt-in.
def test_a_project_that_opts_in_stores_the_observed_figure(project):
    opted = project.dbt(
        "test", "--select", "drift_twin_missing", "--vars", "{dbt_synth_store_observed: true}"
    )
    node = next(r.node for r in opted.result.results if r.node.name == "drift_twin_missing")
    tvd = project.query(
        f"select observed from {node.relation_name} where column_name = 'category' "
        "and metric = 'tvd'"
    )
    # The top category (40% of rows) is gone: its TVD is 0.4.
    assert tvd[0][0] == pytest.approx(0.4, abs=1e-9)
