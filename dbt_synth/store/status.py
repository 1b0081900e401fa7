"""`dbt-synth status`: ε spent against `max_total_epsilon`, per source, from the twins' ledgers."""

from __future__ import annotations

import json
from typing import Any

from dbt_synth.errors import SynthError
from dbt_synth.store.policy import source_budgets


def budget_lines(project: Any, twins: list[Any]) -> list[str]:
    """One line per source over every ledger the `twins` (manifest nodes) write to.

    `project` is the CLI's `DbtProject` (queries run through dbt, as `dbt-synth report` does).
    """
    locations = set()
    for node in twins:
        synth = node.config.get("synth") or {}
        schema = synth.get("ledger_schema") or node.schema
        locations.add((node.database, schema, synth.get("ledger_table") or "synth_ledger"))
    rows: list[dict[str, Any]] = []
    for database, schema, table in sorted(locations, key=str):
        relation = (
            f"api.Relation.create(database={json.dumps(database)}, "
            f"schema={json.dumps(schema)}, identifier={json.dumps(table)})"
        )
        try:
            result = project.query(f"select * from {{{{ {relation} }}}}")
        except SynthError:
            continue
        rows.extend(dict(zip(result.column_names, row, strict=True)) for row in result.rows)
    return [budget.line() for budget in source_budgets(rows)]
