"""The dense estimator: the whole joint as one array, fitted to noisy marginals, and its sampler."""

from __future__ import annotations

from itertools import combinations

import numpy as np
import pytest

from dbt_synth import synthesize
from dbt_synth.accounting import PrivacyAccountant
from dbt_synth.mechanisms.base import EncodedTable
from dbt_synth.mechanisms.dense import DenseModel
from dbt_synth.mechanisms.marginal import MarginalMechanism
from dbt_synth.mechanisms.mixture import Measurement, MixtureModel, systematic_round
from dbt_synth.mechanisms.repair import repair
from dbt_synth.noise import NoiseSource
from dbt_synth.store.codec import decode, encode
from fixtures.real_data import cps1988

CARDS = (3, 4, 2, 5)


def _pairwise_joint(seed: int, cards: tuple[int, ...] = CARDS) -> np.ndarray:
    """A distribution with pair interactions only: the family the dense fit searches."""
    rng = np.random.default_rng(seed)
    log_p = np.zeros(cards)
    for a, b in combinations(range(len(cards)), 2):
        shape = [1] * len(cards)
        shape[a], shape[b] = cards[a], cards[b]
        log_p = log_p + rng.normal(0, 0.8, (cards[a], cards[b])).reshape(shape)
    p = np.exp(log_p)
    return p / p.sum()


def _exact_measurements(joint: np.ndarray, total: float) -> list[Measurement]:
    d = len(CARDS)
    cliques = [(a,) for a in range(d)] + list(combinations(range(d), 2))
    return [
        Measurement(c, total * joint.sum(axis=tuple(x for x in range(d) if x not in c)), 10.0)
        for c in cliques
    ]


def _fitted(seed: int = 0, steps: int = 1500) -> tuple[DenseModel, np.ndarray]:
    joint = _pairwise_joint(seed)
    measurements = _exact_measurements(joint, 5000.0)
    model = DenseModel(CARDS)
    model.initialise({m.clique[0]: m.counts / 5000.0 for m in measurements[: len(CARDS)]})
    model.fit(measurements, 5000.0, steps, 16.0)
    return model, joint


def test_exact_marginals_recover_a_pairwise_joint():
    model, joint = _fitted()
    assert 0.5 * np.abs(model.probabilities() - joint).sum() < 1e-3
    assert np.allclose(model.marginal((1, 3)), joint.sum(axis=(0, 2)), atol=1e-4)
    assert np.allclose(model.marginal((3, 1)), joint.sum(axis=(0, 2)).T, atol=1e-4)
    singles, pairs = model.joint()
    offsets = model.offsets
    assert np.allclose(singles[offsets[2] : offsets[3]], joint.sum(axis=(0, 1, 3)), atol=1e-4)
    block = pairs[offsets[0] : offsets[1], offsets[2] : offsets[3]]
    assert np.allclose(block, joint.sum(axis=(1, 3)), atol=1e-4)
    assert np.isclose(singles.sum(), len(CARDS)) and np.isclose(model.probabilities().sum(), 1)


def test_a_fit_is_deterministic_and_more_steps_fit_better():
    first, joint = _fitted(seed=1, steps=300)
    again, _ = _fitted(seed=1, steps=300)
    assert np.array_equal(first.log_probs, again.log_probs)
    longer, _ = _fitted(seed=1, steps=1500)
    assert (
        np.abs(longer.probabilities() - joint).sum() < np.abs(first.probabilities() - joint).sum()
    )


def test_a_wide_table_s_cell_count_does_not_overflow():
    assert DenseModel.cells((100,) * 300) == 100**300
    assert DenseModel.cells((100,) * 300) > MarginalMechanism().dense_cells


def test_unsorted_cliques_are_refused():
    model = DenseModel(CARDS)
    with pytest.raises(ValueError, match="increasing order"):
        model.fit([Measurement((2, 0), np.ones((2, 3)), 1.0)], 6.0, 10, 1.0)


def test_sampled_cells_are_the_model_s_up_to_rounding():
    model, _ = _fitted()
    n = 20_000
    codes = model.sample(n, np.random.default_rng(0))
    assert codes.shape == (n, len(CARDS)) and codes.dtype == np.int32
    counts = np.zeros(CARDS)
    np.add.at(counts, tuple(codes.T), 1)
    # Every cell is its expected count rounded down or up, give or take a row the repair pass
    # moved for the pair marginals; independent draws would miss by about √(n·p), up to ~30
    # rows here.
    assert np.abs(counts - n * model.probabilities()).max() < 2
    # Chi-square of the cells against the table: far below its degrees of freedom.
    expected = n * model.probabilities()
    assert ((counts - expected) ** 2 / expected).sum() < 0.1 * expected.size
    # The rows are shuffled, not in cell order.
    assert (np.diff(codes[:2000, 0]) != 0).mean() > 0.3


def test_sampling_given_allowed_codes_draws_the_exact_conditional():
    model, _ = _fitted()
    n = 10_000
    allowed = np.array([1, 3])
    codes = model.sample(n, np.random.default_rng(2), given=(1, allowed))
    assert set(np.unique(codes[:, 1])) <= {1, 3}
    conditional = model.probabilities()[:, allowed].sum(axis=(1, 2, 3))
    counts = np.bincount(codes[:, 0], minlength=CARDS[0])
    assert np.abs(counts - n * conditional / conditional.sum()).max() <= 2
    with pytest.raises(ValueError, match="no mass"):
        model.sample(10, np.random.default_rng(0), given=(1, np.array([], dtype=int)))


