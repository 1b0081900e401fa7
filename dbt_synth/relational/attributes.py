"""Attribute-matched parents: which parent-twin row each child-twin row is attached to.

Each parent-twin row gets a child capacity from the DP children-per-parent histogram; children
go to parents whose attribute bins match theirs (planes.seats of the plane a long flight flew),
as deep as capacity allows. Post-processing of DP releases only.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from dbt_synth.relational.cardinality import Cardinality

# Quantile bins per numeric attribute when matching children to parents.
_SIGNATURE_BINS = 4


def assign(
    rows: np.ndarray,
    child_attrs: dict[str, pa.ChunkedArray],
    parent: pa.Table,
    attributes: tuple[str, ...],
    cardinality: Cardinality,
    rng: np.random.Generator,
) -> np.ndarray:
    """Parent-twin row index for each child row in `rows`.

    Each parent gets a capacity from the DP cardinality histogram. Children go to parents whose
    attribute bins match theirs, as deep as capacity allows (all attributes, then all but the
    last, …, then any parent with capacity left); the rest go to parents in proportion to their
    capacity.
    """
    m = len(rows)
    result = np.full(m, -1)
    if m == 0:
        return result
    capacity = cardinality.sample(parent.num_rows, rng, children=m)
    planned = capacity.astype(float) + 1e-9
    child_sig, parent_sig = _signatures(rows, child_attrs, parent, attributes)
    for depth in range(len(attributes), -1, -1):
        open_rows = np.flatnonzero(result < 0)
        if not len(open_rows) or capacity.sum() == 0:
            break
        c_key, p_key = _labels(child_sig[open_rows], parent_sig, depth)
        order = np.argsort(c_key, kind="stable")
        starts = np.flatnonzero(np.r_[True, np.diff(c_key[order]) != 0])
        for label, members in zip(
            c_key[order][starts], np.split(open_rows[order], starts[1:]), strict=True
        ):
            hosts = np.flatnonzero((p_key == label) & (capacity > 0))
            if not len(hosts):
                continue
            slots = np.repeat(hosts, capacity[hosts])
            take = min(len(members), len(slots))
            picked = slots[rng.choice(len(slots), size=take, replace=False)]
            chosen = members[rng.permutation(len(members))[:take]]
            result[chosen] = picked
            capacity -= np.bincount(picked, minlength=len(capacity))
    left = np.flatnonzero(result < 0)
    if len(left):
        result[left] = rng.choice(parent.num_rows, size=len(left), p=planned / planned.sum())
    return result


def _signatures(rows, child_attrs, parent: pa.Table, attributes):
    """Per child row and per parent row, a tuple of attribute bins as an int matrix."""
    child_sig = np.zeros((len(rows), len(attributes)), dtype=np.int64)
    parent_sig = np.zeros((parent.num_rows, len(attributes)), dtype=np.int64)
    for j, name in enumerate(attributes):
        p = parent.column(name).to_pandas()
        c = child_attrs[name].to_pandas().iloc[rows].reset_index(drop=True)
        if p.dtype.kind in "iuf" and p.nunique() > 2 * _SIGNATURE_BINS:
            edges = np.unique(
                np.nanquantile(p.astype(float), np.linspace(0, 1, _SIGNATURE_BINS + 1)[1:-1])
            )
            parent_sig[:, j] = np.where(p.isna(), -1, np.searchsorted(edges, p.astype(float)))
            child_sig[:, j] = np.where(c.isna(), -1, np.searchsorted(edges, c.astype(float)))
        else:
            codes = {v: i for i, v in enumerate(p.dropna().unique().tolist())}
            parent_sig[:, j] = p.map(codes).fillna(-1).astype(np.int64).to_numpy()
            child_sig[:, j] = c.map(codes).fillna(-2).astype(np.int64).to_numpy()
    return child_sig, parent_sig


def _labels(child: np.ndarray, parent: np.ndarray, depth: int) -> tuple[np.ndarray, np.ndarray]:
    """One integer label per distinct tuple of the first `depth` bins, shared by both sides."""
    if depth == 0:
        return np.zeros(len(child), dtype=np.int64), np.zeros(len(parent), dtype=np.int64)
    both = np.vstack([child[:, :depth], parent[:, :depth]])
    _, inverse = np.unique(both, axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    return inverse[: len(child)], inverse[len(child) :]
