"""The project's data tests that are row-level rules, as `synth.rules` entries (rules.py).

`dbt-synth init` writes these entries into a twin's config, read from the tests on its original
and, through column lineage (lineage.py), from the tests on the models built from it: a
`not_null` on `stg_loans.status`, where the staging model renames the seed's `loan_status`,
becomes `{not_null: loan_status}` on the seed's twin.

Which tests are rules: `not_null`, `accepted_values`, `accepted_range` (dbt_utils), a row-level
`expression_is_true` (dbt_utils, parsed with sqlglot) and a column-pair comparison
(`expect_column_pair_values_A_to_be_greater_than_B`, dbt_expectations). `unique` is not a row
rule: a unique column becomes the twin's primary key (cli/candidates.py). A test's `where`
config is kept: the rule then holds only on the rows it selects.

A downstream rule is carried back only when every column it names (its `where` included) traces
along a pure path that keeps every row (lineage._Graph.trace: no filter, grouping or computed
value on the way) to the same twinned table; otherwise it says nothing certain about that table
and is left where it is.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import sqlglot
from sqlglot import exp

from dbt_synth.errors import ConfigError
from dbt_synth.manifest_nodes import display_name, test_owner
from dbt_synth.rules import WHERE, parse_rules

# The entry keys that hold column names, by rule kind (an `expression` is SQL, renamed apart).
_COLUMN_FIELDS = {
    "accepted_values": ("column",),
    "accepted_range": ("column",),
    "compare": ("column_a", "column_b"),
}


@dataclass(frozen=True)
class TracedRule:
    """A rule read from a test on `origin`, spelt in the columns of the twinned `node`."""

    node: str
    entry: dict[str, Any]
    origin: str


class _Hop(Protocol):
    node: str
    column: str
    keeps_rows: bool


def test_where(node: Any) -> str | None:
    """The `where` config of a test node (dbt applies the test to those rows only)."""
    where = getattr(getattr(node, "config", None), "where", None)
    return where if isinstance(where, str) and where.strip() else None


def rule_entry(node: Any) -> dict[str, Any] | None:
    """The `synth.rules` entry of one test node, or None for a test that is not a row rule."""
    metadata = getattr(node, "test_metadata", None)
    if metadata is None:
        return None
    name, kwargs, column = metadata.name, metadata.kwargs or {}, node.column_name
    entry: dict[str, Any] | None = None
    if name == "not_null" and column:
        entry = {"not_null": column}
    elif name == "accepted_values" and column and isinstance(kwargs.get("values"), list):
        entry = {"accepted_values": {"column": column, "values": list(kwargs["values"])}}
    elif name == "accepted_range" and column:
        bounds = {k: kwargs[k] for k in ("min_value", "max_value", "inclusive") if k in kwargs}
        entry = {"accepted_range": {"column": column, **bounds}}
    elif name == "expression_is_true" and isinstance(kwargs.get("expression"), str):
        expression = kwargs["expression"]
        entry = {"expression": f"{column} {expression}" if column else expression}
    elif name == "expect_column_pair_values_A_to_be_greater_than_B":
        operator = ">=" if kwargs.get("or_equal") else ">"
        a, b = kwargs.get("column_A"), kwargs.get("column_B")
        entry = {"compare": {"column_a": a, "operator": operator, "column_b": b}}
    if entry is not None and (where := test_where(node)) is not None:
        entry[WHERE] = where
    return entry


def entry_columns(entry: dict[str, Any]) -> tuple[str, ...] | None:
    """Every column an entry names (its `where` included), or None if it is not a valid rule."""
    try:
        (rule,) = parse_rules([entry])
    except ConfigError:
        return None
    return rule.columns


def renamed(entry: dict[str, Any], names: Mapping[str, str]) -> dict[str, Any]:
    """The entry with each column `c` written `names[c.lower()]`."""
    out: dict[str, Any] = {}
    for key, value in entry.items():
        if key in ("expression", WHERE):
            out[key] = _renamed_sql(value, names)
        elif key == "not_null":
            out[key] = names[value.lower()]
        else:
            fields = _COLUMN_FIELDS[key]
            out[key] = {k: names[v.lower()] if k in fields else v for k, v in value.items()}
    return out


def _renamed_sql(sql: str, names: Mapping[str, str]) -> str:
    def rename(node: exp.Expr) -> exp.Expr:
        if isinstance(node, exp.Column) and node.name.lower() in names:
            return exp.column(names[node.name.lower()])
        return node

    return sqlglot.parse_one(sql).transform(rename).sql()


def traced_rules(manifest: Any, trace: Callable[[str, str], _Hop | None]) -> list[TracedRule]:
    """Every rule test of the project whose columns all trace, keeping rows, to one twinned
    table, spelt in that table's columns (`trace` is lineage's: node, column → hop or None)."""
    rules = []
    for test in manifest.nodes.values():
        if test.resource_type != "test" or (entry := rule_entry(test)) is None:
            continue
        owner, columns = test_owner(manifest, test), entry_columns(entry)
        if owner is None or not columns:
            continue
        hops = {column.lower(): trace(owner, column) for column in columns}
        ends = {(hop.node if hop else None) for hop in hops.values()}
        if None in ends or len(ends) != 1 or not all(h.keeps_rows for h in hops.values() if h):
            continue
        names = {column: hop.column for column, hop in hops.items() if hop}
        origin = f"{display_name(manifest, owner)}: {test.name}"
        rules.append(TracedRule(ends.pop(), renamed(entry, names), origin))
    return rules
