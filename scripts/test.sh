#!/usr/bin/env bash
# Install avatar-vcam with its test tools into .venv and run the whole test suite.
# Usage: bash scripts/test.sh [pytest args...]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_venv.sh
python -m pip install -q -e '.[test]'
ruff check .
python -m pytest "$@"
