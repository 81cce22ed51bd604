# Sourced by the scripts: create/activate .venv; install torch first so that pip does not
# pull a multi-GB CUDA build as a dependency (set TORCH_SPEC to choose another build).
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
# shellcheck disable=SC1091
source .venv/bin/activate
if ! python -c "import torch" 2>/dev/null; then
  python -m pip install -q --upgrade pip
  python -m pip install -q "${TORCH_SPEC:-torch==2.13.0}"
fi
