"""salrank.Predictor: inputs of every kind, batching, devices, autocast rules, any SORModel."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from salrank.errors import InputError
from salrank.modeling.loading import load_model, resolve_device, save_model
from salrank.modeling.seqrank import build_seqrank, seqrank_tiny_config
from salrank.predictor import Predictor, image_name
from salrank.structures import RankedInstances

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    return build_seqrank(seqrank_tiny_config())


def photo(seed=0, h=50, w=70):
    return (np.random.RandomState(seed).rand(h, w, 3) * 255).astype(np.uint8)


def same(a: RankedInstances, b: RankedInstances) -> None:
    assert a.extras["query_index"].tolist() == b.extras["query_index"].tolist()
    assert np.array_equal(a.masks, b.masks)
    np.testing.assert_allclose(a.scores, b.scores, atol=1e-6)
    np.testing.assert_allclose(a.saliency, b.saliency, atol=1e-6)
    np.testing.assert_allclose(a.boxes, b.boxes, atol=1e-4)


def test_paths_pil_and_arrays_give_the_same_result(tiny, tmp_path):
    rgb = photo()
    Image.fromarray(rgb).save(tmp_path / "shot.png")
    predictor = Predictor(tiny)
    from_path = predictor(tmp_path / "shot.png")
    from_str = predictor(str(tmp_path / "shot.png"))
    from_pil = predictor(Image.fromarray(rgb))
    from_array = predictor(rgb, names="mine")
    assert isinstance(from_path, RankedInstances) and from_path.image_name == "shot"
    assert from_array.image_name == "mine" and from_pil.image_name == "image_0"
    for other in (from_str, from_pil, from_array):
        same(from_path, other)
    assert from_path.masks.shape == (len(from_path), 50, 70)
    # greyscale and RGBA inputs are converted like read_image does
    grey = predictor(rgb.mean(axis=2).astype(np.uint8))
    assert grey.masks.shape[1:] == (50, 70)
    rgba = np.concatenate([rgb, np.full((50, 70, 1), 255, np.uint8)], axis=2)
    same(predictor(rgba), from_array)


def test_lists_and_batches(tiny):
    images = [photo(i, 40 + 7 * i, 60 - 5 * i) for i in range(3)]
    one_by_one = Predictor(tiny, batch_size=1)(images)
    batched = Predictor(tiny, batch_size=2)(images, names=["a", "b", "c"])
    assert isinstance(batched, list) and [r.image_name for r in batched] == ["a", "b", "c"]
    for a, b, im in zip(one_by_one, batched, images):
        same(a, b)
        assert b.masks.shape[1:] == im.shape[:2]
    assert Predictor(tiny)([]) == []
    with pytest.raises(InputError, match="2 names"):
        Predictor(tiny)(images, names=["a", "b"])


def test_inference_mode_and_eval(tiny):
    tiny.train()
    predictor = Predictor(tiny)
    assert not predictor.model.training
    seen = {}
    original = tiny.predict

    def spy(images, names=None):
        seen["inference"] = torch.is_inference_mode_enabled()
        return original(images, names)

    tiny.predict = spy
    try:
        predictor(photo())
    finally:
        del tiny.predict
    assert seen["inference"]


def test_devices_and_autocast(tiny):
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(InputError, match="CUDA is not available"):
            Predictor(tiny, device="cuda")
    with pytest.raises(InputError, match="needs a CUDA device"):
        Predictor(tiny, device="cpu", autocast="bf16")
    with pytest.raises(InputError, match="autocast must be"):
        Predictor(tiny, autocast="int8")
    with pytest.raises(InputError, match="batch_size"):
        Predictor(tiny, batch_size=0)
    with pytest.raises(InputError, match="not a device"):
        resolve_device("gpu0")
    assert "seqrank" in repr(Predictor(tiny))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_autocast_runs(tiny):  # pragma: no cover - no GPU on the CI machine
    for dtype in ("bf16", "fp16"):
        result = Predictor(tiny, device="cuda", autocast=dtype)(photo())
        assert result.masks.shape[1:] == (50, 70)


def test_from_config_with_salrank_weights(tiny, tmp_path):
    path = save_model(tiny, tmp_path / "tiny.safetensors")
    predictor = Predictor.from_config(None, path)
    same(predictor(photo()), Predictor(tiny)(photo()))
    predictor = Predictor.from_config(tmp_path / "tiny.json", path, batch_size=2)
    assert predictor.batch_size == 2


def test_from_name_needs_an_installed_zoo_entry(tmp_path, monkeypatch):
    from salrank.errors import WeightsNotFoundError

    monkeypatch.setenv("SALRANK_HOME", str(tmp_path))
    with pytest.raises(WeightsNotFoundError, match="salrank weights fetch seqrank-assr-correct"):
        Predictor.from_name("seqrank-assr-correct")
    with pytest.raises(InputError):
        Predictor.from_name("no-such-model")


def test_from_name_uses_the_zoo_entry(tiny, tmp_path, monkeypatch):
    import salrank.weights
    from salrank.weights import get_entry

    path = save_model(tiny, tmp_path / "tiny.safetensors")
    entry = get_entry("seqrank-assr-correct")
    monkeypatch.setattr(salrank.weights, "resolve_weights", lambda name: (path, entry))
    result = Predictor.from_name("seqrank-assr-correct")(photo())
    assert result.model == "seqrank-assr-correct"
    same(result, Predictor(tiny)(photo()))


def test_works_for_other_models():
    default = load_model({"architecture": "default", "config": {"use_people": False, "grabcut": False}})
    result = Predictor(default)(photo(3, 64, 96))
    assert isinstance(result, RankedInstances) and result.model == "salrank-default"
    assert result.masks.shape[1:] == (64, 96)


@pytest.mark.fixtures
def test_works_for_ppa(shared_fixtures):
    from salrank.modeling.ppa import ppa_config_from_official_yaml

    folder = shared_fixtures / "models" / "ppa"
    spec = torch.load(folder / "expected.pt", weights_only=True)["meta"]["vovnet_spec"]  # a tiny VoVNet
    cfg = ppa_config_from_official_yaml(folder / "config.yaml", vovnet_spec=spec)
    predictor = Predictor.from_config(cfg, folder / "checkpoint.pth")
    result = predictor(folder / "input.jpg")
    assert result.image_name == "input" and result.model == "ppa"
    assert result.masks.shape[1:] == (480, 640)


def test_image_name():
    assert image_name("a/b/photo.final.jpg", 3) == "photo.final"
    assert image_name(np.zeros((2, 2, 3), np.uint8), 3) == "image_3"
