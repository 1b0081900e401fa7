"""Numeric domains at a wide table's thin budget: rows beside and around the kept cells."""

from __future__ import annotations

import numpy as np
import pytest

from dbt_synth.domains.numeric import LEVEL_RHO_SHARES
from dbt_synth.domains.pieces import (
    BESIDE_SHARE,
    BESIDE_SIGMAS,
    SINGLE_SIGMAS,
    Part,
    beside_kept,
)
from dbt_synth.domains.tree import grow_tree
from dbt_synth.noise import NoiseSource
from fixtures.real_data import real_table

SIGMA = 100.0


def _grown(noisy: list[float]) -> list[tuple[int, int]]:
    """The first-level parts `beside_kept` adds to the one kept sibling at index 2."""
    counts = np.array(noisy)
    kept = [Part(2, 3, float(counts[2]), expand=True)]
    parts = beside_kept(kept, counts, SIGMA, np.ones(len(counts), bool))
    return [(p.first, p.stop) for p in parts if p.first != 2]


def test_a_cell_beside_a_kept_one_is_kept_below_the_main_threshold():
    # 4.5σ next to a kept cell: a maximal run would need 5σ·√m over every empty cell after it.
    assert _grown([0, 0, 20 * SIGMA, 4.5 * SIGMA] + [0] * 100) == [(3, 4)]
    # Two thin cells together (3σ each: 6σ ≥ 4σ·√2) are one piece.
    assert _grown([0, 0, 20 * SIGMA, 3 * SIGMA, 3 * SIGMA, 0, 0]) == [(3, 5)]


def test_noise_beside_a_kept_cell_does_not_widen_the_range():
    just_below = BESIDE_SIGMAS * SIGMA * 0.99
    assert _grown([just_below, 0, 20 * SIGMA, just_below, 0, 0, 0]) == []


def test_a_thin_tail_beside_a_heavy_cell_is_not_grown():
    # 4.5σ clears the noise bar but holds under BESIDE_SHARE of the kept mass (200σ).
    assert BESIDE_SHARE * 200 > 4.5
    assert _grown([0, 0, 200 * SIGMA, 4.5 * SIGMA, 0, 0]) == []


def test_a_gap_between_kept_cells_is_kept_when_it_holds_rows():
    counts = np.array([0, 20 * SIGMA, 2.5 * SIGMA, 20 * SIGMA, 0])
    kept = [Part(1, 2, counts[1], expand=True), Part(3, 4, counts[3], expand=True)]
    parts = beside_kept(kept, counts, SIGMA, np.ones(5, bool))
    assert [(p.first, p.stop) for p in parts] == [(1, 2), (2, 3), (3, 4)]
    counts[2] = SINGLE_SIGMAS * SIGMA * 0.99
    assert len(beside_kept(kept, counts, SIGMA, np.ones(5, bool))) == 2


def _loans(column: str) -> np.ndarray:
    values = real_table("openintro", "loans_full_schema")[column].to_numpy(dtype=float)
    return values[~np.isnan(values)]


@pytest.mark.parametrize("column", ["total_credit_limit", "installment"])
def test_a_wide_tables_numeric_domain_keeps_most_rows_in_range(column):
    # loans at ε = 0.3: 54 columns share a quarter of ρ, so each count has σ ≈ 180 rows on
    # 10,000. Before, the range shrank to the octaves that cleared 5σ on their own:
    # 65,536–262,144 for total_credit_limit (42 % of the rows), 336–1,024 for installment.
    values = _loans(column)
    sigmas = [180.0 / np.sqrt(share) for share in LEVEL_RHO_SHARES]
    covered = []
    for seed in range(4):
        low, high, _ = grow_tree(values, sigmas, NoiseSource.replayed(seed), grid=0)
        covered.append(np.mean((values >= low.min()) & (values <= high.max())))
    assert min(covered) >= 0.75, covered
