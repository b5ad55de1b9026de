"""The network: HRNet backbone → ConvGRU → DEKR heads, and its checkpoints."""
from posevid.model.checkpoint import SHIPPED_WEIGHTS, load_model, read_weights, save_checkpoint, shipped_weights
from posevid.model.dekr import DEKR, DEKROutput, EfficientDEKR, PoseHeads, build_model

__all__ = ["DEKR", "DEKROutput", "EfficientDEKR", "PoseHeads", "build_model", "SHIPPED_WEIGHTS", "load_model", "read_weights", "save_checkpoint",
           "shipped_weights"]
