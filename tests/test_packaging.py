"""The layout installs as designed: train/ and export/ inside the package, from an editable install
and from a built wheel alike."""
from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_editable_install_maps_train_and_export_to_the_top_level_folders():
    import cyclegan_convert.export.onnx_export as onnx_export
    import cyclegan_convert.train.model as model

    if not Path(model.__file__).resolve().is_relative_to(ROOT):
        pytest.skip("ccv is installed from a wheel here, not editable")
    assert Path(model.__file__).resolve() == ROOT / "train" / "model.py"
    assert Path(onnx_export.__file__).resolve() == ROOT / "export" / "onnx_export.py"


@pytest.mark.slow
def test_a_built_wheel_holds_and_imports_the_subpackages(tmp_path):
    pytest.importorskip("setuptools")
    src = tmp_path / "src"  # a copy: setuptools leaves build/ behind in the tree it builds
    src.mkdir()
    for name in ("pyproject.toml", "README.md", "cyclegan_convert", "train", "export"):
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(ROOT / name, src / name)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(tmp_path / "dist"), str(src)], check=True, cwd=tmp_path, capture_output=True)
    wheel = next((tmp_path / "dist").glob("cyclegan_convert-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    for must in ("cyclegan_convert/train/loop.py", "cyclegan_convert/export/pipeline.py",
                 "cyclegan_convert/backends/select.py", "cyclegan_convert/cli/app.py"):
        assert must in names, must
    assert any(n.startswith("cyclegan_convert/samples/") for n in names)
    assert not any(n.startswith(("train/", "export/", "tests/")) for n in names)

    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(site), str(wheel)],
                   check=True, capture_output=True)
    code = ("import cyclegan_convert.train.model as m, cyclegan_convert.export.pipeline as e, cyclegan_convert.cli as c; "
            "print(m.__file__); print(e.__file__)")
    out = subprocess.run([sys.executable, "-I", "-c", f"import sys; sys.path.insert(0, {str(site)!r}); {code}"],
                         check=True, capture_output=True, text=True, cwd=tmp_path).stdout.split()
    assert all(Path(p).is_relative_to(site) for p in out), out
