"""The mixture estimator's sampler: marginals up to rounding, not up to sampling noise."""

from __future__ import annotations

import numpy as np
import torch

from dbt_synth.mechanisms.mixture import MixtureModel, systematic_round


def _model(components: int, seed: int) -> MixtureModel:
    model = MixtureModel((3, 5, 2), components, seed)
    with torch.no_grad():
        model.weight_logits.copy_(torch.randn(components, dtype=torch.float64))
        model.logits.mul_(4.0)
    return model


def test_sampled_one_way_counts_are_the_model_s_up_to_rounding():
    model = _model(8, seed=3)
    n = 20_000
    codes = model.sample(n, np.random.default_rng(0))
    for column, cardinality in enumerate(model.cardinalities):
        counts = np.bincount(codes[:, column], minlength=cardinality)
        expected = n * model.marginal((column,))
        # Rounding is at most one row per component and value (plus one per component's size);
        # independent draws would miss by about √(n·p) ≈ 50–70 rows here.
        assert np.abs(counts - expected).max() <= 2 * 8
    assert codes.shape == (n, 3)


def test_columns_stay_independent_within_a_component_and_rows_are_shuffled():
    model = _model(1, seed=4)
    n = 20_000
    codes = model.sample(n, np.random.default_rng(1))
    joint = np.histogram2d(codes[:, 0], codes[:, 1], bins=(3, 5), range=((0, 3), (0, 5)))[0]
    expected = n * model.marginal((0, 1))
    # One component: the pair is a product; within-component shuffling keeps it one.
    assert np.abs(joint - expected).max() < 4 * np.sqrt(expected.max())
    # No run of equal codes left over from building the columns value by value.
    assert (np.diff(codes[:2000, 1]) != 0).mean() > 0.3


def test_systematic_rounding_keeps_totals_and_expectations():
    rng = np.random.default_rng(2)
    expected = np.array([[0.25, 0.25, 0.5], [1.6, 0.2, 0.2]])
    totals = np.array([1, 2])
    draws = np.stack([systematic_round(expected, totals, rng) for _ in range(4000)])
    assert (draws.sum(axis=2) == totals).all()
    assert (draws >= np.floor(expected)).all() and (draws <= np.ceil(expected)).all()
    assert np.allclose(draws.mean(axis=0), expected, atol=0.03)
