"""Where every random draw of a fit comes from: OS entropy, never the config.

A DP release is private only if nobody can replay its noise. `synth.seed` is in the repository,
so it must not reach a noise draw: with a known seed anyone could rerun the mechanism on two
candidate datasets that differ in one person and see which reproduces the published twin. Every
fit therefore gets a `NoiseSource` seeded from the operating system (`os.urandom`), whatever the
config says. `seed` only drives post-processing: sampling twin rows from the fitted model.

Counts are released with the **discrete Gaussian** N_Z(0, σ²) (Canonne, Kamath & Steinke, "The
Discrete Gaussian for Differential Privacy", NeurIPS 2020), sampled exactly on integers with
the paper's Algorithms 1–3 (rejection from a discrete Laplace), fed by uniform 64-bit words:
no floating-point value decides any draw, so the attack on floating-point Laplace/Gaussian
samplers (Mironov, "On Significance of the Least Significant Bits for Differential Privacy",
CCS 2012) has nothing to read. Privacy: adding N_Z(0, σ²) independently to each coordinate of
an integer-valued query with L2 sensitivity Δ is ½(Δ/σ)²-zCDP, i.e. ρ = Δ²/(2σ²) exactly as for
the continuous Gaussian, and Rényi-DP α·ρ at every order α (CKS 2020, Theorem 14, "Multivariate
Discrete Gaussian Satisfies Concentrated Differential Privacy", arXiv:2004.00010). σ² is rounded
*up* to a value the sampler represents exactly (`DiscreteGaussian.at_least`) and the accountant
charges ρ for that σ², the one actually sampled.

What still uses floating point, from an OS-seeded generator: the exponential mechanism's Gumbel
draws, DP-SGD's gradient noise (torch), the Poisson subsample and model initialisation.

Tests that need a reproducible fit use `replayable_noise(seed)`, a Python context manager that
no dbt config, var or environment variable can reach; a fit made under it says so in its
result (`NoiseSource.replayable`).
"""

from __future__ import annotations

import math
import os
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from dbt_synth.errors import BudgetError

if TYPE_CHECKING:
    import torch

# σ² beyond this (σ ≈ 1.7e7 on a count) would overflow the sampler's int64 arithmetic; a count
# that noisy carries no information, so the build fails with a budget error instead.
MAX_VARIANCE = 1 << 48
# From this σ² up, σ² is an integer t·m (rounding costs ≤ 1e-5); below, n / 2^k with n ≥ 2^20.
_INTEGER_VARIANCE = 1 << 23
# Below _INTEGER_VARIANCE, σ² is a multiple of 2^−k, k ≤ _FINE_BITS.
_FINE_BITS = 20
# |Y| − m beyond this means acceptance probability exp(−2^62 / 2^49) = e^−8192: taken as 0.
_MAX_DISTANCE = 1 << 31
# At most this many scales t near σ are tried to bring t·m close to σ².
_SCALE_CANDIDATES = 4096

Words = Callable[[int], np.ndarray]
"""`words(n)`: n independent uniform 64-bit words (dtype uint64)."""

_REPLAY: ContextVar[int | None] = ContextVar("dbt_synth_replayable_noise", default=None)


def _os_words(n: int) -> np.ndarray:
    return np.frombuffer(os.urandom(8 * n), dtype=np.uint64)


