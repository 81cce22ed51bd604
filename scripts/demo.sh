#!/usr/bin/env bash
# Install avatar-vcam into .venv and run the main job on the embedded default:
# the bundled `leo` avatar, the embedded `warp` renderer, the bundled speech clip.
# Output: the virtual camera if present, else a window if a display exists, else an mp4.
# Extra arguments go to avatar-vcam, e.g. bash scripts/demo.sh --sink file:demo.mp4
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_venv.sh
python -m pip install -q -e .
exec avatar-vcam --avatar leo --source demo "$@"
