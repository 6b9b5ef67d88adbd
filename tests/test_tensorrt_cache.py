"""The TensorRT engine cache and profile handling, through a small fake engine loader (no TensorRT here).

The real TensorRT path (tests marked `tensorrt`) runs only where TensorRT and a CUDA GPU are present.
"""
from __future__ import annotations

import json
from dataclasses import replace

import pytest
import torch

from cyclegan_convert.backends.base import Backend
from cyclegan_convert.backends.tensorrt_backend import ProfileRange, TensorRTBackend, plan_profile
from cyclegan_convert.backends.torch_backend import TorchBackend
from cyclegan_convert.errors import BackendUnavailableError, EngineBuildError, ShapeRefused, UsageError
from cyclegan_convert.export import ensure_engine, tensorrt_available
from cyclegan_convert.export.engine_cache import EngineKey, Platform, ensure_engine_file
from cyclegan_convert.export.shapes import Profile, Shape
from cyclegan_convert.export.verify import sample_images
from cyclegan_convert.export.pipeline import validate_engine
from export_fixtures import PHOTOS, install_tiny, tiny_export, tiny_generator

SMALL = Profile(Shape(1, 64, 64), Shape(2, 96, 128), Shape(2, 128, 128))
H100 = Platform("10.13.0", "NVIDIA H100 80GB HBM3", "9.0")


class NaNBackend(Backend):
    name = "nan"

    def _run(self, x):
        return torch.full_like(x, float("nan"))


class FakeLoader:
    """Engines are bytes 'FAKE <platform>'; they load only on the platform they were built for."""

    def __init__(self, platform=H100, backend_factory=None):
        self._platform = platform
        self.builds = 0
        self.backend_factory = backend_factory or (lambda: TorchBackend(tiny_generator(), device="cpu"))

    def platform(self):
        return self._platform

    def build(self, onnx_path, profiles, timing_cache):
        self.builds += 1
        timing_cache.write_bytes(b"timings")
        return f"FAKE {self._platform}".encode()

    def check_loads(self, data):
        if data != f"FAKE {self._platform}".encode():
            raise RuntimeError("Serialization assertion failed (magic tag mismatch)")

    def backend(self, data):
        self.check_loads(data)
        return self.backend_factory()


def _build(tmp_path, loader, messages=None, profiles=(SMALL,)):
    generator, images = tiny_generator(), sample_images(PHOTOS)
    return ensure_engine_file(tiny_export().fp16, "fp16", profiles, tmp_path, loader,
                              lambda b: validate_engine(b, generator, images, profiles),
                              on_message=(messages.append if messages is not None else lambda s: None))


# -- cache keys -------------------------------------------------------------------------------------
def test_every_key_component_changes_the_engine_name():
    key = EngineKey("a" * 64, "fp16", (SMALL,), H100)
    variants = [
        replace(key, onnx_sha256="b" * 64),
        replace(key, precision="fp32"),
        replace(key, profiles=(replace(SMALL, opt=Shape(1, 128, 128)),)),
        replace(key, platform=replace(H100, trt_version="11.0.0")),
        replace(key, platform=replace(H100, gpu_name="NVIDIA GeForce RTX 4090")),
        replace(key, platform=replace(H100, compute_capability="8.9")),
    ]
    names = {key.name} | {v.name for v in variants}
    assert len(names) == 1 + len(variants)
    assert key.name == EngineKey("a" * 64, "fp16", (SMALL,), H100).name  # and it is stable


# -- build, cache, rebuild, refuse ------------------------------------------------------------------
def test_new_engine_is_validated_cached_and_described(tmp_path):
    loader, messages = FakeLoader(), []
    path = _build(tmp_path, loader, messages)
    assert loader.builds == 1 and path.parent == tmp_path / "engines" and path.suffix == ".engine"
    sidecar = json.loads(path.with_suffix(".json").read_text())
    assert sidecar["gpu_name"] == H100.gpu_name and sidecar["compute_capability"] == "9.0"
    assert sidecar["tensorrt_version"] == "10.13.0" and sidecar["precision"] == "fp16"
    assert sidecar["profiles"] == [{"min": "1x64x64", "opt": "2x96x128", "max": "2x128x128"}]
    assert len(sidecar["onnx_sha256"]) == 64
    assert (tmp_path / "timing.cache").read_bytes() == b"timings"
    assert len(messages) == 1 and "building TensorRT engine" in messages[0]
    assert _build(tmp_path, loader) == path and loader.builds == 1  # cached


