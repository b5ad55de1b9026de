"""The Python API: load_model's contract, the weights shipped inside the package, the ConvGRU state."""
import shutil
import subprocess
import sys
import zipfile
from importlib import resources
from pathlib import Path

import pytest
import torch

import posevid
from posevid.config import MODELS, model_config
from posevid.errors import PosevidError
from posevid.model import DEKR, SHIPPED_WEIGHTS, load_model, save_checkpoint, shipped_weights
from posevid.model.temporal import ConvGRU

ROOT = Path(__file__).resolve().parents[1]


def test_every_shipped_file_is_package_data_of_a_known_model():
    assert "small" in SHIPPED_WEIGHTS
    for name, filename in SHIPPED_WEIGHTS.items():
        assert name in MODELS
        path = shipped_weights(name)
        assert path.is_file() and path.name == filename
        # found through the package, not through the source tree's layout
        assert path == Path(str(resources.files("posevid") / "weights" / filename))
        assert path.parent.parent == Path(posevid.__file__).parent


def test_shipped_default_finds_the_example_clips_people_with_few_phantoms():
    """The default model's shipped weights (effnet) with their own decoding defaults (input 384, pose score
    = center peak, threshold 0.45) on the 9 hand-boxed frames of the example clip: most reports are people
    (model card: 97 %) and most people are found (59 %)."""
    import numpy as np

    from posevid.evaluate.accuracy import people_found
    from posevid.evaluate.ground_truth import load_ground_truth
    from posevid.video import probe, read_frames

    from posevid.config import DEFAULT_MODEL

    model = load_model(DEFAULT_MODEL)
    assert model.cfg.name == "effnet" and model.temporal.is_identity
    assert (model.cfg.input_size, model.cfg.pose_score, model.cfg.threshold) == (384, "center", 0.45)
    gt = load_ground_truth(ROOT / "examples" / "pedestrians.people.json")
    boxes = {r.frame_id: gt.boxes_in(r.image_id)[0] for r in gt.videos[0].frames}
    predictor = posevid.Predictor(model)
    found = false = missed = 0
    for frame in read_frames(probe(ROOT / "examples" / "pedestrians.mp4"), max_frames=120):
        if frame.index in boxes:
            poses = predictor(frame.image).poses
            f, fa, m = people_found(poses.keypoints, poses.scores, boxes[frame.index], predictor.threshold)
            found, false, missed = found + f, false + fa, missed + m
    assert found + missed == 54
    assert found / (found + false) >= 0.9 and found / 54 >= 0.55


def test_load_model_gives_the_shipped_weights_by_default():
    model = load_model("small")
    assert not model.training and model.cfg.name == "small"
    from_file = load_model(weights=shipped_weights("small"))
    for k, v in from_file.state_dict().items():  # (a file without GRU weights leaves the GRU at its start)
        assert k.startswith("temporal.") or torch.equal(v, model.state_dict()[k]), k
    torch.manual_seed(0)
    random = load_model("small", pretrained=False)
    assert random.cfg == model_config("small") and random.cfg.name == model.cfg.name
    assert not torch.equal(random.state_dict()["conv1.weight"], model.state_dict()["conv1.weight"])
    per_frame = load_model("small", temporal=False)
    assert per_frame.temporal is None
    assert torch.equal(per_frame.state_dict()["conv1.weight"], model.state_dict()["conv1.weight"])


def test_load_model_refusals_are_one_clear_message(tmp_path):
    unshipped = next(name for name in MODELS if name not in SHIPPED_WEIGHTS)
    with pytest.raises(PosevidError, match=rf"model '{unshipped}' has no shipped weights.*weights=.*"
                                           "pretrained=False"):
        load_model(unshipped)
    assert load_model(unshipped, pretrained=False).cfg.name == unshipped
    save_checkpoint(tmp_path / "lite.pt", DEKR(model_config("lite")))
    for args, kwargs in ((("nonsense",), {}), (("nonsense",), {"weights": tmp_path / "lite.pt"}),
                         (("nonsense",), {"pretrained": False})):
        with pytest.raises(PosevidError, match="unknown model 'nonsense'; known models: ") as e:
            load_model(*args, **kwargs)
        assert all(name in str(e.value) for name in MODELS)
    with pytest.raises(PosevidError, match="weights are for model lite, not small"):
        load_model("small", weights=tmp_path / "lite.pt")
    with pytest.raises(PosevidError, match="needs a model name"):
        load_model()
    with pytest.raises(PosevidError, match="either weights= or pretrained=False"):
        load_model("lite", weights=tmp_path / "lite.pt", pretrained=False)


def test_a_broken_install_without_its_weights_file_is_explained(monkeypatch):
    monkeypatch.setitem(SHIPPED_WEIGHTS, "small", "no_such_file.pt")
    with pytest.raises(PosevidError, match="missing from this installation"):
        load_model("small")


def test_no_library_code_reads_the_source_tree_weights_folder():
    for path in (ROOT / "posevid").rglob("*.py"):
        text = path.read_text()
        assert 'parent / "weights"' not in text and "WEIGHTS_DIR" not in text, path


def test_the_wheel_carries_the_shipped_weights(tmp_path):
    # What a regular `pip install .` installs: build the wheel from a copy of the project.
    src = tmp_path / "src"
    shutil.copytree(ROOT / "posevid", src / "posevid", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                        "-w", str(tmp_path / "dist"), str(src)], capture_output=True, text=True)
    if r.returncode != 0 and "No module named" in r.stderr:
        pytest.skip(f"cannot build a wheel here: {r.stderr.strip().splitlines()[-1]}")
    assert r.returncode == 0, r.stderr
    (wheel,) = (tmp_path / "dist").glob("posevid-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for filename in SHIPPED_WEIGHTS.values():
        assert f"posevid/weights/{filename}" in names


def test_result_types_are_exported():
    from posevid.decode import Poses
    from posevid.infer import InferResult
    from posevid.predict import FrameResult

    assert (posevid.Poses, posevid.FrameResult, posevid.InferResult) == (Poses, FrameResult, InferResult)
    assert {"Poses", "FrameResult", "InferResult", "load_model"} <= set(posevid.__all__)


def test_gru_state_of_the_wrong_shape_is_an_error():
    gru = ConvGRU(8, 4).eval()
    torch.nn.init.normal_(gru.out.weight, std=0.1)  # trained: an identity GRU is skipped in eval mode
    x = torch.randn(2, 8, 5, 6)
    with torch.no_grad():
        _, h = gru(x, None)  # None: a stream's start
        assert h.shape == (2, 4, 5, 6)
        gru(x, h)
        for bad in (h[:1], h[:, :, :4], torch.zeros(2, 3, 5, 6)):
            with pytest.raises(ValueError, match=r"ConvGRU state has shape .* expected \(2, 4, 5, 6\)"):
                gru(x, bad)
    model = DEKR(model_config("lite")).eval()
    torch.nn.init.normal_(model.temporal.out.weight, std=0.1)
    with torch.no_grad():
        state = model(torch.zeros(1, 3, 64, 64)).state
        with pytest.raises(ValueError, match="pass None to start a new stream"):
            model(torch.zeros(1, 3, 96, 64), state)  # another frame size, same state
        torch.nn.init.zeros_(model.temporal.out.weight)  # skipped at identity, the state is still checked
        with pytest.raises(ValueError, match="pass None to start a new stream"):
            model(torch.zeros(1, 3, 96, 64), state)  # another frame size, same state
