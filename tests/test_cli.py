"""`dbt-synth init` on a real project: generated twins build green, synth mode, idempotence."""

from __future__ import annotations

import ast
import json
import shutil

import pytest
import yaml
from typer.testing import CliRunner

from dbt_synth.cli import app
from dbt_synth.cli.candidates import candidates
from dbt_synth.cli.dbt_project import DbtProject as CliProject
from dbt_synth.cli.scaffold import synth_config, twin_model, twin_yml
from dbt_synth.relational.keys import ForeignKey, KeyOrigin
from fixtures.real_data import cps1988
from tests.dbt_projects import DbtProject, new_project

SOURCES = """
version: 2
sources:
  - name: raw
    tables:
      - name: cps1988
        meta:
          synth: {epsilon: 1.5, seed: 11, verbose: false}
        columns:
          - name: wage
            data_tests: [not_null]
          - name: ethnicity
            data_tests:
              - not_null
              - accepted_values:
                  arguments:
                    values: [cauc, afam]
      - name: other
        columns:
          - name: region
            data_tests:
              - relationships:
                  arguments: {to: "source('raw', 'cps1988')", field: region}
"""

DOWNSTREAM = """
select region, count(*) as workers, avg(wage) as mean_wage
from {{ source('raw', 'cps1988') }}
group by region
"""

DOWNSTREAM_YML = """
version: 2
models:
  - name: wages_by_region
    columns:
      - name: region
        data_tests:
          - not_null
          - accepted_values:
              arguments:
                values: [northeast, midwest, south, west]
"""


# A Python model reading the twinned source: in synth mode its dbt.source() reads the twin.
PYTHON_DOWNSTREAM = """
def model(dbt, session):
    workers = dbt.source("raw", "cps1988").df()
    return workers.groupby("region").size().reset_index(name="workers")
"""


def _cli(project: DbtProject, *args: str):
    return CliRunner().invoke(
        app, [*args, "--project-dir", str(project.root), "--profiles-dir", str(project.root)]
    )


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> DbtProject:
    project = new_project(tmp_path_factory.mktemp("cli"), {"cps1988": [], "other": []})
    project.load("cps1988", cps1988().head(3000))
    project.load("other", cps1988().head(50)[["wage", "region"]])
    project.write("models/sources.yml", SOURCES)
    project.write("models/wages_by_region.sql", DOWNSTREAM)
    project.write("models/wages_by_region.yml", DOWNSTREAM_YML)
    project.write("models/other_rows.sql", "select count(*) as n from {{ source('raw', 'other') }}")
    project.write("models/workers_per_region.py", PYTHON_DOWNSTREAM)
    return project


@pytest.fixture(scope="module")
def initialised(project):
    result = _cli(project, "init")
    assert result.exit_code == 0, result.output
    return result


@pytest.fixture(scope="module")
def synth_build(project, initialised):
    events = []
    switch = "{synth: true, synth_passthrough: [raw.other]}"
    result = project.dbt_with_callbacks([events.append], "build", "--vars", switch)
    return result, events


def test_init_writes_a_twin_model_and_yml_for_each_meta_synth_source(project, initialised):
    twins = sorted(p.name for p in (project.root / "models" / "synth").iterdir())
    assert twins == ["cps1988_twin.py", "cps1988_twin.yml"]
    code = (project.root / "models/synth/cps1988_twin.py").read_text()
    assert 'dbt.source("raw", "cps1988")' in code
    assert 'dbt.config.get("synth")' in code
    yml = (project.root / "models/synth/cps1988_twin.yml").read_text()
    assert "epsilon: 1.5" in yml and "seed: 11" in yml
    assert (project.root / "macros" / "dbt_synth_mode.sql").exists()


def test_init_output_builds_and_the_twin_inherits_the_sources_tests(project, synth_build):
    result, _ = synth_build
    assert result.success, result.exception
    statuses = {r.node.unique_id: str(r.status) for r in result.result.results}
    assert statuses["model.synth_test.cps1988_twin"] == "success"
    twin_tests = {
        u: s for u, s in statuses.items() if u.startswith("test.") and "cps1988_twin" in u
    }
    inherited = {u: s for u, s in twin_tests.items() if "dbt_synth_" not in u}
    assert len(inherited) == 3  # not_null wage, not_null + accepted_values ethnicity
    assert set(inherited.values()) == {"pass"}
    package = {u.split(".")[2].split("_cps1988_twin")[0]: s for u, s in twin_tests.items()}
    package = {name: s for name, s in package.items() if name.startswith("dbt_synth_")}
    assert package.keys() == {
        "dbt_synth_schema_matches",
        "dbt_synth_distribution_drift",
        "dbt_synth_correlation_drift",
        "dbt_synth_no_exact_copies",
    }
    assert package.pop("dbt_synth_schema_matches") == "pass"
    assert set(package.values()) <= {"pass", "warn"}  # drift and copies only warn by default


