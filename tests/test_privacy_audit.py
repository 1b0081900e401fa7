"""A small privacy audit on real CPS1988: canaries, membership inference and the ledger's ε.

The full audit (all ε, more seeds) is `bench/audit/run_audit.py`; results in bench/RESULTS.md.
"""

from __future__ import annotations

import json
from datetime import datetime

import duckdb
import pandas as pd
import pytest

from dbt_synth import synthesize
from dbt_synth.ledger import entry_for, write_entry
from dbt_synth.warehouse import OwnTable
from dbt_synth.warehouse.duckdb import DuckDBWarehouse
from fixtures.privacy_attacks import (
    CATEGORICAL,
    NUMERIC,
    QuasiIdentifiers,
    canaries,
    distance_attack_auc,
    exact_copies,
    near_copies,
    recompute_epsilon,
    zcdp_epsilon,
)
from fixtures.real_data import cps1988


@pytest.fixture(scope="module")
def real() -> pd.DataFrame:
    return cps1988()


@pytest.fixture(scope="module")
def planted(real):
    """Three canaries in 6,000 real rows, and the quasi-identifier binning of the real rows."""
    rows = canaries(3)
    data = pd.concat([real.sample(6000, random_state=11), rows], ignore_index=True)
    return data, rows, QuasiIdentifiers.of(real, NUMERIC, CATEGORICAL)


@pytest.fixture(scope="module")
def canary_twin(planted):
    data, _, _ = planted
    return synthesize(data, epsilon=10.0, seed=5, model="canary_twin")


@pytest.fixture(scope="module")
def split(real):
    shuffled = real.sample(frac=1.0, random_state=0).reset_index(drop=True)
    return shuffled.iloc[:2500], shuffled.iloc[2500:5000]


@pytest.fixture(scope="module")
def member_twin(split):
    train, _ = split
    return synthesize(train, epsilon=3.0, seed=6, model="member_twin")


@pytest.fixture(scope="module")
def sgd_member_twin(split):
    train, _ = split
    return synthesize(train, epsilon=3.0, seed=6, mechanism="dpsgd", model="sgd_member_twin")


def test_canary_detector_finds_planted_rows_in_the_real_data(planted):
    data, rows, qi = planted
    assert exact_copies(data, rows) == len(rows)
    assert (near_copies(data, rows, qi) >= 1).all()
    # Real rows never come near a canary: their wage and experience are out of the real range.
    assert near_copies(data.iloc[: -len(rows)], rows, qi).sum() == 0


def test_no_canary_nor_a_near_copy_appears_in_the_twin_at_epsilon_10(planted, canary_twin):
    _, rows, qi = planted
    twin = canary_twin.table.to_pandas()
    assert exact_copies(twin, rows) == 0
    assert near_copies(twin, rows, qi).sum() == 0
    # The DP domains never stretched to the canaries' values.
    assert twin["wage"].max() < 40_000
    assert twin["experience"].max() < 70


@pytest.mark.parametrize("which", ["member_twin", "sgd_member_twin"])
def test_distance_attack_is_near_chance_at_epsilon_3_but_not_on_memorised_rows(
    request, split, which
):
    train, holdout = split
    twin = request.getfixturevalue(which).table.to_pandas()
    memorised = train.sample(len(train), replace=True, random_state=1)
    reference = distance_attack_auc(train, holdout, memorised, NUMERIC, CATEGORICAL)
    auc = distance_attack_auc(train, holdout, twin, NUMERIC, CATEGORICAL)
    assert reference > 0.75  # the attack works on a generator that copies
    assert auc <= 0.55


@pytest.mark.parametrize("which", ["canary_twin", "member_twin", "sgd_member_twin"])
def test_stored_ledger_epsilon_equals_an_independent_recomputation(request, which):
    result = request.getfixturevalue(which)
    entry = entry_for(
        result,
        model=which,
        source="cps1988",
        invocation_id=None,
        started_at=datetime(2026, 1, 1),
        finished_at=datetime(2026, 1, 1),
    )
    con = duckdb.connect()
    write_entry(DuckDBWarehouse(con), entry, OwnTable("main", "synth_ledger"))
    epsilon, delta, target, spends = con.execute(
        "select epsilon, delta, target_epsilon, spends from main.synth_ledger"
    ).fetchone()
    again = recompute_epsilon(spends, delta)
    # A finer order grid can only lower ε a little: the ledger is never below the truth.
    assert again.epsilon_opacus == pytest.approx(epsilon, rel=1e-3)
    if again.epsilon_exact_zcdp is not None:  # no DP-SGD spend: all of it is zCDP
        assert again.epsilon_exact_zcdp == pytest.approx(epsilon, rel=1e-3)
        assert again.epsilon_exact_zcdp <= epsilon * (1 + 1e-9)
    else:
        assert any("noise_multiplier" in spend for spend in json.loads(spends))
    assert epsilon <= target * (1 + 1e-6)
    assert 0 < again.conversion_delta < delta


def test_exact_zcdp_conversion_beats_the_classical_bound():
    # ρ = 0.5 at δ = 1e-5: the classical bound ρ + 2√(ρ log 1/δ) = 5.299; the optimal RDP
    # conversion (a dense grid of 2·10⁶ orders gives 4.72839) is tighter.
    assert zcdp_epsilon(0.5, 1e-5) == pytest.approx(4.72839, abs=1e-4)
    assert zcdp_epsilon(0.5, 1e-5) < 5.2985
