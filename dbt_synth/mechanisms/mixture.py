"""A mixture of product distributions fitted to noisy marginals.

This is the estimator behind the marginal mechanism: it turns noisy (and mutually inconsistent)
1- and 2-way counts into one proper distribution that can be sampled. K latent components, each
a product of per-column categoricals, can express any pairwise structure given enough components,
and every marginal is a cheap batched einsum, so re-fitting after each new measurement takes
milliseconds where a graphical-model estimator needs seconds. Fitting reads only the noisy
measurements, so it is post-processing.
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
    """K components × d columns of categorical probabilities, padded to the widest column."""

    def __init__(self, cardinalities: tuple[int, ...], components: int, seed: int) -> None:
        self.cardinalities = cardinalities
        self.width = max(cardinalities)
        generator = torch.Generator().manual_seed(seed)
        d = len(cardinalities)
        valid = torch.arange(self.width)[None, :] < torch.tensor(cardinalities)[:, None]
        self._pad = torch.where(valid, 0.0, _MASKED)[:, None, :]  # (d, 1, width)
        self.logits = 0.5 * torch.randn(
            d, components, self.width, generator=generator, dtype=torch.float64
        )
        self.logits.requires_grad_(True)
        self.weight_logits = torch.zeros(components, dtype=torch.float64, requires_grad=True)

    def initialise(self, one_way: dict[int, np.ndarray]) -> None:
        """Centre every component on the measured 1-way distribution of each column."""
        with torch.no_grad():
            for column, probs in one_way.items():
                padded = np.zeros(self.width)
                padded[: len(probs)] = probs
                self.logits[column] += torch.log(torch.tensor(padded, dtype=torch.float64) + 1e-3)

    def probabilities(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Component weights (K,) and per-column probabilities (d, K, width)."""
        return (
            torch.softmax(self.weight_logits, 0),
            torch.softmax(self.logits + self._pad, dim=-1),
        )

    def pair_marginals(self, first: torch.Tensor, second: torch.Tensor, probs=None) -> torch.Tensor:
        """Probability tables (m, width, width) of the column pairs (first[i], second[i])."""
        weights, column_probs = probs or self.probabilities()
        return torch.einsum("k,mkc,mke->mce", weights, column_probs[first], column_probs[second])

    def single_marginals(self, columns: torch.Tensor, probs=None) -> torch.Tensor:
        weights, column_probs = probs or self.probabilities()
        return torch.einsum("k,mkc->mc", weights, column_probs[columns])

    def fit(self, measurements: list[Measurement], total: float, steps: int, lr: float) -> None:
        """Weighted least squares of the model's marginals against the noisy counts."""
        singles, pairs = _stack(measurements, self.width, total)
        optimizer = torch.optim.Adam([self.logits, self.weight_logits], lr=lr)
        for _ in range(steps):
            optimizer.zero_grad()
            probs = self.probabilities()
            loss = torch.zeros((), dtype=torch.float64)
            if singles is not None:
                columns, target, weight = singles
                model = self.single_marginals(columns, probs)
                loss = loss + (weight * (model - target) ** 2).sum()
            if pairs is not None:
                first, second, target, weight = pairs
                model = self.pair_marginals(first, second, probs)
                loss = loss + (weight * (model - target) ** 2).sum()
            loss.backward()
            optimizer.step()

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        with torch.no_grad():
            weights, probs = self.probabilities()
        weights = weights.double().numpy()
        probs = probs.double().numpy()
        component = rng.choice(len(weights), size=n, p=weights / weights.sum())
        codes = np.empty((n, len(self.cardinalities)), dtype=np.int32)
        for column, cardinality in enumerate(self.cardinalities):
            cumulative = np.cumsum(probs[column, :, :cardinality], axis=1)
            cumulative /= cumulative[:, -1:]
            draws = rng.random(n)
            picked = (draws[:, None] > cumulative[component]).sum(axis=1)
            codes[:, column] = np.minimum(picked, cardinality - 1)
        return codes


def _stack(measurements: list[Measurement], width: int, total: float):
    """Batch the measurements into padded tensors of targets (as probabilities) and weights.

    A cell's weight is (total/σ)² — the inverse noise variance on the probability scale —
    normalised so that the loss stays O(1) whatever the budget.
    """
    singles = [m for m in measurements if len(m.clique) == 1]
    pairs = [m for m in measurements if len(m.clique) == 2]
    scale = sum((total / m.sigma) ** 2 * np.isfinite(m.counts).sum() for m in measurements)
    stacked_singles = stacked_pairs = None
    if singles:
        target = np.zeros((len(singles), width))
        weight = np.zeros((len(singles), width))
        for i, m in enumerate(singles):
            known = np.isfinite(m.counts)
            target[i, : len(m.counts)] = np.where(known, m.counts, 0.0) / total
            weight[i, : len(m.counts)] = known * (total / m.sigma) ** 2 / scale
        stacked_singles = (
            torch.tensor([m.clique[0] for m in singles]),
            torch.tensor(target, dtype=torch.float64),
            torch.tensor(weight, dtype=torch.float64),
        )
    if pairs:
        target = np.zeros((len(pairs), width, width))
        weight = np.zeros((len(pairs), width, width))
        for i, m in enumerate(pairs):
            a, b = m.counts.shape
            target[i, :a, :b] = m.counts / total
            weight[i, :a, :b] = (total / m.sigma) ** 2 / scale
        stacked_pairs = (
            torch.tensor([m.clique[0] for m in pairs]),
            torch.tensor([m.clique[1] for m in pairs]),
            torch.tensor(target, dtype=torch.float64),
            torch.tensor(weight, dtype=torch.float64),
        )
    return stacked_singles, stacked_pairs
