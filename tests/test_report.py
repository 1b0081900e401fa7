"""`dbt-synth report` on a twin built by dbt: one plot per column, the ledger, the test results."""

from __future__ import annotations

import base64
import itertools
import re

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from dbt_synth import report_plots
from dbt_synth.cli import app
from dbt_synth.cli.dbt_project import DbtProject as CliProject
from dbt_synth.cli.reporting import query_records
from dbt_synth.report import build_report
from fixtures.real_data import cps1988
from tests.dbt_projects import DbtProject, new_project, twin_model

TWIN_YML = """
version: 2
models:
  - name: cps1988_twin
    config:
      tags: [dbt_synth_twin]
    columns:
      - name: region
        data_tests: [not_null]
"""


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> tuple[DbtProject, list]:
    project = new_project(tmp_path_factory.mktemp("report"), {"cps1988": []})
    project.load("cps1988", cps1988().head(3000))
    project.write("models/cps1988_twin.py", twin_model("cps1988", {"epsilon": 1.0, "seed": 5}))
    project.write("models/cps1988_twin.yml", TWIN_YML)
    events: list = []
    result = project.dbt_with_callbacks([events.append], "build")
    assert result.success, result.exception
    return project, events


@pytest.fixture(scope="module")
def build_results(built) -> bytes:
    project, _ = built
    return (project.root / "target" / "run_results.json").read_bytes()


@pytest.fixture(scope="module")
def report(built, build_results) -> tuple[str, str]:
    project, _ = built
    result = CliRunner().invoke(
        app,
        ["report", "--project-dir", str(project.root), "--profiles-dir", str(project.root)],
        env={"COLUMNS": "200"},
    )
    assert result.exit_code == 0, result.output
    page = (project.root / "target" / "synth_report" / "cps1988_twin.html").read_text()
    return page, result.output


def test_report_has_one_png_plot_per_column(report):
    page, _ = report
    figures = re.findall(r"<figure class='column' data-column='([^']+)'>", page)
    assert figures == list(cps1988().columns)
    images = re.findall(r"src='data:image/png;base64,([A-Za-z0-9+/=]+)'", page)
    assert len(images) == len(figures) + 1  # and the association heatmaps
    assert all(base64.b64decode(image)[:8] == b"\x89PNG\r\n\x1a\n" for image in images)


def test_report_is_self_contained(report):
    page, _ = report
    assert "<script" not in page
    assert not re.search(r"(src|href)=['\"](?!data:)", page)


def test_report_shows_the_ledger_figures(built, report):
    project, _ = built
    page, _ = report
    epsilon, target, delta, rows_dp, twin_rows = project.query(
        "select epsilon, target_epsilon, delta, source_rows_dp, twin_rows from main.synth_ledger"
    )[0]
    assert target == 1.0 and 0.95 <= epsilon <= 1.0 + 1e-6
    assert f"<td class='num'>{epsilon:.4f}</td>" in page
    assert f"<td class='num'>{delta:.2e}</td>" in page
    assert f"<td class='num'>{rows_dp:,.0f}</td>" in page
    assert f"<td class='num'>{twin_rows:,}</td>" in page
    assert "ε domains (alone)" in page and "zCDP ρ" in page


def test_report_lists_the_twins_test_results_from_run_results(report):
    page, _ = report
    assert re.search(r"<tr class='pass'><td>not_null_cps1988_twin_region</td><td>pass</td>", page)


def test_report_twin_is_close_to_the_real_table_on_categories(report):
    page, _ = report
    tvd = dict(re.findall(r"<b>([a-z]+)</b> \((?:numeric|category)\) TVD ([0-9.]+)", page))
    assert set(tvd) == set(cps1988().columns)
    # Low-cardinality categories at ε=1 on 3,000 rows stay within a few percent.
    assert float(tvd["ethnicity"]) < 0.05 and float(tvd["region"]) < 0.05


def test_terminal_summary_names_the_twin_and_its_epsilon(built, report):
    project, _ = built
    _, output = report
    (epsilon,) = project.query("select epsilon from main.synth_ledger")[0]
    assert "cps1988_twin" in output and f"{epsilon:.3f} / 1" in output and "1 pass" in output


def test_fitting_progress_reaches_dbts_log_at_info_level(built):
    _, events = built
    progress = [e for e in events if "cps1988_twin: " in e.info.msg and "ε so far" in e.info.msg]
    assert progress and {e.info.level for e in progress} == {"info"}


def test_report_leaves_the_builds_run_results_in_place(built, build_results, report):
    project, _ = built
    assert (project.root / "target" / "run_results.json").read_bytes() == build_results


# --- figures from aggregates computed in the warehouse ---------------------------------------


