"""Reading a source within a memory bound: exact count, Poisson sample streamed from batches."""

from __future__ import annotations

import duckdb
import numpy as np
import pyarrow as pa

from dbt_synth import synthesize
from dbt_synth.source_rows import SourceRows
from dbt_synth.warehouse.duckdb import DuckDBWarehouse
from fixtures.real_data import cps1988


def test_relation_is_counted_in_sql_and_streamed_in_batches():
    con = duckdb.connect()
    con.register("cps", cps1988())
    source = DuckDBWarehouse(con).source_rows(con.sql("select * from cps"))
    assert source.rows == 28155
    assert source.schema.names == list(cps1988().columns)
    assert sum(batch.num_rows for batch in source.stream()) == 28155


def test_poisson_sample_depends_on_seed_and_row_order_not_on_batching():
    table = pa.Table.from_pandas(cps1988(), preserve_index=False)
    whole = SourceRows(table.num_rows, table.schema, lambda: table.to_batches(50_000))
    small = SourceRows(table.num_rows, table.schema, lambda: table.to_batches(777))
    first = whole.sample(0.1, np.random.default_rng(3))
    again = small.sample(0.1, np.random.default_rng(3))
    assert first.equals(again)
    # Binomial(28155, 0.1): mean 2815.5, sd 50.
    assert abs(first.num_rows - 2815.5) < 250


def test_rate_one_keeps_every_row():
    table = pa.Table.from_pandas(cps1988(), preserve_index=False)
    assert SourceRows.of(table).sample(1.0, np.random.default_rng(0)).equals(table)


def test_large_source_is_fitted_on_a_sample_but_twinned_at_full_size():
    cps = cps1988()
    result = synthesize(cps, epsilon=1.0, seed=5, max_fit_rows=5000)
    # The rate is set from the DP count, which is within a few dozen rows of 28,155.
    assert result.sample_rate == 5000 / result.rows_estimate
    assert abs(result.sample_rate - 5000 / 28155) < 1e-3
    assert abs(result.rows - 28155) < 200
    twin = result.table.to_pandas()
    assert list(twin.columns) == list(cps.columns)
    # A sample of 5,000 still learns the main shares.
    share = (twin["ethnicity"] == "afam").mean()
    assert abs(share - (cps["ethnicity"] == "afam").mean()) < 0.03
