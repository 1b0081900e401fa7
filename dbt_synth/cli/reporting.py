"""`dbt-synth report`: compare each twin with its real table, and gather its ledger and tests.

Reads run through dbt (`dbt show --inline`), so the report works on whatever warehouse the
profile points at; the comparison fetches only aggregates (`dbt_synth/report_sql.py`).
`run_results.json` is read first and put back after: dbt's own commands would replace the
user's build results with the report's queries.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from dbt_synth.cli.candidates import is_twin, label_of, original_of
from dbt_synth.cli.dbt_project import DbtProject
from dbt_synth.errors import ConfigError, SynthError
from dbt_synth.report import LedgerBuild, TestOutcome, TwinReport, build_report
from dbt_synth.report_html import render_html
from dbt_synth.report_sql import Query


@dataclass(frozen=True)
class ReportSummary:
    """One twin's line in the terminal summary."""

    twin: str
    epsilon: float
    target_epsilon: float
    twin_rows: int
    mean_tvd: float
    tests: str
    path: Path


def report_project(
    project: DbtProject, *, select: Sequence[str] = (), out: Path | None = None
) -> list[ReportSummary]:
    """Write `<out>/<twin>.html` for every twin (or the selected ones); return their summaries."""
    target_dir = project.project_dir / _target_path(project.project_dir)
    results_path = target_dir / "run_results.json"
    saved = results_path.read_bytes() if results_path.exists() else None
    try:
        return _report(project, target_dir, _run_results(results_path), select, out)
    finally:
        # dbt's own commands below rewrite run_results.json: leave the user's build results.
        if saved is not None:
            results_path.write_bytes(saved)


def _report(
    project: DbtProject,
    target_dir: Path,
    outcomes: dict[str, dict[str, Any]],
    select: Sequence[str],
    out: Path | None,
) -> list[ReportSummary]:
    manifest = project.manifest()
    twins = [(uid, node) for uid, node in manifest.nodes.items() if is_twin(node)]
    if select:
        chosen = set(project.select(select))
        twins = [(uid, node) for uid, node in twins if uid in chosen]
    if not twins:
        raise ConfigError(
            "no twin models found" + (f" in --select '{' '.join(select)}'" if select else ""),
            fix="run `dbt-synth init` and `dbt build` first, or widen --select",
        )
    out = out or target_dir / "synth_report"
    out.mkdir(parents=True, exist_ok=True)
    summaries = []
    for unique_id, node in sorted(twins, key=lambda item: item[1].name):
        report = twin_report(project, manifest, unique_id, node, outcomes)
        path = out / f"{node.name}.html"
        path.write_text(render_html(report, generated_at=datetime.now(UTC).replace(microsecond=0)))
        ledger = report.ledger
        summaries.append(
            ReportSummary(
                twin=node.name,
                epsilon=ledger.latest.epsilon if ledger else float("nan"),
                target_epsilon=ledger.latest.target_epsilon if ledger else float("nan"),
                twin_rows=report.twin_rows,
                mean_tvd=report.mean_tvd,
                tests=report.tests_summary(),
                path=path,
            )
        )
    return summaries


def twin_report(
    project: DbtProject,
    manifest: Any,
    unique_id: str,
    node: Any,
    outcomes: dict[str, dict[str, Any]],
) -> TwinReport:
    original = _original(manifest, node)
    if original is None:
        raise ConfigError(
            f"twin '{node.name}' reads no source or model",
            fix="pass dbt.source(...) or dbt.ref(...) to dbt_synth.twin in the model file",
            model=node.name,
        )
    label, relation = original
    rows, notes = _ledger_rows(project, node)
    return build_report(
        node.name,
        label,
        query_records(project),
        relation,
        f"ref('{node.name}')",
        ledger=LedgerBuild.from_rows(rows),
        tests=_tests_of(manifest, unique_id, outcomes),
        notes=tuple(notes),
    )


def _original(manifest: Any, node: Any) -> tuple[str, str] | None:
    """The label and the relation call (`source('s', 't')`, `ref('m')`) of the table `node`
    twins."""
    original = original_of(manifest, node)
    if original is None:
        return None
    if original.resource_type == "source":
        return label_of(original), f"source('{original.source_name}', '{original.name}')"
    return label_of(original), f"ref('{original.name}')"


def _ledger_rows(project: DbtProject, node: Any) -> tuple[list[dict[str, Any]], list[str]]:
    synth = node.config.get("synth") or {}
    schema = synth.get("ledger_schema") or node.schema
    table = synth.get("ledger_table") or "synth_ledger"
    relation = (
        f"api.Relation.create(database={json.dumps(node.database)}, "
        f"schema={json.dumps(schema)}, identifier={json.dumps(table)})"
    )
    sql = f"select * from {{{{ {relation} }}}} where model = '{node.name}'"
    try:
        frame = _frame(project.query(sql))
    except SynthError:
        return [], [f"no ledger table {schema}.{table}: build the twin with dbt first"]
    return frame.to_dict("records"), []


def _tests_of(
    manifest: Any, unique_id: str, outcomes: dict[str, dict[str, Any]]
) -> tuple[TestOutcome, ...]:
    tests = []
    for test_id, test in manifest.nodes.items():
        if test.resource_type != "test" or unique_id not in test.depends_on.nodes:
            continue
        outcome = outcomes.get(test_id)
        if outcome is None:
            continue
        tests.append(
            TestOutcome(
                name=test.name,
                status=str(outcome.get("status")),
                failures=outcome.get("failures"),
                message=str(outcome.get("message") or ""),
            )
        )
    return tuple(sorted(tests, key=lambda t: t.name))


def _run_results(path: Path) -> dict[str, dict[str, Any]]:
    if not path.exists():
        return {}
    results = json.loads(path.read_text()).get("results", [])
    return {r["unique_id"]: r for r in results}


def query_records(project: DbtProject) -> Query:
    """`project`'s Jinja-SQL queries, each answered as a list of rows by column name."""

    def query(sql: str) -> list[dict[str, Any]]:
        table = project.query(sql)
        names = list(table.column_names)
        return [dict(zip(names, row, strict=True)) for row in table.rows]

    return query


def _frame(table: Any) -> pd.DataFrame:
    return pd.DataFrame([list(row) for row in table.rows], columns=list(table.column_names))


def _target_path(project_dir: Path) -> str:
    settings = yaml.safe_load((project_dir / "dbt_project.yml").read_text()) or {}
    return settings.get("target-path") or "target"
