"""Privacy accounting: every release is a Rényi-DP curve, composed and converted by opacus.

Discrete Gaussian measurements (zCDP ρ = Δ²/2σ², i.e. RDP α·ρ, charged for the σ² that
`dbt_synth.noise` actually samples), exponential-mechanism selections
(ε₀-DP with bounded range, i.e. ρ = ε₀²/8) and DP-SGD training (opacus' subsampled-Gaussian RDP)
are all added as RDP curves on one grid of orders; opacus' `get_privacy_spent` turns the sum into
(ε, δ). Thresholded histograms add a failure probability that is reserved out of δ first.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
from opacus.accountants.analysis import rdp as opacus_rdp

from dbt_synth.errors import BudgetError
from dbt_synth.noise import DiscreteGaussian

# Orders up to 2e5: small budgets (ε ≈ 0.1 from zCDP) are optimal at very large α.
ORDERS = np.concatenate(
    [1 + np.arange(1, 100) / 10.0, np.arange(12, 64), np.geomspace(64, 2e5, 120)]
)
# Subsampled-Gaussian RDP at fractional orders is taken from opacus only below this order (its
# series is numerically unstable far above); higher orders use integer orders, which are exact.
_SGD_MAX_FRACTIONAL_ORDER = 11.0
# Subsampled-Gaussian RDP is computed exactly only up to this order; above it the curve is taken
# as +inf, which can only over-state ε.
_SGD_MAX_ORDER = 512.0


@dataclass(frozen=True)
class Spend:
    """One private release: what it was for and what it cost."""

    part: str
    mechanism: str
    rdp: np.ndarray
    column: str | None = None
    rho: float | None = None
    delta: float = 0.0
    detail: str = ""
    # DP-SGD only: what an audit needs to recompute the curve with `sgd_rdp`.
    noise_multiplier: float | None = None
    sample_rate: float | None = None
    steps: int | None = None

    def epsilon_alone(self, delta: float) -> float:
        """This release's ε at `delta` if it were the only one (parts are not additive in ε)."""
        return _epsilon(self.rdp, delta)


class PrivacyAccountant:
    """A running budget of (ε, δ) for one twin build.

    Mechanisms ask it how much zCDP budget is left (`remaining_rho`) before releasing anything,
    then record what they released; `epsilon()` is the composed guarantee of all records.
    """

    def __init__(self, epsilon: float, delta: float) -> None:
        if not epsilon > 0 or not 0 < delta < 1:
            raise BudgetError(
                f"privacy target (ε={epsilon}, δ={delta}) is not valid",
                fix="use ε > 0 and 0 < δ < 1",
            )
        self.target_epsilon = float(epsilon)
        self.target_delta = float(delta)
        self.spends: list[Spend] = []

    # --- budget questions -------------------------------------------------------------------
    @property
    def reserved_delta(self) -> float:
        return sum(s.delta for s in self.spends)

    @property
    def conversion_delta(self) -> float:
        """δ left for the RDP-to-(ε, δ) conversion after thresholding failures are reserved."""
        return self.target_delta - self.reserved_delta

    def rdp(self) -> np.ndarray:
        total = np.zeros_like(ORDERS)
        for spend in self.spends:
            total = total + spend.rdp
        return total

    def epsilon(self) -> float:
        """The ε of everything released so far, at the target δ."""
        if not self.spends:
            return 0.0
        return _epsilon(self.rdp(), self.conversion_delta)

    def remaining_rho(self, extra_delta: float = 0.0) -> float:
        """Largest zCDP ρ that can still be released while staying within the target ε."""
        delta = self.conversion_delta - extra_delta
        if delta <= 0:
            return 0.0
        base = self.rdp()
        if _epsilon(base, delta) >= self.target_epsilon:
            return 0.0
        low, high = 0.0, 1.0
        while _epsilon(base + ORDERS * high, delta) < self.target_epsilon:
            high *= 2
        for _ in range(60):
            mid = (low + high) / 2
            if _epsilon(base + ORDERS * mid, delta) <= self.target_epsilon:
                low = mid
            else:
                high = mid
        return low

    # --- records ----------------------------------------------------------------------------
    def spend_gaussian(
        self,
        part: str,
        sigma: float,
        *,
        sensitivity: float = 1.0,
        column: str | None = None,
        threshold_delta: float = 0.0,
        detail: str = "",
    ) -> Spend:
        """A discrete Gaussian release of an integer query with L2 sensitivity `sensitivity`.

        ρ is that of the σ² the sampler uses (`sigma`² rounded up to an integer t·m), so the
        record is exact for the noise drawn by `NoiseSource.counts(…, sigma)`.
        """
        rho = DiscreteGaussian.at_least(sigma).rho(sensitivity)
        return self._record(
            Spend(part, "discrete_gaussian", ORDERS * rho, column, rho, threshold_delta, detail)
        )

    def spend_exponential(
        self, part: str, epsilon0: float, *, column: str | None = None, detail: str = ""
    ) -> Spend:
        """An exponential-mechanism selection at ε₀ (bounded range: ρ = ε₀²/8)."""
        rho = epsilon0**2 / 8.0
        return self._record(Spend(part, "exponential", ORDERS * rho, column, rho, 0.0, detail))

    def spend_sgd(
        self, part: str, noise_multiplier: float, sample_rate: float, steps: int, detail: str = ""
    ) -> Spend:
        """DP-SGD with Poisson sampling, accounted by opacus' subsampled-Gaussian RDP."""
        curve = sgd_rdp(noise_multiplier, sample_rate, steps)
        return self._record(
            Spend(
                part,
                "subsampled_gaussian",
                curve,
                detail=detail,
                noise_multiplier=noise_multiplier,
                sample_rate=sample_rate,
                steps=steps,
            )
        )

    def _record(self, spend: Spend) -> Spend:
        self.spends.append(spend)
        spent = self.epsilon()
        # The accountant's binary searches stop within 1e-9 relative; allow that slack only.
        if spent > self.target_epsilon * (1 + 1e-6) or self.conversion_delta <= 0:
            self.spends.pop()
            raise BudgetError(
                f"release '{spend.part}' would spend ε={spent:.4f} > target "
                f"ε={self.target_epsilon}",
                fix="raise synth.epsilon, declare public bounds/categories, or drop columns",
                column=spend.column,
            )
        return spend

    def calibrate_sgd_noise(self, sample_rate: float, steps: int) -> float:
        """Smallest noise multiplier whose DP-SGD run fits in the remaining budget.

        Searched on `sgd_rdp_bound` (fast); the exact curve that `spend_sgd` records can only be
        lower, so the run always fits, within about 0.1% of the budget.
        """
        base = self.rdp()
        delta = self.conversion_delta

        def fits(noise: float) -> bool:
            curve = sgd_rdp_bound(noise, sample_rate, steps)
            return _epsilon(base + curve, delta) <= self.target_epsilon

        low, high = 0.3, 1.0
        while not fits(high):
            high *= 2
            if high > 1e4:
                raise BudgetError(
                    "the remaining budget cannot pay for a single DP-SGD epoch",
                    fix="raise synth.epsilon or use mechanism: marginal",
                )
        for _ in range(25):
            mid = (low + high) / 2
            if fits(mid):
                high = mid
            else:
                low = mid
        return high


