"""Privacy audit tools: canaries, a distance-based membership attack and an ε recomputation.

They treat the twin as an attacker would (only its rows are read) and the ledger as an auditor
would (only its logged spends are read), so they test the guarantee from the outside. Shared by
`bench/audit/run_audit.py` (the full audit) and `tests/test_privacy_audit.py` (a small one).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from opacus.accountants.analysis import rdp as opacus_rdp
from scipy.optimize import minimize_scalar
from sklearn.metrics import roc_auc_score
from sklearn.neighbors import NearestNeighbors

# --- canaries -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class QuasiIdentifiers:
    """A public binning of quasi-identifiers, learnt from the real rows *without* the canaries.

    Numbers fall in decile bins of the real data, plus one bin below its minimum and one above
    its maximum; categories are their own bins. A canary planted outside the real range therefore
    has a bin no real row has.
    """

    numeric: dict[str, np.ndarray]
    categorical: tuple[str, ...]

    @classmethod
    def of(cls, real: pd.DataFrame, numeric: list[str], categorical: list[str]):
        edges = {
            c: np.unique(np.quantile(real[c].astype(float), np.linspace(0, 1, 11))) for c in numeric
        }
        return cls(edges, tuple(categorical))

    def bins(self, frame: pd.DataFrame) -> np.ndarray:
        """One row of bin labels (strings) per row of `frame`, numerics first."""
        columns = []
        for name, edges in self.numeric.items():
            values = frame[name].astype(float).to_numpy()
            inner = np.clip(np.searchsorted(edges, values, side="right"), 1, len(edges) - 1)
            label = np.where(
                values < edges[0], "below", np.where(values > edges[-1], "above", inner.astype(str))
            )
            columns.append(np.char.add(f"{name}:", label.astype(str)))
        for name in self.categorical:
            columns.append(np.char.add(f"{name}:", frame[name].astype(str).to_numpy().astype(str)))
        return np.column_stack(columns)


def near_copies(twin: pd.DataFrame, canaries: pd.DataFrame, qi: QuasiIdentifiers) -> np.ndarray:
    """Per canary: twin rows whose binned quasi-identifiers differ from it in at most one place."""
    twin_bins = qi.bins(twin)
    canary_bins = qi.bins(canaries)
    return np.array([int(((twin_bins != c).sum(axis=1) <= 1).sum()) for c in canary_bins])


def exact_copies(twin: pd.DataFrame, canaries: pd.DataFrame) -> int:
    """Canaries that appear verbatim (all columns) in the twin."""
    merged = canaries.astype(str).merge(twin.astype(str).drop_duplicates(), how="inner")
    return len(merged)


# --- membership inference -----------------------------------------------------------------------


@dataclass(frozen=True)
class _Embedding:
    """Rows as points: numerics rank-scaled to [0, 1] by the public holdout, categories one-hot."""

    numeric: dict[str, np.ndarray]
    categories: dict[str, list]

    @classmethod
    def of(cls, reference: pd.DataFrame, numeric: list[str], categorical: list[str]):
        return cls(
            {c: np.sort(reference[c].astype(float).to_numpy()) for c in numeric},
            {c: sorted(reference[c].astype(str).unique()) for c in categorical},
        )

    def __call__(self, frame: pd.DataFrame) -> np.ndarray:
        parts = []
        for name, sorted_values in self.numeric.items():
            values = frame[name].astype(float).to_numpy()
            ranks = np.searchsorted(sorted_values, values) / len(sorted_values)
            parts.append(ranks[:, None])
        for name, levels in self.categories.items():
            values = frame[name].astype(str).to_numpy()
            parts.append((values[:, None] == np.array(levels)[None, :]).astype(float))
        return np.hstack(parts)


def distance_attack_auc(
    members: pd.DataFrame,
    non_members: pd.DataFrame,
    twin: pd.DataFrame,
    numeric: list[str],
    categorical: list[str],
) -> float:
    """AUC of calling rows with a closer nearest twin row members (0.5: a coin toss).

    The distance-to-closest-record attack: a generator that memorises its training rows puts
    twin rows next to members but not next to non-members.
    """
    embed = _Embedding.of(non_members, numeric, categorical)
    index = NearestNeighbors(n_neighbors=1).fit(embed(twin))
    distances = [index.kneighbors(embed(frame))[0][:, 0] for frame in (members, non_members)]
    labels = np.r_[np.ones(len(members)), np.zeros(len(non_members))]
    # Ties (CPS1988 repeats rows) are scored as half right by the AUC, as they should be.
    return float(roc_auc_score(labels, -np.concatenate(distances)))


# --- accounting ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Recomputed:
    """ε of a ledger row recomputed from its spends only."""

    epsilon_opacus: float  # opacus' RDP curves and conversion on a grid of our own
    epsilon_exact_zcdp: float | None  # optimal-α conversion of the total ρ (no SGD spends)
    conversion_delta: float
    total_rho: float | None


_AUDIT_ORDERS = np.unique(np.r_[np.linspace(1.01, 10, 300), np.geomspace(10, 1e6, 700)])


def recompute_epsilon(spends_json: str, delta: float) -> Recomputed:
    """ε of the logged spends at the logged δ, without dbt_synth's accountant.

    Gaussian and exponential releases are recomputed from their ρ as a Gaussian of noise
    multiplier 1/√(2ρ) (opacus `compute_rdp` with q=1); DP-SGD spends from their noise
    multiplier, sample rate and steps. The δ the conversion may use is the ledger's δ minus the
    failure probabilities reserved by thresholded histograms.
    """
    spends = json.loads(spends_json)
    conversion_delta = delta - sum(float(s.get("threshold_delta") or 0.0) for s in spends)
    rdp = np.zeros(len(_AUDIT_ORDERS))
    total_rho = 0.0
    has_sgd = False
    for spend in spends:
        if spend.get("rho") is not None:
            rho = float(spend["rho"])
            total_rho += rho
            rdp += opacus_rdp.compute_rdp(
                q=1.0,
                noise_multiplier=1.0 / math.sqrt(2.0 * rho),
                steps=1,
                orders=list(_AUDIT_ORDERS),
            )
        elif spend.get("noise_multiplier") is not None:
            has_sgd = True
            orders = _AUDIT_ORDERS[_AUDIT_ORDERS <= 512]
            curve = np.full(len(_AUDIT_ORDERS), np.inf)
            curve[: len(orders)] = opacus_rdp.compute_rdp(
                q=float(spend["sample_rate"]),
                noise_multiplier=float(spend["noise_multiplier"]),
                steps=int(spend["steps"]),
                orders=list(orders),
            )
            rdp += curve
        else:
            raise ValueError(f"spend {spend} logs neither rho nor DP-SGD parameters")
    epsilon, _ = opacus_rdp.get_privacy_spent(
        orders=list(_AUDIT_ORDERS), rdp=list(rdp), delta=conversion_delta
    )
    exact = None if has_sgd else zcdp_epsilon(total_rho, conversion_delta)
    return Recomputed(float(epsilon), exact, conversion_delta, None if has_sgd else total_rho)


def zcdp_epsilon(rho: float, delta: float) -> float:
    """(ε, δ) of ρ-zCDP by minimising the RDP conversion of Balle et al. (2020) over real α > 1.

    ε(α) = αρ + (log(1/δ) + (α−1)·log(1−1/α) − log α) / (α−1).
    """

    def epsilon(log_alpha_minus_one: float) -> float:
        alpha = 1.0 + math.exp(log_alpha_minus_one)
        return alpha * rho + (
            math.log(1 / delta) + (alpha - 1) * math.log(1 - 1 / alpha) - math.log(alpha)
        ) / (alpha - 1)

    best = minimize_scalar(epsilon, bounds=(-10.0, 20.0), method="bounded")
    return float(max(best.fun, 0.0))
