"""One dbt-synth run (`mechanism: marginal` or `dpsgd`), in the product's own environment.

Runs as a subprocess of `runner.py` with the repository on PYTHONPATH. Reads the shared train
parquet and spec.json, writes the synthetic parquet and a stats json. `--domains public` declares
the spec's category lists and min/max as public column facts (0 ε, as every arm gets them);
`--domains dp` is the product default, where the domains are learned under DP from the same ε.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import pandas as pd

from dbt_synth import synthesize


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mechanism", choices=["marginal", "dpsgd"], required=True)
    parser.add_argument("--domains", choices=["public", "dp"], default="public")
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--epsilon", type=float, required=True)
    parser.add_argument("--delta", type=float, required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()

    spec = json.loads((args.data / "spec.json").read_text())
    train = pd.read_parquet(args.data / "train.parquet")
    config = {
        "epsilon": args.epsilon,
        "delta": args.delta,
        "seed": args.seed,
        "mechanism": args.mechanism,
        "rows": len(train),
        "verbose": False,
    }
    if args.domains == "public":
        config["columns"] = {c["name"]: _public(c, train[c["name"]]) for c in spec["columns"]}
    started = time.perf_counter()
    result = synthesize(train, config=config, model=f"bench_{spec['name']}")
    fit_s = time.perf_counter() - started
    started = time.perf_counter()
    twin = result.table  # the twin's rows are generated lazily, on first access
    sample_s = time.perf_counter() - started
    args.out.mkdir(parents=True, exist_ok=True)
    twin.to_pandas().to_parquet(args.out / "synthetic.parquet", index=False)
    stats = {
        "fit_s": fit_s,
        "sample_s": sample_s,
        "epsilon_spent": result.epsilon,
        "delta": result.delta,
        "columns": {c.name: c.treatment for c in result.columns},
    }
    (args.out / "stats.json").write_text(json.dumps(stats))


def _public(column: dict, values: pd.Series) -> dict:
    if column["kind"] == "numeric":
        return {"min": column["min"], "max": column["max"]}
    # The public list in the column's own type (strings here), as the warehouse would hold it.
    kept = sorted(values.dropna().unique().tolist(), key=str)
    assert [str(v) for v in kept] == list(column["categories"]), column["name"]
    return {"categories": kept}


if __name__ == "__main__":
    main()
