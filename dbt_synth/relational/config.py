"""The relational part of a child twin's `synth` config, parsed into typed settings.

`split_config` takes these keys out of the `synth` dict; the rest is the single-table config
that `dbt_synth.config.parse_config` reads.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any

from dbt_synth.errors import ConfigError
from dbt_synth.relational.keys import ForeignKey, parse_key

# Share of the child's ε spent on the children-per-parent histograms (all FKs together).
DEFAULT_CARDINALITY_SHARE = 0.1


class PrivacyUnit(Enum):
    """What one DP guarantee protects: a child row, or a parent with all its children."""

    ROW = "row"
    PARENT = "parent"


class OrphanPolicy(Enum):
    """Real child keys with no parent: attached to parent-twin keys, or kept as fresh keys."""

    CLEAN = "clean"
    REPRODUCE = "reproduce"


@dataclass(frozen=True)
class RelationalConfig:
    """The relational settings of a child twin."""

    foreign_keys: tuple[ForeignKey, ...] = ()
    privacy_unit: PrivacyUnit = PrivacyUnit.ROW
    max_children: int | None = None
    orphans: OrphanPolicy = OrphanPolicy.CLEAN
    cardinality_share: float = DEFAULT_CARDINALITY_SHARE
    manifest_path: str | None = None
    discover: bool = True


_SETTINGS = (
    "foreign_keys",
    "privacy_unit",
    "max_children",
    "orphans",
    "cardinality_share",
    "manifest_path",
    "discover",
)


def split_config(
    raw: dict[str, Any] | None, *, model: str
) -> tuple[RelationalConfig, dict[str, Any]]:
    """Separate the relational keys of a `synth` dict from the single-table ones."""
    raw = dict(raw or {})
    mine = {k: raw.pop(k) for k in _SETTINGS if k in raw}
    keys = tuple(parse_key(item, model) for item in mine.pop("foreign_keys", None) or ())
    unit = _choice(PrivacyUnit, mine.pop("privacy_unit", PrivacyUnit.ROW.value), model)
    orphans = _choice(OrphanPolicy, mine.pop("orphans", OrphanPolicy.CLEAN.value), model)
    config = RelationalConfig(foreign_keys=keys, privacy_unit=unit, orphans=orphans, **mine)
    if config.privacy_unit is PrivacyUnit.PARENT and not (
        isinstance(config.max_children, int) and config.max_children >= 1
    ):
        raise ConfigError(
            "privacy_unit: parent needs a cap on children per parent",
            fix="set synth.max_children to a positive integer, e.g. 50",
            model=model,
        )
    if not 0 < config.cardinality_share < 1:
        raise ConfigError(
            f"cardinality_share must be in (0, 1), got {config.cardinality_share!r}",
            fix=f"leave it at the default {DEFAULT_CARDINALITY_SHARE}",
            model=model,
        )
    return config, raw


_FIXES = {
    PrivacyUnit: "use row (each child row) or parent (a parent with all its children, with "
    "max_children set)",
    OrphanPolicy: "use clean (default: every twin key exists in the parent twin) or reproduce",
}
_SETTING_OF = {PrivacyUnit: "privacy_unit", OrphanPolicy: "orphans"}


def _choice(kind: type[PrivacyUnit] | type[OrphanPolicy], value: Any, model: str):
    values = [member.value for member in kind]
    if value not in values:
        raise ConfigError(
            f"{_SETTING_OF[kind]} '{value}' is not one of {values}",
            fix=_FIXES[kind],
            model=model,
        )
    return kind(value)
