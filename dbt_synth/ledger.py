"""The privacy ledger: one row per twin build, in a table next to the twins.

Every ε the build spent is there — the total from the accountant and each part (row count,
domains, selection, measurements, training) — with the DP row estimate, never the true count.
Rows are written only after the twin's values have been cast, so a build that fails leaves
the ledger as it was.
"""

from __future__ import annotations

import json
import threading
from dataclasses import asdict, dataclass
from datetime import datetime

from dbt_synth.accounting import Spend
from dbt_synth.conditioning import sampling_record
from dbt_synth.pipeline import SynthResult

# Twins built in parallel dbt threads share one process: serialise DDL + insert on the ledger.
_LOCK = threading.Lock()

COLUMNS: tuple[tuple[str, str], ...] = (
    ("invocation_id", "VARCHAR"),
    ("model", "VARCHAR"),
    ("source", "VARCHAR"),
    ("mechanism", "VARCHAR"),
    ("privacy_unit", "VARCHAR"),
    ("epsilon", "DOUBLE"),
    ("delta", "DOUBLE"),
    ("target_epsilon", "DOUBLE"),
    ("epsilon_count", "DOUBLE"),
    ("epsilon_domains", "DOUBLE"),
    ("epsilon_model", "DOUBLE"),
    ("source_rows_dp", "DOUBLE"),
    ("sample_rate", "DOUBLE"),
    ("twin_rows", "BIGINT"),
    ("columns", "INTEGER"),
    ("started_at", "TIMESTAMP"),
    ("finished_at", "TIMESTAMP"),
    ("spends", "VARCHAR"),
    ("column_treatments", "VARCHAR"),
    ("dbt_synth_version", "VARCHAR"),
    ("holdout", "VARCHAR"),
    ("sampling", "VARCHAR"),
)


@dataclass(frozen=True)
class LedgerEntry:
    """One build's privacy record, as stored."""

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


def entry_for(
    result: SynthResult,
    *,
    model: str,
    source: str,
    invocation_id: str | None,
    started_at: datetime,
    finished_at: datetime,
) -> LedgerEntry:
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
        privacy_unit="row",
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


def write_entry(connection, entry: LedgerEntry, *, schema: str, table: str) -> None:
    """Create the ledger if needed (adding columns a newer version introduced) and append."""
    qualified = f"{_quote(schema)}.{_quote(table)}"
    columns_sql = ", ".join(f"{_quote(name)} {sql_type}" for name, sql_type in COLUMNS)
    with _LOCK:
        connection.execute(f"create schema if not exists {_quote(schema)}")
        connection.execute(f"create table if not exists {qualified} ({columns_sql})")
        for name, sql_type in COLUMNS:
            connection.execute(
                f"alter table {qualified} add column if not exists {_quote(name)} {sql_type}"
            )
        values = asdict(entry)
        names = ", ".join(_quote(name) for name, _ in COLUMNS)
        placeholders = ", ".join("?" for _ in COLUMNS)
        connection.execute(
            f"insert into {qualified} ({names}) values ({placeholders})",
            [values[name] for name, _ in COLUMNS],
        )


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'
