"""Shared fixtures. Every test gets its own empty model store (CCV_HOME), never the user's."""
from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
import torch

FIXTURES = Path(__file__).parent / "fixtures"
PHOTOS = sorted((FIXTURES / "photo").glob("*.jpg"))
PAINTINGS = sorted((FIXTURES / "monet").glob("*.jpg"))


@pytest.fixture(autouse=True)
def ccv_home(tmp_path_factory, monkeypatch) -> Path:
    home = tmp_path_factory.mktemp("ccv_home")
    monkeypatch.setenv("CCV_HOME", str(home))
    return home


@pytest.fixture(autouse=True)
def no_bundled_models(request, monkeypatch):
    """Tests see only the models they install; the bundled model is tested where a test asks for it
    with @pytest.mark.bundled."""
    if "bundled" not in request.keywords:
        from cyclegan_convert import store

        monkeypatch.setattr(store, "BUNDLED_ROOT", None)


@pytest.fixture(autouse=True, scope="session")
def _one_thread():
    """Test networks are tiny and overhead-bound: one thread is faster, and leaves the second core to
    the decode and encode threads of the pipelines under test."""
    torch.set_num_threads(1)


@pytest.fixture
def tiny_generator():
    """A small generator (ngf 8, 2 blocks) with the original's random init: fast on the CPU."""
    from cyclegan_convert.networks import ResnetGenerator, init_weights

    torch.manual_seed(0)
    return init_weights(ResnetGenerator(ngf=8, n_blocks=2)).eval()


from pixels import psnr  # noqa: E402,F401  (the tests' one PSNR; tests import it from here too)


def _have_ray() -> bool:
    try:
        import ray.data  # noqa: F401
    except ImportError:
        return False
    return True


NO_RAY = "Ray Data is not installed: pip install 'cyclegan-convert[ray]' to run the --ray tests"
needs_ray = pytest.mark.skipif(not _have_ray(), reason=NO_RAY)


@contextlib.contextmanager
def torch_threads(n: int):
    """PyTorch's CPU InstanceNorm runs on group_norm's channels_last kernel, whose reductions split
    by thread: outputs are byte-equal between runs with the same number of threads only. Tests that
    compare with another process's outputs (a Ray actor) run their own side with its count."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)
