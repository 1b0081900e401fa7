"""The accountant composes RDP curves and converts them with opacus; check it against theory."""

from __future__ import annotations

import math

import pytest
from opacus.accountants import RDPAccountant

from dbt_synth.accounting import PrivacyAccountant, gaussian_sigma
from dbt_synth.errors import BudgetError


def _zcdp_epsilon(rho: float, delta: float) -> float:
    """The classic zCDP conversion ε = ρ + 2√(ρ log 1/δ) — an upper bound on opacus' tighter one."""
    return rho + 2 * math.sqrt(rho * math.log(1 / delta))


def test_remaining_rho_spent_as_one_gaussian_meets_the_target():
    accountant = PrivacyAccountant(1.0, 1e-5)
    rho = accountant.remaining_rho()
    accountant.spend_gaussian("measurement", gaussian_sigma(rho))
    # The discrete Gaussian's σ² is rounded up to the sampler's grid (2^-19 relative here).
    assert accountant.epsilon() == pytest.approx(1.0, rel=1e-5)
    assert accountant.epsilon() <= 1.0
    # opacus' conversion is tighter than the classic one: more ρ fits in the same ε.
    assert _zcdp_epsilon(rho, 1e-5) > 1.0


def test_gaussian_releases_compose_additively_in_rho():
    one = PrivacyAccountant(10.0, 1e-6)
    one.spend_gaussian("a", sigma=3.0)
    one.spend_gaussian("b", sigma=math.sqrt(18))
    combined = PrivacyAccountant(10.0, 1e-6)
    rho = 1 / (2 * 9) + 1 / (2 * 18)  # = 1 / (2 * 6): integer variances throughout
    combined.spend_gaussian("ab", gaussian_sigma(rho))
    assert one.epsilon() == pytest.approx(combined.epsilon(), rel=1e-9)


def test_exponential_mechanism_costs_eps0_squared_over_8():
    accountant = PrivacyAccountant(5.0, 1e-6)
    spend = accountant.spend_exponential("selection", epsilon0=0.4)
    assert spend.rho == pytest.approx(0.02)


def test_sgd_curve_matches_opacus_own_accountant():
    ours = PrivacyAccountant(50.0, 1e-5)
    ours.spend_sgd("training", noise_multiplier=1.1, sample_rate=0.01, steps=500)
    theirs = RDPAccountant()
    theirs.history = [(1.1, 0.01, 500)]
    assert ours.epsilon() == pytest.approx(theirs.get_epsilon(1e-5), rel=0.02)


def test_calibrated_sgd_noise_spends_the_remaining_budget():
    accountant = PrivacyAccountant(1.0, 1e-5)
    accountant.spend_gaussian("domain", sigma=50.0)
    noise = accountant.calibrate_sgd_noise(sample_rate=0.02, steps=250)
    accountant.spend_sgd("training", noise, 0.02, 250)
    assert 0.97 <= accountant.epsilon() <= 1.0 + 1e-6


def test_a_release_past_the_target_is_refused_and_not_recorded():
    accountant = PrivacyAccountant(0.5, 1e-5)
    with pytest.raises(BudgetError, match="would spend"):
        accountant.spend_gaussian("measurement", sigma=0.5)
    assert accountant.spends == []


def test_threshold_failures_are_reserved_out_of_delta():
    accountant = PrivacyAccountant(1.0, 1e-5)
    before = accountant.remaining_rho()
    accountant.spend_gaussian("domain", sigma=1e6, threshold_delta=5e-6)
    assert accountant.conversion_delta == pytest.approx(5e-6)
    assert accountant.remaining_rho() < before


@pytest.mark.parametrize("epsilon", [0.1, 0.3, 1.0, 3.0, 10.0])
def test_epsilon_is_monotone_in_noise(epsilon):
    accountant = PrivacyAccountant(epsilon, 1e-6)
    rho = accountant.remaining_rho()
    eps = []
    for scale in (1.0, 0.5, 0.25):
        trial = PrivacyAccountant(epsilon, 1e-6)
        trial.spend_gaussian("m", gaussian_sigma(rho * scale))
        eps.append(trial.epsilon())
    assert eps[0] > eps[1] > eps[2] > 0
    # From σ² = 1024 up the sampler's σ² is an integer: ε is under the target by ≤ 0.1 %.
    assert epsilon * (1 - 1e-3) < eps[0] <= epsilon


def test_invalid_targets_are_refused():
    with pytest.raises(BudgetError):
        PrivacyAccountant(0.0, 1e-5)
    with pytest.raises(BudgetError):
        PrivacyAccountant(1.0, 1.5)
