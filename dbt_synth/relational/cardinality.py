"""Children per parent: the DP histogram a child twin releases per foreign key, and its use.

Counts are binned on a fixed public scale (`count_edges`), so the bins reveal nothing; one
child row moves one parent to the next bin, so the histogram's L2 sensitivity is √2.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import sqlglot
from sqlglot import exp

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


def binned(counts: np.ndarray, parents: np.ndarray | None = None) -> np.ndarray:
    """Parents per `count_edges` bin: `counts` children per parent, each count standing for
    `parents` parents (one each when not given)."""
    edges = count_edges()
    bins = np.searchsorted(edges, counts, side="right") - 1
    return np.bincount(bins, weights=parents, minlength=len(edges)).astype(np.int64)


def release_cardinality(
    counts: np.ndarray,
    key: ForeignKey,
    accountant: PrivacyAccountant,
    rho: float,
    noise: NoiseSource,
) -> Cardinality:
    """DP histogram of `counts` (children per real parent, see `children_per_parent`)."""
    return release_histogram(binned(counts), key, accountant, rho, noise)


def release_histogram(
    hist: np.ndarray,
    key: ForeignKey,
    accountant: PrivacyAccountant,
    rho: float,
    noise: NoiseSource,
) -> Cardinality:
    """DP release of `hist`, the exact parents per `count_edges` bin (see `binned`).

    Parents themselves are public to the child's release only through their count, which the
    parent twin already released."""
    edges = count_edges()
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


@dataclass(frozen=True)
class KeyCounter:
    """Children per parent, counted by the engine that holds a child and its parents.

    `run(parent, query)` runs aggregate SQL in `dialect` that reads the child as the table
    `child` and the parent `parent` names (its source when the child learns from it, else its
    twin) as `parent` (`Warehouse.aggregate_tables`); only the small result reaches the driver,
    where it is noised. The exact counts are never written or logged."""

    run: Callable[[str, str], pa.Table]
    dialect: str

    def histogram(self, key: ForeignKey, cap: int | None = None) -> np.ndarray:
        """Parents per `count_edges` bin of their children through `key`, each parent's count
        capped at `cap` (as `unit.cap_children` caps them) when given."""
        result = self.run(key.parent, children_histogram_sql(key, self.dialect, cap))
        counts = result.column(_CHILDREN).to_numpy(zero_copy_only=False).astype(np.int64)
        parents = result.column(_PARENTS).to_numpy(zero_copy_only=False).astype(float)
        return binned(counts, parents)


# Result columns of the children-per-parent query, named so that no key column can clash.
_CHILDREN = "__dbt_synth_children"
_PARENTS = "__dbt_synth_parents"


def children_histogram_sql(key: ForeignKey, dialect: str, cap: int | None = None) -> str:
    """How many `parent` rows have each number of `child` rows through `key` (0 for childless
    parents, through a left join from the parent; children with a NULL key column or no
    parent are not counted), as `children_per_parent` counts them."""
    keys = [f"__dbt_synth_k{i}" for i in range(len(key.columns))]
    quoted = [exp.to_identifier(c, quoted=True).sql("duckdb") for c in key.columns]
    parent = [exp.to_identifier(c, quoted=True).sql("duckdb") for c in key.parent_columns]
    count = f"least(count(*), {int(cap)})" if cap is not None else "count(*)"
    per_key = (
        f"select {', '.join(f'{q} as {k}' for q, k in zip(quoted, keys, strict=True))}, "
        f"{count} as __dbt_synth_n from child where "
        + " and ".join(f"{q} is not null" for q in quoted)
        + f" group by {', '.join(quoted)}"
    )
    on = " and ".join(f"p.{q} = c.{k}" for q, k in zip(parent, keys, strict=True))
    sql = (
        f"select n as {_CHILDREN}, count(*) as {_PARENTS} from (select "
        f"coalesce(c.__dbt_synth_n, 0) as n from parent as p left join ({per_key}) as c on {on}"
        ") as per_parent group by n"
    )
    return sqlglot.transpile(sql, read="duckdb", write=dialect)[0]


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
