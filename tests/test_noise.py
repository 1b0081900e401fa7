"""The noise source: an exact discrete Gaussian sampler fed by OS entropy, never by the config."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest
from scipy import stats

from dbt_synth.accounting import PrivacyAccountant
from dbt_synth.domains.categories import threshold_for
from dbt_synth.errors import BudgetError
from dbt_synth.noise import MAX_VARIANCE, DiscreteGaussian, NoiseSource, replayable_noise

# A chi-square statistic is accepted up to its 1 − 1e-6 quantile: a correct sampler fails one
# run in a million, a sampler with the wrong shape (e.g. a rounded continuous Gaussian with the
# same σ, or a variance 2 % off) fails at these sample sizes.
_CHI2_LEVEL = 1e-6
_DRAWS = 200_000


def _seeded_words(seed: int):
    stream = np.random.default_rng(seed)
    return lambda n: stream.integers(0, 1 << 64, n, dtype=np.uint64)


@pytest.mark.parametrize("sigma", [0.4, 1.0, 2.7, 30.0, 45.31, 1234.5, 1e4 + 0.3, 1e7])
def test_parametrisation_rounds_the_variance_up_to_an_integer_and_charges_that(sigma):
    law = DiscreteGaussian.at_least(sigma)
    assert law.variance_parameter >= sigma * sigma
    # Rounded up by at most 2^-20 relative (absolute below σ² = 8), 1e-5 relative from 2^23.
    slack = max(sigma * sigma, 8.0) * (1e-5 if sigma * sigma >= 2**23 else 2.0**-20)
    assert law.variance_parameter - sigma * sigma <= slack
    assert DiscreteGaussian.at_least(law.sigma) == law
    assert law.rho(math.sqrt(2.0)) == pytest.approx(2.0 / (2.0 * law.variance_parameter))
    accountant = PrivacyAccountant(50.0, 1e-6)
    spend = accountant.spend_gaussian("measurement", sigma)
    assert spend.rho == law.rho()
    assert spend.rho <= 1.0 / (2.0 * sigma * sigma)


def test_a_variance_too_large_to_sample_is_a_budget_error():
    with pytest.raises(BudgetError, match="too small a budget"):
        DiscreteGaussian.at_least(math.sqrt(MAX_VARIANCE) * 2)


@pytest.mark.parametrize("sigma", [0.4, 3.0, 40.0])
def test_draws_have_the_exact_discrete_gaussian_mean_variance_and_shape(sigma):
    law = DiscreteGaussian.at_least(sigma)
    draws = law.sample(_DRAWS, _seeded_words(int(sigma * 10)))
    assert draws.dtype == np.int64
    variance = law.variance()
    # Below σ² for small σ (σ = 0.4: variance 0.0808, not 0.16), equal to it from σ ≈ 1.
    assert variance <= law.variance_parameter * (1 + 1e-12)
    standard_error = math.sqrt(variance / _DRAWS)
    assert abs(draws.mean()) < 5 * standard_error
    # The sample variance's standard error is about σ²·√(2/n).
    assert draws.var() == pytest.approx(variance, rel=5 * math.sqrt(2 / _DRAWS))
    observed, expected = _binned(draws, law)
    statistic = float(((observed - expected) ** 2 / expected).sum())
    assert statistic < stats.chi2.isf(_CHI2_LEVEL, len(expected) - 1), statistic


def test_the_chi_square_check_rejects_a_rounded_continuous_gaussian():
    # The check has teeth: rounding a continuous Gaussian of σ = 0.8 is a different law.
    law = DiscreteGaussian.at_least(0.8)
    rounded = np.round(np.random.default_rng(1).normal(0, law.sigma, _DRAWS)).astype(np.int64)
    observed, expected = _binned(rounded, law)
    statistic = float(((observed - expected) ** 2 / expected).sum())
    assert statistic > stats.chi2.isf(_CHI2_LEVEL, len(expected) - 1)


def _binned(draws: np.ndarray, law: DiscreteGaussian) -> tuple[np.ndarray, np.ndarray]:
    """Observed and expected counts per integer, tails pooled until each bin expects ≥ 20."""
    reach = int(8 * law.sigma) + 2
    support = np.arange(-reach, reach + 1)
    expected = law.pmf(support) * len(draws)
    inner = support[expected >= 20]
    low, high = inner.min(), inner.max()
    edges_observed = [np.sum(draws < low)]
    edges_expected = [expected[support < low].sum()]
    for value in range(low, high + 1):
        edges_observed.append(np.sum(draws == value))
        edges_expected.append(expected[support == value].sum())
    edges_observed.append(np.sum(draws > high))
    edges_expected.append(len(draws) - sum(edges_expected))
    observed, expected = np.array(edges_observed, float), np.array(edges_expected)
    keep = expected > 0
    return observed[keep], expected[keep]


@pytest.mark.parametrize(("sigma", "delta"), [(0.7, 1e-3), (4.0, 1e-6), (40.0, 1e-9)])
def test_threshold_keeps_a_single_row_value_with_probability_at_most_delta(sigma, delta):
    law = DiscreteGaussian.at_least(sigma)
    threshold = threshold_for(law.sigma, delta)
    assert threshold == int(threshold)
    # A value held by one row is kept when 1 + X ≥ threshold.
    reach = int(threshold) + int(60 * law.sigma)
    tail = law.pmf(np.arange(int(threshold) - 1, reach)).sum()
    assert tail <= delta


def test_fits_draw_from_the_os_unless_a_test_replays_them():
    counts = np.arange(1000, dtype=float)
    first = NoiseSource.for_fit().counts(counts, 5.0)
    second = NoiseSource.for_fit().counts(counts, 5.0)
    assert not np.array_equal(first, second)
    assert not NoiseSource.for_fit().replayable
    with replayable_noise(3):
        source = NoiseSource.for_fit()
        replayed = source.counts(counts, 5.0)
        assert source.replayable
    with replayable_noise(3):
        again = NoiseSource.for_fit().counts(counts, 5.0)
    np.testing.assert_array_equal(replayed, again)
    assert np.all(replayed == np.round(replayed))
    with pytest.raises(ValueError, match="integer counts"):
        NoiseSource.for_fit().counts(np.array([0.5]), 5.0)


def test_a_marginal_of_ten_thousand_cells_is_noised_fast():
    # A 100 × 100 marginal at a typical σ; measured 2026-12-02 on the shared 2-core machine.
    source = NoiseSource.for_fit()
    started = time.perf_counter()
    noisy = source.counts(np.zeros(10_000), 40.0)
    seconds = time.perf_counter() - started
    assert noisy.std() == pytest.approx(40.0, rel=0.05)
    assert seconds < 2.0, seconds
