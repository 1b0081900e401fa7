"""`python -m dbt_synth.cli` is the `dbt-synth` command."""

from dbt_synth.cli.main import app

app(prog_name="dbt-synth")
