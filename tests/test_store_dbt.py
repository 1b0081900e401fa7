"""Fit once, sample many, on real DuckDB through dbt: rebuilds resample a stored fit for ε 0,
refits happen only when asked or when the config changed, and a source's lifetime budget holds.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import duckdb
import numpy as np
import pandas as pd
import pytest

from fixtures.real_data import cps1988
from tests.dbt_projects import REPO_ROOT, DbtProject, new_project, twin_model

SYNTH = {"epsilon": 1.0, "seed": 7, "mechanism": "marginal"}


def _ledger(project: DbtProject) -> pd.DataFrame:
    return project.frame("select * from main.synth_ledger order by finished_at")


def _twin(project: DbtProject) -> pd.DataFrame:
    return project.frame("select * from main.cps_twin")


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> DbtProject:
    project = new_project(tmp_path_factory.mktemp("store"), {"cps": []})
    project.load("cps", cps1988().sample(2500, random_state=4))
    project.write("models/cps_twin.py", twin_model("cps", SYNTH))
    result = project.dbt("run", "--select", "cps_twin")
    assert result.success, result.exception
    return project


def test_a_rebuild_resamples_the_stored_fit_for_nothing(project):
    first = _twin(project)
    result = project.dbt("run", "--select", "cps_twin")
    assert result.success, result.exception
    ledger = _ledger(project)
    assert len(ledger) == 2
    fit, rebuild = ledger.iloc[0], ledger.iloc[1]
    assert fit["epsilon"] == pytest.approx(1.0, rel=1e-3) and rebuild["epsilon"] == 0.0
    assert ledger["epsilon"].sum() == fit["epsilon"]
    assert rebuild["resampled_from"] == fit["fit_id"] == rebuild["fit_id"]
    assert fit["refit_reason"] == "no stored fit of this twin"
    assert pd.isna(rebuild["refit_reason"]) and rebuild["sampling_seed_fixed"]
    # Same stored fit, same sampling seed: the same rows.
    assert _twin(project).equals(first)
    (models,) = project.query("select count(*) from main.synth_models")[0]
    assert models == 1


def test_without_a_seed_a_rebuild_is_a_fresh_sample_of_the_same_fit(project):
    before = _twin(project)
    project.write("models/cps_twin.py", twin_model("cps", {**SYNTH, "seed": None}))
    try:
        result = project.dbt("run", "--select", "cps_twin")
    finally:
        project.write("models/cps_twin.py", twin_model("cps", SYNTH))
    assert result.success, result.exception
    after, ledger = _twin(project), _ledger(project)
    assert ledger.iloc[-1]["epsilon"] == 0.0 and not ledger.iloc[-1]["sampling_seed_fixed"]
    assert not after.equals(before)
    for column in ("ethnicity", "region", "parttime", "smsa"):
        shares = pd.concat(
            [
                before[column].value_counts(normalize=True),
                after[column].value_counts(normalize=True),
            ],
            axis=1,
        ).fillna(0.0)
        # Two samples of one model: only sampling noise apart (n ≈ 2500).
        assert 0.5 * np.abs(shares.iloc[:, 0] - shares.iloc[:, 1]).sum() < 0.05, column


def test_changing_epsilon_refits(project):
    project.write("models/cps_twin.py", twin_model("cps", {**SYNTH, "epsilon": 1.5}))
    try:
        result = project.dbt("run", "--select", "cps_twin")
    finally:
        project.write("models/cps_twin.py", twin_model("cps", SYNTH))
    assert result.success, result.exception
    last = _ledger(project).iloc[-1]
    assert last["refit_reason"] == "config or source schema changed since the stored fit"
    assert last["epsilon"] == pytest.approx(1.5, rel=1e-3)
    assert pd.isna(last["resampled_from"])


def test_synth_refit_var_refits(project):
    result = project.dbt("run", "--select", "cps_twin", "--vars", "{synth_refit: true}")
    assert result.success, result.exception
    last = _ledger(project).iloc[-1]
    assert last["refit_reason"] == "refit requested (synth_refit)"
    assert last["epsilon"] == pytest.approx(1.0, rel=1e-3)
    fit_ids = project.query("select fit_id from main.synth_models")
    ledger_fits = _ledger(project).query("epsilon > 0")["fit_id"]
    # Every stored model is paid for by a ledger row; no fit id twice.
    assert {f for (f,) in fit_ids} <= set(ledger_fits)
    assert ledger_fits.is_unique


def test_a_refit_policy_refits_a_stored_fit_older_than_its_period(project):
    policy = {**SYNTH, "refit": {"every": "7 days"}}
    project.write("models/cps_twin.py", twin_model("cps", policy))
    try:
        # A policy is no part of the fit: the stored fit (days old at most) is resampled.
        fresh = project.dbt("run", "--select", "cps_twin")
        # The stored fits made 8 days older, in the warehouse (no sleeping).
        project.execute("update main.synth_models set created_at = created_at - interval 8 days")
        expired = project.dbt("run", "--select", "cps_twin")
        again = project.dbt("run", "--select", "cps_twin")
    finally:
        project.write("models/cps_twin.py", twin_model("cps", SYNTH))
    assert fresh.success and expired.success and again.success
    fresh_row, expired_row, again_row = (row for _, row in _ledger(project).tail(3).iterrows())
    assert fresh_row["epsilon"] == 0.0 and fresh_row["resampled_from"] is not None
    assert expired_row["refit_reason"] == "stored fit older than the refit policy"
    assert expired_row["epsilon"] == pytest.approx(1.0, rel=1e-3)
    assert pd.isna(expired_row["resampled_from"])
    # The refit's fit is new, so the next build resamples it.
    assert again_row["epsilon"] == 0.0 and again_row["resampled_from"] == expired_row["fit_id"]


def test_a_refit_past_max_total_epsilon_fails_and_keeps_twin_and_ledger(project):
    before, ledger_before = _twin(project), _ledger(project)
    spent = ledger_before.query("source == 'cps'")["epsilon"].sum()
    capped = {**SYNTH, "max_total_epsilon": round(float(spent) + 0.5, 3)}
    project.write("models/cps_twin.py", twin_model("cps", capped))
    try:
        result = project.dbt("run", "--select", "cps_twin", "--vars", "{synth_refit: true}")
    finally:
        project.write("models/cps_twin.py", twin_model("cps", SYNTH))
    assert not result.success
    message = str(result.result.results[0].message)
    assert "model 'cps_twin'" in message and "source 'cps' has spent ε=" in message
    assert f"asks ε=1: that passes its max_total_epsilon={capped['max_total_epsilon']:g}" in message
    assert "Fix:" in message
    assert _twin(project).equals(before)
    assert _ledger(project).equals(ledger_before)


_BUILD = """
import os, sys
from dbt.cli.main import dbtRunner
import dbt_synth.store.table as table
import dbt_synth.warehouse.duckdb as duck

