"""`init`'s use of column lineage: the project's tests downstream, carried back to the twins.

A project tests its marts, not its raw seeds. `dbt_synth.lineage.trace_constraints` follows each
tested column through the compiled SQL of the models in between to the twinned table it comes
from; here its answer becomes what `init` writes: `unique`/`not_null`/`accepted_values` tests on
the twin (a `unique` column becomes its primary key), row-level rules into `synth.rules`,
`relationships` between twinned tables as
child-twin keys, and name-based guesses as comments in the twin's yml, never applied.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from dbt_synth.cli.candidates import ColumnTest, Traced, label_of
from dbt_synth.cli.dbt_project import DbtProject
from dbt_synth.errors import SynthError
from dbt_synth.lineage import TracedKey, trace_constraints
from dbt_synth.relational.keys import ForeignKey, KeyOrigin


def trace(project: DbtProject, manifest: Any, twinned: Sequence[str]) -> tuple[Traced, str]:
    """What the project's tests say about the `twinned` tables, and a note if lineage could not
    run (the twins then keep only the tests declared on their originals)."""
    models = [u for u, n in manifest.nodes.items() if n.resource_type == "model"]
    if not twinned or not models:
        return Traced(), ""
    try:
        compiled = project.compile()
    except SynthError as error:
        return Traced(), f"tests were not traced through lineage: {error.problem}"
    constraints = trace_constraints(manifest, twinned, compiled)
    tests: dict[str, list[ColumnTest]] = {}
    for test in constraints.tests:
        column = test.column
        tests.setdefault(column.node, []).append(
            ColumnTest(column.column, test.kind.value, test.arguments())
        )
    keys: dict[str, list[ForeignKey]] = {}
    for key in constraints.keys:
        keys.setdefault(key.child.node, []).append(_foreign_key(manifest, key))
    proposals: dict[str, list[ForeignKey]] = {}
    for key in constraints.proposals:
        proposals.setdefault(key.child.node, []).append(_foreign_key(manifest, key))
    rules: dict[str, list[dict[str, Any]]] = {}
    for rule in constraints.rules:
        rules.setdefault(rule.node, []).append(rule.entry)
    return (
        Traced(
            tests={k: tuple(v) for k, v in tests.items()},
            keys={k: tuple(v) for k, v in keys.items()},
            proposals={k: tuple(v) for k, v in proposals.items()},
            rules={k: tuple(v) for k, v in rules.items()},
        ),
        "",
    )


def _foreign_key(manifest: Any, key: TracedKey) -> ForeignKey:
    parent = manifest.sources.get(key.parent.node) or manifest.nodes[key.parent.node]
    return ForeignKey(
        (key.child.column,),
        label_of(parent),
        (key.parent.column,),
        origin=KeyOrigin.RELATIONSHIPS_TEST,
    )
