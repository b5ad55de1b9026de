"""Ad-hoc: run the posevid CLI with the `small` model's GRU as a plain GRU (no update-gate floor).

The control for the faded GRU: same recipe, same seed, only `temporal_min_update` differs.
    python weights/training/small-v14/plain_gru.py train ...
"""
import sys
from dataclasses import replace

from posevid import config
from posevid.cli import main

config.MODELS["small"] = replace(config.MODELS["small"], temporal_min_update=0.0)
sys.argv = ["posevid", *sys.argv[1:]]
main()
