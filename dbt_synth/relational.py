"""Child twins whose foreign keys exist in their parents' twins.

A child (flights) is twinned after its parents (airlines, planes, airports, weather). Each
foreign key is handled in one of two modes:

* `attributes` — the child is fitted together with the *real* parent's attributes joined on
  the key (e.g. planes.seats next to each flight) and a public 3-state column (parent / NULL /
  orphan). Every synthetic child row thus carries synthetic parent attributes; it is attached to
  a parent-twin key whose attributes fall in the same bins, with each parent-twin row given a
  child capacity drawn from a DP histogram of children per parent. Child attributes that depend
  on the parent (long flights on big planes) survive, and so does the children-per-parent shape.
* `category` — for a parent with nothing to condition on (airlines: a code and a name) the key
  column is modelled as an ordinary DP category of the child, jointly with the other columns
  (carrier × dep_delay), and the DP-kept values are mapped one-to-one onto parent-twin keys.

The twin is referentially clean by default: real orphans (child keys with no parent) are
attached to parent-twin keys. `orphans: reproduce` keeps the learned orphan rate instead, with
fresh keys that no parent twin holds. Everything here is DP: the joined fit spends through the
ordinary pipeline, the cardinality histograms through their own Gaussian releases, composed.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from dbt_synth.accounting import PrivacyAccountant, gaussian_sigma
from dbt_synth.errors import ConfigError, SourceError, SynthError
from dbt_synth.noise import NoiseSource, sampling_seed
from dbt_synth.pipeline import ColumnReport, SynthResult, schema_of, synthesize
from dbt_synth.schema import TableSchema

MODES = ("auto", "attributes", "category")
ORPHAN_POLICIES = ("clean", "reproduce")
PRIVACY_UNITS = ("row", "parent")
_STATE = "__fk_state__"
_STATES = ("parent", "null", "orphan")
# Share of the child's ε spent on the children-per-parent histograms (all FKs together).
_CARDINALITY_SHARE = 0.1
# Share of δ given to those histograms' (ε, δ) conversion.
_CARDINALITY_DELTA_SHARE = 0.1
_SIGNATURE_BINS = 4
_RELATIONAL_KEYS = (
    "foreign_keys",
    "privacy_unit",
    "max_children",
    "orphans",
    "cardinality_share",
    "manifest_path",
    "discover",
)


@dataclass(frozen=True)
class ForeignKey:
    """Child `columns` reference `parent_columns` of the twin model `parent`."""

    columns: tuple[str, ...]
    parent: str
    parent_columns: tuple[str, ...]
    attributes: tuple[str, ...] | None = None
    mode: str = "auto"
    origin: str = "config"

    @property
    def name(self) -> str:
        return "__".join(self.columns)


@dataclass(frozen=True)
class RelationalConfig:
    """The relational part of a child's `synth` config; the rest goes to `parse_config`."""

    foreign_keys: tuple[ForeignKey, ...] = ()
    privacy_unit: str = "row"
    max_children: int | None = None
    orphans: str = "clean"
    cardinality_share: float = _CARDINALITY_SHARE
    manifest_path: str | None = None
    discover: bool = True


@dataclass(frozen=True)
class ParentData:
    """A parent as the child sees it: its twin (keys to draw), its source (attributes to learn)."""

    twin: pa.Table
    source: pa.Table | None = None


