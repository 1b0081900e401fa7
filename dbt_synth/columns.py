"""How each source column is modelled: its plan (from type and config, no data) and its model
(the plan carried out: DP domain releases spent on the accountant).

`pipeline._synthesize` plans every column first, so that the budget split can count the
releases and thresholded histograms before any is made, then builds each column's model here.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

import pyarrow as pa
import pyarrow.compute as pc

from dbt_synth.accounting import PrivacyAccountant, gaussian_sigma
from dbt_synth.axis import axis_bound, is_integral, to_axis, type_range
from dbt_synth.config import SynthConfig
from dbt_synth.domains.categories import TEXT_COVERAGE, dp_category_domain
from dbt_synth.domains.numeric import LEVEL_RHO_SHARES, SampledCounts, numeric_domain, widened
from dbt_synth.domains.release import DomainRelease, ValueCounts
from dbt_synth.domains.text import TextDomain, dp_text_domain
from dbt_synth.encoding import (
    CategoryModel,
    ColumnModel,
    KeyModel,
    NullModel,
    NumericModel,
    TextModel,
)
from dbt_synth.errors import SourceError
from dbt_synth.keys import StringKeyModel
from dbt_synth.noise import NoiseSource
from dbt_synth.pushdown import SourceCounts
from dbt_synth.schema import ColumnKind, ColumnSpec
from dbt_synth.tails import (
    HEAD_WEIGHT,
    GeneratedModel,
    HeadTailModel,
    TextTail,
    category_limit,
    domain_weight,
    head_tail,
    is_named_key,
    is_semantic,
    learns_head,
    tail_for,
)


class ColumnPlan(enum.Enum):
    """How a column will be modelled."""

    KEY = "key"  # fresh unique values (a primary key, `role: id`, a UUID)
    TEXT_KEY = "text_key"  # a string key: generated unique strings in DP formats
    NULL = "null"  # an unsupported type with `unsupported: null`
    TEXT = "text"  # `role: text`: generated strings in DP formats
    PUBLIC_CATEGORY = "public_category"  # values known without data (boolean, enum, declared)
    STRING = "string"  # a string: DP categories, or text if they cover too little
    CATEGORY = "category"  # `role: category`: DP categories
    NUMERIC = "numeric"  # DP quantile bins on a numeric axis
    ROLE = "role"  # a semantic role (roles.py): DP head + generated tail (tails.py)

    @property
    def releases(self) -> bool:
        """Whether the column's domain is a DP release (it takes a share of the budget)."""
        return self not in (ColumnPlan.KEY, ColumnPlan.NULL)

    @property
    def categorical(self) -> bool:
        """Whether its domain is released from distinct-value counts that an engine may compute
        over the whole source (pushdown.py); text and roles learn from the sample's values."""
        return self in (ColumnPlan.PUBLIC_CATEGORY, ColumnPlan.STRING, ColumnPlan.CATEGORY)

    @property
    def thresholded(self) -> bool:
        """Whether its domain is a thresholded histogram over values not known up front (δ)."""
        return self in (ColumnPlan.STRING, ColumnPlan.TEXT, ColumnPlan.TEXT_KEY, ColumnPlan.ROLE)


@dataclass(frozen=True)
class ColumnContext:
    """What every column's model is built with: the config, the accountant it spends on, each
    column's ρ and δ share, the DP size of the rows it sees, and the source of its noise."""

    config: SynthConfig
    accountant: PrivacyAccountant
    rho: float
    threshold_delta: float
    rows_estimate: float
    noise: NoiseSource
    # roles: σ of the generator's measurements, for the budget-aware category cap (tails.py).
    limit_sigma: float = 0.0
    # Counts the engine computes over the whole source (pushdown.py), if it does.
    source_counts: SourceCounts | None = None
    # roles: the weight of a semantic-role column's domain ρ (tails.head_weight).
    head_weight: float = HEAD_WEIGHT

    def release(self, column: str, rows_estimate: float) -> DomainRelease:
        """A domain release of `column` on this context's accountant, ρ, δ share and noise,
        over rows whose DP count is `rows_estimate`."""
        return DomainRelease(
            self.accountant, self.rho, self.noise, self.threshold_delta, rows_estimate, column
        )

    def weighted(self, plan: ColumnPlan) -> ColumnContext:
        """This context with the plan's share of the domain budget (tails.domain_weight)."""
        weight = domain_weight(plan.value, self.head_weight)
        return dataclasses.replace(self, rho=self.rho * weight)


