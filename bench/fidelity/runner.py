"""Run the fidelity benchmark: every arm as its own process, one at a time, scored by one module.

    python -m bench.fidelity.runner [--quick] [--datasets cps1988 loans] [--epsilons 0.3 1 3]

Arms exchange nothing but files: the shared `train.parquet`/`spec.json` in, `synthetic.parquet`
and `stats.json` out. Each arm process runs under `nice -n 10` with a wall-clock cap; its peak RSS
comes from the kernel (`wait4`), so imports and the framework (torch, jax) count too. Results are
merged into `bench/fidelity/results.json` (key: dataset, arm, ε) and the table in
`bench/RESULTS.md` is rewritten from all results, so the benchmark can be widened run by run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from bench.fidelity.data import Dataset, prepare
from bench.fidelity.metrics import fidelity, utility_auc
from bench.fidelity.report import write_section
from bench.fidelity.scorebins import decode, prepare_binned

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "bench" / "out" / "fidelity"
RESULTS = Path(__file__).with_name("results.json")
SMARTNOISE_PYTHON = ROOT / "bench" / ".venv-smartnoise" / "bin" / "python"
DELTA = 1e-5
_PROBE_DPSGD = "import importlib.util as u; print(bool(u.find_spec('dbt_synth.mechanisms.dpsgd')))"


@dataclass(frozen=True)
class Arm:
    """One generator setting and the command line that runs it."""

    name: str
    family: str  # "ours" | "smartnoise"
    args: tuple[str, ...]
    # Fits on the train table cut at the scorer's bins, every column a category (scorebins.py).
    binned: bool = False


ARMS = {
    "ours-marginal": Arm("ours-marginal", "ours", ("--mechanism", "marginal")),
    "ours-marginal-dpdomains": Arm(
        "ours-marginal-dpdomains", "ours", ("--mechanism", "marginal", "--domains", "dp")
    ),
    "ours-dpsgd": Arm("ours-dpsgd", "ours", ("--mechanism", "dpsgd")),
    "ours-dpsgd-dpdomains": Arm(
        "ours-dpsgd-dpdomains", "ours", ("--mechanism", "dpsgd", "--domains", "dp")
    ),
    "aim": Arm("aim", "smartnoise", ("--arm", "aim")),
    "aim-qbins": Arm("aim-qbins", "smartnoise", ("--arm", "aim", "--bins", "quantile")),
    "mst": Arm("mst", "smartnoise", ("--arm", "mst")),
    "mst-qbins": Arm("mst-qbins", "smartnoise", ("--arm", "mst", "--bins", "quantile")),
    "dpctgan": Arm("dpctgan", "smartnoise", ("--arm", "dpctgan")),
    "aim-scorebins": Arm("aim-scorebins", "smartnoise", ("--arm", "aim"), binned=True),
    "mst-scorebins": Arm("mst-scorebins", "smartnoise", ("--arm", "mst"), binned=True),
    "ours-marginal-scorebins": Arm(
        "ours-marginal-scorebins", "ours", ("--mechanism", "marginal"), binned=True
    ),
}
FULL_ARMS = tuple(ARMS)
QUICK_ARMS = ("ours-marginal", "mst")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="CPS1988, 2,000 rows, ε=1, 2 arms")
    parser.add_argument("--datasets", nargs="+", default=["cps1988", "loans"])
    parser.add_argument("--epsilons", nargs="+", type=float, default=[0.3, 1.0, 3.0])
    parser.add_argument("--arms", nargs="+", choices=list(ARMS), default=None)
    parser.add_argument("--cap", type=float, default=1800.0, help="wall-clock cap per run, s")
    parser.add_argument(
        "--seeds",
        nargs="+",
        type=int,
        default=[0],
        help="seed 0 fills the table; others are stored as `…|seedN` for the seed-spread table",
    )
    parser.add_argument("--ours-python", default=os.environ.get("BENCH_PYTHON"))
    parser.add_argument(
        "--ours-path", default=str(ROOT), help="the dbt_synth source tree the ours arms import"
    )
    parser.add_argument("--no-report", action="store_true", help="do not touch bench/RESULTS.md")
    parser.add_argument(
        "--results",
        type=Path,
        default=None,
        help="merge into this json (trial runs), not results.json",
    )
    args = parser.parse_args()

    quick = args.quick
    datasets = ["cps1988"] if quick else args.datasets
    epsilons = [1.0] if quick else args.epsilons
    arms = [ARMS[a] for a in (args.arms or (QUICK_ARMS if quick else FULL_ARMS))]
    ours_python = args.ours_python or _default_python()
    results_path = args.results or (OUT / "quick-results.json" if quick else RESULTS)

    for name in datasets:
        data_dir = OUT / "data" / (f"{name}-quick" if quick else name)
        dataset = prepare(name, data_dir, train_rows=2000 if quick else None)
        train = pd.read_parquet(data_dir / "train.parquet")
        holdout = pd.read_parquet(data_dir / "holdout.parquet")
        baseline = _score_real(dataset, train, holdout)
        binned_dir = data_dir.with_name(f"{data_dir.name}-scorebins")
        binned = None
        if any(arm.binned for arm in arms):
            binned = prepare_binned(dataset, train, holdout, binned_dir)
        for epsilon in epsilons:
            for arm, seed in [(arm, seed) for arm in arms for seed in args.seeds]:
                skip = _skip_reason(arm, ours_python, args.ours_path)
                key = f"{name}|{arm.name}|{epsilon:g}" + (f"|seed{seed}" if seed else "")
                if skip:
                    print(f"[{key}] skipped: {skip}", flush=True)
                    record = _record(name, arm, epsilon, seed, status="skipped", note=skip)
                else:
                    record = _run_arm(
                        arm,
                        dataset,
                        binned_dir if arm.binned else data_dir,
                        train,
                        holdout,
                        binned if arm.binned else None,
                        epsilon,
                        seed=seed,
                        cap=args.cap,
                        ours_python=ours_python,
                        ours_path=args.ours_path,
                    )
                record["auc_real"] = baseline
                _merge(results_path, key, record)
                print(f"[{key}] {_summary(record)}", flush=True)
    if not args.no_report and not quick and not args.results:
        write_section(ROOT / "bench" / "RESULTS.md", json.loads(results_path.read_text()))
    if quick:
        _print_quick(json.loads(results_path.read_text()))


def _merge(path: Path, key: str, record: dict) -> None:
    """Write one result into the file as it is now, so that runners side by side keep each
    other's results (a runner holding the whole table from its start would not)."""
    results = json.loads(path.read_text()) if path.exists() else {}
    results[key] = record
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.with_suffix(".tmp")
    staging.write_text(json.dumps(results, indent=1, sort_keys=True))
    staging.replace(path)


