"""`dbt-synth` commands: thin typer wrappers that print with rich and exit 1 on a SynthError."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import click
import typer
from rich.console import Console
from rich.table import Table
from typer.core import TyperCommand

from dbt_synth.cli.dbt_project import DbtProject
from dbt_synth.cli.scaffold import TWIN_SCHEMA
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
Select = Annotated[
    list[str] | None,
    typer.Option(
        "--select",
        "-s",
        help="dbt selection, as in dbt: --select a b c, resource_type:seed, path:, tag: …",
    ),
]
Exclude = Annotated[list[str] | None, typer.Option("--exclude", help="dbt exclusion, as in dbt.")]
# Options that take several values the way dbt's do (`--select a b c`).
_MULTI_VALUE = ("--select", "-s", "--exclude")


class DbtSelectionCommand(TyperCommand):
    """A command whose `--select`/`--exclude` take several values like dbt's.

    click gives an option one value per occurrence; dbt users write `--select a b c`. The values
    after such an option, up to the next option, are spread into `--select a --select b ...`.
    """

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        return super().parse_args(ctx, spread_multi_values(args))


def spread_multi_values(args: list[str]) -> list[str]:
    """`["--select", "a", "b", "-t", "dev"]` → `["--select", "a", "--select", "b", "-t", "dev"]`."""
    spread: list[str] = []
    option, expects_value = None, False
    for arg in args:
        if expects_value:
            spread.append(arg)
            expects_value = False
        elif arg in _MULTI_VALUE:
            option, expects_value = arg, True
            spread.append(arg)
        elif arg.startswith("-"):
            option = next((o for o in _MULTI_VALUE if arg.startswith(f"{o}=")), None)
            spread.append(arg)
        elif option is not None:
            spread += [option, arg]
        else:
            spread.append(arg)
    return spread


@app.command(cls=DbtSelectionCommand)
def init(
    project_dir: ProjectDir = Path("."),
    profiles_dir: ProfilesDir = None,
    target: Target = None,
    select: Select = None,
    exclude: Exclude = None,
    epsilon: Annotated[
        float, typer.Option(help="ε budget of each twin whose meta.synth sets none.")
    ] = 1.0,
    directory: Annotated[
        str | None, typer.Option("--dir", help="Where the twins go (default: <model-path>/synth).")
    ] = None,
    force: Annotated[bool, typer.Option(help="Regenerate files you edited.")] = False,
    synth_mode: Annotated[
        bool, typer.Option(help="Write the ref()/source() overrides that enable synth mode.")
    ] = True,
    schema: Annotated[
        str,
        typer.Option(
            help="Custom schema of the twins and their ledger (dbt's default naming makes it "
            "<target schema>_synth); '' keeps them in the target schema."
        ),
    ] = TWIN_SCHEMA,
) -> None:
    """Write a twin model and yml (config, budget, tests) per selected seed, source or model
    (default: those with a meta.synth block)."""
    from dbt_synth.cli.scaffold import init_project

    project = DbtProject(project_dir.resolve(), _resolve(profiles_dir), target)
    with _errors():
        result = init_project(
            project,
            select=select or (),
            exclude=exclude or (),
            epsilon=epsilon,
            directory=directory,
            force=force,
            synth_mode=synth_mode,
            schema=schema or None,
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
    if synth_mode:
        # What synth mode now reads, per model: the table `dbt-synth status` prints.
        with _errors():
            _print_status(project, None)
    console.print(
        "next: [bold]dbt build --select tag:dbt_synth_twin[/bold] builds the twins; "
        "[bold]dbt build --vars 'synth: true'[/bold] runs your project on them; "
        "[bold]dbt-synth status[/bold] shows what each model reads there."
    )


@app.command()
def status(
    project_dir: ProjectDir = Path("."),
    profiles_dir: ProfilesDir = None,
    target: Target = None,
    vars: Annotated[
        str | None,
        typer.Option(
            "--vars", help="dbt vars as for the build, e.g. '{synth_passthrough: [raw.lookup]}'."
        ),
    ] = None,
) -> None:
    """Print, per model, whether synth mode (`--vars 'synth: true'`) runs it on twins or on
    real data; exit 1 if a model would fail to compile there."""
    with _errors():
        project = DbtProject(project_dir.resolve(), _resolve(profiles_dir), target)
        fails = _print_status(project, vars)
    if fails:
        raise typer.Exit(1)


def _print_status(project: DbtProject, vars: str | None) -> bool:
    """The per-model table of `status` (and of `init`'s end) and the ε spent per source, from a
    synth-mode parse with the user's `--vars`; True if a model would fail to compile there."""
    from dbt_synth.cli.status import Reads, synth_status

    settings = {**_parse_vars(vars), "synth": True}
    project = DbtProject(project.project_dir, project.profiles_dir, project.target, settings)
    manifest = project.manifest()
    statuses = synth_status(manifest, settings.get("synth_passthrough") or ())
    table = Table("model", "reads in synth mode", "real tables", title="dbt-synth status")
    for line in statuses:
        colour = {Reads.FAILS: "red", Reads.PASSTHROUGH: "yellow"}.get(line.reads, "green")
        table.add_row(line.name, f"[{colour}]{line.reads.value}[/{colour}]", ", ".join(line.real))
    console.print(table)
    _print_budgets(project, manifest)
    fails = any(line.reads is Reads.FAILS for line in statuses)
    if fails:
        console.print(
            "[red]synth mode would read real data[/red]: twin those tables (dbt-synth init "
            "--select ...) or pass them through (--vars '{synth: true, synth_passthrough: "
            "[...]}')"
        )
    return fails


def _print_budgets(project: DbtProject, manifest: object) -> None:
    """ε spent per source against its max_total_epsilon (dbt_synth.store)."""
    from dbt_synth.cli.candidates import is_twin
    from dbt_synth.store.status import budget_lines

    twins = [node for node in manifest.nodes.values() if is_twin(node)]  # type: ignore[attr-defined]
    for line in budget_lines(project, twins):
        console.print(f"ε spent by source {line}")


@app.command(cls=DbtSelectionCommand)
def report(
    project_dir: ProjectDir = Path("."),
    profiles_dir: ProfilesDir = None,
    target: Target = None,
    select: Select = None,
    out: Annotated[
        Path | None, typer.Option(help="Output folder (default: <target-path>/synth_report).")
    ] = None,
) -> None:
    """Write an HTML report per twin (real vs twin plots, tests, ε ledger) and a summary."""
    from dbt_synth.cli.reporting import report_project

    project = DbtProject(project_dir.resolve(), _resolve(profiles_dir), target)
    with _errors():
        summaries = report_project(project, select=select or (), out=out)
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


def _parse_vars(text: str | None) -> dict:
    """dbt's `--vars` (a YAML mapping) as a dict; anything else is one clear error."""
    import yaml

    from dbt_synth.errors import ConfigError

    settings = yaml.safe_load(text) if text else {}
    if not isinstance(settings, dict):
        raise ConfigError(
            f"--vars must be a YAML mapping, got {text!r}",
            fix="write --vars '{synth_passthrough: [raw.lookup]}'",
        )
    return settings


def _resolve(path: Path | None) -> Path | None:
    return path.resolve() if path is not None else None
