"""Counts computed by the engine (dbt_synth/pushdown.py), on a real DuckDB.

Spark is the warehouse that uses them in a build (tests/test_warehouse_spark.py,
tests/test_pushdown_spark.py); the queries are plain SQL, so DuckDB checks their semantics here
in milliseconds: NULL values against the NULLs that grouping sets put in other columns, types
kept, a fixed order; tree keys computed in SQL bit for bit as in memory.
"""

from __future__ import annotations

import dataclasses
import re

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from dbt_synth import pushdown_tree, synthesize
from dbt_synth.axis import to_axis
from dbt_synth.domains.numeric import SampledCounts
from dbt_synth.domains.tree import KEY_BITS, LEVEL_BITS
from dbt_synth.encoding import NumericModel
from dbt_synth.noise import replayable_noise
from dbt_synth.pushdown import Aggregates, grouping_sets_sql, value_counts
from dbt_synth.pushdown_tree import EngineCounts, KeyCounts, axis_sql, ordered_counts
from dbt_synth.schema import schema_of_arrow
from dbt_synth.source_rows import SourceRows
from tests.pushdown_cases import ordered_source, recorded_queries, same_numeric_domains


@pytest.fixture
def aggregates() -> Aggregates:
    source = pa.table(
        {
            "city": ["oslo", "rome", None, "rome", "rome", None],
            "size": [1, 1, 2, None, 3, 3],
            "flag": [True, None, True, True, False, None],
        }
    )
    connection = duckdb.connect()
    relation = connection.from_arrow(source)
    return Aggregates(lambda query: relation.query("source", query).to_arrow_table(), "duckdb")


def test_one_query_counts_every_column_with_its_nulls(aggregates):
    counted = value_counts(aggregates, ["city", "size", "flag"])
    city, size, flag = counted["city"], counted["size"], counted["flag"]
    assert (city.values, city.counts.tolist(), city.nulls) == (["rome", "oslo"], [3.0, 1.0], 2)
    assert (size.values, size.counts.tolist(), size.nulls) == ([1, 3, 2], [2.0, 2.0, 1.0], 1)
    assert (flag.values, flag.counts.tolist(), flag.nulls) == ([True, False], [3.0, 1.0], 2)


def test_counts_match_arrow_value_counts_on_a_larger_table():
    rng_values = [f"v{i % 37}" if i % 11 else None for i in range(5000)]
    source = pa.table({"v": rng_values})
    relation = duckdb.connect().from_arrow(source)
    aggregates = Aggregates(lambda q: relation.query("source", q).to_arrow_table(), "duckdb")
    (counted,) = value_counts(aggregates, ["v"]).values()
    expected = pc.value_counts(source.column("v").drop_null()).to_pylist()
    assert dict(zip(counted.values, counted.counts, strict=True)) == {
        e["values"]: e["counts"] for e in expected
    }
    assert counted.nulls == source.column("v").null_count


def test_identifiers_are_quoted_for_the_dialect():
    assert "`a b`" in grouping_sets_sql(["a b"], "spark")
    assert '"a b"' in grouping_sets_sql(["a b"], "duckdb")
    assert "GROUPING SETS" in grouping_sets_sql(["a", "b"], "spark").upper()


def test_the_fit_releases_category_domains_on_the_whole_source_scaled_to_the_sample():
    rows = 100_000
    source = pa.table(
        {
            "city": pa.array(["oslo" if i % 3 == 0 else "rome" for i in range(rows)]),
            "even": pa.array([i % 2 == 0 for i in range(rows)]),
            "size": pa.array([i % 50 for i in range(rows)]),
        }
    )
    relation = duckdb.connect().from_arrow(source)
    counted = SourceRows.of(source)
    pushed = dataclasses.replace(
        counted,
        aggregates=Aggregates(lambda q: relation.query("source", q).to_arrow_table(), "duckdb"),
    )
    said: list[str] = []
    # DP-SGD reads rows: the sample road (the marginal mechanism fits on the engine's counts
    # of every row instead: tests/test_pushdown_marginals.py).
    config = {"epsilon": 1.0, "max_fit_rows": 1000, "rows": 500, "mechanism": "dpsgd"}
    result = synthesize(pushed, config=config, progress=said.append)
    assert "category counts of 2 columns computed by the warehouse" in said
    rate = result.sample_rate
    models = dict(zip(result.schema.names, result.generator.models, strict=True))
    city = dict(zip(models["city"].domain.values, models["city"].domain.counts, strict=True))
    # σ ≈ 20 on the whole table's counts, 0.2 once scaled; the sample's own counts would be off
    # by a binomial sd of ≈ 18.
    assert city["oslo"] == pytest.approx(33_334 * rate, abs=3)
    assert city["rome"] == pytest.approx(66_666 * rate, abs=3)
    assert result.table.num_rows == 500
    assert set(result.table.column("city").to_pylist()) <= {"oslo", "rome"}


