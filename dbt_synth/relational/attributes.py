"""Attribute-matched parents: which parent-twin row each child-twin row is attached to.

Each parent-twin row gets a child capacity from the DP children-per-parent histogram; children
go to parents whose attribute bins ("signature") match theirs (planes.seats of the plane a long
flight flew), as deep as capacity allows: all attributes, then all but the last, …, then any
parent with capacity left; the rest go to parents in proportion to their capacity.

The twin is generated in chunks and never held whole, so the matching is planned on counts:
one pass over the twin counts the children of each signature (`Matching.plan`), which fixes how
many children of each signature meet a parent at each depth and how many each parent receives
there; the generating pass then draws, chunk by chunk and without replacement, from those
quotas (`Matching.assign`). Every draw the whole-table matching made uniformly at random is
made the same way here, per chunk. Post-processing of DP releases only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from dbt_synth.relational.cardinality import Cardinality

# Quantile bins per numeric attribute when matching children to parents.
_SIGNATURE_BINS = 4
# A child's bin code for a value no parent-twin row holds (a parent's NULL is -1).
_UNSEEN = -2


@dataclass(frozen=True)
class Signer:
    """Attribute bins shared by parent-twin rows and child-twin rows: quantile edges of the
    parent twin for numeric attributes, the parent twin's values for the others."""

    edges: tuple[np.ndarray | None, ...]
    codes: tuple[pa.Array | None, ...]

    @classmethod
    def of(cls, parent: pa.Table, attributes: tuple[str, ...]) -> Signer:
        edges, codes = [], []
        for name in attributes:
            column = parent.column(name)
            kind = column.type
            numeric = pa.types.is_integer(kind) or pa.types.is_floating(kind)
            if numeric and pc.count_distinct(column).as_py() > 2 * _SIGNATURE_BINS:
                values = column.to_numpy().astype(float)
                quantiles = np.linspace(0, 1, _SIGNATURE_BINS + 1)[1:-1]
                edges.append(np.unique(np.nanquantile(values, quantiles)))
                codes.append(None)
            else:
                edges.append(None)
                codes.append(column.drop_null().unique())
        return cls(tuple(edges), tuple(codes))

    def sign(
        self, columns: list[pa.Array | pa.ChunkedArray], rows: int, *, unseen: int
    ) -> np.ndarray:
        """One row of bin codes per row of `columns` (one column per attribute)."""
        signature = np.zeros((rows, len(columns)), dtype=np.int64)
        for j, column in enumerate(columns):
            if self.edges[j] is not None:
                # Unsafe: an int64 beyond 2^53 (a twin's value from a wide DP domain at a small
                # ε) only needs its bin, which the nearest float gives.
                values = pc.cast(column, pa.float64(), safe=False).to_numpy(zero_copy_only=False)
                bins = np.searchsorted(self.edges[j], values)
                signature[:, j] = np.where(np.isnan(values), -1, bins)
            else:
                found = pc.index_in(column, value_set=self.codes[j])
                signature[:, j] = pc.fill_null(found, unseen).to_numpy(zero_copy_only=False)
        return signature

    def parents(self, parent: pa.Table, attributes: tuple[str, ...]) -> np.ndarray:
        return self.sign([parent.column(a) for a in attributes], parent.num_rows, unseen=-1)

    def children(self, columns: list[pa.Array | pa.ChunkedArray], rows: int) -> np.ndarray:
        return self.sign(columns, rows, unseen=_UNSEEN)


def count_signatures(signatures: np.ndarray, into: dict[tuple[int, ...], int]) -> None:
    """Add the rows of `signatures` to the counts per signature in `into`."""
    distinct, inverse = _distinct(signatures)
    for row, count in zip(distinct, np.bincount(inverse).tolist(), strict=False):
        into[row] = into.get(row, 0) + count


