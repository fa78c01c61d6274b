import subprocess
import sys

from tests.conftest import REPO


def test_core_never_imports_streamlit():
    code = (
        "import sys, fmnist_core, pkgutil, importlib\n"
        "for m in pkgutil.iter_modules(fmnist_core.__path__):\n"
        "    if m.name != '__main__': importlib.import_module('fmnist_core.' + m.name)\n"
        "print('streamlit' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"
    sources = (REPO / "fmnist_core").rglob("*.py")
    assert not any("import streamlit" in p.read_text() for p in sources)


def _imported_by(module: str) -> set[str]:
    code = f"import sys, {module}\nprint(' '.join(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return set(out.stdout.split())


def test_storage_and_evaluation_do_not_import_the_training_loop():
    for module in ("fmnist_core.runs", "fmnist_core.record", "fmnist_core.evaluate"):
        assert "fmnist_core.train" not in _imported_by(module), module
    assert "fmnist_core.train" in _imported_by("fmnist_core.session")  # the one that starts runs
