"""What `dbt-synth report` asks the warehouse: a few aggregates of the real table and its twin.

Every query is Jinja-SQL that dbt runs (`dbt show --inline`), so it works on whatever warehouse
the profile points at, and returns a handful of rows per column: counts per histogram bin or per
category, a few order statistics, one line per column pair. The tables themselves are never
fetched, and nothing is written: the counts live in memory only while `report.py` draws its
figures from them, which show the same as before (the report page is for people allowed to see
the real table's distributions).

Values are compared as the report always has: numbers, dates and timestamps as doubles (dates as
days since 1970), everything else as text labels, NULL (and NaN) apart.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

# Rows of one Jinja-SQL query (refs and sources resolve as in a model), as dicts by column name.
Query = Callable[[str], list[dict[str, Any]]]

_DOUBLE = "{{ dbt_synth.type_double() }}"
_TEXT = "{{ dbt.type_string() }}"
_INF = f"cast('Infinity' as {_DOUBLE})"


@dataclass(frozen=True)
class ColumnPlan:
    """One compared column: numeric (a double) or a label, as SQL over the real and the twin."""

    name: str
    numeric: bool
    real: str
    twin: str


def plan_columns(query: Query, real: str, twin: str) -> tuple[ColumnPlan, ...]:
    """The real table's columns in order, each compared as a number only if the twin's column is
    one too; `real` and `twin` are relation calls such as `source('raw', 'cps1988')`."""
    sides = []
    for side, relation in (("real", real), ("twin", twin)):
        sides.append(
            f"{{% for c in dbt_synth.column_kinds({relation}) %}} union all "
            f"select '{side}', {{{{ loop.index0 }}}}, '{{{{ c.name | replace(\"'\", \"''\") }}}}',"
            f" '{{{{ c.kind }}}}', '{{{{ c.data_type | lower | replace(\"'\", \"''\") }}}}'"
            "{% endfor %}"
        )
    null = f"cast(null as {_TEXT})"
    rows = query(
        f"select {null} as side, 0 as position, {null} as name, {null} as kind, "
        f"{null} as data_type where 1 = 0 " + " ".join(sides)
    )
    kinds = {(r["side"], r["name"]): _kind(r["kind"], r["data_type"]) for r in rows}
    real_columns = sorted((r for r in rows if r["side"] == "real"), key=lambda r: r["position"])
    plans = []
    for row in real_columns:
        name = row["name"]
        real_kind, twin_kind = kinds[("real", name)], kinds.get(("twin", name))
        numeric = real_kind != "label" and twin_kind in (None, real_kind)
        kind = real_kind if numeric else "label"
        twin_value = _value(name, kind) if twin_kind else f"cast(null as {_sql_type(numeric)})"
        plans.append(ColumnPlan(name, numeric, _value(name, kind), twin_value))
    return tuple(plans)


def _kind(kind: str, data_type: str) -> str:
    """`number`, `epoch` (dates and timestamps, as days) or `label` (text, booleans, times of
    day and everything else): how the report always read each type."""
    if kind == "numeric":
        return "number"
    if kind == "temporal" and (data_type.startswith(("date", "timestamp"))):
        return "epoch"
    return "boolean" if kind == "boolean" else "label"


def _value(name: str, kind: str | None) -> str:
    column = f"{{{{ adapter.quote({json.dumps(name)}) }}}}"
    if kind == "number":
        return f"cast({column} as {_DOUBLE})"
    if kind == "epoch":
        return f"{{{{ dbt_synth.epoch_days(adapter.quote({json.dumps(name)})) }}}}"
    if kind == "boolean":
        return f"case when {column} then 'True' when not {column} then 'False' end"
    return f"cast({column} as {_TEXT})"


def _sql_type(numeric: bool) -> str:
    return _DOUBLE if numeric else _TEXT


def _both(plans: Sequence[ColumnPlan], real: str, twin: str) -> str:
    """Both tables stacked, a `side` column apart, each compared column as `c<i>`."""
    selects = []
    for side, relation in (("real", real), ("twin", twin)):
        values = ", ".join(f"{getattr(p, side)} as c{i}" for i, p in enumerate(plans))
        selects.append(
            f"select '{side}' as side{', ' if values else ''}{values} from {{{{ {relation} }}}}"
        )
    return f"both_tables as ({' union all '.join(selects)})"


def _finite(c: str) -> str:
    return f"{c} > -{_INF} and {c} < {_INF}"


def _missing(c: str, numeric: bool = True) -> str:
    """NULL, or NaN for a number (NaN sorts above +inf in DuckDB, Postgres and Spark alike)."""
    return f"({c} is null or {c} > {_INF})" if numeric else f"{c} is null"


def stats(query: Query, plans: Sequence[ColumnPlan], real: str, twin: str) -> dict[str, dict]:
    """Per side: `n_rows`, and `missing_<column index>` (NULL, or NaN for numbers)."""
    measures = ["count(*) as n_rows"] + [
        f"sum(case when {_missing(f'c{i}', plan.numeric)} then 1 else 0 end) as missing_{i}"
        for i, plan in enumerate(plans)
    ]
    rows = query(
        f"with {_both(plans, real, twin)} select side, {', '.join(measures)} "
        "from both_tables group by side"
    )
    empty = {"n_rows": 0} | {f"missing_{i}": 0 for i in range(len(plans))}
    by_side = {r["side"]: r for r in rows}
    return {side: by_side.get(side, empty) for side in ("real", "twin")}


def _order_statistics(
    columns: Sequence[tuple[str, str, str]], quantiles: Sequence[float], prefix: str
) -> str:
    """CTEs, one per (name, c, where) of `columns`: CTE `name` is one row with `n`, `smallest`,
    `largest`, `whole` (every value a whole number) and q0, q1, … of the values of `c` in the
    rows `where` selects. Computed in the warehouse: no value of the table is fetched or written
    into the query text.

    Exact by default (`_quantiles`, numpy's figures to the last bit). A warehouse with a
    `quantile_sketch` (Spark: `percentile_approx`, where an exact sort would run in one task)
    gets them from one aggregate, the quantiles then within rows/10,000 ranks of the exact ones.
    Spark inlines that aggregate at each CTE that reads it, pruned to its column: it runs once
    per column (bench/RESULTS.md, "`dbt-synth report` at 10M"). CTE `prefix`, one row of every
    column's quantiles (`<name>_q<j>`), reads it once."""
    fractions = ", ".join(f"'{float(q)!r}'" for q in quantiles)
    values = ", ".join(
        f"case when {where} then {c} end as v{k}" for k, (_, c, where) in enumerate(columns)
    )
    sketched = ", ".join(
        f"count(v{k}) as n{k}, min(v{k}) as smallest{k}, max(v{k}) as largest{k}, "
        f"min(case when floor(v{k}) <> v{k} then 0 when v{k} is not null then 1 end) "
        f"as whole{k}, "
        f"{{{{ dbt_synth.quantile_sketch('v{k}', [{fractions}]) }}}} as sketch{k}"
        for k in range(len(columns))
    )
    picked = [
        f"{name} as (select n{k} as n, smallest{k} as smallest, largest{k} as largest, "
        f"whole{k} as whole, "
        + ", ".join(f"sketch{k}[{j}] as q{j}" for j in range(len(quantiles)))
        + f" from {prefix}_sketched)"
        for k, (name, _, _) in enumerate(columns)
    ]
    sketched_row = ", ".join(
        f"sketch{k}[{j}] as {name}_q{j}"
        for k, (name, _, _) in enumerate(columns)
        for j in range(len(quantiles))
    )
    approximate = ", ".join(
        [
            f"{prefix}_values as (select {values} from both_tables)",
            f"{prefix}_sketched as (select {sketched} from {prefix}_values)",
            *picked,
            f"{prefix} as (select {sketched_row} from {prefix}_sketched)",
        ]
    )
    exact_row = ", ".join(
        f"{name}.q{j} as {name}_q{j}" for name, _, _ in columns for j in range(len(quantiles))
    )
    crossed = " cross join ".join(name for name, _, _ in columns)
    exact = ", ".join(
        [
            *(_quantiles(name, c, where, quantiles) for name, c, where in columns),
            f"{prefix} as (select {exact_row} from {crossed})",
        ]
    )
    return (
        f"{{% if dbt_synth.quantile_sketch('v', ['0.5']) %}}{approximate}"
        f"{{% else %}}{exact}{{% endif %}}"
    )


def _quantiles(name: str, c: str, where: str, quantiles: Sequence[float]) -> str:
    """CTE `name` of `_order_statistics` for one column, each quantile computed as
    `numpy.quantile(method='linear')` does, operation for operation, so that it is numpy's
    double to the last bit."""
    points = [(k, f"cast('{float(q)!r}' as {_DOUBLE})") for k, q in enumerate(quantiles)]
    virtual = ", ".join(f"cast(n - 1 as {_DOUBLE}) * {q} as x{k}" for k, q in points)
    above = "x{k} >= n - 1"
    positions = ", ".join(
        f"case when {above.format(k=k)} then n - 1 else floor(x{k}) end as a{k}, "
        f"case when {above.format(k=k)} then n - 1 else floor(x{k}) + 1 end as b{k}, "
        f"x{k} - case when {above.format(k=k)} then -1 else floor(x{k}) end as g{k}"
        for k, _ in points
    )
    picked = ", ".join(
        f"max(case when s.position = p.a{k} then s.v end) as va{k}, "
        f"max(case when s.position = p.b{k} then s.v end) as vb{k}, max(p.g{k}) as g{k}"
        for k, _ in points
    )
    lerps = ", ".join(
        f"case when g{k} >= 0.5 then vb{k} - (vb{k} - va{k}) * (1 - g{k}) "
        f"else va{k} + (vb{k} - va{k}) * g{k} end as q{k}"
        for k, _ in points
    )
    return (
        f"{name}_sorted as (select {c} as v, row_number() over (order by {c}) - 1 as position "
        f"from both_tables where {where}), "
        f"{name}_positions as (select n, {positions} from (select n, {virtual} from "
        f"(select count(*) as n from {name}_sorted) as counted) as indexed), "
        f"{name} as (select n, smallest, largest, whole, {lerps} from (select max(p.n) as n, "
        "min(s.v) as smallest, max(s.v) as largest, "
        "min(case when floor(s.v) <> s.v then 0 else 1 end) as whole, "
        f"{picked} from {name}_sorted as s cross join {name}_positions as p) as picked)"
    )


def histograms(
    query: Query, plans: Sequence[ColumnPlan], real: str, twin: str, bins: int
) -> dict[int, dict[str, Any]]:
    """Per numeric column: the plotted range [low, high] of both tables' finite values (their
    0.5% and 99.5% quantiles; if those meet, min − ½ to max + ½), whether its bins are whole
    numbers (`integral`: one bin per integer, centred on it, when every value is whole and the
    range spans at most 2·`bins`; else `bins` equal bins), and `cells`: (side, clip, bin, n)
    with clip −1/1 below `low`/above `high` and bin −1/−2 below/above the outer edges. Bins
    are [e_k, e_k+1), the last closed, as numpy counts them; the edges are numpy's too
    (`numpy.linspace`, `numpy.arange`), so `report.py` rebuilds them exactly."""
    numbers = [i for i, plan in enumerate(plans) if plan.numeric]
    if not numbers:
        return {}
    ranges = [(f"range{i}", f"c{i}", _finite(f"c{i}")) for i in numbers]
    ctes, selects = [_order_statistics(ranges, (0.005, 0.995), "ranges")], []
    for i in numbers:
        c = f"c{i}"
        ctes.append(
            f"bounds{i} as (select lo, hi, whole = 1 and hi - lo <= {2 * bins} as integral, "
            f"(hi - lo) / {bins} as step, floor(lo) - 0.5 as start, "
            f"ceil(hi) - floor(lo) + 1 as whole_bins from (select "
            "case when q1 <= q0 then smallest - 0.5 else q0 end as lo, "
            "case when q1 <= q0 then largest + 0.5 else q1 end as hi, whole "
            f"from range{i}) as fixed)"
        )
        ctes.append(
            f"guess{i} as (select side, {c} as v, b.*, "
            f"least(greatest(floor(({c} - lo) / step), 0), {bins - 1}) as k "
            f"from both_tables cross join bounds{i} as b where {_finite(c)})"
        )
        uniform = (
            f"case when v < lo then -1 when v > hi then -2 when v = hi then {bins - 1} "
            "when v < k * step + lo then k - 1 "
            f"when k < {bins - 1} and v >= (k + 1) * step + lo then k + 1 else k end"
        )
        per_integer = (
            "case when v < start then -1 when v > start + whole_bins then -2 "
            "else floor(v - start) end"
        )
        selects.append(
            f"select side, {i} as col, clip, bin, count(*) as n, max(lo) as lo, max(hi) as hi, "
            f"max(case when integral then 1 else 0 end) as integral from (select side, lo, hi, "
            "integral, case when v < lo then -1 when v > hi then 1 else 0 end as clip, "
            f"case when integral then {per_integer} else {uniform} end as bin from guess{i}) "
            "as binned group by side, clip, bin"
        )
    rows = query(
        f"with {_both(plans, real, twin)}, {', '.join(ctes)} {' union all '.join(selects)}"
    )
    found: dict[int, dict[str, Any]] = {}
    for row in rows:
        column = found.setdefault(
            int(row["col"]),
            {"low": float(row["lo"]), "high": float(row["hi"]), "integral": bool(row["integral"])},
        )
        cell = (row["side"], int(row["clip"]), int(row["bin"]), int(row["n"]))
        column.setdefault("cells", []).append(cell)
    return found


def category_counts(
    query: Query, plans: Sequence[ColumnPlan], real: str, twin: str, top: int
) -> dict[int, dict[str, Any]]:
    """Per label column: its `top` labels by real count (ties in label order) with both counts, the
    number of labels either table has, and Σ|n_real·T − n_twin·R| over all labels (R, T the
    row counts), from which the total variation distance follows exactly."""
    columns = [i for i, plan in enumerate(plans) if not plan.numeric]
    if not columns:
        return {}
    labels = ", ".join(f"coalesce(c{i}, 'NULL') as l{i}" for i in columns)
    sets = ", ".join(f"(side, l{i})" for i in columns)
    # Each cell has one label column set (GROUPING SETS leaves the others NULL): one pass over
    # the cells names its column. Spark inlines a CTE at each reference, so a union of one
    # branch per column (two per column here before) put the grouping in its plan per branch.
    column = " ".join(f"when l{i} is not null then {i}" for i in columns)
    rows = query(
        f"with {_both(plans, real, twin)}, "
        f"labelled as (select side, {labels} from both_tables), "
        f"cells as (select side, {', '.join(f'l{i}' for i in columns)}, count(*) as n "
        f"from labelled group by grouping sets ({sets})), "
        "joined as (select col, label, sum(case when side = 'real' then n else 0 end) as n_real, "
        "sum(case when side = 'twin' then n else 0 end) as n_twin from (select side, "
        f"case {column} end as col, coalesce({', '.join(f'l{i}' for i in columns)}) as label, n "
        "from cells) as tagged group by col, label), "
        "totals as (select col, sum(n_real) as r_rows, sum(n_twin) as t_rows, count(*) as labels "
        "from joined group by col), "
        "ranked as (select j.col, j.label, j.n_real, j.n_twin, t.labels, "
        "row_number() over (partition by j.col order by j.n_real desc, j.label) as position, "
        "sum(abs(j.n_real * t.t_rows - j.n_twin * t.r_rows)) over (partition by j.col) as gap "
        "from joined as j join totals as t on j.col = t.col) "
        "select col, label, n_real, n_twin, position, labels, gap from ranked "
        f"where position <= {top}"
    )
    found: dict[int, dict[str, Any]] = {}
    for row in sorted(rows, key=lambda r: int(r["position"])):
        column = found.setdefault(
            int(row["col"]), {"labels": int(row["labels"]), "gap": int(row["gap"]), "top": []}
        )
        column["top"].append((str(row["label"]), int(row["n_real"]), int(row["n_twin"])))
    return found


def associations(
    query: Query, plans: Sequence[ColumnPlan], real: str, twin: str, quantiles: Sequence[float]
) -> dict[tuple[str, int, int], tuple[int, int, int, float]]:
    """Per side and column pair (a, b): the 2-way table of codes summarised for Cramér's V as
    (N, rows, columns, Σ n²/(row total·column total)), computed in the warehouse in one pass
    (GROUPING SETS). Codes: numbers by the real table's `quantiles` (code = how many lie below
    the value), labels by number, twin labels the real table lacks pooled; NULL and NaN
    apart."""
    codes = []
    edges = [
        (f"edges{i}", f"c{i}", f"side = 'real' and not {_missing(f'c{i}')}")
        for i, plan in enumerate(plans)
        if plan.numeric
    ]
    ctes = [_order_statistics(edges, quantiles, "edges")] if edges else []
    # Every number's edges from one row, read once (one sketch aggregate on Spark).
    joins = ["cross join edges"] if edges else []
    for i, plan in enumerate(plans):
        c = f"both_tables.c{i}"
        if plan.numeric:
            steps = " ".join(
                f"when {c} <= edges.edges{i}_q{k} then {k}" for k in range(len(quantiles))
            )
            codes.append(
                f"case when {_missing(c)} then -1 {steps} else {len(quantiles)} end as k{i}"
            )
            continue
        # Labels by number (integers group faster than text): the real table's labels 1, 2, …,
        # twin labels the real table lacks all 0.
        joins.append(
            f"left join (select label, row_number() over (order by label) as id from "
            f"(select distinct coalesce(c{i}, 'NULL') as label from both_tables "
            f"where side = 'real') as labels) as known{i} "
            f"on coalesce({c}, 'NULL') = known{i}.label"
        )
        codes.append(f"coalesce(known{i}.id, 0) as k{i}")
    pairs = [(a, b) for a in range(len(plans)) for b in range(a + 1, len(plans))]
    if not pairs:
        return {}
    sets = ", ".join(f"(side, k{a}, k{b})" for a, b in pairs)
    # Each cell has the two codes of its pair set, the others NULL (codes never are): one pass
    # names its pair (not a union of 105 branches for 15 columns, each referencing `cells`),
    # the first code set is a and the last b.
    pair = " ".join(
        f"when k{a} is not null and k{b} is not null then {p}" for p, (a, b) in enumerate(pairs)
    )
    ks = [f"k{i}" for i in range(len(plans))]
    pair_cells = (
        f"select side, case {pair} end as pair, coalesce({', '.join(ks)}) as a, "
        f"coalesce({', '.join(reversed(ks))}) as b, n from cells"
    )
    rows = query(
        f"with {_both(plans, real, twin)}, {''.join(cte + ', ' for cte in ctes)}"
        f"coded as (select both_tables.side, {', '.join(codes)} from both_tables "
        f"{' '.join(joins)}), "
        f"cells as (select side, {', '.join(f'k{i}' for i in range(len(plans)))}, "
        f"count(*) as n from coded group by grouping sets ({sets})), "
        f"pair_cells as ({pair_cells}), "
        "margins as (select side, pair, a, b, n, "
        "sum(n) over (partition by side, pair, a) as row_total, "
        "sum(n) over (partition by side, pair, b) as column_total from pair_cells) "
        "select side, pair, sum(n) as n, count(distinct a) as row_codes, "
        f"count(distinct b) as column_codes, sum(cast(n as {_DOUBLE}) * n / "
        f"(cast(row_total as {_DOUBLE}) * column_total)) as s from margins group by side, pair"
    )
    return {
        (row["side"], *pairs[int(row["pair"])]): (
            int(row["n"]),
            int(row["row_codes"]),
            int(row["column_codes"]),
            float(row["s"]),
        )
        for row in rows
    }
