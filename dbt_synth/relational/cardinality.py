"""Children per parent: the DP histogram a child twin releases per foreign key, and its use.

Counts are binned on a fixed public scale (`count_edges`), so the bins reveal nothing; one
child row moves one parent to the next bin, so the histogram's L2 sensitivity is √2.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa

from dbt_synth.accounting import PrivacyAccountant, gaussian_sigma
from dbt_synth.noise import NoiseSource
from dbt_synth.relational.keys import ForeignKey

# Noisy counts below this many σ are taken as noise (see `Cardinality.probabilities`).
_STRONG_SIGMAS = 3.0
# The highest bins are dropped while the expected children exceed this many times the children.
_MAX_OVERSHOOT = 1.5


def count_edges() -> np.ndarray:
    """Bin lower edges 0, 1, 2, 3, 5, 9, 17, … 2^20+1: a fixed public scale, so the bins
    themselves reveal nothing about the data; the last bin is open."""
    return np.array([0, 1, 2, *(2**i + 1 for i in range(1, 21))])


@dataclass(frozen=True)
class Cardinality:
    """DP histogram of children per parent for one FK, in `edges` bins (last bin open).

    Most bins of the fixed scale are empty; see `probabilities` for how noise is handled.
    """

    edges: tuple[int, ...]
    noisy: tuple[float, ...]
    sigma: float

    def probabilities(self, parents: int, children: int) -> np.ndarray:
        """Bin weights for a parent twin of `parents` rows that must take `children` children.

        Post-processing of the DP histogram only. The share of childless parents comes from bin
        0 over the parent twin's size (0 if bin 0 is under 3σ). Among the other bins, those
        up to the last bin above 3σ keep their clipped noisy counts and the tail beyond is
        taken as empty; with no bin above 3σ all clipped counts are used, and if
        those are all zero every parent with children gets the mean (children over parents
        with children). The highest bins are then dropped while they would make the
        expected total exceed 1.5× the children to place (noise in an empty top bin would
        otherwise give a few parents 10^5 children each).
        """
        counts = np.asarray(self.noisy, dtype=float)
        edges = np.asarray(self.edges)
        middles = (edges + self._highs()) / 2
        parents = max(parents, 1)
        childless = float(np.clip(counts[0] / parents, 0.0, 1.0 - 1.0 / parents))
        if counts[0] < _STRONG_SIGMAS * self.sigma:
            childless = 0.0
        if children == 0:
            childless = 1.0
        rest = counts[1:]
        strong = np.flatnonzero(rest >= _STRONG_SIGMAS * self.sigma)
        weights = np.clip(rest, 0.0, None)
        if len(strong):
            # Children counts have a contiguous support from 1 up: bins up to the last strong
            # bin keep their (clipped) noisy counts, the empty tail beyond is dropped.
            inside = np.zeros_like(rest, dtype=bool)
            inside[: strong[-1] + 1] = True
            weights = np.where(inside, weights, 0.0)
        if weights.sum() <= 0:
            mean = children / max(parents * (1.0 - childless), 1.0)
            weights = np.zeros_like(rest)
            weights[int(np.clip(np.searchsorted(edges[1:], mean, side="right") - 1, 0, None))] = 1
        while np.count_nonzero(weights) > 1:
            share = weights / weights.sum()
            expected = parents * (1.0 - childless) * float(share @ middles[1:])
            if expected <= _MAX_OVERSHOOT * children:
                break
            weights[np.flatnonzero(weights)[-1]] = 0.0
        return np.r_[childless, (1.0 - childless) * weights / weights.sum()]

    def sample(self, parents: int, rng: np.random.Generator, children: int) -> np.ndarray:
        """Children counts for `parents` parents: a bin by its DP weight, uniform inside it."""
        bins = rng.choice(len(self.edges), size=parents, p=self.probabilities(parents, children))
        low = np.asarray(self.edges)[bins]
        high = self._highs()[bins]
        return rng.integers(low, np.maximum(high, low + 1))

    def _highs(self) -> np.ndarray:
        """Exclusive upper edge of each bin; the open last bin is taken to double its edge."""
        return np.asarray([*self.edges[1:], self.edges[-1] * 2])


def release_cardinality(
    counts: np.ndarray,
    key: ForeignKey,
    accountant: PrivacyAccountant,
    rho: float,
    noise: NoiseSource,
) -> Cardinality:
    """DP histogram of `counts` (children per real parent, see `children_per_parent`).

    Parents themselves are public to the child's release only through their count, which the
    parent twin already released."""
    edges = count_edges()
    hist = np.bincount(np.searchsorted(edges, counts, side="right") - 1, minlength=len(edges))
    sigma = gaussian_sigma(rho, math.sqrt(2.0))
    accountant.spend_gaussian(
        "cardinality",
        sigma,
        sensitivity=math.sqrt(2.0),
        column=key.label,
        detail=f"children per {key.parent} parent, {len(edges)} bins",
    )
    noisy = noise.counts(hist, sigma)
    return Cardinality(tuple(int(e) for e in edges), tuple(float(v) for v in noisy), sigma)


def children_per_parent(child: pa.Table, columns, parent: pa.Table, parent_columns) -> np.ndarray:
    """Number of `child` rows per `parent` row (0 for childless parents), in parent order."""
    return streamed_children_per_parent(child.to_batches(), columns, parent, parent_columns)


def streamed_children_per_parent(
    batches: Iterable[pa.RecordBatch], columns, parent: pa.Table, parent_columns
) -> np.ndarray:
    """`children_per_parent` of a child read batch by batch: only the counts per key are held."""
    columns = list(columns)
    sizes: pd.Series | None = None
    for batch in batches:
        part = batch.select(columns).to_pandas().dropna().groupby(columns, sort=False).size()
        sizes = part if sizes is None else sizes.add(part, fill_value=0)
    left = parent.select(list(parent_columns)).to_pandas()
    left.columns = columns
    if sizes is None:
        return np.zeros(len(left), dtype=np.int64)
    merged = left.merge(sizes.rename("__n__").reset_index(), on=columns, how="left")
    return merged["__n__"].fillna(0).to_numpy().astype(np.int64)


def cardinality_tvd(source_counts: np.ndarray, twin_counts: np.ndarray) -> float:
    """TVD between two children-per-parent histograms on the `count_edges` bins."""
    edges = count_edges()

    def hist(counts: np.ndarray) -> np.ndarray:
        h = np.bincount(np.searchsorted(edges, counts, side="right") - 1, minlength=len(edges))
        return h / max(h.sum(), 1)

    return float(0.5 * np.abs(hist(source_counts) - hist(twin_counts)).sum())