def test_engine_that_does_not_load_is_rebuilt_with_one_line(tmp_path):
    loader = FakeLoader()
    path = _build(tmp_path, loader)
    path.write_bytes(b"\x00garbage")
    messages = []
    assert _build(tmp_path, loader, messages) == path
    assert loader.builds == 2 and path.read_bytes() == f"FAKE {H100}".encode()
    assert "does not load" in messages[0] and "magic tag mismatch" in messages[0] and "\n" not in messages[0]


def test_other_gpu_gets_its_own_engine(tmp_path):
    a = _build(tmp_path, FakeLoader())
    b = _build(tmp_path, FakeLoader(replace(H100, gpu_name="NVIDIA L4", compute_capability="8.9")))
    assert a != b and a.is_file() and b.is_file()


def test_engine_failing_validation_is_refused_with_the_numbers(tmp_path):
    loader = FakeLoader(backend_factory=NaNBackend)
    with pytest.raises(EngineBuildError, match=r"2x96x128: PSNR 0\.0 dB, NaN/Inf.*not cached"):
        _build(tmp_path, loader)
    assert not list((tmp_path / "engines").glob("*.engine")) and not list((tmp_path / "engines").glob("*.json"))


def test_engine_with_wrong_weights_is_refused(tmp_path):
    loader = FakeLoader(backend_factory=lambda: TorchBackend(tiny_generator(seed=3), device="cpu"))
    with pytest.raises(EngineBuildError, match=r"1x64x64: PSNR \d+\.\d dB"):
        _build(tmp_path, loader)


def test_ensure_engine_uses_the_store_folder(ccv_home):
    entry = install_tiny(ccv_home)
    path = ensure_engine(entry, (SMALL,), loader=FakeLoader(), images=sample_images(PHOTOS))
    assert path.parent == entry.exports_dir / "engines"


def test_ensure_engine_without_tensorrt_says_what_it_needs(ccv_home):
    if tensorrt_available()[0]:
        pytest.skip("TensorRT is installed here")
    with pytest.raises(BackendUnavailableError, match=r"cyclegan-convert\[tensorrt\]"):
        ensure_engine(install_tiny(ccv_home, with_exports=False))


# -- profiles at run time ---------------------------------------------------------------------------
def test_plan_profile_picks_chunks_or_explains():
    small = ProfileRange((1, 3, 64, 64), (8, 3, 512, 512))
    big = ProfileRange((1, 3, 512, 512), (1, 3, 2048, 2048))
    assert plan_profile([small, big], 4, 256, 256) == (0, 4)
    assert plan_profile([small, big], 20, 256, 256) == (0, 8)  # runs in chunks of 8
    assert plan_profile([small, big], 3, 1024, 768) == (1, 1)
    assert plan_profile([small, big], 1, 512, 512) == (0, 1)
    with pytest.raises(ShapeRefused, match="outside the TensorRT engine's profiles.*--max-shape 1x4000x600"):
        plan_profile([small, big], 1, 4000, 600)


def test_tensorrt_backend_without_tensorrt_fails_on_open_not_on_construction(tmp_path):
    if tensorrt_available()[0]:
        pytest.skip("TensorRT is installed here")
    backend = TensorRTBackend(tmp_path / "missing.engine")  # nothing happens before open()
    with pytest.raises(BackendUnavailableError, match="tensorrt"):
        backend.open()


@pytest.mark.tensorrt
@pytest.mark.skipif(not tensorrt_available()[0], reason=tensorrt_available()[1])
def test_real_engine_builds_validates_and_runs_in_chunks(ccv_home):
    entry = install_tiny(ccv_home)
    path = ensure_engine(entry, (SMALL,), images=sample_images(PHOTOS))
    images = torch.randint(0, 256, (5, 90, 117, 3), dtype=torch.uint8)  # 5 > max batch 2: chunks
    with TensorRTBackend(path) as trt_backend, TorchBackend(tiny_generator(), device="cuda") as ref:
        out, want = trt_backend.infer(images), ref.infer(images)
    assert out.shape == images.shape
    assert (out.int() - want.int()).abs().float().mean() < 2.0
