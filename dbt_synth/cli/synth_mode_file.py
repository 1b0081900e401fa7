"""`macros/dbt_synth_mode.sql`: the root project's overrides that make synth mode.

dbt lets only the root project override `ref`/`source` and its own global macros, so `init`
writes them there, each a thin call into the package (macros/synth_mode/):

- `ref`/`source`: a twinned seed, source or model resolves to its twin. dbt records a node's
  dependencies at parse time, before its graph exists, so they carry the list of twins (written
  from the twin marker by every `init`; synth mode checks it against the graph at compile time).
- `get_where_subquery`, `test_unique`, `test_not_null`: generic tests. dbt renders a test with
  only the macros its own macros call, and `ref`/`source` calls are not counted; naming the
  root's `ref`/`source` (package-qualified) in `get_where_subquery`, which every generic test
  calls, puts the overrides in each test's namespace, so a test on a twinned seed records and
  reads the twin. dbt skips rendering `unique`/`not_null` at parse time (it records their model
  directly); the root's own definitions, identical to dbt's, make it render them.
- `build_ref_function`/`build_source_function`: a Python model's `dbt.ref`/`dbt.source` are
  recorded through the overrides (dbt calls them on what its parser finds), so they name the
  twin; dbt's Python helpers are then completed with the original names pointing at the twins.
- `should_full_refresh`: in synth mode an incremental model built on twins is rebuilt whole,
  so no row a real build left in its table survives or is read (`is_incremental()` is false).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from dbt_synth.cli.dbt_project import DbtProject
from dbt_synth.cli.files import Written, remove_generated, write_generated

SYNTH_MODE_FILE = "dbt_synth_mode.sql"
_HEAD = """\
{{#- Synth mode: `dbt build --vars 'synth: true'` reads every twinned seed, source and model
    through its twin, in models, generic tests and Python models. `dbt-synth init` writes this
    file; re-run it after adding a twin. -#}}
{{% macro dbt_synth_twins() %}}
  {{{{ return({twins}) }}}}
{{% endmacro %}}
"""
# The overrides, by the root macro each defines: (its text, what a user's own override of it
# should do instead). Without `ref` and `source` there is no synth mode; without another one
# what it serves fails at compile time in synth mode rather than read real data.
_OVERRIDES: dict[str, tuple[str, str]] = {
    "ref": (
        """
{{% macro ref() %}}
  {{{{ return(dbt_synth.synth_ref(varargs, kwargs, dbt_synth_twins())) }}}}
{{% endmacro %}}
""",
        "return dbt_synth.synth_ref(varargs, kwargs, twins)",
    ),
    "source": (
        """
{{% macro source(source_name, table_name) %}}
  {{{{ return(dbt_synth.synth_source(source_name, table_name, dbt_synth_twins())) }}}}
{{% endmacro %}}
""",
        "return dbt_synth.synth_source(source_name, table_name, twins)",
    ),
    "get_where_subquery": (
        """
{{#- Generic tests: dbt gives a test only the macros its macros name, and counts no plain
    ref()/source() call; the package-qualified names below (never called) put the two
    overrides above in every generic test, so a test on a twinned table reads the twin. -#}}
{{% macro get_where_subquery(relation) %}}
  {{% if false %}}{{{{ {project}.ref() }}}}{{{{ {project}.source() }}}}{{% endif %}}
  {{{{ return(adapter.dispatch('get_where_subquery', 'dbt')(relation)) }}}}
{{% endmacro %}}
""",
        "name {project}.ref() and {project}.source() in it, as in the dbt_synth docs",
    ),
    "test_unique": (
        """
{{#- dbt's own unique and not_null, defined here so that dbt renders them at parse time (it
    skips that for its own two, and records their model without the overrides). -#}}
{{% test unique(model, column_name) %}}
  {{{{ adapter.dispatch('test_unique', 'dbt')(model, column_name) }}}}
{{% endtest %}}
""",
        "keep it (a root definition is rendered at parse time, which synth mode needs)",
    ),
    "test_not_null": (
        """
{{% test not_null(model, column_name) %}}
  {{{{ adapter.dispatch('test_not_null', 'dbt')(model, column_name) }}}}
{{% endtest %}}
""",
        "keep it (a root definition is rendered at parse time, which synth mode needs)",
    ),
    "build_ref_function": (
        """
{{#- Python models: dbt.ref()/dbt.source() of a twinned table read the twin. -#}}
{{% macro build_ref_function(model) %}}
  {{{{- dbt.build_ref_function(model) }}}}
  {{{{- dbt_synth.synth_python_refs(model, dbt_synth_twins()) }}}}
{{% endmacro %}}
""",
        "append dbt_synth.synth_python_refs(model, twins) to its output",
    ),
    "build_source_function": (
        """
{{% macro build_source_function(model) %}}
  {{{{- dbt.build_source_function(model) }}}}
  {{{{- dbt_synth.synth_python_sources(model, dbt_synth_twins()) }}}}
{{% endmacro %}}
""",
        "append dbt_synth.synth_python_sources(model, twins) to its output",
    ),
    "should_full_refresh": (
        """
{{#- Incremental models: in synth mode a model built on twins is rebuilt whole, never merged
    into a table that a real build filled. -#}}
{{% macro should_full_refresh() %}}
  {{{{ return(dbt_synth.synth_should_full_refresh(dbt_synth_twins())) }}}}
{{% endmacro %}}
""",
        "return dbt_synth.synth_should_full_refresh(twins) where it returns dbt's own rule",
    ),
}
_ESSENTIAL = ("ref", "source")
# What init wrote before `ref` was redirected too; removed (if untouched) for the file above.
_OLD_SOURCE_FILE = "dbt_synth_source.sql"


def synth_mode_macros(
    project_name: str, twins: dict[str, str], skip: frozenset[str] = frozenset()
) -> str:
    """The body of `dbt_synth_mode.sql` for a root project and its twins (by original label),
    without the overrides in `skip` (the project defines those itself)."""
    values = {"twins": json.dumps(dict(sorted(twins.items()))), "project": project_name}
    blocks = [text for name, (text, _) in _OVERRIDES.items() if name not in skip]
    return "".join(block.format(**values) for block in [_HEAD, *blocks])


def write_synth_mode_macros(
    project: DbtProject, manifest: Any, twins: dict[str, str], force: bool
) -> tuple[list[Written], list[str]]:
    """Adopt synth mode: write the overrides in the root project, leaving out those it already
    defines elsewhere (and saying what to change there); none if it has its own `ref`/`source`."""
    root = manifest.metadata.project_name
    directory = project.project_dir / _macro_directory(project.project_dir)
    path = directory / SYNTH_MODE_FILE
    written, notes = [], []
    old = remove_generated(directory / _OLD_SOURCE_FILE)
    written += [old] if old else []
    ours = {path.name, _OLD_SOURCE_FILE} if old else {path.name}
    theirs = set()
    for name, (_, fix) in _OVERRIDES.items():
        existing = manifest.macros.get(f"macro.{root}.{name}")
        if existing is not None and Path(existing.original_file_path).name not in ours:
            theirs.add(name)
            notes.append(
                f"your project already defines {name}() in {existing.original_file_path}; for "
                f"synth mode {fix.format(project=root)} (see {SYNTH_MODE_FILE} in the dbt_synth "
                "docs)"
            )
    if theirs & set(_ESSENTIAL):
        return written, notes
    body = synth_mode_macros(root, twins, frozenset(theirs))
    return [*written, write_generated(path, body, force=force)], notes


def _macro_directory(project_dir: Path) -> str:
    settings = yaml.safe_load((project_dir / "dbt_project.yml").read_text()) or {}
    return (settings.get("macro-paths") or ["macros"])[0]
