"""Faults during a twin build, and determinism across processes and thread counts.

A build that dies mid-fit — an exception, Ctrl-C, or the OOM killer's SIGKILL — must leave the
previous twin and the ledger as they were: dbt swaps the new table in only on success, and the
ledger row is written only after the twin's values exist. The signals are sent to a real `dbt`
process while it logs that it is fitting.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from fixtures.real_data import cps1988
from tests.dbt_projects import REPO_ROOT, DbtProject, new_project, twin_model

SYNTH = {"epsilon": 1.0, "seed": 7}

# A twin model that raises after the mechanism has spent part of the budget: a failing mechanism
# registered by name and chosen in the model's own synth config, so the real pipeline runs it.
_FAILS_MID_FIT = """
import dbt_synth
from dbt_synth.mechanisms import register_mechanism
from dbt_synth.mechanisms.marginal import MarginalMechanism


class FailsMidFit(MarginalMechanism):
    def _fit(self, fit):
        fit.accountant.spend_gaussian("measurement", 30.0, detail="spent before the fault")
        raise RuntimeError("fault injected mid-fit")


register_mechanism("fails_mid_fit", FailsMidFit)


def model(dbt, session):
    dbt.config(materialized="table", synth={synth!r})
    return dbt_synth.twin(dbt, session, dbt.source("raw", "cps"), dbt.config.get("synth"))
"""


def _state(project: DbtProject) -> tuple[pd.DataFrame, list[tuple]]:
    twin = project.frame("select * from main.cps_twin")
    ledger = project.query("select model, epsilon, twin_rows from main.synth_ledger order by 1")
    return twin, ledger


def _project(root: Path) -> DbtProject:
    project = new_project(root, {"cps": []})
    project.load("cps", cps1988().sample(4000, random_state=0))
    project.write("models/cps_twin.py", twin_model("cps", SYNTH))
    return project


def _dbt_process(project: DbtProject) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "PYTHONUNBUFFERED": "1"}
    command = [str(Path(sys.executable).parent / "dbt"), "run", "--select", "cps_twin"]
    return subprocess.Popen(
        [*command, "--project-dir", str(project.root), "--profiles-dir", str(project.root)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        start_new_session=True,
    )


def _wait_for(process: subprocess.Popen, needle: str, timeout: float = 300) -> list[str]:
    seen = []
    deadline = time.monotonic() + timeout
    for line in process.stdout:
        seen.append(line)
        if needle in line or time.monotonic() > deadline:
            break
    return seen


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> DbtProject:
    """A project whose dbt runs all happen in subprocesses, so no process keeps the file open."""
    project = _project(tmp_path_factory.mktemp("faults"))
    process = _dbt_process(project)
    output, _ = process.communicate(timeout=600)
    assert process.returncode == 0, output
    return project


@pytest.mark.parametrize(
    ("signal_number", "name"), [(signal.SIGINT, "ctrl-c"), (signal.SIGKILL, "oom-killer")]
)
def test_a_build_killed_mid_fit_leaves_twin_and_ledger_consistent(project, signal_number, name):
    twin_before, ledger_before = _state(project)
    assert len(ledger_before) >= 1
    # The interrupted build would make a twin of another size: the table tells whose it is. An
    # ε of its own makes it refit (a new seed or row count alone would resample a stored fit,
    # and the other signal's build may have finished and stored one).
    refit = {**SYNTH, "epsilon": 1.0 + signal_number / 100, "seed": 8, "rows": 1234}
    project.write("models/cps_twin.py", twin_model("cps", refit))
    try:
        process = _dbt_process(project)
        seen = _wait_for(process, "fitting marginal")
        assert "fitting marginal" in seen[-1], "".join(seen)
        process.send_signal(signal_number)
        process.communicate(timeout=300)
    finally:
        project.write("models/cps_twin.py", twin_model("cps", SYNTH))
    assert process.returncode != 0, name
    twin_after, ledger_after = _state(project)
    if signal_number == signal.SIGKILL:
        # Nothing could finish: both are exactly as before.
        assert twin_after.equals(twin_before)
        assert ledger_after == ledger_before
    # Ctrl-C may land after the build has finished; either way the ledger's last row describes
    # the twin that is in the warehouse.
    if twin_after.equals(twin_before):
        assert ledger_after == ledger_before
    else:
        assert len(twin_after) == 1234
        assert len(ledger_after) == len(ledger_before) + 1
    (last_rows,) = project.query(
        "select twin_rows from main.synth_ledger order by finished_at desc limit 1"
    )[0]
    assert last_rows == len(twin_after)


def test_an_exception_mid_fit_keeps_the_previous_twin_and_ledger(tmp_path):
    project = _project(tmp_path)
    assert project.dbt("run", "--select", "cps_twin").success
    twin_before, ledger_before = _state(project)
    project.write(
        "models/cps_twin.py", _FAILS_MID_FIT.format(synth={**SYNTH, "mechanism": "fails_mid_fit"})
    )
    result = project.dbt("run", "--select", "cps_twin")
    assert not result.success
    assert "fault injected mid-fit" in str(result.result.results[0].message)
    twin_after, ledger_after = _state(project)
    assert twin_after.equals(twin_before)
    assert ledger_after == ledger_before
    assert len(ledger_after) == 1
    # The next good build resamples the stored fit and is the only other ledger row.
    project.write("models/cps_twin.py", twin_model("cps", SYNTH))
    assert project.dbt("run", "--select", "cps_twin").success
    # Resampled from the first build's stored fit with the same seed: the same rows.
    assert project.frame("select * from main.cps_twin").equals(twin_before)
    assert len(project.query("select * from main.synth_ledger")) == 2


# --- determinism ---------------------------------------------------------------------------------

_TWIN_DIGEST = """
import hashlib, sys
import duckdb, torch
import dbt_synth
from dbt_synth.noise import replayable_noise
from dbt_synth.warehouse.duckdb import schema_from_duckdb
from fixtures.real_data import cps1988

torch.set_num_threads(int(sys.argv[1]))
con = duckdb.connect()
con.execute(f"set threads = {sys.argv[2]}")
con.register("frame", cps1988().sample(3000, random_state=2))
con.execute("create table source as select * from frame")
source = con.table("source")
schema = schema_from_duckdb(source, con)
with replayable_noise(21):
    result = dbt_synth.synthesize(source.arrow().read_all(), schema=schema, epsilon=1.0, seed=21)
print(hashlib.sha256(result.table.to_pandas().to_csv(index=False).encode()).hexdigest())
"""


def _digest(torch_threads: int, duckdb_threads: int) -> str:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    out = subprocess.run(
        [sys.executable, "-c", _TWIN_DIGEST, str(torch_threads), str(duckdb_threads)],
        capture_output=True,
        text=True,
        env=env,
        check=True,
        cwd=REPO_ROOT,
    )
    return out.stdout.strip().splitlines()[-1]


def test_replayed_noise_gives_the_same_twin_across_processes_and_thread_counts():
    # Two separate processes: one thread each, then four torch and four DuckDB threads.
    digests = [_digest(torch, duck) for torch, duck in [(1, 1), (4, 4)]]
    assert len(set(digests)) == 1, digests
