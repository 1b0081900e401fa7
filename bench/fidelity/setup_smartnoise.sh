#!/usr/bin/env bash
# smartnoise-synth in its own virtualenv, bench/.venv-smartnoise (gitignored). It brings its own
# opacus (0.14) and jax, so it must never be installed into the product's environment.
set -euo pipefail
cd "$(dirname "$0")/../.."
VENV=bench/.venv-smartnoise
PYTHON=${PYTHON:-python3.11}
if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv "$VENV"
fi
if ! "$VENV/bin/python" -c "import snsynth, pyarrow, packaging" 2>/dev/null; then
  # torch pinned to the product's version so the two stacks are the same torch build;
  # packaging is a missing runtime dependency of smartnoise's DP-CTGAN.
  "$VENV/bin/pip" install --quiet "torch==2.13.0" "smartnoise-synth==1.0.8" pyarrow packaging
fi
"$VENV/bin/python" -c "import snsynth; print('smartnoise-synth ready in $VENV')"
