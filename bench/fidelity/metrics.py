"""The one scoring module every arm is measured with, run on their parquet outputs.

Fidelity: total variation distance (TVD) between the real train table and a synthetic table, for
every 1-way and every 2-way marginal, after the *same* discretisation of both: numerics into 10
quantile bins of the real data (values beyond the real range fall into the end bins), categories
by value, NULL as a value of its own, and synthetic categories unknown to the real data into one
extra cell. Utility: train-on-synthetic / test-on-real AUC of a gradient-boosted classifier on a
held-out real split, next to the same model trained on the real train split.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import roc_auc_score

QUANTILE_BINS = 10


@dataclass(frozen=True)
class Fidelity:
    """Mean TVDs over all 1-way and all 2-way marginals (0 = identical, 1 = disjoint)."""

    tvd_1way: float
    tvd_2way: float
    per_column: dict[str, float]


def tvd(p: np.ndarray, q: np.ndarray) -> float:
    """Total variation distance of two count (or probability) vectors over the same cells."""
    p = np.asarray(p, dtype=float)
    q = np.asarray(q, dtype=float)
    return 0.5 * float(np.abs(p / p.sum() - q / q.sum()).sum())


def discretize(
    real: pd.Series, *others: pd.Series, categorical: bool
) -> tuple[list[np.ndarray], int]:
    """Codes in [0, cells) for `real` and each of `others`, from the real column's bins/values."""
    if categorical:
        values = sorted(str(v) for v in real.dropna().unique())
        index = {v: i for i, v in enumerate(values)}
        unknown, null = len(values), len(values) + 1

        def encode(column: pd.Series) -> np.ndarray:
            mapped = column.map(lambda v: index.get(str(v), unknown), na_action="ignore")
            return mapped.fillna(null).to_numpy(dtype=np.int64)

        return [encode(real), *(encode(o) for o in others)], len(values) + 2
    edges = score_edges(real)[1:-1]
    null = len(edges) + 1

    def encode_numeric(column: pd.Series) -> np.ndarray:
        values = pd.to_numeric(column, errors="coerce").to_numpy(dtype=float)
        codes = np.searchsorted(edges, values, side="right")
        return np.where(np.isnan(values), null, codes).astype(np.int64)

    return [encode_numeric(real), *(encode_numeric(o) for o in others)], len(edges) + 2


def score_edges(real: pd.Series) -> np.ndarray:
    """The real column's bin edges, min and max included: its `QUANTILE_BINS` quantiles."""
    values = pd.to_numeric(real, errors="coerce").to_numpy(dtype=float)
    finite = values[~np.isnan(values)]
    return np.unique(np.quantile(finite, np.linspace(0, 1, QUANTILE_BINS + 1)))


def fidelity(real: pd.DataFrame, synthetic: pd.DataFrame, categorical: set[str]) -> Fidelity:
    """Mean 1-way and 2-way TVD of `synthetic` against `real` over the real table's columns."""
    codes: dict[str, tuple[np.ndarray, np.ndarray, int]] = {}
    for name in real.columns:
        (r, s), cells = discretize(real[name], synthetic[name], categorical=name in categorical)
        codes[name] = (r, s, cells)
    one = {
        name: tvd(np.bincount(r, minlength=k), np.bincount(s, minlength=k))
        for name, (r, s, k) in codes.items()
    }
    two = []
    for a, b in combinations(real.columns, 2):
        ra, sa, ka = codes[a]
        rb, sb, kb = codes[b]
        cells = ka * kb
        two.append(
            tvd(
                np.bincount(ra * kb + rb, minlength=cells),
                np.bincount(sa * kb + sb, minlength=cells),
            )
        )
    return Fidelity(
        float(np.mean(list(one.values()))), float(np.mean(two)) if two else float("nan"), one
    )


def utility_auc(
    train: pd.DataFrame,
    holdout: pd.DataFrame,
    *,
    target: str,
    threshold: float,
    drop: tuple[str, ...],
    categorical: set[str],
    categories: dict[str, list[str]],
    seed: int = 0,
) -> float:
    """AUC on the real `holdout` of a GBM fitted on `train` to predict `target > threshold`.

    A train table with one class only gives 0.5: the model can rank nothing.
    """
    labels = pd.to_numeric(train[target], errors="coerce").to_numpy(dtype=float) > threshold
    truth = pd.to_numeric(holdout[target], errors="coerce").to_numpy(dtype=float) > threshold
    if labels.all() or not labels.any():
        return 0.5
    features = [c for c in train.columns if c != target and c not in drop]
    model = HistGradientBoostingClassifier(
        max_iter=200, learning_rate=0.1, categorical_features="from_dtype", random_state=seed
    )
    model.fit(_features(train, features, categorical, categories), labels)
    scores = model.predict_proba(_features(holdout, features, categorical, categories))[:, 1]
    return float(roc_auc_score(truth, scores))


def _features(
    table: pd.DataFrame,
    features: list[str],
    categorical: set[str],
    categories: dict[str, list[str]],
) -> pd.DataFrame:
    """Numerics as floats; categories as a fixed pandas Categorical (unknown values become NaN)."""
    out = {}
    for name in features:
        if name in categorical:
            values = table[name].map(str, na_action="ignore")
            out[name] = pd.Categorical(values, categories=categories[name])
        else:
            values = pd.to_numeric(table[name], errors="coerce").astype(float)
            # sklearn's binning fails on a column with no value at all; a constant says as little.
            out[name] = values.fillna(0.0) if values.isna().all() else values
    return pd.DataFrame(out)
