"""What a column's DP domain is released from, and what the release is charged to.

`ValueCounts` are the true counts a category or text domain is learnt from (taken on the
Poisson sample, or over the whole source by the engine: `pushdown.py`); they never leave a
domain function except through its noisy, thresholded result. `DomainRelease` is everything a
release spends and draws from, the same for every kind of domain.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from dbt_synth.accounting import PrivacyAccountant
from dbt_synth.noise import NoiseSource


@dataclass(frozen=True)
class ValueCounts:
    """One column's distinct non-NULL values, their exact counts and its NULL count."""

    values: list[Any]
    counts: np.ndarray
    nulls: int

    @classmethod
    def ordered(cls, values: list[Any], counts: np.ndarray, nulls: int) -> ValueCounts:
        """In one fixed order (count descending, then the value's text) whoever counted them
        and however the rows were ordered: a replayed noise stream then noises the same value
        the same way, in memory and in the engine (`dbt_synth.pushdown.value_counts`)."""
        order = sorted(range(len(values)), key=lambda j: (-counts[j], str(values[j])))
        return cls([values[j] for j in order], np.asarray(counts, dtype=float)[order], nulls)


@dataclass(frozen=True)
class DomainRelease:
    """One column's domain release: charged to `accountant` with the column's `rho` (and
    `threshold_delta` of δ when values are thresholded), drawn from `noise`; `rows_estimate`
    is the DP row count of the rows counted; `column` names the spend in the ledger."""

    accountant: PrivacyAccountant
    rho: float
    noise: NoiseSource
    threshold_delta: float
    rows_estimate: float
    column: str | None = None
