"""Model configurations as plain dataclasses, selected by name (no global config tree)."""
from __future__ import annotations

from dataclasses import asdict, dataclass

# What a pose's score is (decode.decode): "center-keypoints" is DEKR's, the center-heatmap peak times the mean
# keypoint-heatmap value at the regressed keypoints; "center" is the peak alone, for weights whose keypoint
# heatmaps rank people worse than their centers do (measured per model, in its card).
POSE_SCORES = ("center-keypoints", "center")


def check_pose_score(pose_score: str) -> str:
    """`pose_score` itself when it is one of POSE_SCORES; ValueError otherwise."""
    if pose_score not in POSE_SCORES:
        raise ValueError(f"pose_score must be one of {', '.join(POSE_SCORES)}, got {pose_score!r}")
    return pose_score

# The model `posevid infer`, `eval` and `train` use unless told otherwise; its weights ship in the package
# (posevid.model.checkpoint.SHIPPED_WEIGHTS). effnet: it beats small on both real sets (README, Models).
DEFAULT_MODEL = "effnet"


@dataclass(frozen=True)
class StageConfig:
    """One HRNet stage: `num_modules` multi-resolution modules over len(channels) parallel branches."""

    num_modules: int
    num_blocks: tuple[int, ...]  # basic blocks per branch in each module
    channels: tuple[int, ...]  # width of each branch, highest resolution first


@dataclass(frozen=True)
class ModelConfig:
    name: str
    stages: tuple[StageConfig, ...]  # HRNet stages 2..4 (stage 1 is `layer1`); efficientnet: the exchange modules
    encoder: str = "hrnet"  # "hrnet" (DEKR's own backbone) or "efficientnet" (ImageNet-pretrained Lite0 + fusion)
    fused_width: int = 0  # efficientnet: width of the fused stride-4 map the heads read (hrnet: all branches)
    stem_channels: int = 64  # width of the two stride-2 stem convolutions
    layer1_blocks: int = 4  # bottleneck blocks at stride 4
    layer1_planes: int = 64  # bottleneck width; layer1 outputs 4 × this
    heatmap_channels: int = 32  # width of the heatmap head
    heatmap_blocks: int = 1  # basic blocks in the heatmap head
    offset_channels: int = 15  # width of each keypoint's regression branch
    offset_blocks: int = 2  # adaptive-convolution blocks per keypoint branch
    num_keypoints: int = 17
    temporal_channels: int = 64  # ConvGRU hidden width
    temporal_min_update: float = 0.0  # floor of the GRU's update gate: old frames fade (0 = a plain GRU)
    input_size: int = 512  # test-time size of the shorter image side (rounded to a multiple of 32)
    infer_batch: int = 1  # frames per network call in video inference (helps small models only)
    snap_radius: float = 0.0  # decoding default for these weights (decode.snap_to_peaks); 0 = DEKR's decoding
    pose_score: str = "center-keypoints"  # decoding default for these weights: one of POSE_SCORES
    # Minimum pose score reported by default: 0.2 has the best precision/recall balance (F1) of 0.1/0.2/0.3 on
    # real and synthetic labelled people with small-v6 (docs/training-history.md); weights may store their own.
    threshold: float = 0.2

    def __post_init__(self) -> None:
        if not self.stages:
            raise ValueError(f"{self.name}: at least one HRNet stage is needed")
        for i, stage in enumerate(self.stages):
            if len(stage.num_blocks) != len(stage.channels):
                raise ValueError(f"{self.name}: stage {i + 2} has {len(stage.channels)} branches "
                                 f"but {len(stage.num_blocks)} block counts")
            if i and stage.channels[: len(self.stages[i - 1].channels)] != self.stages[i - 1].channels:
                raise ValueError(f"{self.name}: stage {i + 2} must keep the widths of the branches "
                                 "it inherits")
        if self.encoder not in ("hrnet", "efficientnet"):
            raise ValueError(f"{self.name}: unknown encoder {self.encoder!r} (hrnet or efficientnet)")
        if self.encoder == "efficientnet" and (len(self.stages[0].channels) != 4 or self.fused_width < 1):
            raise ValueError(f"{self.name}: the efficientnet encoder fuses 4 branches into fused_width channels")
        check_pose_score(self.pose_score)
        if not 0 <= self.threshold <= 1:
            raise ValueError(f"{self.name}: threshold must be within 0..1, got {self.threshold}")
        if self.input_size % 32:
            raise ValueError(f"{self.name}: input_size must be a multiple of 32, got {self.input_size}")

    @property
    def fused_channels(self) -> int:
        """Channels of the multi-resolution features the heads read (HRNet: all branches concatenated)."""
        return self.fused_width if self.encoder == "efficientnet" else sum(self.stages[-1].channels)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "ModelConfig":
        d = dict(d)
        d["stages"] = tuple(
            StageConfig(s["num_modules"], tuple(s["num_blocks"]), tuple(s["channels"])) for s in d["stages"]
        )
        return cls(**d)


