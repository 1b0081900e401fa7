"""DP bounds and quantile bins for ordered columns (numbers, dates, timestamps, times).

Nothing reads a raw min, max or quantile. A noisy tree over an order-preserving key space is
grown top-down (`tree.py`); at each of its 6 levels every row adds 1 to exactly one node, so
each level is a Gaussian release of sensitivity 1, with most of the budget on the first level.
The surviving leaves give the column's range, its quantile bins and a fine density used to
sample inside a bin.

With declared public bounds the same tree is grown inside them: first-level cells outside the
bounds are known to be empty and the leaves are clipped to the bounds. The tree (rather than a
uniform grid, whose per-cell noise would swamp a small table) keeps skewed columns resolved.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Protocol

import numpy as np

from dbt_synth.accounting import PrivacyAccountant, gaussian_sigma
from dbt_synth.domains.tree import KEY_BITS, LEVELS, PrefixCounts, grow_tree, key_counts
from dbt_synth.noise import NoiseSource

# Each level is its own Gaussian release (every row adds 1 to one node per level). The first
# level says where the values live at all, so it gets the largest share of the column's ρ; deeper
# levels only refine regions that are heavy enough to need it.
LEVEL_RHO_SHARES = (0.4, 0.2, 0.15, 0.1, 0.08, 0.07)
# NULL, NaN and ±inf are known to be possible (no privacy at stake in naming them); a state is
# kept when its noisy count clears this many σ. 3σ keeps a column with no NULLs from getting a
# few noisy ones. NaN and ±inf get 5σ: a false one (P ≈ 0.13 % per state at 3σ, so about one fit
# in 80 on a table of three numeric columns) puts inf or NaN into a twin of a column that never
# held one, which turns every sum over it into inf downstream; a real one rarer than 5σ is
# modelled as the middle bin.
SPECIALS = ("null", "nan", "+inf", "-inf")
SPECIAL_SIGMAS = (3.0, 5.0, 5.0, 5.0)  # per SPECIALS
MAX_DECIMALS = 6
_DECIMALS_SHARE = 0.2
# Bins need this many σ of estimated mass: enough that a bin is not noise, low enough to keep
# the resolution that the tree found.
_BIN_MIN_SIGMAS = 2.0


@dataclass(frozen=True)
class NumericDomain:
    """What the twin may know about an ordered column, all of it from noisy counts.

    `specials` are the non-numeric states kept (NULL, NaN, ±inf) with their noisy counts; `low`
    and `high` are the value-space edges of each kept leaf and `mass` its estimated count;
    `bin_of_leaf` groups consecutive leaves into the quantile bins the generator models.
    `fallback` names the public range the values are drawn from when the tree resolved nothing
    (see `widened`); None for a domain the tree found.
    """

    specials: tuple[str, ...]
    special_counts: np.ndarray
    low: np.ndarray
    high: np.ndarray
    mass: np.ndarray
    bin_of_leaf: np.ndarray
    decimals: int | None = None
    fallback: str | None = None

    @property
    def bin_count(self) -> int:
        return int(self.bin_of_leaf.max()) + 1 if len(self.bin_of_leaf) else 0

    @property
    def cardinality(self) -> int:
        """Codes the generator sees: one per kept special state, then one per bin."""
        return len(self.specials) + self.bin_count

    @property
    def bin_edges(self) -> np.ndarray:
        """Lower edge of every bin, and the upper edge of the last: ascending."""
        if len(self.bin_of_leaf) == 0:
            return np.zeros(0)
        starts = np.r_[0, np.flatnonzero(np.diff(self.bin_of_leaf)) + 1]
        return np.r_[self.low[starts], self.high[-1:]]

    def code_counts(self) -> np.ndarray:
        """Noisy count per code, for use as a (post-processed) 1-way measurement."""
        bins = np.bincount(self.bin_of_leaf, weights=self.mass, minlength=self.bin_count)
        return np.r_[self.special_counts, bins]

    def scaled(self, factor: float) -> NumericDomain:
        """The same domain with its noisy counts times `factor` (post-processing): a release
        made on the whole source, brought to the scale of a sample of it."""
        if factor == 1.0:
            return self
        return dataclasses.replace(
            self, special_counts=self.special_counts * factor, mass=self.mass * factor
        )


class OrderedCounts(Protocol):
    """The exact counts an ordered column's domain is released from, on its float axis
    (`dbt_synth.axis`): taken on the sample in memory (`SampledCounts`) or over the whole source
    by its engine (`dbt_synth.pushdown`). They leave `numeric_domain` only noised."""

    def specials(self) -> np.ndarray:
        """Rows in each of SPECIALS (NULL, NaN, +inf, -inf)."""
        ...

    def decimal_places(self) -> np.ndarray:
        """Finite values by the fewest decimals that write them (`decimal_places`), 0..7."""
        ...

    def prefixes(self, cells: np.ndarray, shift: int) -> np.ndarray:
        """Finite values (clipped to public bounds) by their tree key's prefix: `PrefixCounts`."""
        ...


