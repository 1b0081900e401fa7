"""The store's part of a twin build: decide before reading, record after writing.

`plan_build` runs before any source row is read: it finds the twin's stored fit (by model and
fingerprint), decides whether to refit (`policy.decide`), and for a refit checks the source's
lifetime budget from the ledger. After the twin is materialised, `ledger_fields` stamps the
ledger row (fit id, "resampled from fit <id>" or why it refit) and `save` appends the model —
only after the ledger row, so no stored model lacks the ledger row that paid for it.
"""

from __future__ import annotations

import dataclasses
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from dbt_synth.config import SynthConfig
from dbt_synth.ledger import LedgerEntry
from dbt_synth.pipeline import SynthResult
from dbt_synth.schema import TableSchema
from dbt_synth.store import refit_requested
from dbt_synth.store.model import StoredModel, fingerprint
from dbt_synth.store.policy import Decision, RefitReason, check_budget, decide
from dbt_synth.store.table import ModelStore
from dbt_synth.warehouse import OwnTable, Warehouse


@dataclass(frozen=True)
class BuildPlan:
    """What this build does (resample or refit, and why) and how it is recorded."""

    decision: Decision
    fit_id: str
    fingerprint: str
    store: ModelStore
    model: str
    source: str
    config: SynthConfig
    storable: bool

    def resampled(self) -> SynthResult:
        """The twin from the stored fit (ε 0); only when the decision is to resample."""
        assert self.decision.stored is not None
        return self.decision.stored.resampled(self.config)

    def ledger_fields(self, entry: LedgerEntry) -> LedgerEntry:
        stored = self.decision.stored
        return dataclasses.replace(
            entry,
            fit_id=self.fit_id,
            resampled_from=stored.fit_id if stored is not None else None,
            refit_reason=self.decision.reason.value if self.decision.reason else None,
            config_fingerprint=self.fingerprint,
            max_total_epsilon=self.config.max_total_epsilon,
        )

    def save(self, result: SynthResult) -> None:
        """Store a new fit; call after its ledger row is written. Resamples store nothing."""
        if not self.decision.refit or not self.storable:
            return
        self.store.save(
            StoredModel(
                fit_id=self.fit_id,
                model=self.model,
                source=self.source,
                fingerprint=self.fingerprint,
                created_at=_now(),
                epsilon=result.epsilon,
                fitted=result,
            )
        )


def plan_build(
    warehouse: Warehouse,
    ledger: OwnTable,
    model: str,
    schema: TableSchema,
    config: SynthConfig,
    *,
    holdout: Any,
    storable: bool,
) -> BuildPlan:
    """Decide from our tables only (no source row is read); a refit past the source's
    `max_total_epsilon` raises here, leaving the twin, ledger and store as they were."""
    store = ModelStore(warehouse, OwnTable(ledger.schema, config.model_table))
    key = fingerprint(config, schema, holdout)
    if storable:
        latest, any_stored = store.latest(model, key)
        decision = decide(latest, any_stored, config, requested=refit_requested(model), now=_now())
    else:
        decision = Decision(None, RefitReason.NOT_STORED)
    if decision.refit:
        check_budget(warehouse.read(ledger), schema.table, config)
    fit_id = decision.stored.fit_id if decision.stored is not None else uuid.uuid4().hex
    return BuildPlan(decision, fit_id, key, store, model, schema.table, config, storable)


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)
