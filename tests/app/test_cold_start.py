"""The cold start (issue 19): the home page draws before torch or the dataset is loaded.

benchmarks/cold_start.py measures the time in a browser; these check the order that makes it
fast, whatever the machine's speed.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import REPO

# Runs the home page in a process where importing torch fails: everything the page draws
# before its first torch import still appears; the failure shows up after it.
NO_TORCH_HOME = """
import json, sys
from importlib.abc import MetaPathFinder

class NoTorch(MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "torch":
            raise ImportError("torch is blocked by this test")

sys.meta_path.insert(0, NoTorch())
from streamlit.testing.v1 import AppTest

at = AppTest.from_file(sys.argv[1], default_timeout=60).run()
print(json.dumps({
    "titles": [t.value for t in at.title],
    "links": [link.proto.label for link in at.get("page_link")],
    "exceptions": [e.message for e in at.exception],
}))
"""


def _run(code: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", code, *args], cwd=REPO, capture_output=True, text=True
    )


def test_home_page_draws_its_content_before_torch_is_imported():
    out = _run(NO_TORCH_HOME, "streamlit_app.py")
    assert out.returncode == 0, out.stderr
    page = json.loads(out.stdout.strip().splitlines()[-1])
    assert page["titles"] == [":material/checkroom: Watch a CNN learn Fashion-MNIST"]
    main, nav = page["links"][:3], page["links"][3:]  # the main area's, then the sidebar's
    assert main == ["**Train**", "**Confusion matrix**", "**Sketch**"]
    assert nav[:4] == ["Home", "Train", "Confusion matrix", "Sketch"]
    # The heavy part did run afterwards, and failed here where torch cannot be imported (the
    # page shows a generic message; the log has the error).
    assert len(page["exceptions"]) == 1 and "torch is blocked by this test" in out.stderr


@pytest.mark.parametrize(
    ("page", "title"),
    [
        ("pages/1_Train.py", ":material/model_training: Train"),
        ("pages/2_Confusion_matrix.py", ":material/grid_on: Confusion matrix"),
        ("pages/3_Sketch.py", ":material/draw: Sketch"),
        ("pages/4_Runs.py", ":material/table_chart: Runs"),
        ("pages/5_Learning.py", ":material/school: How the network learned"),
    ],
)
def test_every_page_draws_its_title_before_torch_and_its_modules(page, title):
    out = _run(NO_TORCH_HOME, page)
    assert out.returncode == 0, out.stderr
    drawn = json.loads(out.stdout.strip().splitlines()[-1])
    assert drawn["titles"] == [title]
    assert len(drawn["exceptions"]) == 1 and "torch is blocked by this test" in out.stderr


def test_the_shell_of_a_page_imports_neither_torch_nor_the_core():
    code = (
        "import sys, fmnist_app.shell\n"
        "heavy = ('torch', 'fmnist_core', 'numpy')\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy))"
    )
    out = _run(code)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
