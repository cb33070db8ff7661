"""The command line of training: salrank train --help / --print-config, salrank plot, salrank data synth."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from salrank.cli import main


def test_train_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["train", "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "--resume" in out and "seqrank_swinL_assr_correct" in out and "torchrun" in out


def test_train_print_config_and_errors(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["train", "cpu_smoke", "solver.max_iter=3", "--print-config"]) == 0
    out = capsys.readouterr().out
    assert "max_iter: 3" in out and "architecture: seqrank-lite" in out
    # overrides may also follow the options
    assert main(["train", "cpu_smoke", "--print-config", "solver.max_iter=4", "solver.base_lr=0.5"]) == 0
    out = capsys.readouterr().out
    assert "max_iter: 4" in out and "base_lr: 0.5" in out
    with pytest.raises(SystemExit):
        main(["train", "cpu_smoke", "--print-config", "--no-such-option"])
    assert "unrecognized arguments: --no-such-option" in capsys.readouterr().err
    assert main(["train", "cpu_smoke", "solver.nope=1"]) == 2
    assert "unknown option 'solver.nope'" in capsys.readouterr().err
    run = tmp_path / "run"
    run.mkdir()
    (run / "metrics.jsonl").write_text("")
    assert main(["train", "cpu_smoke", "data.train=x.json", f"--output-dir={run}"]) == 2
    assert "previous run" in capsys.readouterr().err


def test_plot_writes_a_png(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "run"
    run.mkdir()
    lines = [{"type": "train", "iter": i, "loss": 10.0 / i, "mask_loss": 4.0 / i, "sal_loss": 6.0 / i, "lr": 1e-4} for i in range(1, 30)]
    lines += [{"type": "eval", "iter": 10, "sa_sor": 0.2, "sor": 0.6}, {"type": "eval", "iter": 29, "sa_sor": 0.4, "sor": 0.7}]
    (run / "metrics.jsonl").write_text("\n".join(json.dumps(x) for x in lines) + "\n{\"truncated")
    assert main(["plot", str(run)]) == 0
    png = run / "curves.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    from PIL import Image

    assert Image.open(png).size[0] > 1000  # three panels: losses, learning rate, metrics
    assert main(["plot", str(tmp_path / "nothing")]) == 2
    assert "no training records" in capsys.readouterr().err


def test_data_synth_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["data", "synth", str(tmp_path), "--n", "6", "--size", "64x48", "--seed", "1"]) == 0
    assert "train" in capsys.readouterr().out
    assert main(["data", "check", str(tmp_path / "synth_train.json")]) == 0
    assert main(["data", "synth", str(tmp_path), "--n", "6"]) == 2  # refuses to overwrite
    assert main(["data", "synth", str(tmp_path / "b"), "--size", "large"]) == 2
