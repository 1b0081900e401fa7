"""The noisy tree over an ordered column's key space, from which its DP domain is read.

Values are mapped to an order-preserving 32-bit key (the top bits of the IEEE-754 double,
sign-folded), and a noisy tree over that key space is grown top-down: the first level splits by
sign and exponent, the next ones 16-ways by mantissa bits. Children of a node are only examined
when the node's noisy count clears a threshold, which is post-processing of the full tree.
`numeric.py` decides what each level costs and reads the range and bins off the leaves.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from dbt_synth.domains.pieces import (
    RUN_SIGMAS,
    SINGLE_SIGMAS,
    Part,
    beside_kept,
    empty_edge,
    segments,
)
from dbt_synth.noise import NoiseSource

KEY_BITS = 32
# Bits resolved per tree level: first the sign and exponent (where the values live at all), then
# the mantissa 4 bits at a time. Fewer levels mean less noise per node (sensitivity √levels).
LEVEL_BITS = (12, 4, 4, 4, 4, 4)
LEVELS = len(LEVEL_BITS)
# A node is kept when its noisy count clears THRESHOLD_SIGMAS·σ. At 5σ an empty node survives
# with probability 3e-7, so spurious far-away values are practically never invented. On the
# first level, which sets the range, a run of m adjacent weaker cells (kept as one coarse leaf)
# needs the same THRESHOLD_SIGMAS·σ·√m: at 3σ a run of the ~1000 empty negative exponent cells
# of a non-negative column came through about once in 300 columns, as a leaf down to -1.8e308.
# Below a kept node a run is bounded by that node and needs RUN_SIGMAS·σ·√m (`pieces.py`).
THRESHOLD_SIGMAS = 5.0


PrefixCounts = Callable[[np.ndarray, int], np.ndarray]
"""`count(cells, shift)`: the exact number of rows whose `KEY_BITS`-bit key, shifted right by
`shift`, is each of `cells`. Taken on the sample in memory (`key_counts`) or by the engine
that holds the source (`dbt_synth.pushdown`); only the tree's noisy counts are released."""


def key_counts(finite: np.ndarray, bounds: tuple[float, float] | None = None) -> PrefixCounts:
    """Prefix counts of finite values in memory (clipped to public `bounds`, if any)."""
    if bounds is not None:
        finite = np.clip(finite, float(bounds[0]), float(bounds[1]))
    keys = (to_keys(finite) >> np.uint64(64 - KEY_BITS)).astype(np.int64)

    def count(cells: np.ndarray, shift: int) -> np.ndarray:
        prefixes, counts = np.unique(keys >> shift, return_counts=True)
        return lookup_counts(prefixes, counts, cells)

    return count


def to_keys(values: np.ndarray) -> np.ndarray:
    """Order-preserving unsigned 64-bit keys of finite or infinite doubles."""
    bits = np.ascontiguousarray(values, dtype=np.float64).view(np.uint64)
    negative = (bits >> np.uint64(63)).astype(bool)
    return np.where(negative, ~bits, bits | np.uint64(1 << 63))


def from_keys(keys: np.ndarray) -> np.ndarray:
    """Inverse of `to_keys`."""
    keys = np.asarray(keys, dtype=np.uint64)
    positive = (keys >> np.uint64(63)).astype(bool)
    bits = np.where(positive, keys & np.uint64((1 << 63) - 1), ~keys)
    return bits.view(np.float64)


