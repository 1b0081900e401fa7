"""How far a capped smartnoise run got, read from its stamped log (bench/fidelity/runner.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.fidelity.runner import _progress, cdp_epsilon, cdp_rho


def test_zcdp_conversion_matches_smartnoise():
    # smartnoise-synth 1.0.8's cdp_rho (OpenDP's zCDP → (ε, δ)) gives these ρ at δ = 1e-5.
    for epsilon, rho in ((0.3, 0.0033029866), (1.0, 0.0305565952), (3.0, 0.2242491682)):
        assert cdp_rho(epsilon, 1e-5) == pytest.approx(rho, rel=1e-6)
        assert cdp_epsilon(rho, 1e-5) == pytest.approx(epsilon, rel=1e-6)
    assert cdp_epsilon(0.0, 1e-5) == 0.0


def test_aim_progress_counts_rounds_pairs_and_budget(tmp_path: Path):
    log = tmp_path / "log.txt"
    log.write_text(
        "[    8.3 s] 54\n"
        "[   27.8 s] Initial Sigma 125.3\n"
        "[  709.0 s] Selected ('col14', 'col25') Size 100 Budget Used 0.05740740740740741\n"
        "[ 1061.4 s] Selected ('col3',) Size 7 Budget Used 0.25\n"
    )
    note = _progress(log, 1.0)
    assert note is not None
    assert note.startswith("2 AIM rounds after its 1-way measurements (1 of them 2-way")
    assert "25.0% of its ρ used" in note
    assert f"ε {cdp_epsilon(0.25 * cdp_rho(1.0, 1e-5), 1e-5):.3f} of 1" in note
    assert note.endswith("last round at 1061 s")


def test_progress_before_any_round_and_for_dpctgan(tmp_path: Path):
    log = tmp_path / "log.txt"
    log.write_text("[    8.3 s] 54\n[   27.8 s] Initial Sigma 125.3\n")
    assert _progress(log, 1.0) == (
        "AIM measured the 1-way marginals and was still fitting its first model"
    )
    log.write_text("[   10.0 s] epsilon is 0.5, delta is 1e-05\n")
    assert _progress(log, 1.0) == "1 DP-CTGAN epochs, ε 0.50 reached"
    log.write_text("nothing to read\n")
    assert _progress(log, 1.0) is None
