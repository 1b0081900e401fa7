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

    def encode(self, array: pa.Array | pa.ChunkedArray) -> np.ndarray:
        values, states = to_axis(array, self.spec)
        specials = len(self.domain.specials)
        codes = specials + np.searchsorted(self._inner_edges, values, side="right")
        if self.domain.bin_count == 0:
            codes[:] = 0
        for state, code in self._special_code.items():
            codes[states == state] = code
        # A special state that was not kept (too rare to reveal) is modelled as the middle bin.
        unkept = (states >= 0) & ~np.isin(states, list(self._special_code))
        codes[unkept] = specials + self.domain.bin_count // 2 if self.domain.bin_count else 0
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
        starts = np.searchsorted(leaf_bins, bins, side="left")
        stops = np.searchsorted(leaf_bins, bins, side="right")
        before = np.where(starts > 0, cumulative[np.maximum(starts - 1, 0)], 0.0)
        target = before + rng.random(len(bins)) * (cumulative[stops - 1] - before)
        leaves = np.clip(np.searchsorted(cumulative, target, side="left"), starts, stops - 1)
        low, high = self.domain.low[leaves], self.domain.high[leaves]
        values = low + rng.random(len(bins)) * (high - low)
        if self.domain.decimals is not None:
            values = np.round(values, self.domain.decimals)
        if is_integral(self.spec):
            values = np.clip(np.round(values), np.ceil(low), np.floor(high))
        return values


class CategoryModel:
    """A categorical column as [kept values..., NULL?, other?].

    `other` stands for every value too rare to be revealed; the generator learns how such rows
    relate to the rest, and a sampled `other` becomes a kept value drawn by its noisy frequency.
    """

    modelled = True

    def __init__(
        self, spec: ColumnSpec, domain: CategoryDomain, sigma: float, *, public: bool
    ) -> None:
        self.spec = spec
        self.domain = domain
        self._index = {value: i for i, value in enumerate(domain.values)}
        self._null_code = len(domain.values) if domain.has_null else None
        self._other_code = None if public else domain.cardinality
        self.cardinality = domain.cardinality + int(not public)
        counts = domain.code_counts()
        self.prior = PriorCounts(np.r_[counts, [np.nan]] if not public else counts, sigma)

    def encode(self, array: pa.Array | pa.ChunkedArray) -> np.ndarray:
        fallback = self._other_code if self._other_code is not None else 0
        null_code = self._null_code if self._null_code is not None else fallback
        values = array.to_pylist()
        index = self._index
        return np.fromiter(
            (null_code if v is None else index.get(v, fallback) for v in values),
            dtype=np.int32,
            count=len(values),
        )

    def decode(self, codes: np.ndarray, rng: np.random.Generator) -> pa.Array:
        codes = codes.copy()
        if self._other_code is not None:
            other = codes == self._other_code
            weights = np.maximum(self.domain.counts, 0.0) + 1e-12
            codes[other] = rng.choice(len(weights), int(other.sum()), p=weights / weights.sum())
        null = (
            codes == self._null_code if self._null_code is not None else np.zeros(len(codes), bool)
        )
        lookup = np.array([*list(self.domain.values), None], dtype=object)
        values = lookup[np.where(null, len(self.domain.values), codes)]
        return pa.array(list(values), type=_arrow_type(self.spec), from_pandas=False)


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
    """A primary key: fresh unique values that share nothing with the source's keys."""

    modelled = False
    prior = None
    cardinality = 0

    def __init__(self, spec: ColumnSpec) -> None:
        self.spec = spec

    def generate(self, n: int, rng: np.random.Generator, *, start: int = 0) -> pa.Array:
        """Keys `start + 1 … start + n` (or random UUIDs), so chunks never repeat a key."""
        if self.spec.kind is ColumnKind.UUID:
            return pa.array([str(uuid.UUID(bytes=rng.bytes(16), version=4)) for _ in range(n)])
        return pa.array(np.arange(start + 1, start + n + 1, dtype=np.int64))


class NullModel:
    """A column the generator cannot model, emitted as typed NULLs (policy `unsupported: null`)."""

    modelled = False
    prior = None
    cardinality = 0

    def __init__(self, spec: ColumnSpec) -> None:
        self.spec = spec

    def generate(self, n: int, rng: np.random.Generator, *, start: int = 0) -> pa.Array:
        return pa.nulls(n, pa.string())


ColumnModel = NumericModel | CategoryModel | TextModel | KeyModel | NullModel


def _arrow_type(spec: ColumnSpec) -> pa.DataType:
    if spec.kind is ColumnKind.BOOLEAN:
        return pa.bool_()
    return pa.string()
