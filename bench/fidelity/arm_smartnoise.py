"""One smartnoise-synth run (AIM, MST or DP-CTGAN), in smartnoise's own virtualenv.

Runs as a subprocess of `runner.py` under `bench/.venv-smartnoise/bin/python`; it imports nothing
from this repository (smartnoise brings its own opacus and jax, which must never meet ours).
Reads the shared train parquet and spec.json, writes the synthetic parquet and a stats json.

Domains, as for every arm, are public (category lists, numeric min/max from spec.json, 0 ε), so
all of ε and δ go to the synthesizer. AIM and MST need discrete columns: numerics go through
smartnoise's own `BinTransformer` (its `cube` style default of 20 equal-width bins over the public
bounds); DP-CTGAN gets its `gan` style (min-max scaling and one-hot categories).

`--bins quantile` is a variant generous to AIM/MST: numerics are cut at 20 quantiles of the real
train data *given to them for free* (not DP) and decoded uniformly inside a bin, so that their
scores are not an artefact of equal-width bins over skewed columns.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from snsynth import Synthesizer
from snsynth.transform import (
    BinTransformer,
    ChainTransformer,
    LabelTransformer,
    MinMaxTransformer,
    OneHotEncoder,
    TableTransformer,
)

CUBE_BINS = 20


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--arm", choices=["aim", "mst", "dpctgan"], required=True)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--epsilon", type=float, required=True)
    parser.add_argument("--delta", type=float, required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--bins", choices=["cube", "quantile"], default="cube")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()

    # Line by line and stamped with seconds since the start: a run killed at its cap (SIGKILL)
    # loses a block-buffered tail, and the runner reads how far AIM got from the last lines.
    sys.stdout = _Stamped(sys.stdout)
    np.random.seed(args.seed)
    try:
        import torch

        torch.manual_seed(args.seed)
    except ImportError:
        pass
    spec = json.loads((args.data / "spec.json").read_text())
    train = _with_none(pd.read_parquet(args.data / "train.parquet"), spec)
    edges = _quantile_edges(train, spec) if args.bins == "quantile" else {}
    for name, cuts in edges.items():
        train[name] = _to_bins(train[name], cuts)
    transformer = TableTransformer(
        [_transformer(c, args.arm, c["name"] in edges) for c in spec["columns"]]
    )
    synth = Synthesizer.create(args.arm, **_settings(args))

    started = time.perf_counter()
    synth.fit(train, transformer=transformer, preprocessor_eps=0.0)
    fit_s = time.perf_counter() - started
    started = time.perf_counter()
    twin = synth.sample(len(train))
    sample_s = time.perf_counter() - started

    twin = pd.DataFrame(twin, columns=train.columns) if not isinstance(twin, pd.DataFrame) else twin
    rng = np.random.default_rng(args.seed)
    integer = {c["name"] for c in spec["columns"] if c.get("integer")}
    for name, cuts in edges.items():
        twin[name] = _from_bins(twin[name], cuts, rng, integer=name in integer)
    for column in spec["columns"]:
        name = column["name"]
        if column["kind"] == "numeric":
            twin[name] = pd.to_numeric(twin[name], errors="coerce").astype(float)
        else:
            twin[name] = twin[name].map(str, na_action="ignore").astype(object)
    args.out.mkdir(parents=True, exist_ok=True)
    twin.to_parquet(args.out / "synthetic.parquet", index=False)
    stats = {"fit_s": fit_s, "sample_s": sample_s, "epsilon_spent": args.epsilon}
    (args.out / "stats.json").write_text(json.dumps(stats))


class _Stamped:
    """A stdout that prefixes each line with `[elapsed s]` and flushes it at once."""

    def __init__(self, stream) -> None:
        self._stream = stream
        self._started = time.perf_counter()
        self._line_start = True

    def write(self, text: str) -> int:
        for part in text.splitlines(keepends=True):
            if self._line_start:
                self._stream.write(f"[{time.perf_counter() - self._started:7.1f} s] ")
            self._stream.write(part)
            self._line_start = part.endswith("\n")
        self._stream.flush()
        return len(text)

    def flush(self) -> None:
        self._stream.flush()


def _settings(args: argparse.Namespace) -> dict:
    # verbose: AIM prints the budget used per round and DP-CTGAN the ε per epoch, which the
    # runner quotes when a run hits its cap.
    if args.arm == "dpctgan":
        # smartnoise's defaults (sigma 5, batch 500, up to 300 epochs, stops at ε); CPU only.
        return {"epsilon": args.epsilon, "delta": args.delta, "cuda": False, "verbose": True}
    if args.arm == "aim":
        return {"epsilon": args.epsilon, "delta": args.delta, "verbose": True}
    return {"epsilon": args.epsilon, "delta": args.delta}


def _with_none(table: pd.DataFrame, spec: dict) -> pd.DataFrame:
    """smartnoise's label encoder knows None as NULL, not pandas' NaN."""
    table = table.copy()
    for column in spec["columns"]:
        if column["kind"] == "categorical":
            values = table[column["name"]].map(str, na_action="ignore").astype(object)
            table[column["name"]] = values.where(values.notna(), None)
    return table


def _quantile_edges(train: pd.DataFrame, spec: dict) -> dict[str, np.ndarray]:
    return {
        c["name"]: np.unique(
            np.quantile(train[c["name"]].dropna().to_numpy(float), np.linspace(0, 1, CUBE_BINS + 1))
        )
        for c in spec["columns"]
        if c["kind"] == "numeric"
    }


def _to_bins(values: pd.Series, edges: np.ndarray) -> pd.Series:
    codes = np.searchsorted(edges[1:-1], values.to_numpy(float), side="right").astype(object)
    codes[values.isna().to_numpy()] = None
    return pd.Series(codes, index=values.index, dtype=object)


def _from_bins(
    codes: pd.Series, edges: np.ndarray, rng: np.random.Generator, *, integer: bool
) -> pd.Series:
    """Bin index back to a value drawn uniformly inside the bin [low, high) (last: [low, high]).

    Integer columns draw integers, so a bin [12, 13) gives 12 only, as the real data had.
    """
    index = pd.to_numeric(codes, errors="coerce").to_numpy(float)
    known = ~np.isnan(index)
    last = max(len(edges) - 2, 0)
    bins = np.clip(np.nan_to_num(index).astype(int), 0, last)
    low, high = edges[bins], edges[np.minimum(bins + 1, len(edges) - 1)]
    if integer:
        values = np.floor(rng.uniform(low, np.where(bins == last, high + 1, high)))
        values = np.minimum(values, np.where(bins == last, high, np.maximum(high - 1, low)))
    else:
        values = rng.uniform(low, high)
    return pd.Series(np.where(known, values, np.nan), index=codes.index)


def _transformer(column: dict, arm: str, prebinned: bool = False):
    nullable = bool(column["nullable"])
    if prebinned:
        return LabelTransformer(nullable=nullable)
    if column["kind"] == "categorical":
        label = LabelTransformer(nullable=nullable)
        return label if arm in ("aim", "mst") else ChainTransformer([label, OneHotEncoder()])
    lower, upper = float(column["min"]), float(column["max"])
    upper = upper if upper > lower else lower + 1.0  # a constant column still needs a width
    if arm in ("aim", "mst"):
        return BinTransformer(bins=CUBE_BINS, lower=lower, upper=upper, nullable=nullable)
    return MinMaxTransformer(lower=lower, upper=upper, nullable=nullable)


if __name__ == "__main__":
    main()
