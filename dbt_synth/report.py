"""A twin's report: how close it is to the real table, what its tests said and what it cost.

`build_report` compares a real table with its twin column by column (histograms, total variation
distance) and pairwise (Cramér's V heatmaps), from aggregates the warehouse computes
(`report_sql.py`): the tables are never fetched. `report_html.render_html` writes the page.

The report plots the real data's distributions: share it only with people allowed to see those.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from dbt_synth import report_plots, report_sql
from dbt_synth.ledger import LedgerEntry, entry_of
from dbt_synth.report_sql import Query

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
    """The latest ledger entry of a twin, with how many builds were recorded and their ε."""

    latest: LedgerEntry
    builds: int
    # Each build is a fresh release from the same source: their ε add up.
    epsilon_all_builds: float

    @property
    def spends(self) -> list[dict[str, Any]]:
        return json.loads(self.latest.spends or "[]")

    @property
    def column_treatments(self) -> dict[str, str]:
        return json.loads(self.latest.column_treatments or "{}")

    @classmethod
    def from_rows(cls, rows: list[dict[str, Any]]) -> LedgerBuild | None:
        """`rows`: every ledger row of one twin; the newest describes the twin as it is."""
        if not rows:
            return None
        entries = [entry_of(row) for row in rows]
        latest = max(entries, key=lambda entry: str(entry.finished_at))
        return cls(latest, len(entries), float(sum(entry.epsilon for entry in entries)))


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
    # Cramér's V of every column pair, real then twin (what the heatmap draws).
    association: tuple[np.ndarray, np.ndarray] | None = None

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
    query: Query,
    real: str,
    synthetic: str,
    *,
    ledger: LedgerBuild | None = None,
    tests: tuple[TestOutcome, ...] = (),
    notes: tuple[str, ...] = (),
) -> TwinReport:
    """Compare the tables that relation calls `real` and `synthetic` name (`source('s', 't')`,
    `ref('m')`) through `query`, which runs Jinja-SQL in the warehouse; bundle the figures, the
    ledger and the tests."""
    plans = report_sql.plan_columns(query, real, synthetic)
    stats = report_sql.stats(query, plans, real, synthetic)
    histograms = report_sql.histograms(query, plans, real, synthetic, _NUMERIC_BINS)
    categories = report_sql.category_counts(query, plans, real, synthetic, _TOP_CATEGORIES)
    treatments = ledger.column_treatments if ledger else {}
    keys = {n for n, how in treatments.items() if str(how).startswith(("key", "foreign key"))}
    columns = []
    for i, plan in enumerate(plans):
        shares = [_missing_share(stats[side], i) for side in ("real", "twin")]
        if plan.numeric:
            comparison = _numeric(plan.name, histograms.get(i), shares)
        else:
            comparison = _category(plan.name, categories.get(i), stats, shares)
        columns.append(replace(comparison, key=plan.name in keys))
    heatmap = association = None
    if len(plans) >= 2:
        pairs = report_sql.associations(query, plans, real, synthetic, _DECILES)
        association = (
            _association(pairs, "real", len(plans)),
            _association(pairs, "twin", len(plans)),
        )
        heatmap = report_plots.association_heatmaps([plan.name for plan in plans], *association)
    return TwinReport(
        twin=twin,
        source=source,
        real_rows=int(stats["real"]["n_rows"]),
        twin_rows=int(stats["twin"]["n_rows"]),
        columns=tuple(columns),
        heatmap_png=heatmap,
        ledger=ledger,
        tests=tests,
        notes=notes,
        association=association,
    )


# Quantiles of the real values that bin a number for association (numpy's own values of q).
_DECILES = [float(q) for q in np.linspace(0, 1, _ASSOCIATION_BINS + 1)[1:-1]]


def _missing_share(side: dict[str, Any], i: int) -> float:
    """NULL (and NaN) share of one side's column; an empty table has none."""
    rows = int(side["n_rows"])
    return int(side[f"missing_{i}"]) / rows if rows else 0.0


