"""Semantic roles, DP head + generated tail, and fresh keys, on seattlepets (openintro).

seattlepets has 52,519 pet licences: a pet's name (13,929 distinct, heavy-tailed), a licence
number (unique strings in several formats), a zip code — the table issue 16 was measured on.
"""

from __future__ import annotations

import re

import duckdb
import numpy as np
import pandas as pd
import pytest
import yaml

from dbt_synth import synthesize
from dbt_synth.errors import SynthError
from dbt_synth.noise import replayable_noise
from dbt_synth.roles import FormatPattern, propose_role
from dbt_synth.tails import HEAD_WEIGHT, MAX_HEAD_WEIGHT, head_weight
from fixtures.real_data import seattlepets
from tests.dbt_projects import new_project

PLANTED = "Qwzx Plantedname"
ROLES = {"animal_name": {"role": "first_name"}, "zip_code": {"role": "postal_code"}}


def _pets(rows: int | None = None) -> pd.DataFrame:
    """As a warehouse holds it: issue dates as dates, and an integer licence key `uid`."""
    frame = seattlepets() if rows is None else seattlepets().head(rows)
    frame["license_issue_date"] = pd.to_datetime(frame["license_issue_date"]).dt.date
    return frame.assign(uid=np.arange(1, len(frame) + 1))


def test_proposals_read_name_type_and_tests_only():
    types = duckdb.connect().from_df(_pets(10)).types
    schema = dict(zip(_pets(10).columns, map(str, types), strict=True))
    proposed = {name: propose_role(name, sql_type) for name, sql_type in schema.items()}
    assert proposed == {
        "license_issue_date": None,
        "license_number": "id",
        "animal_name": "first_name",
        "species": None,
        "primary_breed": None,
        "secondary_breed": None,
        "zip_code": "postal_code",
        "uid": "id",
    }
    assert propose_role("customer_email", "VARCHAR") == "email"
    assert propose_role("order_key", "BIGINT") == "id"
    assert propose_role("code", "VARCHAR", ["unique"]) == "id"
    assert propose_role("amount_id", "DOUBLE") is None  # a float is never a key
    assert propose_role("flight", "INTEGER") is None
    assert propose_role("tailnum", "VARCHAR") is None
    assert propose_role("name", "VARCHAR") is None  # an airport's or a product's, not a person's
    # Names as warehouses and CSV headers spell them: spaces, camelCase, acronyms.
    assert propose_role("Company Name", "VARCHAR") == "company"
    assert propose_role("firstName", "VARCHAR") == "first_name"
    assert propose_role("IPAddress", "VARCHAR") == "ip_address"
    assert propose_role("E-Mail", "VARCHAR") == "email"
    assert propose_role("AccountId", "BIGINT") == "id"
    assert propose_role("Paid", "BOOLEAN") is None and propose_role("Valid", "VARCHAR") is None


def test_names_keep_a_dp_head_and_ids_never_equal_a_real_one():
    real = _pets()
    # The share depends on which names clear the DP threshold: one replayed draw of the noise
    # (with a head weight of 4 this draw gave 0.243; over 5 OS-entropy fits bench/roles
    # measured 0.270–0.291 with the budget-aware weight).
    with replayable_noise(2):
        result = synthesize(real, config={"epsilon": 1.0, "seed": 3, "columns": ROLES})
    twin = result.table.to_pandas()
    top = set(real["animal_name"].value_counts().head(200).index)
    share = twin["animal_name"].isin(top).mean()
    # 0.337 in the real table; 0.009 when names were random letter strings; issue 16 asks 0.25.
    assert share >= 0.25, share
    assert twin["animal_name"].nunique() > 300  # a generated tail, not the head alone
    for key in ("license_number", "uid"):
        assert twin[key].is_unique
        assert not set(twin[key]) & set(real[key]), key
    assert twin["license_number"].str.startswith("~").all()
    assert (twin["uid"] < 0).all()
    treatments = {c.name: c.treatment for c in result.columns}
    assert treatments["animal_name"].startswith("head+tail")
    assert treatments["uid"] == "key: fresh unique values"
    # Zip codes: Seattle's common ones from the DP head, the rest generated as 5-digit codes.
    assert twin["zip_code"].str.fullmatch(r"\d{5}").mean() > 0.99


