"""The fit on Spark alone: what reaches the driver and how long the DP releases take.

Reads the stacked flights parquet of `bench/spark/run.py` (built by it with DuckDB if absent),
fits a twin on Spark local[2] (`synthesize` on `SparkWarehouse.source_rows`) and prints one
JSON line: fit seconds, seconds until the mechanism starts (the count, the sample and every
domain release), rows fetched to the driver and, of those, rows of aggregate results. Run it
from a checkout to measure that checkout's dbt_synth (e.g. before and after a change):

    python bench/spark/fit_counts.py [--copies 30] [--max-fit-rows 100000] [--mechanism auto]
        [--columns month,day,...] [--pairs-first]

`--columns` fits a twin of those columns only (≤ 10 modelled: `auto` picks the marginal
mechanism, whose counts Spark computes where every column's codes have a SQL form:
`dbt_synth.pushdown_marginals`); `--pairs-first` expands every row into the pairs' grouping
sets instead of grouping the distinct rows of codes first (to compare the two).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from run import REPO, _stack  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--copies", type=int, default=30)
    parser.add_argument("--epsilon", type=float, default=1.0)
    parser.add_argument("--max-fit-rows", type=int, default=100_000)
    parser.add_argument("--mechanism", default="auto")
    parser.add_argument("--out", type=Path, default=REPO / "bench/out/spark")
    parser.add_argument("--columns", default=None)
    parser.add_argument("--pairs-first", action="store_true")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    source = args.out / f"flights_x{args.copies}.parquet"
    if not source.exists():
        _stack(source, args.copies)

    from dbt_synth import synthesize
    from dbt_synth.warehouse import create

    os.environ.setdefault("DBT_SYNTH_SPARK_DIR", str(args.out / "spark_local"))
    sys.path.insert(0, str(REPO / "integration_tests" / "scripts"))
    from spark_session import local_session

    load = os.getloadavg()[0]
    started_at = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    session = local_session()
    relation = session.read.parquet(str(source))
    if args.columns:
        relation = relation.select(*args.columns.split(","))
    if args.pairs_first:
        import dbt_synth.pushdown_marginals as marginals

        marginals._GROUP_FIRST = False
    warehouse = create(session)
    schema = warehouse.schema(relation)
    said: list[tuple[float, str]] = []
    started = time.perf_counter()

    def progress(message: str) -> None:
        said.append((time.perf_counter() - started, message))
        print(f"{said[-1][0]:7.1f}s {message}", file=sys.stderr, flush=True)

    result = synthesize(
        warehouse.source_rows(relation),
        schema=schema,
        config={
            "epsilon": args.epsilon,
            "max_fit_rows": args.max_fit_rows,
            "mechanism": args.mechanism,
        },
        progress=progress,
    )
    fit = time.perf_counter() - started
    releases = next((t for t, m in said if m.startswith("fitting ")), fit)
    print(
        json.dumps(
            {
                "dbt_synth": str(Path(sys.modules["dbt_synth"].__file__).parents[1]),
                "started": started_at,
                "load_1min_at_start": round(load, 1),
                "load_1min_at_end": round(os.getloadavg()[0], 1),
                "source_rows": result.rows_estimate.__round__(),
                "mechanism": result.mechanism,
                "sample_rate": round(result.sample_rate, 4),
                "fit_s": round(fit, 1),
                "until_mechanism_s": round(releases, 1),
                "columns": len(schema.columns),
                "progress": [(round(t, 1), m) for t, m in said if not m.startswith("round ")],
                "fetched_rows": warehouse.fetched_rows,
                "aggregate_rows": getattr(warehouse, "aggregated_rows", None),
                "numeric_bins": {
                    c.name: c.codes for c in result.columns if c.treatment.startswith("numeric")
                },
            }
        )
    )


if __name__ == "__main__":
    main()