@pytest.mark.parametrize("max_parents", [4096, 0])
def test_tree_keys_special_states_and_decimals_in_sql_are_those_of_memory(max_parents, monkeypatch):
    """Every count a numeric domain is released from, by the engine and in memory: edge values
    (subnormals, powers of two, 2^53 + 2, ±inf, NaN, NULL), dates and timestamps, with and
    without public bounds, at every tree level; cells asked for by their parents or (past
    `_MAX_PARENTS`) by their span."""
    monkeypatch.setattr(pushdown_tree, "_MAX_PARENTS", max_parents)
    source = ordered_source(rows=4000)
    relation = duckdb.connect().from_arrow(source)
    aggregates = Aggregates(lambda q: relation.query("source", q).to_arrow_table(), "duckdb")
    for spec in schema_of_arrow(source.schema).columns:
        axis = axis_sql(spec, "duckdb")
        assert axis is not None, spec
        values, states = to_axis(source.column(spec.name), spec)
        for bounds in (None, (-3.5, 1e3)):
            memory = SampledCounts(values, states, bounds)
            by_level = EngineCounts(aggregates, axis, bounds)
            (by_key,) = ordered_counts(aggregates, [(spec, bounds)]).values()
            assert isinstance(by_key, KeyCounts)
            for engine in (by_level, by_key):
                assert engine.specials().tolist() == memory.specials().tolist(), spec.name
                assert engine.decimal_places().tolist() == memory.decimal_places().tolist()
                for level in range(len(LEVEL_BITS)):
                    bits = sum(LEVEL_BITS[: level + 1])
                    cells = np.arange(0, 1 << bits, max(1, (1 << bits) // 5000), dtype=np.int64)
                    held = _held_cells(values[states < 0], bounds, KEY_BITS - bits)
                    cells = np.unique(np.r_[cells, held, held + 1])
                    shift = KEY_BITS - bits
                    assert engine.prefixes(cells, shift).tolist() == (
                        memory.prefixes(cells, shift).tolist()
                    ), (spec.name, bounds, level, type(engine))


def _held_cells(finite: np.ndarray, bounds, shift: int) -> np.ndarray:
    from dbt_synth.domains.tree import to_keys

    if bounds is not None:
        finite = np.clip(finite, *bounds)
    keys = (to_keys(finite) >> np.uint64(64 - KEY_BITS)).astype(np.int64)
    return np.unique(keys >> shift)


@pytest.mark.parametrize("max_keys", [50_000, 0])
def test_a_pushed_numeric_domain_is_the_sample_path_domain_when_the_sample_is_the_table(
    max_keys, monkeypatch
):
    """At rate 1 the engine counts the rows the sample holds: under the same replayed noise the
    release is the same, spend for spend, leaf for leaf; whether the engine sent every key at
    once or each level's cells."""
    monkeypatch.setattr(pushdown_tree, "_MAX_KEYS", max_keys)
    source = ordered_source(rows=3000)
    relation = duckdb.connect().from_arrow(source)
    queries, aggregates = recorded_queries(
        lambda q: relation.query("source", q).to_arrow_table(), "duckdb"
    )
    pushed = dataclasses.replace(SourceRows.of(source), aggregates=aggregates)
    config = {"epsilon": 4.0, "rows": 200, "mechanism": "marginal", "max_fit_rows": 10_000}
    with replayable_noise(7):
        engine = synthesize(pushed, config=config)
    with replayable_noise(7):
        memory = synthesize(source, config=config)
    assert engine.sample_rate == memory.sample_rate == 1.0
    # The last query counted the marginal mechanism's pairs (test_pushdown_marginals.py).
    assert "__dbt_synth_code_" in queries.pop()
    # The engine counted all five columns: how many keys each has, then all their keys, or
    # each column's first level and a query per deeper level.
    if max_keys:
        assert len(queries) == 2 and "GROUPING SETS" in queries[1]
    else:
        assert sum("GROUPING SETS" in q for q in queries) == 5
        assert 1 + 5 * 2 <= len(queries) <= 1 + 5 * len(LEVEL_BITS)
    same_numeric_domains(engine, memory)


def test_the_numeric_queries_hold_no_value_of_the_table():
    """The SQL names columns, constants of the key arithmetic and tree cells (DP output), never
    a value read from the table: planted values are nowhere in it."""
    planted = [987654.125, 123456789.0, 31337.5]
    source = pa.table(
        {
            "amount": pa.array(np.repeat(planted, 400)),
            "units": pa.array(np.repeat([4_242_424, 7_777_777, 5_151_515], 400)),
        }
    )
    relation = duckdb.connect().from_arrow(source)
    queries, aggregates = recorded_queries(
        lambda q: relation.query("source", q).to_arrow_table(), "duckdb"
    )
    pushed = dataclasses.replace(SourceRows.of(source), aggregates=aggregates)
    result = synthesize(pushed, config={"epsilon": 2.0, "rows": 50, "mechanism": "marginal"})
    models = [m for m in result.generator.models if isinstance(m, NumericModel)]
    assert len(models) == 2 and all(m.domain.bin_count for m in models)
    # The marginals' query names the released bin edges (DP output, as the twin's domain is).
    assert "__dbt_synth_code_" in queries.pop()
    assert len(queries) == 2
    numbers = {float(n) for q in queries for n in re.findall(r"\d+(?:\.\d+)?(?:e-?\d+)?", q)}
    for value in [*planted, 4_242_424, 7_777_777, 5_151_515]:
        assert float(value) not in numbers
        assert all(str(value) not in q for q in queries)
