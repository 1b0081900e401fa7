"""The user's dbt project as the CLI sees it: its manifest, selections and query results.

Everything goes through dbt's own programmatic entry point (`dbtRunner`), so profiles, targets,
selectors and adapters behave exactly as in the user's shell, on any warehouse dbt supports.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dbt_synth.errors import SynthError


@dataclass(frozen=True)
class DbtProject:
    """Where the project lives and how to reach its warehouse (dbt's own flags)."""

    project_dir: Path
    profiles_dir: Path | None = None
    target: str | None = None
    vars: dict[str, Any] = field(default_factory=dict)

    def flags(self) -> list[str]:
        flags = ["--project-dir", str(self.project_dir)]
        if self.profiles_dir is not None:
            flags += ["--profiles-dir", str(self.profiles_dir)]
        if self.target:
            flags += ["--target", self.target]
        if self.vars:
            import json

            flags += ["--vars", json.dumps(self.vars)]
        return flags

    def invoke(self, *args: str, quiet: bool = True) -> Any:
        """Run one dbt command in-process; a failure becomes one SynthError naming the command."""
        from dbt.cli.main import dbtRunner

        noise = ["--log-level", "none"] if quiet else []
        result = dbtRunner().invoke([*args, *self.flags(), *noise])
        if not result.success:
            detail = result.exception or _first_error(result)
            raise SynthError(
                f"`dbt {' '.join(args[:1])}` failed in {self.project_dir}: {detail}",
                fix="run the same dbt command in the project to see dbt's full error, fix it, "
                "then re-run dbt-synth",
            )
        return result.result

    def manifest(self) -> Any:
        """A freshly parsed manifest (`dbt parse`; partial parsing keeps repeats fast)."""
        return self.invoke("parse")

    def select(
        self,
        select: Sequence[str],
        exclude: Sequence[str] = (),
        resource_types: Sequence[str] = ("source", "seed", "model"),
    ) -> list[str]:
        """Unique ids of the nodes dbt's own selection picks (`dbt ls`): several values are a
        union, and `resource_type:`, `path:`, `tag:`, graph operators all work as in dbt."""
        import json

        args = ["ls", "--select", *select, "--output", "json", "--output-keys", "unique_id"]
        for resource_type in resource_types:
            args += ["--resource-type", resource_type]
        if exclude:
            args += ["--exclude", *exclude]
        return [json.loads(line)["unique_id"] for line in self.invoke(*args) or []]

    def compile(self) -> dict[str, str]:
        """The compiled SQL of every model, by unique id (what column lineage reads)."""
        result = self.invoke("compile", "--select", "resource_type:model")
        return {
            r.node.unique_id: r.node.compiled_code
            for r in getattr(result, "results", None) or []
            if getattr(r.node, "compiled_code", None) and r.node.resource_type == "model"
        }

    def query(self, sql: str) -> Any:
        """All rows of a Jinja-SQL query (refs/sources resolve as in a model), as agate."""
        result = self.invoke("show", "--inline", sql, "--limit", "-1")
        return result.results[0].agate_table


def _first_error(result: Any) -> str:
    for item in getattr(result.result, "results", None) or []:
        if str(getattr(item, "status", "")) in ("error", "fail"):
            return str(item.message)
    return "see dbt's output above"
