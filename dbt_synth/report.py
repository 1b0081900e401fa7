"""A twin's report: how close it is to the real table, what its tests said and what it cost.

`build_report` compares a real table with its twin column by column (histograms, total variation
distance) and pairwise (Cramér's V heatmaps); `render_html` writes one self-contained page with
the figures inlined as base64 PNG, so it opens offline and can be attached to a ticket.

The report plots the real data's distributions: share it only with people allowed to see those.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from dbt_synth import report_plots

# Categories beyond the most common ones are pooled into one bar.
_TOP_CATEGORIES = 20
_NUMERIC_BINS = 30
_ASSOCIATION_BINS = 10


@dataclass(frozen=True)
class ColumnComparison:
    """One column, real vs twin: its distance and its plot."""

    name: str
    kind: str  # "numeric" or "category"
    tvd: float
    real_nulls: float
    twin_nulls: float
    png: str
    # Keys and foreign keys hold fresh (parent twin) values by design: shown, but left out of
    # the mean distance.
    key: bool = False


@dataclass(frozen=True)
class LedgerBuild:
    """The latest ledger row of a twin, with the builds before it."""

    epsilon: float
    target_epsilon: float
    delta: float
    epsilon_count: float
    epsilon_domains: float
    epsilon_model: float
    source_rows_dp: float
    sample_rate: float
    twin_rows: int
    mechanism: str
    finished_at: Any
    spends: list[dict[str, Any]]
    column_treatments: dict[str, str]
    builds: int
    epsilon_all_builds: float

    @classmethod
    def from_rows(cls, rows: list[dict[str, Any]]) -> LedgerBuild | None:
        """`rows`: every ledger row of one twin; the newest describes the twin as it is."""
        if not rows:
            return None
        latest = max(rows, key=lambda r: str(r["finished_at"]))
        return cls(
            epsilon=float(latest["epsilon"]),
            target_epsilon=float(latest["target_epsilon"]),
            delta=float(latest["delta"]),
            epsilon_count=float(latest["epsilon_count"]),
            epsilon_domains=float(latest["epsilon_domains"]),
            epsilon_model=float(latest["epsilon_model"]),
            source_rows_dp=float(latest["source_rows_dp"]),
            sample_rate=float(latest.get("sample_rate") or 1.0),
            twin_rows=int(latest["twin_rows"]),
            mechanism=str(latest["mechanism"]),
            finished_at=latest["finished_at"],
            spends=json.loads(latest["spends"] or "[]"),
            column_treatments=json.loads(latest["column_treatments"] or "{}"),
            builds=len(rows),
            # Each build is a fresh release from the same source: their ε add up.
            epsilon_all_builds=float(sum(float(r["epsilon"]) for r in rows)),
        )


@dataclass(frozen=True)
class TestOutcome:
    name: str
    status: str
    failures: int | None
    message: str


@dataclass(frozen=True)
class TwinReport:
    twin: str
    source: str
    real_rows: int
    twin_rows: int
    columns: tuple[ColumnComparison, ...]
    heatmap_png: str | None
    ledger: LedgerBuild | None
    tests: tuple[TestOutcome, ...] = ()
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def mean_tvd(self) -> float:
        """Mean total variation distance over the columns the generator modelled (not keys)."""
        modelled = [c.tvd for c in self.columns if not c.key]
        return float(np.mean(modelled)) if modelled else float("nan")

    def tests_summary(self) -> str:
        if not self.tests:
            return "not run"
        counts: dict[str, int] = {}
        for test in self.tests:
            counts[test.status] = counts.get(test.status, 0) + 1
        return ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))


def build_report(
    twin: str,
    source: str,
    real: pd.DataFrame,
    synthetic: pd.DataFrame,
    *,
    ledger: LedgerBuild | None = None,
    tests: tuple[TestOutcome, ...] = (),
    notes: tuple[str, ...] = (),
) -> TwinReport:
    """Compare `real` and `synthetic` (same columns); bundle the figures, ledger and tests."""
    treatments = ledger.column_treatments if ledger else {}
    keys = {n for n, how in treatments.items() if str(how).startswith(("key", "foreign key"))}
    columns = []
    coded_real, coded_twin = {}, {}
    for name in real.columns:
        kind, real_values, twin_values = _as_comparable(real[name], synthetic.get(name))
        if kind == "numeric":
            comparison = _numeric(name, real_values, twin_values)
        else:
            comparison = _category(name, real_values, twin_values)
        columns.append(replace(comparison, key=name in keys))
        coded_real[name], coded_twin[name] = _codes(kind, real_values, twin_values)
    heatmap = None
    if len(columns) >= 2:
        names = list(real.columns)
        heatmap = report_plots.association_heatmaps(
            names, _association(coded_real, names), _association(coded_twin, names)
        )
    return TwinReport(
        twin=twin,
        source=source,
        real_rows=len(real),
        twin_rows=len(synthetic),
        columns=tuple(columns),
        heatmap_png=heatmap,
        ledger=ledger,
        tests=tests,
        notes=notes,
    )


def _as_comparable(real: pd.Series, twin: pd.Series | None) -> tuple[str, pd.Series, pd.Series]:
    """Numbers, dates and times become floats; everything else is compared as categories."""
    twin = twin if twin is not None else pd.Series([None] * 0, dtype=object)
    for convert in (_to_number, _to_epoch):
        real_values, twin_values = convert(real), convert(twin)
        if real_values is not None and twin_values is not None:
            return "numeric", real_values, twin_values
    return "category", real.astype(object), twin.astype(object)


def _to_number(series: pd.Series) -> pd.Series | None:
    if pd.api.types.is_bool_dtype(series):
        return None
    non_null = series.dropna()
    if len(non_null) and not all(
        isinstance(v, int | float | np.number) or type(v).__name__ == "Decimal" for v in non_null
    ):
        return None
    if len(non_null) and any(isinstance(v, bool | np.bool_) for v in non_null):
        return None
    return pd.to_numeric(series, errors="coerce").astype(float)


def _to_epoch(series: pd.Series) -> pd.Series | None:
    non_null = series.dropna()
    if not len(non_null) or not all(hasattr(v, "year") for v in non_null):
        return None
    stamps = pd.to_datetime(series, errors="coerce", utc=True)
    return (stamps - pd.Timestamp("1970-01-01", tz="UTC")).dt.total_seconds() / 86400.0


def _numeric(name: str, real: pd.Series, twin: pd.Series) -> ColumnComparison:
    r, t = real.dropna().to_numpy(), twin.dropna().to_numpy()
    r, t = r[np.isfinite(r)], t[np.isfinite(t)]
    both = np.concatenate([r, t]) if len(r) + len(t) else np.zeros(1)
    low, high = np.quantile(both, [0.005, 0.995])
    if high <= low:
        low, high = float(both.min()) - 0.5, float(both.max()) + 0.5
    edges = np.linspace(low, high, _NUMERIC_BINS + 1)
    if np.all(both == np.round(both)) and high - low <= 2 * _NUMERIC_BINS:
        # Integers get one bin each, centred on the value, so no bin straddles two of them.
        edges = np.arange(np.floor(low) - 0.5, np.ceil(high) + 1.0)
    # The distance counts every value: tails beyond the plotted range go to the outer bins.
    real_hist = _shares(np.clip(r, low, high), edges, real.isna().mean())
    twin_hist = _shares(np.clip(t, low, high), edges, twin.isna().mean())
    return ColumnComparison(
        name=name,
        kind="numeric",
        tvd=0.5 * float(np.abs(real_hist - twin_hist).sum()),
        real_nulls=float(real.isna().mean()),
        twin_nulls=float(twin.isna().mean()) if len(twin) else 0.0,
        png=report_plots.numeric_histogram(name, r, t, edges),
    )


def _shares(values: np.ndarray, edges: np.ndarray, null_share: float) -> np.ndarray:
    counts = np.histogram(values, bins=edges)[0].astype(float)
    shares = counts / counts.sum() * (1 - null_share) if counts.sum() else counts
    return np.r_[shares, null_share]


def _category(name: str, real: pd.Series, twin: pd.Series) -> ColumnComparison:
    real_share = real.map(_label).value_counts(normalize=True)
    twin_share = twin.map(_label).value_counts(normalize=True) if len(twin) else real_share * 0
    union = real_share.index.union(twin_share.index)
    r = real_share.reindex(union, fill_value=0.0)
    t = twin_share.reindex(union, fill_value=0.0)
    top = list(r.sort_values(ascending=False).index[:_TOP_CATEGORIES])
    labels, real_bars, twin_bars = list(top), list(r[top]), list(t[top])
    rest = [v for v in union if v not in top]
    if rest:
        labels.append("(other)")
        real_bars.append(float(r[rest].sum()))
        twin_bars.append(float(t[rest].sum()))
    return ColumnComparison(
        name=name,
        kind="category",
        tvd=0.5 * float(np.abs(r - t).sum()),
        real_nulls=float(real.isna().mean()),
        twin_nulls=float(twin.isna().mean()) if len(twin) else 0.0,
        png=report_plots.category_bars(name, labels, np.array(real_bars), np.array(twin_bars)),
    )


def _label(value: Any) -> str:
    return "NULL" if value is None or (isinstance(value, float) and np.isnan(value)) else str(value)


def _codes(kind: str, real: pd.Series, twin: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Small integer codes for association: numeric quantile bins of the real data, categories."""
    if kind == "numeric":
        finite = real.dropna().to_numpy()
        edges = np.unique(np.quantile(finite, np.linspace(0, 1, _ASSOCIATION_BINS + 1)[1:-1]))
        return tuple(  # type: ignore[return-value]
            np.where(s.isna(), -1, np.searchsorted(edges, s.fillna(0).to_numpy()))
            for s in (real, twin)
        )
    labels = {v: i for i, v in enumerate(real.map(_label).value_counts().index)}
    return tuple(  # type: ignore[return-value]
        s.map(_label).map(lambda v: labels.get(v, -2)).to_numpy() for s in (real, twin)
    )