def plan_column(spec: ColumnSpec, config: SynthConfig) -> ColumnPlan:
    """How a column will be modelled, decided from its type and config only (no data)."""
    settings = config.column(spec.name)
    named_key = is_named_key(spec, settings.role, settings.categories)  # roles: `*_id`, `uid`, …
    if spec.name in config.primary_key or settings.role == "id" or named_key:
        return ColumnPlan.TEXT_KEY if spec.kind is ColumnKind.STRING else ColumnPlan.KEY
    if spec.kind is ColumnKind.UNSUPPORTED:
        if config.unsupported == "null":
            return ColumnPlan.NULL
        raise SourceError(
            f"type {spec.sql_type} cannot be modelled",
            fix="set synth.unsupported: null to emit NULLs of this type, or drop the column in a "
            "staging model that the twin reads",
            column=spec.name,
        )
    if spec.kind is ColumnKind.UUID:
        return ColumnPlan.KEY
    if settings.role == "text":
        return ColumnPlan.TEXT
    if is_semantic(spec, settings.role):  # roles.py: first_name, email, …, format
        return ColumnPlan.ROLE
    if spec.kind is ColumnKind.BOOLEAN or spec.enum_values or settings.categories is not None:
        return ColumnPlan.PUBLIC_CATEGORY
    if settings.role == "category" or spec.kind is ColumnKind.STRING:
        return ColumnPlan.STRING if settings.role == "auto" else ColumnPlan.CATEGORY
    return ColumnPlan.NUMERIC


# A column's sampled values, or a call that reads them (`source_rows.LazySample.values`): the
# sample is drawn only if some column's model needs values the engine did not count.
Values = pa.ChunkedArray | Callable[[], pa.ChunkedArray]


def column_model(
    array: Values, spec: ColumnSpec, plan: ColumnPlan, context: ColumnContext
) -> ColumnModel:
    """The column's model, its DP domain released on `context.accountant`."""
    settings = context.config.column(spec.name)
    if plan is ColumnPlan.KEY:
        return KeyModel(spec, form=settings.id_form, declared_max=settings.max)
    if plan is ColumnPlan.NULL:
        return NullModel(spec)
    if plan is ColumnPlan.TEXT_KEY and settings.format is not None:
        return StringKeyModel(spec, pattern=settings.format, domain=None, form=settings.id_form)
    if plan is ColumnPlan.ROLE and not learns_head(settings.role):
        return GeneratedModel(spec, tail_for(settings.role, settings.format, context.config.locale))
    if plan is ColumnPlan.NUMERIC:
        return _numeric(array, spec, context)
    sampled = cache(lambda: _distinct(_read(array)))
    if plan in (ColumnPlan.TEXT, ColumnPlan.TEXT_KEY):
        text = _text(sampled(), spec, context, spec.nullable and plan is ColumnPlan.TEXT)
        if plan is ColumnPlan.TEXT_KEY:
            return StringKeyModel(spec, pattern=None, domain=text, form=settings.id_form)
        return TextModel(spec, text)
    public = None
    if plan is ColumnPlan.PUBLIC_CATEGORY:
        public = (
            tuple(settings.categories)
            if settings.categories is not None
            else spec.enum_values or (False, True)
        )
    # Counted over the whole source by the engine (released at its scale, then scaled to the
    # sample's), or over the sample in memory.
    pushed = context.source_counts.of(spec.name) if context.source_counts else None
    counted = pushed or sampled()
    rows_estimate = context.source_counts.rows_estimate if pushed else context.rows_estimate
    release = context.release(spec.name, rows_estimate)
    domain = dp_category_domain(counted, release, nullable=spec.nullable, public_values=public)
    scale = context.source_counts.rate if pushed else 1.0
    domain = domain.scaled(scale)
    limit = category_limit(domain.counts, context.limit_sigma)
    # The prior's σ is the release's on the sample, also where the engine released it over the
    # whole source (whose noise, scaled, is only σ·rate): weighted by that true precision, the
    # 1-way priors dominate the marginal mechanism's fit and it stops after a few pairs (flights
    # ×3, 10 columns: 5 AIM rounds, 2-way TVD 0.144, against 19-21 and 0.10; bench/RESULTS.md).
    # Trusting a release less than its noise allows is post-processing.
    sigma = gaussian_sigma(context.rho)
    if plan is ColumnPlan.ROLE:
        tail = tail_for(settings.role, settings.format, context.config.locale)
        return head_tail(spec, domain, sigma, tail, context.rows_estimate, limit)
    unnamed = plan is ColumnPlan.CATEGORY and not domain.values
    if unnamed and spec.kind is not ColumnKind.STRING:
        # Nothing common enough to name: an ordered type falls back to its numeric domain.
        return _numeric(array, spec, context)
    if unnamed or (plan is ColumnPlan.STRING and domain.coverage < TEXT_COVERAGE):
        text = _text(sampled(), spec, context, spec.nullable)
        if unnamed or not domain.values:
            return TextModel(spec, text)
        return head_tail(spec, domain, sigma, TextTail(text), context.rows_estimate, limit)
    return CategoryModel(spec, domain, sigma, public=public is not None, limit=limit)


