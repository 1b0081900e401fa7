"""Role proposals `dbt-synth init` writes into a twin's synth config, where the user sees them.

A proposal is read from a column's name, type and tests only (`roles.propose_role`), never from
its values: the types come from the yml's `data_type` or, failing that, from the warehouse's
catalog (`adapter.get_columns_in_relation`), which reads no row.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from dbt_synth.cli.candidates import Candidate
from dbt_synth.errors import SynthError
from dbt_synth.roles import propose_role


def with_proposed_roles(candidate: Candidate, manifest: Any, project: Any) -> Candidate:
    """`candidate` with `columns: {c: {role: r}}` added to its synth config for the columns a
    role is proposed for; a user's own `columns` block is kept as it is."""
    if "columns" in candidate.synth:
        return candidate
    skip = {k.column for k in candidate.foreign_keys} | set(candidate.referenced)
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
