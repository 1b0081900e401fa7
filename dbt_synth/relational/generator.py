"""A child twin's rows, generated chunk by chunk like a single twin's.

The fitted generator yields chunks of the joined twin (child columns, key states, parent
attributes); each chunk gets its foreign keys from the parents' twins and loses the helper
columns. One counting pass over the fitted generator (deterministic: every pass yields the same
rows) plans the key mapping and the matching first, so no pass ever holds the whole twin: only
the parent twins' keys and per-signature counts are kept whole (a parent twin that Spark holds
keeps its keys there, and sends only its signature counts: `warehouse/spark_keys.py`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pyarrow as pa

from dbt_synth.conditioning import Constraints, SamplingLog
from dbt_synth.errors import SynthError
from dbt_synth.generation import TwinGenerator
from dbt_synth.relational.attach import (
    AttributeKeys,
    CategoryKeys,
    KeyReport,
    Survey,
    index_field,
    survey,
)
from dbt_synth.relational.attributes import Matching, Signer
from dbt_synth.relational.cardinality import Cardinality
from dbt_synth.relational.config import OrphanPolicy, RelationalConfig
from dbt_synth.relational.joined import KeyState
from dbt_synth.relational.keys import ForeignKey, KeyMode
from dbt_synth.relational.plan import KeyPlan, ParentData, parent_table


@dataclass(frozen=True)
class Attacher:
    """A child twin's foreign keys, planned: attaches them to chunks of the fitted twin.

    Picklable and free of the fitted twin's rows, so that Spark's executors attach keys where
    the chunks are generated (`warehouse/spark_child.py`)."""

    names: tuple[str, ...]
    keys: tuple[CategoryKeys | AttributeKeys, ...]

    def start(self) -> list[Any]:
        """Fresh per-key state for one pass (what the chunks drawn so far have taken)."""
        return [keys.start() for keys in self.keys]

    def draw(
        self, counted: dict[ForeignKey, Survey], passes: list[Any], rng: np.random.Generator
    ) -> list[Any]:
        """One chunk's share of every key, from the chunk's `survey` counts (chunks in order)."""
        return [
            keys.draw(counted.get(keys.plan.key, Survey()), state, rng)
            for keys, state in zip(self.keys, passes, strict=True)
        ]

    def attach(
        self, batch: pa.RecordBatch, drawn: list[Any], rng: np.random.Generator
    ) -> pa.RecordBatch:
        """The chunk with its keys, in the child's column order (helper columns dropped)."""
        out: dict[str, pa.Array] = {}
        for keys, share in zip(self.keys, drawn, strict=True):
            out.update(keys.columns(batch, share, rng))
        # A key whose parent twin stays in its engine comes as its index column, last.
        indexed = [k for k in self.keys if isinstance(k, AttributeKeys) and k.parent_keys is None]
        joined = {c for k in indexed for c in k.plan.key.columns}
        names = [c for c in self.names if c not in joined]
        names += [index_field(k.plan) for k in indexed]
        arrays = [out[c] if c in out else batch.column(c) for c in names]
        return pa.RecordBatch.from_arrays(arrays, names=names)


@dataclass(frozen=True)
class Counter:
    """Counts one chunk of the fitted twin for key planning (`survey`); picklable."""

    plans: tuple[KeyPlan, ...]
    signers: dict[ForeignKey, Signer]
    clean: bool

    def __call__(self, batches: Iterable[pa.RecordBatch]) -> dict[ForeignKey, Survey]:
        return survey(iter(batches), self.plans, self.signers, self.clean)


@dataclass(frozen=True)
class HeldKeys:
    """An attributes-mode key whose parent twin stays in Spark: what joins its keys to the
    parent indices the attacher gives (`SparkParentTwin.numbered`)."""

    plan: KeyPlan
    twin: Any
    signer: Signer
    offsets: pa.Table

    def numbered(self, *, read: bool = False) -> Any:
        """The parent twin's keys (named as the child's key columns) by parent index: in the
        engine, or with `read` on the driver, in index order."""
        key = self.plan.key
        how = self.twin.keys_in_order if read else self.twin.numbered
        return how(self.signer, self.plan.attributes, key.parent_columns, self.offsets, key.columns)