@dataclass(frozen=True)
class SampledCounts:
    """`OrderedCounts` of axis `values` and their `states` in memory (`axis.to_axis`)."""

    values: np.ndarray
    states: np.ndarray
    bounds: tuple[float, float] | None = None

    def specials(self) -> np.ndarray:
        special = self.states[self.states >= 0]
        return np.bincount(special, minlength=len(SPECIALS)).astype(float)

    def decimal_places(self) -> np.ndarray:
        places = decimal_places(self.values[self.states < 0])
        return np.bincount(places, minlength=MAX_DECIMALS + 2).astype(float)

    def prefixes(self, cells: np.ndarray, shift: int) -> np.ndarray:
        return self._keys(cells, shift)

    @cached_property
    def _keys(self) -> PrefixCounts:
        return key_counts(self.values[self.states < 0], self.bounds)


def dp_numeric_domain(
    values: np.ndarray,
    states: np.ndarray,
    accountant: PrivacyAccountant,
    rho: float,
    *,
    public_bounds: tuple[float, float] | None = None,
    **options: Any,
) -> NumericDomain:
    """`numeric_domain` of axis `values` in memory; `states` holds the index into SPECIALS for
    non-numeric rows and -1 for ordinary values. `options` are `numeric_domain`'s."""
    counted = SampledCounts(values, states, public_bounds)
    return numeric_domain(counted, accountant, rho, public_bounds=public_bounds, **options)


def numeric_domain(
    counted: OrderedCounts,
    accountant: PrivacyAccountant,
    rho: float,
    *,
    max_bins: int,
    nullable: bool,
    public_bounds: tuple[float, float] | None = None,
    integer: bool = False,
    learn_decimals: bool = False,
    column: str | None = None,
    noise: NoiseSource,
) -> NumericDomain:
    """Spend `rho` to learn the range, quantile bins and fine density of one ordered column.

    With `learn_decimals` (DOUBLE columns) a fifth of `rho` buys the number of decimal places the
    values are written with, so that a twin of prices shows cents rather than 17 digits.
    `counted` must be clipped to the same `public_bounds`.
    """
    decimals = None
    if learn_decimals:
        decimals = _dp_decimals(counted, accountant, rho * _DECIMALS_SHARE, column, noise)
        rho *= 1 - _DECIMALS_SHARE
    special_true = counted.specials()
    sigmas = [gaussian_sigma(rho * share) for share in LEVEL_RHO_SHARES]
    where = "" if public_bounds is None else " inside public bounds"
    for level, level_sigma in enumerate(sigmas):
        accountant.spend_gaussian(
            "domain",
            level_sigma,
            column=column,
            detail=f"noisy tree over {KEY_BITS}-bit keys{where}, level {level + 1} of {LEVELS}",
        )
    # Decimals, once released, say where values can be (post-processing): a column written
    # with d places has nothing in a cell that holds no multiple of 10^-d.
    grid = 0 if integer else decimals
    low, high, mass = grow_tree(counted.prefixes, sigmas, noise, grid=grid, bounds=public_bounds)
    # Special states are counted with the first level (each row is in one of them).
    sigma = sigmas[0]
    noisy_special = noise.counts(special_true, sigma)
    keep = noisy_special >= np.asarray(SPECIAL_SIGMAS) * sigma
    if not nullable:
        keep[SPECIALS.index("null")] = False
    specials = tuple(s for s, k in zip(SPECIALS, keep, strict=True) if k)
    bins = _quantile_bins(mass, max_bins, min_mass=_BIN_MIN_SIGMAS * sigma)
    return NumericDomain(specials, noisy_special[keep], low, high, mass, bins, decimals)


