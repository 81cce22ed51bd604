#!/usr/bin/env bash
# Install avatar-vcam into .venv and run the main job on the embedded default:
# the bundled `leo` avatar, the embedded `warp` renderer, the bundled speech clip.
# Output: the virtual camera if present, else a window if a display exists, else an mp4
# in the folder you ran this from (not the repository), like every relative path you give.
# Extra arguments go to avatar-vcam, e.g. bash scripts/demo.sh --sink file:demo.mp4
set -euo pipefail
here="$PWD"
repo="$(cd "$(dirname "$0")/.." && pwd)"
cd "$repo"
source scripts/_venv.sh
python -m pip install -q -e .
cd "$here"
exec "$repo/.venv/bin/avatar-vcam" --avatar leo --source demo "$@"
