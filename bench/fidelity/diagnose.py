"""Where the default's 2-way error comes from: the estimator, or the numeric codes themselves.

    python -m bench.fidelity.diagnose [--epsilon 1] [--seeds 0 1 2] [--set '{"max_bins": 10}']
    python -m bench.fidelity.diagnose --scorebins [--epsilon 3] [--seeds 0 1 2]

Fits the product default (`mechanism: auto`, DP domains, nothing declared) on the CPS 1988 train
split in-process, with the fit's noise replayed from each seed (`replayable_noise`: comparable
across settings, not private), and scores the twin as the runner does. Two reference tables
separate the error's sources, each scored on the same 10 real-data quantile bins:

- `decoded`: the real rows encoded with the fit's own column models and decoded again, i.e. what
  the twin would score if the estimator were exact at the code level. Its error is the numeric
  columns' within-bin decoding (the DP tree's leaf masses) alone.
- `shuffled`: the real values shuffled within each of our numeric bins: an exact within-bin
  1-way distribution, independent of the other columns inside a bin. Its error is what the bins'
  coarseness costs by itself.

`code 2-way` is the fitted estimator's own pair marginals against the real rows' codes.

`--scorebins` fits the free-bins arm's input instead (`ours-marginal-scorebins`: the train table
cut at the scorer's bins, every column a declared category) and scores the twin on the bins, as
the runner does; only the twin's 1-way and 2-way TVD and `code 2-way` are printed there.
"""

from __future__ import annotations

import argparse
import json
from itertools import combinations

import numpy as np
import pandas as pd
import pyarrow as pa

from bench.fidelity.data import Dataset, prepare
from bench.fidelity.metrics import discretize, fidelity, tvd, utility_auc
from bench.fidelity.runner import OUT
from bench.fidelity.scorebins import prepare_binned
from dbt_synth import synthesize
from dbt_synth.noise import replayable_noise


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epsilon", type=float, default=1.0)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--set", default="{}", help="extra synth config, as JSON")
    parser.add_argument("--scorebins", action="store_true", help="the free-bins arm's input")
    args = parser.parse_args()
    data_dir = OUT / "data" / "cps1988"
    dataset = prepare("cps1988", data_dir)
    train = pd.read_parquet(data_dir / "train.parquet")
    holdout = pd.read_parquet(data_dir / "holdout.parquet")
    categorical = set(dataset.categorical)
    rows = []
    if args.scorebins:
        binned, _ = prepare_binned(dataset, train, holdout, data_dir.with_name("diag-bins"))
    for seed in args.seeds:
        if args.scorebins:
            row = _diagnose_binned(binned, args.epsilon, seed, args.set)
        else:
            row = _diagnose(train, holdout, dataset, categorical, args.epsilon, seed, args.set)
        print(json.dumps(row), flush=True)
        rows.append(row)
    means = {k: round(float(np.mean([r[k] for r in rows])), 4) for k in rows[0] if k != "seed"}
    print("mean", json.dumps(means))


def _diagnose(
    train: pd.DataFrame,
    holdout: pd.DataFrame,
    dataset: Dataset,
    categorical: set[str],
    epsilon: float,
    seed: int,
    extra: str,
) -> dict:
    config = {"epsilon": epsilon, "delta": 1e-5, "rows": len(train), "seed": seed}
    with replayable_noise(seed):
        result = synthesize(train, config={**config, **json.loads(extra), "verbose": False})
    twin = result.table.to_pandas()
    generator = result.generator
    rng = np.random.default_rng(seed)
    decoded, shuffled, codes = train.copy(), train.copy(), []
    for name, model in zip(generator.names, generator.models, strict=True):
        if not model.modelled:
            continue
        column_codes = model.encode(pa.array(train[name]))
        codes.append(column_codes)
        decoded[name] = model.decode(column_codes, rng).to_pandas()
        if name not in categorical:
            values = train[name].to_numpy().copy()
            for code in np.unique(column_codes):
                rows = np.flatnonzero(column_codes == code)
                values[rows] = values[rng.permutation(rows)]
            shuffled[name] = values
    scores = {
        "twin": _pair_tvds(train, twin, categorical),
        "decoded": _pair_tvds(train, decoded, categorical),
        "shuffled": _pair_tvds(train, shuffled, categorical),
    }
    numeric = [p for p in scores["twin"] if not set(p) & categorical]
    task = dataset.task
    categories = {c.name: list(c.categories) for c in dataset.columns if c.categories}
    auc = utility_auc(
        twin,
        holdout,
        target=task.column,
        threshold=task.threshold,
        drop=task.drop,
        categorical=categorical,
        categories=categories,
    )
    out = {"seed": seed, "auc": round(auc, 4)}
    for label, pairs in scores.items():
        out[f"{label} 2-way"] = round(float(np.mean(list(pairs.values()))), 4)
        out[f"{label} num x num"] = round(float(np.mean([pairs[p] for p in numeric])), 4)
    model = getattr(generator.mechanism, "_model", None)
    if model is not None:
        out["code 2-way"] = round(_code_tvd(model, np.column_stack(codes)), 4)
    return out


def _diagnose_binned(binned: pd.DataFrame, epsilon: float, seed: int, extra: str) -> dict:
    """The free-bins arm in-process: every column a declared category (`--domains public`)."""
    columns = {
        name: {"categories": sorted(binned[name].dropna().unique().tolist(), key=str)}
        for name in binned.columns
    }
    config = {"epsilon": epsilon, "delta": 1e-5, "rows": len(binned), "seed": seed}
    config.update(mechanism="marginal", columns=columns, verbose=False)
    with replayable_noise(seed):
        result = synthesize(binned, config={**config, **json.loads(extra)})
    scores = fidelity(binned, result.table.to_pandas(), set(binned.columns))
    generator = result.generator
    codes = [
        model.encode(pa.array(binned[name]))
        for name, model in zip(generator.names, generator.models, strict=True)
        if model.modelled
    ]
    out = {"seed": seed, "twin 1-way": round(scores.tvd_1way, 4)}
    out["twin 2-way"] = round(scores.tvd_2way, 4)
    out["code 2-way"] = round(_code_tvd(generator.mechanism._model, np.column_stack(codes)), 4)
    return out


def _pair_tvds(real: pd.DataFrame, synthetic: pd.DataFrame, categorical: set[str]) -> dict:
    """2-way TVD of every column pair, on the scorer's cells (metrics.fidelity, pair by pair)."""
    cells = {
        n: discretize(real[n], synthetic[n], categorical=n in categorical) for n in real.columns
    }
    out = {}
    for a, b in combinations(real.columns, 2):
        (ra, sa), ka = cells[a]
        (rb, sb), kb = cells[b]
        size = ka * kb
        out[(a, b)] = tvd(
            np.bincount(ra * kb + rb, minlength=size), np.bincount(sa * kb + sb, minlength=size)
        )
    return out


def _code_tvd(model, codes: np.ndarray) -> float:
    """Mean 2-way TVD of the estimator's pair marginals against the real rows' codes."""
    cards = model.cardinalities
    errors = []
    for a, b in combinations(range(len(cards)), 2):
        truth = np.bincount(codes[:, a] * cards[b] + codes[:, b], minlength=cards[a] * cards[b])
        errors.append(tvd(truth, model.marginal((a, b)).ravel()))
    return float(np.mean(errors))


if __name__ == "__main__":
    main()
