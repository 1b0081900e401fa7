"""Foreign-key values of a child twin, drawn from its parents' twins, chunk by chunk.

Category-mode keys map each DP-kept value one-to-one onto a parent-twin key; attributes-mode
keys take the key of the parent-twin row `attributes.Matching` attaches them to; implied keys
are checked before any row is generated, since the chain of twins already makes them hold.
What the mapping and the matching need to know about the whole twin (value and signature
counts) comes from one counting pass over the fitted generator (`survey`).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from dbt_synth.errors import SourceError
from dbt_synth.relational.attributes import (
    ChunkDraw,
    Matching,
    MatchingState,
    Signer,
    count_signatures,
)
from dbt_synth.relational.cardinality import Cardinality
from dbt_synth.relational.joined import KeyState, attribute_field, state_field
from dbt_synth.relational.keys import ForeignKey, KeyMode
from dbt_synth.relational.plan import KeyPlan


@dataclass(frozen=True)
class KeyReport:
    """How one FK was twinned, for the ledger and tests."""

    key: ForeignKey
    mode: KeyMode
    attributes: tuple[str, ...]
    cardinality: Cardinality | None
    orphan_rate: float
    null_rate: float
    implied_by: ForeignKey | None = None
    mapping: dict[Any, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.key.label

    @property
    def parent(self) -> str:
        return self.key.parent


@dataclass
class Survey:
    """Counts over one pass of the fitted twin, for one key (mutable while counting)."""

    rows: int = 0
    values: dict[Any, int] = field(default_factory=dict)
    nulls: int = 0
    states: dict[str, int] = field(default_factory=dict)
    signatures: dict[tuple[int, ...], int] = field(default_factory=dict)

    def rate(self, state: KeyState) -> float:
        return self.states.get(state.value, 0) / self.rows if self.rows else 0.0

    def add(self, other: Survey) -> Survey:
        """This survey with `other`'s counts (another chunk's) added in."""
        self.rows += other.rows
        self.nulls += other.nulls
        for into, counts in (
            (self.values, other.values),
            (self.states, other.states),
            (self.signatures, other.signatures),
        ):
            for value, count in counts.items():
                into[value] = into.get(value, 0) + count
        return self


def survey(
    batches: Iterator[pa.RecordBatch],
    plans: tuple[KeyPlan, ...],
    signers: dict[ForeignKey, Signer],
    clean: bool,
) -> dict[ForeignKey, Survey]:
    """Per category key its value counts; per attributes key its state counts and the
    signature counts of the rows that take a parent-twin key."""
    surveys = {p.key: Survey() for p in plans if p.mode is not KeyMode.IMPLIED}
    for batch in batches:
        for plan in plans:
            if plan.mode is KeyMode.IMPLIED:
                continue
            counted = surveys[plan.key]
            counted.rows += batch.num_rows
            if plan.mode is KeyMode.CATEGORY:
                column = batch.column(plan.key.columns[0])
                counted.nulls += column.null_count
                _add(counted.values, pc.value_counts(column.drop_null()))
                continue
            state = batch.column(state_field(plan))
            _add(counted.states, pc.value_counts(state.drop_null()))
            rows = np.flatnonzero(_wanted(state, clean))
            attributes = [
                batch.column(attribute_field(plan, a)).take(rows) for a in plan.attributes
            ]
            count_signatures(signers[plan.key].children(attributes, len(rows)), counted.signatures)
    return surveys


def _add(into: dict[Any, int], counted: pa.StructArray) -> None:
    values = counted.field("values").to_pylist()
    for value, count in zip(values, counted.field("counts").to_pylist(), strict=True):
        into[value] = into.get(value, 0) + count


def _attributes(batch: pa.RecordBatch, plan: KeyPlan, rows: np.ndarray) -> list[pa.Array]:
    """The parent attributes the twin drew for `rows` of one chunk."""
    return [batch.column(attribute_field(plan, a)).take(rows) for a in plan.attributes]


def _is(state: pa.Array, which: KeyState) -> np.ndarray:
    """Rows of one chunk in state `which`, as a boolean mask."""
    return pc.fill_null(pc.equal(state, which.value), False).to_numpy(zero_copy_only=False)


def _wanted(state: pa.Array, clean: bool) -> np.ndarray:
    """Rows that take a parent-twin key: those with a parent, and orphans unless reproduced."""
    wanted = _is(state, KeyState.PARENT)
    return wanted | _is(state, KeyState.ORPHAN) if clean else wanted


@dataclass(frozen=True)
class CategoryKeys:
    """A category-mode key: DP-kept values → parent-twin keys."""

    plan: KeyPlan
    mapping: dict[Any, Any]
    key_type: pa.DataType

    @classmethod
    def of(
        cls, plan: KeyPlan, counted: Survey, keys: pa.ChunkedArray, rng: np.random.Generator
    ) -> CategoryKeys:
        """One-to-one while parent-twin keys last (most frequent value first); values beyond
        the parent twin's size share random keys. NULL stays NULL."""
        order = sorted(counted.values, key=lambda v: -counted.values[v])
        pool = keys.drop_null().unique().to_pylist()
        if not pool:
            raise SourceError(
                "the parent twin has no keys to draw from", fix="build the parent twin with rows"
            )
        shuffled = [pool[i] for i in rng.permutation(len(pool))]
        mapping = {
            v: shuffled[i] if i < len(shuffled) else shuffled[rng.integers(len(shuffled))]
            for i, v in enumerate(order)
        }
        return cls(plan, mapping, keys.type)

    def start(self) -> None:
        return None

    def draw(self, _counted: Survey, _state: None, _rng) -> None:
        return None

    def columns(self, batch: pa.RecordBatch, _drawn: None, _rng) -> dict[str, pa.Array]:
        column = self.plan.key.columns[0]
        values = batch.column(column)
        found = pc.index_in(values, value_set=pa.array(list(self.mapping), type=values.type))
        return {column: pa.array(list(self.mapping.values()), type=self.key_type).take(found)}

    def report(self, counted: Survey) -> KeyReport:
        null_rate = counted.nulls / counted.rows if counted.rows else 0.0
        return KeyReport(
            self.plan.key, self.plan.mode, (), None, 0.0, null_rate, None, self.mapping
        )


