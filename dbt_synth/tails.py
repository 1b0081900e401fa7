"""DP head + generated tail for high-cardinality text and category columns.

Values common enough to pass the DP threshold of a category domain are the *head*: the most
frequent of them are modelled as categories, jointly with the other columns; the rest of the head
is drawn by noisy frequency. Every other row — values too rare to reveal — is the *tail*, drawn
from a semantic role (Faker), a declared format or the column's DP formats, in the share the DP
counts leave to it. A value held by one row is never in the head (beyond the δ the threshold is
charged) and generated values come from no real value, so no rare value is copied out.

How many head values the generator models is chosen from the budget (`category_limit`): a value
whose count is below the noise of the generator's measurements gains nothing from being modelled
jointly, and every modelled value widens the generator.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np
import pyarrow as pa

from dbt_synth.domains.categories import CategoryDomain
from dbt_synth.domains.text import TextDomain
from dbt_synth.encoding import CategoryModel
from dbt_synth.errors import SourceError
from dbt_synth.roles import (
    DEFAULT_LOCALE,
    FORMAT_ROLE,
    STRUCTURAL_ROLES,
    FormatPattern,
    looks_like_key,
    role_named,
)
from dbt_synth.schema import ColumnKind, ColumnSpec

# Bounds of the budget-aware choice of modelled values per column.
MIN_MODELLED = 16
MAX_MODELLED = 1000
# A value is modelled jointly when its noisy count exceeds this many σ of a generator measurement.
_SIGNAL_SIGMAS = 2.0
# The marginal mechanism's rounds per modelled column and its cap (mechanisms/marginal.py).
_ROUNDS_PER_COLUMN, _MAX_ROUNDS = 16, 400


# Weight of a head+tail column's domain ρ, relative to any other column's 1: at least
# `HEAD_WEIGHT` (its DP head is what makes its values realistic, and the generator re-uses the
# head's noisy counts), raised up to `MAX_HEAD_WEIGHT` until a value held by `HEAD_ROW_SHARE` of
# the rows clears its threshold (`head_weight`).
HEAD_WEIGHT = 4.0
MAX_HEAD_WEIGHT = 8.0
HEAD_ROW_SHARE = 1e-3


def domain_weight(plan: str, head: float = HEAD_WEIGHT) -> float:
    """Relative domain ρ of a column by its plan (pipeline._plan): keys and NULL columns spend
    none, a column with a semantic role `head` (see `head_weight`), every other column 1."""
    if plan in ("key", "null"):
        return 0.0
    return head if plan == "role" else 1.0


def head_weight(
    plans: list[str], domain_rho: float, rows_estimate: float, threshold_delta: float
) -> float:
    """The weight of each semantic-role column's domain ρ, chosen from the budget, not the data.

    A head is worth its ρ when the values it reveals cover the column: the weight is the one at
    which a value held by `HEAD_ROW_SHARE` of the (DP-counted) rows clears the threshold of a
    histogram charged `threshold_delta`, within [HEAD_WEIGHT, MAX_HEAD_WEIGHT]. A large table
    needs no more than `HEAD_WEIGHT`; a small one, or one with many role columns, gets the cap
    (the rest of the domain budget must still pay for the other columns).

    On seattlepets at ε = 1 (52,519 rows, two role columns, the cap) the twin's share of the
    real top-200 names went from 0.254 (mean of 3 runs, weight 4, `HEAD_SHARE` 0.075) to
    0.28 (bench/RESULTS.md).
    """
    heads = plans.count("role")
    others = sum(domain_weight(plan) for plan in plans if plan != "role")
    if heads == 0:
        return HEAD_WEIGHT
    clear = HEAD_ROW_SHARE * rows_estimate - 2.0  # threshold_for: τ = 2 + σ·z
    if clear <= 0 or others == 0:
        return MAX_HEAD_WEIGHT if clear <= 0 else HEAD_WEIGHT
    sigma = clear / NormalDist().inv_cdf(1.0 - threshold_delta)
    needed = 1.0 / (2.0 * sigma**2)  # ρ of a Gaussian of that σ
    spare = domain_rho - heads * needed
    weight = needed * others / spare if spare > 0 else MAX_HEAD_WEIGHT
    return float(min(max(weight, HEAD_WEIGHT), MAX_HEAD_WEIGHT))


# Budget share each semantic-role column adds to `domain_share` (at most `MAX_DOMAIN_SHARE`):
# its head's noisy counts are also the generator's 1-way measurement of the column.
HEAD_SHARE = 0.1
MAX_DOMAIN_SHARE = 0.5


def domain_share(configured: float, plans: list[str]) -> float:
    """The share of the budget spent on domains: the configured one, plus `HEAD_SHARE` per
    column with a semantic role."""
    heads = sum(plan == "role" for plan in plans)
    return min(max(configured, configured + HEAD_SHARE * heads), max(configured, MAX_DOMAIN_SHARE))


def generator_sigma(generator_rho: float, modelled_columns: int) -> float:
    """Noise σ (in rows) of one of the generator's marginal measurements, spread over its
    rounds: what a modelled value's count must clear to carry signal."""
    rounds = min(_ROUNDS_PER_COLUMN * max(modelled_columns, 1), _MAX_ROUNDS)
    return math.sqrt(rounds / (2.0 * max(generator_rho, 1e-12)))


