"""Which tables to twin: seeds, sources and models picked by selection or a `meta: {synth: ...}`.

A candidate carries what `init` needs to write its twin — the `source()`/`ref()` call, the synth
config the user declared in yml, and the data tests declared on the original, which the twin
inherits where a DP twin is guaranteed to honour them.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from dbt_synth.config import parse_config
from dbt_synth.errors import ConfigError
from dbt_synth.relational.keys import ForeignKey, called_table
from dbt_synth.relational.manifest import relationships_key
from dbt_synth.rule_tests import test_where

# THE twin marker: a model tagged so is a twin, for `init` (never twinned again), `report`, `status`
# and synth mode (macros/synth_mode/, which reads the same tag from dbt's graph).
TWIN_TAG = "dbt_synth_twin"
# Resource types a twin can be made of (what `ref`/`source` can point at and init can twin).
TWINNABLE = ("source", "seed", "model")
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
    """One table to twin: a source table, a seed or a model."""

    unique_id: str
    name: str
    source_name: str | None
    synth: dict[str, Any]
    tests: tuple[ColumnTest, ...]
    columns: tuple[str, ...] = ()
    foreign_keys: tuple[ForeignKey, ...] = ()
    # Columns other twins reference: their twin must hold unique keys.
    referenced: tuple[str, ...] = ()
    # Keys guessed from column names: written into the yml as comments, never applied.
    proposals: tuple[ForeignKey, ...] = ()
    # `synth.rules` entries traced back to this table from tests downstream (rule_tests.py).
    rules: tuple[dict[str, Any], ...] = ()

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
        """`source.table` for a source, the name for a seed or model (as synth_passthrough)."""
        return f"{self.source_name}.{self.name}" if self.source_name else self.name

    @property
    def kind(self) -> str:
        """`source`, `seed` or `model`, for messages and docstrings."""
        return self.unique_id.split(".", 1)[0]


def is_twin(node: Any) -> bool:
    """Whether `node` is a twin: it carries the one marker, the `dbt_synth_twin` tag."""
    return node.resource_type == "model" and TWIN_TAG in (node.config.tags or [])


def original_of(manifest: Any, twin: Any) -> Any | None:
    """The seed, source or model `twin` is a twin of: among its inputs (a child twin also reads
    its parents, real and twinned), the one it is named after (`t` for `t_twin`), else the first
    input that is not a twin."""
    inputs = [manifest.sources.get(uid) or manifest.nodes.get(uid) for uid in twin.depends_on.nodes]
    inputs = [node for node in inputs if node is not None and not is_twin(node)]
    for node in inputs:
        if f"{node.name}_twin" == twin.name:
            return node
    return inputs[0] if inputs else None


def label_of(node: Any) -> str:
    """How synth mode and `synth_passthrough` name a node: `source.table`, or the node's name."""
    source_name = getattr(node, "source_name", None)
    return f"{source_name}.{node.name}" if source_name else node.name


@dataclass(frozen=True)
class Traced:
    """What the project's tests downstream say about each twinned table (by unique id), traced
    through column lineage (`cli/traced.py`): tests and keys to add, keys only to propose."""

    tests: Mapping[str, tuple[ColumnTest, ...]] = field(default_factory=dict)
    keys: Mapping[str, tuple[ForeignKey, ...]] = field(default_factory=dict)
    proposals: Mapping[str, tuple[ForeignKey, ...]] = field(default_factory=dict)
    rules: Mapping[str, tuple[dict[str, Any], ...]] = field(default_factory=dict)


def chosen_ids(manifest: Any, selected: list[str] | None) -> list[str]:
    """Unique ids of the tables to twin: `selected` if given, else every node with a `synth`
    meta block; a `meta: {synth: false}` opts a selected node out."""
    chosen = []
    for unique_id, node in _tables(manifest):
        synth = _meta_synth(node)
        if synth is False or (selected is None and synth is None):
            continue
        if selected is None or unique_id in selected:
            chosen.append(unique_id)
    return chosen


def candidates(
    manifest: Any, selected: list[str] | None, traced: Traced | None = None
) -> list[Candidate]:
    """The candidates (see `chosen_ids`), with their tests and keys: those declared on them and
    those `traced` back to them from downstream.

    The synth block is validated here, so a typo fails `init` with the key to fix instead of
    failing `dbt build` later.
    """
    traced = traced or Traced()
    chosen = []
    for unique_id in chosen_ids(manifest, selected):
        node = manifest.sources.get(unique_id) or manifest.nodes[unique_id]
        tests = _inherited_tests(manifest, unique_id) + traced.tests.get(unique_id, ())
        keys = _foreign_keys(manifest, unique_id) + traced.keys.get(unique_id, ())
        candidate = Candidate(
            unique_id=unique_id,
            name=node.name,
            source_name=getattr(node, "source_name", None),
            synth=dict(_meta_synth(node) or {}),
            tests=_distinct(tests, lambda t: (t.column, t.name, repr(t.arguments))),
            columns=tuple(node.columns or {}),
            foreign_keys=_distinct(keys, lambda k: (k.columns, k.parent, k.parent_columns)),
            proposals=traced.proposals.get(unique_id, ()),
            rules=traced.rules.get(unique_id, ()),
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
        key = relationships_key(node.column_name, node.test_metadata.kwargs or {}, sources=True)
        if key is not None:
            keys.append(key)
    return tuple(sorted(keys, key=lambda k: k.columns))


def _column_tests(manifest: Any, unique_id: str):
    """Generic dbt tests attached to one column of `unique_id`.

    dbt records `attached_node` for tests on models only; a source's test names its table in
    the `model` argument (`get_where_subquery(source('s', 't'))`).
    """
    original = manifest.sources.get(unique_id) or manifest.nodes.get(unique_id)
    label = label_of(original)
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


def _tables(manifest: Any):
    yield from manifest.sources.items()
    for unique_id, node in manifest.nodes.items():
        if node.resource_type in TWINNABLE and not is_twin(node):
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
        if name not in INHERITED_TESTS or test_where(node):  # a `where` test is only a rule
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


def _distinct(items: Iterable[Any], key: Callable[[Any], Any]) -> tuple[Any, ...]:
    """`items` without repeats by `key`, the first kept (declared tests before traced ones)."""
    seen: dict[Any, Any] = {}
    for item in items:
        seen.setdefault(key(item), item)
    return tuple(seen.values())
