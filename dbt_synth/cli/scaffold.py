"""`dbt-synth init`: write one twin model + yml per candidate, and the synth-mode macros.

The generated files build green as written: the yml carries the twin's synth config (its ε
budget) and only data tests a DP twin is guaranteed to pass. Re-running is idempotent and never
loses a user's edit (see `files.py`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import yaml

from dbt_synth.cli.candidates import (
    TWIN_TAG,
    Candidate,
    candidates,
    is_twin,
    label_of,
    original_of,
)
from dbt_synth.cli.dbt_project import DbtProject
from dbt_synth.cli.files import Written, write_generated
from dbt_synth.cli.proposals import generated_columns, with_proposed_roles, with_rules
from dbt_synth.cli.synth_mode_file import write_synth_mode_macros
from dbt_synth.cli.traced import trace
from dbt_synth.errors import ConfigError

# The custom schema of every twin (its ledger goes next to it): dbt's default
# generate_schema_name makes it `<target schema>_synth`, a schema that holds nothing real.
TWIN_SCHEMA = "synth"


@dataclass(frozen=True)
class InitResult:
    candidates: tuple[Candidate, ...]
    written: tuple[Written, ...]
    notes: tuple[str, ...]


def init_project(
    project: DbtProject,
    *,
    select: Sequence[str] = (),
    exclude: Sequence[str] = (),
    epsilon: float = 1.0,
    directory: str | None = None,
    force: bool = False,
    synth_mode: bool = True,
    schema: str | None = TWIN_SCHEMA,
) -> InitResult:
    """Scaffold twins for the selected (or `meta: {synth: ...}`-marked) seeds, sources and
    models."""
    manifest = project.manifest()
    selected = project.select(select, exclude) if select else None
    chosen = candidates(manifest, selected)
    if not chosen:
        raise ConfigError(
            "nothing to twin: no seed, source or model "
            + (
                f"matches --select '{' '.join(select)}'"
                if select
                else "has a meta: {synth: ...} block"
            ),
            fix="pass --select resource_type:seed or source:my_source (dbt selection syntax), or "
            "add meta: {synth: {epsilon: 1.0}} to a seed, source table or model",
        )
    traced, lineage_note = trace(project, manifest, [c.unique_id for c in chosen])
    chosen = candidates(manifest, selected, traced)
    out = project.project_dir / (directory or _default_directory(project.project_dir))
    chosen, notes = _skip_hand_written(chosen, manifest, out.relative_to(project.project_dir))
    notes += [lineage_note] if lineage_note else []
    available = package_tests(manifest)
    by_label = {c.label: c for c in chosen}
    chosen = [
        replace(c, foreign_keys=tuple(k for k in c.foreign_keys if k.parent in by_label))
        for c in chosen
    ]
    # Role proposals (roles.py) and rules read from the original's tests (rules.py).
    chosen = [with_rules(with_proposed_roles(c, manifest, project), manifest) for c in chosen]
    written = []
    for candidate in chosen:
        written.append(
            write_generated(
                out / f"{candidate.twin_name}.py", twin_model(candidate, by_label), force=force
            )
        )
        written.append(
            write_generated(
                out / f"{candidate.twin_name}.yml",
                twin_yml(candidate, epsilon, available, by_label, schema=schema),
                force=force,
            )
        )
    if synth_mode:
        twins = {**existing_twins(manifest), **{c.label: c.twin_name for c in chosen}}
        macros, macro_notes = write_synth_mode_macros(project, manifest, twins, force)
        written += macros
        notes += macro_notes
    return InitResult(tuple(chosen), tuple(written), tuple(notes))


def existing_twins(manifest: Any) -> dict[str, str]:
    """Every twin the project has (by the marker), by the label of the table it twins."""
    twins = {}
    for node in manifest.nodes.values():
        original = original_of(manifest, node) if is_twin(node) else None
        if original is not None:
            twins[label_of(original)] = node.name
    return twins


def twin_model(candidate: Candidate, others: dict[str, Candidate] | None = None) -> str:
    """The twin's model file; `others` (by label) are the twins its foreign keys reference."""
    kind = candidate.kind
    if candidate.foreign_keys:
        return _child_twin_model(candidate, others or {})
    return (
        f'"""DP twin of {kind} {candidate.label}; its synth config and tests are in '
        f'{candidate.twin_name}.yml."""\n\n'
        "import dbt_synth\n\n\n"
        "def model(dbt, session):\n"
        '    dbt.config(materialized="table")\n'
        f"    source = {candidate.reference}\n"
        '    return dbt_synth.twin(dbt, session, source, dbt.config.get("synth"))\n'
    )


