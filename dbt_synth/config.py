"""The `synth` config of a twin, validated once, with errors that say which key to fix.

A twin's config comes from dbt's own places (`dbt_project.yml` `+synth:`, a yml `config:` block or
`dbt.config(synth={...})` in the model file) and reaches us as a plain dict.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from dataclasses import dataclass, field, fields
from datetime import timedelta
from typing import Any

from dbt_synth.errors import ConfigError
from dbt_synth.keys import IdForm
from dbt_synth.mechanisms import mechanism_names
from dbt_synth.roles import DEFAULT_LOCALE, FORMAT_ROLE, FormatPattern, role_names
from dbt_synth.rules import Rebalance, Rule, parse_rules, predicate

# Derived from the role registry (dbt_synth/roles.py): structural roles, then semantic ones.
COLUMN_ROLES = role_names()
UNSUPPORTED_POLICIES = ("error", "null")


@dataclass(frozen=True)
class ColumnConfig:
    """Per-column settings. Public facts (bounds, categories) cost no ε because they are declared.

    `role`: `category` forces a categorical domain, `text` format-preserving generated strings,
    `id` new unique identifiers; `auto` decides from the DP domain estimate. A semantic role
    (`first_name`, `email`, …, `format`) keeps the DP head and generates the tail (tails.py).
    `format`: a declared pattern (roles.FormatPattern) for role `format` or an `id`'s form.
    `id_form`: `reserved` (default) keys never equal a real key; `plain` opts out (keys.py).
    """

    role: str = "auto"
    # Numbers, or ISO dates/times for DATE, TIMESTAMP and TIME columns (see axis.axis_bound).
    min: float | str | None = None
    max: float | str | None = None
    categories: tuple[Any, ...] | None = None
    format: str | None = None
    id_form: IdForm = IdForm.RESERVED


@dataclass(frozen=True)
class RefitPolicy:
    """When a stored fit is too old to resample from: `refit: {every: "7 days"}`."""

    every: timedelta

    @classmethod
    def parse(cls, raw: Any, model: str | None) -> RefitPolicy:
        every = raw.get("every") if isinstance(raw, dict) and set(raw) == {"every"} else None
        match = _DURATION.fullmatch(str(every).strip()) if every is not None else None
        if match is None or int(match.group(1)) < 1:
            raise ConfigError(
                f"refit must be {{every: '<n> hours|days|weeks'}}, got {raw!r}",
                fix="write refit: {every: 7 days}, or leave it out to refit only when the config "
                "or schema changes",
                model=model,
            )
        unit = match.group(2).rstrip("s") + "s"
        return cls(timedelta(**{unit: int(match.group(1))}))


_DURATION = re.compile(r"(\d+)\s*(hours?|days?|weeks?)")


@dataclass(frozen=True)
class SynthConfig:
    """Everything that shapes one twin; defaults are what a dbt user gets without configuring."""

    epsilon: float = 1.0
    delta: float | None = None
    seed: int | None = None
    rows: int | None = None
    mechanism: str = "auto"
    primary_key: tuple[str, ...] = ()
    columns: dict[str, ColumnConfig] = field(default_factory=dict)
    domain_share: float = 0.25
    max_bins: int = 16
    max_fit_rows: int | None = 1_000_000
    unsupported: str = "error"
    ledger_table: str = "synth_ledger"
    ledger_schema: str | None = None
    verbose: bool = True
    # Share of source rows held out from fitting (dbt_synth/holdout.py); 0 fits on every row.
    holdout: float = 0.0
    # Faker locale of semantic roles (dbt_synth/roles.py).
    locale: str = DEFAULT_LOCALE
    # Sampling constraints, zero ε (rules.py, conditioning.py).
    rules: tuple[Rule, ...] = ()
    condition: str | None = None
    rebalance: Rebalance | None = None
    # Lifetime cap on the ε of every fit of every twin of this source (dbt_synth/store).
    max_total_epsilon: float | None = None
    # When to refit although a stored fit matches the config and schema (dbt_synth/store).
    refit: RefitPolicy | None = None
    model_table: str = "synth_models"

    def column(self, name: str) -> ColumnConfig:
        return self.columns.get(name, _DEFAULT_COLUMN)

    def delta_for(self, rows: float) -> float:
        """Configured δ, else 1/(10·n) so that δ stays well below one over the row count."""
        if self.delta is not None:
            return self.delta
        return 1.0 / (10.0 * max(rows, 10.0))


_DEFAULT_COLUMN = ColumnConfig()


def parse_config(raw: dict[str, Any] | None, *, model: str | None = None) -> SynthConfig:
    """Validate a raw `synth` dict; every problem is reported with the key and a fix."""
    raw = dict(raw or {})
    _only_known(raw, SynthConfig, "synth config key(s)", model)
    if "columns" in raw:
        raw["columns"] = _parse_columns(raw["columns"], model)
    if raw.get("refit") is not None:
        raw["refit"] = RefitPolicy.parse(raw["refit"], model)
    if "primary_key" in raw:
        key = raw["primary_key"]
        raw["primary_key"] = (key,) if isinstance(key, str) else tuple(key or ())
    if "rules" in raw:
        raw["rules"] = parse_rules(raw["rules"], model)
    if raw.get("condition") is not None:
        predicate(raw["condition"], label="condition", model=model, null_holds=False)
    if "rebalance" in raw:
        raw["rebalance"] = Rebalance.parse(raw["rebalance"], model)
    config = SynthConfig(**raw)
    _check(config, model)
    return config


def _only_known(
    raw: dict[str, Any], settings: type, what: str, model: str | None, column: str | None = None
) -> None:
    """Every key of `raw` is a field of the `settings` dataclass; else the error names them."""
    known = {f.name for f in fields(settings)}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ConfigError(
            f"unknown {what} {unknown}", fix=f"use only {sorted(known)}", model=model, column=column
        )


def _parse_columns(raw: Any, model: str | None) -> dict[str, ColumnConfig]:
    if not isinstance(raw, dict):
        raise ConfigError(
            "synth.columns must be a mapping of column name to settings",
            fix="write columns: {my_column: {role: text}}",
            model=model,
        )
    parsed = {}
    for name, settings in raw.items():
        settings = dict(settings or {})
        _only_known(settings, ColumnConfig, "column setting(s)", model, column=name)
        if settings.get("categories") is not None:
            settings["categories"] = tuple(settings["categories"])
        if "id_form" in settings:
            settings["id_form"] = _id_form(settings["id_form"], model, name)
        column = ColumnConfig(**settings)
        if column.role not in COLUMN_ROLES:
            raise ConfigError(
                f"role '{column.role}' is not one of {list(COLUMN_ROLES)}",
                fix="set role to auto, category, text, id or a semantic role such as first_name",
                model=model,
                column=name,
            )
        _check_format(column, model, name)
        if (column.min is None) != (column.max is None):
            raise ConfigError(
                "public bounds need both min and max",
                fix="declare both min and max, or neither",
                model=model,
                column=name,
            )
        if column.min is not None and not _ordered(column.min, column.max, model, name):
            raise ConfigError(
                f"public bounds min={column.min} > max={column.max}",
                fix="swap them",
                model=model,
                column=name,
            )
        parsed[name] = column
    return parsed


def _id_form(raw: Any, model: str | None, column: str) -> IdForm:
    try:
        return IdForm(raw)
    except ValueError:
        raise ConfigError(
            f"id_form '{raw}' is not one of {[f.value for f in IdForm]}",
            fix="use reserved (twin keys never equal a real key) or plain",
            model=model,
            column=column,
        ) from None


def _check_format(column: ColumnConfig, model: str | None, name: str) -> None:
    if column.role == FORMAT_ROLE and column.format is None:
        raise ConfigError(
            "role format needs a format pattern",
            fix="add format: e.g. 'AA-9999' (9 digit, A/a letter, X/x letter or digit)",
            model=model,
            column=name,
        )
    if column.format is None:
        return
    try:
        FormatPattern.parse(str(column.format))
    except ValueError as error:
        raise ConfigError(
            str(error),
            fix="use 9 for a digit, A/a for a letter, X/x for a letter or digit",
            model=model,
            column=name,
        ) from None


def _check(config: SynthConfig, model: str | None) -> None:
    def bad(problem: str, fix: str) -> ConfigError:
        return ConfigError(problem, fix=fix, model=model)

    if not _is_number(config.epsilon) or not 0 < config.epsilon < math.inf:
        raise bad(
            f"epsilon must be a positive finite number, got {config.epsilon!r}",
            "set synth.epsilon > 0, e.g. 1.0",
        )
    if config.delta is not None and (not _is_number(config.delta) or not 0 < config.delta < 1):
        raise bad(
            f"delta must be in (0, 1), got {config.delta!r}",
            "set synth.delta to a small probability such as 1e-6, or leave it out",
        )
    if config.rows is not None and (not isinstance(config.rows, int) or config.rows < 1):
        raise bad(f"rows must be a positive integer, got {config.rows!r}", "set synth.rows >= 1")
    if config.seed is not None and not isinstance(config.seed, int):
        raise bad(f"seed must be an integer, got {config.seed!r}", "set synth.seed to e.g. 7")
    if config.mechanism not in mechanism_names():
        raise bad(
            f"mechanism '{config.mechanism}' is not one of {list(mechanism_names())}",
            "use auto (the benchmarked default), marginal or dpsgd",
        )
    if not 0 < config.domain_share < 1:
        raise bad(
            f"domain_share must be in (0, 1), got {config.domain_share!r}",
            "leave it at the default 0.25",
        )
    if not isinstance(config.max_bins, int) or config.max_bins < 2:
        raise bad(f"max_bins must be an integer >= 2, got {config.max_bins!r}", "use e.g. 16")
    if config.max_fit_rows is not None and (
        not isinstance(config.max_fit_rows, int) or config.max_fit_rows < 1000
    ):
        raise bad(
            f"max_fit_rows must be an integer >= 1000 or null, got {config.max_fit_rows!r}",
            "leave it at the default 1000000, or null to fit on every row",
        )
    if not _is_number(config.holdout) or not 0 <= config.holdout <= 0.5:
        raise bad(
            f"holdout must be a share in [0, 0.5], got {config.holdout!r}",
            "set synth.holdout to e.g. 0.2 (or 0 to fit on every row)",
        )
    if not _is_locale(config.locale):
        raise bad(
            f"locale '{config.locale}' is not a Faker locale",
            "use e.g. en_US, en_GB, de_DE or fr_FR",
        )
    if config.max_total_epsilon is not None and (
        not _is_number(config.max_total_epsilon) or not 0 < config.max_total_epsilon < math.inf
    ):
        raise bad(
            f"max_total_epsilon must be a positive number, got {config.max_total_epsilon!r}",
            "set synth.max_total_epsilon to the ε this source may spend over all fits, e.g. 5",
        )
    if config.unsupported not in UNSUPPORTED_POLICIES:
        raise bad(
            f"unsupported '{config.unsupported}' is not one of {list(UNSUPPORTED_POLICIES)}",
            "use error (default) or null",
        )


def _is_locale(value: Any) -> bool:
    from faker.config import AVAILABLE_LOCALES

    return isinstance(value, str) and value in AVAILABLE_LOCALES


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _ordered(low: Any, high: Any, model: str | None, column: str) -> bool:
    """Whether declared bounds are in order: both numbers, or both dates/times."""
    return _bound_key(low, model, column) <= _bound_key(high, model, column)


def _bound_key(value: Any, model: str | None, column: str) -> float:
    """A declared bound as a number to compare: itself, or seconds of an ISO date/time."""
    if isinstance(value, dt.date | dt.time):
        value = value.isoformat()
    try:
        return float(value)
    except (TypeError, ValueError):
        pass
    text = str(value)
    try:
        moment = dt.datetime.fromisoformat(text).replace(tzinfo=None)
        return (moment - dt.datetime(1970, 1, 1)).total_seconds()
    except ValueError:
        pass
    try:
        time = dt.time.fromisoformat(text)
        return time.hour * 3600.0 + time.minute * 60.0 + time.second + time.microsecond / 1e6
    except ValueError:
        raise ConfigError(
            f"public bound {value!r} is neither a number nor an ISO date/time",
            fix="write min/max as numbers, or as ISO dates/times ('2016-12-31')",
            model=model,
            column=column,
        ) from None
