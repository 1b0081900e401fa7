"""DP generators behind one interface, known by name: a registry that `synth.mechanism` reads.

A generator plugs in with `register_mechanism(name, cls)` (as opacus registers accountants);
`auto` picks the benchmarked default among the built-in ones. Built-ins are registered by
import path, so a name costs nothing until a twin uses it.
"""

from __future__ import annotations

import importlib

from dbt_synth.mechanisms.base import Mechanism

# Re-measured for issue 15 on 2026-12-08, after the dense estimator and DP-SGD's new schedule
# (bench/RESULTS.md, "The `auto` threshold, re-measured"; bench/dpsgd/threshold.py, ε = 1, 2
# seeds): up to 10 columns the marginal mechanism has the lower 2-way TVD on every table
# measured (flights 50k rows, loans 8,000 rows, CPS 1988); at 12 and 15 columns DP-SGD's excess
# on loans (14 %, 12 %) is smaller than the marginal mechanism's on flights (78 %, 70 %).
AUTO_MARGINAL_MAX_COLUMNS = 10
AUTO = "auto"

_REGISTRY: dict[str, type[Mechanism] | str] = {}


def register_mechanism(name: str, mechanism: type[Mechanism] | str) -> None:
    """Make `synth.mechanism: <name>` build `mechanism` (a class, or "module:Class")."""
    if name == AUTO:
        raise ValueError(f"'{AUTO}' chooses among the registered mechanisms; pick another name")
    _REGISTRY[name] = mechanism


def mechanism_names() -> tuple[str, ...]:
    """Every name `synth.mechanism` accepts: `auto` and the registered mechanisms."""
    return (AUTO, *_REGISTRY)


def resolve_mechanism(name: str, columns: int) -> str:
    """The mechanism `name` stands for on a table of `columns` modelled columns."""
    if name != AUTO:
        return name
    return "marginal" if columns <= AUTO_MARGINAL_MAX_COLUMNS else "dpsgd"


def build_mechanism(name: str, columns: int) -> Mechanism:
    """A fresh mechanism by config name (checked against `mechanism_names` when parsed)."""
    registered = _REGISTRY[resolve_mechanism(name, columns)]
    if isinstance(registered, str):
        module, _, attribute = registered.partition(":")
        registered = getattr(importlib.import_module(module), attribute)
    return registered()


register_mechanism("marginal", "dbt_synth.mechanisms.marginal:MarginalMechanism")
register_mechanism("dpsgd", "dbt_synth.mechanisms.dpsgd:DPSGDMechanism")
