"""Foreign keys: the one `ForeignKey` type, `ref()` parsing, and the checks on a twin's keys.

A foreign key is declared in `synth.foreign_keys` or found in a `relationships` test (see
`manifest.py`); `init` reads the same tests on the originals. Composite keys are tuples of
column names throughout; `label` only names a key in messages and reports.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from enum import Enum
from typing import Any

from dbt_synth.errors import ConfigError

# THE parser of dbt's table calls: `source('s', 't')`, `ref('m')` and `ref('package', 'm')`.
_CALL = re.compile(
    r"""source\(\s*['"](?P<source>[^'"]+)['"]\s*,\s*['"](?P<table>[^'"]+)['"]\s*\)"""
    r"""|ref\(\s*(?:['"][^'"]+['"]\s*,\s*)?['"](?P<model>[^'"]+)['"]\s*\)"""
)
_KEY_SETTINGS = ("columns", "parent", "parent_columns", "attributes", "mode")


class KeyMode(Enum):
    """How a foreign key is twinned (see `child.py`); IMPLIED is decided, never configured."""

    AUTO = "auto"
    ATTRIBUTES = "attributes"
    CATEGORY = "category"
    IMPLIED = "implied"


CONFIGURABLE_MODES = (KeyMode.AUTO, KeyMode.ATTRIBUTES, KeyMode.CATEGORY)


class KeyOrigin(Enum):
    """Where a key was declared: configured keys win over discovered ones."""

    CONFIG = "config"
    RELATIONSHIPS_TEST = "relationships test"


@dataclass(frozen=True)
class ForeignKey:
    """Child `columns` reference `parent_columns` of the table `parent`.

    `parent` is a twin model's name for a child twin, or a table label (`source.table` or a
    model name) for `init` reading the originals' tests.
    """

    columns: tuple[str, ...]
    parent: str
    parent_columns: tuple[str, ...]
    attributes: tuple[str, ...] | None = None
    mode: KeyMode = KeyMode.AUTO
    origin: KeyOrigin = KeyOrigin.CONFIG

    @property
    def label(self) -> str:
        """The child columns in words, for messages, ledger details and reports."""
        return "+".join(self.columns)


@dataclass(frozen=True)
class TableCall:
    """The table a `source('s', 't')` or `ref('m')` call names: `source` is None for a ref."""

    name: str
    source: str | None = None

    @property
    def label(self) -> str:
        """`s.t` for a source, `m` for a model (as synth mode and `init` name tables)."""
        return f"{self.source}.{self.name}" if self.source else self.name


def table_call(jinja: str) -> TableCall | None:
    """The first `source()`/`ref()` call in `jinja`, else None."""
    return _table_call(_CALL.search(jinja))


def parse_ref(text: str) -> str | None:
    """`ref('x')` / `ref("pkg", "x")` → 'x'; anything else → None (the whole text must match)."""
    call = _table_call(_CALL.fullmatch(text.strip()))
    return call.name if call and call.source is None else None


def called_table(jinja: str) -> str | None:
    """`s.t` for a `source('s', 't')` call in `jinja`, `m` for `ref('m')`, else None."""
    call = table_call(jinja)
    return call.label if call else None


def _table_call(match: re.Match[str] | None) -> TableCall | None:
    if match is None:
        return None
    if match["source"] is not None:
        return TableCall(match["table"], match["source"])
    return TableCall(match["model"])


def parse_key(item: Any, model: str) -> ForeignKey:
    """One entry of `synth.foreign_keys`, validated."""
    if not isinstance(item, dict) or "parent" not in item or "columns" not in item:
        raise ConfigError(
            f"foreign key {item!r} needs columns and parent",
            fix="write foreign_keys: [{columns: [carrier], parent: airlines_twin}]",
            model=model,
        )
    unknown = sorted(set(item) - set(_KEY_SETTINGS))
    if unknown:
        raise ConfigError(
            f"unknown foreign key setting(s) {unknown}",
            fix=f"use only {', '.join(_KEY_SETTINGS)}",
            model=model,
        )
    columns = _names(item["columns"])
    # Left empty, the parent columns come from a relationships test on the same columns
    # (see merge_keys), else they are the child's own column names.
    parent_columns = _names(item.get("parent_columns") or ())
    if parent_columns and len(columns) != len(parent_columns):
        raise ConfigError(
            f"foreign key {list(columns)} → {item['parent']}{list(parent_columns)} pairs "
            f"{len(columns)} column(s) with {len(parent_columns)}",
            fix="list one parent column per child column, in the same order",
            model=model,
        )
    modes = {mode.value: mode for mode in CONFIGURABLE_MODES}
    mode = item.get("mode", KeyMode.AUTO.value)
    if mode not in modes:
        raise ConfigError(
            f"foreign key mode '{mode}' is not one of {list(modes)}",
            fix="use auto, attributes or category",
            model=model,
            column=columns[0],
        )
    attributes = item.get("attributes")
    return ForeignKey(
        columns,
        str(item["parent"]),
        parent_columns,
        None if attributes is None else _names(attributes),
        modes[mode],
    )


def _names(value: Any) -> tuple[str, ...]:
    return (value,) if isinstance(value, str) else tuple(str(v) for v in value)


def merge_keys(
    configured: tuple[ForeignKey, ...], discovered: tuple[ForeignKey, ...]
) -> tuple[ForeignKey, ...]:
    """Configured keys win over discovered ones on the same child columns; a configured key
    without parent_columns takes them from the test on the same columns, else its own names."""
    found = {(k.columns, k.parent): k.parent_columns for k in discovered}
    resolved = tuple(
        k
        if k.parent_columns
        else replace(k, parent_columns=found.get((k.columns, k.parent), k.columns))
        for k in configured
    )
    taken = {k.columns for k in resolved}
    return resolved + tuple(k for k in discovered if k.columns not in taken)


def check_keys(keys: tuple[ForeignKey, ...], *, model: str, child_columns: list[str]) -> None:
    """Self-references and cycles cannot be ordered by dbt: say so, with the way out."""
    for key in keys:
        if key.parent == model:
            raise ConfigError(
                f"foreign key {list(key.columns)} references the twin itself (a self-reference, "
                f"e.g. employees.manager_id); dbt cannot build a model before itself",
                fix="drop the key from synth.foreign_keys (the column is then twinned as an "
                "ordinary column), or split the hierarchy into a parent table staged first",
                model=model,
                column=key.columns[0],
            )
        for column in key.columns:
            if column not in child_columns:
                raise ConfigError(
                    f"foreign key column '{column}' is not in the source",
                    fix=f"use one of {child_columns}",
                    model=model,
                    column=column,
                )
