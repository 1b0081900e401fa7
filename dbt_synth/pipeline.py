"""From a source table to its DP twin: the whole pipeline, independent of dbt.

schema → DP row count → Poisson sample within `max_fit_rows` → privacy budget split → DP
domains per column → codes → generator → decoded twin, generated in chunks.
`synthesize` is the Python entry point; the dbt glue in `twin.py` calls it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from dbt_synth.accounting import PrivacyAccountant, Spend, gaussian_sigma
from dbt_synth.columns import (
    ColumnContext,
    ColumnPlan,
    column_model,
    fallback,
    plan_column,
    public_bounds,
    treatment,
)
from dbt_synth.conditioning import constraints_of
from dbt_synth.config import SynthConfig, parse_config
from dbt_synth.encoding import ColumnModel, KeyModel
from dbt_synth.errors import SourceError, SynthError
from dbt_synth.generation import TwinGenerator, TwinRows
from dbt_synth.keys import StringKeyModel
from dbt_synth.mechanisms import build_mechanism
from dbt_synth.mechanisms.base import EncodedTable, Progress
from dbt_synth.noise import NoiseSource, sampling_seed
from dbt_synth.pushdown import SourceCounts, value_counts
from dbt_synth.pushdown_marginals import marginal_counts, pushed_codes
from dbt_synth.schema import TableSchema, schema_of_arrow
from dbt_synth.source_rows import LazySample, SourceRows
from dbt_synth.tails import domain_share, domain_weight, generator_sigma, head_weight

# Share of the zCDP budget spent on the DP row count (its noise is tiny next to n anyway).
_COUNT_SHARE = 0.01
# Share of δ reserved for thresholded (unknown-domain) histograms.
_THRESHOLD_DELTA_SHARE = 0.25
# ρ of the row count is fixed before δ is known (δ defaults to 1/10n̂); this reference ρ is the
# zCDP budget of (ε, δ=1e-6), so the count costs about 1% whatever δ turns out to be.
_REFERENCE_DELTA = 1e-6
# A table whose DP count is below this many rows gets a second count release of this share of
# the budget: at 1 % the count's noise (σ ≈ 50 rows at ε = 1) is half of a 99-row table.
_SMALL_TABLE_ROWS = 1000
_SMALL_COUNT_SHARE = 0.1


@dataclass(frozen=True)
class ColumnReport:
    """How one column was treated, for the ledger and the report."""

    name: str
    treatment: str
    codes: int


@dataclass(frozen=True)
class SynthResult:
    """A twin and the privacy it cost; the twin's rows come from `generator`."""

    generator: TwinRows = field(repr=False)
    schema: TableSchema
    mechanism: str
    epsilon: float
    delta: float
    target_epsilon: float
    rows_estimate: float
    sample_rate: float
    spends: tuple[Spend, ...]
    columns: tuple[ColumnReport, ...]
    fit_seconds: float
    # Whose privacy the guarantee protects, in words for the ledger (a child twin may protect a
    # parent with all its children).
    privacy_unit: str = "row"
    # Whether `seed` fixed the sampling of rows (the fit's noise is never seeded from config),
    # and whether a test replayed the fit's noise (`dbt_synth.noise.replayable_noise`).
    seed_fixed: bool = False
    noise_replayable: bool = False

    @cached_property
    def table(self) -> pa.Table:
        """The whole twin in memory; `generator.batches()` streams the same rows."""
        return self.generator.table()

    @property
    def rows(self) -> int:
        return self.generator.rows

    def epsilon_of(self, *parts: str) -> float:
        """Composed ε of the releases of the given parts (count, domain, selection, …), alone."""
        chosen = [s for s in self.spends if s.part in parts]
        if not chosen:
            return 0.0
        rdp = np.sum([s.rdp for s in chosen], axis=0)
        return Spend("+".join(parts), "composed", rdp).epsilon_alone(self.delta)


def synthesize(
    data: SourceRows | pa.Table | pd.DataFrame,
    *,
    schema: TableSchema | None = None,
    config: SynthConfig | dict[str, Any] | None = None,
    model: str = "twin",
    progress: Progress | None = None,
    **overrides: Any,
) -> SynthResult:
    """A DP twin of `data`: same columns and order, values cast-ready for the source types.

    `data` is an in-memory table or a `SourceRows` stream (read once, within `max_fit_rows`).
    `config` is a `SynthConfig` or a raw `synth` dict; keyword `overrides` (epsilon=, seed=, …)
    are merged into a raw dict. Errors name `model` and the column at fault.
    """
    started = time.perf_counter()
    say = progress or (lambda _message: None)
    try:
        source = SourceRows.of(data)
        if isinstance(config, SynthConfig):
            if overrides:
                raise TypeError("pass either a SynthConfig or keyword overrides, not both")
            settings = config
        else:
            settings = parse_config({**(config or {}), **overrides}, model=model)
        schema = schema or schema_of_arrow(source.schema)
        return _synthesize(source, schema, settings, say, started)
    except SynthError as error:
        raise error.for_model(model) from None


