"""``python -m fmnist_core explain``: PNGs of the maps, filters and Grad-CAM, and the
probabilities, for a test image or an image file; clear one-line errors otherwise."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fmnist_core import cli
from fmnist_core.data import CLASSES
from tests.app.test_sketch_page import write_run


def test_explain_a_test_image_writes_every_view(tiny_env, runs_dir, tmp_path, capsys):
    run_id = write_run(runs_dir)
    out = tmp_path / "out"
    code = cli.main(["explain", run_id, "--test-index", "3", "--class", "Bag", "--out", str(out)])
    text = capsys.readouterr().out
    assert code == 0, text
    names = {p.name for p in out.iterdir()}
    assert {"input.png", "block_1.png", "block_2.png", "filters.png", "saliency.png"} <= names
    assert "gradcam_bag.png" in names and len([n for n in names if "gradcam" in n]) in (1, 2)
    assert np.asarray(Image.open(out / "input.png")).shape == (16, 16)  # the model's input
    assert f"run {run_id}, epoch 1: predicted" in text and "true class:" in text
    lines = [line for line in text.splitlines() if line.startswith("  ")]
    assert sorted(line.split()[0] for line in lines) == sorted(c.split()[0] for c in CLASSES)


def test_explain_an_image_file(tiny_env, runs_dir, tmp_path, capsys):
    run_id = write_run(runs_dir)
    image = Image.new("L", (60, 80), 0)
    image.paste(255, (10, 10, 50, 70))
    path = tmp_path / "coat.png"
    image.save(path)
    code = cli.main(["explain", run_id, "--image", str(path), "--out", str(tmp_path / "o")])
    assert code == 0 and "predicted" in capsys.readouterr().out
    assert (tmp_path / "o" / "filters.png").is_file()


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        (["--test-index", "99999"], "--test-index must be 0 to"),
        (["--test-index", "0", "--epoch", "7"], "has no epoch 7"),
        (["--image", "missing.png"], "is not a file"),
    ],
)
def test_explain_bad_input_is_one_clear_line(tiny_env, runs_dir, tmp_path, capsys, extra, needle):
    run_id = write_run(runs_dir)
    code = cli.main(["explain", run_id, *extra, "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 1 and needle in err and "Traceback" not in err
    assert not (tmp_path / "o").exists()  # nothing written for a refused request


def test_explain_refuses_an_unknown_class(tiny_env, runs_dir, capsys):
    run_id = write_run(runs_dir)
    with pytest.raises(SystemExit) as stop:
        cli.main(["explain", run_id, "--test-index", "0", "--class", "Hat"])
    assert stop.value.code == 2 and "class index 0-9" in capsys.readouterr().err


def test_explain_unknown_run(tiny_env, capsys):
    assert cli.main(["explain", "no-such-run", "--test-index", "0"]) == 1
    assert "no-such-run" in capsys.readouterr().err


def test_explain_png_paths_are_inside_out(tmp_path: Path):
    from fmnist_core.cli_explain import _slug  # noqa: PLC0415

    assert _slug("T-shirt/top") == "t-shirt-top" and "/" not in _slug("Ankle boot")
