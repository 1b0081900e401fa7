"""DP generators behind one interface; `auto` picks the benchmarked default."""

from __future__ import annotations

from dbt_synth.mechanisms.base import Mechanism

# Chosen from bench/RESULTS.md: the marginal mechanism has the better fidelity and speed.
DEFAULT_MECHANISM = "marginal"


def build_mechanism(name: str) -> Mechanism:
    """A fresh mechanism by config name (`auto`, `marginal` or `dpsgd`)."""
    name = DEFAULT_MECHANISM if name == "auto" else name
    if name == "marginal":
        from dbt_synth.mechanisms.marginal import MarginalMechanism

        return MarginalMechanism()
    if name == "dpsgd":
        from dbt_synth.mechanisms.dpsgd import DPSGDMechanism

        return DPSGDMechanism()
    raise ValueError(f"unknown mechanism {name!r}")
