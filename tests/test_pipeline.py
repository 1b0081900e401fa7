"""synthesize(): the whole DP pipeline on real data, without dbt."""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from dbt_synth import SynthError, synthesize
from dbt_synth.noise import replayable_noise
from dbt_synth.warehouse.duckdb import schema_from_duckdb
from fixtures.real_data import cps1988


@pytest.fixture(scope="module")
def cps() -> pd.DataFrame:
    return cps1988()


@pytest.mark.parametrize("epsilon", [0.3, 1.0, 3.0])
def test_spent_epsilon_meets_the_target(cps, epsilon):
    result = synthesize(cps.sample(8000, random_state=0), epsilon=epsilon, delta=1e-5, seed=1)
    assert result.epsilon == pytest.approx(epsilon, rel=1e-4)
    assert result.epsilon <= epsilon * (1 + 1e-6)
    assert result.delta == 1e-5


def _noisy_counts(result) -> np.ndarray:
    """Every noisy count the fit's column domains released."""
    models = result.generator.models
    return np.concatenate([m.domain.code_counts() for m in models if hasattr(m, "domain")])


def test_same_seed_never_replays_the_fit_noise(cps):
    sample = cps.sample(5000, random_state=1)
    first = synthesize(sample, epsilon=1.0, seed=11)
    again = synthesize(sample, epsilon=1.0, seed=11)
    # The same data and seed, yet fresh noise: the measurements differ.
    assert not np.array_equal(_noisy_counts(first), _noisy_counts(again))
    assert first.seed_fixed and not first.noise_replayable
    # The seed fixes the sampling of rows from one fitted model.
    assert first.generator.table().equals(first.table)
    assert not synthesize(sample, epsilon=1.0).seed_fixed


def test_a_test_can_replay_the_fit_noise_from_python_only(cps):
    sample = cps.sample(5000, random_state=1)
    with replayable_noise(5):
        first = synthesize(sample, epsilon=1.0, seed=11)
    with replayable_noise(5):
        again = synthesize(sample, epsilon=1.0, seed=11).table
    with replayable_noise(5):
        other = synthesize(sample, epsilon=1.0, seed=12).table
    assert first.noise_replayable
    assert first.table.equals(again)
    assert not first.table.equals(other)


def test_default_delta_is_one_over_ten_n(cps):
    result = synthesize(cps, epsilon=1.0, seed=2)
    assert result.delta == pytest.approx(1 / (10 * result.rows_estimate))


def test_twin_marginals_are_close_at_moderate_epsilon(cps):
    twin = synthesize(cps, epsilon=3.0, delta=1e-5, seed=3).table.to_pandas()
    assert list(twin.columns) == list(cps.columns)
    for column in ["ethnicity", "smsa", "region", "parttime"]:
        real = cps[column].value_counts(normalize=True)
        fake = twin[column].value_counts(normalize=True)
        assert 0.5 * real.sub(fake, fill_value=0).abs().sum() < 0.03, column
    for column in ["wage", "education", "experience"]:
        edges = np.unique(np.quantile(cps[column], np.linspace(0, 1, 11)))
        real = np.histogram(cps[column], edges)[0] / len(cps)
        fake = np.histogram(np.clip(twin[column], edges[0], edges[-1]), edges)[0] / len(twin)
        assert 0.5 * np.abs(real - fake).sum() < 0.08, column
    # The joint structure survives: wage still rises with education.
    assert (
        twin.groupby("education")["wage"].median().loc[16]
        > twin.groupby("education")["wage"].median().loc[10]
    )


def test_rare_categories_and_a_planted_canary_never_appear(cps):
    canary = pd.DataFrame(
        [
            {
                "wage": 987654.32,
                "education": 0,
                "experience": 70,
                "ethnicity": "martian",
                "smsa": "orbit",
                "region": "atlantis",
                "parttime": "never",
            }
        ]
    )
    rare = cps.sample(20, random_state=4).assign(region="lemuria")
    data = pd.concat([cps, rare, canary], ignore_index=True)
    for seed in range(3):
        twin = synthesize(data, epsilon=3.0, seed=seed).table.to_pandas()
        values = set(twin[["ethnicity", "smsa", "region", "parttime"]].to_numpy().ravel())
        assert not values & {"martian", "orbit", "atlantis", "never", "lemuria"}
        assert twin["wage"].max() < 100000