def test_twin_config_comes_from_the_generated_yml(project, synth_build):
    (target, spent) = project.query(
        "select target_epsilon, epsilon from main_synth.synth_ledger where model = 'cps1988_twin'"
    )[0]
    assert target == 1.5
    assert spent <= 1.5 * (1 + 1e-6)


def test_synth_mode_runs_downstream_models_and_tests_on_the_twin(project, synth_build):
    result, _ = synth_build
    statuses = {r.node.unique_id: str(r.status) for r in result.result.results}
    assert statuses["model.synth_test.wages_by_region"] == "success"
    downstream = [u for u in statuses if u.startswith("test.") and "wages_by_region" in u]
    assert len(downstream) == 2 and {statuses[u] for u in downstream} == {"pass"}
    manifest = json.loads((project.root / "target" / "manifest.json").read_text())
    node = manifest["nodes"]["model.synth_test.wages_by_region"]
    assert node["depends_on"]["nodes"] == ["model.synth_test.cps1988_twin"]
    assert '"main_synth"."cps1988_twin"' in node["compiled_code"]
    (workers,) = project.query("select sum(workers) from main.wages_by_region")[0]
    (twin_rows,) = project.query("select count(*) from main_synth.cps1988_twin")[0]
    assert workers == twin_rows


def test_synth_mode_python_model_reads_the_twin_of_the_source_it_names(project, synth_build):
    result, _ = synth_build
    statuses = {r.node.name: str(r.status) for r in result.result.results}
    assert statuses["workers_per_region"] == "success"
    counts = project.query("select region, workers from main.workers_per_region order by 1")
    twin = project.query(
        "select region, count(*) from main_synth.cps1988_twin group by region order by 1"
    )
    assert counts == twin and counts


def test_synth_mode_passthrough_keeps_an_untwinned_source_real(project, synth_build):
    manifest = json.loads((project.root / "target" / "manifest.json").read_text())
    node = manifest["nodes"]["model.synth_test.other_rows"]
    assert node["depends_on"]["nodes"] == ["source.synth_test.raw.other"]
    assert project.query("select n from main.other_rows") == [(50,)]


def test_without_the_switch_downstream_reads_the_real_source(project, synth_build):
    result = project.dbt("compile", "--select", "wages_by_region")
    assert result.success, result.exception
    manifest = json.loads((project.root / "target" / "manifest.json").read_text())
    node = manifest["nodes"]["model.synth_test.wages_by_region"]
    assert node["depends_on"]["nodes"] == ["source.synth_test.raw.cps1988"]
    assert '"raw"."cps1988"' in node["compiled_code"]


def test_quiet_twin_sends_fitting_progress_to_the_debug_log_only(synth_build):
    _, events = synth_build
    progress = [e for e in events if "cps1988_twin: " in e.info.msg and "ε" in e.info.msg]
    assert progress, "the fit reported no progress"
    assert {e.info.level for e in progress} == {"debug"}


def test_rerunning_init_is_idempotent(project, synth_build):
    files = sorted((project.root / "models" / "synth").iterdir())
    before = {p: (p.read_text(), p.stat().st_mtime_ns) for p in files}
    result = _cli(project, "init")
    assert result.exit_code == 0, result.output
    assert result.output.count("unchanged") == 3
    assert {p: (p.read_text(), p.stat().st_mtime_ns) for p in files} == before


def test_init_keeps_a_file_the_user_changed_unless_forced(project, synth_build):
    path = project.root / "models" / "synth" / "cps1988_twin.yml"
    generated = path.read_text()
    edited = generated.replace("epsilon: 1.5", "epsilon: 3.0")
    path.write_text(edited)
    result = _cli(project, "init")
    assert result.exit_code == 0, result.output
    assert "kept" in result.output
    assert path.read_text() == edited
    result = _cli(project, "init", "--force")
    assert result.exit_code == 0, result.output
    assert "overwritten" in result.output
    assert path.read_text() == generated


def test_init_twins_what_dbt_selection_syntax_picks(project, synth_build):
    result = _cli(project, "init", "--select", "source:raw.other")
    assert result.exit_code == 0, result.output
    yml = (project.root / "models" / "synth" / "other_twin.yml").read_text()
    assert "epsilon: 1.0" in yml
    assert not (project.root / "models" / "synth" / "wages_by_region_twin.py").exists()
    for name in ("other_twin.py", "other_twin.yml"):
        (project.root / "models" / "synth" / name).unlink()


