"""The privacy ledger: one row per twin build, in a table next to the twins.

Every ε the build spent is there — the total from the accountant and each part (row count,
domains, selection, measurements, training) — with the DP row estimate, never the true count.
Rows are written only after the twin's values have been cast, so a build that fails leaves
the ledger as it was.
"""

from __future__ import annotations

import json
import types
import typing
from collections.abc import Mapping
from dataclasses import MISSING, asdict, dataclass, fields
from datetime import datetime
from typing import Any

import pyarrow as pa

from dbt_synth.accounting import Spend
from dbt_synth.conditioning import sampling_record
from dbt_synth.holdout import HoldoutRule
from dbt_synth.pipeline import SynthResult
from dbt_synth.warehouse import OwnTable, Warehouse


@dataclass(frozen=True)
class LedgerEntry:
    """One build's privacy record, as stored: the ledger's columns are these fields, typed by
    their annotations (`ledger_schema`)."""

    invocation_id: str | None
    model: str
    source: str
    mechanism: str
    privacy_unit: str
    epsilon: float
    delta: float
    target_epsilon: float
    epsilon_count: float
    epsilon_domains: float
    epsilon_model: float
    source_rows_dp: float
    sample_rate: float
    twin_rows: int
    columns: int
    started_at: datetime
    finished_at: datetime
    spends: str
    column_treatments: str
    dbt_synth_version: str
    holdout: str | None = None  # JSON of dbt_synth.holdout.HoldoutRule, when rows were held out
    # JSON of the rules, condition and rebalance and how many drawn rows each redrew.
    sampling: str | None = None
    # `synth.seed` fixed the sampling of twin rows (never the fit's noise, which is OS entropy).
    sampling_seed_fixed: bool = False
    # A test replayed the fit's noise (`dbt_synth.noise.replayable_noise`): not private.
    noise_replayed: bool = False
    # The stored fit the twin came from (dbt_synth.store): new for a refit, else the fit it was
    # resampled from (then `resampled_from` is set and ε is 0); why it refit; the config and
    # schema fingerprint; the source's lifetime cap in force.
    fit_id: str | None = None
    resampled_from: str | None = None
    refit_reason: str | None = None
    config_fingerprint: str | None = None
    max_total_epsilon: float | None = None


def entry_for(
    result: SynthResult,
    *,
    model: str,
    source: str,
    invocation_id: str | None,
    started_at: datetime,
    finished_at: datetime,
    holdout: HoldoutRule | None = None,
) -> LedgerEntry:
    """The ledger row of a finished build; the privacy unit is the result's."""
    from dbt_synth import __version__

    spends = [
        {
            "part": s.part,
            "mechanism": s.mechanism,
            "column": s.column,
            "rho": s.rho,
            "epsilon_alone": round(s.epsilon_alone(result.delta), 6),
            "threshold_delta": s.delta,
            "detail": s.detail,
            **_sgd_parameters(s),
        }
        for s in result.spends
    ]
    return LedgerEntry(
        invocation_id=invocation_id,
        model=model,
        source=source,
        mechanism=result.mechanism,
        privacy_unit=result.privacy_unit,
        epsilon=result.epsilon,
        delta=result.delta,
        target_epsilon=result.target_epsilon,
        # Each part's ε as if it were released alone; together they compose to `epsilon`,
        # which is less than their sum.
        epsilon_count=result.epsilon_of("count"),
        epsilon_domains=result.epsilon_of("domain"),
        epsilon_model=result.epsilon_of("selection", "measurement", "training"),
        source_rows_dp=result.rows_estimate,
        sample_rate=result.sample_rate,
        twin_rows=result.rows,
        columns=len(result.schema.columns),
        started_at=started_at,
        finished_at=finished_at,
        spends=json.dumps(spends),
        column_treatments=json.dumps({c.name: c.treatment for c in result.columns}),
        dbt_synth_version=__version__,
        sampling=sampling_record(result.generator),
        holdout=None if holdout is None else json.dumps(holdout.describe()),
        sampling_seed_fixed=result.seed_fixed,
        noise_replayed=result.noise_replayable,
    )


def _sgd_parameters(spend: Spend) -> dict[str, float | int]:
    """A DP-SGD spend's (noise multiplier, sample rate, steps): enough to recompute its ε."""
    if spend.noise_multiplier is None:
        return {}
    return {
        "noise_multiplier": spend.noise_multiplier,
        "sample_rate": spend.sample_rate,
        "steps": spend.steps,
    }


_ARROW_TYPES: dict[type, pa.DataType] = {
    str: pa.string(),
    bool: pa.bool_(),
    float: pa.float64(),
    int: pa.int64(),
    datetime: pa.timestamp("us"),
}


def ledger_schema() -> pa.Schema:
    """The ledger's columns: one per `LedgerEntry` field, its type from the annotation."""
    hints = typing.get_type_hints(LedgerEntry)
    return pa.schema(
        [pa.field(f.name, _ARROW_TYPES[_not_none(hints[f.name])]) for f in fields(LedgerEntry)]
    )


def _not_none(annotation: object) -> type:
    """`X | None` → X."""
    if isinstance(annotation, types.UnionType):
        (inner,) = [a for a in typing.get_args(annotation) if a is not type(None)]
        return inner
    return annotation


def write_entry(warehouse: Warehouse, entry: LedgerEntry, table: OwnTable) -> None:
    """Append `entry` to the ledger `table` (created, or given newer columns, when needed)."""
    warehouse.append(table, pa.Table.from_pylist([asdict(entry)], schema=ledger_schema()))


def read_entries(warehouse: Warehouse, table: OwnTable) -> tuple[LedgerEntry, ...]:
    """Every entry of the ledger `table`, oldest version's rows included (columns a version did
    not record read as their default, else None); none when the ledger does not exist."""
    rows = warehouse.read(table)
    if rows is None:
        return ()
    return tuple(entry_of(row) for row in rows.to_pylist())


def entry_of(record: Mapping[str, Any]) -> LedgerEntry:
    """One ledger row as read back, from any engine (dbt's agate tables give Decimals): each
    value typed by its field's annotation; columns an older dbt-synth did not record take the
    field's default, else None."""
    hints = typing.get_type_hints(LedgerEntry)
    values = {}
    for f in fields(LedgerEntry):
        value = record.get(f.name, None if f.default is MISSING else f.default)
        kind = _not_none(hints[f.name])
        values[f.name] = value if value is None or kind is datetime else kind(value)
    return LedgerEntry(**values)
