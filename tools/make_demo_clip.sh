#!/usr/bin/env bash
# Regenerate vcam/assets/demo_speech.wav: the speech clip behind `--source demo`.
# Needs espeak-ng and sox. 16 kHz mono 16-bit, 0.5 s of silence before and between sentences.
set -euo pipefail
cd "$(dirname "$0")/.."
out=vcam/assets/demo_speech.wav
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
sentences=(
  "Hello! I am Leo, your avatar."
  "I follow your voice: my lips open and close with every word."
  "And I blink, now and then."
)
parts=()
i=0
for s in "${sentences[@]}"; do
  espeak-ng -v en-us -s 170 -w "$tmp/raw$i.wav" "$s"
  # 16 kHz mono 16-bit; trim espeak's own leading/trailing silence, then 0.5 s in front
  sox "$tmp/raw$i.wav" -r 16000 -c 1 -b 16 "$tmp/s$i.wav" silence 1 0.02 0.5% reverse silence 1 0.02 0.5% reverse pad 0.5 0
  parts+=("$tmp/s$i.wav")
  i=$((i + 1))
done
sox "${parts[@]}" "$tmp/all.wav" pad 0 0.5
sox "$tmp/all.wav" -r 16000 -c 1 -b 16 -e signed-integer "$out" norm -3
soxi "$out"