def grow_tree(
    finite: np.ndarray | PrefixCounts,
    sigmas: list[float],
    noise: NoiseSource,
    *,
    grid: int | None,
    bounds: tuple[float, float] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Top-down pruned noisy tree; returns value-space [low, high] and mass of every leaf.

    Children that miss the threshold are not lost: each run of adjacent missed siblings is
    kept as one coarser leaf when its summed noisy count clears the threshold scaled by the
    run's noise (√m·σ), so thin tails survive at a lower resolution. Cells that the type cannot
    hold (infinities and NaN; with `grid` decimals, cells with no value written with that
    many decimals) are known to be
    empty: they are never kept and never joined into a run; so are cells outside public
    `bounds`, which clip the values and the leaves. `finite` is the values, or their prefix
    counts (`PrefixCounts`, already clipped to `bounds`).
    """
    count = finite if callable(finite) else key_counts(finite, bounds)
    possible = _possible_first_level(integer=grid == 0)
    if bounds is not None:
        lo, hi = float(bounds[0]), float(bounds[1])
        possible = possible & _first_level_within(lo, hi)
    # The root (prefix 0 above level 0) has no count of its own: that would be a ninth release.
    frontier: dict[int, float | None] = {0: None}
    # [first key, last key + 1), mass, and whether it holds a parent's unresolved rest
    leaves: list[tuple[int, int, float, bool]] = []
    for level, bits in enumerate(LEVEL_BITS):
        shift = KEY_BITS - sum(LEVEL_BITS[: level + 1])
        parents = np.fromiter(frontier, dtype=np.int64)
        children = (parents[:, None] << bits) + np.arange(1 << bits)
        true = count(children.ravel(), shift).reshape(children.shape)
        sigma = sigmas[level]
        noisy = noise.counts(true, sigma)
        next_frontier: dict[int, float | None] = {}
        allowed = np.broadcast_to(possible, children.shape) if level == 0 else None
        if level and grid is not None:
            allowed = _holds_grid_value(children, shift, grid)
        kept = [(first, end) for first, end, _, residual in leaves if not residual]
        for row, parent in enumerate(parents):
            parent_mass = frontier[parent]
            parts = _split(
                noisy[row],
                sigma,
                None if allowed is None else allowed[row],
                residual=parent_mass is not None,
                outer=_outer_sides(int(parent), shift + bits, parents, kept),
            )
            if not parts:
                if parent_mass is not None:
                    first, end = int(parent) << (shift + bits), int(parent + 1) << (shift + bits)
                    leaves.append((first, end, parent_mass, False))
                continue
            if parent_mass is not None:
                siblings = np.ones(len(noisy[row]), bool) if allowed is None else allowed[row]
                parts += _unresolved(parts, parent_mass, siblings)
            estimates = np.array([part.mass for part in parts])
            if parent_mass is not None:
                # Consistency: the parent's estimate is shared in proportion to its parts.
                estimates = parent_mass * estimates / estimates.sum()
            for part, estimate in zip(parts, estimates, strict=True):
                child = int(children[row][part.first])
                if part.expand and level < LEVELS - 1:
                    next_frontier[child] = float(estimate)
                else:
                    last = int(children[row][part.stop - 1])
                    end = (last + 1) << shift
                    leaves.append((child << shift, end, float(estimate), part.residual))
        frontier = next_frontier
    leaves = _within_kept_span(leaves)
    if not leaves:
        empty = np.zeros(0)
        return empty, empty, empty
    leaves.sort()
    key_low = np.array([leaf[0] for leaf in leaves], dtype=np.uint64) << np.uint64(64 - KEY_BITS)
    key_high = np.array([leaf[1] for leaf in leaves], dtype=np.uint64) << np.uint64(64 - KEY_BITS)
    mass = np.array([leaf[2] for leaf in leaves], dtype=float)
    # The last representable key below the next leaf: the leaf's values are [low, high].
    low, high = from_keys(key_low), from_keys(key_high - np.uint64(1))
    if bounds is not None:
        low, high = np.clip(low, lo, hi), np.clip(high, lo, hi)
    return low, high, mass


def _split(
    noisy: np.ndarray,
    sigma: float,
    possible: np.ndarray | None = None,
    *,
    residual: bool = False,
    outer: tuple[bool, bool] = (False, False),
) -> list[Part]:
    """Siblings worth keeping.

    A sibling above the threshold is a part of its own and is expanded further. Maximal runs of
    m siblings below it are kept whole (not expanded) when their sum clears
    THRESHOLD_SIGMAS·σ·√m and m > 1. Siblings that `possible` rules out are skipped and end a
    run. With `residual` (the parent is a kept node) runs need RUN_SIGMAS·σ·√m, a single
    sibling is a run too (SINGLE_SIGMAS·σ), a run is cut into pieces, and ruled-out siblings
    are stepped over rather than ending a run: they hold no values.
    """
    if residual and possible is not None:
        index = np.flatnonzero(possible)
        return [
            Part(int(index[p.first]), int(index[p.stop - 1]) + 1, p.mass, p.expand)
            for p in _split(noisy[index], sigma, residual=True, outer=outer)
        ]
    threshold = THRESHOLD_SIGMAS * sigma
    shortest_run = 1 if residual else 2
    allowed = np.ones(len(noisy), bool) if possible is None else possible
    parts: list[Part] = []
    i = 0
    while i < len(noisy):
        if not allowed[i]:
            i += 1
            continue
        if noisy[i] >= threshold:
            parts.append(Part(i, i + 1, float(noisy[i]), expand=True))
            i += 1
            continue
        j = i
        while j < len(noisy) and allowed[j] and noisy[j] < threshold:
            j += 1
        total = float(noisy[i:j].sum())
        run_sigmas = RUN_SIGMAS if residual else THRESHOLD_SIGMAS
        bar = SINGLE_SIGMAS * sigma if j - i == 1 else run_sigmas * sigma * np.sqrt(j - i)
        if j - i >= shortest_run and total >= bar:
            if not residual:
                parts.append(Part(i, j, total, expand=False))
            else:
                # Grow pieces outward from the kept sibling the run leans on, if there is one
                # only on its right, so that a piece's empty far end is what gets left over.
                # (Residual runs have no ruled-out siblings: those were stepped over above.)
                lean_right = i == 0 and j < len(noisy)
                # A run at the outer edge of everything kept may start (or end) with empty
                # cells: the data begins inside this node. Kept in the run's first piece they
                # would be decoded as data, years of signup dates before the first real one.
                first = i + empty_edge(noisy[i:j], sigma) if i == 0 and outer[0] else i
                end_open = j == len(noisy) and outer[1]
                stop = j - empty_edge(noisy[first:j][::-1], sigma) if end_open else j
                for a, b in segments(noisy[first:stop], sigma, from_right=lean_right):
                    a, b = a + first - i, b + first - i
                    mass = float(noisy[i + a : i + b].sum())
                    parts.append(Part(i + a, i + b, mass, expand=False))
        i = j
    return parts if residual else beside_kept(parts, noisy, sigma, allowed)


def _unresolved(parts: list[Part], parent_mass: float, possible: np.ndarray) -> list[Part]:
    """What a kept parent holds beyond its kept parts, spread evenly over the siblings no part
    covers (post-processing of released counts).

    Without it, siblings too thin to keep were dropped and their rows went to the kept siblings
    when the parent's estimate was shared: a kept point mass (a common wage) absorbed the rows
    spread around it, and its neighbours came out empty. These pieces never widen the range:
    see `_within_kept_span`.
    """
    left = parent_mass - sum(part.mass for part in parts)
    uncovered = possible.copy()
    for part in parts:
        uncovered[part.first : part.stop] = False
    cells = np.flatnonzero(uncovered)
    if left <= 0 or len(cells) == 0:
        return []
    runs = np.split(cells, np.flatnonzero(np.diff(cells) > 1) + 1)
    share = left / len(cells)
    return [
        Part(int(r[0]), int(r[-1]) + 1, share * len(r), expand=False, residual=True) for r in runs
    ]


def _within_kept_span(
    leaves: list[tuple[int, int, float, bool]],
) -> list[tuple[int, int, float, bool]]:
    """Clip the residual leaves to the span of the leaves the tree kept on their own counts.

    A residual is a difference of noisy counts, so where nothing was kept (beside a constant
    column's one value, or past a narrow timestamp column's ends) it is noise: the range stays
    the one that cleared the thresholds. A clipped leaf keeps the share of its mass that lies
    inside the span.
    """
    kept = [(first, end) for first, end, _, residual in leaves if not residual]
    if not kept:
        return []
    low, high = min(first for first, _ in kept), max(end for _, end in kept)
    clipped = []
    for first, end, mass, residual in leaves:
        inside = (max(first, low), min(end, high)) if residual else (first, end)
        if inside[1] > inside[0]:
            share = (inside[1] - inside[0]) / (end - first)
            clipped.append((*inside, mass * share, residual))
    return clipped


def _outer_sides(
    parent: int, width: int, parents: np.ndarray, kept: list[tuple[int, int]]
) -> tuple[bool, bool]:
    """Whether nothing kept lies below, and above, the node `parent` (of `width` key bits):
    no other node of its level and no leaf kept on its own counts. Only there can a run's
    empty edge be the column's range; between kept nodes the data goes on."""
    low, high = parent << width, (parent + 1) << width
    below = bool((parents < parent).any()) or any(first < low for first, _ in kept)
    above = bool((parents > parent).any()) or any(end > high for _, end in kept)
    return not below, not above


def grid_span(low: np.ndarray, high: np.ndarray, decimals: int) -> tuple[np.ndarray, np.ndarray]:
    """First and last k with round(k·10^-decimals, decimals) in [low, high] (last < first: none).

    Compared as doubles, so a cell ending one ulp below 7 does not hold 7 while [0, 0.29] holds
    0.29 (which is a hair below 29/100).
    """
    step = 10.0**-decimals
    with np.errstate(invalid="ignore"):
        first, last = np.ceil(low / step), np.floor(high / step)
        # The divisions may be off by one either way.
        first = np.where(np.round(first * step, decimals) < low, first + 1, first)
        first = np.where(np.round((first - 1) * step, decimals) >= low, first - 1, first)
        last = np.where(np.round(last * step, decimals) > high, last - 1, last)
        last = np.where(np.round((last + 1) * step, decimals) <= high, last + 1, last)
    return first, last


def _holds_grid_value(cells: np.ndarray, shift: int, decimals: int) -> np.ndarray:
    """Which tree cells (prefixes of `KEY_BITS - shift` bits) hold a value with `decimals`."""
    unit = np.uint64(64 - KEY_BITS + shift)
    first = cells.astype(np.uint64) << unit
    ends = from_keys(first), from_keys(first | ((np.uint64(1) << unit) - np.uint64(1)))
    first, last = grid_span(np.minimum(*ends), np.maximum(*ends), decimals)
    return first <= last


def _first_level_keys() -> np.ndarray:
    """The smallest 64-bit key of every sign-and-exponent (first-level) cell."""
    cells = np.arange(1 << LEVEL_BITS[0], dtype=np.uint64)
    return cells << np.uint64(64 - LEVEL_BITS[0])


def _possible_first_level(*, integer: bool) -> np.ndarray:
    """Which sign-and-exponent cells a finite value of the column's type can fall in."""
    exponent = (from_keys(_first_level_keys()).view(np.uint64) >> np.uint64(52)) & np.uint64(0x7FF)
    possible = exponent != 0x7FF
    if integer:
        possible &= (exponent == 0) | (exponent >= 1023)
    return possible


def _first_level_within(low: float, high: float) -> np.ndarray:
    """Which sign-and-exponent cells hold a value of [low, high]."""
    first_key = _first_level_keys()
    last_key = first_key | np.uint64((1 << (64 - LEVEL_BITS[0])) - 1)
    with np.errstate(invalid="ignore"):
        return (from_keys(first_key) <= high) & (from_keys(last_key) >= low)


def lookup_counts(prefixes: np.ndarray, counts: np.ndarray, wanted: np.ndarray) -> np.ndarray:
    """Counts of `wanted` prefixes (0 where absent) from a sorted unique table."""
    position = np.searchsorted(prefixes, wanted)
    position = np.clip(position, 0, max(len(prefixes) - 1, 0))
    if len(prefixes) == 0:
        return np.zeros(len(wanted))
    found = prefixes[position] == wanted
    return np.where(found, counts[position], 0).astype(float)
