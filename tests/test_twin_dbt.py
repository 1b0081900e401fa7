"""End to end: `dbt build` materialises a DP twin of a real table in DuckDB."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from fixtures.real_data import cps1988
from tests.dbt_projects import DbtProject, new_project, twin_model

SYNTH = {"epsilon": 1.0, "seed": 7}


def _split(frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Half the real rows to train the twin on, half held out to measure chance matches."""
    held_out = np.random.default_rng(0).random(len(frame)) < 0.5
    return frame[~held_out].reset_index(drop=True), frame[held_out].reset_index(drop=True)


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> DbtProject:
    project = new_project(tmp_path_factory.mktemp("twin_dbt"), {"cps1988": []})
    train, holdout = _split(cps1988())
    project.load("cps1988", train)
    project.load("cps1988_holdout", holdout)
    project.write("models/cps1988_twin.py", twin_model("cps1988", SYNTH))
    result = project.dbt("build", "--select", "cps1988_twin")
    assert result.success, result.exception
    return project


def _columns(project: DbtProject, schema: str, table: str) -> list[tuple]:
    return project.query(
        "select column_name, data_type from information_schema.columns "
        f"where table_schema = '{schema}' and table_name = '{table}' order by ordinal_position"
    )


def test_twin_has_the_source_columns_order_and_types(project):
    assert _columns(project, "main", "cps1988_twin") == _columns(project, "raw", "cps1988")


def test_twin_row_count_is_the_dp_estimate_of_the_source(project):
    (twin_rows,) = project.query("select count(*) from main.cps1988_twin")[0]
    (dp_rows,) = project.query("select source_rows_dp from main.synth_ledger")[0]
    assert twin_rows == round(dp_rows)
    # The DP count's noise at ε=1 is a few dozen rows, not thousands.
    (train_rows,) = project.query("select count(*) from raw.cps1988")[0]
    assert abs(twin_rows - train_rows) < 500


def test_twin_matches_training_rows_no_more_than_unseen_rows(project):
    # CPS1988 repeats many rows (small integers, four categories), so a faithful twin equals
    # some real rows by chance. Copying would show as more matches with the rows it was trained
    # on than with held-out rows drawn from the same population. Whole rows (wages in cents)
    # meet by chance 7-60 times a fit (4 in-process fits), now and then not at all; without the
    # wage they always do, so that comparison is never empty.
    def matches(table: str, columns: str) -> int:
        return project.query(
            f"select count(*) from (select {columns} from main.cps1988_twin "
            f"intersect select {columns} from raw.{table})"
        )[0][0]

    for columns in ("*", "* exclude (wage)"):
        trained, held_out = matches("cps1988", columns), matches("cps1988_holdout", columns)
        assert trained <= 1.25 * held_out + 20, (columns, trained, held_out)
    assert held_out > 0, "the chance baseline should not be empty without the wage"


def test_twin_keeps_nulls_absent_where_the_source_has_none(project):
    (nulls,) = project.query(
        "select count(*) from main.cps1988_twin where wage is null or region is null"
    )[0]
    assert nulls == 0


def test_ledger_records_the_build_within_budget(project):
    rows = project.frame("select * from main.synth_ledger")
    assert len(rows) == 1
    entry = rows.iloc[0]
    assert entry["model"] == "cps1988_twin"
    assert entry["source"] == "cps1988"
    assert entry["mechanism"] == "marginal"
    assert entry["invocation_id"]
    assert entry["epsilon"] <= SYNTH["epsilon"] * (1 + 1e-6)
    assert entry["epsilon"] >= 0.95 * SYNTH["epsilon"]
    assert 0 < entry["delta"] < 1e-4
    assert entry["finished_at"] >= entry["started_at"]
    assert entry["sample_rate"] == 1.0  # 14k rows: well under max_fit_rows
    parts = {spend["part"] for spend in json.loads(entry["spends"])}
    assert {"count", "domain", "selection", "measurement"} <= parts
    assert 0 < entry["epsilon_domains"] < entry["epsilon"]


def test_a_fixed_seed_does_not_replay_the_noise_of_a_refit(project):
    before = project.frame("select * from main.cps1988_twin")
    result = project.dbt("run", "--select", "cps1988_twin", "--vars", "{synth_refit: true}")
    assert result.success, result.exception
    after = project.frame("select * from main.cps1988_twin")
    assert not before.equals(after)
    ledger = project.frame("select * from main.synth_ledger")
    assert len(ledger) == 2
    assert ledger["sampling_seed_fixed"].all() and not ledger["noise_replayed"].any()


def test_a_failing_build_keeps_the_previous_twin_and_ledger(project, capsys):
    before = project.frame("select * from main.cps1988_twin")
    ledger_before = project.query("select count(*) from main.synth_ledger")[0]
    project.write("models/cps1988_twin.py", twin_model("cps1988", {"epsilon": -1}))
    try:
        result = project.dbt("run", "--select", "cps1988_twin")
    finally:
        project.write("models/cps1988_twin.py", twin_model("cps1988", SYNTH))
    assert not result.success
    message = str(result.result.results[0].message)
    assert "model 'cps1988_twin'" in message
    assert "epsilon must be a positive finite number" in message
    assert "Fix:" in message
    assert project.frame("select * from main.cps1988_twin").equals(before)
    assert project.query("select count(*) from main.synth_ledger")[0] == ledger_before
