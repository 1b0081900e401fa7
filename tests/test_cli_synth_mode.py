"""Synth mode on a project of the common shape: seeds → staging views → marts.

Two seeds of real CPS 1988 rows are twinned by `dbt-synth init` with dbt's own selection syntax;
a third, tiny seed is left untwinned. `dbt build --vars 'synth: true'` must then read twins
through `ref()` everywhere downstream, fail at compile time (naming model, relation and both
fixes) where a model would still read the untwinned seed, and build when it is passed through.
"""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from dbt_synth.cli import app
from dbt_synth.cli.dbt_project import DbtProject as CliProject
from dbt_synth.cli.main import spread_multi_values
from fixtures.real_data import cps1988
from tests.dbt_projects import DbtProject, new_project

TWINS = ("raw_places_twin", "raw_workers_twin")
PASSTHROUGH = "{synth: true, synth_passthrough: [raw_regions]}"

STAGING = {
    "stg_workers": "select worker_id, wage, education from {{ ref('raw_workers') }}",
    "stg_places": "select worker_id, region as region_code from {{ ref('raw_places') }}",
}
MARTS = {
    # Reads twins only (through the staging views).
    "wages_by_region": """
        select p.region_code, count(*) as workers, avg(w.wage) as mean_wage
        from {{ ref('stg_workers') }} w join {{ ref('stg_places') }} p using (worker_id)
        group by p.region_code
    """,
    # Also reads the untwinned seed raw_regions: a real read unless passed through.
    "regions_named": """
        select r.region_name, m.workers
        from {{ ref('wages_by_region') }} m
        join {{ ref('raw_regions') }} r on r.region = m.region_code
    """,
}
MARTS_YML = """
version: 2
models:
  - name: wages_by_region
    columns:
      - name: region_code
        data_tests: [not_null, unique]
"""
BROKEN_TWIN = """
import dbt_synth


def model(dbt, session):
    dbt.config(materialized="table", synth={"epsilon": 1.0, "epsilonn": 2.0})
    return dbt_synth.twin(dbt, session, dbt.ref("raw_regions"), dbt.config.get("synth"))
"""


def _cli(project: DbtProject, *args: str):
    return CliRunner().invoke(
        app, [*args, "--project-dir", str(project.root), "--profiles-dir", str(project.root)]
    )


def _compiled(project: DbtProject) -> dict[str, dict]:
    manifest = json.loads((project.root / "target" / "manifest.json").read_text())
    return {n["name"]: n for n in manifest["nodes"].values() if n["resource_type"] == "model"}


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> DbtProject:
    project = new_project(tmp_path_factory.mktemp("synth_mode"))
    (project.root / "models" / "sources.yml").unlink()  # seeds only
    settings = project.root / "dbt_project.yml"
    settings.write_text(
        settings.read_text()
        + 'on-run-end: ["{{ dbt_synth.ledger_summary() }}"]\n'
        # A synth block for one seed, set where dbt sets seed configs.
        + "seeds:\n  synth_test:\n    raw_workers:\n      +meta: {synth: {seed: 3}}\n"
    )
    rows = cps1988().head(400).reset_index(drop=True)
    rows.insert(0, "worker_id", rows.index + 1)
    seeds = project.root / "seeds"
    seeds.mkdir()
    rows[["worker_id", "wage", "education"]].to_csv(seeds / "raw_workers.csv", index=False)
    rows[["worker_id", "region"]].to_csv(seeds / "raw_places.csv", index=False)
    names = {"northeast": "Northeast", "midwest": "Midwest", "south": "South", "west": "West"}
    (seeds / "raw_regions.csv").write_text(
        "region,region_name\n" + "".join(f"{k},{v}\n" for k, v in names.items())
    )
    project.write(
        "models/seeds.yml",
        """
        version: 2
        seeds:
          - name: raw_workers
            columns:
              - name: worker_id
                data_tests: [unique]
          - name: raw_places
            columns:
              - name: worker_id
                data_tests: [unique]
        """,
    )
    for name, sql in {**STAGING, **MARTS}.items():
        project.write(f"models/{name}.sql", sql)
    project.write("models/marts.yml", MARTS_YML)
    return project


