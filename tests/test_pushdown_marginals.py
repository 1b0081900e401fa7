"""The marginal mechanism's counts computed by the engine (dbt_synth/pushdown_marginals.py), on a
real DuckDB: codes in SQL equal to `encode`, the same fit as the driver's when the sample is the
whole table, the whole source counted (no sample drawn) when it would be smaller, and the
sample road kept where a column's codes have no SQL form. Spark: tests/test_pushdown_spark.py.
"""

from __future__ import annotations

import dataclasses

import duckdb
import numpy as np
import pyarrow as pa
import pytest

from dbt_synth import synthesize
from dbt_synth.config import parse_config
from dbt_synth.encoding import CategoryModel, NumericModel
from dbt_synth.noise import replayable_noise
from dbt_synth.pushdown import Aggregates, SourceCounts, value_counts
from dbt_synth.pushdown_marginals import PushedCodes, pushed_codes
from dbt_synth.source_rows import SourceRows
from tests.pushdown_cases import coded_source, recorded_queries, same_code_counts

CONFIG = {"epsilon": 4.0, "rows": 300, "mechanism": "marginal", "seed": 3}


def _engine(source: pa.Table) -> tuple[list[str], SourceRows]:
    """`source` as a warehouse that runs aggregate SQL (DuckDB), with the queries it was sent."""
    relation = duckdb.connect().from_arrow(source)
    queries, aggregates = recorded_queries(
        lambda q: relation.query("source", q).to_arrow_table(), "duckdb"
    )
    return queries, dataclasses.replace(SourceRows.of(source), aggregates=aggregates)


def _aggregates(source: pa.Table) -> Aggregates:
    relation = duckdb.connect().from_arrow(source)
    return Aggregates(lambda q: relation.query("source", q).to_arrow_table(), "duckdb")


def test_codes_and_counts_computed_in_sql_are_the_drivers():
    source = coded_source(rows=4000)
    result = synthesize(source, config=CONFIG)
    models = {m.spec.name: m for m in result.generator.models}
    # The table exercises what the SQL must get right: kept and unkept special states, `other`.
    x, y, city = models["x"], models["y"], models["city"]
    assert isinstance(x, NumericModel) and {"nan", "+inf", "-inf"} <= set(x.domain.specials)
    assert isinstance(y, NumericModel) and "nan" not in y.domain.specials
    assert isinstance(city, CategoryModel) and city.code_map()[2] == city.cardinality - 1
    assert same_code_counts(result, source, _aggregates(source)) == 7


def test_one_column_is_counted_on_its_own():
    source = coded_source(rows=500).select(["city"])
    result = synthesize(source, config=CONFIG)
    assert same_code_counts(result, source, _aggregates(source)) == 1


def test_a_pushed_fit_is_the_driver_fit_when_the_sample_is_the_table():
    """At rate 1 the engine counts the rows the driver would encode: under the same replayed
    noise, the same releases, spend for spend, and the same twin; no row reaches the driver."""
    source = coded_source(rows=3000)
    queries, pushed = _engine(source)
    said: list[str] = []
    with replayable_noise(11):
        engine = synthesize(pushed, config=CONFIG, progress=said.append)
    with replayable_noise(11):
        driver = synthesize(source, config=CONFIG)
    assert engine.sample_rate == driver.sample_rate == 1.0
    assert "1- and 2-way counts of 7 columns computed by the warehouse" in said
    assert not any("source rows read" in line for line in said)
    assert sum("GROUPING SETS" in q.upper() for q in queries) == 3  # categories, numerics, pairs
    assert [(s.part, s.detail, s.rdp.tolist()) for s in engine.spends] == [
        (s.part, s.detail, s.rdp.tolist()) for s in driver.spends
    ]
    assert engine.table.to_pandas().equals(driver.table.to_pandas())


