"""`dbt-synth report` on Apache Spark: the figures DuckDB gives for the same two tables.

Two disjoint slices of cps1988 (2,000 rows each, with NULLs, a NaN and a date column), written
once to parquet and read into DuckDB and into the local Spark of tests/spark_env.py (dbt-spark
`method: session`). The report's comparison (`build_report`, every query a `dbt show --inline`)
runs against each. Counts, null shares and category distances are exact on both. Quantiles are
exact on DuckDB (tests/test_report.py checks them against numpy) and come from percentile_approx
on Spark (`spark__quantile_sketch`), so histogram ranges and decile codes may sit a value apart.
"""

from __future__ import annotations

import itertools
import json

import duckdb
import pytest

from dbt_synth.cli.dbt_project import DbtProject as CliProject
from dbt_synth.cli.reporting import query_records
from dbt_synth.report import TwinReport, build_report
from fixtures.real_data import cps1988
from tests.dbt_projects import new_project
from tests.spark_env import SparkEnv, script

pytestmark = pytest.mark.spark

SCHEMA = "report_spark"
# The slices as SQL over the frame: some NULLs in a number and a label, one NaN, a date.
TABLE = """
select case when i % 17 = 0 then null when i = 5 then 'NaN'::double else wage end as wage,
       education, experience, ethnicity, smsa,
       case when i % 23 = 0 then null else region end as region, parttime,
       date '1988-03-01' + cast(experience * 7 + education as integer) as hired
from (select row_number() over () - 1 as i, * from frame) as numbered
where i >= {start} and i < {start} + 2000
"""


def _report(root, target: str) -> TwinReport:
    query = query_records(CliProject(root, root, target=target))
    real, twin = f"source('{SCHEMA}', 'real')", f"source('{SCHEMA}', 'twin')"
    return build_report("twin", f"{SCHEMA}.real", query, real, twin)


@pytest.fixture(scope="module")
def reports(spark: SparkEnv, tmp_path_factory) -> tuple[TwinReport, TwinReport]:
    project = new_project(tmp_path_factory.mktemp("report_spark"))
    root = project.root
    settings = json.dumps(script("spark_session").local_settings())
    with open(root / "profiles.yml", "a") as profiles:  # beside new_project's duckdb output
        profiles.write(
            f"    spark: {{type: spark, method: session, host: localhost, schema: {SCHEMA}, "
            f"threads: 1, server_side_parameters: {settings}}}\n"
        )
    project.write(
        "models/sources.yml",
        f"""
        version: 2
        sources:
          - name: {SCHEMA}
            schema: {SCHEMA}
            tables: [{{name: real}}, {{name: twin}}]
        """,
    )
    spark.session.sql(f"create database if not exists {SCHEMA}")
    with duckdb.connect(str(project.database)) as con:
        con.register("frame", cps1988())
        con.execute(f"create schema {SCHEMA}")
        for table, start in (("real", 0), ("twin", 2000)):
            parquet = root / f"{table}.parquet"
            con.execute(f"copy ({TABLE.format(start=start)}) to '{parquet}' (format parquet)")
            con.execute(f"create table {SCHEMA}.{table} as select * from '{parquet}'")
            frame = spark.session.read.parquet(str(parquet))
            frame.write.mode("overwrite").saveAsTable(f"{SCHEMA}.{table}")
    return _report(root, "duckdb"), _report(root, "spark")


def test_spark_report_counts_what_duckdb_counts(reports):
    duck, spark = reports
    assert (spark.real_rows, spark.twin_rows) == (duck.real_rows, duck.twin_rows) == (2000, 2000)
    assert [(c.name, c.kind) for c in spark.columns] == [(c.name, c.kind) for c in duck.columns]
    kinds = {c.name: c.kind for c in duck.columns}
    assert kinds["hired"] == kinds["wage"] == "numeric" and kinds["region"] == "category"
    for s, d in zip(spark.columns, duck.columns, strict=True):
        assert (s.real_nulls, s.twin_nulls) == (d.real_nulls, d.twin_nulls), s.name
        assert s.real_nulls > 0 or s.name not in ("wage", "region")
        if s.kind == "category":  # exact counts on both: the same distance, the same bars
            assert s.tvd == pytest.approx(d.tvd, abs=1e-12), s.name
            assert s.png == d.png, s.name


def test_spark_report_numbers_and_associations_are_duckdbs_within_a_sketchs_error(reports):
    duck, spark = reports
    for s, d in zip(spark.columns, duck.columns, strict=True):
        if s.kind == "numeric":
            assert s.tvd == pytest.approx(d.tvd, abs=0.02), s.name
    names = [c.name for c in duck.columns]
    numeric = {c.name for c in duck.columns if c.kind == "numeric"}
    for side in (0, 1):
        for a, b in itertools.combinations(range(len(names)), 2):
            # Label pairs are exact; a number's decile codes may move by a value.
            tolerance = 0.03 if {names[a], names[b]} & numeric else 1e-9
            assert spark.association[side][a, b] == pytest.approx(
                duck.association[side][a, b], abs=tolerance
            ), (side, names[a], names[b])
