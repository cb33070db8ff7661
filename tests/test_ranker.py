"""``salrank.Ranker``: one object from a model name to pictures and files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from _app_helpers import HAS_LITE0, LITE0_REASON, REAL_PHOTOS, BrightSpotModel, save_png, spots_image
from PIL import Image

import salrank
from salrank.errors import InputError, WeightsNotFoundError
from salrank.ranker import DEFAULT_MODEL_NOTE, Ranker, apply_test_size, installed_models
from salrank.structures import Instance, RankedInstances
from salrank.viz import rank_colormap


@pytest.fixture(scope="module")
def default_ranker() -> Ranker:
    if not HAS_LITE0:
        pytest.skip(LITE0_REASON)
    return salrank.Ranker()


def test_default_ranker_on_a_real_photo(default_ranker: Ranker, shared_images: Path, tmp_path: Path) -> None:
    path = shared_images / REAL_PHOTOS[1]
    result = default_ranker(path)
    assert isinstance(result, RankedInstances)
    assert result.model == "salrank-default" and result.image_name == path.stem
    assert (result.height, result.width) == (480, 640) and len(result) >= 2
    objects = list(result)
    assert all(isinstance(o, Instance) for o in objects)
    assert [o.rank for o in objects] == list(range(1, len(result) + 1))
    first = objects[0]
    assert first.mask.shape == (480, 640) and first.mask.dtype == bool and first.mask.any()
    x1, y1, x2, y2 = first.box
    ys, xs = np.nonzero(first.mask)
    assert x1 <= xs.min() and xs.max() <= x2 and y1 <= ys.min() and ys.max() <= y2
    assert 0.0 <= first.score <= 1.0 and first.saliency == pytest.approx(1.0)
    # pictures: the photo is kept with the result, so plot() needs nothing else
    overlay = result.plot()
    assert overlay.dtype == np.uint8 and overlay.shape[1] == 640 and overlay.shape[0] > 480
    assert np.array_equal(result.plot("colormap"), rank_colormap(result))
    assert result.plot("overlay", caption=False).shape == (480, 640, 3)
    panel = result.plot("panel")
    assert panel.shape[1] > 2 * 640
    # files and COCO entries
    written = result.save(tmp_path / "out")
    assert Path(written["colormap"]).is_file() and Path(written["overlay"]).is_file()
    entries = result.to_coco()
    assert [e["rank"] for e in entries] == list(range(1, len(result) + 1))
    assert all(e["image_id"] == path.stem and e["segmentation"]["size"] == [480, 640] for e in entries)


def test_inputs_of_every_kind(default_ranker: Ranker, shared_images: Path) -> None:
    path = shared_images / REAL_PHOTOS[0]
    pil = Image.open(path)
    array = np.asarray(pil.convert("RGB"))
    results = default_ranker([str(path), array, pil.convert("L")], names=["a", "b", "c"])
    assert [r.image_name for r in results] == ["a", "b", "c"]
    assert all((r.height, r.width) == (480, 640) for r in results)
    assert len(results[0]) == len(results[1])  # a path and its pixels rank the same
    assert np.array_equal(results[0].masks, results[1].masks)


def test_describe_says_what_the_model_is(default_ranker: Ranker) -> None:
    info = default_ranker.describe()
    assert info["name"] == "salrank-default" and info["architecture"] == "default"
    assert info["note"] == DEFAULT_MODEL_NOTE and "far better" in info["note"]
    assert info["weights"] is None and info["keypoints"] is True
    assert default_ranker.is_default and "default" in installed_models()
    assert "salrank-default" in repr(default_ranker)


def test_size_override_sets_each_architectures_field() -> None:
    from types import SimpleNamespace

    default = SimpleNamespace(architecture="default", cfg=SimpleNamespace(max_side=800))
    apply_test_size(default, 512)
    assert default.cfg.max_side == 512
    seqrank = SimpleNamespace(architecture="seqrank", cfg=SimpleNamespace(input=SimpleNamespace(test_size=800)))
    apply_test_size(seqrank, 640)
    assert seqrank.cfg.input.test_size == 640
    posesor = SimpleNamespace(architecture="posesor", cfg=SimpleNamespace(input=SimpleNamespace(test_image_size=768)))
    apply_test_size(posesor, 512)
    assert posesor.cfg.input.test_image_size == 512
    ppa = SimpleNamespace(architecture="ppa", cfg=SimpleNamespace(input=SimpleNamespace(min_size_test=480, max_size_test=1333)))
    apply_test_size(ppa, 1600)
    assert (ppa.cfg.input.min_size_test, ppa.cfg.input.max_size_test) == (1600, 1600)
    with pytest.raises(InputError, match="no adjustable test size"):
        apply_test_size(SimpleNamespace(architecture="brightspot", cfg=None), 512)
    with pytest.raises(InputError, match="at least 32"):
        apply_test_size(default, 8)


def test_default_ranker_with_a_size(shared_images: Path) -> None:
    if not HAS_LITE0:
        pytest.skip(LITE0_REASON)
    ranker = Ranker("default", size=320, device="cpu")
    assert ranker.model.cfg.max_side == 320 and ranker.describe()["size"] == 320
    result = ranker(shared_images / REAL_PHOTOS[1])
    assert (result.height, result.width) == (480, 640)  # ranked at 320 px, answered at the photo's size


def test_model_names_and_paths_that_do_not_work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SALRANK_HOME", str(tmp_path / "home"))
    with pytest.raises(InputError, match="seqrank-assr"):  # an unknown name lists the zoo
        Ranker("no-such-model")
    with pytest.raises(InputError, match="not found"):
        Ranker(str(tmp_path / "missing.pth"))
    with pytest.raises(WeightsNotFoundError, match="salrank weights fetch seqrank-assr-correct"):
        Ranker("seqrank-assr-correct")
    assert installed_models() == ["default"]
    with pytest.raises(InputError, match="batch size"):
        Ranker(BrightSpotModel(), batch_size=0)


def test_rank_files_reports_bad_files_and_keeps_order(tmp_path: Path) -> None:
    good = save_png(tmp_path / "good.png", spots_image())
    text = tmp_path / "text.png"
    text.write_text("not an image")
    broken = spots_image()
    broken[0, 0] = (255, 0, 255)
    bad_model = save_png(tmp_path / "breaks.png", broken)
    ranker = Ranker(BrightSpotModel(), device="cpu", batch_size=2)
    outcomes = list(ranker.rank_files([good, text, bad_model, good]))
    assert [o.path.name for o in outcomes] == ["good.png", "text.png", "breaks.png", "good.png"]
    assert [o.ok for o in outcomes] == [True, False, False, True]
    assert "not a readable image" in outcomes[1].error and "magenta" in outcomes[2].error
    result = outcomes[0].result
    assert result.model == "brightspot" and len(result) == 2 and result.extras["source"] == str(good)
    assert "image" not in result.extras and outcomes[0].image.shape == (60, 80, 3)
    assert ranker.name == "brightspot" and not ranker.is_default