def test_init_with_nothing_to_twin_fails_with_the_fix(project, synth_build):
    result = _cli(project, "init", "--select", "wages_by_region", "--exclude", "wages_by_region")
    assert result.exit_code == 1
    assert "nothing to twin" in result.output and "Fix:" in result.output


def test_init_rejects_a_bad_meta_synth_key_naming_it(project, synth_build):
    sources = project.root / "models" / "sources.yml"
    good = sources.read_text()
    sources.write_text(good.replace("seed: 11", "seeds: 11"))
    try:
        result = _cli(project, "init")
    finally:
        sources.write_text(good)
    assert result.exit_code == 1
    assert "cps1988_twin" in result.output and "seeds" in result.output


def test_python_twin_sees_project_level_synth_and_yml_config_replaces_it(project, synth_build):
    """What `dbt.config.get("synth")` returns: dbt replaces (never merges) a custom config dict."""
    project_yml = project.root / "dbt_project.yml"
    original = project_yml.read_text()
    project_yml.write_text(
        original + "models:\n  synth_test:\n    handmade:\n      +synth: {epsilon: 0.5, seed: 1}\n"
    )
    for name in ("plain_twin", "configured_twin"):
        project.write(
            f"models/handmade/{name}.py",
            'import dbt_synth\n\n\ndef model(dbt, session):\n    dbt.config(materialized="table")\n'
            '    return dbt_synth.twin(dbt, session, dbt.source("raw", "other"), '
            'dbt.config.get("synth"))\n',
        )
    project.write(
        "models/handmade/configured.yml",
        "version: 2\nmodels:\n  - name: configured_twin\n    config:\n      synth: {rows: 10}\n",
    )
    try:
        result = project.dbt("compile", "--select", "path:models/handmade")
    finally:
        project_yml.write_text(original)
        shutil.rmtree(project.root / "models" / "handmade")
    assert result.success, result.exception
    compiled = {r.node.name: r.node.compiled_code for r in result.result.results}
    assert "config_dict = {'synth': {'epsilon': 0.5, 'seed': 1}}" in compiled["plain_twin"]
    assert "config_dict = {'synth': {'rows': 10}}" in compiled["configured_twin"]


def test_relationships_between_twinned_sources_become_child_twin_keys(project, synth_build):
    manifest = CliProject(project.root, project.root).manifest()
    ids = ["source.synth_test.raw.cps1988", "source.synth_test.raw.other"]
    parent, child = candidates(manifest, ids)
    assert child.foreign_keys == (
        ForeignKey(("region",), "raw.cps1988", ("region",), origin=KeyOrigin.RELATIONSHIPS_TEST),
    )
    assert parent.referenced == ("region",)
    assert synth_config(parent, 1.0)["primary_key"] == "region"
    others = {"raw.cps1988": parent, "raw.other": child}
    code = twin_model(child, others)
    ast.parse(code)
    assert 'cps1988_twin = dbt.ref("cps1988_twin")' in code
    assert 'cps1988_twin_real = dbt.source("raw", "cps1988")' in code
    assert '"cps1988_twin": (cps1988_twin, cps1988_twin_real)' in code
    assert "dbt_synth.child_twin(" in code
    yml = yaml.safe_load(twin_yml(child, 1.0, frozenset(), others))
    (column,) = yml["models"][0]["columns"]
    assert column == {
        "name": "region",
        "data_tests": [
            {"relationships": {"arguments": {"to": "ref('cps1988_twin')", "field": "region"}}}
        ],
    }
    # The foreign key holds the parent twin's fresh keys: never compared with the real column.
    available = frozenset({"distribution_drift", "correlation_drift", "no_exact_copies"})
    tests = yaml.safe_load(twin_yml(child, 1.0, available, others))["models"][0]["data_tests"]
    for test in tests:
        ((name, spec),) = test.items()
        assert "region" in spec["arguments"]["exclude"], name


def test_init_leaves_a_hand_written_twin_alone(project, synth_build):
    project.write("models/handwritten/other_twin.sql", "select 1 as x")
    try:
        result = _cli(project, "init", "--select", "source:raw.other")
    finally:
        shutil.rmtree(project.root / "models" / "handwritten")
    assert result.exit_code == 0, result.output
    assert "kept your model other_twin" in " ".join(result.output.split())
    assert not (project.root / "models" / "synth" / "other_twin.py").exists()