def sgd_rdp(noise_multiplier: float, sample_rate: float, steps: int) -> np.ndarray:
    """opacus' RDP of `steps` Poisson-subsampled Gaussian steps, on our order grid.

    Orders are exact up to opacus' own fractional defaults (< 11); above that, each order takes
    its ceiling's integer-order value (Rényi divergence does not decrease with the order, so this
    can only over-state ε). opacus' series for large fractional orders cancels catastrophically:
    at noise 10.9, q 0.07 it returns RDP ≈ −10 at α ≈ 450, i.e. a negative ε.
    """

    def opacus_values(orders: np.ndarray) -> np.ndarray:
        return np.asarray(
            opacus_rdp.compute_rdp(
                q=sample_rate, noise_multiplier=noise_multiplier, steps=steps, orders=list(orders)
            )
        )

    curve = _on_integer_ceilings(opacus_values)
    small = ORDERS < _SGD_MAX_FRACTIONAL_ORDER
    curve[small] = opacus_values(ORDERS[small])
    return curve


def sgd_rdp_bound(noise_multiplier: float, sample_rate: float, steps: int) -> np.ndarray:
    """An upper bound of `sgd_rdp` (integer ceilings at every order), vectorised: ~100× faster.

    opacus sums each integer order's binomial expansion in a Python loop; this evaluates the same
    closed form (Mironov et al., 2019, §3.3) for all orders in one array expression. It serves
    the noise search and progress reports; `spend_sgd` records opacus' own values.
    """
    return _on_integer_ceilings(
        lambda orders: _subsampled_gaussian_integer_rdp(
            noise_multiplier, sample_rate, steps, orders.astype(np.int64)
        )
    )


def _on_integer_ceilings(values_at) -> np.ndarray:
    exact = ORDERS <= _SGD_MAX_ORDER
    ceilings, inverse = np.unique(np.ceil(ORDERS[exact]), return_inverse=True)
    curve = np.full_like(ORDERS, np.inf)
    curve[exact] = values_at(ceilings)[inverse]
    return curve


def _subsampled_gaussian_integer_rdp(
    noise: float, q: float, steps: int, alphas: np.ndarray
) -> np.ndarray:
    """RDP at integer orders α ≥ 2: steps · log Σᵢ C(α,i) qⁱ (1−q)^(α−i) e^((i²−i)/2σ²) / (α−1)."""
    if q == 0:
        return np.zeros(len(alphas))
    if q >= 1:
        return steps * alphas / (2 * noise**2)
    top = int(alphas.max())
    log_factorial = np.r_[0.0, np.cumsum(np.log(np.arange(1, top + 1)))]
    i = np.arange(top + 1)[None, :]
    a = alphas[:, None]
    inside = i <= a
    terms = (
        log_factorial[a]
        - log_factorial[i]
        - log_factorial[np.where(inside, a - i, 0)]
        + i * math.log(q)
        + (a - i) * math.log1p(-q)
        + (i * i - i) / (2 * noise**2)
    )
    terms = np.where(inside, terms, -np.inf)
    peak = terms.max(1)
    log_a = peak + np.log(np.exp(terms - peak[:, None]).sum(1))
    return steps * log_a / (alphas - 1)


def epsilon_of_curve(rdp: np.ndarray, delta: float) -> float:
    """(ε, δ) conversion of a composed RDP curve, e.g. to report ε part-way through training."""
    return _epsilon(rdp, delta)


def gaussian_sigma(rho: float, sensitivity: float = 1.0) -> float:
    """Noise scale σ of a discrete Gaussian release that costs at most zCDP `rho`.

    σ² is the sampler's integer t·m ≥ Δ²/2ρ (`DiscreteGaussian.at_least`), so thresholds and
    priors computed from σ use the noise actually drawn, and the release costs ≤ `rho`.
    """
    return DiscreteGaussian.at_least(sensitivity / math.sqrt(2.0 * rho)).sigma


def _epsilon(rdp: np.ndarray, delta: float) -> float:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        eps, _ = opacus_rdp.get_privacy_spent(orders=list(ORDERS), rdp=list(rdp), delta=delta)
    return float(eps)
