"""Synth mode and the nodes that keep state between builds: incremental models and snapshots.

A project built for real first and then in synth mode on the same target (as a developer who
tries the switch on their own warehouse does) must not end up with real rows in what synth
mode built: an incremental model built on twins is rebuilt whole rather than merged into the
table the real build filled (its `is_incremental()` filter read that table), and a snapshot
that would merge twin rows into its real history fails at compile time, naming the fix.
"""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from dbt_synth.cli import app
from fixtures.real_data import real_table
from tests.dbt_projects import DbtProject, new_project

pytestmark = pytest.mark.slow

SYNTH = ("--vars", "synth: true")
INCREMENTAL = """
{{ config(materialized='incremental', unique_key='weighing_id') }}
select weighing_id, chick, weight from {{ ref('raw_weighings') }}
{% if is_incremental() %}
where weighing_id > (select max(weighing_id) from {{ this }})
{% endif %}
"""
SNAPSHOT = """
{% snapshot weighings_snapshot %}
{{ config(target_schema='snapshots', unique_key='weighing_id', strategy='check',
          check_cols=['weight']) }}
select * from {{ ref('raw_weighings') }}
{% endsnapshot %}
"""


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> DbtProject:
    project = new_project(tmp_path_factory.mktemp("stateful"))
    (project.root / "models" / "sources.yml").unlink()  # seeds only
    weighings = real_table("datasets", "ChickWeight")
    weighings.insert(0, "weighing_id", weighings.index + 1)
    (project.root / "seeds").mkdir()
    weighings[["weighing_id", "Chick", "Time", "weight"]].rename(
        columns={"Chick": "chick", "Time": "day"}
    ).to_csv(project.root / "seeds" / "raw_weighings.csv", index=False)
    project.write(
        "seeds/seeds.yml",
        "version: 2\nseeds:\n  - name: raw_weighings\n    columns:\n"
        "      - name: weighing_id\n        data_tests: [unique]\n",
    )
    project.write("models/weighings_incremental.sql", INCREMENTAL)
    project.write("snapshots/weighings_snapshot.sql", SNAPSHOT)
    real = project.dbt("build")
    assert real.success, real.exception
    project.real_ids = {r[0] for r in project.query("select weighing_id from main.raw_weighings")}
    incremental = project.query("select weighing_id from main.weighings_incremental")
    assert {r[0] for r in incremental} == project.real_ids
    flags = ["--project-dir", str(project.root), "--profiles-dir", str(project.root)]
    init = CliRunner().invoke(app, ["init", "--select", "resource_type:seed", *flags])
    assert init.exit_code == 0, init.output
    return project


def test_a_snapshot_reading_a_twin_fails_naming_the_fix(project):
    result = project.dbt("build", *SYNTH)
    (snapshot,) = [r for r in result.result.results if r.node.name == "weighings_snapshot"]
    assert str(snapshot.status) == "error"
    assert "snapshot 'weighings_snapshot'" in snapshot.message
    assert "--exclude resource_type:snapshot" in snapshot.message
    # Its history holds only what the real build put there.
    (count,) = project.query("select count(*) from snapshots.weighings_snapshot")[0]
    assert count == project.query("select count(*) from main.raw_weighings")[0][0]


def test_an_incremental_model_on_twins_keeps_no_real_row(project):
    # The build above (failed on its snapshot only) built the model on twins too; again:
    result = project.dbt("build", *SYNTH, "--exclude", "resource_type:snapshot")
    assert result.success, [(r.node.name, r.message) for r in result.result.results]
    built = set(project.query("select * from main.weighings_incremental"))
    twin = set(
        project.query("select weighing_id, chick, weight from main_synth.raw_weighings_twin")
    )
    assert built == twin and built
    # Twin keys are fresh: none is a real weighing id, and no real row is left.
    assert not {row[0] for row in built} & project.real_ids
    # A second synth build rebuilds it whole again, not merged with the first.
    assert project.dbt("build", *SYNTH, "--exclude", "resource_type:snapshot").success
    assert set(project.query("select * from main.weighings_incremental")) == set(
        project.query("select weighing_id, chick, weight from main_synth.raw_weighings_twin")
    )
