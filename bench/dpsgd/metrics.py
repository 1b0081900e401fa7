"""Mean TVD of all 1-way and 2-way marginals, numerics in 10 quantile bins of the real data."""

from __future__ import annotations

from itertools import combinations

import numpy as np
import pandas as pd


def _discretise(real: pd.DataFrame, twin: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    out_real, out_twin = {}, {}
    for column in real.columns:
        r, t = real[column], twin[column]
        if (
            pd.api.types.is_numeric_dtype(r)
            and not pd.api.types.is_bool_dtype(r)
            and r.nunique() > 10
        ):
            edges = np.unique(np.nanquantile(r.astype(float), np.linspace(0, 1, 11))[1:-1])
            out_real[column] = np.where(r.isna(), -1, np.searchsorted(edges, r, side="right"))
            t = pd.to_numeric(t, errors="coerce")
            out_twin[column] = np.where(t.isna(), -1, np.searchsorted(edges, t, side="right"))
        else:
            out_real[column] = r.astype(str).where(r.notna(), "<null>").to_numpy()
            out_twin[column] = t.astype(str).where(t.notna(), "<null>").to_numpy()
    return pd.DataFrame(out_real), pd.DataFrame(out_twin)


def _tvd(real: pd.DataFrame, twin: pd.DataFrame, columns: list[str]) -> float:
    p = real.groupby(columns).size() / len(real)
    q = twin.groupby(columns).size() / len(twin)
    return 0.5 * float(p.sub(q, fill_value=0.0).abs().sum())


def marginal_tvd(real: pd.DataFrame, twin: pd.DataFrame) -> tuple[float, float]:
    """(mean 1-way TVD, mean 2-way TVD) over all columns / column pairs."""
    r, t = _discretise(real, twin)
    columns = list(r.columns)
    one = np.mean([_tvd(r, t, [c]) for c in columns])
    two = np.mean([_tvd(r, t, [a, b]) for a, b in combinations(columns, 2)])
    return float(one), float(two)
