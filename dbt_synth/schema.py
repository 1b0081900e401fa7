"""Column specs read from the warehouse: what each source column is, as the generator sees it.

Types are read from the warehouse (never inferred from values) and classified with sqlglot, so
the same code serves every dialect whose type names sqlglot parses. The warehouse type string is
kept verbatim: the twin is cast back to exactly that type.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import pyarrow as pa
import sqlglot
from sqlglot import exp


class ColumnKind(enum.Enum):
    """How the generator models a column."""

    INTEGER = "integer"
    FLOAT = "float"
    DECIMAL = "decimal"
    BOOLEAN = "boolean"
    STRING = "string"
    DATE = "date"
    TIMESTAMP = "timestamp"
    TIMESTAMPTZ = "timestamptz"
    TIME = "time"
    UUID = "uuid"
    UNSUPPORTED = "unsupported"


_T = exp.DataType.Type
_KIND_BY_TYPE: dict[exp.DataType.Type, ColumnKind] = {
    **{
        t: ColumnKind.INTEGER
        for t in (
            _T.TINYINT,
            _T.SMALLINT,
            _T.MEDIUMINT,
            _T.INT,
            _T.BIGINT,
            _T.INT128,
            _T.INT256,
            _T.UTINYINT,
            _T.USMALLINT,
            _T.UMEDIUMINT,
            _T.UINT,
            _T.UBIGINT,
            _T.UINT128,
            _T.UINT256,
            _T.SERIAL,
            _T.SMALLSERIAL,
            _T.BIGSERIAL,
        )
    },
    _T.FLOAT: ColumnKind.FLOAT,
    _T.DOUBLE: ColumnKind.FLOAT,
    _T.DECIMAL: ColumnKind.DECIMAL,
    _T.BIGDECIMAL: ColumnKind.DECIMAL,
    _T.BOOLEAN: ColumnKind.BOOLEAN,
    **{
        t: ColumnKind.STRING
        for t in (_T.TEXT, _T.VARCHAR, _T.NVARCHAR, _T.CHAR, _T.NCHAR, _T.BPCHAR, _T.ENUM, _T.NAME)
    },
    _T.DATE: ColumnKind.DATE,
    _T.DATE32: ColumnKind.DATE,
    **{
        t: ColumnKind.TIMESTAMP
        for t in (
            _T.TIMESTAMP,
            _T.TIMESTAMPNTZ,
            _T.DATETIME,
            _T.TIMESTAMP_S,
            _T.TIMESTAMP_MS,
            _T.TIMESTAMP_NS,
        )
    },
    _T.TIMESTAMPTZ: ColumnKind.TIMESTAMPTZ,
    _T.TIMESTAMPLTZ: ColumnKind.TIMESTAMPTZ,
    _T.TIME: ColumnKind.TIME,
    _T.UUID: ColumnKind.UUID,
}


# Representable ranges, so a sampled value never overflows the cast back to the source type.
_INTEGER_RANGES: dict[exp.DataType.Type, tuple[float, float]] = {
    _T.TINYINT: (-(2.0**7), 2.0**7 - 1),
    _T.SMALLINT: (-(2.0**15), 2.0**15 - 1),
    _T.MEDIUMINT: (-(2.0**23), 2.0**23 - 1),
    _T.INT: (-(2.0**31), 2.0**31 - 1),
    _T.SERIAL: (1.0, 2.0**31 - 1),
    _T.SMALLSERIAL: (1.0, 2.0**15 - 1),
    _T.BIGINT: (-(2.0**63), 2.0**63 - 1024),
    _T.BIGSERIAL: (1.0, 2.0**63 - 1024),
    _T.UTINYINT: (0.0, 2.0**8 - 1),
    _T.USMALLINT: (0.0, 2.0**16 - 1),
    _T.UMEDIUMINT: (0.0, 2.0**24 - 1),
    _T.UINT: (0.0, 2.0**32 - 1),
    _T.UBIGINT: (0.0, 2.0**64 - 2048),
}


@dataclass(frozen=True)
class ColumnSpec:
    """One source column: its name, the warehouse type to cast back to, and how to model it.

    `value_range` bounds what the type can hold (integers, decimals); sampled values are clipped
    to it so the twin always casts back.
    """

    name: str
    sql_type: str
    kind: ColumnKind
    nullable: bool = True
    enum_values: tuple[str, ...] | None = None
    decimal_scale: int | None = None
    value_range: tuple[float, float] | None = None


@dataclass(frozen=True)
class TableSchema:
    """The source table's columns, in order."""

    table: str
    columns: tuple[ColumnSpec, ...]

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    def column(self, name: str) -> ColumnSpec:
        for spec in self.columns:
            if spec.name == name:
                return spec
        raise KeyError(name)


