#!/usr/bin/env bash
# Creates bench/.venv with PyTorch and NumPy for bench/torch_kernels.py.
# The PyPI torch wheel is the CUDA build (several GB of nvidia-* wheels); it
# runs on the CPU too, and this venv is used only for the benchmark comparison,
# never by the tests or CI.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="$here/.venv"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
"$venv/bin/python" -m pip install --upgrade pip
"$venv/bin/python" -m pip install torch numpy
"$venv/bin/python" -c 'import torch, numpy; print("torch", torch.__version__, "numpy", numpy.__version__)'
