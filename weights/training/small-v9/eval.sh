#!/usr/bin/env bash
# Scores one set of weights on this project's CPU as the small-v6/v8 cards did:
#   bash weights/training/small-v9/eval.sh WEIGHTS OUT_DIR [VAL_ANNOTATIONS]
# real footage (the hand-boxed example clip) at input 256 / threshold 0.2 and input 512 / threshold 0.4,
# val-v1 at input 256, and the pinned front and side splits; temporal and per-frame twin each time.
set -euo pipefail
W=$1; OUT=$2; VAL=${3:-/work/data/val-v1/annotations.json}
posevid eval --annotations examples/pedestrians.people.json --weights "$W" --out "$OUT/people-256"
posevid eval --annotations examples/pedestrians.people.json --weights "$W" --input-size 512 --threshold 0.4 \
  --out "$OUT/people-512"
posevid eval --annotations "$VAL" --weights "$W" --input-size 256 --regression --out "$OUT/val"
for s in front side; do posevid eval --split $s --weights "$W" --out "$OUT/$s"; done