def test_mixed_types_come_back_as_the_source_types(cps):
    frame = cps.sample(6000, random_state=5).reset_index(drop=True)
    rng = np.random.default_rng(0)
    con = duckdb.connect()
    con.register("frame", frame)
    con.register("noise", pd.DataFrame({"r": rng.random(len(frame))}))
    con.execute(
        """
        create table source as select
            wage::decimal(10, 2) as wage_dec,
            education::smallint as education,
            (date '1988-03-01' + cast(experience as integer)) as hired_on,
            (timestamp '1988-03-01 08:00:00' + to_seconds(cast(wage * 60 as bigint))) as seen_at,
            (timestamptz '1988-03-01 08:00:00+00' + to_minutes(cast(experience as bigint)))
                as seen_at_tz,
            (parttime = 'yes') as parttime,
            case when experience > 30 then null else region end as region,
            case when experience % 7 = 0 then null else wage end as wage_or_null
        from frame
        """
    )
    source = con.table("source")
    schema = schema_from_duckdb(source, con)
    result = synthesize(source.arrow().read_all(), schema=schema, epsilon=2.0, seed=6)
    con.register("twin_arrow", result.table)
    casts = ", ".join(f'cast("{c.name}" as {c.sql_type}) as "{c.name}"' for c in schema.columns)
    twin = con.sql(f"select {casts} from twin_arrow")
    assert [str(t) for t in twin.types] == [str(t) for t in source.types]
    stats = con.execute(
        """
        select count(*) filter (where region is null) / count(*),
               count(*) filter (where wage_or_null is null) / count(*),
               min(hired_on), max(hired_on), min(seen_at_tz)
        from twin_arrow
        """
    ).fetchone()
    real = con.execute(
        """
        select count(*) filter (where region is null) / count(*),
               count(*) filter (where wage_or_null is null) / count(*)
        from source
        """
    ).fetchone()
    assert stats[0] == pytest.approx(real[0], abs=0.03)
    assert stats[1] == pytest.approx(real[1], abs=0.03)
    assert (
        pd.Timestamp("1988-01-01").date()
        <= stats[2]
        <= stats[3]
        < pd.Timestamp("1988-06-01").date()
    )


def test_free_text_is_generated_not_copied():
    names = [f"{first} {last}" for first in ("Ann", "Bob", "Cy", "Dee") for last in range(3000)]
    table = pa.table({"name": names, "group": ["a", "b"] * (len(names) // 2)})
    result = synthesize(table, epsilon=1.0, seed=7)
    treatments = {c.name: c.treatment for c in result.columns}
    assert treatments["name"].startswith("text")
    generated = result.table.column("name").to_pylist()
    # Short random strings in a real format can meet a real one by chance, never more than that.
    assert len(set(generated) & set(names)) < 0.005 * len(generated)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda frame: frame.iloc[:0], "is empty"),
        (lambda frame: frame.assign(tags=[[1, 2]] * len(frame)), "cannot be modelled"),
    ],
)
def test_bad_sources_get_one_clear_error(cps, change, message):
    with pytest.raises(SynthError) as raised:
        synthesize(change(cps.head(200)), epsilon=1.0, model="my_twin")
    text = str(raised.value)
    assert message in text
    assert "model 'my_twin'" in text
    assert "Fix:" in text


def test_unsupported_columns_can_be_emitted_as_null(cps):
    frame = cps.head(3000).assign(tags=[[1, 2]] * 3000)
    result = synthesize(frame, epsilon=1.0, seed=8, unsupported="null")
    assert result.table.column("tags").null_count == result.table.num_rows


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"epsilon": 0}, "epsilon must be a positive"),
        ({"epsilon": -1}, "epsilon must be a positive"),
        ({"epsilon": 1, "delta": 2}, "delta must be in (0, 1)"),
        ({"epsilon": 1, "mechanism": "magic"}, "mechanism 'magic'"),
        ({"epsilon": 1, "epsilonn": 2}, "unknown synth config key"),
        ({"epsilon": 1, "columns": {"wage": {"rol": "text"}}}, "unknown column setting(s) ['rol']"),
        ({"epsilon": 1, "columns": {"wage": {"min": 1}}}, "need both min and max"),
        ({"epsilon": 1, "columns": {"nope": {"role": "text"}}}, "not in the source"),
    ],
)
def test_bad_config_gets_one_clear_error(cps, config, message):
    with pytest.raises(SynthError) as raised:
        synthesize(cps.head(100), config=config, model="my_twin")
    assert message in str(raised.value)
    assert "model 'my_twin'" in str(raised.value)


def test_primary_keys_are_new_and_unique(cps):
    frame = cps.head(4000).reset_index(names="person_id")
    frame["person_id"] += 10_000
    twin = synthesize(frame, epsilon=1.0, seed=9, primary_key="person_id").table.to_pandas()
    assert twin["person_id"].is_unique
    assert not set(twin["person_id"]) & set(frame["person_id"])
