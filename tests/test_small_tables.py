"""Small tables never fail just for being small: coarser DP answers, on real MovieLens rows."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pyarrow as pa
import pytest

from dbt_synth import SynthError, synthesize
from dbt_synth.accounting import PrivacyAccountant
from dbt_synth.axis import to_axis, type_range
from dbt_synth.domains.numeric import dp_numeric_domain, widened
from dbt_synth.noise import NoiseSource, replayable_noise
from dbt_synth.schema import column_spec
from fixtures.real_data import real_table


def _ratings(rows: int) -> pd.DataFrame:
    """`rows` real MovieLens ratings (dslabs::movielens), typed as a warehouse would hold them."""
    ratings = real_table("dslabs", "movielens").sample(rows, random_state=0)
    return pd.DataFrame(
        {
            "user_id": ratings["userId"].to_numpy(),
            "movie_id": ratings["movieId"].to_numpy(),
            "stars": ratings["rating"].to_numpy(),
            "rated_on": pd.to_datetime(ratings["timestamp"], unit="s").dt.date.to_numpy(),
            "year": ratings["year"].astype("Int64").to_numpy(),
            "genres": ratings["genres"].to_numpy(),
        }
    )


def _tree(values: pd.Series, spec_type: str, rho: float, seed: int):
    spec = column_spec("c", spec_type, nullable=False)
    axis, states = to_axis(pa.array(values), spec)
    domain = dp_numeric_domain(
        axis,
        states,
        PrivacyAccountant(1.0, 1e-5),
        rho,
        max_bins=16,
        nullable=False,
        integer=True,
        noise=NoiseSource.replayed(seed),
    )
    return spec, domain


def test_a_date_column_the_tree_cannot_resolve_widens_to_the_type_range():
    # 99 dates at a ρ of 2e-4 (a 99-row, 6-column table at ε = 1): the first level's noise is
    # σ ≈ 79, so its 5σ threshold needs ~400 rows in one cell and no leaf survives.
    spec, domain = _tree(_ratings(99)["rated_on"], "DATE", 2e-4, seed=1)
    assert domain.cardinality == 0
    wide = widened(domain, *type_range(spec), 99.0, source="the type's range")
    assert wide.fallback == "the type's range"
    assert wide.bin_count == 1
    assert (wide.low[0], wide.high[0]) == type_range(spec)
    assert wide.mass[0] == 99.0
    # The range is 0001-01-01 .. 9999-12-31, which every warehouse (and Python) holds.
    first, last = (dt.date(1970, 1, 1) + dt.timedelta(days=d) for d in type_range(spec))
    assert (first, last) == (dt.date(1, 1, 1), dt.date(9999, 12, 31))


def test_a_resolved_domain_is_left_as_the_tree_found_it():
    spec, domain = _tree(_ratings(20_000)["rated_on"], "DATE", 2e-3, seed=2)
    assert domain.bin_count >= 8
    assert widened(domain, *type_range(spec), 20_000.0, source="the type's range") is domain


@pytest.fixture(scope="module")
def small_twin():
    progress: list[str] = []
    # Which columns resolve nothing at this size depends on the noise, so it is replayed here.
    with replayable_noise(0):
        result = synthesize(_ratings(99), epsilon=1.0, seed=4, progress=progress.append)
    return result, progress


def test_a_99_row_table_twins_at_epsilon_one(small_twin):
    result, _ = small_twin
    twin = result.table.to_pandas()
    assert list(twin.columns) == ["user_id", "movie_id", "stars", "rated_on", "year", "genres"]
    assert result.epsilon == pytest.approx(1.0, rel=1e-4)
    assert len(twin) > 0
    # Dates stay valid dates inside the type's range even when nothing was resolved.
    # (Read from Arrow: pandas' nanosecond timestamps cannot hold the type's whole range.)
    days = [d for d in result.table.column("rated_on").to_pylist() if d is not None]
    assert min(days) >= dt.date(1, 1, 1) and max(days) <= dt.date(9999, 12, 31)


def test_a_fallback_is_recorded_and_says_what_to_declare(small_twin):
    result, progress = small_twin
    treatments = {c.name: c.treatment for c in result.columns}
    widened_columns = [name for name, how in treatments.items() if "fallback" in how]
    # At this size the date column (and ids spread over several orders of magnitude) resolve
    # nothing; every such column is named in the ledger's treatment and in the log.
    assert "rated_on" in widened_columns
    for name in widened_columns:
        assert "declare public min/max in synth.columns" in treatments[name]
        assert any(line.startswith(f"column {name}: nothing resolved") for line in progress)
    assert treatments["genres"].startswith("text")


def test_declared_bounds_are_the_fallback_when_nothing_resolves_inside_them():
    ratings = _ratings(99)[["stars", "user_id", "movie_id"]]
    columns = {"stars": {"min": 0.5, "max": 5.0}}
    result = synthesize(ratings, epsilon=0.1, seed=5, columns=columns)
    treatments = {c.name: c.treatment for c in result.columns}
    assert "values drawn from the declared bounds" in treatments["stars"]
    stars = result.table.column("stars").to_numpy()
    assert stars.min() >= 0.5 and stars.max() <= 5.0


@pytest.mark.parametrize(
    ("column", "treatment", "declare"),
    [
        ("genres", "text: generated in DP formats", "declare public categories"),
        ("year", "numeric: 1 DP quantile bins", "declare public min/max"),
    ],
)
def test_a_declared_category_with_nothing_common_enough_falls_back(column, treatment, declare):
    # 30 rows: no genre string and no release year is held by enough rows to clear the
    # threshold. A string becomes generated text, an integer its numeric domain.
    ratings = _ratings(30)[[column, "stars"]]
    config = {"columns": {column: {"role": "category"}}}
    # The fallback happens when the noisy counts keep nothing, so the noise is replayed here.
    with replayable_noise(6):
        result = synthesize(ratings, epsilon=1.0, seed=6, config=config)
    how = {c.name: c.treatment for c in result.columns}[column]
    assert how.startswith(treatment)
    assert declare in how


def test_a_one_row_table_still_gets_a_twin_of_its_types():
    # What used to fail with "no value of this column is common enough": a twin of one row is
    # all fallback, but it is a twin, and its types are the source's.
    result = synthesize(pa.table({"a": pa.array([1], pa.int32()), "x": [2.5]}), seed=7)
    assert result.table.schema.field("a").type == pa.int64()
    low, high = type_range(column_spec("a", "INTEGER"))
    values = result.table.column("a").to_numpy()
    assert ((values >= low) & (values <= high)).all()
    assert all("fallback" in c.treatment for c in result.columns)


def test_a_small_table_spends_a_second_count_and_keeps_its_size():
    # At 1 % of ε = 1 the count's σ is about 50 rows: a 99-row table's twin came out with 20
    # rows. Below 1,000 rows a second count at 10 % brings σ to about 12 rows.
    ratings = _ratings(99)[["stars", "rated_on"]]
    sizes = []
    for seed in range(5):
        result = synthesize(ratings, epsilon=1.0, seed=seed)
        counts = [s for s in result.spends if s.part == "count"]
        assert len(counts) == 2 and "small table" in counts[1].detail
        assert result.epsilon == pytest.approx(1.0, rel=1e-4)
        sizes.append(result.rows)
    assert max(abs(size - 99) for size in sizes) < 40
    large = synthesize(_ratings(2_000)[["stars"]], epsilon=1.0, seed=0)
    assert [s.part for s in large.spends].count("count") == 1


@pytest.mark.parametrize(
    "bounds",
    [("2000-01-01", "2016-12-31"), (dt.date(2000, 1, 1), dt.date(2016, 12, 31))],
    ids=["iso_strings", "yaml_dates"],
)
def test_a_date_column_takes_iso_bounds_as_its_fallback(bounds):
    # What the fallback log asks for, for a date: `min: '2000-01-01'` (or YAML's own dates).
    ratings = _ratings(99)[["rated_on", "stars", "user_id"]]
    columns = {"rated_on": {"min": bounds[0], "max": bounds[1]}}
    result = synthesize(ratings, epsilon=0.1, seed=8, columns=columns)
    how = {c.name: c.treatment for c in result.columns}["rated_on"]
    assert "values drawn from the declared bounds" in how
    days = pd.to_datetime(result.table.to_pandas()["rated_on"]).dt.date
    assert days.min() >= dt.date(2000, 1, 1) and days.max() <= dt.date(2016, 12, 31)


def test_a_bound_that_is_not_a_value_of_the_type_gets_one_clear_error():
    with pytest.raises(SynthError) as raised:
        synthesize(_ratings(99)[["rated_on"]], columns={"rated_on": {"min": "soon", "max": 3}})
    assert "public bound 'soon' is neither a number nor an ISO date/time" in str(raised.value)
    assert raised.value.column == "rated_on"