@pytest.fixture(scope="module")
def small_fit():
    data = cps1988().sample(2000, random_state=5).reset_index(drop=True)
    return synthesize(data, epsilon=1.0, delta=1e-5, seed=4, mechanism="marginal")


def test_the_mechanism_picks_the_dense_estimator_for_a_small_domain_and_spends_the_budget(
    small_fit,
):
    mechanism = small_fit.generator.mechanism
    assert isinstance(mechanism._model, DenseModel)
    assert small_fit.epsilon == pytest.approx(1.0, rel=1e-4) and small_fit.epsilon <= 1.0 + 1e-6
    assert mechanism.rounds > 0
    assert small_fit.table.num_rows == pytest.approx(small_fit.rows_estimate, abs=1)


def test_a_stored_dense_model_loads_and_samples_the_same_codes(small_fit):
    mechanism = small_fit.generator.mechanism
    document, blob = encode(mechanism)
    loaded = decode(document, blob)
    assert isinstance(loaded._model, DenseModel)
    assert np.array_equal(loaded._model.log_probs, mechanism._model.log_probs)
    rows = [m.sample(500, np.random.default_rng(7)) for m in (mechanism, loaded)]
    assert np.array_equal(*rows)


@pytest.mark.parametrize(("limit", "estimator"), [(24, DenseModel), (23, MixtureModel)])
def test_the_dense_limit_picks_the_estimator_and_both_spend_the_whole_budget(limit, estimator):
    rng = np.random.default_rng(0)
    cards = (3, 4, 2)  # 24 cells
    codes = np.column_stack([rng.integers(0, c, 600) for c in cards])
    table = EncodedTable(codes, cards, ("a", "b", "c"), (None, None, None))
    accountant = PrivacyAccountant(1.0, 1e-5)
    mechanism = MarginalMechanism(dense_cells=limit, rounds_per_column=2, init_steps=20)
    mechanism.fit(
        table,
        accountant,
        rows_estimate=600.0,
        noise=NoiseSource.replayed(0),
        progress=lambda _: None,
    )
    assert isinstance(mechanism._model, estimator)
    assert accountant.epsilon() == pytest.approx(1.0, rel=1e-4)
    assert mechanism.sample(100, np.random.default_rng(1)).shape == (100, 3)


WIDE = (6, 5, 7, 4, 6, 5)  # 25,200 cells for 5,000 rows: most cells expect well under one row


def _marginal_tvds(codes: np.ndarray, joint: np.ndarray, order: int) -> np.ndarray:
    d, n = len(WIDE), len(codes)
    out = []
    for clique in combinations(range(d), order):
        counts = np.zeros([WIDE[c] for c in clique])
        np.add.at(counts, tuple(codes[:, list(clique)].T), 1)
        model = joint.sum(axis=tuple(c for c in range(d) if c not in clique))
        out.append(0.5 * np.abs(counts / n - model).sum())
    return np.array(out)


@pytest.mark.parametrize("seed", [0, 1])
def test_the_sample_s_pair_marginals_are_the_model_s_when_cells_outnumber_rows(seed):
    joint = _pairwise_joint(seed, WIDE)
    model = DenseModel(WIDE)
    model.log_probs = np.log(joint)
    n = 5000
    codes = model.sample(n, np.random.default_rng(seed))
    # The rounding alone (the sampler before repair.py): 0.006-0.008 mean pair TVD from its
    # own model here, up to 0.014 on one pair; repaired 0.002, at most 0.004.
    counts = systematic_round(n * joint.ravel()[None, :], np.array([n]), np.random.default_rng(9))
    rounded = np.column_stack(np.unravel_index(np.repeat(np.arange(joint.size), counts[0]), WIDE))
    pairs, pairs_rounded = _marginal_tvds(codes, joint, 2), _marginal_tvds(rounded, joint, 2)
    assert pairs.mean() < 0.003 and pairs.max() < 0.006
    assert pairs_rounded.mean() > 2 * pairs.mean()
    # The moves do not trade the 3-way structure for the pairs, nor the 1-ways.
    assert _marginal_tvds(codes, joint, 3).mean() <= _marginal_tvds(rounded, joint, 3).mean() + 2e-3
    assert _marginal_tvds(codes, joint, 1).max() < 0.002
    assert np.array_equal(codes, model.sample(n, np.random.default_rng(seed)))


def test_repair_is_deterministic_and_keeps_rows_off_cells_without_mass():
    joint = _pairwise_joint(2, WIDE)
    joint[:, :, :3] = 0.0  # a conditional: column 2's codes 0-2 excluded
    joint /= joint.sum()
    n = 4000
    counts = systematic_round(n * joint.ravel()[None, :], np.array([n]), np.random.default_rng(0))
    rows = np.column_stack(np.unravel_index(np.repeat(np.arange(joint.size), counts[0]), WIDE))
    repaired = repair(rows, joint)
    assert np.array_equal(repaired, repair(rows, joint))
    assert not np.array_equal(repaired, rows)  # it did move rows
    assert (joint[tuple(repaired.T)] > 0).all() and repaired[:, 2].min() >= 3
    assert _marginal_tvds(repaired, joint, 2).mean() < 0.5 * _marginal_tvds(rows, joint, 2).mean()
