"""The whole joint distribution as one array, fitted to noisy marginals: for small domains.

When the product of the cardinalities is small (CPS 1988: 7 columns, 32k–50k cells), the joint
distribution fits in memory as it is, and fitting it to the noisy measurements needs no model
family at all: the estimate is the distribution over every cell whose marginals best match the
measurements in weighted least squares (weights the inverse noise variances, as for the
mixture). All its marginals are then consistent by construction, which is what makes AIM's
graphical-model estimator strong; on an explicit domain the two are the same problem.

The fit is entropic mirror descent on the log-probabilities (multiplicative updates of the
probabilities), as private-pgm does for explicit domains, accelerated with restarted momentum. Every
measured marginal is computed from the full table through a lattice of intermediate marginals
(`_Lattice`), so a step costs a few passes over the cells rather than one per measurement. It
reads only the noisy measurements: post-processing. float64 and no random draws in the fit: a
seed gives the same model.
"""

from __future__ import annotations

import math

import numpy as np

from dbt_synth.mechanisms.mixture import Measurement, merge_measurements, systematic_round
from dbt_synth.mechanisms.repair import REPAIR_MAX_ROWS, repair

Clique = tuple[int, ...]


class DenseModel:
    """Log-probabilities of every cell of the product of the columns' codes."""

    def __init__(self, cardinalities: tuple[int, ...]) -> None:
        self.cardinalities = tuple(int(c) for c in cardinalities)
        self.offsets = np.r_[0, np.cumsum(self.cardinalities)].astype(int)
        cells = float(self.cells(self.cardinalities))
        self.log_probs = np.full(self.cardinalities, -np.log(cells))

    @staticmethod
    def cells(cardinalities: tuple[int, ...]) -> int:
        """How many cells (floats) the model of these columns holds (exact: Python integers, so a
        wide table's product cannot overflow)."""
        return math.prod(int(c) for c in cardinalities)

    def initialise(self, one_way: dict[int, np.ndarray]) -> None:
        """Start from the product of the measured 1-way distributions (uniform elsewhere)."""
        log_probs = np.zeros(self.cardinalities)
        for column, probs in one_way.items():
            shape = [1] * len(self.cardinalities)
            shape[column] = self.cardinalities[column]
            log_probs = log_probs + np.log(np.asarray(probs, float) + 1e-6).reshape(shape)
        self.log_probs = _normalised(log_probs + np.zeros(self.cardinalities))

    def probabilities(self) -> np.ndarray:
        return np.exp(self.log_probs)

    def fit(self, measurements: list[Measurement], total: float, steps: int, lr: float) -> None:
        """Accelerated mirror descent on the weighted squared error of the measured marginals.

        The step is `lr`/L, L the loss's smoothness constant in the ℓ1 norm (1/L is the safe step
        of plain mirror descent on the simplex). Nesterov momentum on the log-probabilities,
        restarted whenever the loss at the extrapolated point rises (O'Donoghue and Candès'
        adaptive restart), is what lets a step well past 1/L converge: on CPS 1988's final fit
        it reaches in 100 steps what plain mirror descent with backtracking reaches in 600.
        `steps` counts evaluations of the loss and its gradient (a few passes over the cells).
        """
        merged = merge_measurements(measurements, total)
        if any(list(clique) != sorted(clique) for clique in merged):
            raise ValueError("a measured clique's columns must be in increasing order")
        targets = {clique: target for clique, (target, _) in merged.items()}
        weights = {clique: weight for clique, (_, weight) in merged.items()}
        lattice = _Lattice(self.cardinalities, list(merged))
        smoothness = 2.0 * sum(float(w.max()) for w in weights.values())
        if smoothness <= 0:
            return

        def evaluate(log_probs: np.ndarray) -> tuple[float, np.ndarray]:
            tables = lattice.marginals(np.exp(log_probs))
            residuals = {c: tables[c] - targets[c] for c in merged}
            loss = sum(float((weights[c] * r**2).sum()) for c, r in residuals.items())
            return loss, lattice.spread({c: 2.0 * weights[c] * r for c, r in residuals.items()})

        step = lr / smoothness
        current = previous = self.log_probs
        since_restart, last_loss = 0, np.inf
        for _ in range(steps):
            point = current
            if since_restart > 1:
                momentum = (since_restart - 1) / (since_restart + 2)
                point = _normalised(current + momentum * (current - previous))
            loss, gradient = evaluate(point)
            if loss > last_loss and since_restart > 1:
                since_restart, point = 0, current
                loss, gradient = evaluate(point)
            if loss > last_loss:  # even the plain step went uphill: it was too long
                step *= 0.5
            last_loss = loss
            previous, current = current, _normalised(point - step * gradient)
            since_restart += 1
        self.log_probs = current

    def marginal(self, clique: Clique) -> np.ndarray:
        """P over one column, or the (c_a, c_b) table of a pair (in the clique's order)."""
        key = tuple(sorted(clique))
        others = tuple(c for c in range(len(self.cardinalities)) if c not in key)
        table = self.probabilities().sum(axis=others)
        return table if key == tuple(clique) else table.T

    def joint(self) -> tuple[np.ndarray, np.ndarray]:
        """All 1-way marginals (C,) and all pair marginals as one (C, C) matrix of blocks.

        C is the total number of codes; block (a, b) of the matrix is P(column a, column b), the
        diagonal blocks are diag(P(column a)).
        """
        d = len(self.cardinalities)
        singles_of = [(a,) for a in range(d)]
        pairs_of = [(a, b) for a in range(d) for b in range(a + 1, d)]
        tables = _Lattice(self.cardinalities, singles_of + pairs_of).marginals(self.probabilities())
        o = self.offsets
        singles = np.concatenate([tables[(a,)] for a in range(d)])
        pairs = np.diag(singles)
        for a, b in pairs_of:
            pairs[o[a] : o[a + 1], o[b] : o[b + 1]] = tables[(a, b)]
            pairs[o[b] : o[b + 1], o[a] : o[a + 1]] = tables[(a, b)].T
        return singles, pairs

    def sample(
        self, n: int, rng: np.random.Generator, given: tuple[int, np.ndarray] | None = None
    ) -> np.ndarray:
        """`n` rows whose cell counts are the model's up to rounding, not up to sampling noise.

        The expected count n·p of every cell is rounded by systematic rounding (floor or ceiling
        at random, expectations kept, total exactly n) over the cells in C order, so every
        marginal is within rounding of the model's. Up to `REPAIR_MAX_ROWS` rows, the rounding
        errors that pile up in the pair marginals of later columns are then moved back out
        (repair.py: deterministic, reads only the model); the rows are shuffled. With `given` =
        (column, allowed codes) the rows come from the exact conditional distribution given
        that the column's code is one of them (conditioning.py).
        """
        probs = self.probabilities()
        if given is not None:
            column, allowed = given
            keep = np.zeros(self.cardinalities[column])
            keep[np.asarray(allowed, dtype=np.int64)] = 1.0
            shape = [1] * len(self.cardinalities)
            shape[column] = self.cardinalities[column]
            probs = probs * keep.reshape(shape)
        flat = probs.ravel()
        mass = flat.sum()
        if not mass > 0:
            raise ValueError("the model puts no mass on the given codes")
        counts = systematic_round(n * flat[None, :] / mass, np.array([n]), rng)[0]
        cells = np.repeat(np.arange(len(flat)), counts)
        codes = np.column_stack(np.unravel_index(cells, self.cardinalities)).astype(np.int32)
        if n <= REPAIR_MAX_ROWS:
            codes = repair(codes, probs / mass)
        return codes[rng.permutation(n)]


