"""The fidelity benchmark's scoring module on inputs whose scores are known by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bench.fidelity.metrics import discretize, fidelity, tvd, utility_auc


def test_tvd_of_identical_is_zero_and_of_disjoint_is_one():
    assert tvd(np.array([3, 1, 0]), np.array([6, 2, 0])) == 0.0
    assert tvd(np.array([5, 0]), np.array([0, 7])) == 1.0
    assert tvd(np.array([1, 1]), np.array([1, 0])) == pytest.approx(0.5)


def test_numerics_fall_into_ten_quantile_bins_of_the_real_data_with_null_apart():
    real = pd.Series(np.arange(100, dtype=float))
    other = pd.Series([-50.0, 0.0, 9.5, 10.0, 99.0, 1e9, np.nan])
    (real_codes, other_codes), cells = discretize(real, other, categorical=False)
    assert cells == 11  # 10 bins + NULL
    assert np.bincount(real_codes).tolist() == [10] * 9 + [10]
    # Beyond the real range lands in the end bins; NULL gets its own cell.
    assert other_codes.tolist() == [0, 0, 0, 1, 9, 9, 10]


def test_unknown_categories_share_one_cell_and_null_has_its_own():
    real = pd.Series(["a", "b", None, "a"])
    other = pd.Series(["b", "zzz", None, "yyy"])
    (real_codes, other_codes), cells = discretize(real, other, categorical=True)
    assert cells == 4
    assert real_codes.tolist() == [0, 1, 3, 0]
    assert other_codes.tolist() == [1, 2, 3, 2]


def test_fidelity_of_a_table_with_itself_is_zero_and_of_a_disjoint_table_is_one():
    rng = np.random.default_rng(0)
    real = pd.DataFrame(
        {"x": rng.normal(size=500), "c": rng.choice(["u", "v"], 500), "d": rng.choice(["p"], 500)}
    )
    same = fidelity(real, real.sample(frac=1.0, random_state=1), {"c", "d"})
    assert same.tvd_1way == 0.0
    assert same.tvd_2way == 0.0
    disjoint = pd.DataFrame({"x": [np.nan] * 300, "c": ["w"] * 300, "d": ["q"] * 300})
    apart = fidelity(real, disjoint, {"c", "d"})
    assert apart.tvd_1way == 1.0
    assert apart.tvd_2way == 1.0
    assert apart.per_column == {"x": 1.0, "c": 1.0, "d": 1.0}


def test_two_way_tvd_sees_a_broken_dependence_that_one_way_tvd_misses():
    rng = np.random.default_rng(1)
    a = rng.choice(["0", "1"], 4000)
    real = pd.DataFrame({"a": a, "b": a})  # b copies a
    shuffled = pd.DataFrame({"a": a, "b": rng.permutation(a)})  # same 1-ways, independent
    scores = fidelity(real, shuffled, {"a", "b"})
    assert scores.tvd_1way == 0.0
    assert scores.tvd_2way == pytest.approx(0.5, abs=0.02)


def test_utility_auc_is_high_for_a_learnable_target_and_one_half_for_one_class():
    rng = np.random.default_rng(2)
    n = 2000
    x = rng.normal(size=n)
    table = pd.DataFrame({"x": x, "c": np.where(x > 0, "hi", "lo"), "y": x + rng.normal(0, 0.3, n)})
    task = {
        "target": "y",
        "threshold": 0.0,
        "drop": (),
        "categorical": {"c"},
        "categories": {"c": ["hi", "lo"]},
    }
    assert utility_auc(table.iloc[:1500], table.iloc[1500:], **task) > 0.9
    one_class = table.iloc[:1500].assign(y=5.0)
    assert utility_auc(one_class, table.iloc[1500:], **task) == 0.5


def test_utility_auc_survives_a_synthetic_column_that_is_all_null():
    rng = np.random.default_rng(3)
    x = rng.normal(size=1000)
    table = pd.DataFrame({"x": x, "empty": np.nan, "y": x})
    task = {"target": "y", "threshold": 0.0, "drop": (), "categorical": set(), "categories": {}}
    assert utility_auc(table.iloc[:800], table.iloc[800:], **task) > 0.95
