"""DP category domains: which values of a column the twin may ever emit.

Every distinct value's count gets discrete Gaussian noise and only values whose noisy count clears a
threshold are kept, so a value seen in a handful of rows can appear in the twin only with a
probability the accountant reserves out of δ. A declared (public) category list, a BOOLEAN or an
ENUM type skips the threshold: its domain is known without looking at the data.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

import numpy as np

from dbt_synth.accounting import gaussian_sigma
from dbt_synth.domains.release import DomainRelease, ValueCounts

# Below this share of rows covered by kept categories a string column is treated as free text.
TEXT_COVERAGE = 0.3


@dataclass(frozen=True)
class CategoryDomain:
    """Kept values and their noisy counts; NULL, when kept, is the last code."""

    values: tuple[Any, ...]
    counts: np.ndarray
    has_null: bool
    null_count: float
    coverage: float

    @property
    def cardinality(self) -> int:
        return len(self.values) + int(self.has_null)

    def code_counts(self) -> np.ndarray:
        return np.r_[self.counts, [self.null_count] if self.has_null else []]

    def scaled(self, factor: float) -> CategoryDomain:
        """The same domain with its noisy counts times `factor` (post-processing): a release
        made on the whole source, brought to the scale of a sample of it."""
        if factor == 1.0:
            return self
        return dataclasses.replace(
            self, counts=self.counts * factor, null_count=self.null_count * factor
        )


def threshold_for(sigma: float, delta: float) -> float:
    """Noisy-count threshold so that a value held by one row survives with probability ≤ δ.

    The count of such a value is 1 + X with X ~ N_Z(0, σ²), kept when 1 + X ≥ τ. For integers
    k ≥ 1, P[X ≥ k] ≤ P[Y ≥ k − 1] with Y ~ N(0, σ²): each term exp(−x²/2σ²), x ≥ k, is at most
    the integral of the same density over [x − 1, x], and the discrete normaliser
    Σ exp(−x²/2σ²) = √(2π)σ·Σₖ exp(−2π²σ²k²) ≥ √(2π)σ (Poisson summation). So τ = 2 + σ·z₁₋δ,
    rounded up, keeps the failure below δ.
    """
    return float(math.ceil(2.0 + sigma * NormalDist().inv_cdf(1.0 - delta)))


def dp_category_domain(
    counted: ValueCounts,
    release: DomainRelease,
    *,
    nullable: bool,
    public_values: tuple[Any, ...] | None = None,
) -> CategoryDomain:
    """Spend the release's ρ (and its δ share when the domain is not public) on one column.

    `counted` holds the column's distinct non-NULL values and their true counts; they never
    leave this function except through the noisy, thresholded result. The release's row count
    tells how much of the column the kept values explain.
    """
    values, counts, null_count = counted.values, counted.counts, counted.nulls
    accountant, noise, column = release.accountant, release.noise, release.column
    threshold_delta, rows_estimate = release.threshold_delta, release.rows_estimate
    sigma = gaussian_sigma(release.rho)
    if public_values is not None:
        accountant.spend_gaussian(
            "domain", sigma, column=column, detail=f"{len(public_values)} public categories"
        )
        by_value = dict(zip(values, counts, strict=True))
        true = np.array([by_value.get(v, 0) for v in public_values], dtype=float)
        noisy = np.clip(noise.counts(true, sigma), 0.0, None)
        kept_values, kept_counts = tuple(public_values), noisy
        threshold = threshold_for(sigma, 1e-9)
    else:
        accountant.spend_gaussian(
            "domain",
            sigma,
            column=column,
            threshold_delta=threshold_delta,
            detail="thresholded histogram of distinct values",
        )
        threshold = threshold_for(sigma, threshold_delta)
        noisy = noise.counts(np.asarray(counts, dtype=float), sigma)
        keep = noisy >= threshold
        # By noisy count, ties by the value's text: the input order is the exact counts' (or
        # the rows'), which the released list must not carry.
        kept = np.flatnonzero(keep)
        order = sorted(range(len(kept)), key=lambda k: (-noisy[kept[k]], str(values[kept[k]])))
        kept_values = tuple(values[kept[k]] for k in order)
        kept_counts = noisy[kept][order]
    noisy_null = float(noise.counts(null_count, sigma))
    has_null = nullable and noisy_null >= threshold
    non_null = rows_estimate - max(noisy_null, 0.0)
    coverage = min(float(kept_counts.sum()) / non_null, 1.0) if non_null > 0 else 0.0
    return CategoryDomain(
        kept_values,
        kept_counts,
        bool(has_null),
        max(noisy_null, 0.0) if has_null else 0.0,
        coverage,
    )
