"""Equal-footing arms' input: the train table cut at the scorer's own bins, all columns categories.

`aim-scorebins`, `mst-scorebins` and `ours-marginal-scorebins` fit on the same binned table: each
numeric column replaced by the index of its bin among the 10 real-data quantile bins that
`metrics.discretize` scores with (given free, not DP), as a string category. AIM and MST are at
their strongest there (every column categorical, no preprocessing of theirs), and ours gets the
same bins as declared public categories. All arms are scored on the binned tables, where the
TVDs are exactly those the scorer would give the decoded numerics; for the AUC a bin is decoded
back to a value uniform inside it.

Only numpy and pandas: the runner imports this in the product's environment.
"""

from __future__ import annotations

import json
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import pandas as pd

from bench.fidelity.data import ColumnSpec, Dataset
from bench.fidelity.metrics import score_edges


def prepare_binned(dataset: Dataset, train: pd.DataFrame, holdout: pd.DataFrame, out: Path):
    """Write `out/` (train, holdout, spec) with every numeric column cut at the scorer's bins.

    Returns the binned train table and each numeric column's bin edges (first and last edge are
    the real min and max).
    """
    edges = {c.name: score_edges(train[c.name]) for c in dataset.columns if c.kind == "numeric"}
    binned = train.copy()
    columns = []
    for column in dataset.columns:
        if column.name in edges:
            binned[column.name] = to_bins(train[column.name], edges[column.name])
            labels = tuple(sorted(binned[column.name].dropna().unique(), key=str))
            column = ColumnSpec(column.name, "categorical", column.nullable, categories=labels)
        columns.append(column)
    spec = replace(dataset, columns=tuple(columns), name=f"{dataset.name}_scorebins")
    out.mkdir(parents=True, exist_ok=True)
    binned.to_parquet(out / "train.parquet", index=False)
    holdout.to_parquet(out / "holdout.parquet", index=False)
    (out / "spec.json").write_text(json.dumps(asdict(spec), indent=1))
    return binned, edges


def to_bins(values: pd.Series, edges: np.ndarray) -> pd.Series:
    """Bin index as a string category, the scorer's rule: inner edges, right side; NULL stays."""
    numbers = pd.to_numeric(values, errors="coerce").to_numpy(float)
    codes = np.searchsorted(edges[1:-1], numbers, side="right").astype(object)
    codes = np.array([str(c) for c in codes], dtype=object)
    codes[np.isnan(numbers)] = None
    return pd.Series(codes, index=values.index, dtype=object)


def from_bins(
    labels: pd.Series, edges: np.ndarray, rng: np.random.Generator, *, integer: bool
) -> pd.Series:
    """A value uniform inside each bin [low, high) (the last bin includes its high edge).

    Integer columns draw from the integers inside the bin; a bin holding none (between two
    fractional quantiles) gives its midpoint. Unknown labels and NULL give NaN.
    """
    if len(edges) < 2:  # a constant column: one bin holding its one value
        edges = np.r_[edges, edges]
    index = pd.to_numeric(labels, errors="coerce").to_numpy(float)
    known = ~np.isnan(index) & (np.nan_to_num(index, nan=-1) >= 0)
    known &= np.nan_to_num(index, nan=-1) < len(edges) - 1
    bins = np.where(known, np.nan_to_num(index), 0).astype(int)
    low, high = edges[bins], edges[bins + 1]
    last = bins == len(edges) - 2
    draw = rng.random(len(bins))
    if integer:
        first = np.ceil(low)
        top = np.where(last, np.floor(high), np.ceil(high) - 1)
        count = top - first + 1
        drawn = first + np.floor(draw * np.maximum(count, 1))
        values = np.where(count >= 1, drawn, (low + high) / 2)
    else:
        values = low + draw * (high - low)
    return pd.Series(np.where(known, values, np.nan), index=labels.index)


def decode(
    synthetic: pd.DataFrame, edges: dict[str, np.ndarray], integer: set[str], seed: int
) -> pd.DataFrame:
    """The synthetic table with each binned column decoded back to numbers (for the AUC)."""
    rng = np.random.default_rng(seed)
    decoded = synthetic.copy()
    for name, cuts in edges.items():
        decoded[name] = from_bins(synthetic[name], cuts, rng, integer=name in integer)
    return decoded
