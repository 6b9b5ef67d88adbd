"""Checks an exported model before it is kept: graph checks, then numbers against PyTorch FP32.

Numbers come from real images (the sample photos bundled with ccv, or the caller's), cut to several
shapes (batch 2 and a non-square one among them), run through ONNX Runtime and through the PyTorch
generator in FP32.
"""
from __future__ import annotations

import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np
import torch

from ..backends.base import to_uint8_images
from ..errors import EngineBuildError
from ..imaging import read_rgb
from ..networks import ResnetGenerator
from .shapes import Shape

# export/ installs as cyclegan_convert.export but sits at the repository's top level: find the package.
SAMPLES_DIR = Path(sys.modules["cyclegan_convert"].__file__).resolve().parent / "samples"
DEFAULT_SHAPES = (Shape(1, 256, 256), Shape(2, 256, 256), Shape(1, 192, 320))
FP32_MAX_ABS = 1e-4
MIN_PSNR_DB = 40.0


@dataclass(frozen=True)
class CheckRow:
    """One shape compared with PyTorch FP32: float outputs and the 8-bit images users get."""

    shape: Shape
    max_abs: float
    psnr_db: float  # of the 8-bit outputs; inf when identical
    finite: bool
    ok: bool


@dataclass
class Verification:
    """What was checked for one exported file; ``ok`` only if every row and graph check passed."""

    path: Path
    precision: str  # fp32, fp16
    criterion: str  # what a row needs to pass, for the table's caption
    graph_checks: list[str] = field(default_factory=list)
    rows: list[CheckRow] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return bool(self.rows) and all(r.ok for r in self.rows)

    def failure(self) -> str:
        bad = [r for r in self.rows if not r.ok]
        parts = [f"{r.shape}: max abs {r.max_abs:.2e}, PSNR {r.psnr_db:.1f} dB{'' if r.finite else ', NaN/Inf'}"
                 for r in bad]
        return f"{self.path.name} failed verification ({self.criterion}): " + "; ".join(parts)


def psnr_uint8(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = (a.double() - b.double()).pow(2).mean().item()
    return math.inf if mse == 0 else 10.0 * math.log10(255.0**2 / mse)


def sample_images(paths: Optional[Sequence[Path]] = None) -> list[torch.Tensor]:
    """Real photos as uint8 HWC tensors (default: the samples bundled with ccv)."""
    paths = list(paths) if paths else sorted(p for p in SAMPLES_DIR.iterdir() if p.suffix.lower() == ".jpg")
    if not paths:
        raise EngineBuildError(f"{SAMPLES_DIR}: no sample images to verify against; reinstall ccv")
    return [torch.from_numpy(np.array(read_rgb(p))).clone() for p in paths]


def make_batch(images: Sequence[torch.Tensor], shape: Shape, offset: int = 0) -> torch.Tensor:
    """uint8 (B, H, W, 3): different images, each resized to cover HxW and centre-cropped."""
    out = []
    for i in range(shape.batch):
        img = images[(offset + i) % len(images)].permute(2, 0, 1)[None].float()
        h, w = img.shape[-2:]
        scale = max(shape.height / h, shape.width / w)
        size = (max(shape.height, round(h * scale)), max(shape.width, round(w * scale)))
        img = torch.nn.functional.interpolate(img, size=size, mode="bilinear", align_corners=False, antialias=True)
        top, left = (size[0] - shape.height) // 2, (size[1] - shape.width) // 2
        img = img[..., top:top + shape.height, left:left + shape.width]
        out.append(img.round().clamp(0, 255).to(torch.uint8)[0].permute(1, 2, 0))
    return torch.stack(out)


def to_float_input(batch: torch.Tensor) -> torch.Tensor:
    """uint8 NHWC -> float32 NCHW in [-1, 1], exactly as the backends normalise."""
    return batch.permute(0, 3, 1, 2).float().div(127.5).sub(1.0).contiguous()


def compare(run: Callable[[torch.Tensor], torch.Tensor], generator: ResnetGenerator, images: Sequence[torch.Tensor],
            shapes: Sequence[Shape], *, max_abs: Optional[float], min_psnr: Optional[float]) -> list[CheckRow]:
    """Runs ``run`` (float32 NCHW in, float out) and the generator in FP32 on each shape."""
    reference = generator.float().eval()
    rows = []
    for i, shape in enumerate(shapes):
        x = to_float_input(make_batch(images, shape, offset=i))
        with torch.inference_mode():
            ref = reference(x.to(next(reference.parameters()).device)).float().cpu()
        got = run(x).float().cpu()
        finite = bool(torch.isfinite(got).all())
        diff = (got - ref).abs().max().item() if finite else math.inf
        psnr = psnr_uint8(to_uint8_images(got.nan_to_num(0.0)), to_uint8_images(ref)) if finite else 0.0
        ok = finite and (max_abs is None or diff <= max_abs) and (min_psnr is None or psnr >= min_psnr)
        rows.append(CheckRow(shape, diff, psnr, finite, ok))
    return rows


def check_graph(path: Path, *, fp16: bool) -> list[str]:
    """ONNX checker, strict shape and type inference, and for FP16 every InstanceNormalization in float32.

    Returns the checks that passed; raises ``EngineBuildError`` naming the first that failed.
    """
    import onnx
    from onnx import TensorProto

    try:
        onnx.checker.check_model(str(path), full_check=True)
    except onnx.checker.ValidationError as e:
        raise EngineBuildError(f"{path}: ONNX checker failed ({str(e).splitlines()[0][:200]})") from None
    model = onnx.load_model(str(path))
    try:
        inferred = onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True)
    except Exception as e:  # InferenceError and friends
        raise EngineBuildError(f"{path}: strict shape inference failed ({str(e).splitlines()[0][:200]})") from None
    checks = ["onnx.checker (full)", "strict shape and type inference"]
    if fp16:
        bad = [n.name or n.output[0] for n, dtype in instance_norm_input_types(inferred) if dtype != TensorProto.FLOAT]
        norms = sum(1 for n in inferred.graph.node if n.op_type == "InstanceNormalization")
        if bad or norms == 0:
            raise EngineBuildError(f"{path}: InstanceNormalization not in float32 ({', '.join(bad[:3]) or 'none found'}); "
                                   "FP16 instance norm overflows")
        checks.append(f"all {norms} InstanceNormalization nodes read float32")
    return checks


