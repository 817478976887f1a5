#!/usr/bin/env bash
# Installs a pinned MLflow into a project-local virtual environment (.venv/).
# Idempotent: re-running with the right version already installed does nothing but print the path.
# The pin matters: the REST surface, the server flags (--allowed-hosts since 3.5) and the artifact
# proxy paths the TypeScript client relies on are checked against this version by the tests.
set -euo pipefail

MLFLOW_VERSION="${METADD_MLFLOW_VERSION:-3.17.2}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${METADD_VENV:-$ROOT/.venv}"
PYTHON="${PYTHON:-python3}"

if [ ! -x "$VENV/bin/python" ]; then
  echo "creating virtual environment $VENV" >&2
  "$PYTHON" -m venv "$VENV"
fi

installed="$("$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("mlflow"))' 2>/dev/null || true)"
if [ "$installed" != "$MLFLOW_VERSION" ] || [ ! -x "$VENV/bin/mlflow" ]; then
  echo "installing mlflow==$MLFLOW_VERSION into $VENV (found: ${installed:-none})" >&2
  "$VENV/bin/python" -m pip install --disable-pip-version-check --quiet --upgrade pip
  "$VENV/bin/python" -m pip install --disable-pip-version-check --quiet "mlflow==$MLFLOW_VERSION"
fi

# Fails loudly if the install is broken rather than leaving a venv the tests would trip over.
"$VENV/bin/mlflow" --version >&2
echo "$VENV/bin/mlflow"
