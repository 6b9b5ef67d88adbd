"""One real export of a tiny generator per test session, shared by the export, TensorRT-cache and
backend-conformance tests (an export takes ~10 s on two cores, so it is done once)."""
from __future__ import annotations

import functools
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch

from cyclegan_convert.networks import ResnetGenerator, init_weights

FIXTURES = Path(__file__).parent / "fixtures"
PHOTOS = sorted((FIXTURES / "photo").glob("*.jpg"))


def tiny_generator(seed: int = 0) -> ResnetGenerator:
    torch.manual_seed(seed)
    return init_weights(ResnetGenerator(ngf=8, n_blocks=2)).eval()


@dataclass(frozen=True)
class TinyExport:
    weights: Path  # the generator file both ONNX files were exported from
    fp32: Path
    fp16: Path
    report: object  # ExportReport of the run


@functools.lru_cache(maxsize=None)
def tiny_export() -> TinyExport:
    from cyclegan_convert.export import ExportOptions, run_export
    from cyclegan_convert.resolve import ModelRef

    work = Path(tempfile.mkdtemp(prefix="ccv-test-export-"))
    weights = work / "tiny.pth"
    torch.save(tiny_generator().state_dict(), weights)
    report = run_export(ModelRef(weights, "pytorch"), ExportOptions(out=work / "exports", engine=False,
                                                                    images=tuple(PHOTOS)))
    return TinyExport(weights, report.files["fp32"], report.files["fp16"], report)


def install_tiny(store_root: Path, target: str = "tiny", with_exports: bool = True):
    """The tiny generator as a store model (--to tiny), with the session's exports copied in."""
    from cyclegan_convert.store import ModelEntry, ModelStore

    exp = tiny_export()
    store = ModelStore(store_root)
    entry = store.add(ModelEntry(target=target, source="photo", origin="imported", arch="resnet_2blocks", ngf=8),
                      exp.weights)
    if with_exports:
        entry.exports_dir.mkdir(parents=True)
        shutil.copy(exp.fp32, entry.exports_dir / "generator.onnx")
        shutil.copy(exp.fp16, entry.exports_dir / "generator.fp16.onnx")
    return entry
