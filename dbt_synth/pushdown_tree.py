"""Ordered columns' counts computed by the engine: the numeric domain's tree over the source.

An ordered column's domain (`domains.numeric.numeric_domain`) is released from
`OrderedCounts`: its special states, its decimal places, and its tree's cell counts. Here the
engine computes them over the whole source (`pushdown.SourceCounts.ordered`); the driver adds
the noise exactly as to counts taken on the sample, and scales the release by the sample rate.

The tree keys are computed in SQL exactly as `domains.tree.to_keys` computes them (see
`_KEYED`), so that on the same rows the counts, and under replayed noise the domain, are the
same as in memory. `ordered_counts` asks the engine two queries for all columns at once: how
many distinct keys each has, then, for the columns with at most `_MAX_KEYS`, every key with its
count and the special states and decimal places (the driver reads each tree level off the
keys). A column with more keys is counted level by level (`EngineCounts`): the first level with
the special states and decimals, then each deeper level counting only the children of the nodes
the previous level's noisy counts kept (that frontier is DP output: naming it in SQL is
post-processing). A kind the dialect has no axis expression for here (TIME) is counted on the
sample.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import sqlglot
from sqlglot import exp

from dbt_synth.domains.numeric import MAX_DECIMALS, SPECIALS, OrderedCounts
from dbt_synth.domains.tree import KEY_BITS, LEVEL_BITS, lookup_counts
from dbt_synth.schema import ColumnKind, ColumnSpec

if TYPE_CHECKING:
    from dbt_synth.pushdown import Aggregates

Bounds = tuple[float, float] | None


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
SELECT s, d, CAST(CASE WHEN f < 0 THEN 2147483647 - t ELSE 2147483648 + t END AS BIGINT) AS k, w
FROM (
  SELECT s, d, f, w, CASE
    WHEN a = 0 THEN 0
    WHEN a < 2.2250738585072014e-308 THEN FLOOR(a * POWER(2, 1000) * POWER(2, 42))
    ELSE (e + 1023) * 1048576 + FLOOR((a / POWER(2, e) - 1) * 1048576) END AS t
  FROM (
    SELECT s, d, f, w, a, e0 - CASE WHEN a < POWER(2, e0) THEN 1 ELSE 0 END
      + CASE WHEN a >= POWER(2, e0 + 1) THEN 1 ELSE 0 END AS e
    FROM (
      SELECT s, d, f, w, ABS(f) AS a, CASE WHEN f <> 0 THEN FLOOR(LOG(2, ABS(f))) END AS e0
      FROM (
        SELECT s, CASE WHEN s IS NULL THEN __places END AS d,
          CASE WHEN s IS NULL THEN __clipped END AS f, w
        FROM (
          SELECT CASE WHEN v IS NULL THEN 0 WHEN ISNAN(v) THEN 1
            WHEN v > 1.7976931348623157e308 THEN 2 WHEN v < -1.7976931348623157e308 THEN 3
            END AS s, v, w
          FROM (SELECT __axis AS v, COUNT(*) AS w FROM source GROUP BY __axis) AS axis
        ) AS states
      ) AS finite
    ) AS logs
  ) AS exponents
) AS keys
"""
_FIRST_SHIFT = KEY_BITS - LEVEL_BITS[0]
# A column with at most this many distinct tree keys brings them all to the driver at once
# (key, count: a few MB at most), which answers every level of its tree.
_MAX_KEYS = 50_000


def ordered_counts(
    aggregates: Aggregates, columns: Sequence[tuple[ColumnSpec, Bounds]]
) -> dict[str, OrderedCounts]:
    """Each column's `OrderedCounts` over the whole source: `KeyCounts` in two queries for all
    columns of at most `_MAX_KEYS` distinct keys, `EngineCounts` (a query per level) for the
    others. Columns without an axis expression in the dialect are left out."""
    engine = {
        spec.name: EngineCounts(aggregates, axis, bounds)
        for spec, bounds in columns
        if (axis := axis_sql(spec, aggregates.dialect)) is not None
    }
    if not engine:
        return {}
    names = list(engine)
    tagged = _tagged(engine, names)
    keys = exp.alias_(exp.Count(this=exp.Distinct(expressions=[exp.column("k")])), "n")
    distinct = exp.select("c", keys).from_(tagged).group_by("c")
    found = aggregates.run(distinct.sql(aggregates.dialect)).to_pydict()
    few = [names[c] for c, n in zip(found["c"], found["n"], strict=True) if n <= _MAX_KEYS]
    out: dict[str, OrderedCounts] = dict(engine)
    if not few:
        return out
    sets = exp.GroupingSets(
        expressions=[
            exp.Tuple(expressions=[exp.column("c"), exp.column(part)]) for part in ("s", "d", "k")
        ]
    )
    query = exp.select("c", "s", "d", "k", _rows())
    table = aggregates.run(query.from_(_tagged(engine, few)).group_by(sets).sql(aggregates.dialect))
    column = table.column("c").to_numpy(zero_copy_only=False)
    for c, name in enumerate(few):
        out[name] = KeyCounts.of(table.filter(pa.array(column == c)))
    return out