def test_the_head_weight_follows_the_budget_not_the_data():
    plans = ["numeric", "text_key", "role", "string", "string", "string", "role", "key"]
    # seattlepets at ε = 1: a name held by 0.1 % of 52,519 rows needs more than the domain
    # budget can give two role columns, so they get the cap.
    assert head_weight(plans, 0.0112, 52_519, 4e-8) == MAX_HEAD_WEIGHT
    # Ten times the rows: 525 rows clear a threshold at a small ρ, and the floor is enough.
    assert head_weight(plans, 0.0112, 525_190, 4e-8) == HEAD_WEIGHT
    # In between, the weight at which a 0.1 % value just clears the threshold.
    between = head_weight(plans, 0.0112, 65_000, 4e-8)
    assert HEAD_WEIGHT < between < MAX_HEAD_WEIGHT
    assert head_weight(plans[:2], 0.0112, 52_519, 4e-8) == HEAD_WEIGHT  # no role column


@pytest.mark.parametrize("role", ["first_name", "auto", "category", "format"])
def test_a_value_held_by_one_row_never_reaches_a_twin(role):
    real = _pets(4000)[["animal_name", "species", "zip_code"]]
    real.loc[17, "animal_name"] = PLANTED
    column = {"role": role, "format": "Aaaaa"} if role == "format" else {"role": role}
    for seed in range(3):
        config = {"epsilon": 1.0, "seed": seed, "columns": {"animal_name": column}}
        if role == "category":
            config["epsilon"] = 10.0  # most values kept: the planted one still is not
        twin = synthesize(real, config=config).table.to_pandas()
        assert PLANTED not in set(twin["animal_name"]), (role, seed)


def test_a_declared_format_gives_ids_a_reserved_character():
    real = pd.DataFrame({"licence": [f"S{i:06d}" for i in range(3000)], "x": [1, 2, 3] * 1000})
    config = {"seed": 1, "columns": {"licence": {"role": "id", "format": "A999999"}}}
    result = synthesize(real, config=config)
    twin = result.table.column("licence").to_pylist()
    declared = FormatPattern.parse("A999999")
    assert not any(declared.matches(v) for v in twin)  # no real id of the format can be met
    assert all(re.fullmatch(r"z\d{6}", v) for v in twin)  # `z`: what `A` cannot hold
    assert len(set(twin)) == len(twin)
    # The declared format cost no ε: only the count and the x column were released.
    assert not [s for s in result.spends if s.column == "licence"]
    opt_out = {"role": "id", "format": "A999999", "id_form": "plain"}
    plain = synthesize(real, config={"seed": 1, "columns": {"licence": opt_out}})
    assert all(declared.matches(v) for v in plain.table["licence"].to_pylist())


@pytest.mark.parametrize(
    ("columns", "message"),
    [
        ({"species": {"role": "postal_codes"}}, "is not one of"),
        ({"uid": {"role": "first_name"}}, "generates strings"),
        ({"animal_name": {"role": "format"}}, "needs a format pattern"),
        ({"animal_name": {"role": "format", "format": "--"}}, "no character class"),
        ({"uid": {"role": "id", "id_form": "secret"}}, "id_form"),
    ],
)
def test_bad_role_settings_fail_naming_the_column(columns, message):
    with pytest.raises(SynthError) as raised:
        synthesize(_pets(200), config={"columns": columns}, model="pets_twin")
    assert message in str(raised.value)
    assert next(iter(columns)) in str(raised.value)


SOURCES = """
version: 2
sources:
  - name: raw
    tables:
      - name: pets
        meta: {synth: {seed: 5, verbose: false}}
        columns:
          - name: license_number
            data_tests: [not_null]
          - name: animal_name
          - name: zip_code
"""


def test_init_writes_the_proposals_where_the_user_sees_them(tmp_path):
    from typer.testing import CliRunner

    from dbt_synth.cli import app

    project = new_project(tmp_path, {"pets": []})
    project.load("pets", _pets(3000))
    project.write("models/sources.yml", SOURCES)
    flags = ["--project-dir", str(project.root), "--profiles-dir", str(project.root)]
    result = CliRunner().invoke(app, ["init", *flags])
    assert result.exit_code == 0, result.output
    written = yaml.safe_load((project.root / "models/synth/pets_twin.yml").read_text())
    synth = written["models"][0]["config"]["synth"]
    assert synth["columns"] == {
        "license_number": {"role": "id"},
        "animal_name": {"role": "first_name"},
        "zip_code": {"role": "postal_code"},
        "uid": {"role": "id"},
    }
    drift = written["models"][0]["data_tests"][1]["dbt_synth.distribution_drift"]["arguments"]
    assert drift["exclude"] == ["license_number", "animal_name", "zip_code", "uid"]
    build = project.dbt("build", "--select", "pets_twin")
    assert build.success, build.exception
    twin = project.frame("select * from main_synth.pets_twin")  # twins live in <schema>_synth
    assert not set(twin["license_number"]) & set(_pets(3000)["license_number"])
    assert twin["license_issue_date"].notna().all()
