"""Exact counts computed by the engine that holds the source, for DP releases on the driver.

A warehouse that runs aggregate SQL over every source row (`SourceRows.aggregates`: Spark)
answers the category columns' distinct-value counts with one GROUP BY GROUPING SETS query, so
that only `(value, count)` pairs reach the driver, never rows. The pipeline adds the noise to
them there (`domains.categories.dp_category_domain`), exactly as to counts taken on the Poisson
sample; the exact counts are never written or logged.

An ordered column's domain (`domains.numeric.numeric_domain`) is released the same way from
`EngineCounts`: its special states and decimal places with its tree's first level in one query,
then each deeper level of the tree in one query, counting only the children of the nodes the
previous level's noisy counts kept (that frontier is DP output: naming it in SQL is
post-processing). The tree keys are computed in SQL exactly as `domains.tree.to_keys` computes
them (see `_KEYED`), so that on the same rows the counts, and under replayed noise the domain,
are the same as in memory. A column of a kind the dialect has no axis expression for here (TIME)
is counted on the sample.

The counts cover the whole source, not the sample the generator is fit on: the release is made
at the source's scale (the same ρ buys a domain closer to the truth, and rare values that clear
the threshold on the full table are kept) and then scaled by the sample rate, which is
post-processing, so that the domain's counts match the rows the generator sees.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import pyarrow as pa
import sqlglot
from sqlglot import exp

from dbt_synth.domains.numeric import MAX_DECIMALS, SPECIALS, OrderedCounts
from dbt_synth.domains.release import ValueCounts
from dbt_synth.domains.tree import KEY_BITS, LEVEL_BITS, lookup_counts
from dbt_synth.schema import ColumnKind, ColumnSpec

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

    def of(self, name: str) -> ValueCounts | None:
        return self.columns.get(name)

    def ordered(self, spec: ColumnSpec, bounds: tuple[float, float] | None) -> OrderedCounts | None:
        """The ordered column's counts over the whole source (clipped to public `bounds`), if
        the engine can put it on its axis; None means: count it on the sample."""
        if self.aggregates is None:
            return None
        axis = axis_sql(spec, self.aggregates.dialect)
        return None if axis is None else EngineCounts(self.aggregates, axis, bounds)


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
        kept.sort(key=lambda j: (-counts[j], str(values[j])))
        out[name] = ValueCounts([values[j] for j in kept], counts[kept], nulls)
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


# An ordered column on its float axis (`dbt_synth.axis.to_axis`), per dialect and kind: `{c}` is
# the quoted column. Epoch days and seconds as doubles, divided as the driver divides them.
_AXIS: dict[str, dict[ColumnKind, str]] = {
    "spark": {
        ColumnKind.DATE: "CAST(UNIX_DATE({c}) AS DOUBLE)",
        ColumnKind.TIMESTAMP: (
            "CAST(TIMESTAMPDIFF(MICROSECOND, TIMESTAMP_NTZ '1970-01-01 00:00:00', {c}) AS DOUBLE)"
            " / 1000000"
        ),
        ColumnKind.TIMESTAMPTZ: "CAST(UNIX_MICROS({c}) AS DOUBLE) / 1000000",
    },
    "duckdb": {
        ColumnKind.DATE: "CAST({c} - DATE '1970-01-01' AS DOUBLE)",
        ColumnKind.TIMESTAMP: "CAST(EPOCH_US({c}) AS DOUBLE) / 1000000",
        ColumnKind.TIMESTAMPTZ: "CAST(EPOCH_US({c}) AS DOUBLE) / 1000000",
    },
}
_NUMBERS = (ColumnKind.INTEGER, ColumnKind.FLOAT, ColumnKind.DECIMAL)

# The tree key of `domains.tree.to_keys`, top KEY_BITS bits, from the axis value `__axis`: for
# |x| = 2^e·(1 + m), the biased exponent and the top 20 bits of m (a subnormal's exponent is 0,
# its mantissa x·2^1074); x ≥ 0 is put above 2^31, x < 0 mirrored below it. log2 only guesses
# e: the guess is corrected against exact powers of two, so that every step is exact. Also the
# special state (index into SPECIALS) and the decimal places (`domains.numeric.decimal_places`,
# the same tolerance) of each row. -0.0 is keyed as 0.0 (in memory, one cell below it).
_KEYED = """
SELECT s, d, CAST(CASE WHEN f < 0 THEN 2147483647 - t ELSE 2147483648 + t END AS BIGINT) AS k FROM (
  SELECT s, d, f, CASE
    WHEN a = 0 THEN 0
    WHEN a < 2.2250738585072014e-308 THEN FLOOR(a * POWER(2, 1000) * POWER(2, 42))
    ELSE (e + 1023) * 1048576 + FLOOR((a / POWER(2, e) - 1) * 1048576) END AS t
  FROM (
    SELECT s, d, f, a, e0 - CASE WHEN a < POWER(2, e0) THEN 1 ELSE 0 END
      + CASE WHEN a >= POWER(2, e0 + 1) THEN 1 ELSE 0 END AS e
    FROM (
      SELECT s, d, f, ABS(f) AS a, CASE WHEN f <> 0 THEN FLOOR(LOG(2, ABS(f))) END AS e0
      FROM (
        SELECT s, CASE WHEN s IS NULL THEN __places END AS d,
          CASE WHEN s IS NULL THEN __clipped END AS f
        FROM (
          SELECT CASE WHEN v IS NULL THEN 0 WHEN ISNAN(v) THEN 1
            WHEN v > 1.7976931348623157e308 THEN 2 WHEN v < -1.7976931348623157e308 THEN 3
            END AS s, v
          FROM (SELECT __axis AS v FROM source) AS axis
        ) AS states
      ) AS finite
    ) AS logs
  ) AS exponents
) AS keys
"""
_FIRST_SHIFT = KEY_BITS - LEVEL_BITS[0]
# Deeper levels filter on at most this many ranges of cells (nearby ones merged): a longer
# predicate costs the engine more than the few extra groups it lets through.
_MAX_RANGES = 256


@dataclass(frozen=True)
class EngineCounts:
    """`domains.numeric.OrderedCounts` of one column, each computed by the engine over the
    whole source (`axis`: the column on its float axis, `axis_sql`)."""

    aggregates: Aggregates
    axis: exp.Expression
    bounds: tuple[float, float] | None = None

    def specials(self) -> np.ndarray:
        return self._first_level("s", len(SPECIALS))

    def decimal_places(self) -> np.ndarray:
        return self._first_level("d", len(_PLACES) + 1)

    def prefixes(self, cells: np.ndarray, shift: int) -> np.ndarray:
        if len(cells) == 0:  # the tree kept nothing to look under
            return np.zeros(0)
        if shift == _FIRST_SHIFT:
            found = self._first.filter(self._first.column("p").is_valid())
        else:
            found = self.aggregates.run(self._level_sql(cells, shift))
        order = np.argsort(found.column("p").to_numpy(zero_copy_only=False))
        prefixes = found.column("p").to_numpy(zero_copy_only=False)[order].astype(np.int64)
        counts = found.column("n").to_numpy(zero_copy_only=False)[order].astype(float)
        return lookup_counts(prefixes, counts, np.asarray(cells, dtype=np.int64))

    @cached_property
    def _first(self) -> pa.Table:
        """States, decimal places and first-level cells, in one grouping-sets query."""
        inner = exp.select("s", "d", _prefix(_FIRST_SHIFT)).from_(self._keyed().subquery("keyed"))
        sets = exp.GroupingSets(
            expressions=[exp.Tuple(expressions=[exp.column(c)]) for c in ("s", "d", "p")]
        )
        query = exp.select("s", "d", "p", exp.alias_(exp.Count(this=exp.Star()), "n"))
        return self.aggregates.run(
            query.from_(inner.subquery("cells")).group_by(sets).sql(self.aggregates.dialect)
        )

    def _first_level(self, column: str, size: int) -> np.ndarray:
        found = self._first.filter(self._first.column(column).is_valid())
        index = found.column(column).to_numpy(zero_copy_only=False).astype(np.int64)
        counts = found.column("n").to_numpy(zero_copy_only=False).astype(float)
        return np.bincount(index, weights=counts, minlength=size).astype(float)

    def _level_sql(self, cells: np.ndarray, shift: int) -> str:
        inner = exp.select(_prefix(shift)).from_(self._keyed().subquery("keyed"))
        within = exp.or_(
            *(
                exp.Between(this=exp.column("p"), low=_int(low), high=_int(high))
                for low, high in _ranges(np.unique(cells), _MAX_RANGES)
            )
        )
        query = exp.select("p", exp.alias_(exp.Count(this=exp.Star()), "n"))
        query = query.from_(inner.subquery("cells")).where(within).group_by("p")
        return query.sql(self.aggregates.dialect)

    def _keyed(self) -> exp.Select:
        value = exp.column("v")
        clipped: exp.Expression = value
        if self.bounds is not None:
            low, high = (_double(b) for b in self.bounds)
            below = exp.Least(this=value, expressions=[high])
            clipped = exp.Greatest(this=below, expressions=[low])
        places = exp.Case(ifs=[exp.If(this=_written_with(value, d), true=_int(d)) for d in _PLACES])
        places.set("default", _int(len(_PLACES)))
        replace = {"__axis": self.axis, "__places": places, "__clipped": clipped}
        tree = sqlglot.parse_one(_KEYED, dialect="duckdb")
        return tree.transform(
            lambda node: (
                replace[node.name].copy()
                if isinstance(node, exp.Column) and node.name in replace
                else node
            )
        )


_PLACES = range(MAX_DECIMALS + 1)  # more decimals than these: len(_PLACES)


def _written_with(value: exp.Expression, digits: int) -> exp.Expression:
    """|round(v, d) − v| ≤ 1e-9·max(|v|, 1): `v` is written with `digits` decimals."""
    rounded = exp.Round(this=value.copy(), decimals=_int(digits))
    error = exp.Abs(this=exp.Sub(this=rounded, expression=value.copy()))
    scale = exp.Greatest(this=exp.Abs(this=value.copy()), expressions=[_double(1.0)])
    return exp.LTE(this=error, expression=exp.Mul(this=_double(1e-9), expression=scale))


def axis_sql(spec: ColumnSpec, dialect: str) -> exp.Expression | None:
    """The column on its float axis in `dialect`, or None where that is not written here."""
    column = exp.column(exp.to_identifier(spec.name, quoted=True))
    if spec.kind in _NUMBERS:
        return exp.cast(column, exp.DataType.build("double"))
    template = _AXIS.get(dialect, {}).get(spec.kind)
    if template is None:
        return None
    return sqlglot.parse_one(template.format(c=column.sql(dialect)), dialect=dialect)


def _ranges(cells: np.ndarray, limit: int) -> list[tuple[int, int]]:
    """Sorted `cells` as at most `limit` [low, high] ranges: runs of consecutive cells, the
    runs across the smallest gaps merged (a merged range lets a few unwanted cells through)."""
    gaps = np.diff(cells)
    cuts = np.flatnonzero(gaps > 1)
    if len(cuts) >= limit:
        widest = np.argsort(-gaps[cuts], kind="stable")[: limit - 1]
        cuts = np.sort(cuts[widest])
    starts = np.r_[0, cuts + 1]
    ends = np.r_[cuts, len(cells) - 1]
    return [(int(cells[a]), int(cells[b])) for a, b in zip(starts, ends, strict=True)]


def _prefix(shift: int) -> exp.Expression:
    """`k >> shift AS p`: the key's cell at the tree level that leaves `shift` bits below it."""
    return exp.alias_(exp.BitwiseRightShift(this=exp.column("k"), expression=_int(shift)), "p")


def _int(value: int) -> exp.Expression:
    return exp.Literal.number(value)


def _double(value: float) -> exp.Expression:
    """A float literal that both dialects read as the same double (Spark reads 1.5 as DECIMAL)."""
    return exp.cast(exp.Literal.number(repr(float(value))), exp.DataType.build("double"))
