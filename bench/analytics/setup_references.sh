#!/usr/bin/env bash
# Create the two reference virtualenvs for bench/analytics/compare.py, outside Patron's environment:
#   bench/.work/venv-lifetimes  lifetimes 0.11.3 with the pins from /work/shared/STACK.md
#   bench/.work/venv-pymc       PyMC-Marketing 0.19.2 (newest that installs on Python 3.11)
# bench/.work is git-ignored. Re-running is cheap: an existing venv that imports is left alone.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
WORK="$ROOT/bench/.work"
PY="${PYTHON:-python3.11}"
mkdir -p "$WORK"

make_venv() {  # name, import check, pip args...
  local name="$1" check="$2"; shift 2
  local venv="$WORK/$name"
  if [ -x "$venv/bin/python" ] && "$venv/bin/python" -c "$check" >/dev/null 2>&1; then
    echo "$name: ready"
    return
  fi
  "$PY" -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --upgrade pip
  "$venv/bin/python" -m pip install --quiet "$@"
  "$venv/bin/python" -c "$check"
  echo "$name: installed"
}

# lifetimes 0.11.3 needs numpy<2 / pandas<2; pyarrow 18+ refuses numpy 1.x (STACK.md).
make_venv venv-lifetimes "import lifetimes, pyarrow" \
  lifetimes==0.11.3 numpy==1.26.4 pandas==1.5.3 scipy==1.11.4 autograd==1.9.1 pyarrow==17.0.0 \
  psutil threadpoolctl

# PyMC-Marketing: 0.19.3 and 1.x need Python 3.12.
make_venv venv-pymc "import pymc_marketing, pyarrow" \
  pymc-marketing==0.19.2 pyarrow psutil threadpoolctl
