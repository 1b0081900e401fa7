"""Moving a rounded sample's values toward the model's pair marginals: post-processing only.

The dense sampler (dense.py) rounds n·p of every cell to an integer count by systematic rounding
in C order. Each contiguous run of cells then keeps its expected count within one row, so the
marginals of the leading columns are the model's almost exactly; but a pair of later columns sums
cells spread over the whole table, and there the rounding errors of thousands of cells add up (on
CPS 1988 with ε = 3, 22,524 rows over 22,400 cells: 0.0020 pair TVD between the sample and its
own model, half the model's error against the real data).

`repair` takes the rows and lowers L = Σ over column pairs (a, b) of Σ |count(a, b) − n·P(a, b)|
plus Σ over cells of |count − n·p| (the full-cell term keeps the rows on the model's cells, and
so its higher-order structure), by greedy moves of one row's value in one column. For a column
a, a move of a row from value i to j changes only the residuals (i, x_b) and (j, x_b) of the
pairs (a, b) and two cells, so the gain of every (row, j) is a handful of gathers from the
residual tables: one pass costs O(n · cardinality · columns). No row moves onto a cell the
model gives no mass (a conditional's excluded codes). Each pass applies, for every
(i, j), only the row with the best positive gain, so the moves of one pass rarely push the same
residual past zero; passes repeat until none gains (at most 20 a column, two sweeps over the
columns). It reads only the model's probabilities and
the sampled codes, never real data, and draws nothing at random: the same rows in, the same rows
out.
"""

from __future__ import annotations

from itertools import combinations

import numpy as np

_PASSES_PER_COLUMN = 20
_SWEEPS = 2
# Above this many rows the pass is skipped: its cost grows with the rows (CPS 1988's model,
# 2 shared cores, before movers were limited to rows whose removal gains: 1.5 s at 22k rows,
# 4.3 s at 65k, 50 s at 262k), while the rounding error it removes shrinks as 1/rows (0.0020
# pair TVD at 22k rows, about 0.0002 at 262k).
REPAIR_MAX_ROWS = 2**16


def repair(codes: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """`codes` (n × d, rows of cells of `probs`) with values moved so that the rows' pair
    marginals and cell counts lie closer (in L1) to n times the model's; a new array."""
    codes = np.array(codes, dtype=np.int64, copy=True)
    n, d = codes.shape
    if n == 0 or d < 2:
        return codes.astype(np.int32)
    cards = probs.shape
    strides = np.array([int(np.prod(cards[a + 1 :], dtype=np.int64)) for a in range(d)])
    expected_cells = n * probs.ravel()
    expected_pairs = {
        (a, b): n * probs.sum(axis=tuple(c for c in range(d) if c not in (a, b)))
        for a, b in combinations(range(d), 2)
    }
    possible = [probs.sum(axis=tuple(c for c in range(d) if c != a)) > 0 for a in range(d)]
    for _ in range(_SWEEPS):
        moved = 0
        for a in range(d):
            for _ in range(_PASSES_PER_COLUMN):
                step = _pass(codes, a, cards, strides, expected_cells, expected_pairs, possible[a])
                moved += step
                if step == 0:
                    break
        if moved == 0:
            break
    return codes.astype(np.int32)


def _pass(codes, a, cards, strides, expected_cells, expected_pairs, possible) -> int:
    """One batch of improving moves in column `a`; returns how many rows moved.

    Only rows whose removal alone lowers L (over-filled cells and pair entries) are weighed as
    movers: on CPS 1988's models this finds the same moves at about 40 % of the cost.
    """
    d = codes.shape[1]
    width = cards[a]
    current = codes[:, a]
    flat = codes @ strides
    cells = np.bincount(flat, minlength=len(expected_cells)) - expected_cells
    # gain of taking one row out of residual r: |r| - |r - 1|; of adding one: |r| - |r + 1|
    here = cells[flat]
    taken = np.abs(here) - np.abs(here - 1)
    residuals = {}
    for b in range(d):
        if b == a:
            continue
        first, second = min(a, b), max(a, b)
        counts = np.bincount(
            codes[:, first] * cards[second] + codes[:, second],
            minlength=cards[first] * cards[second],
        ).reshape(cards[first], cards[second])
        residual = counts - expected_pairs[(first, second)]
        residuals[b] = residual if first == a else residual.T  # rows: the value of column a
        here = residuals[b][current, codes[:, b]]
        taken += np.abs(here) - np.abs(here - 1)
    rows = np.flatnonzero(taken > 0)
    if len(rows) == 0:
        return 0
    value_now = current[rows]
    gain = np.empty((width, len(rows)))
    base = flat[rows] - value_now * strides[a]
    for j in range(width):
        target = base + j * strides[a]
        there = cells[target]
        gain[j] = np.where(expected_cells[target] > 0, np.abs(there) - np.abs(there + 1), -np.inf)
    for b, residual in residuals.items():
        gain += (np.abs(residual) - np.abs(residual + 1))[:, codes[rows, b]]
    gain += taken[rows]
    gain[value_now, np.arange(len(rows))] = -np.inf
    gain[~possible] = -np.inf
    best = gain.argmax(axis=0)
    value = gain[best, np.arange(len(rows))]
    movers = np.flatnonzero(value > 1e-9)
    if len(movers) == 0:
        return 0
    movers = movers[np.argsort(-value[movers], kind="stable")]
    _, first_of_key = np.unique(value_now[movers] * width + best[movers], return_index=True)
    chosen = movers[first_of_key]
    codes[rows[chosen], a] = best[chosen]
    return len(chosen)
