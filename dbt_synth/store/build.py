"""The store's part of a twin build: decide before reading, record after writing.

`plan_build` runs before any source row is read: it finds the twin's stored fit (by model and
fingerprint; a child twin's holds its joined fit and its key parts), decides whether to refit
(`policy.decide`), and for a refit checks the source's lifetime budget from the ledger. After
the twin is materialised, `ledger_fields` stamps the ledger row (fit id, "resampled from fit
<id>" or why it refit) and `save` appends the model — only after the ledger row, so no stored
model lacks the ledger row that paid for it.
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
from dbt_synth.relational import ChildResult, ParentData, RelationalConfig, resample_child
from dbt_synth.relational.joined import joined_config, not_redrawn
from dbt_synth.schema import TableSchema
from dbt_synth.store import refit_requested
from dbt_synth.store.model import StoredModel, fingerprint
from dbt_synth.store.policy import Decision, check_budget, decide
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

    def resampled(self) -> SynthResult:
        """The twin from the stored fit (ε 0); only when the decision is to resample."""
        assert self.decision.stored is not None
        return self.decision.stored.resampled(self.config)

    def resampled_child(
        self, parents: dict[str, ParentData], relational: RelationalConfig
    ) -> SynthResult:
        """A child twin from its stored fit (ε 0), its keys drawn from the `parents`' twins as
        they are now; only when the decision is to resample."""
        stored = self.decision.stored
        assert stored is not None and stored.child is not None
        names = stored.fitted.generator.names
        config, skipped = joined_config(self.config, stored.child.plans, names, stored.child.schema)
        resampled = stored.resampled(config)
        resampled = dataclasses.replace(
            resampled, generator=not_redrawn(resampled.generator, skipped)
        )
        return resample_child(resampled, stored.child, parents, relational, self.config).result

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

    def save(self, result: SynthResult, child: ChildResult | None = None) -> None:
        """Store a new fit (a child twin's: its joined fit and key parts from `child`); call
        after its ledger row is written. Resamples store nothing."""
        if not self.decision.refit:
            return
        self.store.save(
            StoredModel(
                fit_id=self.fit_id,
                model=self.model,
                source=self.source,
                fingerprint=self.fingerprint,
                created_at=_now(),
                epsilon=result.epsilon,
                fitted=child.joined if child is not None and child.joined else result,
                child=child.fit if child is not None else None,
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
    relatives: Any = None,
) -> BuildPlan:
    """Decide from our tables only (no source row is read); a refit past the source's
    `max_total_epsilon` raises here, leaving the twin, ledger and store as they were.
    `relatives` are a child twin's public facts that shape its fit (see `fingerprint`)."""
    store = ModelStore(warehouse, OwnTable(ledger.schema, config.model_table))
    key = fingerprint(config, schema, holdout, relatives)
    latest, any_stored = store.latest(model, key, child=relatives is not None)
    decision = decide(latest, any_stored, config, requested=refit_requested(model), now=_now())
    if decision.refit:
        check_budget(warehouse.read(ledger, where={"source": schema.table}), schema.table, config)
    fit_id = decision.stored.fit_id if decision.stored is not None else uuid.uuid4().hex
    return BuildPlan(decision, fit_id, key, store, model, schema.table, config)


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)
