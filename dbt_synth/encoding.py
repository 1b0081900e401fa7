"""Column models: source values to generator codes and sampled codes back to source values.

A *modelled* column becomes small integer codes that the generator learns jointly (numeric bins,
categories, NULL and the IEEE special values as codes of their own). Other columns are generated
on their own: free text and string keys from their DP formats, integer and UUID keys as fresh
unique values, unsupported types as NULL when the user asked for that policy.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from dbt_synth.axis import from_axis, is_integral, to_axis
from dbt_synth.domains.categories import CategoryDomain
from dbt_synth.domains.numeric import SPECIALS, NumericDomain
from dbt_synth.domains.text import TextDomain
from dbt_synth.domains.tree import grid_span
from dbt_synth.keys import IdForm, StringKeyModel, integer_keys
from dbt_synth.schema import ColumnKind, ColumnSpec


@dataclass(frozen=True)
class PriorCounts:
    """Noisy per-code counts already released while learning a domain (NaN: not measured).

    Re-using them as the generator's 1-way measurements is post-processing: it costs no ε.
    """

    counts: np.ndarray
    sigma: float


class NumericModel:
    """An ordered column as [kept special states..., quantile bins...]."""

    modelled = True

    def __init__(self, spec: ColumnSpec, domain: NumericDomain, sigma: float) -> None:
        self.spec = spec
        self.domain = domain
        self.cardinality = domain.cardinality
        self.prior = PriorCounts(domain.code_counts(), sigma)
        self._special_code = {SPECIALS.index(s): i for i, s in enumerate(domain.specials)}
        self._inner_edges = domain.bin_edges[1:-1] if domain.bin_count else np.zeros(0)

    @property
    def inner_edges(self) -> np.ndarray:
        """The edges between bins: a value's bin is how many of them are ≤ it."""
        return self._inner_edges

    def state_codes(self) -> dict[int, int]:
        """The code of each special state (index into SPECIALS): its own when kept; a state
        that was not kept (too rare to reveal) is modelled as the middle bin (0 without bins)."""
        bins = self.domain.bin_count
        unkept = len(self.domain.specials) + bins // 2 if bins else 0
        return {state: self._special_code.get(state, unkept) for state in range(len(SPECIALS))}

    def encode(self, array: pa.Array | pa.ChunkedArray) -> np.ndarray:
        values, states = to_axis(array, self.spec)
        specials = len(self.domain.specials)
        codes = specials + np.searchsorted(self._inner_edges, values, side="right")
        if self.domain.bin_count == 0:
            codes[:] = 0
        for state, code in self.state_codes().items():
            codes[states == state] = code
        return codes.astype(np.int32)

    def decode(self, codes: np.ndarray, rng: np.random.Generator) -> pa.Array:
        specials = len(self.domain.specials)
        states = np.full(len(codes), -1, dtype=np.int8)
        for state, code in self._special_code.items():
            states[codes == code] = state
        values = np.zeros(len(codes))
        binned = codes >= specials
        if binned.any():
            values[binned] = self._sample_in_bins(codes[binned] - specials, rng)
        return from_axis(values, states, self.spec)

    def _sample_in_bins(self, bins: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """A leaf by its estimated mass within the bin, then a uniform value inside the leaf."""
        leaf_bins = self.domain.bin_of_leaf
        mass = np.maximum(self.domain.mass, 1e-12)
        cumulative = np.cumsum(mass)
        # Each bin's first leaf, and the last bin's end (`leaf_bins` ascends): a lookup per row.
        bounds = np.searchsorted(leaf_bins, np.arange(self.domain.bin_count + 1), side="left")
        starts, stops = bounds[bins], bounds[bins + 1]
        before = np.where(starts > 0, cumulative[np.maximum(starts - 1, 0)], 0.0)
        target = before + rng.random(len(bins)) * (cumulative[stops - 1] - before)
        leaves = np.clip(np.searchsorted(cumulative, target, side="left"), starts, stops - 1)
        low, high = self.domain.low[leaves], self.domain.high[leaves]
        decimals = 0 if is_integral(self.spec) else self.domain.decimals
        if decimals is None:
            return low + rng.random(len(bins)) * (high - low)
        return _uniform_on_grid(low, high, decimals, rng)


def _uniform_on_grid(
    low: np.ndarray, high: np.ndarray, decimals: int, rng: np.random.Generator
) -> np.ndarray:
    """A value written with `decimals` places, uniform over those in [low, high].

    A leaf that holds no such value (narrower than the step) gives its midpoint, rounded; one
    spanning more grid values than a double can count is drawn uniformly and rounded.
    """
    first, last = grid_span(low, high, decimals)
    draw = rng.random(len(low))
    with np.errstate(invalid="ignore"):
        countable = np.isfinite(first) & np.isfinite(last) & (last - first < 2.0**52)
        empty = countable & (last < first)
        picks = first + np.floor(draw * (last - first + 1))
        on_grid = np.round(np.minimum(picks, last) * 10.0**-decimals, decimals)
    spread = np.round(np.where(empty, (low + high) / 2, low + draw * (high - low)), decimals)
    return np.where(countable & ~empty, on_grid, spread)


# Values a categorical column contributes to the generator at most (plus NULL and `other`):
# the generator's cost grows with the widest column.
MAX_CATEGORY_CODES = 100


class CategoryModel:
    """A categorical column as [modelled values..., NULL?, other?].

    The generator models at most `MAX_CATEGORY_CODES` values, the most frequent by noisy count;
    `other` stands for every other row: kept values past that cap and values too rare to be
    revealed at all. The generator learns how such rows relate to the rest, and a sampled `other`
    becomes a kept value outside the modelled ones (or, with none, any kept value) drawn by its
    noisy frequency.
    """

    modelled = True

    def __init__(
        self,
        spec: ColumnSpec,
        domain: CategoryDomain,
        sigma: float,
        *,
        public: bool,
        limit: int = MAX_CATEGORY_CODES,
    ) -> None:
        self.spec = spec
        self.domain = domain
        by_count = np.argsort(-domain.counts, kind="stable")
        self._modelled = np.sort(by_count[:limit])
        self._tail = np.sort(by_count[limit:])
        self._index = {domain.values[i]: code for code, i in enumerate(self._modelled)}
        self._null_code = len(self._modelled) if domain.has_null else None
        needs_other = not public or len(self._tail) > 0
        width = len(self._modelled) + int(domain.has_null)
        self._other_code = width if needs_other else None
        self.cardinality = width + int(needs_other)
        counts = np.r_[
            domain.counts[self._modelled], [domain.null_count] if domain.has_null else []
        ]
        if needs_other:
            unknown = not public and len(self._tail) == 0
            counts = np.r_[counts, [np.nan if unknown else domain.counts[self._tail].sum()]]
        # A capped public column's `other` is a sum of noisy counts: no longer one measurement.
        self.prior = PriorCounts(counts, sigma) if not len(self._tail) else None

    def code_map(self) -> tuple[dict[Any, int], int, int]:
        """What `encode` looks a value up in: the modelled values' codes, NULL's code, and the
        code of every other value (`other`, or 0 where a public list has no `other`)."""
        fallback = self._other_code if self._other_code is not None else 0
        null_code = self._null_code if self._null_code is not None else fallback
        return self._index, null_code, fallback

    def encode(self, array: pa.Array | pa.ChunkedArray) -> np.ndarray:
        index, null_code, fallback = self.code_map()
        values = array.to_pylist()
        return np.fromiter(
            (null_code if v is None else index.get(v, fallback) for v in values),
            dtype=np.int32,
            count=len(values),
        )

    def decode(self, codes: np.ndarray, rng: np.random.Generator) -> pa.Array:
        # Rows index one Arrow array: the kept values, NULL, then the values drawn for `other`.
        kept = len(self.domain.values)
        picks = np.full(len(codes), kept, dtype=np.int64)
        modelled = codes < len(self._modelled)
        picks[modelled] = self._modelled[codes[modelled]]
        drawn: list[Any] = []
        other = codes == self._other_code if self._other_code is not None else None
        if other is not None and other.any():
            drawn = list(self._draw_other(int(other.sum()), rng))
            picks[other] = kept + 1 + np.arange(len(drawn))
        values = [*list(self.domain.values), None, *drawn]
        lookup = pa.array(values, type=_arrow_type(self.spec), from_pandas=False)
        return lookup.take(pa.array(picks))

    def _draw_other(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """Values for `n` sampled `other` codes: kept values outside the modelled ones (or,
        with none, any kept value) by noisy frequency. `roles.HeadTailModel` overrides it."""
        pool = self._tail if len(self._tail) else np.arange(len(self.domain.values))
        weights = np.maximum(self.domain.counts[pool], 0.0) + 1e-12
        picks = pool[rng.choice(len(pool), n, p=weights / weights.sum())]
        return _object_array(self.domain.values)[picks]


class TextModel:
    """Free text or a string key: new strings in the column's DP formats."""

    modelled = False
    prior = None
    cardinality = 0

    def __init__(self, spec: ColumnSpec, domain: TextDomain, *, unique: bool = False) -> None:
        self.spec = spec
        self.domain = domain
        self.unique = unique
        self._issued: set[str] = set()

    def generate(self, n: int, rng: np.random.Generator, *, start: int = 0) -> pa.Array:
        """`n` strings; a unique column stays unique across the chunks of one pass (from 0)."""
        domain = self.domain
        if start == 0:
            self._issued = set()
        issued = self._issued if self.unique else None
        strings: list[Any] = domain.sample(n, rng, issued=issued)
        if domain.has_null and not self.unique:
            rate = domain.null_count / max(domain.null_count + domain.non_null_estimate, 1.0)
            if not domain.fine and not domain.coarse:
                # No format is common enough to reveal: NULL is all the twin can show.
                rate = 1.0
            for i in np.flatnonzero(rng.random(n) < rate):
                strings[i] = None
        return pa.array(strings, type=pa.string())


class KeyModel:
    """A key: fresh unique values in a form no source key has (see `keys.py`)."""

    modelled = False
    prior = None
    cardinality = 0

    def __init__(
        self,
        spec: ColumnSpec,
        *,
        form: IdForm = IdForm.RESERVED,
        declared_max: float | None = None,
    ) -> None:
        self.spec = spec
        self.form = form
        self.declared_max = declared_max

    def generate(self, n: int, rng: np.random.Generator, *, start: int = 0) -> pa.Array:
        """The chunk's keys (or random UUIDs), so chunks never repeat a key."""
        if self.spec.kind is ColumnKind.UUID:
            return pa.array([str(uuid.UUID(bytes=rng.bytes(16), version=4)) for _ in range(n)])
        return pa.array(integer_keys(start, n, self.spec, self.form, self.declared_max))


class NullModel:
    """A column the generator cannot model, emitted as typed NULLs (policy `unsupported: null`)."""

    modelled = False
    prior = None
    cardinality = 0

    def __init__(self, spec: ColumnSpec) -> None:
        self.spec = spec

    def generate(self, n: int, rng: np.random.Generator, *, start: int = 0) -> pa.Array:
        return pa.nulls(n, pa.string())


# tails.HeadTailModel is a CategoryModel; tails.GeneratedModel generates like a key.
ColumnModel = NumericModel | CategoryModel | TextModel | KeyModel | StringKeyModel | NullModel


def _object_array(values: Any) -> np.ndarray:
    """A 1-d object array of `values`, even when the values are themselves sequences."""
    out = np.empty(len(values), dtype=object)
    for i, value in enumerate(values):
        out[i] = value
    return out


def _arrow_type(spec: ColumnSpec) -> pa.DataType | None:
    """The Arrow type of a category column's decoded values: a string or boolean column's own;
    for any other kind (an integer column with declared categories, `accepted_values: [1, 2]`)
    the values' own, cast to the column's warehouse type when the twin is written."""
    if spec.kind is ColumnKind.BOOLEAN:
        return pa.bool_()
    if spec.kind is ColumnKind.STRING:
        return pa.string()
    return None
