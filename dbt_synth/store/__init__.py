"""Fit once, sample many: stored DP fits, refit decisions and the lifetime budget of a source.

- `model`: `StoredModel`, a fit's DP domains, encoders, fitted mechanism and DP row count, and
  `fingerprint` (config + schema, never data);
- `codec`: the explicit JSON + npz format (no pickle);
- `policy`: refit or resample, and `max_total_epsilon` checked from the ledger;
- `table`: the `synth_models` table through the warehouse seam, and the per-source lock.
"""

from __future__ import annotations

from typing import Any

from dbt_synth.store.codec import FORMAT_VERSION, StoreError
from dbt_synth.store.model import StoredModel, fingerprint
from dbt_synth.store.policy import (
    Decision,
    RefitReason,
    SourceBudget,
    check_budget,
    decide,
    source_budgets,
)
from dbt_synth.store.table import ModelStore, source_lock

REFIT_VAR = "synth_refit"

__all__ = [
    "FORMAT_VERSION",
    "REFIT_VAR",
    "Decision",
    "ModelStore",
    "RefitReason",
    "SourceBudget",
    "StoreError",
    "StoredModel",
    "check_budget",
    "decide",
    "fingerprint",
    "refit_requested",
    "source_budgets",
    "source_lock",
]


def refit_requested(model: str) -> bool:
    """Whether the running dbt invocation asks to refit `model`: `--vars '{synth_refit: true}'`
    (every twin) or `--vars '{synth_refit: [twin_a, twin_b]}'` (those twins).

    dbt hands a Python model no `var()`; dbt-duckdb runs Python models inside dbt's own process,
    so the invocation's parsed `--vars` are read from dbt's flags.
    """
    try:
        from dbt.flags import get_flags
    except ImportError:
        return False
    value: Any = (getattr(get_flags(), "VARS", None) or {}).get(REFIT_VAR)
    if isinstance(value, list | tuple):
        return model in {str(v) for v in value}
    if isinstance(value, str):
        return value.strip().lower() in {"true", "1", "yes", model.lower()}
    return bool(value)
