"""The label-drafting teacher (MoveNet MultiPose via onnxruntime): pure pre/post-processing always,
the converted model only where onnxruntime and the ONNX file are installed (`make teacher`)."""
import json

import numpy as np
import pytest

from posevid.data import teacher as T


def test_letterbox_keeps_aspect_and_pads_to_multiples_of_32():
    img = np.zeros((300, 500, 3), np.uint8)
    img[:, :, 0] = 255  # blue in BGR
    x, box = T.letterbox(img, 256)
    assert x.dtype == np.int32 and x.shape == (1, 160, 256, 3)  # 300*256/500 = 153.6 → 154 → padded to 160
    assert box.scale == pytest.approx(256 / 500) and box.input_hw == (160, 256) and box.source_hw == (300, 500)
    assert x[0, 0, 0, 2] == 255 and x[0, 0, 0, 0] == 0  # RGB order
    assert (x[0, 154:] == 0).all()  # padding at the bottom


def test_letterbox_rejects_bad_input():
    with pytest.raises(ValueError):
        T.letterbox(np.zeros((10, 10), np.uint8), 256)
    with pytest.raises(ValueError):
        T.letterbox(np.zeros((10, 10, 3), np.uint8), 16)


def test_decode_output_maps_to_source_pixels_and_sorts_by_score():
    box = T.Letterbox(scale=0.5, input_hw=(160, 256), source_hw=(300, 500))
    out = np.zeros((1, 6, 56), np.float32)
    out[0, 0, :51] = np.tile([0.5, 0.25, 0.9], 17)  # y, x, score, normalised to the padded input
    out[0, 0, 55] = 0.3
    out[0, 3, :51] = np.tile([0.1, 0.1, 0.8], 17)
    out[0, 3, 55] = 0.7
    kp, sc = T.decode_output(out, box, min_score=0.2)
    assert sc.tolist() == pytest.approx([0.7, 0.3])
    assert kp.shape == (2, 17, 3)
    np.testing.assert_allclose(kp[1, 0], [0.25 * 256 / 0.5, 0.5 * 160 / 0.5, 0.9], rtol=1e-6)  # (x, y, s)
    np.testing.assert_allclose(kp[0, 0, :2], [0.1 * 256 / 0.5, 0.1 * 160 / 0.5], rtol=1e-6)


def test_letterbox_then_decode_round_trips_a_point():
    img = np.zeros((480, 640, 3), np.uint8)
    x, box = T.letterbox(img, 384)
    ph, pw = box.input_hw
    src = np.array([123.0, 321.0])  # (x, y) in the source
    out = np.zeros((6, 56))
    out[0, 0:3] = [src[1] * box.scale / ph, src[0] * box.scale / pw, 1.0]
    out[0, 55] = 1.0
    kp, _ = T.decode_output(out, box)
    np.testing.assert_allclose(kp[0, 0, :2], src, atol=1e-9)


def test_crop_box_grows_and_clips():
    assert T.crop_box([100, 100, 20, 40], (480, 640), margin=0.5) == (70, 80, 150, 160)
    assert T.crop_box([0, 0, 20, 40], (100, 100), margin=0.5) == (0, 0, 50, 60)
    with pytest.raises(ValueError):
        T.crop_box([500, 500, 10, 10], (100, 100), margin=0.0)


def test_merge_poses_drops_duplicates_keeps_distinct_people():
    rng = np.random.default_rng(0)
    a = np.concatenate([rng.uniform(100, 200, (17, 2)), np.ones((17, 1))], 1)
    near = a.copy()
    near[:, :2] += 1.0  # the same person seen in another run
    far = a.copy()
    far[:, 0] += 300  # someone else
    kp = np.stack([near, a, far])
    keep = T.merge_poses(kp, np.array([0.4, 0.9, 0.5]))
    assert keep.tolist() == [1, 2]


class _Attr:
    def __init__(self, name, default=None):
        self.name, self._d = name, default

    def HasField(self, field):
        return self._d is not None

    @property
    def default_value(self):
        return self._d


def test_fill_missing_attrs_uses_op_defaults_and_fused_args():
    pytest.importorskip("google.protobuf", reason="protobuf (the teacher extra) is not installed")
    from google.protobuf import json_format  # noqa: F401
    try:
        from tensorflow.core.framework import attr_value_pb2
    except ImportError:
        pytest.skip("tensorflow (the teacher extra) is not installed")

    class OpDef:
        def __init__(self, attrs):
            self.attr = attrs

    defs = {
        "Fill": OpDef([_Attr("T"), _Attr("index_type", attr_value_pb2.AttrValue(type=3))]),
        "_FusedConv2D": OpDef([_Attr("T"), _Attr("num_args"), _Attr("TArgs"),
                               _Attr("num_host_args", attr_value_pb2.AttrValue(i=0))]),
    }
    graph = {"modelTopology": {"node": [
        {"name": "f", "op": "Fill", "input": ["a", "b"], "attr": {"T": {"type": "DT_FLOAT"}}},
        {"name": "c", "op": "_FusedConv2D", "input": ["x", "w", "bias", "^dep"], "attr": {"T": {"type": "DT_FLOAT"}}},
        {"name": "d", "op": "FusedDepthwiseConv2dNative", "input": ["x", "w"]},
    ]}}
    out, unknown = T.fill_missing_attrs(graph, defs.get)
    nodes = {n["name"]: n for n in out["modelTopology"]["node"]}
    assert nodes["f"]["attr"]["index_type"] == {"type": "DT_INT32"}
    assert nodes["c"]["attr"]["num_args"] == {"i": "1"}
    assert nodes["c"]["attr"]["TArgs"] == {"list": {"type": ["DT_FLOAT"]}}
    assert "num_host_args" in nodes["c"]["attr"]
    assert unknown == {"FusedDepthwiseConv2dNative"}
    assert "index_type" not in graph["modelTopology"]["node"][0]["attr"]  # the input is left alone
    json.dumps(out)


@pytest.fixture(scope="module")
def teacher():
    pytest.importorskip("onnxruntime", reason="onnxruntime (the teacher extra) is not installed")
    if not T.default_model_path().exists():
        pytest.skip(f"teacher model not built: {T.default_model_path()} (run `make teacher`)")
    return T.Teacher()


def test_teacher_finds_the_astronaut(teacher):
    import cv2
    path = "/usr/lib/python3/dist-packages/skimage/data/astronaut.png"
    img = cv2.imread(path)
    if img is None:
        pytest.skip(f"{path} not installed (python3-skimage)")
    kp, sc = teacher(img)
    assert len(sc) >= 1 and sc[0] > 0.3
    nose = kp[0, 0]
    assert 150 < nose[0] < 300 and 50 < nose[1] < 200 and nose[2] > 0.3  # her face is at about (240, 110)
    eyes = kp[0, 1:3, 0]
    assert eyes[0] > eyes[1]  # her left eye is on the image's right


def test_teacher_on_crop_maps_back(teacher):
    img = np.zeros((400, 400, 3), np.uint8)
    kp, sc = teacher.on_crop(img, (100, 50, 300, 250), min_score=0.0)
    assert kp.shape[1:] == (17, 3)
    if len(kp):
        assert (kp[:, :, 0] >= 100 - 1).all() and (kp[:, :, 1] >= 50 - 1).all()
