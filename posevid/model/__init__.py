"""The network: HRNet backbone → ConvGRU → DEKR heads, and its checkpoints."""
from posevid.model.checkpoint import load_model, read_weights, save_checkpoint
from posevid.model.dekr import DEKR, DEKROutput

__all__ = ["DEKR", "DEKROutput", "load_model", "read_weights", "save_checkpoint"]