def _hrnet(width: int) -> tuple[StageConfig, ...]:
    # The official HRNet-W32/W48 stage layout (DEKR's COCO configs).
    w = width
    return (
        StageConfig(1, (4, 4), (w, 2 * w)),
        StageConfig(4, (4, 4, 4), (w, 2 * w, 4 * w)),
        StageConfig(3, (4, 4, 4, 4), (w, 2 * w, 4 * w, 8 * w)),
    )


MODELS: dict[str, ModelConfig] = {
    # Official DEKR COCO networks: official checkpoints load into these unchanged.
    "hrnet_w32": ModelConfig("hrnet_w32", _hrnet(32), heatmap_channels=32, input_size=512),
    "hrnet_w48": ModelConfig("hrnet_w48", _hrnet(48), heatmap_channels=48, input_size=640,
                             temporal_channels=64),
    # Real-time CPU model: three narrow branches, one block each, a slim stem and small input.
    "lite": ModelConfig(
        "lite",
        (
            StageConfig(1, (1, 1), (16, 32)),
            StageConfig(1, (1, 1, 1), (16, 32, 64)),
        ),
        stem_channels=32,
        layer1_blocks=1,
        layer1_planes=16,
        heatmap_channels=16,
        heatmap_blocks=1,
        offset_channels=8,
        offset_blocks=1,
        temporal_channels=16,
        input_size=128,
        infer_batch=2,
    ),
    # lite's layout twice as wide, two blocks per branch: enough capacity to learn articulation on CPU
    # budgets, where lite only learnt where people are (lite-v4 in docs/training-history.md).
    "small": ModelConfig(
        "small",
        (
            StageConfig(1, (2, 2), (32, 64)),
            StageConfig(1, (2, 2, 2), (32, 64, 128)),
        ),
        stem_channels=64,
        layer1_blocks=2,
        layer1_planes=32,
        heatmap_channels=32,
        heatmap_blocks=1,
        offset_channels=16,
        offset_blocks=1,
        temporal_channels=32,
        # a plain GRU's state drifted over long real videos (small-v13, small-v14 in docs/training-history.md)
        temporal_min_update=0.5,
        input_size=256,
        infer_batch=2,
    ),
    # ImageNet-pretrained EfficientNet-Lite0 (stride 4/8/16/32 taps) → one HRNet exchange module over four
    # branches → summed to one stride-4 map → ConvGRU → DEKR heads. Real-image features from the start.
    "effnet": ModelConfig(
        "effnet",
        (StageConfig(1, (1, 1, 1, 1), (32, 64, 96, 128)),),
        encoder="efficientnet",
        fused_width=64,
        heatmap_channels=32,
        heatmap_blocks=1,
        offset_channels=16,
        offset_blocks=1,  # one adaptive block: at inference the regression runs at the kept centres only
        temporal_channels=32,
        temporal_min_update=0.5,
        input_size=256,
        infer_batch=2,
    ),
}


def model_config(name: str) -> ModelConfig:
    try:
        return MODELS[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; choose one of {', '.join(MODELS)}") from None