def public_bounds(spec: ColumnSpec, config: SynthConfig) -> tuple[float, float] | None:
    """The column's declared min/max on its axis, if any."""
    settings = config.column(spec.name)
    if settings.min is None:
        return None
    return axis_bound(settings.min, spec), axis_bound(settings.max, spec)


def _numeric(array: Values, spec: ColumnSpec, context: ColumnContext) -> NumericModel:
    bounds = public_bounds(spec, context.config)
    # Counted over the whole source by the engine (released at its scale, then scaled to the
    # sample's, as category counts are), or over the sample in memory.
    pushed = context.source_counts.ordered(spec, bounds) if context.source_counts else None
    counted = pushed or SampledCounts(*to_axis(_read(array), spec), bounds)
    domain = numeric_domain(
        counted,
        context.accountant,
        context.rho,
        max_bins=context.config.max_bins,
        nullable=spec.nullable,
        public_bounds=bounds,
        integer=is_integral(spec),
        learn_decimals=spec.kind is ColumnKind.FLOAT,
        column=spec.name,
        noise=context.noise,
    )
    scale = context.source_counts.rate if pushed else 1.0
    public = bounds or type_range(spec)
    source = "the declared bounds" if bounds else "the type's range"
    domain = widened(domain.scaled(scale), *public, context.rows_estimate, source=source)
    # The prior's σ is the release's on the sample, as for a category column (`column_model`).
    sigma = gaussian_sigma(context.rho * (1.0 if bounds else LEVEL_RHO_SHARES[1]))
    return NumericModel(spec, domain, sigma)


def _text(
    counted: ValueCounts, spec: ColumnSpec, context: ColumnContext, nullable: bool
) -> TextDomain:
    """The DP format domain of a string column (the one place a text domain is released),
    from the sample's values."""
    return dp_text_domain(
        counted, context.release(spec.name, context.rows_estimate), nullable=nullable
    )


def _read(array: Values) -> pa.ChunkedArray:
    return array() if callable(array) else array


def _distinct(array: pa.ChunkedArray) -> ValueCounts:
    """Distinct non-NULL values with their counts, and the NULL count (inputs to DP releases)."""
    counted = pc.value_counts(array.drop_null())
    values = counted.field("values").to_pylist()
    counts = counted.field("counts").to_numpy(zero_copy_only=False).astype(float)
    return ValueCounts.ordered(values, counts, array.null_count)


def fallback(plan: ColumnPlan, model: ColumnModel) -> str | None:
    """What to declare when a small table's DP domain came out coarser than asked, else None."""
    if isinstance(model, NumericModel) and model.domain.fallback:
        return (
            f"nothing resolved at this table's size and ε, values drawn from "
            f"{model.domain.fallback}; declare public min/max in synth.columns to do better"
        )
    if plan is ColumnPlan.CATEGORY and not isinstance(model, CategoryModel):
        return (
            "no value common enough to reveal at this table's size and ε; declare public "
            "categories in synth.columns to keep the values"
        )
    return None


def treatment(model: ColumnModel) -> str:
    """The column's treatment in words, for the ledger and the report."""
    if isinstance(model, HeadTailModel | StringKeyModel | GeneratedModel):
        return model.describe()
    if isinstance(model, NumericModel):
        return f"numeric: {model.domain.bin_count} DP quantile bins"
    if isinstance(model, CategoryModel):
        return f"category: {len(model.domain.values)} DP-kept values"
    if isinstance(model, TextModel):
        return "key: generated unique strings" if model.unique else "text: generated in DP formats"
    if isinstance(model, KeyModel):
        return "key: fresh unique values"
    return "null: unsupported type"