def _whole_table_figures(real: pd.DataFrame, twin: pd.DataFrame) -> dict[str, dict]:
    """The report's figures computed the way it did when it fetched both tables whole."""
    figures = {}
    for name in real.columns:
        r_all, t_all = real[name], twin[name]
        entry = {"real_nulls": r_all.isna().mean(), "twin_nulls": t_all.isna().mean()}
        if pd.api.types.is_numeric_dtype(r_all):
            r, t = r_all.dropna().to_numpy(float), t_all.dropna().to_numpy(float)
            both = np.concatenate([r, t])
            low, high = np.quantile(both, [0.005, 0.995])
            edges = np.linspace(low, high, 31)
            if np.all(both == np.round(both)) and high - low <= 60:
                edges = np.arange(np.floor(low) - 0.5, np.ceil(high) + 1.0)
            hists = []
            for values, nulls in ((r, entry["real_nulls"]), (t, entry["twin_nulls"])):
                counts = np.histogram(np.clip(values, low, high), bins=edges)[0].astype(float)
                hists.append(np.r_[counts / counts.sum() * (1 - nulls), nulls])
            entry["tvd"] = 0.5 * float(np.abs(hists[0] - hists[1]).sum())
            entry["png"] = report_plots.numeric_histogram(
                name, np.histogram(r, edges)[0], np.histogram(t, edges)[0], edges
            )
            deciles = np.quantile(r, np.linspace(0, 1, 11)[1:-1])
            codes = [
                np.where(s.isna(), -1, np.searchsorted(deciles, s.fillna(0)))
                for s in (r_all, t_all)
            ]
        else:
            shares = [
                s.fillna("NULL").astype(str).value_counts(normalize=True) for s in (r_all, t_all)
            ]
            union = shares[0].index.union(shares[1].index)
            r, t = (s.reindex(union, fill_value=0.0) for s in shares)
            entry["tvd"] = 0.5 * float(np.abs(r - t).sum())
            known = set(shares[0].index)
            codes = [
                s.fillna("NULL").astype(str).where(lambda v, known=known: v.isin(known), "~")
                for s in (r_all, t_all)
            ]
        entry["codes"] = [pd.Series(c).astype(str).to_numpy() for c in codes]
        figures[name] = entry
    return figures


def _cramers_v(x: np.ndarray, y: np.ndarray) -> float:
    table = pd.crosstab(x, y).to_numpy(float)
    if min(table.shape) < 2:
        return 0.0
    expected = table.sum(1, keepdims=True) * table.sum(0, keepdims=True) / table.sum()
    chi2 = ((table - expected) ** 2 / expected).sum()
    return float(np.sqrt(chi2 / table.sum() / (min(table.shape) - 1)))


@pytest.fixture(scope="module")
def aggregated(built):
    """The report of the built twin, with every query it asked the warehouse and its rows."""
    project, _ = built
    asked: list[tuple[str, int]] = []
    records = query_records(CliProject(project.root, project.root))

    def query(sql: str) -> list[dict]:
        rows = records(sql)
        asked.append((sql, len(rows)))
        return rows

    report = build_report(
        "cps1988_twin", "raw.cps1988", query, "source('raw', 'cps1988')", "ref('cps1988_twin')"
    )
    return report, asked


def test_report_figures_are_those_of_the_whole_tables(built, aggregated):
    project, _ = built
    report, _ = aggregated
    real = project.frame("select * from raw.cps1988")
    twin = project.frame("select * from main.cps1988_twin")
    expected = _whole_table_figures(real, twin)
    assert [c.name for c in report.columns] == list(real.columns)
    assert (report.real_rows, report.twin_rows) == (len(real), len(twin))
    for column in report.columns:
        figures = expected[column.name]
        assert column.kind == ("numeric" if "png" in figures else "category"), column.name
        assert column.tvd == pytest.approx(figures["tvd"], abs=1e-12), column.name
        assert (column.real_nulls, column.twin_nulls) == (
            figures["real_nulls"],
            figures["twin_nulls"],
        )
        if column.kind == "numeric":  # same bins, same counts: the same picture, bit for bit
            assert column.png == figures["png"], column.name
    names = list(real.columns)
    for side, matrix in ((0, report.association[0]), (1, report.association[1])):
        for a, b in itertools.combinations(range(len(names)), 2):
            codes = (expected[names[a]]["codes"][side], expected[names[b]]["codes"][side])
            assert matrix[a, b] == pytest.approx(_cramers_v(*codes), abs=1e-9), (names[a], names[b])


def test_report_fetches_aggregates_only_and_writes_no_value_into_its_queries(aggregated):
    report, asked = aggregated
    assert asked and all("select *" not in sql for sql, _ in asked)
    # A few rows per column (bins, top categories, one per column pair), never a table.
    assert max(rows for _, rows in asked) < report.real_rows / 10
    assert sum(rows for _, rows in asked) < report.real_rows / 4
    # Every number in the query text is a public constant (quantile levels), none read from
    # the data: the text lands in dbt's target/ and in the warehouse's query history.
    literals = {lit for sql, _ in asked for lit in re.findall(r"cast\('([^']*)' as", sql)}
    public = {"Infinity", "0.005", "0.995"} | {repr(float(q)) for q in np.linspace(0, 1, 11)[1:-1]}
    assert literals <= public