@dataclass
class _Pass:
    """One generating pass of an attributes-mode key: quotas left, fresh orphan keys used."""

    matching: MatchingState
    orphans: int = 0


@dataclass(frozen=True)
class ChunkKeys:
    """What one chunk of an attributes-mode key takes from its pass (see `AttributeKeys.draw`)."""

    matching: ChunkDraw
    orphans_before: int


def index_field(plan: KeyPlan) -> str:
    """The column holding, in place of `plan`'s key columns, the index of the parent-twin row
    each child row is matched to, when the parent twin stays in its engine (see `parent_keys`)."""
    return "__dbt_synth_parent_index__" + re.sub(r"\W", "_", plan.key.label)


@dataclass(frozen=True)
class AttributeKeys:
    """An attributes-mode key: each row takes the key of the parent-twin row it is matched to.

    With `parent_keys` None (the parent twin held by Spark, `warehouse/spark_keys.py`) a chunk
    gets the matched row's index (`index_field`) instead, and the engine joins the keys."""

    plan: KeyPlan
    signer: Signer
    matching: Matching
    parent_keys: tuple[pa.Array, ...] | None
    clean: bool

    def start(self) -> _Pass:
        return _Pass(self.matching.start())

    def draw(self, counted: Survey, state: _Pass, rng: np.random.Generator) -> ChunkKeys:
        """The chunk's share of the pass, from the chunk's own `survey` counts: drawn chunk by
        chunk in order, wherever the chunk's rows are then generated."""
        drawn = ChunkKeys(
            self.matching.draw(counted.signatures, state.matching, rng), state.orphans
        )
        if not self.clean:
            state.orphans += counted.states.get(KeyState.ORPHAN.value, 0)
        return drawn

    def columns(self, batch: pa.RecordBatch, drawn: ChunkKeys, rng) -> dict[str, pa.Array]:
        plan, n = self.plan, batch.num_rows
        states = batch.column(state_field(plan))
        rows = np.flatnonzero(_wanted(states, self.clean))
        signatures = self.signer.children(_attributes(batch, plan, rows), len(rows))
        indices = np.full(n, -1)
        indices[rows] = self.matching.place(signatures, drawn.matching, rng)
        if self.parent_keys is None:
            return {index_field(plan): pa.array(indices, mask=indices < 0, type=pa.int64())}
        orphan = np.flatnonzero(_is(states, KeyState.ORPHAN))
        taking = pa.array(np.where(indices < 0, 0, indices))
        out = {}
        for j, column in enumerate(plan.key.columns):
            values = self.parent_keys[j].take(taking)
            values = pc.if_else(pa.array(indices < 0), pa.nulls(n, values.type), values)
            if not self.clean and len(orphan):
                values = _with_orphans(values, orphan, self.parent_keys[j], j, drawn.orphans_before)
            out[column] = values
        return out

    def report(self, counted: Survey, cardinality: Cardinality) -> KeyReport:
        return KeyReport(
            self.plan.key,
            self.plan.mode,
            self.plan.attributes,
            cardinality,
            counted.rate(KeyState.ORPHAN),
            counted.rate(KeyState.NULL),
        )


def _with_orphans(values: pa.Array, orphan: np.ndarray, keys: pa.Array, j: int, used: int):
    """`orphans: reproduce`: orphan rows get fresh keys that no parent-twin row holds, numbered
    on from the `used` ones of earlier chunks."""
    existing = set(keys.to_pylist())
    if pa.types.is_integer(keys.type):
        start = (max((v for v in existing if v is not None), default=0) or 0) + 1 + used
        fresh = list(range(start, start + len(orphan)))
    else:
        fresh = [f"orphan-{j}-{i}" for i in range(used, used + len(orphan))]
        fresh = [f"{v}-{j}" if v in existing else v for v in fresh]
    array = values.to_pylist()
    for index, value in zip(orphan.tolist(), fresh, strict=True):
        array[index] = value
    return pa.array(array, type=values.type)