def _skip_hand_written(
    chosen: list[Candidate], manifest: Any, directory: Path
) -> tuple[list[Candidate], list[str]]:
    """Leave out a twin that already exists as a model init did not write (a duplicate name
    would fail dbt's parse); say so."""
    existing = {
        node.name: Path(node.original_file_path)
        for node in manifest.nodes.values()
        if node.resource_type == "model"
    }
    kept, notes = [], []
    for candidate in chosen:
        path = existing.get(candidate.twin_name)
        if path is not None and path != directory / f"{candidate.twin_name}.py":
            notes.append(
                f"{candidate.label}: kept your model {candidate.twin_name} ({path}); "
                "remove it to let init write the twin"
            )
            continue
        kept.append(candidate)
    return kept, notes


def package_tests(manifest: Any) -> frozenset[str]:
    """The dbt_synth generic tests the installed package version provides."""
    prefix = "macro.dbt_synth.test_"
    return frozenset(uid[len(prefix) :] for uid in manifest.macros if uid.startswith(prefix))


def _child_twin_model(candidate: Candidate, others: dict[str, Candidate]) -> str:
    """A child twin: its foreign keys take values from its parents' twins (dbt builds those first).

    Each parent is passed as (its twin, its real table): the child learns, within its own ε, how
    it depends on the parent's attributes. One `dbt.ref`/`dbt.source` per statement: dbt's
    Python-model parser does not see nested calls.
    """
    referenced = {others[k.parent].twin_name: others[k.parent] for k in candidate.foreign_keys}
    parents = sorted(referenced.items())
    keys = "".join(
        f"{k.label} -> {others[k.parent].twin_name}.{'+'.join(k.parent_columns)}\n"
        for k in candidate.foreign_keys
    )
    lines, mapping = [], []
    for i, (name, parent) in enumerate(parents):
        twin = name if name.isidentifier() else f"parent_{i}"
        lines.append(f"    {twin} = dbt.ref({json.dumps(name)})\n")
        lines.append(f"    {twin}_real = {parent.reference}\n")
        mapping.append(f"        {json.dumps(name)}: ({twin}, {twin}_real),\n")
    return (
        f'"""DP child twin of {candidate.label}; its foreign keys hold parent twin keys:\n\n'
        f"{keys}\n"
        f"The keys are the relationships tests in {candidate.twin_name}.yml.\n"
        '"""\n\n'
        "import dbt_synth\n\n\n"
        "def model(dbt, session):\n"
        '    dbt.config(materialized="table")\n'
        + "".join(lines)
        + f"    source = {candidate.reference}\n"
        + "    parents = {\n"
        + "".join(mapping)
        + "    }\n"
        "    return dbt_synth.child_twin(\n"
        '        dbt, session, source, dbt.config.get("synth"), parents=parents\n'
        "    )\n"
    )


def twin_yml(
    candidate: Candidate,
    epsilon: float,
    available: frozenset[str] = frozenset(),
    others: dict[str, Candidate] | None = None,
    *,
    schema: str | None = TWIN_SCHEMA,
) -> str:
    """The twin's yml: description, the marker, the schema, the synth config and its tests."""
    synth = synth_config(candidate, epsilon)
    columns: dict[str, list[Any]] = {}
    for key in candidate.foreign_keys:
        parent = (others or {})[key.parent].twin_name
        for column, field in zip(key.columns, key.parent_columns, strict=True):
            columns.setdefault(column, []).append(
                {"relationships": {"arguments": {"to": f"ref('{parent}')", "field": field}}}
            )
    for test in candidate.tests:
        entry: Any = test.name
        if test.arguments:
            entry = {test.name: {"arguments": test.arguments}}
        columns.setdefault(test.column, []).append(entry)
    model: dict[str, Any] = {
        "name": candidate.twin_name,
        "description": f"Differentially private synthetic twin of {candidate.label} "
        f"(ε = {synth['epsilon']}), built by dbt-synth.",
        "config": {"tags": [TWIN_TAG], **({"schema": schema} if schema else {}), "synth": synth},
    }
    model_tests = _model_tests(candidate, synth, available)
    if model_tests:
        model["data_tests"] = model_tests
    if columns:
        model["columns"] = [{"name": c, "data_tests": t} for c, t in columns.items()]
    text = yaml.safe_dump(
        {"version": 2, "models": [model]}, sort_keys=False, allow_unicode=True, width=100
    )
    return text + _proposed_keys(candidate, others or {})


