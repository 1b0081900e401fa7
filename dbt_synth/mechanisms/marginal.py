"""Adaptive marginal mechanism: select, measure and fit noisy low-order marginals.

The selection rule follows AIM (McKenna et al., 2022): each round the exponential mechanism picks
the 1- or 2-way marginal the current model gets most wrong — weighted by how much of the all-pairs
workload it covers, minus the error its own measurement noise would bring — the Gaussian mechanism
measures it, and the estimator is re-fitted. When a measurement barely moves the model, the noise is
halved. Where the joint distribution has few enough cells (`dense_cells`), the estimator is that
joint itself (`DenseModel`: consistent marginals, as AIM's graphical model on an explicit domain);
elsewhere a `MixtureModel`, whose rounds cost milliseconds whatever the width. All ρ is composed by
the accountant; the last round spends exactly what is left.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from dbt_synth.mechanisms.base import CodeCounts, FitInputs, Mechanism, one_torch_thread
from dbt_synth.mechanisms.dense import DenseModel
from dbt_synth.mechanisms.mixture import Measurement, MixtureModel

_MEASURE_SHARE = 0.9  # of each round's ρ, the rest pays for the selection
_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)


@dataclass(eq=False)
class MarginalMechanism(Mechanism):
    """AIM-style adaptive measurements of the all-pairs workload, fitted by a mixture model."""

    name = "marginal"
    fits_from_counts = True

    components: int = 256
    rounds_per_column: int = 16
    init_steps: int = 300
    round_steps: int = 60
    learning_rate: float = 0.05
    max_rounds: int = 400
    # The dense estimator (dense.py) where the joint has at most this many cells. A step costs
    # a few passes over the cells: 14 ms at 172k cells (CPS 1988 with DP domains), 127 ms at
    # 2^21, on a shared 2-core machine at load 13 (all 21 pairs measured); ~7,000 steps a fit.
    dense_cells: int = 2**18
    dense_init_steps: int = 300
    dense_round_steps: int = 60
    dense_learning_rate: float = 16.0
    rounds: int = field(default=0, init=False)
    _model: MixtureModel | DenseModel | None = field(default=None, init=False, repr=False)

    def _fit(self, fit: FitInputs) -> None:
        data, accountant, noise = fit.data, fit.accountant, fit.noise
        cards = data.cardinalities
        d = len(cards)
        model: MixtureModel | DenseModel
        if DenseModel.cells(cards) <= self.dense_cells:
            model = DenseModel(cards)
            init_steps, round_steps, lr = (
                self.dense_init_steps,
                self.dense_round_steps,
                self.dense_learning_rate,
            )
        else:
            model = MixtureModel(cards, self.components, int(noise.generator.integers(2**31)))
            init_steps, round_steps, lr = self.init_steps, self.round_steps, self.learning_rate
        self._model = model
        total = max(fit.rows_estimate, 1.0)
        rho = accountant.remaining_rho()
        rounds = min(self.rounds_per_column * d, self.max_rounds)
        sigma = math.sqrt(rounds / (2 * _MEASURE_SHARE * rho))
        epsilon0 = math.sqrt(8 * (1 - _MEASURE_SHARE) * rho / rounds)

        truth = _TrueMarginals(data.marginal_counts())
        measurements: list[Measurement] = []
        for column, prior in enumerate(data.priors):
            if prior is not None:
                measurements.append(Measurement((column,), prior.counts, prior.sigma))
            else:
                noisy = noise.counts(truth.single(column), sigma)
                accountant.spend_gaussian(
                    "measurement", sigma, detail=f"1-way {data.names[column]}"
                )
                measurements.append(Measurement((column,), noisy, sigma))
        model.initialise({m.clique[0]: _as_probs(m.counts) for m in measurements})
        model.fit(measurements, total, init_steps, lr)

        candidates = [(c,) for c in range(d)] + [(a, b) for a in range(d) for b in range(a + 1, d)]
        cells = np.array([math.prod(cards[c] for c in clique) for clique in candidates], float)
        # AIM's weights for the all-pairs workload: how many workload pairs a candidate touches.
        weights = np.array([max(d - 1, 1) * len(clique) for clique in candidates], float)
        sensitivity = float(weights.max())

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
            errors = truth.errors(model, candidates, total)
            scores = weights * (errors - _SQRT_2_OVER_PI * sigma * cells)
            gumbel = noise.gumbel(len(scores))
            chosen = int(np.argmax(epsilon0 * scores / (2 * sensitivity) + gumbel))
            accountant.spend_exponential("selection", epsilon0)
            clique = candidates[chosen]
            exact = truth.single(clique[0]) if len(clique) == 1 else truth.pair(*clique)
            noisy = noise.counts(exact, sigma)
            accountant.spend_gaussian(
                "measurement", sigma, detail="x".join(data.names[c] for c in clique)
            )
            before = model.marginal(clique) * total
            measurements.append(Measurement(clique, noisy, sigma))
            model.fit(measurements, total, round_steps, lr)
            after = model.marginal(clique) * total
            self.rounds += 1
            if np.abs(after - before).sum() <= _SQRT_2_OVER_PI * sigma * cells[chosen]:
                sigma /= 2
                epsilon0 *= 2
            if self.rounds % 10 == 0 or final:
                fit.progress(
                    f"round {self.rounds}: {len(measurements)} marginals measured, "
                    f"ε so far {accountant.epsilon():.3f}"
                )
            if final:
                break
        model.fit(measurements, total, init_steps, lr / 2)

    def sample_given(
        self, n: int, rng: np.random.Generator, given: tuple[int, np.ndarray]
    ) -> np.ndarray:
        """`n` rows of codes from the exact conditional given = (column, allowed codes)
        (MixtureModel.sample; conditioning.py rebalances with it)."""
        if self._model is None:
            raise RuntimeError("sample() before fit()")
        with one_torch_thread():
            return self._model.sample(n, rng, given)

    def _sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        if self._model is None:
            raise RuntimeError("sample() before fit()")
        return self._model.sample(n, rng)


class _TrueMarginals:
    """Exact 1- and 2-way counts of the encoded data (counted from the sample's codes, or by
    the engine over the whole source): read only by the DP releases above."""

    def __init__(self, counts: CodeCounts) -> None:
        cards = counts.cardinalities
        self.cards = cards
        self.offsets = np.r_[0, np.cumsum(cards)].astype(int)
        size = int(self.offsets[-1])
        self.singles = np.concatenate([np.zeros(0), *counts.singles]).astype(float)
        self.pairs = np.zeros((size, size))
        for (a, b), joint in counts.pairs.items():
            self.pairs[self._block(a, b)] = joint

    def _block(self, a: int, b: int) -> tuple[slice, slice]:
        o = self.offsets
        return slice(o[a], o[a + 1]), slice(o[b], o[b + 1])

    def single(self, column: int) -> np.ndarray:
        return self.singles[self.offsets[column] : self.offsets[column + 1]]

    def pair(self, a: int, b: int) -> np.ndarray:
        return self.pairs[self._block(a, b)]

    def errors(self, model: MixtureModel, candidates: list[tuple[int, ...]], total: float):
        """L1 error (in rows) of the model on every candidate marginal, from one matmul."""
        singles, pairs = model.joint()
        single_error = np.add.reduceat(np.abs(singles * total - self.singles), self.offsets[:-1])
        starts = self.offsets[:-1]
        pair_error = np.add.reduceat(
            np.add.reduceat(np.abs(pairs * total - self.pairs), starts, axis=0), starts, axis=1
        )
        return np.array(
            [single_error[c[0]] if len(c) == 1 else pair_error[c[0], c[1]] for c in candidates]
        )


def _as_probs(counts: np.ndarray) -> np.ndarray:
    clipped = np.clip(np.nan_to_num(counts, nan=0.0), 0.0, None)
    total = clipped.sum()
    return clipped / total if total > 0 else np.full(len(counts), 1.0 / len(counts))
