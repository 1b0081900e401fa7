"""Sampling a fitted twin under constraints: the project's rules, `rebalance` and `condition`.

All of it is post-processing of the fitted model (zero ε) and reads no data:

- `synth.rules` (rules.py): a drawn row that breaks a rule is redrawn from the fitted model, a
  bounded number of times; the twin is then a sample of the model's distribution given that
  every rule holds (rejection sampling is exact). Counts of redrawn rows go to the log and the
  ledger; a rule the model can hardly meet fails the build, naming it.
- `synth.condition: "<sql predicate>"`: every twin row satisfies it, drawn the same way.
- `synth.rebalance: {column: c, shares: {value: 0.3}}`: that share of the twin's rows has
  c = value, the rest keep the model's distribution over c's other values. For the marginal
  mechanism and a modelled category value the rows come from the mixture's exact conditional
  (posterior component weights, MixtureModel.sample(given=...)); otherwise (DP-SGD, a value in a
  column's tail) from redrawing.

Keys are filled after the rows are chosen: they depend on nothing, and must stay unique.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from dbt_synth.encoding import CategoryModel, KeyModel
from dbt_synth.errors import SourceError, SynthError
from dbt_synth.keys import StringKeyModel
from dbt_synth.mechanisms.marginal import MarginalMechanism
from dbt_synth.rules import Rebalance, Rule, RuleKind, broken, ident, predicate
from dbt_synth.tails import HeadTailModel

if TYPE_CHECKING:
    from dbt_synth.generation import TwinGenerator

# Rounds of redrawing before a rule (or condition, or rebalanced value) is declared unmeetable.
MAX_TRIES = 30
# Below this share of draws meeting every constraint the build fails rather than crawl.
MIN_ACCEPTANCE = 1e-3


class ConstraintError(SynthError):
    """The fitted model puts (almost) no mass where a rule, condition or share asks for rows."""


@dataclass
class SamplingLog:
    """What sampling under constraints did: rows drawn, and rows that broke each constraint."""

    drawn: int = 0
    broken: dict[str, int] = field(default_factory=dict)

    def note(self, labels: list[str], broken_rows: np.ndarray, drawn: int) -> None:
        self.drawn += drawn
        for label, rows in zip(labels, broken_rows, strict=True):
            self.broken[label] = self.broken.get(label, 0) + int(rows.sum())

    def describe(self, rows: int) -> dict[str, Any]:
        return {"twin_rows": rows, "rows_drawn": self.drawn, "redrawn_for": dict(self.broken)}


@dataclass(frozen=True)
class Constraints:
    """Rules, condition and rebalance of one twin, checked against its schema."""

    rules: tuple[Rule, ...] = ()
    condition: Rule | None = None
    rebalance: Rebalance | None = None
    # Rules on key columns, not redrawn for (keys are fresh values filled after sampling).
    skipped: tuple[str, ...] = ()

    @property
    def binding(self) -> bool:
        """Whether sampling must draw under these (rules on keys alone bind nothing)."""
        return bool(self.rules or self.condition or self.rebalance)

    def describe(self) -> dict[str, Any]:
        return {
            "rules": [r.label for r in self.rules],
            "rules_on_keys_not_redrawn": list(self.skipped),
            "condition": self.condition.label if self.condition else None,
            "rebalance": (
                {"column": self.rebalance.column, "shares": dict(self.rebalance.shares)}
                if self.rebalance
                else None
            ),
        }

    def batches(self, generator: TwinGenerator, chunk_rows: int) -> Iterator[pa.RecordBatch]:
        """The twin's rows under the constraints, chunk by chunk; the same rows every pass."""
        sampler = _Sampler(generator, self, np.random.default_rng(generator.seed))
        generator.log.drawn, generator.log.broken = 0, {}
        for start in range(0, generator.rows, chunk_rows):
            yield sampler.chunk(min(chunk_rows, generator.rows - start), start)


