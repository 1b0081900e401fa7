"""What lineage reads from a parsed dbt manifest: relations, model order, generic tests.

Kept apart from `dbt_synth.lineage` (which does the SQL) so that each stays small; these only
walk dbt's `Manifest` objects and resolve `ref()`/`source()` calls in test arguments.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from dbt_synth.relational.keys import table_call


def relations(manifest: Any):
    """Every node with a warehouse relation (sources, seeds, models, snapshots), by unique id."""
    yield from manifest.sources.items()
    for unique_id, node in manifest.nodes.items():
        if getattr(node, "relation_name", None) and node.resource_type != "test":
            yield unique_id, node


def seed_columns(node: Any) -> tuple[str, ...]:
    """A seed's columns, from its CSV header (dbt lists a seed's columns only if documented)."""
    if node.resource_type != "seed":
        return ()
    path = Path(getattr(node, "root_path", "") or ".") / node.original_file_path
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            return tuple(next(csv.reader(handle), ()))
    except OSError:
        return ()


def model_order(manifest: Any) -> list[str]:
    """Models, each after the models it depends on."""
    models = {u for u, n in manifest.nodes.items() if n.resource_type == "model"}
    ordered: list[str] = []
    done: set[str] = set()

    def visit(unique_id: str, path: frozenset[str]) -> None:
        if unique_id in done or unique_id in path:
            return
        for upstream in manifest.nodes[unique_id].depends_on.nodes:
            if upstream in models:
                visit(upstream, path | {unique_id})
        done.add(unique_id)
        ordered.append(unique_id)

    for unique_id in sorted(models):
        visit(unique_id, frozenset())
    return ordered


def generic_tests(manifest: Any):
    for node in manifest.nodes.values():
        metadata = getattr(node, "test_metadata", None)
        if node.resource_type == "test" and metadata and metadata.namespace in (None, "dbt"):
            yield node


def test_owner(manifest: Any, test: Any) -> str | None:
    """The node a column test is on: dbt records it for models and seeds, a source's test only
    names it in the `model` argument."""
    attached = getattr(test, "attached_node", None)
    if attached:
        return attached
    return resolve_call(manifest, str((test.test_metadata.kwargs or {}).get("model", "")))


def relationships_parent(manifest: Any, test: Any, kwargs: Mapping[str, Any]) -> str | None:
    """The node a `relationships` test's `to` names."""
    to = str(kwargs.get("to", ""))
    return resolve_call(manifest, to, among=test.depends_on.nodes) or resolve_call(manifest, to)


def resolve_call(manifest: Any, jinja: str, among: Sequence[str] | None = None) -> str | None:
    """The unique id a `ref('m')`/`source('s', 't')` call names (among `among` when given)."""
    call = table_call(jinja)
    if call is None:
        return None
    pool = among if among is not None else [*manifest.sources, *manifest.nodes]
    for unique_id in pool:
        node = manifest.sources.get(unique_id) or manifest.nodes.get(unique_id)
        if node is None:
            continue
        if node.name == call.name and getattr(node, "source_name", None) == call.source:
            return unique_id
    return None


def display_name(manifest: Any, unique_id: str) -> str:
    node = manifest.sources.get(unique_id) or manifest.nodes.get(unique_id)
    source = getattr(node, "source_name", None)
    return f"{source}.{node.name}" if source else node.name


def is_identifier(name: Any) -> bool:
    return isinstance(name, str) and name.isidentifier()
