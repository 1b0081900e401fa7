"""Refit or resample, and the lifetime budget of a source: decided from our tables alone.

Both decisions are taken before any source row is read, from the ledger and the model store:

- **Refit** when there is no stored fit of this twin, when the config or the source's schema
  changed (the fingerprint differs), when the user asks (`--vars '{synth_refit: true}'`), or
  when the declared policy (`refit: {every: 7 days}`) finds the stored fit too old. Otherwise
  the twin is resampled from the stored fit and spends nothing.
- **Lifetime budget**: `max_total_epsilon` caps the sum of ε over every fit of every twin of a
  source, as the ledger records them. Summing is basic composition — a valid upper bound of what
  the fits together reveal (their δ add up too), looser than composing their RDP curves. A refit
  whose target ε would take the source past the cap fails before reading anything.

What cannot be detected without spending ε: whether the source's *rows* changed. The schema is
public and compared; the data is not looked at (a hash of it would be a non-private release),
so a source refreshed with new rows keeps its twin until a policy or the user asks for a refit.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pyarrow as pa

from dbt_synth.config import SynthConfig
from dbt_synth.errors import BudgetError
from dbt_synth.store.model import StoredModel

# The accountant's own slack: a fit's ε may exceed its target by this relative amount.
_SLACK = 1e-6


class RefitReason(enum.Enum):
    """Why a build fits again instead of resampling a stored fit (as logged and in the ledger)."""

    FIRST_FIT = "no stored fit of this twin"
    CHANGED = "config or source schema changed since the stored fit"
    REQUESTED = "refit requested (synth_refit)"
    EXPIRED = "stored fit older than the refit policy"
    UNREADABLE = "stored fit cannot be read by this version"


@dataclass(frozen=True)
class Decision:
    """Resample `stored`, or refit for `reason`."""

    stored: StoredModel | None
    reason: RefitReason | None

    @property
    def refit(self) -> bool:
        return self.reason is not None

    def describe(self) -> str:
        if self.reason is None and self.stored is not None:
            return f"resampled from fit {self.stored.fit_id} (ε 0)"
        return f"fitting: {self.reason.value}" if self.reason else "fitting"


def decide(
    latest: StoredModel | None,
    any_stored: bool,
    config: SynthConfig,
    *,
    requested: bool,
    now: datetime,
) -> Decision:
    """The decision for a twin whose newest fit with the current fingerprint is `latest`;
    `any_stored` says whether the twin has a stored fit under any fingerprint."""
    if latest is None:
        return Decision(None, RefitReason.CHANGED if any_stored else RefitReason.FIRST_FIT)
    if requested:
        return Decision(None, RefitReason.REQUESTED)
    if config.refit is not None and now - latest.created_at >= config.refit.every:
        return Decision(None, RefitReason.EXPIRED)
    return Decision(latest, None)


@dataclass(frozen=True)
class SourceBudget:
    """ε a source has spent over all fits of all its twins, against its cap (if any)."""

    source: str
    spent: float
    delta: float
    fits: int
    cap: float | None

    def line(self) -> str:
        cap = f" of max_total_epsilon {self.cap:g}" if self.cap is not None else " (no cap)"
        return (
            f"{self.source}: ε {self.spent:.3f}{cap} over {self.fits} fit(s), "
            f"δ {self.delta:.2e} (sum of fits: an upper bound)"
        )


def source_budgets(ledger: pa.Table | list[dict[str, Any]] | None) -> list[SourceBudget]:
    """Per source: summed ε and δ of its fits (resamples spend 0) and the latest cap recorded."""
    if ledger is None:
        return []
    rows = ledger.to_pylist() if isinstance(ledger, pa.Table) else list(ledger)
    rows.sort(key=lambda r: r.get("finished_at") or datetime.min)
    budgets: dict[str, SourceBudget] = {}
    for row in rows:
        source = row["source"]
        before = budgets.get(source, SourceBudget(source, 0.0, 0.0, 0, None))
        spent = float(row.get("epsilon") or 0.0)
        cap = row.get("max_total_epsilon")
        budgets[source] = SourceBudget(
            source,
            before.spent + spent,
            before.delta + float(row.get("delta") or 0.0),
            before.fits + int(spent > 0),
            float(cap) if cap is not None else before.cap,
        )
    return sorted(budgets.values(), key=lambda b: b.source)


def check_budget(ledger: pa.Table | None, source: str, config: SynthConfig) -> None:
    """Refuse a fit of `source` at `config.epsilon` that would pass `max_total_epsilon`."""
    cap = config.max_total_epsilon
    if cap is None:
        return
    budget = next((b for b in source_budgets(ledger) if b.source == source), None)
    spent, fits = (budget.spent, budget.fits) if budget else (0.0, 0)
    if spent + config.epsilon > cap * (1 + _SLACK):
        raise BudgetError(
            f"source '{source}' has spent ε={spent:.3f} over {fits} fit(s) and this refit asks "
            f"ε={config.epsilon:g}: that passes its max_total_epsilon={cap:g}; the previous twin "
            "and ledger are kept",
            fix="keep resampling the stored fit (drop synth_refit, undo the config change), lower "
            "synth.epsilon, or raise synth.max_total_epsilon if more releases of this source are "
            "acceptable",
        )
