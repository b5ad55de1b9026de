#!/usr/bin/env bash
# Scores the realism-factor comparison on this project's CPU, input 256, per-frame networks:
#   bash weights/training/small-v8/eval_compare.sh WEIGHTS_DIR OUT_DIR [VAL_ANNOTATIONS]
# real footage: people found on the hand-boxed example clip (at the default score threshold 0.2 and at 0.3);
# synthetic: val-v1 (OKS, AP). Prints one table line per variant.
set -euo pipefail
W=$1; OUT=$2; VAL=${3:-/work/data/val-v1/annotations.json}
for v in full noprops nophotos noocc proc; do
  for t in 0.2 0.3; do
    posevid eval --annotations examples/pedestrians.people.json --weights "$W/scratch-$v.pt" --no-temporal \
      --threshold $t --out "$OUT/people-$t" > /dev/null
    mv "$OUT/people-$t/pedestrians.people.json" "$OUT/people-$t/$v.json"
  done
  posevid eval --annotations "$VAL" --weights "$W/scratch-$v.pt" --no-temporal --input-size 256 --out "$OUT/val" > /dev/null
  mv "$OUT/val/annotations.json" "$OUT/val/$v.json"
  python3 - "$OUT" "$v" <<'PY'
import json, sys
out, v = sys.argv[1:]
row = [v]
for t in ("0.2", "0.3"):
    p = json.load(open(f"{out}/people-{t}/{v}.json"))["models"]["per-frame"]
    row += [f"{p['people_precision'] or 0:.2f}", f"{p['people_recall']:.2f}"]
m = json.load(open(f"{out}/val/{v}.json"))["models"]["per-frame"]
row += [f"{m['oks_score']:.3f}", f"{m['AP']:.3f}", f"{m['AP50']:.3f}"]
print("| " + " | ".join(row) + " |", flush=True)
PY
done