def _default_python() -> str:
    venv = ROOT / ".venv" / "bin" / "python"
    return str(venv) if venv.exists() else sys.executable


def _skip_reason(arm: Arm, ours_python: str, ours_path: str) -> str | None:
    if arm.family == "smartnoise" and not SMARTNOISE_PYTHON.exists():
        return "bench/.venv-smartnoise missing: run bench/fidelity/setup_smartnoise.sh"
    if arm.name.startswith("ours-dpsgd"):
        probe = subprocess.run(
            [ours_python, "-c", _PROBE_DPSGD],
            env={**os.environ, "PYTHONPATH": ours_path},
            cwd=ours_path,  # `python -c` puts the working directory first on sys.path
            capture_output=True,
            text=True,
            check=False,
        )
        if probe.stdout.strip() != "True":
            return "dbt_synth.mechanisms.dpsgd does not exist in this tree yet"
    return None


def _run_arm(
    arm: Arm,
    dataset: Dataset,
    data_dir: Path,
    train: pd.DataFrame,
    holdout: pd.DataFrame,
    binned: tuple[pd.DataFrame, dict[str, np.ndarray]] | None,
    epsilon: float,
    *,
    seed: int,
    cap: float,
    ours_python: str,
    ours_path: str,
) -> dict:
    out = (
        OUT
        / "runs"
        / dataset.name
        / (f"{arm.name}-eps{epsilon:g}" + (f"-seed{seed}" if seed else ""))
    )
    for stale in ("synthetic.parquet", "stats.json"):
        (out / stale).unlink(missing_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    if arm.family == "ours":
        python, script = ours_python, "arm_ours.py"
        env = {**os.environ, "PYTHONPATH": ours_path}
    else:
        python, script = str(SMARTNOISE_PYTHON), "arm_smartnoise.py"
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    command = [
        "nice", "-n", "10", python, str(Path(__file__).with_name(script)), *arm.args,
        "--data", str(data_dir), "--epsilon", str(epsilon), "--delta", str(DELTA),
        "--seed", str(seed), "--out", str(out),
    ]  # fmt: skip
    print(f"[{dataset.name}|{arm.name}|{epsilon:g}] running (cap {cap:.0f} s)", flush=True)
    load = os.getloadavg()
    started = time.perf_counter()
    with open(out / "log.txt", "w") as log:
        process = subprocess.Popen(
            command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        status, peak_kb, cpu_s, timed_out = _wait(process, cap)
    wall = time.perf_counter() - started
    record = _record(dataset.name, arm, epsilon, seed, status="ok")
    record.update(
        wall_s=wall,
        peak_rss_mb=peak_kb / 1024,
        cpu_s=cpu_s,
        load_before=list(load),
        load_after=list(os.getloadavg()),
    )
    if timed_out:
        progress = _progress(out / "log.txt", epsilon)
        note = f"did not finish in {cap / 60:.0f} min" + (f"; {progress}" if progress else "")
        record.update(status="dnf", note=note)
        return record
    if status != 0 or not (out / "synthetic.parquet").exists():
        tail = (out / "log.txt").read_text().strip().splitlines()[-3:]
        record.update(status="failed", note=" | ".join(tail)[-300:])
        return record
    stats = json.loads((out / "stats.json").read_text())
    synthetic = pd.read_parquet(out / "synthetic.parquet")
    categorical = set(dataset.categorical)
    if binned is not None:
        # Scored on the bins themselves (the same cells the scorer cuts numerics into); the AUC
        # model sees the bins decoded back to values.
        binned_train, edges = binned
        scores = fidelity(binned_train, synthetic, set(train.columns))
        integer = {c.name for c in dataset.columns if c.integer}
        synthetic = decode(synthetic, edges, integer, seed)
    else:
        scores = fidelity(train, synthetic, categorical)
    record.update(
        fit_s=stats["fit_s"],
        sample_s=stats["sample_s"],
        epsilon_spent=stats["epsilon_spent"],
        tvd_1way=scores.tvd_1way,
        tvd_2way=scores.tvd_2way,
        tvd_per_column=scores.per_column,
        auc=utility_auc(synthetic, holdout, **_task(dataset)),
        treatments=stats.get("columns"),
    )
    return record


def _progress(log: Path, epsilon: float) -> str | None:
    """How far a smartnoise run got: AIM's rounds, marginals and budget, or DP-CTGAN's epochs.

    AIM first measures every 1-way marginal ("Initial Sigma"), then prints one line per round
    ("Selected (…) Size n Budget Used f", f the share of its zCDP ρ); lines carry the seconds
    since the arm started (`arm_smartnoise._Stamped`).
    """
    raw = log.read_text(errors="replace").splitlines()
    lines = [_unstamped(line) for line in raw]
    budget = [line for line in lines if "Budget Used" in line]
    if budget:
        used = float(budget[-1].rsplit("Budget Used", 1)[1])
        rho = cdp_rho(epsilon, DELTA)
        at = _stamp(next(line for line in reversed(raw) if "Budget Used" in line))
        pairs = sum(line.split(" Size ", 1)[0].count("'col") == 2 for line in budget)
        return (
            f"{len(budget)} AIM rounds after its 1-way measurements ({pairs} of them 2-way "
            f"marginals), {used:.1%} of its ρ used = ε {cdp_epsilon(used * rho, DELTA):.3f} "
            f"of {epsilon:g}" + (f"; last round at {at:.0f} s" if at is not None else "")
        )
    if any(line.startswith("Initial Sigma") for line in lines):
        return "AIM measured the 1-way marginals and was still fitting its first model"
    epochs = [line for line in lines if line.startswith("epsilon is")]
    if epochs:
        reached = float(epochs[-1].split()[2].rstrip(","))
        return f"{len(epochs)} DP-CTGAN epochs, ε {reached:.2f} reached"
    return None


def _unstamped(line: str) -> str:
    return line.split("] ", 1)[1] if line.startswith("[") and "] " in line else line


def _stamp(line: str) -> float | None:
    """The seconds a stamped line was written at (None for an unstamped one)."""
    try:
        return float(line[1:].split(" s]", 1)[0]) if line.startswith("[") else None
    except ValueError:
        return None


def cdp_epsilon(rho: float, delta: float) -> float:
    """ε of ρ-zCDP at δ (Canonne, Kamath, Steinke 2020, Prop. 7), as smartnoise converts."""
    if rho <= 0:
        return 0.0
    alphas = np.geomspace(1.0001, 1e5, 20_000)
    values = alphas * rho + (
        np.log(1 / delta) + (alphas - 1) * np.log1p(-1 / alphas) - np.log(alphas)
    ) / (alphas - 1)
    return float(max(values.min(), 0.0))


def cdp_rho(epsilon: float, delta: float) -> float:
    """The ρ whose `cdp_epsilon` is `epsilon` (bisection): AIM's whole budget."""
    low, high = 0.0, max(epsilon, 1.0)
    for _ in range(100):
        mid = (low + high) / 2
        low, high = (mid, high) if cdp_epsilon(mid, delta) <= epsilon else (low, mid)
    return low


def _wait(process: subprocess.Popen, cap: float) -> tuple[int, int, float, bool]:
    """Exit status, peak RSS (KiB) and CPU seconds of the child, and whether the cap killed it.

    CPU seconds (user + system, imports included) are what a shared machine distorts least.
    """
    deadline = time.monotonic() + cap
    while True:
        pid, status, usage = os.wait4(process.pid, os.WNOHANG)
        if pid:
            process.returncode = os.waitstatus_to_exitcode(status)
            cpu = usage.ru_utime + usage.ru_stime
            return process.returncode, usage.ru_maxrss, cpu, False
        if time.monotonic() > deadline:
            os.killpg(process.pid, signal.SIGKILL)
            _, status, usage = os.wait4(process.pid, 0)
            process.returncode = -9
            return -9, usage.ru_maxrss, usage.ru_utime + usage.ru_stime, True
        time.sleep(0.5)


def _task(dataset: Dataset) -> dict:
    return {
        "target": dataset.task.column,
        "threshold": dataset.task.threshold,
        "drop": dataset.task.drop,
        "categorical": set(dataset.categorical),
        "categories": {c.name: list(c.categories) for c in dataset.columns if c.categories},
    }


def _score_real(dataset: Dataset, train: pd.DataFrame, holdout: pd.DataFrame) -> float:
    return utility_auc(train, holdout, **_task(dataset))


def _record(
    dataset: str, arm: Arm, epsilon: float, seed: int, *, status: str, note: str = ""
) -> dict:
    return {
        "dataset": dataset,
        "arm": arm.name,
        "epsilon": epsilon,
        "seed": seed,
        "delta": DELTA,
        "status": status,
        "note": note,
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores",
    }


def _summary(record: dict) -> str:
    if record["status"] != "ok":
        return f"{record['status']}: {record['note']}"
    return (
        f"tvd1 {record['tvd_1way']:.4f} tvd2 {record['tvd_2way']:.4f} auc {record['auc']:.4f} "
        f"(real {record['auc_real']:.4f}) fit {record['fit_s']:.1f}s "
        f"rss {record['peak_rss_mb']:.0f}MB"
    )


def _print_quick(results: dict) -> None:
    print("\nquick run (CPS1988, 2,000 train rows, ε=1):")
    for key, record in sorted(results.items()):
        print(f"  {key:40s} {_summary(record)}")


if __name__ == "__main__":
    main()
