"""The project's own rules, enforced on a twin at sampling time (post-processing, zero ε).

A rule is a row-level SQL predicate, read from a data test on the original: `not_null`,
`accepted_values`, `dbt_utils.accepted_range`, a row-level `dbt_utils.expression_is_true`
(parsed with sqlglot, e.g. `paid_total >= paid_principal`) or a column-pair comparison.
`dbt-synth init` writes them into `synth.rules`; the twin redraws rows that break one from the
fitted model (conditioning.py). As in dbt's tests, a rule whose predicate is NULL holds.

`synth.rules` is a list of one-key entries:

    - not_null: status
    - accepted_values: {column: status, values: [current, late]}
    - accepted_range: {column: rate, min_value: 0, max_value: 1, inclusive: true}
    - expression: paid_total >= paid_principal
    - compare: {column_a: paid_total, operator: ">=", column_b: paid_principal}

Any entry may add `where: <sql predicate>` (a dbt test's `where` config): the rule then holds
only on rows where that predicate is true, e.g.
`{not_null: paid_late_fees, where: "loan_status = 'Late'"}`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import sqlglot
from sqlglot import exp

from dbt_synth.errors import ConfigError

COMPARISONS = ("<", "<=", ">", ">=", "=", "<>")
# The optional key of a rule entry that limits it to some rows, as dbt's `where` test config.
WHERE = "where"


class RuleKind(Enum):
    NOT_NULL = "not_null"
    ACCEPTED_VALUES = "accepted_values"
    ACCEPTED_RANGE = "accepted_range"
    EXPRESSION = "expression"
    COMPARE = "compare"


@dataclass(frozen=True)
class Rule:
    """One row-level predicate, as DuckDB SQL over the twin's column names.

    `null_holds`: whether a NULL predicate counts as met (dbt's tests: yes; a `condition`: no).
    """

    kind: RuleKind
    predicate: str
    columns: tuple[str, ...]
    label: str
    null_holds: bool = True


def parse_rules(raw: Any, model: str | None = None) -> tuple[Rule, ...]:
    """Validate `synth.rules`; every problem is one ConfigError naming the entry and a fix."""
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise ConfigError(
            "synth.rules must be a list of rules",
            fix="write rules: [{expression: 'paid_total >= paid_principal'}]",
            model=model,
        )
    return tuple(_rule(entry, model) for entry in raw)


def predicate(text: Any, *, label: str, model: str | None, null_holds: bool) -> Rule:
    """A free SQL predicate (an `expression` rule or `synth.condition`), parsed with sqlglot."""
    if not isinstance(text, str) or not text.strip():
        raise ConfigError(
            f"{label} must be a SQL predicate, got {text!r}",
            fix="write e.g. 'paid_total >= paid_principal'",
            model=model,
        )
    try:
        tree = sqlglot.parse_one(text)
    except sqlglot.errors.ParseError as error:
        raise ConfigError(
            f"{label} '{text}' is not valid SQL: {str(error).splitlines()[0]}",
            fix="write a row-level predicate such as 'a >= b'",
            model=model,
        ) from None
    if tree.find(exp.AggFunc, exp.Select, exp.Window) is not None:
        raise ConfigError(
            f"{label} '{text}' is not a row-level predicate",
            fix="use only the row's own columns: no aggregate, window or subquery",
            model=model,
        )
    columns = tuple(dict.fromkeys(c.name for c in tree.find_all(exp.Column)))
    kind = RuleKind.EXPRESSION
    return Rule(kind, tree.sql(dialect="duckdb"), columns, f"{label}: {text}", null_holds)


def _rule(entry: Any, model: str | None) -> Rule:
    if not isinstance(entry, dict) or len(set(entry) - {WHERE}) != 1:
        raise ConfigError(
            f"each synth.rules entry must be a mapping with one rule key (and an optional "
            f"where), got {entry!r}",
            fix=f"use one of {[k.value for k in RuleKind]}, e.g. {{not_null: status}}",
            model=model,
        )
    ((key, value),) = [(k, v) for k, v in entry.items() if k != WHERE]
    rule = _bare_rule(key, value, model)
    if WHERE not in entry:
        return rule
    # As dbt's `where` config: the test sees only the rows where the condition is true.
    where = predicate(entry[WHERE], label="where", model=model, null_holds=True)
    return Rule(
        rule.kind,
        f"NOT coalesce(({where.predicate}), false) OR ({rule.predicate})",
        tuple(dict.fromkeys(rule.columns + where.columns)),
        f"{rule.label} where {entry[WHERE]}",
        rule.null_holds,
    )


def _bare_rule(key: Any, value: Any, model: str | None) -> Rule:
    try:
        kind = RuleKind(key)
    except ValueError:
        raise ConfigError(
            f"unknown rule '{key}'",
            fix=f"use one of {[k.value for k in RuleKind]}",
            model=model,
        ) from None
    if kind is RuleKind.EXPRESSION:
        return predicate(value, label="expression", model=model, null_holds=True)
    if kind is RuleKind.NOT_NULL:
        column = _name(value, kind, model)
        return Rule(kind, f"{ident(column)} IS NOT NULL", (column,), f"not_null: {column}")
    args = value if isinstance(value, dict) else {}
    if kind is RuleKind.COMPARE:
        a, b = _name(args.get("column_a"), kind, model), _name(args.get("column_b"), kind, model)
        operator = args.get("operator")
        if operator not in COMPARISONS:
            raise ConfigError(
                f"compare operator {operator!r} is not one of {list(COMPARISONS)}",
                fix="set operator to e.g. '>='",
                model=model,
                column=a,
            )
        return Rule(kind, f"{ident(a)} {operator} {ident(b)}", (a, b), f"{a} {operator} {b}")
    column = _name(args.get("column"), kind, model)
    if kind is RuleKind.ACCEPTED_VALUES:
        values = args.get("values")
        if not isinstance(values, list) or not values:
            raise ConfigError(
                "accepted_values needs a non-empty list of values",
                fix="write {column: c, values: [a, b]}",
                model=model,
                column=column,
            )
        listed = ", ".join(exp.convert(v).sql(dialect="duckdb") for v in values)
        sql = f"{ident(column)} IN ({listed})"
        return Rule(kind, sql, (column,), f"accepted_values: {column}")
    low, high = args.get("min_value"), args.get("max_value")
    if (low is None and high is None) or not all(
        _is_number(v) for v in (low, high) if v is not None
    ):
        raise ConfigError(
            "accepted_range needs a numeric min_value, max_value or both",
            fix="write {column: c, min_value: 0, max_value: 100}",
            model=model,
            column=column,
        )
    strict = args.get("inclusive", True) is False
    parts = [
        f"{ident(column)} {op} {bound}"
        for op, bound in ((">" if strict else ">=", low), ("<" if strict else "<=", high))
        if bound is not None
    ]
    return Rule(kind, " AND ".join(parts), (column,), f"accepted_range: {column}")


@dataclass(frozen=True)
class Rebalance:
    """Shares of a column's values in the twin (the rest keeps the model's proportions)."""

    column: str
    shares: tuple[tuple[Any, float], ...]

    @classmethod
    def parse(cls, raw: Any, model: str | None = None) -> Rebalance | None:
        if raw is None:
            return None
        shares = raw.get("shares") if isinstance(raw, dict) else None
        column = raw.get("column") if isinstance(raw, dict) else None
        fix = "write rebalance: {column: loan_status, shares: {Charged Off: 0.3}}"
        if not isinstance(column, str) or not isinstance(shares, dict) or not shares:
            raise ConfigError(
                f"rebalance must name a column and its shares, got {raw!r}", fix=fix, model=model
            )
        bad = [v for v in shares.values() if not isinstance(v, int | float) or not 0 < v <= 1]
        if bad or sum(shares.values()) > 1 + 1e-9:
            raise ConfigError(
                f"rebalance shares must be in (0, 1] and sum to at most 1, got {shares}",
                fix=fix,
                model=model,
                column=column,
            )
        return cls(column, tuple((k, float(v)) for k, v in shares.items()))


def _name(value: Any, kind: RuleKind, model: str | None) -> str:
    if not isinstance(value, str) or not value:
        raise ConfigError(
            f"rule {kind.value} needs a column name, got {value!r}",
            fix="name a column of the source",
            model=model,
        )
    return value


def ident(column: str) -> str:
    """A column name as a quoted DuckDB identifier."""
    return exp.column(column, quoted=True).sql(dialect="duckdb")


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def broken(batch: pa.RecordBatch | pa.Table, rules: Sequence[Rule]) -> np.ndarray:
    """(rules, rows) booleans: where each rule is broken. Evaluated by DuckDB on the batch."""
    if not rules or batch.num_rows == 0:
        return np.zeros((len(rules), batch.num_rows), dtype=bool)
    table = pa.Table.from_batches([batch]) if isinstance(batch, pa.RecordBatch) else batch
    tests = ", ".join(
        f"coalesce(NOT ({r.predicate}), {'false' if r.null_holds else 'true'}) AS r{i}"
        for i, r in enumerate(rules)
    )
    with duckdb.connect() as con:
        con.register("twin_rows", table)
        result = con.execute(f"SELECT {tests} FROM twin_rows").fetchnumpy()
    return np.vstack([np.asarray(result[f"r{i}"], dtype=bool) for i in range(len(rules))])
