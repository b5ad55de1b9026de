"""Experiment: are the temporal network's phantoms on real video caused by carrying the GRU state over
hundreds of frames (training unrolls it over 8)? Resets the state every N frames and scores people found
on the hand-boxed example clip. Output: reset_experiment.log beside this file.

    python weights/training/small-v9/reset_experiment.py WEIGHTS N [INPUT_SIZE] [THRESHOLD]   # N = 0: never
"""
import sys

from posevid.evaluate import evaluate
from posevid.model.checkpoint import load_model
from posevid.predict import PredictConfig, Predictor

weights, every = sys.argv[1], int(sys.argv[2])  # every: frames between resets (multiple of 8), 0 = never
size = int(sys.argv[3]) if len(sys.argv) > 3 else 256
thr = float(sys.argv[4]) if len(sys.argv) > 4 else 0.2
orig = Predictor.predict


def predict(self, images):  # evaluate() feeds 8 frames per call; the state is dropped before every N-th frame
    self._n = getattr(self, "_n", 0)
    if every and self._n % every == 0:
        self._state = None
    self._n += len(images)
    return orig(self, images)


Predictor.predict = predict
m = load_model(weights=weights, temporal=True)
r = evaluate(m, None, "examples/pedestrians.people.json", threshold=thr, predict=PredictConfig(input_size=size))
t = r.models[0]
print(f"{weights} reset every {every}: size {size} thr {thr} "
      f"P {t.people_precision:.2f} R {t.people_recall:.2f}", flush=True)
