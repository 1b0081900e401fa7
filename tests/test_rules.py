"""Rules, condition and rebalance at sampling time, on loans (openintro::loans_full_schema).

The twin is fitted once; each test samples the same fitted model under other constraints
(`dataclasses.replace` of its generator), which is what a build with those constraints does
after fitting: constraints are post-processing and spend no ε.
"""

from __future__ import annotations

import dataclasses
import json

import pyarrow as pa
import pytest

from dbt_synth import synthesize
from dbt_synth.conditioning import ConstraintError, constraints_of, sampling_record
from dbt_synth.config import parse_config
from dbt_synth.errors import SynthError
from dbt_synth.noise import replayable_noise
from dbt_synth.rules import broken, parse_rules
from fixtures.real_data import real_table

COLUMNS = ["loan_status", "grade", "interest_rate", "loan_amount", "paid_total", "paid_principal"]
RULES = [
    {"expression": "paid_total >= paid_principal"},
    {"accepted_range": {"column": "interest_rate", "min_value": 5, "max_value": 31}},
    {"compare": {"column_a": "loan_amount", "operator": ">=", "column_b": "paid_principal"}},
    {"not_null": "loan_status"},
    {"accepted_values": {"column": "grade", "values": list("ABCDEFG")}},
]


@pytest.fixture(scope="module")
def loans():
    return real_table("openintro", "loans_full_schema")[COLUMNS]


@pytest.fixture(scope="module")
def fitted(loans):
    # What the model learned decides how often free draws break a rule and what a rebalanced
    # value's rows look like: one replayed draw of the fit's noise.
    with replayable_noise(5):
        return synthesize(loans, config={"epsilon": 1.0, "seed": 5})


def _sample(fitted, loans, **synth):
    config = parse_config(synth)
    generator = dataclasses.replace(
        fitted.generator, constraints=constraints_of(config, tuple(loans.columns), set())
    )
    return generator, generator.table().to_pandas()


def test_every_rule_holds_on_a_twin_whose_free_draws_break_them(fitted, loans):
    rules = parse_rules(RULES)
    real = pa.Table.from_pandas(loans, preserve_index=False)
    assert not broken(real, rules).any()  # the real rows meet them
    free = broken(fitted.table, rules).mean(axis=1)
    assert free[0] > 0.02, free  # the fitted model alone breaks paid_total >= paid_principal
    generator, twin = _sample(fitted, loans, rules=RULES)
    assert len(twin) == fitted.rows
    assert not broken(generator.table(), rules).any()
    record = json.loads(sampling_record(generator))
    assert record["redrawn_for"]["expression: paid_total >= paid_principal"] > 0.02 * len(twin)
    assert record["rows_drawn"] > len(twin)


def test_rules_on_keys_alone_leave_sampling_free_and_are_listed(fitted, loans):
    # `dbt-synth init` writes `not_null` on every primary key. Keys are fresh values, so such a
    # rule binds nothing: the twin is drawn as without it (on Spark, on the executors, not by
    # the driver's constrained sampler) and the ledger lists the rule as not redrawn for.
    config = parse_config({"rules": [{"not_null": "grade"}]})
    constraints = constraints_of(config, tuple(loans.columns), {"grade"})
    assert constraints is not None and not constraints.binding
    keyed = dataclasses.replace(fitted.generator, constraints=constraints)
    assert keyed.table().equals(fitted.generator.table())
    record = json.loads(sampling_record(keyed))
    assert record["rules"] == [] and record["rules_on_keys_not_redrawn"] == ["not_null: grade"]
    assert "rows_drawn" not in record


def test_a_condition_holds_on_every_row(fitted, loans):
    _, twin = _sample(fitted, loans, condition="loan_amount > 20000 and grade in ('A', 'B')")
    assert (twin["loan_amount"] > 20000).all()
    assert set(twin["grade"]) == {"A", "B"}
    assert len(twin) == fitted.rows