def _synthesize(
    source: SourceRows, schema: TableSchema, config: SynthConfig, say: Progress, started: float
) -> SynthResult:
    _check_source(source, schema, config)
    # Every draw of the fit from OS entropy; `seed` only reaches the sampling of twin rows.
    noise = NoiseSource.for_fit()
    reference = PrivacyAccountant(config.epsilon, config.delta or _REFERENCE_DELTA)
    count_sigma = gaussian_sigma(_COUNT_SHARE * reference.remaining_rho())
    noisy_rows = float(noise.counts(source.rows, count_sigma))
    delta = config.delta_for(max(noisy_rows, 1.0))
    accountant = PrivacyAccountant(config.epsilon, delta)
    accountant.spend_gaussian("count", count_sigma, detail="row count")
    if noisy_rows < _SMALL_TABLE_ROWS:
        noisy_rows = _refined_count(source.rows, noisy_rows, count_sigma, accountant, noise)
    rows_estimate = max(noisy_rows, 1.0)
    # The rate comes from the DP count, so choosing it is post-processing.
    rate = min(1.0, config.max_fit_rows / rows_estimate) if config.max_fit_rows else 1.0
    # Drawn when a column first needs values the engine did not count (pushdown.py).
    sampled = f" (a Poisson sample, rate {rate:.3g})" if rate < 1 else ""
    # The message names no count: at rate 1 the sample's size is the exact row count.
    sample = LazySample(source, rate, noise.generator, lambda: say(f"source rows read{sampled}"))
    # What domains and the mechanism see: the sample, whose DP size estimate is rate · n̂.
    fit_estimate = rate * rows_estimate

    plans = [plan_column(spec, config) for spec in schema.columns]
    thresholded = sum(plan.thresholded for plan in plans)
    threshold_delta = _THRESHOLD_DELTA_SHARE * delta / max(2 * thresholded, 1)
    reserve = _THRESHOLD_DELTA_SHARE * delta if thresholded else 0.0
    share = domain_share(config.domain_share, [plan.value for plan in plans])
    domain_rho = share * accountant.remaining_rho(extra_delta=reserve)
    # roles: a head+tail column's domain gets a larger share, chosen from the budget (tails.py).
    head = head_weight([plan.value for plan in plans], domain_rho, fit_estimate, threshold_delta)
    releases = sum(domain_weight(plan.value, head) for plan in plans)
    column_rho = domain_rho / max(releases, 1)
    # roles: how many values a category column models depends on the generator's noise.
    modelled_plans = sum(plan.value not in ("key", "null", "text", "text_key") for plan in plans)
    limit_sigma = generator_sigma(
        (1 - share) * accountant.remaining_rho(extra_delta=reserve), modelled_plans
    )
    say(f"{len(schema.columns)} columns; ε target {config.epsilon}, δ {delta:.2e}")
    source_counts = _source_counts(source, schema, config, plans, rows_estimate, rate)
    if source_counts is not None and source_counts.columns:
        say(f"category counts of {len(source_counts.columns)} columns computed by the warehouse")

    context = ColumnContext(
        config,
        accountant,
        column_rho,
        threshold_delta,
        fit_estimate,
        noise,
        limit_sigma,
        source_counts,
        head,
    )
    models: list[ColumnModel] = [
        column_model(sample.values(spec.name), spec, plan, context.weighted(plan))
        for spec, plan in zip(schema.columns, plans, strict=True)
    ]
    treatments = []
    for spec, plan, model in zip(schema.columns, plans, models, strict=True):
        coarser = fallback(plan, model)
        if coarser:
            say(f"column {spec.name}: {coarser}")
        treatments.append(treatment(model) + (f" (fallback: {coarser})" if coarser else ""))

    modelled = [i for i, m in enumerate(models) if m.modelled]
    mechanism = None
    fit_rate = rate
    if modelled:
        mechanism = build_mechanism(config.mechanism, len(modelled))
        columns = [(schema.columns[i], models[i]) for i in modelled]
        cardinalities = tuple(m.cardinality for _, m in columns)
        names = tuple(spec.name for spec, _ in columns)
        priors = tuple(m.prior for _, m in columns)
        pushed = (
            pushed_codes(source_counts, columns, config) if mechanism.fits_from_counts else None
        )
        if pushed is not None and pushed.codes is not None:
            # Every modelled column's domain and codes are the engine's: it counts every row's
            # marginals (pushdown_marginals.py), and the mechanism fits them brought to the
            # sample's scale (`CodeCounts.scaled`), as the sample road would fit the sample:
            # the same releases, rounds chosen the same way, whatever the source's size.
            assert source_counts is not None and source_counts.aggregates is not None
            say(f"counting the 1- and 2-way marginals of {len(columns)} columns in the warehouse")
            counts = marginal_counts(source_counts.aggregates, pushed.codes)
            say(f"1- and 2-way counts of {len(columns)} columns computed by the warehouse")
            encoded = EncodedTable(
                codes=None,
                cardinalities=cardinalities,
                names=names,
                priors=priors,
                counts=counts.scaled(rate),
            )
            fit_rate = 1.0
        else:
            if pushed is not None:
                say(f"marginals counted on the sample: {pushed.fallback}")
            encoded = EncodedTable(
                codes=np.column_stack([m.encode(sample.column(spec.name)) for spec, m in columns]),
                cardinalities=cardinalities,
                names=names,
                priors=priors,
            )
        sample.release()
        say(f"fitting {mechanism.name} on {len(modelled)} modelled columns")
        mechanism.fit(encoded, accountant, rows_estimate=fit_estimate, noise=noise, progress=say)
    generator = TwinGenerator(
        names=schema.names,
        models=tuple(models),
        mechanism=mechanism,
        rows=config.rows or round(rows_estimate),
        seed=sampling_seed(config.seed),
        constraints=constraints_of(config, schema.names, _keys(models, schema)),
    )
    epsilon = accountant.epsilon()
    say(f"done: ε spent {epsilon:.4f} of {config.epsilon} (δ {delta:.2e})")
    return SynthResult(
        generator=generator,
        schema=schema,
        mechanism=mechanism.name if mechanism is not None else "none",
        epsilon=epsilon,
        delta=delta,
        target_epsilon=config.epsilon,
        rows_estimate=rows_estimate,
        sample_rate=fit_rate,
        seed_fixed=config.seed is not None,
        noise_replayable=noise.replayable,
        spends=tuple(accountant.spends),
        columns=tuple(
            ColumnReport(spec.name, text, m.cardinality)
            for spec, m, text in zip(schema.columns, models, treatments, strict=True)
        ),
        fit_seconds=time.perf_counter() - started,
    )