def _proposed_keys(candidate: Candidate, others: dict[str, Candidate]) -> str:
    """Keys guessed from column names, as comments: a user sees them and applies or deletes
    them; a wrong key applied silently would shape the twin on a relation that is not there."""
    lines = [
        f"#   {key.columns[0]}: relationships to ref('{others[key.parent].twin_name}'), "
        f"field {key.parent_columns[0]}\n"
        for key in candidate.proposals
        if key.parent in others and key not in candidate.foreign_keys
    ]
    if not lines:
        return ""
    return (
        "# Keys proposed by name only (not applied). To apply one, add a relationships test\n"
        "# under the column, or declare it on the original (or downstream) and re-run init:\n"
        + "".join(lines)
    )


def synth_config(candidate: Candidate, epsilon: float) -> dict[str, Any]:
    """The twin's synth config: the user's meta block, the ε budget, unique columns as keys."""
    synth = {"epsilon": epsilon, **candidate.synth}
    unique = [t.column for t in candidate.tests if t.name == "unique"]
    unique += [c for c in candidate.referenced if c not in unique]
    if unique and "primary_key" not in synth:
        synth["primary_key"] = unique[0] if len(unique) == 1 else unique
    # The project's accepted values are public (they are in its yml): declared, they cost no ε
    # and survive on a table too small for DP to reveal any value.
    accepted = {
        t.column: {"categories": list(t.arguments["values"])}
        for t in candidate.tests
        if t.name == "accepted_values" and t.arguments.get("values")
    }
    if accepted:
        synth["columns"] = {**accepted, **(synth.get("columns") or {})}
    return synth


def _model_tests(
    candidate: Candidate, synth: dict[str, Any], available: frozenset[str]
) -> list[dict[str, Any]]:
    """Twin-vs-real tests of the dbt_synth package, where the installed version has them.

    Keys (primary and foreign) are left out of every comparison. The schema must match
    exactly (an error otherwise). Drift and copies are judged against
    thresholds that DP noise can cross on small or odd tables, so they warn: the build stays
    green and the report shows what they measured; tighten them in the yml once you know the
    twin.
    """
    real = candidate.jinja_reference
    keys = synth.get("primary_key")
    keys = [keys] if isinstance(keys, str) else list(keys or [])
    # A child twin's foreign keys hold its parent twin's keys, which are fresh (and by default
    # never equal a real key): compared with the real column they would always drift, and they
    # can never match a real row.
    keys += [c for key in candidate.foreign_keys for c in key.columns if c not in keys]
    warn = {"severity": "warn"}
    tests: list[dict[str, Any]] = []
    if "schema_matches" in available:
        tests.append({"dbt_synth.schema_matches": {"arguments": {"compare_model": real}}})
    for name in ("distribution_drift", "correlation_drift", "no_exact_copies"):
        if name in available:
            arguments: dict[str, Any] = {"compare_model": real}
            skipped = keys + generated_columns(synth, keys, ids_only=name == "no_exact_copies")
            if skipped:
                arguments["exclude"] = skipped
            if name == "no_exact_copies":
                # Rows of a coarse table meet by chance: judge copies over the real repeat rate.
                arguments["over_real_duplicates"] = True
            tests.append({f"dbt_synth.{name}": {"arguments": arguments, "config": dict(warn)}})
    identifiers = [c for c in candidate.columns if c not in keys]
    if "near_duplicate_leakage" in available and synth.get("holdout") and len(identifiers) >= 2:
        arguments = {
            "compare_model": real,
            "quasi_identifiers": identifiers,
            "holdout": synth["holdout"],
        }
        if keys:
            arguments["key"] = keys
        tests.append({"dbt_synth.near_duplicate_leakage": {"arguments": arguments, "config": warn}})
    return tests


def _default_directory(project_dir: Path) -> str:
    settings = yaml.safe_load((project_dir / "dbt_project.yml").read_text()) or {}
    paths = settings.get("model-paths") or settings.get("source-paths") or ["models"]
    return f"{paths[0]}/synth"