def constraints_of(config: Any, names: tuple[str, ...], keys: set[str]) -> Constraints | None:
    """The twin's constraints from its parsed config, each column checked against the source."""
    if not (config.rules or config.condition or config.rebalance):
        return None
    condition = (
        predicate(config.condition, label="condition", model=None, null_holds=False)
        if config.condition
        else None
    )
    for rule in config.rules:
        _check_columns(rule.columns, names)
    # A rule on a key is not redrawn for: keys are fresh values, never NULL, filled after the
    # rows are chosen (`not_null` on a key holds by construction; the ledger lists the others).
    rules = tuple(r for r in config.rules if not set(r.columns) & keys)
    skipped = tuple(r.label for r in config.rules if set(r.columns) & keys)
    constraints = Constraints(rules, condition, config.rebalance, skipped)
    mentioned = list(condition.columns) if condition else []
    if constraints.rebalance:
        mentioned.append(constraints.rebalance.column)
    _check_columns(mentioned, names)
    for column in mentioned:
        if column in keys:
            raise SourceError(
                "a condition or rebalance cannot constrain a key: twin keys are fresh values",
                fix="drop this column from synth.condition / synth.rebalance",
                column=column,
            )
    return constraints


def _check_columns(columns: Any, names: tuple[str, ...]) -> None:
    for column in columns:
        if column not in names:
            raise SourceError(
                "a rule, condition or rebalance names a column that is not in the source",
                fix=f"use one of {list(names)}",
                column=column,
            )


class _Sampler:
    """Draws rows of the non-key columns from the fitted model, under the constraints."""

    def __init__(self, generator: TwinGenerator, constraints: Constraints, rng) -> None:
        self.generator = generator
        self.constraints = constraints
        self.rng = rng
        models = generator.models
        self.keys = [i for i, m in enumerate(models) if isinstance(m, KeyModel | StringKeyModel)]
        self.modelled = [i for i, m in enumerate(models) if m.modelled]
        self.checks = list(constraints.rules) + (
            [constraints.condition] if constraints.condition else []
        )

    def chunk(self, n: int, start: int) -> pa.RecordBatch:
        groups = self._groups(n)
        parts = [self._group(count, given, extra) for count, given, extra in groups if count]
        rows = pa.concat_tables(parts, promote_options="permissive") if parts else None
        order = self.rng.permutation(n)
        arrays = []
        names = self.generator.names
        for i, model in enumerate(self.generator.models):
            if i in self.keys:
                arrays.append(model.generate(n, self.rng, start=start))
            else:
                arrays.append(rows.column(names[i]).take(pa.array(order)).combine_chunks())
        return pa.RecordBatch.from_arrays(arrays, names=list(names))

    def _groups(self, n: int) -> list[tuple[int, tuple[int, np.ndarray] | None, Rule | None]]:
        """(rows, code restriction, row predicate) per rebalanced value, then the rest."""
        rebalance = self.constraints.rebalance
        if rebalance is None:
            return [(n, None, None)]
        counts = [round(share * n) for _, share in rebalance.shares]
        rest = n - sum(counts)
        if rest < 0:
            counts[int(np.argmax(counts))] += rest
            rest = 0
        column = rebalance.column
        position = self.generator.names.index(column)
        model = self.generator.models[position]
        codes = [self._code(model, value) for value, _ in rebalance.shares]
        groups: list[tuple[int, tuple[int, np.ndarray] | None, Rule | None]] = []
        for (value, _), count, code in zip(rebalance.shares, counts, codes, strict=True):
            if code is not None:
                groups.append((count, (self.modelled.index(position), np.array([code])), None))
            else:
                literal = _literal(value)
                groups.append((count, None, _rule(f"{ident(column)} = {literal}", False)))
        if all(c is not None for c in codes):
            allowed = np.setdiff1d(np.arange(model.cardinality), np.array(codes))
            groups.append((rest, (self.modelled.index(position), allowed), None))
        else:
            listed = ", ".join(_literal(v) for v, _ in rebalance.shares)
            groups.append((rest, None, _rule(f"{ident(column)} NOT IN ({listed})", True)))
        return groups

    def _code(self, model: Any, value: Any) -> int | None:
        """The value's code when the generator models it; None when only rows can tell."""
        if not isinstance(model, CategoryModel):
            return None
        if value not in model.domain.values and not isinstance(model, HeadTailModel):
            raise ConstraintError(
                f"rebalance value {value!r} is not in the twin's DP domain of the column: too "
                "rare to be revealed at this ε",
                fix="declare the column's values public (synth.columns.<c>.categories), raise "
                "synth.epsilon, or rebalance a more common value",
                column=model.spec.name,
            )
        return model._index.get(value)

    def _group(self, count: int, given, extra: Rule | None) -> pa.Table:
        """`count` rows meeting every check (and `extra`), drawn from the (conditional) model."""
        checks = self.checks + ([extra] if extra is not None else [])
        labels = [c.label if c is not extra else "rebalance" for c in checks]
        kept: list[pa.Table] = []
        need, acceptance = count, 1.0
        for _ in range(MAX_TRIES):
            size = min(max(math.ceil(1.2 * need / acceptance), 64), 50 * count + 64)
            drawn = self._draw(size, given)
            failed = broken(drawn, checks)
            ok = np.flatnonzero(~failed.any(axis=0))
            self.generator.log.note(labels, failed, size)
            acceptance = max(len(ok) / size, MIN_ACCEPTANCE / 10)
            kept.append(drawn.take(pa.array(ok[:need])))
            need -= min(len(ok), need)
            if need == 0:
                return pa.concat_tables(kept, promote_options="permissive")
            if acceptance < MIN_ACCEPTANCE:
                break
        worst = labels[int(np.argmax(failed.mean(axis=1)))] if checks else "the rebalance"
        raise ConstraintError(
            f"the fitted model almost never meets '{worst}': {count - need} of {count} rows "
            f"found after {self.generator.log.drawn} draws",
            fix="check the rule against the source, declare public bounds/categories for its "
            "columns, raise synth.epsilon, or drop it from synth.rules / condition / rebalance",
        )

    def _draw(self, size: int, given) -> pa.Table:
        """`size` rows of the non-key columns, with codes drawn given `given`."""
        generator, rng = self.generator, self.rng
        codes = self._codes(size, given) if generator.mechanism is not None else None
        arrays, names = [], []
        for i, model in enumerate(generator.models):
            if i in self.keys:
                continue
            if model.modelled:
                arrays.append(model.decode(codes[:, self.modelled.index(i)], rng))
            else:
                arrays.append(model.generate(size, rng, start=0))
            names.append(generator.names[i])
        return pa.Table.from_arrays(arrays, names=names)

    def _codes(self, size: int, given) -> np.ndarray:
        mechanism = self.generator.mechanism
        if given is None:
            return mechanism.sample(size, self.rng)
        if isinstance(mechanism, MarginalMechanism):
            try:
                return mechanism.sample_given(size, self.rng, given)
            except ValueError:
                pass  # no mass at all: fall through, fail below with the constraint named
        column, allowed = given
        rows: list[np.ndarray] = []
        got, acceptance = 0, 1.0
        for _ in range(MAX_TRIES):
            draws = min(max(math.ceil(1.2 * (size - got) / acceptance), 1024), 100 * size + 1024)
            drawn = mechanism.sample(draws, self.rng)
            hit = drawn[np.isin(drawn[:, column], allowed)]
            rows.append(hit)
            got += len(hit)
            acceptance = max(len(hit) / draws, MIN_ACCEPTANCE / 10)
            if got >= size:
                return np.concatenate(rows)[:size]
        raise ConstraintError(
            f"the fitted model almost never draws the rebalanced values of column "
            f"{column + 1} of the modelled ones ({got} of {size} rows)",
            fix="lower the rebalance share, or rebalance a value the twin's domain keeps",
        )