@dataclass(frozen=True)
class DiscreteGaussian:
    """N_Z(0, σ²) with σ² = `numerator` / `denominator` (a power of two), sampled exactly.

    The sampler proposes y from a discrete Laplace of scale t = `scale` and accepts with
    probability exp(−(|y| − σ²/t)²/(2σ²)) (CKS Algorithm 3). Two exact integer forms keep every
    number below 2^63: for σ² ≥ 2^23, σ² = t·m is an integer with σ²/t = m, so the exponent is
    (|y| − m)²/(2tm); below, σ² = n/2^k and the exponent is (|y|·2^k·t − n)² / (2·n·2^k·t²).
    CKS pick t = ⌊σ⌋ + 1; any t > 0 samples the same law (the constant factor cancels), and t
    near σ keeps rejections rare.
    """

    scale: int
    numerator: int
    denominator: int = 1

    @property
    def variance_parameter(self) -> float:
        """σ² (the law is ∝ exp(−x²/2σ²); its variance is slightly below σ² for small σ)."""
        return self.numerator / self.denominator

    @property
    def sigma(self) -> float:
        return math.sqrt(self.variance_parameter)

    def rho(self, sensitivity: float = 1.0) -> float:
        """zCDP of one release of an integer query with L2 `sensitivity` (CKS 2020, Thm 14)."""
        return sensitivity**2 * self.denominator / (2.0 * self.numerator)

    @classmethod
    def at_least(cls, sigma: float) -> DiscreteGaussian:
        """The parametrisation with σ² ≥ `sigma`², rounded up to a multiple of 2^−20 below
        σ² = 8, by at most 2^−20 relative from there to 2^23, and to an integer t·m above.

        Idempotent: `at_least(d.sigma) == d`, so the accountant and the sampler, each handed the
        same float σ, agree on the σ² that is sampled and charged.
        """
        if not sigma > 0 or not math.isfinite(sigma):
            raise ValueError(f"noise scale must be positive and finite, got {sigma!r}")
        square = sigma * sigma
        if square < _INTEGER_VARIANCE:
            # b = 2·n·d·t² ≤ 8σ⁴d² ≤ 2^49 with d ≤ 2^23/σ², so Algorithm 1's b·K fits in int64.
            exponent = _FINE_BITS - max(math.floor(math.log2(square)) - 3, 0)
            denominator = 1 << min(max(exponent, 0), _FINE_BITS)
            numerator = _grid_ceiling(sigma, denominator)
            return cls(math.isqrt(numerator // denominator) + 1, numerator, denominator)
        variance = _grid_ceiling(sigma, 1)
        if variance > MAX_VARIANCE:
            raise BudgetError(
                f"a release at noise σ={sigma:.3g} is too small a budget to measure anything",
                fix="raise synth.epsilon, declare public bounds/categories, or drop columns",
            )
        # Scales within [2σ/3, 3σ/2]: a Laplace proposal that far from σ still accepts often.
        centre = math.isqrt(variance) + 1
        low = max(1, 2 * centre // 3)
        scales = np.arange(low, min(3 * centre // 2 + 1, low + _SCALE_CANDIDATES), dtype=np.int64)
        shifts = -(-variance // scales)
        cost = scales * shifts
        best = np.flatnonzero(cost == cost.min())
        pick = best[np.argmin(np.abs(scales[best] - centre))]
        return cls(int(scales[pick]), int(cost[pick]))

    def sample(self, size: int, words: Words = _os_words) -> np.ndarray:
        """`size` independent draws (int64), CKS 2020 Algorithm 3, vectorised."""

        def propose(count: int) -> tuple[np.ndarray, np.ndarray]:
            y = _discrete_laplace(words, self.scale, count)
            a, b, exact = self._exponent(np.abs(y))
            accept = np.zeros(count, dtype=bool)
            index = np.flatnonzero(exact)
            accept[index] = _bernoulli_exp(words, a[index], b[index])
            return y, accept

        return _rejection(propose, size)

    def _exponent(self, size: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Acceptance exponent a/b of each |y| in integers, and where it fits in int64 (beyond,
        the acceptance probability is below e^−8192 and is taken as 0)."""
        t, n, d = self.scale, self.numerator, self.denominator
        if n % (d * t) == 0:
            distance = size - n // (d * t)
            b = 2 * (n // d)
        else:
            fits = size < (n + _MAX_DISTANCE) // (d * t)
            distance = np.where(fits, size, 0) * (d * t) - n
            b = 2 * n * d * t * t
        exact = np.abs(distance) < _MAX_DISTANCE
        a = np.where(exact, distance, 0) ** 2
        return a, np.full(size.size, b, dtype=np.int64), exact

    def pmf(self, support: np.ndarray) -> np.ndarray:
        """Exact probabilities (to float precision) at the integers `support`, for tests."""
        return np.exp(self._log_weights(support) - self._log_normaliser())

    def variance(self) -> float:
        """The law's exact variance Σ x² p(x) (float precision), below σ² for small σ."""
        reach = int(40 * self.sigma) + 10
        support = np.arange(-reach, reach + 1)
        return float(np.sum(support.astype(float) ** 2 * self.pmf(support)))

    def _log_weights(self, support: np.ndarray) -> np.ndarray:
        x = np.asarray(support, dtype=float)
        return -(x * x) / (2.0 * self.variance_parameter)

    def _log_normaliser(self) -> float:
        reach = int(40 * self.sigma) + 10
        weights = self._log_weights(np.arange(-reach, reach + 1))
        top = weights.max()
        return float(top + np.log(np.exp(weights - top).sum()))


def _grid_ceiling(sigma: float, denominator: int) -> int:
    """Smallest n ≥ 1 with n / `denominator` ≥ σ², except that σ = √(n/d) as a float maps back
    to that n (σ·σ may exceed n/d by an ulp), so parametrisations survive a round trip."""
    nearest = round(sigma * sigma * denominator)
    if nearest >= 1 and math.sqrt(nearest / denominator) == sigma:
        return nearest
    return max(math.ceil(sigma * sigma * denominator), 1)


def _below(words: Words, bound: np.ndarray) -> np.ndarray:
    """Uniform integers in [0, bound) per entry (bound ≥ 1, < 2^63), exactly, by rejection."""
    bound = np.asarray(bound, dtype=np.uint64)
    limit = (np.uint64(1 << 63) // bound) * bound
    out = np.empty(bound.size, dtype=np.uint64)
    pending = np.arange(bound.size)
    while pending.size:
        draws = words(pending.size) >> np.uint64(1)
        ok = draws < limit[pending]
        out[pending[ok]] = draws[ok] % bound[pending[ok]]
        pending = pending[~ok]
    return out.astype(np.int64)


def _bernoulli_exp_fraction(words: Words, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Bernoulli(exp(−a/b)) for 0 ≤ a ≤ b (CKS Algorithm 1): K ← 1 while Bernoulli(γ/K), K += 1;
    true iff K is odd."""
    k = np.ones(a.size, dtype=np.int64)
    active = np.arange(a.size)
    while active.size:
        hit = _below(words, b[active] * k[active]) < a[active]
        k[active[hit]] += 1
        active = active[hit]
    return k % 2 == 1


def _exp_minus_one(words: Words, n: int) -> np.ndarray:
    ones = np.ones(n, dtype=np.int64)
    return _bernoulli_exp_fraction(words, ones, ones)


def _success_runs(words: Words, n: int, cap: np.ndarray | None = None) -> np.ndarray:
    """Per row, the number of Bernoulli(e^−1) successes before the first failure (P(≥ k) =
    e^−k), counted up to `cap` when given (then rows stop drawing once they reach it)."""
    runs = np.zeros(n, dtype=np.int64)
    active = np.arange(n) if cap is None else np.flatnonzero(cap > 0)
    while active.size:
        hit = _exp_minus_one(words, active.size)
        runs[active[hit]] += 1
        active = active[hit]
        if cap is not None:
            active = active[runs[active] < cap[active]]
    return runs


def _bernoulli_exp(words: Words, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Bernoulli(exp(−a/b)) for any a ≥ 0: ⌊a/b⌋ Bernoulli(e^−1) all true, then the fraction."""
    whole, rest = np.divmod(a, b)
    ok = _success_runs(words, a.size, cap=whole) >= whole
    index = np.flatnonzero(ok)
    ok[index] = _bernoulli_exp_fraction(words, rest[index], b[index])
    return ok


def _discrete_laplace(words: Words, t: int, n: int) -> np.ndarray:
    """n draws of P(y) ∝ exp(−|y|/t) on the integers (CKS Algorithm 2 with s = 1)."""

    def propose(count: int) -> tuple[np.ndarray, np.ndarray]:
        scale = np.full(count, t, dtype=np.int64)
        u = _below(words, scale)
        keep = _bernoulli_exp_fraction(words, u, scale)
        v = _success_runs(words, count)
        negative = (words(count) & np.uint64(1)).astype(bool)
        keep &= ~(negative & (u == 0) & (v == 0))
        z = u + t * v
        return np.where(negative, -z, z), keep

    return _rejection(propose, n)


def _rejection(propose: Callable[[int], tuple[np.ndarray, np.ndarray]], n: int) -> np.ndarray:
    """The first `n` accepted values of an i.i.d. proposal stream: i.i.d. from the target law.
    Proposals are drawn about twice as many as still needed, so one or two passes suffice."""
    parts: list[np.ndarray] = []
    have = 0
    while have < n:
        values, accepted = propose(2 * (n - have) + 16)
        kept = values[accepted]
        parts.append(kept)
        have += kept.size
    return np.concatenate(parts)[:n] if parts else np.zeros(0, dtype=np.int64)


class NoiseSource:
    """All the randomness of one fit: discrete Gaussian counts, Gumbel draws, and a generator
    for the rest (subsample, model initialisation), each from OS entropy unless a test replays.
    """

    def __init__(self, words: Words, generator: np.random.Generator, *, replayable: bool) -> None:
        self._words = words
        self.generator = generator
        self.replayable = replayable

    @classmethod
    def for_fit(cls) -> NoiseSource:
        """Fresh OS entropy, or the seeded stream of an enclosing `replayable_noise` (tests)."""
        seed = _REPLAY.get()
        if seed is None:
            return cls(_os_words, _os_generator(), replayable=False)
        return cls.replayed(seed)

    @classmethod
    def replayed(cls, seed: int) -> NoiseSource:
        """Test hook: a source whose every draw follows from `seed` (not private)."""
        stream = np.random.default_rng([seed, 0x5EED])
        words: Words = lambda n: stream.integers(0, 1 << 64, n, dtype=np.uint64)  # noqa: E731
        return cls(words, np.random.default_rng([seed, 0xF17]), replayable=True)

    def counts(self, true: np.ndarray | float, sigma: float) -> np.ndarray:
        """Integer counts `true` plus discrete Gaussian noise of scale `sigma` (rounded up the
        way the accountant rounds it: `DiscreteGaussian.at_least`), as floats."""
        exact = np.asarray(true, dtype=float)
        if not np.all(exact == np.round(exact)):
            raise ValueError("the discrete Gaussian releases integer counts only")
        noise = DiscreteGaussian.at_least(sigma).sample(exact.size, self._words)
        return exact + noise.reshape(exact.shape)

    def gumbel(self, size: int) -> np.ndarray:
        """Standard Gumbel draws for the exponential mechanism (floating point)."""
        return self.generator.gumbel(size=size)

    def torch_generator(self) -> torch.Generator:
        """A torch generator for DP-SGD (batches and gradient noise) seeded from this source."""
        import torch

        return torch.Generator().manual_seed(int(self.generator.integers(1 << 62)))


def _os_generator() -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(secrets.randbits(256)))


@contextmanager
def replayable_noise(seed: int) -> Iterator[None]:
    """Test hook: fits inside this block draw their noise from `seed` instead of the OS.

    A replayed fit is not private against anyone who knows `seed`. Only Python code can enter
    this block; nothing in a dbt project reaches it.
    """
    token = _REPLAY.set(int(seed))
    try:
        yield
    finally:
        _REPLAY.reset(token)


def sampling_seed(seed: int | None) -> int:
    """The seed that samples twin rows from a fitted model: the configured one, else fresh."""
    return int(seed) if seed is not None else secrets.randbits(63)