def test_the_whole_source_is_counted_instead_of_a_sample_and_no_amplification_is_claimed():
    rows = 60_000
    rng = np.random.default_rng(5)
    source = pa.table(
        {
            "city": pa.array(rng.choice(["oslo", "rome", "pisa"], rows, p=[0.6, 0.3, 0.1])),
            "size": pa.array(rng.integers(0, 100, rows)),
            "even": pa.array(rng.random(rows) < 0.5),
        }
    )
    _, pushed = _engine(source)
    said: list[str] = []
    config = {"epsilon": 1.0, "max_fit_rows": 1000, "rows": 20_000, "mechanism": "marginal"}
    with replayable_noise(4):
        result = synthesize(pushed, config=config, progress=said.append)
    with replayable_noise(4):
        sampled = synthesize(source, config=config)
    # The same budget, the rounds chosen at the sample's scale (`FitInputs.schedule_rows`):
    # no more than the sample road's, though the counts are 60 times larger.
    assert sampled.sample_rate < 0.02
    assert 1 <= result.generator.mechanism.rounds <= sampled.generator.mechanism.rounds
    # Released over all 60,000 rows, a prior is weighted as the same release on the sample:
    # weighted by its true precision (σ·rate) it would stop the fit after a few rounds.
    for pushed_model, sampled_model in zip(
        result.generator.models, sampled.generator.models, strict=True
    ):
        assert pushed_model.prior is not None
        assert pushed_model.prior.sigma == pytest.approx(sampled_model.prior.sigma)
    # The generator saw every row: its share is 1, the sample was never drawn.
    assert result.sample_rate == 1.0
    assert not any("source rows read" in line for line in said)
    # Every spend is a plain Gaussian or exponential release: none claims a sampling rate.
    assert all(s.sample_rate is None for s in result.spends)
    shares = result.table.column("city").to_pandas().value_counts(normalize=True)
    assert shares["oslo"] == pytest.approx(0.6, abs=0.03)
    assert shares["pisa"] == pytest.approx(0.1, abs=0.03)


def test_a_column_without_sql_codes_keeps_the_sample_road():
    """A role column's head is learned from the sample, so its codes are not the engine's: the
    whole table's marginals are counted on the sample, as before. A text column is not
    modelled: the sample is drawn for its formats, the marginals still pushed."""
    rows = 2000
    rng = np.random.default_rng(3)
    base = coded_source(rows).select(["city", "k"])
    names = pa.array(rng.choice(["Ada", "Bo", "Cy"], rows))
    notes = pa.array([f"note {i}" for i in range(rows)])
    said: list[str] = []
    role = base.append_column("who", names)
    _, pushed = _engine(role)
    config = {**CONFIG, "columns": {"who": {"role": "first_name"}}}
    result = synthesize(pushed, config=config, progress=said.append)
    assert "marginals counted on the sample: column who's domain was learned on the sample" in said
    assert "source rows read" in said
    assert result.table.num_rows == 300
    said.clear()
    text = base.append_column("note", notes)
    _, pushed = _engine(text)
    result = synthesize(
        pushed, config={**CONFIG, "columns": {"note": {"role": "text"}}}, progress=said.append
    )
    assert "1- and 2-way counts of 2 columns computed by the warehouse" in said
    assert "source rows read" in said
    assert result.table.num_rows == 300


def test_pushed_codes_says_why_the_sample_road_is_taken():
    """`pushed_codes` returns the codes in SQL, or no codes and the reason, never both."""
    source = coded_source(rows=500).select(["city", "k"])
    result = synthesize(source, config=CONFIG)
    columns = [(m.spec, m) for m in result.generator.models]
    config = parse_config(CONFIG)
    declined = pushed_codes(None, columns, config)
    assert declined == PushedCodes(None, "the warehouse does not run aggregate SQL")
    counts = SourceCounts({}, 500.0, 1.0, _aggregates(source), ())
    learned = "column city's domain was learned on the sample"
    assert pushed_codes(counts, columns, config) == PushedCodes(None, learned)
    aggregates = _aggregates(source)
    names = [spec.name for spec, model in columns if isinstance(model, CategoryModel)]
    counted = SourceCounts(value_counts(aggregates, names), 500.0, 1.0, aggregates, ())
    pushed = pushed_codes(counted, columns, config)
    assert pushed.fallback == "" and pushed.codes is not None
    assert [c.model for c in pushed.codes] == [model for _, model in columns]
