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

import pyarrow as pa
import pyarrow.compute as pc

from dbt_synth.store.codec import StoreError
from dbt_synth.store.model import StoredModel
from dbt_synth.warehouse import OwnTable, Warehouse

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

    def latest(self, model: str, fingerprint: str) -> tuple[StoredModel | None, bool]:
        """The newest readable fit of `model` with `fingerprint`, and whether `model` has any
        stored fit at all (under any fingerprint)."""
        rows = self._rows_of(model)
        if rows is None or rows.num_rows == 0:
            return None, False
        matching = rows.filter(pc.equal(rows["fingerprint"], fingerprint))
        if matching.num_rows == 0:
            return None, True
        newest = matching.sort_by([("created_at", "descending")]).slice(0, 1).to_pylist()[0]
        try:
            return StoredModel.from_row(newest), True
        except StoreError:
            return None, True

    def fit_ids(self) -> list[str]:
        """Every stored fit id (for consistency checks)."""
        rows = self.warehouse.read(self.table)
        return [] if rows is None else rows.column("fit_id").to_pylist()

    def save(self, stored: StoredModel) -> None:
        """Append one fit; call only after its ledger row is written."""
        self.warehouse.append(self.table, stored.row())

    def _rows_of(self, model: str) -> pa.Table | None:
        rows = self.warehouse.read(self.table)
        if rows is None:
            return None
        return rows.filter(pc.equal(rows["model"], model))
