"""The function a dbt Python model calls: `dbt_synth.twin(dbt, session, dbt.ref("x"), config)`.

It reads the source's schema from the warehouse, fits and samples the twin, casts every column
back to the source's exact type inside the warehouse, records the build in the ledger and hands
dbt a relation to materialise. dbt builds into a temporary relation and swaps it in only on
success, so a failing twin leaves the previous one untouched; the ledger row is written after
the casts have succeeded, so it never records a build that produced nothing.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa

from dbt_synth.conditioning import sampling_lines
from dbt_synth.config import parse_config
from dbt_synth.errors import SynthError
from dbt_synth.holdout import HoldoutRule, rule_for, train_filter_sql
from dbt_synth.ledger import LedgerEntry, entry_for, write_entry
from dbt_synth.pipeline import SynthResult, synthesize
from dbt_synth.schema import TableSchema, schema_from_duckdb
from dbt_synth.source_rows import SourceRows


def twin(dbt: Any, session: Any, source: Any, config: dict[str, Any] | None = None) -> Any:
    """Build the DP twin of `source` for the model that calls this; returns a DuckDB relation.

    `config` is the model's `synth` config (pass `dbt.config.get("synth")`: dbt only hands a
    Python model the config keys its file reads literally).
    """
    model = str(dbt.this.identifier)
    started_at = _now()
    try:
        schema = schema_from_duckdb(source, session)
        source, holdout = _train_rows(source, schema, config)
        raw = dict(config or {})
        say = _progress(model, raw)
        result = synthesize(
            SourceRows.of_relation(source), schema=schema, config=raw, model=model, progress=say
        )
        relation = _cast_in_warehouse(session, result, schema, model)
        for line in sampling_lines(result.generator):  # rules, condition, rebalance
            say(line)
    except SynthError as error:
        raise error.for_model(model) from None
    _write_ledger(dbt, session, _ledger_entry(result, model, schema, started_at, holdout), config)
    return relation


def _train_rows(
    source: Any, schema: TableSchema, config: dict[str, Any] | None
) -> tuple[Any, HoldoutRule | None]:
    """The source rows the twin is fit on and, with `synth.holdout`, the rule that split them.

    The split is keyed by the twin's primary key if it has one, else by the whole row.
    """
    settings = parse_config(config)
    if not settings.holdout:
        return source, None
    rule = rule_for(schema, settings.holdout, settings.primary_key)
    return source.filter(train_filter_sql(schema, rule)), rule


def _ledger_entry(
    result: SynthResult,
    model: str,
    schema: TableSchema,
    started_at: str,
    holdout: HoldoutRule | None,
) -> LedgerEntry:
    """The ledger row of a finished twin, stating the holdout rule when rows were held out."""
    entry = entry_for(
        result,
        model=model,
        source=schema.table,
        invocation_id=_invocation_id(),
        started_at=started_at,
        finished_at=_now(),
    )
    if holdout is None:
        return entry
    return dataclasses.replace(entry, holdout=json.dumps(holdout.describe()))


def _write_ledger(
    dbt: Any, session: Any, entry: LedgerEntry, config: dict[str, Any] | None
) -> None:
    """Append `entry` to the configured ledger (default: `synth_ledger` in the twin's schema)."""
    settings = config or {}
    write_entry(
        session,
        entry,
        schema=settings.get("ledger_schema") or str(dbt.this.schema),
        table=settings.get("ledger_table") or "synth_ledger",
    )


def _cast_in_warehouse(session: Any, result: SynthResult, schema: TableSchema, model: str) -> Any:
    """Materialise the twin with each column cast to the source's type, in source order.

    Casting here (into a temp table) rather than in dbt's final CTAS makes any cast problem
    surface before the ledger is written.
    """
    staged = f"__dbt_synth_twin_{model}"
    # Streamed chunk by chunk into the warehouse: the twin is never whole in Python memory.
    batches = result.generator.batches()
    first = next(batches)
    stream = pa.RecordBatchReader.from_batches(first.schema, itertools.chain([first], batches))
    session.register(f"{staged}_arrow", stream)
    select = ", ".join(
        f'cast("{_escape(c.name)}" as {c.sql_type}) as "{_escape(c.name)}"' for c in schema.columns
    )
    session.execute(
        f'create or replace temp table "{staged}" as select {select} from "{staged}_arrow"'
    )
    session.unregister(f"{staged}_arrow")
    return session.query(f'select * from "{staged}"')


def _progress(model: str, config: dict[str, Any]):
    """Fitting progress through dbt's own logger; `verbose: false` sends it to the debug log."""
    from dbt.adapters.events.logging import AdapterLogger

    logger = AdapterLogger("dbt-synth")
    emit = logger.info if config.get("verbose", True) else logger.debug
    return lambda message: emit(f"{model}: {message}")


def _invocation_id() -> str | None:
    try:
        from dbt_common.invocation import get_invocation_id
    except ImportError:
        return None
    return get_invocation_id()


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _escape(name: str) -> str:
    return name.replace('"', '""')