def die(*args, **kwargs):
    os._exit(17)

if sys.argv[1] == "before_ledger":
    duck.DuckDBWarehouse.materialise = die
elif sys.argv[1] == "after_ledger":
    table.ModelStore.save = die
result = dbtRunner().invoke(["run", "--select", "cps_twin", "--vars", "{synth_refit: true}",
                             "--project-dir", sys.argv[2], "--profiles-dir", sys.argv[2]])
sys.exit(0 if result.success else 1)
"""


def _build_in_process_of_its_own(project: DbtProject, die_at: str) -> int:
    """A dbt run in a subprocess (no test process holds the DuckDB file), killed at `die_at`."""
    run = subprocess.run(
        [sys.executable, "-c", _BUILD, die_at, str(project.root)],
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
    )
    return run.returncode


@pytest.mark.parametrize("point", ["before_ledger", "after_ledger"])
def test_a_build_killed_mid_way_never_leaves_a_model_no_ledger_row_paid_for(tmp_path, point):
    project = new_project(tmp_path, {"cps": []})
    project.load("cps", cps1988().sample(1500, random_state=6))
    project.write("models/cps_twin.py", twin_model("cps", SYNTH))
    assert _build_in_process_of_its_own(project, "nowhere") == 0
    ledger_before = _ledger(project)
    assert _build_in_process_of_its_own(project, point) == 17
    ledger = _ledger(project)
    models = {f for (f,) in project.query("select fit_id from main.synth_models")}
    assert models <= set(ledger.query("epsilon > 0")["fit_id"])
    if point == "before_ledger":
        assert ledger.equals(ledger_before) and len(models) == 1
    else:
        # The fit is paid for in the ledger; its model never reached the store.
        assert len(ledger) == len(ledger_before) + 1
        assert ledger.iloc[-1]["fit_id"] not in models


_HOLD = """
import pathlib, sys, time
from dbt.cli.main import dbtRunner
import dbt_synth.store.build as build

