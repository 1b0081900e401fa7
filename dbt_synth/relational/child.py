"""Child twins whose foreign keys exist in their parents' twins.

A child (flights) is twinned after its parents (airlines, planes, airports, weather). Each
foreign key is handled in one of two modes:

* `attributes` — the child is fitted together with the *real* parent's attributes joined on
  the key (e.g. planes.seats next to each flight) and a public 3-state column (parent / NULL /
  orphan). Every synthetic child row thus carries synthetic parent attributes; it is attached to
  a parent-twin key whose attributes fall in the same bins, with each parent-twin row given a
  child capacity drawn from a DP histogram of children per parent. Child attributes that depend
  on the parent (long flights on big planes) survive, and so does the children-per-parent shape.
* `category` — for a parent with nothing to condition on (airlines: a code and a name) the key
  column is modelled as an ordinary DP category of the child, jointly with the other columns
  (carrier × dep_delay), and the DP-kept values are mapped one-to-one onto parent-twin keys.

The twin is referentially clean by default: real orphans (child keys with no parent) are
attached to parent-twin keys. `orphans: reproduce` keeps the learned orphan rate instead, with
fresh keys that no parent twin holds. Everything here is DP: the joined fit spends through the
ordinary pipeline, the cardinality histograms through their own Gaussian releases, composed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from dbt_synth.accounting import PrivacyAccountant
from dbt_synth.config import SynthConfig, parse_config
from dbt_synth.errors import SynthError
from dbt_synth.noise import NoiseSource, sampling_seed
from dbt_synth.pipeline import ColumnReport, SynthResult, synthesize
from dbt_synth.relational.attach import KeyReport
from dbt_synth.relational.cardinality import (
    Cardinality,
    KeyCounter,
    binned,
    release_histogram,
    streamed_children_per_parent,
)
from dbt_synth.relational.config import PrivacyUnit, RelationalConfig, split_config
from dbt_synth.relational.generator import child_generator
from dbt_synth.relational.joined import joined, joined_config, not_redrawn
from dbt_synth.relational.keys import ForeignKey, KeyMode, check_keys, merge_keys
from dbt_synth.relational.plan import KeyPlan, ParentData, parent_table, plan_keys
from dbt_synth.relational.unit import cap_children, row_budget, unit_guarantee
from dbt_synth.schema import TableSchema, schema_of_arrow
from dbt_synth.source_rows import SourceRows

if TYPE_CHECKING:
    from dbt_synth.relational.engine import ChildTables

# Share of δ given to the cardinality histograms' (ε, δ) conversion.
_CARDINALITY_DELTA_SHARE = 0.1


@dataclass(frozen=True)
class ChildFit:
    """What a child twin's keys are drawn from again, beside its joined fit (stored together).

    DP releases and public facts only: the key plans (from config, the manifest and the
    parents' public schemas; their attributes are named in the joined fit's columns anyway),
    the DP children-per-parent histograms, the child's public schema, its column reports and
    its privacy unit in words. Not the category keys' mappings onto parent-twin keys: those are
    drawn afresh against the parent twins as they are at each build.
    """

    plans: tuple[KeyPlan, ...]
    cardinalities: dict[ForeignKey, Cardinality]
    schema: TableSchema
    columns: tuple[ColumnReport, ...]
    privacy_unit: str


@dataclass(frozen=True)
class ChildResult:
    """A child twin and its pipeline result (ε composed over all parts); `joined` (the fit of
    the joined rows) and `fit` are what the model store keeps."""

    result: SynthResult
    privacy_unit: str
    joined: SynthResult | None = None
    fit: ChildFit | None = None

    @property
    def keys(self) -> tuple[KeyReport, ...]:
        """How each foreign key was twinned. Plans the keys on the driver if the twin has not
        been generated yet (a Spark twin plans them from counts taken on the executors)."""
        return self.result.generator.reports


def synthesize_child(
    child: SourceRows | pa.Table | None,
    parents: dict[str, ParentData],
    config: SynthConfig | dict[str, Any] | None,
    *,
    model: str,
    relational: RelationalConfig | None = None,
    schema: TableSchema | None = None,
    discovered: tuple[ForeignKey, ...] = (),
    progress: Callable[[str], None] | None = None,
    counter: KeyCounter | None = None,
    tables: ChildTables | None = None,
) -> ChildResult:
    """A DP twin of `child` whose foreign keys all exist in `parents`' twins (by default).

    `child` is an in-memory table or a `SourceRows` stream; the fit reads its Poisson sample
    (`SourceRows.sample`: taken by the engine where it can) and the twin is generated in chunks,
    so neither is ever held whole. The children-per-parent counts come from `counter` (the
    engine's own aggregate) when given, else from one more pass over `child`. When `tables`
    holds the child and its parents' sources in their warehouse (dbt), the engine caps, joins
    and counts (`engine.py`), and the child is read only through the joined rows' sample
    (`child` may then be None: dbt's road counts nothing of it twice). `config` is the parsed
    single-table config with `relational` the parsed relational one (as the dbt glue passes
    them), or a raw `synth` dict holding both, parsed here once.
    """
    say = progress or (lambda _m: None)
    try:
        if not isinstance(config, SynthConfig):
            relational, single_table = split_config(config, model=model)
            config = parse_config(single_table, model=model)
        relational = relational or RelationalConfig()
        keys = merge_keys(relational.foreign_keys, discovered)
        if child is None and (tables is None or schema is None):
            raise TypeError("synthesize_child needs the child's rows, or its tables and schema")
        child = SourceRows.of(child) if child is not None else None
        schema = schema or schema_of_arrow(child.schema)
        check_keys(keys, model=model, child_columns=schema.names)
        return _synthesize_child(
            child, parents, relational, config, keys, schema, model, say, counter, tables
        )
    except SynthError as error:
        raise error.for_model(model) from None


def _synthesize_child(
    child: SourceRows | None,
    parents: dict[str, ParentData],
    relational: RelationalConfig,
    config: SynthConfig,
    keys: tuple[ForeignKey, ...],
    schema: TableSchema,
    model: str,
    say: Callable[[str], None],
    counter: KeyCounter | None,
    tables: ChildTables | None,
) -> ChildResult:
    # The fit's draws come from OS entropy; `seed` only drives attaching keys to sampled rows.
    noise = NoiseSource.for_fit()
    rng = np.random.default_rng(sampling_seed(config.seed))
    target_epsilon = config.epsilon
    plans = plan_keys(keys, parents, model)
    unit = row_budget(target_epsilon, relational, tuple(p.key for p in plans), model)
    cap = relational.max_children if relational.privacy_unit is PrivacyUnit.PARENT else None
    if cap is not None and tables is not None:
        # Capped by the engine; the counts below are then taken over the capped child.
        tables = tables.capped(plans[0].key, cap, int(noise.generator.integers(2**62)))
        child, counter, cap = tables.rows(), tables.counter(), None
    elif cap is not None:
        child = cap_children(child, plans[0].key, cap, noise.generator)
    elif tables is not None:
        counter = tables.counter()
    say(f"{len(plans)} foreign key(s); privacy unit: {unit.described}")

    attribute_plans = [p for p in plans if p.mode is KeyMode.ATTRIBUTES]
    card_epsilon = relational.cardinality_share * unit.row_epsilon if attribute_plans else 0.0
    rows, columns_config = joined(child, plans, parents, config, schema, tables)
    joined_rules, skipped = joined_config(config, plans, tuple(rows.schema.names), schema)
    fit_config = replace(
        joined_rules, epsilon=unit.row_epsilon - card_epsilon, columns=columns_config
    )
    fitted = synthesize(rows, config=fit_config, model=model, progress=say)
    fitted = replace(fitted, generator=not_redrawn(fitted.generator, skipped))

    # Children-per-parent histograms: one Gaussian release per attributes-mode FK, at a δ
    # derived from the fit's (itself from the DP row count, never the true one).
    card_delta = _CARDINALITY_DELTA_SHARE * fitted.delta
    accountant = PrivacyAccountant(max(card_epsilon, 1e-9), card_delta)
    counts = _Counts(child, parents, counter, plans[0].key if plans else None, cap)
    cardinalities = _cardinalities(counts, attribute_plans, accountant, noise)
    generator = child_generator(
        fitted.generator, schema.names, plans, parents, cardinalities, relational, rng
    )
    spends = tuple(accountant.spends) + fitted.spends
    row_spent = fitted.epsilon + (accountant.epsilon() if attribute_plans else 0.0)
    row_delta = fitted.delta + (card_delta if attribute_plans else 0.0)
    epsilon, delta_unit = unit_guarantee(row_spent, row_delta, relational)
    result = SynthResult(
        generator=generator,
        schema=schema,
        mechanism=fitted.mechanism,
        epsilon=epsilon,
        delta=delta_unit,
        target_epsilon=target_epsilon,
        rows_estimate=fitted.rows_estimate,
        sample_rate=fitted.sample_rate,
        spends=spends,
        columns=_column_reports(fitted.columns, schema, plans),
        fit_seconds=fitted.fit_seconds,
        privacy_unit=unit.described,
        seed_fixed=fitted.seed_fixed,
        noise_replayable=fitted.noise_replayable,
    )
    fit = ChildFit(plans, cardinalities, schema, result.columns, unit.described)
    return ChildResult(result, unit.described, fitted, fit)


def resample_child(
    resampled: SynthResult,
    fit: ChildFit,
    parents: dict[str, ParentData],
    relational: RelationalConfig,
    config: SynthConfig,
) -> ChildResult:
    """A child twin sampled again from a stored fit, for ε 0.

    The joined rows come from `resampled` (the stored joined fit, already resampled: see
    `StoredModel.resampled`); their keys are drawn from the parents' twins as they are now,
    with the stored DP histograms. Only the parents' twins are read, no source row of any
    table; the keys thus reference the current parent twins, refit or not."""
    rng = np.random.default_rng(sampling_seed(config.seed))
    generator = child_generator(
        resampled.generator,
        fit.schema.names,
        fit.plans,
        parents,
        fit.cardinalities,
        relational,
        rng,
    )
    result = replace(
        resampled,
        generator=generator,
        schema=fit.schema,
        columns=fit.columns,
        privacy_unit=fit.privacy_unit,
    )
    return ChildResult(result, fit.privacy_unit)


@dataclass(frozen=True)
class _Counts:
    """Where children per parent are counted: by the engine (`counter`), or over `child`'s
    stream. `cap` (privacy unit parent) caps the children of `capped`'s parents, as
    `cap_children` did to `child`; the engine applies it in SQL, exactly."""

    child: SourceRows | None
    parents: dict[str, ParentData]
    counter: KeyCounter | None
    capped: ForeignKey | None
    cap: int | None

    def histogram(self, key: ForeignKey) -> np.ndarray:
        if self.counter is not None and (self.cap is None or key == self.capped):
            return self.counter.histogram(key, self.cap)
        parent = self.parents[key.parent]
        reference = parent.source if parent.source is not None else parent_table(parent)
        return binned(
            streamed_children_per_parent(
                self.child.stream(), key.columns, reference, key.parent_columns
            )
        )


def _cardinalities(
    counts: _Counts,
    plans: list[KeyPlan],
    accountant: PrivacyAccountant,
    noise: NoiseSource,
) -> dict[ForeignKey, Cardinality]:
    """One children-per-parent release per attributes-mode key, splitting the accountant's ρ."""
    if not plans:
        return {}
    rho = accountant.remaining_rho() / len(plans)
    return {
        plan.key: release_histogram(counts.histogram(plan.key), plan.key, accountant, rho, noise)
        for plan in plans
    }


def _column_reports(
    columns: tuple[ColumnReport, ...], schema: TableSchema, plans: tuple[KeyPlan, ...]
) -> tuple[ColumnReport, ...]:
    """The fit's column reports, with each foreign-key column described by its key."""
    by_name = {c.name: c for c in columns}
    keyed: dict[str, str] = {}
    for plan in plans:
        on = plan.attributes if plan.mode is KeyMode.ATTRIBUTES else ()
        for column in plan.key.columns:
            keyed.setdefault(
                column,
                f"foreign key → {plan.key.parent} ({plan.mode.value}"
                + (f" on {', '.join(on)}" if on else "")
                + ")",
            )
    return tuple(
        ColumnReport(name, keyed[name], 0) if name in keyed else by_name[name]
        for name in schema.names
        if name in keyed or name in by_name
    )
