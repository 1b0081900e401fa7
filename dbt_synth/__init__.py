"""dbt-synth: differentially-private synthetic twins of warehouse tables, built by dbt."""

from dbt_synth.errors import SynthError
from dbt_synth.pipeline import SynthResult, synthesize
from dbt_synth.twin import child_twin, twin

__all__ = ["SynthError", "SynthResult", "child_twin", "synthesize", "twin"]
__version__ = "0.1.0"