def _tagged(engine: dict[str, EngineCounts], names: list[str]) -> exp.Subquery:
    """Every named column's keyed rows, tagged with its position `c`, stacked (UNION ALL)."""
    parts = [
        exp.select(exp.alias_(_int(c), "c"), "s", "d", "k", "w").from_(
            engine[name].keyed().subquery(f"keyed_{c}")
        )
        for c, name in enumerate(names)
    ]
    stacked = parts[0]
    for part in parts[1:]:
        stacked = exp.union(stacked, part, distinct=False)
    return stacked.subquery("tagged")


@dataclass(frozen=True)
class KeyCounts:
    """`OrderedCounts` from every distinct tree key of a column with its count."""

    special: np.ndarray
    places: np.ndarray
    keys: np.ndarray  # sorted, unique
    counts: np.ndarray

    @classmethod
    def of(cls, rows: pa.Table) -> KeyCounts:
        """From one column's rows of the grouping-sets query (one of s, d, k set in each)."""

        def part(name: str) -> tuple[np.ndarray, np.ndarray]:
            found = rows.filter(rows.column(name).is_valid())
            values = found.column(name).to_numpy(zero_copy_only=False).astype(np.int64)
            order = np.argsort(values, kind="stable")
            counts = found.column("n").to_numpy(zero_copy_only=False).astype(float)
            return values[order], counts[order]

        special, places, (keys, counts) = part("s"), part("d"), part("k")
        return cls(
            np.bincount(special[0], weights=special[1], minlength=len(SPECIALS)),
            np.bincount(places[0], weights=places[1], minlength=len(_PLACES) + 1),
            keys,
            counts,
        )

    def specials(self) -> np.ndarray:
        return self.special.astype(float)

    def decimal_places(self) -> np.ndarray:
        return self.places.astype(float)

    def prefixes(self, cells: np.ndarray, shift: int) -> np.ndarray:
        prefixes, first = np.unique(self.keys >> shift, return_index=True)
        sums = np.add.reduceat(self.counts, first) if len(first) else np.zeros(0)
        return lookup_counts(prefixes, sums, np.asarray(cells, dtype=np.int64))


# Deeper levels name the kept nodes whose children they count, up to this many; past it, the
# span of the kept nodes (a query of megabytes would cost more than the extra groups).
_MAX_PARENTS = 4096


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
        inner = exp.select("s", "d", _prefix(_FIRST_SHIFT), "w").from_(
            self.keyed().subquery("keyed")
        )
        sets = exp.GroupingSets(
            expressions=[exp.Tuple(expressions=[exp.column(c)]) for c in ("s", "d", "p")]
        )
        query = exp.select("s", "d", "p", _rows())
        return self.aggregates.run(
            query.from_(inner.subquery("cells")).group_by(sets).sql(self.aggregates.dialect)
        )

    def _first_level(self, column: str, size: int) -> np.ndarray:
        found = self._first.filter(self._first.column(column).is_valid())
        index = found.column(column).to_numpy(zero_copy_only=False).astype(np.int64)
        counts = found.column("n").to_numpy(zero_copy_only=False).astype(float)
        return np.bincount(index, weights=counts, minlength=size).astype(float)

    def _level_sql(self, cells: np.ndarray, shift: int) -> str:
        """Counts of `cells`' rows: filtered on their parents with one IN list (an OR of
        ranges would copy the key expression into every branch once Spark inlines it), or,
        past _MAX_PARENTS, on their span, the cells not asked for dropped on the driver."""
        inner = exp.select(_prefix(shift), "w").from_(self.keyed().subquery("keyed"))
        rank, parents = _parents(np.unique(cells))
        if len(parents) <= _MAX_PARENTS:
            parent = exp.BitwiseRightShift(this=exp.column("k"), expression=_int(shift + rank))
            inner = inner.where(exp.In(this=parent, expressions=[_int(p) for p in parents]))
        else:
            inner = inner.where(
                exp.Between(
                    this=exp.column("k"),
                    low=_int(int(cells.min()) << shift),
                    high=_int(((int(cells.max()) + 1) << shift) - 1),
                )
            )
        query = exp.select("p", _rows())
        return query.from_(inner.subquery("cells")).group_by("p").sql(self.aggregates.dialect)

    def keyed(self) -> exp.Select:
        """The column's special state `s`, decimal places `d` and tree key `k`, row by row."""
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


def _parents(cells: np.ndarray) -> tuple[int, np.ndarray]:
    """Sorted unique `cells` as whole aligned blocks of 2^rank cells, rank as large as they
    allow (the tree asks for every child of its kept nodes: 16 of each): (rank, block ids)."""
    for rank in range(LEVEL_BITS[0], 0, -1):
        blocks = np.unique(cells >> rank)
        if len(blocks) << rank == len(cells):
            return rank, blocks
    return 0, cells


def _rows() -> exp.Expression:
    """`SUM(w) AS n`: the rows of a group, each axis value standing for its `w` rows."""
    return exp.alias_(exp.Sum(this=exp.column("w")), "n")


def _prefix(shift: int) -> exp.Expression:
    """`k >> shift AS p`: the key's cell at the tree level that leaves `shift` bits below it."""
    return exp.alias_(exp.BitwiseRightShift(this=exp.column("k"), expression=_int(shift)), "p")


def _int(value: int) -> exp.Expression:
    return exp.Literal.number(value)


def _double(value: float) -> exp.Expression:
    """A float literal that both dialects read as the same double (Spark reads 1.5 as DECIMAL)."""
    return exp.cast(exp.Literal.number(repr(float(value))), exp.DataType.build("double"))
