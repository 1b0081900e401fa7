"""Pieces of a tree level's siblings kept below the main threshold (`tree.py`): runs cut into
pieces, their empty outer edges, and first-level pieces grown beside a kept sibling. All of it is
post-processing of a level's released noisy counts.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

RUN_SIGMAS = 3.0
# Below a kept node a single missed child is a run too, so that it keeps its share of the
# parent's mass rather than hand it to the resolved siblings (which would, say, turn the 7s of a
# count column into 4s, 5s and 6s). A run is cut into pieces that each clear RUN_SIGMAS·σ·√m,
# so that a flat stretch keeps some resolution instead of becoming one uniform leaf. A single
# missed child, always next to a kept sibling, needs SINGLE_SIGMAS·σ (a common count value
# holds ~3σ at a wide table's budget); longer runs keep RUN_SIGMAS, as a lower bar let noise-only
# runs far from the data through often enough to move a timestamp twin's range by years.
SINGLE_SIGMAS = 2.0
# A run at the outer edge of all the tree kept loses its leading (trailing) cells when they look
# empty (`empty_edge`) and their noisy sum stays within EDGE_SIGMAS·σ·√k of zero: 1.5σ lets
# 93 % of empty prefixes go and keeps most thin real tails. Trimming inside the data too (at
# every parent's edge) cut cells of ~1σ each from a bimodal date column.
EDGE_SIGMAS = 1.5
# On the first level, pieces of up to BESIDE_CELLS siblings next to a kept one need
# BESIDE_SIGMAS·σ·√m rather than a maximal run's THRESHOLD_SIGMAS·σ·√m (`beside_kept`): an
# empty piece passes with probability 3e-5, and only ever extends a range the data holds.
BESIDE_SIGMAS = 4.0
BESIDE_CELLS = 4
# ... and BESIDE_SHARE of the kept cells' mass: a thin tail octave beside a well-measured column
# (CPS 1988 at ε = 1) decoded uniformly cost 2 % of its 2-way TVD.
BESIDE_SHARE = 0.05


@dataclass(frozen=True)
class Part:
    """Siblings [first, stop) kept as one node with their summed noisy mass."""

    first: int
    stop: int
    mass: float
    expand: bool  # a single sibling that cleared the threshold: its children are examined
    residual: bool = False  # what the parent holds beyond its kept parts (`tree._unresolved`)


def beside_kept(
    parts: list[Part], noisy: np.ndarray, sigma: float, allowed: np.ndarray
) -> list[Part]:
    """`parts` and the pieces grown outward from each kept sibling (first level only).

    A maximal run below the threshold reaches to the ends of the type's range, so a real
    octave next to a kept one (~19 % of a wide table's rows at ε = 0.3) was lost with it. A
    piece of at most BESIDE_CELLS siblings next to a kept one (or to a piece grown before) is
    kept when its sum clears BESIDE_SIGMAS·σ·√m (a gap between kept siblings, SINGLE_SIGMAS·σ·√m);
    growth stops where none does, at a ruled-out sibling or at one already kept.
    Post-processing of the released counts.
    """
    covered = np.zeros(len(noisy), bool)
    for part in parts:
        covered[part.first : part.stop] = True
    grown: list[Part] = []
    floor = BESIDE_SHARE * sum(part.mass for part in parts)
    for part in [p for p in parts if p.expand]:
        for step in (-1, 1):
            edge = part.first if step < 0 else part.stop - 1
            while True:
                piece = _piece_beside(noisy, sigma, floor, allowed, covered, edge, step)
                if piece is None:
                    break
                first, stop = (edge - piece, edge) if step < 0 else (edge + 1, edge + 1 + piece)
                covered[first:stop] = True
                grown.append(Part(first, stop, float(noisy[first:stop].sum()), piece == 1))
                edge = first if step < 0 else stop - 1
    return sorted(parts + grown, key=lambda part: part.first)


def _piece_beside(
    noisy: np.ndarray,
    sigma: float,
    floor: float,
    allowed: np.ndarray,
    covered: np.ndarray,
    edge: int,
    step: int,
) -> int | None:
    """The fewest siblings m ≤ BESIDE_CELLS next to `edge` (towards `step`) whose noisy sum
    clears BESIDE_SIGMAS·σ·√m and `floor`, none of them kept yet; a gap of m siblings up to the
    next kept one is bounded by data on both sides and needs SINGLE_SIGMAS·σ·√m. None when
    neither."""
    total = 0.0
    for m in range(1, BESIDE_CELLS + 2):
        cell = edge + step * m
        if not 0 <= cell < len(noisy) or not allowed[cell]:
            return None
        if covered[cell]:
            gap = m - 1
            return gap if gap and total >= SINGLE_SIGMAS * sigma * np.sqrt(gap) else None
        if m > BESIDE_CELLS:
            return None
        total += float(noisy[cell])
        if total >= max(BESIDE_SIGMAS * sigma * np.sqrt(m), floor):
            return m
    return None


def empty_edge(noisy: np.ndarray, sigma: float) -> int:
    """How many cells at the start of a run look empty: the change point k of the best fit of
    "zero for k cells, then a constant" to the noisy counts (least squares: k maximises
    (S - S_k)² / (m - k)), kept only when the k cells' noisy sum is within EDGE_SIGMAS·σ·√k
    of zero. Post-processing of released counts. Pure noise before data of ≥ 3σ a cell is
    found almost exactly; a thin real tail is cut only when it passes for noise, its rows then
    going to the cells kept."""
    sums = np.r_[0.0, np.cumsum(noisy)]
    rest = sums[-1] - sums[:-1]
    fit = np.where(rest > 0, rest**2 / (len(noisy) - np.arange(len(noisy))), -np.inf)
    k = int(np.argmax(fit))
    return k if sums[k] <= EDGE_SIGMAS * sigma * np.sqrt(k) else 0


def segments(noisy: np.ndarray, sigma: float, *, from_right: bool) -> list[tuple[int, int]]:
    """Cut a run into pieces that each clear RUN_SIGMAS·σ·√m, scanning from one end; what is
    left at the far end joins the last piece."""
    values = noisy[::-1] if from_right else noisy
    cuts: list[tuple[int, int]] = []
    start, total = 0, 0.0
    for k, value in enumerate(values):
        total += value
        if total >= RUN_SIGMAS * sigma * np.sqrt(k + 1 - start):
            cuts.append((start, k + 1))
            start, total = k + 1, 0.0
    if start < len(values):
        cuts[-1:] = [(cuts[-1][0] if cuts else 0, len(values))]
    if from_right:
        cuts = [(len(values) - b, len(values) - a) for a, b in reversed(cuts)]
    return cuts
