"""The mechanism registry, the one-torch-thread guard every mechanism runs under, and the marginal
mechanism's rounds when the engine counts the whole source."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dbt_synth.accounting import PrivacyAccountant
from dbt_synth.config import parse_config
from dbt_synth.errors import ConfigError
from dbt_synth.mechanisms import _REGISTRY as REGISTRY
from dbt_synth.mechanisms import (
    AUTO_MARGINAL_MAX_COLUMNS,
    build_mechanism,
    mechanism_names,
    register_mechanism,
)
from dbt_synth.mechanisms.base import CodeCounts, EncodedTable, Mechanism, one_torch_thread
from dbt_synth.mechanisms.dpsgd import DPSGDMechanism
from dbt_synth.mechanisms.marginal import MarginalMechanism
from dbt_synth.noise import NoiseSource


class Uniform(Mechanism):
    """Uniform codes: a registered mechanism that records the torch threads it ran on."""

    name = "uniform"

    def _fit(self, fit) -> None:
        self.cardinalities = fit.data.cardinalities
        self.fit_threads = torch.get_num_threads()

    def _sample(self, n, rng):
        self.sample_threads = torch.get_num_threads()
        return np.column_stack([rng.integers(0, c, n) for c in self.cardinalities])


@pytest.fixture(autouse=True)
def built_ins_only(monkeypatch):
    """Start from the built-in mechanisms: dbt models run in this process (test_faults) register
    their own, and a registry is process-wide."""
    built_in = {name: REGISTRY[name] for name in ("marginal", "dpsgd")}
    monkeypatch.setattr("dbt_synth.mechanisms._REGISTRY", built_in)


@pytest.fixture
def registered():
    register_mechanism("uniform", Uniform)


def test_built_in_mechanisms_are_registered_and_auto_picks_by_width():
    assert mechanism_names() == ("auto", "marginal", "dpsgd")
    assert isinstance(build_mechanism("auto", AUTO_MARGINAL_MAX_COLUMNS), MarginalMechanism)
    assert isinstance(build_mechanism("auto", AUTO_MARGINAL_MAX_COLUMNS + 1), DPSGDMechanism)


def test_config_accepts_a_registered_mechanism_by_name(registered):
    assert parse_config({"mechanism": "uniform"}).mechanism == "uniform"
    assert isinstance(build_mechanism("uniform", 3), Uniform)


def test_an_unregistered_name_is_a_config_error_listing_the_registered_ones():
    with pytest.raises(ConfigError, match=r"'nope' is not one of \['auto', 'marginal', 'dpsgd'\]"):
        parse_config({"mechanism": "nope"})


def test_auto_is_reserved():
    with pytest.raises(ValueError, match="auto"):
        register_mechanism("auto", Uniform)


def test_a_mechanism_fits_and_samples_on_one_torch_thread_and_restores_the_count(registered):
    from dbt_synth import synthesize

    before = torch.get_num_threads()
    torch.set_num_threads(3)
    try:
        data = {"a": [1, 2, 3] * 400, "b": ["x", "y"] * 600}
        result = synthesize(data_frame(data), mechanism="uniform", epsilon=1.0, seed=0)
        mechanism = result.generator.mechanism
        assert result.mechanism == "uniform" and result.table.num_rows > 1000
        assert mechanism.fit_threads == 1 and mechanism.sample_threads == 1
        assert torch.get_num_threads() == 3
    finally:
        torch.set_num_threads(before)


def test_nested_guards_restore_the_count_when_the_last_one_exits():
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        with one_torch_thread():
            with one_torch_thread():
                assert torch.get_num_threads() == 1
            assert torch.get_num_threads() == 1
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def data_frame(columns):
    import pandas as pd

    return pd.DataFrame(columns)


def _fit(counts: CodeCounts, rows_estimate: float) -> tuple[MarginalMechanism, PrivacyAccountant]:
    names = tuple("abcd"[: len(counts.cardinalities)])
    table = EncodedTable(None, counts.cardinalities, names, (None,) * len(names), counts=counts)
    accountant = PrivacyAccountant(1.0, 1e-6)
    mechanism = MarginalMechanism()
    mechanism.fit(
        table,
        accountant,
        rows_estimate=rows_estimate,
        noise=NoiseSource.replayed(3),
        progress=lambda _: None,
    )
    return mechanism, accountant


def test_counts_scaled_to_a_sample_keep_sensitivity_one_and_fit_as_the_sample_does():
    """The engine counts the whole source; the pushed road fits those counts scaled to the
    sample the sample road would fit (`CodeCounts.scaled`): one row moves a scaled count by at
    most 1, and a source k times a table fits, round for round and spend for spend, as that
    table does, so the rounds do not grow with the source."""
    rng = np.random.default_rng(0)
    rows = 2000
    a = rng.integers(0, 4, rows)
    codes = np.column_stack(
        [
            a,
            (a + rng.integers(0, 2, rows)) % 5,
            rng.integers(0, 3, rows),
            (2 * a + rng.integers(0, 3, rows)) % 6,
        ]
    )
    cards = (4, 5, 3, 6)
    counts = CodeCounts.of_codes(codes, cards)
    for rate in (0.3, 0.5, 0.77):
        with_row = CodeCounts.of_codes(np.r_[codes, codes[:1]], cards).scaled(rate)
        without = counts.scaled(rate)
        for pair, joint in without.pairs.items():
            assert np.abs(with_row.pairs[pair] - joint).max() <= 1
            assert np.array_equal(joint, np.floor(joint))
    sample, sample_spent = _fit(counts, rows)
    for factor in (10, 10_000):
        source = CodeCounts(
            cards,
            tuple(s * factor for s in counts.singles),
            {pair: joint * factor for pair, joint in counts.pairs.items()},
        )
        pushed, pushed_spent = _fit(source.scaled(1 / factor), rows)
        assert pushed.rounds == sample.rounds >= 1
        assert [s.rdp.tolist() for s in pushed_spent.spends] == [
            s.rdp.tolist() for s in sample_spent.spends
        ]
    assert sample_spent.epsilon() == pytest.approx(1.0, rel=1e-4)
