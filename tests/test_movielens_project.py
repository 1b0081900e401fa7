"""A user's project of the common shape runs on twins: integration_tests/movielens end to end.

Real MovieLens seeds (99 users, 150 movies, 400 ratings) → staging views that rename → three
marts, with the `relationships` tests on the marts only. From scratch, in a temp copy:

1. `dbt-synth init` with one selection of the seeds (`resource_type:seed`);
2. `dbt build --vars 'synth: true'`: every one of the project's own tests passes at ε = 1;
3. every mart is computed from twins only (the compiled SQL of it and of every model upstream
   names no real seed), and its rows differ from the real build's;
4. with one seed left untwinned and not passed through, synth mode fails at compile time with
   one message naming the model, the seed and both fixes.

Before any of that a plain `dbt build` of the real project gives the marts to compare with.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import duckdb
import pytest
import sqlglot
from dbt.cli.main import dbtRunner, dbtRunnerResult
from sqlglot import exp
from typer.testing import CliRunner

from dbt_synth.cli import app
from tests.dbt_projects import REPO_ROOT

pytestmark = pytest.mark.slow

FIXTURE = REPO_ROOT / "integration_tests" / "movielens"
PROJECT = "dbt_synth_movielens"
SEEDS = ("raw_movies", "raw_ratings", "raw_users")
MARTS = ("movies", "ratings", "users")
SYNTH = ("--vars", "synth: true")


class Project:
    """The temp copy: dbt and dbt-synth run in-process, as a user's shell would run them."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.database = root / "movielens.duckdb"
        self.flags = ["--project-dir", str(root), "--profiles-dir", str(root)]

    def dbt(self, *args: str) -> dbtRunnerResult:
        return dbtRunner().invoke([*args, *self.flags])

    def synth(self, *args: str):
        return CliRunner().invoke(app, [*args, *self.flags])

    def rows(self, table: str) -> set[tuple]:
        with duckdb.connect(str(self.database)) as con:
            return set(con.execute(f"select * from main.{table}").fetchall())


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Project:
    root = tmp_path_factory.mktemp("movielens") / "project"
    shutil.copytree(
        FIXTURE, root, ignore=shutil.ignore_patterns("target", "dbt_packages", "logs", "*.duckdb*")
    )
    (root / "packages.yml").write_text(f"packages:\n  - local: {REPO_ROOT}\n")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DBT_SYNTH_DUCKDB_PATH", str(root / "movielens.duckdb"))
        project = Project(root)
        assert project.dbt("deps", "--quiet").success
        yield project


@pytest.fixture(scope="module")
def real_marts(project) -> dict[str, set[tuple]]:
    build = project.dbt("build", "--quiet")
    assert build.success, build.exception
    return {mart: project.rows(mart) for mart in MARTS}


@pytest.fixture(scope="module")
def untwinned_compile(project, real_marts):
    """Step 4 first (a partial init is cheap to extend): raw_movies left untwinned."""
    init = project.synth("init", "--select", "resource_type:seed", "--exclude", "raw_movies")
    assert init.exit_code == 0, init.output
    return project.dbt("compile", *SYNTH)


@pytest.fixture(scope="module")
def synth_build(project, untwinned_compile):
    init = project.synth("init", "--select", "resource_type:seed")
    assert init.exit_code == 0, init.output
    started = time.perf_counter()
    build = project.dbt("build", *SYNTH)
    return init, build, time.perf_counter() - started


def test_init_twins_each_seed_with_keys_traced_from_the_marts(project, synth_build):
    synth = project.root / "models" / "synth"
    assert sorted(p.stem for p in synth.glob("*.py")) == [f"{s}_twin" for s in SEEDS]
    ratings = (synth / "raw_ratings_twin.py").read_text()
    # relationships tests on the marts only: ratings.user_id → users.user_id, traced through
    # the staging renames to the seeds, makes the ratings twin a child of both parents.
    assert "dbt_synth.child_twin(" in ratings
    assert 'dbt.ref("raw_users_twin")' in ratings and 'dbt.ref("raw_movies_twin")' in ratings
    users = (synth / "raw_users_twin.yml").read_text()
    # users.user_id is tested unique on the mart; the seed calls it `id`.
    assert "primary_key: id" in users


def test_every_project_test_passes_in_synth_mode_at_epsilon_one(synth_build):
    _, build, _ = synth_build
    assert build.success, _failures(build)
    own = [
        r
        for r in build.result.results
        if r.node.resource_type == "test"
        and r.node.package_name == PROJECT
        and not any(parent.endswith("_twin") for parent in r.node.depends_on.nodes)
    ]
    assert len(own) == 17
    assert {r.node.name: str(r.status) for r in own} == {r.node.name: "pass" for r in own}
    twins = {
        r.node.name: str(r.status) for r in build.result.results if r.node.name.endswith("_twin")
    }
    assert twins == {f"{s}_twin": "success" for s in SEEDS}


def test_every_mart_is_computed_from_twins_only(synth_build, real_marts, project):
    _, build, _ = synth_build
    models = {
        r.node.unique_id: r.node for r in build.result.results if r.node.resource_type == "model"
    }
    relations = {_key(n.relation_name): n for n in models.values()}
    twins = {_key(n.relation_name) for n in models.values() if n.name.endswith("_twin")}
    for mart in MARTS:
        node = models[f"model.{PROJECT}.{mart}"]
        read = _real_inputs(node, relations, twins)
        assert read and read <= twins, f"{mart} reads {sorted(read - twins)}"
        assert project.rows(mart) != real_marts[mart]


def test_an_untwinned_seed_fails_synth_mode_with_one_clear_message(untwinned_compile):
    assert not untwinned_compile.success
    messages = [
        str(r.message)
        for r in (untwinned_compile.result.results if untwinned_compile.result else [])
        if str(r.status) == "error"
    ] or [str(untwinned_compile.exception)]
    message = next(m for m in messages if "raw_movies" in m)
    assert "stg_movies" in message
    assert "dbt-synth init" in message and "synth_passthrough" in message


def _failures(result: dbtRunnerResult) -> list[tuple[str, str, str]] | BaseException | None:
    """What did not pass, for an assertion message."""
    if result.result is None:
        return result.exception
    ok = ("pass", "success", "warn")
    results = result.result.results
    return [(r.node.name, str(r.status), r.message) for r in results if str(r.status) not in ok]


def _key(relation_name: str) -> str:
    return _table_key(exp.to_table(relation_name, dialect="duckdb"))


def _table_key(table: exp.Table) -> str:
    return ".".join(p.lower() for p in (table.catalog, table.db, table.name) if p)


def _real_inputs(node, relations: dict, twins: set[str]) -> set[str]:
    """Every relation at the bottom of `node`'s compiled SQL, following models down to what
    they read (a twin is a bottom: it is fit on the real data by design)."""
    statement = sqlglot.parse_one(node.compiled_code, dialect="duckdb")
    ctes = {cte.alias_or_name for cte in statement.find_all(exp.CTE)}
    read = set()
    for table in statement.find_all(exp.Table):
        if not table.db and table.name in ctes:
            continue
        key = _table_key(table)
        upstream = relations.get(key)
        if key in twins or upstream is None or upstream.language != "sql":
            read.add(key)
        else:
            read |= _real_inputs(upstream, relations, twins)
    return read
