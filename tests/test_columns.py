"""Column plans (from type and config, no data) and the column models they build."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from dbt_synth.accounting import PrivacyAccountant
from dbt_synth.columns import ColumnContext, ColumnPlan, column_model, plan_column, treatment
from dbt_synth.config import parse_config
from dbt_synth.encoding import CategoryModel, KeyModel, NumericModel, TextModel
from dbt_synth.errors import SourceError
from dbt_synth.noise import NoiseSource
from dbt_synth.schema import column_spec


@pytest.mark.parametrize(
    ("name", "sql_type", "config", "plan"),
    [
        ("id", "INTEGER", {"primary_key": "id"}, ColumnPlan.KEY),
        ("code", "VARCHAR", {"primary_key": ["code"]}, ColumnPlan.TEXT_KEY),
        ("u", "UUID", {}, ColumnPlan.KEY),
        ("blob", "BLOB", {"unsupported": "null"}, ColumnPlan.NULL),
        ("note", "VARCHAR", {"columns": {"note": {"role": "text"}}}, ColumnPlan.TEXT),
        ("flag", "BOOLEAN", {}, ColumnPlan.PUBLIC_CATEGORY),
        ("mood", "ENUM('a', 'b')", {}, ColumnPlan.PUBLIC_CATEGORY),
        (
            "size",
            "INTEGER",
            {"columns": {"size": {"categories": [1, 2]}}},
            ColumnPlan.PUBLIC_CATEGORY,
        ),
        ("city", "VARCHAR", {}, ColumnPlan.STRING),
        ("year", "INTEGER", {"columns": {"year": {"role": "category"}}}, ColumnPlan.CATEGORY),
        ("wage", "DOUBLE", {}, ColumnPlan.NUMERIC),
        ("day", "DATE", {}, ColumnPlan.NUMERIC),
    ],
)
def test_a_columns_plan_follows_from_its_type_and_config(name, sql_type, config, plan):
    assert plan_column(column_spec(name, sql_type), parse_config(config)) is plan


def test_only_planned_releases_take_budget_and_only_unknown_domains_take_delta():
    assert {p for p in ColumnPlan if not p.releases} == {ColumnPlan.KEY, ColumnPlan.NULL}
    assert {p for p in ColumnPlan if p.thresholded} == {
        ColumnPlan.STRING,
        ColumnPlan.TEXT,
        ColumnPlan.TEXT_KEY,
        ColumnPlan.ROLE,  # a semantic role's DP head is a thresholded histogram
    }


def test_an_unsupported_type_is_one_error_naming_the_column_and_the_fix():
    with pytest.raises(SourceError, match=r"column 'blob'.*unsupported: null"):
        plan_column(column_spec("blob", "BLOB"), parse_config({}))


def _context(epsilon: float = 1.0, rows: float = 5000.0) -> ColumnContext:
    accountant = PrivacyAccountant(epsilon, 1e-6)
    rho = accountant.remaining_rho() / 4
    return ColumnContext(parse_config({}), accountant, rho, 1e-8, rows, NoiseSource.replayed(0))


def test_column_models_spend_on_the_accountant_and_say_how_they_were_treated():
    rng = np.random.default_rng(1)
    context = _context()
    city = pa.chunked_array([rng.choice(["oslo", "rome", "lima"], 5000)])
    wage = pa.chunked_array([rng.lognormal(6, 0.5, 5000)])
    category = column_model(city, column_spec("city", "VARCHAR"), ColumnPlan.STRING, context)
    numeric = column_model(wage, column_spec("wage", "DOUBLE"), ColumnPlan.NUMERIC, context)
    key = column_model(wage, column_spec("id", "BIGINT"), ColumnPlan.KEY, context)
    assert isinstance(category, CategoryModel) and set(category.domain.values) == {
        "oslo",
        "rome",
        "lima",
    }
    assert isinstance(numeric, NumericModel) and numeric.domain.bin_count >= 2
    assert isinstance(key, KeyModel)
    # The key released nothing: every spend is the category's or the numeric domain's.
    assert {s.column for s in context.accountant.spends} == {"city", "wage"}
    assert context.accountant.epsilon() > 0
    assert treatment(category) == "category: 3 DP-kept values"
    assert treatment(key) == "key: fresh unique values"


def test_a_string_of_mostly_unique_values_becomes_generated_text():
    values = pa.chunked_array([[f"user-{i:05d}" for i in range(5000)]])
    model = column_model(values, column_spec("handle", "VARCHAR"), ColumnPlan.STRING, _context())
    assert isinstance(model, TextModel) and not model.unique
    assert treatment(model) == "text: generated in DP formats"
