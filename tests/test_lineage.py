"""Keys and tests through lineage, on the movielens fixture's compiled SQL (real dbt, DuckDB).

The fixture tests its marts: `ratings.user_id` is a `relationships` to `users.user_id`, and
`users.status` has `accepted_values`. Traced through the staging views' renames, those land on
the seeds: `raw_ratings.user_id → raw_users.id`. A copy of the fixture gets a few extra models
that must NOT carry their tests back (a filter, a GROUP BY, computed columns) and a seed whose
`movie_id` is only a name-based proposal.
"""

from __future__ import annotations

import csv
import shutil

import pytest

from dbt_synth.cli.candidates import Candidate, ColumnTest
from dbt_synth.cli.dbt_project import DbtProject
from dbt_synth.cli.scaffold import synth_config
from dbt_synth.lineage import InheritedTest, TracedKey, TwinColumn, trace_constraints
from tests.dbt_projects import REPO_ROOT

pytestmark = pytest.mark.slow

FIXTURE = REPO_ROOT / "integration_tests" / "movielens"
SEED = "seed.dbt_synth_movielens."
SEEDS = {f"{SEED}raw_users", f"{SEED}raw_movies", f"{SEED}raw_ratings"}

# Models whose tests must stay where they are: rows filtered, grouped, or values computed.
CHECKS = {
    "models/checks/active_users.sql": (
        "select user_id, status from {{ ref('stg_users') }} where status <> 'lapsed'"
    ),
    "models/checks/user_labels.sql": (
        "select user_id, upper(status) as status, cast(user_id as varchar) as user_key "
        "from {{ ref('users') }}"
    ),
    "models/checks/genre_counts.sql": (
        "select genre, count(*) as movies from {{ ref('movies') }} group by genre"
    ),
    "models/checks/checks.yml": """
version: 2
models:
  - name: active_users
    columns:
      - name: user_id
        data_tests:
          - unique
          - relationships: {arguments: {to: ref('users'), field: user_id}}
      - name: status
        data_tests:
          - accepted_values: {arguments: {values: [casual, regular, heavy]}}
  - name: user_labels
    columns:
      - name: user_id
        data_tests: [unique]
      - name: status
        data_tests:
          - accepted_values: {arguments: {values: [CASUAL, REGULAR, HEAVY, LAPSED]}}
      - name: user_key
        data_tests: [unique]
  - name: genre_counts
    columns:
      - name: genre
        data_tests: [unique]
""",
}


def _twin(table: str, column: str) -> TwinColumn:
    return TwinColumn(f"{SEED}{table}", column)