@dataclass(frozen=True)
class Cardinality:
    """DP histogram of children per parent for one FK, in `edges` bins (last bin open).

    Most bins of the fixed scale are empty; see `probabilities` for how noise is handled.
    """

    edges: tuple[int, ...]
    noisy: tuple[float, ...]
    sigma: float

    def probabilities(self, parents: int, children: int) -> np.ndarray:
        """Bin weights for a parent twin of `parents` rows that must take `children` children.

        Post-processing of the DP histogram only. The share of childless parents comes from bin
        0 over the parent twin's size (0 if bin 0 is under 3σ). Among the other bins, those
        up to the last bin above 3σ keep their clipped noisy counts and the tail beyond is
        taken as empty; with no bin above 3σ all clipped counts are used, and if
        those are all zero every parent with children gets the mean (children over parents
        with children). The highest bins are then dropped while they would make the
        expected total exceed 1.5× the children to place (noise in an empty top bin would
        otherwise give a few parents 10^5 children each).
        """
        counts = np.asarray(self.noisy, dtype=float)
        edges = np.asarray(self.edges)
        middles = (edges + np.asarray([*self.edges[1:], self.edges[-1] * 2])) / 2
        parents = max(parents, 1)
        childless = float(np.clip(counts[0] / parents, 0.0, 1.0 - 1.0 / parents))
        if counts[0] < 3.0 * self.sigma:
            childless = 0.0
        if children == 0:
            childless = 1.0
        rest = counts[1:]
        strong = np.flatnonzero(rest >= 3.0 * self.sigma)
        weights = np.clip(rest, 0.0, None)
        if len(strong):
            # Children counts have a contiguous support from 1 up: bins up to the last strong
            # bin keep their (clipped) noisy counts, the empty tail beyond is dropped.
            inside = np.zeros_like(rest, dtype=bool)
            inside[: strong[-1] + 1] = True
            weights = np.where(inside, weights, 0.0)
        if weights.sum() <= 0:
            mean = children / max(parents * (1.0 - childless), 1.0)
            weights = np.zeros_like(rest)
            weights[int(np.clip(np.searchsorted(edges[1:], mean, side="right") - 1, 0, None))] = 1
        while np.count_nonzero(weights) > 1:
            share = weights / weights.sum()
            expected = parents * (1.0 - childless) * float(share @ middles[1:])
            if expected <= 1.5 * children:
                break
            weights[np.flatnonzero(weights)[-1]] = 0.0
        return np.r_[childless, (1.0 - childless) * weights / weights.sum()]

    def sample(self, parents: int, rng: np.random.Generator, children: int) -> np.ndarray:
        """Children counts for `parents` parents: a bin by its DP weight, uniform inside it."""
        bins = rng.choice(len(self.edges), size=parents, p=self.probabilities(parents, children))
        low = np.asarray(self.edges)[bins]
        high = np.asarray([*self.edges[1:], self.edges[-1] * 2])[bins]
        return rng.integers(low, np.maximum(high, low + 1))