def category_limit(counts: np.ndarray, sigma: float) -> int:
    """How many kept values (by noisy count) the generator models: those that clear
    `_SIGNAL_SIGMAS`·σ, within [MIN_MODELLED, MAX_MODELLED]."""
    strong = int(np.sum(np.asarray(counts) >= _SIGNAL_SIGMAS * sigma))
    return int(min(max(strong, MIN_MODELLED), MAX_MODELLED))


@dataclass(frozen=True)
class RoleTail:
    """Tail values from a registered semantic role, in a Faker locale."""

    role: str
    locale: str = DEFAULT_LOCALE

    def generate(self, n: int, rng: np.random.Generator) -> list[str]:
        role = role_named(self.role)
        assert role is not None, self.role
        return role.generate(n, rng, self.locale)


@dataclass(frozen=True)
class FormatTail:
    """Tail values from a declared format pattern."""

    pattern: str

    def generate(self, n: int, rng: np.random.Generator) -> list[str]:
        return FormatPattern.parse(self.pattern).generate(n, rng)


@dataclass(frozen=True)
class TextTail:
    """Tail values in the column's DP formats (when no role or format is declared)."""

    domain: TextDomain

    def generate(self, n: int, rng: np.random.Generator) -> list[str]:
        return self.domain.sample(n, rng)


Tail = RoleTail | FormatTail | TextTail


class HeadTailModel(CategoryModel):
    """A category column whose `other` code is the head beyond the modelled values plus a
    generated tail.

    `unrevealed` is the noisy mass (rows) of values no head value explains: DP row count minus
    NULLs minus the kept values' noisy counts, all already released, so using it is free.
    """

    def __init__(
        self,
        spec: ColumnSpec,
        domain: CategoryDomain,
        sigma: float,
        *,
        tail: Tail,
        unrevealed: float,
        limit: int,
    ) -> None:
        super().__init__(spec, domain, sigma, public=False, limit=limit)
        self.tail = tail
        self.unrevealed = max(float(unrevealed), 0.0)

    def _draw_other(self, n: int, rng: np.random.Generator) -> np.ndarray:
        kept = float(np.maximum(self.domain.counts[self._tail], 0.0).sum())
        share = kept / (kept + self.unrevealed) if kept + self.unrevealed > 0 else 0.0
        from_head = rng.random(n) < share
        out = np.empty(n, dtype=object)
        if from_head.any():
            out[from_head] = super()._draw_other(int(from_head.sum()), rng)
        if (~from_head).any():
            generated = self.tail.generate(int((~from_head).sum()), rng)
            out[np.flatnonzero(~from_head)] = np.array(generated, dtype=object)
        return out

    def describe(self) -> str:
        modelled, rest = len(self._modelled), len(self._tail)
        source = (
            f"role {self.tail.role}"
            if isinstance(self.tail, RoleTail)
            else f"format {self.tail.pattern}"
            if isinstance(self.tail, FormatTail)
            else "DP formats"
        )
        return f"head+tail: {modelled} modelled + {rest} DP-kept values, tail generated by {source}"


def head_tail(
    spec: ColumnSpec,
    domain: CategoryDomain,
    sigma: float,
    tail: Tail,
    rows_estimate: float,
    limit: int,
) -> HeadTailModel:
    """The head+tail model of a column; the tail's share is the DP row count minus NULLs minus
    the kept values' noisy counts (post-processing of DP releases)."""
    unrevealed = max(rows_estimate - domain.null_count - float(domain.counts.sum()), 0.0)
    return HeadTailModel(spec, domain, sigma, tail=tail, unrevealed=unrevealed, limit=limit)


class GeneratedModel:
    """A column generated whole from its role (no head to learn, e.g. `uuid`): zero ε.

    NULLs follow the warehouse schema only: a nullable column is never NULL here, since its
    NULL share would have to be learned.
    """

    modelled = False
    prior = None
    cardinality = 0

    def __init__(self, spec: ColumnSpec, tail: Tail) -> None:
        self.spec = spec
        self.tail = tail

    def generate(self, n: int, rng: np.random.Generator, *, start: int = 0) -> pa.Array:
        return pa.array(self.tail.generate(n, rng), type=pa.string())

    def describe(self) -> str:
        return f"generated: role {getattr(self.tail, 'role', 'format')}, zero ε"


def tail_for(role: str, pattern: str | None, locale: str) -> Tail:
    """The tail source of a column with a semantic role (`format` draws from its pattern)."""
    if role == FORMAT_ROLE:
        assert pattern is not None
        return FormatTail(pattern)
    return RoleTail(role, locale)


def learns_head(role: str) -> bool:
    """Whether a role's common values are learned (a `uuid` column has none worth the ε)."""
    semantic = role_named(role)
    return semantic is None or semantic.head


def is_named_key(spec: ColumnSpec, role: str, categories: object) -> bool:
    """An `auto` integer or string column named like a key (`*_id`, `uid`, `*_key`,
    `*_number`): a fresh key, never modelled (a child twin's foreign keys have role `category`
    or leave the fit, so the parent twin's keys still reach them)."""
    return role == "auto" and categories is None and looks_like_key(spec.name, spec.sql_type)


def is_semantic(spec: ColumnSpec, role: str) -> bool:
    """Whether `role` is a semantic role or `format`; those generate strings, so a column of
    another type is a SourceError naming it."""
    if role in STRUCTURAL_ROLES:
        return False
    if spec.kind is not ColumnKind.STRING:
        raise SourceError(
            f"role {role} generates strings, but the column is {spec.sql_type}",
            fix="remove the role from synth.columns, or cast the column to a string type",
            column=spec.name,
        )
    return True
