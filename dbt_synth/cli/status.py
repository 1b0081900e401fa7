"""`dbt-synth status`: per model, whether synth mode runs it on twins or on real data.

The project is parsed as synth mode parses it (`--vars 'synth: true'`, with the user's
`synth_passthrough`), so every dependency is the one synth mode reads: a twinned table's twin,
or the real node. The classification mirrors the compile-time check in
`macros/synth_mode/synth_check_real_read.sql`: a model that reads a seed, source or snapshot
without a twin, or a model upstream of a twin, fails there unless passed through.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from dbt_synth.cli.candidates import is_twin, label_of, original_of

# What synth mode may never read silently: real tables that have, or could have, a twin.
_REAL_KINDS = ("source", "seed", "snapshot")


class Reads(enum.Enum):
    """What a model reads in synth mode, best to worst."""

    TWIN = "is a twin (reads the real table it is fit on)"
    TWINS = "twins"
    NOTHING = "no table"
    REAL_PIPELINE = "real data: an input of a twin, not built on twins"
    PASSTHROUGH = "real data you passed through"
    FAILS = "real data: fails to compile in synth mode"


@dataclass(frozen=True)
class ModelStatus:
    """One model's line: what it reads in synth mode, and the real tables behind that."""

    name: str
    reads: Reads
    real: tuple[str, ...] = ()


def synth_status(manifest: Any, passthrough: Iterable[str] = ()) -> list[ModelStatus]:
    """The status of every model of the root project in a synth-mode parse of it."""
    passthrough = frozenset(passthrough)
    real_side = _real_side(manifest)
    memo: dict[str, ModelStatus] = {}

    def status(unique_id: str) -> ModelStatus:
        if unique_id in memo:
            return memo[unique_id]
        node = manifest.nodes[unique_id]
        if is_twin(node):
            original = original_of(manifest, node)
            result = ModelStatus(node.name, Reads.TWIN, (label_of(original),) if original else ())
        elif unique_id in real_side:
            result = ModelStatus(node.name, Reads.REAL_PIPELINE)
        else:
            result = _combine(node.name, [read(d) for d in _inputs(node)])
        memo[unique_id] = result
        return result

    def read(unique_id: str) -> tuple[Reads, tuple[str, ...]]:
        node = manifest.sources.get(unique_id) or manifest.nodes.get(unique_id)
        if node is None:
            return Reads.TWINS, ()
        label = label_of(node)
        if node.resource_type == "model" and is_twin(node):
            return Reads.TWINS, ()
        if label in passthrough:
            return Reads.PASSTHROUGH, (label,)
        if node.resource_type in _REAL_KINDS or unique_id in real_side:
            return Reads.FAILS, (label,)
        upstream = status(unique_id)
        if upstream.reads is Reads.NOTHING:
            return Reads.TWINS, ()
        return upstream.reads, upstream.real

    root = manifest.metadata.project_name
    models = [
        uid
        for uid, node in manifest.nodes.items()
        if node.resource_type == "model" and node.package_name == root
    ]
    return sorted((status(uid) for uid in models), key=lambda s: s.name)


def _combine(name: str, reads: list[tuple[Reads, tuple[str, ...]]]) -> ModelStatus:
    if not reads:
        return ModelStatus(name, Reads.NOTHING)
    order = list(Reads)
    worst = max((r for r, _ in reads), key=order.index)
    real = sorted({label for r, labels in reads if r is worst for label in labels})
    return ModelStatus(name, worst, tuple(real))


def _real_side(manifest: Any) -> set[str]:
    """Unique ids of every node upstream of a twin (as `synth_real_side` in the macros)."""
    side: set[str] = set()
    frontier = [d for n in manifest.nodes.values() if is_twin(n) for d in n.depends_on.nodes]
    while frontier:
        unique_id = frontier.pop()
        if unique_id in side:
            continue
        side.add(unique_id)
        node = manifest.nodes.get(unique_id)
        frontier += _inputs(node) if node is not None else []
    return side


def _inputs(node: Any) -> list[str]:
    """What a node reads (a seed's `depends_on` lists macros only)."""
    return list(getattr(node.depends_on, "nodes", None) or [])
