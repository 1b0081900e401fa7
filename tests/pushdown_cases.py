"""Sources and checks shared by the pushdown tests on DuckDB (test_pushdown.py) and Spark
(test_pushdown_spark.py): ordered columns with the values the key arithmetic must get right,
a recorder of the SQL sent to the engine, and the comparison of two fits' numeric domains."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pyarrow as pa

from dbt_synth.encoding import NumericModel
from dbt_synth.mechanisms.base import CodeCounts
from dbt_synth.pipeline import SynthResult
from dbt_synth.pushdown import Aggregates
from dbt_synth.pushdown_marginals import code_sql, marginal_counts

# Where an IEEE-754 key changes exponent or meets a special case.
EDGES = [
    0.0,
    5e-324,
    2.2250738585072014e-308,
    2.225073858507201e-308,
    0.25,
    0.5,
    1.0,
    2.0,
    4.0,
    2.0**52,
    2.0**53 + 2,
    -1e300,
    1e308,
    0.1,
    0.3,
    1 / 3,
    -7.25,
    float("nan"),
    float("inf"),
    float("-inf"),
]


def ordered_source(rows: int, seed: int = 1) -> pa.Table:
    """Doubles (normal, integral, 2-decimal prices, the EDGES), integers, dates and timestamps,
    each with about 5% NULLs."""
    rng = np.random.default_rng(seed)
    quarter = rows // 4
    edges = np.tile(EDGES, 5)
    doubles = np.r_[
        rng.normal(0, 1e3, quarter),
        rng.integers(-50, 50, quarter),
        np.round(rng.lognormal(0, 3, quarter), 2),
        edges,
        rng.uniform(-1, 1, rows - 3 * quarter - len(edges)),
    ]
    rng.shuffle(doubles)

    def nulls() -> np.ndarray:
        return rng.random(rows) < 0.05

    return pa.table(
        {
            "x": pa.array(doubles, mask=nulls()),
            "price": pa.array(np.round(rng.lognormal(3, 1, rows), 2), mask=nulls()),
            "n": pa.array(rng.integers(-(10**6), 10**6, rows), mask=nulls()),
            "day": pa.array(
                rng.integers(-20_000, 20_000, rows).astype(np.int32), mask=nulls()
            ).cast(pa.date32()),
            "at": pa.array(rng.integers(-(10**15), 10**15, rows), mask=nulls()).cast(
                pa.timestamp("us", tz="UTC")
            ),
        }
    )


def recorded_queries(run: Callable[[str], pa.Table], dialect: str) -> tuple[list[str], Aggregates]:
    """`Aggregates` over `run` that keeps every query it is given, in order."""
    queries: list[str] = []

    def recorded(query: str) -> pa.Table:
        queries.append(query)
        return run(query)

    return queries, Aggregates(recorded, dialect)


def same_numeric_domains(first: SynthResult, second: SynthResult) -> None:
    """Both fits released the same numeric domains, at the same cost."""
    assert [s.rdp.tolist() for s in first.spends] == [s.rdp.tolist() for s in second.spends]
    pairs = list(zip(first.generator.models, second.generator.models, strict=True))
    numeric = [(a, b) for a, b in pairs if isinstance(a, NumericModel)]
    assert numeric and all(isinstance(b, NumericModel) for _, b in numeric)
    for a, b in numeric:
        one, two = a.domain, b.domain
        assert one.specials == two.specials, a.spec.name
        assert one.decimals == two.decimals, a.spec.name
        for field in ("special_counts", "low", "high", "mass", "bin_of_leaf"):
            assert getattr(one, field).tolist() == getattr(two, field).tolist(), (
                a.spec.name,
                field,
            )
        assert one.bin_count > 1, a.spec.name


# Strings a SQL literal must carry exactly: a quote, a backslash, non-ASCII, the empty string.
AWKWARD = ["oslo", "it's", "back\\slash", "ünï", ""]


def coded_source(rows: int, seed: int = 2) -> pa.Table:
    """Every kind of modelled column whose codes have a SQL form, with their NULLs: doubles with
    NaN and ±inf common enough to keep (`x`) and too rare to keep (`y`: modelled as the middle
    bin), awkward strings plus values too rare to reveal (`other`), booleans, integers, dates
    and timestamps."""
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 10, rows)
    x[: rows // 20] = np.nan
    x[rows // 20 : rows // 10] = np.inf
    x[rows // 10 : rows // 10 + rows // 25] = -np.inf
    y = np.round(rng.lognormal(2, 1, rows), 2)
    y[:2], y[2:4], y[4] = np.nan, np.inf, -np.inf
    rare = [f"rare{i}" for i in range(rows // 40)]
    city = rng.choice(AWKWARD, rows, p=[0.3, 0.2, 0.2, 0.1, 0.2]).astype(object)
    city[-len(rare) :] = rare  # each once: never revealed, all coded `other`
    order = rng.permutation(rows)

    def nulls(share: float = 0.05) -> np.ndarray:
        return rng.random(rows) < share

    return pa.table(
        {
            "x": pa.array(x[order], mask=nulls()),
            "y": pa.array(y[order], mask=nulls()),
            "city": pa.array(city[order].tolist(), pa.string(), mask=nulls(0.1)),
            "flag": pa.array(rng.random(rows) < 0.3, mask=nulls(0.1)),
            "k": pa.array(rng.integers(-3, 40, rows), mask=nulls()),
            "day": pa.array(rng.integers(-500, 3000, rows).astype(np.int32), mask=nulls()).cast(
                pa.date32()
            ),
            "at": pa.array(rng.integers(0, 10**15, rows), mask=nulls()).cast(
                pa.timestamp("us", tz="UTC")
            ),
        }
    )


def same_code_counts(result: SynthResult, source: pa.Table, aggregates: Aggregates) -> int:
    """The engine's 1- and 2-way code counts over `source` are those the driver counts from
    `encode` with the fitted result's models, count for count; returns how many columns."""
    models = [m for m in result.generator.models if m.modelled]
    codes = [code_sql(m, aggregates.dialect) for m in models]
    assert all(c is not None for c in codes), [m.spec.name for m in models]
    engine = marginal_counts(aggregates, codes)
    driver = CodeCounts.of_codes(
        np.column_stack([m.encode(source.column(m.spec.name)) for m in models]),
        tuple(m.cardinality for m in models),
    )
    for j, model in enumerate(models):
        assert engine.singles[j].tolist() == driver.singles[j].tolist(), model.spec.name
    assert engine.pairs.keys() == driver.pairs.keys()
    for pair, joint in driver.pairs.items():
        assert engine.pairs[pair].tolist() == joint.tolist(), pair
    return len(models)