@pytest.fixture(scope="module")
def initialised(project):
    result = _cli(project, "init", "--select", "resource_type:seed", "--exclude", "raw_regions")
    assert result.exit_code == 0, result.output
    return result


@pytest.fixture(scope="module")
def synth_build(project, initialised):
    events: list = []
    result = project.dbt_with_callbacks([events.append], "build", "--vars", PASSTHROUGH)
    result.ledger_lines = [e.info.msg for e in events if " spent ε=" in e.info.msg]
    return result


def test_select_takes_several_values_as_dbt_does():
    assert spread_multi_values(["--select", "a", "b", "-t", "dev", "--exclude", "c", "d"]) == [
        *("--select", "a", "--select", "b", "-t", "dev", "--exclude", "c", "--exclude", "d")
    ]
    assert spread_multi_values(["--select=a", "b", "--epsilon", "2"]) == [
        *("--select=a", "--select", "b", "--epsilon", "2")
    ]


def test_dbt_selection_picks_seeds(project):
    picked = CliProject(project.root, project.root).select(["resource_type:seed"])
    assert sorted(u.split(".")[-1] for u in picked) == ["raw_places", "raw_regions", "raw_workers"]


def test_init_twins_the_selected_seeds_reading_them_through_ref(project, initialised):
    written = sorted(p.name for p in (project.root / "models" / "synth").iterdir())
    assert written == sorted(f"{t}.{ext}" for t in TWINS for ext in ("py", "yml"))
    code = (project.root / "models" / "synth" / "raw_workers_twin.py").read_text()
    assert 'dbt.ref("raw_workers")' in code and "DP twin of seed raw_workers" in code
    macros = (project.root / "macros" / "dbt_synth_mode.sql").read_text()
    assert '{"raw_places": "raw_places_twin", "raw_workers": "raw_workers_twin"}' in macros
    # The seed's unique test made worker_id the twin's primary key.
    yml = (project.root / "models" / "synth" / "raw_workers_twin.yml").read_text()
    assert "primary_key: worker_id" in yml and "seed: 3" in yml  # from dbt_project.yml
    # worker_id in raw_places next to raw_workers' unique worker_id: a key proposed, as a
    # comment, never applied (the twins stay independent).
    places = (project.root / "models" / "synth" / "raw_places_twin.yml").read_text()
    proposal = "#   worker_id: relationships to ref('raw_workers_twin'), field worker_id\n"
    assert places.endswith(proposal)
    assert "child_twin" not in (project.root / "models/synth/raw_places_twin.py").read_text()


def test_init_with_several_select_values_is_the_same_init(project, initialised):
    result = _cli(project, "init", "--select", "raw_workers", "raw_places")
    assert result.exit_code == 0, result.output
    assert result.output.count("unchanged") == 5  # two twins × (py, yml) and the macros


def test_synth_mode_reads_twins_through_ref_downstream(project, synth_build):
    assert synth_build.success, synth_build.exception
    statuses = {r.node.name: str(r.status) for r in synth_build.result.results}
    assert {statuses[name] for name in (*TWINS, *STAGING, *MARTS)} == {"success"}
    nodes = _compiled(project)
    for name in STAGING:
        twin = f"raw_{name.removeprefix('stg_')}_twin"
        assert nodes[name]["depends_on"]["nodes"] == [f"model.synth_test.{twin}"]
        assert f'"main_synth"."{twin}"' in nodes[name]["compiled_code"]
        assert '"main"."raw_' not in nodes[name]["compiled_code"]
    assert sorted(nodes["wages_by_region"]["depends_on"]["nodes"]) == [
        "model.synth_test.stg_places",
        "model.synth_test.stg_workers",
    ]
    (workers,) = project.query("select sum(workers) from main.wages_by_region")[0]
    (joined,) = project.query(
        "select count(*) from main_synth.raw_workers_twin "
        "join main_synth.raw_places_twin using (worker_id)"
    )[0]
    assert workers == joined > 0


