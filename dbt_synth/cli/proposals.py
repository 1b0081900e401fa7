"""Role proposals `dbt-synth init` writes into a twin's synth config, where the user sees them.

A proposal is read from a column's name, type and tests only (`roles.propose_role`), never from
its values: the types come from the yml's `data_type` or, failing that, from the warehouse's
catalog (`adapter.get_columns_in_relation`), which reads no row.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

from dbt_synth.cli.candidates import Candidate
from dbt_synth.errors import SynthError
from dbt_synth.roles import STRUCTURAL_ROLES, propose_role
from dbt_synth.rule_tests import rule_entry


def with_proposed_roles(candidate: Candidate, manifest: Any, project: Any) -> Candidate:
    """`candidate` with `columns: {c: {role: r}}` added to its synth config for the columns a
    role is proposed for; a user's own `columns` block is kept as it is."""
    if "columns" in candidate.synth:
        return candidate
    skip = {c for k in candidate.foreign_keys for c in k.columns} | set(candidate.referenced)
    skip |= {t.column for t in candidate.tests if t.name == "unique"}
    tests: dict[str, list[str]] = {}
    for test in candidate.tests:
        tests.setdefault(test.column, []).append(test.name)
    types = _declared_types(candidate, manifest)
    if any(t is None for t in types.values()):
        types = {**_queried_types(candidate, project), **{k: v for k, v in types.items() if v}}
    roles = {}
    for column, sql_type in types.items():
        role = propose_role(column, sql_type, tests.get(column, ())) if sql_type else None
        if role is not None and column not in skip:
            roles[column] = {"role": role}
    if not roles:
        return candidate
    return replace(candidate, synth={**candidate.synth, "columns": roles})


def _declared_types(candidate: Candidate, manifest: Any) -> dict[str, str | None]:
    node = manifest.sources.get(candidate.unique_id) or manifest.nodes.get(candidate.unique_id)
    columns = getattr(node, "columns", None) or {}
    return {name: getattr(column, "data_type", None) for name, column in columns.items()}


def _queried_types(candidate: Candidate, project: Any) -> dict[str, str]:
    """Column names and types of the original, as the warehouse's catalog reports them."""
    relation = candidate.jinja_reference
    sql = (
        f"{{%- set columns = adapter.get_columns_in_relation({relation}) -%}}"
        "{%- for c in columns %}select '{{ c.name | replace(\"'\", \"''\") }}' as column_name, "
        "'{{ c.data_type }}' as data_type{% if not loop.last %} union all {% endif %}"
        "{% endfor %}"
    )
    try:
        table = project.query(sql)
    except SynthError:  # the original is not built yet: propose from declared types only
        return {}
    return {str(name): str(data_type) for name, data_type in table.rows}


def with_rules(candidate: Candidate, manifest: Any) -> Candidate:
    """`candidate` with `rules:` read from the original's tests and those traced back to it
    from downstream (rule_tests.py), which the twin then enforces at sampling time; a user's own
    `rules` block is kept as it is."""
    if "rules" in candidate.synth:
        return candidate
    declared = [r for node in _tests_on(manifest, candidate.unique_id) if (r := rule_entry(node))]
    rules = list({json.dumps(r, sort_keys=True): r for r in [*declared, *candidate.rules]}.values())
    if not rules:
        return candidate
    return replace(candidate, synth={**candidate.synth, "rules": rules})


def _tests_on(manifest: Any, unique_id: str):
    """Data tests whose only dependency is the original (column- and model-level)."""
    for node in manifest.nodes.values():
        metadata = getattr(node, "test_metadata", None)
        if node.resource_type != "test" or metadata is None:
            continue
        if set(node.depends_on.nodes) == {unique_id}:
            yield node


def generated_columns(synth: dict[str, Any], keys: list[str], *, ids_only: bool) -> list[str]:
    """Columns with a semantic role or `id` (not already keys): their values are generated
    (Faker, a format, fresh keys) and follow no real distribution, so drift tests skip them;
    with `ids_only`, the `id` columns alone (fresh keys, which a copy check must leave out)."""
    columns = synth.get("columns") or {}
    roles = {c: (settings or {}).get("role") for c, settings in columns.items() if c not in keys}
    if ids_only:
        return [c for c, role in roles.items() if role == "id"]
    return [c for c, role in roles.items() if role not in (None, *STRUCTURAL_ROLES[:3])]
