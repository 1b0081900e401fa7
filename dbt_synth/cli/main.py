"""`dbt-synth` commands: thin typer wrappers that print with rich and exit 1 on a SynthError."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from dbt_synth.cli.dbt_project import DbtProject
from dbt_synth.errors import SynthError

app = typer.Typer(
    help="Differentially private synthetic twins for a dbt project.",
    no_args_is_help=True,
    add_completion=False,
)
console = Console()

ProjectDir = Annotated[
    Path, typer.Option("--project-dir", help="The dbt project (default: current directory).")
]
ProfilesDir = Annotated[
    Path | None, typer.Option("--profiles-dir", help="Where profiles.yml is (dbt's default).")
]
Target = Annotated[str | None, typer.Option("--target", "-t", help="dbt target to use.")]


@app.command()
def init(
    project_dir: ProjectDir = Path("."),
    profiles_dir: ProfilesDir = None,
    target: Target = None,
    select: Annotated[
        str | None,
        typer.Option(
            "--select", "-s", help="dbt selection of sources/models to twin (default: meta.synth)."
        ),
    ] = None,
    exclude: Annotated[str | None, typer.Option("--exclude", help="dbt exclusion.")] = None,
    epsilon: Annotated[
        float, typer.Option(help="ε budget of each twin whose meta.synth sets none.")
    ] = 1.0,
    directory: Annotated[
        str | None, typer.Option("--dir", help="Where the twins go (default: <model-path>/synth).")
    ] = None,
    force: Annotated[bool, typer.Option(help="Regenerate files you edited.")] = False,
    synth_mode: Annotated[
        bool, typer.Option(help="Write the source() override that enables synth mode.")
    ] = True,
) -> None:
    """Write a twin model and yml (config, budget, tests) per selected source or model."""
    from dbt_synth.cli.scaffold import init_project

    project = DbtProject(project_dir.resolve(), _resolve(profiles_dir), target)
    with _errors():
        result = init_project(
            project,
            select=select,
            exclude=exclude,
            epsilon=epsilon,
            directory=directory,
            force=force,
            synth_mode=synth_mode,
        )
    twins = Table("original", "twin", "ε", "inherited tests", "foreign keys", title="twins")
    for candidate in result.candidates:
        twins.add_row(
            candidate.label,
            candidate.twin_name,
            f"{candidate.synth.get('epsilon', epsilon):g}",
            str(len(candidate.tests)),
            ", ".join(f"{k.label} → {k.parent}" for k in candidate.foreign_keys) or "-",
        )
    console.print(twins)
    table = Table("file", "outcome", title=f"dbt-synth init: {len(result.candidates)} twin(s)")
    for written in result.written:
        table.add_row(str(written.path.relative_to(project.project_dir)), written.outcome.value)
    console.print(table)
    for note in result.notes:
        console.print(f"[yellow]note:[/yellow] {note}")
    console.print(
        "next: [bold]dbt build --select tag:dbt_synth_twin[/bold] builds the twins; "
        "[bold]dbt build --vars 'synth: true'[/bold] runs your project on them."
    )


@app.command()
def report(
    project_dir: ProjectDir = Path("."),
    profiles_dir: ProfilesDir = None,
    target: Target = None,
    select: Annotated[
        str | None, typer.Option("--select", "-s", help="Twins to report (default: all).")
    ] = None,
    out: Annotated[
        Path | None, typer.Option(help="Output folder (default: <target-path>/synth_report).")
    ] = None,
) -> None:
    """Write an HTML report per twin (real vs twin plots, tests, ε ledger) and a summary."""
    from dbt_synth.cli.reporting import report_project

    project = DbtProject(project_dir.resolve(), _resolve(profiles_dir), target)
    with _errors():
        summaries = report_project(project, select=select, out=out)
    table = Table(
        "twin", "ε spent / target", "rows", "mean TVD", "tests", "report", title="dbt-synth report"
    )
    for s in summaries:
        table.add_row(
            s.twin,
            f"{s.epsilon:.3f} / {s.target_epsilon:g}",
            f"{s.twin_rows:,}",
            f"{s.mean_tvd:.3f}",
            s.tests,
            str(s.path),
        )
    console.print(table)


class _errors:
    """Print a SynthError as one red line and exit 1: no traceback for a user mistake."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind, error, _traceback) -> bool:
        if isinstance(error, SynthError):
            console.print(f"[red]{error}[/red]")
            raise typer.Exit(1)
        return False


def _resolve(path: Path | None) -> Path | None:
    return path.resolve() if path is not None else None