def _association(codes: dict[str, np.ndarray], names: list[str]) -> np.ndarray:
    matrix = np.eye(len(names))
    for i, a in enumerate(names):
        for j in range(i + 1, len(names)):
            matrix[i, j] = matrix[j, i] = _cramers_v(codes[a], codes[names[j]])
    return matrix


def _cramers_v(x: np.ndarray, y: np.ndarray) -> float:
    if len(x) == 0 or len(y) == 0:
        return 0.0
    x_codes = np.unique(np.asarray(x, dtype=np.int64), return_inverse=True)[1].ravel()
    y_codes = np.unique(np.asarray(y, dtype=np.int64), return_inverse=True)[1].ravel()
    table = np.zeros((x_codes.max() + 1, y_codes.max() + 1))
    np.add.at(table, (x_codes, y_codes), 1.0)
    if min(table.shape) < 2:
        return 0.0
    expected = table.sum(1, keepdims=True) * table.sum(0, keepdims=True) / table.sum()
    chi2 = float(((table - expected) ** 2 / expected).sum())
    return float(np.sqrt(chi2 / table.sum() / (min(table.shape) - 1)))


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
    rows = [
        ("ε spent (this build)", f"{ledger.epsilon:.4f}"),
        ("ε target", f"{ledger.target_epsilon:g}"),
        ("δ", f"{ledger.delta:.2e}"),
        ("ε row count (alone)", f"{ledger.epsilon_count:.4f}"),
        ("ε domains (alone)", f"{ledger.epsilon_domains:.4f}"),
        ("ε model (alone)", f"{ledger.epsilon_model:.4f}"),
        ("mechanism", ledger.mechanism),
        ("DP estimate of source rows", f"{ledger.source_rows_dp:,.0f}"),
        ("share of source rows fitted on", f"{ledger.sample_rate:.3g}"),
        ("twin rows", f"{ledger.twin_rows:,}"),
        ("built at", str(ledger.finished_at)),
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
