"""Child twins whose foreign keys exist in their parents' twins (see `child.py`).

Modules, in the order a child twin uses them: `keys` (the `ForeignKey` type, `ref()` parsing),
`manifest` (keys from `relationships` tests), `config` (the relational settings), `plan` (a
`KeyPlan` per key), `unit` (the privacy unit), `joined` (what the child is fitted on),
`cardinality` (children-per-parent releases), `attributes` and `attach` (keys of the twin rows),
`child` (the whole road).
"""

from dbt_synth.relational.attach import KeyReport
from dbt_synth.relational.cardinality import (
    Cardinality,
    cardinality_tvd,
    children_per_parent,
    count_edges,
)
from dbt_synth.relational.child import ChildFit, ChildResult, resample_child, synthesize_child
from dbt_synth.relational.config import (
    OrphanPolicy,
    PrivacyUnit,
    RelationalConfig,
    split_config,
)
from dbt_synth.relational.keys import ForeignKey, KeyMode, parse_ref
from dbt_synth.relational.plan import KeyPlan, ParentData

__all__ = [
    "Cardinality",
    "ChildFit",
    "ChildResult",
    "ForeignKey",
    "KeyMode",
    "KeyPlan",
    "KeyReport",
    "OrphanPolicy",
    "ParentData",
    "PrivacyUnit",
    "RelationalConfig",
    "cardinality_tvd",
    "children_per_parent",
    "count_edges",
    "parse_ref",
    "resample_child",
    "split_config",
    "synthesize_child",
]