def test_twins_and_their_ledger_live_in_a_schema_of_their_own(project, synth_build):
    tables = project.query(
        "select table_schema, table_name from information_schema.tables "
        "where table_name like '%twin%' or table_name = 'synth_ledger' order by 2"
    )
    assert tables == [("main_synth", t) for t in (*TWINS, "synth_ledger")]
    assert sorted(line.split(" spent")[0] for line in synth_build.ledger_lines) == [
        f"dbt-synth: {t}" for t in TWINS
    ]


def test_passthrough_keeps_the_untwinned_seed_real(project, synth_build):
    node = _compiled(project)["regions_named"]
    assert "seed.synth_test.raw_regions" in node["depends_on"]["nodes"]
    names = {row[0] for row in project.query("select region_name from main.regions_named")}
    assert names <= {"Northeast", "Midwest", "South", "West"} and names


def test_synth_mode_fails_at_compile_time_on_a_real_read(project, synth_build):
    result = project.dbt("compile", "--vars", "synth: true", "--select", "regions_named")
    assert not result.success
    message = " ".join(str(result.exception).split())
    assert (
        "dbt-synth: model 'regions_named': in synth mode it would read the real seed "
        "'raw_regions'. Fix: twin it (dbt-synth init --select raw_regions) or pass it through "
        "(--vars '{synth: true, synth_passthrough: [raw_regions]}')"
    ) in message


def test_status_prints_what_each_model_reads(project, synth_build):
    result = _cli(project, "status")
    assert result.exit_code == 1, result.output
    lines = {line.split("│")[1].strip(): line for line in result.output.splitlines() if "│" in line}
    for name in (*STAGING, "wages_by_region"):
        assert "│ twins" in lines[name], lines[name]
    assert "fails" in lines["regions_named"] and "raw_regions" in lines["regions_named"]
    assert "is a twin" in lines["raw_workers_twin"]
    result = _cli(project, "status", "--vars", "{synth_passthrough: [raw_regions]}")
    assert result.exit_code == 0, result.output
    assert "passed through" in result.output


def test_status_shows_what_each_source_spent_against_its_cap(project, synth_build):
    yml = project.root / "models" / "synth" / "raw_workers_twin.yml"
    original = yml.read_text()
    assert "    synth:\n" in original
    capped = original.replace("    synth:\n", "    synth:\n      max_total_epsilon: 4.5\n", 1)
    yml.write_text(capped)
    try:
        # A cap is no part of the fit: this rebuild resamples (ε 0) and records the cap.
        rebuilt = project.dbt("run", "--select", "raw_workers_twin", "--vars", PASSTHROUGH)
        result = _cli(project, "status", "--vars", "{synth_passthrough: [raw_regions]}")
    finally:
        yml.write_text(original)
    assert rebuilt.success, rebuilt.exception
    assert result.exit_code == 0, result.output
    spent = dict(
        project.query("select source, sum(epsilon) from main_synth.synth_ledger group by source")
    )
    assert set(spent) == {"raw_workers", "raw_places"} and min(spent.values()) > 0
    output = " ".join(result.output.split())
    assert (
        f"ε spent by source raw_places: ε {spent['raw_places']:.3f} (no cap) over 1 fit(s)"
        in output
    )
    assert (
        f"ε spent by source raw_workers: ε {spent['raw_workers']:.3f} of max_total_epsilon 4.5 "
        "over 1 fit(s)" in output
    )


def test_a_failing_twin_ends_dbt_build_with_our_one_line_message(project, synth_build):
    project.write("models/broken/raw_regions_broken.py", BROKEN_TWIN)
    try:
        result = project.dbt("run", "--select", "raw_regions_broken")
    finally:
        (project.root / "models" / "broken" / "raw_regions_broken.py").unlink()
    (failed,) = [r for r in result.result.results if r.node.name == "raw_regions_broken"]
    message = failed.message.strip()
    assert "Traceback" not in message
    last = message.splitlines()[-1].strip()
    assert last.startswith(
        "dbt_synth.errors.ConfigError: dbt-synth: model 'raw_regions_broken': unknown synth "
        "config key(s) ['epsilonn']"
    )
