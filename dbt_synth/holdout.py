"""Which source rows a twin never sees: a holdout split fixed by a hash of the row's key.

A twin fit on the train split only can be checked for memorisation: its rows must not be closer
to train rows than to held-out rows (the `near_duplicate_leakage` generic test). The split must
therefore be recomputable anywhere, with no state: a row is held out when the first 32 bits of
md5 of its canonical text, read as a fraction of 2^32, are below `share`. The text is the key
columns' values (the twin's `primary_key`) or, without a key, the whole row, each value written
the same way in Python, DuckDB and Postgres (`macros/utils/row_text.sql` is the SQL twin):

- NULL → `\\N`; booleans → `true`/`false`; integers → decimal digits;
- other numbers → rounded half away from zero to 6 decimals, e.g. `354.940000`;
- dates → `YYYY-MM-DD`; timestamps → `YYYY-MM-DD HH:MM:SS[.ffffff]` without trailing zeros;
- text → itself; values joined by `|`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from dbt_synth.errors import ConfigError
from dbt_synth.schema import ColumnKind, ColumnSpec, TableSchema

NULL_TEXT = "\\N"
SEPARATOR = "|"
_SIX_PLACES = Decimal("0.000001")
_EXACT_KINDS = frozenset({ColumnKind.INTEGER})
_ROUNDED_KINDS = frozenset({ColumnKind.FLOAT, ColumnKind.DECIMAL})


@dataclass(frozen=True)
class HoldoutRule:
    """The split as recorded in the ledger: share held out and the columns hashed."""

    share: float
    key: tuple[str, ...]

    def describe(self) -> dict[str, Any]:
        return {
            "share": self.share,
            "key": list(self.key) or "whole row",
            "rule": "held out iff int(md5(row_text(key))[:8], 16) / 2^32 < share",
        }


def rule_for(schema: TableSchema, share: float, key: Sequence[str] = ()) -> HoldoutRule:
    """The holdout rule of a twin; the key must name source columns."""
    missing = [name for name in key if name not in schema.names]
    if missing:
        raise ConfigError(
            f"holdout key column(s) {missing} are not in source '{schema.table}'",
            fix=f"set primary_key to columns of {schema.names}",
        )
    return HoldoutRule(share=share, key=tuple(key))


def hash_fraction(text: str) -> float:
    """A number in [0, 1): the first 8 hex digits of md5(text) over 2^32."""
    return int(hashlib.md5(text.encode("utf-8")).hexdigest()[:8], 16) / 2**32


def value_text(value: Any, kind: ColumnKind) -> str:
    """One value's canonical text (see the module docstring)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return NULL_TEXT
    if kind is ColumnKind.BOOLEAN:
        return "true" if value else "false"
    if kind in _EXACT_KINDS:
        return str(int(value))
    if kind in _ROUNDED_KINDS:
        exact = value if isinstance(value, Decimal) else Decimal(float(value))
        return str(exact.quantize(_SIX_PLACES, rounding=ROUND_HALF_UP) + 0)
    if isinstance(value, dt.datetime | dt.time):
        text = value.isoformat(sep=" ") if isinstance(value, dt.datetime) else value.isoformat()
        return text.rstrip("0").rstrip(".") if "." in text else text
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


def row_text(values: Sequence[Any], kinds: Sequence[ColumnKind]) -> str:
    return SEPARATOR.join(value_text(v, k) for v, k in zip(values, kinds, strict=True))


def is_held_out(values: Sequence[Any], kinds: Sequence[ColumnKind], share: float) -> bool:
    return hash_fraction(row_text(values, kinds)) < share


def train_filter_sql(schema: TableSchema, rule: HoldoutRule, dialect: str = "duckdb") -> str:
    """A predicate true for the train rows (the rows the twin is fit on), in DuckDB's SQL or,
    with `dialect="spark"`, Spark's (which reads hex through conv() and a backslash in a
    literal as an escape)."""
    spark = dialect == "spark"
    columns = [schema.column(n) for n in rule.key] if rule.key else list(schema.columns)
    text = " || '|' || ".join(_sql_text(c, spark) for c in columns)
    head = f"substr(md5({text}), 1, 8)"
    number = (
        f"cast(conv({head}, 16, 10) as bigint)" if spark else f"cast('0x' || {head} as ubigint)"
    )
    return f"{number} / 4294967296.0 >= {rule.share!r}"


def _sql_text(column: ColumnSpec, spark: bool) -> str:
    name = (
        "`" + column.name.replace("`", "``") + "`"
        if spark
        else '"' + column.name.replace('"', '""') + '"'
    )
    text_type = "string" if spark else "varchar"
    if column.kind is ColumnKind.BOOLEAN:
        rendered = f"case when {name} then 'true' else 'false' end"
    elif column.kind in _ROUNDED_KINDS:
        rendered = f"cast(cast({name} as decimal(38, 6)) as {text_type})"
    else:
        rendered = f"cast({name} as {text_type})"
    null_text = "chr(92) || 'N'" if spark else "'\\N'"
    return f"coalesce({rendered}, {null_text})"
