"""Ordered columns on a numeric axis and back: dates in days, timestamps and times in seconds.

The generator works on float64 axes; this module is the only place that knows how each warehouse
type maps onto one, and how a sampled axis value becomes a value of the source's type again.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from dbt_synth.domains.numeric import SPECIALS
from dbt_synth.errors import ConfigError
from dbt_synth.schema import ColumnKind, ColumnSpec

_NULL, _NAN, _POS_INF, _NEG_INF = (SPECIALS.index(s) for s in ("null", "nan", "+inf", "-inf"))
_MICROS = 1_000_000.0
# Calendar types: 0001-01-01 to 9999-12-31, the range every warehouse we write to (and Python)
# can hold, in days and in seconds since 1970-01-01.
_FIRST_DAY, _LAST_DAY = -719_162.0, 2_932_896.0
_DAY_SECONDS = 86_400.0
# A float type's range would overflow the arithmetic of any model downstream; ±2^53 (the
# integers a double holds exactly) is the widest range that sums and averages stay finite on.
_FLOAT_RANGE = (-(2.0**53), 2.0**53)
_CALENDAR = (ColumnKind.DATE, ColumnKind.TIMESTAMP, ColumnKind.TIMESTAMPTZ)


def to_axis(array: pa.Array | pa.ChunkedArray, spec: ColumnSpec) -> tuple[np.ndarray, np.ndarray]:
    """Axis values and special states (index into SPECIALS, -1 for an ordinary value)."""
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    kind = spec.kind
    is_null = array.is_null().to_numpy(zero_copy_only=False)
    if kind is ColumnKind.DATE:
        values = array.cast(pa.date32()).cast(pa.int32()).fill_null(0).to_numpy().astype(float)
    elif kind in (ColumnKind.TIMESTAMP, ColumnKind.TIMESTAMPTZ):
        micros = array.cast(pa.timestamp("us", tz=array.type.tz)).cast(pa.int64())
        values = micros.fill_null(0).to_numpy().astype(float) / _MICROS
    elif kind is ColumnKind.TIME:
        micros = array.cast(pa.time64("us")).cast(pa.int64())
        values = micros.fill_null(0).to_numpy().astype(float) / _MICROS
    else:
        values = pc.cast(array, pa.float64()).fill_null(0.0).to_numpy(zero_copy_only=False)
        values = np.array(values, dtype=np.float64)
    states = np.full(len(values), -1, dtype=np.int8)
    states[np.isnan(values)] = _NAN
    states[values == np.inf] = _POS_INF
    states[values == -np.inf] = _NEG_INF
    states[is_null] = _NULL
    values = np.where(states < 0, values, 0.0)
    return values, states


def from_axis(values: np.ndarray, states: np.ndarray, spec: ColumnSpec) -> pa.Array:
    """An Arrow array that casts losslessly to `spec.sql_type`."""
    kind = spec.kind
    null = states == _NULL
    if spec.value_range is not None:
        values = np.clip(values, *spec.value_range)
    if kind is ColumnKind.FLOAT:
        out = values.astype(np.float64).copy()
        out[states == _NAN] = np.nan
        out[states == _POS_INF] = np.inf
        out[states == _NEG_INF] = -np.inf
        return pa.array(out, mask=null)
    if kind is ColumnKind.INTEGER:
        # Integers beyond 2^53 lose digits in the float axis; int64 covers every signed type.
        rounded = np.clip(np.round(values), -(2.0**63), 2.0**63 - 1024)
        return pa.array(rounded.astype(np.int64), mask=null)
    if kind is ColumnKind.DECIMAL:
        return pa.array(np.round(values, spec.decimal_scale or 0), mask=null)
    if kind is ColumnKind.DATE:
        days = np.round(values).astype(np.int32)
        return pa.array(days, mask=null).cast(pa.date32())
    if kind in (ColumnKind.TIMESTAMP, ColumnKind.TIMESTAMPTZ):
        micros = np.round(values * _MICROS).astype(np.int64)
        tz = "UTC" if kind is ColumnKind.TIMESTAMPTZ else None
        return pa.array(micros, mask=null).cast(pa.timestamp("us", tz=tz))
    if kind is ColumnKind.TIME:
        micros = np.clip(np.round(values * _MICROS), 0, 86_400 * _MICROS - 1).astype(np.int64)
        return pa.array(micros, mask=null).cast(pa.time64("us"))
    raise ValueError(f"{kind} is not an ordered kind")


def axis_bound(value: Any, spec: ColumnSpec) -> float:
    """A declared public `min`/`max` on the column's axis.

    Numbers are taken as they are; a DATE, TIMESTAMP or TIME column also takes an ISO string
    (`2016-12-31`, `2016-12-31 23:59:59`, `08:30`) or the date YAML parses one into.
    """
    try:
        if isinstance(value, str) and spec.kind is ColumnKind.TIME:
            value = dt.time.fromisoformat(value)
        elif isinstance(value, str) and spec.kind in _CALENDAR:
            value = dt.datetime.fromisoformat(value)
        elif isinstance(value, str):
            value = float(value)
        if isinstance(value, dt.datetime) and spec.kind is ColumnKind.DATE:
            value = value.date()
        if isinstance(value, int | float):
            return float(value)
        return float(to_axis(pa.array([value]), spec)[0][0])
    except (ValueError, TypeError, pa.ArrowException):
        raise ConfigError(
            f"public bound {value!r} is not a value of type {spec.sql_type}",
            fix="write min/max as numbers, or as ISO dates/times ('2016-12-31') for dates and "
            "timestamps",
            column=spec.name,
        ) from None


def type_range(spec: ColumnSpec) -> tuple[float, float]:
    """The axis range a column of this type can hold, known without looking at any data.

    It is the public fallback of a DP numeric domain that resolved nothing (a small table at a
    small ε): the twin then draws from the whole range rather than failing.
    """
    kind = spec.kind
    if kind is ColumnKind.DATE:
        return _FIRST_DAY, _LAST_DAY
    if kind in (ColumnKind.TIMESTAMP, ColumnKind.TIMESTAMPTZ):
        return _FIRST_DAY * _DAY_SECONDS, (_LAST_DAY + 1) * _DAY_SECONDS - 1
    if kind is ColumnKind.TIME:
        return 0.0, _DAY_SECONDS - 1
    return spec.value_range or _FLOAT_RANGE


def is_integral(spec: ColumnSpec) -> bool:
    """Kinds whose axis holds whole numbers only."""
    return spec.kind in (ColumnKind.INTEGER, ColumnKind.DATE) or (
        spec.kind is ColumnKind.DECIMAL and spec.decimal_scale == 0
    )