def instance_norm_input_types(inferred) -> list[tuple[object, int]]:
    """(node, element type of its data input) for every InstanceNormalization of a shape-inferred model."""
    types = {vi.name: vi.type.tensor_type.elem_type
             for vi in list(inferred.graph.value_info) + list(inferred.graph.input) + list(inferred.graph.output)}
    types.update({t.name: t.data_type for t in inferred.graph.initializer})
    return [(n, types.get(n.input[0], 0)) for n in inferred.graph.node if n.op_type == "InstanceNormalization"]


def ort_runner(path: Path) -> Callable[[torch.Tensor], torch.Tensor]:
    """ONNX Runtime on the CPU as a float-in, float-out function (the backend adds uint8 handling)."""
    from ..backends.onnxruntime_backend import cpu_session

    session = cpu_session(path)
    name = session.get_inputs()[0].name
    return lambda x: torch.from_numpy(session.run(None, {name: x.numpy()})[0])


def verify_onnx(path: Path, generator: ResnetGenerator, *, fp16: bool, images: Optional[Sequence[torch.Tensor]] = None,
                shapes: Sequence[Shape] = DEFAULT_SHAPES, max_abs: Optional[float] = None) -> Verification:
    """Graph checks, then ONNX Runtime (CPU) against PyTorch FP32 on real images at each shape.

    FP32 passes with a max abs difference <= ``max_abs`` (default 1e-4); FP16 with finite outputs and
    PSNR of the 8-bit outputs >= 40 dB.
    """
    images = images or sample_images()
    if fp16:
        v = Verification(path, "fp16", f"finite, 8-bit PSNR >= {MIN_PSNR_DB:g} dB")
        thresholds = dict(max_abs=max_abs, min_psnr=MIN_PSNR_DB)
    else:
        limit = FP32_MAX_ABS if max_abs is None else max_abs
        v = Verification(path, "fp32", f"max abs <= {limit:g}")
        thresholds = dict(max_abs=limit, min_psnr=None)
    v.graph_checks = check_graph(path, fp16=fp16)
    v.rows = compare(ort_runner(path), generator, images, shapes, **thresholds)
    return v
