"""A mixture of product distributions fitted to noisy marginals.

This is the estimator behind the marginal mechanism: it turns noisy (and mutually inconsistent)
1- and 2-way counts into one proper distribution that can be sampled. K latent components, each
a product of per-column categoricals, can express any pairwise structure given enough components.
Every pair marginal is a block of one matrix product (A·diag(w))ᵀA over the concatenated column
probabilities, so scoring all pairs costs one matmul and re-fitting after each new measurement
takes milliseconds where a graphical-model estimator needs seconds. Fitting reads only the noisy
measurements, so it is post-processing. Everything runs in float64: a seed then gives the same
model run to run and whatever the thread count.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

_MASKED = -1e9


@dataclass
class Measurement:
    """Noisy counts of one marginal over `clique` (1 or 2 columns); NaN cells were not measured."""

    clique: tuple[int, ...]
    counts: np.ndarray
    sigma: float


class MixtureModel:
    """K components × d columns of categorical probabilities."""

    def __init__(self, cardinalities: tuple[int, ...], components: int, seed: int) -> None:
        self.cardinalities = cardinalities
        self.width = max(cardinalities)
        self.offsets = np.r_[0, np.cumsum(cardinalities)]
        generator = torch.Generator().manual_seed(seed)
        d = len(cardinalities)
        valid = torch.arange(self.width)[None, :] < torch.tensor(cardinalities)[:, None]
        self._pad = torch.where(valid, 0.0, _MASKED).double()[:, None, :]  # (d, 1, width)
        self._flat_index = torch.nonzero(valid.reshape(-1)).squeeze(1)
        shape = (d, components, self.width)
        self.logits = 0.5 * torch.randn(shape, generator=generator, dtype=torch.float64)
        self.logits.requires_grad_(True)
        self.weight_logits = torch.zeros(components, dtype=torch.float64, requires_grad=True)

    def initialise(self, one_way: dict[int, np.ndarray]) -> None:
        """Centre every component on the measured 1-way distribution of each column."""
        with torch.no_grad():
            for column, probs in one_way.items():
                padded = np.zeros(self.width)
                padded[: len(probs)] = probs
                self.logits[column] += torch.log(torch.from_numpy(padded) + 1e-3)

    def probabilities(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Component weights (K,) and per-column probabilities (d, K, width)."""
        return (
            torch.softmax(self.weight_logits, 0),
            torch.softmax(self.logits + self._pad, dim=-1),
        )

    def joint(self) -> tuple[np.ndarray, np.ndarray]:
        """All 1-way marginals (C,) and all pair marginals as one (C, C) matrix of blocks.

        C is the total number of codes; block (a, b) of the matrix is P(column a, column b).
        """
        with torch.no_grad():
            weights, probs = self.probabilities()
            flat = probs.permute(1, 0, 2).reshape(len(weights), -1)[:, self._flat_index]
            singles = weights @ flat
            pairs = (flat * weights[:, None]).T @ flat
        return singles.numpy(), pairs.numpy()

    def marginal(self, clique: tuple[int, ...]) -> np.ndarray:
        """P over one column, or the (c_a, c_b) table of a pair."""
        with torch.no_grad():
            weights, probs = self.probabilities()
            if len(clique) == 1:
                (a,) = clique
                return (weights @ probs[a])[: self.cardinalities[a]].numpy()
            a, b = clique
            table = (probs[a] * weights[:, None]).T @ probs[b]
            return table[: self.cardinalities[a], : self.cardinalities[b]].numpy()

    def fit(self, measurements: list[Measurement], total: float, steps: int, lr: float) -> None:
        """Weighted least squares of the model's marginals against the noisy counts."""
        batches = _batches(measurements, self.cardinalities, total)
        optimizer = torch.optim.Adam([self.logits, self.weight_logits], lr=lr)
        for _ in range(steps):
            optimizer.zero_grad()
            weights, probs = self.probabilities()
            loss = torch.zeros((), dtype=torch.float64)
            for batch in batches:
                if batch.second is None:
                    model = torch.einsum(
                        "k,mkc->mc", weights, probs[batch.first, :, : batch.width_a]
                    )
                else:
                    model = torch.einsum(
                        "k,mkc,mke->mce",
                        weights,
                        probs[batch.first, :, : batch.width_a],
                        probs[batch.second, :, : batch.width_b],
                    )
                loss = loss + (batch.weight * (model - batch.target) ** 2).sum()
            loss.backward()
            optimizer.step()

    def sample(
        self, n: int, rng: np.random.Generator, given: tuple[int, np.ndarray] | None = None
    ) -> np.ndarray:
        """`n` rows whose marginals follow the model up to rounding, not up to sampling noise.

        Independent draws would add multinomial noise of about √(n·p) per cell on top of the
        estimate (on a 20k-row table more than the DP noise itself). Instead each component gets
        n·w_k rows and, within it, each column gets n_k·p_kv rows of each value, both rounded by
        systematic rounding (floor or ceiling at random, so that the expected counts are exact);
        the values of each column are shuffled within the component, which keeps the columns
        independent given the component, and the rows are shuffled at the end.

        With `given` = (column, allowed codes) the rows come exactly from the model's conditional
        distribution given that the column's code is one of them (conditioning.py): component
        weights become their posterior, the column's probabilities are restricted.
        """
        with torch.no_grad():
            weights, probs = self.probabilities()
        weights = weights.numpy()
        probs = probs.numpy()
        if given is not None:
            weights, probs = _restricted(weights, probs, *given)
        sizes = systematic_round(n * weights[None, :] / weights.sum(), np.array([n]), rng)[0]
        component = np.repeat(np.arange(len(weights)), sizes)
        codes = np.empty((n, len(self.cardinalities)), dtype=np.int32)
        for column, cardinality in enumerate(self.cardinalities):
            p = probs[column, :, :cardinality]
            counts = systematic_round(sizes[:, None] * p / p.sum(axis=1, keepdims=True), sizes, rng)
            values = np.repeat(np.tile(np.arange(cardinality), len(sizes)), counts.ravel())
            codes[:, column] = values[np.lexsort((rng.random(n), component))]
        return codes[rng.permutation(n)]