@dataclass(frozen=True)
class PlannedKeys:
    """Keys planned from the counts over the whole fitted twin, and their reports."""

    attacher: Attacher
    reports: tuple[KeyReport, ...]
    held: tuple[HeldKeys, ...] = ()

    def resolved(self) -> Attacher:
        """The attacher with every held key's parent keys read to the driver in index order
        (the driver road: a twin drawn under rules, or the Python API's whole table)."""
        if not self.held:
            return self.attacher
        keys = []
        for made in self.attacher.keys:
            held = next((h for h in self.held if h.plan == made.plan), None)
            if held is not None:
                table = held.numbered(read=True)
                columns = tuple(table.column(c).combine_chunks() for c in held.plan.key.columns)
                made = replace(made, parent_keys=columns)
            keys.append(made)
        return replace(self.attacher, keys=tuple(keys))


@dataclass(frozen=True)
class ChildGenerator:
    """The twin's rows in source column order, chunk by chunk; the same rows on every call.

    Keys are planned on first use from one counting pass (`plan`): over `fitted.batches()` on
    the driver, or over counts an engine took where it generates the chunks (Spark)."""

    names: tuple[str, ...]
    fitted: TwinGenerator
    plans: tuple[KeyPlan, ...]
    parents: dict[str, ParentData] = field(repr=False)
    cardinalities: dict[ForeignKey, Cardinality]
    counter: Counter
    plan_seed: int
    seed: int
    _planned: dict[str, PlannedKeys] = field(default_factory=dict, compare=False, repr=False)

    @property
    def rows(self) -> int:
        return self.fitted.rows

    @property
    def constraints(self) -> Constraints | None:
        """The child's rules, condition and rebalance: the fitted rows are drawn under them,
        before keys are attached (conditioning.py), so the ledger's `sampling` record and the
        log's redraw lines read them here as for a single twin."""
        return self.fitted.constraints

    @property
    def log(self) -> SamplingLog:
        """What the last pass's sampling under `constraints` drew and redrew."""
        return self.fitted.log

    @property
    def reports(self) -> tuple[KeyReport, ...]:
        return self.plan().reports

    def plan(self, counted: dict[ForeignKey, Survey] | None = None) -> PlannedKeys:
        """The keys planned from `counted` (the whole twin's counts; counted here, on the
        driver, when not given). Planned once: later calls return the first plan."""
        if "keys" not in self._planned:
            if counted is None:
                counted = self.counter(self.fitted.batches())
            self._planned["keys"] = _plan(self, counted)
        return self._planned["keys"]

    def batches(self) -> Iterator[pa.RecordBatch]:
        attacher = self.plan().resolved()
        rng = np.random.default_rng(self.seed)
        passes = attacher.start()
        for batch in self.fitted.batches():
            drawn = attacher.draw(self.counter([batch]), passes, rng)
            yield attacher.attach(batch, drawn, rng)

    def table(self) -> pa.Table:
        """The whole twin in memory (the Python API; dbt streams `batches` instead)."""
        return pa.Table.from_batches(list(self.batches()))


def child_generator(
    fitted: TwinGenerator,
    names: tuple[str, ...],
    plans: tuple[KeyPlan, ...],
    parents: dict[str, ParentData],
    cardinalities: dict[ForeignKey, Cardinality],
    relational: RelationalConfig,
    rng: np.random.Generator,
) -> ChildGenerator:
    """The child twin's generator; its keys are planned on first use (`ChildGenerator.plan`)."""
    signers = {
        p.key: _signer(parents[p.key.parent].twin, p.attributes)
        for p in plans
        if p.mode is KeyMode.ATTRIBUTES
    }
    counted = tuple(p for p in plans if p.mode is not KeyMode.IMPLIED)
    counter = Counter(counted, signers, relational.orphans is OrphanPolicy.CLEAN)
    plan_seed, seed = (int(s) for s in rng.integers(2**63, size=2))
    return ChildGenerator(names, fitted, plans, parents, cardinalities, counter, plan_seed, seed)


