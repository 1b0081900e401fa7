"""Which tables to twin: sources and models picked by selection or by a `meta: {synth: ...}` block.

A candidate carries what `init` needs to write its twin — the `source()`/`ref()` call, the synth
config the user declared in yml, and the data tests declared on the original, which the twin
inherits where a DP twin is guaranteed to honour them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from typing import Any

from dbt_synth.config import parse_config
from dbt_synth.errors import ConfigError
from dbt_synth.relational.keys import ForeignKey, KeyOrigin, called_table

# A model that calls dbt_synth.twin is a twin; twins are never twinned again.
TWIN_TAG = "dbt_synth_twin"
# Data tests a twin satisfies whenever the original does (see `_inherited_tests`).
INHERITED_TESTS = ("not_null", "unique", "accepted_values")


@dataclass(frozen=True)
class ColumnTest:
    """A generic data test declared on one column of the original."""

    column: str
    name: str
    arguments: dict[str, Any]


@dataclass(frozen=True)
class Candidate:
    """One table to twin: a source table or a model."""

    unique_id: str
    name: str
    source_name: str | None
    synth: dict[str, Any]
    tests: tuple[ColumnTest, ...]
    columns: tuple[str, ...] = ()
    foreign_keys: tuple[ForeignKey, ...] = ()
    # Columns other twins reference: their twin must hold unique keys.
    referenced: tuple[str, ...] = ()

    @property
    def twin_name(self) -> str:
        """Kept in step with the `synth_twin_name` macro that synth mode resolves sources with."""
        return f"{self.name}_twin"

    @property
    def reference(self) -> str:
        """The literal `dbt.source(...)`/`dbt.ref(...)` call (dbt reads it from the file's AST)."""
        if self.source_name is not None:
            return f"dbt.source({json.dumps(self.source_name)}, {json.dumps(self.name)})"
        return f"dbt.ref({json.dumps(self.name)})"

    @property
    def jinja_reference(self) -> str:
        if self.source_name is not None:
            return f"source('{self.source_name}', '{self.name}')"
        return f"ref('{self.name}')"

    @property
    def label(self) -> str:
        return f"{self.source_name}.{self.name}" if self.source_name else self.name


def is_twin(node: Any) -> bool:
    return TWIN_TAG in (node.config.tags or []) or (
        getattr(node, "language", None) == "python" and "dbt_synth.twin(" in (node.raw_code or "")
    )


def candidates(manifest: Any, selected: list[str] | None) -> list[Candidate]:
    """The candidates: `selected` unique ids if given, else every node with a `synth` meta block.

    A `meta: {synth: false}` opts a selected node out. The synth block is validated here, so a typo
    fails `init` with the key to fix instead of failing `dbt build` later.
    """
    chosen = []
    for unique_id, node in _tables(manifest):
        synth = _meta_synth(node)
        if synth is False:
            continue
        if selected is None and synth is None:
            continue
        if selected is not None and unique_id not in selected:
            continue
        candidate = Candidate(
            unique_id=unique_id,
            name=node.name,
            source_name=getattr(node, "source_name", None),
            synth=dict(synth or {}),
            tests=_inherited_tests(manifest, unique_id),
            columns=tuple(node.columns or {}),
            foreign_keys=_foreign_keys(manifest, unique_id),
        )
        parse_config(candidate.synth, model=candidate.twin_name)
        chosen.append(candidate)
    _check_unique_names(chosen)
    return sorted(_link(chosen), key=lambda c: c.twin_name)


def _link(chosen: list[Candidate]) -> list[Candidate]:
    """Keep foreign keys whose parent is twinned too; mark the parents' referenced columns."""
    by_label = {c.label: c for c in chosen}
    referenced: dict[str, set[str]] = {}
    linked = []
    for candidate in chosen:
        keys = tuple(k for k in candidate.foreign_keys if k.parent in by_label)
        for key in keys:
            referenced.setdefault(key.parent, set()).update(key.parent_columns)
        linked.append(replace(candidate, foreign_keys=keys))
    return [replace(c, referenced=tuple(sorted(referenced.get(c.label, ())))) for c in linked]


def _foreign_keys(manifest: Any, unique_id: str) -> tuple[ForeignKey, ...]:
    keys = []
    for node in _column_tests(manifest, unique_id):
        if node.test_metadata.name != "relationships":
            continue
        kwargs = node.test_metadata.kwargs or {}
        parent, field = called_table(str(kwargs.get("to", ""))), kwargs.get("field")
        if parent and isinstance(field, str) and node.column_name.isidentifier():
            keys.append(
                ForeignKey(
                    (node.column_name,), parent, (field,), origin=KeyOrigin.RELATIONSHIPS_TEST
                )
            )
    return tuple(sorted(keys, key=lambda k: k.columns))


def _column_tests(manifest: Any, unique_id: str):
    """Generic dbt tests attached to one column of `unique_id`.

    dbt records `attached_node` for tests on models only; a source's test names its table in
    the `model` argument (`get_where_subquery(source('s', 't'))`).
    """
    original = manifest.sources.get(unique_id) or manifest.nodes.get(unique_id)
    label = _label(original)
    for node in manifest.nodes.values():
        if node.resource_type != "test" or not getattr(node, "test_metadata", None):
            continue
        if node.test_metadata.namespace not in (None, "dbt") or not node.column_name:
            continue
        attached = getattr(node, "attached_node", None)
        if attached == unique_id or (
            attached is None
            and called_table(str(node.test_metadata.kwargs.get("model", ""))) == label
        ):
            yield node


def _label(node: Any) -> str:
    source_name = getattr(node, "source_name", None)
    return f"{source_name}.{node.name}" if source_name else node.name


def _tables(manifest: Any):
    yield from manifest.sources.items()
    for unique_id, node in manifest.nodes.items():
        if node.resource_type == "model" and not is_twin(node):
            yield unique_id, node


def _meta_synth(node: Any) -> dict[str, Any] | bool | None:
    for meta in (getattr(node.config, "meta", None) or {}, node.meta or {}):
        if "synth" in meta:
            synth = meta["synth"]
            if synth is True:
                return {}
            if synth is False or synth is None:
                return False if synth is False else {}
            if not isinstance(synth, dict):
                raise ConfigError(
                    f"meta.synth of '{node.name}' must be a mapping, true or false, got {synth!r}",
                    fix="write meta: {synth: {epsilon: 1.0}} (or synth: true for the defaults)",
                )
            return synth
    return None


def _inherited_tests(manifest: Any, unique_id: str) -> tuple[ColumnTest, ...]:
    """Tests on the original's columns that its twin passes too.

    `not_null`: a column without NULLs gets no NULL code in its DP domain. `accepted_values`:
    categories are a DP-thresholded subset of the real values. `unique` makes the column a
    primary key, which the twin fills with fresh unique values.
    """
    original = manifest.sources.get(unique_id) or manifest.nodes.get(unique_id)
    order = {name: i for i, name in enumerate(getattr(original, "columns", None) or {})}
    tests = []
    for node in _column_tests(manifest, unique_id):
        name = node.test_metadata.name
        if name not in INHERITED_TESTS:
            continue
        kwargs = dict(node.test_metadata.kwargs or {})
        arguments = {k: v for k, v in kwargs.items() if k not in ("column_name", "model")}
        tests.append(ColumnTest(node.column_name, name, arguments))
    return tuple(sorted(tests, key=lambda t: (order.get(t.column, len(order)), t.column, t.name)))


def _check_unique_names(chosen: list[Candidate]) -> None:
    seen: dict[str, Candidate] = {}
    for candidate in chosen:
        other = seen.get(candidate.twin_name)
        if other is not None:
            raise ConfigError(
                f"'{other.label}' and '{candidate.label}' would both be twinned as "
                f"'{candidate.twin_name}'",
                fix="twin only one of them (meta: {synth: false} on the other)",
                model=candidate.twin_name,
            )
        seen[candidate.twin_name] = candidate
