"""A twin's report as one self-contained HTML page: figures inlined as base64 PNG, no scripts,
no external files, so it opens offline and can be attached to a ticket."""

from __future__ import annotations

import html
from datetime import datetime

from dbt_synth.report import LedgerBuild, TestOutcome, TwinReport


def render_html(report: TwinReport, *, generated_at: datetime | None = None) -> str:
    """One self-contained HTML page: no scripts, no external files, figures as data URIs."""
    e = html.escape
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>dbt-synth report: {e(report.twin)}</title><style>{_CSS}</style></head><body>",
        f"<h1>Twin <code>{e(report.twin)}</code> of <code>{e(report.source)}</code></h1>",
        f"<p class='meta'>{report.real_rows:,} real rows compared with {report.twin_rows:,} "
        f"twin rows; mean total variation distance {report.mean_tvd:.3f} (keys left out)."
        + (f" Generated {e(str(generated_at))}." if generated_at else "")
        + "</p><p class='warn'>This report plots the real table's distributions: share it only "
        "with people allowed to see them. The twin itself is what is safe to share.</p>",
    ]
    parts += [f"<p class='warn'>{e(note)}</p>" for note in report.notes]
    parts.append(_ledger_html(report.ledger))
    parts.append(_tests_html(report.tests))
    parts.append("<h2>Columns: real vs twin</h2><div class='grid'>")
    treatments = report.ledger.column_treatments if report.ledger else {}
    for column in report.columns:
        parts.append(
            f"<figure class='column' data-column='{e(column.name)}'>"
            f"<img alt='{e(column.name)}: real vs twin' src='data:image/png;base64,{column.png}'>"
            f"<figcaption><b>{e(column.name)}</b> ({column.kind}) TVD {column.tvd:.3f}; "
            f"NULL share real {column.real_nulls:.1%}, twin {column.twin_nulls:.1%}"
            + (f"<br>{e(treatments[column.name])}" if column.name in treatments else "")
            + "</figcaption></figure>"
        )
    parts.append("</div>")
    if report.heatmap_png:
        parts.append(
            "<h2>Pairwise association (Cramér's V)</h2>"
            f"<img class='heatmap' alt='association heatmaps' "
            f"src='data:image/png;base64,{report.heatmap_png}'>"
        )
    parts.append("</body></html>")
    return "\n".join(parts)


def _ledger_html(ledger: LedgerBuild | None) -> str:
    if ledger is None:
        return "<h2>Privacy ledger</h2><p class='warn'>No ledger row for this twin.</p>"
    entry = ledger.latest
    rows = [
        ("ε spent (this build)", f"{entry.epsilon:.4f}"),
        ("ε target", f"{entry.target_epsilon:g}"),
        ("δ", f"{entry.delta:.2e}"),
        ("ε row count (alone)", f"{entry.epsilon_count:.4f}"),
        ("ε domains (alone)", f"{entry.epsilon_domains:.4f}"),
        ("ε model (alone)", f"{entry.epsilon_model:.4f}"),
        ("mechanism", entry.mechanism),
        ("DP estimate of source rows", f"{entry.source_rows_dp:,.0f}"),
        # Ledgers from before sampling have no rate: those twins were fitted on every row.
        ("share of source rows fitted on", f"{entry.sample_rate or 1.0:.3g}"),
        ("twin rows", f"{entry.twin_rows:,}"),
        ("built at", str(entry.finished_at)),
        ("builds recorded", str(ledger.builds)),
        ("ε over all recorded builds", f"{ledger.epsilon_all_builds:.4f}"),
    ]
    body = "".join(
        f"<tr><th>{html.escape(k)}</th><td class='num'>{html.escape(v)}</td></tr>" for k, v in rows
    )
    parts_by_kind: dict[str, list[float | None]] = {}
    for spend in ledger.spends:
        parts_by_kind.setdefault(spend.get("part", "?"), []).append(spend.get("rho"))
    releases = "".join(
        f"<tr><td>{html.escape(part)}</td><td class='num'>{len(rhos)}</td>"
        f"<td class='num'>{_rho_cell(rhos)}</td></tr>"
        for part, rhos in parts_by_kind.items()
    )
    return (
        "<h2>Privacy ledger</h2><table class='ledger'>" + body + "</table>"
        "<p class='meta'>Parts are each priced as if released alone; together they compose to "
        "the total, which is less than their sum. Rebuilding a twin releases again, so ε adds up "
        "over builds.</p><table><tr><th>part</th><th>releases</th><th>zCDP ρ</th></tr>"
        + releases
        + "</table>"
    )


def _rho_cell(rhos: list[float | None]) -> str:
    """A part's total zCDP ρ; DP-SGD training is accounted in RDP (subsampled Gaussian), which
    has no ρ: its ε is in the model line above."""
    if any(rho is None for rho in rhos):
        return "— (RDP, in ε model)"
    return f"{sum(float(rho) for rho in rhos):.5f}"


def _tests_html(tests: tuple[TestOutcome, ...]) -> str:
    if not tests:
        return (
            "<h2>Tests</h2><p class='meta'>No test results for this twin in the last "
            "run_results.json (run <code>dbt build</code> first).</p>"
        )
    rows = "".join(
        f"<tr class='{html.escape(t.status)}'><td>{html.escape(t.name)}</td>"
        f"<td>{html.escape(t.status)}</td>"
        f"<td class='num'>{'' if t.failures is None else t.failures}</td>"
        f"<td>{html.escape(t.message)}</td></tr>"
        for t in tests
    )
    return (
        "<h2>Tests</h2><table><tr><th>test</th><th>status</th><th>failures</th><th>message</th>"
        f"</tr>{rows}</table>"
    )


_CSS = """
body{font-family:system-ui,sans-serif;margin:2em;color:#222;max-width:1400px}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:3px 8px;
text-align:left;font-size:13px}.num{text-align:right;font-variant-numeric:tabular-nums}
.grid{display:flex;flex-wrap:wrap;gap:12px}figure{margin:0;border:1px solid #eee;padding:6px}
figcaption{font-size:12px;max-width:340px}.meta{color:#555}.warn{color:#8a5300}
tr.pass td:nth-child(2){color:#1a7f37}tr.warn td:nth-child(2){color:#8a5300}
tr.fail td:nth-child(2),tr.error td:nth-child(2){color:#c62828}img.heatmap{max-width:100%}
"""
