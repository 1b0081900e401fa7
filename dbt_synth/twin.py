"""The functions a dbt Python model calls, and the one road both take to a twin.

    dbt_synth.twin(dbt, session, dbt.source("raw", "planes"), dbt.config.get("synth"))

    planes = dbt.ref("planes_twin")
    planes_raw = dbt.source("raw", "planes")
    dbt_synth.child_twin(dbt, session, dbt.source("raw", "flights"), dbt.config.get("synth"),
                         parents={"planes_twin": (planes, planes_raw)})

`build` parses the `synth` config once and asks the model store (`dbt_synth.store`) whether a
stored fit can be resampled (ε 0: no source row is read, for a child twin not even its parents'
sources, only their twins). Otherwise it reads the source through the warehouse seam
(`dbt_synth.warehouse`) and fits the twin (`pipeline.synthesize`, or
`relational.synthesize_child` for a child). It materialises the twin cast to the source types,
records the build in the ledger (then stores a new fit) and hands dbt what to materialise.
dbt builds into a temporary relation and swaps it in only on success, so a failing twin leaves
the previous one untouched; the ledger row is written after the casts have succeeded, so it
never records a build that produced nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from dbt_synth.conditioning import sampling_lines
from dbt_synth.config import SynthConfig, parse_config
from dbt_synth.errors import SynthError
from dbt_synth.holdout import HoldoutRule, rule_for, train_filter_sql
from dbt_synth.ledger import entry_for, write_entry
from dbt_synth.pipeline import synthesize
from dbt_synth.relational import (
    ChildResult,
    ForeignKey,
    ParentData,
    RelationalConfig,
    split_config,
    synthesize_child,
)
from dbt_synth.relational.engine import ChildTables
from dbt_synth.relational.manifest import discover_keys, manifest_location
from dbt_synth.relational.plan import HeldSource
from dbt_synth.schema import TableSchema
from dbt_synth.store.build import plan_build
from dbt_synth.store.table import source_lock
from dbt_synth.warehouse import OwnTable, Warehouse, create


def twin(dbt: Any, session: Any, source: Any, config: dict[str, Any] | None = None) -> Any:
    """Build the DP twin of `source` for the model that calls this; returns what dbt writes.

    `config` is the model's `synth` config (pass `dbt.config.get("synth")`: dbt only hands a
    Python model the config keys its file reads literally).
    """
    return build(dbt, session, source, config)


def child_twin(
    dbt: Any,
    session: Any,
    source: Any,
    config: dict[str, Any] | None = None,
    *,
    parents: dict[str, Any],
) -> Any:
    """Build the DP twin of `source` whose foreign keys exist in the `parents`' twins.

    `parents` maps each parent twin's model name to `(dbt.ref(name), dbt.source(...))`, or to
    `dbt.ref(name)` alone when the child need not learn from the parent's attributes. The
    literal `dbt.ref(parent)` is what makes dbt build the parent twin first (one call per
    statement: dbt's Python-model parser does not see calls nested in tuples); the parent's
    source is read only for the attributes the child learns its dependency on (DP, within the
    child's ε), joined with the child in the warehouse: only the fit's sample of the joined rows
    reaches Python. Foreign keys come from the `relationships` tests on this model (the manifest)
    plus `synth.foreign_keys`.
    """
    return build(dbt, session, source, config, parents=parents)


@dataclass(frozen=True)
class TwinConfig:
    """A model's `synth` config, parsed once: the single-table part and, for a child twin, the
    relational part (foreign keys, privacy unit)."""

    synth: SynthConfig
    relational: RelationalConfig | None = None

    @classmethod
    def parse(cls, raw: dict[str, Any] | None, *, model: str, child: bool) -> TwinConfig:
        if not child:
            return cls(parse_config(raw, model=model))
        relational, single_table = split_config(raw, model=model)
        return cls(parse_config(single_table, model=model), relational)

    def ledger(self, default_schema: str) -> OwnTable:
        """The ledger table (default: `synth_ledger` in the twin's schema)."""
        return OwnTable(self.synth.ledger_schema or default_schema, self.synth.ledger_table)


def build(
    dbt: Any,
    session: Any,
    source: Any,
    raw_config: dict[str, Any] | None,
    *,
    parents: dict[str, Any] | None = None,
) -> Any:
    """The one road from a dbt model to its twin and ledger row (see the module docstring)."""
    model = str(dbt.this.identifier)
    started_at = _now()
    try:
        warehouse = create(session)
        config = TwinConfig.parse(raw_config, model=model, child=parents is not None)
        schema = warehouse.schema(source)
        ledger = config.ledger(str(dbt.this.schema))
        progress = _progress(model, config.synth.verbose)
        holdout = _holdout(schema, config.synth)
        relatives = _Relatives.of(config, model, parents) if parents is not None else None
        # Fits of one source one at a time: the lifetime budget is checked, then spent.
        with source_lock(ledger, schema.table):
            # Decided from our tables and public schemas alone, before any source row is read.
            plan = plan_build(
                warehouse,
                ledger,
                model,
                schema,
                config.synth,
                holdout=holdout.describe() if holdout else None,
                relatives=relatives.shape(warehouse) if relatives else None,
            )
            progress(plan.decision.describe())
            child = None
            if relatives is not None and not plan.decision.refit:
                # Keys drawn from the parents' twins as built now; no source is read.
                result = plan.resampled_child(relatives.twins(warehouse), relatives.relational)
            elif not plan.decision.refit:
                result = plan.resampled()
            elif relatives is None:
                result = synthesize(
                    warehouse.source_rows(_train_rows(warehouse, source, schema, holdout)),
                    schema=schema,
                    config=config.synth,
                    model=model,
                    progress=progress,
                )
            else:
                train = _train_rows(warehouse, source, schema, holdout)
                child = _child(warehouse, train, schema, config, relatives, model, progress)
                result = child.result
            relation = warehouse.materialise_twin(result.generator, schema, model)
            for line in sampling_lines(result.generator):  # rules, condition, rebalance
                progress(line)
            entry = entry_for(
                result,
                model=model,
                source=schema.table,
                invocation_id=_invocation_id(),
                started_at=started_at,
                finished_at=_now(),
                holdout=holdout,
            )
            write_entry(warehouse, plan.ledger_fields(entry), ledger)
            # The model only after the ledger row that paid for it.
            plan.save(result, child)
    except SynthError as error:
        raise error.for_model(model) from None
    return relation


@dataclass(frozen=True)
class _Relatives:
    """A child twin's parents and foreign keys, as known before any row is read."""

    relational: RelationalConfig
    discovered: tuple[ForeignKey, ...]
    parents: dict[str, Any]

    @classmethod
    def of(cls, config: TwinConfig, model: str, parents: dict[str, Any]) -> _Relatives:
        """Foreign keys from config and the manifest (`relationships` tests)."""
        relational = config.relational or RelationalConfig()
        discovered = (
            discover_keys(model, manifest_location(relational.manifest_path))
            if relational.discover
            else ()
        )
        return cls(relational, discovered, parents)

    def shape(self, warehouse: Warehouse) -> dict[str, Any]:
        """What shapes the child's fit besides its own config and schema, for the store's
        fingerprint: keys, relational settings, and each parent's source schema (public)."""
        sources = {}
        for name, value in sorted(self.parents.items()):
            source = value[1] if isinstance(value, tuple | list) else None
            columns = warehouse.schema(source).columns if source is not None else ()
            sources[name] = [[c.name, c.sql_type, c.nullable] for c in columns]
        return {"relational": self.relational, "discovered": self.discovered, "parents": sources}

    def twins(self, warehouse: Warehouse) -> dict[str, ParentData]:
        """The parents' twins only: what a resample draws keys from."""
        return {
            name: ParentData(warehouse.parent_twin(_twin_of(v))) for name, v in self.parents.items()
        }

    def tables(self, warehouse: Warehouse, child: Any) -> ChildTables:
        """The child and its parents as the warehouse holds them: children per parent are
        counted against each parent's source when given (the real parents), else its twin."""
        references = {
            name: value[1] if isinstance(value, tuple | list) else value
            for name, value in self.parents.items()
        }
        return ChildTables(warehouse, child, references)

    def data(self, warehouse: Warehouse) -> dict[str, ParentData]:
        """The parents' twins and, where given, their sources (attributes a fit learns from)."""
        return {name: _parent(warehouse, value) for name, value in self.parents.items()}


def _child(
    warehouse: Warehouse,
    source: Any,
    schema: TableSchema,
    config: TwinConfig,
    relatives: _Relatives,
    model: str,
    progress: Callable[[str], None],
) -> ChildResult:
    """Fit a child twin: its parents' twins as Arrow, their sources left in the warehouse; the
    child capped, joined with them and counted by the warehouse, and read through the joined
    rows' Poisson sample (`relational/engine.py`)."""
    return synthesize_child(
        None,
        relatives.data(warehouse),
        config.synth,
        relational=relatives.relational,
        model=model,
        schema=schema,
        discovered=relatives.discovered,
        progress=progress,
        tables=relatives.tables(warehouse, source),
    )


def _twin_of(value: Any) -> Any:
    return value[0] if isinstance(value, tuple | list) else value


def _parent(warehouse: Warehouse, value: Any) -> ParentData:
    if isinstance(value, tuple | list):
        parent_twin, parent_source = value
        twin = warehouse.parent_twin(parent_twin)
        return ParentData(twin, HeldSource.of(warehouse, parent_source))
    return ParentData(warehouse.parent_twin(value))


def _holdout(schema: TableSchema, config: SynthConfig) -> HoldoutRule | None:
    """With `synth.holdout`, the rule that splits the source: keyed by the twin's primary key if
    it has one, else by the whole row (decided from config and schema only)."""
    if not config.holdout:
        return None
    return rule_for(schema, config.holdout, config.primary_key)


def _train_rows(
    warehouse: Warehouse, source: Any, schema: TableSchema, rule: HoldoutRule | None
) -> Any:
    """The source rows the twin is fit on: all of them, or those the holdout rule keeps."""
    if rule is None:
        return source
    return warehouse.filter(source, train_filter_sql(schema, rule, warehouse.dialect))


def _progress(model: str, verbose: bool) -> Callable[[str], None]:
    """Fitting progress through dbt's own logger; `verbose: false` sends it to the debug log."""
    from dbt.adapters.events.logging import AdapterLogger

    logger = AdapterLogger("dbt-synth")
    emit = logger.info if verbose else logger.debug
    return lambda message: emit(f"{model}: {message}")


def _invocation_id() -> str | None:
    try:
        from dbt_common.invocation import get_invocation_id
    except ImportError:
        return None
    return get_invocation_id()


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)
