"""One behaviour for every installed backend: PyTorch CPU, ONNX Runtime CPU (FP32 and FP16 ONNX), and
TensorRT where it is installed with a CUDA GPU. Same lifecycle, same uint8 in and out, odd sizes,
batches, and outputs close to the PyTorch FP32 reference."""
from __future__ import annotations


import pytest
import torch

from cyclegan_convert.backends.base import Backend
from cyclegan_convert.backends.onnxruntime_backend import OnnxRuntimeBackend
from cyclegan_convert.backends.torch_backend import TorchBackend
from cyclegan_convert.errors import BackendUnavailableError, UsageError
from cyclegan_convert.export import tensorrt_available
from cyclegan_convert.export.verify import make_batch, psnr_uint8, sample_images
from cyclegan_convert.export.shapes import Profile, Shape
from export_fixtures import PHOTOS, install_tiny, tiny_export, tiny_generator

TRT_OK, TRT_WHY = tensorrt_available()


def _tensorrt(tmp_path_factory):
    from cyclegan_convert.backends.tensorrt_backend import TensorRTBackend
    from cyclegan_convert.export import ensure_engine

    entry = install_tiny(tmp_path_factory.mktemp("trt_store"))
    profile = Profile(Shape(1, 32, 32), Shape(2, 128, 128), Shape(3, 256, 256))
    return TensorRTBackend(ensure_engine(entry, (profile,), images=sample_images(PHOTOS)))


FACTORIES = {
    # name: (factory, worst PSNR in dB of the 8-bit output against PyTorch FP32)
    "torch-cpu": (lambda tpf: TorchBackend(tiny_generator(), device="cpu"), 60.0),  # channels_last: rare 1-level rounding
    "onnxruntime-cpu-fp32": (lambda tpf: OnnxRuntimeBackend(tiny_export().fp32, device="cpu"), 50.0),
    "onnxruntime-cpu-fp16": (lambda tpf: OnnxRuntimeBackend(tiny_export().fp16, device="cpu"), 40.0),
    "torch-cuda-fp32": (lambda tpf: TorchBackend(tiny_generator(), device="cuda"), 50.0),  # TF32 convolutions
    "torch-cuda-fp16": (lambda tpf: TorchBackend(tiny_generator(), device="cuda", precision="fp16"), 40.0),
    "tensorrt": (_tensorrt, 40.0),
}
NO_CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (benchmarks/gpu_check.sh runs it on the lent GPU)")
MARKS = {"tensorrt": [pytest.mark.tensorrt, pytest.mark.skipif(not TRT_OK, reason=TRT_WHY)],
         "torch-cuda-fp32": [NO_CUDA], "torch-cuda-fp16": [NO_CUDA]}


@pytest.fixture(params=[pytest.param(k, marks=MARKS.get(k, [])) for k in FACTORIES])
def backend_case(request, tmp_path_factory) -> tuple[Backend, float]:
    factory, min_psnr = FACTORIES[request.param]
    return factory(tmp_path_factory), min_psnr


@pytest.fixture(scope="module")
def reference():
    return TorchBackend(tiny_generator(), device="cpu", channels_last=False).open()


def test_lifecycle(backend_case):
    backend, _ = backend_case
    images = make_batch(sample_images(PHOTOS), Shape(1, 32, 48))
    with pytest.raises(RuntimeError, match="before open"):
        backend.infer(images)
    with backend as opened:
        assert opened is backend
        first = backend.infer(images)
        assert isinstance(backend.describe(), str) and backend.describe()
    with pytest.raises(RuntimeError, match="before open"):
        backend.infer(images)
    backend.close()  # closing twice is harmless
    backend.open()  # and it opens again, same answers (on a GPU, cuDNN may pick other kernels)
    try:
        again = backend.infer(images)
        assert torch.equal(again, first) if backend.device.type == "cpu" else psnr_uint8(again, first) >= 60
    finally:
        backend.close()


def test_uint8_in_and_out_at_odd_sizes_and_batches(backend_case, reference):
    backend, min_psnr = backend_case
    photos = sample_images(PHOTOS)
    with backend:
        for shape in (Shape(1, 37, 53), Shape(3, 64, 64), Shape(2, 101, 66)):
            images = make_batch(photos, shape)
            out = backend.infer(images)
            assert out.dtype == torch.uint8 and out.shape == images.shape and out.device.type == "cpu"
            assert psnr_uint8(out, reference.infer(images)) >= min_psnr, shape
            # every image of a batch is converted on its own: the same as one at a time
            alone = torch.cat([backend.infer(images[i:i + 1]) for i in range(shape.batch)])
            assert psnr_uint8(out, alone) >= 50.0


def test_rejects_what_is_not_uint8_rgb(backend_case):
    backend, _ = backend_case
    with backend:
        for bad in (torch.zeros(1, 8, 8, 3), torch.zeros(1, 8, 8, 4, dtype=torch.uint8),
                    torch.zeros(8, 8, 3, dtype=torch.uint8)):
            with pytest.raises(TypeError):  # a caller's bug, not the user's
                backend.infer(bad)


def test_onnxruntime_cuda_without_cuda_is_an_error_not_a_fallback():
    import onnxruntime as ort

    if "CUDAExecutionProvider" in ort.get_available_providers() and torch.cuda.is_available():
        pytest.skip("onnxruntime-gpu with a GPU is installed here")
    with pytest.raises(BackendUnavailableError, match="onnxruntime-gpu"):
        OnnxRuntimeBackend(tiny_export().fp32, device="cuda").open()
    with OnnxRuntimeBackend(tiny_export().fp32, device="auto") as backend:
        assert backend.device.type == "cpu"  # auto may pick the CPU
