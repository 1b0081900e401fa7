"""Adaptive marginal mechanism: select, measure and fit noisy low-order marginals.

The selection rule follows AIM (McKenna et al., 2022): each round the exponential mechanism picks
the 1- or 2-way marginal the current model gets most wrong — weighted by how much of the all-pairs
workload it covers, minus the error its own measurement noise would bring — the Gaussian mechanism
measures it, and the estimator is re-fitted. When a measurement barely moves the model, the noise is
halved. The estimator is a `MixtureModel` instead of a graphical model, which is what makes a round
cost milliseconds. All ρ is composed by the accountant; the last round spends exactly what is left.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from dbt_synth.accounting import PrivacyAccountant
from dbt_synth.mechanisms.base import EncodedTable, Mechanism, Progress
from dbt_synth.mechanisms.mixture import Measurement, MixtureModel

_MEASURE_SHARE = 0.9  # of each round's ρ, the rest pays for the selection
_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)


class MarginalMechanism(Mechanism):
    """AIM-style adaptive measurements of the all-pairs workload, fitted by a mixture model."""

    name = "marginal"

    def __init__(
        self,
        components: int = 256,
        rounds_per_column: int = 16,
        init_steps: int = 400,
        round_steps: int = 40,
        learning_rate: float = 0.05,
        max_rounds: int = 400,
    ) -> None:
        self.components = components
        self.rounds_per_column = rounds_per_column
        self.init_steps = init_steps
        self.round_steps = round_steps
        self.learning_rate = learning_rate
        self.max_rounds = max_rounds
        self._model: MixtureModel | None = None
        self.rounds = 0

    def fit(
        self,
        data: EncodedTable,
        accountant: PrivacyAccountant,
        *,
        rows_estimate: float,
        rng: np.random.Generator,
        progress: Progress,
    ) -> None:
        cards = data.cardinalities
        d = len(cards)
        seed = int(rng.integers(2**31))
        torch.manual_seed(seed)
        model = MixtureModel(cards, self.components, seed)
        self._model = model
        total = max(rows_estimate, 1.0)
        rho = accountant.remaining_rho()
        rounds = min(self.rounds_per_column * d, self.max_rounds)
        sigma = math.sqrt(rounds / (2 * _MEASURE_SHARE * rho))
        epsilon0 = math.sqrt(8 * (1 - _MEASURE_SHARE) * rho / rounds)

        measurements: list[Measurement] = []
        for column, prior in enumerate(data.priors):
            if prior is not None:
                measurements.append(Measurement((column,), prior.counts, prior.sigma))
        singles = [(c,) for c in range(d)]
        pairs = [(a, b) for a in range(d) for b in range(a + 1, d)]
        true_single = {
            c: np.bincount(data.codes[:, c], minlength=cards[c]).astype(float) for c in range(d)
        }
        for column in range(d):
            if data.priors[column] is None:
                noisy = true_single[column] + rng.normal(0.0, sigma, cards[column])
                accountant.spend_gaussian(
                    "measurement", sigma, detail=f"1-way {data.names[column]}"
                )
                measurements.append(Measurement((column,), noisy, sigma))
        model.initialise({m.clique[0]: _as_probs(m.counts) for m in measurements})
        model.fit(measurements, total, self.init_steps, self.learning_rate)

        true_pairs = _pair_counts(data.codes, cards, pairs)
        padded_pairs = _padded(true_pairs, pairs, max(cards))
        weight_single = max(d - 1, 1)
        weight_pair = 2 * max(d - 1, 1)
        sensitivity = float(weight_pair if pairs else weight_single)
        candidates = singles + pairs
        cells = np.array([cards[c[0]] for c in singles] + [cards[a] * cards[b] for a, b in pairs])
        weights = np.array([weight_single] * len(singles) + [weight_pair] * len(pairs), float)

        self.rounds = 0
        while True:
            round_rho = 1 / (2 * sigma**2) + epsilon0**2 / 8
            remaining = accountant.remaining_rho()
            final = remaining < 2 * round_rho
            if final:
                if remaining <= 0:
                    break
                sigma = math.sqrt(1 / (2 * _MEASURE_SHARE * remaining))
                epsilon0 = math.sqrt(8 * (1 - _MEASURE_SHARE) * remaining)
            errors = self._errors(model, true_single, padded_pairs, singles, pairs, total)
            scores = weights * (errors - _SQRT_2_OVER_PI * sigma * cells)
            gumbel = rng.gumbel(size=len(scores))
            chosen = int(np.argmax(epsilon0 * scores / (2 * sensitivity) + gumbel))
            accountant.spend_exponential("selection", epsilon0)
            clique = candidates[chosen]
            truth = true_single[clique[0]] if len(clique) == 1 else true_pairs[clique]
            noisy = truth + rng.normal(0.0, sigma, truth.shape)
            accountant.spend_gaussian(
                "measurement", sigma, detail="x".join(data.names[c] for c in clique)
            )
            before = self._marginal(model, clique) * total
            measurements.append(Measurement(clique, noisy, sigma))
            model.fit(measurements, total, self.round_steps, self.learning_rate)
            after = self._marginal(model, clique) * total
            self.rounds += 1
            if np.abs(after - before).sum() <= _SQRT_2_OVER_PI * sigma * cells[chosen]:
                sigma /= 2
                epsilon0 *= 2
            if self.rounds % 10 == 0 or final:
                progress(
                    f"round {self.rounds}: measured {len(measurements)} marginals, "
                    f"ε so far {accountant.epsilon():.3f}"
                )
            if final:
                break
        model.fit(measurements, total, self.init_steps, self.learning_rate / 2)

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        if self._model is None:
            raise RuntimeError("sample() before fit()")
        return self._model.sample(n, rng)

    @staticmethod
    def _marginal(model: MixtureModel, clique: tuple[int, ...]) -> np.ndarray:
        with torch.no_grad():
            if len(clique) == 1:
                m = model.single_marginals(torch.tensor(clique))[0]
                return m[: model.cardinalities[clique[0]]].double().numpy()
            a, b = clique
            m = model.pair_marginals(torch.tensor([a]), torch.tensor([b]))[0]
            return m[: model.cardinalities[a], : model.cardinalities[b]].double().numpy()

    @staticmethod
    def _errors(model, true_single, padded_pairs, singles, pairs, total) -> np.ndarray:
        """L1 error (in rows) of the model on every candidate marginal, batched."""
        with torch.no_grad():
            single_model = model.single_marginals(torch.tensor([c[0] for c in singles]))
            errors = [
                float(
                    np.abs(
                        single_model[i, : len(true_single[c[0]])].double().numpy() * total
                        - true_single[c[0]]
                    ).sum()
                )
                for i, c in enumerate(singles)
            ]
            if pairs:
                first = torch.tensor([p[0] for p in pairs])
                second = torch.tensor([p[1] for p in pairs])
                pair_model = model.pair_marginals(first, second).double().numpy() * total
                errors.extend(np.abs(pair_model - padded_pairs).sum(axis=(1, 2)).tolist())
        return np.array(errors)


def _pair_counts(codes: np.ndarray, cards: tuple[int, ...], pairs: list[tuple[int, int]]):
    counts = {}
    for a, b in pairs:
        joint = codes[:, a].astype(np.int64) * cards[b] + codes[:, b]
        counts[(a, b)] = (
            np.bincount(joint, minlength=cards[a] * cards[b])
            .reshape(cards[a], cards[b])
            .astype(float)
        )
    return counts


def _padded(true_pairs: dict, pairs: list[tuple[int, int]], width: int) -> np.ndarray:
    """All pair tables in one (pairs, width, width) array, zero outside each pair's cells."""
    padded = np.zeros((len(pairs), width, width))
    for i, pair in enumerate(pairs):
        table = true_pairs[pair]
        padded[i, : table.shape[0], : table.shape[1]] = table
    return padded


def _as_probs(counts: np.ndarray) -> np.ndarray:
    clipped = np.clip(np.nan_to_num(counts, nan=0.0), 0.0, None)
    total = clipped.sum()
    return clipped / total if total > 0 else np.full(len(counts), 1.0 / len(counts))