class _Lattice:
    """Every clique's marginal from the full table in a few passes over the cells.

    A clique's table is computed from its parent, the clique plus the highest column it lacks,
    so the chains of all cliques share their large ancestors: each table costs one reduction
    of its parent, and the few tables near the full one are the only full passes. `spread` is
    the adjoint: each clique's gradient is broadcast into its parent's, smallest first, and the
    full table receives one array.
    """

    def __init__(self, cardinalities: tuple[int, ...], cliques: list[Clique]) -> None:
        self.shape = cardinalities
        self.full = tuple(range(len(cardinalities)))
        self.parent: dict[Clique, tuple[Clique, int]] = {}
        self.order: list[Clique] = []  # each clique after its parent
        for clique in cliques:
            self._add(clique)

    def _add(self, clique: Clique) -> None:
        if clique == self.full or clique in self.parent:
            return
        missing = max(c for c in self.full if c not in clique)
        parent = tuple(sorted((*clique, missing)))
        self._add(parent)
        self.parent[clique] = (parent, parent.index(missing))
        self.order.append(clique)

    def marginals(self, probs: np.ndarray) -> dict[Clique, np.ndarray]:
        tables = {self.full: probs}
        for clique in self.order:
            parent, axis = self.parent[clique]
            tables[clique] = np.add.reduce(tables[parent], axis=axis)
        return tables

    def spread(self, gradients: dict[Clique, np.ndarray]) -> np.ndarray:
        """Σ over cliques of each clique's gradient broadcast over the cells (the full shape)."""
        pending: dict[Clique, np.ndarray] = dict(gradients)
        for clique in reversed(self.order):
            if clique not in pending:
                continue
            parent, axis = self.parent[clique]
            gradient = pending.pop(clique)  # may still be broadcast (size 1) along some axes
            spread = gradient.reshape((*gradient.shape[:axis], 1, *gradient.shape[axis:]))
            pending[parent] = pending[parent] + spread if parent in pending else spread
        full = pending.get(self.full, np.zeros(1))
        return full if full.shape == self.shape else np.broadcast_to(full, self.shape)


def _normalised(log_probs: np.ndarray) -> np.ndarray:
    top = log_probs.max()
    return log_probs - (top + np.log(np.exp(log_probs - top).sum()))
