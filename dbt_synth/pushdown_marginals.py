"""The marginal mechanism's exact counts computed by the engine: codes in SQL, pairs in one query.

The marginal mechanism (`mechanisms.marginal`) reads its data only through the exact 1- and
2-way counts of the modelled columns' codes (`EncodedTable.marginal_counts`). When every
modelled column's encoding has a SQL form (`code_sql`), the engine computes each row's codes
and counts every pair of columns with one GROUP BY GROUPING SETS query (`marginal_counts`);
the 1-way counts are the pairs' sums. Only the counts reach the driver, where the mechanism
adds the noise; they are never written or logged.

A SQL form exists for:
- a numeric, date or timestamp column (`NumericModel`) whose axis the dialect can write
  (`pushdown_tree.axis_sql`): its special states (NULL, NaN, ±inf) and the count of the
  released bin edges at or below the value, as `NumericModel.encode` computes them;
- a category column (`CategoryModel`, a head+tail column's head too) of strings, booleans or
  integers: its modelled values (a public or DP-released list), NULL and `other`, as
  `CategoryModel.code_map` looks them up.

Every constant in the SQL is DP output or public (edges, kept values, codes): naming them is
post-processing. Values are compared as the driver compares them: doubles on the same axis,
strings byte for byte, so that on the same rows the counts are the driver's, bit for bit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from sqlglot import exp

from dbt_synth.columns import public_bounds
from dbt_synth.config import SynthConfig
from dbt_synth.domains.numeric import SPECIALS
from dbt_synth.encoding import CategoryModel, ColumnModel, NumericModel
from dbt_synth.mechanisms.base import CodeCounts
from dbt_synth.pushdown_tree import _double, _int, axis_sql
from dbt_synth.schema import ColumnKind, ColumnSpec

if TYPE_CHECKING:
    from dbt_synth.pushdown import Aggregates, SourceCounts

_COUNT = "__dbt_synth_count"
_CODE = "__dbt_synth_code_"
_VALUE = "__dbt_synth_value_"
# Count the distinct rows of codes first, then expand those into the pairs' grouping sets
# (measured on Spark: bench/RESULTS.md, "The fit's counts in Spark").
_GROUP_FIRST = True
_MAX_DOUBLE = 1.7976931348623157e308


@dataclass(frozen=True)
class SqlCode:
    """A column's code (`model.encode`) in SQL: `value` reads the column from the source (on
    its axis for an ordered column), `code(v)` maps that value, read as `v`, to the code."""

    model: ColumnModel
    value: exp.Expression

    def code(self, v: exp.Expression) -> exp.Expression:
        if isinstance(self.model, NumericModel):
            return _numeric_code(self.model, v)
        return _category_code(self.model, v)


def code_sql(model: ColumnModel, dialect: str) -> SqlCode | None:
    """The column's code as SQL, or None where it has no SQL form here."""
    if isinstance(model, NumericModel):
        axis = axis_sql(model.spec, dialect)
        return None if axis is None else SqlCode(model, axis)
    if isinstance(model, CategoryModel):
        literal = _LITERALS.get(model.spec.kind)
        index, _, _ = model.code_map()
        if literal is None or not all(type(v) is literal[0] for v in index):
            return None
        return SqlCode(model, exp.column(exp.to_identifier(model.spec.name, quoted=True)))
    return None


@dataclass(frozen=True)
class PushedCodes:
    """Whether the engine counts the marginals: the modelled columns' `codes` in SQL, in their
    order, or (`codes` None) the `fallback`: why they are counted on the sample, in words."""

    codes: tuple[SqlCode, ...] | None
    fallback: str = ""

    @classmethod
    def declined(cls, why: str) -> PushedCodes:
        return cls(None, why)


def pushed_codes(
    source_counts: SourceCounts | None,
    columns: Sequence[tuple[ColumnSpec, ColumnModel]],
    config: SynthConfig,
) -> PushedCodes:
    """The modelled `columns`' codes in SQL when the engine can count their marginals: it
    counted every one's domain over the whole source (so that the 1-way priors come from the
    same counts) and each has a SQL form. Otherwise why not."""
    if source_counts is None or source_counts.aggregates is None:
        return PushedCodes.declined("the warehouse does not run aggregate SQL")
    dialect = source_counts.aggregates.dialect
    out = []
    for spec, model in columns:
        if isinstance(model, NumericModel):
            counted = source_counts.ordered(spec, public_bounds(spec, config)) is not None
        else:
            counted = source_counts.of(spec.name) is not None
        if not counted:
            return PushedCodes.declined(f"column {spec.name}'s domain was learned on the sample")
        code = code_sql(model, dialect)
        if code is None:
            return PushedCodes.declined(f"column {spec.name}'s codes have no SQL form")
        out.append(code)
    return PushedCodes(tuple(out))


