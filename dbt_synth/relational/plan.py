"""How each foreign key of a child twin is twinned: a `KeyPlan` per key, decided before any fit.

Keys are planned widest first; a key whose columns a wider one covers is implied
(flights.origin by (origin, time_hour) → weather) and only checked.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from dbt_synth.errors import ConfigError
from dbt_synth.relational.keys import ForeignKey, KeyMode


@dataclass(frozen=True)
class ParentData:
    """A parent as the child sees it: its twin (keys to draw), its source (attributes to learn)."""

    twin: pa.Table
    source: pa.Table | None = None


@dataclass(frozen=True)
class KeyPlan:
    """One foreign key, its resolved mode (never AUTO) and the parent attributes it learns."""

    key: ForeignKey
    mode: KeyMode
    attributes: tuple[str, ...] = ()


def plan_keys(
    keys: tuple[ForeignKey, ...], parents: dict[str, ParentData], model: str
) -> tuple[KeyPlan, ...]:
    """A plan per key, widest first."""
    plans = []
    covered: set[str] = set()
    for key in sorted(keys, key=lambda k: -len(k.columns)):
        parent = _parent_of(key, parents, model)
        overlap = covered & set(key.columns)
        if overlap == set(key.columns):
            plans.append(KeyPlan(key, KeyMode.IMPLIED))
            continue
        if overlap:
            raise ConfigError(
                f"foreign key {list(key.columns)} shares only {sorted(overlap)} with a wider key",
                fix="declare the narrower key's parent as the parent of the wider key's parent "
                "twin (like weather.origin → airports) and drop the partial overlap",
                model=model,
                column=key.columns[0],
            )
        covered |= set(key.columns)
        attributes = _attributes(key, parent, model)
        mode = key.mode
        if mode is KeyMode.AUTO:
            single = not attributes and len(key.columns) == 1
            mode = KeyMode.CATEGORY if single else KeyMode.ATTRIBUTES
        if mode is KeyMode.CATEGORY and len(key.columns) != 1:
            raise ConfigError(
                "category mode needs a single-column foreign key",
                fix="use mode: attributes for composite keys",
                model=model,
                column=key.columns[0],
            )
        plans.append(KeyPlan(key, mode, attributes))
    return tuple(plans)


def _parent_of(key: ForeignKey, parents: dict[str, ParentData], model: str) -> ParentData:
    if key.parent not in parents:
        raise ConfigError(
            f"foreign key {list(key.columns)} references '{key.parent}', which this model "
            f"does not ref",
            fix=f"pass parents={{'{key.parent}': (dbt.ref('{key.parent}'), dbt.source(...))}} "
            "to dbt_synth.child_twin so dbt builds the parent twin first",
            model=model,
            column=key.columns[0],
        )
    parent = parents[key.parent]
    for column in key.parent_columns:
        if column not in parent.twin.column_names:
            raise ConfigError(
                f"parent twin '{key.parent}' has no column '{column}'",
                fix=f"set parent_columns to some of {parent.twin.column_names}",
                model=model,
                column=key.columns[0],
            )
    return parent


def _attributes(key: ForeignKey, parent: ParentData, model: str) -> tuple[str, ...]:
    if parent.source is None:
        if key.attributes:
            raise ConfigError(
                f"attributes {list(key.attributes)} of '{key.parent}' need its source",
                fix=f"pass parents={{'{key.parent}': (dbt.ref('{key.parent}'), "
                "dbt.source('raw', '...'))}",
                model=model,
                column=key.columns[0],
            )
        return ()
    shared = [
        c
        for c in parent.source.column_names
        if c in parent.twin.column_names and c not in key.parent_columns
    ]
    if key.attributes is None:
        # Default: every non-key parent column both tables hold, except free text/ids.
        return tuple(c for c in shared if _is_attribute(parent.source.column(c)))
    for name in key.attributes:
        if name not in shared:
            raise ConfigError(
                f"attribute '{name}' is not a column of both '{key.parent}' and its source",
                fix=f"use some of {shared}",
                model=model,
                column=key.columns[0],
            )
    return key.attributes


def _is_attribute(array: pa.ChunkedArray) -> bool:
    """Strings with nearly one value per row (names) carry no learnable dependency."""
    if pa.types.is_string(array.type) or pa.types.is_large_string(array.type):
        return pc.count_distinct(array).as_py() <= max(0.5 * len(array), 1)
    return True