def widened(
    domain: NumericDomain, low: float, high: float, rows_estimate: float, *, source: str
) -> NumericDomain:
    """The coarsest answer when no leaf of the tree cleared its threshold: one leaf over a public
    range (`source` says which: the type's range or declared bounds), holding the DP row count
    less the kept special states. Nothing here reads data, so it costs no ε.

    The tree only misses every leaf when the column's rows are few next to the noise (a table of
    dozens of rows at ε ≈ 1); failing there would make the twin depend on the table's size, and
    the coarse range is still an honest answer. A domain with a leaf or a kept special state
    (a column of NULLs is all NULL, not a range) is returned unchanged.
    """
    if domain.cardinality:
        return domain
    mass = max(rows_estimate - float(domain.special_counts.sum()), 1.0)
    return NumericDomain(
        domain.specials,
        domain.special_counts,
        np.array([low]),
        np.array([high]),
        np.array([mass]),
        np.zeros(1, dtype=np.int64),
        domain.decimals,
        fallback=source,
    )


def decimal_places(values: np.ndarray) -> np.ndarray:
    """Fewest decimals (0..MAX_DECIMALS) that write each value exactly; MAX_DECIMALS + 1 if none."""
    places = np.full(len(values), MAX_DECIMALS + 1, dtype=np.int64)
    tolerance = 1e-9 * np.maximum(np.abs(values), 1.0)
    for digits in range(MAX_DECIMALS, -1, -1):
        exact = np.abs(np.round(values, digits) - values) <= tolerance
        places[exact] = digits
    return places


def _dp_decimals(
    counted: OrderedCounts,
    accountant: PrivacyAccountant,
    rho: float,
    column: str | None,
    noise: NoiseSource,
) -> int | None:
    """Fewest decimals that write all but 1% of values, from a noisy histogram of decimal places.

    The share of values needing more than d decimals is read from the unclipped noisy tail sum,
    allowed 2σ·√(tail cells) of noise on top of the 1%. None (keep all digits) when that noise
    allowance would exceed a fifth of the column: the histogram cannot tell then.
    """
    sigma = gaussian_sigma(rho)
    accountant.spend_gaussian("domain", sigma, column=column, detail="decimal places histogram")
    noisy = noise.counts(counted.decimal_places(), sigma)
    total = float(noisy.sum())
    if 2.0 * sigma * np.sqrt(len(noisy)) > 0.2 * total:
        return None
    for digits in range(MAX_DECIMALS + 1):
        tail = noisy[digits + 1 :]
        if tail.sum() <= 0.01 * total + 2.0 * sigma * np.sqrt(len(tail)):
            return digits
    return None


def _quantile_bins(mass: np.ndarray, max_bins: int, *, min_mass: float) -> np.ndarray:
    """Group ordered leaves into at most `max_bins` bins of roughly equal estimated mass.

    A bin also needs `min_mass` so that the generator's noisy 2-way tables have signal in it.
    """
    if len(mass) == 0:
        return np.zeros(0, dtype=np.int64)
    total = float(mass.sum())
    bins_wanted = int(max(1, min(max_bins, total // max(min_mass, 1e-9))))
    target = total / bins_wanted
    bin_of_leaf = np.zeros(len(mass), dtype=np.int64)
    current, filled = 0, 0.0
    for i, m in enumerate(mass):
        if filled >= target and current < bins_wanted - 1:
            current += 1
            filled = 0.0
        bin_of_leaf[i] = current
        filled += m
    return bin_of_leaf