def column_spec(name: str, sql_type: str, *, nullable: bool = True, dialect: str = "duckdb"):
    """Classify one warehouse column type; unknown types become UNSUPPORTED, never a guess."""
    try:
        parsed = exp.DataType.build(sql_type, dialect=dialect)
    except (sqlglot.errors.ParseError, ValueError):
        return ColumnSpec(name, sql_type, ColumnKind.UNSUPPORTED, nullable)
    kind = _KIND_BY_TYPE.get(parsed.this, ColumnKind.UNSUPPORTED)
    enum_values = None
    if parsed.this == _T.ENUM:
        enum_values = tuple(e.name for e in parsed.expressions)
    scale = None
    value_range = _INTEGER_RANGES.get(parsed.this)
    if kind is ColumnKind.DECIMAL:
        params = [int(p.this.name) for p in parsed.expressions if isinstance(p, exp.DataTypeParam)]
        precision = params[0] if params else 18
        scale = params[1] if len(params) > 1 else 0
        largest = 10.0 ** (precision - scale) - 10.0**-scale
        value_range = (-largest, largest)
    return ColumnSpec(name, sql_type, kind, nullable, enum_values, scale, value_range)


def schema_of_arrow(arrow_schema: pa.Schema, table: str = "source") -> TableSchema:
    """Warehouse types of in-memory (Arrow) columns, named as DuckDB would store them; for the
    Python API, where no warehouse holds the table."""
    columns = tuple(column_spec(f.name, arrow_sql_type(f.type)) for f in arrow_schema)
    return TableSchema(table, columns)


_ARROW_SIMPLE: dict[pa.DataType, str] = {
    pa.null(): '"NULL"',
    pa.bool_(): "BOOLEAN",
    pa.int8(): "TINYINT",
    pa.int16(): "SMALLINT",
    pa.int32(): "INTEGER",
    pa.int64(): "BIGINT",
    pa.uint8(): "UTINYINT",
    pa.uint16(): "USMALLINT",
    pa.uint32(): "UINTEGER",
    pa.uint64(): "UBIGINT",
    pa.float32(): "FLOAT",
    pa.float64(): "DOUBLE",
    pa.string(): "VARCHAR",
    pa.large_string(): "VARCHAR",
    pa.string_view(): "VARCHAR",
    pa.binary(): "BLOB",
    pa.large_binary(): "BLOB",
    pa.date32(): "DATE",
    pa.date64(): "DATE",
    pa.time64("ns"): "TIME_NS",
    pa.month_day_nano_interval(): "INTERVAL",
}
_TIMESTAMP_UNITS = {
    "s": "TIMESTAMP_S",
    "ms": "TIMESTAMP_MS",
    "us": "TIMESTAMP",
    "ns": "TIMESTAMP_NS",
}


def arrow_sql_type(arrow_type: pa.DataType) -> str:
    """DuckDB's name for an Arrow type; a type DuckDB cannot read keeps its Arrow name (and so
    is UNSUPPORTED to `column_spec`)."""
    if pa.types.is_dictionary(arrow_type):
        return arrow_sql_type(arrow_type.value_type)
    if arrow_type in _ARROW_SIMPLE:
        return _ARROW_SIMPLE[arrow_type]
    if pa.types.is_time(arrow_type):
        return "TIME"
    if pa.types.is_timestamp(arrow_type):
        if arrow_type.tz is None:
            return _TIMESTAMP_UNITS[arrow_type.unit]
        return "TIMESTAMPTZ_NS" if arrow_type.unit == "ns" else "TIMESTAMP WITH TIME ZONE"
    if pa.types.is_decimal128(arrow_type):
        return f"DECIMAL({arrow_type.precision},{arrow_type.scale})"
    if pa.types.is_duration(arrow_type):
        return "INTERVAL"
    if pa.types.is_list(arrow_type) or pa.types.is_large_list(arrow_type):
        return f"{arrow_sql_type(arrow_type.value_type)}[]"
    if pa.types.is_map(arrow_type):
        return f"MAP({arrow_sql_type(arrow_type.key_type)}, {arrow_sql_type(arrow_type.item_type)})"
    if pa.types.is_struct(arrow_type):
        fields = ", ".join(f"{f.name} {arrow_sql_type(f.type)}" for f in arrow_type)
        return f"STRUCT({fields})"
    return str(arrow_type)
