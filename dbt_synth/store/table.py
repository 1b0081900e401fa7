"""`synth_models`: stored fits in a table of ours, beside the ledger, through the warehouse seam.

Write order keeps the store honest under faults: a fit's ledger row is appended first and its
model only after, so a build killed in between leaves a paid-for fit without a model (the next
build refits, spending again: conservative), never a model that no ledger row accounts for.
Fits of one source are serialised within a dbt process (`source_lock`), so parallel dbt threads
cannot both pass the lifetime budget check and then both spend.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pyarrow.compute as pc

from dbt_synth.store.codec import StoreError
from dbt_synth.store.model import StoredModel
from dbt_synth.warehouse import OwnTable, Warehouse

# What choosing a fit needs: read for every fit of a twin, without the fits themselves.
_INDEX = ("fit_id", "fingerprint", "created_at")
_LOCKS: dict[tuple[str, str, str], threading.Lock] = {}
_LOCKS_GUARD = threading.Lock()


@contextmanager
def source_lock(ledger: OwnTable, source: str) -> Iterator[None]:
    """Hold the lock of one source's ledger within this process (dbt threads share it)."""
    with _LOCKS_GUARD:
        lock = _LOCKS.setdefault((ledger.schema, ledger.name, source), threading.Lock())
    with lock:
        yield


class ModelStore:
    """Stored fits of twins, read and appended through the seam (never updated in place)."""

    def __init__(self, warehouse: Warehouse, table: OwnTable) -> None:
        self.warehouse = warehouse
        self.table = table

    def latest(
        self, model: str, fingerprint: str, *, child: bool = False
    ) -> tuple[StoredModel | None, bool]:
        """The newest readable fit of `model` with `fingerprint`, and whether `model` has any
        stored fit at all (under any fingerprint). `child`: the fit must hold a child twin's
        key parts.

        Two narrow reads: the index columns of `model`'s fits, then the one row chosen. Other
        twins' fits, and this twin's older ones, are never loaded."""
        index = self.warehouse.read(self.table, where={"model": model}, columns=_INDEX)
        if index is None or index.num_rows == 0:
            return None, False
        matching = index.filter(pc.equal(index["fingerprint"], fingerprint))
        if matching.num_rows == 0:
            return None, True
        newest = matching.sort_by([("created_at", "descending")]).column("fit_id")[0].as_py()
        rows = self.warehouse.read(self.table, where={"model": model, "fit_id": newest})
        try:
            stored = StoredModel.from_row(rows.to_pylist()[0])
        except StoreError:
            return None, True
        if child and stored.child is None:
            return None, True
        return stored, True

    def fit_ids(self) -> list[str]:
        """Every stored fit id (for consistency checks)."""
        rows = self.warehouse.read(self.table, columns=("fit_id",))
        return [] if rows is None else rows.column("fit_id").to_pylist()

    def save(self, stored: StoredModel) -> None:
        """Append one fit; call only after its ledger row is written."""
        self.warehouse.append(self.table, stored.row())