def _distinct(signatures: np.ndarray) -> tuple[list[tuple[int, ...]], np.ndarray]:
    """The distinct rows of `signatures` as tuples, and each row's index among them."""
    if not len(signatures):
        return [], np.zeros(0, dtype=np.int64)
    if not signatures.shape[1]:
        return [()], np.zeros(len(signatures), dtype=np.int64)
    low = signatures.min(axis=0)
    span = signatures.max(axis=0) - low + 1
    if float(np.prod(span.astype(float))) < 2.0**62:
        # Rows as one integer each (mixed radix): a 1-D unique is far faster than a row-wise one.
        radix = np.r_[1, np.cumprod(span[:-1])]
        flat, inverse = np.unique((signatures - low) @ radix, return_inverse=True)
        distinct = (flat[:, None] // radix) % span + low
    else:
        distinct, inverse = np.unique(signatures, axis=0, return_inverse=True)
    return [tuple(row) for row in distinct.tolist()], inverse.reshape(-1)


@dataclass(frozen=True)
class Matching:
    """How the children of each signature are spread over depths and parents.

    Depth index i stands for the first `A − i` attributes (A = all); the last quota column holds
    the children left to the capacity-weighted fallback.
    """

    index: dict[tuple[int, ...], int]
    quotas: np.ndarray
    received: np.ndarray
    labels: np.ndarray
    hosts: tuple[dict[int, np.ndarray], ...]
    weights: np.ndarray

    @classmethod
    def plan(
        cls,
        counts: dict[tuple[int, ...], int],
        parents: np.ndarray,
        cardinality: Cardinality,
        rng: np.random.Generator,
    ) -> Matching:
        """Quotas from the children's signature `counts` and the parents' signatures."""
        signatures = list(counts)
        remaining = np.array([counts[s] for s in signatures], dtype=np.int64)
        matrix = np.array(signatures, dtype=np.int64).reshape(len(signatures), parents.shape[1])
        depths = parents.shape[1] + 1
        capacity = cardinality.sample(len(parents), rng, children=int(remaining.sum()))
        weights = capacity.astype(float) + 1e-9
        quotas = np.zeros((len(signatures), depths + 1), dtype=np.int64)
        received = np.zeros((depths, len(parents)), dtype=np.int64)
        labels = np.full((len(signatures), depths), -1, dtype=np.int64)
        hosts = []
        for i in range(depths):
            parent_labels, labels[:, i] = _labels(matrix, parents, depths - 1 - i)
            hosts.append(_members(parent_labels))
            if not remaining.sum() or not capacity.sum():
                continue
            for label in np.unique(labels[(labels[:, i] >= 0) & (remaining > 0), i]):
                members = np.flatnonzero(labels[:, i] == label)
                open_hosts = hosts[i][label][capacity[hosts[i][label]] > 0]
                take = min(int(remaining[members].sum()), int(capacity[open_hosts].sum()))
                if not take:
                    continue
                chosen = _draw(remaining[members], take, rng)
                picked = _draw(capacity[open_hosts], take, rng)
                quotas[members, i] += chosen
                remaining[members] -= chosen
                received[i, open_hosts] += picked
                capacity[open_hosts] -= picked
        quotas[:, -1] = remaining
        index = {s: k for k, s in enumerate(signatures)}
        return cls(index, quotas, received, labels, tuple(hosts), weights)

    def start(self) -> MatchingState:
        """Fresh quotas for one generating pass (each pass yields the same rows)."""
        return MatchingState(self.quotas.copy(), self.received.copy())

    def assign(
        self, signatures: np.ndarray, state: MatchingState, rng: np.random.Generator
    ) -> np.ndarray:
        """Parent-twin row index for each child row of one chunk, drawn from `state`."""
        distinct, inverse = _distinct(signatures)
        counts = dict(zip(distinct, np.bincount(inverse).tolist(), strict=False))
        return self.place(signatures, self.draw(counts, state, rng), rng)

    def draw(
        self, counts: dict[tuple[int, ...], int], state: MatchingState, rng: np.random.Generator
    ) -> ChunkDraw:
        """One chunk's share of the quotas, from its signature `counts` alone.

        Drawn in chunk order from `state` (on the driver, for Spark: see
        `warehouse/spark_child.py`), so that the rows themselves can be placed anywhere."""
        splits: dict[int, np.ndarray] = {}
        members: dict[tuple[int, int], int] = {}
        for row in sorted(counts):
            k = self.index.get(row)
            if k is None:
                continue  # not seen when planning: left to the fallback
            split = _draw(state.quotas[k], min(counts[row], int(state.quotas[k].sum())), rng)
            state.quotas[k] -= split
            splits[k] = split
            for i in np.flatnonzero(split[:-1]).tolist():
                at = (i, int(self.labels[k, i]))
                members[at] = members.get(at, 0) + int(split[i])
        hosts: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}
        for (i, label), count in sorted(members.items()):
            open_hosts = self.hosts[i][label]
            take = min(count, int(state.received[i, open_hosts].sum()))
            taken = _draw(state.received[i, open_hosts], take, rng)
            state.received[i, open_hosts] -= taken
            hosts[(i, label)] = (open_hosts[taken > 0], taken[taken > 0])
        return ChunkDraw(splits, hosts)

    def place(
        self, signatures: np.ndarray, draw: ChunkDraw, rng: np.random.Generator
    ) -> np.ndarray:
        """Parent-twin row index for each child row of the chunk `draw` was drawn for: each
        row gets a depth and a parent of its label at that depth uniformly at random."""
        rows = len(signatures)
        depth_of = np.full(rows, self.quotas.shape[1] - 1)
        signature_of = np.full(rows, -1)
        if rows:
            distinct, inverse = _distinct(signatures)
            order = np.argsort(inverse, kind="stable")
            groups = np.split(order, np.cumsum(np.bincount(inverse))[:-1])
            for row, members in zip(distinct, groups, strict=True):
                k = self.index.get(row)
                if k is None or k not in draw.splits:
                    continue
                signature_of[members] = k
                split = draw.splits[k]
                fallback = np.full(len(members) - split.sum(), len(split) - 1)
                spread = np.r_[np.repeat(np.arange(len(split)), split), fallback]
                depth_of[members] = rng.permutation(spread)
        result = np.full(rows, -1)
        for i in range(self.received.shape[0]):
            at = np.flatnonzero(depth_of == i)
            labels = self.labels[signature_of[at], i]
            for label in np.unique(labels):
                members = at[labels == label]
                hosts, counts = draw.hosts.get((i, int(label)), _NO_HOSTS)
                slots = rng.permutation(np.repeat(hosts, counts))
                result[members[: len(slots)]] = slots
        left = np.flatnonzero(result < 0)
        if len(left):
            p = self.weights / self.weights.sum()
            result[left] = rng.choice(len(self.weights), size=len(left), p=p)
        return result