@dataclass(frozen=True)
class KeyReport:
    """How one FK was twinned, for the ledger and tests."""

    name: str
    parent: str
    mode: str
    attributes: tuple[str, ...]
    cardinality: Cardinality | None
    orphan_rate: float
    null_rate: float
    implied_by: str | None = None
    mapping: dict[Any, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ChildResult:
    """A child twin, its pipeline result (ε composed over all parts) and per-FK reports."""

    result: SynthResult
    keys: tuple[KeyReport, ...]
    privacy_unit: str


def split_config(
    raw: dict[str, Any] | None, *, model: str
) -> tuple[RelationalConfig, dict[str, Any]]:
    """Separate the relational keys of a `synth` dict from the single-table ones."""
    raw = dict(raw or {})
    mine = {k: raw.pop(k) for k in _RELATIONAL_KEYS if k in raw}
    keys = tuple(_parse_key(item, model) for item in mine.pop("foreign_keys", None) or ())
    config = RelationalConfig(foreign_keys=keys, **mine)
    if config.privacy_unit not in PRIVACY_UNITS:
        raise ConfigError(
            f"privacy_unit '{config.privacy_unit}' is not one of {list(PRIVACY_UNITS)}",
            fix="use row (each child row) or parent (a parent with all its children, with "
            "max_children set)",
            model=model,
        )
    if config.privacy_unit == "parent" and not (
        isinstance(config.max_children, int) and config.max_children >= 1
    ):
        raise ConfigError(
            "privacy_unit: parent needs a cap on children per parent",
            fix="set synth.max_children to a positive integer, e.g. 50",
            model=model,
        )
    if config.orphans not in ORPHAN_POLICIES:
        raise ConfigError(
            f"orphans '{config.orphans}' is not one of {list(ORPHAN_POLICIES)}",
            fix="use clean (default: every twin key exists in the parent twin) or reproduce",
            model=model,
        )
    if not 0 < config.cardinality_share < 1:
        raise ConfigError(
            f"cardinality_share must be in (0, 1), got {config.cardinality_share!r}",
            fix="leave it at the default 0.1",
            model=model,
        )
    return config, raw


def _parse_key(item: Any, model: str) -> ForeignKey:
    if not isinstance(item, dict) or "parent" not in item or "columns" not in item:
        raise ConfigError(
            f"foreign key {item!r} needs columns and parent",
            fix="write foreign_keys: [{columns: [carrier], parent: airlines_twin}]",
            model=model,
        )
    unknown = sorted(set(item) - {"columns", "parent", "parent_columns", "attributes", "mode"})
    if unknown:
        raise ConfigError(
            f"unknown foreign key setting(s) {unknown}",
            fix="use only columns, parent, parent_columns, attributes, mode",
            model=model,
        )
    columns = _names(item["columns"])
    # Left empty, the parent columns come from a relationships test on the same columns
    # (see merge_keys), else they are the child's own column names.
    parent_columns = _names(item.get("parent_columns") or ())
    if parent_columns and len(columns) != len(parent_columns):
        raise ConfigError(
            f"foreign key {list(columns)} → {item['parent']}{list(parent_columns)} pairs "
            f"{len(columns)} column(s) with {len(parent_columns)}",
            fix="list one parent column per child column, in the same order",
            model=model,
        )
    mode = item.get("mode", "auto")
    if mode not in MODES:
        raise ConfigError(
            f"foreign key mode '{mode}' is not one of {list(MODES)}",
            fix="use auto, attributes or category",
            model=model,
            column=columns[0],
        )
    attributes = item.get("attributes")
    return ForeignKey(
        columns,
        str(item["parent"]),
        parent_columns,
        None if attributes is None else _names(attributes),
        mode,
    )


def _names(value: Any) -> tuple[str, ...]:
    return (value,) if isinstance(value, str) else tuple(str(v) for v in value)


def merge_keys(
    configured: tuple[ForeignKey, ...], discovered: tuple[ForeignKey, ...]
) -> tuple[ForeignKey, ...]:
    """Configured keys win over discovered ones on the same child columns; a configured key
    without parent_columns takes them from the test on the same columns, else its own names."""
    found = {(k.columns, k.parent): k.parent_columns for k in discovered}
    resolved = tuple(
        k
        if k.parent_columns
        else replace(k, parent_columns=found.get((k.columns, k.parent), k.columns))
        for k in configured
    )
    taken = {k.columns for k in resolved}
    return resolved + tuple(k for k in discovered if k.columns not in taken)


def check_keys(keys: tuple[ForeignKey, ...], *, model: str, child_columns: list[str]) -> None:
    """Self-references and cycles cannot be ordered by dbt: say so, with the way out."""
    for key in keys:
        if key.parent == model:
            raise ConfigError(
                f"foreign key {list(key.columns)} references the twin itself (a self-reference, "
                f"e.g. employees.manager_id); dbt cannot build a model before itself",
                fix="drop the key from synth.foreign_keys (the column is then twinned as an "
                "ordinary column), or split the hierarchy into a parent table staged first",
                model=model,
                column=key.columns[0],
            )
        for column in key.columns:
            if column not in child_columns:
                raise ConfigError(
                    f"foreign key column '{column}' is not in the source",
                    fix=f"use one of {child_columns}",
                    model=model,
                    column=column,
                )


def synthesize_child(
    child: pa.Table,
    parents: dict[str, ParentData],
    raw_config: dict[str, Any] | None,
    *,
    model: str,
    schema: TableSchema | None = None,
    discovered: tuple[ForeignKey, ...] = (),
    progress=None,
) -> ChildResult:
    """A DP twin of `child` whose foreign keys all exist in `parents`' twins (by default)."""
    say = progress or (lambda _m: None)
    try:
        relational, config = split_config(raw_config, model=model)
        keys = merge_keys(relational.foreign_keys, discovered)
        schema = schema or schema_of(child.schema)
        check_keys(keys, model=model, child_columns=schema.names)
        return _synthesize_child(child, parents, relational, config, keys, schema, model, say)
    except SynthError as error:
        raise error.for_model(model) from None


def _synthesize_child(
    child: pa.Table,
    parents: dict[str, ParentData],
    relational: RelationalConfig,
    config: dict[str, Any],
    keys: tuple[ForeignKey, ...],
    schema: TableSchema,
    model: str,
    say,
) -> ChildResult:
    # The fit's draws come from OS entropy; `seed` only drives attaching keys to sampled rows.
    noise = NoiseSource.for_fit()
    rng = np.random.default_rng(sampling_seed(config.get("seed")))
    target_epsilon = float(config.get("epsilon", 1.0))
    plans = _plan_keys(keys, parents, model)
    row_epsilon, unit = _row_budget(target_epsilon, relational, plans, model)
    if relational.privacy_unit == "parent":
        child = _cap_children(child, plans[0][0], relational.max_children, noise.generator)
    say(f"{len(plans)} foreign key(s); privacy unit: {unit}")

    attribute_plans = [(k, a) for k, a, mode in plans if mode == "attributes" and a is not None]
    card_epsilon = relational.cardinality_share * row_epsilon if attribute_plans else 0.0
    joined, columns_config = _joined(child, plans, parents, config, schema)
    fit_config = {**config, "epsilon": row_epsilon - card_epsilon, "columns": columns_config}
    fitted = synthesize(joined, config=fit_config, model=model, progress=say)

    # Children-per-parent histograms: one Gaussian release per attributes-mode FK, at a δ
    # derived from the fit's (itself from the DP row count, never the true one).
    card_delta = _CARDINALITY_DELTA_SHARE * fitted.delta
    accountant = PrivacyAccountant(max(card_epsilon, 1e-9), card_delta)
    cardinalities: dict[str, Cardinality] = {}
    if attribute_plans:
        rho = accountant.remaining_rho() / len(attribute_plans)
        for key, _ in attribute_plans:
            cardinalities[key.name] = _release_cardinality(
                child, key, parents[key.parent], accountant, rho, noise
            )
    twin, reports = _attach(
        fitted.table, child, schema, plans, parents, cardinalities, relational, rng
    )
    spends = tuple(accountant.spends) + fitted.spends
    row_spent = fitted.epsilon + (accountant.epsilon() if attribute_plans else 0.0)
    row_delta = fitted.delta + (card_delta if attribute_plans else 0.0)
    epsilon, delta_unit = _unit_guarantee(row_spent, row_delta, relational)
    result = SynthResult(
        generator=_InMemory(twin),
        schema=schema,
        mechanism=fitted.mechanism,
        epsilon=epsilon,
        delta=delta_unit,
        target_epsilon=target_epsilon,
        rows_estimate=fitted.rows_estimate,
        sample_rate=fitted.sample_rate,
        spends=spends,
        columns=_column_reports(fitted.columns, schema, reports),
        fit_seconds=fitted.fit_seconds,
        seed_fixed=fitted.seed_fixed,
        noise_replayable=fitted.noise_replayable,
    )
    return ChildResult(result, tuple(reports), unit)


@dataclass(frozen=True)
class _InMemory:
    """A child twin is assembled whole (keys are attached across all rows), so its generator
    just hands out that table, in the chunks `TwinGenerator.batches` would."""

    twin: pa.Table

    @property
    def rows(self) -> int:
        return self.twin.num_rows

    def batches(self, chunk_rows: int = 262_144):
        yield from self.twin.to_batches(max_chunksize=chunk_rows)

    def table(self) -> pa.Table:
        return self.twin


# --- privacy unit ----------------------------------------------------------------------------


def _row_budget(
    target: float, relational: RelationalConfig, plans, model: str
) -> tuple[float, str]:
    """ε per child row, and the privacy unit in words for the ledger.

    With `privacy_unit: parent` a parent of the first (widest) foreign key and all its
    (≤ max_children) children is one unit; by group privacy a row-level (ε, δ) mechanism
    gives it (K·ε, K·e^{(K−1)ε}·δ), so rows get ε/K.
    """
    if relational.privacy_unit == "row":
        return target, (
            "row (one child row; a parent with k children is covered at k·ε by group privacy)"
        )
    if not plans:
        raise ConfigError(
            "privacy_unit: parent needs a foreign key to say which parent is the unit",
            fix="add synth.foreign_keys or a relationships test, or use privacy_unit: row",
            model=model,
        )
    key, cap = plans[0][0], relational.max_children
    return target / cap, (
        f"parent ({key.parent} via {'+'.join(key.columns)}, with all its children capped at {cap})"
    )


def _unit_guarantee(epsilon: float, delta: float, relational: RelationalConfig):
    if relational.privacy_unit == "row":
        return epsilon, delta
    cap = relational.max_children
    return cap * epsilon, min(cap * math.exp((cap - 1) * epsilon) * delta, 1.0)


def _cap_children(child: pa.Table, key: ForeignKey, cap: int, rng: np.random.Generator):
    """Keep at most `cap` random children per parent key (contribution bounding)."""
    frame = child.select(list(key.columns)).to_pandas()
    order = rng.permutation(len(frame))
    shuffled = frame.iloc[order]
    rank = shuffled.groupby(list(key.columns), dropna=False, sort=False).cumcount().to_numpy()
    keep = np.sort(order[rank < cap])
    return child.take(pa.array(keep))


# --- planning --------------------------------------------------------------------------------


def _plan_keys(keys, parents: dict[str, ParentData], model: str):
    """(key, attributes, mode) per FK, widest first; keys whose columns an earlier one covers
    are implied (flights.origin by (origin, time_hour) → weather) and only checked."""
    plans = []
    covered: set[str] = set()
    for key in sorted(keys, key=lambda k: -len(k.columns)):
        if key.parent not in parents:
            raise ConfigError(
                f"foreign key {list(key.columns)} references '{key.parent}', which this model "
                f"does not ref",
                fix=f"pass parents={{'{key.parent}': (dbt.ref('{key.parent}'), dbt.source(...))}} "
                "to dbt_synth.child_twin so dbt builds the parent twin first",
                model=model,
                column=key.columns[0],
            )
        parent = parents[key.parent]
        for column in key.parent_columns:
            if column not in parent.twin.column_names:
                raise ConfigError(
                    f"parent twin '{key.parent}' has no column '{column}'",
                    fix=f"set parent_columns to some of {parent.twin.column_names}",
                    model=model,
                    column=key.columns[0],
                )
        overlap = covered & set(key.columns)
        if overlap == set(key.columns):
            plans.append((key, None, "implied"))
            continue
        if overlap:
            raise ConfigError(
                f"foreign key {list(key.columns)} shares only {sorted(overlap)} with a wider key",
                fix="declare the narrower key's parent as the parent of the wider key's parent "
                "twin (like weather.origin → airports) and drop the partial overlap",
                model=model,
                column=key.columns[0],
            )
        covered |= set(key.columns)
        attributes = _attributes(key, parent, model)
        mode = key.mode
        if mode == "auto":
            mode = "category" if not attributes and len(key.columns) == 1 else "attributes"
        if mode == "category" and len(key.columns) != 1:
            raise ConfigError(
                "category mode needs a single-column foreign key",
                fix="use mode: attributes for composite keys",
                model=model,
                column=key.columns[0],
            )
        plans.append((key, attributes, mode))
    return plans


def _attributes(key: ForeignKey, parent: ParentData, model: str) -> tuple[str, ...]:
    if parent.source is None:
        if key.attributes:
            raise ConfigError(
                f"attributes {list(key.attributes)} of '{key.parent}' need its source",
                fix=f"pass parents={{'{key.parent}': (dbt.ref('{key.parent}'), "
                "dbt.source('raw', '...'))}",
                model=model,
                column=key.columns[0],
            )
        return ()
    shared = [
        c
        for c in parent.source.column_names
        if c in parent.twin.column_names and c not in key.parent_columns
    ]
    if key.attributes is None:
        # Default: every non-key parent column both tables hold, except free text/ids.
        return tuple(c for c in shared if _is_attribute(parent.source.column(c)))
    for name in key.attributes:
        if name not in shared:
            raise ConfigError(
                f"attribute '{name}' is not a column of both '{key.parent}' and its source",
                fix=f"use some of {shared}",
                model=model,
                column=key.columns[0],
            )
    return key.attributes


def _is_attribute(array: pa.ChunkedArray) -> bool:
    """Strings with nearly one value per row (names) carry no learnable dependency."""
    if pa.types.is_string(array.type) or pa.types.is_large_string(array.type):
        return pc.count_distinct(array).as_py() <= max(0.5 * len(array), 1)
    return True


# --- the joined fit ---------------------------------------------------------------------------


def _joined(
    child: pa.Table,
    plans,
    parents: dict[str, ParentData],
    config: dict[str, Any],
    schema: TableSchema,
):
    """Child columns (FK columns of attributes-mode keys dropped) + real parent attributes and a
    public parent/NULL/orphan state per key, with the column config that goes with them.

    The NULL state exists only if a key column is nullable in the warehouse schema (a public
    fact), so a NOT NULL key never comes out NULL from noise."""
    columns = dict(config.get("columns") or {})
    drop: set[str] = set()
    frame = child
    for key, attributes, mode in plans:
        if mode == "implied":
            continue
        if mode == "category":
            columns.setdefault(key.columns[0], {"role": "category"})
            continue
        drop |= set(key.columns)
        source = parents[key.parent].source
        state, values = _lookup(child, key, source, attributes)
        frame = frame.append_column(f"{_STATE}{key.name}", pa.array(state))
        nullable = any(schema.column(c).nullable for c in key.columns)
        states = [s for s in _STATES if nullable or s != "null"]
        columns[f"{_STATE}{key.name}"] = {"categories": states}
        for name, array in values.items():
            frame = frame.append_column(f"__{key.name}__{name}", array)
    frame = frame.drop_columns(sorted(c for c in drop if c in frame.column_names))
    return frame, columns


def _lookup(child: pa.Table, key: ForeignKey, source: pa.Table | None, attributes):
    """Per child row: 'parent' / 'null' / 'orphan' and the parent's attribute values."""
    frame = child.select(list(key.columns)).to_pandas()
    null = frame.isna().any(axis=1).to_numpy()
    if source is None:
        state = np.where(null, "null", "parent")
        return state, {}
    parent = source.select([*key.parent_columns, *attributes]).to_pandas()
    parent.columns = [*key.columns, *(f"__attr__{a}" for a in attributes)]
    parent = parent.drop_duplicates(subset=list(key.columns))
    parent["__found__"] = True
    merged = frame.merge(parent, on=list(key.columns), how="left")
    found = merged["__found__"].eq(True).to_numpy()
    state = np.where(null, "null", np.where(found, "parent", "orphan"))
    values = {
        a: pa.Array.from_pandas(merged[f"__attr__{a}"], type=source.schema.field(a).type)
        for a in attributes
    }
    return state, values


def _release_cardinality(
    child: pa.Table,
    key: ForeignKey,
    parent: ParentData,
    accountant: PrivacyAccountant,
    rho: float,
    noise: NoiseSource,
) -> Cardinality:
    """DP histogram of children per real parent: one child row moves one parent to the next
    bin, so the L2 sensitivity is √2 (parents themselves are public to the child's release only
    through their count, which the parent twin already released)."""
    reference = parent.source if parent.source is not None else parent.twin
    counts = children_per_parent(child, key.columns, reference, key.parent_columns)
    edges = count_edges()
    hist = np.bincount(np.searchsorted(edges, counts, side="right") - 1, minlength=len(edges))
    sigma = gaussian_sigma(rho, math.sqrt(2.0))
    accountant.spend_gaussian(
        "cardinality",
        sigma,
        sensitivity=math.sqrt(2.0),
        column="+".join(key.columns),
        detail=f"children per {key.parent} parent, {len(edges)} bins",
    )
    noisy = noise.counts(hist, sigma)
    return Cardinality(tuple(int(e) for e in edges), tuple(float(v) for v in noisy), sigma)


def count_edges() -> np.ndarray:
    """Bin lower edges 0, 1, 2, 3, 5, 9, 17, … 2^20+1: a fixed public scale, so the bins
    themselves reveal nothing about the data; the last bin is open."""
    return np.array([0, 1, 2, *(2**i + 1 for i in range(1, 21))])


def children_per_parent(child: pa.Table, columns, parent: pa.Table, parent_columns) -> np.ndarray:
    """Number of `child` rows per `parent` row (0 for childless parents), in parent order."""
    left = parent.select(list(parent_columns)).to_pandas()
    left.columns = list(columns)
    right = child.select(list(columns)).to_pandas().dropna()
    sizes = right.groupby(list(columns), sort=False).size().rename("__n__").reset_index()
    merged = left.merge(sizes, on=list(columns), how="left")
    return merged["__n__"].fillna(0).to_numpy().astype(np.int64)


def cardinality_tvd(source_counts: np.ndarray, twin_counts: np.ndarray) -> float:
    """TVD between two children-per-parent histograms on the `count_edges` bins."""
    edges = count_edges()

    def hist(counts: np.ndarray) -> np.ndarray:
        h = np.bincount(np.searchsorted(edges, counts, side="right") - 1, minlength=len(edges))
        return h / max(h.sum(), 1)

    return float(0.5 * np.abs(hist(source_counts) - hist(twin_counts)).sum())


# --- attaching keys ---------------------------------------------------------------------------


def _attach(
    sampled: pa.Table,
    child: pa.Table,
    schema: TableSchema,
    plans,
    parents: dict[str, ParentData],
    cardinalities: dict[str, Cardinality],
    relational: RelationalConfig,
    rng: np.random.Generator,
):
    n = sampled.num_rows
    out: dict[str, pa.Array] = {}
    reports: list[KeyReport] = []
    for key, attributes, mode in plans:
        if mode == "implied":
            continue
        parent = parents[key.parent].twin
        if mode == "category":
            column = key.columns[0]
            values, mapping = _map_category(
                sampled.column(column), parent.column(key.parent_columns[0]), rng
            )
            out[column] = values
            reports.append(
                KeyReport(
                    key.name, key.parent, mode, (), None, 0.0, _null_rate(values), mapping=mapping
                )
            )
            continue
        state = np.asarray(sampled.column(f"{_STATE}{key.name}").to_pylist(), dtype=object)
        child_attrs = {a: sampled.column(f"__{key.name}__{a}") for a in attributes}
        orphan = state == "orphan"
        reproduce = relational.orphans == "reproduce"
        wanted = (state == "parent") | (orphan & (not reproduce))
        chosen = _assign(
            np.flatnonzero(wanted),
            child_attrs,
            parent,
            attributes,
            cardinalities[key.name],
            rng,
        )
        for j, (column, parent_column) in enumerate(
            zip(key.columns, key.parent_columns, strict=True)
        ):
            parent_values = parent.column(parent_column).combine_chunks()
            indices = np.full(n, -1)
            indices[np.flatnonzero(wanted)] = chosen
            taken = parent_values.take(pa.array(np.where(indices < 0, 0, indices)))
            mask = pa.array(indices < 0)
            values = pc.if_else(mask, pa.nulls(n, taken.type), taken)
            if reproduce and orphan.any():
                values = _with_orphans(values, orphan, parent_values, child.column(column), j, rng)
            out[column] = values
        reports.append(
            KeyReport(
                key.name,
                key.parent,
                mode,
                attributes,
                cardinalities[key.name],
                float(orphan.mean()) if n else 0.0,
                float((state == "null").mean()) if n else 0.0,
            )
        )
    for key, _, mode in plans:
        if mode == "implied":
            wider = next(r.name for r in reports if set(key.columns) <= set(r.name.split("__")))
            _check_implied(key, out, parents[key.parent].twin)
            reports.append(
                KeyReport(key.name, key.parent, mode, (), None, 0.0, 0.0, implied_by=wider)
            )
    arrays = [out[c] if c in out else sampled.column(c) for c in schema.names]
    return pa.Table.from_arrays(arrays, names=schema.names), reports


def _null_rate(values: pa.Array) -> float:
    return values.null_count / len(values) if len(values) else 0.0


def _map_category(sampled: pa.ChunkedArray, keys: pa.ChunkedArray, rng: np.random.Generator):
    """DP-kept FK values → parent-twin keys, one-to-one while keys last (most frequent first);
    values beyond the parent twin's size share random keys. NULL stays NULL."""
    values = sampled.to_pandas()
    order = values.value_counts(dropna=True).index.tolist()
    pool = keys.drop_null().unique().to_pylist()
    if not pool:
        raise SourceError(
            "the parent twin has no keys to draw from", fix="build the parent twin with rows"
        )
    shuffled = [pool[i] for i in rng.permutation(len(pool))]
    mapping = {
        v: shuffled[i] if i < len(shuffled) else shuffled[rng.integers(len(shuffled))]
        for i, v in enumerate(order)
    }
    mapped = values.map(mapping)
    return pa.Array.from_pandas(mapped, type=keys.type), mapping


def _assign(
    rows: np.ndarray,
    child_attrs: dict[str, pa.ChunkedArray],
    parent: pa.Table,
    attributes: tuple[str, ...],
    cardinality: Cardinality,
    rng: np.random.Generator,
) -> np.ndarray:
    """Parent-twin row index for each child row in `rows`.

    Each parent gets a capacity from the DP cardinality histogram. Children go to parents whose
    attribute bins match theirs, as deep as capacity allows (all attributes, then all but the
    last, …, then any parent with capacity left); the rest go to parents in proportion to their
    capacity.
    """
    m = len(rows)
    result = np.full(m, -1)
    if m == 0:
        return result
    capacity = cardinality.sample(parent.num_rows, rng, children=m)
    planned = capacity.astype(float) + 1e-9
    child_sig, parent_sig = _signatures(rows, child_attrs, parent, attributes)
    for depth in range(len(attributes), -1, -1):
        open_rows = np.flatnonzero(result < 0)
        if not len(open_rows) or capacity.sum() == 0:
            break
        c_key, p_key = _labels(child_sig[open_rows], parent_sig, depth)
        order = np.argsort(c_key, kind="stable")
        starts = np.flatnonzero(np.r_[True, np.diff(c_key[order]) != 0])
        for label, members in zip(
            c_key[order][starts], np.split(open_rows[order], starts[1:]), strict=True
        ):
            hosts = np.flatnonzero((p_key == label) & (capacity > 0))
            if not len(hosts):
                continue
            slots = np.repeat(hosts, capacity[hosts])
            take = min(len(members), len(slots))
            picked = slots[rng.choice(len(slots), size=take, replace=False)]
            chosen = members[rng.permutation(len(members))[:take]]
            result[chosen] = picked
            capacity -= np.bincount(picked, minlength=len(capacity))
    left = np.flatnonzero(result < 0)
    if len(left):
        result[left] = rng.choice(parent.num_rows, size=len(left), p=planned / planned.sum())
    return result


def _signatures(rows, child_attrs, parent: pa.Table, attributes):
    """Per child row and per parent row, a tuple of attribute bins as an int matrix."""
    child_sig = np.zeros((len(rows), len(attributes)), dtype=np.int64)
    parent_sig = np.zeros((parent.num_rows, len(attributes)), dtype=np.int64)
    for j, name in enumerate(attributes):
        p = parent.column(name).to_pandas()
        c = child_attrs[name].to_pandas().iloc[rows].reset_index(drop=True)
        if p.dtype.kind in "iuf" and p.nunique() > 2 * _SIGNATURE_BINS:
            edges = np.unique(
                np.nanquantile(p.astype(float), np.linspace(0, 1, _SIGNATURE_BINS + 1)[1:-1])
            )
            parent_sig[:, j] = np.where(p.isna(), -1, np.searchsorted(edges, p.astype(float)))
            child_sig[:, j] = np.where(c.isna(), -1, np.searchsorted(edges, c.astype(float)))
        else:
            codes = {v: i for i, v in enumerate(p.dropna().unique().tolist())}
            parent_sig[:, j] = p.map(codes).fillna(-1).astype(np.int64).to_numpy()
            child_sig[:, j] = c.map(codes).fillna(-2).astype(np.int64).to_numpy()
    return child_sig, parent_sig


def _labels(child: np.ndarray, parent: np.ndarray, depth: int) -> tuple[np.ndarray, np.ndarray]:
    """One integer label per distinct tuple of the first `depth` bins, shared by both sides."""
    if depth == 0:
        return np.zeros(len(child), dtype=np.int64), np.zeros(len(parent), dtype=np.int64)
    both = np.vstack([child[:, :depth], parent[:, :depth]])
    _, inverse = np.unique(both, axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    return inverse[: len(child)], inverse[len(child) :]


def _with_orphans(values, orphan, parent_values, source_column, j, rng) -> pa.Array:
    """`orphans: reproduce`: orphan rows get fresh keys that no parent-twin row holds."""
    existing = set(parent_values.to_pylist())
    count = int(orphan.sum())
    if pa.types.is_integer(parent_values.type):
        start = (max((v for v in existing if v is not None), default=0) or 0) + 1
        fresh = list(range(start, start + count))
    else:
        fresh = [f"orphan-{j}-{i}" for i in range(count)]
        fresh = [v for v in fresh if v not in existing]
    array = values.to_pylist()
    for index, value in zip(np.flatnonzero(orphan), fresh, strict=False):
        array[index] = value
    return pa.array(array, type=values.type)


def _check_implied(key: ForeignKey, out: dict[str, pa.Array], parent: pa.Table) -> None:
    """An implied key (flights.origin via weather) must hold because the chain of twins does."""
    child = pa.table({c: out[c] for c in key.columns})
    counts = children_per_parent(child, key.columns, parent, key.parent_columns)
    attached = int(counts.sum())
    expected = child.num_rows - sum(
        int(pc.sum(pc.is_null(child.column(c))).as_py()) for c in key.columns
    )
    if attached < expected:
        raise SynthError(
            f"foreign key {list(key.columns)} → {key.parent} is implied by a wider key, but "
            f"{expected - attached} twin rows hold values that {key.parent} lacks",
            fix="twin the wider key's parent as a child of "
            f"{key.parent} (e.g. weather_twin with foreign key origin → airports_twin)",
            column=key.columns[0],
        )


def _column_reports(columns, schema: TableSchema, reports: list[KeyReport]):
    by_name = {c.name: c for c in columns}
    keyed = {}
    for report in reports:
        for column in report.name.split("__"):
            keyed.setdefault(
                column,
                f"foreign key → {report.parent} ({report.mode}"
                + (f" on {', '.join(report.attributes)}" if report.attributes else "")
                + ")",
            )
    return tuple(
        ColumnReport(name, keyed[name], 0) if name in keyed else by_name[name]
        for name in schema.names
        if name in keyed or name in by_name
    )


def parse_ref(text: str) -> str | None:
    """`ref('x')` / `ref("pkg", "x")` → 'x'; anything else → None."""
    match = re.fullmatch(
        r"\s*ref\(\s*(?:['\"][^'\"]+['\"]\s*,\s*)?['\"]([^'\"]+)['\"]\s*\)\s*", text
    )
    return match.group(1) if match else None


__all__ = [
    "Cardinality",
    "ChildResult",
    "ForeignKey",
    "KeyReport",
    "ParentData",
    "RelationalConfig",
    "cardinality_tvd",
    "children_per_parent",
    "synthesize_child",
]
