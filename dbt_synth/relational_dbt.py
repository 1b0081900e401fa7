"""The function a child twin's dbt Python model calls.

    planes = dbt.ref("planes_twin")
    planes_raw = dbt.source("raw", "planes")
    dbt_synth.child_twin(dbt, session, dbt.source("raw", "flights"), dbt.config.get("synth"),
                         parents={"planes_twin": (planes, planes_raw)})

The literal `dbt.ref(parent)` is what makes dbt build the parent twin first (one call per
statement: dbt's Python-model parser does not see calls nested in tuples); the parent's source
is read only for the attributes the child learns its dependency on (DP, within the child's ε).
Foreign keys come from the `relationships` tests on this model (the manifest) plus
`synth.foreign_keys`.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pyarrow as pa

from dbt_synth.errors import SynthError
from dbt_synth.relational import ParentData, split_config, synthesize_child
from dbt_synth.relational.manifest import discover_keys, manifest_location
from dbt_synth.schema import schema_from_duckdb
from dbt_synth.twin import (
    _cast_in_warehouse,
    _ledger_entry,
    _now,
    _progress,
    _train_rows,
    _write_ledger,
)


def child_twin(
    dbt: Any,
    session: Any,
    source: Any,
    config: dict[str, Any] | None = None,
    *,
    parents: dict[str, Any],
) -> Any:
    """Build the DP twin of `source` whose foreign keys exist in the `parents`' twins.

    `parents` maps each parent twin's model name to `(dbt.ref(name), dbt.source(...))`, or to
    `dbt.ref(name)` alone when the child need not learn from the parent's attributes.
    """
    model = str(dbt.this.identifier)
    started_at = _now()
    raw = dict(config or {})
    try:
        relational, single_table = split_config(raw, model=model)
        discovered = (
            discover_keys(model, manifest_location(relational.manifest_path))
            if relational.discover
            else ()
        )
        schema = schema_from_duckdb(source, session)
        source, holdout = _train_rows(source, schema, single_table)
        child = _arrow(source)
        parent_data = {name: _parent(value) for name, value in parents.items()}
        built = synthesize_child(
            child,
            parent_data,
            raw,
            model=model,
            schema=schema,
            discovered=discovered,
            progress=_progress(model, raw),
        )
        relation = _cast_in_warehouse(session, built.result, schema, model)
    except SynthError as error:
        raise error.for_model(model) from None
    entry = _ledger_entry(built.result, model, schema, started_at, holdout)
    _write_ledger(dbt, session, replace(entry, privacy_unit=built.privacy_unit), raw)
    return relation


def _parent(value: Any) -> ParentData:
    if isinstance(value, tuple | list):
        twin, source = value
        return ParentData(_arrow(twin), _arrow(source))
    return ParentData(_arrow(value))


def _arrow(relation: Any) -> pa.Table:
    data = relation.arrow()
    return data.read_all() if hasattr(data, "read_all") else data