checked, go = pathlib.Path(sys.argv[2]) / "checked", pathlib.Path(sys.argv[2]) / "go"
real_check = build.check_budget

def check_then_wait(*args, **kwargs):
    real_check(*args, **kwargs)
    checked.touch()
    deadline = time.monotonic() + 120
    while not go.exists() and time.monotonic() < deadline:
        time.sleep(0.1)

build.check_budget = check_then_wait
result = dbtRunner().invoke(["run", "--select", "cps_twin", "--vars", "{synth_refit: true}",
                             "--project-dir", sys.argv[1], "--profiles-dir", sys.argv[1]])
sys.exit(0 if result.success else 1)
"""


def test_no_other_process_opens_the_duckdb_file_between_budget_check_and_spend(tmp_path):
    """The budget lock is per process; across processes DuckDB's file lock does the work: a
    dbt process holds the file open for the whole model, so no second process (a dbt build,
    or anything else) can read the ledger, let alone spend, between its check and its spend."""
    project = new_project(tmp_path / "project", {"cps": []})
    project.load("cps", cps1988().sample(1500, random_state=8))
    project.write("models/cps_twin.py", twin_model("cps", SYNTH))
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLD, str(project.root), str(tmp_path)],
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=REPO_ROOT,
    )
    try:
        deadline = time.monotonic() + 300
        while not (tmp_path / "checked").exists():
            assert holder.poll() is None and time.monotonic() < deadline, "no budget check"
            time.sleep(0.2)
        for read_only in (False, True):
            with pytest.raises(duckdb.IOException, match="lock"):
                duckdb.connect(str(project.database), read_only=read_only)
        second = project.dbt("run", "--select", "cps_twin")
        assert not second.success and "lock" in str(second.result or second.exception)
    finally:
        (tmp_path / "go").touch()
        assert holder.wait(timeout=300) == 0
    ledger = _ledger(project)
    assert len(ledger) == 1 and ledger.iloc[0]["epsilon"] > 0


def test_four_twins_built_on_four_threads_keep_ledger_and_store_consistent(tmp_path):
    names = ["a", "b", "c", "d"]
    project = new_project(tmp_path, {name: [] for name in names})
    data = cps1988().sample(1200, random_state=5)
    for name in names:
        project.load(name, data)
        project.write(f"models/{name}_twin.py", twin_model(name, {**SYNTH, "epsilon": 2.0}))
    for _ in range(2):
        result = project.dbt("run", "--threads", "4")
        assert result.success, result.exception
    ledger = project.frame("select * from main.synth_ledger")
    models = project.frame("select fit_id, model from main.synth_models")
    assert len(ledger) == 8 and len(models) == 4
    fits = ledger.query("epsilon > 0")
    assert sorted(fits["model"]) == [f"{n}_twin" for n in names]
    assert fits["fit_id"].is_unique and models["fit_id"].is_unique
    assert set(models["fit_id"]) == set(fits["fit_id"])
    resamples = ledger.query("epsilon == 0")
    assert set(resamples["resampled_from"]) == set(fits["fit_id"])
