"""The full privacy audit on real CPS1988: canaries, membership inference, accounting.

    PYTHONPATH=. python bench/audit/run_audit.py [--seeds 3] [--out bench/audit/results.json]

Canaries: k unique rows, extreme in wage and experience (beyond the real range) and otherwise
ordinary, are planted in the full table; at each ε the twin is searched for them and for near
copies (Hamming distance ≤ 1 on 7 binned quasi-identifiers). Membership: a twin is fitted on
`train` rows and the distance-to-closest-record attack tries to tell those rows from as many
held-out rows; a memorising "generator" (a bootstrap of the training rows) calibrates the attack.
Accounting: every twin's ledger entry is recomputed from its logged spends only.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np
import pandas as pd

from dbt_synth import synthesize
from dbt_synth.ledger import entry_for
from fixtures.privacy_attacks import (
    CATEGORICAL,
    NUMERIC,
    QuasiIdentifiers,
    canaries,
    distance_attack_auc,
    exact_copies,
    near_copies,
    recompute_epsilon,
)
from fixtures.real_data import cps1988

EPSILONS = (0.3, 1.0, 3.0, 10.0)
MECHANISMS = ("marginal", "dpsgd")


def _ledger_check(result, model: str) -> dict:
    entry = entry_for(
        result,
        model=model,
        source="cps1988",
        invocation_id=None,
        started_at=pd.Timestamp.now().to_pydatetime(),
        finished_at=pd.Timestamp.now().to_pydatetime(),
    )
    again = recompute_epsilon(entry.spends, entry.delta)
    return {
        "ledger_epsilon": entry.epsilon,
        "recomputed_opacus": again.epsilon_opacus,
        "recomputed_exact_zcdp": again.epsilon_exact_zcdp,
        "target": entry.target_epsilon,
    }


def _one(results, data, planted, qi, train, holdout, mechanism, epsilon, seed) -> None:
    """One canary twin and one membership twin at (mechanism, ε, seed)."""
    tag = {"mechanism": mechanism, "epsilon": epsilon}
    started = time.perf_counter()
    result = synthesize(data, epsilon=epsilon, seed=seed, mechanism=mechanism, model="canary")
    twin = result.table.to_pandas()
    results["canary"].append(
        {
            **tag,
            "seed": seed,
            "exact_copies": exact_copies(twin, planted),
            "near_copies": near_copies(twin, planted, qi).tolist(),
            "twin_wage_max": float(twin["wage"].max()),
            "twin_experience_max": float(twin["experience"].max()),
            "seconds": time.perf_counter() - started,
        }
    )
    results["accounting"].append({**tag, "seed": seed, **_ledger_check(result, "canary")})
    fitted = synthesize(
        train, epsilon=epsilon, seed=100 + seed, mechanism=mechanism, model="member"
    )
    auc = distance_attack_auc(train, holdout, fitted.table.to_pandas(), NUMERIC, CATEGORICAL)
    results["membership"].append({**tag, "seed": seed, "auc": auc})
    results["accounting"].append({**tag, "seed": 100 + seed, **_ledger_check(fitted, "member")})
    print(results["canary"][-1], results["membership"][-1], flush=True)


def run(seeds: int, k: int, train_rows: int) -> dict:
    real = cps1988()
    planted = canaries(k)
    qi = QuasiIdentifiers.of(real, NUMERIC, CATEGORICAL)
    data = pd.concat([real, planted], ignore_index=True)
    control = near_copies(data, planted, qi)
    results: dict = {"canary": [], "membership": [], "accounting": []}
    results["canary_detector_control"] = control.tolist()

    shuffled = real.sample(frac=1.0, random_state=0).reset_index(drop=True)
    train = shuffled.iloc[:train_rows]
    holdout = shuffled.iloc[train_rows : 2 * train_rows]
    memorised = train.sample(len(train), replace=True, random_state=1)
    results["membership_reference_bootstrap_auc"] = distance_attack_auc(
        train, holdout, memorised, NUMERIC, CATEGORICAL
    )
    for mechanism in MECHANISMS:
        for epsilon in EPSILONS:
            for seed in range(seeds):
                _one(results, data, planted, qi, train, holdout, mechanism, epsilon, seed)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--canaries", type=int, default=5)
    parser.add_argument("--train-rows", type=int, default=3000)
    parser.add_argument("--out", default="bench/audit/results.json")
    args = parser.parse_args()
    started = time.time()
    results = run(args.seeds, args.canaries, args.train_rows)
    results["conditions"] = {
        "seeds": args.seeds,
        "canaries": args.canaries,
        "train_rows": args.train_rows,
        "seconds": round(time.time() - started, 1),
        "load_average": os.getloadavg(),
        "machine": platform.platform(),
        "cpus": os.cpu_count(),
    }
    Path(args.out).write_text(json.dumps(results, indent=1, default=float))
    print(json.dumps(summary(results), indent=1))


def summary(results: dict) -> dict:
    """Per mechanism and ε: canary exposure, attack AUC, worst accounting gaps."""
    out = {}
    for mechanism in MECHANISMS:
        for epsilon in EPSILONS:

            def rows(kind, mechanism=mechanism, epsilon=epsilon):
                return [
                    r
                    for r in results[kind]
                    if r["epsilon"] == epsilon and r["mechanism"] == mechanism
                ]

            canary, ledger = rows("canary"), rows("accounting")
            member = [r["auc"] for r in rows("membership")]
            exact = [r["recomputed_exact_zcdp"] for r in ledger]
            out[f"{mechanism} {epsilon}"] = {
                "exact_copies": sum(r["exact_copies"] for r in canary),
                "near_copies": sum(sum(r["near_copies"]) for r in canary),
                "auc_mean": float(np.mean(member)),
                "auc_max": float(np.max(member)),
                "max_abs_gap_opacus": max(
                    abs(r["ledger_epsilon"] - r["recomputed_opacus"]) for r in ledger
                ),
                "max_gap_over_exact": None
                if None in exact
                else max(r["ledger_epsilon"] - e for r, e in zip(ledger, exact, strict=True)),
                "max_ledger_over_target": max(r["ledger_epsilon"] - r["target"] for r in ledger),
            }
    return out


if __name__ == "__main__":
    main()
