"""DP-SGD settings on loans (54 columns) at one ε: train-on-synthetic AUC and 2-way TVD.

    PYTHONPATH=. python bench/dpsgd/loans_sweep.py --epsilon 1 --seeds 0 1 \
        --set '{"max_sample_rate": 0.05, "epochs": 20}' --set '{}'

Each `--set` is a JSON dict of `DPSGDMechanism` fields (a key `domain_share` goes to the synth
config instead). Fits the fidelity benchmark's loans train split in-process with `mechanism:
dpsgd`, each seed's fit noise replayed (`replayable_noise`: settings compare on the same draws;
not private), and scores the twin as the runner does (`bench/fidelity/metrics.py`).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from dataclasses import replace

import numpy as np
import pandas as pd

from bench.fidelity.data import prepare
from bench.fidelity.metrics import fidelity, utility_auc
from bench.fidelity.runner import OUT
from dbt_synth import synthesize
from dbt_synth.mechanisms import register_mechanism
from dbt_synth.mechanisms.dpsgd import DPSGDMechanism
from dbt_synth.noise import replayable_noise


def register(settings: dict) -> tuple[str, list[DPSGDMechanism]]:
    """Register `DPSGDMechanism` with `settings` as a mechanism name; the list gets each one
    built (to read its plan)."""
    built: list[DPSGDMechanism] = []

    def build() -> DPSGDMechanism:
        built.append(replace(DPSGDMechanism(), **settings))
        return built[-1]

    register_mechanism("dpsgd_sweep", build)
    return "dpsgd_sweep", built


def run(train, holdout, dataset, epsilon: float, seed: int, settings: dict) -> dict:
    settings = dict(settings)
    synth = {k: settings.pop(k) for k in ("domain_share",) if k in settings}
    _, plans = register(settings)
    config = {"epsilon": epsilon, "delta": 1e-5, "rows": len(train), "seed": seed}
    started = time.perf_counter()
    with replayable_noise(seed):
        result = synthesize(
            train, config={**config, **synth, "mechanism": "dpsgd_sweep", "verbose": False}
        )
        twin = result.table.to_pandas()
    seconds = time.perf_counter() - started
    categorical = set(dataset.categorical)
    scores = fidelity(train, twin, categorical)
    task = dataset.task
    categories = {c.name: list(c.categories) for c in dataset.columns if c.categories}
    auc = utility_auc(
        twin, holdout, target=task.column, threshold=task.threshold, drop=task.drop,
        categorical=categorical, categories=categories,
    )  # fmt: skip
    plan = plans[-1].plan
    return {
        "seed": seed,
        "auc": round(auc, 4),
        "tvd_2way": round(scores.tvd_2way, 4),
        "tvd_1way": round(scores.tvd_1way, 4),
        "s": round(seconds, 1),
        "q": round(plan.sample_rate, 4),
        "steps": plan.steps,
        "sigma": round(plan.noise_multiplier, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epsilon", type=float, default=1.0)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1])
    parser.add_argument("--set", action="append", default=None, help="JSON settings")
    args = parser.parse_args()
    data_dir = OUT / "data" / "loans"
    dataset = prepare("loans", data_dir)
    train = pd.read_parquet(data_dir / "train.parquet")
    holdout = pd.read_parquet(data_dir / "holdout.parquet")
    for raw in args.set or ["{}"]:
        settings = json.loads(raw)
        rows = [run(train, holdout, dataset, args.epsilon, s, settings) for s in args.seeds]
        for row in rows:
            print(json.dumps({"set": settings, **row}), flush=True)
        mean = {k: round(float(np.mean([r[k] for r in rows])), 4) for k in ("auc", "tvd_2way", "s")}
        print(f"MEAN ε={args.epsilon:g} {raw}: {json.dumps(mean)} load {os.getloadavg()[0]:.1f}",
              flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
