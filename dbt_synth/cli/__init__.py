"""The `dbt-synth` command line: `init` scaffolds twins, `report` renders them."""

from dbt_synth.cli.main import app

__all__ = ["app"]