def _edges(histogram: dict[str, Any]) -> np.ndarray:
    """The bins the warehouse counted in (`report_sql.histograms`), as numpy builds them."""
    low, high = histogram["low"], histogram["high"]
    if histogram["integral"]:
        # Integers get one bin each, centred on the value, so no bin straddles two of them.
        return np.arange(np.floor(low) - 0.5, np.ceil(high) + 1.0)
    return np.linspace(low, high, _NUMERIC_BINS + 1)


def _numeric(name: str, histogram: dict[str, Any] | None, missing: list[float]) -> ColumnComparison:
    # No finite value on either side: one empty bin around zero, as a histogram of nothing.
    histogram = histogram or {"low": -0.5, "high": 0.5, "integral": True}
    edges = _edges(histogram)
    plotted = {side: np.zeros(len(edges) - 1) for side in ("real", "twin")}
    clipped = {side: np.zeros(len(edges) - 1) for side in ("real", "twin")}
    for side, clip, position, n in histogram.get("cells", []):
        if position >= 0:
            plotted[side][position] += n
        # The distance counts every value: tails beyond the plotted range go to the outer
        # bins (values clipped to the range, binned as numpy bins them).
        value = histogram["low"] if clip < 0 else histogram["high"] if clip > 0 else None
        clipped[side][position if value is None else _bin(value, edges)] += n
    real_hist = _shares(clipped["real"], missing[0])
    twin_hist = _shares(clipped["twin"], missing[1])
    return ColumnComparison(
        name=name,
        kind="numeric",
        tvd=0.5 * float(np.abs(real_hist - twin_hist).sum()),
        real_nulls=missing[0],
        twin_nulls=missing[1],
        png=report_plots.numeric_histogram(name, plotted["real"], plotted["twin"], edges),
    )


def _bin(value: float, edges: np.ndarray) -> int:
    """numpy.histogram's bin of `value` inside the edges: [e_k, e_k+1), the last one closed."""
    if value >= edges[-1]:
        return len(edges) - 2
    return int(np.searchsorted(edges, value, side="right")) - 1


def _shares(counts: np.ndarray, null_share: float) -> np.ndarray:
    shares = counts / counts.sum() * (1 - null_share) if counts.sum() else counts
    return np.r_[shares, null_share]


def _category(
    name: str, counts: dict[str, Any] | None, stats: dict[str, dict], missing: list[float]
) -> ColumnComparison:
    rows = [int(stats[side]["n_rows"]) for side in ("real", "twin")]
    counts = counts or {"labels": 0, "gap": 0, "top": []}
    top = counts["top"]
    labels = [label for label, _, _ in top]
    real_bars = [n / rows[0] if rows[0] else 0.0 for _, n, _ in top]
    twin_bars = [n / rows[1] if rows[1] else 0.0 for _, _, n in top]
    if counts["labels"] > len(top):
        labels.append("(other)")
        for bars, side, total in ((real_bars, 1, rows[0]), (twin_bars, 2, rows[1])):
            rest = total - sum(cell[side] for cell in top)
            bars.append(rest / total if total else 0.0)
    if rows[0] and rows[1]:
        tvd = 0.5 * counts["gap"] / (rows[0] * rows[1])
    else:  # one side empty: its shares are all zero
        tvd = 0.5 if any(rows) else 0.0
    return ColumnComparison(
        name=name,
        kind="category",
        tvd=tvd,
        real_nulls=missing[0],
        twin_nulls=missing[1],
        png=report_plots.category_bars(name, labels, np.array(real_bars), np.array(twin_bars)),
    )


def _association(
    pairs: dict[tuple[str, int, int], tuple[int, int, int, float]], side: str, columns: int
) -> np.ndarray:
    matrix = np.eye(columns)
    for a in range(columns):
        for b in range(a + 1, columns):
            matrix[a, b] = matrix[b, a] = _cramers_v(*pairs.get((side, a, b), (0, 0, 0, 0.0)))
    return matrix


def _cramers_v(n: int, rows: int, columns: int, s: float) -> float:
    """Cramér's V of a 2-way table with `n` counts over `rows` × `columns` codes, where
    s = Σ n_ij²/(n_i· n_·j): χ² = n(s − 1)."""
    if n == 0 or min(rows, columns) < 2:
        return 0.0
    return math.sqrt(max(s - 1.0, 0.0) / (min(rows, columns) - 1))
