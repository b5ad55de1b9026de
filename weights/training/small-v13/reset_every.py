"""Ad-hoc: posevid eval with the GRU state reset every N frames (tests the horizon-drift hypothesis)."""
import sys
from posevid import predict
from posevid.cli import main

N = int(sys.argv.pop(1))
orig = predict.Predictor._is_scene_cut
def cut(self, image):
    self._n = getattr(self, "_n", 0) + 1
    return orig(self, image) or (self._n - 1) % N == 0
predict.Predictor._is_scene_cut = cut
orig_reset = predict.Predictor.reset
def reset(self):
    orig_reset(self)
    self._n = 0
predict.Predictor.reset = reset
sys.argv = ["posevid", *sys.argv[1:]]
main()
