"""The stored model: a fit survives the JSON + npz round trip and samples the same rows."""

from __future__ import annotations

import io
import json
from datetime import datetime

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from dbt_synth import synthesize
from dbt_synth.config import parse_config
from dbt_synth.store.codec import StoreError, decode, encode
from dbt_synth.store.model import StoredModel, fingerprint
from dbt_synth.store.policy import source_budgets
from dbt_synth.store.table import ModelStore
from dbt_synth.warehouse import OwnTable
from dbt_synth.warehouse.duckdb import DuckDBWarehouse
from fixtures.real_data import cps1988


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    data = cps1988().sample(3000, random_state=3).reset_index(drop=True)
    data["person_id"] = np.arange(len(data))
    data["note"] = [f"id-{i % 40:03d}" for i in range(len(data))]
    data["day"] = pd.Timestamp("2024-01-01") + pd.to_timedelta(data["experience"], unit="D")
    return data


@pytest.mark.parametrize("mechanism", ["marginal", "dpsgd"])
def test_a_stored_fit_samples_the_same_rows_as_the_fit_itself(frame, mechanism):
    config = {"epsilon": 2.0, "seed": 3, "mechanism": mechanism, "primary_key": "person_id"}
    config["columns"] = {"note": {"role": "text"}}
    fitted = synthesize(frame, config=config)
    settings = parse_config(config)
    stored = StoredModel("fit-1", "twin", "cps", "f", datetime(2026, 1, 1), fitted.epsilon, fitted)
    row = stored.row().to_pylist()[0]
    assert json.loads(row["document"])["format"] == 1
    loaded = StoredModel.from_row(row)
    original = stored.resampled(settings).table
    again = loaded.resampled(settings).table
    assert again.equals(original)
    # Nothing about the fit's spends is stored; the resample spends nothing.
    assert loaded.resampled(settings).epsilon == 0.0
    assert loaded.fitted.rows_estimate == fitted.rows_estimate


def test_realised_dpsgd_batch_sizes_are_never_stored(frame):
    fitted = synthesize(frame.head(1500), epsilon=1.0, mechanism="dpsgd")
    assert fitted.generator.mechanism.batch_sizes
    document, _ = encode(fitted.generator.mechanism)
    assert "batch_sizes" not in document
    assert decode(document, encode(fitted.generator.mechanism)[1]).batch_sizes == []


def test_an_attribute_the_store_does_not_know_stops_the_save(frame):
    fitted = synthesize(frame.head(1500), epsilon=1.0, mechanism="marginal")
    mechanism = fitted.generator.mechanism
    mechanism.truth = np.arange(3)
    with pytest.raises(StoreError, match=r"attribute\(s\) \['truth'\] the model store does not"):
        encode(mechanism)


def test_a_row_naming_a_class_outside_the_allowlist_is_refused():
    document = json.dumps({"format": 1, "tree": {"$": "object", "type": "Popen", "v": {}}})
    empty = io.BytesIO()
    np.savez(empty)
    with pytest.raises(StoreError, match="cannot be read"):
        decode(document, empty.getvalue())


def test_pickled_arrays_are_refused():
    pickled = io.BytesIO()
    np.savez(pickled, a0=np.array([{"x": 1}], dtype=object))
    document = json.dumps({"format": 1, "tree": {"$": "ndarray", "k": "a0"}})
    with pytest.raises(StoreError, match="cannot be read"):
        decode(document, pickled.getvalue())


def test_fingerprint_follows_config_and_schema_never_data_or_sampling(frame):
    fitted = synthesize(frame.head(1500), epsilon=1.0)
    base = fingerprint(parse_config({"epsilon": 1.0, "seed": 1}), fitted.schema)
    assert base == fingerprint(parse_config({"epsilon": 1.0, "seed": 9, "rows": 5}), fitted.schema)
    assert base != fingerprint(parse_config({"epsilon": 2.0}), fitted.schema)
    renamed = fitted.schema.__class__("other", fitted.schema.columns)
    assert base != fingerprint(parse_config({"epsilon": 1.0}), renamed)
    assert base != fingerprint(parse_config({"epsilon": 1.0}), fitted.schema, holdout=0.2)


def test_source_budgets_sum_fits_of_every_twin_and_show_the_latest_cap():
    rows = [
        {"source": "cps", "epsilon": 1.0, "delta": 1e-6, "finished_at": datetime(2026, 1, 1)},
        {"source": "cps", "epsilon": 0.0, "delta": 0.0, "finished_at": datetime(2026, 1, 2)},
        {
            "source": "cps",
            "epsilon": 1.5,
            "delta": 2e-6,
            "finished_at": datetime(2026, 1, 3),
            "max_total_epsilon": 4.0,
        },
        {"source": "loans", "epsilon": 0.5, "delta": 1e-7, "finished_at": datetime(2026, 1, 1)},
    ]
    lines = [budget.line() for budget in source_budgets(rows)]
    assert lines == [
        "cps: ε 2.500 of max_total_epsilon 4 over 2 fit(s), δ 3.00e-06 (sum of fits: an upper "
        "bound)",
        "loans: ε 0.500 (no cap) over 1 fit(s), δ 1.00e-07 (sum of fits: an upper bound)",
    ]


class _RecordingDuckDB(DuckDBWarehouse):
    """The real DuckDB warehouse, recording what each read of our tables returned."""

    def __init__(self, session) -> None:
        super().__init__(session)
        self.reads: list[pa.Table] = []

    def read(self, table, **narrowed):
        rows = super().read(table, **narrowed)
        self.reads.append(rows)
        return rows


def test_the_store_loads_only_the_one_fit_it_resamples(frame):
    fitted = synthesize(frame.head(1500), epsilon=1.0, mechanism="marginal")
    warehouse = _RecordingDuckDB(duckdb.connect())
    store = ModelStore(warehouse, OwnTable("main_synth", "synth_models"))
    fits = [
        ("old", "twin", "f", datetime(2026, 1, 1)),
        ("new", "twin", "f", datetime(2026, 1, 3)),
        ("other-config", "twin", "g", datetime(2026, 1, 4)),
        ("other-twin", "loans_twin", "f", datetime(2026, 1, 5)),
    ]
    for fit_id, model, key, created in fits:
        store.save(StoredModel(fit_id, model, "cps", key, created, fitted.epsilon, fitted))
    latest, any_stored = store.latest("twin", "f")
    assert latest.fit_id == "new" and any_stored
    # Every read but the last holds no model; the last holds the chosen fit and nothing else.
    assert all("document" not in r.column_names for r in warehouse.reads[:-1])
    assert warehouse.reads[-1].column("fit_id").to_pylist() == ["new"]
    assert store.latest("twin", "h") == (None, True)
    assert store.latest("nobody", "f") == (None, False)
    assert "document" not in warehouse.reads[-1].column_names