@pytest.fixture(scope="module")
def compiled_project(tmp_path_factory):
    root = tmp_path_factory.mktemp("lineage") / "movielens"
    shutil.copytree(FIXTURE, root, ignore=shutil.ignore_patterns("target", "dbt_packages", "logs"))
    (root / "packages.yml").write_text(f"packages:\n  - local: {REPO_ROOT}\n")
    for path, text in CHECKS.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(text)
    # Real rows of the fixture's movies, as a table that names movie_id without a test.
    with (root / "seeds" / "raw_movies.csv").open() as handle:
        rows = list(csv.DictReader(handle))[:20]
    with (root / "seeds" / "raw_movie_genres.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["movie_id", "genre"])
        writer.writerows((row["id"], row["genre"]) for row in rows)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DBT_SYNTH_DUCKDB_PATH", str(root / "movielens.duckdb"))
        project = DbtProject(root, profiles_dir=root)
        project.invoke("deps")
        manifest = project.manifest()
        results = project.invoke("compile", "--select", "resource_type:model")
    compiled = {r.node.unique_id: r.node.compiled_code for r in results.results}
    return manifest, compiled


@pytest.fixture(scope="module")
def traced(compiled_project):
    manifest, compiled = compiled_project
    return trace_constraints(manifest, SEEDS, compiled)


def test_relationships_on_the_marts_become_keys_between_the_seeds(traced):
    assert set(traced.keys) == {
        TracedKey(
            _twin("raw_ratings", "user_id"),
            _twin("raw_users", "id"),
            "ratings.user_id → users.user_id",
        ),
        TracedKey(
            _twin("raw_ratings", "movie_id"),
            _twin("raw_movies", "id"),
            "ratings.movie_id → movies.movie_id",
        ),
    }


def test_tests_move_to_the_seed_column_through_renames_and_left_joins(traced):
    found = {(t.column, t.kind, t.values) for t in traced.tests}
    assert found == {
        # users.user_id ← stg_users.user_id ← raw_users.id, through a CTE and a LEFT JOIN.
        (_twin("raw_users", "id"), InheritedTest.UNIQUE, None),
        (_twin("raw_users", "id"), InheritedTest.NOT_NULL, None),
        (
            _twin("raw_users", "status"),
            InheritedTest.ACCEPTED_VALUES,
            ("casual", "regular", "heavy", "lapsed"),
        ),
        (_twin("raw_movies", "id"), InheritedTest.UNIQUE, None),
        (_twin("raw_movies", "id"), InheritedTest.NOT_NULL, None),
        # The ratings mart's INNER JOINs may drop rows: its rating_id tests stay there, the
        # staging view's (a plain rename) come through.
        (_twin("raw_ratings", "id"), InheritedTest.UNIQUE, None),
        (_twin("raw_ratings", "id"), InheritedTest.NOT_NULL, None),
    }
    # Two model hops: users ← stg_users ← raw_users.
    status = next(t for t in traced.tests if t.kind is InheritedTest.ACCEPTED_VALUES)
    assert status.origin == "users.status"
    assert status.arguments() == {"values": ["casual", "regular", "heavy", "lapsed"]}


def test_filters_groups_and_computed_columns_carry_nothing_back(traced):
    origins = {t.origin for t in traced.tests}
    # A unique after a filter or a GROUP BY, accepted values of upper(status), a unique cast:
    # none of them says anything about the seed's rows.
    assert not origins & {
        "active_users.user_id",
        "active_users.status",
        "user_labels.status",
        "user_labels.user_key",
        "genre_counts.genre",
    }
    # A relationships test from a column to itself (through a filter) is not a foreign key.
    assert all(k.child != k.parent for k in traced.keys)


def test_a_column_named_after_a_keyed_table_is_only_proposed(compiled_project):
    manifest, compiled = compiled_project
    traced = trace_constraints(manifest, SEEDS | {f"{SEED}raw_movie_genres"}, compiled)
    assert traced.proposals == (
        TracedKey(
            _twin("raw_movie_genres", "movie_id"),
            _twin("raw_movies", "id"),
            "name: movie_id next to the unique key raw_movies.id",
        ),
    )
    assert not traced.keys_of(f"{SEED}raw_movie_genres")
    # raw_ratings.movie_id is a traced key already, so it is not proposed again.
    assert traced.proposals_of(f"{SEED}raw_ratings") == ()


def test_a_twinned_staging_model_ends_the_trace_there(compiled_project):
    manifest, compiled = compiled_project
    stg_users = "model.dbt_synth_movielens.stg_users"
    traced = trace_constraints(manifest, {stg_users, f"{SEED}raw_ratings"}, compiled)
    assert traced.keys == (
        TracedKey(
            _twin("raw_ratings", "user_id"),
            TwinColumn(stg_users, "user_id"),
            "ratings.user_id → users.user_id",
        ),
    )
    assert {t.kind for t in traced.tests_on(stg_users) if t.column.column == "user_id"} == {
        InheritedTest.UNIQUE,
        InheritedTest.NOT_NULL,
    }


def test_accepted_values_become_public_categories_of_the_twin():
    # The project's accepted values are in its yml, so public: declared in the twin's config
    # they cost no ε and survive on a table too small for DP to reveal any value (99 users).
    status = ColumnTest("status", "accepted_values", {"values": ["casual", "regular", "heavy"]})
    candidate = Candidate(
        unique_id=f"{SEED}raw_users",
        name="raw_users",
        source_name=None,
        synth={"columns": {"signed_up_on": {"role": "auto"}}},
        tests=(ColumnTest("id", "unique", {}), status),
    )
    assert synth_config(candidate, 1.0) == {
        "epsilon": 1.0,
        "columns": {
            "status": {"categories": ["casual", "regular", "heavy"]},
            "signed_up_on": {"role": "auto"},
        },
        "primary_key": "id",
    }
