"""Benchmark: the movielens fixture (99 users, 150 movies, 400 ratings) on its twins at ε = 1.

    PYTHONPATH=. python bench/small_tables/run.py --builds 3 --out bench/small_tables/results.json

Per build, from scratch in a temp copy of integration_tests/movielens: `dbt build` of the real
project, `dbt-synth init --select resource_type:seed`, then `dbt build --vars 'synth: true'`
(timed: it fits the three twins and runs every model and test on them). Then, per twin and
column, the report's drift figures (`dbt_synth.report.build_report`, from aggregates the
warehouse computes: TVD of the real and twin histograms or category shares, NULLs included)
and the ledger's column treatment (which columns fell back to a coarser DP answer). DP noise
is fresh in every build, so `--builds` gives the spread.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

import duckdb
from dbt.cli.main import dbtRunner
from typer.testing import CliRunner

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from dbt_synth.cli import app
from dbt_synth.cli.dbt_project import DbtProject
from dbt_synth.cli.reporting import query_records
from dbt_synth.report import build_report

REPO = Path(__file__).resolve().parents[2]
FIXTURE = REPO / "integration_tests" / "movielens"
SEEDS = ("raw_users", "raw_movies", "raw_ratings")
MARTS = ("users", "movies", "ratings")


def one_build(workdir: Path) -> dict:
    """A fresh copy of the fixture built real, initialised, and built in synth mode."""
    root = workdir / "project"
    shutil.copytree(FIXTURE, root, ignore=shutil.ignore_patterns("target", "dbt_packages", "logs"))
    (root / "packages.yml").write_text(f"packages:\n  - local: {REPO}\n")
    database = root / "movielens.duckdb"
    os.environ["DBT_SYNTH_DUCKDB_PATH"] = str(database)
    flags = ["--project-dir", str(root), "--profiles-dir", str(root)]
    assert dbtRunner().invoke(["deps", "--quiet", *flags]).success
    assert dbtRunner().invoke(["build", "--quiet", *flags]).success
    init = CliRunner().invoke(app, ["init", "--select", "resource_type:seed", *flags])
    assert init.exit_code == 0, init.output
    started = time.perf_counter()
    build = dbtRunner().invoke(["build", "--quiet", "--vars", "synth: true", *flags])
    seconds = time.perf_counter() - started
    statuses = [str(r.status) for r in build.result.results]
    nodes = {r.node.name: r.node for r in build.result.results}
    twins = {}
    project = DbtProject(root, root)
    reports = {
        seed: build_report(
            f"{seed}_twin", seed, query_records(project), f"ref('{seed}')", f"ref('{seed}_twin')"
        )
        for seed in SEEDS
    }
    with duckdb.connect(str(database)) as con:
        for seed in SEEDS:
            twin = nodes[f"{seed}_twin"]
            (treatments,) = con.execute(
                f'select column_treatments from "{twin.schema}".synth_ledger '
                "where model = ? order by finished_at desc limit 1",
                [twin.name],
            ).fetchone()
            report = reports[seed]
            twins[seed] = {
                "real_rows": report.real_rows,
                "twin_rows": report.twin_rows,
                "columns": {
                    c.name: {"tvd": c.tvd, "treatment": json.loads(treatments)[c.name]}
                    for c in report.columns
                },
            }
    return {
        "build_seconds": seconds,
        "passed": statuses.count("pass"),
        "failed": sum(s in ("fail", "error") for s in statuses),
        "warned": statuses.count("warn"),
        "twins": twins,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--builds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("bench/small_tables/results.json"))
    args = parser.parse_args()
    runs = []
    for i in range(args.builds):
        with tempfile.TemporaryDirectory(prefix="small_tables_") as tmp:
            runs.append(one_build(Path(tmp)))
        print(f"build {i + 1}: {runs[-1]['build_seconds']:.1f}s", flush=True)
    result = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "load_1min": os.getloadavg()[0],
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "runs": runs,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
