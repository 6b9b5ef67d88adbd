"""Generator -> ONNX through the PyTorch (dynamo) exporter: dynamic batch, height and width, one file.

FP16: the generator's weights and activations are half after a float32 stem (the first conv, its
InstanceNorm and ReLU: ``networks.HalfPrecisionGenerator``, which the PyTorch backend runs too), its
inputs and outputs stay float32, and every InstanceNorm computes in float32: ``networks.InstanceNorm``
casts to float and back, which exports as Cast -> InstanceNormalization(float) -> Cast. In FP16 the
variance over H*W elements overflows and the picture turns to garbage (see DESIGN.md); a half stem
loses 11 dB on low-contrast photos (the first conv's output carries the mean colour).
"""
from __future__ import annotations

import copy
import logging
import warnings
from pathlib import Path
from typing import Mapping

import torch
from torch import nn

from ..networks import HalfPrecisionGenerator, ResnetGenerator

OPSET = 18  # pinned: TensorRT 10.x and 11.x and ONNX Runtime >= 1.14 all read it
INPUT_NAME, OUTPUT_NAME = "input", "output"
INPUT_CONVENTION = "RGB, NCHW float32, values in [-1, 1], height and width multiples of 4"
MAX_SIDE = 16384


class _Exportable(nn.Module):
    """float32 in and out whatever the generator's own dtype."""

    def __init__(self, generator: ResnetGenerator, fp16: bool):
        super().__init__()
        self.generator = HalfPrecisionGenerator(generator, torch.float16) if fp16 else generator.float()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.generator(x.float()).float()


def export_onnx(generator: ResnetGenerator, path: Path, *, fp16: bool, metadata: Mapping[str, str]) -> None:
    """Writes ``generator`` to ``path`` (the caller writes to a temporary name and renames after checks)."""
    import onnx
    from torch.export import Dim

    model = _Exportable(copy.deepcopy(generator).cpu().eval(), fp16).eval()
    # Heights and widths are 4*k: the exporter then knows every stride-2 step divides evenly.
    batch = Dim("batch", min=1, max=1024)
    h4, w4 = Dim("h4", min=2, max=MAX_SIDE // 4), Dim("w4", min=2, max=MAX_SIDE // 4)
    example = torch.zeros(2, 3, 64, 96)
    with warnings.catch_warnings(), _quiet_exporter_logs(), torch.no_grad():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(
            model, (example,), None, dynamo=True, opset_version=OPSET, external_data=False,
            input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
            dynamic_shapes={"x": {0: batch, 2: 4 * h4, 3: 4 * w4}}, verbose=False)
    proto = program.model_proto
    _rename_dims(proto)
    del proto.metadata_props[:]
    for key, value in metadata.items():
        proto.metadata_props.add(key=key, value=str(value))
    onnx.save_model(proto, str(path))


def _rename_dims(proto) -> None:
    """'batch', 'height', 'width' read better than the exporter's '4*h4' in tools such as Netron."""
    names = {"batch": "batch", "4*h4": "height", "4*w4": "width"}
    for vi in list(proto.graph.input) + list(proto.graph.output):
        for d in vi.type.tensor_type.shape.dim:
            if d.dim_param in names:
                d.dim_param = names[d.dim_param]


class _quiet_exporter_logs:
    """The exporter logs warnings about optional torchvision ops at import: noise for our users."""

    def __enter__(self):
        self._logger = logging.getLogger("torch.onnx")
        self._level = self._logger.level
        self._logger.setLevel(logging.ERROR)

    def __exit__(self, *exc):
        self._logger.setLevel(self._level)
