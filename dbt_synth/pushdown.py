"""Exact counts computed by the engine that holds the source, for DP releases on the driver.

A warehouse that runs aggregate SQL over every source row (`SourceRows.aggregates`: Spark)
answers the category columns' distinct-value counts with one GROUP BY GROUPING SETS query, so
that only `(value, count)` pairs reach the driver, never rows. The pipeline adds the noise to
them there (`domains.categories.dp_category_domain`), exactly as to counts taken on the Poisson
sample; the exact counts are never written or logged.

An ordered column's domain (`domains.numeric.numeric_domain`) is released the same way from
the counts of its tree over the source (`pushdown_tree`).

The counts cover the whole source, not the sample the generator is fit on: the release is made
at the source's scale (the same ρ buys a domain closer to the truth, and rare values that clear
the threshold on the full table are kept) and then scaled by the sample rate, which is
post-processing, so that the domain's counts match the rows the generator sees.

The DP row count was already the engine's (`SourceRows.rows`: Spark's `count()`). The marginal
mechanism's exact 1- and 2-way code counts are the engine's too (`pushdown_marginals`) when
every modelled column's domain was counted here and its encoding has a SQL form (numeric,
date and timestamp bins with their special states; string, boolean and integer categories with
NULL and `other`): the mechanism then fits every row's counts brought to the sample's scale
(`CodeCounts.scaled`: times the rate, rounded), as the sample road fits the sample, and reports
a `sample_rate` of 1 (every row counted). Fitted at the source's scale, its AIM rounds grew with
the source (75 at 10M rows against about 20); and a prior released here is weighted as the same
release on the sample (`columns`), else its precision cuts the rounds short (bench/RESULTS.md).
A column without such a form (a role head learned from the sample, a TIME column) keeps the
whole table on the sample road. No release claims amplification by sampling, on either road
(`source_rows`), so counting every row changes no accounting. What still reads the sample,
drawn only if some column needs it (`source_rows.LazySample`): text formats, role heads, and
DP-SGD, which needs the rows themselves.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import pyarrow as pa
from sqlglot import exp

from dbt_synth.domains.numeric import OrderedCounts
from dbt_synth.domains.release import ValueCounts
from dbt_synth.pushdown_tree import Bounds, EngineCounts, axis_sql, ordered_counts
from dbt_synth.schema import ColumnSpec

# Result columns of the grouping-sets query, named so that no source column can clash.
_COUNT = "__dbt_synth_count"
_GROUPED = "__dbt_synth_grouped_"


@dataclass(frozen=True)
class Aggregates:
    """Aggregate SQL over every row of one source, run by its engine.

    `run` takes a query in `dialect` that reads the source as the table `source` and returns its
    (small) result; the warehouse binds it to the relation (`Warehouse.aggregate`).
    """

    run: Callable[[str], pa.Table]
    dialect: str


@dataclass(frozen=True)
class SourceCounts:
    """Exact counts of some columns over the whole source, and how to bring a release made on
    them to the scale of the sample the generator is fit on."""

    columns: dict[str, ValueCounts]
    rows_estimate: float  # the DP row count of the whole source
    rate: float  # the Poisson sample's rate: full-source releases are scaled by it
    aggregates: Aggregates | None = field(default=None, repr=False)
    # The ordered columns known to be counted, with their public bounds: asked for together.
    ordered_columns: tuple[tuple[ColumnSpec, Bounds], ...] = ()

    def of(self, name: str) -> ValueCounts | None:
        return self.columns.get(name)

    def ordered(self, spec: ColumnSpec, bounds: Bounds) -> OrderedCounts | None:
        """The ordered column's counts over the whole source (clipped to public `bounds`), if
        the engine can put it on its axis; None means: count it on the sample."""
        if self.aggregates is None:
            return None
        if (spec, bounds) in self.ordered_columns and spec.name in self._ordered:
            return self._ordered[spec.name]
        axis = axis_sql(spec, self.aggregates.dialect)
        return None if axis is None else EngineCounts(self.aggregates, axis, bounds)

    @cached_property
    def _ordered(self) -> dict[str, OrderedCounts]:
        if self.aggregates is None:
            return {}
        return ordered_counts(self.aggregates, self.ordered_columns)


def value_counts(aggregates: Aggregates, names: Sequence[str]) -> dict[str, ValueCounts]:
    """Every named column's distinct values and counts, in one query run by the engine.

    Values come in a fixed order (count descending, then value's text) whatever order the engine
    returns groups in, so that a replayed noise stream noises the same value the same way.
    """
    if not names:
        return {}
    result = aggregates.run(grouping_sets_sql(names, aggregates.dialect))
    counted = result.column(_COUNT).to_numpy(zero_copy_only=False).astype(float)
    out = {}
    for i, name in enumerate(names):
        rows = np.flatnonzero(result.column(f"{_GROUPED}{i}").to_numpy(zero_copy_only=False) == 0)
        values = result.column(name).take(pa.array(rows, pa.int64())).to_pylist()
        counts = counted[rows]
        null = [j for j, v in enumerate(values) if v is None]
        nulls = int(counts[null].sum()) if null else 0
        kept = [j for j, v in enumerate(values) if v is not None]
        out[name] = ValueCounts.ordered([values[j] for j in kept], counts[kept], nulls)
    return out


def grouping_sets_sql(names: Sequence[str], dialect: str) -> str:
    """`select c₁…cₖ, grouping(cᵢ)…, count(*) from source group by grouping sets ((c₁)…(cₖ))`.

    `grouping(c)` is 0 in the rows of c's own set, which tells a NULL value of c (a group)
    from the NULL the other sets put in c's column.
    """
    columns = [exp.column(exp.to_identifier(name, quoted=True)) for name in names]
    flags = [
        exp.alias_(exp.Anonymous(this="grouping", expressions=[c.copy()]), f"{_GROUPED}{i}")
        for i, c in enumerate(columns)
    ]
    count = exp.alias_(exp.Count(this=exp.Star()), _COUNT)
    sets = exp.GroupingSets(expressions=[exp.Tuple(expressions=[c.copy()]) for c in columns])
    query = exp.select(*[c.copy() for c in columns], *flags, count).from_("source").group_by(sets)
    return query.sql(dialect=dialect)