@dataclass(frozen=True)
class ChunkDraw:
    """One chunk's share of a `Matching`: per signature (by index) its children per depth, and
    per (depth, label) the parents that receive children there and how many each.

    Counts only (at most one entry per parent that receives children in the chunk), so a
    driver can draw every chunk's share in order and send it to where the chunk is generated."""

    splits: dict[int, np.ndarray]
    hosts: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]]


_NO_HOSTS = (np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64))


@dataclass
class MatchingState:
    """What one generating pass has left to hand out (mutable: it is drawn down chunk by chunk)."""

    quotas: np.ndarray
    received: np.ndarray


def _draw(counts: np.ndarray, take: int, rng: np.random.Generator) -> np.ndarray:
    """`take` items without replacement from a multiset with `counts` of each kind."""
    return rng.multivariate_hypergeometric(counts.astype(np.int64), take, method="marginals")


def _labels(children: np.ndarray, parents: np.ndarray, depth: int) -> tuple[np.ndarray, np.ndarray]:
    """One label per distinct tuple of the parents' first `depth` bins; a child prefix that no
    parent holds gets −1."""
    if depth == 0:
        return np.zeros(len(parents), dtype=np.int64), np.zeros(len(children), dtype=np.int64)
    distinct, parent_labels = np.unique(parents[:, :depth], axis=0, return_inverse=True)
    known = {row: i for i, row in enumerate(map(tuple, distinct.tolist()))}
    child_labels = [known.get(row, -1) for row in map(tuple, children[:, :depth].tolist())]
    return parent_labels.reshape(-1), np.array(child_labels, dtype=np.int64)


def _members(labels: np.ndarray) -> dict[int, np.ndarray]:
    """Parent row indices per label."""
    frame = pd.Series(np.arange(len(labels))).groupby(labels)
    return {int(label): group.to_numpy() for label, group in frame}