def test_rebalanced_shares_are_met_and_the_rest_keeps_its_proportions(fitted, loans):
    plain = fitted.table.to_pandas()["loan_status"].value_counts(normalize=True)
    _, twin = _sample(
        fitted, loans, rebalance={"column": "loan_status", "shares": {"Fully Paid": 0.4}}
    )
    shares = twin["loan_status"].value_counts(normalize=True)
    assert abs(shares["Fully Paid"] - 0.4) < 0.01, shares
    assert plain["Fully Paid"] < 0.1
    # Fully paid loans have paid off their principal: the rows follow the model's conditional.
    paid = twin[twin["loan_status"] == "Fully Paid"]
    rest = twin[twin["loan_status"] != "Fully Paid"]
    assert (paid["paid_principal"] / paid["loan_amount"]).median() > (
        rest["paid_principal"] / rest["loan_amount"]
    ).median()


def test_a_rule_with_a_where_holds_on_the_rows_it_selects_only(fitted, loans):
    # A dbt test's `where` config: fully paid loans have paid their amount back, the others
    # mostly have not (4.5 % of real loans meet it, all 447 fully paid ones).
    rule = {"expression": "paid_total >= loan_amount", "where": "loan_status = 'Fully Paid'"}
    rebalance = {"column": "loan_status", "shares": {"Fully Paid": 0.3}}
    _, free = _sample(fitted, loans, rebalance=rebalance)
    generator, twin = _sample(fitted, loans, rebalance=rebalance, rules=[rule])
    free_paid = free[free["loan_status"] == "Fully Paid"]
    paid = twin[twin["loan_status"] == "Fully Paid"]
    assert (free_paid["paid_total"] < free_paid["loan_amount"]).mean() > 0.01  # free draws break it
    assert (paid["paid_total"] >= paid["loan_amount"]).all()
    others = twin[twin["loan_status"] != "Fully Paid"]
    assert (others["paid_total"] < others["loan_amount"]).mean() > 0.5  # not applied to them
    record = json.loads(sampling_record(generator))
    label = "expression: paid_total >= loan_amount where loan_status = 'Fully Paid'"
    assert record["redrawn_for"][label] > 0


def test_a_rule_the_model_cannot_meet_fails_naming_it(fitted, loans):
    rule = [{"accepted_range": {"column": "interest_rate", "min_value": 5.0, "max_value": 5.01}}]
    with pytest.raises(ConstraintError) as raised:
        _sample(fitted, loans, rules=rule)
    assert "accepted_range: interest_rate" in str(raised.value)
    with pytest.raises(ConstraintError, match="not in the twin's DP domain"):
        _sample(fitted, loans, rebalance={"column": "loan_status", "shares": {"Late": 0.2}})


@pytest.mark.parametrize(
    ("synth", "message"),
    [
        ({"rules": [{"expression": "sum(paid_total) > 0"}]}, "not a row-level predicate"),
        ({"rules": [{"expression": "paid_total >="}]}, "not valid SQL"),
        ({"rules": [{"between": "x"}]}, "unknown rule"),
        ({"rules": [{"compare": {"column_a": "a", "operator": "~", "column_b": "b"}}]}, "~"),
        ({"rebalance": {"column": "grade", "shares": {"A": 0.7, "B": 0.6}}}, "sum to at most 1"),
        ({"rules": [{"not_null": "nope"}]}, "not in the source"),
        ({"rules": [{"not_null": "grade", "where": "grade >"}]}, "where 'grade >'"),
        ({"rules": [{"not_null": "grade", "when": "grade = 'A'"}]}, "one rule key"),
        ({"rules": [{"not_null": "grade", "where": "nope = 1"}]}, "not in the source"),
    ],
)
def test_bad_constraints_fail_with_one_clear_error(loans, synth, message):
    with pytest.raises(SynthError) as raised:
        synthesize(loans.head(500), config=synth, model="loans_twin")
    assert message in str(raised.value)
    assert "loans_twin" in str(raised.value)
