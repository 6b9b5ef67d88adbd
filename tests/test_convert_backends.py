"""What `--backend auto` picks, explicit choices that cannot run, and the precision it may pick."""
from __future__ import annotations

import copy
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from cyclegan_convert.backends import Backend, TorchBackend, select
from cyclegan_convert.errors import BackendError, BackendUnavailableError, UsageError
from cyclegan_convert.resolve import ModelRef

from conftest import PHOTOS, psnr as _psnr


@pytest.fixture
def pth(tmp_path, tiny_generator):
    p = tmp_path / "g.pth"
    torch.save(tiny_generator.state_dict(), p)
    return ModelRef(p, "pytorch")


@pytest.mark.parametrize("native_bf16, precision, channels_last", [(True, "bf16", True), (False, "fp32", True)])
def test_auto_on_cpu_follows_native_bf16(pth, monkeypatch, native_bf16, precision, channels_last):
    monkeypatch.setattr(select, "cpu_has_native_bf16", lambda: native_bf16)
    be = select.make_backend(pth, "auto", "cpu")
    assert isinstance(be, TorchBackend)
    assert (be.precision, be.channels_last) == (precision, channels_last)
    assert precision in be.describe()


def test_explicit_choices_that_cannot_run_are_errors(pth, tmp_path):
    with pytest.raises(UsageError, match="fp16 needs a CUDA GPU"):
        select.make_backend(pth, "torch", "cpu", precision="fp16")
    with pytest.raises(UsageError, match="unknown --backend 'fastest'"):
        select.make_backend(pth, "fastest", "cpu")
    onnx = ModelRef(tmp_path / "g.onnx", "onnx")
    with pytest.raises(UsageError, match="ONNX file"):
        select.make_backend(onnx, "torch", "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(BackendUnavailableError, match="no CUDA GPU"):
            select.make_backend(pth, "auto", "cuda")
        with pytest.raises(BackendUnavailableError):
            select.make_backend(pth, "tensorrt", "auto")


def test_exported_files_run_on_their_engine(tmp_path):
    pytest.importorskip("onnxruntime")
    be = select.make_backend(ModelRef(tmp_path / "g.onnx", "onnx"), "auto", "cpu")
    assert be.name == "onnxruntime"
    be = select.make_backend(ModelRef(tmp_path / "g.engine", "tensorrt"), "auto", "auto")
    assert be.name == "tensorrt"


@pytest.mark.parametrize("channels_last", [False, True])  # True: ccv's CPU path (group_norm with a shift)
def test_bf16_path_stays_within_40db_of_fp32_on_low_contrast_photos(channels_last):
    """A photo and the same photo in fog (low contrast around a bright mean: the case where bf16
    loses most, as InstanceNorm subtracts the first conv's large offset). Full-size generator."""
    from PIL import Image

    from cyclegan_convert.networks import HalfPrecisionGenerator, NarrowConv2d, ResnetGenerator, init_weights

    torch.manual_seed(0)
    net = init_weights(ResnetGenerator()).eval()
    photo = np.asarray(Image.open(PHOTOS[0]).convert("RGB").resize((128, 128)), dtype=np.float64)
    fog = (200 + (photo - photo.mean()) * 0.15).round().clip(0, 255)
    images = torch.from_numpy(np.stack([photo, fog]).astype(np.uint8))
    with TorchBackend(net, "cpu", "fp32", channels_last=False) as ref, \
            TorchBackend(net, "cpu", "bf16", channels_last=channels_last) as fast:
        a, b = ref.infer(images), fast.infer(images)
        assert isinstance(fast.model, HalfPrecisionGenerator)
        assert next(fast.model.stem.parameters()).dtype == torch.float32
        assert next(fast.model.body.parameters()).dtype == torch.bfloat16
        assert isinstance(fast.model.body[-2], NarrowConv2d) and isinstance(ref.model.model[-2], NarrowConv2d)
    assert next(net.parameters()).dtype == torch.float32  # the caller's module was not cast
    assert type(net.model[-2]) is torch.nn.Conv2d  # nor had its layers swapped
    for i in range(2):
        assert _psnr(a[i], b[i]) >= 40, (i, _psnr(a[i], b[i]))
    # everything in bf16, stem included, falls below 40 dB on the fog: the fp32 stem is what holds it
    with torch.inference_mode():
        y = copy.deepcopy(net).to(torch.bfloat16)(images[1:].permute(0, 3, 1, 2).float().div(127.5).sub(1).bfloat16())
    all_bf16 = y.float().add(1).mul(127.5).round().clamp(0, 255).permute(0, 2, 3, 1)
    assert _psnr(a[1:], all_bf16) < 40


def test_auto_on_a_cpu_without_native_bf16_runs_pytorch_even_with_a_current_onnx_cached(ccv_home, monkeypatch):
    """A store model with its exports in place (as `ccv export --to` leaves them: the fp32 ONNX,
    current for these weights) and the real exporter at hand: auto still runs PyTorch fp32
    channels_last, measured as fast as ONNX Runtime on such CPUs (select.py's docstring)."""
    from cyclegan_convert.backends import artifacts
    from cyclegan_convert.converter import export_artifacts
    from cyclegan_convert.resolve import resolve_model
    from export_fixtures import install_tiny

    pytest.importorskip("onnxruntime")  # without it, nothing could have preferred the ONNX anyway
    monkeypatch.setattr(select, "cpu_has_native_bf16", lambda: False)
    install_tiny(ccv_home)
    ref = resolve_model(to="tiny")
    source = artifacts.source_of(ref)
    cached = artifacts.exports_dir_for(source) / artifacts.ONNX_NAMES[False]
    assert artifacts.is_current(cached, source)  # what a cache lookup finds: there is something cached
    be = select.make_backend(ref, "auto", "cpu", artifacts=export_artifacts())
    assert isinstance(be, TorchBackend) and (be.precision, be.channels_last) == ("fp32", True), be.describe()


class _NoTiles(Backend):
    """A backend that cannot tile (like ONNX Runtime and TensorRT)."""

    name = "notiles"

    def __init__(self, net):
        super().__init__()
        self.net = net

    def _run(self, x):
        with torch.inference_mode():
            return self.net(x)


def test_large_images_fall_back_to_torch_tiles(pth, tmp_path, tiny_generator):
    from PIL import Image

    from cyclegan_convert.converter import ConvertOptions, Converter

    src = tmp_path / "in"
    src.mkdir()
    Image.new("RGB", (160, 96), (200, 120, 40)).save(src / "big.png")
    Image.new("RGB", (48, 40), (20, 120, 240)).save(src / "small.png")
    s = Converter(pth, ConvertOptions(tile=64, output=tmp_path / "out"), backend=_NoTiles(tiny_generator)).run([str(src)])
    assert s.converted == 2 and not s.failed
    with Image.open(tmp_path / "out" / "big.png") as im:
        assert im.size == (160, 96)


class _SmallProfileEngine:
    """TensorRTBackend with a fake engine: one profile up to 1x3x64x64, the PyTorch net inside."""

    def __new__(cls, net):
        from cyclegan_convert.backends.tensorrt_backend import ProfileRange, TensorRTBackend, plan_profile

        class Fake(TensorRTBackend):
            def _open(self):
                self._profiles = [ProfileRange((1, 3, 16, 16), (1, 3, 64, 64))]

            def _close(self):
                pass

            def _run(self, x):
                plan_profile(self._profiles, x.shape[0], *x.shape[-2:])  # raises outside the profile, like the engine
                with torch.inference_mode():
                    return net(x)

        return Fake(b"engine", device="cpu")


def test_images_outside_the_engine_profile_run_on_pytorch(pth, tmp_path, tiny_generator):
    from PIL import Image

    from cyclegan_convert.converter import ConvertOptions, Converter

    src = tmp_path / "in"
    src.mkdir()
    Image.new("RGB", (48, 40), (20, 120, 240)).save(src / "small.png")
    for i in range(3):
        Image.new("RGB", (96, 80), (200, 120, 40 * i)).save(src / f"big{i}.png")
    notes = []
    conv = Converter(pth, ConvertOptions(output=tmp_path / "out"), backend=_SmallProfileEngine(tiny_generator),
                     on_message=lambda kind, text: notes.append(text) if kind == "note" else None)
    s = conv.run([str(src)])
    assert s.converted == 4 and not s.failed
    assert len([n for n in notes if "profile" in n]) == 1  # said once, not per file
    with Image.open(tmp_path / "out" / "big0.png") as im:
        assert im.size == (96, 80)


def test_onnxruntime_run_errors_are_backend_errors(tmp_path, monkeypatch):
    from onnxruntime.capi.onnxruntime_pybind11_state import Fail

    from cyclegan_convert.backends.onnxruntime_backend import OnnxRuntimeBackend

    class Session:
        def run(self, *a):
            raise Fail("[ONNXRuntimeError] : 1 : FAIL : Failed to allocate memory\nmore")

    be = OnnxRuntimeBackend(tmp_path / "g.onnx", device="cpu")
    monkeypatch.setattr(be, "_open", lambda: setattr(be, "_session", Session()) or None)
    be._input_name = be._output_name = "x"
    with be, pytest.raises(BackendError, match="^ONNX Runtime: .*allocate memory$"):  # the converter fails that file
        be.infer(torch.zeros(1, 8, 8, 3, dtype=torch.uint8))


def test_auto_falls_back_to_pytorch_when_the_engine_cannot_be_built(pth, tmp_path, tiny_generator):
    from PIL import Image

    from cyclegan_convert.backends.tensorrt_backend import TensorRTBackend
    from cyclegan_convert.converter import ConvertOptions, Converter
    from cyclegan_convert.errors import EngineBuildError

    def no_engine():
        raise EngineBuildError("the new TensorRT engine does not match PyTorch FP32: PSNR 12.0 dB")

    class Unbuildable(TensorRTBackend):
        def _open(self):
            self._source()

    src = tmp_path / "in"
    src.mkdir()
    Image.new("RGB", (48, 40), (20, 120, 240)).save(src / "a.png")
    notes = []
    conv = Converter(pth, ConvertOptions(output=tmp_path / "out"), backend=Unbuildable(no_engine, device="cpu"),
                     on_message=lambda kind, text: notes.append(text) if kind == "note" else None)
    s = conv.run([str(src)])
    assert s.converted == 1 and s.backend.startswith("PyTorch")
    assert any("PSNR 12.0 dB" in n for n in notes)
    explicit = Converter(pth, ConvertOptions(output=tmp_path / "out2", backend="tensorrt"),
                         backend=Unbuildable(no_engine, device="cpu"))
    with pytest.raises(EngineBuildError):
        explicit.run([str(src)])


def test_first_use_export_is_announced(pth, tmp_path, monkeypatch):
    pytest.importorskip("onnxruntime")
    import cyclegan_convert.export as export
    from cyclegan_convert.converter import export_artifacts

    def fake_ensure_onnx(ref, fp16, on_message=lambda s: None):
        on_message("exporting FP32 ONNX of g")
        return tmp_path / "generator.onnx"

    monkeypatch.setattr(export, "ensure_onnx", fake_ensure_onnx)
    said = []
    be = select.make_backend(pth, "onnxruntime", "cpu", on_message=said.append, artifacts=export_artifacts())
    assert be.name == "onnxruntime" and said == ["exporting FP32 ONNX of g"]
    with pytest.raises(BackendUnavailableError, match="exporting the model is not available"):
        select.make_backend(pth, "onnxruntime", "cpu")  # no exporter handed in: said, never a crash


@pytest.mark.skipif(not (shutil.which("c++") or shutil.which("g++") or shutil.which("cl")),
                    reason="torch.compile on the CPU needs a C++ compiler")
@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_compiled_torch_matches_eager_and_hooks_run_eagerly(tiny_generator, precision):
    """A real torch.compile (dynamic shapes) of the CPU's production path (channels_last: the
    InstanceNorm's shift and group_norm; bf16 where the CPU has it, fp32 elsewhere) against eager, at
    two sizes, on a photo and on a nearly flat image (where a lost shift shows); tiles (statistics
    hooks) take the eager path. fp32: rounding only (``pixels.assert_same_pixels``); bf16: fusion
    changes where intermediates round, so within bf16's own distance to fp32 (measured 44-52 dB)."""
    from pixels import assert_same_pixels, psnr

    photo = np.asarray(Image.open(PHOTOS[0]).convert("RGB"))
    flat = np.full((36, 64, 3), 118, np.uint8) + (np.arange(64, dtype=np.uint8) // 16)[None, :, None]
    with TorchBackend(tiny_generator, "cpu", precision, channels_last=True) as ref, \
            TorchBackend(tiny_generator, "cpu", precision, channels_last=True, compile=True) as fast, \
            TorchBackend(tiny_generator, "cpu", "fp32", channels_last=False) as fp32:
        assert "compiled" in fast.describe()
        for x in (photo[:40, :56], flat):
            x = torch.from_numpy(np.ascontiguousarray(x))[None]
            got, want = fast.infer(x), ref.infer(x)
            if precision == "fp32":
                assert_same_pixels(got, want, f"compiled {tuple(x.shape)}")
            else:
                assert psnr(got, want) >= 40 and psnr(got, fp32.infer(x)) >= 38, (psnr(got, want), psnr(got, fp32.infer(x)))
        big = torch.from_numpy(np.ascontiguousarray(photo[:96, :128]))[None]
        assert torch.equal(ref.infer_tiled(big, tile=64), fast.infer_tiled(big, tile=64))
        assert fast._compiled is not None  # still compiled: nothing failed


@pytest.mark.parametrize("when", ["first call", "compile"])
def test_a_failing_compile_falls_back_to_eager_with_a_note(tiny_generator, monkeypatch, when):
    def broken(model, **kw):
        def run(x):
            raise RuntimeError("InductorError: no working C++ compiler found\nmore detail")
        if when == "compile":
            raise RuntimeError("torch.compile is not supported on this Python")
        return run

    monkeypatch.setattr(torch, "compile", broken)
    notes = []
    x = torch.randint(0, 256, (1, 40, 56, 3), dtype=torch.uint8)
    with TorchBackend(tiny_generator, "cpu", "fp32", channels_last=False) as ref, \
            TorchBackend(tiny_generator, "cpu", "fp32", channels_last=False, compile=True, on_note=notes.append) as be:
        assert torch.equal(be.infer(x), ref.infer(x)) and torch.equal(be.infer(x), ref.infer(x))
    reason = "InductorError: no working C++ compiler found" if when == "first call" else \
        "torch.compile is not supported on this Python"
    assert notes == [f"torch.compile failed ({reason}); running PyTorch uncompiled"]


def test_out_of_memory_in_a_compiled_call_is_not_a_compile_failure(tiny_generator, monkeypatch):
    def oom(model, **kw):
        def run(x):
            raise torch.OutOfMemoryError("CUDA out of memory")
        return run

    monkeypatch.setattr(torch, "compile", oom)
    with TorchBackend(tiny_generator, "cpu", "fp32", channels_last=False, compile=True) as be:
        with pytest.raises(torch.OutOfMemoryError):
            be.infer(torch.zeros((1, 8, 8, 3), dtype=torch.uint8))
        assert be._compiled is not None


def test_compile_asks_for_pytorch(pth):
    be = select.make_backend(pth, "auto", "cpu", compile=True)
    assert isinstance(be, TorchBackend) and be.compile
    with pytest.raises(UsageError, match="--compile runs a PyTorch generator"):
        select.make_backend(pth, "onnxruntime", "cpu", compile=True)
    with pytest.raises(UsageError, match="g.onnx"):
        select.make_backend(ModelRef(pth.path.with_name("g.onnx"), "onnx"), "auto", "cpu", compile=True)


class _FakeOrt:
    """onnxruntime(-gpu) as far as the backend's provider checks see it: which providers the build
    has, and which ones a session really started with (onnxruntime-gpu falls back to the CPU
    silently when CUDA or cuDNN libraries are missing)."""

    class GraphOptimizationLevel:
        ORT_ENABLE_ALL = 99

    class SessionOptions:
        pass

    def __init__(self, available, started):
        self.available, self.started, self.asked = available, started, None

    def get_available_providers(self):
        return list(self.available)

    def InferenceSession(self, path, sess_options=None, providers=()):  # noqa: N802  (onnxruntime's name)
        self.asked = list(providers)
        started = self.started

        class Arg:
            name, type = "x", "tensor(float)"

        class Session:
            def get_providers(self):
                return list(started)

            def get_inputs(self):
                return [Arg()]

            def get_outputs(self):
                return [Arg()]

        return Session()


@pytest.mark.parametrize("device, available, started, expect", [
    ("cuda", ["CUDAExecutionProvider", "CPUExecutionProvider"], ["CUDAExecutionProvider", "CPUExecutionProvider"], "cuda"),
    ("cuda:1", ["CUDAExecutionProvider", "CPUExecutionProvider"], ["CUDAExecutionProvider", "CPUExecutionProvider"], "cuda:1"),
    ("cuda", ["CUDAExecutionProvider", "CPUExecutionProvider"], ["CPUExecutionProvider"], "could not start CUDA"),
    ("cuda", ["CPUExecutionProvider"], ["CPUExecutionProvider"], "needs onnxruntime-gpu"),
    ("auto", ["CUDAExecutionProvider", "CPUExecutionProvider"], ["CPUExecutionProvider"], "cpu"),  # auto may fall back
    ("auto", ["CUDAExecutionProvider", "CPUExecutionProvider"], ["CUDAExecutionProvider", "CPUExecutionProvider"], "cuda"),
    ("cpu", ["CUDAExecutionProvider", "CPUExecutionProvider"], ["CPUExecutionProvider"], "cpu"),
])
def test_onnxruntime_gpu_provider_checks(tmp_path, monkeypatch, device, available, started, expect):
    """--device cuda never runs silently on the CPU; auto uses CUDA where the session started it."""
    import sys

    from cyclegan_convert.backends.onnxruntime_backend import OnnxRuntimeBackend
    from cyclegan_convert.errors import BackendUnavailableError

    ort = _FakeOrt(available, started)
    monkeypatch.setitem(sys.modules, "onnxruntime", ort)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    onnx = tmp_path / "g.onnx"
    onnx.write_bytes(b"not read by the fake")
    be = OnnxRuntimeBackend(onnx, device=device)
    if expect in ("cpu", "cuda", "cuda:1"):
        be.open()
        assert str(be.device) == expect
        if device == "cpu":
            assert ort.asked == ["CPUExecutionProvider"]
        if device == "cuda:1":
            assert ort.asked[0] == ("CUDAExecutionProvider", {"device_id": 1})
    else:
        with pytest.raises(BackendUnavailableError, match=expect):
            be.open()


def test_device_is_parsed_once_for_every_command():
    from cyclegan_convert.backends.device import DeviceSpec

    assert DeviceSpec.parse("cuda:1") == DeviceSpec("cuda", 1) and str(DeviceSpec.parse(" CUDA:1 ")) == "cuda:1"
    assert DeviceSpec.parse("auto") == DeviceSpec() and DeviceSpec.parse("cpu").resolve() == torch.device("cpu")
    for bad in ("gpu", "cpu:0", "cuda:", "cuda:x", ""):
        with pytest.raises(UsageError, match="unknown --device"):
            DeviceSpec.parse(bad)
    from cyclegan_convert.converter import ConvertOptions
    from cyclegan_convert.video import VideoOptions

    for options in (ConvertOptions, VideoOptions):  # checked before any work, with the same message
        with pytest.raises(UsageError, match="unknown --device 'gpu'"):
            options(device="gpu")


def test_the_backends_never_import_export():
    """export verifies with the backends; the backends ask the artifact index (no import circle)."""
    import subprocess
    import sys

    code = ("import sys, cyclegan_convert.backends.select, cyclegan_convert.backends.router, "
            "cyclegan_convert.backends.tensorrt_backend, cyclegan_convert.backends.onnxruntime_backend\n"
            "assert not [m for m in sys.modules if m.startswith('cyclegan_convert.export')], sorted(sys.modules)")
    subprocess.run([sys.executable, "-c", code], check=True)


class _Failing(Backend):
    name = "failing"

    def __init__(self, error):
        super().__init__()
        self.error = error

    def _run(self, x):
        raise self.error


def test_an_engine_failure_fails_the_file_but_a_usage_error_ends_the_run(pth, tmp_path):
    from PIL import Image

    from cyclegan_convert.converter import ConvertOptions, Converter
    from cyclegan_convert.errors import ShapeRefused

    src = tmp_path / "in"
    src.mkdir()
    Image.new("RGB", (48, 40), (20, 120, 240)).save(src / "a.png")
    s = Converter(pth, ConvertOptions(output=tmp_path / "out"), backend=_Failing(ShapeRefused("size refused"))).run([str(src)])
    assert s.converted == 0 and len(s.failed) == 1 and "size refused" in s.failed[0][1]
    with pytest.raises(UsageError, match="typed wrong"):
        Converter(pth, ConvertOptions(output=tmp_path / "out2"), backend=_Failing(UsageError("typed wrong"))).run([str(src)])


def test_cpu_name_tells_generations_apart_that_share_a_model_name():
    """Virtual machines report a bare "AMD EPYC" for CPUs that differ twofold in speed; figures
    name the family and model, read from the first processor's block only."""
    def block(family, model, name="AMD EPYC"):
        return f"processor\t: 0\nvendor_id\t: AuthenticAMD\ncpu family\t: {family}\nmodel\t\t: {model}\nmodel name\t: {name}\n"

    assert select.cpu_name_from(block(26, 2) + "\n" + block(25, 17)) == "AMD EPYC (family 26, model 2)"
    assert select.cpu_name_from(block(25, 17)) == "AMD EPYC (family 25, model 17)"
    assert select.cpu_name_from("model name\t: Some CPU\n") == "Some CPU"  # no numbers: the name alone
    with pytest.raises(ValueError):
        select.cpu_name_from("processor\t: 0\nvendor_id\t: GenuineIntel\n")
    assert select.cpu_name()  # this machine: never empty