def _restricted(
    weights: np.ndarray, probs: np.ndarray, column: int, allowed: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Posterior component weights and the column's probabilities restricted to `allowed`."""
    keep = np.zeros(probs.shape[2])
    keep[allowed] = 1.0
    probs = probs.copy()
    probs[column] *= keep
    weights = weights * probs[column].sum(axis=1)
    if not weights.sum() > 0:
        raise ValueError("the model puts no mass on the given codes")
    # A component without mass there draws no row; keep its row finite for the rounding.
    empty = probs[column].sum(axis=1) <= 0
    probs[column][empty] = keep
    return weights, probs


def systematic_round(expected: np.ndarray, totals: np.ndarray, rng: np.random.Generator):
    """Integer counts per row of `expected` (rows summing to `totals`), each cell the floor or
    ceiling of its expected count with the expectation kept, every row summing to its total."""
    cumulative = np.cumsum(expected, axis=1)
    cumulative[:, -1] = totals  # no floating-point excess past the total
    cut = np.floor(cumulative + rng.random((len(totals), 1)))
    cut[:, -1] = totals
    return np.diff(cut, axis=1, prepend=0.0).astype(np.int64)


@dataclass
class _Batch:
    """Measurements of one shape bucket, padded to (width_a[, width_b]) and stacked."""

    first: torch.Tensor
    second: torch.Tensor | None
    width_a: int
    width_b: int
    target: torch.Tensor
    weight: torch.Tensor


def _batches(measurements: list[Measurement], cards: tuple[int, ...], total: float) -> list[_Batch]:
    """The merged measurements (`merge_measurements`) stacked by padded shape: widths are padded
    to 4, 16 or 64 to keep batches few."""
    groups: dict[tuple[int, ...], list[tuple[tuple[int, ...], np.ndarray, np.ndarray]]] = {}
    for clique, (target, weight) in merge_measurements(measurements, total).items():
        shape = tuple(min(_bucket(cards[c]), max(cards)) for c in clique)
        groups.setdefault(shape, []).append((clique, target, weight))
    batches = []
    for shape, items in groups.items():
        target = np.zeros((len(items), *shape))
        weight = np.zeros((len(items), *shape))
        for i, (_, t, w) in enumerate(items):
            index = (i, *(slice(0, n) for n in t.shape))
            target[index] = t
            weight[index] = w
        batches.append(
            _Batch(
                first=torch.tensor([clique[0] for clique, _, _ in items]),
                second=torch.tensor([clique[1] for clique, _, _ in items])
                if len(shape) == 2
                else None,
                width_a=shape[0],
                width_b=shape[-1],
                target=torch.from_numpy(target),
                weight=torch.from_numpy(weight),
            )
        )
    return batches


def merge_measurements(
    measurements: list[Measurement], total: float
) -> dict[tuple[int, ...], tuple[np.ndarray, np.ndarray]]:
    """Per clique, the target probabilities and each cell's weight in the squared loss.

    Repeats of a clique are merged by inverse-variance weighting (cell by cell, NaN =
    unmeasured). A cell's weight is its summed inverse noise variance on the probability scale,
    normalised so the loss stays O(1) whatever the budget.
    """
    merged: dict[tuple[int, ...], tuple[np.ndarray, np.ndarray]] = {}
    for m in measurements:
        precision = np.where(np.isfinite(m.counts), (total / m.sigma) ** 2, 0.0)
        value = np.nan_to_num(m.counts / total, nan=0.0) * precision
        if m.clique in merged:
            value_sum, precision_sum = merged[m.clique]
            merged[m.clique] = (value_sum + value, precision_sum + precision)
        else:
            merged[m.clique] = (value, precision)
    scale = sum(float(p.sum()) for _, p in merged.values()) or 1.0
    out = {}
    for clique, (value_sum, precision) in merged.items():
        target = np.divide(value_sum, precision, out=np.zeros_like(value_sum), where=precision > 0)
        out[clique] = (target, precision / scale)
    return out


def _bucket(cardinality: int) -> int:
    """Padded width: few distinct widths keep the batches few (each costs a kernel launch)."""
    for width in (4, 16, 64):
        if cardinality <= width:
            return width
    return cardinality