def _source_counts(
    source: SourceRows,
    schema: TableSchema,
    config: SynthConfig,
    plans: list[ColumnPlan],
    rows_estimate: float,
    rate: float,
) -> SourceCounts | None:
    """The category columns' exact counts over the whole source, and the ordered columns' on
    demand, when its warehouse computes aggregates (pushdown.py): only the counts reach the
    driver, which noises them."""
    if source.aggregates is None:
        return None
    names = [
        spec.name for spec, plan in zip(schema.columns, plans, strict=True) if plan.categorical
    ]
    counted = value_counts(source.aggregates, names)
    ordered = tuple(
        (spec, public_bounds(spec, config))
        for spec, plan in zip(schema.columns, plans, strict=True)
        if plan is ColumnPlan.NUMERIC
    )
    return SourceCounts(counted, rows_estimate, rate, source.aggregates, ordered)


def _refined_count(
    rows: int,
    first: float,
    first_sigma: float,
    accountant: PrivacyAccountant,
    noise: NoiseSource,
) -> float:
    """A second, less noisy count of a small table, averaged with the first by inverse variance.

    Whether to spend it is decided from the first (DP) count. Every later release and the
    twin's own row count scale with this estimate, which on a small table matters more than
    the tenth of the budget it takes from the domains and the generator.
    """
    sigma = gaussian_sigma(_SMALL_COUNT_SHARE * accountant.remaining_rho())
    accountant.spend_gaussian("count", sigma, detail="row count of a small table, refined")
    second = float(noise.counts(rows, sigma))
    weights = np.array([first_sigma**-2, sigma**-2])
    return float(np.dot(weights, [first, second]) / weights.sum())


def _check_source(source: SourceRows, schema: TableSchema, config: SynthConfig) -> None:
    if source.rows == 0:
        raise SourceError(
            f"source '{schema.table}' is empty, so there is nothing to learn a twin from",
            fix="build the source first, or exclude this twin (e.g. `enabled: false`)",
        )
    named = [("primary_key column '{}' is", key) for key in config.primary_key]
    named += [("synth.columns names '{}', which is", name) for name in config.columns]
    for what, name in named:
        if name not in schema.names:
            raise SourceError(
                f"{what.format(name)} not in the source",
                fix=f"use one of {schema.names}",
                column=name,
            )


def _keys(models: list[ColumnModel], schema: TableSchema) -> set[str]:
    """Columns holding fresh keys (rules on them are not redrawn for: conditioning.py)."""
    fresh = [isinstance(m, KeyModel | StringKeyModel) for m in models]
    return {spec.name for spec, key in zip(schema.columns, fresh, strict=True) if key}
