#!/usr/bin/env bash
# The fidelity benchmark in one command: sets up smartnoise's virtualenv, then runs every arm.
#   bench/fidelity/run.sh            # full: CPS1988 + loans, ε ∈ {0.3, 1, 3}, all arms (hours)
#   bench/fidelity/run.sh --quick    # smoke run, < 1 min of fitting: CPS1988 3k rows, ε=1
#   bench/fidelity/run.sh --datasets cps1988 --epsilons 1 --arms ours-marginal aim
# Our arms run in BENCH_PYTHON (default: the repo's .venv), smartnoise's in its own venv.
set -euo pipefail
cd "$(dirname "$0")/../.."
bash bench/fidelity/setup_smartnoise.sh
PY=${BENCH_PYTHON:-.venv/bin/python}
PYTHONPATH="$PWD" BENCH_PYTHON="$PY" exec "$PY" -m bench.fidelity.runner "$@"
