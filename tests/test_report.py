"""`dbt-synth report` on a twin built by dbt: one plot per column, the ledger, the test results."""

from __future__ import annotations

import base64
import re

import pytest
from typer.testing import CliRunner

from dbt_synth.cli import app
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
