"""The relational settings of a child twin's `synth` config."""

from __future__ import annotations

import pytest

from dbt_synth.errors import ConfigError
from dbt_synth.relational.config import OrphanPolicy, PrivacyUnit, split_config
from dbt_synth.relational.keys import KeyMode


def test_relational_keys_are_split_from_the_single_table_config():
    relational, rest = split_config(
        {
            "epsilon": 2.0,
            "seed": 3,
            "foreign_keys": [{"columns": ["carrier"], "parent": "airlines_twin"}],
            "privacy_unit": "parent",
            "max_children": 50,
            "orphans": "reproduce",
        },
        model="flights_twin",
    )
    assert rest == {"epsilon": 2.0, "seed": 3}
    assert relational.privacy_unit is PrivacyUnit.PARENT
    assert relational.orphans is OrphanPolicy.REPRODUCE
    assert relational.max_children == 50
    (key,) = relational.foreign_keys
    assert (key.columns, key.mode) == (("carrier",), KeyMode.AUTO)


def test_defaults_are_row_unit_and_clean_orphans():
    relational, rest = split_config(None, model="flights_twin")
    assert rest == {}
    assert relational.privacy_unit is PrivacyUnit.ROW
    assert relational.orphans is OrphanPolicy.CLEAN
    assert relational.foreign_keys == ()


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"privacy_unit": "household"}, "privacy_unit 'household' is not one of"),
        ({"privacy_unit": "parent"}, "needs a cap on children per parent"),
        ({"privacy_unit": "parent", "max_children": 0}, "needs a cap on children per parent"),
        ({"orphans": "drop"}, "orphans 'drop' is not one of"),
        ({"cardinality_share": 1.5}, r"cardinality_share must be in \(0, 1\)"),
    ],
)
def test_bad_relational_settings_are_config_errors(raw, message):
    with pytest.raises(ConfigError, match=message) as error:
        split_config(raw, model="flights_twin")
    assert error.value.model == "flights_twin"