def _plan(generator: ChildGenerator, counted: dict[ForeignKey, Survey]) -> PlannedKeys:
    """Every key of the child twin, planned from the counts over the whole fitted twin."""
    rng = np.random.default_rng(generator.plan_seed)
    plans, parents, clean = generator.plans, generator.parents, generator.counter.clean
    made: dict[ForeignKey, CategoryKeys | AttributeKeys] = {}
    reports, held = [], []
    for plan in plans:
        key, twin = plan.key, parents[plan.key.parent].twin
        in_memory = isinstance(twin, pa.Table)
        if plan.mode is KeyMode.CATEGORY:
            if in_memory:
                keys = twin.column(key.parent_columns[0])
            else:  # as many random keys as the mapping can take, drawn in the engine
                wanted = len(counted[key].values)
                keys = twin.key_sample(key.parent_columns[0], wanted, int(rng.integers(2**62)))
            made[key] = CategoryKeys.of(plan, counted[key], keys, rng)
            reports.append(made[key].report(counted[key]))
        elif plan.mode is KeyMode.ATTRIBUTES:
            signer = generator.counter.signers[key]
            cardinality = generator.cardinalities[key]
            if not in_memory and clean:
                # Virtual parents: the engine's signature counts (`SparkParentTwin`); the keys
                # are joined there, by parent index.
                signatures, offsets = twin.signatures(signer, plan.attributes)
                parent_keys = None
                held.append(HeldKeys(plan, twin, signer, offsets))
            else:
                parent = parent_table(parents[key.parent])
                signatures = signer.parents(parent, plan.attributes)
                parent_keys = tuple(parent.column(c).combine_chunks() for c in key.parent_columns)
            matching = Matching.plan(counted[key].signatures, signatures, cardinality, rng)
            made[key] = AttributeKeys(plan, signer, matching, parent_keys, clean)
            reports.append(made[key].report(counted[key], cardinality))
    for plan in plans:
        if plan.mode is KeyMode.IMPLIED:
            wider = next(p for p in plans if set(plan.key.columns) <= set(p.key.columns))
            _check_implied(plan.key, wider, made[wider.key], parents, counted[wider.key])
            reports.append(KeyReport(plan.key, plan.mode, (), None, 0.0, 0.0, implied_by=wider.key))
    attacher = Attacher(generator.names, tuple(made.values()))
    return PlannedKeys(attacher, tuple(reports), tuple(held))


def _signer(twin: Any, attributes: tuple[str, ...]) -> Signer:
    """`Signer.of` the parent twin, in memory or computed by the engine that holds it."""
    return Signer.of(twin, attributes) if isinstance(twin, pa.Table) else twin.signer(attributes)


def _check_implied(
    key: ForeignKey,
    wider: KeyPlan,
    keys: CategoryKeys | AttributeKeys,
    parents: dict[str, ParentData],
    counted: Survey,
) -> None:
    """An implied key (flights.origin via weather) must hold because the chain of twins does:
    every value the wider key can draw must be a key of the implied key's parent twin."""
    if isinstance(keys, CategoryKeys):
        drawn = pa.table({key.columns[0]: pa.array(list(keys.mapping.values()))})
    else:
        wider_twin = parent_table(parents[wider.key.parent])
        drawn = pa.table(
            {
                c: wider_twin.column(wider.key.parent_columns[wider.key.columns.index(c)])
                for c in key.columns
            }
        )
    values = drawn.to_pandas().dropna().drop_duplicates()
    parent = parent_table(parents[key.parent]).select(list(key.parent_columns)).to_pandas()
    parent = parent.set_axis(list(key.columns), axis=1).drop_duplicates()
    missing = len(values) - len(values.merge(parent, on=list(key.columns)))
    fresh = isinstance(keys, AttributeKeys) and not keys.clean
    if missing or (fresh and counted.rate(KeyState.ORPHAN) > 0):
        raise SynthError(
            f"foreign key {list(key.columns)} → {key.parent} is implied by a wider key, but "
            f"{missing or 'fresh orphan'} value(s) that the twin draws through "
            f"{wider.key.parent} are not in {key.parent}",
            fix="twin the wider key's parent as a child of "
            f"{key.parent} (e.g. weather_twin with foreign key origin → airports_twin)",
            column=key.columns[0],
        )
