#!/usr/bin/env bash
# Installs everything the test suite needs besides npm packages, idempotently:
#   - the pinned MLflow server in .venv/ (scripts/setup-mlflow.sh)
#   - Debian's chromium, the headless browser of test/report-browser.test.ts
#   - Debian's pdflatex (texlive-latex-base, -recommended), which compiles report.tex in test/report-latex.test.ts
# Run by `npm run setup:test` (the README's test command) and by .ci/run.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$ROOT/scripts/setup-mlflow.sh" >/dev/null
[ "${METADD_SKIP_SLURM:-}" = 1 ] || bash "$ROOT/scripts/setup-slurm.sh"  # single-node Slurm cluster for test/slurm-*.test.ts (needs root)
# Debian packages (needs root); the package index is refreshed only when the first try fails.
install_debian() {
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq "$@" >/dev/null 2>&1 || { apt-get update -qq >/dev/null && apt-get install -y -qq "$@" >/dev/null; }
}
[ -x /usr/bin/chromium ] || install_debian chromium  # headless browser for test/report-browser.test.ts
command -v pdflatex >/dev/null || install_debian texlive-latex-base texlive-latex-recommended  # pdflatex for test/report-latex.test.ts
