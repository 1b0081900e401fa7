"""Foreign keys read from the dbt project: its `relationships` tests, via `target/manifest.json`.

A dbt-duckdb Python model gets no `graph`, but dbt writes the parsed manifest to the target
path before it executes any node (`dbt build`/`run` parse first, then write `manifest.json`,
then run), so a fresh clone's first `dbt build` already finds every test of the project there.
A `relationships` test attached to the twin model, on a plain column, with `to: ref('parent')`
is a foreign key of that twin: the test that checks the twin is also what shapes it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from dbt_synth.errors import ConfigError
from dbt_synth.relational.keys import ForeignKey, KeyOrigin, table_call

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def manifest_location(configured: str | None = None) -> Path | None:
    """`configured`, else `<project dir>/<target path>/manifest.json` of the running dbt."""
    if configured:
        return Path(configured)
    try:
        from dbt.flags import get_flags
    except ImportError:
        return None
    flags = get_flags()
    project = Path(getattr(flags, "PROJECT_DIR", None) or ".")
    target = Path(getattr(flags, "TARGET_PATH", None) or "target")
    return (target if target.is_absolute() else project / target) / "manifest.json"


def discover_keys(model: str, path: Path | None) -> tuple[ForeignKey, ...]:
    """Foreign keys of twin `model` from the `relationships` tests attached to it."""
    if path is None or not path.exists():
        return ()
    try:
        manifest = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise ConfigError(
            f"cannot read the dbt manifest at {path} ({error})",
            fix="run `dbt parse` or set synth.discover: false and list synth.foreign_keys",
            model=model,
        ) from None
    return keys_from_manifest(manifest, model)


def keys_from_manifest(manifest: dict[str, Any], model: str) -> tuple[ForeignKey, ...]:
    model_ids = {
        unique_id
        for unique_id, node in manifest.get("nodes", {}).items()
        if node.get("resource_type") == "model" and node.get("name") == model
    }
    keys = []
    for node in manifest.get("nodes", {}).values():
        if node.get("resource_type") != "test":
            continue
        meta = node.get("test_metadata") or {}
        if meta.get("name") != "relationships" or node.get("attached_node") not in model_ids:
            continue
        kwargs = meta.get("kwargs") or {}
        key = relationships_key(kwargs.get("column_name"), kwargs, sources=False)
        if key is not None:
            keys.append(key)
    return tuple(sorted(keys, key=lambda k: k.columns))


def relationships_key(
    column: Any, kwargs: Mapping[str, Any], *, sources: bool
) -> ForeignKey | None:
    """The foreign key a `relationships` test on `column` declares (its `to` and `field`), else
    None. THE reading of such tests, for a twin's keys here and for `init` on the originals.

    Expression tests (composite keys checked as `a || '|' || b`) are checks only: composite
    keys come from synth.foreign_keys. A twin's parent is a twin model, so a test against a
    source shapes nothing unless `sources` (init, where parents are the originals).
    """
    call = table_call(str(kwargs.get("to", "")))
    field = kwargs.get("field")
    if call is None or (call.source and not sources) or not (_plain(column) and _plain(field)):
        return None
    return ForeignKey((column,), call.label, (field,), origin=KeyOrigin.RELATIONSHIPS_TEST)


def _plain(name: Any) -> bool:
    return isinstance(name, str) and _IDENTIFIER.fullmatch(name) is not None