def _rule(sql: str, null_holds: bool) -> Rule:
    return Rule(RuleKind.EXPRESSION, sql, (), "rebalance", null_holds)


def _literal(value: Any) -> str:
    from sqlglot import exp

    return exp.convert(value).sql(dialect="duckdb")


def sampling_record(generator: TwinGenerator) -> str | None:
    """The ledger's `sampling` JSON: the constraints and the rows their sampling redrew."""
    if getattr(generator, "constraints", None) is None:  # nothing constrained the sampling
        return None
    import json

    record = generator.constraints.describe()
    if generator.constraints.binding:  # else nothing was drawn under them
        record.update(generator.log.describe(generator.rows))
    return json.dumps(record, default=str)


def sampling_lines(generator: TwinGenerator) -> list[str]:
    """One log line per constraint that made sampling redraw rows."""
    log = getattr(generator, "log", None)
    if log is None:
        return []
    return [
        f"redrew {count} of {log.drawn} drawn rows for {label}"
        for label, count in log.broken.items()
        if count
    ]


def fresh_keys(models: Any, names: tuple[str, ...]) -> set[str]:
    """Columns holding fresh keys: rules on them are not redrawn for."""
    return {
        n for n, m in zip(names, models, strict=True) if isinstance(m, KeyModel | StringKeyModel)
    }