def marginal_counts(aggregates: Aggregates, codes: Sequence[SqlCode]) -> CodeCounts:
    """Exact 1- and 2-way counts of the `codes`' columns over every row of the source: every
    pair in one grouping-sets query (one column: its own counts), the 1-way counts summed
    from the pairs on the driver.

    The engine reads each column's value once (`v_j`), maps it to its code (`c_j`), then, when
    `_GROUP_FIRST`, counts the distinct rows of codes before the grouping sets expand them.
    """
    d = len(codes)
    cards = tuple(c.model.cardinality for c in codes)
    values = [f"{_VALUE}{j}" for j in range(d)]
    names = [f"{_CODE}{j}" for j in range(d)]
    read = exp.select(
        *(exp.alias_(c.value.copy(), v) for c, v in zip(codes, values, strict=True))
    ).from_("source")
    coded = exp.select(
        *(
            exp.alias_(c.code(exp.column(v)), n)
            for c, v, n in zip(codes, values, names, strict=True)
        )
    ).from_(read.subquery("axis"))
    rows = exp.Count(this=exp.Star())
    if _GROUP_FIRST:
        coded = exp.select(*names, exp.alias_(rows, "w")).from_(coded.subquery("codes"))
        coded = coded.group_by(*names)
        rows = exp.Sum(this=exp.column("w"))
    sets = [(a, b) for a in range(d) for b in range(a + 1, d)] or [(0,)]
    grouping = exp.GroupingSets(
        expressions=[exp.Tuple(expressions=[exp.column(names[j]) for j in s]) for s in sets]
    )
    query = exp.select(*names, exp.alias_(rows, _COUNT)).from_(coded.subquery("coded"))
    result = aggregates.run(query.group_by(grouping).sql(aggregates.dialect))
    counted = result.column(_COUNT).to_numpy(zero_copy_only=False).astype(float)
    # Codes are never NULL: the columns a row's set does not group are its NULL ones.
    held = np.zeros(len(counted), dtype=np.int64)
    found = []
    for j, name in enumerate(names):
        column = result.column(name)
        held |= column.is_valid().to_numpy(zero_copy_only=False).astype(np.int64) << j
        found.append(column.fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64))
    if d == 1:
        single = np.zeros(cards[0])
        np.add.at(single, found[0], counted)
        return CodeCounts(cards, (single,), {})
    pairs = {}
    for a, b in sets:
        rows_of = held == ((1 << a) | (1 << b))
        joint = np.zeros((cards[a], cards[b]))
        np.add.at(joint, (found[a][rows_of], found[b][rows_of]), counted[rows_of])
        pairs[(a, b)] = joint
    singles = tuple(
        pairs[(j, j + 1)].sum(axis=1) if j + 1 < d else pairs[(0, j)].sum(axis=0) for j in range(d)
    )
    return CodeCounts(cards, singles, pairs)


def _numeric_code(model: NumericModel, axis: exp.Expression) -> exp.Expression:
    states = model.state_codes()
    tests = {
        "null": exp.Is(this=axis.copy(), expression=exp.Null()),
        "nan": exp.Anonymous(this="isnan", expressions=[axis.copy()]),
        "+inf": exp.GT(this=axis.copy(), expression=_double(_MAX_DOUBLE)),
        "-inf": exp.LT(this=axis.copy(), expression=_double(-_MAX_DOUBLE)),
    }
    # NaN first: Spark orders NaN above every double, +inf included.
    ifs = [exp.If(this=tests[s], true=_int(states[SPECIALS.index(s)])) for s in SPECIALS]
    first = len(model.domain.specials)
    if model.domain.bin_count:
        edges = model.inner_edges
        ifs += [
            exp.If(this=exp.LT(this=axis.copy(), expression=_double(e)), true=_int(first + i))
            for i, e in enumerate(edges)
        ]
        last = first + len(edges)
    else:
        last = 0
    return exp.Case(ifs=ifs, default=_int(last))


def _category_code(model: CategoryModel, column: exp.Expression) -> exp.Expression:
    index, null_code, other = model.code_map()
    _, make = _LITERALS[model.spec.kind]
    ifs = [exp.If(this=exp.Is(this=column.copy(), expression=exp.Null()), true=_int(null_code))]
    ifs += [
        exp.If(this=exp.EQ(this=column.copy(), expression=make(v)), true=_int(code))
        for v, code in index.items()
    ]
    return exp.Case(ifs=ifs, default=_int(other))


# The kinds whose values are written as SQL literals here, with the Python type of their values.
_LITERALS = {
    ColumnKind.STRING: (str, exp.Literal.string),
    ColumnKind.BOOLEAN: (bool, lambda v: exp.Boolean(this=v)),
    ColumnKind.INTEGER: (int, exp.Literal.number),
}
