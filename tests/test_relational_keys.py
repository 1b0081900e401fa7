"""Foreign keys: `ref()` parsing, `synth.foreign_keys` entries, merging and checks."""

from __future__ import annotations

import pytest

from dbt_synth.errors import ConfigError
from dbt_synth.relational.keys import (
    ForeignKey,
    KeyMode,
    KeyOrigin,
    called_table,
    check_keys,
    merge_keys,
    parse_key,
    parse_ref,
)


@pytest.mark.parametrize(
    ("text", "model"),
    [
        ("ref('planes_twin')", "planes_twin"),
        (' ref( "planes_twin" ) ', "planes_twin"),
        ("ref('my_package', 'planes_twin')", "planes_twin"),
        ("source('raw', 'planes')", None),
        ("ref('a') || ref('b')", None),
        ("planes_twin", None),
    ],
)
def test_parse_ref_reads_a_whole_ref_call_only(text, model):
    assert parse_ref(text) == model


@pytest.mark.parametrize(
    ("jinja", "table"),
    [
        ("{{ get_where_subquery(source('raw', 'flights')) }}", "raw.flights"),
        ("{{ get_where_subquery(ref('stg_flights')) }}", "stg_flights"),
        ("{{ get_where_subquery(ref('pkg', 'stg_flights')) }}", "stg_flights"),
        ("select 1", None),
    ],
)
def test_called_table_names_the_source_or_model_a_test_reads(jinja, table):
    assert called_table(jinja) == table


def test_a_composite_key_stays_a_tuple_and_its_mode_an_enum():
    key = parse_key(
        {"columns": ["origin", "time_hour"], "parent": "weather_twin", "mode": "attributes"},
        "flights_twin",
    )
    assert key.columns == ("origin", "time_hour")
    assert key.parent_columns == ()
    assert key.mode is KeyMode.ATTRIBUTES
    assert key.label == "origin+time_hour"


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ({"columns": ["carrier"]}, "needs columns and parent"),
        (
            {"columns": ["a"], "parent": "p", "on": "x"},
            r"unknown foreign key setting\(s\) \['on'\]",
        ),
        ({"columns": ["a", "b"], "parent": "p", "parent_columns": ["x"]}, "pairs 2 column"),
        ({"columns": ["a"], "parent": "p", "mode": "implied"}, "mode 'implied' is not one of"),
    ],
)
def test_bad_foreign_key_entries_are_config_errors(item, message):
    with pytest.raises(ConfigError, match=message) as error:
        parse_key(item, "flights_twin")
    assert error.value.model == "flights_twin"


def test_configured_keys_win_and_take_parent_columns_from_a_test_on_the_same_columns():
    configured = (
        ForeignKey(("dest",), "airports_twin", ()),
        ForeignKey(("carrier",), "airlines_twin", ()),
    )
    discovered = (
        ForeignKey(("dest",), "airports_twin", ("faa",), origin=KeyOrigin.RELATIONSHIPS_TEST),
        ForeignKey(("tailnum",), "planes_twin", ("tailnum",), origin=KeyOrigin.RELATIONSHIPS_TEST),
    )
    merged = merge_keys(configured, discovered)
    assert [(k.columns, k.parent_columns, k.origin) for k in merged] == [
        (("dest",), ("faa",), KeyOrigin.CONFIG),
        (("carrier",), ("carrier",), KeyOrigin.CONFIG),
        (("tailnum",), ("tailnum",), KeyOrigin.RELATIONSHIPS_TEST),
    ]


def test_self_references_and_unknown_columns_are_config_errors():
    with pytest.raises(ConfigError, match="self-reference"):
        check_keys(
            (ForeignKey(("manager_id",), "employees_twin", ("id",)),),
            model="employees_twin",
            child_columns=["id", "manager_id"],
        )
    with pytest.raises(ConfigError, match="'tail' is not in the source") as error:
        check_keys(
            (ForeignKey(("tail",), "planes_twin", ("tailnum",)),),
            model="flights_twin",
            child_columns=["tailnum"],
        )
    assert error.value.column == "tail"
