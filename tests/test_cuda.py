"""The network, training and `posevid infer` on a CUDA device give what they give on the CPU.

Skipped where no CUDA device is present (CI has none); on a GPU machine: `python -m pytest tests/test_cuda.py`.
"""
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from posevid.config import model_config
from posevid.model import DEKR, load_model, shipped_weights
from posevid.outputs import read_keypoints
from posevid.train import train
from test_train import coco_dir, config  # noqa: F401  (coco_dir is a fixture)

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def exact_fp32():
    """TF32 (cuDNN's default for convolutions) rounds to 10 mantissa bits: compare in full fp32."""
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    yield
    torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


def test_network_and_gru_state_match_cpu(exact_fp32):
    torch.manual_seed(0)
    model = DEKR(model_config("small")).eval()
    with torch.no_grad():
        torch.nn.init.normal_(model.temporal.out.weight, std=0.05)  # the GRU state matters
    x = torch.randn(2, 3, 3, 128, 160)
    with torch.inference_mode():
        cpu = model.forward_clip(x)
        gpu = model.cuda().forward_clip(x.cuda())
    for a, b in ((cpu.heatmaps, gpu.heatmaps), (cpu.offsets, gpu.offsets), (cpu.state, gpu.state)):
        assert b.is_cuda
        assert torch.allclose(a, b.cpu(), rtol=1e-3, atol=1e-3 * float(a.abs().max()))


def test_training_steps_on_cuda(coco_dir, tmp_path):  # noqa: F811
    last = train(config(coco_dir, tmp_path / "run", device="cuda", workers=1))
    payload = torch.load(last, map_location="cpu", weights_only=True)
    assert payload["step"] == 4
    assert all(torch.isfinite(v).all() for v in payload["model"].values() if v.is_floating_point())
    load_model(weights=last)


def test_infer_command_on_cuda_matches_cpu(tmp_path):
    weights = shipped_weights("small")
    poses = {}
    for device in ("cpu", "cuda"):
        out = tmp_path / device
        subprocess.run([sys.executable, "-m", "posevid", "infer", str(ROOT / "examples" / "pedestrians.mp4"),
                        "--weights", str(weights), "--device", device, "--max-frames", "30", "--no-video",
                        "--out", str(out)], check=True)
        _, frames = read_keypoints(out / "pedestrians.pose.jsonl")
        poses[device] = [sorted((p["keypoints"] for p in f["persons"]), key=lambda k: k[0][0]) for f in frames]
    assert len(poses["cuda"]) == len(poses["cpu"]) == 30
    same_count = [len(a) == len(b) for a, b in zip(poses["cpu"], poses["cuda"])]
    assert np.mean(same_count) >= 0.9  # TF32 may tip a borderline person over the threshold
    d = np.concatenate([np.abs(np.asarray(a)[..., :2] - np.asarray(b)[..., :2]).reshape(-1)
                        for a, b, same in zip(poses["cpu"], poses["cuda"], same_count) if same and a])
    assert d.size and np.median(d) < 0.5 and np.mean(d < 2.0) > 0.9
